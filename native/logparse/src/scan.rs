//! A fast path for the common line: one pass over a JSON object that reads the fields we need and skips the
//! rest without building anything. It validates as it goes; whenever a line is unusual (escapes in a key or
//! a needed string, control bytes, duplicate fields, deep nesting, out-of-range numbers) it gives up and
//! `format::parse_json` falls back to serde_json, which decides. So it never accepts what serde_json rejects.
use std::borrow::Cow;

use crate::format::{Line, Val};

/// Nesting deeper than this goes to serde_json (whose own limit is 128).
const MAX_DEPTH: u32 = 64;

/// Index of the first `"` or `\\` in `b`, sixteen bytes at a time with SSE2 (part of the x86_64 baseline, so
/// no runtime detection): strings in log lines are short, and this beats `memchr2`'s per-call setup on them.
#[cfg(target_arch = "x86_64")]
fn quote_or_backslash(b: &[u8]) -> Option<usize> {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    let mut i = 0;
    // SAFETY: SSE2 is always available on x86_64; each unaligned 16-byte load lies within `b`.
    unsafe {
        let quote = _mm_set1_epi8(b'"' as i8);
        let backslash = _mm_set1_epi8(b'\\' as i8);
        while i + 16 <= b.len() {
            let v = _mm_loadu_si128(b.as_ptr().add(i).cast());
            let hits = _mm_movemask_epi8(_mm_or_si128(
                _mm_cmpeq_epi8(v, quote),
                _mm_cmpeq_epi8(v, backslash),
            ));
            if hits != 0 {
                return Some(i + hits.trailing_zeros() as usize);
            }
            i += 16;
        }
    }
    quote_or_backslash_swar(&b[i..]).map(|j| i + j)
}

#[cfg(not(target_arch = "x86_64"))]
fn quote_or_backslash(b: &[u8]) -> Option<usize> {
    quote_or_backslash_swar(b)
}

/// The same, eight bytes at a time in a `u64`.
fn quote_or_backslash_swar(b: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has = |w: u64, c: u8| {
        let x = w ^ (ONES * u64::from(c));
        x.wrapping_sub(ONES) & !x & HIGHS
    };
    let mut i = 0;
    while i + 8 <= b.len() {
        let w = u64::from_le_bytes(b[i..i + 8].try_into().expect("eight bytes"));
        let hit = has(w, b'"') | has(w, b'\\');
        if hit != 0 {
            return Some(i + (hit.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    b[i..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\')
        .map(|j| i + j)
}

struct Scanner<'a> {
    b: &'a [u8],
    pos: usize,
}

/// Parse `json` into a [`Line`], or `None` to let serde_json handle it.
pub fn scan(json: &[u8]) -> Option<Line<'_>> {
    // Raw control bytes are only valid JSON as whitespace outside strings; rare enough to leave to serde.
    if json.iter().fold(false, |acc, &c| acc | (c < 0x20))
        || !(json.is_ascii() || std::str::from_utf8(json).is_ok())
    {
        return None;
    }
    let mut s = Scanner { b: json, pos: 0 };
    let mut line = Line::default();
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
                None => s.skip_value(0)?,
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
    (s.pos == s.b.len()).then_some(line)
}

impl<'a> Scanner<'a> {
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

    /// The rest of a string without escapes (the opening quote consumed); `None` if it has one.
    fn plain_string(&mut self) -> Option<&'a str> {
        let start = self.pos;
        let end = start + quote_or_backslash(&self.b[start..])?;
        if self.b[end] != b'"' {
            return None;
        }
        self.pos = end + 1;
        Some(self.text(start, end))
    }

    /// Skip the rest of a string (the opening quote consumed), checking its escapes.
    fn skip_string(&mut self) -> Option<()> {
        loop {
            let i = self.pos + quote_or_backslash(&self.b[self.pos..])?;
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

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
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
            b'[' | b'{' => self.skip_value(0).map(|()| Val::Other),
            _ => {
                let v: f64 = self.number()?.parse().ok()?;
                // serde_json rejects numbers beyond f64's range; let it say so.
                v.is_finite().then_some(Val::Num(v))
            }
        }
    }

    fn skip_value(&mut self, depth: u32) -> Option<()> {
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
                        self.skip_string()?;
                        self.ws();
                        self.expect(b':')?;
                        self.ws();
                    }
                    self.skip_value(depth + 1)?;
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
    fn finds_the_first_quote_or_backslash_at_any_offset() {
        for len in 0..40 {
            for at in 0..=len {
                let mut b = vec![b'a'; len];
                if at < len {
                    b[at] = if at % 2 == 0 { b'"' } else { b'\\' };
                }
                let want = (at < len).then_some(at);
                assert_eq!(quote_or_backslash(&b), want, "len {len} at {at}");
                assert_eq!(quote_or_backslash_swar(&b), want, "len {len} at {at}");
            }
        }
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
