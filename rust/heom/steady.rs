//! The HEOM generator assembled as sparse COO triplets (rescaled ADOs, computational basis,
//! row-major blocks: index a d^2 + i d + j). Not used for time stepping; it serves the
//! steady-state solve (done on the Python side with scipy.sparse) and as an independent check
//! of the matrix-free right-hand side.

use super::cancel::{Check, Throttle};
use super::error::HeomResult;
use super::hierarchy::NONE;
use super::linalg::{matmul, C64};
use super::model::Model;

/// COO triplets of a square sparse matrix (duplicates are to be summed).
#[derive(Debug, Clone, Default)]
pub struct Triplets {
    pub dim: usize,
    pub rows: Vec<u64>,
    pub cols: Vec<u64>,
    pub vals: Vec<C64>,
}

impl Triplets {
    /// Add coef * L X R mapping block `src` into block `dst` (L, R row-major d x d).
    fn add_sandwich(&mut self, d: usize, dst: usize, src: usize, coef: C64, l: &[C64], r: &[C64]) {
        // (L X R)_{ij} = sum_{k,m} L_ik X_km R_mj
        let d2 = d * d;
        for i in 0..d {
            for k in 0..d {
                let lik = l[i * d + k];
                if lik == C64::new(0.0, 0.0) {
                    continue;
                }
                for m in 0..d {
                    for j in 0..d {
                        let rmj = r[m * d + j];
                        if rmj == C64::new(0.0, 0.0) {
                            continue;
                        }
                        self.rows.push((dst * d2 + i * d + j) as u64);
                        self.cols.push((src * d2 + k * d + m) as u64);
                        self.vals.push(coef * lik * rmj);
                    }
                }
            }
        }
    }
}

fn identity(d: usize) -> Vec<C64> {
    let mut m = vec![C64::new(0.0, 0.0); d * d];
    for i in 0..d {
        m[i * d + i] = C64::new(1.0, 0.0);
    }
    m
}

