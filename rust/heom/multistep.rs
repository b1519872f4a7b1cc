//! Variable-step exponential Adams predictor-corrector (PECE) in the interaction picture.
//!
//! As in `integrate.rs`, every ADO obeys w_a' = -g_a w_a + G(t, w) with the scalar decay g_a
//! treated exactly. The forcing G is interpolated by the polynomial through its values at the
//! last p steps (predictor, exponential Adams-Bashforth) and, after one evaluation at the
//! predicted point, through that value as well (corrector, exponential Adams-Moulton); the
//! integrals of e^{-g (t - s)} times the interpolant are exact (phi-functions). The
//! predictor-corrector difference controls the step. Two coupling sweeps per step.

use super::error::{HeomError, HeomResult};
use super::linalg::C64;
use super::observables::Observation;
use super::rhs::PARALLEL_MIN_ADOS;
use super::solver::{Solver, N_FIELDS};
use rayon::prelude::*;

/// Highest predictor order.
pub const MAX_ORDER: usize = 8;

/// phi_1 .. phi_n of a real argument (phi_k(z) = sum_i z^i / (i + k)!).
pub fn phi_list(z: f64, n: usize) -> Vec<f64> {
    let mut out = vec![0.0; n + 1];
    if z.abs() < 2.0 {
        for (k, o) in out.iter_mut().enumerate() {
            let mut fact = 1.0;
            for i in 1..=k {
                fact *= i as f64;
            }
            let mut term = 1.0 / fact;
            let mut sum = term;
            for i in 1..60 {
                term *= z / (i + k) as f64;
                sum += term;
                if term.abs() < 1e-18 * sum.abs() {
                    break;
                }
            }
            *o = sum;
        }
    } else {
        out[0] = z.exp();
        let mut fact = 1.0;
        for k in 1..=n {
            out[k] = (out[k - 1] - 1.0 / fact) / z;
            fact *= k as f64;
        }
    }
    out
}

/// Monomial coefficients of the Lagrange basis polynomials on `nodes`.
fn lagrange(nodes: &[f64]) -> Vec<Vec<f64>> {
    let p = nodes.len();
    (0..p)
        .map(|j| {
            let mut c = vec![1.0];
            for (m, &tm) in nodes.iter().enumerate() {
                if m == j {
                    continue;
                }
                let den = nodes[j] - tm;
                let mut next = vec![0.0; c.len() + 1];
                for (i, &ci) in c.iter().enumerate() {
                    next[i + 1] += ci / den;
                    next[i] -= ci * tm / den;
                }
                c = next;
            }
            c
        })
        .collect()
}

/// Weights b_j = (1/h) Int_0^{theta h} e^{-g (theta h - s)} l_j(s/h) ds for decay z = -g h.
#[cfg(test)]
fn weights(nodes: &[f64], z: f64, theta: f64) -> Vec<f64> {
    let lag = lagrange(nodes);
    let phi = phi_list(theta * z, nodes.len() + 1);
    weights_from(&lag, &phi, theta)
}

/// [`weights`] from precomputed Lagrange coefficients and phi_k(theta z), k = 0..p+1.
fn weights_from(lag: &[Vec<f64>], phi: &[f64], theta: f64) -> Vec<f64> {
    lag.iter()
        .map(|c| {
            let mut s = 0.0;
            let mut fact = 1.0;
            let mut th = theta;
            for (m, cm) in c.iter().enumerate() {
                if m > 0 {
                    fact *= m as f64;
                }
                s += cm * fact * th * phi[m + 1];
                th *= theta;
            }
            s
        })
        .collect()
}

/// History of the multistep method (forcing values at past accepted times, newest first).
#[derive(Debug, Clone, Default)]
pub struct AdamsHistory {
    pub slots: Vec<Vec<C64>>,
    pub times: Vec<f64>,
    /// `order[j]` = slot index of the j-th newest value.
    pub order: Vec<usize>,
}

impl AdamsHistory {
    pub fn clear(&mut self) {
        self.times.clear();
        self.order.clear();
    }
}

