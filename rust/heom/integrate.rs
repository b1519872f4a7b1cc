//! Time stepping with error control: exponential time differencing (Cox-Matthews ETDRK4) in the
//! interaction picture of the system Hamiltonian, with the scalar decay -(sum_k n_k nu_k) of
//! every ADO integrated exactly, and step doubling (Richardson) for the error estimate and a
//! fifth-order local extrapolation.
//!
//! In the interaction picture the ADOs obey w_a' = -g_a w_a + G(t, w), where G is the
//! tier coupling (plus terminator) with the rotating coupling operators Q_I(t). ETDRK4 treats the
//! stiff decay g_a exactly through phi-functions of -g_a h, so the step is set by accuracy
//! (the Bohr frequencies and the coupling strength), not by the largest decay rate.
//! Each attempt advances 2h by one step of 2h and two of h (11 coupling sweeps).
//! This is the alternative stepper (`method="etdrk4"`); the default is the exponential Adams
//! predictor-corrector of `multistep.rs`, which needs two sweeps per step.

use super::cancel::{never, Check, Throttle};
use super::error::{HeomError, HeomResult};
use super::linalg::C64;
use super::multistep::phi_list;
use super::observables::Observation;
use super::solver::{Solver, N_FIELDS};

const NU: usize = 0;
const A: usize = 1;
const NA: usize = 2;
const NB: usize = 3;
const WBIG: usize = 4;
const WMID: usize = 5;

/// phi_0..phi_3 of a real argument: phi_0 = e^z, phi_{k+1}(z) = (phi_k(z) - 1/k!) / z.
pub fn phis(z: f64) -> [f64; 4] {
    let p = phi_list(z, 3);
    [p[0], p[1], p[2], p[3]]
}

/// ETDRK4 weights for decay g and step s: [e^{z/2}, (s/2) phi1(z/2), e^z, s f1, s f2, s f3]
/// with z = -g s, f1 = phi1 - 3 phi2 + 4 phi3, f2 = phi2 - 2 phi3, f3 = 4 phi3 - phi2.
pub fn etd_coefficients(g: f64, s: f64) -> [f64; 6] {
    let z = -g * s;
    let half = phis(0.5 * z);
    let full = phis(z);
    [
        half[0],
        0.5 * s * half[1],
        full[0],
        s * (full[1] - 3.0 * full[2] + 4.0 * full[3]),
        s * (full[2] - 2.0 * full[3]),
        s * (4.0 * full[3] - full[2]),
    ]
}

/// The ETDRK4 update of one element: k2 start + k3 N_u + 2 k4 (N_a + N_b) + k5 N_c, with the
/// stage derivatives N_u, N_a, N_b kept in the ADO's field block `fb` (element `e` of `d2`).
#[inline]
fn combine(k: &[f64; 6], start: C64, fb: &[C64], n_c: C64, d2: usize, e: usize) -> C64 {
    k[2] * start
        + k[3] * fb[NU * d2 + e]
        + 2.0 * k[4] * (fb[NA * d2 + e] + fb[NB * d2 + e])
        + k[5] * n_c
}

/// The third ETDRK4 stage, c = k0 a + k1 (2 N_b - N_u), the same in all three sub-steps.
fn third_stage<'a>(
    coefficients: &'a [[f64; 6]],
    class_of: &'a [u32],
    d2: usize,
) -> impl Fn(usize, &[C64], &mut [C64], &mut [C64]) -> f64 + Sync + 'a {
    move |a, n, fb, o| {
        let k = &coefficients[class_of[a] as usize];
        for e in 0..d2 {
            fb[NB * d2 + e] = n[e];
            o[e] = k[0] * fb[A * d2 + e] + k[1] * (2.0 * n[e] - fb[NU * d2 + e]);
        }
        0.0
    }
}

