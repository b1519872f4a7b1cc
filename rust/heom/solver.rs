//! The solver: a thin facade owning the model (`model.rs`), the state (`state.rs`) and the
//! stepper (`multistep.rs`), with the API the binding uses.

use super::cancel::{never, Check};
use super::drive::DriveTerm;
use super::error::HeomResult;
use super::hierarchy::Hierarchy;
use super::linalg::C64;
use super::model::{check_system, BathSpec, Model};
use super::multistep::{check_tolerances, Stats, Stepper, MAX_ORDER};
use super::observables::{observe, Observation};
use super::state::State;
use super::steady::{generator_triplets, Triplets};

/// The solver: model, state and stepper.
#[derive(Debug, Clone)]
pub struct Solver {
    model: Model,
    state: State,
    stepper: Stepper,
}

/// Bytes of memory the solver needs for `n_ados` ADOs of dimension d with K exponents.
pub fn memory_estimate(n_ados: u64, d: u64, n_exponents: u64) -> u64 {
    // the state, the predicted state, the forcing at the predicted point, the history of the
    // forcing and the steady-state frame's reference
    let arrays = 3 + MAX_ORDER as u64 + 1;
    let per_ado = arrays * d * d * 16
        + 8 * n_exponents.max(1) + 2 * n_exponents // neighbour tables, labels
        + 24; // decay, class, scale
    n_ados.saturating_mul(per_ado)
}

impl Solver {
    /// Build the solver for Hamiltonian `h` (row-major d x d), `baths`, truncated at `depth`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        d: usize,
        h: &[C64],
        baths: Vec<BathSpec>,
        depth: usize,
        rtol: f64,
        atol: f64,
        max_step: f64,
    ) -> HeomResult<Self> {
        check_system(d, h, &baths)?;
        check_tolerances(rtol, atol, max_step)?;
        let model = Model::new(d, h, baths, depth)?;
        let (state, stepper) = (
            State::new(&model),
            Stepper::new(&model, rtol, atol, max_step),
        );
        Ok(Solver {
            model,
            state,
            stepper,
        })
    }

    /// Number of ADOs.
    pub fn n_ados(&self) -> usize {
        self.model.n_ados()
    }

    /// System dimension d.
    pub fn dim(&self) -> usize {
        self.model.dim()
    }

    /// Number of baths.
    pub fn n_baths(&self) -> usize {
        self.model.baths().len()
    }

    /// The hierarchy (ADO labels and neighbours).
    pub fn hierarchy(&self) -> &Hierarchy {
        self.model.hierarchy()
    }

    /// Time of the state.
    pub fn time(&self) -> f64 {
        self.state.time()
    }

    /// Integration counters since the solver was built.
    pub fn stats(&self) -> Stats {
        self.stepper.stats()
    }

    /// Rescaling factor s_a = prod_k sqrt(n_k! a_k^{n_k}) of each ADO (rho_a = s_a r_a).
    pub fn ado_scales(&self) -> Vec<f64> {
        self.model.ado_scales()
    }

    /// Replace the system Hamiltonian at the current time; the ADOs are kept.
    pub fn set_hamiltonian(&mut self, h: &[C64]) -> HeomResult<()> {
        self.state.set_hamiltonian(&mut self.model, h)?;
        self.stepper.reset();
        Ok(())
    }

    /// Replace the drive terms f_k(t) V_k of the Hamiltonian (`drive.rs`; empty: none) at the
    /// current time; the ADOs are kept. A steady-state frame is left first (its reference is
    /// stationary only without a drive).
    pub fn set_drive(&mut self, drive: Vec<DriveTerm>) -> HeomResult<()> {
        self.model.set_drive(drive)?;
        self.state.clear_reference(&self.model);
        self.stepper.reset();
        Ok(())
    }

    /// Load the full hierarchy (unscaled ADOs, computational basis, row-major blocks) at time t.
    pub fn set_state(&mut self, t: f64, ados: &[C64]) -> HeomResult<()> {
        self.state.load(&self.model, t, ados)?;
        self.stepper.reset();
        Ok(())
    }

    /// Integrate from now on the deviation from the stationary hierarchy `ados` (see
    /// `state.rs`); returns its stationarity residual max |L y|.
    pub fn set_reference(&mut self, ados: &[C64]) -> HeomResult<f64> {
        self.state.set_reference(&self.model, ados)
    }

    /// Return to integrating the whole state (the reference is added back).
    pub fn clear_reference(&mut self) {
        self.state.clear_reference(&self.model);
    }

    /// The full hierarchy at the current time (unscaled, computational basis, row-major blocks).
    pub fn state(&self) -> Vec<C64> {
        self.state.ados(&self.model)
    }

    /// Observables at the current time.
    pub fn observe(&self) -> Observation {
        observe(&self.model, &self.state)
    }

    /// [`Solver::propagate_cancellable`] without cancellation.
    pub fn propagate<F>(&mut self, times: &[f64], on_output: F) -> HeomResult<()>
    where
        F: FnMut(usize, Observation),
    {
        self.propagate_cancellable(times, on_output, &mut never)
    }

    /// Integrate through the non-decreasing output `times` (the first >= the current time),
    /// calling `on_output(index, observation)` at each (see `multistep.rs`); `check` is
    /// consulted between steps (see `cancel.rs`) and its error stops the integration.
    pub fn propagate_cancellable<F>(
        &mut self,
        times: &[f64],
        on_output: F,
        check: &mut Check<'_>,
    ) -> HeomResult<()>
    where
        F: FnMut(usize, Observation),
    {
        let (model, state) = (&self.model, &mut self.state);
        self.stepper
            .propagate_cancellable(model, state, times, on_output, check)
    }

    /// The full generator for the current Hamiltonian (see `steady.rs`).
    pub fn generator_triplets(&self, check: &mut Check<'_>) -> HeomResult<Triplets> {
        generator_triplets(&self.model, check)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heom::bath::{self, Expansion};
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

    /// The steady-state frame (`state.rs`): whatever the reference, the state that leaves the solver is the whole state, also when
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
        assert!(!s.state.has_reference());
        assert!(max_diff(&s.state(), &whole) < 1e-13);
        assert!(s.set_reference(&reference[1..]).is_err());
    }

    /// The frame is a change of variables, exact for any reference: a random one, far from
    /// stationary (its residual is carried as a forcing), gives the run without a frame.
    #[test]
    fn frame_with_any_reference_gives_the_same_run() {
        let mut seed = 3;
        let h = random_hermitian(4, &mut seed);
        let y = random_vec(solver(&h).n_ados() * 16, &mut seed);
        let reference = random_vec(y.len(), &mut seed);
        let times = [0.0, 1.5, 3.0];
        let run = |with_reference: bool| {
            let mut s = solver(&h);
            s.set_state(0.0, &y).unwrap();
            if with_reference {
                assert!(s.set_reference(&reference).unwrap() > 0.1);
            }
            let mut rhos = Vec::new();
            s.propagate(&times, |_, o| rhos.extend(o.rho)).unwrap();
            (rhos, s.state())
        };
        let (rho_plain, end_plain) = run(false);
        let (rho_frame, end_frame) = run(true);
        for (plain, frame) in [(&rho_plain, &rho_frame), (&end_plain, &end_frame)] {
            let diff = max_diff(plain, frame);
            assert!(diff < 1e-6, "{diff}");
        }
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
