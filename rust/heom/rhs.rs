//! Matrix-free application of the tier-coupling part of the HEOM generator on rescaled ADOs.
//!
//! With rho_n = s_n r_n, s_n = prod_k sqrt(n_k! a_k^{n_k}) (a_k = |c_k|, or 1 when c_k = 0), the
//! couplings of design.md section 4 become
//!   up:   -i sqrt((n_k + 1) a_k) [Q, r_{n+e_k}]
//!   down: sqrt(n_k / a_k) (-i c_k^R [Q, r_{n-e_k}] + c_k^I {Q, r_{n-e_k}})
//! plus the terminator -delta [Q, [Q, r_n]]. The system Liouvillian -i[H, .] and the decay
//! -(sum_k n_k nu_k) are not applied here: the integrator treats them exactly. Blocks of the same
//! bath are summed before the one commutator per bath: out += Q P - M Q with P = A + B, M = A - B
//! (A: commutator operand, B: anticommutator operand).

use super::hierarchy::{Hierarchy, NONE};
use super::linalg::C64;
use rayon::prelude::*;

/// Number of ADOs per parallel task; also the threshold below which the loop stays serial.
pub const CHUNK_ADOS: usize = 64;
/// Below this many ADOs the coupling is applied serially.
pub const PARALLEL_MIN_ADOS: usize = 512;

/// Non-zero entry (i, j, value) of a coupling operator.
pub type Entry = (usize, usize, C64);

/// The transpose of a row-major D x D block.
#[inline(always)]
fn transpose<const D: usize, const D2: usize>(x: &[C64; D2]) -> [C64; D2] {
    let mut t = *x;
    for i in 0..D {
        for j in 0..D {
            t[j * D + i] = x[i * D + j];
        }
    }
    t
}

/// Block `b` of `y` as a fixed-size array (a plain function, not a closure, so that it always
/// inlines). Blocks are D2 long by construction; an impossible mismatch yields a zero block.
#[inline(always)]
fn fixed_block<const D2: usize>(y: &[C64], b: usize) -> &[C64; D2] {
    match y[b * D2..(b + 1) * D2].try_into() {
        Ok(x) => x,
        Err(_) => &[C64 { re: 0.0, im: 0.0 }; D2],
    }
}

/// Precomputed coefficients of the couplings (independent of the basis and of H).
#[derive(Debug, Clone)]
pub struct Couplings {
    pub d: usize,
    pub n_exponents: usize,
    pub depth: usize,
    /// Exponent range [start, end) of each bath.
    pub bath_ranges: Vec<(usize, usize)>,
    /// Terminator amplitude of each bath.
    pub delta: Vec<f64>,
    /// Rescaling constant a_k of each exponent.
    pub scale: Vec<f64>,
    /// `up_mag[k * depth + m]` = sqrt((m + 1) a_k) (the up coefficient is -i times this).
    pub up_mag: Vec<f64>,
    /// `down_comm[k * (depth+1) + m]` = c_k^R sqrt(m / a_k) (commutator part is -i times this),
    /// `down_anti[...]` = c_k^I sqrt(m / a_k) (anticommutator part).
    pub down_comm: Vec<f64>,
    pub down_anti: Vec<f64>,
    /// Decay sum_k n_k nu_k of each ADO.
    pub decay: Vec<f64>,
}

impl Couplings {
    /// Build the coefficient tables for exponents (c_k, nu_k) grouped by bath.
    pub fn new(
        d: usize,
        hierarchy: &Hierarchy,
        bath_ranges: Vec<(usize, usize)>,
        delta: Vec<f64>,
        c: &[C64],
        nu: &[f64],
    ) -> Self {
        let k_tot = hierarchy.n_exponents;
        let depth = hierarchy.depth;
        let scale: Vec<f64> = c
            .iter()
            .map(|ck| if ck.norm() > 0.0 { ck.norm() } else { 1.0 })
            .collect();
        let mut up_mag = vec![0.0; k_tot * depth.max(1)];
        let mut down_comm = vec![0.0; k_tot * (depth + 1)];
        let mut down_anti = vec![0.0; k_tot * (depth + 1)];
        for k in 0..k_tot {
            for m in 0..depth {
                up_mag[k * depth + m] = ((m as f64 + 1.0) * scale[k]).sqrt();
            }
            for m in 1..=depth {
                let s = (m as f64 / scale[k]).sqrt();
                down_comm[k * (depth + 1) + m] = c[k].re * s;
                down_anti[k * (depth + 1) + m] = c[k].im * s;
            }
        }
        let decay = (0..hierarchy.n_ados())
            .map(|a| {
                hierarchy
                    .label(a)
                    .iter()
                    .zip(nu)
                    .map(|(&n, &v)| n as f64 * v)
                    .sum()
            })
            .collect();
        Couplings {
            d,
            n_exponents: k_tot,
            depth,
            bath_ranges,
            delta,
            scale,
            up_mag,
            down_comm,
            down_anti,
            decay,
        }
    }

