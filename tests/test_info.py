"""Tests of qpump.info against textbook states."""

import math

import numpy as np
import pytest

from qpump import InvalidParameterError, info, states

BELL = np.zeros((4, 4), dtype=complex)
BELL[np.ix_([1, 2], [1, 2])] = 0.5  # (|01> + |10>)/sqrt 2


def _random_state(rng, dim=4, rank=4):
    a = rng.normal(size=(dim, rank)) + 1j * rng.normal(size=(dim, rank))
    rho = a @ a.conj().T
    return rho / np.trace(rho)


def test_entropies_in_nats_and_bits():
    mixed = np.eye(4) / 4
    assert info.von_neumann_entropy(mixed) == pytest.approx(math.log(4), abs=1e-14)
    assert info.von_neumann_entropy(mixed, base=2) == pytest.approx(2.0, abs=1e-14)
    assert info.von_neumann_entropy(BELL) == pytest.approx(0.0, abs=1e-14)
    with pytest.raises(InvalidParameterError, match="base = 1"):
        info.von_neumann_entropy(mixed, base=1)


def test_bell_state_measures():
    assert info.concurrence(BELL) == pytest.approx(1.0, abs=1e-12)
    assert info.mutual_information(BELL) == pytest.approx(2 * math.log(2), abs=1e-12)
    assert info.mutual_information(BELL, base=2) == pytest.approx(2.0, abs=1e-12)


def test_product_states_have_no_correlation():
    rng = np.random.default_rng(1)
    a, b = _random_state(rng, 2, 2), _random_state(rng, 2, 2)
    rho = np.kron(a, b)
    assert np.allclose(info.partial_trace(rho, 0), a)
    assert np.allclose(info.partial_trace(rho, 1), b)
    assert info.mutual_information(rho) == pytest.approx(0.0, abs=1e-12)
    assert info.concurrence(rho) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(InvalidParameterError, match="keep = 2"):
        info.partial_trace(rho, 2)


def test_mutual_information_is_relative_entropy_to_product_of_marginals():
    rng = np.random.default_rng(2)
    rho = _random_state(rng)
    marg = np.kron(info.partial_trace(rho, 0), info.partial_trace(rho, 1))
    assert info.mutual_information(rho) == pytest.approx(info.relative_entropy(rho, marg), abs=1e-12)


def test_relative_entropy_zero_positive_and_infinite():
    rng = np.random.default_rng(3)
    rho, sigma = _random_state(rng), _random_state(rng)
    assert info.relative_entropy(rho, rho) == pytest.approx(0.0, abs=1e-12)
    assert info.relative_entropy(rho, sigma) > 0
    pure0 = np.diag([1.0, 0.0]).astype(complex)
    assert info.relative_entropy(np.eye(2) / 2, pure0) == math.inf
    assert info.relative_entropy(pure0, np.eye(2) / 2) == pytest.approx(math.log(2))
    with pytest.raises(InvalidParameterError, match="one shape"):
        info.relative_entropy(np.eye(2), np.eye(4))


def test_concurrence_is_batched_and_matches_werner_formula():
    # Werner state p |Bell><Bell| + (1-p) I/4: C = max(0, (3p - 1)/2).
    ps = np.linspace(0, 1, 11)
    rhos = np.array([p * BELL + (1 - p) * np.eye(4) / 4 for p in ps])
    assert np.allclose(info.concurrence(rhos), np.clip((3 * ps - 1) / 2, 0, None), atol=1e-12)


def test_local_energies_follow_sigma_z_over_2():
    rho = np.kron(states.gibbs_state(2.0), states.gibbs_state(1.0))
    ea, eb = info.local_energies(rho)
    assert ea == pytest.approx(states.excited_population(2.0) - 0.5)
    assert eb == pytest.approx(states.excited_population(1.0) - 0.5)
    with pytest.raises(InvalidParameterError, match="shape"):
        info.local_energies(np.eye(2))