impl Solver {
    /// Attempt one step of size `big` from the current state. The candidate is left in `self.x`;
    /// returns the scaled error norm (<= 1: acceptable), NaN if a non-finite value appeared.
    fn attempt(&mut self, big: f64) -> f64 {
        let d2 = self.d * self.d;
        let nf = N_FIELDS;
        let h = 0.5 * big;
        let t = self.t;
        let cb: Vec<[f64; 6]> = self
            .class_decay
            .iter()
            .map(|&g| etd_coefficients(g, big))
            .collect();
        let cs: Vec<[f64; 6]> = self
            .class_decay
            .iter()
            .map(|&g| etd_coefficients(g, h))
            .collect();
        let mut x = std::mem::take(&mut self.x);
        let mut x2 = std::mem::take(&mut self.x2);
        let mut fields = std::mem::take(&mut self.fields);
        let mut scratch = std::mem::take(&mut self.scratch);
        let q0 = self.q_at(t);
        let qh = self.q_at(t + 0.5 * h);
        let q1 = self.q_at(t + h);
        let q3 = self.q_at(t + 1.5 * h);
        let q2 = self.q_at(t + big);
        let (rtol, atol) = (self.rtol, self.atol);
        let coup = &self.coup;
        let hier = &self.hier;
        let w = &self.w;
        let cls = &self.class_of;
        let f = |i: usize, e: usize| i * d2 + e;
        let wa = |a: usize| &w[a * d2..(a + 1) * d2];
        // Every stage is one coupling sweep from `$src` into `$dst` at the rotated Q `$q`,
        // finished per ADO by `$finish`; only the finishing formulas differ between stages.
        macro_rules! stage {
            ($q:expr, $src:expr, $dst:expr, $finish:expr) => {
                coup.sweep(
                    hier,
                    $q,
                    $src,
                    $dst,
                    &mut fields,
                    nf,
                    &mut scratch,
                    false,
                    $finish,
                )
            };
        }

        // --- big step (2h) ---
        stage!(&q0, w, &mut x, |a, n, fb, o| {
            let k = &cb[cls[a] as usize];
            let wv = wa(a);
            for e in 0..d2 {
                fb[f(NU, e)] = n[e];
                let v = k[0] * wv[e] + k[1] * n[e];
                o[e] = v;
                fb[f(A, e)] = v;
            }
            0.0
        });
        // Keep the start derivative of tiers 0 and 1 for the dense output.
        let n01 = hier.tier_start.get(2).copied().unwrap_or(1);
        let mut nu0 = std::mem::take(&mut self.dense_nu0);
        nu0.clear();
        for a in 0..n01 {
            nu0.extend_from_slice(&fields[(a * nf + NU) * d2..(a * nf + NU + 1) * d2]);
        }
        stage!(&q1, &x, &mut x2, |a, n, fb, o| {
            let k = &cb[cls[a] as usize];
            let wv = wa(a);
            for e in 0..d2 {
                fb[f(NA, e)] = n[e];
                o[e] = k[0] * wv[e] + k[1] * n[e];
            }
            0.0
        });
        stage!(&q1, &x2, &mut x, third_stage(&cb, cls, d2));
        stage!(&q2, &x, &mut x2, |a, n, fb, o| {
            let k = &cb[cls[a] as usize];
            let ks = &cs[cls[a] as usize];
            let wv = wa(a);
            for e in 0..d2 {
                fb[f(WBIG, e)] = combine(k, wv[e], fb, n[e], d2, e);
                // The first small step shares the start derivative: its first stage fits here.
                let v = ks[0] * wv[e] + ks[1] * fb[f(NU, e)];
                o[e] = v;
                fb[f(A, e)] = v;
            }
            0.0
        });
        // --- first small step (h) ---
        stage!(&qh, &x2, &mut x, |a, n, fb, o| {
            let k = &cs[cls[a] as usize];
            let wv = wa(a);
            for e in 0..d2 {
                fb[f(NA, e)] = n[e];
                o[e] = k[0] * wv[e] + k[1] * n[e];
            }
            0.0
        });
        stage!(&qh, &x, &mut x2, third_stage(&cs, cls, d2));
        stage!(&q1, &x2, &mut x, |a, n, fb, o| {
            let k = &cs[cls[a] as usize];
            let wv = wa(a);
            for e in 0..d2 {
                let v = combine(k, wv[e], fb, n[e], d2, e);
                fb[f(WMID, e)] = v;
                o[e] = v;
            }
            0.0
        });
        // --- second small step (h) from the midpoint ---
        stage!(&q1, &x, &mut x2, |a, n, fb, o| {
            let k = &cs[cls[a] as usize];
            for e in 0..d2 {
                fb[f(NU, e)] = n[e];
                let v = k[0] * fb[f(WMID, e)] + k[1] * n[e];
                o[e] = v;
                fb[f(A, e)] = v;
            }
            0.0
        });
        stage!(&q3, &x2, &mut x, |a, n, fb, o| {
            let k = &cs[cls[a] as usize];
            for e in 0..d2 {
                fb[f(NA, e)] = n[e];
                o[e] = k[0] * fb[f(WMID, e)] + k[1] * n[e];
            }
            0.0
        });
        stage!(&q3, &x, &mut x2, third_stage(&cs, cls, d2));
        let err = stage!(&q2, &x2, &mut x, |a, n, fb, o| {
            let k = &cs[cls[a] as usize];
            let wv = wa(a);
            let mut worst: f64 = 0.0;
            for e in 0..d2 {
                let small = combine(k, fb[f(WMID, e)], fb, n[e], d2, e);
                let diff = (small - fb[f(WBIG, e)]) * (1.0 / 15.0);
                let new = small + diff;
                o[e] = new;
                let sc = atol + rtol * wv[e].norm_sqr().max(new.norm_sqr()).sqrt();
                let r = diff.norm_sqr() / (sc * sc);
                if r.is_nan() || r > worst {
                    worst = r; // also catches NaN
                }
            }
            worst
        });
        self.x = x;
        self.x2 = x2;
        self.fields = fields;
        self.scratch = scratch;
        self.dense_nu0 = nu0;
        self.stats.rhs_evaluations += 11;
        if err.is_finite() {
            err.sqrt()
        } else {
            f64::NAN
        }
    }