    /// Coefficient of the up coupling -i sqrt((n_k + 1) a_k) of exponent k at n_k = `nk`.
    #[inline(always)]
    pub fn up_coefficient(&self, k: usize, nk: usize) -> C64 {
        C64::new(0.0, -self.up_mag[k * self.depth + nk])
    }

    /// Coefficients (P, M) of the down coupling of exponent k at n_k = `nk`: the one of Q x and
    /// the one of -x Q, -i c^R s +- c^I s with s = sqrt(n_k / a_k).
    #[inline(always)]
    pub fn down_coefficients(&self, k: usize, nk: usize) -> (C64, C64) {
        let i = k * (self.depth + 1) + nk;
        let (comm, anti) = (self.down_comm[i], self.down_anti[i]);
        (C64::new(anti, -comm), C64::new(-anti, -comm))
    }

    /// [`Couplings::apply_block`] for a compile-time dimension D (D2 = D * D): fixed-size
    /// arrays let the compiler unroll and vectorise the block arithmetic.
    #[inline(always)]
    fn apply_fixed<const D: usize, const D2: usize>(
        &self,
        hier: &Hierarchy,
        q: &[Vec<Entry>],
        y: &[C64],
        a: usize,
        out: &mut [C64],
    ) {
        let zero = C64::new(0.0, 0.0);
        let k_tot = self.n_exponents;
        let depth = self.depth;
        let lab = &hier.labels[a * k_tot..(a + 1) * k_tot];
        let ups = &hier.up[a * k_tot..(a + 1) * k_tot];
        let downs = &hier.down[a * k_tot..(a + 1) * k_tot];
        const { assert!(D * D == D2) };
        let block = |b: usize| fixed_block::<D2>(y, b);
        let ya = block(a);
        let mut acc = [zero; D2];
        let mut acc_t = [zero; D2];
        for (bi, &(k0, k1)) in self.bath_ranges.iter().enumerate() {
            let qb = &q[bi];
            // The neighbours' commutator operand without its factor -i, and their
            // anticommutator operand; real coefficients keep the inner loops two flops an entry.
            let mut comm = [zero; D2];
            let mut anti = [zero; D2];
            let (mut any, mut any_anti) = (false, false);
            for k in k0..k1 {
                let nk = lab[k] as usize;
                let u = ups[k];
                if u != NONE {
                    let s = self.up_mag[k * depth + nk];
                    for (c, yu) in comm.iter_mut().zip(block(u as usize)) {
                        *c += s * yu;
                    }
                    any = true;
                }
                let dn = downs[k];
                if dn != NONE {
                    let cr = self.down_comm[k * (depth + 1) + nk];
                    let ci = self.down_anti[k * (depth + 1) + nk];
                    let yd = block(dn as usize);
                    for (c, y) in comm.iter_mut().zip(yd) {
                        *c += cr * y;
                    }
                    if ci != 0.0 {
                        for (b, y) in anti.iter_mut().zip(yd) {
                            *b += ci * y;
                        }
                        any_anti = true;
                    }
                    any = true;
                }
            }
            // P = -i comm + anti - delta [Q, y_a], M = -i comm - anti - delta [Q, y_a]
            let mut p = [zero; D2];
            let delta = self.delta[bi];
            if delta != 0.0 {
                for &(i, j, qv) in qb {
                    if i >= D || j >= D {
                        continue;
                    }
                    let f = -delta * qv;
                    for l in 0..D {
                        p[i * D + l] += f * ya[j * D + l];
                        p[l * D + j] -= ya[l * D + i] * f;
                    }
                }
                any = true;
            }
            if !any {
                continue;
            }
            for (pe, c) in p.iter_mut().zip(&comm) {
                *pe += C64::new(c.im, -c.re);
            }
            let mut m = p;
            if any_anti {
                for ((pe, me), b) in p.iter_mut().zip(m.iter_mut()).zip(&anti) {
                    *pe += b;
                    *me -= b;
                }
            }
            // out += Q P - M Q, with M Q accumulated transposed, (M Q)^T = Q^T M^T, so that
            // every update is a whole contiguous row (no strided column access).
            let m_t = transpose::<D, D2>(&m);
            for &(i, j, qv) in qb {
                if i >= D || j >= D {
                    continue;
                }
                for l in 0..D {
                    acc[i * D + l] += qv * p[j * D + l];
                    acc_t[j * D + l] += qv * m_t[i * D + l];
                }
            }
        }
        let acc_t = transpose::<D, D2>(&acc_t);
        for ((o, x), xt) in out[..D2].iter_mut().zip(&acc).zip(&acc_t) {
            *o = x - xt;
        }
    }

