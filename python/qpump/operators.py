"""The qubit operators every module shares, in qpump's conventions (docs/conventions.md).

|0> is the ground state and |1> the excited one, so sigma_z = diag(-1, +1) and the qubit Hamiltonian
(gap 1) is H = sigma_z / 2; two-qubit operators act on the product basis {|00>, |01>, |10>, |11>}
with qubit A first (index 2a + b). Kept apart from :mod:`qpump.states` and :mod:`qpump.info` so that
neither has to import the other for them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SIGMA_X", "SIGMA_Y", "SIGMA_Z", "IDENTITY2", "H_QUBIT", "H_A", "H_B"]

SIGMA_X = np.array([[0, 1], [1, 0]], dtype=complex)
SIGMA_Y = np.array([[0, -1j], [1j, 0]], dtype=complex)
SIGMA_Z = np.array([[-1, 0], [0, 1]], dtype=complex)  # |0> = ground: sigma_z = diag(-1, +1)
IDENTITY2 = np.eye(2, dtype=complex)
H_QUBIT = SIGMA_Z / 2
H_A = np.kron(H_QUBIT, IDENTITY2)
H_B = np.kron(IDENTITY2, H_QUBIT)
