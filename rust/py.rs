//! The Python face of the Rust core: the one place where PyO3 appears and where Rust errors
//! become Python exceptions.

use crate::heom::bath::{self, BathExponents, Expansion};
use crate::heom::cancel::Check;
use crate::heom::error::{HeomError, HeomResult};
use crate::heom::hierarchy::count_ados;
use crate::heom::linalg::C64;
use crate::heom::{memory_estimate, BathSpec, Solver};
use numpy::ndarray::{Array1, Array2, Array3};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArray3, PyReadonlyArray1, PyReadonlyArray2};
use numpy::{PyReadonlyArray3, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;

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

/// The step loop propagations run: "avx2", or "portable" (no AVX2, or QPUMP_PORTABLE set).
#[pyfunction]
fn simd_path() -> &'static str {
    crate::heom::simd_path()
}

// The exception classes of `qpump.errors`, imported once, so that every core error crosses into
// Python here, as the class the rest of qpump raises for the same failure.
pyo3::import_exception!(qpump.errors, InvalidParameterError);
pyo3::import_exception!(qpump.errors, IntegrationError);

impl From<HeomError> for PyErr {
    /// A core error as the matching exception of `qpump.errors` (an interruption whose cause is
    /// unknown as KeyboardInterrupt).
    fn from(err: HeomError) -> PyErr {
        let msg = err.to_string();
        match err {
            HeomError::InvalidParameter { .. } => InvalidParameterError::new_err(msg),
            HeomError::NonFinite { .. } | HeomError::StepTooSmall { .. } => {
                IntegrationError::new_err(msg)
            }
            HeomError::Interrupted => pyo3::exceptions::PyKeyboardInterrupt::new_err(msg),
        }
    }
}

/// An array whose length does not fit the shape it is given, as qpump's own exception (naming
/// the array) rather than a bare RuntimeError.
fn shape_error(what: &str, err: numpy::ndarray::ShapeError) -> PyErr {
    InvalidParameterError::new_err(format!("{what}: {err}"))
}

