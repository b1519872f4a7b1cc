//! The hierarchy of auxiliary density operators (ADOs): labels n = (n_1 .. n_K) over all
//! exponents of all baths with |n| <= depth, stored in tier order, with u32 neighbour tables.

use super::error::{HeomError, HeomResult};
use std::collections::HashMap;

/// Marks a missing neighbour in [`Hierarchy::up`] / [`Hierarchy::down`].
pub const NONE: u32 = u32::MAX;

/// Number of ADOs, C(K + depth, depth), or `None` on overflow.
pub fn count_ados(n_exponents: usize, depth: usize) -> Option<u64> {
    // C(K + D, D) computed incrementally: prod_{i=1..D} (K + i) / i, exact at every step.
    let mut c: u128 = 1;
    for i in 1..=depth as u128 {
        c = c.checked_mul(n_exponents as u128 + i)? / i;
        if c > u64::MAX as u128 {
            return None;
        }
    }
    Some(c as u64)
}

/// ADO labels in tier order and their neighbours.
#[derive(Debug, Clone)]
pub struct Hierarchy {
    /// Number of exponents K (over all baths).
    pub n_exponents: usize,
    /// Largest tier |n|.
    pub depth: usize,
    /// Labels, row-major (n_ados x K).
    pub labels: Vec<u16>,
    /// `up[a*K + k]`: index of n + e_k, or [`NONE`] when |n| = depth.
    pub up: Vec<u32>,
    /// `down[a*K + k]`: index of n - e_k, or [`NONE`] when n_k = 0.
    pub down: Vec<u32>,
    /// ADOs of tier t are `tier_start[t] .. tier_start[t + 1]`.
    pub tier_start: Vec<usize>,
}

fn compositions(total: usize, parts: usize, prefix: &mut Vec<u16>, out: &mut Vec<u16>) {
    if parts == 1 {
        prefix.push(total as u16);
        out.extend_from_slice(prefix);
        prefix.pop();
        return;
    }
    for first in (0..=total).rev() {
        prefix.push(first as u16);
        compositions(total - first, parts - 1, prefix, out);
        prefix.pop();
    }
}

impl Hierarchy {
    /// Enumerate all ADOs of `n_exponents` exponents up to `depth`.
    pub fn new(n_exponents: usize, depth: usize) -> HeomResult<Self> {
        if depth > u16::MAX as usize {
            return Err(HeomError::invalid(
                "depth",
                format!("depth = {depth} is too large"),
            ));
        }
        let n = count_ados(n_exponents, depth).filter(|&n| n < NONE as u64);
        let n = match n {
            Some(n) => n as usize,
            None => {
                return Err(HeomError::invalid(
                    "depth",
                    format!(
                        "depth = {depth} with {n_exponents} exponents gives more than 2^32 ADOs; \
                         lower depth or n_exp"
                    ),
                ))
            }
        };
        let k = n_exponents;
        let mut labels: Vec<u16> = Vec::with_capacity(n * k);
        let mut tier_start = vec![0usize];
        if k == 0 {
            // Only the system density matrix.
            tier_start.push(1);
            return Ok(Hierarchy {
                n_exponents: 0,
                depth,
                labels,
                up: Vec::new(),
                down: Vec::new(),
                tier_start,
            });
        }
        let mut prefix = Vec::with_capacity(k);
        for t in 0..=depth {
            compositions(t, k, &mut prefix, &mut labels);
            tier_start.push(labels.len() / k);
        }
        debug_assert_eq!(labels.len(), n * k);
        let index: HashMap<&[u16], u32> = labels
            .chunks_exact(k)
            .enumerate()
            .map(|(a, l)| (l, a as u32))
            .collect();
        let mut up = vec![NONE; n * k];
        let mut down = vec![NONE; n * k];
        let mut work = vec![0u16; k];
        for a in 0..n {
            let lab = &labels[a * k..(a + 1) * k];
            let tier: usize = lab.iter().map(|&x| x as usize).sum();
            for j in 0..k {
                if tier < depth {
                    work.copy_from_slice(lab);
                    work[j] += 1;
                    up[a * k + j] = index[work.as_slice()];
                }
                if lab[j] > 0 {
                    work.copy_from_slice(lab);
                    work[j] -= 1;
                    down[a * k + j] = index[work.as_slice()];
                }
            }
        }
        Ok(Hierarchy {
            n_exponents: k,
            depth,
            labels,
            up,
            down,
            tier_start,
        })
    }

    /// Number of ADOs.
    pub fn n_ados(&self) -> usize {
        *self.tier_start.last().unwrap_or(&1)
    }

    /// Label of ADO `a`.
    pub fn label(&self, a: usize) -> &[u16] {
        &self.labels[a * self.n_exponents..(a + 1) * self.n_exponents]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_binomials() {
        assert_eq!(count_ados(6, 3), Some(84));
        assert_eq!(count_ados(8, 8), Some(12870));
        assert_eq!(count_ados(0, 5), Some(1));
        assert_eq!(count_ados(5, 0), Some(1));
        for (k, d) in [(6, 3), (8, 8), (3, 4), (1, 7), (4, 0), (0, 3)] {
            let h = Hierarchy::new(k, d).unwrap();
            assert_eq!(h.n_ados() as u64, count_ados(k, d).unwrap());
        }
        assert!(count_ados(1000, 1000).is_none());
        assert!(Hierarchy::new(200, 40).is_err());
    }

    #[test]
    fn tier_order_and_neighbours() {
        let (k, depth) = (6, 3);
        let h = Hierarchy::new(k, depth).unwrap();
        assert_eq!(h.tier_start, vec![0, 1, 7, 28, 84]);
        assert!(h.label(0).iter().all(|&x| x == 0));
        for a in 0..h.n_ados() {
            let lab = h.label(a).to_vec();
            let tier: usize = lab.iter().map(|&x| x as usize).sum();
            assert!(a >= h.tier_start[tier] && a < h.tier_start[tier + 1]);
            for j in 0..k {
                let u = h.up[a * k + j];
                if tier == depth {
                    assert_eq!(u, NONE);
                } else {
                    let mut want = lab.clone();
                    want[j] += 1;
                    assert_eq!(h.label(u as usize), want.as_slice());
                    assert_eq!(h.down[u as usize * k + j] as usize, a);
                }
                let dn = h.down[a * k + j];
                if lab[j] == 0 {
                    assert_eq!(dn, NONE);
                } else {
                    let mut want = lab.clone();
                    want[j] -= 1;
                    assert_eq!(h.label(dn as usize), want.as_slice());
                }
            }
        }
        // labels are unique
        let mut seen = std::collections::HashSet::new();
        for a in 0..h.n_ados() {
            assert!(seen.insert(h.label(a).to_vec()));
        }
    }
}
