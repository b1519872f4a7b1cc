//! Variable-step, variable-order exponential Adams predictor-corrector (PECE) in the
//! interaction picture (docs/integrator.md).
//!
//! In the interaction picture of H every ADO obeys w_a' = -g_a w_a + G(t, w), where G is the
//! tier coupling (plus terminator) with the rotating coupling operators Q_I(t) and the scalar
//! decay g_a = sum_k n_k nu_k is treated exactly, so that the step is set by accuracy (the Bohr
//! frequencies and the coupling strength), not by the largest decay rate. The forcing G is
//! interpolated by the polynomial through its values at the
//! last k steps (predictor, exponential Adams-Bashforth of order k) and, after one evaluation at
//! the predicted point, through that value as well (corrector, exponential Adams-Moulton); the
//! integrals of e^{-g (t - s)} times the interpolant are exact (phi-functions). The
//! predictor-corrector difference controls the step. Every k + 1 steps (and after a rejection)
//! the same difference is also formed for the predictors of order k - 1 and k + 1, and the
//! order that allows the longest next step is taken: high orders while the forcing oscillates,
//! low ones (larger stability region) once a decaying solution has made the steps long. Two
//! coupling sweeps per step.

use super::cancel::{Check, Throttle};
use super::error::{HeomError, HeomResult};
use super::linalg::C64;
use super::model::Model;
use super::observables::{observe, observe_at, Observation};
use super::rhs::PARALLEL_MIN_ADOS;
use super::state::State;
use rayon::prelude::*;
use std::collections::HashMap;

/// Highest predictor order.
pub const MAX_ORDER: usize = 8;

/// Most interpolation nodes a step uses (the corrector's and the order k + 1 predictor's).
const MAX_NODES: usize = MAX_ORDER + 1;
/// Longest phi list a step needs: phi_0 .. phi_{MAX_NODES + 1}.
const MAX_PHI: usize = MAX_NODES + 2;
/// 1/i for the phi series (the divisions were its critical path).
const RECIPROCALS: [f64; 64 + MAX_PHI] = {
    let mut r = [0.0; 64 + MAX_PHI];
    let mut i = 1;
    while i < r.len() {
        r[i] = 1.0 / i as f64;
        i += 1;
    }
    r
};

/// phi_0 .. phi_n of a real argument z into `out` (n = out.len() - 1), without allocating:
/// phi_k(z) = sum_i z^i / (i + k)!.
fn phi_into(z: f64, out: &mut [f64]) {
    let n = out.len() - 1;
    let mut inv_fact_n = 1.0;
    for k in 1..=n {
        inv_fact_n /= k as f64;
    }
    if z.abs() < 2.0 {
        // phi_n by its series, then phi_k = 1/k! + z phi_{k+1} downwards (stable for |z| < 2).
        let mut term = inv_fact_n;
        let mut sum = term;
        for i in 1..60 {
            let recip = RECIPROCALS
                .get(i + n)
                .copied()
                .unwrap_or(1.0 / (i + n) as f64);
            term *= z * recip;
            sum += term;
            if term.abs() < 1e-18 * sum.abs() {
                break;
            }
        }
        out[n] = sum;
        let mut inv_fact = inv_fact_n;
        for k in (0..n).rev() {
            inv_fact *= (k + 1) as f64;
            out[k] = inv_fact + z * out[k + 1];
        }
    } else {
        out[0] = z.exp();
        let mut inv_fact = 1.0;
        for k in 1..=n {
            out[k] = (out[k - 1] - inv_fact) / z;
            inv_fact /= k as f64;
        }
    }
}

/// The Lagrange basis polynomials on at most [`MAX_NODES`] nodes, as monomial coefficients
/// (`coef[j][m]`: coefficient of s^m in l_j(s)), held inline so that building them allocates
/// nothing.
#[derive(Debug, Clone, Copy)]
struct Basis {
    n: usize,
    coef: [[f64; MAX_NODES]; MAX_NODES],
}

impl Basis {
    fn new(nodes: &[f64]) -> Self {
        let n = nodes.len();
        assert!(n <= MAX_NODES, "at most {MAX_NODES} interpolation nodes");
        let mut coef = [[0.0; MAX_NODES]; MAX_NODES];
        for (j, c) in coef.iter_mut().enumerate().take(n) {
            c[0] = 1.0;
            let mut len = 1;
            for (m, &tm) in nodes.iter().enumerate() {
                if m == j {
                    continue;
                }
                // c <- c (s - tm) / (t_j - tm), from the top coefficient down
                let den = nodes[j] - tm;
                for i in (0..=len).rev() {
                    let below = if i > 0 { c[i - 1] / den } else { 0.0 };
                    let here = if i < len { c[i] * tm / den } else { 0.0 };
                    c[i] = below - here;
                }
                len += 1;
            }
        }
        Basis { n, coef }
    }

    /// Weights b_j = sum_m coef[j][m] moments[m] into `out[..n]`.
    fn weights_into(&self, moments: &[f64], out: &mut [f64]) {
        for (o, c) in out.iter_mut().zip(&self.coef[..self.n]) {
            *o = c[..self.n]
                .iter()
                .zip(moments)
                .map(|(cm, mm)| cm * mm)
                .sum();
        }
    }
}

/// The moments m! theta^{m+1} phi_{m+1}(theta z), m = 0..n, of the step's exponential: the
/// weight of a polynomial s^m (s in units of h) in (1/h) Int_0^{theta h} e^{-g (theta h - s)}.
fn moments_into(phi: &[f64], theta: f64, out: &mut [f64]) {
    let mut fact = 1.0;
    let mut th = theta;
    for (m, o) in out.iter_mut().enumerate() {
        if m > 0 {
            fact *= m as f64;
        }
        *o = fact * th * phi[m + 1];
        th *= theta;
    }
}

