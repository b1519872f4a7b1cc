//! The HEOM model and its state: system Hamiltonian (piecewise constant), baths, hierarchy,
//! and the ADOs held in the working representation of the integrator.
//!
//! Working representation: ADOs rescaled (see `rhs.rs`), expressed in the eigenbasis of the
//! current H, in the interaction picture with respect to H relative to a reference time
//! `t_ref` (w = e^{iH(t - t_ref)} y e^{-iH(t - t_ref)}). Changing H re-expresses the ADOs in
//! the new eigenbasis; the hierarchy and all ADOs are kept.

use super::bath::BathExponents;
use super::error::{HeomError, HeomResult};
use super::hierarchy::Hierarchy;
use super::linalg::{adjoint, hermitian_eigen, hermiticity_defect, matmul, max_abs, C64};
use super::multistep::AdamsHistory;
use super::rhs::{Couplings, Entry};
use std::collections::HashMap;

/// A bath as seen by the solver: its coupling operator Q (row-major d x d) and its exponents.
#[derive(Debug, Clone)]
pub struct BathSpec {
    pub q: Vec<C64>,
    pub exps: BathExponents,
}

/// Integration counters.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stats {
    pub steps: u64,
    pub rejected: u64,
    pub rhs_evaluations: u64,
}

/// The solver: model, state and work buffers.
#[derive(Debug, Clone)]
pub struct Solver {
    pub(super) d: usize,
    pub(super) hier: Hierarchy,
    pub(super) coup: Couplings,
    pub(super) baths: Vec<BathSpec>,
    /// Exponent amplitudes and rates over all baths (bath-major).
    pub(super) c: Vec<C64>,
    pub(super) nu: Vec<f64>,
    /// Current Hamiltonian (computational basis), its eigenvalues and eigenvectors (columns).
    pub(super) h: Vec<C64>,
    pub(super) energies: Vec<f64>,
    pub(super) u: Vec<C64>,
    /// Q of each bath in the eigenbasis (dense).
    pub(super) q_eig: Vec<Vec<C64>>,
    /// Non-zero pattern of each Q in the eigenbasis (values at t = t_ref).
    pub(super) q_nz: Vec<Vec<Entry>>,
    /// Per bath, the part of the heat current that acts on rho alone (see `observables.rs`).
    pub(super) heat_static: Vec<Vec<C64>>,
    /// Per tier-0 and tier-1 ADO, the block entries the observables read (`observables.rs`).
    pub(super) observed_entries: Vec<Vec<usize>>,
    pub(super) t: f64,
    pub(super) t_ref: f64,
    pub(super) w: Vec<C64>,
    pub(super) rtol: f64,
    pub(super) atol: f64,
    pub(super) max_step: f64,
    /// Proposed next (big) step; 0 when unknown.
    pub(super) h_next: f64,
    /// Decay class of each ADO and the decay rate of each class.
    pub(super) class_of: Vec<u32>,
    pub(super) class_decay: Vec<f64>,
    pub(super) stats: Stats,
    // work buffers
    pub(super) x: Vec<C64>,
    pub(super) adams: AdamsHistory,
    /// Stationary hierarchy subtracted from `w` (see `frame.rs`): scaled, eigenbasis,
    /// Schrodinger picture.
    pub(super) reference: Option<Vec<C64>>,
}

fn check_matrix(name: &str, m: &[C64], d: usize) -> HeomResult<()> {
    if m.len() != d * d {
        let message = format!(
            "{name} must have {} entries (d = {d}), got {}",
            d * d,
            m.len()
        );
        return Err(HeomError::invalid(name, message));
    }
    if m.iter().any(|z| !z.is_finite()) {
        return Err(HeomError::invalid(
            name,
            format!("{name} contains non-finite entries"),
        ));
    }
    let defect = hermiticity_defect(m, d);
    if defect > 1e-12 * max_abs(m).max(1.0) {
        return Err(HeomError::invalid(
            name,
            format!("{name} is not Hermitian: max |{name} - {name}^dagger| = {defect:.3e}"),
        ));
    }
    Ok(())
}

