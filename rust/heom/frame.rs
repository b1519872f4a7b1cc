//! The steady-state frame: integrate the deviation from a stationary hierarchy.
//!
//! In the interaction picture a stationary Schrodinger-picture ADO element rotates as
//! e^{i (E_i - E_j) t}, so the stationary part of the state makes the coupling forcing oscillate
//! for ever and caps the step size at a fraction of the Bohr period, long after the transient has
//! died. The HEOM are linear, so with a stationary solution y_s (L y_s = 0) of the current H the
//! deviation d = y - y_s obeys the same equations; it decays, and the steps grow as it does.
//! The reference is held scaled, in H's eigenbasis, in the Schrodinger picture, and is added back
//! whenever the state or an observable leaves the solver.

use super::error::{HeomError, HeomResult};
use super::linalg::C64;
use super::solver::{Solver, N_FIELDS};

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
        let d2 = self.d * self.d;
        if ados.len() != self.n_ados() * d2 {
            return Err(HeomError::invalid(
                "reference",
                format!(
                    "the hierarchy has {} ADOs of {1}x{1}, got {2} values",
                    self.n_ados(),
                    self.d,
                    ados.len()
                ),
            ));
        }
        if ados.iter().any(|z| !(z.re.is_finite() && z.im.is_finite())) {
            return Err(HeomError::invalid(
                "reference",
                "the reference ADOs contain non-finite entries",
            ));
        }
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
    fn stationary_residual(&mut self, y: &[C64]) -> f64 {
        let d = self.d;
        let d2 = d * d;
        let bohr: Vec<f64> = (0..d2)
            .map(|e| self.energies[e / d] - self.energies[e % d])
            .collect();
        let decay = &self.coup.decay;
        let mut out = vec![C64::new(0.0, 0.0); y.len()];
        let mut fields = std::mem::take(&mut self.fields);
        let mut scratch = std::mem::take(&mut self.scratch);
        let residual = self.coup.sweep(
            &self.hier,
            &self.q_nz,
            y,
            &mut out,
            &mut fields,
            N_FIELDS,
            &mut scratch,
            false,
            |a, n, _, _| {
                let yb = &y[a * d2..(a + 1) * d2];
                n.iter()
                    .zip(yb)
                    .zip(&bohr)
                    .map(|((nv, yv), w)| (nv + C64::new(-decay[a], -w) * yv).norm())
                    .fold(0.0, f64::max)
            },
        );
        self.fields = fields;
        self.scratch = scratch;
        residual
    }
}
