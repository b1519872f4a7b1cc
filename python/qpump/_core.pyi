"""Type stub of the Rust extension ``qpump._core`` (rust/py.rs): the HEOM core.

Complex arrays are complex128, real ones float64; shapes are given in the docstrings. Errors
are raised as :class:`qpump.errors.InvalidParameterError` (bad input),
:class:`qpump.errors.IntegrationError` (the integrator gave up) and ``KeyboardInterrupt``.
"""

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

def build_profile() -> str:
    """"release" or "debug": the Cargo profile the extension was built with."""

def core_version() -> str:
    """The version of the Rust crate."""

def simd_path() -> str:
    """"avx2" or "portable": the compiled step loop propagations run."""

def drude_lorentz_exponents(
    kappa: float, gamma: float, temperature: float, n_exp: int, expansion: str, terminator: bool
) -> tuple[NDArray[np.complex128], list[float], list[str], float]:
    """(c_k, nu_k, kinds, delta) of a Drude-Lorentz bath; delta is the terminator's strength."""

def ado_count(n_exponents: int, depth: int) -> int | None:
    """C(K + depth, depth), or None when it does not fit in 64 bits."""

def solver_memory_bytes(n_ados: int, d: int, n_exponents: int) -> int:
    """Bytes a HeomCore of this size allocates (ADOs and the integrator's history)."""

def paired_exponents(
    c: NDArray[np.complex128], nu: NDArray[np.complex128]
) -> tuple[NDArray[np.complex128], NDArray[np.complex128], NDArray[np.complex128]]:
    """(c, cbar, nu) of C(t) = sum_k c_k e^{-nu_k t}: every rate with its conjugate partner (one
    added with c = 0 where missing)."""

class HeomCore:
    """The hierarchy of one system Hamiltonian with its baths, and its state."""

    def __init__(
        self,
        h: NDArray[np.complex128],
        baths: Sequence[
            tuple[
                NDArray[np.complex128],
                NDArray[np.complex128],
                NDArray[np.complex128],
                NDArray[np.complex128],
                float,
            ]
        ],
        depth: int,
        rtol: float,
        atol: float,
        max_step: float,
    ) -> None:
        """h (d, d); baths: (Q (d, d), c (K,), cbar (K,), nu (K,), delta) each, the arrays complex:
        C(t) = sum_k c_k e^{-nu_k t} and C(t)* = sum_k cbar_k e^{-nu_k t}."""
    def set_drive(self, terms: Sequence[tuple[NDArray[np.complex128], Any]]) -> None:
        """Drive terms (V (d, d), profile): profile a ramp tuple (shape, start, duration, from,
        to) or a callable f(t) -> float."""
    @property
    def n_ados(self) -> int: ...
    @property
    def time(self) -> float: ...
    def labels(self) -> NDArray[np.int64]:
        """(n_ados, K) occupation of every exponent in every ADO."""
    def ado_scales(self) -> NDArray[np.float64]:
        """(n_ados,) the rescaling of every ADO."""
    def set_hamiltonian(self, h: NDArray[np.complex128]) -> None: ...
    def set_state(self, t: float, ados: NDArray[np.complex128]) -> None:
        """ados (n_ados, d, d), unscaled."""
    def set_reference(self, ados: NDArray[np.complex128]) -> float:
        """Use ``ados`` as the stationary frame; returns its residual."""
    def clear_reference(self) -> None: ...
    def state(self) -> NDArray[np.complex128]:
        """(n_ados, d, d), unscaled."""
    def propagate(
        self, times: NDArray[np.float64], progress: Callable[[float], None] | None = None
    ) -> tuple[NDArray[np.complex128], NDArray[np.float64], NDArray[np.float64]]:
        """rho (n_t, d, d), heat current into each bath (n_t, n_baths), interaction energy (n_t, n_baths)."""
    def stats(self) -> dict[str, int]:
        """steps, rejected_steps, rhs_evaluations."""
    def generator(
        self,
    ) -> tuple[NDArray[np.uint64], NDArray[np.uint64], NDArray[np.complex128], int]:
        """The generator on rescaled ADOs as COO triplets: rows, cols, vals, dimension."""
