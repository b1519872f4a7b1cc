"""Tests of qpump.states: Gibbs states, lambdas (Eq. 6), chi (Eqs. 8-10, App. A), Eq. 9 checks."""

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from qpump import InvalidParameterError, InvalidStateError, states
from qpump.info import concurrence, partial_trace


def test_gibbs_state_is_boltzmann_with_ground_state_first():
    T = 0.7
    rho = states.gibbs_state(T)
    energies = np.diag(states.H_QUBIT).real
    expected = np.exp(-energies / T) / np.exp(-energies / T).sum()
    assert np.allclose(np.diag(rho).real, expected, atol=1e-15)
    assert rho[0, 0].real > rho[1, 1].real  # |0> is the ground state
    assert np.allclose(states.gibbs_state(math.inf), np.eye(2) / 2)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, "hot"])
def test_gibbs_rejects_bad_temperature(bad):
    with pytest.raises(InvalidParameterError, match="T = "):
        states.gibbs_state(bad)


def test_lambdas_match_eq6():
    TA, TB = 2.0, 1.0
    ba, bb = 1 / TA, 1 / TB
    z = (2 * math.cosh(ba / 2)) * (2 * math.cosh(bb / 2))
    eq6 = np.array([
        math.exp((ba + bb) / 2), math.exp((ba - bb) / 2),
        math.exp((-ba + bb) / 2), math.exp(-(ba + bb) / 2),
    ]) / z
    assert np.allclose(states.lambdas(TA, TB), eq6, atol=1e-15)
    assert np.allclose(states.product_state(TA, TB),
                       np.kron(states.gibbs_state(TA), states.gibbs_state(TB)), atol=1e-15)


def test_optimal_chi_is_eq10_rank2_with_concurrence_c0():
    TA, TB, phi = 2.0, 1.0, 0.4
    corr = states.optimal_correlation(TA, TB, phi_chi=phi)
    lam4 = states.lambdas(TA, TB)[3]
    chi = corr.matrix
    assert np.allclose(np.diag(chi).real, [-lam4, lam4, lam4, -lam4])
    assert chi[1, 2] == pytest.approx(np.exp(1j * phi) * math.sqrt(lam4))  # row |01>, column |10>
    rho = corr.state()
    assert np.linalg.matrix_rank(rho, tol=1e-12) == 2
    c0 = 2 * math.sqrt(lam4)
    assert concurrence(rho) == pytest.approx(c0, abs=1e-12)
    assert corr.concurrence == pytest.approx(c0, abs=1e-15)
    states.check_correlated_state(rho, TA, TB)


@settings(max_examples=60, deadline=None)
@given(
    TA=st.floats(0.2, 20), TB=st.floats(0.2, 20),
    u=st.floats(0, 1), v=st.floats(0, 1), phi=st.floats(-math.pi, math.pi),
)
@example(TA=1.0, TB=1.0, u=4.633593709316849e-16, v=1.0, phi=0.0)  # rho_44 = 1.2e-16
def test_every_admissible_x_state_is_a_locally_gibbs_state(TA, TB, u, v, phi):
    lam = states.lambdas(TA, TB)
    chi11 = -lam[3] + u * (min(lam[1], lam[2]) + lam[3])
    chi23 = v * math.sqrt(max(0.0, (lam[1] - chi11) * (lam[2] - chi11)))
    corr = states.correlation_matrix(TA, TB, chi11, chi23, phi, require_entangled=False)
    rho = corr.state()
    states.check_state(rho, atol=1e-12)
    assert np.allclose(partial_trace(rho, 0), states.gibbs_state(TA), atol=1e-14)
    assert np.allclose(partial_trace(rho, 1), states.gibbs_state(TB), atol=1e-14)
    # Eq. A3 equals the Wootters concurrence of the state, up to the documented effect of
    # eigenvalues at round-off level, which concurrence() drops (8 sqrt(p_0 p_max), info.py).
    p = np.linalg.eigvalsh(rho)
    dropped = p[(p > 0) & (p <= 1e-14)].sum()
    assert concurrence(rho) == pytest.approx(corr.concurrence, abs=1e-10 + 8 * math.sqrt(dropped * p.max()))


def test_positivity_violation_a2b_names_the_numbers():
    lam = states.lambdas(2, 1)
    bound = math.sqrt((lam[1] - 0.0) * (lam[2] - 0.0))
    expected = rf"chi_23 = 0\.4 exceeds sqrt\(\(lambda2-chi11\)\(lambda3-chi11\)\) = {bound:.6f}"
    with pytest.raises(InvalidStateError, match=expected + r" \(positivity, A2b\)"):
        states.correlation_matrix(2, 1, chi11=0.0, chi23=0.4)


def test_diagonal_violation_a2a():
    with pytest.raises(InvalidStateError, match="A2a"):
        states.correlation_matrix(2, 1, chi11=-0.5, chi23=0.1)
    with pytest.raises(InvalidStateError, match="A2a"):
        states.correlation_matrix(2, 1, chi11=0.3, chi23=0.0)


def test_separable_correlation_is_rejected_unless_allowed():
    with pytest.raises(InvalidStateError, match="not entangled"):
        states.correlation_matrix(2, 1, chi11=0.0, chi23=0.1)
    corr = states.correlation_matrix(2, 1, chi11=0.0, chi23=0.1, require_entangled=False)
    assert corr.concurrence == 0.0


def test_correlation_argument_errors():
    with pytest.raises(InvalidParameterError, match="both chi11 and chi23"):
        states.correlation_matrix(2, 1, chi11=0.0)
    with pytest.raises(InvalidParameterError, match="chi23 = -0.1"):
        states.correlation_matrix(2, 1, chi11=0.0, chi23=-0.1)
    with pytest.raises(InvalidParameterError, match="TA = -2"):
        states.correlation_matrix(-2, 1)


def test_check_state_names_each_violation():
    good = states.correlated_state(2, 1)
    with pytest.raises(InvalidStateError, match="not Hermitian"):
        bad = good.copy()
        bad[1, 2] += 0.1
        states.check_state(bad)
    with pytest.raises(InvalidStateError, match="trace 1.1"):
        states.check_state(good + 0.025 * np.eye(4))
    with pytest.raises(InvalidStateError, match="negative eigenvalue"):
        lam = states.lambdas(2, 1)
        states.check_state(np.diag([lam[0] + lam[3] + 0.1, lam[1], lam[2], -0.1]))
    with pytest.raises(InvalidStateError, match="square"):
        states.check_state(np.ones((2, 3)))


def test_check_correlated_state_detects_wrong_local_temperature_and_no_entanglement():
    rho = states.correlated_state(2, 1)
    with pytest.raises(InvalidStateError, match="T_A = 3.*9b"):
        states.check_correlated_state(rho, 3, 1)
    with pytest.raises(InvalidStateError, match="9c"):
        states.check_correlated_state(states.product_state(2, 1), 2, 1)


def test_coupling_potential_is_eq7():
    v = states.coupling_potential(0.1, 0.3)
    assert v[1, 2] == pytest.approx(0.1 * np.exp(0.3j))  # |01><10| carries e^{+i phi_V}
    assert np.allclose(v, v.conj().T)
    assert np.count_nonzero(v) == 2
