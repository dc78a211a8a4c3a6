//! A fast path for the common line: one pass over a JSON object that reads the fields we need and skips the
//! rest without building anything. It validates as it goes; whenever a line is unusual (escapes in a key or
//! a needed string, control bytes, duplicate fields, deep nesting, out-of-range numbers) it gives up and
//! `format::parse_json` falls back to serde_json, which decides. So it never accepts what serde_json rejects.
use std::borrow::Cow;

use crate::format::{Line, Val};

/// Nesting deeper than this goes to serde_json (whose own limit is 128).
const MAX_DEPTH: u32 = 64;

/// Lines up to this many bytes keep their bitmaps on the stack; longer ones (rare) allocate.
const STACK_WORDS: usize = 64;

/// Whether a line holds any raw control byte, or any byte that is not ASCII.
#[derive(Debug, Default, PartialEq)]
struct Classes {
    control: bool,
    non_ascii: bool,
}

/// One pass over a line, sixty-four bytes at a time (SSE2, part of the x86_64 baseline): bit `i % 64` of
/// `special[i / 64]` is set when byte `i` is `"` or `\\` (`special` has one word per 64 bytes of `b`, rounded
/// up), and the line's [`Classes`] come back. The bitmap replaces a search per string: the scanner finds the end
/// of each string with a shift and a trailing-zero count, the first step of simdjson's design without its full
/// structural index.
fn classify(b: &[u8], special: &mut [u64]) -> Classes {
    debug_assert_eq!(special.len(), b.len().div_ceil(64));
    let (blocks, tail) = b.split_at(b.len() - b.len() % 64);
    let mut odd = 0u64;
    for (word, block) in special.iter_mut().zip(blocks.chunks_exact(64)) {
        let (m, o) = block64(block.try_into().expect("64 bytes"));
        *word = m;
        odd |= o;
    }
    if !tail.is_empty() {
        // Spaces are none of the three kinds, so padding with them changes nothing.
        let mut last = [b' '; 64];
        last[..tail.len()].copy_from_slice(tail);
        let (m, o) = block64(&last);
        special[blocks.len() / 64] = m;
        odd |= o;
    }
    Classes {
        control: odd & 1 != 0,
        non_ascii: odd & 2 != 0,
    }
}

/// The `"`/`\\` bitmap of one 64-byte block, and bit 0/1 set for a control/non-ASCII byte in it.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn block64(block: &[u8; 64]) -> (u64, u64) {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8, _mm_setzero_si128,
    };
    // SAFETY: SSE2 is always available on x86_64; the four 16-byte loads lie within `block`.
    unsafe {
        let quote = _mm_set1_epi8(b'"' as i8);
        let backslash = _mm_set1_epi8(b'\\' as i8);
        let below_space = _mm_set1_epi8(0x1f);
        let mut special = 0u64;
        let mut control = _mm_setzero_si128();
        let mut high = _mm_setzero_si128();
        for k in 0..4 {
            let v = _mm_loadu_si128(block.as_ptr().add(16 * k).cast());
            let hits = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash));
            special |= u64::from(_mm_movemask_epi8(hits) as u16) << (16 * k);
            // v <= 0x1f unsigned exactly when min(v, 0x1f) == v.
            control = _mm_or_si128(control, _mm_cmpeq_epi8(_mm_min_epu8(v, below_space), v));
            high = _mm_or_si128(high, v);
        }
        let odd = u64::from(_mm_movemask_epi8(control) != 0)
            | u64::from(_mm_movemask_epi8(high) != 0) << 1;
        (special, odd)
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn block64(block: &[u8; 64]) -> (u64, u64) {
    let mut special = 0u64;
    let mut odd = 0u64;
    for (i, &c) in block.iter().enumerate() {
        special |= u64::from(c == b'"' || c == b'\\') << i;
        odd |= u64::from(c < 0x20) | u64::from(c >= 0x80) << 1;
    }
    (special, odd)
}

struct Scanner<'a, 's> {
    b: &'a [u8],
    pos: usize,
    /// The `"`/`\\` bitmap of `b`, from [`classify`].
    special: &'s [u64],
}

