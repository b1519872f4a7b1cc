"""Truncation checks (qpump.convergence): the expansion's spectrum against the exact one, detailed
balance, suggested n_exp, and the automatic convergence in depth and n_exp."""

import math
import time

import numpy as np
import pytest

from qpump.convergence import (
    bohr_frequencies,
    check_expansion,
    check_model,
    converge,
    converge_dynamics,
    converge_steady_state,
    exact_spectrum,
    expansion_spectrum,
)
from qpump.errors import InvalidParameterError, InvariantViolationError
from qpump.heom import DrudeLorentzBath, ExponentialBath, HEOMSolver, UnderdampedBath
from qpump.output import dumps, loads_strict
from qpump.pump import H_FREE, Q_A, Q_B

SZ = np.diag([1.0, -1.0]).astype(complex)
SX = np.array([[0, 1], [1, 0]], dtype=complex)
#: The spin-boson qubit of QuTiP's HEOM tutorial (epsilon = 0.5, Delta = 1): Bohr frequency 1.118.
H_QUBIT = 0.25 * SZ + 0.5 * SX
W_QUBIT = math.sqrt(1.25)


def dl(T, n_exp, expansion="matsubara", terminator=True, kappa=0.1, gamma=1.0, Q=SZ):
    return DrudeLorentzBath(Q, kappa, gamma, T, n_exp=n_exp, expansion=expansion, terminator=terminator)


# ---------------------------------------------------------------------------------------------
# Spectra
# ---------------------------------------------------------------------------------------------


def test_bohr_frequencies_of_the_pump_and_of_one_coupling():
    assert np.allclose(bohr_frequencies(H_FREE), [-2, -1, 1, 2])
    # sigma_x of qubit A drives only qubit A's transitions
    assert np.allclose(bohr_frequencies(H_FREE, Q_A), [-1, 1])
    assert np.allclose(bohr_frequencies(H_QUBIT), [-W_QUBIT, W_QUBIT])


def test_exact_spectrum_obeys_detailed_balance_and_its_zero_frequency_limit():
    b = dl(T=0.7, n_exp=2)
    w = np.array([0.3, 1.0, 2.5])
    s_pos, s_neg = exact_spectrum(b, w), exact_spectrum(b, -w)
    assert np.allclose(s_neg / s_pos, np.exp(-w / 0.7), rtol=1e-12)
    assert np.allclose(s_pos - s_neg, 2 * b.spectral_density(w), rtol=1e-12)  # 2 J (n + 1 - n)
    # S(0) = 2 T J'(0) = 4 kappa T / gamma for Drude-Lorentz
    assert exact_spectrum(b, [0.0])[0] == pytest.approx(4 * 0.1 * 0.7 / 1.0, rel=1e-6)
    assert exact_spectrum(ExponentialBath(SZ, [0.1], [1.0]), w) is None


@pytest.mark.parametrize("T", [0.5, 2.0])
def test_spectrum_of_many_matsubara_terms_converges_to_the_exact_one(T):
    w = np.array([-3.0, -1.0, -0.2, 0.0, 0.2, 1.0, 3.0])
    exact = exact_spectrum(dl(T, 0), w)
    errors = []
    for n in (10, 100, 1000):
        plain = np.max(np.abs(expansion_spectrum(dl(T, n, terminator=False), w) - exact))
        with_terminator = np.max(np.abs(expansion_spectrum(dl(T, n), w) - exact))
        errors.append((plain, with_terminator))
    # the neglected tail: ~1/N without the terminator, ~1/N^3 with it (its white noise is exact at w = 0)
    for (p1, t1), (p2, t2) in zip(errors, errors[1:], strict=False):
        assert p2 < p1 / 5 and t2 < t1 / 100
    assert errors[-1][0] < 2e-3 * np.max(exact) and errors[-1][1] < 1e-9 * np.max(exact)


def test_spectrum_of_complex_rates_converges_to_the_exact_one():
    # The underdamped bath has two complex rates (conjugate pair, cbar != conj(c)) and Matsubara
    # terms: its S_exp must still tend to 2 J (n + 1).
    w = np.array([-1.5, -1.0, -0.5, 0.5, 1.0, 1.5])
    b = UnderdampedBath(SZ, lam=0.3, gamma=0.4, w0=1.0, T=0.5, n_exp=200)
    s = exact_spectrum(b, w)
    assert np.max(np.abs(expansion_spectrum(b, w) - s)) < 1e-6 * np.max(s)
    check = check_expansion(b, w)
    assert check.ok and check.spectrum_error < 1e-5


