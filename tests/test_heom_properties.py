"""Property tests of qpump.heom over arbitrary inputs: every call of HEOMSolver ends in a result
(finite, and of trace one when rho0 was a density matrix) or in qpump's own InvalidParameterError
/ InvalidStateError (HierarchyTooLargeError is an InvalidParameterError), never another exception.

Hierarchies stay tiny (d = 2, depth <= 3) and times short, so that a run takes milliseconds; the
draws are derandomized so that CI is reproducible.

The physical inputs are drawn where the truncated bath is a bath: a Drude-Lorentz bath with
gamma < pi T (below, the Drude term alone has Re c_0 < 0 or the terminator is negative, e.g.
kappa = 0.1, gamma = 10, T = 0.1, n_exp = 0 gives c_0 = -3.7 - 1j, and the "states" grow without
bound: min eigenvalue -29 by t = 4, trace lost by t = 40), a generic exponent with Re c >= 0, and
|c|, kappa <= 1 (stronger, a depth-3 hierarchy grows 1e8-fold within t = 4). Outside that region
HEOMSolver.run raises InvariantViolationError once the trace is lost (a ComputationError, not a
bad-input error); test_extreme_magnitudes_end_in_qpump_exceptions accepts those.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from qpump.errors import (
    ComputationError,
    HierarchyTooLargeError,
    IntegrationError,
    InvalidParameterError,
    InvalidStateError,
    InvariantViolationError,
)
from qpump.heom import STATE_TOL, DrudeLorentzBath, ExponentialBath, HEOMSolver

SX = np.array([[0, 1], [1, 0]], dtype=complex)
SY = np.array([[0, -1j], [1j, 0]], dtype=complex)
SZ = np.array([[1, 0], [0, -1]], dtype=complex)
I2 = np.eye(2, dtype=complex)
NAN, INF = math.nan, math.inf
#: How far the trace of a propagated state may drift (the integrators conserve it structurally).
TRACE_TOL = 1e-8

SETTINGS = dict(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


# ----------------------------------------------------------------------------------------------
# Strategies. Each draws a value and whether qpump must accept it (True), reject it (False) or
# may do either (None).

def _with_bad(good: st.SearchStrategy, bad: list) -> st.SearchStrategy:
    """(value, ok) pairs: a valid value (about 9 times in 10), or one of ``bad``, which qpump
    must reject (rarely, so that many draws get past every check)."""

    @st.composite
    def pick(draw):
        if draw(st.integers(0, 9)) == 9:
            return draw(st.sampled_from(bad)), False
        return draw(good), True

    return pick()


def _log_uniform(lo: float, hi: float) -> st.SearchStrategy:
    return st.floats(math.log10(lo), math.log10(hi)).map(lambda e: 10.0**e)


@st.composite
def hermitian(draw, scale: float) -> np.ndarray:
    a, b = draw(st.floats(-scale, scale)), draw(st.floats(-scale, scale))
    re, im = draw(st.floats(-scale, scale)), draw(st.floats(-scale, scale))
    return np.array([[a, re + 1j * im], [re - 1j * im, b]], dtype=complex)


def _operators(scale: float, other_size: bool = False) -> st.SearchStrategy:
    """A Hermitian 2x2 operator, or a bad one (non-Hermitian, non-finite, not a square matrix;
    with ``other_size``, a 3x3 one, which a bath beside a 2x2 H must not have)."""
    bad = [SX + 0.5j * SZ, np.array([[0, 1], [0, 0]], dtype=complex),
           np.array([[NAN, 0], [0, 1]]), np.array([[INF, 0], [0, 1]]), np.ones(2),
           np.zeros((1, 2, 2))] + ([np.eye(3)] if other_size else [])
    return _with_bad(st.one_of(hermitian(scale), st.sampled_from([SX, SY, SZ, 0 * SX])), bad)


@st.composite
def drude_lorentz(draw):
    Q, ok_q = draw(_operators(1.5, other_size=True))
    # (kappa below 1e-100 is 0 here: see test_subnormal_amplitude_is_refused_or_runs.)
    kappa, ok_k = draw(_with_bad(st.floats(0.0, 1.0).map(lambda k: k if k > 1e-100 else 0.0),
                                 [-1.0, -1e-300, NAN, INF]))
    T, ok_t = draw(_with_bad(_log_uniform(0.02, 20.0), [0.0, -2.0, NAN, -INF, INF]))
    # gamma < pi T (see the module docstring); bad values are bad at any T.
    gamma, ok_g = draw(_with_bad(st.floats(0.02, 0.95).map(lambda f: f * math.pi * T if ok_t else f),
                                 [0.0, -1.0, NAN, INF]))
    n_exp, ok_n = draw(_with_bad(st.integers(0, 3), [-1, 2.5, None, 2**64]))
    expansion, ok_e = draw(_with_bad(st.sampled_from(["matsubara", "pade"]), ["fourier", ""]))
    terminator = draw(st.booleans())
    ok = ok_k and ok_g and ok_t and ok_n and ok_e
    # Construction may also refuse a valid-looking set (e.g. gamma / 2T a multiple of pi): always
    # with InvalidParameterError.
    try:
        bath = DrudeLorentzBath(Q, kappa, gamma, T, n_exp=n_exp, expansion=expansion,
                                terminator=terminator)
    except InvalidParameterError:
        return None, False
    assert ok and (ok_q or np.asarray(Q).shape != (2, 2)), (
        f"DrudeLorentzBath accepted Q={Q!r}, kappa={kappa}, gamma={gamma}, T={T}, "
        f"n_exp={n_exp!r}, expansion={expansion!r}")
    return bath, ok_q


@st.composite
def exponential(draw):
    Q, ok_q = draw(_operators(1.5, other_size=True))
    n = draw(st.integers(0, 2))
    # Re c >= 0 (see the module docstring); |c| below 1e-100 is 0 here: smaller amplitudes
    # underflow the ADO scaling (test_tiny_exponent_amplitude_is_refused_or_runs,
    # test_subnormal_amplitude_is_refused_or_runs).
    c = draw(st.lists(st.complex_numbers(max_magnitude=1.0, allow_nan=False, allow_infinity=False)
                      .map(lambda z: complex(abs(z.real), z.imag) if abs(z) > 1e-100 else 0j),
                      min_size=n, max_size=n))
    nu = draw(st.lists(_log_uniform(0.05, 50.0), min_size=n, max_size=n))
    ok = True
    flaw = draw(st.sampled_from([None] * 6 + ["length", "c_nan", "c_inf", "nu_zero", "nu_negative",
                                              "nu_nan", "nu_inf"]))
    if flaw == "length":
        nu = nu + [1.0]
    elif flaw and n:
        target, value = {"c_nan": (c, NAN), "c_inf": (c, complex(INF, 0)), "nu_zero": (nu, 0.0),
                         "nu_negative": (nu, -1.0), "nu_nan": (nu, NAN), "nu_inf": (nu, INF)}[flaw]
        target[0] = value
    ok = flaw is None or (flaw != "length" and n == 0)
    # A negative terminator amplitude is anti-damping: refused.
    delta, ok_d = draw(_with_bad(st.one_of(st.just(0.0), st.floats(0.0, 1.0)),
                                 [NAN, INF, -INF, -1e-3, -10.0]))
    try:
        bath = ExponentialBath(Q, c, nu, delta=delta)
    except InvalidParameterError:
        return None, False
    assert ok and ok_d and (ok_q or np.asarray(Q).shape != (2, 2)), (
        f"ExponentialBath accepted Q={Q!r}, c={c}, nu={nu}, delta={delta}")
    return bath, ok_q


@st.composite
def density_matrices(draw):
    """(rho0, kind): kind True for a density matrix, False for a matrix qpump must reject,
    None for an arbitrary matrix (classified afterwards)."""
    kind = draw(st.sampled_from(["state", "state", "perturbed", "arbitrary", "shape"]))
    if kind in ("state", "perturbed"):
        r = np.array([draw(st.floats(-1, 1)) for _ in range(3)])
        norm = float(np.linalg.norm(r))
        if norm > 1:
            r /= norm
        rho = 0.5 * (I2 + r[0] * SX + r[1] * SY + r[2] * SZ)
        if kind == "state":
            return rho, True
        size = draw(_log_uniform(1e-6, 10.0))
        how = draw(st.sampled_from(["trace", "hermiticity", "positivity", "nan"]))
        if how == "trace":
            return rho * (1 + draw(st.sampled_from([size, -size]))), False
        if how == "hermiticity":
            return rho + size * np.array([[0, 1j], [1j, 0]]), False
        if how == "positivity":  # a Bloch vector longer than 1, trace kept
            return 0.5 * (I2 + (1 + size) * SZ), False
        rho = rho.copy()
        rho[draw(st.integers(0, 1)), draw(st.integers(0, 1))] = draw(
            st.sampled_from([NAN, INF, complex(0, NAN), complex(-INF, 1)]))
        return rho, False
    if kind == "shape":
        return draw(st.sampled_from([np.eye(3) / 3, np.array([0.5, 0.5]), np.ones((1, 2, 2)) / 2,
                                     np.float64(1.0), np.zeros((2, 3))])), False
    entry = st.one_of(st.floats(-2, 2), st.floats(allow_nan=False, allow_infinity=False),
                      st.sampled_from([0.0, 0.5, 1.0, NAN, INF, -INF]))
    vals = [complex(draw(entry), draw(entry)) for _ in range(4)]
    return np.array(vals, dtype=complex).reshape(2, 2), None


def _classify(rho) -> bool | None:
    """True if ``rho`` is a density matrix well within STATE_TOL, False if it is clearly not one,
    None in between (either answer is right)."""
    arr = np.asarray(rho, dtype=complex)
    if arr.shape != (2, 2) or not np.all(np.isfinite(arr)):
        return False
    with np.errstate(all="ignore"):
        scale = max(1.0, float(np.max(np.abs(arr))))
        herm = float(np.max(np.abs(arr - arr.conj().T)))
        trace = float(np.abs(np.trace(arr) - 1))
        lowest = float(np.linalg.eigvalsh(0.5 * (arr + arr.conj().T))[0]) \
            if np.all(np.isfinite(arr + arr.conj().T)) else -INF
    if herm > 100 * STATE_TOL * scale or trace > 100 * STATE_TOL or lowest < -100 * STATE_TOL:
        return False
    if herm <= 0.01 * STATE_TOL and trace <= 0.01 * STATE_TOL and lowest >= -0.01 * STATE_TOL:
        return True
    return None


@st.composite
def time_grids(draw):
    """(times, ok)."""
    kind = draw(st.sampled_from(["grid", "grid", "grid", "single", "repeated", "empty",
                                 "decreasing", "nan", "inf", "2d"]))
    start = draw(st.one_of(st.just(0.0), st.floats(-2.0, 2.0)))
    steps = draw(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=4))
    grid = start + np.cumsum([0.0, *steps])
    if kind == "grid":
        return grid, True
    if kind == "single":
        return np.array([start]), True
    if kind == "repeated":
        return np.array([start, start, start + 0.5, start + 0.5]), True
    if kind == "empty":
        return draw(st.sampled_from([np.array([]), []])), False
    if kind == "decreasing":
        return np.array([start + 1.0, start]), False
    if kind == "nan":
        return np.insert(grid, draw(st.integers(0, grid.size)), NAN), False
    if kind == "inf":
        return np.append(grid, draw(st.sampled_from([INF, -INF]))), False
    return grid[None, :], False


baths_strategy = st.lists(st.one_of(drude_lorentz(), exponential()), max_size=2)
tolerances = st.tuples(
    _with_bad(_log_uniform(1e-10, 1e-3), [0.0, -1e-6, NAN, INF]),
    _with_bad(_log_uniform(1e-12, 1e-5), [0.0, -1e-9, NAN, -INF]),
)


def _no_unique_steady_state(H: np.ndarray, baths: list) -> bool:
    """True if no bath can move H's populations (each Q commutes with H or couples with zero
    strength): the steady state is then not unique."""
    def idle(b) -> bool:
        coupled = any(e.c != 0 for e in b.exponents) or b.delta != 0
        return not coupled or not np.any(b.Q) or np.allclose(H @ b.Q, b.Q @ H, atol=1e-12)

    return all(idle(b) for b in baths)


def _expect_error(err: Exception, *allowed: type) -> None:
    """Fail unless ``err`` is one of qpump's bad-input exceptions (``allowed``)."""
    if not isinstance(err, allowed):
        raise AssertionError(f"{type(err).__name__} is not one of "
                             f"{', '.join(a.__name__ for a in allowed)}: {err}") from err