/// History of the multistep method (forcing values at past accepted times, newest first).
#[derive(Debug, Clone, Default)]
struct AdamsHistory {
    slots: Vec<Vec<C64>>,
    times: Vec<f64>,
    /// `order[j]` = slot index of the j-th newest value.
    order: Vec<usize>,
    /// Order of the next step (number of history values the predictor uses).
    current: usize,
    /// Accepted steps since the order last changed.
    steps_at_order: usize,
}

impl AdamsHistory {
    fn clear(&mut self) {
        self.times.clear();
        self.order.clear();
        self.current = 1;
        self.steps_at_order = 0;
    }
}

/// The step loop the CPU runs: "avx2", or "portable" where the CPU lacks AVX2 or the
/// environment variable `QPUMP_PORTABLE` is set.
pub fn simd_path() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    if std::env::var_os("QPUMP_PORTABLE").is_none() && std::is_x86_feature_detected!("avx2") {
        return "avx2";
    }
    "portable"
}

/// Integration counters.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stats {
    pub steps: u64,
    pub rejected: u64,
    pub rhs_evaluations: u64,
}

/// rtol, atol > 0 and finite; max_step > 0 (may be infinite: no limit).
pub(super) fn check_tolerances(rtol: f64, atol: f64, max_step: f64) -> HeomResult<()> {
    for (name, value) in [("rtol", rtol), ("atol", atol), ("max_step", max_step)] {
        if !(value > 0.0 && (value.is_finite() || name == "max_step")) {
            let message = format!("{name} = {value} must be > 0");
            return Err(HeomError::invalid(name, message));
        }
    }
    Ok(())
}

/// The stepper: history, step control, statistics and work buffers.
#[derive(Debug, Clone)]
pub struct Stepper {
    rtol: f64,
    atol: f64,
    max_step: f64,
    /// Proposed next (big) step; 0 when unknown.
    h_next: f64,
    /// Decay class of each ADO and the decay rate of each class.
    class_of: Vec<u32>,
    class_decay: Vec<f64>,
    stats: Stats,
    /// The predicted, then corrected, state of the step in progress.
    x: Vec<C64>,
    adams: AdamsHistory,
    /// A drive profile's failure during the last forcing, reported after it.
    drive_error: Option<HeomError>,
}

impl Stepper {
    /// A stepper for `model` with tolerances checked by [`check_tolerances`].
    pub(super) fn new(model: &Model, rtol: f64, atol: f64, max_step: f64) -> Self {
        let mut classes: HashMap<u64, u32> = HashMap::new();
        let mut class_decay = Vec::new();
        let class_of = model
            .couplings()
            .decay
            .iter()
            .map(|g| {
                *classes.entry(g.to_bits()).or_insert_with(|| {
                    class_decay.push(*g);
                    (class_decay.len() - 1) as u32
                })
            })
            .collect();
        Stepper {
            rtol,
            atol,
            max_step,
            h_next: 0.0,
            class_of,
            class_decay,
            stats: Stats::default(),
            x: vec![C64::new(0.0, 0.0); model.n_ados() * model.dim() * model.dim()],
            adams: AdamsHistory::default(),
            drive_error: None,
        }
    }

    /// Integration counters since the stepper was built.
    pub(super) fn stats(&self) -> Stats {
        self.stats
    }

    /// Start afresh (first step unknown, no history): the state or the model has changed.
    pub(super) fn reset(&mut self) {
        self.h_next = 0.0;
        self.adams.clear();
    }

    /// G(t, y) for all ADOs into `out` (one coupling sweep).
    #[inline(always)]
    fn forcing(&mut self, model: &Model, state: &State, t: f64, y_is_state: bool, out: &mut [C64]) {
        let q = model.q_at(t - state.t_ref());
        let y: &[C64] = if y_is_state { state.w() } else { &self.x };
        let source = state.residual_source(model, t);
        model
            .couplings()
            .apply_all(model.hierarchy(), &q, y, source.as_ref(), out);
        if !model.drive().is_empty() {
            let v = model.drive_at(t - state.t_ref());
            for (term, v) in model.drive().iter().zip(&v) {
                match term.profile.value(t) {
                    Ok(f) if f != 0.0 => {
                        model.couplings().apply_drive(model.n_ados(), v, f, y, out)
                    }
                    Ok(_) => {}
                    Err(err) => self.drive_error = Some(err),
                }
            }
        }
        self.stats.rhs_evaluations += 1;
    }

    #[inline(always)]
    fn push_history(&mut self, model: &Model, state: &State, t: f64) {
        let n = state.w().len();
        let hist = &mut self.adams;
        let slot = if hist.order.len() < MAX_ORDER {
            if hist.slots.len() <= hist.order.len() {
                hist.slots.push(vec![C64::new(0.0, 0.0); n]);
            }
            // first slot not in use
            (0..hist.slots.len())
                .find(|s| !hist.order.contains(s))
                .unwrap_or(0)
        } else {
            let s = hist.order.pop().unwrap_or(0);
            hist.times.pop();
            s
        };
        let mut buf = std::mem::take(&mut self.adams.slots[slot]);
        self.forcing(model, state, t, true, &mut buf);
        self.adams.slots[slot] = buf;
        self.adams.order.insert(0, slot);
        self.adams.times.insert(0, t);
    }

