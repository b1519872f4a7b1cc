"""Circuits that prepare the correlated two-qubit states of the paper (Eq. 3, 8, 10).

Qubit A is Qiskit qubit 0, qubit B is qubit 1; ancillas follow. Every admissible X state
rho^0 = rho_A^0 (x) rho_B^0 + chi (Eq. 8) is block diagonal: populations d_1 = lambda_1 + chi_11 of
|00> and d_4 = lambda_4 + chi_11 of |11>, and in the one-excitation block {|01>, |10>} the 2x2 matrix
[[d_2, c], [c*, d_3]] with d_2 = lambda_2 - chi_11, d_3 = lambda_3 - chi_11, c = chi_23. Its spectral
decomposition is therefore

    rho^0 = d_1 |00><00| + d_4 |11><11| + mu_+ |v_+><v_+| + mu_- |v_-><v_-|,
    v_+ = cos(t) |01> + sin(t) e^{-i phi_chi} |10>,  v_- = -sin(t) |01> + cos(t) e^{-i phi_chi} |10>,
    mu_+/- = (d_2 + d_3)/2 +/- sqrt(((d_2 - d_3)/2)^2 + |c|^2),  tan(2t) = 2|c| / (d_2 - d_3).

Two ways to realise it:

- ``method="ancilla"``: purify with two ancillas (a1, a0). The ancillas are put into
  sum_k sqrt(w_k) |k> (one CX), three CX copy the index into the system basis states
  (a1 a0) -> |00>, |11>, |01>, |10>, and one Givens rotation (XX+YY, two CX) turns |01>, |10> into
  v_+, v_- (up to a phase of v_-, irrelevant in the mixture). When d_4 = mu_- = 0, which is the case
  of the optimal state of Eq. 10 (rank 2), the ancilla a0 is idle and is dropped: one ancilla,
  three CX.
- ``method="mixture"``: no ancilla; one two-qubit circuit per non-zero eigenvalue (a branch), to be
  run with a share of the shots equal to its weight. |00> needs no gate, |11> two X, v_+/- one CX.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit.library import XXPlusYYGate

from ..errors import InvalidParameterError
from ..states import XStateCorrelation, correlation_matrix

__all__ = [
    "BASIS_GATES",
    "Branch",
    "Preparation",
    "SpectralForm",
    "spectral_form",
    "prepare_state",
    "prepare_optimal_state",
    "preparation_of",
    "cx_count",
]

BASIS_GATES = ("cx", "rz", "sx", "x")
METHODS = ("ancilla", "mixture")
# Eigenvalues below this (relative to 1) are round-off of a rank-deficient state and are dropped.
_ZERO_WEIGHT = 1e-15


@dataclass(frozen=True)
class SpectralForm:
    """Spectral decomposition of an X state (see the module docstring).

    Attributes
    ----------
    weights : (4,) array
        (d_1, d_4, mu_+, mu_-): weights of |00>, |11>, v_+, v_-.
    angle : float
        The mixing angle t of v_+ = cos(t)|01> + sin(t) e^{-i phi} |10>.
    phase : float
        phi = phi_chi, the phase of chi_23.
    """

    weights: np.ndarray
    angle: float
    phase: float

    def vectors(self) -> np.ndarray:
        """The four eigenvectors as rows, in qpump's order (index 2a + b)."""
        c, s, e = math.cos(self.angle), math.sin(self.angle), np.exp(-1j * self.phase)
        return np.array([[1, 0, 0, 0], [0, 0, 0, 1], [0, c, s * e, 0], [0, -s, c * e, 0]], dtype=complex)

    def state(self) -> np.ndarray:
        """sum_k w_k |v_k><v_k| (equals the X state it was built from)."""
        vecs = self.vectors()
        return np.einsum("k,ki,kj->ij", self.weights, vecs, vecs.conj())