# ----------------------------------------------------------------------------------------------
# Properties

@settings(max_examples=400, **SETTINGS)
@given(
    H=_operators(5.0),
    baths=baths_strategy,
    depth=_with_bad(st.integers(0, 3), [-1, 2.5, True, "2", 2**31, 2**64]),
    tol=tolerances,
    memory=_with_bad(st.sampled_from([None, 10**9]), [0, -1, NAN]),
    small_memory=st.integers(0, 9).map(lambda i: i == 9),
    method=_with_bad(st.sampled_from(["adams", "etdrk4"]), ["rk4"]),
    steady_frame=_with_bad(st.sampled_from([None, False, True]), [1, "yes"]),
    rho0=density_matrices(),
    times=time_grids(),
)
@example(H=(0.5 * SZ, True), baths=[(DrudeLorentzBath(SX, 0.1, 1.0, 1.0), True)], depth=(3, True),
         tol=((1e-7, True), (1e-9, True)), memory=(None, True), small_memory=False,
         method=("adams", True), steady_frame=(None, True),
         rho0=(np.diag([0.7, 0.3]).astype(complex), True), times=(np.linspace(0, 3, 7), True))
# A Hermitian, trace-one rho0 whose coherences overflow rho + rho^dagger (found by this property:
# it passed as a state and the run failed with IntegrationError).
@example(H=(0.5 * SZ, True), baths=[(DrudeLorentzBath(SX, 0.1, 1.0, 1.0), True)], depth=(2, True),
         tol=((1e-7, True), (1e-9, True)), memory=(None, True), small_memory=False,
         method=("adams", True), steady_frame=(None, True),
         rho0=(np.array([[0.5, 1e308], [1e308, 0.5]], dtype=complex), False),
         times=(np.array([0.0, 1.0]), True))
