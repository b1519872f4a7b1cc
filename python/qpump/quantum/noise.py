"""The baths of the local master equation as Aer noise: generalized amplitude damping and a collision model.

Rates (the same as :mod:`qpump.lindblad`): a Drude-Lorentz bath J(w) = 2 kappa gamma w / (w^2 + gamma^2)
coupled through sigma_x to a qubit of unit gap gives, in the golden rule,

    gamma_down = 2 J(1) (n + 1),   gamma_up = 2 J(1) n,   n = 1 / (e^{1/T} - 1).

Over a time dt with no Hamiltonian, the dissipator gamma_down D[sigma_-] + gamma_up D[sigma_+] is exactly
the generalized amplitude damping (GAD) channel with

    damping g = 1 - exp(-(gamma_down + gamma_up) dt),   excited population p = gamma_up / (gamma_down +
    gamma_up) = 1 / (1 + e^{1/T})  (the bath's Gibbs value),

whose Kraus operators (basis |0> = ground, |1> = excited, the same in Qiskit and qpump) are

    K0 = sqrt(1-p) [[1, 0], [0, sqrt(1-g)]],   K1 = sqrt(1-p) [[0, sqrt(g)], [0, 0]],
    K2 = sqrt(p)   [[sqrt(1-g), 0], [0, 1]],   K3 = sqrt(p)   [[0, 0], [sqrt(g), 0]].

They are passed to Aer as they are: Qiskit's amplitude_damping_error canonicalises Kraus sets by default
and drops terms below ~1e-8, which biases small time steps (docs/circuits.md, pitfalls).

The dissipator commutes with the free evolution, -i[H_A + H_B, .], so with V_AB off the channel and
RZ(-dt) compose exactly; with V_AB on they are split symmetrically (Strang, see :mod:`.aer_pump`).

Collision model (runs on hardware): a fresh bath ancilla in the Gibbs populations (1 - p, p), made by
RY(2 asin sqrt p) on the ancilla and a CX onto a purifying qubit (which dephases the ancilla), exchanges
excitations with the system qubit by the partial swap XXPlusYYGate(theta, 0), theta = 2 asin sqrt(g),
then both are reset. The partial swap conserves excitations, so for ancilla |0> it is amplitude damping
of strength sin^2(theta/2) = g, for ancilla |1> amplitude pumping of the same strength, and the mixture
is exactly GAD(g, p).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit.library import UnitaryGate, XXPlusYYGate

from .. import _validate as check
from ..errors import InvalidParameterError
from ..lindblad import LocalBath
from ..states import excited_population

__all__ = [
    "gad_kraus",
    "gad_parameters",
    "gad_superoperator",
    "bath_error",
    "BathNoise",
    "append_collision",
    "collision_circuit",
]


def _unit_interval(name: str, value: float) -> float:
    x = check.finite(name, value)
    if not 0.0 <= x <= 1.0:
        raise InvalidParameterError(f"{name} = {x} is outside the allowed range [0, 1]")
    return x


def gad_kraus(damping: float, p_excited: float) -> list[np.ndarray]:
    """The four Kraus operators of generalized amplitude damping (module docstring).

    Parameters
    ----------
    damping : float
        g in [0, 1].
    p_excited : float
        Excited population of the fixed point, in [0, 1].
    """
    g, p = _unit_interval("damping", damping), _unit_interval("p_excited", p_excited)
    keep, move = math.sqrt(1.0 - g), math.sqrt(g)
    lo, hi = math.sqrt(1.0 - p), math.sqrt(p)
    return [
        lo * np.array([[1.0, 0.0], [0.0, keep]], dtype=complex),
        lo * np.array([[0.0, move], [0.0, 0.0]], dtype=complex),
        hi * np.array([[keep, 0.0], [0.0, 1.0]], dtype=complex),
        hi * np.array([[0.0, 0.0], [move, 0.0]], dtype=complex),
    ]


def gad_parameters(bath: LocalBath, dt: float) -> tuple[float, float]:
    """(g, p) of the GAD channel equal to bath's dissipator acting for ``dt`` >= 0.

    g = 1 - exp(-(gamma_down + gamma_up) dt) (computed with expm1, accurate for small steps) and
    p = 1 / (1 + e^{1/T}).
    """
    dt = check.non_negative("dt", dt)
    down, up = bath.rates
    return -math.expm1(-(down + up) * dt), excited_population(bath.T)


def gad_superoperator(damping: float, p_excited: float) -> np.ndarray:
    """The GAD channel as a 4x4 superoperator on row-major vec(rho) (for checks)."""
    return np.sum([np.kron(k, k.conj()) for k in gad_kraus(damping, p_excited)], axis=0)


def bath_error(bath: LocalBath, dt: float):
    """The Aer QuantumError of ``bath`` acting for ``dt``, from the explicit GAD Kraus operators."""
    from qiskit.quantum_info import Kraus
    from qiskit_aer.noise import QuantumError

    return QuantumError(Kraus(gad_kraus(*gad_parameters(bath, dt))))


_DIRECTIVES = ("kraus", "qerror_loc", "quantum_channel", "roerror", "superop", "delay", "reset")


class BathNoise:
    """An Aer NoiseModel whose errors are the baths' GAD channels, attached to marker instructions.

    A marker is a labelled single-qubit identity (a ``unitary`` gate); the noise model applies the
    bath channel of the right duration right after it. Markers are Aer-only: they do not belong in
    exported circuits.

    Parameters
    ----------
    baths : sequence of LocalBath
        One bath per qubit (``bath.qubit`` is the Qiskit qubit it acts on: 0 = A, 1 = B).
    """

    def __init__(self, baths: Sequence[LocalBath]):
        from qiskit_aer.noise import NoiseModel

        from ._aer import simulator

        self.baths = list(baths)
        self._labels: dict[tuple[int, float], str] = {}
        # Keep every gate Aer simulates natively (a bare NoiseModel would narrow the basis to
        # id/rz/sx/cx and make Aer translate the circuits first).
        native = [g for g in simulator().configuration().basis_gates if g not in _DIRECTIVES]
        self.noise_model = NoiseModel(basis_gates=native)

    def label(self, index: int, dt: float) -> str:
        """The marker label of bath ``index`` acting for ``dt`` (registered on first use)."""
        key = (index, float(dt))
        if key not in self._labels:
            bath = self.baths[index]
            name = f"bath{index}_step{len(self._labels)}"
            self.noise_model.add_quantum_error(bath_error(bath, dt), name, [bath.qubit])
            self._labels[key] = name
        return self._labels[key]

    def mark(self, qc: QuantumCircuit, index: int, dt: float, qubit: int | None = None) -> None:
        """Append the marker of bath ``index`` acting for ``dt`` (on ``qubit``, default the bath's own)."""
        q = self.baths[index].qubit if qubit is None else qubit
        qc.append(UnitaryGate(np.eye(2), label=self.label(index, dt)), [q])


def append_collision(qc: QuantumCircuit, damping: float, p_excited: float, system: int, ancilla: int,
                     purifier: int) -> QuantumCircuit:
    """Append one collision with a fresh Gibbs ancilla: prepare, partial swap, reset (module docstring).

    The three qubits must start (and are left) with ``ancilla`` and ``purifier`` in |0>; the reduced
    channel on ``system`` is GAD(damping, p_excited).
    """
    g, p = _unit_interval("damping", damping), _unit_interval("p_excited", p_excited)
    if p > 0.0:
        qc.ry(2.0 * math.asin(math.sqrt(p)), ancilla)
        qc.cx(ancilla, purifier)
    if g > 0.0:
        qc.append(XXPlusYYGate(2.0 * math.asin(math.sqrt(g)), 0.0), [system, ancilla])
    qc.reset(ancilla)
    if p > 0.0:
        qc.reset(purifier)
    return qc


def collision_circuit(bath: LocalBath, dt: float) -> QuantumCircuit:
    """A three-qubit circuit (0 = system qubit, 1 = bath ancilla, 2 = purifier): one collision of ``bath``
    lasting ``dt``, equal to the GAD channel of :func:`bath_error` on qubit 0."""
    qc = QuantumCircuit(3, name="collision")
    return append_collision(qc, *gad_parameters(bath, dt), system=0, ancilla=1, purifier=2)
