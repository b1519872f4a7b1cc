//! Observables at an output time, functions of the model and the state, from tier 0 and tier 1
//! only: the reduced density matrix, the heat current into each bath and the interaction energy
//! with each bath (docs/heom.md):
//!   j_K = sum_{k in K} Re(nu_k tr[Q_K rho_{e_k}]) - 2 C_K^I(0) tr[Q_K^2 rho]
//!         + delta_K tr([[H_S, Q_K], Q_K] rho)
//!         + delta_K sum_{J != K} sum_{k in J} Re tr([[Q_J, Q_K], Q_K] rho_{e_k}),
//!   C_K^I(0) = Im C_K(0) (the last line: bath K's terminator acting on the tier-1 ADOs of the
//!   other baths, zero when the Q commute; with a drive, H_S is H(t) = H + sum_k f_k(t) V_k),
//!   <H_I^K> = sum_{k in K} Re tr[Q_K rho_{e_k}].
//! The parts that act on rho alone and the entries read are precomputed by the model.

use super::linalg::C64;
use super::model::Model;
use super::rhs::Entry;
use super::state::State;

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

/// Observables at the time of the state.
pub(super) fn observe(model: &Model, state: &State) -> Observation {
    let n01 = model.observed_entries().len();
    let d2 = model.dim() * model.dim();
    observe_at(model, state, state.time(), &state.w()[..n01 * d2])
}

/// Observables at time `t` from the tier-0 and tier-1 ADOs `w01` (working representation of
/// `state`); only the [`Model::observed_entries`] of `w01` are read.
pub(super) fn observe_at(model: &Model, state: &State, t: f64, w01: &[C64]) -> Observation {
    let d = model.dim();
    let d2 = d * d;
    let (hier, coup, q_nz) = (model.hierarchy(), model.couplings(), model.q_nz());
    let ph = model.phases(t - state.t_ref());
    let rho_eig: Vec<C64> = (0..d2)
        .map(|e| state.schrodinger_entry(&ph, w01, e))
        .collect();
    let mut heat = Vec::with_capacity(model.baths().len());
    let mut e_int = Vec::with_capacity(model.baths().len());
    // tr[M rho_a] for the tier-1 ADO a, M given by its non-zero entries (eigenbasis).
    let tier1_trace = |a: usize, m: &[Entry]| -> C64 {
        m.iter()
            .map(|&(i, jj, v)| v * state.schrodinger_entry(&ph, w01, a * d2 + jj * d + i))
            .sum()
    };
    for (b, &(k0, k1)) in coup.bath_ranges.iter().enumerate() {
        let mut j = 0.0;
        let mut e = 0.0;
        for k in k0..k1 {
            if hier.depth == 0 {
                break;
            }
            let a = hier.up[k] as usize; // tier-1 ADO e_k (ADO 0 is the root)
            let tr = tier1_trace(a, &q_nz[b]) * coup.scale[k].sqrt();
            j += (model.exponents()[k].nu * tr).re;
            e += tr.re;
        }
        j += trace_prod(&model.heat_static()[b], &rho_eig, d).re;
        for (term, parts) in model.drive().iter().zip(model.drive_heat()) {
            if coup.delta[b] != 0.0 {
                // A failing profile has already stopped the step that reached t.
                let f = term.profile.value(t).unwrap_or(f64::NAN);
                j += f * trace_prod(&parts[b], &rho_eig, d).re;
            }
        }
        if hier.depth > 0 {
            for (kb, m) in &model.terminator_cross()[b] {
                let (k0, k1) = coup.bath_ranges[*kb];
                for k in k0..k1 {
                    let a = hier.up[k] as usize;
                    j += (tier1_trace(a, m) * coup.scale[k].sqrt()).re;
                }
            }
        }
        heat.push(j);
        e_int.push(e);
    }
    Observation {
        rho: model.to_computational(&rho_eig),
        heat_current: heat,
        interaction_energy: e_int,
    }
}
