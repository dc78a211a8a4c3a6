//! A mergeable quantile sketch (DDSketch with a dense, collapsing-free store) with relative error ≤ 1%.
//!
//! Bucket `i` holds values in `(γ^(i-1), γ^i]` with `γ = (1+α)/(1-α)`; answering with `2γ^i/(γ+1)` is within
//! `α` of every value in the bucket. Merging adds bucket counts, so it is exact, commutative and associative:
//! `merge(sketch(a), sketch(b))` serialises to the same bytes as `sketch(a ++ b)`.

/// Relative accuracy guaranteed for every quantile.
pub const RELATIVE_ACCURACY: f64 = 0.01;
/// Values at or below this (ms) count as zero; 1 ns is below any timing GitLab logs.
const MIN_VALUE: f64 = 1e-6;
/// Values are clamped here (ms, ~31 years) so a hostile line cannot make the store huge.
const MAX_VALUE: f64 = 1e12;
const FORMAT_VERSION: u8 = 1;
/// Bins a valid sketch can have between MIN_VALUE and MAX_VALUE, with margin.
const MAX_BINS: u64 = 4096;

fn gamma() -> f64 {
    (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)
}

/// Why bytes could not be read as a sketch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub &'static str);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid sketch: {}", self.0)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sketch {
    count: u64,
    zero_count: u64,
    min: f64,
    max: f64,
    offset: i32,
    bins: Vec<u64>,
    ln_gamma: f64,
}

impl Default for Sketch {
    fn default() -> Self {
        Self::new()
    }
}

impl Sketch {
    pub fn new() -> Self {
        Self {
            count: 0,
            zero_count: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            offset: 0,
            bins: Vec::new(),
            ln_gamma: gamma().ln(),
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn min(&self) -> Option<f64> {
        (self.count > 0).then_some(self.min)
    }

    pub fn max(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max)
    }

    fn index(&self, v: f64) -> i32 {
        (v.ln() / self.ln_gamma).ceil() as i32
    }

    fn value(&self, index: i32) -> f64 {
        let g = gamma();
        2.0 * (self.ln_gamma * f64::from(index)).exp() / (1.0 + g)
    }

    pub fn add(&mut self, v: f64) {
        // NaN and negatives land in the zero bucket rather than poisoning min/max.
        let v = if v.is_nan() {
            0.0
        } else {
            v.clamp(0.0, MAX_VALUE)
        };
        self.count += 1;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        if v <= MIN_VALUE {
            self.zero_count += 1;
            return;
        }
        let i = self.index(v);
        self.add_to_bin(i, 1);
    }

    fn add_to_bin(&mut self, i: i32, n: u64) {
        if self.bins.is_empty() {
            self.offset = i;
            self.bins.push(0);
        } else if i < self.offset {
            let grow = (self.offset - i) as usize;
            self.bins.splice(0..0, std::iter::repeat_n(0, grow));
            self.offset = i;
        } else if (i - self.offset) as usize >= self.bins.len() {
            self.bins.resize((i - self.offset) as usize + 1, 0);
        }
        self.bins[(i - self.offset) as usize] += n;
    }

    pub fn merge(&mut self, other: &Sketch) {
        if other.count == 0 {
            return;
        }
        self.count += other.count;
        self.zero_count += other.zero_count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        for (j, &n) in other.bins.iter().enumerate() {
            if n > 0 {
                self.add_to_bin(other.offset + j as i32, n);
            }
        }
    }

    /// The `q` quantile with the exact statistics' definition (linear interpolation between the values at
    /// ranks ⌊q·(n−1)⌋ and ⌈q·(n−1)⌉), each value within relative error α, so the result is too; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let rank = q * (self.count - 1) as f64;
        let (lo, hi) = (rank.floor(), rank.ceil());
        let (a, b) = (self.value_at_rank(lo as u64), self.value_at_rank(hi as u64));
        Some(a + (b - a) * (rank - lo))
    }

