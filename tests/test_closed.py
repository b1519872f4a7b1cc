"""Tests of qpump.closed: the isolated pair against the closed forms of App. B and the paper."""

import math

import numpy as np
import pytest

from qpump import InvalidParameterError, closed, states

RNG_DELTA = float(np.random.default_rng(7).uniform(-math.pi, math.pi))
DELTAS = [0.0, math.pi / 2, -math.pi / 2, RNG_DELTA]
GRADIENTS = [(2.0, 1.0), (1.5, 1.5), (1.0, 2.0)]
TIMES = np.linspace(0.0, 80.0, 321)


@pytest.mark.parametrize("delta", DELTAS)
@pytest.mark.parametrize("TA,TB", GRADIENTS)
def test_closed_form_equals_exact_propagation(delta, TA, TB):
    phi_chi = 0.37  # a nonzero phase: only delta = phi_V - phi_chi may matter
    corr = states.optimal_correlation(TA, TB, phi_chi=phi_chi)
    phi_v = delta + phi_chi
    rho = closed.propagate(corr.state(), TIMES, closed.pair_hamiltonian(0.1, phi_v))
    assert np.max(np.abs(rho - closed.rho_closed_form(TIMES, TA, TB, 0.1, phi_v, corr))) < 1e-12
    tr = closed.trajectory(TIMES, rho, TA, TB)
    e_a, e_b = closed.energies_closed_form(TIMES, TA, TB, 0.1, delta, corr)
    assert np.max(np.abs(tr.E_A - e_a)) < 1e-12
    assert np.max(np.abs(tr.E_B - e_b)) < 1e-12
    assert np.max(np.abs(tr.sed - closed.sed_closed_form(TIMES, TA, TB, 0.1, delta, corr))) < 1e-12
    if TA != TB:
        assert np.max(np.abs(tr.sed - closed.sed_eq12(TIMES, TA, TB, 0.1, delta))) < 1e-12


def test_closed_form_holds_for_a_non_optimal_x_state():
    TA, TB = 2.0, 1.0
    lam = states.lambdas(TA, TB)
    corr = states.correlation_matrix(TA, TB, chi11=-0.06, chi23=0.25, phi_chi=-0.8)
    rho = closed.propagate(corr.state(), TIMES, closed.pair_hamiltonian(0.23, 1.1))
    assert np.max(np.abs(rho - closed.rho_closed_form(TIMES, TA, TB, 0.23, 1.1, corr))) < 1e-12
    assert corr.chi11 != -lam[3]


@pytest.mark.parametrize("delta", DELTAS)
@pytest.mark.parametrize("TA,TB", GRADIENTS)
def test_eq1_and_eq2_hold_along_trajectories(delta, TA, TB):
    corr = states.optimal_correlation(TA, TB)
    rho = closed.propagate(corr.state(), TIMES, closed.pair_hamiltonian(0.1, delta))
    tr = closed.trajectory(TIMES, rho, TA, TB)
    assert np.max(np.abs(tr.eq1_residual("A"))) < 1e-12
    assert np.max(np.abs(tr.eq1_residual("B"))) < 1e-12
    assert np.max(np.abs(tr.eq2_residual())) < 1e-12
    # The terms are not trivially zero: the relative entropies and Delta I do move.
    assert np.max(tr.relative_entropy_A) > 1e-3 or delta == 0.0


def test_eq2_would_fail_for_a_non_unitary_change():
    # Oracle sanity: a dephased trajectory breaks Eq. 2 (its total entropy is not conserved).
    TA, TB = 2.0, 1.0
    rho = closed.propagate(states.correlated_state(TA, TB), TIMES, closed.pair_hamiltonian(0.1, -1))
    rho[:, 1, 2] *= 0.5
    rho[:, 2, 1] *= 0.5
    assert np.max(np.abs(closed.trajectory(TIMES, rho, TA, TB).eq2_residual())) > 1e-3


