"""Weak-coupling local master equation of the two qubits, solved by exact exponentiation.

Each qubit K exchanges excitations with its own Drude-Lorentz bath (coupling sigma_x, spectral
density J(w) = 2 kappa gamma w / (w^2 + gamma^2)). The golden-rule rates at the qubit gap w = 1
are (docs/pump.md, local master equation)

    gamma_down = 2 J(1) (n + 1),   gamma_up = 2 J(1) n,   n = 1 / (e^{1/T} - 1),

with dissipators D_K[rho] = gamma_down D[sigma_-^K] rho + gamma_up D[sigma_+^K] rho. This is what
the Aer noise model of the Qiskit layer emulates. The heat current INTO bath K is
j_K = -Tr(H_S D_K[rho]) with the current system Hamiltonian H_S, so that the first law closes
exactly (the unitary part conserves H_S). Heat is integrated exactly over each step with the
augmented exponential exp([[L, 0], [1, 0]] h), whose lower-left block is int_0^h e^{L s} ds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from . import _validate as check
from .errors import InvalidParameterError
from .states import IDENTITY2

__all__ = [
    "SIGMA_MINUS",
    "spectral_density",
    "bose_occupation",
    "transition_rates",
    "LocalBath",
    "LindbladSolver",
    "LindbladResult",
    "strang_split_run",
]

SIGMA_MINUS = np.array([[0, 1], [0, 0]], dtype=complex)  # |0><1|: lowers the excited state |1>


def spectral_density(w: float, kappa: float, gamma: float) -> float:
    """Drude-Lorentz J(w) = 2 kappa gamma w / (w^2 + gamma^2)."""
    return 2.0 * kappa * gamma * w / (w * w + gamma * gamma)


def bose_occupation(T: float, w: float = 1.0) -> float:
    """n(w) = 1 / (e^{w/T} - 1); 0 at T -> 0."""
    T = check.positive("T", T, allow_inf=False)
    return 1.0 / math.expm1(w / T)


def transition_rates(kappa: float, gamma: float, T: float) -> tuple[float, float]:
    """(gamma_down, gamma_up) = (2 J(1)(n + 1), 2 J(1) n) of a qubit with unit gap."""
    kappa = check.non_negative("kappa", kappa)
    gamma = check.positive("gamma", gamma)
    n = bose_occupation(T)
    j1 = spectral_density(1.0, kappa, gamma)
    return 2.0 * j1 * (n + 1.0), 2.0 * j1 * n


@dataclass(frozen=True)
class LocalBath:
    """A weak-coupling bath on one qubit (0 = A, 1 = B) of a two-qubit system."""

    qubit: int
    kappa: float
    gamma: float
    T: float

    def __post_init__(self) -> None:
        if self.qubit not in (0, 1):
            raise InvalidParameterError(f"qubit = {self.qubit!r} must be 0 (A) or 1 (B)")
        transition_rates(self.kappa, self.gamma, self.T)  # validates

    @property
    def rates(self) -> tuple[float, float]:
        """(gamma_down, gamma_up)."""
        return transition_rates(self.kappa, self.gamma, self.T)

    def jump_operators(self) -> list[np.ndarray]:
        """sqrt(gamma_down) sigma_- and sqrt(gamma_up) sigma_+ on the bath's qubit (4x4)."""
        down, up = self.rates
        embed = (lambda op: np.kron(op, IDENTITY2)) if self.qubit == 0 else (
            lambda op: np.kron(IDENTITY2, op))
        return [math.sqrt(down) * embed(SIGMA_MINUS), math.sqrt(up) * embed(SIGMA_MINUS.T)]


def _commutator_superop(h: np.ndarray) -> np.ndarray:
    # Row-major vec: vec(A X B) = (A kron B^T) vec(X).
    eye = np.eye(h.shape[0])
    return -1j * (np.kron(h, eye) - np.kron(eye, h.T))


def _dissipator_superop(ops: list[np.ndarray]) -> np.ndarray:
    d = ops[0].shape[0]
    eye = np.eye(d)
    out = np.zeros((d * d, d * d), dtype=complex)
    for op in ops:
        ldl = op.conj().T @ op
        out += np.kron(op, op.conj()) - 0.5 * (np.kron(ldl, eye) + np.kron(eye, ldl.T))
    return out


@dataclass(frozen=True)
class LindbladResult:
    """Trajectory of the local master equation at the requested times."""

    times: np.ndarray
    rho: np.ndarray  # (n_t, 4, 4)
    heat_current: np.ndarray  # (n_t, n_baths): rate of energy flow INTO each bath
    heat: np.ndarray  # (n_t, n_baths): Q_K(t) = -int_0^t j_K, energy drawn FROM each bath
    final_state: np.ndarray


