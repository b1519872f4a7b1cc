"""Gibbs states of the qubits and the correlated two-qubit states of the paper (Sec. III, App. A).

Conventions (docs/conventions.md): hbar = k_B = omega = 1; |0> is the ground state, |1> the
excited state; H = sigma_z / 2 with sigma_z = diag(-1, +1); the two-qubit product basis is
{|00>, |01>, |10>, |11>} with qubit A first (index 2a + b). The Pauli matrices and H_A, H_B live in
:mod:`qpump.operators` and are re-exported here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import _validate as check
from .errors import InvalidParameterError, InvalidStateError
from .info import concurrence, partial_trace
from .operators import H_A, H_B, H_QUBIT, IDENTITY2, SIGMA_X, SIGMA_Y, SIGMA_Z

__all__ = [
    "SIGMA_X",
    "SIGMA_Y",
    "SIGMA_Z",
    "IDENTITY2",
    "H_QUBIT",
    "H_A",
    "H_B",
    "excited_population",
    "gibbs_state",
    "lambdas",
    "product_state",
    "XStateCorrelation",
    "correlation_matrix",
    "optimal_correlation",
    "correlated_state",
    "coupling_potential",
    "check_state",
    "check_correlated_state",
]



def excited_population(T: float) -> float:
    """Excited-state population 1 / (1 + e^{1/T}) of a qubit with unit gap at temperature T.

    Parameters
    ----------
    T : float
        Temperature in units of the qubit gap, in (0, inf]; ``inf`` gives 1/2.
    """
    T = check.positive("T", T, allow_inf=True)
    if 1.0 / T > 700.0:  # e^{1/T} would overflow: the population is e^{-1/T} < 1e-304
        return math.exp(-1.0 / T)
    return 1.0 / (1.0 + math.exp(1.0 / T))


def gibbs_state(T: float) -> np.ndarray:
    """Gibbs state e^{-H/T} / Z of one qubit with H = sigma_z / 2, as a 2x2 complex array."""
    p = excited_population(T)
    return np.diag([1.0 - p, p]).astype(complex)


def lambdas(TA: float, TB: float) -> np.ndarray:
    """The populations lambda_1..4 of rho_A^0 (x) rho_B^0 (Eq. 6), in the order |00>,|01>,|10>,|11>."""
    pa = excited_population(check.positive("TA", TA, allow_inf=True))
    pb = excited_population(check.positive("TB", TB, allow_inf=True))
    return np.array([(1 - pa) * (1 - pb), (1 - pa) * pb, pa * (1 - pb), pa * pb])


def product_state(TA: float, TB: float) -> np.ndarray:
    """The uncorrelated state rho_A^0 (x) rho_B^0 of Eq. 5 (4x4, diagonal)."""
    return np.diag(lambdas(TA, TB)).astype(complex)


@dataclass(frozen=True)
class XStateCorrelation:
    """A correlation matrix of the X form of Eq. 8, reduced by the traceless conditions (9b).

    Attributes
    ----------
    TA, TB : float
        Local temperatures the state must keep.
    chi11 : float
        chi_11 = -chi_22 = -chi_33 = chi_44.
    chi23_abs : float
        |chi_23| >= 0.
    phi_chi : float
        Phase of chi_23 (row |01>, column |10>).
    """

    TA: float
    TB: float
    chi11: float
    chi23_abs: float
    phi_chi: float

    @property
    def lambdas(self) -> np.ndarray:
        """lambda_1..4 of the product state at (TA, TB)."""
        return lambdas(self.TA, self.TB)

    @property
    def matrix(self) -> np.ndarray:
        """The 4x4 correlation matrix chi."""
        chi = np.diag([self.chi11, -self.chi11, -self.chi11, self.chi11]).astype(complex)
        chi[1, 2] = self.chi23_abs * np.exp(1j * self.phi_chi)
        chi[2, 1] = np.conj(chi[1, 2])
        return chi

    @property
    def concurrence(self) -> float:
        """Concurrence of rho^0 = product + chi (Eq. A3)."""
        lam = self.lambdas
        return 2.0 * max(0.0, self.chi23_abs - math.sqrt(
            max(0.0, (lam[0] + self.chi11) * (lam[3] + self.chi11))))

    def state(self) -> np.ndarray:
        """rho_AB^0 = rho_A^0 (x) rho_B^0 + chi (Eq. 3)."""
        return product_state(self.TA, self.TB) + self.matrix


def correlation_matrix(
    TA: float,
    TB: float,
    chi11: float | None = None,
    chi23: float | None = None,
    phi_chi: float = 0.0,
    *,
    require_entangled: bool = True,
) -> XStateCorrelation:
    """Validated X-form correlation matrix chi of Eq. 8 from (chi_11, |chi_23|, phi_chi).

    Without ``chi11`` and ``chi23`` the optimal correlation of Eq. 10 is returned
    (chi_11 = -lambda_4, |chi_23| = sqrt(lambda_4)), which maximises the concurrence (App. A).

    Parameters
    ----------
    TA, TB : float
        Temperatures of qubits A and B, in (0, inf].
    chi11 : float, optional
        chi_11, admissible for -lambda_4 <= chi_11 <= min(lambda_2, lambda_3) (A2a).
    chi23 : float, optional
        |chi_23| >= 0, bounded by (A2b): |chi_23| <= sqrt((lambda_2 - chi_11)(lambda_3 - chi_11)).
    phi_chi : float
        Phase of chi_23.
    require_entangled : bool
        Also demand entanglement (A4). Set False to allow classical or zero correlation.

    Raises
    ------
    InvalidStateError
        If the parameters violate (A2a), (A2b) or, when required, (A4); the message names the
        condition and the numbers.
    """
    lam = lambdas(TA, TB)
    phi_chi = check.finite("phi_chi", phi_chi)
    if (chi11 is None) != (chi23 is None):
        raise InvalidParameterError("give both chi11 and chi23, or neither (optimal chi of Eq. 10)")
    if chi11 is None:
        chi11, chi23 = -lam[3], math.sqrt(lam[3])
    chi11 = check.finite("chi11", chi11)
    chi23 = check.finite("chi23", chi23)
    if chi23 < 0:
        raise InvalidParameterError(f"chi23 = {chi23} is |chi_23| and must be >= 0 (use phi_chi)")
    tol = 1e-14
    upper = min(lam[1], lam[2])
    if not (-lam[3] - tol <= chi11 <= upper + tol):
        raise InvalidStateError(
            f"chi_11 = {chi11:.6g} is outside [-lambda4, min(lambda2, lambda3)] = "
            f"[{-lam[3]:.6g}, {upper:.6g}] (positivity, A2a)"
        )
    bound = math.sqrt(max(0.0, (lam[1] - chi11) * (lam[2] - chi11)))
    if chi23 > bound * (1 + 1e-12) + tol:
        raise InvalidStateError(
            f"chi_23 = {chi23:.6g} exceeds sqrt((lambda2-chi11)(lambda3-chi11)) = {bound:.6g} "
            "(positivity, A2b)"
        )
    threshold = math.sqrt(max(0.0, (lam[0] + chi11) * (lam[3] + chi11)))
    if require_entangled and not chi23 > threshold:
        raise InvalidStateError(
            f"chi_23 = {chi23:.6g} does not exceed sqrt((lambda1+chi11)(lambda4+chi11)) = "
            f"{threshold:.6g}: the state is not entangled (A4, condition 9c)"
        )
    return XStateCorrelation(float(TA), float(TB), chi11, chi23, phi_chi)


def optimal_correlation(TA: float, TB: float, phi_chi: float = 0.0) -> XStateCorrelation:
    """The concurrence-maximising correlation of Eq. 10, with C0 = 2 sqrt(lambda_4) (Eq. 11)."""
    return correlation_matrix(TA, TB, phi_chi=phi_chi)


def correlated_state(
    TA: float,
    TB: float,
    chi11: float | None = None,
    chi23: float | None = None,
    phi_chi: float = 0.0,
) -> np.ndarray:
    """rho_AB^0 = rho_A^0 (x) rho_B^0 + chi (Eq. 3); the optimal chi of Eq. 10 by default."""
    return correlation_matrix(TA, TB, chi11, chi23, phi_chi).state()


def coupling_potential(omega_c: float, phi_v: float) -> np.ndarray:
    """V_AB = Omega (e^{i phi_V} |01><10| + e^{-i phi_V} |10><01|) (Eq. 7), a 4x4 array."""
    omega_c = check.finite("omega_c", omega_c)
    phi_v = check.finite("phi_v", phi_v)
    v = np.zeros((4, 4), dtype=complex)
    v[1, 2] = omega_c * np.exp(1j * phi_v)
    v[2, 1] = np.conj(v[1, 2])
    return v


def check_state(rho: np.ndarray, *, atol: float = 1e-10, name: str = "rho") -> np.ndarray:
    """Check that ``rho`` is a density matrix: Hermitian, unit trace, positive (9a).

    Returns the array; raises :class:`InvalidStateError` naming the violated condition.
    """
    arr = np.asarray(check.dense(rho), dtype=complex)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise InvalidStateError(f"{name} must be a square matrix, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InvalidStateError(f"{name} has non-finite entries")
    herm = float(np.max(np.abs(arr - arr.conj().T)))
    if herm > atol:
        raise InvalidStateError(f"{name} is not Hermitian: max |rho - rho^dagger| = {herm:.3g}")
    tr = complex(np.trace(arr))
    if abs(tr - 1) > atol:
        raise InvalidStateError(f"{name} has trace {tr.real:.12g}, not 1 (normalisation, 9a)")
    emin = float(np.linalg.eigvalsh((arr + arr.conj().T) / 2)[0])
    if emin < -atol:
        raise InvalidStateError(
            f"{name} has a negative eigenvalue {emin:.6g} (positivity, 9a)"
        )
    return arr


def check_correlated_state(
    rho: np.ndarray, TA: float, TB: float, *, atol: float = 1e-10, require_entangled: bool = True
) -> np.ndarray:
    """Check a two-qubit state against Eq. 9: a state (9a), locally Gibbs at (TA, TB) (9b), entangled (9c).

    Raises
    ------
    InvalidStateError
        Naming the violated condition and the numbers.
    """
    arr = check_state(rho, atol=atol)
    if arr.shape != (4, 4):
        raise InvalidStateError(f"rho must be a two-qubit (4, 4) state, got shape {arr.shape}")
    for label, keep, T in (("A", 0, TA), ("B", 1, TB)):
        local = partial_trace(arr, keep=keep)
        dev = float(np.max(np.abs(local - gibbs_state(T))))
        if dev > atol:
            raise InvalidStateError(
                f"rho_{label} deviates from the Gibbs state at T_{label} = {T:g} by {dev:.3g} "
                "(local equilibrium, 9b)"
            )
    if require_entangled:
        c = concurrence(arr)
        if not c > atol:
            raise InvalidStateError(f"concurrence = {c:.3g} is not > 0: not entangled (9c)")
    return arr