/// Bytes of memory the solver needs for `n_ados` ADOs of dimension d with K exponents.
pub fn memory_estimate(n_ados: u64, d: u64, n_exponents: u64) -> u64 {
    // the state, the predicted state, the forcing at the predicted point, the history of the
    // forcing and the steady-state frame's reference
    let arrays = 3 + super::multistep::MAX_ORDER as u64 + 1;
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
        if d == 0 {
            return Err(HeomError::invalid(
                "H",
                "the system dimension must be at least 1",
            ));
        }
        check_matrix("H", h, d)?;
        for (b, bath) in baths.iter().enumerate() {
            check_matrix(&format!("baths[{b}].Q"), &bath.q, d)?;
        }
        // max_step alone may be infinite (no limit)
        for (name, value) in [("rtol", rtol), ("atol", atol), ("max_step", max_step)] {
            if !(value > 0.0 && (value.is_finite() || name == "max_step")) {
                let message = format!("{name} = {value} must be > 0");
                return Err(HeomError::invalid(name, message));
            }
        }
        let mut c = Vec::new();
        let mut nu = Vec::new();
        let mut ranges = Vec::new();
        for bath in &baths {
            let k0 = c.len();
            for e in &bath.exps.exponents {
                c.push(e.c);
                nu.push(e.nu);
            }
            ranges.push((k0, c.len()));
        }
        let hier = Hierarchy::new(c.len(), depth)?;
        let delta = baths.iter().map(|b| b.exps.delta).collect();
        let coup = Couplings::new(d, &hier, ranges, delta, &c, &nu);
        let n = hier.n_ados();
        let mut classes: HashMap<u64, u32> = HashMap::new();
        let mut class_decay = Vec::new();
        let class_of = coup
            .decay
            .iter()
            .map(|g| {
                *classes.entry(g.to_bits()).or_insert_with(|| {
                    class_decay.push(*g);
                    (class_decay.len() - 1) as u32
                })
            })
            .collect();
        let d2 = d * d;
        let mut s = Solver {
            d,
            hier,
            coup,
            baths,
            c,
            nu,
            h: Vec::new(),
            energies: Vec::new(),
            u: Vec::new(),
            q_eig: Vec::new(),
            q_nz: Vec::new(),
            heat_static: Vec::new(),
            observed_entries: Vec::new(),
            t: 0.0,
            t_ref: 0.0,
            w: vec![C64::new(0.0, 0.0); n * d2],
            rtol,
            atol,
            max_step,
            h_next: 0.0,
            class_of,
            class_decay,
            stats: Stats::default(),
            x: vec![C64::new(0.0, 0.0); n * d2],
            adams: AdamsHistory::default(),
            reference: None,
        };
        s.install_hamiltonian(h);
        Ok(s)
    }

    /// Number of ADOs.
    pub fn n_ados(&self) -> usize {
        self.hier.n_ados()
    }

    /// System dimension d.
    pub fn dim(&self) -> usize {
        self.d
    }

    /// Number of baths.
    pub fn n_baths(&self) -> usize {
        self.baths.len()
    }

    /// The hierarchy (ADO labels and neighbours).
    pub fn hierarchy(&self) -> &Hierarchy {
        &self.hier
    }

    /// Time of the state.
    pub fn time(&self) -> f64 {
        self.t
    }

    /// Integration counters since the solver was built.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Rescaling factor s_a = prod_k sqrt(n_k! a_k^{n_k}) of each ADO (rho_a = s_a r_a).
    pub fn ado_scales(&self) -> Vec<f64> {
        (0..self.n_ados())
            .map(|a| {
                let mut log_s = 0.0;
                for (k, &n) in self.hier.label(a).iter().enumerate() {
                    for m in 1..=n as usize {
                        log_s += 0.5 * ((m as f64).ln() + self.coup.scale[k].ln());
                    }
                }
                log_s.exp()
            })
            .collect()
    }

    fn install_hamiltonian(&mut self, h: &[C64]) {
        let d = self.d;
        let (e, u) = hermitian_eigen(h, d);
        let ud = adjoint(&u, d);
        self.q_eig = self
            .baths
            .iter()
            .map(|b| matmul(&matmul(&ud, &b.q, d), &u, d))
            .collect();
        self.q_nz = self
            .q_eig
            .iter()
            .map(|q| {
                let cut = 1e-14 * max_abs(q);
                let mut nz = Vec::new();
                for i in 0..d {
                    for j in 0..d {
                        if q[i * d + j].norm() > cut {
                            nz.push((i, j, q[i * d + j]));
                        }
                    }
                }
                nz
            })
            .collect();
        self.h = h.to_vec();
        self.energies = e;
        self.u = u;
        self.heat_static = self.heat_static_parts();
        self.observed_entries = self.observed_entries();
    }

    /// Phase e^{-i (E_i - E_j) tau} taking the interaction picture back to the eigenbasis.
    pub fn phases(&self, tau: f64) -> Vec<C64> {
        let d = self.d;
        let mut p = Vec::with_capacity(d * d);
        for i in 0..d {
            for j in 0..d {
                p.push(C64::from_polar(
                    1.0,
                    -(self.energies[i] - self.energies[j]) * tau,
                ));
            }
        }
        p
    }

    /// Q of each bath in the interaction picture at time t: Q_ij e^{i (E_i - E_j)(t - t_ref)}.
    pub fn q_at(&self, t: f64) -> Vec<Vec<Entry>> {
        let tau = t - self.t_ref;
        self.q_nz
            .iter()
            .map(|nz| {
                nz.iter()
                    .map(|&(i, j, q)| {
                        let ph = C64::from_polar(1.0, (self.energies[i] - self.energies[j]) * tau);
                        (i, j, q * ph)
                    })
                    .collect()
            })
            .collect()
    }

    /// Replace the system Hamiltonian at the current time; the ADOs are kept.
    pub fn set_hamiltonian(&mut self, h: &[C64]) -> HeomResult<()> {
        check_matrix("H", h, self.d)?;
        self.clear_reference();
        let d = self.d;
        let d2 = d * d;
        let ph = self.phases(self.t - self.t_ref);
        let old_u = self.u.clone();
        self.install_hamiltonian(h);
        // W = U_new^dagger U_old maps old eigenbasis components to new ones.
        let wmat = matmul(&adjoint(&self.u, d), &old_u, d);
        let wd = adjoint(&wmat, d);
        for blk in self.w.chunks_exact_mut(d2) {
            for (x, p) in blk.iter_mut().zip(&ph) {
                *x *= p;
            }
            let r = matmul(&matmul(&wmat, blk, d), &wd, d);
            blk.copy_from_slice(&r);
        }
        self.t_ref = self.t;
        self.h_next = 0.0;
        self.adams.clear();
        Ok(())
    }

    /// Load the full hierarchy (unscaled ADOs, computational basis, row-major blocks) at time t.
    pub fn set_state(&mut self, t: f64, ados: &[C64]) -> HeomResult<()> {
        self.check_ados("state", ados)?;
        if !t.is_finite() {
            return Err(HeomError::invalid("t0", format!("t0 = {t} is not finite")));
        }
        self.reference = None;
        self.w = self.to_working(ados);
        self.t = t;
        self.t_ref = t;
        self.h_next = 0.0;
        self.adams.clear();
        Ok(())
    }

    /// A whole hierarchy given as `name`: one finite d x d block per ADO.
    pub(crate) fn check_ados(&self, name: &str, ados: &[C64]) -> HeomResult<()> {
        let (d, n, got) = (self.d, self.n_ados(), ados.len());
        let message = if got != n * d * d {
            format!("the hierarchy has {n} ADOs of {d}x{d}, got {got} values")
        } else if ados.iter().any(|z| !z.is_finite()) {
            format!("the {name} ADOs contain non-finite entries")
        } else {
            return Ok(());
        };
        Err(HeomError::invalid(name, message))
    }

    /// Unscaled computational-basis ADOs (row-major blocks) in the working basis: rescaled, in
    /// the eigenbasis of H.
    pub(crate) fn to_working(&self, ados: &[C64]) -> Vec<C64> {
        let d = self.d;
        let d2 = d * d;
        let ud = adjoint(&self.u, d);
        let scales = self.ado_scales();
        let mut out = Vec::with_capacity(ados.len());
        for (a, src) in ados.chunks_exact(d2).enumerate() {
            let inv = 1.0 / scales[a];
            out.extend(
                matmul(&matmul(&ud, src, d), &self.u, d)
                    .into_iter()
                    .map(|y| y * inv),
            );
        }
        out
    }

    /// Entry `i` of the working state `w` (any leading part of the hierarchy) in the eigenbasis,
    /// Schrodinger picture, rescaled: times its phase `ph` (from [`Solver::phases`] at the time
    /// of `w`), plus the matching entry of the reference.
    #[inline]
    pub(crate) fn schrodinger_entry(&self, ph: &[C64], w: &[C64], i: usize) -> C64 {
        let x = w[i] * ph[i % ph.len()];
        self.reference.as_ref().map_or(x, |r| x + r[i])
    }

    /// The full hierarchy at the current time (unscaled, computational basis, row-major blocks).
    pub fn state(&self) -> Vec<C64> {
        let d = self.d;
        let d2 = d * d;
        let ud = adjoint(&self.u, d);
        let scales = self.ado_scales();
        let ph = self.phases(self.t - self.t_ref);
        let mut out = Vec::with_capacity(self.w.len());
        for (a, &scale) in scales.iter().enumerate() {
            let blk: Vec<C64> = (a * d2..(a + 1) * d2)
                .map(|i| self.schrodinger_entry(&ph, &self.w, i) * scale)
                .collect();
            out.extend(matmul(&matmul(&self.u, &blk, d), &ud, d));
        }
        out
    }
}
