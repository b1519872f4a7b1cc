"""Information measures of two-qubit states: entropies, mutual information, relative entropy,
concurrence, partial traces and local energies.

Entropies are in nats by default (``base=math.e``); pass ``base=2`` for bits.
"""

from __future__ import annotations

import math

import numpy as np

from ._validate import dense
from .errors import InvalidParameterError
from .operators import H_QUBIT, SIGMA_Y

__all__ = [
    "partial_trace",
    "von_neumann_entropy",
    "mutual_information",
    "relative_entropy",
    "concurrence",
    "local_energies",
]

# Eigenvalues below this are treated as zero: they are round-off of a rank-deficient state.
_ZERO_EIGENVALUE = 1e-14
_SIGMA_YY = np.kron(SIGMA_Y, SIGMA_Y)


def _log(base: float) -> float:
    if not (base > 0 and base != 1 and math.isfinite(base)):
        raise InvalidParameterError(f"base = {base} must be a finite positive number other than 1")
    return math.log(base)


def _as_two_qubit(rho: np.ndarray) -> np.ndarray:
    arr = np.asarray(dense(rho), dtype=complex)
    if arr.shape[-2:] != (4, 4):
        raise InvalidParameterError(f"rho must have shape (..., 4, 4), got {arr.shape}")
    return arr


def partial_trace(rho: np.ndarray, keep: int) -> np.ndarray:
    """Reduced state of qubit ``keep`` (0 = A, 1 = B) of a two-qubit state; batched over leading axes."""
    arr = _as_two_qubit(rho).reshape(*np.shape(rho)[:-2], 2, 2, 2, 2)
    if keep == 0:
        return np.einsum("...ajbj->...ab", arr)
    if keep == 1:
        return np.einsum("...jajb->...ab", arr)
    raise InvalidParameterError(f"keep = {keep!r} must be 0 (qubit A) or 1 (qubit B)")


def _entropy_of_eigenvalues(p: np.ndarray) -> np.ndarray:
    p = np.where(p > _ZERO_EIGENVALUE, p, 1.0)  # 0 ln 0 = 0
    return -np.sum(p * np.log(p), axis=-1)


def von_neumann_entropy(rho: np.ndarray, base: float = math.e) -> float | np.ndarray:
    """S(rho) = -Tr rho log rho, batched over leading axes; nats unless ``base`` is given."""
    evals = np.linalg.eigvalsh(np.asarray(dense(rho), dtype=complex))
    s = _entropy_of_eigenvalues(evals) / _log(base)
    return float(s) if np.ndim(s) == 0 else s


def mutual_information(rho: np.ndarray, base: float = math.e) -> float | np.ndarray:
    """I_AB = S_A + S_B - S_AB of a two-qubit state, batched; nats unless ``base`` is given."""
    arr = _as_two_qubit(rho)
    return (
        von_neumann_entropy(partial_trace(arr, 0), base)
        + von_neumann_entropy(partial_trace(arr, 1), base)
        - von_neumann_entropy(arr, base)
    )


def relative_entropy(rho: np.ndarray, sigma: np.ndarray, base: float = math.e) -> float:
    """S(rho || sigma) = Tr rho (log rho - log sigma); ``inf`` where supp rho is not in supp sigma."""
    rho = np.asarray(rho, dtype=complex)
    sigma = np.asarray(sigma, dtype=complex)
    if rho.shape != sigma.shape or rho.ndim != 2:
        raise InvalidParameterError(
            f"rho and sigma must be square matrices of one shape, got {rho.shape} and {sigma.shape}"
        )
    p = np.linalg.eigvalsh(rho)
    s, vecs = np.linalg.eigh(sigma)
    weights = np.real(np.einsum("ij,jk,ki->i", vecs.conj().T, rho, vecs))
    outside = (s <= _ZERO_EIGENVALUE) & (weights > _ZERO_EIGENVALUE)
    if np.any(outside):
        return math.inf
    inside = s > _ZERO_EIGENVALUE
    cross = float(np.sum(weights[inside] * np.log(s[inside])))
    return (-float(_entropy_of_eigenvalues(p)) - cross) / _log(base)


def concurrence(rho: np.ndarray) -> float | np.ndarray:
    """Wootters concurrence of a two-qubit state (Hill & Wootters 1997), batched over leading axes.

    C = max(0, r1 - r2 - r3 - r4), with r_i the decreasing square roots of the eigenvalues of
    rho (sigma_y x sigma_y) rho^* (sigma_y x sigma_y). With rho = A A^dagger, A = V sqrt(p) from
    the eigen-decomposition, the r_i are the singular values of A^T (sigma_y x sigma_y) A. Taking
    them from an SVD avoids square roots of round-off eigenvalues, which would cost eight digits
    for rank-deficient states such as the optimal state of Eq. 10.

    Eigenvalues of rho at or below 1e-14 are taken as zero. For a state that is only that close
    to rank deficiency this moves C by at most 8 sqrt(p_0 p_max) (p_0: the eigenvalues dropped;
    Weyl's bound on the singular values), e.g. 1.5e-8 at p_0 = 1e-16: C is not Lipschitz there,
    and no method does better from rho given to round-off.
    """
    arr = _as_two_qubit(rho)
    p, vecs = np.linalg.eigh(arr)
    weights = np.sqrt(np.where(p > _ZERO_EIGENVALUE, p, 0.0))
    a = vecs * weights[..., None, :]
    r = np.linalg.svd(np.swapaxes(a, -1, -2) @ _SIGMA_YY @ a, compute_uv=False)
    c = np.clip(r[..., 0] - r[..., 1] - r[..., 2] - r[..., 3], 0, None)
    return float(c) if np.ndim(c) == 0 else c


def local_energies(rho: np.ndarray) -> tuple[float | np.ndarray, float | np.ndarray]:
    """(E_A, E_B) = (Tr H_A rho, Tr H_B rho) with H = sigma_z / 2 on each qubit; batched."""
    arr = _as_two_qubit(rho)
    e = tuple(
        np.real(np.einsum("ij,...ji->...", H_QUBIT, partial_trace(arr, k))) for k in (0, 1)
    )
    return tuple(float(x) if np.ndim(x) == 0 else x for x in e)  # type: ignore[return-value]
