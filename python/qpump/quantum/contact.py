"""The DM/XY contact exp(-i t (H_A + H_B + V_AB)) as a two-qubit circuit.

With qubit A = Qiskit qubit 0 and B = qubit 1 (docs/circuits.md, contact circuit):

- V_AB = Omega (e^{i phi_V} |01><10| + h.c.) generates exp(-i t V_AB) = XXPlusYYGate(2 Omega t, phi_V)
  on [q0, q1] (swapping the qubits flips the sign of beta);
- H_A + H_B commutes with V_AB (V_AB conserves the number of excitations), so the free part is
  applied separately and exactly: H_A = sigma_z/2 = -Z/2 in Qiskit's Z = diag(1, -1), hence
  exp(-i t H_A) = RZ(-t) on q0, likewise on q1 (equal as matrices, global phase included).

The circuit is therefore exact for any t; no Trotter step is involved without baths.
"""

from __future__ import annotations

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit.library import XXPlusYYGate

from .. import _validate as check
from ..closed import pair_hamiltonian
from ._aer import swap_order

__all__ = ["contact_circuit", "append_contact", "circuit_operator", "contact_operator"]


def append_contact(qc: QuantumCircuit, t: float, omega_c: float, phi_v: float, *,
                   qubits: tuple[int, int] = (0, 1), free: bool = True) -> QuantumCircuit:
    """Append exp(-i t (H_A + H_B + V_AB)) (or exp(-i t V_AB) with ``free=False``) on ``qubits`` = (A, B).

    Parameters
    ----------
    qc : QuantumCircuit
        The circuit to extend (returned).
    t : float
        Contact time (any real number; negative runs backwards).
    omega_c, phi_v : float
        Coupling strength Omega and phase phi_V of V_AB (Eq. 7).
    qubits : (int, int)
        The circuit qubits playing A and B.
    free : bool
        Include the free evolution RZ(-t) on both qubits.
    """
    t = check.finite("t", t)
    omega_c = check.finite("omega_c", omega_c)
    phi_v = check.finite("phi_v", phi_v)
    a, b = qubits
    theta = 2.0 * omega_c * t
    if theta != 0.0:
        qc.append(XXPlusYYGate(theta, phi_v), [a, b])
    if free and t != 0.0:
        qc.rz(-t, a)
        qc.rz(-t, b)
    return qc


def contact_circuit(t: float, omega_c: float, phi_v: float, *, free: bool = True) -> QuantumCircuit:
    """A two-qubit circuit (q0 = A, q1 = B) implementing exp(-i t (H_A + H_B + V_AB)).

    See :func:`append_contact` for the parameters.
    """
    qc = QuantumCircuit(2, name="contact")
    return append_contact(qc, t, omega_c, phi_v, free=free)


def circuit_operator(circuit: QuantumCircuit) -> np.ndarray:
    """The unitary of a two-qubit circuit (q0 = A, q1 = B) as a 4x4 matrix in qpump's order (2a + b)."""
    from qiskit.quantum_info import Operator

    return swap_order(Operator(circuit).data)


def contact_operator(t: float, omega_c: float, phi_v: float) -> np.ndarray:
    """The reference exp(-i t (H_A + H_B + V_AB)) from qpump.closed (qpump's order), by diagonalisation."""
    energies, vecs = np.linalg.eigh(pair_hamiltonian(omega_c, phi_v))
    return (vecs * np.exp(-1j * t * energies)) @ vecs.conj().T
