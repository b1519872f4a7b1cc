"""The isolated pair: two qubits coupled by V_AB with no baths (paper Sec. III, App. B).

Two routes that must agree: the closed forms of App. B (derived again here for any X-state
correlation of Eq. 8) and a numerical propagator that exponentiates any two-qubit Hamiltonian
exactly. Phase convention of the command line and of :func:`run_closed`: phi_chi = 0 and
phi_V = delta, so that delta = phi_V - phi_chi.

Three misprints of App. B are corrected here (each pinned by a test against the propagator):
rho_11(t) = lambda_1 - lambda_4 (not lambda_1 - lambda_2); E_{A/B}(t) = [lambda_4 - lambda_1
+/- Delta_AB(t)] / 2, which is what Eq. 12 follows from (the printed B3 has the opposite signs);
and the Delta_AB(0) term of rho_23 in B2c enters with a plus sign,
rho_23 = e^{i phi_V} [C0 cos(delta) - i (C0 sin(delta) cos(2 Omega t) + Delta_AB(0) sin(2 Omega t))] / 2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from . import _validate as check
from . import invariants
from .errors import InvalidParameterError, InvariantViolationError
from .info import concurrence, local_energies, mutual_information, partial_trace, relative_entropy
from .info import von_neumann_entropy as entropy
from .states import (
    H_A,
    H_B,
    XStateCorrelation,
    coupling_potential,
    excited_population,
    gibbs_state,
    optimal_correlation,
)

__all__ = [
    "sed_initial",
    "concurrence_initial",
    "theta",
    "tau_peak",
    "sed_closed_form",
    "sed_eq12",
    "initial_trend",
    "rho_closed_form",
    "energies_closed_form",
    "pair_hamiltonian",
    "propagate",
    "Trajectory",
    "trajectory",
    "ClosedRun",
    "run_closed",
]


def sed_initial(TA: float, TB: float) -> float:
    """Delta_AB(0) = E_A(0) - E_B(0) of the locally Gibbs pair (independent of chi)."""
    return excited_population(TA) - excited_population(TB)


def concurrence_initial(TA: float, TB: float) -> float:
    """C0 = 2 sqrt(lambda_4), the largest concurrence of an admissible state (Eq. 11)."""
    return 2.0 * math.sqrt(excited_population(TA) * excited_population(TB))


def _c_sin_delta(correlation: XStateCorrelation, delta: float) -> float:
    # 2 |chi_23| plays the role of C0 for any X-state correlation; it equals C0 at the optimum.
    return 2.0 * correlation.chi23_abs * math.sin(delta)


def theta(TA: float, TB: float, delta: float) -> float:
    """The phase theta = atan(C0 sin(delta) / Delta_AB(0)) of Eq. 13, |theta| <= pi/2.

    At T_A = T_B (Delta_AB(0) = 0) the limit sign(C0 sin(delta)) pi/2 is returned.
    """
    delta = check.finite("delta", delta)
    d0 = sed_initial(TA, TB)
    y = concurrence_initial(TA, TB) * math.sin(delta)
    if d0 == 0.0:
        return math.copysign(math.pi / 2, y) if y != 0.0 else 0.0
    return math.atan(y / d0)


def tau_peak(TA: float, TB: float, omega_c: float, delta: float) -> float:
    """The time |theta| / (2 Omega) of the first SED maximum (Sec. III).

    This is the anomalous peak when the SED first rises (C0 > 0, -pi < delta < 0, T_A > T_B).
    """
    omega_c = check.positive("omega_c", omega_c)
    return abs(theta(TA, TB, delta)) / (2.0 * omega_c)


def sed_closed_form(
    t: np.ndarray | float,
    TA: float,
    TB: float,
    omega_c: float,
    delta: float,
    correlation: XStateCorrelation | None = None,
) -> np.ndarray:
    """Delta_AB(t) = Delta_AB(0) cos(2 Omega t) - 2|chi_23| sin(delta) sin(2 Omega t).

    This is Eq. 12 written without theta; it holds for any X-state correlation (Eq. 8) and at
    T_A = T_B, where Eq. 12's amplitude and theta are singular.
    """
    corr = correlation if correlation is not None else optimal_correlation(TA, TB)
    w = 2.0 * check.finite("omega_c", omega_c) * np.asarray(t, dtype=float)
    return sed_initial(TA, TB) * np.cos(w) - _c_sin_delta(corr, delta) * np.sin(w)


def sed_eq12(t: np.ndarray | float, TA: float, TB: float, omega_c: float, delta: float) -> np.ndarray:
    """Eq. 12 as printed: Delta_AB(0) sqrt(1 + (C0 sin delta / Delta_AB(0))^2) cos(2 Omega t + theta).

    Raises
    ------
    InvalidParameterError
        At T_A = T_B, where Eq. 12 is singular (use :func:`sed_closed_form`).
    """
    d0 = sed_initial(TA, TB)
    if d0 == 0.0:
        raise InvalidParameterError("Eq. 12 is singular at TA = TB; use sed_closed_form")
    ratio = concurrence_initial(TA, TB) * math.sin(check.finite("delta", delta)) / d0
    amplitude = d0 * math.sqrt(1.0 + ratio**2)
    return amplitude * np.cos(2.0 * omega_c * np.asarray(t, dtype=float) + theta(TA, TB, delta))


def initial_trend(rho0: np.ndarray, potential: np.ndarray, TA: float, TB: float) -> float:
    """The first-order coefficient of Eq. 4: -i Tr{(H_A - H_B)[V_AB, chi]}, chi = rho0 - rho_A^0 x rho_B^0."""
    chi = np.asarray(rho0, dtype=complex) - np.kron(gibbs_state(TA), gibbs_state(TB))
    v = np.asarray(potential, dtype=complex)
    return float(np.real(-1j * np.trace((H_A - H_B) @ (v @ chi - chi @ v))))


def rho_closed_form(
    times: ArrayLike,
    TA: float,
    TB: float,
    omega_c: float,
    phi_v: float,
    correlation: XStateCorrelation | None = None,
) -> np.ndarray:
    """rho(t) of the isolated pair from an X state (App. B, B2 generalised), shape (n_t, 4, 4).

    The |00> and |11> populations stay constant; in the {|01>, |10>} block, with
    a = lambda_2 - chi_11, b = lambda_3 - chi_11, c = chi_23 and delta = phi_V - phi_chi:
    rho_22 = (a + b)/2 + (a - b)/2 cos 2 Omega t + |c| sin(delta) sin 2 Omega t,
    rho_23 = e^{i phi_V} [|c| cos(delta) - i |c| sin(delta) cos 2 Omega t + i (a - b)/2 sin 2 Omega t].
    """
    corr = correlation if correlation is not None else optimal_correlation(TA, TB)
    delta = check.finite("phi_v", phi_v) - corr.phi_chi
    w = 2.0 * check.finite("omega_c", omega_c) * np.asarray(times, dtype=float)
    lam = corr.lambdas
    a, b, c = lam[1] - corr.chi11, lam[2] - corr.chi11, corr.chi23_abs
    rho = np.zeros((w.size, 4, 4), dtype=complex)
    rho[:, 0, 0] = lam[0] + corr.chi11
    rho[:, 3, 3] = lam[3] + corr.chi11
    swing = (a - b) / 2 * np.cos(w) + c * math.sin(delta) * np.sin(w)
    rho[:, 1, 1] = (a + b) / 2 + swing
    rho[:, 2, 2] = (a + b) / 2 - swing
    rho[:, 1, 2] = np.exp(1j * phi_v) * (
        c * math.cos(delta) - 1j * c * math.sin(delta) * np.cos(w) + 1j * (a - b) / 2 * np.sin(w)
    )
    rho[:, 2, 1] = np.conj(rho[:, 1, 2])
    return rho


def energies_closed_form(
    t: np.ndarray | float,
    TA: float,
    TB: float,
    omega_c: float,
    delta: float,
    correlation: XStateCorrelation | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(E_A(t), E_B(t)) = ([lambda_4 - lambda_1 + Delta_AB(t)]/2, [lambda_4 - lambda_1 - Delta_AB(t)]/2).

    This is B3 with its signs corrected (the sum E_A + E_B = lambda_4 - lambda_1 < 0 is conserved).
    """
    corr = correlation if correlation is not None else optimal_correlation(TA, TB)
    lam = corr.lambdas
    sed = sed_closed_form(t, TA, TB, omega_c, delta, corr)
    total = lam[3] - lam[0]
    return (total + sed) / 2, (total - sed) / 2


