//! Observables at an output time, from tier 0 and tier 1 only: the reduced density matrix, the
//! heat current into each bath and the interaction energy with each bath (docs/heom.md):
//!   j_K = sum_{k in K} nu_k Re tr[Q_K rho_{e_k}] - 2 C_K^I(0) tr[Q_K^2 rho]
//!         + delta_K tr([[H_S, Q_K], Q_K] rho),   C_K^I(0) = sum_{k in K} Im c_k,
//!   <H_I^K> = sum_{k in K} Re tr[Q_K rho_{e_k}].

use super::linalg::{adjoint, commutator, matmul, C64};
use super::solver::Solver;

/// Values at one output time.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Reduced density matrix (computational basis, row-major d x d).
    pub rho: Vec<C64>,
    /// Rate of energy flow into each bath.
    pub heat_current: Vec<f64>,
    /// Interaction energy with each bath.
    pub interaction_energy: Vec<f64>,
}

/// tr[X Y] for row-major d x d matrices.
fn trace_prod(x: &[C64], y: &[C64], d: usize) -> C64 {
    let mut s = C64::new(0.0, 0.0);
    for i in 0..d {
        for j in 0..d {
            s += x[i * d + j] * y[j * d + i];
        }
    }
    s
}

impl Solver {
    /// The parts of each bath's heat current that act on rho alone, as matrices A_K with
    /// j_K = ... + Re tr[A_K rho] in the eigenbasis: A_K = -2 C_K^I(0) Q_K^2 + delta_K [[H, Q_K], Q_K].
    pub(crate) fn heat_static_parts(&self) -> Vec<Vec<C64>> {
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
                let ci0: f64 = self.c[k0..k1].iter().map(|c| c.im).sum();
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

    /// Observables at the current time.
    pub fn observe(&self) -> Observation {
        let n01 = self.hier.tier_start.get(2).copied().unwrap_or(1);
        let d2 = self.d * self.d;
        self.observe_from(self.t, &self.w[..n01 * d2])
    }

    /// The entries of each tier-0 and tier-1 ADO block that the observables read: all of rho,
    /// and of the tier-1 ADO of exponent k only the transposed non-zero pattern of its bath's Q
    /// (tr[Q x] = sum_ij Q_ij x_ji), so that the dense output interpolates nothing else.
    pub(crate) fn observed_entries(&self) -> Vec<Vec<usize>> {
        let d = self.d;
        let n01 = self.hier.tier_start.get(2).copied().unwrap_or(1);
        let mut out = vec![Vec::new(); n01];
        out[0] = (0..d * d).collect();
        if self.hier.depth > 0 {
            for (b, &(k0, k1)) in self.coup.bath_ranges.iter().enumerate() {
                for k in k0..k1 {
                    out[self.hier.up[k] as usize] =
                        self.q_nz[b].iter().map(|&(i, j, _)| j * d + i).collect();
                }
            }
        }
        out
    }

    /// Observables at time `t` from the tier-0 and tier-1 ADOs `w01` (working representation);
    /// only the [`Solver::observed_entries`] of `w01` are read.
    pub fn observe_from(&self, t: f64, w01: &[C64]) -> Observation {
        let d = self.d;
        let d2 = d * d;
        let ph = self.phases(t - self.t_ref);
        let rho_eig: Vec<C64> = (0..d2)
            .map(|e| self.schrodinger_entry(&ph, w01, e))
            .collect();
        let mut heat = Vec::with_capacity(self.baths.len());
        let mut e_int = Vec::with_capacity(self.baths.len());
        for (b, &(k0, k1)) in self.coup.bath_ranges.iter().enumerate() {
            let mut j = 0.0;
            let mut e = 0.0;
            for k in k0..k1 {
                if self.hier.depth == 0 {
                    break;
                }
                let a = self.hier.up[k] as usize; // tier-1 ADO e_k (ADO 0 is the root)
                let tr: C64 = self.q_nz[b]
                    .iter()
                    .map(|&(i, jj, q)| q * self.schrodinger_entry(&ph, w01, a * d2 + jj * d + i))
                    .sum();
                let tr = tr.re * self.coup.scale[k].sqrt();
                j += self.nu[k] * tr;
                e += tr;
            }
            j += trace_prod(&self.heat_static[b], &rho_eig, d).re;
            heat.push(j);
            e_int.push(e);
        }
        let rho = matmul(&matmul(&self.u, &rho_eig, d), &adjoint(&self.u, d), d);
        Observation {
            rho,
            heat_current: heat,
            interaction_energy: e_int,
        }
    }
}
