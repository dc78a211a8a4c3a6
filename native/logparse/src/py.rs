//! Thin `#[pyfunction]`s and `#[pyclass]`es: borrow the bytes, release the GIL, convert the result.
use std::collections::BTreeMap;

use hashbrown::HashMap;

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};
use rayon::prelude::*;

use crate::aggregate::{
    rate, Aggregate, KeyAcc, Options, Summary, TopAcc, TypeGroups, MAX_LINE_BYTES,
};
use crate::format::LogType;
use crate::sketch;

fn log_type_arg(name: Option<&str>) -> PyResult<Option<LogType>> {
    name.map(|n| {
        LogType::from_name(n).ok_or_else(|| {
            PyValueError::new_err(format!(
                "unknown log type {n:?}; expected production_json, api_json, gitaly or sidekiq"
            ))
        })
    })
    .transpose()
}

fn counts(m: &BTreeMap<&'static str, u64>) -> BTreeMap<String, u64> {
    m.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

fn decode(b: &[u8]) -> PyResult<sketch::Sketch> {
    sketch::Sketch::from_bytes(b).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// Aggregates of one key in one time bucket, with a mergeable sketch of its durations.
#[pyclass(frozen, get_all, module = "logparse")]
pub struct GroupStats {
    key: String,
    bucket_start: i64,
    count: u64,
    failed: u64,
    duration_sum_ms: f64,
    duration_sumsq_ms2: f64,
    duration_min_ms: f64,
    duration_max_ms: f64,
    db_sum_ms: f64,
    gitaly_sum_ms: f64,
    redis_sum_ms: f64,
    cpu_sum_ms: f64,
    queue_sum_ms: f64,
    sketch: Py<PyBytes>,
}

type Groups = HashMap<i64, HashMap<Box<str>, KeyAcc>>;

/// What one chunk of lines yielded. The per-key aggregates stay in Rust until asked for (`groups`), so that
/// `merge_groups` can add many chunks together without a Python object per key and chunk.
#[pyclass(frozen, module = "logparse")]
pub struct ChunkStats {
    #[pyo3(get)]
    log_type: Option<&'static str>,
    #[pyo3(get)]
    lines: u64,
    /// Per log type its lines counted and the times of its first and last record, `log_type` first: one type
    /// unless the chunk was detected to hold several.
    #[pyo3(get)]
    by_type: Vec<(&'static str, u64, Option<f64>, Option<f64>)>,
    /// Bytes of lines parsed (after expanding a compressed value).
    #[pyo3(get)]
    size: u64,
    #[pyo3(get)]
    bad_lines: BTreeMap<String, u64>,
    #[pyo3(get)]
    skipped: BTreeMap<String, u64>,
    #[pyo3(get)]
    samples: Vec<(String, String)>,
    #[pyo3(get)]
    start_time: Option<f64>,
    #[pyo3(get)]
    end_time: Option<f64>,
    #[pyo3(get)]
    components: Vec<&'static str>,
    /// Per log type, its groups.
    acc: Vec<(&'static str, Groups)>,
}

#[pymethods]
impl ChunkStats {
    /// One `GroupStats` per (key, time bucket), of every log type.
    #[getter]
    fn groups(&self, py: Python<'_>) -> PyResult<Vec<Py<GroupStats>>> {
        let mut out = Vec::new();
        for (_, groups) in &self.acc {
            out.extend(group_stats(py, groups)?);
        }
        Ok(out)
    }

    /// The `GroupStats` of one log type's lines.
    fn groups_of(&self, py: Python<'_>, log_type: &str) -> PyResult<Vec<Py<GroupStats>>> {
        match self.acc.iter().find(|(t, _)| *t == log_type) {
            Some((_, groups)) => group_stats(py, groups),
            None => Ok(Vec::new()),
        }
    }
}

fn group_stats(py: Python<'_>, groups: &Groups) -> PyResult<Vec<Py<GroupStats>>> {
    let mut out = Vec::new();
    for (&bucket_start, keys) in groups {
        for (key, acc) in keys {
            let bytes = acc
                .sketch
                .as_ref()
                .map(sketch::Sketch::to_bytes)
                .unwrap_or_default();
            let [db, gitaly, redis, cpu, queue] = acc.components;
            out.push(Py::new(
                py,
                GroupStats {
                    key: key.to_string(),
                    bucket_start,
                    count: acc.count,
                    failed: acc.failed,
                    duration_sum_ms: acc.sum,
                    duration_sumsq_ms2: acc.sumsq,
                    duration_min_ms: acc.min,
                    duration_max_ms: acc.max,
                    db_sum_ms: db,
                    gitaly_sum_ms: gitaly,
                    redis_sum_ms: redis,
                    cpu_sum_ms: cpu,
                    queue_sum_ms: queue,
                    sketch: PyBytes::new(py, &bytes).unbind(),
                },
            )?);
        }
    }
    Ok(out)
}

/// Several chunks' groups added together, of one log type or of all (chunks of one engagement; keys of
/// different log types would mix).
fn merge(chunks: &[&ChunkStats], log_type: Option<&str>) -> Groups {
    let mut merged = Groups::new();
    let parts = chunks
        .iter()
        .flat_map(|c| &c.acc)
        .filter(|(t, _)| log_type.is_none_or(|want| want == *t));
    for (_, groups) in parts {
        for (&bucket, keys) in groups {
            let mine = merged.entry(bucket).or_default();
            for (key, acc) in keys {
                match mine.get_mut(key) {
                    Some(m) => m.merge(acc),
                    None => {
                        mine.insert(key.clone(), acc.clone());
                    }
                }
            }
        }
    }
    merged
}

/// The groups of several chunks added together: one `GroupStats` per (key, time bucket) over all of them.
///
/// For chunks of one engagement and log type (keys of different log types would mix). Runs without the GIL.
#[pyfunction]
fn merge_groups(
    py: Python<'_>,
    chunks: Vec<Bound<'_, ChunkStats>>,
) -> PyResult<Vec<Py<GroupStats>>> {
    let refs: Vec<&ChunkStats> = chunks.iter().map(Bound::get).collect();
    let merged = py.detach(|| merge(&refs, None));
    group_stats(py, &merged)
}

/// A flush's rows in PostgreSQL's binary COPY format, built without the GIL (see `stage_rows`).
#[pyclass(frozen, module = "logparse")]
struct StagedRows {
    /// The whole COPY stream: signature, header, one tuple per row, trailer.
    #[pyo3(get)]
    copy: Py<PyBytes>,
    /// Where each row's sketch sits in `copy` (start, length), by row number.
    sketches: Vec<(usize, usize)>,
}

#[pymethods]
impl StagedRows {
    fn __len__(&self) -> usize {
        self.sketches.len()
    }

    /// The serialised sketch of row `n` (the bytes it was staged with).
    fn sketch<'py>(&self, py: Python<'py>, n: usize) -> PyResult<Bound<'py, PyBytes>> {
        let &(start, len) = self
            .sketches
            .get(n)
            .ok_or_else(|| PyValueError::new_err(format!("no staged row {n}")))?;
        Ok(PyBytes::new(
            py,
            &self.copy.bind(py).as_bytes()[start..start + len],
        ))
    }
}

/// Columns of each staged row, in order: what `StagedRows.copy` holds and the COPY must name.
const STAGE_COLUMNS: [&str; 17] = [
    "n",
    "engagement_id",
    "log_type",
    "key",
    "bucket",
    "count",
    "failed",
    "duration_sum_ms",
    "duration_sumsq_ms2",
    "db_sum_ms",
    "gitaly_sum_ms",
    "redis_sum_ms",
    "cpu_sum_ms",
    "queue_sum_ms",
    "duration_min_ms",
    "duration_max_ms",
    "sketch",
];

/// Append one COPY field: its length, then its bytes.
fn copy_field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// The groups of each stream's log type in its chunks added together (as `merge_groups`; a chunk of several log
/// types adds the groups of the stream's type only), one row per (key, time bucket), written
/// straight into PostgreSQL's binary COPY format with the columns `STAGE_COLUMNS` names: a row number from 0, the
/// stream's engagement (16 UUID bytes) and log type, then the key's numbers and sketch. Merging and encoding run
/// without the GIL, and no Python object is made per row or field.
///
/// Rows are numbered in one order every caller shares (engagement, log type, key bytes, bucket), so writers that
/// lock rows in row-number order lock them in the same order: the database sorts integers, not four columns.
#[pyfunction]
fn stage_rows(
    py: Python<'_>,
    streams: Vec<(Bound<'_, PyBytes>, String, Vec<Bound<'_, ChunkStats>>)>,
) -> PyResult<StagedRows> {
    let mut work = Vec::with_capacity(streams.len());
    for (engagement, log_type, chunks) in &streams {
        let engagement: [u8; 16] = engagement
            .as_bytes()
            .try_into()
            .map_err(|_| PyValueError::new_err("an engagement id is 16 bytes (UUID.bytes)"))?;
        let refs: Vec<&ChunkStats> = chunks.iter().map(Bound::get).collect();
        work.push((engagement, log_type.as_str(), refs));
    }
    work.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let (payload, sketches) = py.detach(|| {
        let mut out = Vec::with_capacity(1 << 20);
        out.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        out.extend_from_slice(&[0; 8]); // flags, header extension length
        let mut sketches = Vec::new();
        for (engagement, log_type, refs) in &work {
            let mut rows: Vec<(Box<str>, i64, KeyAcc)> = merge(refs, Some(log_type))
                .into_iter()
                .flat_map(|(bucket, keys)| {
                    keys.into_iter().map(move |(key, acc)| (key, bucket, acc))
                })
                .collect();
            rows.sort_unstable_by(|a, b| (a.0.as_bytes(), a.1).cmp(&(b.0.as_bytes(), b.1)));
            for (key, bucket, acc) in rows {
                let [db, gitaly, redis, cpu, queue] = acc.components;
                out.extend_from_slice(&(STAGE_COLUMNS.len() as i16).to_be_bytes());
                copy_field(&mut out, &(sketches.len() as i32).to_be_bytes());
                copy_field(&mut out, engagement);
                copy_field(&mut out, log_type.as_bytes());
                copy_field(&mut out, key.as_bytes());
                copy_field(&mut out, &bucket.to_be_bytes());
                copy_field(&mut out, &(acc.count as i64).to_be_bytes());
                copy_field(&mut out, &(acc.failed as i64).to_be_bytes());
                for f in [
                    acc.sum, acc.sumsq, db, gitaly, redis, cpu, queue, acc.min, acc.max,
                ] {
                    copy_field(&mut out, &f.to_be_bytes());
                }
                let sketch = acc
                    .sketch
                    .as_ref()
                    .map(sketch::Sketch::to_bytes)
                    .unwrap_or_default();
                sketches.push((out.len() + 4, sketch.len()));
                copy_field(&mut out, &sketch);
            }
        }
        out.extend_from_slice(&(-1i16).to_be_bytes());
        (out, sketches)
    });
    Ok(StagedRows {
        copy: PyBytes::new(py, &payload).unbind(),
        sketches,
    })
}

#[pyfunction]
#[pyo3(signature = (data, log_type = None, bucket_seconds = 60))]
fn parse_chunk(
    py: Python<'_>,
    data: &[u8],
    log_type: Option<&str>,
    bucket_seconds: i64,
) -> PyResult<ChunkStats> {
    let opts = chunk_options(log_type, bucket_seconds)?;
    let agg = py.detach(|| {
        let mut a = Aggregate::new(opts);
        a.feed(data);
        a
    });
    Ok(chunk_stats(agg, data.len()))
}

/// The options of one analyzer chunk: its log type (or detection) and the bucket width, both checked.
fn chunk_options(log_type: Option<&str>, bucket_seconds: i64) -> PyResult<Options> {
    if bucket_seconds <= 0 {
        return Err(PyValueError::new_err("bucket_seconds must be positive"));
    }
    Ok(Options {
        log_type: log_type_arg(log_type)?,
        bucket_seconds,
        per_line_type: true,
        ..Options::default()
    })
}

fn chunk_stats(mut agg: Aggregate, size: usize) -> ChunkStats {
    let types: Vec<TypeGroups> = agg.into_types();
    ChunkStats {
        log_type: agg.log_type.map(LogType::name),
        lines: agg.lines,
        by_type: types
            .iter()
            .map(|t| (t.log_type.name(), t.lines, t.start_time, t.end_time))
            .collect(),
        size: size as u64,
        bad_lines: counts(&agg.bad),
        skipped: counts(&agg.skipped),
        samples: agg
            .samples
            .iter()
            .map(|(r, s)| ((*r).to_owned(), s.clone()))
            .collect(),
        start_time: agg.start_time,
        end_time: agg.end_time,
        components: agg.components(),
        acc: types
            .into_iter()
            .map(|t| (t.log_type.name(), t.groups))
            .collect(),
    }
}

/// Largest chunk a zstd value may expand to: well above what ingest cuts, far below what a bomb would ask for.
const MAX_EXPANDED_BYTES: usize = 256 << 20;

thread_local! {
    /// Each parse thread's zstd context and expanded-chunk buffer, kept from chunk to chunk instead of a new context
    /// and a new megabyte of pages per chunk (less allocation; no throughput change measurable on its own here).
    static EXPAND: std::cell::RefCell<(zstd::zstd_safe::DCtx<'static>, Vec<u8>)> =
        std::cell::RefCell::new((zstd::zstd_safe::DCtx::create(), Vec::new()));
}

thread_local! {
    /// Each ingest worker thread's compression context, kept from chunk to chunk.
    static COMPRESS: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { std::cell::RefCell::new(None) };
}

fn compress_frame(data: &[u8], level: i32) -> std::io::Result<Vec<u8>> {
    use zstd::stream::raw::CParameter;
    COMPRESS.with_borrow_mut(|slot| {
        if slot.as_ref().is_none_or(|(l, _)| *l != level) {
            let mut c = zstd::bulk::Compressor::new(level)?;
            c.set_parameter(CParameter::ChecksumFlag(true))?;
            c.set_parameter(CParameter::ContentSizeFlag(true))?;
            *slot = Some((level, c));
        }
        let (_, c) = slot.as_mut().expect("set above");
        c.compress(data)
    })
}

/// `data` as one zstd frame that states its size and ends with a checksum of its content (XXH64), GIL released.
///
/// This is what ingest writes to `logs.raw`. The analyzer verifies the checksum as it expands the value, in its
/// parse threads, so a value damaged anywhere between ingest and the analyzer is dead-lettered, not counted; that
/// is why its consumer can skip Kafka's per-batch CRC check on the event loop.
#[pyfunction]
#[pyo3(signature = (data, level = 3))] // zstd's own default level
fn compress_chunk<'py>(py: Python<'py>, data: &[u8], level: i32) -> PyResult<Bound<'py, PyBytes>> {
    let frame = py
        .detach(|| compress_frame(data, level))
        .map_err(|e| PyValueError::new_err(format!("zstd compression failed: {e}")))?;
    Ok(PyBytes::new(py, &frame))
}

/// Expand a zstd value (one frame or several) and hand the lines to `f`.
fn with_expanded<R>(value: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<R, String> {
    EXPAND.with_borrow_mut(|(dctx, out)| {
        expand_zstd(dctx, value, out)?;
        let r = f(out);
        if out.capacity() > 16 << 20 {
            *out = Vec::new(); // a rare huge chunk does not stay resident
        }
        Ok(r)
    })
}

fn expand_zstd(
    dctx: &mut zstd::zstd_safe::DCtx<'static>,
    value: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), String> {
    use std::io::Read;
    let too_big = || {
        format!(
            "value expands to more than {} MiB",
            MAX_EXPANDED_BYTES >> 20
        )
    };
    out.clear();
    // What ingest writes: one frame that states its size, expanded in one shot into the reused buffer.
    if let Ok(Some(size)) = zstd::zstd_safe::get_frame_content_size(value) {
        if size > MAX_EXPANDED_BYTES as u64 {
            return Err(too_big());
        }
        out.reserve(size as usize);
        if dctx.decompress(out, value).is_ok_and(|n| n as u64 == size) {
            return Ok(());
        }
        out.clear(); // several frames, or a bad one: the streaming decoder sorts it out and says why
    }
    let limit = MAX_EXPANDED_BYTES as u64;
    zstd::stream::read::Decoder::with_buffer(value)
        .and_then(|d| d.take(limit + 1).read_to_end(out))
        .map_err(|e| format!("value is not zstd or is damaged: {e}"))?;
    if out.len() > MAX_EXPANDED_BYTES {
        return Err(too_big());
    }
    Ok(())
}

/// Expand (when `zstd`) and parse many chunks in one call: the GIL is released once and the chunks are spread
/// over all cores. Each item is `(value, log_type, zstd)`; each result is a `ChunkStats`, or a `str` saying why
/// the value could not be read (not zstd; damaged, so that a frame's checksum does not match; or larger than
/// 256 MiB expanded). Bad lines never make an error.
#[pyfunction]
#[pyo3(signature = (items, bucket_seconds = 60))]
fn parse_chunks<'py>(
    py: Python<'py>,
    items: Vec<(Bound<'py, PyBytes>, Option<String>, bool)>,
    bucket_seconds: i64,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let mut work = Vec::with_capacity(items.len());
    for (value, log_type, zstd) in &items {
        let opts = chunk_options(log_type.as_deref(), bucket_seconds)?;
        work.push((value.as_bytes(), opts, *zstd));
    }
    let results: Vec<Result<(Aggregate, usize), String>> = py.detach(|| {
        work.into_par_iter()
            .map(|(value, opts, zstd)| {
                let mut a = Aggregate::new(opts);
                if !zstd {
                    a.feed(value);
                    return Ok((a, value.len()));
                }
                let size = with_expanded(value, |lines| {
                    a.feed(lines);
                    lines.len()
                })?;
                Ok((a, size))
            })
            .collect()
    });
    results
        .into_iter()
        .map(|r| match r {
            Ok((agg, size)) => Ok(Bound::new(py, chunk_stats(agg, size))?.into_any()),
            Err(reason) => Ok(PyString::new(py, &reason).into_any()),
        })
        .collect()
}

/// `f` of the bytes of `data`, without the GIL. Buffers other than `bytes` (bytearray, memoryview, mmap) are
/// read in place: readers reuse their buffers.
fn detached<R: Send>(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    f: impl FnOnce(&[u8]) -> R + Send,
) -> PyResult<R> {
    if let Ok(bytes) = data.cast::<PyBytes>() {
        let slice = bytes.as_bytes();
        return Ok(py.detach(|| f(slice)));
    }
    let buffer = PyBuffer::<u8>::get(data)?;
    if !buffer.is_c_contiguous() {
        return Err(PyValueError::new_err("needs a contiguous buffer"));
    }
    // SAFETY: the buffer stays exported (and so alive and unmoved) until `buffer` drops after parsing;
    // the caller must not mutate it during the call, as for any buffer handed to native code.
    let slice =
        unsafe { std::slice::from_raw_parts(buffer.buf_ptr().cast::<u8>(), buffer.len_bytes()) };
    Ok(py.detach(|| f(slice)))
}

/// The log types the head of `data` holds, the most lines first; empty when no line tells its type.
#[pyfunction]
fn log_types(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<Vec<&'static str>> {
    detached(py, data, |d| {
        crate::format::detect_all(d)
            .into_iter()
            .map(LogType::name)
            .collect()
    })
}

/// The log type most lines at the head of `data` belong to, or `None`.
#[pyfunction]
fn detect_log_type(data: &[u8]) -> Option<&'static str> {
    crate::format::detect(data).map(LogType::name)
}

/// The sketch of both inputs' values.
#[pyfunction]
fn merge_sketches<'py>(py: Python<'py>, a: &[u8], b: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    let mut s = decode(a)?;
    s.merge(&decode(b)?);
    Ok(PyBytes::new(py, &s.to_bytes()))
}