def spectral_form(correlation: XStateCorrelation) -> SpectralForm:
    """The spectral decomposition of rho^0 = product + chi for an X-state correlation (module docstring)."""
    lam = correlation.lambdas
    chi11, c = correlation.chi11, correlation.chi23_abs
    d1, d2, d3, d4 = lam[0] + chi11, lam[1] - chi11, lam[2] - chi11, lam[3] + chi11
    mean, half = (d2 + d3) / 2, (d2 - d3) / 2
    radius = math.hypot(half, c)
    mu_plus = mean + radius
    # mu_- = (d2 d3 - c^2) / mu_+ avoids the cancellation in mean - radius (exactly 0 at Eq. 10).
    mu_minus = (d2 * d3 - c * c) / mu_plus if mu_plus > 0 else 0.0
    weights = np.array([d1, d4, mu_plus, mu_minus], dtype=float)
    weights[np.abs(weights) < _ZERO_WEIGHT] = 0.0
    weights = np.clip(weights, 0.0, None)
    return SpectralForm(weights=weights, angle=0.5 * math.atan2(2 * c, d2 - d3),
                        phase=correlation.phi_chi)


@dataclass(frozen=True)
class Branch:
    """One circuit of a preparation and the probability with which it is run.

    Attributes
    ----------
    weight : float
        The share of the shots (the probability of this branch in the mixture).
    circuit : QuantumCircuit
        A measurement-free circuit; qubit 0 = A, qubit 1 = B, higher qubits are ancillas.
    """

    weight: float
    circuit: QuantumCircuit


@dataclass(frozen=True)
class Preparation:
    """A way to prepare rho^0 on qubits 0 (A) and 1 (B) of each branch circuit.

    Attributes
    ----------
    method : {"ancilla", "mixture"}
    correlation : XStateCorrelation
        The correlation chi whose state rho^0 = rho_A^0 (x) rho_B^0 + chi is prepared.
    branches : tuple of Branch
        One branch of weight 1 for ``"ancilla"``; one per non-zero eigenvalue for ``"mixture"``.
    """

    method: str
    correlation: XStateCorrelation
    branches: tuple[Branch, ...]

    @property
    def num_ancillas(self) -> int:
        """Number of ancilla qubits (beyond A and B) of the widest branch."""
        return max(b.circuit.num_qubits for b in self.branches) - 2

    def target_state(self) -> np.ndarray:
        """The state rho^0 that the preparation realises, from qpump.states (qpump order)."""
        return self.correlation.state()

    def cx_counts(self, optimization_level: int = 3) -> list[int]:
        """CX count of each branch after transpiling to ['cx', 'rz', 'sx', 'x']."""
        return [cx_count(b.circuit, optimization_level) for b in self.branches]


def _ry_angle(cos_part: float, sin_part: float) -> float:
    return 2.0 * math.atan2(sin_part, cos_part)


def _odd_sector_branch(angle: float, phase: float) -> QuantumCircuit:
    """cos(angle)|01> + sin(angle) e^{-i phase}|10> from |00> with one CX."""
    qc = QuantumCircuit(2, name="branch")
    qc.ry(2.0 * angle, 0)  # A: cos|0> + sin|1>
    qc.cx(0, 1)  # cos|00> + sin|11>
    qc.x(1)  # cos|01> + sin|10>
    if phase != 0.0:
        qc.p(-phase, 0)  # phase e^{-i phase} on A = 1
    return qc


def _mixture(form: SpectralForm) -> tuple[Branch, ...]:
    branches = []
    for k, w in enumerate(form.weights):
        if w <= 0.0:
            continue
        if k == 0:
            qc = QuantumCircuit(2, name="branch")
        elif k == 1:
            qc = QuantumCircuit(2, name="branch")
            qc.x([0, 1])
        else:
            qc = _odd_sector_branch(form.angle + (math.pi / 2 if k == 3 else 0.0), form.phase)
        branches.append(Branch(float(w), qc))
    return tuple(branches)


def _orthogonal_on(qc: QuantumCircuit, matrix: np.ndarray, qubit: int) -> None:
    """Append the real orthogonal 2x2 ``matrix`` (columns = images of |0>, |1>) on ``qubit``."""
    if np.linalg.det(matrix) < 0:
        qc.z(qubit)  # matrix = R(angle) diag(1, -1)
        matrix = matrix @ np.diag([1.0, -1.0])
    qc.ry(_ry_angle(matrix[0, 0], matrix[1, 0]), qubit)


