//! Bath correlation functions as sums of exponentials, C(t) = sum_k c_k e^{-nu_k t} (t > 0),
//! with complex rates nu_k (Re nu_k > 0) allowed.
//!
//! The hierarchy needs C(t) and its conjugate C(t)* = C(-t) in the same exponentials, so every
//! exponent also carries `cbar`, the amplitude of e^{-nu_k t} in C(t)*. For a set of rates closed
//! under conjugation that costs nothing: cbar_k = conj(c_{k'}) with nu_{k'} = conj(nu_k) (k' = k
//! for a real rate). A complex rate without its conjugate partner gets one added with c = 0
//! ([`generic`]); this pairing keeps an underdamped mode at two exponents instead of the four a
//! separate expansion of C and C* would need.
//!
//! Drude-Lorentz spectral density J(w) = 2 kappa gamma w / (w^2 + gamma^2) expanded with
//! Matsubara frequencies or with the [N-1/N] Pade decomposition of the Bose function
//! (Hu, Xu & Yan, J. Chem. Phys. 134, 244106 (2011)); the neglected tail is kept as a
//! delta-correlated terminator of amplitude `delta`. A generic bath takes (c_k, nu_k) lists.

use super::error::{HeomError, HeomResult};
use super::linalg::{hermitian_eigen, C64};
use std::f64::consts::PI;

/// Where an exponent comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExponentKind {
    /// The Drude pole nu = gamma (complex amplitude).
    Drude,
    /// A Matsubara term nu_k = 2 pi k T (real amplitude).
    Matsubara,
    /// A Pade pole (real amplitude).
    Pade,
    /// Given by the user.
    Generic,
}

impl ExponentKind {
    /// Lower-case name used on the Python side.
    pub fn name(self) -> &'static str {
        match self {
            ExponentKind::Drude => "drude",
            ExponentKind::Matsubara => "matsubara",
            ExponentKind::Pade => "pade",
            ExponentKind::Generic => "generic",
        }
    }
}

/// One term c e^{-nu t} of a bath correlation function, and cbar e^{-nu t} of its conjugate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exponent {
    pub c: C64,
    pub cbar: C64,
    pub nu: C64,
    pub kind: ExponentKind,
}

impl Exponent {
    /// A term with a real rate: its own conjugate partner (cbar = conj(c)).
    fn real_rate(c: C64, nu: f64, kind: ExponentKind) -> Self {
        Exponent {
            c,
            cbar: c.conj(),
            nu: C64::new(nu, 0.0),
            kind,
        }
    }

    /// Amplitude of the commutator part of the down coupling, (c + cbar) / 2 (= Re c for a real
    /// rate): the tier below enters as -i a [Q, .] + b {Q, .}.
    pub fn commutator_amplitude(&self) -> C64 {
        (self.c + self.cbar) * 0.5
    }

    /// Amplitude of the anticommutator part, -i (c - cbar) / 2 (= Im c for a real rate).
    pub fn anticommutator_amplitude(&self) -> C64 {
        (self.c - self.cbar) * C64::new(0.0, -0.5)
    }
}

/// The exponents of one bath and the terminator amplitude (0 when no terminator is used).
#[derive(Debug, Clone, PartialEq)]
pub struct BathExponents {
    pub exponents: Vec<Exponent>,
    pub delta: f64,
}

/// Expansion of the Bose function used for a Drude-Lorentz bath.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expansion {
    Matsubara,
    Pade,
}

fn check_dl(kappa: f64, gamma: f64, temperature: f64) -> HeomResult<()> {
    if !(kappa.is_finite() && kappa >= 0.0) {
        return Err(HeomError::invalid(
            "kappa",
            format!("kappa = {kappa} is outside the allowed range [0, inf)"),
        ));
    }
    if !(gamma.is_finite() && gamma > 0.0) {
        return Err(HeomError::invalid(
            "gamma",
            format!("gamma = {gamma} is outside the allowed range (0, inf)"),
        ));
    }
    if !(temperature.is_finite() && temperature > 0.0) {
        return Err(HeomError::invalid(
            "T",
            format!("T = {temperature} is outside the allowed range (0, inf)"),
        ));
    }
    Ok(())
}