    /// Integrate through the non-decreasing output `times` (the first >= the current time),
    /// calling `on_output(index, observation)` at each. Steps are not shortened to hit the
    /// output times (the corrector polynomial of tiers 0 and 1 gives the observables between
    /// steps); only the last time is landed on exactly, so the state afterwards is the state at
    /// `times[last]`.
    ///
    /// `check` is consulted between steps (see `cancel.rs`); its error stops the integration
    /// (the state stays at the end of the last completed step) and is returned.
    ///
    /// The step loop is compiled twice, for baseline x86-64 and for AVX2, and the second is taken
    /// when the CPU has AVX2 (the wheel itself stays portable) unless the environment variable
    /// `QPUMP_PORTABLE` is set ([`simd_path`]). Rust never contracts a * b + c into an FMA, so
    /// both give the same numbers bit for bit; AVX2 only does them four at a time.
    pub(super) fn propagate_cancellable<F>(
        &mut self,
        model: &Model,
        state: &mut State,
        times: &[f64],
        on_output: F,
        check: &mut Check<'_>,
    ) -> HeomResult<()>
    where
        F: FnMut(usize, Observation),
    {
        #[cfg(target_arch = "x86_64")]
        if simd_path() == "avx2" {
            // SAFETY: the CPU has every feature the function is compiled for.
            return unsafe { self.propagate_avx2(model, state, times, on_output, check) };
        }
        self.adams_loop(model, state, times, on_output, check)
    }

    /// [`Stepper::adams_loop`] compiled for AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn propagate_avx2<F>(
        &mut self,
        model: &Model,
        state: &mut State,
        times: &[f64],
        on_output: F,
        check: &mut Check<'_>,
    ) -> HeomResult<()>
    where
        F: FnMut(usize, Observation),
    {
        self.adams_loop(model, state, times, on_output, check)
    }

    #[inline(always)]
    fn adams_loop<F>(
        &mut self,
        model: &Model,
        state: &mut State,
        times: &[f64],
        mut on_output: F,
        check: &mut Check<'_>,
    ) -> HeomResult<()>
    where
        F: FnMut(usize, Observation),
    {
        let Some(&target) = times.last() else {
            return Ok(());
        };
        if times.iter().any(|t| !t.is_finite())
            || times.windows(2).any(|p| p[1] < p[0])
            || times[0] < state.time()
        {
            return Err(HeomError::invalid(
                "times",
                format!(
                    "times must be finite, non-decreasing and start at the state's time {}",
                    state.time()
                ),
            ));
        }
        let mut next = 0;
        while next < times.len() && times[next] <= state.time() {
            on_output(next, observe(model, state));
            next += 1;
        }
        if self.adams.order.is_empty() {
            self.push_history(model, state, state.time());
        }
        if let Some(err) = self.drive_error.take() {
            return Err(err);
        }
        let d2 = model.dim() * model.dim();
        let n01 = model.observed_entries().len();
        let mut gp = vec![C64::new(0.0, 0.0); state.w().len()];
        let mut failures = 0;
        let mut retrying = false;
        let mut throttle = Throttle::new(check);
        while state.time() < target {
            let t0 = state.time();
            throttle.poll(t0)?;
            if self.h_next <= 0.0 {
                self.h_next = 1e-3_f64.min(self.max_step);
            }
            let proposal = self.h_next.min(self.max_step);
            let landing = proposal >= target - t0;
            let h = if landing { target - t0 } else { proposal };
            if h < 1e-13 * t0.abs().max(1.0) {
                if landing {
                    state.land(target);
                    break;
                }
                return Err(HeomError::StepTooSmall { time: t0, step: h });
            }
            let nodes: Vec<f64> = self.adams.times.iter().map(|&s| (s - t0) / h).collect();
            // As in VODE, a new order is considered only after k + 1 steps at the current one
            // (or after a rejection), except while the history is still filling up.
            let hist = &self.adams;
            let consider =
                retrying || hist.steps_at_order > hist.current || hist.order.len() < MAX_ORDER;
            let plan = StepPlan::new(&nodes, hist.current, consider, &self.class_decay, h);
            self.predict(model, state, &plan);
            self.forcing(model, state, t0 + h, false, &mut gp);
            if let Some(err) = self.drive_error.take() {
                return Err(err);
            }
            let errs = self.correct(model, state, &plan, &gp);
            let err = errs[1];
            if !err.is_finite() {
                failures += 1;
                self.stats.rejected += 1;
                if failures > 6 {
                    return Err(HeomError::NonFinite { time: t0 });
                }
                self.h_next = 0.1 * h;
                continue;
            }
            failures = 0;
            let (order, fac) = plan.choose_order(&errs);
            if consider {
                self.adams.steps_at_order = 0;
            }
            self.adams.current = order;
            if err > 1.0 {
                self.stats.rejected += 1;
                retrying = true;
                self.h_next = h * fac.min(0.9);
                continue;
            }
            // dense output on the corrector polynomial (tiers 0 and 1)
            if next < times.len() && times[next] < t0 + h {
                let mut w01 = vec![C64::new(0.0, 0.0); n01 * d2];
                while next < times.len()
                    && times[next] < t0 + h
                    && !(landing && times[next] >= target)
                {
                    let theta = (times[next] - t0) / h;
                    self.interpolate_observed(model, state, &plan, &gp, h, theta, &mut w01);
                    on_output(next, observe_at(model, state, times[next], &w01));
                    next += 1;
                }
            }
            state.advance(if landing { target } else { t0 + h }, &mut self.x);
            self.stats.steps += 1;
            self.adams.steps_at_order += 1;
            retrying = false;
            self.h_next = if landing {
                proposal.max(h * fac).min(proposal * 2.0)
            } else {
                h * fac
            };
            self.push_history(model, state, state.time());
            if let Some(err) = self.drive_error.take() {
                return Err(err);
            }
            while next < times.len() && times[next] <= state.time() {
                on_output(next, observe(model, state));
                next += 1;
            }
        }
        while next < times.len() {
            on_output(next, observe(model, state));
            next += 1;
        }
        Ok(())
    }

    /// The corrector polynomial of the step in progress (from `w`, size h, forcing `gp` at its
    /// end) at t + theta h, for the [`Model::observed_entries`] of tiers 0 and 1, into `w01`.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn interpolate_observed(
        &self,
        model: &Model,
        state: &State,
        plan: &StepPlan,
        gp: &[C64],
        h: f64,
        theta: f64,
        w01: &mut [C64],
    ) {
        let d2 = model.dim() * model.dim();
        let (w, decay) = (state.w(), &model.couplings().decay);
        let mut phi = [0.0; MAX_PHI];
        let mut moments = [0.0; MAX_NODES];
        let mut b = [0.0; MAX_NODES];
        let history = &self.adams.order[..plan.k];
        for (a, entries) in model.observed_entries().iter().enumerate() {
            let phi = &mut phi[..plan.k + 2];
            phi_into(-theta * decay[a] * h, phi);
            moments_into(phi, theta, &mut moments[..=plan.k]);
            plan.basis_c.weights_into(&moments, &mut b);
            for &e in entries {
                let i = a * d2 + e;
                let mut v = phi[0] * w[i] + h * b[0] * gp[i];
                for (j, &s) in history.iter().enumerate() {
                    v += h * b[j + 1] * self.adams.slots[s][i];
                }
                w01[i] = v;
            }
        }
    }

    /// The order-k predictor into `x`.
    #[inline(always)]
    fn predict(&mut self, model: &Model, state: &State, plan: &StepPlan) {
        let d2 = model.dim() * model.dim();
        let mut x = std::mem::take(&mut self.x);
        let pass = BlockPass::new(self, d2, state, plan, &[]);
        if model.n_ados() >= PARALLEL_MIN_ADOS {
            x.par_chunks_mut(d2)
                .with_min_len(64)
                .enumerate()
                .for_each(|(a, o)| pass.predict(a, o));
        } else {
            for (a, o) in x.chunks_mut(d2).enumerate() {
                pass.predict(a, o);
            }
        }
        self.x = x;
    }

    /// The corrector into `x` (which holds the predictor) given the forcing `gp` at the
    /// predicted point; returns the scaled error norms of the predictors of order k - 1, k and
    /// k + 1 against it (0 for an order that is not available).
    #[inline(always)]
    fn correct(&mut self, model: &Model, state: &State, plan: &StepPlan, gp: &[C64]) -> [f64; 3] {
        let d2 = model.dim() * model.dim();
        let mut x = std::mem::take(&mut self.x);
        let pass = BlockPass::new(self, d2, state, plan, gp);
        let red = |x: [f64; 3], y: [f64; 3]| -> [f64; 3] {
            std::array::from_fn(|q| {
                if x[q].is_nan() || y[q].is_nan() {
                    f64::NAN
                } else {
                    x[q].max(y[q])
                }
            })
        };
        let scratch = || vec![C64::new(0.0, 0.0); 3 * d2];
        let total = if model.n_ados() >= PARALLEL_MIN_ADOS {
            x.par_chunks_mut(d2)
                .with_min_len(64)
                .enumerate()
                .map_init(scratch, |diffs, (a, o)| pass.correct(diffs, a, o))
                .reduce(|| [0.0; 3], red)
        } else {
            let mut diffs = scratch();
            let mut total = [0.0; 3];
            for (a, o) in x.chunks_mut(d2).enumerate() {
                total = red(total, pass.correct(&mut diffs, a, o));
            }
            total
        };
        self.x = x;
        let mut out = total.map(f64::sqrt);
        if plan.k_lo == 0 {
            out[0] = 0.0;
        }
        if plan.k_hi == 0 {
            out[2] = 0.0;
        }
        out
    }
}

