//! The steady-state frame: integrate the deviation from a stationary hierarchy.
//!
//! In the interaction picture a stationary Schrodinger-picture ADO element rotates as
//! e^{i (E_i - E_j) t}, so the stationary part of the state makes the coupling forcing oscillate
//! for ever and caps the step size at a fraction of the Bohr period, long after the transient has
//! died. The HEOM are linear, so with a stationary solution y_s (L y_s = 0) of the current H the
//! deviation d = y - y_s obeys the same equations; it decays, and the steps grow as it does.
//! The reference is held scaled, in H's eigenbasis, in the Schrodinger picture, and is added back
//! whenever the state or an observable leaves the solver.

use super::error::HeomResult;
use super::linalg::C64;
use super::solver::Solver;

impl Solver {
    /// Add `sign` times the reference, rotated into the interaction picture at the current
    /// time, to the working state.
    fn fold_reference(&mut self, sign: f64) {
        let Some(reference) = self.reference.take() else {
            return;
        };
        let d2 = self.d * self.d;
        let ph = self.phases(self.t - self.t_ref);
        for (blk, rblk) in self.w.chunks_exact_mut(d2).zip(reference.chunks_exact(d2)) {
            for ((x, r), p) in blk.iter_mut().zip(rblk).zip(&ph) {
                *x += sign * r * p.conj();
            }
        }
        self.reference = Some(reference);
    }

    /// Integrate from now on the deviation from the stationary hierarchy `ados` (unscaled,
    /// computational basis, row-major blocks) of the current Hamiltonian.
    ///
    /// Returns the largest entry of the generator applied to the (rescaled) reference, i.e. how
    /// far it is from stationary: the deviation is propagated as if it were zero, so a residual r
    /// shifts the result by at most about r times the propagated time.
    pub fn set_reference(&mut self, ados: &[C64]) -> HeomResult<f64> {
        self.check_ados("reference", ados)?;
        self.clear_reference();
        let reference = self.to_working(ados);
        let residual = self.stationary_residual(&reference);
        self.reference = Some(reference);
        self.fold_reference(-1.0);
        Ok(residual)
    }

    /// Return to integrating the whole state (the reference is added back).
    pub fn clear_reference(&mut self) {
        self.fold_reference(1.0);
        self.reference = None;
    }

    /// max |L y| over all entries, for y in the working basis (Schrodinger picture).
    fn stationary_residual(&self, y: &[C64]) -> f64 {
        let d = self.d;
        let d2 = d * d;
        let bohr: Vec<f64> = (0..d2)
            .map(|e| self.energies[e / d] - self.energies[e % d])
            .collect();
        let mut n = vec![C64::new(0.0, 0.0); y.len()];
        self.coup.apply_all(&self.hier, &self.q_nz, y, &mut n);
        let mut worst: f64 = 0.0;
        for (i, (nv, yv)) in n.iter().zip(y).enumerate() {
            let r = (nv + C64::new(-self.coup.decay[i / d2], -bohr[i % d2]) * yv).norm();
            if r.is_nan() || r > worst {
                worst = r;
            }
        }
        worst
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heom::bath::{self, Expansion};
    use crate::heom::cancel::never;
    use crate::heom::linalg::C64;
    use crate::heom::solver::BathSpec;
    use crate::heom::testing::{random_hermitian, random_vec};

    /// A two-qubit model with sigma_x couplings; `h` sets the Hamiltonian.
    fn solver(h: &[C64]) -> Solver {
        let x = C64::new(1.0, 0.0);
        let o = C64::new(0.0, 0.0);
        let qa = vec![o, o, x, o, o, o, o, x, x, o, o, o, o, x, o, o];
        let qb = vec![o, x, o, o, x, o, o, o, o, o, o, x, o, o, x, o];
        let b1 = bath::drude_lorentz(0.01, 2.0, 2.0, 2, Expansion::Matsubara, true).unwrap();
        let b2 = bath::drude_lorentz(0.023, 2.0, 1.0, 2, Expansion::Matsubara, true).unwrap();
        let baths = vec![BathSpec { q: qa, exps: b1 }, BathSpec { q: qb, exps: b2 }];
        Solver::new(4, h, baths, 2, 1e-8, 1e-10, f64::INFINITY).unwrap()
    }

    fn max_diff(a: &[C64], b: &[C64]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).norm())
            .fold(0.0, f64::max)
    }

    /// Whatever the reference, the state that leaves the solver is the whole state, also when
    /// the reference is set at a time where the interaction picture has rotated it.
    #[test]
    fn reference_is_added_back_exactly() {
        let mut seed = 11;
        let h = random_hermitian(4, &mut seed);
        let mut s = solver(&h);
        let y = random_vec(s.n_ados() * 16, &mut seed);
        s.set_state(0.0, &y).unwrap();
        s.propagate(&[0.0, 0.7], |_, _| {}).unwrap();
        let whole = s.state();
        let rho = s.observe().rho;
        let reference = random_vec(y.len(), &mut seed);
        s.set_reference(&reference).unwrap();
        assert!(max_diff(&s.state(), &whole) < 1e-13);
        assert!(max_diff(&s.observe().rho, &rho) < 1e-13);
        s.clear_reference();
        assert!(s.reference.is_none());
        assert!(max_diff(&s.state(), &whole) < 1e-13);
        assert!(s.set_reference(&reference[1..]).is_err());
    }

    /// The stationarity residual is max |L y| of the assembled generator (a diagonal H keeps
    /// the eigenbasis equal to the computational one, where the generator is assembled).
    #[test]
    fn residual_is_the_generator_applied_to_the_reference() {
        let mut h = vec![C64::new(0.0, 0.0); 16];
        for i in 0..4 {
            h[i * 4 + i] = C64::new(i as f64 - 1.5, 0.0);
        }
        let mut s = solver(&h);
        let mut seed = 5;
        let reference = random_vec(s.n_ados() * 16, &mut seed);
        let g = s.generator_triplets(&mut never).unwrap();
        let scales = s.ado_scales();
        let rescaled: Vec<C64> = reference
            .iter()
            .enumerate()
            .map(|(i, y)| y / scales[i / 16])
            .collect();
        let mut gy = vec![C64::new(0.0, 0.0); rescaled.len()];
        for ((&r, &c), &v) in g.rows.iter().zip(&g.cols).zip(&g.vals) {
            gy[r as usize] += v * rescaled[c as usize];
        }
        let expected = gy.iter().map(|z| z.norm()).fold(0.0, f64::max);
        let residual = s.set_reference(&reference).unwrap();
        assert!(
            (residual - expected).abs() < 1e-12 * expected,
            "{residual} vs {expected}"
        );
        let zero = vec![C64::new(0.0, 0.0); reference.len()];
        assert_eq!(s.set_reference(&zero).unwrap(), 0.0);
    }
}