/// Run the core's `work` detached from Python (other threads run meanwhile), handing it a
/// check (see `heom/cancel.rs`) that re-attaches, runs Python's signal handlers and then
/// `progress(x)`, if given, with the work's progress x. An exception either raises
/// (KeyboardInterrupt on Ctrl-C) stops the work and is the error returned; other core errors
/// become exceptions of `qpump.errors`.
fn detached<T, W>(py: Python<'_>, progress: Option<Py<PyAny>>, work: W) -> PyResult<T>
where
    T: Send,
    W: FnOnce(&mut Check<'_>) -> HeomResult<T> + Send,
{
    let mut raised = None;
    let res = py.detach(|| {
        work(&mut |done| {
            Python::attach(|py| {
                py.check_signals()?;
                match &progress {
                    Some(callback) => callback.call1(py, (done,)).map(drop),
                    None => Ok(()),
                }
            })
            .map_err(|exc| {
                raised = Some(exc);
                HeomError::Interrupted
            })
        })
    });
    res.map_err(|err| raised.take().unwrap_or_else(|| err.into()))
}

fn matrix(a: &PyReadonlyArray2<'_, C64>) -> (usize, Vec<C64>) {
    let shape = a.shape();
    (shape[0], a.as_array().iter().cloned().collect())
}

/// Exponents of a Drude-Lorentz bath: (c, nu, kinds, delta).
#[pyfunction]
#[pyo3(signature = (kappa, gamma, temperature, n_exp, expansion, terminator))]
#[allow(clippy::type_complexity)]
fn drude_lorentz_exponents<'py>(
    py: Python<'py>,
    kappa: f64,
    gamma: f64,
    temperature: f64,
    n_exp: usize,
    expansion: &str,
    terminator: bool,
) -> PyResult<(Bound<'py, PyArray1<C64>>, Vec<f64>, Vec<String>, f64)> {
    let exp = match expansion {
        "matsubara" => Expansion::Matsubara,
        "pade" => Expansion::Pade,
        other => {
            return Err(HeomError::invalid(
                "expansion",
                format!("expansion = {other:?} must be 'matsubara' or 'pade'"),
            )
            .into())
        }
    };
    let b = bath::drude_lorentz(kappa, gamma, temperature, n_exp, exp, terminator)?;
    Ok((
        Array1::from_vec(b.exponents.iter().map(|e| e.c).collect()).into_pyarray(py),
        b.exponents.iter().map(|e| e.nu).collect(),
        b.exponents
            .iter()
            .map(|e| e.kind.name().to_string())
            .collect(),
        b.delta,
    ))
}

/// Number of ADOs C(K + depth, depth), or None when it does not fit in 64 bits.
#[pyfunction]
fn ado_count(n_exponents: usize, depth: usize) -> Option<u64> {
    count_ados(n_exponents, depth)
}

/// Bytes the solver needs for `n_ados` ADOs of a d-dimensional system with K exponents.
#[pyfunction]
fn solver_memory_bytes(n_ados: u64, d: u64, n_exponents: u64) -> u64 {
    memory_estimate(n_ados, d, n_exponents)
}

/// The HEOM propagator: hierarchy, piecewise-constant Hamiltonian and the ADO state.
#[pyclass(module = "qpump._core")]
struct HeomCore {
    inner: Solver,
}

#[pymethods]
impl HeomCore {
    /// baths: list of (Q (d, d) complex, c (K,) complex, nu (K,) float, delta float).
    #[new]
    #[pyo3(signature = (h, baths, depth, rtol, atol, max_step))]
    #[allow(clippy::type_complexity)]
    fn new(
        h: PyReadonlyArray2<'_, C64>,
        baths: Vec<(
            PyReadonlyArray2<'_, C64>,
            PyReadonlyArray1<'_, C64>,
            PyReadonlyArray1<'_, f64>,
            f64,
        )>,
        depth: usize,
        rtol: f64,
        atol: f64,
        max_step: f64,
    ) -> PyResult<Self> {
        let (d, hv) = matrix(&h);
        let mut specs = Vec::with_capacity(baths.len());
        for (q, c, nu, delta) in &baths {
            let (_, qv) = matrix(q);
            let c: Vec<C64> = c.as_array().iter().cloned().collect();
            let nu: Vec<f64> = nu.as_array().iter().cloned().collect();
            let exps: BathExponents = bath::generic(&c, &nu, *delta)?;
            specs.push(BathSpec { q: qv, exps });
        }
        let inner = Solver::new(d, &hv, specs, depth, rtol, atol, max_step)?;
        Ok(HeomCore { inner })
    }

    /// Number of ADOs.
    #[getter]
    fn n_ados(&self) -> usize {
        self.inner.n_ados()
    }

    /// Current time of the state.
    #[getter]
    fn time(&self) -> f64 {
        self.inner.time()
    }

    /// ADO labels, shape (n_ados, K).
    fn labels<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<i64>>> {
        let hier = self.inner.hierarchy();
        let (n, k) = (hier.n_ados(), hier.n_exponents);
        let v: Vec<i64> = hier.labels.iter().map(|&x| x as i64).collect();
        let arr = Array2::from_shape_vec((n, k), v).map_err(|e| shape_error("labels", e))?;
        Ok(arr.into_pyarray(py))
    }

    /// Rescaling factors s_a (rho_a = s_a r_a).
    fn ado_scales<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        Array1::from_vec(self.inner.ado_scales()).into_pyarray(py)
    }

    /// Replace the system Hamiltonian; the hierarchy and ADOs are kept.
    fn set_hamiltonian(&mut self, h: PyReadonlyArray2<'_, C64>) -> PyResult<()> {
        let (d, hv) = matrix(&h);
        if d != self.inner.dim() || h.shape()[1] != d {
            return Err(HeomError::invalid(
                "H",
                format!(
                    "H must have shape ({0}, {0}), got {1:?}",
                    self.inner.dim(),
                    h.shape()
                ),
            )
            .into());
        }
        Ok(self.inner.set_hamiltonian(&hv)?)
    }

    /// Load all ADOs (unscaled, shape (n_ados, d, d)) at time t.
    fn set_state(&mut self, t: f64, ados: PyReadonlyArray3<'_, C64>) -> PyResult<()> {
        let v: Vec<C64> = ados.as_array().iter().cloned().collect();
        Ok(self.inner.set_state(t, &v)?)
    }

    /// Integrate the deviation from the stationary hierarchy `ados` (unscaled, shape
    /// (n_ados, d, d)) of the current H; returns its stationarity residual max |L y|.
    fn set_reference(&mut self, ados: PyReadonlyArray3<'_, C64>) -> PyResult<f64> {
        let v: Vec<C64> = ados.as_array().iter().cloned().collect();
        Ok(self.inner.set_reference(&v)?)
    }

    /// Integrate the whole state again.
    fn clear_reference(&mut self) {
        self.inner.clear_reference();
    }

    /// All ADOs (unscaled), shape (n_ados, d, d).
    fn state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray3<C64>>> {
        let d = self.inner.dim();
        let arr = Array3::from_shape_vec((self.inner.n_ados(), d, d), self.inner.state())
            .map_err(|e| shape_error("state", e))?;
        Ok(arr.into_pyarray(py))
    }

    /// Propagate through the (non-decreasing) output times, releasing the GIL; a signal (Ctrl-C)
    /// stops it between two steps and raises the handler's exception (KeyboardInterrupt), and
    /// `progress(t)`, if given, is called with the time reached about ten times a second.
    /// Returns rho (n_t, d, d), heat current (n_t, n_baths), interaction energy (n_t, n_baths).
    #[pyo3(signature = (times, progress=None))]
    #[allow(clippy::type_complexity)]
    fn propagate<'py>(
        &mut self,
        py: Python<'py>,
        times: PyReadonlyArray1<'_, f64>,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<(
        Bound<'py, PyArray3<C64>>,
        Bound<'py, PyArray2<f64>>,
        Bound<'py, PyArray2<f64>>,
    )> {
        let times: Vec<f64> = times.as_array().iter().cloned().collect();
        let solver = &mut self.inner;
        let d = solver.dim();
        let nb = solver.n_baths();
        let (rho, heat, eint) = detached(py, progress, |check| {
            let mut rho = Vec::with_capacity(times.len() * d * d);
            let mut heat = Vec::with_capacity(times.len() * nb);
            let mut eint = Vec::with_capacity(times.len() * nb);
            solver.propagate_cancellable(
                &times,
                |_, o| {
                    rho.extend(o.rho);
                    heat.extend(o.heat_current);
                    eint.extend(o.interaction_energy);
                },
                check,
            )?;
            Ok((rho, heat, eint))
        })?;
        let nt = times.len();
        let rho = Array3::from_shape_vec((nt, d, d), rho).map_err(|e| shape_error("rho", e))?;
        let heat =
            Array2::from_shape_vec((nt, nb), heat).map_err(|e| shape_error("heat current", e))?;
        let eint = Array2::from_shape_vec((nt, nb), eint)
            .map_err(|e| shape_error("interaction energy", e))?;
        Ok((
            rho.into_pyarray(py),
            heat.into_pyarray(py),
            eint.into_pyarray(py),
        ))
    }

    /// Integration counters: steps, rejected, rhs_evaluations.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let (d, stats) = (PyDict::new(py), self.inner.stats());
        d.set_item("steps", stats.steps)?;
        d.set_item("rejected_steps", stats.rejected)?;
        d.set_item("rhs_evaluations", stats.rhs_evaluations)?;
        Ok(d)
    }

    /// The generator on rescaled ADOs (computational basis) as COO triplets: rows, cols, vals, dim.
    /// Built with the GIL released; a signal (Ctrl-C) stops it as in `propagate`.
    #[allow(clippy::type_complexity)]
    fn generator<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(
        Bound<'py, PyArray1<u64>>,
        Bound<'py, PyArray1<u64>>,
        Bound<'py, PyArray1<C64>>,
        usize,
    )> {
        let solver = &self.inner;
        let t = detached(py, None, |check| solver.generator_triplets(check))?;
        Ok((
            Array1::from_vec(t.rows).into_pyarray(py),
            Array1::from_vec(t.cols).into_pyarray(py),
            Array1::from_vec(t.vals).into_pyarray(py),
            t.dim,
        ))
    }
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(build_profile, m)?)?;
    m.add_function(wrap_pyfunction!(simd_path, m)?)?;
    m.add_function(wrap_pyfunction!(core_version, m)?)?;
    m.add_function(wrap_pyfunction!(drude_lorentz_exponents, m)?)?;
    m.add_function(wrap_pyfunction!(ado_count, m)?)?;
    m.add_function(wrap_pyfunction!(solver_memory_bytes, m)?)?;
    m.add_class::<HeomCore>()?;
    Ok(())
}