def pair_hamiltonian(omega_c: float, phi_v: float) -> np.ndarray:
    """H = H_A + H_B + V_AB (Sec. III), a 4x4 array."""
    return H_A + H_B + coupling_potential(omega_c, phi_v)


def propagate(rho0: np.ndarray, times: ArrayLike, hamiltonian: np.ndarray) -> np.ndarray:
    """rho(t) = U(t) rho0 U(t)^dagger with U = exp(-i H t), by exact diagonalisation of H.

    Parameters
    ----------
    rho0 : (d, d) array
        Initial state.
    times : (n_t,) array
        Output times (any order, any spacing).
    hamiltonian : (d, d) array
        A Hermitian, time-independent Hamiltonian.

    Returns
    -------
    (n_t, d, d) complex array
    """
    h = check.hermitian("hamiltonian", hamiltonian)
    rho0 = check.square_matrix("rho0", rho0, h.shape[0])
    t = np.atleast_1d(np.asarray(times, dtype=float))
    if not np.all(np.isfinite(t)):
        raise InvalidParameterError("times contains non-finite values")
    energies, vecs = np.linalg.eigh(h)
    rho_eig = vecs.conj().T @ rho0 @ vecs
    phases = np.exp(-1j * np.outer(t, energies))  # (n_t, d)
    evolved = phases[:, :, None] * rho_eig[None] * phases.conj()[:, None, :]
    return vecs[None] @ evolved @ vecs.conj().T[None]