/// What the predictor and corrector passes read, one ADO block at a time (plain methods rather
/// than closures, so that they inline into the AVX2 copy of the step loop).
struct BlockPass<'a> {
    d2: usize,
    plan: &'a StepPlan,
    w: &'a [C64],
    class_of: &'a [u32],
    /// History values, newest first (as many as the highest order in the plan uses).
    slots: [&'a [C64]; MAX_ORDER],
    n_slots: usize,
    gp: &'a [C64],
    rtol: f64,
    atol: f64,
}

impl<'a> BlockPass<'a> {
    fn new(
        stepper: &'a Stepper,
        d2: usize,
        state: &'a State,
        plan: &'a StepPlan,
        gp: &'a [C64],
    ) -> Self {
        let hist = &stepper.adams;
        let n_slots = plan.k_hi.max(plan.k);
        let mut slots: [&[C64]; MAX_ORDER] = [&[]; MAX_ORDER];
        for (dst, &s) in slots.iter_mut().zip(&hist.order[..n_slots]) {
            *dst = &hist.slots[s][..];
        }
        BlockPass {
            d2,
            plan,
            w: state.w(),
            class_of: &stepper.class_of,
            slots,
            n_slots,
            gp,
            rtol: stepper.rtol,
            atol: stepper.atol,
        }
    }

