//! Arbitrary bytes fed to `aggregate::Aggregate` never panic, and what comes out adds up: every non-blank line
//! is counted once (as a record, a bad line or a skipped one, in this aggregate or in the per-log-type part it
//! was routed to), each key's summary has a count of at least one, no more failures than records, `min <= max`
//! and percentiles that are numbers, and `top_totals` counts every record of its bucket once. The first byte
//! picks the options: format (or detection, per line type or not), exact or sketched, time buckets, `top` and
//! `errors`.
#![no_main]

use _logparse::aggregate::{Aggregate, Options};
use _logparse::format::LogType;
use libfuzzer_sys::fuzz_target;

/// Records, bad and skipped lines of `a` alone, after checking its summaries.
fn check(a: &mut Aggregate) -> u64 {
    let per_key = a.summaries(false);
    let records: u64 = per_key.iter().map(|s| s.count).sum();
    for s in &per_key {
        assert!(s.count > 0, "{s:?}");
        assert!(s.failed <= s.count, "{s:?}");
        assert!(s.min <= s.max, "{s:?}");
        for v in [s.median, s.p95, s.p99, s.stddev, s.sum] {
            assert!(!v.is_nan(), "{s:?}");
        }
    }
    let totals = a.summaries(true);
    assert_eq!(totals.iter().map(|s| s.count).sum::<u64>(), records);
    if a.opts.top {
        for (bucket, all) in a.top_totals() {
            let in_bucket: u64 = a
                .groups
                .get(&bucket)
                .map_or(0, |keys| keys.values().map(|acc| acc.count).sum());
            assert_eq!(all.count, in_bucket, "bucket {bucket}");
        }
    }
    records + a.bad.values().sum::<u64>() + a.skipped.values().sum::<u64>()
}

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, data)) = data.split_first() else {
        return;
    };
    let detect = knobs & 4 != 0;
    let opts = Options {
        log_type: (!detect).then(|| LogType::ALL[usize::from(knobs & 3)]),
        per_line_type: detect && knobs & 1 != 0,
        exact: knobs & 8 != 0,
        bucket_seconds: [0, 1, 60, 3600][usize::from(knobs >> 4 & 3)],
        top: knobs & 0x40 != 0,
        errors: knobs & 0x80 != 0,
    };
    let mut a = Aggregate::new(opts);
    a.feed(data);

    let non_blank = data
        .split(|&b| b == b'\n')
        .filter(|l| !l.trim_ascii().is_empty())
        .count() as u64;
    assert_eq!(a.lines, non_blank);
    let mut accounted = check(&mut a);
    for part in &mut a.parts {
        let own = check(part);
        assert_eq!(part.lines, own, "{:?}", part.log_type);
        accounted += own;
    }
    assert_eq!(accounted, non_blank);
    let typed: u64 = a.into_types().iter().map(|t| t.lines).sum();
    if a.log_type.is_some() {
        assert_eq!(typed, non_blank);
    }
});
