//! The state: the ADOs in the working representation (see `model.rs`), their time, the
//! reference time of the interaction picture and the stationary reference.
//!
//! The steady-state frame: in the interaction picture a stationary Schrodinger-picture ADO
//! element rotates as e^{i (E_i - E_j) t}, so the stationary part of the state makes the coupling
//! forcing oscillate for ever and caps the step size at a fraction of the Bohr period, long after
//! the transient has died. The HEOM are linear, so with a stationary solution y_s (L y_s = 0) of
//! the current H the deviation d = y - y_s obeys the same equations; it decays, and the steps
//! grow as it does. A solved y_s is stationary only to rounding, so the deviation is integrated
//! with the constant forcing r = L y_s it really has (d' = L d + r): the frame is then an exact
//! change of variables for any reference, and pays off when the reference is nearly stationary.
//! The reference and r are held scaled, in H's eigenbasis, in the Schrodinger picture; the
//! reference is added back whenever the state or an observable leaves the solver.

use super::error::{HeomError, HeomResult};
use super::linalg::{adjoint, matmul, C64};
use super::model::{check_matrix, Model};
use super::rhs::Source;

/// The stationary reference subtracted from the state and its residual r = L y_s.
#[derive(Debug, Clone)]
struct Reference {
    ados: Vec<C64>,
    residual: Vec<C64>,
}

/// ADOs, time and stationary reference.
#[derive(Debug, Clone)]
pub struct State {
    t: f64,
    t_ref: f64,
    w: Vec<C64>,
    /// Stationary hierarchy subtracted from `w`: scaled, eigenbasis, Schrodinger picture.
    reference: Option<Reference>,
}

impl State {
    /// All ADOs zero at t = 0.
    pub(super) fn new(model: &Model) -> Self {
        let n = model.n_ados() * model.dim() * model.dim();
        State {
            t: 0.0,
            t_ref: 0.0,
            w: vec![C64::new(0.0, 0.0); n],
            reference: None,
        }
    }

    /// Time of the state.
    pub(super) fn time(&self) -> f64 {
        self.t
    }

    /// Reference time of the interaction picture.
    pub(super) fn t_ref(&self) -> f64 {
        self.t_ref
    }

    /// The working state (minus the reference, if any).
    pub(super) fn w(&self) -> &[C64] {
        &self.w
    }

    /// A step taken: `w` becomes the state at time t (the old state goes to `w`).
    pub(super) fn advance(&mut self, t: f64, w: &mut Vec<C64>) {
        std::mem::swap(&mut self.w, w);
        self.t = t;
    }

    /// A step too short to take: the state is deemed to be at time t.
    pub(super) fn land(&mut self, t: f64) {
        self.t = t;
    }

    /// Load the full hierarchy (unscaled ADOs, computational basis, row-major blocks) at time t.
    pub(super) fn load(&mut self, model: &Model, t: f64, ados: &[C64]) -> HeomResult<()> {
        model.check_ados("state", ados)?;
        if !t.is_finite() {
            return Err(HeomError::invalid("t0", format!("t0 = {t} is not finite")));
        }
        self.reference = None;
        self.w = model.to_working(ados);
        self.t = t;
        self.t_ref = t;
        Ok(())
    }

    /// Replace the model's Hamiltonian at the current time; the ADOs are kept, re-expressed in
    /// the new eigenbasis.
    pub(super) fn set_hamiltonian(&mut self, model: &mut Model, h: &[C64]) -> HeomResult<()> {
        let d = model.dim();
        check_matrix("H", h, d)?;
        self.clear_reference(model);
        let ph = model.phases(self.t - self.t_ref);
        let wmat = model.set_hamiltonian(h);
        let wd = adjoint(&wmat, d);
        for blk in self.w.chunks_exact_mut(d * d) {
            for (x, p) in blk.iter_mut().zip(&ph) {
                *x *= p;
            }
            let r = matmul(&matmul(&wmat, blk, d), &wd, d);
            blk.copy_from_slice(&r);
        }
        self.t_ref = self.t;
        Ok(())
    }

    /// Entry `i` of the working state `w` (any leading part of the hierarchy) in the eigenbasis,
    /// Schrodinger picture, rescaled: times its phase `ph` (from [`Model::phases`] at the time
    /// of `w`), plus the matching entry of the reference.
    #[inline]
    pub(super) fn schrodinger_entry(&self, ph: &[C64], w: &[C64], i: usize) -> C64 {
        let x = w[i] * ph[i % ph.len()];
        self.reference.as_ref().map_or(x, |r| x + r.ados[i])
    }

    /// The full hierarchy (unscaled, computational basis, row-major blocks).
    pub(super) fn ados(&self, model: &Model) -> Vec<C64> {
        let d2 = model.dim() * model.dim();
        let scales = model.ado_scales();
        let ph = model.phases(self.t - self.t_ref);
        let mut out = Vec::with_capacity(self.w.len());
        for (a, &scale) in scales.iter().enumerate() {
            let blk: Vec<C64> = (a * d2..(a + 1) * d2)
                .map(|i| self.schrodinger_entry(&ph, &self.w, i) * scale)
                .collect();
            out.extend(model.to_computational(&blk));
        }
        out
    }

    /// Add `sign` times the reference, rotated into the interaction picture at the current
    /// time, to the working state.
    fn fold_reference(&mut self, model: &Model, sign: f64) {
        let Some(reference) = self.reference.take() else {
            return;
        };
        let d2 = model.dim() * model.dim();
        let ph = model.phases(self.t - self.t_ref);
        for (blk, rblk) in self
            .w
            .chunks_exact_mut(d2)
            .zip(reference.ados.chunks_exact(d2))
        {
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
    /// far it is from stationary (NaN if it has a non-finite entry). The deviation is integrated
    /// with that residual as a forcing (see [`State::residual_source`]), so the result does not
    /// depend on it; a large one only makes the steps short.
    pub(super) fn set_reference(&mut self, model: &Model, ados: &[C64]) -> HeomResult<f64> {
        model.check_ados("reference", ados)?;
        self.clear_reference(model);
        let reference = model.to_working(ados);
        let residual = model.generator_applied(&reference);
        let largest = residual
            .iter()
            .map(|r| r.norm())
            .fold(
                0.0,
                |worst: f64, r| if r.is_nan() || r > worst { r } else { worst },
            );
        self.reference = Some(Reference {
            ados: reference,
            residual,
        });
        self.fold_reference(model, -1.0);
        Ok(largest)
    }

    /// The reference's residual forcing at time t in the interaction picture,
    /// e^{i (E_i - E_j)(t - t_ref)} r_ij, as a source of the coupling sweep; None without a
    /// reference.
    pub(super) fn residual_source(&self, model: &Model, t: f64) -> Option<Source<'_>> {
        let reference = self.reference.as_ref()?;
        let phases = model
            .phases(t - self.t_ref)
            .into_iter()
            .map(|p| p.conj())
            .collect();
        Some(Source {
            values: &reference.residual,
            phases,
        })
    }

    /// Return to integrating the whole state (the reference is added back).
    pub(super) fn clear_reference(&mut self, model: &Model) {
        self.fold_reference(model, 1.0);
        self.reference = None;
    }

    /// Whether a reference is subtracted.
    #[cfg(test)]
    pub(super) fn has_reference(&self) -> bool {
        self.reference.is_some()
    }
}
