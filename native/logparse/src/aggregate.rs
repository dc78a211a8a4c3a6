//! Aggregation of many lines into per-key, per-time-bucket statistics: exact (every duration kept, for the
//! CLI) or sketched (bounded by the number of keys, for streaming). Input is split at newlines and parsed
//! on all cores; partial aggregates merge, so the same code serves one chunk or a whole file fed in blocks.
use std::collections::BTreeMap;

use hashbrown::HashMap;
use rayon::prelude::*;

use crate::format::{self, LogType, Record, Rejection, COMPONENTS, DIMENSIONS};
use crate::sketch::Sketch;

/// Lines longer than this are rejected unparsed (GitLab caps its own fields far below).
pub const MAX_LINE_BYTES: usize = 1 << 20;
/// Samples kept per rejection reason.
const SAMPLES_PER_REASON: usize = 3;
/// Samples of bad lines are cut to this many bytes.
const SAMPLE_BYTES: usize = 300;
/// Samples of failures keep more, so that the error message at the end of the line survives.
const ERROR_SAMPLE_BYTES: usize = 2000;
/// Below this many bytes per core, splitting the input costs more than it saves.
const MIN_SPLIT_BYTES: usize = 1 << 20;

/// Longest key kept whole (bytes); longer ones are cut at a character boundary and end with `…`.
pub const MAX_KEY_BYTES: usize = 1024;

/// A key the analyzer can store and people can read. PostgreSQL text cannot hold U+0000 (JSON may escape one into
/// a name), and a control character (C0, DEL, C1: `char::is_control`) in a customer's key would reach terminals
/// (`outrider stats`, `engagements status`: ESC sequences clear the screen, forge links, retitle the window) and
/// Slack (a newline forges lines); each becomes U+FFFD. PostgreSQL's btree index refuses keys past ~2.7 kB, so one
/// past `MAX_KEY_BYTES` is cut. No real controller, route, RPC or worker name is that long or holds a control
/// character, and either key would stop the analyzer's flushes for good.
fn storable(key: &mut String) {
    // Every line's key passes here: one branch-free scan; C1 characters are 0xC2 0x80..=0x9F in UTF-8.
    let suspect = key.bytes().fold(false, |seen, b| {
        seen | (b < 0x20) | (b == 0x7f) | (b == 0xc2)
    });
    if suspect && key.chars().any(char::is_control) {
        *key = key
            .chars()
            .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
            .collect();
    }
    if key.len() > MAX_KEY_BYTES {
        let mut cut = MAX_KEY_BYTES;
        while !key.is_char_boundary(cut) {
            cut -= 1;
        }
        key.truncate(cut);
        key.push('…');
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub log_type: Option<LogType>,
    /// Width of time buckets in seconds; 0 puts every record in one bucket.
    pub bucket_seconds: i64,
    /// Keep every duration for exact percentiles; otherwise keep a sketch.
    pub exact: bool,
    pub top: bool,
    pub errors: bool,
    /// Without a `log_type`, count each line under the log type it tells when the input holds several (a Helm
    /// pod's stdout interleaves production_json, api_json, … lines), not only those of the type most lines have.
    /// The analyzer's chunks; the CLI counts one type, as fast-stats does, and tells how many lines it skipped.
    pub per_line_type: bool,
}

/// Running totals of one key in one bucket.
#[derive(Debug, Clone)]
pub struct KeyAcc {
    pub count: u64,
    pub failed: u64,
    pub sum: f64,
    pub sumsq: f64,
    pub min: f64,
    pub max: f64,
    pub components: [f64; 5],
    pub values: Vec<f64>,
    pub sketch: Option<Sketch>,
}

impl KeyAcc {
    fn new(exact: bool) -> Self {
        Self {
            count: 0,
            failed: 0,
            sum: 0.0,
            sumsq: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            components: [0.0; 5],
            values: Vec::new(),
            sketch: (!exact).then(Sketch::new),
        }
    }

    fn add(&mut self, r: &Record<'_>) {
        let d = r.duration_ms;
        self.count += 1;
        self.failed += u64::from(r.failed);
        self.sum += d;
        self.sumsq += d * d;
        self.min = self.min.min(d);
        self.max = self.max.max(d);
        for (acc, c) in self.components.iter_mut().zip(r.components) {
            *acc += c.unwrap_or(0.0);
        }
        match &mut self.sketch {
            Some(s) => s.add(d),
            None => self.values.push(d),
        }
    }

    pub fn merge(&mut self, o: &KeyAcc) {
        self.count += o.count;
        self.failed += o.failed;
        self.sum += o.sum;
        self.sumsq += o.sumsq;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        for (a, b) in self.components.iter_mut().zip(o.components) {
            *a += b;
        }
        match (&mut self.sketch, &o.sketch) {
            (Some(s), Some(t)) => s.merge(t),
            _ => self.values.extend_from_slice(&o.values),
        }
    }
}

/// Resource use of one user, project, client or path.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TopAcc {
    pub count: u64,
    pub failed: u64,
    pub duration_ms: f64,
    pub components: [f64; 5],
    pub mem_bytes: f64,
}

