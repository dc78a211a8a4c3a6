//! Thin `#[pyfunction]` wrappers: borrow the bytes, release the GIL, convert the result.
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::chunk;

/// Aggregates of one key in one time bucket.
#[pyclass(frozen, get_all, module = "logparse")]
pub struct GroupStats {
    key: String,
    bucket_start: i64,
    count: u64,
    failed: u64,
    duration_sum_ms: f64,
}

/// What one chunk of lines yielded.
#[pyclass(frozen, get_all, module = "logparse")]
pub struct ChunkStats {
    lines: u64,
    bad_lines: Py<PyDict>,
    groups: Vec<Py<GroupStats>>,
}

#[pyfunction]
#[pyo3(signature = (data, bucket_seconds = 60))]
fn parse_chunk(py: Python<'_>, data: &[u8], bucket_seconds: i64) -> PyResult<ChunkStats> {
    if bucket_seconds <= 0 {
        return Err(pyo3::exceptions::PyValueError::new_err("bucket_seconds must be positive"));
    }
    let stats = py.detach(|| chunk::parse_chunk(data, bucket_seconds));
    let bad = PyDict::new(py);
    for (reason, n) in &stats.bad_lines {
        bad.set_item(*reason, *n)?;
    }
    let groups = stats
        .groups
        .into_iter()
        .map(|g| {
            Py::new(
                py,
                GroupStats {
                    key: g.key,
                    bucket_start: g.bucket_start,
                    count: g.count,
                    failed: g.failed,
                    duration_sum_ms: g.duration_sum_ms,
                },
            )
        })
        .collect::<PyResult<_>>()?;
    Ok(ChunkStats { lines: stats.lines, bad_lines: bad.unbind(), groups })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<GroupStats>()?;
    m.add_class::<ChunkStats>()?;
    m.add_function(wrap_pyfunction!(parse_chunk, m)?)?;
    Ok(())
}
