//! `time::parse_iso` never panics on arbitrary bytes, and what it accepts is a finite number of seconds.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(t) = _logparse::time::parse_iso(data) {
        assert!(t.is_finite(), "{t}");
    }
});
