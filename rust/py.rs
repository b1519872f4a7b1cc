//! The Python face of the Rust core: the one place where PyO3 appears and where Rust errors
//! become Python exceptions.

use crate::heom::bath::{self, BathExponents, Expansion};
use crate::heom::cancel::Check;
use crate::heom::drive::{Callback, DriveTerm, Profile, Ramp, RampShape};
use crate::heom::error::{HeomError, HeomResult};
use crate::heom::hierarchy::count_ados;
use crate::heom::linalg::C64;
use crate::heom::{memory_estimate, BathSpec, Solver};
use numpy::ndarray::{Array1, Array2, Array3};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArray3, PyReadonlyArray1, PyReadonlyArray2};
use numpy::{PyReadonlyArray3, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use std::sync::{Arc, Mutex};

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
            HeomError::NonFinite { .. }
            | HeomError::StepTooSmall { .. }
            | HeomError::Drive { .. } => IntegrationError::new_err(msg),
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
        b.exponents.iter().map(|e| e.nu.re).collect(),
        b.exponents
            .iter()
            .map(|e| e.kind.name().to_string())
            .collect(),
        b.delta,
    ))
}

fn vector(a: &PyReadonlyArray1<'_, C64>) -> Vec<C64> {
    a.as_array().iter().cloned().collect()
}

/// The exponents of C(t) = sum_k c_k e^{-nu_k t} with their conjugate partners: (c, cbar, nu),
/// a partner added (c = 0) for each complex rate that lacks one.
#[pyfunction]
#[allow(clippy::type_complexity)]
fn paired_exponents<'py>(
    py: Python<'py>,
    c: PyReadonlyArray1<'_, C64>,
    nu: PyReadonlyArray1<'_, C64>,
) -> PyResult<(
    Bound<'py, PyArray1<C64>>,
    Bound<'py, PyArray1<C64>>,
    Bound<'py, PyArray1<C64>>,
)> {
    let b = bath::generic(&vector(&c), &vector(&nu), 0.0)?;
    let column = |f: fn(&bath::Exponent) -> C64| {
        Array1::from_vec(b.exponents.iter().map(f).collect()).into_pyarray(py)
    };
    Ok((column(|e| e.c), column(|e| e.cbar), column(|e| e.nu)))
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
    /// The exception a drive's Python profile raised, re-raised as itself after the propagation.
    drive_exception: Arc<Mutex<Option<PyErr>>>,
}

#[pymethods]
impl HeomCore {
    /// baths: list of (Q (d, d), c (K,), cbar (K,), nu (K,), delta float), the arrays complex:
    /// C(t) = sum_k c_k e^{-nu_k t}, C(t)* = sum_k cbar_k e^{-nu_k t}.
    #[new]
    #[pyo3(signature = (h, baths, depth, rtol, atol, max_step))]
    #[allow(clippy::type_complexity)]
    fn new(
        h: PyReadonlyArray2<'_, C64>,
        baths: Vec<(
            PyReadonlyArray2<'_, C64>,
            PyReadonlyArray1<'_, C64>,
            PyReadonlyArray1<'_, C64>,
            PyReadonlyArray1<'_, C64>,
            f64,
        )>,
        depth: usize,
        rtol: f64,
        atol: f64,
        max_step: f64,
    ) -> PyResult<Self> {
        let (d, hv) = matrix(&h);
        let mut specs = Vec::with_capacity(baths.len());
        for (q, c, cbar, nu, delta) in &baths {
            let (_, qv) = matrix(q);
            let exps: BathExponents = bath::paired(&vector(c), &vector(cbar), &vector(nu), *delta)?;
            specs.push(BathSpec { q: qv, exps });
        }
        let inner = Solver::new(d, &hv, specs, depth, rtol, atol, max_step)?;
        Ok(HeomCore {
            inner,
            drive_exception: Arc::new(Mutex::new(None)),
        })
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

    /// Replace the drive terms f_k(t) V_k: a list of (V (d, d), profile), the profile either a
    /// ramp ("linear" | "sin2", start, duration, from, to) or a callable f(t) -> float.
    fn set_drive(
        &mut self,
        terms: Vec<(PyReadonlyArray2<'_, C64>, Bound<'_, PyAny>)>,
    ) -> PyResult<()> {
        let mut drive = Vec::with_capacity(terms.len());
        for (v, profile) in &terms {
            let (_, vv) = matrix(v);
            let profile = if let Ok(ramp) = profile.cast::<PyTuple>() {
                let (shape, start, duration, from, to): (String, f64, f64, f64, f64) =
                    ramp.extract()?;
                Profile::Ramp(Ramp::new(
                    RampShape::parse(&shape)?,
                    start,
                    duration,
                    from,
                    to,
                )?)
            } else if profile.is_callable() {
                let f: Py<PyAny> = profile.clone().unbind();
                let slot = Arc::clone(&self.drive_exception);
                let callback: Callback = Arc::new(move |t| {
                    Python::attach(|py| f.call1(py, (t,)).and_then(|r| r.extract::<f64>(py)))
                        .map_err(|exc| {
                            let message = exc.to_string();
                            *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(exc);
                            message
                        })
                });
                Profile::Callback(callback)
            } else {
                return Err(HeomError::invalid(
                    "drive",
                    "a drive's profile must be a ramp tuple or a callable f(t)",
                )
                .into());
            };
            drive.push(DriveTerm { v: vv, profile });
        }
        Ok(self.inner.set_drive(drive)?)
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
        let outcome = detached(py, progress, |check| {
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
        });
        let raised = self
            .drive_exception
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let (rho, heat, eint) = match (outcome, raised) {
            (Err(_), Some(exc)) => return Err(exc),
            (outcome, _) => outcome?,
        };
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
    m.add_function(wrap_pyfunction!(paired_exponents, m)?)?;
    m.add_function(wrap_pyfunction!(ado_count, m)?)?;
    m.add_function(wrap_pyfunction!(solver_memory_bytes, m)?)?;
    m.add_class::<HeomCore>()?;
    Ok(())
}
