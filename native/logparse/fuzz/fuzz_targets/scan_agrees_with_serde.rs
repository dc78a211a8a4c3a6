//! Differential: whatever the fast scanner (`scan::scan`) accepts, serde_json must accept too, reading the
//! same `format::Line`. The scanner may give up on anything (serde then decides), but it must never accept a
//! line serde rejects nor read a field differently — the property of `scan.rs`'s `agrees` unit test.
#![no_main]

use _logparse::format::Line;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|json: &[u8]| {
    let mut fast = Line::default();
    if _logparse::scan::scan(json, &mut fast).is_none() {
        return;
    }
    let slow = serde_json::from_slice::<Line>(json);
    assert_eq!(
        Some(&fast),
        slow.as_ref().ok(),
        "scan and serde_json disagree on {:?}: {:?}",
        String::from_utf8_lossy(json),
        slow.as_ref().err(),
    );
});