    /// The order-k predictor of ADO `a` into `o`.
    #[inline(always)]
    fn predict(&self, a: usize, o: &mut [C64]) {
        let row = self.plan.row(self.class_of[a] as usize);
        let range = a * self.d2..(a + 1) * self.d2;
        for (oe, we) in o.iter_mut().zip(&self.w[range.clone()]) {
            *oe = row.decay * we;
        }
        for (b, sl) in row.pred.iter().zip(&self.slots[..self.plan.k]) {
            for (oe, se) in o.iter_mut().zip(&sl[range.clone()]) {
                *oe += b * se;
            }
        }
    }

    /// The corrector of ADO `a` into `o` (which holds the predictor); returns the squared scaled
    /// errors of the order k - 1, k and k + 1 predictors. `diffs` holds 3 d^2 values.
    ///
    /// The corrector minus each predictor is accumulated slot by slot over the whole block so
    /// that the inner loops vectorise.
    #[inline(always)]
    fn correct(&self, diffs: &mut [C64], a: usize, o: &mut [C64]) -> [f64; 3] {
        let d2 = self.d2;
        let row = self.plan.row(self.class_of[a] as usize);
        let range = a * d2..(a + 1) * d2;
        let slots = &self.slots[..self.n_slots];
        let neighbours = self.plan.k_lo > 0 || self.plan.k_hi > 0;
        let (dk, rest) = diffs.split_at_mut(d2);
        let (dlo, dhi) = rest.split_at_mut(d2);
        for (x, g) in dk.iter_mut().zip(&self.gp[range.clone()]) {
            *x = row.corr * g;
        }
        if neighbours {
            dlo.copy_from_slice(dk);
            dhi.copy_from_slice(dk);
            for (j, sl) in slots.iter().enumerate() {
                let (bk, blo, bhi) = (row.diff_k[j], row.diff_lo[j], row.diff_hi[j]);
                for (((xk, xlo), xhi), y) in dk
                    .iter_mut()
                    .zip(dlo.iter_mut())
                    .zip(dhi.iter_mut())
                    .zip(&sl[range.clone()])
                {
                    *xk += bk * y;
                    *xlo += blo * y;
                    *xhi += bhi * y;
                }
            }
        } else {
            for (j, sl) in slots.iter().enumerate() {
                let bk = row.diff_k[j];
                for (xk, y) in dk.iter_mut().zip(&sl[range.clone()]) {
                    *xk += bk * y;
                }
            }
        }
        // The scale is sc^2 = atol^2 + rtol^2 |y|^2 (no square root) and the maxima are plain
        // comparisons, so that the loop vectorises; a NaN anywhere reaches `probe`.
        let (atol2, rtol2) = (self.atol * self.atol, self.rtol * self.rtol);
        let mut worst = [0.0_f64; 3];
        let mut probe = 0.0;
        for (e, (oe, we)) in o.iter_mut().zip(&self.w[range]).enumerate() {
            let v = *oe + dk[e];
            let inv = 1.0 / (atol2 + rtol2 * we.norm_sqr().max(v.norm_sqr()));
            let r = dk[e].norm_sqr() * inv;
            if r > worst[1] {
                worst[1] = r;
            }
            probe += r;
            if neighbours {
                let (rlo, rhi) = (dlo[e].norm_sqr() * inv, dhi[e].norm_sqr() * inv);
                if rlo > worst[0] {
                    worst[0] = rlo;
                }
                if rhi > worst[2] {
                    worst[2] = rhi;
                }
                probe += rlo + rhi;
            }
            *oe = v;
        }
        if probe.is_nan() {
            return [f64::NAN; 3];
        }
        worst
    }
}

/// Weights of one decay class for one step, all multiplied by h.
struct ClassRow<'a> {
    decay: f64,
    /// Order-k predictor weights of the k newest history values.
    pred: &'a [f64],
    /// Corrector weight of the forcing at the predicted point.
    corr: f64,
    /// Corrector minus order-k (k - 1, k + 1) predictor weights of the history values.
    diff_k: &'a [f64],
    diff_lo: &'a [f64],
    diff_hi: &'a [f64],
}

/// Everything one step needs that does not depend on the ADO values: the orders, the Lagrange
/// bases and the weights of every decay class.
struct StepPlan {
    k: usize,
    /// Neighbouring orders whose errors are estimated (0: not available).
    k_lo: usize,
    k_hi: usize,
    /// The corrector's basis (the predicted point, then the k newest history values).
    basis_c: Basis,
    /// Per class: e^{-g h}, then 1 + 4 * MAX_ORDER weights (see [`ClassRow`]).
    table: Vec<f64>,
}

const ROW: usize = 2 + 4 * MAX_ORDER;

