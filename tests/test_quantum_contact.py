"""Tests of qpump.quantum.contact: the circuit is exp(-i t (H_A + H_B + V_AB)) exactly (docs/circuits.md)."""

import math

import numpy as np
import pytest
import scipy.linalg
from qiskit import QuantumCircuit
from qiskit.circuit.library import XXPlusYYGate

from qpump import closed, states
from qpump.quantum.contact import append_contact, circuit_operator, contact_circuit, contact_operator

RNG = np.random.default_rng(2022)
RANDOM = [(RNG.uniform(0.01, 2.0), RNG.uniform(-math.pi, math.pi), RNG.uniform(-30.0, 30.0))
          for _ in range(20)]


@pytest.mark.parametrize("omega_c,phi_v,t", RANDOM)
def test_contact_circuit_is_the_exact_propagator(omega_c, phi_v, t):
    u = circuit_operator(contact_circuit(t, omega_c, phi_v))
    exact = scipy.linalg.expm(-1j * t * closed.pair_hamiltonian(omega_c, phi_v))
    assert np.max(np.abs(u - exact)) < 1e-12  # global phase included
    assert np.max(np.abs(contact_operator(t, omega_c, phi_v) - exact)) < 1e-12
    rho = states.correlated_state(2.0, 1.0, phi_chi=0.4)
    evolved = closed.propagate(rho, [t], closed.pair_hamiltonian(omega_c, phi_v))[0]
    assert np.max(np.abs(u @ rho @ u.conj().T - evolved)) < 1e-12


@pytest.mark.parametrize("omega_c,phi_v,t", RANDOM[:5])
def test_xx_plus_yy_is_exp_of_v_and_rz_is_the_free_part(omega_c, phi_v, t):
    coupling = circuit_operator(contact_circuit(t, omega_c, phi_v, free=False))
    v = states.coupling_potential(omega_c, phi_v)
    assert np.max(np.abs(coupling - scipy.linalg.expm(-1j * t * v))) < 1e-12
    free = QuantumCircuit(2)
    free.rz(-t, 0)  # H_A = sigma_z/2 = -Z/2 on qubit 0
    assert np.max(np.abs(circuit_operator(free) - scipy.linalg.expm(-1j * t * states.H_A))) < 1e-12
    # Pitfall: with the qubits swapped, beta must flip sign.
    swapped = QuantumCircuit(2)
    swapped.append(XXPlusYYGate(2 * omega_c * t, -phi_v), [1, 0])
    assert np.max(np.abs(circuit_operator(swapped) - coupling)) < 1e-12


def test_append_contact_on_other_qubits_and_trivial_cases():
    qc = QuantumCircuit(3)
    append_contact(qc, 3.0, 0.2, 0.5, qubits=(1, 2))
    reference = QuantumCircuit(3)
    reference.compose(contact_circuit(3.0, 0.2, 0.5), [1, 2], inplace=True)
    from qiskit.quantum_info import Operator

    assert Operator(qc).equiv(Operator(reference))
    assert len(contact_circuit(0.0, 0.1, 0.3).data) == 0
    assert np.allclose(circuit_operator(contact_circuit(0.0, 0.1, 0.3)), np.eye(4))


def test_isolated_pair_energies_from_the_circuit_follow_eq12():
    TA, TB, omega_c, delta = 2.0, 1.0, 0.1, -math.pi / 2
    rho0 = states.correlated_state(TA, TB)
    times = np.linspace(0, 30, 7)
    e_a = []
    for t in times:
        u = circuit_operator(contact_circuit(t, omega_c, delta))
        e_a.append(np.real(np.trace(states.H_A @ u @ rho0 @ u.conj().T)))
    expected, _ = closed.energies_closed_form(times, TA, TB, omega_c, delta)
    assert np.max(np.abs(np.array(e_a) - expected)) < 1e-12
