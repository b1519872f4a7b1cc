"""Shared helpers of the Qiskit layer: qubit-order conversion and exact Aer density-matrix runs.

Qiskit is little-endian: a two-qubit density matrix of qubits (q0, q1) is indexed by q0 + 2 q1.
qpump indexes by 2a + b with qubit A first. With A = q0 and B = q1 the two orders differ by the
swap of the indices 1 and 2, a permutation that is its own inverse.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from qiskit import QuantumCircuit

_SWAP_ORDER = np.array([0, 2, 1, 3])


def swap_order(rho: np.ndarray) -> np.ndarray:
    """Convert a two-qubit matrix (or a batch) between Qiskit's order (q0 + 2 q1) and qpump's (2a + b)."""
    arr = np.asarray(rho)
    return arr[..., _SWAP_ORDER, :][..., :, _SWAP_ORDER]


def swap_vector(psi: np.ndarray) -> np.ndarray:
    """Convert a two-qubit state vector between Qiskit's and qpump's order."""
    return np.asarray(psi)[..., _SWAP_ORDER]


def simulator(noise_model=None):
    """An Aer density-matrix simulator in double precision (optionally with a noise model)."""
    from qiskit_aer import AerSimulator

    return AerSimulator(method="density_matrix", precision="double", noise_model=noise_model,
                        max_parallel_threads=1)


def run_saved(circuits: QuantumCircuit | Sequence[QuantumCircuit], noise_model=None) -> list[dict]:
    """Run Aer-only circuits (with save instructions) and return each one's saved data dict."""
    single = isinstance(circuits, QuantumCircuit)
    batch = [circuits] if single else list(circuits)
    from qiskit import transpile

    sim = simulator(noise_model)
    # Decompose gates Aer does not know (e.g. xx_plus_yy) without optimising anything away.
    batch = transpile(batch, sim, optimization_level=0)
    result = sim.run(batch, shots=1).result()
    if not result.success:
        raise RuntimeError(f"Aer run failed: {result.status}")
    return [result.data(k) for k in range(len(batch))]


def add_save_density_matrix(circuit: QuantumCircuit, qubits: Sequence[int], label: str) -> None:
    """Append Aer's save_density_matrix of ``qubits`` (an Aer-only instruction) to ``circuit``."""
    from qiskit_aer.library import SaveDensityMatrix

    circuit.append(SaveDensityMatrix(len(qubits), label=label), list(qubits))


def density_matrices_of(circuits: Sequence[QuantumCircuit],
                        system: Sequence[int] = (0, 1)) -> list[np.ndarray]:
    """The exact reduced density matrices of the qubits ``system`` = (A, B) at the end of physics circuits
    (final measurements removed), simulated on Aer in one job and returned in qpump's order (4x4 each)."""
    batch = []
    for qc in circuits:
        aer = qc.remove_final_measurements(inplace=False) if qc.num_clbits else qc.copy()
        add_save_density_matrix(aer, system, "rho")
        batch.append(aer)
    return [swap_order(np.asarray(d["rho"])) for d in run_saved(batch)]
