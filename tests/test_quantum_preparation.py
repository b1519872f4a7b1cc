"""Tests of qpump.quantum.preparation: every preparation equals qpump.states on Aer density matrices."""

import math

import numpy as np
import pytest

from qpump import InvalidParameterError, InvalidStateError, states
from qpump.quantum._aer import density_matrices_of
from qpump.quantum.preparation import cx_count, prepare_optimal_state, prepare_state, spectral_form


def _random_x_states(n: int, seed: int = 3):
    """Admissible X states (chi11, chi23, phi_chi) at random temperatures, entangled or not."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        TA, TB = rng.uniform(0.3, 4.0, size=2)
        lam = states.lambdas(TA, TB)
        chi11 = rng.uniform(-lam[3], min(lam[1], lam[2]))
        chi23 = rng.uniform(0, 1) * math.sqrt((lam[1] - chi11) * (lam[2] - chi11))
        out.append((TA, TB, chi11, chi23, rng.uniform(-math.pi, math.pi)))
    return out


def _prepared(prep) -> np.ndarray:
    rhos = density_matrices_of([b.circuit for b in prep.branches])
    return sum(b.weight * r for b, r in zip(prep.branches, rhos, strict=True))


TEMPERATURES = [(2.0, 1.0, 0.0), (1.0, 2.0, 0.9), (1.5, 1.5, -2.0), (0.2, 5.0, 0.3)]


@pytest.mark.parametrize("method", ["ancilla", "mixture"])
@pytest.mark.parametrize("TA,TB,phi_chi", TEMPERATURES)
def test_optimal_state_equals_qpump_states(method, TA, TB, phi_chi):
    prep = prepare_optimal_state(TA, TB, phi_chi=phi_chi, method=method)
    expected = states.correlated_state(TA, TB, phi_chi=phi_chi)
    assert np.max(np.abs(_prepared(prep) - expected)) < 1e-12
    assert sum(b.weight for b in prep.branches) == pytest.approx(1.0, abs=1e-15)
    # rank 2: one ancilla, or a two-branch mixture
    assert prep.num_ancillas == (1 if method == "ancilla" else 0)
    assert len(prep.branches) == (1 if method == "ancilla" else 2)


@pytest.mark.parametrize("method", ["ancilla", "mixture"])
@pytest.mark.parametrize("params", _random_x_states(6))
def test_any_admissible_x_state_equals_qpump_states(method, params):
    TA, TB, chi11, chi23, phi = params
    prep = prepare_state(TA, TB, chi11, chi23, phi, method=method)
    expected = states.correlation_matrix(TA, TB, chi11, chi23, phi, require_entangled=False).state()
    assert np.max(np.abs(_prepared(prep) - expected)) < 1e-12
    assert prep.num_ancillas <= 2
    assert len(prep.branches) <= 4


def test_uncorrelated_product_state_is_prepared():
    prep = prepare_state(2.0, 1.0, 0.0, 0.0, method="ancilla")
    assert np.max(np.abs(_prepared(prep) - states.product_state(2.0, 1.0))) < 1e-12


def test_spectral_form_is_the_eigendecomposition():
    corr = states.correlation_matrix(2.0, 1.0, -0.06, 0.25, -0.8)
    form = spectral_form(corr)
    assert np.max(np.abs(form.state() - corr.state())) < 1e-15
    assert np.allclose(np.sort(form.weights), np.linalg.eigvalsh(corr.state()), atol=1e-15)
    vecs = form.vectors()
    assert np.allclose(vecs @ vecs.conj().T, np.eye(4), atol=1e-15)
    # the optimal state has exactly two non-zero weights (rank 2)
    assert np.count_nonzero(spectral_form(states.optimal_correlation(2.0, 1.0)).weights) == 2


def test_cx_counts_after_transpiling_to_the_hardware_basis():
    optimal_ancilla = prepare_optimal_state(2.0, 1.0, method="ancilla")
    optimal_mixture = prepare_optimal_state(2.0, 1.0, method="mixture")
    generic_ancilla = prepare_state(2.0, 1.0, -0.06, 0.25, -0.8, method="ancilla")
    generic_mixture = prepare_state(2.0, 1.0, -0.06, 0.25, -0.8, method="mixture")
    assert optimal_ancilla.cx_counts() == [3]
    assert optimal_mixture.cx_counts() == [0, 1]
    assert generic_ancilla.cx_counts() == [6]
    assert generic_mixture.cx_counts() == [0, 0, 1, 1]
    assert cx_count(optimal_ancilla.branches[0].circuit, optimization_level=1) == 3


def test_bad_input_is_rejected():
    with pytest.raises(InvalidParameterError, match="method = 'teleport'"):
        prepare_state(2.0, 1.0, method="teleport")
    with pytest.raises(InvalidStateError, match="A2b"):
        prepare_state(2.0, 1.0, 0.0, 0.9)
    with pytest.raises(InvalidParameterError, match="TA = -1"):
        prepare_state(-1.0, 1.0)
