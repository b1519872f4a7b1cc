"""Tests of qpump.bathfit: correlation functions by quadrature against closed forms, the Ohmic
closed form against QuTiP, and exponential fits against exact correlation functions."""

import math

import numpy as np
import pytest
from scipy.special import zeta

from qpump import bathfit
from qpump.errors import ComputationError, InvalidParameterError


def drude_lorentz_J(kappa, gamma):
    return lambda w: 2.0 * kappa * gamma * w / (w**2 + gamma**2)


def drude_lorentz_exact(kappa, gamma, T, t, n_matsubara=20000):
    """Drude term plus the Matsubara sum (docs/heom.md), summed far enough for t >= 0.02."""
    out = kappa * gamma * (1.0 / math.tan(gamma / (2.0 * T)) - 1j) * np.exp(-gamma * t)
    nu = 2.0 * math.pi * T * np.arange(1, n_matsubara + 1)
    ck = 4.0 * kappa * gamma * T * nu / (nu**2 - gamma**2)
    return out + (np.exp(-np.outer(t, nu)) * ck).sum(axis=1)


def brownian_J(lam, gamma, w0):
    return lambda w: lam**2 * gamma * w / ((w0**2 - w**2) ** 2 + gamma**2 * w**2)


def brownian_exact(lam, gamma, w0, T, t, n_matsubara=4000):
    """Residues of J(w) (coth(w/2T) + 1) e^{-iwt} / 2: the poles of J at w = +-Omega - i gamma/2
    and the Matsubara poles w = -i nu_k, with c_k = -2i T J(-i nu_k) (derived for this test)."""
    omega = math.sqrt(w0**2 - gamma**2 / 4.0)
    out = np.zeros(np.shape(t), dtype=complex)
    for sign in (1.0, -1.0):
        w = sign * omega - 0.5j * gamma
        out += sign * lam**2 / (4.0 * omega) * (1.0 / np.tanh(w / (2.0 * T)) + 1.0) * np.exp(-1j * w * t)
    nu = 2.0 * math.pi * T * np.arange(1, n_matsubara + 1)
    ck = -2.0 * T * lam**2 * gamma * nu / ((w0**2 + nu**2) ** 2 - gamma**2 * nu**2)
    # at t = 0 the terms left out add up to -2 T lam^2 gamma sum_{k > K} nu_k^-3 (to 1e-7 of it)
    rest = -2.0 * T * lam**2 * gamma / (2.0 * math.pi * T) ** 3 * zeta(3.0, n_matsubara + 1)
    return out + (np.exp(-np.outer(t, nu)) * ck).sum(axis=1) + np.where(np.asarray(t) == 0.0, rest, 0.0)


