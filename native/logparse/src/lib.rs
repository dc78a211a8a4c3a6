//! Registers the `logparse._logparse` Python module; the work lives in pure-Rust modules.
pub mod chunk;
mod py;

use pyo3::prelude::*;

#[pymodule]
fn _logparse(m: &Bound<'_, PyModule>) -> PyResult<()> {
    py::register(m)
}