/// Fewer groups than this are merged on the calling thread: rayon's pool may be busy with parse jobs queued ahead
/// (the analyzer's flush merges a few hundred, and waits for them), and a few hundred merges take well under 1 ms.
const PARALLEL_GROUPS: usize = 4096;

/// One sketch per group: the merge of the group's sketches (`None`s skipped; `None` for a group with none). The
/// decoding, merging and encoding run without the GIL, many groups spread over all cores — the stats API merges
/// tens of thousands of stored minute sketches per query, the analyzer's flush a stored and an added one per row.
#[pyfunction]
fn merge_sketch_groups<'py>(
    py: Python<'py>,
    groups: Vec<Vec<Option<Bound<'py, PyBytes>>>>,
) -> PyResult<Vec<Option<Bound<'py, PyBytes>>>> {
    let borrowed: Vec<Vec<&[u8]>> = groups
        .iter()
        .map(|g| g.iter().flatten().map(|b| b.as_bytes()).collect())
        .collect();
    let merge = |group: &Vec<&[u8]>| match group.as_slice() {
        [] => Ok(None),
        [one] => sketch::Sketch::from_bytes(one).map(|_| Some(one.to_vec())), // checked, not re-encoded
        [first, rest @ ..] => {
            let mut s = sketch::Sketch::from_bytes(first)?;
            for b in rest {
                s.merge(&sketch::Sketch::from_bytes(b)?);
            }
            Ok(Some(s.to_bytes()))
        }
    };
    let merged: Vec<Result<Option<Vec<u8>>, sketch::DecodeError>> = py.detach(|| {
        if borrowed.len() < PARALLEL_GROUPS {
            borrowed.iter().map(merge).collect()
        } else {
            borrowed.par_iter().map(merge).collect()
        }
    });
    merged
        .into_iter()
        .map(|r| {
            r.map(|o| o.map(|b| PyBytes::new(py, &b)))
                .map_err(|e| PyValueError::new_err(e.to_string()))
        })
        .collect()
}

