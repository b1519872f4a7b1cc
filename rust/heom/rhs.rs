//! Matrix-free application of the tier-coupling part of the HEOM generator on rescaled ADOs.
//!
//! With rho_n = s_n r_n, s_n = prod_k sqrt(n_k! a_k^{n_k}) (a_k = sqrt(|A_k|^2 + |B_k|^2), or 1
//! when both vanish; A_k, B_k the commutator and anticommutator amplitudes of `bath.rs`, c_k^R and
//! c_k^I for a real rate), the couplings (docs/heom.md) become
//!   up:   -i sqrt((n_k + 1) a_k) [Q, r_{n+e_k}]
//!   down: sqrt(n_k / a_k) (-i A_k [Q, r_{n-e_k}] + B_k {Q, r_{n-e_k}})
//! plus the terminator -delta [Q, [Q, r_n]] and, for complex rates, the oscillation
//! -i (sum_k n_k Im nu_k) r_n. The system Liouvillian -i[H, .] and the decay -(sum_k n_k Re nu_k)
//! are not applied here: the integrator treats them exactly. Blocks of the same
//! bath are summed before the one commutator per bath: out += Q P - M Q with P = A + B, M = A - B
//! (A: commutator operand, B: anticommutator operand).

use super::bath::Exponent;
use super::hierarchy::{Hierarchy, NONE};
use super::linalg::C64;
use rayon::prelude::*;

/// Below this many ADOs the coupling is applied serially.
pub const PARALLEL_MIN_ADOS: usize = 512;

/// Non-zero entry (i, j, value) of a coupling operator.
pub type Entry = (usize, usize, C64);

/// The size of an ADO block, known at compile time ([`Fixed`]) or only at run time
/// ([`Dynamic`]), so that one kernel serves both: fixed-size arrays let the compiler unroll and
/// vectorise the block arithmetic of the sizes that matter.
trait BlockSize: Copy {
    /// A d x d work block (row-major).
    type Block: AsRef<[C64]> + AsMut<[C64]> + Clone;
    fn d(self) -> usize;
    fn zeros(self) -> Self::Block;
}

/// A compile-time block size D (D2 = D * D).
#[derive(Clone, Copy)]
struct Fixed<const D: usize, const D2: usize>;

impl<const D: usize, const D2: usize> BlockSize for Fixed<D, D2> {
    type Block = [C64; D2];
    #[inline(always)]
    fn d(self) -> usize {
        const { assert!(D * D == D2) };
        D
    }
    #[inline(always)]
    fn zeros(self) -> [C64; D2] {
        [C64::new(0.0, 0.0); D2]
    }
}

/// A block size known only at run time (systems for which no kernel is compiled).
#[derive(Clone, Copy)]
struct Dynamic(usize);

impl BlockSize for Dynamic {
    type Block = Vec<C64>;
    #[inline(always)]
    fn d(self) -> usize {
        self.0
    }
    fn zeros(self) -> Vec<C64> {
        vec![C64::new(0.0, 0.0); self.0 * self.0]
    }
}

/// out += c [Q, x] for the row-major d x d blocks `out` and `x`, Q given by its entries.
#[inline(always)]
fn add_commutator(out: &mut [C64], q: &[Entry], c: C64, x: &[C64], d: usize) {
    for &(i, j, qv) in q {
        debug_assert!(i < d && j < d, "coupling entry ({i}, {j}) outside d = {d}");
        if i >= d || j >= d {
            continue; // lets the compiler drop the bounds checks below
        }
        let f = c * qv;
        for l in 0..d {
            // (Q x)_{il} += Q_ij x_jl ;  (x Q)_{lj} += x_li Q_ij
            out[i * d + l] += f * x[j * d + l];
            out[l * d + j] -= x[l * d + i] * f;
        }
    }
}

/// A constant term of the equations (the steady-state frame's residual, `state.rs`) seen in the
/// interaction picture: entry e of ADO a is `values[a d^2 + e] * phases[e]`.
pub struct Source<'a> {
    pub values: &'a [C64],
    pub phases: Vec<C64>,
}