@dataclass(frozen=True)
class Trajectory:
    """Observables of a two-qubit trajectory, each an array over ``times``.

    ``relative_entropy_A`` etc. are the terms of Eqs. 1-2 with the Gibbs states at (TA, TB) as
    references; :meth:`eq2_residual` is (beta_A - beta_B) Delta E_A minus their sum.
    """

    times: np.ndarray
    rho: np.ndarray
    TA: float
    TB: float
    E_A: np.ndarray
    E_B: np.ndarray
    sed: np.ndarray
    concurrence: np.ndarray
    mutual_information: np.ndarray
    S_A: np.ndarray
    S_B: np.ndarray
    relative_entropy_A: np.ndarray
    relative_entropy_B: np.ndarray

    @property
    def delta_mutual_information(self) -> np.ndarray:
        """Delta I_AB(t) = I_AB(t) - I_AB(0)."""
        return self.mutual_information - self.mutual_information[0]

    @property
    def eq2_lhs(self) -> np.ndarray:
        """(beta_A - beta_B) Delta E_A(t), the left side of Eq. 2."""
        return (1.0 / self.TA - 1.0 / self.TB) * (self.E_A - self.E_A[0])

    def eq1_residual(self, qubit: str) -> np.ndarray:
        """beta Delta E - Delta S - S(rho(t) || rho^0) for qubit "A" or "B" (zero by Eq. 1)."""
        if qubit not in ("A", "B"):
            raise InvalidParameterError(f"qubit = {qubit!r} must be 'A' or 'B'")
        e, s, rel, temp = (
            (self.E_A, self.S_A, self.relative_entropy_A, self.TA)
            if qubit == "A"
            else (self.E_B, self.S_B, self.relative_entropy_B, self.TB)
        )
        return (e - e[0]) / temp - (s - s[0]) - rel

    def eq2_residual(self) -> np.ndarray:
        """Left minus right side of Eq. 2 (zero for a unitary evolution from a locally Gibbs state)."""
        rhs = self.relative_entropy_A + self.relative_entropy_B + self.delta_mutual_information
        return self.eq2_lhs - rhs


def trajectory(times: np.ndarray, rho: np.ndarray, TA: float, TB: float) -> Trajectory:
    """Evaluate every observable of Sec. II-III along a two-qubit trajectory ``rho`` (n_t, 4, 4)."""
    rho = np.asarray(rho, dtype=complex)
    e_a, e_b = local_energies(rho)
    ref_a, ref_b = gibbs_state(TA), gibbs_state(TB)
    rho_a, rho_b = partial_trace(rho, 0), partial_trace(rho, 1)
    return Trajectory(
        times=np.asarray(times, dtype=float),
        rho=rho,
        TA=float(TA),
        TB=float(TB),
        E_A=np.asarray(e_a),
        E_B=np.asarray(e_b),
        sed=np.asarray(e_a) - np.asarray(e_b),
        concurrence=np.atleast_1d(concurrence(rho)),
        mutual_information=np.atleast_1d(mutual_information(rho)),
        S_A=np.atleast_1d(entropy(rho_a)),
        S_B=np.atleast_1d(entropy(rho_b)),
        relative_entropy_A=np.array([relative_entropy(r, ref_a) for r in rho_a]),
        relative_entropy_B=np.array([relative_entropy(r, ref_b) for r in rho_b]),
    )