def _ancilla_register_state(qc: QuantumCircuit, weights: np.ndarray, a1: int, a0: int | None) -> None:
    """Put the ancillas into sum sqrt(w[2 a1 + a0]) |a1 a0> (one CX: Schmidt decomposition)."""
    amps = np.sqrt(weights).reshape(2, 2)  # rows a1, columns a0
    if a0 is None:
        qc.ry(_ry_angle(amps[0, 0], amps[1, 0]), a1)
        return
    u, s, vt = np.linalg.svd(amps)
    qc.ry(_ry_angle(s[0], s[1]), a1)  # s0|0> + s1|1> on a1
    qc.cx(a1, a0)  # s0|00> + s1|11>
    _orthogonal_on(qc, u, a1)  # |i>_a1 -> u[:, i]
    _orthogonal_on(qc, vt.T, a0)  # |i>_a0 -> v[:, i]


def _givens(qc: QuantumCircuit, form: SpectralForm) -> None:
    """|01> -> v_+, |10> -> e^{i phi} v_- on (A, B): XXPlusYYGate(2t, phi - pi/2)."""
    if form.angle != 0.0:
        qc.append(XXPlusYYGate(2.0 * form.angle, form.phase - math.pi / 2), [0, 1])


def _ancilla(form: SpectralForm) -> tuple[Branch, ...]:
    w = form.weights  # (|00>, |11>, v_+, v_-) are the ancilla indices (a1 a0) = 00, 01, 10, 11
    register = np.array([w[0], w[1], w[2], w[3]])
    need_a0 = w[1] > 0.0 or w[3] > 0.0
    qc = QuantumCircuit(4 if need_a0 else 3, name="prepare")
    a1, a0 = 2, (3 if need_a0 else None)
    _ancilla_register_state(qc, register, a1, a0)
    qc.cx(a1, 1)  # odd sector: B = 1
    if a0 is not None:
        qc.cx(a0, 0)  # (a1, a0) = (0, 1) -> |11>, (1, 1) -> |10>
        qc.cx(a0, 1)
    _givens(qc, form)
    return (Branch(1.0, qc),)


def prepare_state(
    TA: float,
    TB: float,
    chi11: float | None = None,
    chi23: float | None = None,
    phi_chi: float = 0.0,
    method: str = "ancilla",
    *,
    require_entangled: bool = False,
) -> Preparation:
    """Circuits preparing rho^0 = rho_A^0 (x) rho_B^0 + chi for an admissible X-state chi (Eq. 8).

    Parameters
    ----------
    TA, TB : float
        Temperatures of qubits A and B, in (0, inf].
    chi11, chi23, phi_chi : float
        The correlation (see :func:`qpump.states.correlation_matrix`); without chi11 and chi23 the
        optimal correlation of Eq. 10.
    method : {"ancilla", "mixture"}
        Purification with ancillas (one for the rank-2 optimal state, else two) or a mixture of
        ancilla-free branches.
    require_entangled : bool
        Also demand that the state be entangled (condition 9c).

    Raises
    ------
    InvalidParameterError, InvalidStateError
        Unknown method or an inadmissible correlation (the message names the condition).
    """
    if method not in METHODS:
        raise InvalidParameterError(f"method = {method!r} must be one of {', '.join(METHODS)}")
    corr = correlation_matrix(TA, TB, chi11, chi23, phi_chi, require_entangled=require_entangled)
    return preparation_of(corr, method)


def preparation_of(correlation: XStateCorrelation, method: str = "ancilla") -> Preparation:
    """The :class:`Preparation` of a validated correlation (see :func:`prepare_state`)."""
    if method not in METHODS:
        raise InvalidParameterError(f"method = {method!r} must be one of {', '.join(METHODS)}")
    form = spectral_form(correlation)
    branches = _ancilla(form) if method == "ancilla" else _mixture(form)
    return Preparation(method=method, correlation=correlation, branches=branches)


def prepare_optimal_state(TA: float, TB: float, phi_chi: float = 0.0, method: str = "ancilla") -> Preparation:
    """Circuits preparing the optimal correlated state of Eq. 10 (rank 2: one ancilla, or two branches)."""
    return prepare_state(TA, TB, phi_chi=phi_chi, method=method)


def cx_count(circuit: QuantumCircuit, optimization_level: int = 3, seed: int = 11) -> int:
    """Number of CX gates after transpiling ``circuit`` to the basis ['cx', 'rz', 'sx', 'x']."""
    from qiskit import transpile

    out = transpile(circuit, basis_gates=list(BASIS_GATES), optimization_level=optimization_level,
                    seed_transpiler=seed)
    return int(out.count_ops().get("cx", 0))