/// Quantiles of a serialised sketch (NaN when it is empty).
#[pyfunction]
fn sketch_quantiles(sketch: &[u8], qs: Vec<f64>) -> PyResult<Vec<f64>> {
    let s = decode(sketch)?;
    qs.iter()
        .map(|&q| {
            if (0.0..=1.0).contains(&q) {
                Ok(s.quantile(q).unwrap_or(f64::NAN))
            } else {
                Err(PyValueError::new_err(format!(
                    "quantile {q} is not in [0, 1]"
                )))
            }
        })
        .collect()
}

/// A mergeable quantile sketch of durations (relative error ≤ 1%).
#[pyclass(module = "logparse", name = "Sketch")]
pub struct PySketch(sketch::Sketch);

#[pymethods]
impl PySketch {
    #[new]
    fn new() -> Self {
        Self(sketch::Sketch::new())
    }

    #[staticmethod]
    fn from_bytes(data: &[u8]) -> PyResult<Self> {
        decode(data).map(Self)
    }

    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.0.to_bytes())
    }

    fn add(&mut self, value: f64) {
        self.0.add(value);
    }

    fn extend(&mut self, values: Vec<f64>) {
        values.into_iter().for_each(|v| self.0.add(v));
    }

    fn merge(&mut self, other: PyRef<'_, PySketch>) {
        self.0.merge(&other.0);
    }

    fn quantile(&self, q: f64) -> PyResult<f64> {
        if !(0.0..=1.0).contains(&q) {
            return Err(PyValueError::new_err(format!(
                "quantile {q} is not in [0, 1]"
            )));
        }
        Ok(self.0.quantile(q).unwrap_or(f64::NAN))
    }

    #[getter]
    fn count(&self) -> u64 {
        self.0.count()
    }

    #[getter]
    fn min(&self) -> Option<f64> {
        self.0.min()
    }

    #[getter]
    fn max(&self) -> Option<f64> {
        self.0.max()
    }
}