def test_run_gives_a_result_or_a_qpump_error(H, baths, depth, tol, memory, small_memory, method,
                                             steady_frame, rho0, times):
    (H, ok_h), (depth, ok_depth) = H, depth
    (rtol, ok_rtol), (atol, ok_atol) = tol
    (memory, ok_memory), (method, ok_method), (steady_frame, ok_frame) = memory, method, steady_frame
    (rho0, rho_kind), (times, ok_times) = rho0, times
    if small_memory and ok_memory:
        memory = 1  # every hierarchy is larger: HierarchyTooLargeError
    built = [b for b, _ in baths if b is not None]
    ok_baths = all(ok_q for b, ok_q in baths if b is not None)  # a 3x3 Q beside a 2x2 H
    if rho_kind is None:
        rho_kind = _classify(rho0)

    try:
        solver = HEOMSolver(H, built, depth, rtol=rtol, atol=atol, memory_limit_bytes=memory,
                            method=method, steady_frame=steady_frame)
    except (InvalidParameterError, InvalidStateError) as err:
        _expect_error(err, InvalidParameterError)
        event(f"HEOMSolver refused: {type(err).__name__}: {str(err)[:30]}")
        if isinstance(err, HierarchyTooLargeError):
            assert memory == 1 or not ok_depth, f"a tiny hierarchy was refused: {err}"
        return
    except Exception as err:
        raise AssertionError(f"HEOMSolver(...) raised {type(err).__name__}: {err}") from err
    assert ok_h and ok_baths and ok_depth and ok_rtol and ok_atol and ok_method and ok_frame \
        and ok_memory, "HEOMSolver accepted an invalid argument"
    assert memory != 1, "a hierarchy was built within memory_limit_bytes = 1"

    try:
        result = solver.run(rho0, times)
    except (InvalidParameterError, InvalidStateError) as err:
        event(f"run refused: {type(err).__name__}")
        if isinstance(err, InvalidStateError):
            assert rho_kind is not True, f"a density matrix was refused: {err}"
        return
    except ComputationError as err:
        # Two exceptions, both about the steady-state frame (see
        # test_pure_dephasing_run_keeps_rho0_or_says_not_unique): with steady_frame=True, a
        # stationary state the frame cannot use is refused ("use steady_frame=False"; e.g. a model
        # without a unique one, or a generic exponent with Re c = 0); and with the automatic frame,
        # a model without a unique steady state can lose rho0 (the known bug).
        frame_refused = (steady_frame is True and isinstance(err, IntegrationError)
                         and "steady_frame" in str(err))
        known_bug = steady_frame is not False and _no_unique_steady_state(H, built)
        if not (frame_refused or known_bug):
            raise AssertionError(f"HEOMSolver.run raised {type(err).__name__}: {err}\n"
                                 f"rho0 = {rho0!r}\ntimes = {times!r}") from err
        event("steady frame refused" if frame_refused else "known bug: steady frame, no unique state")
        return
    except Exception as err:
        raise AssertionError(
            f"HEOMSolver.run raised {type(err).__name__}: {err}\nrho0 = {rho0!r}\ntimes = {times!r}"
        ) from err

    event(f"result (rho0 a density matrix: {rho_kind})")
    assert ok_times, f"times = {times!r} was accepted"
    assert rho_kind is not False, f"rho0 = {rho0!r} (not a density matrix) was accepted"
    t = np.asarray(times, dtype=float)
    assert result.rho.shape == (t.size, 2, 2)
    assert result.heat_current.shape == result.interaction_energy.shape == (t.size, len(built))
    assert np.all(np.isfinite(result.rho)), "the propagated state is not finite"
    assert np.all(np.isfinite(result.heat_current)) and np.all(np.isfinite(result.interaction_energy))
    assert np.all(np.isfinite(result.final_state.ados))
    np.testing.assert_allclose(result.rho[-1], result.final_state.rho, rtol=0, atol=1e-12)
    if rho_kind is True:
        trace = np.einsum("tii->t", result.rho)
        worst = float(np.max(np.abs(trace - 1)))
        assert worst <= TRACE_TOL, f"the trace drifted by {worst:.3g}"