/// Parse `json` into `line` (which must be empty), or `None` to let serde_json handle it (`line` is then
/// partly filled). Filling the caller's `Line` in place saves copying its ~1 KB per line.
pub fn scan<'a>(json: &'a [u8], line: &mut Line<'a>) -> Option<()> {
    let words = json.len().div_ceil(64);
    let mut stack = [0u64; STACK_WORDS];
    let mut heap = Vec::new();
    let special = if words <= STACK_WORDS {
        &mut stack[..words]
    } else {
        heap.resize(words, 0);
        &mut heap[..]
    };
    let classes = classify(json, special);
    // Raw control bytes are only valid JSON as whitespace outside strings; rare enough to leave to serde.
    if classes.control || (classes.non_ascii && std::str::from_utf8(json).is_err()) {
        return None;
    }
    let mut s = Scanner {
        b: json,
        pos: 0,
        special,
    };
    s.expect(b'{')?;
    s.ws();
    if s.peek()? == b'}' {
        s.pos += 1;
    } else {
        loop {
            s.expect(b'"')?;
            let key = s.plain_string()?;
            s.ws();
            s.expect(b':')?;
            s.ws();
            match line.slot(key) {
                Some(slot) => {
                    if !matches!(slot, Val::Missing) {
                        return None;
                    }
                    *slot = s.value()?;
                }
                None => s.skip_value(0, false)?,
            }
            s.ws();
            match s.next()? {
                b',' => s.ws(),
                b'}' => break,
                _ => return None,
            }
        }
    }
    s.ws();
    (s.pos == s.b.len()).then_some(())
}

