//! Reproducible random test data for the unit tests.

use super::linalg::C64;

/// A linear congruential generator: uniform numbers in [-0.5, 0.5).
pub fn lcg(seed: &mut u64) -> f64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ((*seed >> 11) as f64) / ((1u64 << 53) as f64) - 0.5
}

/// `n` complex numbers with parts from [`lcg`].
pub fn random_vec(n: usize, seed: &mut u64) -> Vec<C64> {
    (0..n).map(|_| C64::new(lcg(seed), lcg(seed))).collect()
}

/// A random Hermitian d x d matrix (row-major).
pub fn random_hermitian(d: usize, seed: &mut u64) -> Vec<C64> {
    let m = random_vec(d * d, seed);
    (0..d * d)
        .map(|k| {
            let (i, j) = (k / d, k % d);
            0.5 * (m[i * d + j] + m[j * d + i].conj())
        })
        .collect()
}
