//! A mergeable quantile sketch (DDSketch, collapsing-free) with relative error ≤ 1%.
//!
//! A sketch with few distinct buckets keeps them as sorted `(index, count)` pairs and turns into a dense array
//! when it grows: the analyzer holds one sketch per key and minute of every chunk, mostly of a handful of values,
//! where a dense array spanning their buckets would take kilobytes.
//!
//! Bucket `i` holds values in `(γ^(i-1), γ^i]` with `γ = (1+α)/(1-α)`; answering with `2γ^i/(γ+1)` is within
//! `α` of every value in the bucket. Merging adds bucket counts, so it is exact, commutative and associative:
//! `merge(sketch(a), sketch(b))` serialises to the same bytes as `sketch(a ++ b)`.

/// Relative accuracy guaranteed for every quantile.
pub const RELATIVE_ACCURACY: f64 = 0.01;
/// Values at or below this (ms) count as zero; 1 ns is below any timing GitLab logs.
const MIN_VALUE: f64 = 1e-6;
/// Values are clamped here (ms, ~31 years) so a hostile line cannot make the store huge.
pub const MAX_VALUE: f64 = 1e12;
const FORMAT_VERSION: u8 = 1;
/// Bins a valid sketch can have between MIN_VALUE and MAX_VALUE, with margin.
const MAX_BINS: u64 = 4096;
/// Bucket indices of values between MIN_VALUE and MAX_VALUE lie in -690..=1382; a decoded sketch's must lie in
/// ±`MAX_BINS`, or merging two far apart would allocate a dense store spanning them (gigabytes, or an overflow).
const MAX_INDEX: i64 = MAX_BINS as i64;
/// Distinct buckets kept as pairs before the store turns dense (16 bytes a pair against 8 a dense bin).
const SPARSE_MAX: usize = 48;

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
    store: Store,
    ln_gamma: f64,
}