def test_paper_numbers_at_TA2_TB1():
    run = closed.run_closed(TA=2, TB=1, omega_c=0.1, delta=-math.pi / 2)
    assert run.C0 == pytest.approx(0.637295, abs=5e-7)
    assert run.I0 == pytest.approx(0.595453, abs=5e-7)
    assert run.trajectory.sed[0] == pytest.approx(0.108599, abs=5e-7)
    assert run.theta == pytest.approx(-1.402011, abs=5e-7)
    assert run.tau_peak == pytest.approx(7.0101, abs=5e-5)
    assert run.trajectory.concurrence[0] == pytest.approx(run.C0, abs=1e-12)


def test_tau_peak_is_the_first_sed_maximum():
    TA, TB, om, delta = 2.0, 1.0, 0.1, -math.pi / 2
    t = np.linspace(0, 15, 150001)
    sed = closed.sed_closed_form(t, TA, TB, om, delta)
    assert t[np.argmax(sed)] == pytest.approx(closed.tau_peak(TA, TB, om, delta), abs=1e-4)


def _sed_rises(TA, TB, delta, corr=None):
    corr = corr or states.optimal_correlation(TA, TB)
    t = np.array([0.0, 1e-3])
    rho = closed.propagate(corr.state(), t, closed.pair_hamiltonian(0.1, delta + corr.phi_chi))
    sed = closed.trajectory(t, rho, TA, TB).sed
    return sed[1] > sed[0]


@pytest.mark.parametrize("delta", np.linspace(-math.pi, math.pi, 25))
def test_sed_first_rises_iff_entangled_and_delta_in_minus_pi_zero(delta):
    TA, TB = 2.0, 1.0
    expected = -math.pi < delta < 0 and not math.isclose(delta, 0.0, abs_tol=1e-12) \
        and not math.isclose(delta, -math.pi, abs_tol=1e-12)
    assert _sed_rises(TA, TB, delta) == expected
    uncorrelated = states.correlation_matrix(TA, TB, 0.0, 0.0, require_entangled=False)
    assert not _sed_rises(TA, TB, delta, uncorrelated)
    # Eq. 4's first-order coefficient has the same sign, and equals -2 Omega C0 sin(delta).
    corr = states.optimal_correlation(TA, TB)
    trend = closed.initial_trend(corr.state(), states.coupling_potential(0.1, delta), TA, TB)
    assert trend == pytest.approx(-2 * 0.1 * closed.concurrence_initial(TA, TB) * math.sin(delta),
                                  abs=1e-15)


@pytest.mark.parametrize("delta", [0.0, -math.pi / 2, 1.0])
def test_period_is_pi_over_omega(delta):
    om = 0.1
    t = np.linspace(0, 40, 201)
    run = closed.run_closed(delta=delta, omega_c=om, t_max=40 + math.pi / om, points=2)
    h = closed.pair_hamiltonian(om, delta)
    rho0 = states.correlated_state(2, 1)
    a = closed.trajectory(t, closed.propagate(rho0, t, h), 2, 1)
    b = closed.trajectory(t, closed.propagate(rho0, t + math.pi / om, h), 2, 1)
    c = closed.trajectory(t, closed.propagate(rho0, t + math.pi / (2 * om), h), 2, 1)
    assert np.max(np.abs(a.sed - b.sed)) < 1e-12
    assert np.max(np.abs(a.concurrence - b.concurrence)) < 1e-10
    assert np.max(np.abs(a.sed - c.sed)) > 1e-2  # half the period is not a period
    assert run.trajectory.sed.shape == (2,)


