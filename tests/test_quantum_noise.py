"""Tests of qpump.quantum.noise: GAD channels equal the local dissipators, exact Kraus, collision model."""

import math

import numpy as np
import pytest
import scipy.linalg
from qiskit import QuantumCircuit

from qpump import InvalidParameterError, states
from qpump.lindblad import LocalBath
from qpump.quantum._aer import add_save_density_matrix, run_saved, swap_order
from qpump.quantum.noise import (
    BathNoise,
    bath_error,
    collision_circuit,
    gad_kraus,
    gad_parameters,
    gad_superoperator,
)

BATHS = [LocalBath(0, 0.01, 2.0, 2.0), LocalBath(1, 0.023, 2.0, 1.0), LocalBath(0, 0.3, 0.5, 0.25)]
STEPS = [1e-10, 1e-6, 0.05, 1.0, 40.0]


def _generator(bath: LocalBath) -> np.ndarray:
    """The dissipator of ``bath`` on its own qubit, from lindblad's jump operators, as a 4x4 superoperator."""
    ops = [op.reshape(2, 2, 2, 2) for op in bath.jump_operators()]
    # Reduce the 4x4 jump operators to the bath's qubit (they are op (x) I or I (x) op).
    local = [op[:, 0, :, 0] if bath.qubit == 0 else op[0, :, 0, :] for op in ops]

    def apply(rho):
        out = np.zeros((2, 2), dtype=complex)
        for op in local:
            out += op @ rho @ op.conj().T - 0.5 * (op.conj().T @ op @ rho + rho @ op.conj().T @ op)
        return out

    return np.array([apply(e.reshape(2, 2)).reshape(-1) for e in np.eye(4)]).T


@pytest.mark.parametrize("bath", BATHS)
@pytest.mark.parametrize("dt", STEPS)
def test_gad_channel_is_the_exponential_of_the_dissipator(bath, dt):
    channel = gad_superoperator(*gad_parameters(bath, dt))
    exact = scipy.linalg.expm(_generator(bath) * dt)
    assert np.max(np.abs(channel - exact)) < 1e-12


@pytest.mark.parametrize("bath", BATHS)
def test_small_steps_are_not_truncated(bath):
    # A Kraus set canonicalised with a ~1e-8 cut would lose these tiny jumps and bias small steps.
    dt = 1e-9
    down, up = bath.rates
    channel = gad_superoperator(*gad_parameters(bath, dt))
    excited, ground = np.diag([0.0, 1.0]).reshape(-1), np.diag([1.0, 0.0]).reshape(-1)
    assert (channel @ excited)[0] == pytest.approx(down * dt, rel=1e-8)  # decay |1> -> |0>
    assert (channel @ ground)[3] == pytest.approx(up * dt, rel=1e-8)  # excitation |0> -> |1>
    dt = 1e-5
    rate = (gad_superoperator(*gad_parameters(bath, dt)) - np.eye(4)) / dt
    assert np.max(np.abs(rate - _generator(bath))) < 1e-4 * max(bath.rates)
    kraus = gad_kraus(*gad_parameters(bath, dt))
    assert len(kraus) == 4
    assert np.allclose(sum(k.conj().T @ k for k in kraus), np.eye(2), atol=1e-15)


def test_gad_fixed_point_is_the_bath_gibbs_state_and_rates_match_lindblad():
    bath = BATHS[1]
    g, p = gad_parameters(bath, 0.7)
    down, up = bath.rates
    assert p == pytest.approx(up / (down + up), rel=1e-14)
    assert p == pytest.approx(1 / (1 + math.exp(1 / bath.T)), rel=1e-14)
    assert g == pytest.approx(1 - math.exp(-(down + up) * 0.7), rel=1e-14)
    gibbs = states.gibbs_state(bath.T).reshape(-1)
    assert np.max(np.abs(gad_superoperator(g, p) @ gibbs - gibbs)) < 1e-16


def _entangled_with_reference(width: int) -> QuantumCircuit:
    qc = QuantumCircuit(width)
    qc.h(width - 1)
    qc.cx(width - 1, 0)
    return qc


def _choi_expected(superop: np.ndarray) -> np.ndarray:
    out = np.zeros((4, 4), dtype=complex)
    for i in range(2):
        for j in range(2):
            unit = np.zeros((2, 2))
            unit[i, j] = 1
            out += np.kron((superop @ unit.reshape(-1)).reshape(2, 2), unit) / 2
    return out


@pytest.mark.parametrize("bath", BATHS)
@pytest.mark.parametrize("dt", [1e-6, 0.05, 3.0])
def test_collision_model_equals_the_channel(bath, dt):
    qc = _entangled_with_reference(4)
    qc.compose(collision_circuit(bath, dt), [0, 1, 2], inplace=True)
    add_save_density_matrix(qc, (0, 3), "choi")
    choi = swap_order(np.asarray(run_saved(qc)[0]["choi"]))
    assert np.max(np.abs(choi - _choi_expected(gad_superoperator(*gad_parameters(bath, dt))))) < 1e-12
    # the ancillas are left in |0>, ready for the next collision
    qc2 = _entangled_with_reference(4)
    qc2.compose(collision_circuit(bath, dt), [0, 1, 2], inplace=True)
    add_save_density_matrix(qc2, (1, 2), "ancillas")
    anc = np.asarray(run_saved(qc2)[0]["ancillas"])
    assert abs(anc[0, 0] - 1) < 1e-12


@pytest.mark.parametrize("bath", BATHS[:2])
def test_noise_model_and_direct_error_apply_the_channel_on_the_bath_qubit(bath):
    dt = 0.37
    rho = states.correlated_state(2.0, 1.0, phi_chi=0.3)
    # expected: channel on the bath's qubit of the two-qubit state (qpump order, A first)
    kraus = gad_kraus(*gad_parameters(bath, dt))
    full = [np.kron(k, np.eye(2)) if bath.qubit == 0 else np.kron(np.eye(2), k) for k in kraus]
    expected = sum(k @ rho @ k.conj().T for k in full)
    from qiskit_aer.library import SetDensityMatrix

    noise = BathNoise([bath])
    qc = QuantumCircuit(2)
    qc.append(SetDensityMatrix(swap_order(rho)), [0, 1])
    noise.mark(qc, 0, dt)
    add_save_density_matrix(qc, (0, 1), "rho")
    got = swap_order(np.asarray(run_saved(qc, noise.noise_model)[0]["rho"]))
    assert np.max(np.abs(got - expected)) < 1e-14
    qc = QuantumCircuit(2)
    qc.append(SetDensityMatrix(swap_order(rho)), [0, 1])
    qc.append(bath_error(bath, dt), [bath.qubit])
    add_save_density_matrix(qc, (0, 1), "rho")
    assert np.max(np.abs(swap_order(np.asarray(run_saved(qc)[0]["rho"])) - expected)) < 1e-14
    assert noise.label(0, dt) == noise.label(0, dt)  # registered once per duration
    assert noise.label(0, dt / 2) != noise.label(0, dt)


def test_bad_input_is_rejected():
    with pytest.raises(InvalidParameterError, match="damping = 1.5"):
        gad_kraus(1.5, 0.2)
    with pytest.raises(InvalidParameterError, match="p_excited = -0.1"):
        gad_kraus(0.5, -0.1)
    with pytest.raises(InvalidParameterError, match="dt = -1"):
        gad_parameters(BATHS[0], -1.0)