/// Bucket counts (never a zero count in `Sparse`; `Dense` may hold zeros between its first and last bin).
#[derive(Debug, Clone, PartialEq)]
enum Store {
    Sparse(Vec<(i32, u64)>),
    Dense { offset: i32, bins: Vec<u64> },
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
            store: Store::Sparse(Vec::new()),
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
        match &mut self.store {
            Store::Sparse(pairs) => match pairs.binary_search_by_key(&i, |&(j, _)| j) {
                Ok(at) => pairs[at].1 += n,
                Err(at) if pairs.len() < SPARSE_MAX => pairs.insert(at, (i, n)),
                Err(_) => {
                    self.densify(i, i);
                    self.add_to_bin(i, n);
                }
            },
            Store::Dense { offset, bins } => {
                if i < *offset {
                    bins.splice(0..0, std::iter::repeat_n(0, (*offset - i) as usize));
                    *offset = i;
                } else if (i - *offset) as usize >= bins.len() {
                    bins.resize((i - *offset) as usize + 1, 0);
                }
                bins[(i - *offset) as usize] += n;
            }
        }
    }

    /// Make the store dense and wide enough for bins `lo..=hi` as well as those it has, in one allocation.
    fn densify(&mut self, lo: i32, hi: i32) {
        if let Store::Dense { offset, bins } = &self.store {
            if *offset <= lo && hi < *offset + bins.len() as i32 {
                return;
            }
        }
        let (lo, hi) = match self.bounds() {
            Some((a, b)) => (lo.min(a), hi.max(b)),
            None => (lo, hi),
        };
        let mut bins = vec![0; (hi - lo) as usize + 1];
        for (i, n) in self.bins() {
            bins[(i - lo) as usize] += n;
        }
        self.store = Store::Dense { offset: lo, bins };
    }

    /// First and last bucket index with a count.
    fn bounds(&self) -> Option<(i32, i32)> {
        let mut it = self.bins();
        let first = it.next()?.0;
        Some((first, it.next_back().map_or(first, |(i, _)| i)))
    }

    /// `(index, count)` of every bucket with a count, in index order.
    fn bins(&self) -> impl DoubleEndedIterator<Item = (i32, u64)> + '_ {
        let (sparse, dense) = match &self.store {
            Store::Sparse(pairs) => (Some(pairs.iter().copied()), None),
            Store::Dense { offset, bins } => (None, Some((*offset, bins))),
        };
        let dense = dense.into_iter().flat_map(|(offset, bins)| {
            bins.iter()
                .enumerate()
                .filter(|&(_, &n)| n > 0)
                .map(move |(j, &n)| (offset + j as i32, n))
        });
        sparse.into_iter().flatten().chain(dense)
    }

    pub fn merge(&mut self, other: &Sketch) {
        if other.count == 0 {
            return;
        }
        self.count += other.count;
        self.zero_count += other.zero_count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        if let Some((lo, hi)) = other.bounds() {
            let dense = match (&self.store, &other.store) {
                (Store::Sparse(mine), Store::Sparse(theirs)) => {
                    mine.len() + theirs.len() > SPARSE_MAX
                }
                _ => true,
            };
            if dense {
                self.densify(lo, hi); // at most one allocation, not one per bin that widens the range
            }
        }
        for (i, n) in other.bins() {
            self.add_to_bin(i, n);
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
        for (i, n) in self.bins() {
            seen += n;
            if seen > rank {
                return self.value(i).clamp(self.min, self.max);
            }
        }
        self.max
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        // Always the dense layout from the first bucket with a count to the last, whatever the store.
        let (lo, hi) = self.bounds().map_or((0, 0), |(a, b)| (a, b + 1));
        let mut out = Vec::with_capacity(40 + (hi - lo) as usize * 2);
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
        put_varint(&mut out, ((lo << 1) ^ (lo >> 31)) as u32 as u64);
        put_varint(&mut out, (hi - lo) as u64);
        let mut next = lo;
        for (i, n) in self.bins() {
            out.resize(out.len() + (i - next) as usize, 0); // a 0 varint for each bucket without a count
            put_varint(&mut out, n);
            next = i + 1;
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
        if i64::from(offset) < -MAX_INDEX || i64::from(offset) + nbins as i64 > MAX_INDEX {
            return Err(DecodeError("offset"));
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
            (s.count, s.zero_count, s.min, s.max) = (count, zero_count, min, max);
            let nonzero = bins.iter().filter(|&&n| n > 0).count();
            s.store = if nonzero <= SPARSE_MAX {
                let pairs = (offset..).zip(bins).filter(|&(_, n)| n > 0);
                Store::Sparse(pairs.collect())
            } else {
                Store::Dense { offset, bins }
            };
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
    fn sparse_and_dense_stores_agree() {
        // Around the switch from pairs to a dense array, and merges of every mix of the two.
        for distinct in [
            1,
            2,
            5,
            SPARSE_MAX - 1,
            SPARSE_MAX,
            SPARSE_MAX + 1,
            3 * SPARSE_MAX,
        ] {
            let values: Vec<f64> = (0..distinct).map(|i| 1.5f64.powf(i as f64 / 3.0)).collect();
            let mut all = Sketch::new();
            values.iter().for_each(|&v| all.add(v));
            for split in [0, 1, distinct / 2, distinct] {
                let (mut a, mut b) = (Sketch::new(), Sketch::new());
                values[..split].iter().for_each(|&v| a.add(v));
                values[split..].iter().rev().for_each(|&v| b.add(v));
                let mut ab = a.clone();
                ab.merge(&b);
                b.merge(&a);
                for merged in [&ab, &b] {
                    assert_eq!(
                        merged.to_bytes(),
                        all.to_bytes(),
                        "{distinct} values split at {split}"
                    );
                    assert_eq!(merged.quantile(0.99), all.quantile(0.99));
                }
                let decoded = Sketch::from_bytes(&all.to_bytes()).unwrap();
                assert_eq!(decoded.to_bytes(), all.to_bytes());
                assert_eq!(decoded.quantile(0.5), all.quantile(0.5));
            }
        }
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
    fn rejects_bins_no_value_can_reach() {
        // Found with `fuzz/` (sketch_bytes): bins far outside -690..=1382 decoded, and then overflowed the index
        // range while decoding, or made a merge of two such sketches build a dense store spanning billions of bins.
        let encode = |offset: i32, bins: &[u64]| {
            let mut out = vec![FORMAT_VERSION];
            out.extend_from_slice(&RELATIVE_ACCURACY.to_le_bytes());
            put_varint(&mut out, bins.iter().sum());
            put_varint(&mut out, 0);
            out.extend_from_slice(&1.0f64.to_le_bytes());
            out.extend_from_slice(&2.0f64.to_le_bytes());
            put_varint(&mut out, ((offset << 1) ^ (offset >> 31)) as u32 as u64);
            put_varint(&mut out, bins.len() as u64);
            bins.iter().for_each(|&n| put_varint(&mut out, n));
            out
        };
        let dense = [1; SPARSE_MAX + 1];
        for (offset, bins) in [
            (i32::MAX - 1, &[1][..]),
            (-(1 << 30), &dense),
            (1 << 30, &[1]),
            (i32::MIN, &[1]),
        ] {
            assert_eq!(
                Sketch::from_bytes(&encode(offset, bins)),
                Err(DecodeError("offset")),
                "{offset}"
            );
        }
        // The widest real sketch still decodes, and merges.
        let mut wide = Sketch::new();
        wide.add(MIN_VALUE * 1.0001);
        wide.add(MAX_VALUE);
        let mut decoded = Sketch::from_bytes(&wide.to_bytes()).unwrap();
        decoded.merge(&Sketch::from_bytes(&encode(-100, &dense)).unwrap());
        assert_eq!(decoded.count(), 2 + dense.len() as u64);
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