impl StepPlan {
    /// Plan a step of size h from the history `nodes` ((s - t)/h, newest first) at order
    /// `order` (capped by the history length), estimating the errors of the neighbouring
    /// orders if `consider`.
    fn new(nodes: &[f64], order: usize, consider: bool, class_decay: &[f64], h: f64) -> Self {
        let n_hist = nodes.len();
        let k = order.clamp(1, n_hist);
        let k_lo = if consider { k - 1 } else { 0 };
        let k_hi = if consider && k < n_hist { k + 1 } else { 0 };
        let basis_k = Basis::new(&nodes[..k]);
        let basis_lo = Basis::new(&nodes[..k_lo]);
        let basis_hi = Basis::new(&nodes[..k_hi]);
        let mut nodes_c = [1.0; MAX_NODES];
        nodes_c[1..=k].copy_from_slice(&nodes[..k]);
        let basis_c = Basis::new(&nodes_c[..=k]);
        let n_moments = k + 1;
        let mut table = vec![0.0; class_decay.len() * ROW];
        let mut phi = [0.0; MAX_PHI];
        let mut moments = [0.0; MAX_NODES];
        let (mut bk, mut bc, mut blo, mut bhi) = (
            [0.0; MAX_NODES],
            [0.0; MAX_NODES],
            [0.0; MAX_NODES],
            [0.0; MAX_NODES],
        );
        for (row, &g) in table.chunks_exact_mut(ROW).zip(class_decay) {
            let phi = &mut phi[..n_moments + 1];
            phi_into(-g * h, phi);
            moments_into(phi, 1.0, &mut moments[..n_moments]);
            basis_k.weights_into(&moments, &mut bk);
            basis_c.weights_into(&moments, &mut bc);
            basis_lo.weights_into(&moments, &mut blo);
            basis_hi.weights_into(&moments, &mut bhi);
            row[0] = phi[0];
            row[1] = h * bc[0];
            let (pred, rest) = row[2..].split_at_mut(MAX_ORDER);
            let (diff_k, rest) = rest.split_at_mut(MAX_ORDER);
            let (diff_lo, diff_hi) = rest.split_at_mut(MAX_ORDER);
            // weights past a basis's length are 0 (that history value is not used)
            let at = |b: &[f64; MAX_NODES], basis: &Basis, j: usize| {
                if j < basis.n {
                    b[j]
                } else {
                    0.0
                }
            };
            for j in 0..MAX_ORDER {
                let c = at(&bc, &basis_c, j + 1);
                let pk = at(&bk, &basis_k, j);
                pred[j] = h * pk;
                diff_k[j] = h * (c - pk);
                diff_lo[j] = h * (c - at(&blo, &basis_lo, j));
                diff_hi[j] = h * (c - at(&bhi, &basis_hi, j));
            }
        }
        StepPlan {
            k,
            k_lo,
            k_hi,
            basis_c,
            table,
        }
    }

