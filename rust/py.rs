//! The Python face of the Rust core: the one place where PyO3 appears and where Rust errors
//! become Python exceptions.

use crate::heom::bath::{self, BathExponents, Expansion};
use crate::heom::cancel::Check;
use crate::heom::error::{HeomError, HeomResult};
use crate::heom::hierarchy::count_ados;
use crate::heom::linalg::C64;
use crate::heom::solver::{memory_estimate, BathSpec, Solver};
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

/// Convert a core error into the matching exception of `qpump.errors` (an interruption whose
/// cause is unknown into KeyboardInterrupt).
fn to_py(py: Python<'_>, err: HeomError) -> PyErr {
    let class = match err {
        HeomError::InvalidParameter { .. } => "InvalidParameterError",
        HeomError::NonFinite { .. } | HeomError::StepTooSmall { .. } => "IntegrationError",
        HeomError::Interrupted => {
            return pyo3::exceptions::PyKeyboardInterrupt::new_err(err.to_string())
        }
    };
    let msg = err.to_string();
    match py
        .import("qpump.errors")
        .and_then(|m| m.getattr(class))
        .and_then(|c| c.call1((msg.clone(),)))
    {
        Ok(exc) => PyErr::from_value(exc),
        Err(_) => pyo3::exceptions::PyValueError::new_err(msg),
    }
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
    res.map_err(|err| raised.take().unwrap_or_else(|| to_py(py, err)))
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
            return Err(to_py(
                py,
                HeomError::invalid(
                    "expansion",
                    format!("expansion = {other:?} must be 'matsubara' or 'pade'"),
                ),
            ))
        }
    };
    let b = bath::drude_lorentz(kappa, gamma, temperature, n_exp, exp, terminator)
        .map_err(|e| to_py(py, e))?;
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
    #[pyo3(signature = (h, baths, depth, rtol, atol, max_step, method="adams"))]
    #[allow(clippy::type_complexity, clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
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
        method: &str,
    ) -> PyResult<Self> {
        let (d, hv) = matrix(&h);
        let mut specs = Vec::with_capacity(baths.len());
        for (q, c, nu, delta) in &baths {
            let (_, qv) = matrix(q);
            let c: Vec<C64> = c.as_array().iter().cloned().collect();
            let nu: Vec<f64> = nu.as_array().iter().cloned().collect();
            let exps: BathExponents = bath::generic(&c, &nu, *delta).map_err(|e| to_py(py, e))?;
            specs.push(BathSpec { q: qv, exps });
        }
        let mut inner =
            Solver::new(d, &hv, specs, depth, rtol, atol, max_step).map_err(|e| to_py(py, e))?;
        inner.adams_method = match method {
            "etdrk4" => false,
            "adams" => true,
            other => {
                return Err(to_py(
                    py,
                    HeomError::invalid(
                        "method",
                        format!("method = {other:?} must be 'etdrk4' or 'adams'"),
                    ),
                ))
            }
        };
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
        self.inner.t
    }

    /// ADO labels, shape (n_ados, K).
    fn labels<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<i64>>> {
        let k = self.inner.hier.n_exponents;
        let n = self.inner.n_ados();
        let v: Vec<i64> = self.inner.hier.labels.iter().map(|&x| x as i64).collect();
        let arr = Array2::from_shape_vec((n, k), v)
            .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))?;
        Ok(arr.into_pyarray(py))
    }

    /// Rescaling factors s_a (rho_a = s_a r_a).
    fn ado_scales<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        Array1::from_vec(self.inner.ado_scales()).into_pyarray(py)
    }

    /// Replace the system Hamiltonian; the hierarchy and ADOs are kept.
    fn set_hamiltonian(&mut self, py: Python<'_>, h: PyReadonlyArray2<'_, C64>) -> PyResult<()> {
        let (d, hv) = matrix(&h);
        if d != self.inner.d || h.shape()[1] != d {
            return Err(to_py(
                py,
                HeomError::invalid(
                    "H",
                    format!(
                        "H must have shape ({0}, {0}), got {1:?}",
                        self.inner.d,
                        h.shape()
                    ),
                ),
            ));
        }
        self.inner.set_hamiltonian(&hv).map_err(|e| to_py(py, e))
    }

    /// Load all ADOs (unscaled, shape (n_ados, d, d)) at time t.
    fn set_state(
        &mut self,
        py: Python<'_>,
        t: f64,
        ados: PyReadonlyArray3<'_, C64>,
    ) -> PyResult<()> {
        let v: Vec<C64> = ados.as_array().iter().cloned().collect();
        self.inner.set_state(t, &v).map_err(|e| to_py(py, e))
    }

    /// Integrate the deviation from the stationary hierarchy `ados` (unscaled, shape
    /// (n_ados, d, d)) of the current H; returns its stationarity residual max |L y|.
    fn set_reference(&mut self, py: Python<'_>, ados: PyReadonlyArray3<'_, C64>) -> PyResult<f64> {
        let v: Vec<C64> = ados.as_array().iter().cloned().collect();
        self.inner.set_reference(&v).map_err(|e| to_py(py, e))
    }

    /// Integrate the whole state again.
    fn clear_reference(&mut self) {
        self.inner.clear_reference();
    }

    /// All ADOs (unscaled), shape (n_ados, d, d).
    fn state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray3<C64>>> {
        let d = self.inner.d;
        let arr = Array3::from_shape_vec((self.inner.n_ados(), d, d), self.inner.state())
            .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))?;
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
        let d = solver.d;
        let nb = solver.baths.len();
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
        let shape_err = |e: numpy::ndarray::ShapeError| {
            pyo3::exceptions::PyRuntimeError::new_err(e.to_string())
        };
        let rho = Array3::from_shape_vec((nt, d, d), rho).map_err(shape_err)?;
        let heat = Array2::from_shape_vec((nt, nb), heat).map_err(shape_err)?;
        let eint = Array2::from_shape_vec((nt, nb), eint).map_err(shape_err)?;
        Ok((
            rho.into_pyarray(py),
            heat.into_pyarray(py),
            eint.into_pyarray(py),
        ))
    }

    /// Integration counters: steps, rejected, rhs_evaluations.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("steps", self.inner.stats.steps)?;
        d.set_item("rejected_steps", self.inner.stats.rejected)?;
        d.set_item("rhs_evaluations", self.inner.stats.rhs_evaluations)?;
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
    m.add_function(wrap_pyfunction!(core_version, m)?)?;
    m.add_function(wrap_pyfunction!(drude_lorentz_exponents, m)?)?;
    m.add_function(wrap_pyfunction!(ado_count, m)?)?;
    m.add_function(wrap_pyfunction!(solver_memory_bytes, m)?)?;
    m.add_class::<HeomCore>()?;
    Ok(())
}