    /// N(y) for ADO `a` into `out` (overwritten), with the coupling operators `q[b]` given by
    /// their non-zero entries. `scratch` holds at least 2 d^2 values.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub fn apply_block(
        &self,
        hier: &Hierarchy,
        q: &[Vec<Entry>],
        y: &[C64],
        a: usize,
        out: &mut [C64],
        scratch: &mut [C64],
    ) {
        match self.d {
            1 => return self.apply_fixed::<1, 1>(hier, q, y, a, out),
            2 => return self.apply_fixed::<2, 4>(hier, q, y, a, out),
            3 => return self.apply_fixed::<3, 9>(hier, q, y, a, out),
            4 => return self.apply_fixed::<4, 16>(hier, q, y, a, out),
            8 => return self.apply_fixed::<8, 64>(hier, q, y, a, out),
            _ => {}
        }
        let d = self.d;
        let d2 = d * d;
        let k_tot = self.n_exponents;
        let zero = C64::new(0.0, 0.0);
        out.iter_mut().for_each(|x| *x = zero);
        let (p, rest) = scratch.split_at_mut(d2);
        let m = &mut rest[..d2];
        let lab = &hier.labels[a * k_tot..(a + 1) * k_tot];
        let ups = &hier.up[a * k_tot..(a + 1) * k_tot];
        let downs = &hier.down[a * k_tot..(a + 1) * k_tot];
        let ya = &y[a * d2..(a + 1) * d2];
        for (b, &(k0, k1)) in self.bath_ranges.iter().enumerate() {
            let qb = &q[b];
            p.iter_mut().for_each(|x| *x = zero);
            let mut any = false;
            let delta = self.delta[b];
            if delta != 0.0 {
                // -delta [Q, y_a] into both operands.
                for &(i, j, qv) in qb {
                    let f = -delta * qv;
                    for l in 0..d {
                        p[i * d + l] += f * ya[j * d + l];
                        p[l * d + j] -= ya[l * d + i] * f;
                    }
                }
                any = true;
            }
            m.copy_from_slice(p);
            for k in k0..k1 {
                let nk = lab[k] as usize;
                let u = ups[k];
                if u != NONE {
                    let cf = self.up_coefficient(k, nk);
                    let yu = &y[u as usize * d2..(u as usize + 1) * d2];
                    for e in 0..d2 {
                        let v = cf * yu[e];
                        p[e] += v;
                        m[e] += v;
                    }
                    any = true;
                }
                let dn = downs[k];
                if dn != NONE {
                    let (cp, cm) = self.down_coefficients(k, nk);
                    let yd = &y[dn as usize * d2..(dn as usize + 1) * d2];
                    for e in 0..d2 {
                        p[e] += cp * yd[e];
                        m[e] += cm * yd[e];
                    }
                    any = true;
                }
            }
            if !any {
                continue;
            }
            // out += Q P - M Q
            for &(i, j, qv) in qb {
                for l in 0..d {
                    out[i * d + l] += qv * p[j * d + l];
                    out[l * d + j] -= m[l * d + i] * qv;
                }
            }
        }
    }

    /// Apply N to every ADO of `y` and hand each block to `finish`.
    ///
    /// For ADO `a`, `finish(a, n_block, fields_block, out_block)` receives the freshly computed
    /// N block (d^2 values), the ADO's `nf` interleaved field blocks (`nf * d^2` values of
    /// `fields`) and block `a` of `out` (d^2 values); it returns a number, and the sweep returns
    /// the sum (`sum = true`) or the maximum of those numbers (NaN if any is NaN). Runs in parallel over chunks of ADOs (rayon) when there are
    /// at least [`PARALLEL_MIN_ADOS`] ADOs, serially otherwise. `scratch` must hold
    /// `3 d^2` values per chunk of [`CHUNK_ADOS`] ADOs ([`Couplings::scratch_len`]).
    #[allow(clippy::too_many_arguments)]
    pub fn sweep<F>(
        &self,
        hier: &Hierarchy,
        q: &[Vec<Entry>],
        y: &[C64],
        out: &mut [C64],
        fields: &mut [C64],
        nf: usize,
        scratch: &mut [C64],
        sum: bool,
        finish: F,
    ) -> f64
    where
        F: Fn(usize, &[C64], &mut [C64], &mut [C64]) -> f64 + Sync,
    {
        let d2 = self.d * self.d;
        let n = hier.n_ados();
        // NaN propagates (max ignores NaN, so test explicitly).
        let reduce = |x: f64, y: f64| {
            if x.is_nan() || y.is_nan() {
                f64::NAN
            } else if sum {
                x + y
            } else {
                x.max(y)
            }
        };
        let body = |ci: usize, o: &mut [C64], f: &mut [C64], sc: &mut [C64]| -> f64 {
            let (nbuf, rest) = sc.split_at_mut(d2);
            let mut worst: f64 = 0.0;
            for (off, (ob, fb)) in o
                .chunks_exact_mut(d2)
                .zip(f.chunks_exact_mut(nf * d2))
                .enumerate()
            {
                let a = ci * CHUNK_ADOS + off;
                self.apply_block(hier, q, y, a, nbuf, rest);
                let r = finish(a, nbuf, fb, ob);
                worst = reduce(worst, r);
                if worst.is_nan() {
                    break;
                }
            }
            worst
        };
        let o_chunks = out[..n * d2].chunks_mut(CHUNK_ADOS * d2);
        let f_chunks = fields[..n * nf * d2].chunks_mut(CHUNK_ADOS * nf * d2);
        if n < PARALLEL_MIN_ADOS {
            o_chunks
                .zip(f_chunks)
                .zip(scratch.chunks_mut(3 * d2))
                .enumerate()
                .map(|(ci, ((o, f), sc))| body(ci, o, f, sc))
                .fold(0.0, reduce)
        } else {
            out[..n * d2]
                .par_chunks_mut(CHUNK_ADOS * d2)
                .zip(fields[..n * nf * d2].par_chunks_mut(CHUNK_ADOS * nf * d2))
                .zip(scratch.par_chunks_mut(3 * d2))
                .enumerate()
                .map(|(ci, ((o, f), sc))| body(ci, o, f, sc))
                .reduce(|| 0.0, reduce)
        }
    }

    /// Scratch length needed by [`Couplings::sweep`] for `n_ados` ADOs.
    pub fn scratch_len(&self, n_ados: usize) -> usize {
        n_ados.div_ceil(CHUNK_ADOS) * 3 * self.d * self.d
    }
}