@settings(max_examples=80, **SETTINGS)
@given(H=hermitian(5.0), baths=st.lists(st.one_of(drude_lorentz(), exponential()), min_size=1,
                                        max_size=2),
       depth=st.integers(0, 3))
def test_steady_state_is_a_normalised_state_or_a_qpump_error(H, baths, depth):
    built = [b for b, _ in baths if b is not None]
    try:
        ss = HEOMSolver(H, built, depth).steady_state()
    except (InvalidParameterError, InvariantViolationError) as err:
        # Documented: a steady state that is not unique, or one that is not a density matrix
        # (a truncation too poor for the model).
        event(f"{type(err).__name__}: {str(err)[:40]}")
        return
    except Exception as err:
        raise AssertionError(f"steady_state raised {type(err).__name__}: {err}") from err
    event("a steady state")
    assert np.all(np.isfinite(ss.ados))
    assert abs(np.trace(ss.rho) - 1) <= TRACE_TOL
    np.testing.assert_allclose(ss.rho, ss.rho.conj().T, rtol=0, atol=1e-12)


# Inputs of a magnitude no physical model has, and baths outside the region drawn above: the
# integrator may give up (IntegrationError) or the result may fail its trace check
# (InvariantViolationError), both documented by HEOMSolver.run, but qpump's own exceptions only,
# and a result is a trace-one state. (Some extremes never finish and are not run here: kappa =
# 1e10, H = 1e300 sigma_z, times = [0, 1e300].)
@pytest.mark.parametrize("case", [
    dict(kappa=1e300), dict(gamma=1e300), dict(gamma=1e-300), dict(T=1e300), dict(T=1e-300),
    dict(Q=1e150 * SX), dict(Q=1e-300 * SX), dict(c=1e300), dict(c=1e200 + 1e200j),
    dict(c=-30 + 21j, nu=0.06), dict(nu=1e300), dict(nu=1e-300), dict(delta=1e300),
    dict(rtol=1e300), dict(rtol=1e-300), dict(atol=1e-300), dict(atol=1e300),
    dict(max_step=1e-300), dict(depth=10**9), dict(depth=2**64), dict(n_exp=10**5),
    dict(rho0=np.array([[0.5, 1e200], [1e200, 0.5]])), dict(times=[0.0, 1e-300]),
    dict(times=[-1e300, -1e300]),
    # gamma > pi T with the Drude term alone: c_0 = -3.7 - 1j, the run diverges.
    dict(kappa=0.1, gamma=10.0, T=0.1, n_exp=0, terminator=False, times=[0.0, 4.0, 40.0]),
    # A negative terminator (gamma > 2 pi T): delta = -0.89.
    dict(kappa=1.0, gamma=2.0, T=0.1, n_exp=2, times=[0.0, 4.0, 40.0]),
], ids=lambda case: ",".join(f"{k}={v!r}"[:24] for k, v in case.items()))
def test_extreme_magnitudes_end_in_qpump_exceptions(case):
    Q = case.get("Q", SX)
    rho0 = case.get("rho0", np.diag([0.7, 0.3]).astype(complex))
    times = case.get("times", [0.0, 1.0])
    try:
        if {"c", "nu", "delta"} & set(case):
            bath = ExponentialBath(Q, [case.get("c", 1.0)], [case.get("nu", 1.0)],
                                   delta=case.get("delta", 0.0))
        else:
            bath = DrudeLorentzBath(Q, case.get("kappa", 0.1), case.get("gamma", 1.0),
                                    case.get("T", 1.0), n_exp=case.get("n_exp", 2),
                                    terminator=case.get("terminator", True))
        solver = HEOMSolver(0.5 * SZ, [bath], case.get("depth", 2), rtol=case.get("rtol", 1e-7),
                            atol=case.get("atol", 1e-9), max_step=case.get("max_step", math.inf))
        result = solver.run(rho0, times)
    except (InvalidParameterError, InvalidStateError, ComputationError):
        return
    assert np.all(np.isfinite(result.rho))
    assert float(np.max(np.abs(np.einsum("tii->t", result.rho) - 1))) <= TRACE_TOL