impl Source<'_> {
    /// out_a += values_a * phases, entry by entry.
    #[inline(always)]
    fn add_to(&self, a: usize, out: &mut [C64]) {
        let d2 = self.phases.len();
        let values = &self.values[a * d2..(a + 1) * d2];
        for ((o, v), p) in out.iter_mut().zip(values).zip(&self.phases) {
            *o += v * p;
        }
    }
}

/// The transpose of the row-major d x d block `x` into `t`.
#[inline(always)]
fn transpose_into(x: &[C64], t: &mut [C64], d: usize) {
    for i in 0..d {
        for j in 0..d {
            t[j * d + i] = x[i * d + j];
        }
    }
}

/// Precomputed coefficients of the couplings (independent of the basis and of H).
#[derive(Debug, Clone)]
pub struct Couplings {
    pub(super) d: usize,
    pub(super) n_exponents: usize,
    pub(super) depth: usize,
    /// Exponent range [start, end) of each bath.
    pub(super) bath_ranges: Vec<(usize, usize)>,
    /// Terminator amplitude of each bath.
    pub(super) delta: Vec<f64>,
    /// Rescaling constant a_k of each exponent.
    pub(super) scale: Vec<f64>,
    /// `up_mag[k * depth + m]` = sqrt((m + 1) a_k) (the up coefficient is -i times this).
    pub(super) up_mag: Vec<f64>,
    /// `down_comm[k * (depth+1) + m]` = A_k sqrt(m / a_k) (commutator part is -i times this),
    /// `down_anti[...]` = B_k sqrt(m / a_k) (anticommutator part).
    pub(super) down_comm: Vec<C64>,
    pub(super) down_anti: Vec<C64>,
    /// Whether A_k and B_k are real (every real rate): the kernel then multiplies by reals.
    real_amplitudes: Vec<bool>,
    /// Decay sum_k n_k Re nu_k of each ADO.
    pub(super) decay: Vec<f64>,
    /// Oscillation sum_k n_k Im nu_k of each ADO (all zero for real rates).
    pub(super) oscillation: Vec<f64>,
    any_oscillation: bool,
}

