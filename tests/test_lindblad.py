"""Tests of qpump.lindblad: rates, detailed balance, steady states, exact heat bookkeeping."""

import math

import numpy as np
import pytest
import scipy.linalg

from qpump import InvalidParameterError, closed, states
from qpump.lindblad import LindbladSolver, LocalBath, spectral_density, transition_rates


def _baths(ka=0.01, kb=0.023, gamma=2.0, TA=2.0, TB=1.0):
    return [LocalBath(0, ka, gamma, TA), LocalBath(1, kb, gamma, TB)]


def test_rates_are_golden_rule_and_obey_detailed_balance():
    down, up = transition_rates(0.01, 2.0, 2.0)
    assert down == pytest.approx(2 * spectral_density(1.0, 0.01, 2.0) / (1 - math.exp(-0.5)))
    assert up / down == pytest.approx(math.exp(-1 / 2.0))  # Boltzmann factor at the gap
    assert spectral_density(1.0, 0.01, 2.0) == pytest.approx(2 * 0.01 * 2 / 5)


def test_uncoupled_steady_state_is_the_product_of_gibbs_states_with_no_current():
    solver = LindbladSolver(states.H_A + states.H_B, _baths())
    ss = solver.steady_state()
    assert np.allclose(ss, states.product_state(2.0, 1.0), atol=1e-14)
    assert np.allclose(solver.heat_current(ss), 0.0, atol=1e-16)


def test_coupled_steady_state_conducts_from_hot_to_cold_and_conserves_energy():
    solver = LindbladSolver(closed.pair_hamiltonian(0.1, -math.pi / 2), _baths())
    j = solver.heat_current(solver.steady_state())
    assert j[0] < 0 < j[1]  # energy leaves the hot bath A and enters the cold bath B
    assert j[0] + j[1] == pytest.approx(0.0, abs=1e-16)
    equal = LindbladSolver(closed.pair_hamiltonian(0.1, 0.3), _baths(TA=1.5, TB=1.5))
    assert np.allclose(equal.heat_current(equal.steady_state()), 0.0, atol=1e-16)


def test_kappa_zero_reproduces_the_isolated_pair():
    h = closed.pair_hamiltonian(0.1, -math.pi / 2)
    solver = LindbladSolver(h, _baths(ka=0.0, kb=0.0))
    t = np.linspace(0, 20, 41)
    rho0 = states.correlated_state(2, 1)
    res = solver.run(rho0, t)
    assert np.max(np.abs(res.rho - closed.propagate(rho0, t, h))) < 1e-12
    assert np.max(np.abs(res.heat)) == 0.0


def test_trajectory_matches_direct_integration_and_heat_closes_the_first_law():
    h = closed.pair_hamiltonian(0.1, -math.pi / 2)
    solver = LindbladSolver(h, _baths(ka=0.05, kb=0.08))
    rho0 = states.correlated_state(2, 1)
    t = np.concatenate([np.linspace(0, 3, 7), np.linspace(3.5, 30, 12)])  # uneven steps
    res = solver.run(rho0, t)
    # Independent route: expm of the generator built from the jump operators, and quadrature.
    ops = [op for b in solver.baths for op in b.jump_operators()]

    def rhs(rho):
        out = -1j * (h @ rho - rho @ h)
        for op in ops:
            out += op @ rho @ op.conj().T - 0.5 * (op.conj().T @ op @ rho + rho @ op.conj().T @ op)
        return out

    gen = np.array([rhs(e.reshape(4, 4)).reshape(-1) for e in np.eye(16)]).T
    for k, tk in enumerate(t):
        expected = (scipy.linalg.expm(gen * tk) @ rho0.reshape(-1)).reshape(4, 4)
        assert np.max(np.abs(res.rho[k] - expected)) < 1e-12
    energy = np.real(np.einsum("ij,tji->t", h, res.rho))
    assert np.max(np.abs((energy - energy[0]) - res.heat.sum(axis=1))) < 1e-13
    fine = np.linspace(0, 30, 30001)
    fine_res = solver.run(rho0, fine)
    trapezoid = -np.trapezoid(fine_res.heat_current, fine, axis=0)
    assert np.allclose(fine_res.heat[-1], trapezoid, atol=1e-9)
    assert np.allclose(fine_res.heat[-1], res.heat[-1], atol=1e-13)


def test_bad_input_is_rejected():
    with pytest.raises(InvalidParameterError, match="kappa = -0.1"):
        LocalBath(0, -0.1, 2.0, 1.0)
    with pytest.raises(InvalidParameterError, match="gamma = 0"):
        LocalBath(0, 0.1, 0.0, 1.0)
    with pytest.raises(InvalidParameterError, match="T = 0"):
        LocalBath(0, 0.1, 1.0, 0.0)
    with pytest.raises(InvalidParameterError, match="qubit = 2"):
        LocalBath(2, 0.1, 1.0, 1.0)
    solver = LindbladSolver(states.H_A, _baths())
    with pytest.raises(InvalidParameterError, match="non-decreasing"):
        solver.run(states.product_state(2, 1), [1.0, 0.0])
    with pytest.raises(InvalidParameterError, match="not Hermitian"):
        solver.set_hamiltonian(np.triu(np.ones((4, 4))))
