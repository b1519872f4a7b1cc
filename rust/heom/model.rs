//! The HEOM model: system Hamiltonian (piecewise constant), baths, hierarchy and couplings, and
//! the eigenbasis of the current H with everything expressed in it (rebuilt by
//! [`Model::set_hamiltonian`]).
//!
//! Working representation of the ADOs (see `state.rs`): rescaled (see `rhs.rs`), in the
//! eigenbasis of the current H, in the interaction picture with respect to H relative to a
//! reference time `t_ref` (w = e^{iH(t - t_ref)} y e^{-iH(t - t_ref)}).

use super::bath::{BathExponents, Exponent};
use super::drive::DriveTerm;
use super::error::{HeomError, HeomResult};
use super::hierarchy::Hierarchy;
use super::linalg::{
    adjoint, commutator, hermitian_eigen, hermiticity_defect, matmul, max_abs, C64,
};
use super::rhs::{Couplings, Entry};

/// A bath as seen by the solver: its coupling operator Q (row-major d x d) and its exponents.
#[derive(Debug, Clone)]
pub struct BathSpec {
    pub q: Vec<C64>,
    pub exps: BathExponents,
}

/// The model: hierarchy, couplings and the eigenbasis of the current Hamiltonian.
#[derive(Debug, Clone)]
pub struct Model {
    d: usize,
    hier: Hierarchy,
    coup: Couplings,
    baths: Vec<BathSpec>,
    /// The exponents over all baths (bath-major).
    exponents: Vec<Exponent>,
    /// Current Hamiltonian (computational basis), its eigenvalues and eigenvectors (columns).
    h: Vec<C64>,
    energies: Vec<f64>,
    u: Vec<C64>,
    /// Q of each bath in the eigenbasis (dense).
    q_eig: Vec<Vec<C64>>,
    /// Non-zero pattern of each Q in the eigenbasis (values at t = t_ref).
    q_nz: Vec<Vec<Entry>>,
    /// The drive terms f_k(t) V_k of the Hamiltonian beside H (`drive.rs`), and each V_k's
    /// non-zero pattern in the eigenbasis.
    drive: Vec<DriveTerm>,
    drive_nz: Vec<Vec<Entry>>,
    /// Per drive term and bath, delta_K [[V, Q_K], Q_K] in the eigenbasis: with H_S(t) in the
    /// terminator's part of the heat current, f(t) Re tr[this rho] is added (`observables.rs`).
    drive_heat: Vec<Vec<Vec<C64>>>,
    /// Per bath, the part of the heat current that acts on rho alone (see `observables.rs`).
    heat_static: Vec<Vec<C64>>,
    /// Per bath J with a terminator, (K, non-zero entries of delta_J [[Q_K, Q_J], Q_J]) for every
    /// other bath K whose Q does not commute with Q_J: the terminator's part of the heat current
    /// that acts on the tier-1 ADOs of bath K (see `observables.rs`).
    terminator_cross: Vec<Vec<(usize, Vec<Entry>)>>,
    /// Per tier-0 and tier-1 ADO, the block entries the observables read (`observables.rs`).
    observed_entries: Vec<Vec<usize>>,
}

/// The entries of `m` (row-major d x d) above rounding, 1e-14 of its largest.
fn non_zeros(m: &[C64], d: usize) -> Vec<Entry> {
    let cut = 1e-14 * max_abs(m);
    let mut nz = Vec::new();
    for i in 0..d {
        for j in 0..d {
            if m[i * d + j].norm() > cut {
                nz.push((i, j, m[i * d + j]));
            }
        }
    }
    nz
}