    fn row(&self, class: usize) -> ClassRow<'_> {
        let r = &self.table[class * ROW..(class + 1) * ROW];
        let n = self.k_hi.max(self.k);
        let part = |i: usize| &r[2 + i * MAX_ORDER..2 + i * MAX_ORDER + n];
        ClassRow {
            decay: r[0],
            pred: &part(0)[..self.k],
            corr: r[1],
            diff_k: part(1),
            diff_lo: part(2),
            diff_hi: part(3),
        }
    }

    /// The order for the next step and its step-size factor, from the error norms of the
    /// predictors of order k - 1, k and k + 1: the order that allows the longest step, the
    /// higher one on a tie (so that the order climbs while the steps are still limited by
    /// their growth bound rather than by the error).
    fn choose_order(&self, errs: &[f64; 3]) -> (usize, f64) {
        let factor = |err: f64, q: usize| {
            (0.9 * err.max(1e-10).powf(-1.0 / (q as f64 + 1.0))).clamp(0.2, 2.0)
        };
        let mut best = (self.k, factor(errs[1], self.k));
        if self.k_lo > 0 {
            let f = factor(errs[0], self.k_lo);
            if f > best.1 {
                best = (self.k_lo, f);
            }
        }
        if self.k_hi > 0 {
            let f = factor(errs[2], self.k_hi);
            if f >= best.1 {
                best = (self.k_hi, f);
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// phi_0 .. phi_n of a real argument.
    fn phi_list(z: f64, n: usize) -> Vec<f64> {
        let mut out = vec![0.0; n + 1];
        phi_into(z, &mut out);
        out
    }

    /// Weights b_j = (1/h) Int_0^{theta h} e^{-g (theta h - s)} l_j(s/h) ds for decay z = -g h.
    fn weights(nodes: &[f64], z: f64, theta: f64) -> Vec<f64> {
        let basis = Basis::new(nodes);
        let phi = phi_list(theta * z, nodes.len() + 1);
        let mut moments = vec![0.0; nodes.len()];
        moments_into(&phi, theta, &mut moments);
        let mut out = vec![0.0; nodes.len()];
        basis.weights_into(&moments, &mut out);
        out
    }

    use crate::heom::bath::{self, Expansion};
    use crate::heom::cancel::never;
    use crate::heom::model::BathSpec;
    use crate::heom::steady::generator_triplets;
    use crate::heom::testing::random_hermitian;

    /// Error at t = 1 of `1 / h` fixed steps of order k (k history values) of the stepper's
    /// predictor-corrector weights on y' = -g y + lam y, y(0) = 1, started from exact values:
    /// the decay g is treated exactly, the forcing lam y by the interpolating polynomials.
    fn fixed_step_error(k: usize, h: f64) -> f64 {
        let (g, lam) = (1.0, C64::new(-0.3, 2.0));
        let exact = |t: f64| ((lam - g) * t).exp();
        let mut history: Vec<C64> = (0..k).map(|j| lam * exact(-(j as f64) * h)).collect();
        let nodes: Vec<f64> = (0..k).map(|j| -(j as f64)).collect();
        let plan = StepPlan::new(&nodes, k, false, &[g], h);
        let row = plan.row(0);
        let n = (1.0 / h).round() as usize;
        let mut y = exact(0.0);
        for _ in 0..n {
            let mut predicted = row.decay * y;
            for (b, f) in row.pred.iter().zip(&history) {
                predicted += b * f;
            }
            let mut corrected = predicted + row.corr * lam * predicted;
            for (b, f) in row.diff_k.iter().zip(&history) {
                corrected += b * f;
            }
            y = corrected;
            history.insert(0, lam * y);
            history.truncate(k);
        }
        (y - exact(n as f64 * h)).norm()
    }

    /// With k history values the PECE pair converges with order k + 1 (the corrector's).
    #[test]
    fn fixed_steps_converge_with_order_k_plus_1() {
        for k in 1..=5 {
            let (coarse, fine) = (fixed_step_error(k, 0.05), fixed_step_error(k, 0.025));
            let order = (coarse / fine).log2();
            assert!(
                (order - (k + 1) as f64).abs() < 0.3,
                "k = {k}: observed order {order} ({coarse:.2e} -> {fine:.2e})"
            );
        }
    }

    /// A qubit with two Drude-Lorentz baths at depth 3 (a HEOM small enough to solve exactly):
    /// the stepper, the exact rho(t) = [exp(L t) y0]_0 at `times` from the assembled generator,
    /// and the stepper's rho at those times.
    fn qubit_against_exact(
        rtol: f64,
        times: &[f64],
        first_step: f64,
    ) -> (Stepper, Vec<Vec<C64>>, Vec<Vec<C64>>) {
        let (o, x, i) = (C64::new(0.0, 0.0), C64::new(1.0, 0.0), C64::new(0.0, 1.0));
        let h = vec![C64::new(-0.5, 0.0), 0.2 * x, 0.2 * x, C64::new(0.5, 0.0)];
        let b1 = bath::drude_lorentz(0.1, 1.0, 1.0, 1, Expansion::Matsubara, true).unwrap();
        let b2 = bath::drude_lorentz(0.05, 2.0, 0.5, 1, Expansion::Pade, true).unwrap();
        let baths = vec![
            BathSpec {
                q: vec![o, x, x, o],
                exps: b1,
            },
            BathSpec {
                q: vec![o, -i, i, o],
                exps: b2,
            },
        ];
        let model = Model::new(2, &h, baths, 3).unwrap();
        let (mut state, mut s) = (
            State::new(&model),
            Stepper::new(&model, rtol, 1e-2 * rtol, f64::INFINITY),
        );
        let mut y = vec![o; model.n_ados() * 4];
        y[..4].copy_from_slice(&[C64::new(0.8, 0.0), 0.3 - 0.1 * i, 0.3 + 0.1 * i, 0.2 * x]);
        state.load(&model, 0.0, &y).unwrap();
        s.reset();
        s.h_next = first_step;
        // exp(L t) y0 by Taylor steps of norm <= 0.5 (y0 is its own rescaled form: only rho)
        let g = generator_triplets(&model, &mut never).unwrap();
        let apply = |v: &[C64]| {
            let mut out = vec![o; v.len()];
            for ((&r, &c), &val) in g.rows.iter().zip(&g.cols).zip(&g.vals) {
                out[r as usize] += val * v[c as usize];
            }
            out
        };
        let mut row_sums = vec![0.0; y.len()];
        for (&r, v) in g.rows.iter().zip(&g.vals) {
            row_sums[r as usize] += v.norm();
        }
        let norm = row_sums.iter().fold(0.0, |m: f64, &x| m.max(x));
        let mut exact = Vec::new();
        let mut t = 0.0;
        for &target in times {
            let n = ((target - t) * norm / 0.5).ceil().max(1.0) as usize;
            let dt = (target - t) / n as f64;
            for _ in 0..n {
                let mut term = y.clone();
                for m in 1..30 {
                    term = apply(&term).iter().map(|v| v * (dt / m as f64)).collect();
                    y.iter_mut().zip(&term).for_each(|(a, b)| *a += b);
                }
            }
            t = target;
            exact.push(y[..4].to_vec());
        }
        let mut got = Vec::new();
        let push = |_, obs: Observation| got.push(obs.rho);
        s.propagate_cancellable(&model, &mut state, times, push, &mut never)
            .unwrap();
        (s, exact, got)
    }

    fn max_error(a: &[Vec<C64>], b: &[Vec<C64>]) -> f64 {
        a.iter()
            .flatten()
            .zip(b.iter().flatten())
            .map(|(x, y)| (x - y).norm())
            .fold(0.0, f64::max)
    }

    /// Through the whole stepper (variable step and order), the error against the exact
    /// solution follows the tolerance down.
    #[test]
    fn error_against_the_exact_solution_follows_the_tolerance() {
        let times = [0.0, 2.0, 5.0, 10.0];
        let mut last = f64::INFINITY;
        for rtol in [1e-5, 1e-7, 1e-9] {
            let (_, exact, got) = qubit_against_exact(rtol, &times, 0.0);
            let err = max_error(&exact, &got);
            assert!(
                err < 10.0 * rtol && err < 0.1 * last,
                "rtol {rtol}: error {err}"
            );
            last = err;
        }
    }

    /// A first step far too long for the tolerance is rejected and retried shorter; the result
    /// is as accurate as from the default first step.
    #[test]
    fn too_long_a_step_is_rejected_and_retried() {
        let times = [0.0, 10.0];
        let (s, exact, got) = qubit_against_exact(1e-8, &times, 8.0);
        assert!(s.stats.rejected > 0, "no rejection");
        assert!(s.stats.steps > 10, "{} steps", s.stats.steps);
        assert!(max_error(&exact, &got) < 1e-7);
    }

    /// Output times between steps are served by the corrector polynomial (dense output), as
    /// accurate as the steps themselves.
    #[test]
    fn dense_output_between_steps_matches_the_exact_solution() {
        let times: Vec<f64> = (0..=2000).map(|n| 0.005 * n as f64).collect();
        let (s, exact, got) = qubit_against_exact(1e-8, &times, 0.0);
        let steps = s.stats.steps as usize;
        assert!(
            4 * steps < times.len(),
            "{steps} steps: few outputs between steps"
        );
        assert_eq!(got.len(), times.len());
        assert!(max_error(&exact, &got) < 1e-7);
    }

    /// A check that fails on its third call stops the stepper between two steps with its
    /// error; the state is then that of a completed step, from which the solver goes on.
    #[test]
    fn failing_check_interrupts_the_propagation() {
        let (o, x) = (C64::new(0.0, 0.0), C64::new(1.0, 0.0));
        let mut seed = 5;
        let h = random_hermitian(2, &mut seed);
        let exps = bath::drude_lorentz(0.05, 1.0, 1.0, 2, Expansion::Matsubara, true).unwrap();
        let baths = vec![BathSpec {
            q: vec![o, x, x, o],
            exps,
        }];
        // max_step keeps the steps short: the target is out of reach
        let model = Model::new(2, &h, baths, 3).unwrap();
        let (mut state, mut s) = (State::new(&model), Stepper::new(&model, 1e-8, 1e-10, 0.01));
        let mut ados = vec![o; model.n_ados() * 4];
        ados[0] = x;
        state.load(&model, 0.0, &ados).unwrap();
        s.reset();
        let mut calls = 0;
        let mut outputs = 0;
        let mut check = |_: f64| {
            calls += 1;
            if calls < 3 {
                Ok(())
            } else {
                Err(HeomError::Interrupted)
            }
        };
        let res = s.propagate_cancellable(
            &model,
            &mut state,
            &[0.0, 1e9],
            |_, _| outputs += 1,
            &mut check,
        );
        assert_eq!(res, Err(HeomError::Interrupted));
        assert_eq!(calls, 3);
        assert_eq!(outputs, 1);
        let t = state.time();
        assert!(t > 0.0 && t < 1e9 && s.stats.steps > 0, "t = {t}");
        let mut trace = C64::new(0.0, 0.0);
        let last = |_, obs: Observation| trace = obs.rho[0] + obs.rho[3];
        s.propagate_cancellable(&model, &mut state, &[t, t + 0.1], last, &mut never)
            .unwrap();
        // The trace is kept to rounding, which accumulates by about 4e-17 a step (measured), and
        // how many steps of 0.01 fit in the three check intervals depends on the machine and the
        // build: about 30,000 in a release build, 1.2e-12 off.
        let bound = f64::max(1e-12, s.stats.steps as f64 * f64::EPSILON);
        assert!(
            (trace - 1.0).norm() < bound,
            "trace {trace} after {} steps",
            s.stats.steps
        );
        assert_eq!(HeomError::Interrupted.to_string(), "interrupted");
    }

    #[test]
    fn basis_is_lagrange_on_its_nodes() {
        let nodes = [1.0, 0.0, -0.8, -1.7, -2.3, -3.1, -4.0, -4.6, -5.5];
        for n in 0..=MAX_NODES {
            let basis = Basis::new(&nodes[..n]);
            for (j, c) in basis.coef[..n].iter().enumerate() {
                for (i, &t) in nodes[..n].iter().enumerate() {
                    let value: f64 = c[..n].iter().rev().fold(0.0, |acc, cm| acc * t + cm);
                    let expected = if i == j { 1.0 } else { 0.0 };
                    assert!(
                        (value - expected).abs() < 1e-9,
                        "n {n}, l_{j}({t}) = {value}"
                    );
                }
            }
        }
    }

    #[test]
    fn weights_integrate_polynomials_exactly() {
        // y' = -g y + s^2 from 0: y(h) = Int_0^h e^{-g(h-s)} s^2 ds
        let (g, h) = (3.0, 0.4);
        let nodes = [1.0, 0.0, -0.7, -1.5];
        let b = weights(&nodes, -g * h, 1.0);
        let approx: f64 = nodes
            .iter()
            .zip(&b)
            .map(|(th, bj)| h * bj * (th * h).powi(2))
            .sum();
        // exact integral by Simpson on a fine grid
        let n = 20000;
        let mut exact = 0.0;
        for i in 0..=n {
            let s = h * i as f64 / n as f64;
            let wgt = if i == 0 || i == n {
                1.0
            } else if i % 2 == 1 {
                4.0
            } else {
                2.0
            };
            exact += wgt * (-g * (h - s)).exp() * s * s;
        }
        exact *= h / n as f64 / 3.0;
        assert!((approx - exact).abs() < 1e-12, "{approx} vs {exact}");
    }

    /// phi_0 .. phi_6 obey their recursion phi_k = z phi_{k+1} + 1/k! on both sides of the
    /// switch between the series (|z| < 2) and the recursion from e^z (|z| >= 2), and agree
    /// across it.
    #[test]
    fn phi_functions_are_continuous_across_the_branch_switch() {
        for z in [-1.999999, -2.0, -2.000001, -1e-9, 0.0, -0.5, -3.0, -40.0] {
            let p = phi_list(z, 6);
            let mut inv_fact = 1.0;
            for k in 0..6 {
                assert!(
                    (p[k] - (z * p[k + 1] + inv_fact)).abs() < 1e-14,
                    "phi_{k}({z})"
                );
                inv_fact /= (k + 1) as f64;
            }
        }
        let (inside, outside) = (phi_list(-2.0 + 1e-12, 6), phi_list(-2.0, 6));
        for k in 0..=6 {
            assert!((inside[k] - outside[k]).abs() < 1e-12, "phi_{k}");
        }
        assert_eq!(phi_list(0.0, 3), [1.0, 1.0, 0.5, 1.0 / 6.0]);
    }
}