/// Amplitude of a term of the coth expansion at frequency `nu` with weight `eta`:
/// eta * 4 kappa gamma T nu / (nu^2 - gamma^2).
fn pole_amplitude(kappa: f64, gamma: f64, temperature: f64, nu: f64, eta: f64) -> HeomResult<f64> {
    let den = nu * nu - gamma * gamma;
    let c = eta * 4.0 * kappa * gamma * temperature * nu / den;
    if !c.is_finite() || den.abs() <= 1e-12 * gamma * gamma {
        return Err(HeomError::invalid(
            "gamma",
            format!(
                "gamma = {gamma} coincides with a bath frequency nu = {nu} at T = {temperature}; \
                 change gamma or T slightly"
            ),
        ));
    }
    Ok(c)
}

/// The Drude term c_0 = kappa gamma (cot(gamma / 2T) - i), nu_0 = gamma.
fn drude_term(kappa: f64, gamma: f64, temperature: f64) -> HeomResult<Exponent> {
    let x = gamma / (2.0 * temperature);
    let cot = x.cos() / x.sin();
    if !cot.is_finite() || x.sin().abs() < 1e-12 {
        return Err(HeomError::invalid(
            "gamma",
            format!(
                "gamma / (2 T) = {x} is a multiple of pi: the Drude term is singular; \
                 change gamma or T slightly"
            ),
        ));
    }
    Ok(Exponent::real_rate(
        C64::new(kappa * gamma * cot, -kappa * gamma),
        gamma,
        ExponentKind::Drude,
    ))
}

/// Terminator amplitude 2 kappa T / gamma - sum_k Re(c_k) / nu_k.
pub fn terminator_delta(kappa: f64, gamma: f64, temperature: f64, exps: &[Exponent]) -> f64 {
    2.0 * kappa * temperature / gamma - exps.iter().map(|e| e.c.re / e.nu.re).sum::<f64>()
}

/// Positive eigenvalues (descending) of the symmetric tridiagonal matrix with zero diagonal and
/// off-diagonal entries 1 / sqrt(b_m b_{m+1}), b_m = 2 m + 1, for m = m0 .. m0 + n - 1.
fn pade_tridiagonal_roots(m0: usize, n: usize) -> Vec<f64> {
    if n == 0 {
        return Vec::new();
    }
    let mut a = vec![C64::new(0.0, 0.0); n * n];
    for i in 0..n.saturating_sub(1) {
        let bm = (2 * (m0 + i) + 1) as f64;
        let bm1 = (2 * (m0 + i + 1) + 1) as f64;
        let v = 1.0 / (bm * bm1).sqrt();
        a[i * n + i + 1] = C64::new(v, 0.0);
        a[(i + 1) * n + i] = C64::new(v, 0.0);
    }
    let (w, _) = hermitian_eigen(&a, n);
    let mut pos: Vec<f64> = w.into_iter().filter(|&x| x > 1e-14).collect();
    pos.sort_by(|x, y| y.total_cmp(x));
    pos
}

/// Poles xi_j and weights eta_j of the [N-1/N] Pade decomposition of the Bose function,
/// 1 / (1 - e^{-x}) = 1/x + 1/2 + sum_j 2 eta_j x / (x^2 + xi_j^2), j = 1..N.
pub fn pade_poles(n: usize) -> (Vec<f64>, Vec<f64>) {
    if n == 0 {
        return (Vec::new(), Vec::new());
    }
    let xi: Vec<f64> = pade_tridiagonal_roots(1, 2 * n)
        .iter()
        .map(|z| 2.0 / z)
        .collect();
    let zeta: Vec<f64> = pade_tridiagonal_roots(2, 2 * n - 1)
        .iter()
        .map(|z| 2.0 / z)
        .collect();
    let prefactor = 0.5 * (n as f64) * (2 * (n + 1) + 1) as f64;
    // The products of the numerator and of the denominator each overflow from n of about 45 (their
    // factors reach xi_max^2 ~ 1e7); the zeta and the other xi interlace, so taking them as
    // ratios, the i-th zeta against the i-th other xi (both descending), keeps every partial
    // product of moderate size.
    let eta = (0..n)
        .map(|j| {
            let xj2 = xi[j] * xi[j];
            let others = xi
                .iter()
                .enumerate()
                .filter(|&(k, _)| k != j)
                .map(|(_, x)| x);
            zeta.iter()
                .zip(others)
                .fold(prefactor, |t, (z, x)| t * (z * z - xj2) / (x * x - xj2))
        })
        .collect();
    (xi, eta)
}