/// The full generator (system Liouvillian with terminators, decays and tier couplings) of
/// `model` for its current Hamiltonian, acting on rescaled ADOs in the computational basis.
/// `check` is consulted between ADOs (see `cancel.rs`); its error stops the assembly and is
/// returned.
pub(super) fn generator_triplets(model: &Model, check: &mut Check<'_>) -> HeomResult<Triplets> {
    let d = model.dim();
    let d2 = d * d;
    let (hier, coup) = (model.hierarchy(), model.couplings());
    let n = model.n_ados();
    let k_tot = hier.n_exponents;
    let one = identity(d);
    let i1 = C64::new(0.0, 1.0);
    let mut t = Triplets {
        dim: n * d2,
        ..Default::default()
    };
    let q2: Vec<Vec<C64>> = model
        .baths()
        .iter()
        .map(|b| matmul(&b.q, &b.q, d))
        .collect();
    let mut throttle = Throttle::new(check);
    for a in 0..n {
        throttle.poll(a as f64)?;
        // -i [H, x] - g_a x
        t.add_sandwich(d, a, a, -i1, model.hamiltonian(), &one);
        t.add_sandwich(d, a, a, i1, &one, model.hamiltonian());
        t.add_sandwich(d, a, a, -coup.rate(a), &one, &one);
        for (b, &(k0, k1)) in coup.bath_ranges.iter().enumerate() {
            let q = &model.baths()[b].q;
            let delta = coup.delta[b];
            if delta != 0.0 {
                // -delta (Q^2 x - 2 Q x Q + x Q^2)
                t.add_sandwich(d, a, a, C64::new(-delta, 0.0), &q2[b], &one);
                t.add_sandwich(d, a, a, C64::new(2.0 * delta, 0.0), q, q);
                t.add_sandwich(d, a, a, C64::new(-delta, 0.0), &one, &q2[b]);
            }
            for k in k0..k1 {
                let nk = hier.labels[a * k_tot + k] as usize;
                let u = hier.up[a * k_tot + k];
                if u != NONE {
                    let cf = coup.up_coefficient(k, nk);
                    t.add_sandwich(d, a, u as usize, cf, q, &one);
                    t.add_sandwich(d, a, u as usize, -cf, &one, q);
                }
                let dn = hier.down[a * k_tot + k];
                if dn != NONE {
                    // P-coefficient multiplies Q x, M-coefficient multiplies -x Q.
                    let (cp, cm) = coup.down_coefficients(k, nk);
                    t.add_sandwich(d, a, dn as usize, cp, q, &one);
                    t.add_sandwich(d, a, dn as usize, -cm, &one, q);
                }
            }
        }
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heom::bath::{self, Expansion};
    use crate::heom::cancel::never;
    use crate::heom::model::BathSpec;
    use crate::heom::testing::{lcg, random_hermitian};

    /// The matrix-free coupling equals the assembled generator minus its block-diagonal part
    /// (-i[H, .] - Re g_a), for every block size with a compiled kernel and for one without (5).
    #[test]
    fn matrix_free_coupling_matches_assembled_generator() {
        for d in [1usize, 2, 3, 4, 5, 8] {
            let mut seed = 7 + d as u64;
            // Diagonal H with ascending energies: its eigenbasis is the computational basis.
            let mut h = vec![C64::new(0.0, 0.0); d * d];
            for i in 0..d {
                h[i * d + i] = C64::new(0.3 * i as f64 - 0.4, 0.0);
            }
            let b1 = bath::drude_lorentz(0.05, 1.0, 0.8, 2, Expansion::Matsubara, true).unwrap();
            let b2 = bath::drude_lorentz(0.02, 2.0, 1.3, 1, Expansion::Pade, true).unwrap();
            // An underdamped pair of complex rates and one real rate without its partner.
            let b3 = bath::generic(
                &[
                    C64::new(0.03, 0.01),
                    C64::new(0.03, -0.01),
                    C64::new(0.02, -0.005),
                ],
                &[C64::new(0.4, 1.3), C64::new(0.4, -1.3), C64::new(0.9, 0.2)],
                0.001,
            )
            .unwrap();
            let baths = vec![
                BathSpec {
                    q: random_hermitian(d, &mut seed),
                    exps: b1,
                },
                BathSpec {
                    q: random_hermitian(d, &mut seed),
                    exps: b2,
                },
                BathSpec {
                    q: random_hermitian(d, &mut seed),
                    exps: b3,
                },
            ];
            let model = Model::new(d, &h, baths, 3).unwrap();
            let d2 = d * d;
            let n = model.n_ados();
            let w: Vec<C64> = (0..n * d2)
                .map(|_| C64::new(lcg(&mut seed), lcg(&mut seed)))
                .collect();
            let g = generator_triplets(&model, &mut never).unwrap();
            let mut gy = vec![C64::new(0.0, 0.0); n * d2];
            for ((&r, &c), &v) in g.rows.iter().zip(&g.cols).zip(&g.vals) {
                gy[r as usize] += v * w[c as usize];
            }
            let (q, coup) = (model.q_at(0.0), model.couplings());
            let mut nbuf = vec![C64::new(0.0, 0.0); d2];
            let mut worst: f64 = 0.0;
            for a in 0..n {
                coup.apply_block(model.hierarchy(), &q, &w, a, &mut nbuf);
                let y = &w[a * d2..(a + 1) * d2];
                for i in 0..d {
                    for j in 0..d {
                        let e = i * d + j;
                        let comm = -C64::new(0.0, 1.0) * (h[i * d + i] - h[j * d + j]) * y[e];
                        let diag = comm - coup.decay[a] * y[e];
                        worst = worst.max((gy[a * d2 + e] - diag - nbuf[e]).norm());
                    }
                }
            }
            assert!(worst < 1e-12, "d = {d}: deviation {worst}");
        }
    }
}