    /// Advance the state to time `target` (>= current time) with adaptive steps.
    pub fn advance_to(&mut self, target: f64) -> HeomResult<()> {
        self.propagate(&[target], |_, _| {})
    }

    /// [`Solver::propagate_cancellable`] without cancellation.
    pub fn propagate<F>(&mut self, times: &[f64], on_output: F) -> HeomResult<()>
    where
        F: FnMut(usize, Observation),
    {
        self.propagate_cancellable(times, on_output, &mut never)
    }

    /// Integrate through the non-decreasing output `times` (the first >= the current time),
    /// calling `on_output(index, observation)` at each. Steps are not shortened to hit the
    /// output times (a quintic Hermite interpolant of tiers 0 and 1 in the interaction picture
    /// provides the observables between steps); only the last time is landed on exactly, so the
    /// state afterwards is the state at `times[last]`.
    ///
    /// `check` is consulted between steps (see `cancel.rs`); its error stops the integration
    /// (the state stays at the end of the last completed step) and is returned.
    pub fn propagate_cancellable<F>(
        &mut self,
        times: &[f64],
        mut on_output: F,
        check: &mut Check<'_>,
    ) -> HeomResult<()>
    where
        F: FnMut(usize, Observation),
    {
        if self.adams_method {
            return self.propagate_adams(times, on_output, check);
        }
        let Some(&target) = times.last() else {
            return Ok(());
        };
        if let Some(bad) = times
            .iter()
            .zip(times.iter().skip(1))
            .find(|(a, b)| b.is_nan() || a.is_nan() || b < a)
            .map(|(a, _)| *a)
            .or_else(|| times.iter().copied().find(|t| !t.is_finite()))
        {
            return Err(HeomError::invalid(
                "times",
                format!("times must be finite and non-decreasing (problem near {bad})"),
            ));
        }
        if times[0] < self.t {
            return Err(HeomError::invalid(
                "times",
                format!(
                    "the output time {} is before the current time {} (times must start at \
                     the state's time)",
                    times[0], self.t
                ),
            ));
        }
        let mut next = 0;
        while next < times.len() && times[next] <= self.t {
            on_output(next, self.observe());
            next += 1;
        }
        let mut failures = 0;
        let mut throttle = Throttle::new(check);
        while self.t < target {
            throttle.poll(self.t)?;
            let remaining = target - self.t;
            if self.h_next <= 0.0 {
                self.h_next = 0.05_f64.min(self.max_step);
            }
            let proposal = self.h_next.min(self.max_step);
            let landing = proposal >= remaining;
            let big = if landing { remaining } else { proposal };
            if big < 1e-13 * self.t.abs().max(1.0) {
                if landing {
                    self.t = target;
                    break;
                }
                return Err(HeomError::StepTooSmall {
                    time: self.t,
                    step: big,
                });
            }
            let err = self.attempt(big);
            if err.is_nan() {
                failures += 1;
                self.stats.rejected += 1;
                if failures > 6 {
                    return Err(HeomError::NonFinite { time: self.t });
                }
                self.h_next = 0.1 * big;
                continue;
            }
            failures = 0;
            let fac = (0.9 * err.max(1e-10).powf(-0.2)).clamp(0.2, 4.0);
            if err > 1.0 {
                self.stats.rejected += 1;
                self.h_next = big * fac.min(0.9);
                continue;
            }
            let t0 = self.t;
            std::mem::swap(&mut self.w, &mut self.x);
            self.t = if landing { target } else { t0 + big };
            self.stats.steps += 1;
            self.h_next = if landing {
                proposal.max(big * fac).min(proposal * 4.0)
            } else {
                big * fac
            };
            if next < times.len() && times[next] <= self.t {
                self.dense_outputs(t0, times, &mut next, &mut on_output);
            }
        }
        while next < times.len() {
            on_output(next, self.observe());
            next += 1;
        }
        Ok(())
    }