/// Exponents of a Drude-Lorentz bath: the Drude term and `n_exp` Matsubara terms or Pade poles.
pub fn drude_lorentz(
    kappa: f64,
    gamma: f64,
    temperature: f64,
    n_exp: usize,
    expansion: Expansion,
    terminator: bool,
) -> HeomResult<BathExponents> {
    check_dl(kappa, gamma, temperature)?;
    let mut exps = vec![drude_term(kappa, gamma, temperature)?];
    match expansion {
        Expansion::Matsubara => {
            for k in 1..=n_exp {
                let nu = 2.0 * PI * (k as f64) * temperature;
                let c = pole_amplitude(kappa, gamma, temperature, nu, 1.0)?;
                exps.push(Exponent::real_rate(
                    C64::new(c, 0.0),
                    nu,
                    ExponentKind::Matsubara,
                ));
            }
        }
        Expansion::Pade => {
            let (xi, eta) = pade_poles(n_exp);
            for (x, e) in xi.iter().zip(&eta) {
                let nu = x * temperature;
                let c = pole_amplitude(kappa, gamma, temperature, nu, *e)?;
                exps.push(Exponent::real_rate(
                    C64::new(c, 0.0),
                    nu,
                    ExponentKind::Pade,
                ));
            }
        }
    }
    let delta = if terminator {
        terminator_delta(kappa, gamma, temperature, &exps)
    } else {
        0.0
    };
    Ok(BathExponents {
        exponents: exps,
        delta,
    })
}

fn check_finite(name: &str, k: usize, z: C64) -> HeomResult<()> {
    if z.re.is_finite() && z.im.is_finite() {
        Ok(())
    } else {
        Err(HeomError::invalid(
            name,
            format!("{name}[{k}] = {z} is not finite"),
        ))
    }
}

fn check_rate(k: usize, nu: C64) -> HeomResult<()> {
    check_finite("nu", k, nu)?;
    if nu.re > 0.0 {
        Ok(())
    } else {
        Err(HeomError::invalid(
            "nu",
            format!("nu[{k}] = {nu} must have a real part in the allowed range (0, inf)"),
        ))
    }
}

fn check_delta(delta: f64) -> HeomResult<()> {
    if delta.is_finite() {
        Ok(())
    } else {
        Err(HeomError::invalid(
            "delta",
            format!("delta = {delta} is not finite"),
        ))
    }
}

/// Two rates that are each other's conjugates, up to rounding.
fn conjugate_rates(x: C64, y: C64) -> bool {
    (x - y.conj()).norm() <= 1e-12 * x.norm().max(y.norm())
}

/// A bath given by C(t) = sum_k c_k e^{-nu_k t} alone (c_k, nu_k complex, Re nu_k > 0) and its
/// terminator amplitude; each exponent is paired with its conjugate, which is added (with c = 0)
/// where the list lacks it.
pub fn generic(c: &[C64], nu: &[C64], delta: f64) -> HeomResult<BathExponents> {
    if c.len() != nu.len() {
        return Err(HeomError::invalid(
            "nu",
            format!("got {} amplitudes c but {} rates nu", c.len(), nu.len()),
        ));
    }
    for (k, (&ck, &nk)) in c.iter().zip(nu).enumerate() {
        check_finite("c", k, ck)?;
        check_rate(k, nk)?;
    }
    check_delta(delta)?;
    let mut c: Vec<C64> = c.to_vec();
    let mut nu: Vec<C64> = nu.to_vec();
    let mut partner: Vec<Option<usize>> = vec![None; nu.len()];
    for k in 0..nu.len() {
        if partner[k].is_some() {
            continue;
        }
        let found = (k..nu.len()).find(|&j| partner[j].is_none() && conjugate_rates(nu[k], nu[j]));
        let j = found.unwrap_or_else(|| {
            c.push(C64::new(0.0, 0.0));
            nu.push(nu[k].conj());
            partner.push(None);
            nu.len() - 1
        });
        partner[k] = Some(j);
        partner[j] = Some(k);
    }
    let exponents = (0..nu.len())
        .map(|k| {
            let j = partner[k].unwrap_or(k);
            Exponent {
                c: c[k],
                cbar: c[j].conj(),
                nu: nu[k],
                kind: ExponentKind::Generic,
            }
        })
        .collect();
    Ok(BathExponents { exponents, delta })
}