pub(super) fn check_matrix(name: &str, m: &[C64], d: usize) -> HeomResult<()> {
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

/// The checks [`Model::new`] relies on: d >= 1, H and every Q finite, Hermitian, d x d.
pub(super) fn check_system(d: usize, h: &[C64], baths: &[BathSpec]) -> HeomResult<()> {
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
    Ok(())
}

impl Model {
    /// The model for Hamiltonian `h` (row-major d x d), `baths`, truncated at `depth` (the
    /// inputs as accepted by [`check_system`]).
    pub(super) fn new(d: usize, h: &[C64], baths: Vec<BathSpec>, depth: usize) -> HeomResult<Self> {
        let mut exponents = Vec::new();
        let mut ranges = Vec::new();
        for bath in &baths {
            let k0 = exponents.len();
            exponents.extend_from_slice(&bath.exps.exponents);
            ranges.push((k0, exponents.len()));
        }
        let hier = Hierarchy::new(exponents.len(), depth)?;
        let delta = baths.iter().map(|b| b.exps.delta).collect();
        let coup = Couplings::new(d, &hier, ranges, delta, &exponents);
        let mut m = Model {
            d,
            hier,
            coup,
            baths,
            exponents,
            h: Vec::new(),
            energies: Vec::new(),
            u: Vec::new(),
            q_eig: Vec::new(),
            q_nz: Vec::new(),
            drive: Vec::new(),
            drive_nz: Vec::new(),
            drive_heat: Vec::new(),
            heat_static: Vec::new(),
            terminator_cross: Vec::new(),
            observed_entries: Vec::new(),
        };
        m.install_hamiltonian(h);
        Ok(m)
    }

    /// Number of ADOs.
    pub(super) fn n_ados(&self) -> usize {
        self.hier.n_ados()
    }

    /// System dimension d.
    pub(super) fn dim(&self) -> usize {
        self.d
    }

    /// The baths.
    pub(super) fn baths(&self) -> &[BathSpec] {
        &self.baths
    }

    /// The hierarchy (ADO labels and neighbours).
    pub(super) fn hierarchy(&self) -> &Hierarchy {
        &self.hier
    }

    /// The tier couplings, decays and scales.
    pub(super) fn couplings(&self) -> &Couplings {
        &self.coup
    }

    /// The current Hamiltonian (computational basis).
    pub(super) fn hamiltonian(&self) -> &[C64] {
        &self.h
    }

    /// The exponents over all baths (bath-major).
    pub(super) fn exponents(&self) -> &[Exponent] {
        &self.exponents
    }

    /// Non-zero pattern of each Q in the eigenbasis.
    pub(super) fn q_nz(&self) -> &[Vec<Entry>] {
        &self.q_nz
    }

    /// Per bath, the part of the heat current that acts on rho alone.
    pub(super) fn heat_static(&self) -> &[Vec<C64>] {
        &self.heat_static
    }

    /// Per bath J, the terminator's part of its heat current on the other baths' tier-1 ADOs.
    pub(super) fn terminator_cross(&self) -> &[Vec<(usize, Vec<Entry>)>] {
        &self.terminator_cross
    }

    /// Per tier-0 and tier-1 ADO, the block entries the observables read.
    pub(super) fn observed_entries(&self) -> &[Vec<usize>] {
        &self.observed_entries
    }

    /// Rescaling factor s_a = prod_k sqrt(n_k! a_k^{n_k}) of each ADO (rho_a = s_a r_a).
    pub(super) fn ado_scales(&self) -> Vec<f64> {
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
        self.q_nz = self.q_eig.iter().map(|q| non_zeros(q, d)).collect();
        let v_eig: Vec<Vec<C64>> = self
            .drive
            .iter()
            .map(|term| matmul(&matmul(&ud, &term.v, d), &u, d))
            .collect();
        self.drive_nz = v_eig.iter().map(|v| non_zeros(v, d)).collect();
        self.drive_heat = v_eig
            .iter()
            .map(|v| {
                self.q_eig
                    .iter()
                    .zip(&self.coup.delta)
                    .map(|(q, &delta)| {
                        let m = commutator(&commutator(v, q, d), q, d);
                        m.into_iter().map(|x| x * delta).collect()
                    })
                    .collect()
            })
            .collect();
        self.h = h.to_vec();
        self.energies = e;
        self.u = u;
        self.heat_static = self.heat_static_parts();
        self.terminator_cross = self.terminator_cross_parts();
        self.observed_entries = self.observed_entries_of_q();
    }

    /// Replace the drive terms (each V checked by [`check_matrix`]); the Hamiltonian stays.
    pub(super) fn set_drive(&mut self, drive: Vec<DriveTerm>) -> HeomResult<()> {
        for (k, term) in drive.iter().enumerate() {
            check_matrix(&format!("drive[{k}].V"), &term.v, self.d)?;
        }
        self.drive = drive;
        let h = self.h.clone();
        self.install_hamiltonian(&h);
        Ok(())
    }

    /// The drive terms.
    pub(super) fn drive(&self) -> &[DriveTerm] {
        &self.drive
    }

    /// Per drive term and bath, the terminator's heat-current operator of V (eigenbasis).
    pub(super) fn drive_heat(&self) -> &[Vec<Vec<C64>>] {
        &self.drive_heat
    }

    /// Each drive term's V in the interaction picture at tau = t - t_ref (as [`Model::q_at`]).
    pub(super) fn drive_at(&self, tau: f64) -> Vec<Vec<Entry>> {
        self.rotate(&self.drive_nz, tau)
    }

    /// Replace the Hamiltonian (checked by the caller); returns W = U_new^dagger U_old, which
    /// maps old eigenbasis components to new ones.
    pub(super) fn set_hamiltonian(&mut self, h: &[C64]) -> Vec<C64> {
        let old_u = self.u.clone();
        self.install_hamiltonian(h);
        matmul(&adjoint(&self.u, self.d), &old_u, self.d)
    }

    /// The parts of each bath's heat current that act on rho alone, as matrices A_K with
    /// j_K = ... + Re tr[A_K rho] in the eigenbasis: A_K = -2 C_K^I(0) Q_K^2 + delta_K [[H, Q_K], Q_K],
    /// with C_K^I(0) = Im C_K(0) = sum_k Re B_k over the exponents of bath K.
    fn heat_static_parts(&self) -> Vec<Vec<C64>> {
        let d = self.d;
        let mut h_eig = vec![C64::new(0.0, 0.0); d * d];
        for i in 0..d {
            h_eig[i * d + i] = C64::new(self.energies[i], 0.0);
        }
        self.coup
            .bath_ranges
            .iter()
            .enumerate()
            .map(|(b, &(k0, k1))| {
                let q = &self.q_eig[b];
                let ci0: f64 = self.exponents[k0..k1]
                    .iter()
                    .map(|e| e.anticommutator_amplitude().re)
                    .sum();
                let mut a: Vec<C64> = matmul(q, q, d).iter().map(|x| -2.0 * ci0 * x).collect();
                let delta = self.coup.delta[b];
                if delta != 0.0 {
                    let m = commutator(&commutator(&h_eig, q, d), q, d);
                    a.iter_mut().zip(&m).for_each(|(x, y)| *x += delta * y);
                }
                a
            })
            .collect()
    }

    /// The terminator of bath J acts on every ADO, the tier-1 ADOs of another bath K too, and so
    /// changes <H_I^K> by -delta_J tr(Q_K [Q_J, [Q_J, rho_{e_k}]]): energy that flows into bath
    /// J's tail, delta_J Re tr([[Q_K, Q_J], Q_J] rho_{e_k}) (zero when Q_K and Q_J commute).
    fn terminator_cross_parts(&self) -> Vec<Vec<(usize, Vec<Entry>)>> {
        let d = self.d;
        let n_baths = self.baths.len();
        (0..n_baths)
            .map(|jb| {
                let delta = self.coup.delta[jb];
                if delta == 0.0 {
                    return Vec::new();
                }
                let qj = &self.q_eig[jb];
                (0..n_baths)
                    .filter(|&kb| kb != jb)
                    .filter_map(|kb| {
                        let m = commutator(&commutator(&self.q_eig[kb], qj, d), qj, d);
                        let scale = max_abs(&self.q_eig[kb]) * max_abs(qj).powi(2);
                        let nz: Vec<Entry> = non_zeros(&m, d)
                            .into_iter()
                            .filter(|&(_, _, v)| v.norm() > 1e-14 * scale)
                            .map(|(i, j, v)| (i, j, v * delta))
                            .collect();
                        (!nz.is_empty()).then_some((kb, nz))
                    })
                    .collect()
            })
            .collect()
    }

    /// The entries of each tier-0 and tier-1 ADO block that the observables read: all of rho,
    /// and of the tier-1 ADO of exponent k only the transposed non-zero pattern of its bath's Q
    /// (tr[Q x] = sum_ij Q_ij x_ji) and of the terminators' cross parts on it, so that the dense
    /// output interpolates nothing else.
    fn observed_entries_of_q(&self) -> Vec<Vec<usize>> {
        let d = self.d;
        let n01 = self.hier.tier_start.get(2).copied().unwrap_or(1);
        let mut out = vec![Vec::new(); n01];
        out[0] = (0..d * d).collect();
        if self.hier.depth > 0 {
            for (b, &(k0, k1)) in self.coup.bath_ranges.iter().enumerate() {
                let mut entries: Vec<usize> =
                    self.q_nz[b].iter().map(|&(i, j, _)| j * d + i).collect();
                for parts in &self.terminator_cross {
                    for (_, nz) in parts.iter().filter(|(kb, _)| *kb == b) {
                        entries.extend(nz.iter().map(|&(i, j, _)| j * d + i));
                    }
                }
                entries.sort_unstable();
                entries.dedup();
                for k in k0..k1 {
                    out[self.hier.up[k] as usize] = entries.clone();
                }
            }
        }
        out
    }

    /// Phase e^{-i (E_i - E_j) tau} taking the interaction picture back to the eigenbasis.
    pub(super) fn phases(&self, tau: f64) -> Vec<C64> {
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

    /// Q of each bath in the interaction picture at tau = t - t_ref: Q_ij e^{i (E_i - E_j) tau}.
    pub(super) fn q_at(&self, tau: f64) -> Vec<Vec<Entry>> {
        self.rotate(&self.q_nz, tau)
    }

    /// Eigenbasis operators given by their entries, in the interaction picture at tau.
    fn rotate(&self, ops: &[Vec<Entry>], tau: f64) -> Vec<Vec<Entry>> {
        ops.iter()
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

    /// A whole hierarchy given as `name`: one finite d x d block per ADO.
    pub(super) fn check_ados(&self, name: &str, ados: &[C64]) -> HeomResult<()> {
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
    pub(super) fn to_working(&self, ados: &[C64]) -> Vec<C64> {
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

    /// An eigenbasis matrix `m` (row-major d x d) in the computational basis: U m U^dagger.
    pub(super) fn to_computational(&self, m: &[C64]) -> Vec<C64> {
        matmul(
            &matmul(&self.u, m, self.d),
            &adjoint(&self.u, self.d),
            self.d,
        )
    }

    /// L y for y in the working basis (Schrodinger picture): how far y is from stationary.
    pub(super) fn generator_applied(&self, y: &[C64]) -> Vec<C64> {
        let d = self.d;
        let d2 = d * d;
        let bohr: Vec<f64> = (0..d2)
            .map(|e| self.energies[e / d] - self.energies[e % d])
            .collect();
        let mut n = vec![C64::new(0.0, 0.0); y.len()];
        self.coup.apply_all(&self.hier, &self.q_nz, y, None, &mut n);
        for (i, (nv, yv)) in n.iter_mut().zip(y).enumerate() {
            *nv -= (self.coup.decay[i / d2] + C64::new(0.0, bohr[i % d2])) * yv;
        }
        n
    }
}