def rel_max(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


# ------------------------------------------------------------------------------------------
# Quadrature
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("T", [0.3, 1.0, 4.0])
def test_quadrature_matches_drude_lorentz_matsubara_sum(T):
    # J ~ 1/w: the tail beyond the Gauss-Legendre mesh goes through the Ooura-Mori formula
    kappa, gamma = 0.05, 2.0
    t = np.linspace(0.02, 20.0, 400)
    c = bathfit.correlation_from_spectral_density(drude_lorentz_J(kappa, gamma), T, t)
    exact = drude_lorentz_exact(kappa, gamma, T, t)
    assert rel_max(c, exact) < 1e-12
    # non-vacuity: the Matsubara terms matter at this accuracy
    drude_only = kappa * gamma * (1.0 / math.tan(gamma / (2.0 * T)) - 1j) * np.exp(-gamma * t)
    assert rel_max(drude_only, exact) > 1e-4


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
def test_quadrature_of_drude_lorentz_refuses_t0_without_cutoff_and_takes_w_max():
    J = drude_lorentz_J(0.05, 2.0)
    with pytest.raises(InvalidParameterError, match="t = 0 is infinite.*w_max"):
        bathfit.correlation_from_spectral_density(J, 1.0, [0.0, 1.0])
    from scipy.integrate import quad

    w_max = 30.0
    def f_re(w):  # J(w) coth(w / 2T) at T = 1, with its limit 4 kappa T / gamma at w = 0
        return J(w) / math.tanh(w / 2.0) if w > 0 else 4.0 * 0.05 / 2.0

    opts = {"epsabs": 1e-15, "epsrel": 1e-13, "limit": 200}
    ref = quad(f_re, 0.0, w_max, **opts)[0] / math.pi
    ref1 = complex(
        quad(f_re, 0.0, w_max, weight="cos", wvar=1.5, **opts)[0],
        -quad(J, 0.0, w_max, weight="sin", wvar=1.5, **opts)[0],
    ) / math.pi
    c = bathfit.correlation_from_spectral_density(J, 1.0, [0.0, 1.5], w_max=w_max)
    assert abs(c[0] - ref) < 1e-12 * abs(ref)
    assert abs(c[1] - ref1) < 1e-11 * abs(ref)


@pytest.mark.parametrize("T", [0.2, 1.0])
def test_quadrature_matches_brownian_residues(T):
    lam, gamma, w0 = 0.5, 0.3, 1.0
    t = np.linspace(0.0, 40.0, 201)
    c = bathfit.correlation_from_spectral_density(brownian_J(lam, gamma, w0), T, t)
    exact = brownian_exact(lam, gamma, w0, T, t)
    assert rel_max(c, exact) < 1e-12
    # non-vacuity: the Matsubara terms matter at this accuracy
    assert rel_max(c, brownian_exact(lam, gamma, w0, T, t, n_matsubara=1)) > 1e-6


def test_quadrature_is_hermitian_in_time_and_keeps_shape():
    J = bathfit.ohmic_spectral_density(0.1, 1.0)
    t = np.array([[0.5, 2.0], [3.0, 7.0]])
    c = bathfit.correlation_from_spectral_density(J, 0.7, t)
    assert c.shape == (2, 2)
    assert np.allclose(bathfit.correlation_from_spectral_density(J, 0.7, -t), c.conj(), rtol=0, atol=1e-15)


# ------------------------------------------------------------------------------------------
# Ohmic closed form
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("s", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("T", [0.1, 1.0, 5.0])
def test_ohmic_closed_form_matches_quadrature(s, T):
    alpha, wc = 0.1, 1.5
    t = np.linspace(0.0, 30.0, 301)
    exact = bathfit.ohmic_correlation(alpha, wc, T, t, s)
    c = bathfit.correlation_from_spectral_density(bathfit.ohmic_spectral_density(alpha, wc, s), T, t)
    assert rel_max(c, exact) < 1e-12
    # non-vacuity: the temperature matters (so does the branch of the zeta arguments)
    assert rel_max(bathfit.ohmic_correlation(alpha, wc, 1.1 * T, t, s), exact) > 1e-5


@pytest.mark.parametrize("s", [0.5, 1.0, 2.0])
def test_ohmic_matches_qutip(s):
    env_mod = pytest.importorskip("qutip.core.environment")
    alpha, wc, T = 0.05, 2.0, 0.8
    env = env_mod.OhmicEnvironment(T, alpha, wc, s)
    w = np.linspace(0.01, 20.0, 50)
    J = bathfit.ohmic_spectral_density(alpha, wc, s)
    assert np.allclose(J(w), env.spectral_density(w), rtol=1e-14, atol=0)
    t = np.linspace(0.0, 15.0, 16)
    ref = np.asarray(env.correlation_function(t), dtype=complex)
    assert rel_max(bathfit.ohmic_correlation(alpha, wc, T, t, s), ref) < 1e-13


# ------------------------------------------------------------------------------------------
# Fits
# ------------------------------------------------------------------------------------------


def test_fit_recovers_a_known_sum_of_exponentials():
    t = np.linspace(0.0, 20.0, 400)
    nu_pair = 0.4 + 1.3j
    c_r = 0.7 * np.exp(-0.5 * t) - 0.2 * np.exp(-3.0 * t) + 2.0 * np.real((0.1 - 0.3j) * np.exp(-nu_pair * t))
    c_i = -0.4 * np.exp(-1.1 * t) + 0.05 * np.exp(-6.0 * t)
    fit = bathfit.fit_correlation(c_r + 1j * c_i, t, n_real=4, n_imag=2)
    assert fit.n_real == 4 and fit.n_imag == 2
    expected = np.sort_complex([0.5, 3.0, nu_pair.conjugate(), nu_pair])
    assert np.allclose(np.sort_complex(fit.vk_real), expected, rtol=1e-9, atol=0)
    assert np.allclose(np.sort(fit.vk_imag.real), [1.1, 6.0], rtol=1e-9, atol=0)
    assert np.all(fit.vk_imag.imag == 0)
    assert fit.rel_max_error < 1e-12
    t_off = np.linspace(0.013, 25.0, 777)  # off the grid and beyond it
    exact = (0.7 * np.exp(-0.5 * t_off) - 0.2 * np.exp(-3.0 * t_off)
             + 2.0 * np.real((0.1 - 0.3j) * np.exp(-nu_pair * t_off))
             + 1j * (-0.4 * np.exp(-1.1 * t_off) + 0.05 * np.exp(-6.0 * t_off)))
    assert np.max(np.abs(fit.correlation(t_off) - exact)) < 1e-11
    # one term fewer cannot be exact; the error it reports is the deviation on the grid
    fewer = bathfit.fit_correlation(c_r + 1j * c_i, t, n_real=3, n_imag=1)
    assert fewer.rel_max_error > 1e-4
    deviation = np.max(np.abs(fewer.correlation(t) - (c_r + 1j * c_i)))
    assert fewer.max_error == pytest.approx(deviation, rel=1e-12)


def test_fit_matches_qutip_bosonic_bath_convention():
    env_mod = pytest.importorskip("qutip.core.environment")
    t = np.linspace(0.0, 30.0, 300)
    c = bathfit.ohmic_correlation(0.05, 1.0, 1.0, t)
    fit = bathfit.fit_correlation(c, t, n_real=3, n_imag=3)
    env = env_mod.ExponentialBosonicEnvironment(fit.ck_real, fit.vk_real, fit.ck_imag, fit.vk_imag)
    t_off = np.linspace(0.0, 30.0, 97)
    assert np.max(np.abs(env.correlation_function(t_off) - fit.correlation(t_off))) < 1e-14 * fit.scale
    # the merged form gives the same function
    nu, cr, ci = fit.exponents()
    assert len(nu) == fit.n_exponents
    merged = np.exp(-np.outer(t_off, nu)) @ (cr + 1j * ci)
    assert np.max(np.abs(merged - fit.correlation(t_off))) < 1e-14 * fit.scale


def test_ohmic_fit_reports_its_true_error_and_meets_the_target():
    alpha, wc, T = 0.05, 1.0, 1.0
    t = np.linspace(0.0, 40.0, 500)
    exact = bathfit.ohmic_correlation(alpha, wc, T, t)
    samples = bathfit.correlation_from_spectral_density(bathfit.ohmic_spectral_density(alpha, wc), T, t)
    fit = bathfit.fit_correlation(samples, t, target_error=1e-3)
    true = np.max(np.abs(fit.correlation(t) - exact))
    assert abs(true - fit.max_error) < 1e-10 * fit.scale  # the reported error is the deviation
    assert fit.rel_max_error <= 1e-3
    assert math.isclose(fit.scale, np.max(np.abs(exact)), rel_tol=1e-12)
    rms = math.sqrt(np.mean(np.abs(fit.correlation(t) - exact) ** 2)) / fit.scale
    assert math.isclose(fit.rms_error, rms, rel_tol=1e-6)
    # the numbers were raised one by one, and the last step met the target while the one before did not
    for part in ("real", "imag"):
        steps = [(n, e) for p, n, e in fit.attempts if p == part]
        assert [n for n, _ in steps] == list(range(1, len(steps) + 1))
        assert steps[-1][1] <= 1e-3 / math.sqrt(2)
        assert all(e > 1e-3 / math.sqrt(2) for _, e in steps[:-1])
    assert len(steps) >= 3  # a single exponential is not enough: the target was not vacuous
    assert np.all(fit.vk_real.real > 0) and np.all(fit.vk_imag.real > 0)
    # every part is a real function: its rates and amplitudes come in conjugate pairs
    for ck, vk in ((fit.ck_real, fit.vk_real), (fit.ck_imag, fit.vk_imag)):
        assert np.max(np.abs(np.exp(-np.outer(t, vk)) @ ck).imag) < 1e-13 * fit.scale


def test_ohmic_fit_target_out_of_reach_is_reported():
    t = np.linspace(0.0, 40.0, 300)
    c = bathfit.ohmic_correlation(0.05, 1.0, 1.0, t)
    with pytest.raises(ComputationError, match="target_error = 1e-09 not reached.*up to 3 terms"):
        bathfit.fit_correlation(c, t, target_error=1e-9, max_terms=3)


@pytest.mark.parametrize("T", [0.5, 2.0])
def test_brownian_fit_with_few_terms(T):
    lam, gamma, w0 = 0.5, 0.3, 1.0
    fit = bathfit.fit_spectral_density(brownian_J(lam, gamma, w0), T, n_real=4, n_imag=2, t_max=50.0, n_t=500)
    assert fit.n_real == 4 and fit.n_imag == 2
    # C_I is exactly the pair of J's poles: gamma/2 +- i Omega, amplitudes -+ i lam^2 / (4 Omega)
    omega = math.sqrt(w0**2 - gamma**2 / 4.0)
    assert np.allclose(np.sort_complex(fit.vk_imag), [gamma / 2 - 1j * omega, gamma / 2 + 1j * omega],
                       rtol=1e-9, atol=0)
    k = int(np.argmax(fit.vk_imag.imag))
    assert abs(fit.ck_imag[k] - (-1j * lam**2 / (4.0 * omega))) < 1e-9 * lam**2
    t_off = np.linspace(0.0, 50.0, 1601)
    exact = brownian_exact(lam, gamma, w0, T, t_off)
    err = np.max(np.abs(fit.correlation(t_off) - exact)) / fit.scale
    assert err < 5e-5
    assert fit.rel_max_error < 5e-5 and fit.check_error is not None and fit.check_error < 5e-5 * fit.scale
    assert err < 3.0 * max(fit.rel_max_error, fit.check_error / fit.scale)  # the errors it reports are real
    on_grid = np.max(np.abs(fit.correlation(fit.t) - brownian_exact(lam, gamma, w0, T, fit.t)))
    assert abs(fit.max_error - on_grid) < 1e-10 * fit.scale
    assert fit.n_exponents == 6
    # non-vacuity: two terms for the real part are far off
    fit2 = bathfit.fit_spectral_density(brownian_J(lam, gamma, w0), T, n_real=2, n_imag=2, t_max=50.0,
                                        n_t=500)
    assert fit2.rel_max_error > 10.0 * fit.rel_max_error


def test_fit_spectral_density_default_grid_meets_target_off_grid():
    lam, gamma, w0, T = 0.5, 0.3, 1.0, 0.5
    fit = bathfit.fit_spectral_density(brownian_J(lam, gamma, w0), T, target_error=1e-4)
    # default t_max: |C| has decayed to 1e-4 of C(0), with the slowest rate gamma/2
    assert 0.5 * math.log(1e4) / (gamma / 2) < fit.t[-1] < 2.0 * math.log(1e4) / (gamma / 2)
    t_fine = np.linspace(0.0, fit.t[-1], 6001)
    err = np.max(np.abs(fit.correlation(t_fine) - brownian_exact(lam, gamma, w0, T, t_fine))) / fit.scale
    assert err < 1.5e-4
    assert fit.rel_max_error <= 1e-4 and fit.check_error <= 1e-4 * fit.scale


def test_target_holds_between_the_samples_of_a_coarse_grid():
    # 60 samples over [0, 40] at T = 0.2: three terms for C_R meet 1e-3 on the samples but not
    # between them, so the midpoints checked by fit_spectral_density must ask for a fourth
    lam, gamma, w0, T = 0.5, 0.3, 1.0, 0.2
    fit = bathfit.fit_spectral_density(brownian_J(lam, gamma, w0), T, target_error=1e-3, t_max=40.0, n_t=60)
    assert fit.check_error <= 1e-3 * fit.scale
    t_fine = np.linspace(0.0, 40.0, 2001)
    err = np.max(np.abs(fit.correlation(t_fine) - brownian_exact(lam, gamma, w0, T, t_fine))) / fit.scale
    assert err < 1.5e-3
    assert [n for p, n, e in fit.attempts if p == "real" and e > 1e-3 / math.sqrt(2)] == [1, 2, 3]


def test_fit_discards_growing_exponentials():
    t = np.linspace(0.0, 10.0, 200)
    with pytest.raises(ComputationError, match="no decaying exponential"):
        bathfit.fit_correlation(np.exp(0.3 * t) + 1j * np.exp(-t), t, n_real=1, n_imag=1)
    # a growing component is left out, never fitted with Re(nu) <= 0
    data = np.exp(-t) + 1e-3 * np.exp(0.2 * t) + 1j * np.exp(-2.0 * t)
    fit = bathfit.fit_correlation(data, t, n_real=2, n_imag=1)
    assert np.all(fit.vk_real.real > 0) and np.all(fit.vk_imag.real > 0)


def test_exponents_merge_equal_rates():
    fit = bathfit.ExponentFit(
        ck_real=np.array([1.0, 0.5]), vk_real=np.array([2.0, 7.0]), ck_imag=np.array([-0.3]),
        vk_imag=np.array([2.0]), t=np.linspace(0, 1, 8), max_error=0.0, rms_error=0.0, scale=1.5,
    )
    nu, cr, ci = fit.exponents()
    assert fit.n_exponents == 2
    assert np.allclose(nu, [2.0, 7.0]) and np.allclose(cr, [1.0, 0.5]) and np.allclose(ci, [-0.3, 0.0])
    assert fit.correlation([0.0])[0] == pytest.approx(1.5 - 0.3j)
    assert fit.correlation([-0.4])[0] == pytest.approx(np.conj(fit.correlation([0.4])[0]))
    with pytest.raises(ValueError):
        fit.ck_real[0] = 2.0  # read-only


# ------------------------------------------------------------------------------------------
# Input errors
# ------------------------------------------------------------------------------------------


OHMIC = bathfit.ohmic_spectral_density(0.1, 1.0)
CORR = bathfit.correlation_from_spectral_density
FIT = bathfit.fit_correlation
GRID = np.linspace(0.0, 1.0, 20)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: CORR(OHMIC, 0.0, [1.0]), r"T = 0.0 is outside .*\(0, inf\)"),
        (lambda: CORR(OHMIC, 1.0, [1.0, np.nan]), "t contains non-finite"),
        (lambda: CORR(OHMIC, 1.0, [1.0], w_max=-2.0), "w_max = -2.0"),
        (lambda: CORR(3.0, 1.0, [1.0]), "J = 3.0 must be a callable"),
        (lambda: CORR(lambda w: np.sqrt(1.0 - w), 1.0, [1.0]), r"J\(w\) must be finite"),
        (lambda: CORR(lambda w: w + 1j, 1.0, [1.0]), r"J\(w\) must be real"),
        (lambda: CORR(lambda w: w / (1.0 + w), 1.0, [1.0]), "does not decay"),
        (lambda: CORR(OHMIC, 1.0, [1e9]), r"t = 1e\+09 is too long"),
        (lambda: bathfit.ohmic_spectral_density(-0.1, 1.0), r"alpha = -0.1 is outside .*\[0, inf\)"),
        (lambda: bathfit.ohmic_spectral_density(0.1, 1.0, s=0.0), "s = 0.0 is outside"),
        (lambda: bathfit.ohmic_correlation(0.1, 1.0, 1.0, [1.0], s=7.0), r"s = 7.0 is outside .*\(0, 5\]"),
        (lambda: bathfit.ohmic_correlation(0.1, 0.0, 1.0, [1.0]), "wc = 0.0 is outside"),
        (lambda: FIT(np.ones(20), np.r_[GRID[:-1], 1.5], n_real=1, n_imag=1), "uniformly spaced"),
        (lambda: FIT(np.ones(20), np.linspace(0, 1, 21), n_real=1, n_imag=1), "shape"),
        (lambda: FIT(np.ones(20), GRID, n_real=0, n_imag=1), "n_real = 0"),
        (lambda: FIT(np.ones(20), GRID, n_real=12, n_imag=1), r"n_real = 12 must be an integer in \[1, 9\]"),
        (lambda: FIT(np.ones(20), GRID, n_real=1), "give n_real and n_imag"),
        (lambda: FIT(np.ones(20), GRID, target_error=2.0), r"target_error = 2.0 is outside .*\(0, 1\)"),
        (lambda: FIT(np.zeros(20), GRID, n_real=1, n_imag=1), "zero"),
        (lambda: FIT(np.ones(20) * np.nan, GRID, n_real=1, n_imag=1), "C contains non-finite"),
        (lambda: FIT(np.ones(4), np.linspace(0, 1, 4), n_real=1, n_imag=1), "at least 8"),
        (lambda: bathfit.fit_spectral_density(OHMIC, 1.0, n_real=2, n_imag=2, n_t=8), "n_t = 8"),
        (lambda: bathfit.fit_spectral_density(OHMIC, 1.0, n_real=2, n_imag=2, tail=1.0), "tail = 1.0"),
        (lambda: bathfit.fit_spectral_density(drude_lorentz_J(0.05, 2.0), 1.0, n_real=2, n_imag=2),
         "t = 0 is infinite"),
    ],
)
def test_input_errors_name_the_parameter(call, message):
    with pytest.raises(InvalidParameterError, match=message):
        call()
