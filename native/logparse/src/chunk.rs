//! Per-chunk aggregation: many NDJSON lines in, per (key, time bucket) counts out. No pyo3 here.
use std::collections::HashMap;

use serde::Deserialize;

/// Aggregates of one key in one time bucket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupStats {
    pub key: String,
    pub bucket_start: i64,
    pub count: u64,
    pub failed: u64,
    pub duration_sum_ms: f64,
}

/// What one chunk of lines yielded.
#[derive(Debug, Clone, Default)]
pub struct ChunkStats {
    pub lines: u64,
    pub bad_lines: HashMap<&'static str, u64>,
    pub groups: Vec<GroupStats>,
}

#[derive(Deserialize)]
struct RailsLine<'a> {
    #[serde(borrow)]
    controller: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    action: Option<std::borrow::Cow<'a, str>>,
    status: Option<i64>,
    duration_s: Option<f64>,
    time: Option<std::borrow::Cow<'a, str>>,
}

/// Parse `data` (newline-separated `production_json` lines) and group by `controller#action` per bucket.
pub fn parse_chunk(data: &[u8], bucket_seconds: i64) -> ChunkStats {
    let mut out = ChunkStats::default();
    let mut index: HashMap<(String, i64), usize> = HashMap::new();
    for line in data.split(|b| *b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        out.lines += 1;
        let Ok(rec) = serde_json::from_slice::<RailsLine>(line) else {
            *out.bad_lines.entry("invalid_json").or_default() += 1;
            continue;
        };
        let (Some(controller), Some(action)) = (rec.controller, rec.action) else {
            *out.bad_lines.entry("missing_key").or_default() += 1;
            continue;
        };
        let bucket = rec.time.as_deref().and_then(epoch_seconds).map_or(0, |t| t - t.rem_euclid(bucket_seconds));
        let key = format!("{controller}#{action}");
        let slot = *index.entry((key.clone(), bucket)).or_insert_with(|| {
            out.groups.push(GroupStats { key, bucket_start: bucket, ..Default::default() });
            out.groups.len() - 1
        });
        let g = &mut out.groups[slot];
        g.count += 1;
        g.failed += u64::from(rec.status.is_some_and(|s| s >= 500));
        g.duration_sum_ms += rec.duration_s.unwrap_or(0.0) * 1000.0;
    }
    out
}

/// Seconds since the epoch of an ISO-8601 UTC timestamp like `2017-08-08T20:15:54.821Z`.
fn epoch_seconds(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if mo > 2 { mo - 3 } else { mo + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + se)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_of_known_instant() {
        assert_eq!(epoch_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(epoch_seconds("2017-08-08T20:15:54.821Z"), Some(1_502_223_354));
    }

    #[test]
    fn groups_by_controller_action_and_counts_bad_lines() {
        let data = br#"{"controller":"A","action":"show","status":200,"duration_s":0.5,"time":"2020-01-01T00:00:10Z"}
{"controller":"A","action":"show","status":502,"duration_s":1.5,"time":"2020-01-01T00:00:50Z"}
not json
"#;
        let s = parse_chunk(data, 60);
        assert_eq!(s.lines, 3);
        assert_eq!(s.bad_lines["invalid_json"], 1);
        assert_eq!(s.groups.len(), 1);
        assert_eq!(s.groups[0].count, 2);
        assert_eq!(s.groups[0].failed, 1);
        assert!((s.groups[0].duration_sum_ms - 2000.0).abs() < 1e-9);
    }
}