/// Elementwise pass over ADO blocks (no coupling): `f(a, fields_block, out_block)`.
pub fn map_blocks<F>(d2: usize, n: usize, out: &mut [C64], fields: &mut [C64], nf: usize, f: F)
where
    F: Fn(usize, &mut [C64], &mut [C64]) + Sync,
{
    let body = |ci: usize, o: &mut [C64], fl: &mut [C64]| {
        for (off, (ob, fb)) in o
            .chunks_exact_mut(d2)
            .zip(fl.chunks_exact_mut(nf * d2))
            .enumerate()
        {
            f(ci * CHUNK_ADOS + off, fb, ob);
        }
    };
    let oc = CHUNK_ADOS * d2;
    let fc = CHUNK_ADOS * nf * d2;
    if n < PARALLEL_MIN_ADOS {
        out[..n * d2]
            .chunks_mut(oc)
            .zip(fields[..n * nf * d2].chunks_mut(fc))
            .enumerate()
            .for_each(|(ci, (o, fl))| body(ci, o, fl));
    } else {
        out[..n * d2]
            .par_chunks_mut(oc)
            .zip(fields[..n * nf * d2].par_chunks_mut(fc))
            .enumerate()
            .for_each(|(ci, (o, fl))| body(ci, o, fl));
    }
}