def test_few_terms_match_the_exact_spectrum_at_high_temperature():
    w = [0.5, 1.0]
    for expansion in ("matsubara", "pade"):
        check = check_expansion(dl(T=10.0, n_exp=1, expansion=expansion), w, tol=1e-3)
        assert check.ok, check.warnings
        assert check.spectrum_error < 1e-3 and check.detailed_balance_error < 1e-3
        assert check.warnings == []


def test_low_temperature_pade_2_breaks_detailed_balance_and_says_so():
    # Outside reference: two Pade poles at T = 0.1 gave S(-w)/S(w) = 0.15 against e^{-w/T} = 1.4e-5
    # (Drude-Lorentz, gamma = 1, terminator on, Bohr frequency 1.118).
    check = check_expansion(dl(T=0.1, n_exp=2, expansion="pade"), bohr_frequencies(H_QUBIT, SZ))
    b = check.baths[0]
    ratio = b.spectrum_expansion[0, 1] / b.spectrum_expansion[0, 0]
    assert ratio == pytest.approx(0.151, abs=0.001)
    assert not check.ok and check.detailed_balance_error > 1e3
    line = next(x for x in check.warnings if "detailed balance" in x)
    assert "S(-1.12)/S(1.12) = 0.151" in line and "e^{-w/T} = 1.4e-05" in line and "Pade, n_exp = 2" in line
    assert check.suggested_n_exp is not None and check.suggested_n_exp > 2
    assert f"raise n_exp to {check.suggested_n_exp}" in check.warnings[-1]
    # a converged expansion: no warning at all
    converged = check_expansion(dl(T=0.1, n_exp=8, expansion="pade"), [W_QUBIT])
    assert converged.ok and converged.warnings == [] and converged.detailed_balance_error < 1e-6


@pytest.mark.parametrize("bath", [dl(0.1, 2, "pade"), dl(1.0, 0), dl(0.3, 1, "matsubara", gamma=0.5),
                                  UnderdampedBath(SZ, 0.3, 0.4, 1.0, 0.3, n_exp=0)],
                         ids=["pade-lowT", "matsubara-T1", "matsubara-T0.3", "underdamped"])
def test_suggested_n_exp_is_sufficient_and_the_smallest(bath):
    w = [W_QUBIT, 0.4]
    first = check_expansion(bath, w)
    n = first.suggested_n_exp
    assert n is not None
    again = check_expansion(type(bath)(**_params(bath, n)), w)
    assert again.ok and again.suggested_n_exp == n
    if n > 0:
        assert not check_expansion(type(bath)(**_params(bath, n - 1)), w).ok


def _params(bath, n):
    if isinstance(bath, DrudeLorentzBath):
        return dict(Q=bath.Q, kappa=bath.kappa, gamma=bath.gamma, T=bath.T, n_exp=n,
                    expansion=bath.expansion, terminator=bath.terminator)
    return dict(Q=bath.Q, lam=bath.lam, gamma=bath.gamma, w0=bath.w0, T=bath.T, n_exp=n)


def test_one_matsubara_term_without_terminator_is_flagged_and_its_steady_state_is_not_a_state():
    # Outside reference: Matsubara, 1 term, no terminator, T = 0.1 gives a steady state that is
    # not a density matrix. The check sees it before any run: S_exp(-w) < 0.
    bath = dl(T=0.1, n_exp=1, terminator=False, kappa=0.01)
    check = check_expansion(bath, bohr_frequencies(H_QUBIT, SZ))
    assert not check.ok and not check.baths[0].positive
    assert check.baths[0].spectrum_expansion[0, 1] < 0
    assert any("S_exp(-1.12) = " in x and "< 0" in x for x in check.warnings)
    # the Matsubara series cannot reach 1 % without the terminator; Pade can, with few poles
    assert check.suggested_n_exp is None
    assert check.baths[0].alternative is not None and check.baths[0].alternative[0] == "pade"
    with pytest.raises(InvariantViolationError):
        HEOMSolver(H_QUBIT, [bath], depth=3).steady_state()


def test_generic_bath_only_positivity_is_checked():
    good = ExponentialBath(SZ, [0.1, 0.02], [1.0, 3.0])
    check = check_expansion(good, [1.0])
    assert check.ok and check.spectrum_error is None and check.suggested_n_exp is None
    assert any("only positivity" in x for x in check.warnings)
    # a negative amplitude at a slow rate makes S_exp negative at w = 1
    bad = ExponentialBath(SZ, [0.1, -0.2], [0.1, 0.05])
    check = check_expansion([good, bad], [1.0])
    assert not check.ok and check.baths[0].ok and not check.baths[1].positive
    assert any(x.startswith("bath 1: S_exp(") for x in check.warnings)