impl<'a> Scanner<'a, '_> {
    /// The bytes between two ASCII delimiters as text.
    fn text(&self, start: usize, end: usize) -> &'a str {
        let bytes = &self.b[start..end];
        debug_assert!(std::str::from_utf8(bytes).is_ok());
        // SAFETY: `scan` checked the whole line is UTF-8, and `start`/`end` sit next to ASCII delimiters
        // (quotes, digits, signs), so they are char boundaries. Re-validating each short slice cost ~20%.
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    fn ws(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    /// Index of the first `"` or `\\` at or after `from`.
    #[inline]
    fn find_special(&self, from: usize) -> Option<usize> {
        let mut w = from / 64;
        let mut m = *self.special.get(w)? & (u64::MAX << (from % 64));
        while m == 0 {
            w += 1;
            m = *self.special.get(w)?;
        }
        Some(w * 64 + m.trailing_zeros() as usize)
    }

    /// The rest of a string without escapes (the opening quote consumed); `None` if it has one.
    fn plain_string(&mut self) -> Option<&'a str> {
        let start = self.pos;
        let end = self.find_special(start)?;
        if self.b[end] != b'"' {
            return None;
        }
        self.pos = end + 1;
        Some(self.text(start, end))
    }

    /// Skip the rest of a string (the opening quote consumed), checking its escapes.
    fn skip_string(&mut self) -> Option<()> {
        loop {
            let i = self.find_special(self.pos)?;
            self.pos = i + 1;
            if self.b[i] == b'"' {
                return Some(());
            }
            match self.next()? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                // Like serde_json when it ignores a string: four hex digits, whatever code point they make.
                b'u' => {
                    let hex = self.b.get(self.pos..self.pos + 4)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    self.pos += 4;
                }
                _ => return None,
            }
        }
    }

    fn number(&mut self) -> Option<&'a str> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.next()? {
            b'0' => {}
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.one_or_more_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            self.one_or_more_digits()?;
        }
        Some(self.text(start, self.pos))
    }

    /// A number's value in one pass. Up to 19 digits without an exponent are read as an integer and scaled by
    /// an exact power of ten: when both are exact in an f64, one correctly rounded division gives the same
    /// result as a full decimal parse (Clinger's fast path). Anything else goes to `str::parse`.
    fn number_value(&mut self) -> Option<f64> {
        const POW10: [f64; 23] = [
            1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
            1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
        ];
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        self.pos += usize::from(negative);
        let mut digits = self.digit_run();
        if digits == 0 || (digits > 1 && self.peek() == Some(b'0')) {
            return None;
        }
        let mut mantissa = self.fold_digits(0, digits);
        let mut scale = 0;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            scale = self.digit_run();
            if scale == 0 {
                return None;
            }
            mantissa = self.fold_digits(mantissa, scale);
            digits += scale;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            self.one_or_more_digits()?;
        } else if digits <= 19 && mantissa <= 1 << 53 && scale < POW10.len() {
            let v = mantissa as f64 / POW10[scale];
            return Some(if negative { -v } else { v });
        }
        self.text(start, self.pos).parse().ok()
    }

    fn digits(&mut self) {
        self.pos += self.digit_run();
    }

    /// How many ASCII digits start at `pos`, eight bytes at a time: one branch per number rather than one
    /// per digit (the loop's exit was a misprediction on most numbers).
    #[inline]
    fn digit_run(&self) -> usize {
        let mut n = 0;
        loop {
            let at = self.pos + n;
            let Some(word) = self.b.get(at..at + 8) else {
                return n + self.b[at..]
                    .iter()
                    .take_while(|c| c.is_ascii_digit())
                    .count();
            };
            // Each byte minus '0' (by xor) is 0..=9 for a digit; adding 0x76 to the low seven bits carries
            // into the top bit from 10 up, and bytes already that high keep it: top bits mark non-digits.
            let x =
                u64::from_le_bytes(word.try_into().expect("eight bytes")) ^ 0x3030_3030_3030_3030;
            let non_digits =
                (((x & 0x7f7f_7f7f_7f7f_7f7f) + 0x7676_7676_7676_7676) | x) & 0x8080_8080_8080_8080;
            if non_digits != 0 {
                return n + (non_digits.trailing_zeros() / 8) as usize;
            }
            n += 8;
        }
    }

    /// Fold the `n` digits at `pos` into `mantissa` (wrapping; callers bound the count) and move past them.
    #[inline]
    fn fold_digits(&mut self, mantissa: u64, n: usize) -> u64 {
        let digits = &self.b[self.pos..self.pos + n];
        self.pos += n;
        digits.iter().fold(mantissa, |m, &c| {
            m.wrapping_mul(10).wrapping_add(u64::from(c - b'0'))
        })
    }

    fn one_or_more_digits(&mut self) -> Option<()> {
        let start = self.pos;
        self.digits();
        (self.pos > start).then_some(())
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.pos + word.len();
        (self.b.get(self.pos..end)? == word).then(|| self.pos = end)
    }

    /// A value of a field we read.
    fn value(&mut self) -> Option<Val<'a>> {
        match self.peek()? {
            b'"' => {
                self.pos += 1;
                Some(Val::Str(Cow::Borrowed(self.plain_string()?)))
            }
            b'n' => self.literal(b"null").map(|()| Val::Null),
            b't' => self.literal(b"true").map(|()| Val::Other),
            b'f' => self.literal(b"false").map(|()| Val::Other),
            // serde_json reads the keys of an object here as strings (which checks their `\u` escapes make
            // code points), not as ignored values: give up on a key with an escape.
            b'[' | b'{' => self.skip_value(0, true).map(|()| Val::Other),
            _ => {
                let v = self.number_value()?;
                // serde_json rejects numbers beyond f64's range; let it say so.
                v.is_finite().then_some(Val::Num(v))
            }
        }
    }

    /// Skip a value; with `plain_keys`, give up on an escape in the keys of the object it is (not deeper).
    fn skip_value(&mut self, depth: u32, plain_keys: bool) -> Option<()> {
        match self.next()? {
            b'"' => self.skip_string(),
            b'n' => {
                self.pos -= 1;
                self.literal(b"null")
            }
            b't' => {
                self.pos -= 1;
                self.literal(b"true")
            }
            b'f' => {
                self.pos -= 1;
                self.literal(b"false")
            }
            open @ (b'[' | b'{') => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                let close = if open == b'[' { b']' } else { b'}' };
                self.ws();
                if self.peek()? == close {
                    self.pos += 1;
                    return Some(());
                }
                loop {
                    if open == b'{' {
                        self.expect(b'"')?;
                        if plain_keys {
                            self.plain_string()?;
                        } else {
                            self.skip_string()?;
                        }
                        self.ws();
                        self.expect(b':')?;
                        self.ws();
                    }
                    self.skip_value(depth + 1, false)?;
                    self.ws();
                    match self.next()? {
                        b',' => self.ws(),
                        c if c == close => return Some(()),
                        _ => return None,
                    }
                }
            }
            _ => {
                self.pos -= 1;
                self.number().map(|_| ())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(json: &[u8]) -> Option<Line<'_>> {
        let mut line = Line::default();
        super::scan(json, &mut line).map(|()| line)
    }

    const FIXTURES: [&[u8]; 4] = [
        include_bytes!("../../../tests/fixtures/logs/production_json.log"),
        include_bytes!("../../../tests/fixtures/logs/api_json.log"),
        include_bytes!("../../../tests/fixtures/logs/gitaly.log"),
        include_bytes!("../../../tests/fixtures/logs/sidekiq.log"),
    ];
    const ODD: [&[u8]; 22] = [
        b"null",
        b"1e309",
        b"-0.5e-3",
        b"01",
        b"1.",
        b"\"\\ud800\"",
        b"\"\\u00e9\"",
        b"\"a\\qb\"",
        b"[1,[2,{}]]",
        b"{\"a\":[]}",
        b"true",
        b"tru",
        b"\"\\\"\"",
        b"18446744073709551616",
        b"-",
        b"\"\xc3\xa9\"",
        b"{\"\\u0041\":1}",
        b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
        b"1E+2",
        b"-0",
        b"\"\\uZZZZ\"",
        b" 1 ",
    ];

    /// Whatever the fast path accepts, serde_json must accept with the same result.
    fn agrees(json: &[u8]) {
        if let Some(fast) = scan(json) {
            let slow = serde_json::from_slice::<Line>(json);
            assert_eq!(
                Some(&fast),
                slow.as_ref().ok(),
                "{}",
                String::from_utf8_lossy(json)
            );
        }
    }

    #[test]
    fn fast_path_takes_the_fixture_lines() {
        let lines: Vec<&[u8]> = FIXTURES
            .iter()
            .flat_map(|f| f.split(|&b| b == b'\n'))
            .collect();
        let taken = lines
            .iter()
            .filter(|l| l.first() == Some(&b'{') && scan(l).is_some())
            .count();
        assert!(taken >= 25, "{taken}");
        lines.iter().for_each(|l| agrees(l));
    }

    #[test]
    fn agrees_with_serde_on_mutated_lines() {
        let lines: Vec<&[u8]> = FIXTURES
            .iter()
            .flat_map(|f| f.split(|&b| b == b'\n'))
            .filter(|l| l.first() == Some(&b'{'))
            .collect();
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        let mut rand = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for _ in 0..100_000 {
            let mut l = lines[rand(lines.len())].to_vec();
            for _ in 0..=rand(3) {
                let pos = rand(l.len());
                match rand(3) {
                    0 => l[pos] = b"{}[]\",:\\ 0e-.nu"[rand(15)],
                    1 => l.truncate(pos),
                    _ => {
                        let colon = l[pos..]
                            .iter()
                            .position(|&b| b == b':')
                            .map(|i| pos + i + 1);
                        let end = colon
                            .and_then(|c| l[c..].iter().position(|&b| b == b',').map(|i| c + i));
                        if let (Some(c), Some(e)) = (colon, end) {
                            l.splice(c..e, ODD[rand(ODD.len())].iter().copied());
                        }
                    }
                }
                if l.is_empty() {
                    break;
                }
            }
            agrees(&l);
        }
    }

    #[test]
    fn classifies_every_byte_at_any_length() {
        let mut seed = 0x2545_F491_4F6C_DD1D_u64;
        for len in 0..300_usize {
            for _ in 0..20 {
                let b: Vec<u8> = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        b"ab\"\\ \x1f\x00\x7f\x80\xff"[(seed % 10) as usize]
                    })
                    .collect();
                let mut special = vec![0u64; len.div_ceil(64)];
                let classes = classify(&b, &mut special);
                let want = Classes {
                    control: b.iter().any(|&c| c < 0x20),
                    non_ascii: !b.is_ascii(),
                };
                assert_eq!(classes, want, "{b:?}");
                let s = Scanner {
                    b: &b,
                    pos: 0,
                    special: &special,
                };
                for from in 0..=len {
                    let naive = b[from..]
                        .iter()
                        .position(|&c| c == b'"' || c == b'\\')
                        .map(|i| from + i);
                    assert_eq!(s.find_special(from), naive, "{b:?} from {from}");
                }
            }
        }
    }

    #[test]
    fn counts_digit_runs_next_to_every_byte() {
        for c in 0..=255u8 {
            for at in 0..20 {
                let mut b = b"12345678901234567890".to_vec();
                b[at] = c;
                let s = Scanner {
                    b: &b,
                    pos: 0,
                    special: &[],
                };
                let want = b.iter().take_while(|c| c.is_ascii_digit()).count();
                assert_eq!(s.digit_run(), want, "byte {c} at {at}");
            }
        }
    }

    #[test]
    fn reads_numbers_as_str_parse_does() {
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        let mut rand = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut cases: Vec<String> = [
            "0",
            "-0",
            "0.5",
            "9007199254740992",
            "9007199254740993",
            "1234567890123456789",
            "12345678901234567890",
            "0.1",
            "0.30000000000000004",
            "1e5",
            "2.5E-3",
            "123.4567890123456789012",
        ]
        .map(String::from)
        .to_vec();
        for _ in 0..100_000 {
            let (int_digits, frac_digits) = (rand(12) as u32 + 1, rand(12) as u32 + 1);
            let int = rand(10u64.pow(int_digits));
            let frac = rand(10u64.pow(frac_digits));
            let zeros = "0".repeat(rand(6) as usize);
            let sign = if rand(4) == 0 { "-" } else { "" };
            cases.push(format!("{sign}{int}.{zeros}{frac}"));
            cases.push(format!("{sign}{int}"));
        }
        for case in cases {
            let mut s = Scanner {
                b: case.as_bytes(),
                pos: 0,
                special: &[],
            };
            let got = s.number_value();
            assert_eq!(
                got.map(f64::to_bits),
                case.parse::<f64>().ok().map(f64::to_bits),
                "{case}"
            );
            assert_eq!(s.pos, case.len(), "{case}");
        }
    }

    #[test]
    fn reads_long_numbers_as_serde_does() {
        // Found by `fuzz/` (scan_agrees_with_serde): past u64, or with more digits than the fast path takes, the
        // scanner rounds correctly (`str::parse`) and so must serde_json (its `float_roundtrip` feature).
        for n in [
            "200666666666666666666",
            "2006666666666666666666666666666666666666666666666666666666",
            "9007199254740993.000000000000000001",
            "1.00000000000000011102230246251565404236316680908203125",
            "123456789012345678901234e-30",
        ] {
            agrees(format!(r#"{{"status":{n}}}"#).as_bytes());
        }
    }

    #[test]
    fn agrees_on_escaped_keys_in_an_object_we_read() {
        // Found by review and confirmed with `fuzz/`'s scan_agrees_with_serde: serde_json checks the escapes of
        // the keys of an object that is a read field's value (it reads them as strings), and of no other keys.
        for json in [
            &br#"{"time":{"\ud800":1}}"#[..],
            br#"{"time":{"\ud800\u0041":1}}"#,
            br#"{"time":{"\u00e9":1},"status":200}"#,
            br#"{"time":{"a":{"\ud800":1}}}"#,
            br#"{"time":[{"\ud800":1}]}"#,
            br#"{"other":{"\ud800":1}}"#,
        ] {
            agrees(json);
        }
        assert!(scan(br#"{"time":{"a":{"\ud800":1}},"other":{"\ud800":1}}"#).is_some());
    }

    #[test]
    fn gives_up_on_what_serde_must_decide() {
        for odd in [
            &br#"{"time":"a\u0041"}"#[..],
            br#"{"time":1,"time":2}"#,
            br#"{"controller":1e309}"#,
            b"{\"a\":\"\t\"}",
            br#"{"a":1} x"#,
        ] {
            assert!(scan(odd).is_none(), "{}", String::from_utf8_lossy(odd));
        }
    }
}