impl TopAcc {
    fn add(&mut self, r: &Record<'_>) {
        self.count += 1;
        self.failed += u64::from(r.failed);
        self.duration_ms += r.duration_ms;
        for (a, c) in self.components.iter_mut().zip(r.components) {
            *a += c.unwrap_or(0.0);
        }
        self.mem_bytes += r.mem_bytes.unwrap_or(0.0);
    }

    fn merge(&mut self, o: &TopAcc) {
        self.count += o.count;
        self.failed += o.failed;
        self.duration_ms += o.duration_ms;
        for (a, b) in self.components.iter_mut().zip(o.components) {
            *a += b;
        }
        self.mem_bytes += o.mem_bytes;
    }
}

/// Events kept per kind of failure, like fast-stats' `errors` rows.
const EVENTS_PER_ERROR: usize = 5;

/// One failed request: when, which, and who.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorEvent {
    pub time: Option<f64>,
    pub correlation_id: Option<String>,
    pub key: String,
    pub user: Option<String>,
    pub project: Option<String>,
}

/// Whether `a` comes strictly before `b`, an unknown time after every known one.
fn earlier(a: Option<f64>, b: Option<f64>) -> bool {
    a.unwrap_or(f64::INFINITY) < b.unwrap_or(f64::INFINITY)
}

/// Where an event at `time` goes among `events` (earliest first, untimed last) after all of its ties, so that
/// ties stay in input order; `EVENTS_PER_ERROR` when it is too late to keep.
fn event_slot(events: &[ErrorEvent], time: Option<f64>) -> usize {
    let at = |t: Option<f64>| t.unwrap_or(f64::INFINITY);
    events.partition_point(|e| at(e.time) <= at(time))
}

/// Keep `ev`, which came after every kept event, if it is among the `EVENTS_PER_ERROR` earliest.
fn keep_earliest(events: &mut Vec<ErrorEvent>, ev: ErrorEvent) {
    let slot = event_slot(events, ev.time);
    if slot < EVENTS_PER_ERROR {
        events.insert(slot, ev);
        events.truncate(EVENTS_PER_ERROR);
    }
}

/// One kind of failure with the earliest line that showed it (ties: the first in input order; untimed lines
/// last) and its earliest few events.
#[derive(Debug, Clone)]
pub struct ErrorAcc {
    pub count: u64,
    pub first_time: Option<f64>,
    pub last_time: Option<f64>,
    pub key: String,
    pub sample: String,
    pub events: Vec<ErrorEvent>,
}

