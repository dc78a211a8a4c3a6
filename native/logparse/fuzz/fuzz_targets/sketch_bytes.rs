//! `sketch::Sketch::from_bytes` on arbitrary bytes never panics. When the bytes decode, `to_bytes` then
//! `from_bytes` gives back a sketch with the same count and quantiles, and merging it with itself doubles its
//! count. The input is also cut in two (at the position its last byte names) and both halves, when they
//! decode, are merged as `merge_sketches(a, b)` does for the analyzer: that must not panic either.
#![no_main]

use _logparse::sketch::Sketch;
use libfuzzer_sys::fuzz_target;

const QS: [f64; 5] = [0.0, 0.5, 0.95, 0.99, 1.0];

fn quantile_bits(s: &Sketch) -> Vec<Option<u64>> {
    QS.iter()
        .map(|&q| s.quantile(q).map(f64::to_bits))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = Sketch::from_bytes(data) {
        let bytes = s.to_bytes();
        let again = Sketch::from_bytes(&bytes).expect("a sketch's own bytes decode");
        assert_eq!(again.count(), s.count());
        assert_eq!(quantile_bits(&again), quantile_bits(&s));
        assert_eq!(again.to_bytes(), bytes, "encoding is canonical");
        if let Some(doubled) = s.count().checked_mul(2) {
            let mut twice = s.clone();
            twice.merge(&s);
            assert_eq!(twice.count(), doubled);
        }
    }
    if let Some((&cut, rest)) = data.split_last() {
        let (a, b) = rest.split_at(usize::from(cut).min(rest.len()));
        if let (Ok(mut a), Ok(b)) = (Sketch::from_bytes(a), Sketch::from_bytes(b)) {
            if let Some(sum) = a.count().checked_add(b.count()) {
                a.merge(&b);
                assert_eq!(a.count(), sum);
                let _ = a.to_bytes();
            }
        }
    }
});