@dataclass(frozen=True)
class ClosedRun:
    """The isolated pair from the optimal state of Eq. 10, as run by ``qpump closed``."""

    params: dict
    trajectory: Trajectory
    theta: float
    tau_peak: float
    C0: float
    I0: float
    sed_closed_form: np.ndarray

    def to_json(self) -> dict:
        """The JSON object of ``qpump closed --json``."""
        tr = self.trajectory
        return {
            "params": self.params,
            "t": tr.times.tolist(),
            "E_A": tr.E_A.tolist(),
            "E_B": tr.E_B.tolist(),
            "sed": tr.sed.tolist(),
            "concurrence": tr.concurrence.tolist(),
            "mutual_information": tr.mutual_information.tolist(),
            "theta": self.theta,
            "tau_peak": self.tau_peak,
            "C0": self.C0,
            "I0": self.I0,
        }


#: How far the isolated pair's energy may drift in :func:`run_closed`, relative to the size of
#: the energy and of Omega (the propagation is exact: a correct run drifts by rounding, ~1e-15).
ENERGY_TOL = 1e-9
#: Most output times of :func:`run_closed` (a million states take 256 MB).
MAX_POINTS = 1_000_000


def run_closed(
    TA: float = 2.0,
    TB: float = 1.0,
    omega_c: float = 0.1,
    delta: float = -math.pi / 2,
    t_max: float = 40.0,
    points: int = 401,
) -> ClosedRun:
    """Propagate the optimal state of Eq. 10 (phi_chi = 0) under H_A + H_B + V_AB (phi_V = delta).

    Parameters
    ----------
    TA, TB : float
        Temperatures, in (0, inf] (infinite: a maximally mixed qubit).
    omega_c : float
        Coupling strength Omega, > 0.
    delta : float
        Phase difference phi_V - phi_chi.
    t_max : float
        Last time, > 0.
    points : int
        Number of equally spaced output times, in [2, MAX_POINTS].

    Raises
    ------
    InvalidParameterError
        For a parameter outside its range.
    InvariantViolationError
        If a state of the trajectory is not a density matrix or the energy is not conserved.
    """
    TA = check.positive("TA", TA, allow_inf=True)
    TB = check.positive("TB", TB, allow_inf=True)
    omega_c = check.positive("omega_c", omega_c)
    delta = check.finite("delta", delta)
    t_max = check.positive("t_max", t_max)
    if isinstance(points, bool) or not isinstance(points, (int, np.integer)) \
            or not 2 <= points <= MAX_POINTS:
        raise InvalidParameterError(f"points = {points!r} must be an integer in [2, {MAX_POINTS}]")
    corr = optimal_correlation(TA, TB)
    times = np.linspace(0.0, t_max, int(points))
    hamiltonian = pair_hamiltonian(omega_c, delta)
    rho = propagate(corr.state(), times, hamiltonian)
    invariants.check_density_matrices(rho, "the isolated pair", times=times)
    energy = np.real(np.einsum("ij,tji->t", hamiltonian, rho))
    drift = float(np.max(np.abs(energy - energy[0])))
    allowed = ENERGY_TOL * max(1.0, abs(float(energy[0])), omega_c)  # rounding scales with H
    if drift > allowed:
        raise InvariantViolationError(
            "energy conservation", drift, allowed,
            f"the isolated pair's energy <H_A + H_B + V_AB> drifts by {drift:.3g} (allowed "
            f"{allowed:.3g})")
    tr = trajectory(times, rho, TA, TB)
    return ClosedRun(
        params={"TA": TA, "TB": TB, "omega_c": omega_c, "delta": delta, "t_max": t_max,
                "points": int(points), "phi_chi": 0.0, "phi_v": delta},
        trajectory=tr,
        theta=theta(TA, TB, delta),
        tau_peak=tau_peak(TA, TB, omega_c, delta),
        C0=concurrence_initial(TA, TB),
        I0=float(tr.mutual_information[0]),
        sed_closed_form=sed_closed_form(times, TA, TB, omega_c, delta, corr),
    )