/// Everything learnt from the lines fed so far.
#[derive(Debug, Clone)]
pub struct Aggregate {
    pub opts: Options,
    pub log_type: Option<LogType>,
    pub lines: u64,
    pub bad: BTreeMap<&'static str, u64>,
    pub skipped: BTreeMap<&'static str, u64>,
    pub samples: Vec<(&'static str, String)>,
    pub start_time: Option<f64>,
    pub end_time: Option<f64>,
    /// Bit `i` set when some record carried component `COMPONENTS[i]`.
    pub components_seen: u8,
    pub groups: HashMap<i64, HashMap<Box<str>, KeyAcc>>,
    /// Per bucket, per dimension in `DIMENSIONS` order.
    pub top: HashMap<i64, [HashMap<Box<str>, TopAcc>; 4]>,
    /// Whether some record counted in `top` carried `mem_bytes` (no Gitaly one does), so that `top` shows memory.
    pub mem_seen: bool,
    /// Per (bucket, kind of failure); the bucket is 0 without an interval.
    pub errors: HashMap<(i64, String), ErrorAcc>,
    /// Whether lines are counted under the log type each tells ([`Options::per_line_type`] and several found).
    pub mixed: bool,
    /// When `mixed`, one aggregate per log type the lines told, each with the lines routed to it; lines that were
    /// not even parsed (not JSON, too long) stay in this one's `lines` and `bad`.
    pub parts: Vec<Aggregate>,
    key_buf: String,
}

/// The lines, times and per-key aggregates of one log type of an input (see [`Aggregate::into_types`]).
#[derive(Debug)]
pub struct TypeGroups {
    pub log_type: LogType,
    pub lines: u64,
    pub start_time: Option<f64>,
    pub end_time: Option<f64>,
    pub groups: HashMap<i64, HashMap<Box<str>, KeyAcc>>,
}

fn min_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        _ => a.or(b),
    }
}

fn max_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        _ => a.or(b),
    }
}

/// A line cut to `limit` bytes, lossily decoded.
fn sample_of(line: &[u8], limit: usize) -> String {
    let cut = &line[..line.len().min(limit)];
    let mut s = String::from_utf8_lossy(cut).into_owned();
    if line.len() > limit {
        s.push('…');
    }
    s
}

/// Split `data` into about `n` pieces that end at newlines.
fn split_lines(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut parts = Vec::with_capacity(n);
    let mut rest = data;
    let target = data.len() / n.max(1);
    while parts.len() + 1 < n && rest.len() > target {
        match memchr::memchr(b'\n', &rest[target..]) {
            Some(i) => {
                let (a, b) = rest.split_at(target + i + 1);
                parts.push(a);
                rest = b;
            }
            None => break,
        }
    }
    parts.push(rest);
    parts
}

impl Aggregate {
    pub fn new(opts: Options) -> Self {
        Self {
            opts,
            log_type: opts.log_type,
            lines: 0,
            bad: BTreeMap::new(),
            skipped: BTreeMap::new(),
            samples: Vec::new(),
            start_time: None,
            end_time: None,
            components_seen: 0,
            groups: HashMap::new(),
            top: HashMap::new(),
            mem_seen: false,
            errors: HashMap::new(),
            mixed: false,
            parts: Vec::new(),
            key_buf: String::new(),
        }
    }

    /// Parse many newline-separated lines, on all cores when the input is large.
    pub fn feed(&mut self, data: &[u8]) {
        if self.log_type.is_none() {
            // The votes detection counts anyway: a chunk of one type pays nothing more.
            let found = format::detect_all(data);
            self.log_type = found.first().copied();
            self.mixed = self.opts.per_line_type && found.len() > 1;
        }
        let threads = rayon::current_num_threads()
            .min(data.len() / MIN_SPLIT_BYTES)
            .max(1);
        if threads == 1 {
            self.feed_serial(data);
            return;
        }
        let mut template = Aggregate::new(Options {
            log_type: self.log_type,
            ..self.opts
        });
        template.mixed = self.mixed;
        let parts: Vec<Aggregate> = split_lines(data, threads)
            .into_par_iter()
            .map(|part| {
                let mut a = template.clone();
                a.feed_serial(part);
                a
            })
            .collect();
        for p in parts {
            self.merge(p);
        }
    }