# ----------------------------------------------------------------------------------------------
# Found by the properties above.

def test_steady_state_with_an_uncoupled_qubit_is_refused():
    """Two qubits, a kappa = 0 bath on A: A has no unique steady state. The sparse solve gave a
    'state' with eigenvalues -0.46 and -0.17 (and `qpump pump --kappa-a 0` blamed tau_relax)."""
    qa, qb = np.kron(SX, I2), np.kron(I2, SX)
    h = np.kron(0.5 * SZ, I2) + np.kron(I2, 0.5 * SZ)
    baths = [DrudeLorentzBath(qa, 0.0, 2.0, 2.0, n_exp=0),
             DrudeLorentzBath(qb, 0.023, 2.0, 1.0, n_exp=0)]
    solver = HEOMSolver(h, baths, 1)
    try:
        ss = solver.steady_state()
    except (InvalidParameterError, InvariantViolationError):
        return
    lowest = float(np.linalg.eigvalsh(ss.rho)[0])
    assert lowest >= -STATE_TOL, f"steady_state returned a state with eigenvalue {lowest:.3g}"


@pytest.mark.parametrize("steady_frame,h,baths,depth,times", [
    (None, SX + SY, [(SX + SY, 0.1, 1.0, 1.0, 1)], 2, [0.0, 30.0]),
    (True, 0.5 * SX, [(SX, 0.03, 0.2, 0.16, 0), (SX, 0.5, 0.2, 0.07, 0)], 1, [0.0, 0.0]),
], ids=["auto-frame", "frame"])
def test_pure_dephasing_run_keeps_rho0_or_says_not_unique(steady_frame, h, baths, depth, times):
    """For pure dephasing (every Q commutes with H) the generator is singular and the sparse solve
    can return finite garbage (|y_s| ~ 1e17): the automatic steady frame used to subtract it and
    add it back, destroying rho0. Now the garbage is recognised; a frame the caller demanded
    fails naming the singular generator."""
    baths = [DrudeLorentzBath(Q, kappa, gamma, T, n_exp=n) for Q, kappa, gamma, T, n in baths]
    solver = HEOMSolver(h, baths, depth, steady_frame=steady_frame)
    try:
        result = solver.run(I2 / 2, times)
    except (InvalidParameterError, IntegrationError) as err:  # only where the frame is demanded
        assert steady_frame is True and ("not unique" in str(err) or "singular" in str(err))
        return
    np.testing.assert_allclose(result.rho[0], I2 / 2, atol=1e-12)


def test_tiny_exponent_amplitude_is_refused_or_runs():
    """Found by the properties above: an amplitude of 1e-300 underflowed the ADO scaling
    (s_n ~ |c|^(n/2)) into NaN ADOs; it is now refused, naming the exponent."""
    with pytest.raises(InvalidParameterError, match=r"exponent 0: \|c\| = 1e-300 is so small"):
        HEOMSolver(SX, [ExponentialBath(SX, [1e-300], [1.0])], 3)
    result = HEOMSolver(SX, [ExponentialBath(SX, [1e-150], [1.0])], 3).run(I2 / 2, [0.0, 1.0])
    assert np.all(np.isfinite(result.final_state.ados))


@pytest.mark.parametrize("bath", [
    lambda: ExponentialBath(SX, [1e-310], [1.0]),
    lambda: DrudeLorentzBath(SX, 1e-310, 1.0, 1.0, n_exp=0),
], ids=["c=1e-310", "kappa=1e-310"])
def test_subnormal_amplitude_is_refused_or_runs(bath):
    try:
        result = HEOMSolver(-SY, [bath()], 1).run(I2 / 2, [0.0, 1.0])
    except InvalidParameterError:
        return
    assert np.all(np.isfinite(result.final_state.ados))