impl Couplings {
    /// Build the coefficient tables for the exponents over all baths (bath-major, bath b owning
    /// `bath_ranges[b]`).
    pub fn new(
        d: usize,
        hierarchy: &Hierarchy,
        bath_ranges: Vec<(usize, usize)>,
        delta: Vec<f64>,
        exponents: &[Exponent],
    ) -> Self {
        let k_tot = hierarchy.n_exponents;
        let depth = hierarchy.depth;
        let amplitudes: Vec<(C64, C64)> = exponents
            .iter()
            .map(|e| (e.commutator_amplitude(), e.anticommutator_amplitude()))
            .collect();
        let scale: Vec<f64> = amplitudes
            .iter()
            .map(|(a, b)| {
                let s = a.norm().hypot(b.norm());
                if s > 0.0 {
                    s
                } else {
                    1.0
                }
            })
            .collect();
        let real_amplitudes = amplitudes
            .iter()
            .map(|(a, b)| a.im == 0.0 && b.im == 0.0)
            .collect();
        let zero = C64::new(0.0, 0.0);
        let mut up_mag = vec![0.0; k_tot * depth.max(1)];
        let mut down_comm = vec![zero; k_tot * (depth + 1)];
        let mut down_anti = vec![zero; k_tot * (depth + 1)];
        for k in 0..k_tot {
            for m in 0..depth {
                up_mag[k * depth + m] = ((m as f64 + 1.0) * scale[k]).sqrt();
            }
            for m in 1..=depth {
                let s = (m as f64 / scale[k]).sqrt();
                down_comm[k * (depth + 1) + m] = amplitudes[k].0 * s;
                down_anti[k * (depth + 1) + m] = amplitudes[k].1 * s;
            }
        }
        let rate_sum = |a: usize, part: fn(&C64) -> f64| -> f64 {
            hierarchy
                .label(a)
                .iter()
                .zip(exponents)
                .map(|(&n, e)| n as f64 * part(&e.nu))
                .sum()
        };
        let decay = (0..hierarchy.n_ados())
            .map(|a| rate_sum(a, |z| z.re))
            .collect();
        let oscillation: Vec<f64> = (0..hierarchy.n_ados())
            .map(|a| rate_sum(a, |z| z.im))
            .collect();
        let any_oscillation = oscillation.iter().any(|&w| w != 0.0);
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
            real_amplitudes,
            decay,
            oscillation,
            any_oscillation,
        }
    }

    /// The diagonal rate of ADO `a` that the integrator does not treat, g_a = sum_k n_k nu_k
    /// complete: decay and oscillation.
    pub fn rate(&self, a: usize) -> C64 {
        C64::new(self.decay[a], self.oscillation[a])
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
        let minus_i_comm = C64::new(comm.im, -comm.re);
        (minus_i_comm + anti, minus_i_comm - anti)
    }

    /// N(y) for ADO `a` into `out` (overwritten), with the coupling operators `q[b]` given by
    /// their non-zero entries.
    #[inline(always)]
    pub fn apply_block(
        &self,
        hier: &Hierarchy,
        q: &[Vec<Entry>],
        y: &[C64],
        a: usize,
        out: &mut [C64],
    ) {
        match self.d {
            1 => self.kernel(Fixed::<1, 1>, hier, q, y, a, out),
            2 => self.kernel(Fixed::<2, 4>, hier, q, y, a, out),
            3 => self.kernel(Fixed::<3, 9>, hier, q, y, a, out),
            4 => self.kernel(Fixed::<4, 16>, hier, q, y, a, out),
            8 => self.kernel(Fixed::<8, 64>, hier, q, y, a, out),
            d => self.kernel(Dynamic(d), hier, q, y, a, out),
        }
    }

    /// N(y) for every ADO into `out`, plus the constant term `source` if any, in parallel over
    /// ADOs from [`PARALLEL_MIN_ADOS`] on. The source is added to each block right after it is
    /// computed, while it is in cache, not in a second pass over the hierarchy.
    #[inline(always)]
    pub fn apply_all(
        &self,
        hier: &Hierarchy,
        q: &[Vec<Entry>],
        y: &[C64],
        source: Option<&Source<'_>>,
        out: &mut [C64],
    ) {
        let d2 = self.d * self.d;
        if hier.n_ados() < PARALLEL_MIN_ADOS {
            // A plain loop (no closure), so that it inlines into the AVX2 copy of the step loop.
            for (a, o) in out.chunks_exact_mut(d2).enumerate() {
                self.apply_block(hier, q, y, a, o);
                if let Some(s) = source {
                    s.add_to(a, o);
                }
            }
        } else {
            out.par_chunks_exact_mut(d2)
                .with_min_len(64)
                .enumerate()
                .for_each(|(a, o)| {
                    self.apply_block(hier, q, y, a, o);
                    if let Some(s) = source {
                        s.add_to(a, o);
                    }
                });
        }
    }

    /// Add -i f [V, y_a] to every ADO of `out` (V given by its non-zero entries, `y` and `out`
    /// as in [`Couplings::apply_all`]): a drive term f V of the Hamiltonian (`drive.rs`).
    pub fn apply_drive(&self, n_ados: usize, v: &[Entry], f: f64, y: &[C64], out: &mut [C64]) {
        let d = self.d;
        let d2 = d * d;
        let minus_i_f = C64::new(0.0, -f);
        let one = |(a, o): (usize, &mut [C64])| {
            add_commutator(o, v, minus_i_f, &y[a * d2..(a + 1) * d2], d);
        };
        if n_ados < PARALLEL_MIN_ADOS {
            out.chunks_exact_mut(d2).enumerate().for_each(one);
        } else {
            out.par_chunks_exact_mut(d2)
                .with_min_len(64)
                .enumerate()
                .for_each(one);
        }
    }

    /// [`Couplings::apply_block`] for block size `size`.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn kernel<S: BlockSize>(
        &self,
        size: S,
        hier: &Hierarchy,
        q: &[Vec<Entry>],
        y: &[C64],
        a: usize,
        out: &mut [C64],
    ) {
        let d = size.d();
        let d2 = d * d;
        debug_assert_eq!(d, self.d, "block size");
        let k_tot = self.n_exponents;
        let depth = self.depth;
        let lab = &hier.labels[a * k_tot..(a + 1) * k_tot];
        let ups = &hier.up[a * k_tot..(a + 1) * k_tot];
        let downs = &hier.down[a * k_tot..(a + 1) * k_tot];
        let block = |b: usize| &y[b * d2..(b + 1) * d2];
        let ya = block(a);
        let mut acc = size.zeros();
        let mut acc_t = size.zeros();
        let mut m_t = size.zeros();
        for (bi, &(k0, k1)) in self.bath_ranges.iter().enumerate() {
            let qb = &q[bi];
            // The neighbours' commutator operand without its factor -i, and their
            // anticommutator operand; real coefficients keep the inner loops two flops an entry.
            let mut comm = size.zeros();
            let mut anti = size.zeros();
            let (comm_s, anti_s) = (comm.as_mut(), anti.as_mut());
            let (mut any, mut any_anti) = (false, false);
            for k in k0..k1 {
                let nk = lab[k] as usize;
                let u = ups[k];
                if u != NONE {
                    let s = self.up_mag[k * depth + nk];
                    for (c, yu) in comm_s.iter_mut().zip(block(u as usize)) {
                        *c += s * yu;
                    }
                    any = true;
                }
                let dn = downs[k];
                if dn != NONE {
                    let ca = self.down_comm[k * (depth + 1) + nk];
                    let cb = self.down_anti[k * (depth + 1) + nk];
                    let yd = block(dn as usize);
                    // Real amplitudes (every real rate) keep two flops an entry.
                    if self.real_amplitudes[k] {
                        let (ca, cb) = (ca.re, cb.re);
                        for (c, y) in comm_s.iter_mut().zip(yd) {
                            *c += ca * y;
                        }
                        if cb != 0.0 {
                            for (b, y) in anti_s.iter_mut().zip(yd) {
                                *b += cb * y;
                            }
                            any_anti = true;
                        }
                    } else {
                        for ((c, b), y) in comm_s.iter_mut().zip(anti_s.iter_mut()).zip(yd) {
                            *c += ca * y;
                            *b += cb * y;
                        }
                        any_anti = true;
                    }
                    any = true;
                }
            }
            // P = -i comm + anti - delta [Q, y_a], M = -i comm - anti - delta [Q, y_a]
            let mut p = size.zeros();
            let p_s = p.as_mut();
            let delta = self.delta[bi];
            if delta != 0.0 {
                add_commutator(p_s, qb, C64::new(-delta, 0.0), ya, d);
                any = true;
            }
            if !any {
                continue;
            }
            for (pe, c) in p_s.iter_mut().zip(comm.as_ref()) {
                *pe += C64::new(c.im, -c.re);
            }
            let mut m = p.clone();
            if any_anti {
                for ((pe, me), b) in p.as_mut().iter_mut().zip(m.as_mut()).zip(anti.as_ref()) {
                    *pe += b;
                    *me -= b;
                }
            }
            // out += Q P - M Q, with M Q accumulated transposed, (M Q)^T = Q^T M^T, so that
            // every update is a whole contiguous row (no strided column access).
            transpose_into(m.as_ref(), m_t.as_mut(), d);
            let (p_s, m_t_s) = (p.as_ref(), m_t.as_ref());
            let (acc_s, acc_t_s) = (acc.as_mut(), acc_t.as_mut());
            for &(i, j, qv) in qb {
                debug_assert!(i < d && j < d, "coupling entry ({i}, {j}) outside d = {d}");
                if i >= d || j >= d {
                    continue;
                }
                for l in 0..d {
                    acc_s[i * d + l] += qv * p_s[j * d + l];
                    acc_t_s[j * d + l] += qv * m_t_s[i * d + l];
                }
            }
        }
        transpose_into(acc_t.as_ref(), m_t.as_mut(), d);
        for ((o, x), xt) in out[..d2].iter_mut().zip(acc.as_ref()).zip(m_t.as_ref()) {
            *o = x - xt;
        }
        if self.any_oscillation {
            let minus_i_w = C64::new(0.0, -self.oscillation[a]);
            for (o, y) in out[..d2].iter_mut().zip(ya) {
                *o += minus_i_w * y;
            }
        }
    }
}
