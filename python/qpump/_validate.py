"""Argument checks shared by the modules: each raises InvalidParameterError naming the value."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .errors import InvalidParameterError


def finite(name: str, value: Any) -> float:
    """Return ``value`` as a float, or raise if it is not a finite real number."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"{name} = {value!r} is not a number") from None
    if not math.isfinite(x):
        raise InvalidParameterError(f"{name} = {x} must be a finite number")
    return x


def positive(name: str, value: Any, *, allow_inf: bool = False) -> float:
    """Return ``value`` if it is > 0 (and finite unless ``allow_inf``), else raise."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"{name} = {value!r} is not a number") from None
    if math.isnan(x) or x <= 0 or (math.isinf(x) and not allow_inf):
        allowed = "(0, inf]" if allow_inf else "(0, inf)"
        raise InvalidParameterError(f"{name} = {x} is outside the allowed range {allowed}")
    return x


def non_negative(name: str, value: float) -> float:
    """Return ``value`` if it is a finite number >= 0, else raise."""
    x = finite(name, value)
    if x < 0:
        raise InvalidParameterError(f"{name} = {x} is outside the allowed range [0, inf)")
    return x


#: Largest truncation parameter (depth, n_exp) accepted: far beyond any hierarchy that fits in
#: memory, and small enough for every integer type the Rust core counts with.
MAX_TRUNCATION = 2**31 - 1


def _integer(name: str, value: int, low: int, maximum: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low \
            or (maximum is not None and value > maximum):
        allowed = f"in [{low}, {maximum}]" if maximum is not None else f">= {low}"
        raise InvalidParameterError(f"{name} = {value!r} must be an integer {allowed}")
    return int(value)


def non_negative_int(name: str, value: int, maximum: int | None = None) -> int:
    """Return ``value`` if it is an integer in [0, maximum] (>= 0 without ``maximum``), else raise."""
    return _integer(name, value, 0, maximum)


def positive_int(name: str, value: int, maximum: int | None = None) -> int:
    """Return ``value`` if it is an integer in [1, maximum] (>= 1 without ``maximum``), else raise."""
    return _integer(name, value, 1, maximum)


def one_of(name: str, value: object, allowed: tuple) -> object:
    """Return ``value`` if it is one of ``allowed``, else raise naming them."""
    if value not in allowed:
        raise InvalidParameterError(f"{name} = {value!r} must be one of {', '.join(map(str, allowed))}")
    return value


def dense(value: object) -> object:
    """``value.full()`` for an object that has it (a QuTiP ``Qobj``), else ``value``: operators and
    states are duck-typed so that QuTiP users can pass theirs without qpump importing QuTiP."""
    full = getattr(value, "full", None)
    return full() if callable(full) and not isinstance(value, np.ndarray) else value


def dims_of(value: object) -> list | None:
    """The QuTiP ``dims`` of a ``Qobj`` (None for anything else)."""
    dims = getattr(value, "dims", None)
    return dims if isinstance(dims, list) else None


def square_matrix(name: str, value: object, dim: int | None = None) -> np.ndarray:
    """Return ``value`` (an array or a QuTiP ``Qobj``) as a finite complex (d, d) array, checking
    the shape (and d if given)."""
    arr = np.asarray(dense(value), dtype=complex)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise InvalidParameterError(f"{name} must be a square matrix, got shape {arr.shape}")
    if dim is not None and arr.shape[0] != dim:
        raise InvalidParameterError(f"{name} must have shape ({dim}, {dim}), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InvalidParameterError(f"{name} contains non-finite entries")
    return arr


def hermitian(name: str, value: object, dim: int | None = None, atol: float = 1e-12) -> np.ndarray:
    """Return ``value`` as a Hermitian (d, d) complex array, or raise naming the deviation."""
    arr = square_matrix(name, value, dim)
    dev = float(np.max(np.abs(arr - arr.conj().T))) if arr.size else 0.0
    if dev > atol * max(1.0, float(np.max(np.abs(arr)))):
        raise InvalidParameterError(
            f"{name} is not Hermitian: max |{name} - {name}^dagger| = {dev:.3g} (allowed {atol:g})"
        )
    return arr
