"""Tests of qpump.invariants: each check catches what it guards, passes correct runs from weak to
strong coupling, and a broken heat current is reported, not printed."""

import numpy as np
import pytest

from qpump import invariants
from qpump.errors import InvariantViolationError
from qpump.pump import HeatPump
from qpump.states import correlated_state


def test_a_correct_state_passes_and_each_violation_is_named():
    rho = np.array([correlated_state(2, 1), np.eye(4) / 4])
    assert invariants.check_density_matrices(rho, "ok") > -1e-15  # rho_0 of Eq. 10 has rank 2
    cases = [
        (2 * rho, "trace"),
        (rho + 1e-6j * np.triu(np.ones((4, 4)), 1), "hermiticity"),
        (np.array([rho[0], np.diag([-1e-6, 0.25 + 1e-6, 0.375, 0.375])]), "positivity"),
        (rho * np.nan, "finiteness"),
    ]
    for bad, check in cases:
        with pytest.raises(InvariantViolationError, match=f"check failed: {check}") as err:
            invariants.check_density_matrices(bad, "cycle 1", times=np.array([0.0, 1.5]),
                                              cause="raise depth")
        assert err.value.check == check
    # Just inside each tolerance passes: the checks are as tight as stated, no tighter.
    invariants.check_density_matrices(rho * (1 + 0.9e-9), "ok")  # trace 1 + 0.9e-9
    low = np.diag([-0.9e-8, 0.25 + 0.9e-8, 0.375, 0.375]).astype(complex)
    invariants.check_density_matrices(low, "ok")


def test_the_positivity_message_names_the_time_and_the_cause():
    rho = np.array([np.eye(4) / 4, np.diag([-1e-3, 0.25 + 1e-3, 0.375, 0.375])])
    with pytest.raises(InvariantViolationError, match=r"-0\.001 at t = 7\.5.*raise depth"):
        invariants.check_density_matrices(rho, "cycle 2", times=np.array([5.0, 7.5]),
                                          cause="raise depth")


def test_simpson_error_estimates_the_true_error():
    t = np.linspace(0.0, 10.0, 41)
    values = np.column_stack([np.sin(t), t**3])
    estimate = invariants.simpson_error(t, values)
    from scipy.integrate import cumulative_simpson

    true = np.abs(cumulative_simpson(values, x=t, axis=0)[-1] - [1 - np.cos(10.0), 10.0**4 / 4])
    assert 0.3 * true[0] < estimate[0] < 3 * true[0]  # Richardson: the right size
    assert estimate[1] < 1e-9 and true[1] < 1e-9  # a cubic is integrated exactly
    # An even number of points and a too-short grid.
    assert invariants.simpson_error(t[:-1], values[:-1])[0] > 0
    # Three points: no coarse rule; Simpson minus trapezoid bounds Simpson's own error.
    short = invariants.simpson_error(t[:3], values[:3])
    short_true = np.abs(cumulative_simpson(values[:3], x=t[:3], axis=0)[-1]
                        - [1 - np.cos(t[2]), t[2] ** 4 / 4])
    assert np.all(short >= short_true) and short[0] > 0
    assert np.all(invariants.simpson_error(t[:1], values[:1]) == 0)


def test_first_law_and_second_law_checks():
    tol = invariants.first_law_tolerance(1e-7, 0.5, 1e-8)
    assert tol == pytest.approx(10 * (1e-7 * 0.5 + 1e-8) + 1e-12)
    invariants.check_first_law(0.9 * tol, tol, "cycle 1")
    with pytest.raises(InvariantViolationError, match="first law: cycle 1: .* = -7"):
        invariants.check_first_law(-7.0, tol, "cycle 1")
    with pytest.raises(InvariantViolationError, match="first law"):
        invariants.check_first_law(float("nan"), tol, "cycle 1")
    invariants.check_entropy_production(np.array([0.0, -1e-9, 0.1]), 2e-9, "cycle 1")
    with pytest.raises(InvariantViolationError, match=r"second law: cycle 1: .* at t = 2"):
        invariants.check_entropy_production(np.array([0.0, -1e-3]), 2e-9, "cycle 1",
                                            times=np.array([0.0, 2.0]))


@pytest.mark.parametrize("kappa_a,depth", [(0.001, 2), (0.01, 3), (0.1, 3), (0.3, 3), (1.0, 4)])
def test_correct_runs_pass_from_weak_to_strong_coupling(kappa_a, depth):
    run = HeatPump(kappa_a=kappa_a, kappa_b=2.3 * kappa_a, depth=depth, cycles=1,
                   tau_relax=100.0 if kappa_a >= 0.01 else 2000.0).run(normal_reference=False)
    (cycle,) = run.cycles
    # The tolerance is not vacuous: it is far below the heat itself at every coupling.
    assert 0 < abs(cycle.first_law_residual) < cycle.first_law_tolerance < 1e-3 * abs(cycle.Q_B)
    assert np.min(run.series["sigma"]) >= -cycle.first_law_tolerance


def test_a_wrong_heat_current_is_caught(heat_scaled_by):
    heat_scaled_by(1.01)  # 1 % of each bath's heat: the net error is 1 % of Q_A + Q_B
    with pytest.raises(InvariantViolationError, match="check failed: first law: cycle 1") as err:
        HeatPump(cycles=1, tau_relax=100.0).run(normal_reference=False)
    assert abs(err.value.value) > 10 * err.value.tolerance