/// A bath given by both expansions, C(t) = sum_k c_k e^{-nu_k t} and
/// C(t)* = sum_k cbar_k e^{-nu_k t}, as the solver stores it (no pairing is done).
pub fn paired(c: &[C64], cbar: &[C64], nu: &[C64], delta: f64) -> HeomResult<BathExponents> {
    if c.len() != nu.len() || cbar.len() != nu.len() {
        return Err(HeomError::invalid(
            "nu",
            format!(
                "got {} amplitudes c, {} amplitudes cbar and {} rates nu",
                c.len(),
                cbar.len(),
                nu.len()
            ),
        ));
    }
    for k in 0..nu.len() {
        check_finite("c", k, c[k])?;
        check_finite("cbar", k, cbar[k])?;
        check_rate(k, nu[k])?;
    }
    check_delta(delta)?;
    Ok(BathExponents {
        exponents: (0..nu.len())
            .map(|k| Exponent {
                c: c[k],
                cbar: cbar[k],
                nu: nu[k],
                kind: ExponentKind::Generic,
            })
            .collect(),
        delta,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matsubara_closed_forms() {
        let (kappa, gamma, t) = (0.01, 2.0, 2.0);
        let b = drude_lorentz(kappa, gamma, t, 2, Expansion::Matsubara, true).unwrap();
        assert_eq!(b.exponents.len(), 3);
        let e0 = b.exponents[0];
        assert!((e0.c.re - kappa * gamma / (gamma / (2.0 * t)).tan()).abs() < 1e-16);
        assert!((e0.c.im + kappa * gamma).abs() < 1e-17);
        assert!((b.exponents[1].nu.re - 12.566370614359172).abs() < 1e-12);
        assert!((b.exponents[2].nu.re - 25.132741228718345).abs() < 1e-12);
        assert!((b.exponents[1].c.re - 0.013063292512253532).abs() < 1e-15);
        // sum_k c_k^R / nu_k + delta = 2 kappa T / gamma
        let s: f64 = b.exponents.iter().map(|e| e.c.re / e.nu.re).sum();
        assert!((s + b.delta - 2.0 * kappa * t / gamma).abs() < 1e-16);
        assert!((b.delta - 0.0004006617532900765).abs() < 1e-15);
        // The Matsubara tail sum_{k>N} 4 kappa gamma T / nu_k^2 ~ kappa gamma / (pi^2 T N).
        let n = 2000;
        let many = drude_lorentz(kappa, gamma, t, n, Expansion::Matsubara, true).unwrap();
        let tail = kappa * gamma / (PI * PI * t * n as f64);
        assert!((many.delta / tail - 1.0).abs() < 1e-3);
        let none = drude_lorentz(kappa, gamma, t, 2, Expansion::Matsubara, false).unwrap();
        assert_eq!(none.delta, 0.0);
    }

    /// The Pade decomposition 1/x + 1/2 + sum_j 2 eta_j x / (x^2 + xi_j^2) of 1 / (1 - e^{-x}).
    fn pade_bose(xi: &[f64], eta: &[f64], x: f64) -> f64 {
        1.0 / x
            + 0.5
            + xi.iter()
                .zip(eta)
                .map(|(p, e)| 2.0 * e * x / (x * x + p * p))
                .sum::<f64>()
    }

    #[test]
    fn pade_matches_bose_function_and_reference() {
        let (xi, eta) = pade_poles(4);
        for x in [0.1_f64, 0.7, 2.0, 5.0] {
            let exact = 1.0 / (1.0 - (-x).exp());
            assert!(
                (exact - pade_bose(&xi, &eta, x)).abs() < 1e-9 * exact,
                "x = {x}"
            );
        }
        // Reference values (QuTiP DrudeLorentzPadeBath, lam = 0.01, gamma = 2, T = 2, Nk = 2).
        let b = drude_lorentz(0.01, 2.0, 2.0, 2, Expansion::Pade, true).unwrap();
        assert!((b.exponents[1].nu.re - 12.61187828844962).abs() < 1e-11);
        assert!((b.exponents[2].nu.re - 38.999237505845336).abs() < 1e-10);
        assert!((b.exponents[1].c.re - 0.013440884359074225).abs() < 1e-14);
        assert!((b.exponents[2].c.re - 0.024545754089520453).abs() < 1e-14);
        assert!(b.delta.abs() < 1e-10);
        assert_eq!(pade_poles(0).0.len(), 0);
        assert_eq!(pade_poles(3).0.len(), 3);
    }

    /// Many poles: the weights used to overflow from N of about 45 (reported as gamma coinciding
    /// with a pole); they stay finite and positive and the decomposition stays exact.
    #[test]
    fn many_pade_poles_keep_finite_weights() {
        let (xi, eta) = pade_poles(46);
        assert_eq!((xi.len(), eta.len()), (46, 46));
        assert!(eta.iter().all(|e| e.is_finite() && *e > 0.0));
        for x in [0.3_f64, 3.0, 30.0] {
            let exact = 1.0 / (1.0 - (-x).exp());
            assert!(
                (exact - pade_bose(&xi, &eta, x)).abs() < 1e-12 * exact,
                "x = {x}"
            );
        }
        assert!(drude_lorentz(0.1, 2.0, 1.0, 46, Expansion::Pade, true).is_ok());
    }

    #[test]
    fn invalid_parameters_are_errors() {
        assert!(drude_lorentz(-1.0, 2.0, 1.0, 2, Expansion::Matsubara, true).is_err());
        assert!(drude_lorentz(0.1, 0.0, 1.0, 2, Expansion::Matsubara, true).is_err());
        assert!(drude_lorentz(0.1, 2.0, 0.0, 2, Expansion::Matsubara, true).is_err());
        assert!(drude_lorentz(0.1, 2.0, f64::NAN, 2, Expansion::Pade, true).is_err());
        // gamma = 2 pi T: first Matsubara frequency coincides with gamma
        let t = 1.0 / (2.0 * PI);
        assert!(drude_lorentz(0.1, 1.0, t, 2, Expansion::Matsubara, true).is_err());
        let one = C64::new(1.0, 0.0);
        assert!(generic(&[one], &[C64::new(0.0, 1.0)], 0.0).is_err());
        assert!(generic(&[one], &[one, one], 0.0).is_err());
        assert!(generic(&[one], &[one], f64::NAN).is_err());
        assert!(generic(&[one], &[one], 0.0).is_ok());
        assert!(paired(&[one], &[one], &[C64::new(-1.0, 0.0)], 0.0).is_err());
        assert!(paired(&[one], &[], &[one], 0.0).is_err());
    }

    /// The conjugate partners: present ones are found, a missing one is added, and the two
    /// expansions are each other's conjugates, sum c_k e^{-nu_k t} = conj(sum cbar_k e^{-nu_k t}).
    #[test]
    fn conjugate_pairing() {
        let c = [
            C64::new(0.3, 0.1),
            C64::new(0.2, -0.4),
            C64::new(0.3, -0.1),
            C64::new(0.5, 0.0),
        ];
        let nu = [
            C64::new(0.5, 2.0),
            C64::new(1.5, 0.7),
            C64::new(0.5, -2.0),
            C64::new(3.0, 0.0),
        ];
        let b = generic(&c, &nu, 0.0).unwrap();
        assert_eq!(b.exponents.len(), 5); // 1.5 - 0.7i was added
        let added = b.exponents[4];
        assert_eq!((added.c, added.nu), (C64::new(0.0, 0.0), nu[1].conj()));
        assert_eq!(added.cbar, c[1].conj());
        assert_eq!(b.exponents[1].cbar, C64::new(0.0, 0.0));
        assert_eq!(b.exponents[0].cbar, c[2].conj());
        assert_eq!(b.exponents[3].cbar, c[3].conj());
        for t in [0.0, 0.3, 2.0] {
            let sum = |f: &dyn Fn(&Exponent) -> C64| -> C64 {
                b.exponents.iter().map(|e| f(e) * (-e.nu * t).exp()).sum()
            };
            let direct: C64 = c.iter().zip(&nu).map(|(c, n)| c * (-n * t).exp()).sum();
            assert!((sum(&|e| e.c) - direct).norm() < 1e-15);
            assert!((sum(&|e| e.cbar) - direct.conj()).norm() < 1e-15);
        }
        // a real rate: a = Re c, b = Im c as in the Drude-Lorentz case
        let e = b.exponents[3];
        assert_eq!(e.commutator_amplitude(), C64::new(0.5, 0.0));
        assert_eq!(e.anticommutator_amplitude(), C64::new(0.0, 0.0));
    }
}