impl Solver {
    /// G(t, y) for all ADOs into `out` (one coupling sweep).
    fn forcing(&mut self, t: f64, y_is_state: bool, out: &mut [C64]) {
        let q = self.q_at(t);
        let mut fields = std::mem::take(&mut self.fields);
        let mut scratch = std::mem::take(&mut self.scratch);
        let y: &[C64] = if y_is_state { &self.w } else { &self.x };
        self.coup.sweep(
            &self.hier,
            &q,
            y,
            out,
            &mut fields,
            N_FIELDS,
            &mut scratch,
            false,
            |_, n, _, o| {
                o.copy_from_slice(n);
                0.0
            },
        );
        self.fields = fields;
        self.scratch = scratch;
        self.stats.rhs_evaluations += 1;
    }

    fn push_history(&mut self, t: f64) {
        let n = self.w.len();
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
        self.forcing(t, true, &mut buf);
        self.adams.slots[slot] = buf;
        self.adams.order.insert(0, slot);
        self.adams.times.insert(0, t);
    }

    /// Propagate with the exponential Adams PECE method (see the module documentation).
    pub fn propagate_adams<F>(&mut self, times: &[f64], mut on_output: F) -> HeomResult<()>
    where
        F: FnMut(usize, Observation),
    {
        let Some(&target) = times.last() else {
            return Ok(());
        };
        if times.iter().any(|t| !t.is_finite())
            || times.windows(2).any(|p| p[1] < p[0])
            || times[0] < self.t
        {
            return Err(HeomError::invalid(
                "times",
                format!(
                    "times must be finite, non-decreasing and start at the state's time {}",
                    self.t
                ),
            ));
        }
        let mut next = 0;
        while next < times.len() && times[next] <= self.t {
            on_output(next, self.observe());
            next += 1;
        }
        if self.adams.order.is_empty() {
            self.push_history(self.t);
        }
        let d2 = self.d * self.d;
        let n01 = self.hier.tier_start.get(2).copied().unwrap_or(1);
        let mut gp = vec![C64::new(0.0, 0.0); self.w.len()];
        let parallel = self.n_ados() >= PARALLEL_MIN_ADOS;
        let mut failures = 0;
        while self.t < target {
            let p = self.adams.order.len();
            if self.h_next <= 0.0 {
                self.h_next = 1e-3_f64.min(self.max_step);
            }
            let proposal = self.h_next.min(self.max_step);
            let landing = proposal >= target - self.t;
            let h = if landing { target - self.t } else { proposal };
            if h < 1e-13 * self.t.abs().max(1.0) {
                if landing {
                    self.t = target;
                    break;
                }
                return Err(HeomError::StepTooSmall {
                    time: self.t,
                    step: h,
                });
            }
            let t0 = self.t;
            let nodes_p: Vec<f64> = self.adams.times.iter().map(|&s| (s - t0) / h).collect();
            let mut nodes_c = vec![1.0];
            nodes_c.extend_from_slice(&nodes_p);
            let ncls = self.class_decay.len();
            let lag_p = lagrange(&nodes_p);
            let lag_c = lagrange(&nodes_c);
            let mut ez = Vec::with_capacity(ncls);
            let mut bp = Vec::with_capacity(ncls);
            let mut bc = Vec::with_capacity(ncls);
            for &g in &self.class_decay {
                let phi = phi_list(-g * h, nodes_c.len() + 1);
                ez.push(phi[0]);
                bp.push(weights_from(&lag_p, &phi, 1.0));
                bc.push(weights_from(&lag_c, &phi, 1.0));
            }
            // predictor into x
            {
                let hist = &self.adams;
                let w = &self.w;
                let cls = &self.class_of;
                let slots: Vec<&[C64]> = hist.order.iter().map(|&s| &hist.slots[s][..]).collect();
                let body = |(a, o): (usize, &mut [C64])| {
                    let c = cls[a] as usize;
                    for (e, oe) in o.iter_mut().enumerate() {
                        let i = a * d2 + e;
                        let mut v = ez[c] * w[i];
                        for (j, sl) in slots.iter().enumerate() {
                            v += h * bp[c][j] * sl[i];
                        }
                        *oe = v;
                    }
                };
                if parallel {
                    self.x
                        .par_chunks_mut(d2)
                        .with_min_len(64)
                        .enumerate()
                        .for_each(body);
                } else {
                    self.x.chunks_mut(d2).enumerate().for_each(body);
                }
            }
            self.forcing(t0 + h, false, &mut gp);
            // corrector into x, error estimate
            let err = {
                let hist = &self.adams;
                let w = &self.w;
                let cls = &self.class_of;
                let gpr = &gp;
                let (rtol, atol) = (self.rtol, self.atol);
                let slots: Vec<&[C64]> = hist.order.iter().map(|&s| &hist.slots[s][..]).collect();
                let body = |(a, o): (usize, &mut [C64])| -> f64 {
                    let c = cls[a] as usize;
                    let mut worst: f64 = 0.0;
                    for (e, oe) in o.iter_mut().enumerate() {
                        let i = a * d2 + e;
                        let mut v = ez[c] * w[i] + h * bc[c][0] * gpr[i];
                        for (j, sl) in slots.iter().enumerate() {
                            v += h * bc[c][j + 1] * sl[i];
                        }
                        let diff = (v - *oe).norm_sqr();
                        let sc = atol + rtol * w[i].norm_sqr().max(v.norm_sqr()).sqrt();
                        let r = diff / (sc * sc);
                        if r.is_nan() || r > worst {
                            worst = r;
                        }
                        *oe = v;
                    }
                    worst
                };
                let red = |x: f64, y: f64| {
                    if x.is_nan() || y.is_nan() {
                        f64::NAN
                    } else {
                        x.max(y)
                    }
                };
                let total = if parallel {
                    self.x
                        .par_chunks_mut(d2)
                        .with_min_len(64)
                        .enumerate()
                        .map(body)
                        .reduce(|| 0.0, red)
                } else {
                    self.x.chunks_mut(d2).enumerate().map(body).fold(0.0, red)
                };
                total.sqrt()
            };
            if !err.is_finite() {
                failures += 1;
                self.stats.rejected += 1;
                if failures > 6 {
                    return Err(HeomError::NonFinite { time: self.t });
                }
                self.h_next = 0.1 * h;
                continue;
            }
            failures = 0;
            let expo = 1.0 / (p as f64 + 1.0);
            let fac = (0.8 * err.max(1e-10).powf(-expo)).clamp(0.2, 2.0);
            if err > 1.0 {
                self.stats.rejected += 1;
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
                    for a in 0..n01 {
                        let g = self.coup.decay[a];
                        let phi = phi_list(-theta * g * h, nodes_c.len() + 1);
                        let b = weights_from(&lag_c, &phi, theta);
                        let e0 = phi[0];
                        for e in 0..d2 {
                            let i = a * d2 + e;
                            let mut v = e0 * self.w[i] + h * b[0] * gp[i];
                            for (j, &s) in self.adams.order.iter().enumerate() {
                                v += h * b[j + 1] * self.adams.slots[s][i];
                            }
                            w01[i] = v;
                        }
                    }
                    on_output(next, self.observe_from(times[next], &w01));
                    next += 1;
                }
            }
            std::mem::swap(&mut self.w, &mut self.x);
            self.t = if landing { target } else { t0 + h };
            self.stats.steps += 1;
            self.h_next = if landing {
                proposal.max(h * fac).min(proposal * 2.0)
            } else {
                h * fac
            };
            self.push_history(self.t);
            while next < times.len() && times[next] <= self.t {
                on_output(next, self.observe());
                next += 1;
            }
        }
        while next < times.len() {
            on_output(next, self.observe());
            next += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let phi = phi_list(-2.000001, 6);
        let phi_s = phi_list(-1.999999, 6);
        for k in 0..6 {
            assert!((phi[k] - phi_s[k]).abs() < 1e-5);
        }
    }
}