/// Statistics of one key (or of all, `key == "TOTAL"`) over the input or one interval; durations in ms.
#[pyclass(frozen, get_all, module = "logparse")]
pub struct KeyStats {
    key: String,
    bucket_start: Option<i64>,
    count: u64,
    failed: u64,
    perc_failed: f64,
    rps: f64,
    p99_ms: f64,
    p95_ms: f64,
    median_ms: f64,
    max_ms: f64,
    min_ms: f64,
    stddev_ms: f64,
    score: f64,
    duration_sum_ms: f64,
    db_sum_ms: f64,
    gitaly_sum_ms: f64,
    redis_sum_ms: f64,
    cpu_sum_ms: f64,
    queue_sum_ms: f64,
}

impl From<Summary> for KeyStats {
    fn from(s: Summary) -> Self {
        let [db, gitaly, redis, cpu, queue] = s.components;
        KeyStats {
            perc_failed: 100.0 * s.failed as f64 / s.count as f64,
            score: s.count as f64 * s.p99,
            key: s.key,
            bucket_start: s.bucket_start,
            count: s.count,
            failed: s.failed,
            rps: s.rps,
            p99_ms: s.p99,
            p95_ms: s.p95,
            median_ms: s.median,
            max_ms: s.max,
            min_ms: s.min,
            stddev_ms: s.stddev,
            duration_sum_ms: s.sum,
            db_sum_ms: db,
            gitaly_sum_ms: gitaly,
            redis_sum_ms: redis,
            cpu_sum_ms: cpu,
            queue_sum_ms: queue,
        }
    }
}