    /// Observables at the output times inside the step just taken from `t0` to `self.t`
    /// (old state in `self.x`, midpoint in the WMID field, start derivative in `dense_nu0`).
    fn dense_outputs<F>(&mut self, t0: f64, times: &[f64], next: &mut usize, on_output: &mut F)
    where
        F: FnMut(usize, Observation),
    {
        let d2 = self.d * self.d;
        let n01 = self.hier.tier_start.get(2).copied().unwrap_or(1);
        let big = self.t - t0;
        let h = 0.5 * big;
        let nf = N_FIELDS;
        // derivatives w' = -g w + G at the end point for tiers 0 and 1
        let q2 = self.q_at(self.t);
        let mut g2 = vec![C64::new(0.0, 0.0); n01 * d2];
        let mut scratch = vec![C64::new(0.0, 0.0); 2 * d2];
        for a in 0..n01 {
            let (blk, _) = g2[a * d2..].split_at_mut(d2);
            self.coup
                .apply_block(&self.hier, &q2, &self.w, a, blk, &mut scratch);
        }
        let mut w01 = vec![C64::new(0.0, 0.0); n01 * d2];
        while *next < times.len() && times[*next] <= self.t {
            let s = times[*next] - t0;
            if s >= big {
                on_output(*next, self.observe());
                *next += 1;
                continue;
            }
            for a in 0..n01 {
                let g = self.coup.decay[a];
                for e in 0..d2 {
                    let f0 = self.x[a * d2 + e];
                    let f1 = self.fields[(a * nf + WMID) * d2 + e];
                    let f2 = self.w[a * d2 + e];
                    let d0 = -g * f0 + self.dense_nu0[a * d2 + e];
                    let d1 = -g * f1 + self.fields[(a * nf + NU) * d2 + e];
                    let dd2 = -g * f2 + g2[a * d2 + e];
                    w01[a * d2 + e] = hermite5(s, h, [f0, f1, f2], [d0, d1, dd2]);
                }
            }
            on_output(*next, self.observe_from(times[*next], &w01));
            *next += 1;
        }
    }
}

