//! The Python face of the Rust core: the one place where PyO3 appears and where Rust errors
//! become Python exceptions.

use pyo3::prelude::*;

/// Build profile of the compiled core ("release" or "debug").
#[pyfunction]
fn build_profile() -> &'static str {
    crate::build_profile()
}

/// Version of the compiled core.
#[pyfunction]
fn core_version() -> &'static str {
    crate::core_version()
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(build_profile, m)?)?;
    m.add_function(wrap_pyfunction!(core_version, m)?)?;
    Ok(())
}