/// Resource use of one user, project, client or path.
#[pyclass(frozen, get_all, module = "logparse")]
pub struct TopRow {
    value: String,
    bucket_start: Option<i64>,
    count: u64,
    failed: u64,
    rps: f64,
    duration_sum_ms: f64,
    db_sum_ms: f64,
    gitaly_sum_ms: f64,
    redis_sum_ms: f64,
    cpu_sum_ms: f64,
    queue_sum_ms: f64,
    mem_bytes: f64,
}

/// One failed request of an error group.
#[pyclass(frozen, get_all, module = "logparse")]
pub struct ErrorEvent {
    time: Option<f64>,
    correlation_id: Option<String>,
    key: String,
    user: Option<String>,
    project: Option<String>,
}

/// One kind of failure: HTTP status and exception class, gRPC code, or Sidekiq error class.
#[pyclass(frozen, get_all, module = "logparse")]
pub struct ErrorGroup {
    error: String,
    bucket_start: Option<i64>,
    count: u64,
    first_time: Option<f64>,
    last_time: Option<f64>,
    key: String,
    sample: String,
    events: Vec<Py<ErrorEvent>>,
}

/// Whole-input statistics, fed block by block: exact percentiles by default, sketches with `exact=False`.
#[pyclass(module = "logparse")]
pub struct LogReport(Aggregate);