def test_several_baths_and_json():
    check = check_expansion([dl(2.0, 2, Q=Q_A), dl(1.0, 2, Q=Q_B)], bohr_frequencies(H_FREE, Q_A))
    assert [b.index for b in check.baths] == [0, 1]
    assert check.suggested_n_exp == max(b.suggested_n_exp for b in check.baths)
    assert loads_strict(dumps(check.to_json()))["tol"] == 0.01


def test_check_expansion_input_errors():
    with pytest.raises(InvalidParameterError, match="tol"):
        check_expansion(dl(1.0, 2), [1.0], tol=0)
    with pytest.raises(InvalidParameterError, match="bohr_frequencies"):
        check_expansion(dl(1.0, 2), [np.nan])
    with pytest.raises(InvalidParameterError, match="bath"):
        check_expansion(["not a bath"], [1.0])


# ---------------------------------------------------------------------------------------------
# Automatic truncation
# ---------------------------------------------------------------------------------------------

KAPPA, T_QUBIT = 0.05, 1.0


def qubit_baths(n_exp, expansion):
    return [DrudeLorentzBath(SZ, KAPPA, 1.0, T_QUBIT, n_exp=n_exp, expansion=expansion)]


def test_converge_single_qubit_steady_state_agrees_with_a_deep_reference():
    lines = []
    result = converge_steady_state(H_QUBIT, qubit_baths, conv_tol=1e-5, depths=range(1, 9),
                                   n_exps=range(0, 6), progress=lambda row: lines.append(str(row)))
    assert result.converged and result.reason is None
    assert result.change < 1e-5
    reference = HEOMSolver(H_QUBIT, qubit_baths(4, "pade"), depth=6).steady_state().rho
    assert np.max(np.abs(result.quantity - reference)) < 10 * 1e-5
    # the final truncation is validated in both directions by rows of the table
    rows = {(r.depth, r.n_exp, r.expansion): r for r in result.table}
    final = (result.depth, result.n_exp, result.expansion)
    assert final in rows
    assert any(r.compared_with == final[:2] and r.depth == result.depth + 1 and r.change < 1e-5
               for r in result.table if r.expansion == result.expansion)
    assert any(r.compared_with == final[:2] and r.n_exp > result.n_exp and r.change < 1e-5
               for r in result.table if r.expansion == result.expansion)
    # both expansions converged here and agree; the cheaper one is chosen
    assert set(result.outcomes) == {"matsubara", "pade"}
    assert result.expansion_difference is not None and result.expansion_difference < 1e-4
    assert result.runs == len(result.table) == len(lines)
    assert all(r.n_ados is not None and r.seconds >= 0 for r in result.table)
    data = loads_strict(dumps(result.to_json()))
    assert data["converged"] is True and len(data["table"]) == result.runs
    assert len(data["quantity"]) == 2  # rho, complex entries as [re, im]


def test_converge_dynamics_over_a_run():
    times = np.linspace(0, 4, 9)
    rho0 = np.array([[1, 0], [0, 0]], dtype=complex)
    result = converge_dynamics(H_QUBIT, qubit_baths, rho0, times, conv_tol=1e-4, depths=range(1, 7),
                               n_exps=range(0, 4), expansions=("pade",))
    assert result.converged and result.quantity.shape == (9, 2, 2)
    reference = HEOMSolver(H_QUBIT, qubit_baths(4, "pade"), depth=6).run(rho0, times).rho
    assert np.max(np.abs(result.quantity - reference)) < 10 * 1e-4


def test_a_tiny_memory_limit_stops_before_any_run():
    result = converge_steady_state(H_QUBIT, qubit_baths, memory_limit_bytes=1000)
    assert not result.converged and result.reason == "memory limit"
    assert result.runs == 0 and len(result.table) == 2  # one refused row per expansion
    assert all(r.status == "memory limit" and r.memory_bytes > 1000 for r in result.table)
    assert loads_strict(dumps(result.to_json()))["reason"] == "memory limit"


def fake_model(calls, sleep=0.0, offset=None):
    """A quantity that converges geometrically in depth and n_exp: q = 1 + 2^-depth + 3^-n."""
    offset = offset or {}

    def build(depth, n_exp, expansion):
        calls.append((depth, n_exp, expansion))
        return depth, n_exp, expansion

    def quantity(built):
        depth, n_exp, expansion = built
        time.sleep(sleep)
        return np.array([1 + 2.0**-depth + 3.0**-n_exp + offset.get(expansion, 0.0)])

    return build, quantity


def test_memory_limit_after_some_runs_keeps_the_table():
    calls = []
    build, quantity = fake_model(calls)
    result = converge(build, quantity, conv_tol=1e-6, expansions=("pade",), memory_limit_bytes=5500,
                      estimate=lambda depth, n, e: (depth * (n + 1), 1000 * depth))
    assert not result.converged and result.reason == "memory limit"
    assert [r.depth for r in result.table if r.status == "ok"] == [1, 2, 3, 4, 5]
    assert result.table[-1].status == "memory limit" and result.table[-1].depth == 6
    assert (6, 0, "pade") not in calls  # the refused run was never built