    /// The (approximate) value of the `rank`-th smallest item, 0-based.
    fn value_at_rank(&self, rank: u64) -> f64 {
        let mut seen = self.zero_count;
        if seen > rank {
            return self.min;
        }
        for (j, &n) in self.bins.iter().enumerate() {
            seen += n;
            if seen > rank {
                return self.value(self.offset + j as i32).clamp(self.min, self.max);
            }
        }
        self.max
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let first = self.bins.iter().position(|&n| n > 0);
        let last = self.bins.iter().rposition(|&n| n > 0);
        let (lo, hi) = match (first, last) {
            (Some(a), Some(b)) => (a, b + 1),
            _ => (0, 0),
        };
        let mut out = Vec::with_capacity(40 + (hi - lo) * 2);
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&RELATIVE_ACCURACY.to_le_bytes());
        put_varint(&mut out, self.count);
        put_varint(&mut out, self.zero_count);
        let (min, max) = if self.count > 0 {
            (self.min, self.max)
        } else {
            (0.0, 0.0)
        };
        out.extend_from_slice(&min.to_le_bytes());
        out.extend_from_slice(&max.to_le_bytes());
        let offset = self.offset + lo as i32;
        put_varint(&mut out, ((offset << 1) ^ (offset >> 31)) as u32 as u64);
        put_varint(&mut out, (hi - lo) as u64);
        for &n in &self.bins[lo..hi] {
            put_varint(&mut out, n);
        }
        out
    }

    pub fn from_bytes(b: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader { b, pos: 0 };
        if r.byte()? != FORMAT_VERSION {
            return Err(DecodeError("unknown version"));
        }
        if r.f64()? != RELATIVE_ACCURACY {
            return Err(DecodeError("different relative accuracy"));
        }
        let count = r.varint()?;
        let zero_count = r.varint()?;
        let (min, max) = (r.f64()?, r.f64()?);
        let z = r.varint()?;
        let offset = i32::try_from((z >> 1) as i64 ^ -((z & 1) as i64))
            .map_err(|_| DecodeError("offset"))?;
        let nbins = r.varint()?;
        if nbins > MAX_BINS {
            return Err(DecodeError("too many bins"));
        }
        let mut bins = Vec::with_capacity(nbins as usize);
        let mut total = zero_count;
        for _ in 0..nbins {
            let n = r.varint()?;
            total = total.checked_add(n).ok_or(DecodeError("count overflow"))?;
            bins.push(n);
        }
        if r.pos != b.len() {
            return Err(DecodeError("trailing bytes"));
        }
        if total != count
            || (count > 0
                && !matches!(
                    min.partial_cmp(&max),
                    Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
                ))
        {
            return Err(DecodeError("inconsistent counts"));
        }
        let mut s = Self::new();
        if count > 0 {
            (s.count, s.zero_count, s.min, s.max, s.offset, s.bins) =
                (count, zero_count, min, max, offset, bins);
        }
        Ok(s)
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let v = *self.b.get(self.pos).ok_or(DecodeError("truncated"))?;
        self.pos += 1;
        Ok(v)
    }

    fn f64(&mut self) -> Result<f64, DecodeError> {
        let s = self
            .b
            .get(self.pos..self.pos + 8)
            .ok_or(DecodeError("truncated"))?;
        self.pos += 8;
        Ok(f64::from_le_bytes(s.try_into().expect("slice of 8")))
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(DecodeError("varint too long"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_merges_exactly() {
        let (mut a, mut b, mut all) = (Sketch::new(), Sketch::new(), Sketch::new());
        for i in 0..500 {
            let v = f64::from(i).powf(1.7) / 3.0;
            if i % 3 == 0 {
                a.add(v)
            } else {
                b.add(v)
            }
            all.add(v);
        }
        a.merge(&b);
        assert_eq!(a.to_bytes(), all.to_bytes());
        assert_eq!(
            Sketch::from_bytes(&all.to_bytes()).unwrap().to_bytes(),
            all.to_bytes()
        );
    }

    #[test]
    fn quantile_within_relative_error() {
        let mut s = Sketch::new();
        let values: Vec<f64> = (1..=1000).map(f64::from).collect();
        values.iter().for_each(|&v| s.add(v));
        for q in [0.0, 0.5, 0.95, 0.99, 1.0] {
            let exact = crate::aggregate::percentile_sorted(&values, q);
            let got = s.quantile(q).unwrap();
            assert!(
                (got - exact).abs() <= exact * RELATIVE_ACCURACY + 1e-9,
                "q={q} got={got} exact={exact}"
            );
        }
    }

    #[test]
    fn rejects_garbage() {
        assert!(Sketch::from_bytes(b"").is_err());
        assert!(Sketch::from_bytes(&[1, 2, 3]).is_err());
        let mut bytes = Sketch::new().to_bytes();
        bytes.push(0);
        assert!(Sketch::from_bytes(&bytes).is_err());
    }
}