#[pymethods]
impl LogReport {
    #[new]
    #[pyo3(signature = (log_type = None, interval_seconds = 0, exact = true, top = false, errors = false))]
    fn new(
        log_type: Option<&str>,
        interval_seconds: i64,
        exact: bool,
        top: bool,
        errors: bool,
    ) -> PyResult<Self> {
        if interval_seconds < 0 {
            return Err(PyValueError::new_err(
                "interval_seconds must not be negative",
            ));
        }
        let opts = Options {
            log_type: log_type_arg(log_type)?,
            bucket_seconds: interval_seconds,
            exact,
            top,
            errors,
            per_line_type: false,
        };
        Ok(Self(Aggregate::new(opts)))
    }

    /// Parse newline-separated lines (GIL released, all cores); a block must end at a line boundary.
    fn feed(&mut self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let agg = &mut self.0;
        detached(py, data, |slice| agg.feed(slice))
    }

    #[getter]
    fn log_type(&self) -> Option<&'static str> {
        self.0.log_type.map(LogType::name)
    }

    #[getter]
    fn lines(&self) -> u64 {
        self.0.lines
    }

    #[getter]
    fn bad_lines(&self) -> BTreeMap<String, u64> {
        counts(&self.0.bad)
    }

    #[getter]
    fn skipped(&self) -> BTreeMap<String, u64> {
        counts(&self.0.skipped)
    }

    #[getter]
    fn samples(&self) -> Vec<(String, String)> {
        self.0
            .samples
            .iter()
            .map(|(r, s)| ((*r).to_owned(), s.clone()))
            .collect()
    }

    #[getter]
    fn start_time(&self) -> Option<f64> {
        self.0.start_time
    }

    #[getter]
    fn end_time(&self) -> Option<f64> {
        self.0.end_time
    }

    #[getter]
    fn components(&self) -> Vec<&'static str> {
        self.0.components()
    }

    fn key_stats(&mut self, py: Python<'_>) -> Vec<KeyStats> {
        let agg = &mut self.0;
        py.detach(|| agg.summaries(false))
            .into_iter()
            .map(KeyStats::from)
            .collect()
    }

    fn totals(&mut self, py: Python<'_>) -> Vec<KeyStats> {
        let agg = &mut self.0;
        py.detach(|| agg.summaries(true))
            .into_iter()
            .map(KeyStats::from)
            .collect()
    }

    #[getter]
    fn mem_seen(&self) -> bool {
        self.0.mem_seen
    }

    fn top(&self, dimension: &str) -> PyResult<Vec<TopRow>> {
        let i = Aggregate::dimension_index(dimension)
            .ok_or_else(|| PyValueError::new_err(format!("unknown dimension {dimension:?}")))?;
        Ok(self
            .0
            .top
            .iter()
            .flat_map(|(bucket, dims)| dims[i].iter().map(move |(v, t)| (*bucket, v, t)))
            .map(|(bucket, v, t)| self.top_row(v, bucket, t))
            .collect())
    }

    fn top_totals(&self) -> Vec<TopRow> {
        self.0
            .top_totals()
            .iter()
            .map(|(bucket, t)| self.top_row("TOTAL", *bucket, t))
            .collect()
    }

    fn errors(&self, py: Python<'_>) -> PyResult<Vec<ErrorGroup>> {
        let bs = self.0.opts.bucket_seconds;
        self.0
            .errors
            .iter()
            .map(|((bucket, label), e)| {
                let events = e
                    .events
                    .iter()
                    .map(|ev| {
                        Py::new(
                            py,
                            ErrorEvent {
                                time: ev.time,
                                correlation_id: ev.correlation_id.clone(),
                                key: ev.key.clone(),
                                user: ev.user.clone(),
                                project: ev.project.clone(),
                            },
                        )
                    })
                    .collect::<PyResult<_>>()?;
                Ok(ErrorGroup {
                    error: label.clone(),
                    bucket_start: (bs > 0).then_some(*bucket),
                    count: e.count,
                    first_time: e.first_time,
                    last_time: e.last_time,
                    key: e.key.clone(),
                    sample: e.sample.clone(),
                    events,
                })
            })
            .collect()
    }
}