def test_time_limit_stops_the_search_with_a_table():
    calls = []
    build, quantity = fake_model(calls, sleep=0.1)
    result = converge(build, quantity, conv_tol=1e-9, time_limit_s=0.45)
    assert not result.converged and result.reason == "time limit"
    assert 2 <= result.runs <= 4 and result.table[-1].status == "time limit"
    assert result.seconds < 0.45 + 0.15
    assert list(result.outcomes) == ["pade"]  # nothing started after the limit


def test_fake_model_converges_where_the_changes_say():
    calls = []
    build, quantity = fake_model(calls)
    result = converge(build, quantity, conv_tol=1e-3, expansions=("matsubara",))
    # raising d changes 2^-d by 2^-(d+1), below 1e-3 from d = 9; raising n changes 3^-n by
    # 2/3^(n+1), below 1e-3 from n = 6
    assert result.converged and (result.depth, result.n_exp) == (9, 6)
    assert len(calls) == len(set(calls)) == result.runs  # no truncation run twice


def test_failed_runs_turn_the_search_to_the_other_direction():
    calls = []
    build, quantity = fake_model(calls)

    def fragile(built):
        if built[1] < 2:
            raise InvariantViolationError("positivity", -0.3, 1e-8, "not a density matrix")
        return quantity(built)

    result = converge(build, fragile, conv_tol=1e-2, expansions=("pade",))
    assert result.converged and result.n_exp >= 2
    failed = [r for r in result.table if r.status == "failed"]
    assert failed and "InvariantViolationError" in failed[0].error and failed[0].change is None
    # it zigzags (1,0) (2,0) (2,1) (3,1) instead of climbing the whole depth range at n_exp = 0
    assert len(failed) == 4 and (result.depth, result.n_exp) == (6, 4)


def test_disagreeing_expansions_are_not_converged():
    calls = []
    build, quantity = fake_model(calls, offset={"matsubara": 1e-3})
    result = converge(build, quantity, conv_tol=1e-3)
    assert all(o.converged for o in result.outcomes.values())
    assert result.expansion_difference == pytest.approx(1e-3)
    assert result.converged  # 1e-3 is within 10 x conv_tol
    result = converge(build, quantity, conv_tol=1e-5, depths=range(1, 30), n_exps=range(0, 20))
    assert not result.converged and result.reason == "expansions disagree"
    assert any("differ by" in w for w in result.warnings)


@pytest.mark.parametrize("kwargs, name", [
    ({"conv_tol": 0}, "conv_tol"), ({"conv_tol": -1e-5}, "conv_tol"), ({"conv_tol": np.nan}, "conv_tol"),
    ({"depths": []}, "depths"), ({"depths": range(0)}, "depths"), ({"n_exps": []}, "n_exps"),
    ({"depths": [3, 2]}, "depths"), ({"n_exps": [-1, 0]}, "n_exps"), ({"expansions": ()}, "expansions"),
    ({"expansions": ("Pade",)}, "expansions"), ({"memory_limit_bytes": 0}, "memory_limit_bytes"),
    ({"time_limit_s": -1}, "time_limit_s"),
])
def test_input_errors_name_the_parameter(kwargs, name):
    build, quantity = fake_model([])
    with pytest.raises(InvalidParameterError, match=name):
        converge(build, quantity, **kwargs)
    with pytest.raises(InvalidParameterError, match=name):
        converge_steady_state(H_QUBIT, qubit_baths, **kwargs)


def test_a_quantity_that_changes_shape_is_refused():
    with pytest.raises(InvalidParameterError, match="shape"):
        converge(lambda d, n, e: d, lambda d: np.zeros(d), expansions=("pade",))


def test_check_model_uses_each_coupling_and_an_uncoupled_bath_passes():
    from qpump.pump import HeatPump

    pump = HeatPump()
    baths = [dl(2.0, 2, Q=Q_A, kappa=0.01, gamma=2.0), dl(1.0, 2, Q=Q_B, kappa=0.023, gamma=2.0)]
    check = check_model(pump.coupled_hamiltonian, baths)
    # V_AB (omega_c = 0.1) splits the qubits' frequency 1 into 0.9 and 1.1
    assert np.allclose(check.baths[0].frequencies, [0.9, 1.1])
    assert check.ok and check.detailed_balance_error < 1e-3  # the paper's truncation is fine here
    assert check_expansion(dl(0.1, 2, "pade", kappa=0.0), [1.0]).ok  # no coupling, no rates
