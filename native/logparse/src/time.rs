//! Timestamps as GitLab writes them: ISO-8601 (`2017-08-08T20:15:54.821Z`), svlogd `-tt` prefixes
//! (`2019-06-17_17:20:03.46097`) and float epoch seconds.

/// 10000-01-01T00:00:00Z, the first instant past year 9999, in seconds since the epoch.
pub const END_OF_YEAR_9999: f64 = 253_402_300_800.0;

/// Whether `t` (seconds since the epoch) is a time a log line can carry: from 1970 to the end of year 9999. An
/// earlier one is no log's, and a later one (a float epoch in µs, `1e15`) is refused by Python's datetime and
/// PostgreSQL's timestamptz downstream and would stretch the input's span; NaN and infinities are neither.
pub fn in_range(t: f64) -> bool {
    (0.0..END_OF_YEAR_9999).contains(&t)
}

/// Seconds since the epoch of `YYYY-MM-DD[T _]HH:MM:SS[.frac][Z|±HH:MM|±HHMM]`, or `None` if malformed.
pub fn parse_iso(s: &[u8]) -> Option<f64> {
    if s.len() < 19 || s[4] != b'-' || s[7] != b'-' || !matches!(s[10], b'T' | b'_' | b' ') {
        return None;
    }
    if s[13] != b':' || s[16] != b':' {
        return None;
    }
    let (y, mo, d) = (digits(&s[0..4])?, digits(&s[5..7])?, digits(&s[8..10])?);
    let (h, mi, se) = (
        digits(&s[11..13])?,
        digits(&s[14..16])?,
        digits(&s[17..19])?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut frac = 0.0;
    if let Some((b'.', tail)) = rest.split_first() {
        let n = tail.iter().take_while(|b| b.is_ascii_digit()).count();
        let mut scale = 0.1;
        for b in &tail[..n.min(9)] {
            frac += f64::from(b - b'0') * scale;
            scale /= 10.0;
        }
        rest = &tail[n..];
    }
    let offset = match rest {
        [] | [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), oh1, oh2, tail @ ..] => {
            let oh = digits(&[*oh1, *oh2])?;
            let om = match tail {
                [] => 0,
                [b':', m1, m2] | [m1, m2] => digits(&[*m1, *m2])?,
                _ => return None,
            };
            let off = oh * 3600 + om * 60;
            if *sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se - offset;
    Some(secs as f64 + frac)
}

fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |acc, c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(parse_iso(b"1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(parse_iso(b"2017-08-08T20:15:54Z"), Some(1_502_223_354.0));
        let t = parse_iso(b"2017-08-08T20:15:54.821Z").unwrap();
        assert!((t - 1_502_223_354.821).abs() < 1e-6);
        assert_eq!(
            parse_iso(b"2019-06-17_17:20:03"),
            parse_iso(b"2019-06-17T17:20:03Z")
        );
        assert_eq!(
            parse_iso(b"2020-01-01T01:00:00+01:00"),
            parse_iso(b"2020-01-01T00:00:00Z")
        );
        assert_eq!(
            parse_iso(b"2020-01-01T01:00:00+0100"),
            parse_iso(b"2020-01-01T00:00:00Z")
        );
    }

    #[test]
    fn range_is_1970_to_the_end_of_9999() {
        assert_eq!(
            days_from_civil(10_000, 1, 1) as f64 * 86_400.0,
            END_OF_YEAR_9999
        );
        let last = parse_iso(b"9999-12-31T23:59:59.999Z").unwrap();
        for t in [0.0, 1_700_000_000.5, last] {
            assert!(in_range(t), "{t}");
        }
        for t in [
            -0.001,
            END_OF_YEAR_9999,
            1e15,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            assert!(!in_range(t), "{t}");
        }
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "2020-01-01",
            "2020-13-01T00:00:00Z",
            "2020-01-01T00:00:00Q",
            "2020-01-01T00:00:00+1",
        ] {
            assert_eq!(parse_iso(s.as_bytes()), None, "{s}");
        }
    }
}
