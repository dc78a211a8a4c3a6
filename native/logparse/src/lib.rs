//! Registers the `logparse._logparse` Python module; the work lives in pure-Rust modules.
pub mod aggregate;
pub mod format;
mod py;
/// Public only for the fuzz targets in `fuzz/`; not part of the crate's API.
#[doc(hidden)]
pub mod scan;
pub mod sketch;
pub mod time;

use pyo3::prelude::*;

#[pymodule]
fn _logparse(m: &Bound<'_, PyModule>) -> PyResult<()> {
    py::register(m)
}