/// Quintic Hermite interpolation at `s` through nodes 0, h, 2h with values `f` and
/// derivatives `df` (Newton form with repeated nodes).
pub fn hermite5(s: f64, h: f64, f: [C64; 3], df: [C64; 3]) -> C64 {
    let z = [0.0, 0.0, h, h, 2.0 * h, 2.0 * h];
    let mut c = [f[0], f[0], f[1], f[1], f[2], f[2]];
    // first divided differences (repeated nodes use the derivative)
    let first = [df[0], (f[1] - f[0]) / h, df[1], (f[2] - f[1]) / h, df[2]];
    for i in (1..6).rev() {
        c[i] = first[i - 1];
    }
    for k in 2..6 {
        for i in (k..6).rev() {
            c[i] = (c[i] - c[i - 1]) / (z[i] - z[i - k]);
        }
    }
    let mut acc = c[5];
    for i in (0..5).rev() {
        acc = acc * (s - z[i]) + c[i];
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heom::bath::{self, Expansion};
    use crate::heom::solver::BathSpec;
    use crate::heom::testing::random_hermitian;

    /// A check that fails on its third call stops either stepper between two steps with its
    /// error; the state is then that of a completed step, from which the solver goes on.
    #[test]
    fn failing_check_interrupts_the_propagation() {
        let (o, x) = (C64::new(0.0, 0.0), C64::new(1.0, 0.0));
        let mut seed = 5;
        let h = random_hermitian(2, &mut seed);
        for adams in [true, false] {
            let exps = bath::drude_lorentz(0.05, 1.0, 1.0, 2, Expansion::Matsubara, true).unwrap();
            let baths = vec![BathSpec {
                q: vec![o, x, x, o],
                exps,
            }];
            // max_step keeps the steps short: the target is out of reach
            let mut s = Solver::new(2, &h, baths, 3, 1e-8, 1e-10, 0.01).unwrap();
            s.adams_method = adams;
            let mut ados = vec![o; s.n_ados() * 4];
            ados[0] = x;
            s.set_state(0.0, &ados).unwrap();
            let mut calls = 0;
            let mut outputs = 0;
            let res = s.propagate_cancellable(&[0.0, 1e9], |_, _| outputs += 1, &mut |_| {
                calls += 1;
                if calls < 3 {
                    Ok(())
                } else {
                    Err(HeomError::Interrupted)
                }
            });
            assert_eq!(res, Err(HeomError::Interrupted), "adams: {adams}");
            assert_eq!(calls, 3);
            assert_eq!(outputs, 1);
            let t = s.t;
            assert!(t > 0.0 && t < 1e9 && s.stats.steps > 0, "t = {t}");
            let mut trace = C64::new(0.0, 0.0);
            s.propagate(&[t, t + 0.1], |_, obs| trace = obs.rho[0] + obs.rho[3])
                .unwrap();
            assert!((trace - 1.0).norm() < 1e-12, "trace {trace}");
        }
        assert_eq!(HeomError::Interrupted.to_string(), "interrupted");
    }

    #[test]
    fn phi_functions_continuous_across_branch() {
        for z in [-0.4999999, -0.5000001, -1e-9, 0.0, -3.0, -40.0] {
            let p = phis(z);
            // defining identities phi_{k} = z phi_{k+1} + 1/k!
            assert!((p[0] - (z * p[1] + 1.0)).abs() < 1e-14);
            assert!((p[1] - (z * p[2] + 1.0)).abs() < 1e-14);
            assert!((p[2] - (z * p[3] + 0.5)).abs() < 1e-14);
        }
        // The series branch agrees with the recursion just inside the switch point.
        let z: f64 = -0.49;
        let p0 = z.exp();
        let p1 = (p0 - 1.0) / z;
        let p2 = (p1 - 1.0) / z;
        let p3 = (p2 - 0.5) / z;
        let s = phis(z);
        for (k, r) in [p0, p1, p2, p3].iter().enumerate() {
            assert!((s[k] - r).abs() < 1e-14, "phi_{k}");
        }
        assert_eq!(phis(0.0), [1.0, 1.0, 0.5, 1.0 / 6.0]);
    }

    #[test]
    fn hermite5_reproduces_quintics() {
        let p = |s: f64| C64::new(1.0 - 2.0 * s + 0.5 * s.powi(5), s.powi(3) - s.powi(4));
        let dp = |s: f64| C64::new(-2.0 + 2.5 * s.powi(4), 3.0 * s * s - 4.0 * s.powi(3));
        let h = 0.37;
        let f = [p(0.0), p(h), p(2.0 * h)];
        let df = [dp(0.0), dp(h), dp(2.0 * h)];
        for s in [0.0, 0.1, 0.37, 0.5, 0.74] {
            assert!((hermite5(s, h, f, df) - p(s)).norm() < 1e-13);
        }
    }

    #[test]
    fn etd_weights_integrate_constant_forcing_exactly() {
        // y' = -g y + 1 from y(0) = 0 gives (1 - e^{-g s}) / g; the ETDRK4 weights sum
        // f1 + 4 f2 + f3 = s phi1(-g s).
        let (g, s) = (7.0, 0.3);
        let k = etd_coefficients(g, s);
        let exact = (1.0 - (-g * s).exp()) / g;
        assert!((k[3] + 4.0 * k[4] + k[5] - exact).abs() < 1e-15);
        assert!((k[2] - (-g * s).exp()).abs() < 1e-15);
    }
}