@pytest.mark.parametrize("delta", [math.pi / 2, -math.pi / 2])
def test_correlation_is_consumed_in_anomalous_exchange(delta):
    TA, TB, om = 2.0, 1.0, 0.1
    quarter = math.pi / (2 * om)
    anomalous = closed.run_closed(TA, TB, om, delta, t_max=quarter, points=200).trajectory
    normal = closed.run_closed(TA, TB, om, 0.0, t_max=quarter, points=200).trajectory
    c0, i0 = anomalous.concurrence[0], anomalous.mutual_information[0]
    # Within a quarter period the entanglement and the mutual information are used up ...
    assert np.min(anomalous.concurrence) < 0.01 * c0
    assert np.min(anomalous.mutual_information) < 0.01 * i0
    # ... while the SED moves away from its normal course (the gap C0 |sin 2 Omega t| grows
    # for an eighth of the period).
    gap = np.abs(anomalous.sed - normal.sed)
    eighth = anomalous.times <= quarter / 2
    assert np.all(np.diff(gap[eighth]) > 0)
    # In the normal exchange the correlation barely changes (Fig. 1).
    assert np.ptp(normal.concurrence) < 0.02 * c0
    assert np.ptp(normal.mutual_information) < 0.05 * i0


def test_correlation_falls_monotonically_until_the_anomalous_peak():
    tau = closed.tau_peak(2, 1, 0.1, -math.pi / 2)
    tr = closed.run_closed(2, 1, 0.1, -math.pi / 2, t_max=tau, points=100).trajectory
    assert np.all(np.diff(tr.concurrence) < 0)
    assert np.all(np.diff(tr.mutual_information) < 0)
    assert np.all(np.diff(tr.sed) > 0)


def test_anomalous_amplitude_barely_depends_on_gradient():
    t = np.linspace(0, 2 * math.pi / 0.1, 2001)
    amp = {}
    normal = {}
    for TA, TB in GRADIENTS:
        amp[(TA, TB)] = np.max(closed.sed_closed_form(t, TA, TB, 0.1, -math.pi / 2))
        normal[(TA, TB)] = np.max(np.abs(closed.sed_closed_form(t, TA, TB, 0.1, 0.0)))
    values = np.array(list(amp.values()))
    assert np.ptp(values) < 0.1 * values.mean()  # within 10 % of each other (Fig. 2b)
    assert normal[(1.5, 1.5)] < 1e-15  # no gradient, no normal exchange (Fig. 2a)
    assert min(values) > 5 * max(normal.values())  # "nearly an order of magnitude larger"
    # Reversing the gradient reverses the normal exchange.
    s21 = closed.sed_closed_form(t, 2, 1, 0.1, 0.0)
    s12 = closed.sed_closed_form(t, 1, 2, 0.1, 0.0)
    assert np.max(np.abs(s21 + s12)) < 1e-15


def test_theta_limits_and_errors():
    assert closed.theta(1.5, 1.5, -1.0) == pytest.approx(-math.pi / 2)
    assert closed.theta(1.5, 1.5, 0.0) == 0.0
    assert closed.theta(2, 1, 0.0) == 0.0
    with pytest.raises(InvalidParameterError, match="singular"):
        closed.sed_eq12(np.zeros(1), 1.5, 1.5, 0.1, -1.0)
    with pytest.raises(InvalidParameterError, match="omega_c = 0"):
        closed.tau_peak(2, 1, 0.0, -1.0)


@pytest.mark.parametrize("kwargs,match", [
    ({"TA": 0}, "TA = 0"), ({"TB": -1}, "TB = -1"), ({"omega_c": -0.1}, "omega_c = -0.1"),
    ({"delta": math.nan}, "delta = nan"), ({"t_max": 0}, "t_max = 0"), ({"points": 1}, "points = 1"),
])
def test_run_closed_rejects_bad_input(kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        closed.run_closed(**kwargs)


def test_propagate_rejects_bad_input():
    rho0 = states.correlated_state(2, 1)
    with pytest.raises(InvalidParameterError, match="not Hermitian"):
        closed.propagate(rho0, [0.0], np.triu(np.ones((4, 4))))
    with pytest.raises(InvalidParameterError, match=r"rho0 must have shape \(4, 4\)"):
        closed.propagate(np.eye(2) / 2, [0.0], np.eye(4))
    with pytest.raises(InvalidParameterError, match="non-finite"):
        closed.propagate(rho0, [math.inf], np.eye(4))
    with pytest.raises(InvalidParameterError, match="qubit"):
        closed.run_closed(points=3).trajectory.eq1_residual("C")