    fn feed_serial(&mut self, data: &[u8]) {
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', data).chain(std::iter::once(data.len())) {
            if start <= end {
                self.add_line(&data[start..end]);
            }
            start = end + 1;
        }
    }

    fn reject(&mut self, r: Rejection, line: &[u8]) {
        let (map, reason) = match r {
            Rejection::Skip(reason) => (&mut self.skipped, reason),
            Rejection::Bad(reason) => (&mut self.bad, reason),
        };
        *map.entry(reason).or_default() += 1;
        if matches!(r, Rejection::Bad(_))
            && self.samples.iter().filter(|(r, _)| *r == reason).count() < SAMPLES_PER_REASON
        {
            self.samples.push((reason, sample_of(line, SAMPLE_BYTES)));
        }
    }

    fn add_line(&mut self, raw: &[u8]) {
        let line = raw.trim_ascii();
        if line.is_empty() {
            return;
        }
        self.lines += 1;
        if line.len() > MAX_LINE_BYTES {
            return self.reject(Rejection::Bad("too_long"), line);
        }
        let mut parsed = format::Line::default();
        let prefix_time = match format::split_prefix(line) {
            Some((json, prefix_time)) => match format::parse_json_into(json, &mut parsed) {
                Ok(()) => prefix_time,
                Err(reason) => return self.reject(Rejection::Bad(reason), line),
            },
            None => match format::parse_logfmt(line) {
                Some((p, prefix_time)) => {
                    parsed = p;
                    prefix_time
                }
                None => return self.reject(Rejection::Bad("not_json"), line),
            },
        };
        if self.mixed {
            // Set only when detection found a type; a line that tells none goes with the most lines' type.
            let primary = self.log_type.expect("a mixed input has a log type");
            let of = format::classify(&parsed).unwrap_or(primary);
            let part = match self.parts.iter().position(|p| p.log_type == Some(of)) {
                Some(i) => &mut self.parts[i],
                None => {
                    self.parts.push(Aggregate::new(Options {
                        log_type: Some(of),
                        per_line_type: false,
                        ..self.opts
                    }));
                    self.parts.last_mut().expect("just pushed")
                }
            };
            part.lines += 1;
            return part.add_parsed(&parsed, prefix_time, line);
        }
        self.add_parsed(&parsed, prefix_time, line);
    }

    fn add_parsed(&mut self, parsed: &format::Line<'_>, prefix_time: Option<f64>, line: &[u8]) {
        let Some(log_type) = self.log_type else {
            return self.reject(Rejection::Skip("unknown_format"), line);
        };
        match format::extract(parsed, log_type, prefix_time) {
            Ok(rec) => self.add_record(&rec, line),
            Err(r) => self.reject(r, line),
        }
    }

    fn add_record(&mut self, rec: &Record<'_>, line: &[u8]) {
        self.start_time = min_opt(self.start_time, rec.time);
        self.end_time = max_opt(self.end_time, rec.time);
        for (i, c) in rec.components.iter().enumerate() {
            self.components_seen |= u8::from(c.is_some()) << i;
        }
        let bs = self.opts.bucket_seconds;
        let bucket = match rec.time {
            Some(t) if bs > 0 => (t.floor() as i64).div_euclid(bs) * bs,
            _ => 0,
        };
        self.key_buf.clear();
        self.key_buf.push_str(rec.key.0);
        self.key_buf.push_str(rec.key.1);
        self.key_buf.push_str(rec.key.2);
        storable(&mut self.key_buf);
        let exact = self.opts.exact;
        self.groups
            .entry(bucket)
            .or_default()
            .entry_ref(self.key_buf.as_str())
            .or_insert_with(|| KeyAcc::new(exact))
            .add(rec);
        if self.opts.top {
            self.mem_seen |= rec.mem_bytes.is_some();
            for (map, dim) in self.top.entry(bucket).or_default().iter_mut().zip(rec.dims) {
                map.entry_ref(dim.unwrap_or("(none)")).or_default().add(rec);
            }
        }
        if self.opts.errors {
            if let Some(f) = &rec.failure {
                let e = self
                    .errors
                    .entry((bucket, f.label()))
                    .or_insert_with(|| ErrorAcc {
                        count: 0,
                        first_time: None,
                        last_time: None,
                        key: self.key_buf.clone(),
                        sample: sample_of(line, ERROR_SAMPLE_BYTES),
                        events: Vec::new(),
                    });
                if e.count > 0 && earlier(rec.time, e.first_time) {
                    e.key.clone_from(&self.key_buf);
                    e.sample = sample_of(line, ERROR_SAMPLE_BYTES);
                }
                e.count += 1;
                // Checked first so that an event too late to keep costs no allocation.
                if event_slot(&e.events, rec.time) < EVENTS_PER_ERROR {
                    let ev = ErrorEvent {
                        time: rec.time,
                        correlation_id: rec.correlation_id.map(str::to_owned),
                        key: self.key_buf.clone(),
                        user: rec.dims[0].map(str::to_owned),
                        project: rec.dims[1].map(str::to_owned),
                    };
                    keep_earliest(&mut e.events, ev);
                }
                e.first_time = min_opt(e.first_time, rec.time);
                e.last_time = max_opt(e.last_time, rec.time);
            }
        }
    }

    /// Fold `other` (parsed from input that came after ours) into this aggregate.
    pub fn merge(&mut self, mut other: Aggregate) {
        self.log_type = self.log_type.or(other.log_type);
        self.mixed |= other.mixed;
        for part in std::mem::take(&mut other.parts) {
            match self.parts.iter_mut().find(|p| p.log_type == part.log_type) {
                Some(mine) => mine.merge(part),
                None => self.parts.push(part),
            }
        }
        self.lines += other.lines;
        self.absorb(&mut other);
        for (bucket, keys) in other.groups {
            let mine = self.groups.entry(bucket).or_default();
            for (k, acc) in keys {
                match mine.get_mut(&k) {
                    Some(m) => m.merge(&acc),
                    None => {
                        mine.insert(k, acc);
                    }
                }
            }
        }
        for (bucket, dims) in other.top {
            for (mine, theirs) in self.top.entry(bucket).or_default().iter_mut().zip(dims) {
                for (k, t) in theirs {
                    mine.entry(k).or_default().merge(&t);
                }
            }
        }
        self.mem_seen |= other.mem_seen;
        for (k, e) in other.errors {
            match self.errors.get_mut(&k) {
                Some(m) => {
                    if earlier(e.first_time, m.first_time) {
                        (m.key, m.sample) = (e.key, e.sample);
                    }
                    m.count += e.count;
                    m.first_time = min_opt(m.first_time, e.first_time);
                    m.last_time = max_opt(m.last_time, e.last_time);
                    for ev in e.events {
                        keep_earliest(&mut m.events, ev);
                    }
                }
                None => {
                    self.errors.insert(k, e);
                }
            }
        }
    }

    /// `other`'s rejected lines, samples (up to [`SAMPLES_PER_REASON`] a reason), time span and components, taken
    /// into this aggregate's.
    fn absorb(&mut self, other: &mut Aggregate) {
        for (k, v) in std::mem::take(&mut other.bad) {
            *self.bad.entry(k).or_default() += v;
        }
        for (k, v) in std::mem::take(&mut other.skipped) {
            *self.skipped.entry(k).or_default() += v;
        }
        for (reason, sample) in std::mem::take(&mut other.samples) {
            if self.samples.iter().filter(|(r, _)| *r == reason).count() < SAMPLES_PER_REASON {
                self.samples.push((reason, sample));
            }
        }
        self.start_time = min_opt(self.start_time, other.start_time);
        self.end_time = max_opt(self.end_time, other.end_time);
        self.components_seen |= other.components_seen;
    }

    /// Per log type, its lines and per-key aggregates: this aggregate's own type (the one most head lines tell)
    /// first, the others by lines; the parts' rejections, samples, times and components are folded into this
    /// aggregate's (which keeps the total of lines).
    pub fn into_types(&mut self) -> Vec<TypeGroups> {
        let Some(primary) = self.log_type else {
            return Vec::new();
        };
        if !self.mixed {
            return vec![TypeGroups {
                log_type: primary,
                lines: self.lines,
                start_time: self.start_time,
                end_time: self.end_time,
                groups: std::mem::take(&mut self.groups),
            }];
        }
        // Lines not parsed far enough to tell a type count with the main one.
        let unrouted = self.lines - self.parts.iter().map(|p| p.lines).sum::<u64>();
        let mut out = Vec::new();
        for mut part in std::mem::take(&mut self.parts) {
            self.absorb(&mut part);
            out.push(TypeGroups {
                log_type: part.log_type.expect("a part has its log type"),
                lines: part.lines,
                start_time: part.start_time,
                end_time: part.end_time,
                groups: part.groups,
            });
        }
        match out.iter_mut().find(|t| t.log_type == primary) {
            Some(main) => main.lines += unrouted,
            None => out.push(TypeGroups {
                log_type: primary,
                lines: unrouted,
                start_time: None,
                end_time: None,
                groups: HashMap::new(),
            }),
        }
        out.sort_by_key(|t| (t.log_type != primary, std::cmp::Reverse(t.lines)));
        out
    }

    /// Names of the components some record carried.
    pub fn components(&self) -> Vec<&'static str> {
        COMPONENTS
            .iter()
            .enumerate()
            .filter(|(i, _)| self.components_seen & (1 << i) != 0)
            .map(|(_, c)| *c)
            .collect()
    }

    /// Seconds between the first and last timestamped record.
    pub fn span_seconds(&self) -> f64 {
        match (self.start_time, self.end_time) {
            (Some(a), Some(b)) => b - a,
            _ => 0.0,
        }
    }

    /// The seconds a count is divided by for its rate: the interval's width, or else the whole input's span.
    pub fn rate_span(&self) -> f64 {
        match self.opts.bucket_seconds {
            bs if bs > 0 => bs as f64,
            _ => self.span_seconds(),
        }
    }

    /// Per bucket, the resource use of all records: each counts once in every dimension, so the first's sum.
    pub fn top_totals(&self) -> Vec<(i64, TopAcc)> {
        self.top
            .iter()
            .map(|(&bucket, dims)| {
                let mut all = TopAcc::default();
                dims[0].values().for_each(|t| all.merge(t));
                (bucket, all)
            })
            .collect()
    }

    /// Exact (or sketched) statistics per key and bucket, and per bucket over all keys when `totals`.
    pub fn summaries(&mut self, totals: bool) -> Vec<Summary> {
        let bs = self.opts.bucket_seconds;
        let span = self.rate_span();
        let mut out = Vec::new();
        for (&bucket, keys) in &mut self.groups {
            let bucket_start = (bs > 0).then_some(bucket);
            if totals {
                let mut all = KeyAcc::new(self.opts.exact);
                for acc in keys.values() {
                    all.merge(acc);
                }
                out.push(Summary::of("TOTAL", bucket_start, &mut all, span));
            } else {
                for (k, acc) in keys.iter_mut() {
                    out.push(Summary::of(k, bucket_start, acc, span));
                }
            }
        }
        out.sort_by(|a, b| {
            a.bucket_start
                .cmp(&b.bucket_start)
                .then_with(|| a.key.cmp(&b.key))
        });
        out
    }

    pub fn dimension_index(name: &str) -> Option<usize> {
        DIMENSIONS.iter().position(|d| *d == name)
    }
}