class LindbladSolver:
    """The two-qubit local master equation with piecewise-constant system Hamiltonian.

    Parameters
    ----------
    H : (4, 4) array
        System Hamiltonian (Hermitian).
    baths : list of LocalBath
    """

    def __init__(self, H: np.ndarray, baths: list[LocalBath]):
        self._baths = list(baths)
        self._dissipators = [_dissipator_superop(b.jump_operators()) for b in self._baths]
        self.set_hamiltonian(H)

    @property
    def baths(self) -> list[LocalBath]:
        """The baths, in the order of the heat-current columns."""
        return list(self._baths)

    def set_hamiltonian(self, H: np.ndarray) -> None:
        """Replace the system Hamiltonian (the state carries over between run calls)."""
        self._h = check.hermitian("H", H, 4)
        self._generator = _commutator_superop(self._h) + sum(self._dissipators)
        # Row K of this (n_baths, 16) map gives j_K = -Tr(H_S D_K[rho]) from vec(rho).
        h_row = self._h.T.reshape(-1)  # Tr(H X) = sum_ij H_ji X_ij
        self._current_map = np.array([-(h_row @ d) for d in self._dissipators])

    def heat_current(self, rho: np.ndarray) -> np.ndarray:
        """Rate of energy flow into each bath, -Tr(H_S D_K[rho])."""
        return np.real(self._current_map @ np.asarray(rho, dtype=complex).reshape(-1))

    def steady_state(self) -> np.ndarray:
        """The unique steady state of the current generator (trace one)."""
        gen = self._generator.copy()
        gen[0, :] = np.eye(4).reshape(-1)  # replace one equation by the trace condition
        rhs = np.zeros(16, dtype=complex)
        rhs[0] = 1.0
        rho = np.linalg.solve(gen, rhs).reshape(4, 4)
        return (rho + rho.conj().T) / 2

    def run(self, rho0: np.ndarray, times: np.ndarray) -> LindbladResult:
        """Propagate ``rho0`` (given at times[0]) to every time in the increasing array ``times``."""
        rho0 = check.square_matrix("rho0", rho0, 4)
        t = np.asarray(times, dtype=float)
        if t.ndim != 1 or t.size < 1 or not np.all(np.isfinite(t)) or np.any(np.diff(t) < 0):
            raise InvalidParameterError("times must be a non-empty, finite, non-decreasing 1-d array")
        n = 16
        aug = np.zeros((2 * n, 2 * n), dtype=complex)
        aug[:n, :n] = self._generator
        aug[n:, :n] = np.eye(n)
        vec = rho0.reshape(-1).astype(complex)
        rhos = np.empty((t.size, 4, 4), dtype=complex)
        heat = np.zeros((t.size, len(self._baths)))
        rhos[0] = rho0
        cache: dict[float, tuple[np.ndarray, np.ndarray]] = {}
        for i in range(1, t.size):
            h = float(t[i] - t[i - 1])
            key = round(h, 15)
            if key not in cache:
                block = scipy.linalg.expm(aug * h)
                cache[key] = (block[:n, :n], block[n:, :n])
            prop, integral = cache[key]
            heat[i] = heat[i - 1] - np.real(self._current_map @ (integral @ vec))
            vec = prop @ vec
            rhos[i] = vec.reshape(4, 4)
        currents = np.real(np.einsum("kn,tn->tk", self._current_map, rhos.reshape(t.size, -1)))
        return LindbladResult(times=t, rho=rhos, heat_current=currents, heat=heat,
                              final_state=rhos[-1].copy())


def strang_split_run(rho0: np.ndarray, H: np.ndarray, baths: list[LocalBath], dt: float,
                     n_steps: int) -> LindbladResult:
    """The local master equation by symmetric (Strang) splitting: the reference of the Aer circuits.

    Each step of length ``dt`` applies, in this order, e^{D_K dt/2} for every bath K (in the order of
    ``baths``), the exact unitary e^{-i H dt}, and again e^{D_K dt/2} for every bath; each factor is
    the exact exponential of its superoperator. The splitting error of the state is O(dt^2) after a
    fixed time (second order), zero when H commutes with the baths' dissipators (V_AB = 0).

    Heat drawn from bath K is the energy Tr(H (rho_after - rho_before)) that each application of
    e^{D_K dt/2} adds to the system, summed (the unitary conserves H exactly, so the first law closes).

    Parameters
    ----------
    rho0 : (4, 4) array
        State at time 0.
    H : (4, 4) array
        Constant system Hamiltonian.
    baths : list of LocalBath
    dt : float
        Step, > 0.
    n_steps : int
        Number of steps, >= 0.

    Returns
    -------
    LindbladResult
        At the times k dt, k = 0..n_steps: the split-step state, the exact heat currents
        -Tr(H D_K[rho]) of that state, and the cumulative heat drawn from each bath.
    """
    rho0 = check.square_matrix("rho0", rho0, 4)
    h = check.hermitian("H", H, 4)
    dt = check.positive("dt", dt)
    n_steps = check.non_negative_int("n_steps", n_steps)
    dissipators = [_dissipator_superop(b.jump_operators()) for b in baths]
    halves = [scipy.linalg.expm(d * (dt / 2)) for d in dissipators]
    unitary = scipy.linalg.expm(_commutator_superop(h) * dt)
    energy = h.T.reshape(-1)  # Tr(H X) = energy @ vec(X)
    rhos = np.empty((n_steps + 1, 4, 4), dtype=complex)
    heat = np.zeros((n_steps + 1, len(baths)))
    vec = rho0.reshape(-1).astype(complex)
    rhos[0] = rho0
    for k in range(1, n_steps + 1):
        gained = np.zeros(len(baths))
        for stage in (0, 1):
            if stage == 1:
                vec = unitary @ vec
            for j, half in enumerate(halves):
                after = half @ vec
                gained[j] += np.real(energy @ (after - vec))
                vec = after
        heat[k] = heat[k - 1] + gained
        rhos[k] = vec.reshape(4, 4)
    current_map = np.array([-(energy @ d) for d in dissipators]).reshape(len(baths), 16)
    currents = np.real(np.einsum("kn,tn->tk", current_map, rhos.reshape(n_steps + 1, -1)))
    return LindbladResult(times=dt * np.arange(n_steps + 1), rho=rhos, heat_current=currents,
                          heat=heat, final_state=rhos[-1].copy())