impl LogReport {
    /// A `top` row, its rate over the same span as the stats table's.
    fn top_row(&self, value: &str, bucket: i64, t: &TopAcc) -> TopRow {
        let [db, gitaly, redis, cpu, queue] = t.components;
        TopRow {
            value: value.to_owned(),
            bucket_start: (self.0.opts.bucket_seconds > 0).then_some(bucket),
            count: t.count,
            failed: t.failed,
            rps: rate(t.count, self.0.rate_span()),
            duration_sum_ms: t.duration_ms,
            db_sum_ms: db,
            gitaly_sum_ms: gitaly,
            redis_sum_ms: redis,
            cpu_sum_ms: cpu,
            queue_sum_ms: queue,
            mem_bytes: t.mem_bytes,
        }
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<GroupStats>()?;
    m.add_class::<ChunkStats>()?;
    m.add_class::<KeyStats>()?;
    m.add_class::<TopRow>()?;
    m.add_class::<ErrorEvent>()?;
    m.add_class::<ErrorGroup>()?;
    m.add_class::<LogReport>()?;
    m.add_class::<PySketch>()?;
    m.add_function(wrap_pyfunction!(parse_chunk, m)?)?;
    m.add_function(wrap_pyfunction!(parse_chunks, m)?)?;
    m.add_function(wrap_pyfunction!(compress_chunk, m)?)?;
    m.add_function(wrap_pyfunction!(detect_log_type, m)?)?;
    m.add_function(wrap_pyfunction!(log_types, m)?)?;
    m.add_function(wrap_pyfunction!(merge_sketches, m)?)?;
    m.add_function(wrap_pyfunction!(merge_sketch_groups, m)?)?;
    m.add_function(wrap_pyfunction!(merge_groups, m)?)?;
    m.add_function(wrap_pyfunction!(stage_rows, m)?)?;
    m.add("STAGE_COLUMNS", STAGE_COLUMNS)?;
    m.add_class::<StagedRows>()?;
    m.add_function(wrap_pyfunction!(sketch_quantiles, m)?)?;
    m.add("DIMENSIONS", crate::format::DIMENSIONS.to_vec())?;
    m.add("COMPONENTS", crate::format::COMPONENTS.to_vec())?;
    m.add("RELATIVE_ACCURACY", sketch::RELATIVE_ACCURACY)?;
    m.add("MAX_LINE_BYTES", MAX_LINE_BYTES)?;
    Ok(())
}