/// The statistics of one key (or the total) in one bucket, all durations in ms.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub key: String,
    pub bucket_start: Option<i64>,
    pub count: u64,
    pub failed: u64,
    pub rps: f64,
    pub p99: f64,
    pub p95: f64,
    pub median: f64,
    pub max: f64,
    pub min: f64,
    pub stddev: f64,
    pub sum: f64,
    pub components: [f64; 5],
}

/// Requests per second: `count` over `span` seconds; NaN, no rate, over no span (no two records timed apart: one
/// line, or all in one second of Gitaly 12's whole-second times), which 0 would misstate as "no traffic".
pub fn rate(count: u64, span: f64) -> f64 {
    if span > 0.0 {
        count as f64 / span
    } else {
        f64::NAN
    }
}

/// Linear interpolation between closest ranks, rank = p·(n−1) (numpy "linear", R-7).
pub fn percentile_sorted(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = p * (sorted.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
}

impl Summary {
    fn of(key: &str, bucket_start: Option<i64>, acc: &mut KeyAcc, span: f64) -> Summary {
        let n = acc.count as f64;
        let mean = acc.sum / n;
        let (p99, p95, median, stddev) = match &acc.sketch {
            Some(s) => {
                let q = |p| s.quantile(p).unwrap_or(f64::NAN);
                (
                    q(0.99),
                    q(0.95),
                    q(0.5),
                    (acc.sumsq / n - mean * mean).max(0.0).sqrt(),
                )
            }
            None => {
                acc.values.sort_unstable_by(f64::total_cmp);
                let v = &acc.values;
                let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
                (
                    percentile_sorted(v, 0.99),
                    percentile_sorted(v, 0.95),
                    percentile_sorted(v, 0.5),
                    var.sqrt(),
                )
            }
        };
        Summary {
            key: key.to_owned(),
            bucket_start,
            count: acc.count,
            failed: acc.failed,
            rps: rate(acc.count, span),
            p99,
            p95,
            median,
            max: acc.max,
            min: acc.min,
            stddev,
            sum: acc.sum,
            components: acc.components,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_every_byte_and_ends_at_newlines() {
        let data = b"aa\nbbb\ncccc\nd\neeeee\n";
        for n in 1..6 {
            let parts = split_lines(data, n);
            assert_eq!(parts.concat(), data.to_vec());
            assert!(parts[..parts.len() - 1].iter().all(|p| p.ends_with(b"\n")));
        }
    }

    #[test]
    fn a_merge_keeps_the_earliest_events_ties_first_come() {
        let part = |events: &[(&str, Option<u32>)]| {
            let mut a = Aggregate::new(Options {
                log_type: Some(LogType::ProductionJson),
                errors: true,
                ..Options::default()
            });
            for (id, second) in events {
                let time = second.map_or(String::new(), |s| {
                    format!(r#","time":"2024-05-01T10:00:{s:02}Z""#)
                });
                let line = format!(
                    r#"{{"controller":"E","action":"a","status":500,"duration_s":0.1,"correlation_id":"{id}"{time}}}"#
                );
                a.feed(line.as_bytes());
            }
            a
        };
        let mut all = part(&[
            ("a", Some(9)),
            ("b", Some(3)),
            ("c", None),
            ("d", Some(8)),
            ("e", Some(7)),
        ]);
        all.merge(part(&[("f", Some(3)), ("g", Some(1)), ("h", Some(9))]));
        let group = all.errors.values().next().unwrap();
        let ids: Vec<_> = group
            .events
            .iter()
            .map(|e| e.correlation_id.as_deref().unwrap())
            .collect();
        assert_eq!(ids, ["g", "b", "f", "e", "d"]);
        assert!(
            group.sample.contains(r#""correlation_id":"g""#),
            "{}",
            group.sample
        );
    }

    #[test]
    fn a_line_too_long_counts_once_where_the_input_is_split_for_the_cores() {
        let good = br#"{"controller":"A","action":"b","duration_s":1}"#;
        let long = vec![b'x'; 3 * MAX_LINE_BYTES];
        let data = [&good[..], &long, good].join(&b'\n');
        let mut a = Aggregate::new(Options {
            log_type: Some(LogType::ProductionJson),
            ..Options::default()
        });
        a.feed(&data);
        assert_eq!((a.lines, a.bad.get("too_long")), (3, Some(&1)));
        assert_eq!(a.groups[&0]["A#b"].count, 2);
    }

    #[test]
    fn a_mixed_input_counts_each_line_under_its_own_type_split_or_not() {
        let prod =
            r#"{"subcomponent":"production_json","controller":"A","action":"b","duration_s":1}"#;
        let api = r#"{"subcomponent":"api_json","route":"/r","method":"GET","duration_s":1}"#;
        let data = [prod, api, prod, "not json", api, prod].join("\n");
        let mut one = Aggregate::new(Options {
            per_line_type: true,
            ..Options::default()
        });
        one.feed(data.as_bytes());
        // As `feed` splits a large input for the cores: parts fed apart from a template, then merged.
        let mut halves = Aggregate::new(Options {
            log_type: one.log_type,
            ..one.opts
        });
        halves.mixed = one.mixed;
        let mut second = halves.clone();
        let cut = data.find("not json").unwrap();
        halves.feed_serial(&data.as_bytes()[..cut]);
        second.feed_serial(&data.as_bytes()[cut..]);
        halves.merge(second);
        for mut a in [one, halves] {
            let types = a.into_types();
            let got: Vec<_> = types
                .iter()
                .map(|t| {
                    let count = t.groups.values().flat_map(|k| k.values()).map(|k| k.count);
                    (t.log_type, t.lines, count.sum::<u64>())
                })
                .collect();
            assert_eq!(
                got,
                [(LogType::ProductionJson, 4, 3), (LogType::ApiJson, 2, 2)]
            );
            assert_eq!(
                (a.lines, a.bad.get("not_json"), a.skipped.len()),
                (6, Some(&1), 0)
            );
        }
    }

    fn stored(key: &str) -> String {
        let mut key = key.to_owned();
        storable(&mut key);
        key
    }

    #[test]
    fn a_key_keeps_no_control_character_and_every_printable_one() {
        for key in [
            "Café#crème",
            "Rocket🚀#launch",
            "A\u{a0}B#c",
            "Ä\u{c0}ÿ#¢",
            "/api/:id",
            "日本#語",
        ] {
            assert_eq!(stored(key), key);
        }
        for c in [
            '\0', '\t', '\n', '\r', '\u{1b}', '\u{7f}', '\u{80}', '\u{85}', '\u{9b}', '\u{9f}',
        ] {
            assert_eq!(stored(&format!("A{c}B#c")), "A\u{FFFD}B#c", "{:?}", c);
        }
        assert_eq!(
            stored("X\u{1b}]8;;https://evil.example\u{1b}\\Users#show\u{1b}]8;;\u{1b}\\"),
            "X\u{FFFD}]8;;https://evil.example\u{FFFD}\\Users#show\u{FFFD}]8;;\u{FFFD}\\"
        );
    }

    #[test]
    fn a_key_past_the_limit_is_cut_at_a_character_after_its_control_characters_are_replaced() {
        let key = stored(&"é\n".repeat(MAX_KEY_BYTES));
        assert!(key.len() <= MAX_KEY_BYTES + '…'.len_utf8());
        assert!(key.ends_with('…') && !key.contains('\n'));
        assert!(key.starts_with("é\u{FFFD}é\u{FFFD}"));
    }

    #[test]
    fn a_line_with_control_characters_in_its_key_counts_under_the_replaced_key() {
        let mut a = Aggregate::new(Options {
            log_type: Some(LogType::ProductionJson),
            ..Options::default()
        });
        a.feed(br#"{"controller":"X\u001b[2JUsers\n","action":"show\u009b","duration_s":1}"#);
        let keys: Vec<_> = a.groups[&0].keys().map(|k| &**k).collect();
        assert_eq!(keys, ["X\u{FFFD}[2JUsers\u{FFFD}#show\u{FFFD}"]);
    }

    #[test]
    fn percentiles_interpolate() {
        let v = [13.4, 14.9, 40.9, 609_828.4];
        assert!((percentile_sorted(&v, 0.5) - 27.9).abs() < 1e-9);
        assert!((percentile_sorted(&v, 0.99) - 591_534.77).abs() < 0.01);
    }
}
