//! Small dense complex matrices (row-major `Vec<C64>` of length d*d) and a Jacobi eigensolver
//! for Hermitian matrices. Used for the system Hamiltonian's eigenbasis and the Pade poles.

use num_complex::Complex64;

/// Complex double.
pub type C64 = Complex64;

/// `c = a * b` for row-major d x d matrices.
pub fn matmul(a: &[C64], b: &[C64], d: usize) -> Vec<C64> {
    let mut c = vec![C64::new(0.0, 0.0); d * d];
    for i in 0..d {
        for k in 0..d {
            let aik = a[i * d + k];
            if aik == C64::new(0.0, 0.0) {
                continue;
            }
            for j in 0..d {
                c[i * d + j] += aik * b[k * d + j];
            }
        }
    }
    c
}

/// Conjugate transpose of a row-major d x d matrix.
pub fn adjoint(a: &[C64], d: usize) -> Vec<C64> {
    let mut b = vec![C64::new(0.0, 0.0); d * d];
    for i in 0..d {
        for j in 0..d {
            b[j * d + i] = a[i * d + j].conj();
        }
    }
    b
}

/// `a*b - b*a`.
pub fn commutator(a: &[C64], b: &[C64], d: usize) -> Vec<C64> {
    let ab = matmul(a, b, d);
    let ba = matmul(b, a, d);
    ab.iter().zip(&ba).map(|(x, y)| x - y).collect()
}

/// Largest |a_ij - conj(a_ji)|.
pub fn hermiticity_defect(a: &[C64], d: usize) -> f64 {
    let mut m: f64 = 0.0;
    for i in 0..d {
        for j in 0..d {
            m = m.max((a[i * d + j] - a[j * d + i].conj()).norm());
        }
    }
    m
}

/// Largest |a_ij|.
pub fn max_abs(a: &[C64]) -> f64 {
    a.iter().fold(0.0_f64, |m, x| m.max(x.norm()))
}

/// Eigen-decomposition of a Hermitian matrix by cyclic Jacobi rotations.
///
/// Returns the eigenvalues in ascending order and the unitary `u` (row-major) whose columns are
/// the eigenvectors: `a = u diag(w) u^dagger`. Only the Hermitian part of `a` is used.
pub fn hermitian_eigen(a: &[C64], d: usize) -> (Vec<f64>, Vec<C64>) {
    let zero = C64::new(0.0, 0.0);
    let mut m: Vec<C64> = (0..d * d)
        .map(|k| {
            let (i, j) = (k / d, k % d);
            0.5 * (a[i * d + j] + a[j * d + i].conj())
        })
        .collect();
    let mut u = vec![zero; d * d];
    for i in 0..d {
        u[i * d + i] = C64::new(1.0, 0.0);
    }
    let scale = max_abs(&m).max(f64::MIN_POSITIVE);
    for _sweep in 0..100 {
        let mut off = 0.0;
        for i in 0..d {
            for j in 0..d {
                if i != j {
                    off += m[i * d + j].norm_sqr();
                }
            }
        }
        if off.sqrt() <= 1e-300_f64.max(f64::EPSILON * 1e-3 * scale) {
            break;
        }
        for p in 0..d {
            for q in (p + 1)..d {
                let apq = m[p * d + q];
                let r = apq.norm();
                if r <= f64::EPSILON * 1e-6 * scale {
                    continue;
                }
                // Phase that makes the (p, q) element real and positive, then a real rotation.
                let ph = apq / r; // e^{i phi}
                let app = m[p * d + p].re;
                let aqq = m[q * d + q].re;
                let theta = (aqq - app) / (2.0 * r);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                // G (columns p, q): G_pp = c, G_pq = s, G_qp = -s e^{-i phi}, G_qq = c e^{-i phi}.
                let gpp = C64::new(c, 0.0);
                let gpq = C64::new(s, 0.0);
                let gqp = -s * ph.conj();
                let gqq = c * ph.conj();
                // m <- m G (columns p, q)
                for k in 0..d {
                    let mkp = m[k * d + p];
                    let mkq = m[k * d + q];
                    m[k * d + p] = mkp * gpp + mkq * gqp;
                    m[k * d + q] = mkp * gpq + mkq * gqq;
                    let ukp = u[k * d + p];
                    let ukq = u[k * d + q];
                    u[k * d + p] = ukp * gpp + ukq * gqp;
                    u[k * d + q] = ukp * gpq + ukq * gqq;
                }
                // m <- G^dagger m (rows p, q)
                for k in 0..d {
                    let mpk = m[p * d + k];
                    let mqk = m[q * d + k];
                    m[p * d + k] = gpp.conj() * mpk + gqp.conj() * mqk;
                    m[q * d + k] = gpq.conj() * mpk + gqq.conj() * mqk;
                }
                m[p * d + q] = zero;
                m[q * d + p] = zero;
            }
        }
    }
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&x, &y| m[x * d + x].re.total_cmp(&m[y * d + y].re));
    let w: Vec<f64> = order.iter().map(|&k| m[k * d + k].re).collect();
    let mut us = vec![zero; d * d];
    for (new, &old) in order.iter().enumerate() {
        for k in 0..d {
            us[k * d + new] = u[k * d + old];
        }
    }
    (w, us)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(re: f64, im: f64) -> C64 {
        C64::new(re, im)
    }

    #[test]
    fn eigen_reconstructs_hermitian_matrix() {
        let d = 4;
        let mut a = vec![c(0.0, 0.0); d * d];
        let mut seed = 12345u64;
        let mut rnd = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 11) as f64) / ((1u64 << 53) as f64) - 0.5
        };
        for i in 0..d {
            for j in i..d {
                let z = if i == j {
                    c(rnd(), 0.0)
                } else {
                    c(rnd(), rnd())
                };
                a[i * d + j] = z;
                a[j * d + i] = z.conj();
            }
        }
        let (w, u) = hermitian_eigen(&a, d);
        assert!(w.windows(2).all(|p| p[0] <= p[1]));
        let mut diag = vec![c(0.0, 0.0); d * d];
        for i in 0..d {
            diag[i * d + i] = c(w[i], 0.0);
        }
        let rec = matmul(&matmul(&u, &diag, d), &adjoint(&u, d), d);
        for k in 0..d * d {
            assert!((rec[k] - a[k]).norm() < 1e-13, "reconstruction");
        }
        let id = matmul(&adjoint(&u, d), &u, d);
        for i in 0..d {
            for j in 0..d {
                let e = if i == j { 1.0 } else { 0.0 };
                assert!((id[i * d + j] - c(e, 0.0)).norm() < 1e-13, "unitarity");
            }
        }
    }

    #[test]
    fn eigen_handles_degenerate_and_diagonal() {
        // sigma_z/2 (x) 1 + 1 (x) sigma_z/2 with sigma_z = diag(-1, 1): eigenvalues -1, 0, 0, 1.
        let d = 4;
        let mut a = vec![c(0.0, 0.0); d * d];
        for (k, e) in [-1.0, 0.0, 0.0, 1.0].iter().enumerate() {
            a[k * d + k] = c(*e, 0.0);
        }
        a[d + 2] = c(0.0, -0.1);
        a[2 * d + 1] = c(0.0, 0.1);
        let (w, _u) = hermitian_eigen(&a, d);
        let expect = [-1.0, -0.1, 0.1, 1.0];
        for (x, y) in w.iter().zip(expect) {
            assert!((x - y).abs() < 1e-14);
        }
    }
}
