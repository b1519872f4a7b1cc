"""Exact open-system dynamics: the hierarchical equations of motion (HEOM).

A thin Python face of the Rust core (``qpump._core``): bosonic baths given as sums of exponentials
with real or complex rates (Drude-Lorentz with Matsubara or Pade expansion, underdamped Brownian
oscillator, or generic: given exponents, QuTiP's real/imaginary form, or a fit of any spectral
density or correlation function from :mod:`qpump.bathfit`), the hierarchy solver with a
piecewise-constant system Hamiltonian, heat currents and interaction energies at every output
time, and the steady state of the hierarchy.

Conventions (docs/heom.md): hbar = k_B = 1; a bath couples through
``H_I = Q (x) X`` with correlation ``C(t) = sum_k c_k exp(-nu_k t)``; the heat current of a bath is
the rate of energy flow INTO that bath.
"""

from __future__ import annotations

import math
import os
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from . import _core, invariants
from ._validate import (
    MAX_TRUNCATION,
    dims_of,
    hermitian,
    non_negative,
    non_negative_int,
    positive,
    square_matrix,
)
from .errors import (
    ComputationError,
    HierarchyTooLargeError,
    IntegrationError,
    InvalidParameterError,
    InvalidStateError,
    MissingExtraError,
)

__all__ = [
    "BathExponent",
    "ExponentialBath",
    "DrudeLorentzBath",
    "UnderdampedBath",
    "Ramp",
    "ADOState",
    "HEOMResult",
    "HEOMSolver",
    "DEFAULT_RTOL",
    "DEFAULT_ATOL",
]

#: Default relative tolerance of the HEOM integrator (local error per step).
DEFAULT_RTOL = 1e-7
#: Default absolute tolerance of the HEOM integrator (local error per step, rescaled ADOs).
DEFAULT_ATOL = 1e-9
#: The steady-state frame is used only for runs spanning at least this many periods of the
#: largest Bohr frequency of H: the stationary part costs a few steps per period, the sparse LU
#: that removes it a fixed amount.
STEADY_FRAME_MIN_PERIODS = 10.0
#: A stationary reference is used only if max |L y_s| is below this fraction of atol. Its residual
#: is carried as a forcing, so the run is exact either way; one above is a failed solve (seen: a
#: singular generator's 1e17-sized garbage), whose subtraction would cost digits and steps.
_RESIDUAL_BUDGET = 0.01


class BathExponent(NamedTuple):
    """One term ``c exp(-nu t)`` of a bath correlation function ``C(t)``, and ``cbar exp(-nu t)``
    of its conjugate ``C(t)* = C(-t)`` (``cbar = conj(c)`` for a real rate; docs/heom.md)."""

    c: complex
    nu: complex
    kind: str
    cbar: complex


def _exponents(c: np.ndarray, cbar: np.ndarray, nu: np.ndarray, kinds: Sequence[str]) -> list[BathExponent]:
    return [BathExponent(complex(a), complex(n), str(k), complex(b))
            for a, b, n, k in zip(c, cbar, nu, kinds, strict=True)]


def _complex_vector(name: str, values: Sequence[complex] | np.ndarray) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(values, dtype=complex))
    if arr.ndim != 1:
        raise InvalidParameterError(f"{name} must be 1-D, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InvalidParameterError(f"{name} = {arr} contains non-finite values")
    return arr


class ExponentialBath:
    """A bosonic bath given by its correlation function as a sum of exponentials.

    Parameters
    ----------
    Q : array_like, shape (d, d)
        Hermitian system coupling operator.
    c : sequence of complex
        Amplitudes ``c_k`` of ``C(t) = sum_k c_k exp(-nu_k t)`` (t > 0).
    nu : sequence of float
        Decay rates ``nu_k > 0``.
    delta : float, optional
        Amplitude of a terminator ``-delta [Q, [Q, .]]`` acting on every ADO, >= 0 (a negative
        one would amplify instead of damp; default 0).

    Raises
    ------
    InvalidParameterError
        If ``Q`` is not a finite Hermitian square matrix, the lists differ in length, a rate is
        not positive, or a value is not finite.
    """

    def __init__(
        self,
        Q: np.ndarray,
        c: Sequence[complex],
        nu: Sequence[complex],
        delta: float = 0.0,
    ) -> None:
        self._init(Q)
        c_arr = _complex_vector("c", c)
        nu_arr = _complex_vector("nu", nu)
        if c_arr.shape != nu_arr.shape:
            raise InvalidParameterError(
                f"c and nu must be 1-D of equal length, got shapes {c_arr.shape} and {nu_arr.shape}"
            )
        for k, v in enumerate(nu_arr):
            positive(f"Re nu[{k}]", v.real)
        c_all, cbar, nu_all = _core.paired_exponents(c_arr, nu_arr)
        self._exponents = _exponents(c_all, cbar, nu_all, ["generic"] * len(nu_all))
        self._delta = non_negative("delta", delta)

    @classmethod
    def from_real_imag(
        cls,
        Q: np.ndarray,
        ck_real: Sequence[complex],
        vk_real: Sequence[complex],
        ck_imag: Sequence[complex],
        vk_imag: Sequence[complex],
        delta: float = 0.0,
    ) -> ExponentialBath:
        """A bath in QuTiP's ``BosonicBath`` form, ``C(t) = C_R(t) + i C_I(t)`` with
        ``C_R(t) = sum_k ck_real[k] exp(-vk_real[k] t)`` and ``C_I(t) = sum_k ck_imag[k]
        exp(-vk_imag[k] t)`` both real functions.

        Terms of the two parts with the same rate share one exponent (QuTiP's "RI" type), so the
        hierarchy is no larger than QuTiP's for the same expansion.

        Parameters
        ----------
        Q : array_like, shape (d, d)
            Hermitian system coupling operator.
        ck_real, vk_real : sequence of complex
            Amplitudes and rates (``Re vk > 0``) of the real part.
        ck_imag, vk_imag : sequence of complex
            Amplitudes and rates of the imaginary part.
        delta : float, optional
            Terminator amplitude, >= 0.

        Raises
        ------
        InvalidParameterError
            If a list pair differs in length, a rate has ``Re nu <= 0``, a value is not finite,
            or ``Q`` is not Hermitian.
        """
        bath = cls.__new__(cls)
        bath._init(Q)
        terms: dict[complex, list[complex]] = {}
        for part, (ck, vk) in (("real", (ck_real, vk_real)), ("imag", (ck_imag, vk_imag))):
            c_arr = _complex_vector(f"ck_{part}", ck)
            v_arr = _complex_vector(f"vk_{part}", vk)
            if c_arr.shape != v_arr.shape:
                raise InvalidParameterError(
                    f"ck_{part} and vk_{part} must have equal lengths, got {c_arr.size} and {v_arr.size}")
            for k, (a, v) in enumerate(zip(c_arr, v_arr, strict=True)):
                positive(f"Re vk_{part}[{k}]", v.real)
                # C = C_R + i C_I and C* = C_R - i C_I: the amplitudes of exp(-v t) in each.
                c_here, cbar_here = (a, a) if part == "real" else (1j * a, -1j * a)
                pair = terms.setdefault(complex(v), [0j, 0j])
                pair[0] += c_here
                pair[1] += cbar_here
        nu = np.array(list(terms), dtype=complex)
        c = np.array([p[0] for p in terms.values()], dtype=complex)
        cbar = np.array([p[1] for p in terms.values()], dtype=complex)
        bath._exponents = _exponents(c, cbar, nu, ["generic"] * len(nu))
        bath._delta = non_negative("delta", delta)
        return bath

    @classmethod
    def from_fit(cls, Q: np.ndarray, fit: object, delta: float = 0.0) -> ExponentialBath:
        """A bath from a fit of its correlation function: a :class:`qpump.bathfit.ExponentFit`
        (:func:`qpump.bathfit.fit_spectral_density`, :func:`qpump.bathfit.fit_correlation`) or
        any object with QuTiP's ``ck_real, vk_real, ck_imag, vk_imag`` (see :meth:`from_real_imag`).

        Raises
        ------
        InvalidParameterError
            If ``fit`` lacks those attributes, or as :meth:`from_real_imag`.
        """
        names = ("ck_real", "vk_real", "ck_imag", "vk_imag")
        missing = [n for n in names if not hasattr(fit, n)]
        if missing:
            raise InvalidParameterError(
                f"fit = {fit!r} has no {', '.join(missing)}: give a qpump.bathfit.ExponentFit")
        ck_real, vk_real, ck_imag, vk_imag = (getattr(fit, n) for n in names)
        return cls.from_real_imag(Q, ck_real, vk_real, ck_imag, vk_imag, delta)

    def _init(self, Q: np.ndarray) -> None:
        self._Q = hermitian("Q", Q)
        self._Q.setflags(write=False)

    @property
    def Q(self) -> np.ndarray:
        """The coupling operator (read-only (d, d) complex array)."""
        return self._Q

    @property
    def exponents(self) -> list[BathExponent]:
        """The exponents ``(c_k, nu_k, kind, cbar_k)`` of the correlation function."""
        return list(self._exponents)

    @property
    def delta(self) -> float:
        """Terminator amplitude (0 when no terminator is used)."""
        return self._delta

    def correlation(self, t: np.ndarray) -> np.ndarray:
        """Evaluate the exponential expansion ``sum_k c_k exp(-nu_k t)`` at times ``t``.

        Parameters
        ----------
        t : array_like
            Times (>= 0).

        Returns
        -------
        numpy.ndarray
            Complex values of the expansion (without the terminator's delta function).
        """
        t = np.asarray(t, dtype=float)
        out = np.zeros(t.shape, dtype=complex)
        for e in self._exponents:
            out += e.c * np.exp(-e.nu * t)
        return out

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(d={self._Q.shape[0]}, n_exponents={len(self._exponents)}, "
            f"delta={self._delta:.6g})"
        )


class DrudeLorentzBath(ExponentialBath):
    """Bosonic bath with the Drude-Lorentz spectral density.

    ``J(w) = 2 kappa gamma w / (w^2 + gamma^2)``; the correlation function is expanded into the
    Drude term (``nu_0 = gamma``) and ``n_exp`` Matsubara terms or Pade poles; the neglected tail
    is kept as a terminator of amplitude ``delta = 2 kappa T / gamma - sum_k Re(c_k) / nu_k``.

    Parameters
    ----------
    Q : array_like, shape (d, d)
        Hermitian system coupling operator.
    kappa : float
        Reorganisation energy (QuTiP's ``lam``), >= 0.
    gamma : float
        Cutoff frequency, > 0.
    T : float
        Temperature, > 0.
    n_exp : int, optional
        Number of Matsubara terms or Pade poles besides the Drude term (QuTiP's ``Nk``).
    expansion : {"matsubara", "pade"}, optional
        Expansion of the Bose function.
    terminator : bool, optional
        Whether to include the terminator (default True).

    Raises
    ------
    InvalidParameterError
        For kappa < 0, gamma <= 0, T <= 0, n_exp < 0, an unknown expansion, non-finite values, a
        non-Hermitian Q, or gamma coinciding with a bath frequency.
    """

    def __init__(
        self,
        Q: np.ndarray,
        kappa: float,
        gamma: float,
        T: float,
        n_exp: int = 2,
        expansion: str = "matsubara",
        terminator: bool = True,
    ) -> None:
        self._init(Q)
        self.kappa = non_negative("kappa", kappa)
        self.gamma = positive("gamma", gamma)
        self.T = positive("T", T)
        self.n_exp = non_negative_int("n_exp", n_exp, MAX_TRUNCATION)
        if expansion not in ("matsubara", "pade"):
            raise InvalidParameterError(f"expansion = {expansion!r} must be 'matsubara' or 'pade'")
        self.expansion = expansion
        self.terminator = bool(terminator)
        c, nu, kinds, delta = _core.drude_lorentz_exponents(
            self.kappa, self.gamma, self.T, self.n_exp, expansion, self.terminator
        )
        c = np.asarray(c, dtype=complex)
        self._exponents = _exponents(c, c.conj(), np.asarray(nu, dtype=complex), kinds)
        self._delta = float(delta)

    def spectral_density(self, w: np.ndarray) -> np.ndarray:
        """``J(w) = 2 kappa gamma w / (w^2 + gamma^2)``."""
        w = np.asarray(w, dtype=float)
        return 2.0 * self.kappa * self.gamma * w / (w**2 + self.gamma**2)


class UnderdampedBath(ExponentialBath):
    """Bosonic bath of a damped (Brownian) oscillator.

    ``J(w) = lam^2 gamma w / ((w0^2 - w^2)^2 + gamma^2 w^2)`` (QuTiP's ``UnderDampedBath``
    parameters). Its poles ``w = +-Omega + i gamma/2``, ``Omega = sqrt(w0^2 - gamma^2/4)``, give two
    exponents with the complex rates ``gamma/2 -+ i Omega`` (amplitudes
    ``lam^2 / (4 Omega) (coth((Omega +- i gamma/2) / 2T) +- i)``), and the poles of the Bose function
    ``n_exp`` Matsubara terms with real rates ``2 pi k T``; docs/heom.md derives them. For
    ``w0 < gamma/2`` (overdamped) ``Omega`` is imaginary and the same expressions give two real
    rates ``gamma/2 -+ |Omega|``; critical damping ``w0 = gamma/2`` (a double pole) is refused.

    Parameters
    ----------
    Q : array_like, shape (d, d)
        Hermitian system coupling operator.
    lam : float
        Coupling strength, >= 0.
    gamma : float
        Damping rate of the oscillator, > 0.
    w0 : float
        Resonance frequency of the oscillator, > 0.
    T : float
        Temperature, > 0.
    n_exp : int, optional
        Number of Matsubara terms (QuTiP's ``Nk``; default 2). There is no terminator: the
        neglected Matsubara terms are negative, so theirs would amplify instead of damp.

    Raises
    ------
    InvalidParameterError
        For a parameter out of range, critical damping, or a Matsubara frequency on a pole.
    """

    def __init__(
        self,
        Q: np.ndarray,
        lam: float,
        gamma: float,
        w0: float,
        T: float,
        n_exp: int = 2,
    ) -> None:
        self._init(Q)
        self.lam = non_negative("lam", lam)
        self.gamma = positive("gamma", gamma)
        self.w0 = positive("w0", w0)
        self.T = positive("T", T)
        self.n_exp = non_negative_int("n_exp", n_exp, MAX_TRUNCATION)
        omega = np.sqrt(complex(self.w0**2 - self.gamma**2 / 4))
        if abs(omega) < 1e-8 * self.w0:
            raise InvalidParameterError(
                f"w0 = {self.w0:g} equals gamma/2 = {self.gamma / 2:g}: critical damping (a double "
                "pole of J) is not supported; change w0 or gamma slightly")
        lam2, half = self.lam**2, self.gamma / 2
        nu_osc = np.array([half - 1j * omega, half + 1j * omega])
        # coth(z / 2T) at the two poles z = omega + i gamma/2 and omega - i gamma/2 of J
        coth = 1.0 / np.tanh(np.array([omega + 1j * half, omega - 1j * half]) / (2 * self.T))
        ck_real = list(lam2 / (4 * omega) * coth)
        vk_real = list(nu_osc)
        for k in range(1, self.n_exp + 1):
            nu_k = 2 * np.pi * k * self.T
            den = (self.w0**2 + nu_k**2) ** 2 - self.gamma**2 * nu_k**2
            if abs(den) <= 1e-12 * (self.w0**2 + nu_k**2) ** 2:
                raise InvalidParameterError(
                    f"the Matsubara frequency 2 pi {k} T = {nu_k:g} coincides with a pole of J "
                    f"(w0 = {self.w0:g}, gamma = {self.gamma:g}); change T slightly")
            ck_real.append(-2 * lam2 * self.gamma * self.T * nu_k / den)
            vk_real.append(nu_k)
        ck_imag = [1j * lam2 / (4 * omega), -1j * lam2 / (4 * omega)]
        paired = ExponentialBath.from_real_imag(self._Q, ck_real, vk_real, ck_imag, list(nu_osc))
        kinds = ["underdamped", "underdamped"] + ["matsubara"] * self.n_exp
        self._exponents = [e._replace(kind=k) for e, k in zip(paired.exponents, kinds, strict=True)]
        self._delta = paired.delta

    def spectral_density(self, w: np.ndarray) -> np.ndarray:
        """``J(w) = lam^2 gamma w / ((w0^2 - w^2)^2 + gamma^2 w^2)``."""
        w = np.asarray(w, dtype=float)
        return self.lam**2 * self.gamma * w / ((self.w0**2 - w**2) ** 2 + self.gamma**2 * w**2)


#: The named ramp shapes s(x) on x in [0, 1] (Rust ``drive::RampShape``).
RAMP_SHAPES = ("linear", "sin2")


@dataclass(frozen=True)
class Ramp:
    """A smooth switch ``f(t) = start_value + (end_value - start_value) s((t - start) / duration)``,
    constant outside ``[start, start + duration]``, evaluated in the Rust core.

    ``s(x) = x`` ("linear") or ``sin^2(pi x / 2)`` ("sin2", zero slope at both ends); both pass
    1/2 at the middle of the ramp.

    Parameters
    ----------
    shape : {"linear", "sin2"}
    start : float
        Time the ramp begins.
    duration : float
        Length of the ramp, > 0.
    start_value, end_value : float, optional
        f before and after the ramp (default 0 and 1: switching on).
    """

    shape: str
    start: float
    duration: float
    start_value: float = 0.0
    end_value: float = 1.0

    def __post_init__(self) -> None:
        if self.shape not in RAMP_SHAPES:
            raise InvalidParameterError(f"ramp = {self.shape!r} must be one of {', '.join(RAMP_SHAPES)}")
        for name in ("start", "start_value", "end_value"):
            v = float(getattr(self, name))
            if not math.isfinite(v):
                raise InvalidParameterError(f"{name} = {v} is not finite")
        positive("ramp_time", self.duration)

    def _progress(self, t: np.ndarray) -> np.ndarray:
        return np.clip((np.asarray(t, dtype=float) - self.start) / self.duration, 0.0, 1.0)

    def __call__(self, t: float | np.ndarray) -> np.ndarray:
        """f(t)."""
        x = self._progress(np.asarray(t))
        shape = x if self.shape == "linear" else np.sin(0.5 * np.pi * x) ** 2
        return self.start_value + (self.end_value - self.start_value) * shape

    def derivative(self, t: float | np.ndarray) -> np.ndarray:
        """f'(t) (zero outside the ramp)."""
        t = np.asarray(t, dtype=float)
        x = (t - self.start) / self.duration
        slope = np.ones_like(x) if self.shape == "linear" else 0.5 * np.pi * np.sin(np.pi * x)
        inside = (x >= 0) & (x <= 1)
        return np.where(inside, (self.end_value - self.start_value) * slope / self.duration, 0.0)

    def _as_core(self) -> tuple[str, float, float, float, float]:
        return (self.shape, float(self.start), float(self.duration), float(self.start_value),
                float(self.end_value))


@dataclass(frozen=True)
class ADOState:
    """The whole hierarchy at one time.

    Attributes
    ----------
    ados : numpy.ndarray, shape (n_ados, d, d)
        All auxiliary density operators (unscaled, the Tanimura-Kubo normalisation of
        docs/heom.md); ``ados[0]`` is the system density matrix.
    labels : numpy.ndarray, shape (n_ados, K)
        The multi-index of each ADO over all exponents of all baths (bath by bath).
    time : float
        The time of the state.
    """

    ados: np.ndarray
    labels: np.ndarray
    time: float = 0.0
    dims: list | None = None

    @property
    def rho(self) -> np.ndarray:
        """The system density matrix (tier 0), shape (d, d)."""
        return self.ados[0]

    def to_qutip(self):
        """The system density matrix as a QuTiP ``Qobj`` (with the dims of the Hamiltonian the
        solver was given as a ``Qobj``; needs QuTiP)."""
        return _to_qobj(self.rho, self.dims)

    def ado(self, label: Sequence[int]) -> np.ndarray:
        """Return the ADO with the given multi-index.

        Parameters
        ----------
        label : sequence of int
            One non-negative integer per exponent.

        Returns
        -------
        numpy.ndarray
            The (d, d) ADO.

        Raises
        ------
        InvalidParameterError
            If no ADO has that label.
        """
        lab = np.asarray(label, dtype=np.int64)
        hits: np.ndarray | list[int] = (
            np.flatnonzero(np.all(self.labels == lab, axis=1)) if lab.shape == (self.labels.shape[1],) else []
        )
        if len(hits) != 1:
            raise InvalidParameterError(f"label = {tuple(label)} is not an ADO of this hierarchy")
        return self.ados[int(hits[0])]


@dataclass
class HEOMResult:
    """Output of :meth:`HEOMSolver.run`.

    Attributes
    ----------
    times : numpy.ndarray, shape (n_t,)
    rho : numpy.ndarray, shape (n_t, d, d)
        System density matrix at each time.
    heat_current : numpy.ndarray, shape (n_t, n_baths)
        Rate of energy flow INTO each bath.
    interaction_energy : numpy.ndarray, shape (n_t, n_baths)
        ``<H_I^K>`` for each bath.
    final_state : ADOState
        The whole hierarchy at ``times[-1]``, to continue from.
    stats : dict
        ``n_ados``, ``steps``, ``rejected_steps``, ``rhs_evaluations``, ``wall_time_s``.
    """

    times: np.ndarray
    rho: np.ndarray
    heat_current: np.ndarray
    interaction_energy: np.ndarray
    final_state: ADOState
    stats: dict = field(default_factory=dict)
    dims: list | None = None

    def to_qutip(self) -> list:
        """The system density matrix at every time as QuTiP ``Qobj`` s (needs QuTiP)."""
        return [_to_qobj(r, self.dims) for r in self.rho]


def _to_qobj(matrix: np.ndarray, dims: list | None):
    try:
        import qutip
    except ImportError:
        raise MissingExtraError("to_qutip() needs QuTiP: pip install qutip") from None
    return qutip.Qobj(matrix, dims=dims) if dims is not None else qutip.Qobj(matrix)


#: How far a user's initial state may be from a density matrix (rounding of a hand-built state).
STATE_TOL = 1e-8
#: How far a user's initial state may be from trace one: a tenth of what the result is checked
#: against (``invariants.TRACE_TOL``), so that an accepted state never fails that check.
STATE_TRACE_TOL = 1e-10


def _check_state(name: str, rho: np.ndarray) -> None:
    """Raise InvalidStateError unless ``rho`` is a density matrix (Hermitian, trace one and
    positive, within :data:`STATE_TOL`, the trace within :data:`STATE_TRACE_TOL`)."""
    biggest = float(np.max(np.abs(rho)))
    if biggest > 1.0 + STATE_TOL:  # |rho_ij| <= 1 for every density matrix
        raise InvalidStateError(
            f"{name} has an entry of magnitude {biggest:.3g} > 1; give a density matrix")
    herm = float(np.max(np.abs(rho - rho.conj().T)))
    if herm > STATE_TOL:
        raise InvalidStateError(
            f"{name} is not Hermitian: max |{name} - {name}^dagger| = {herm:.3g} "
            f"(allowed {STATE_TOL:g}); give a density matrix")
    trace = complex(np.trace(rho))
    if abs(trace - 1.0) > STATE_TRACE_TOL:
        raise InvalidStateError(
            f"{name} has trace {trace.real:.6g} (must be 1 within {STATE_TRACE_TOL:g}); give a density "
            "matrix (normalise it by its trace)")
    lowest = float(np.linalg.eigvalsh(0.5 * (rho + rho.conj().T))[0])
    if lowest < -STATE_TOL:
        raise InvalidStateError(
            f"{name} is not positive: its smallest eigenvalue is {lowest:.3g} (must be >= "
            f"{-STATE_TOL:g}); give a density matrix")


def physical_memory_bytes() -> int | None:
    """Total physical memory of the machine in bytes, or None if it cannot be read."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def default_memory_limit() -> int:
    """Half of the machine's physical memory (8 GiB where it cannot be read)."""
    phys = physical_memory_bytes()
    return phys // 2 if phys else 8 * 1024**3


def process_memory_bytes() -> int:
    """Resident memory of this process now (VmRSS), or 0 where it cannot be read."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def format_bytes(n: float) -> str:
    """``n`` bytes in the largest binary unit that keeps a number >= 1 (e.g. ``2.4 GiB``)."""
    if n < 1024:
        return f"{int(n)} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024
        if n < 1024 or unit == "TiB":
            return f"{n:.3g} {unit}"
    raise AssertionError("unreachable")


#: Memory not yet in the process when a run is planned: scipy's sparse modules, integrators
#: and tqdm, which qpump imports lazily (measured: 52 MB).
LAZY_IMPORTS_BYTES = 52 * 1024**2


def steady_state_memory_bytes(n_ados: int, d: int, n_exponents: int, depth: int) -> int:
    """Estimated peak memory of :meth:`HEOMSolver.steady_state`, before anything is allocated.

    Beyond ``steady_iterative.ITERATIVE_MIN_DIM`` unknowns the solve is iterative and
    :func:`qpump.steady_iterative.iterative_memory_bytes` estimates it. Below, the sparse LU
    dominates. Its fill was measured on the two-qubit pump hierarchies (d = 4, 4 to
    12 exponents, depths 1 to 9; a direct factorization with SuperLU's MMD ordering of A^T + A):
    ``nnz(L + U) ~ 0.073 dim^2 D / (K + D)`` with ``dim = n_ados d^2``, within a factor of 1.5 of
    every measurement and above it where it errs most. SuperLU holds about 26 bytes per factor
    entry (value, indices, and the copies it makes growing its arrays); the generator's triplets
    (about ``d^3 (2.25 n_ados + n_links)`` of them, 33 bytes each with their copies) and the
    compressed matrix (``d^3 (n_ados + n_links)`` entries, 20 bytes each) are alive meanwhile,
    where ``n_links = K C(K + D - 1, D - 1)`` counts the couplings to the next tier. The d^4
    scaling of the fill beyond d = 4 is an assumption.
    """
    from . import steady_iterative

    dim = n_ados * d * d
    if dim > steady_iterative.ITERATIVE_MIN_DIM:
        return steady_iterative.iterative_memory_bytes(n_ados, d, n_exponents)
    fill = 0.073 * dim**2 * depth / (n_exponents + depth) if depth > 0 else 0.0
    links = n_exponents * math.comb(n_exponents + depth - 1, depth - 1) if depth > 0 else 0
    entries = d**3 * (n_ados + links)
    triplets = d**3 * (2.25 * n_ados + links)
    return int(26 * max(fill, entries) + 33 * triplets + 20 * entries)


def memory_error(what: str, need: int, limit: int, parts: dict[str, int]) -> HierarchyTooLargeError:
    """The error of a run that will not fit, with its estimate broken down and the way out."""
    breakdown = ", ".join(f"{name} {format_bytes(v)}" for name, v in parts.items() if v)
    return HierarchyTooLargeError(
        f"{what} needs about {format_bytes(need)} at its peak ({breakdown}), above the memory "
        f"limit of {format_bytes(limit)}; lower depth or n_exp, or raise the limit (--memory-limit "
        "on the command line, memory_limit_bytes in Python)")


def call_interruptibly(func):
    """Call ``func()`` in a worker thread while the main thread waits, so that Ctrl-C is obeyed.

    SuperLU (scipy's sparse LU) releases the GIL but never returns to Python until it is done: run
    in the main thread it would hold off KeyboardInterrupt for the whole factorization. The worker
    is a daemon thread: after an interruption it is abandoned (it finishes in the background, or
    dies with the process) and its result is never used.
    """
    if threading.current_thread() is not threading.main_thread():
        return func()
    box: dict = {}

    def target() -> None:
        try:
            box["value"] = func()
        except BaseException as err:  # handed to the caller below
            box["error"] = err

    worker = threading.Thread(target=target, name="qpump-solve", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.05)
    if "error" in box:
        raise box["error"]
    return box["value"]


class HEOMSolver:
    """Hierarchical equations of motion for a system coupled to bosonic baths.

    Parameters
    ----------
    H : array_like, shape (d, d)
        Hermitian system Hamiltonian (may be changed later with :meth:`set_hamiltonian`).
    baths : sequence of ExponentialBath
        The baths (e.g. :class:`DrudeLorentzBath`), each with its own coupling operator.
    depth : int, optional
        Truncation depth of the hierarchy (largest tier), >= 0.
    rtol, atol : float, optional
        Relative and absolute tolerances of the local error per step (on rescaled ADOs).
    max_step : float, optional
        Largest step size (default: unlimited).
    memory_limit_bytes : int, optional
        Largest memory the solver may use; default half of the machine's physical memory. The
        constructor checks the ADOs and the integrator's history against it; :meth:`steady_state`
        checks this process's memory plus its sparse LU (:func:`steady_state_memory_bytes`),
        before either allocates.
    method : None
        Removed in 0.2: the time stepper is always the variable-step, variable-order (1 to 8)
        exponential Adams predictor-corrector (the decay of every ADO treated exactly, in the
        interaction picture of H, two coupling sweeps per step). Passing it raises
        InvalidParameterError.
    steady_frame : bool or None, optional
        Integrate the deviation from the stationary hierarchy of the current H instead of the
        whole state. In the interaction picture the stationary part rotates at the Bohr
        frequencies for ever and keeps the steps short; the deviation decays, so long
        relaxations take far fewer steps. The stationary state is solved once per Hamiltonian
        (as :meth:`steady_state`) and cached, or given by :meth:`set_stationary`; its rounding-level
        residual is carried along, so the frame changes no result beyond the tolerances. None
        (default): on when the run spans at least ``STEADY_FRAME_MIN_PERIODS`` periods of the
        largest Bohr frequency of H, has no drive, and the model has a unique steady state that
        fits in ``memory_limit_bytes``.

    Raises
    ------
    InvalidParameterError
        For invalid arguments (non-Hermitian H, shape mismatches, negative depth, ...).
    HierarchyTooLargeError
        If the hierarchy would need more memory than ``memory_limit_bytes`` (checked before any
        allocation; the message breaks the estimate down and names the option that raises it).
    """

    def __init__(
        self,
        H: np.ndarray,
        baths: Sequence[ExponentialBath],
        depth: int = 3,
        *,
        rtol: float = DEFAULT_RTOL,
        atol: float = DEFAULT_ATOL,
        max_step: float = math.inf,
        memory_limit_bytes: int | None = None,
        method: None = None,
        steady_frame: bool | None = None,
    ) -> None:
        if method is not None:
            raise InvalidParameterError(
                f"method = {method!r}: method= was removed in 0.2: the exponential Adams "
                "integrator is the only one")
        # A QuTiP user's Hamiltonian keeps its dims for the states handed back by to_qutip().
        self._dims = dims_of(H)
        H = hermitian("H", H)
        d = H.shape[0]
        if isinstance(baths, ExponentialBath):
            baths = [baths]
        baths = list(baths)
        for i, b in enumerate(baths):
            if not isinstance(b, ExponentialBath):
                raise InvalidParameterError(
                    f"baths[{i}] = {b!r} is not a bath (DrudeLorentzBath or ExponentialBath)"
                )
            if b.Q.shape != (d, d):
                raise InvalidParameterError(f"baths[{i}].Q has shape {b.Q.shape} but H has shape {(d, d)}")
        self.depth = non_negative_int("depth", depth, MAX_TRUNCATION)
        rtol = positive("rtol", rtol)
        atol = positive("atol", atol)
        max_step = positive("max_step", max_step, allow_inf=True)
        n_exponents = sum(len(b.exponents) for b in baths)
        for i, b in enumerate(baths):
            for k, e in enumerate(b.exponents):
                # The rescaled ADOs divide by a^(n/2), a = sqrt((|c|^2 + |cbar|^2) / 2) (= |c| for
                # a real rate; Shi et al. 2009): below this the scale of the deepest tier
                # underflows to zero and the rescaling breaks.
                scale = math.hypot(abs(e.c), abs(e.cbar)) / math.sqrt(2.0)
                if 0 < scale and max(self.depth, 2) * math.log10(scale) / 2 < -290:
                    raise InvalidParameterError(
                        f"baths[{i}] exponent {k}: |c| = {scale:.3g} is so small that the ADO "
                        f"scaling |c|^(depth/2) underflows at depth {self.depth}; give c = 0 for "
                        "a term that is absent")
        n_ados = _core.ado_count(n_exponents, self.depth)
        if memory_limit_bytes is None:
            limit = default_memory_limit()
        else:
            limit = int(positive("memory_limit_bytes", memory_limit_bytes))
        what = (f"a hierarchy of {'more than 2^64' if n_ados is None else n_ados} ADOs "
                f"(depth = {self.depth}, {n_exponents} exponents over {len(baths)} baths, d = {d})")
        need = _core.solver_memory_bytes(n_ados, d, n_exponents) if n_ados is not None else None
        if n_ados is None or need is None or n_ados >= 2**32 - 1:
            raise HierarchyTooLargeError(f"{what} is too large to index; lower depth or n_exp")
        if need > limit:
            raise memory_error(what, need, limit, {"ADOs and integrator": need})
        self._memory_limit = limit
        self._what = what
        self._baths = baths
        self._H = H
        self._atol = atol
        self._rtol = rtol
        self._core = _core.HeomCore(
            np.ascontiguousarray(H),
            [
                (
                    np.ascontiguousarray(b.Q, dtype=complex),
                    np.array([e.c for e in b.exponents], dtype=complex),
                    np.array([e.cbar for e in b.exponents], dtype=complex),
                    np.array([e.nu for e in b.exponents], dtype=complex),
                    float(b.delta),
                )
                for b in baths
            ],
            self.depth,
            rtol,
            atol,
            float(max_step),
        )
        self._labels = self._core.labels()
        self._labels.setflags(write=False)
        if steady_frame is not None and not isinstance(steady_frame, bool):
            raise InvalidParameterError(f"steady_frame = {steady_frame!r} must be True, False or None")
        self._frame_required = steady_frame is True
        self._steady_frame = steady_frame is not False
        self._stationary: dict[bytes, ADOState | None] = {}
        self._drive: list[tuple[np.ndarray, Ramp | Callable[[float], float]]] = []
        #: How the last steady state was solved: method ("sparse LU" or "gmres"), residual
        #: ||A x - b|| / ||b|| (||A x - b|| for the LU), iterations, seconds.
        self.steady_state_info: dict[str, Any] = {}

    @property
    def rtol(self) -> float:
        """Relative tolerance of the local error per step."""
        return self._rtol

    @property
    def n_ados(self) -> int:
        """Number of ADOs in the hierarchy."""
        return int(self._core.n_ados)

    @property
    def steady_frame(self) -> bool:
        """Whether runs may integrate the deviation from the stationary hierarchy (see ``steady_frame``
        in the constructor); ``result.stats["steady_frame"]`` says whether a run did."""
        return self._steady_frame

    @property
    def labels(self) -> np.ndarray:
        """ADO labels, shape (n_ados, K)."""
        return self._labels

    @property
    def dim(self) -> int:
        """System dimension d."""
        return int(self._H.shape[0])

    @property
    def baths(self) -> list[ExponentialBath]:
        """The baths."""
        return list(self._baths)

    @property
    def H(self) -> np.ndarray:
        """The current system Hamiltonian."""
        return self._H.copy()

    def set_hamiltonian(self, H: np.ndarray) -> None:
        """Replace the system Hamiltonian; the hierarchy is not rebuilt.

        Parameters
        ----------
        H : array_like, shape (d, d)
            New Hermitian system Hamiltonian.
        """
        H = hermitian("H", H, self.dim)
        self._core.set_hamiltonian(np.ascontiguousarray(H))
        self._H = H

    def set_drive(self, terms: Sequence[tuple[np.ndarray, Ramp | Callable[[float], float]]] | None) -> None:
        """Make the Hamiltonian time dependent, ``H(t) = H + sum_k f_k(t) V_k``.

        ``H`` (:meth:`set_hamiltonian`) keeps its exact treatment (the integrator's interaction
        picture); each term enters the right-hand side of every ADO as ``-i f_k(t) [V_k, rho_n]``
        at the absolute times of :meth:`run`. A :class:`Ramp` is evaluated in the Rust core; any
        other callable is called from it (through the GIL, once per right-hand side: slower, and
        its exception stops the run and is raised as itself). The drive stays until replaced;
        ``None`` or ``[]`` removes it.

        Parameters
        ----------
        terms : sequence of (V, f), or None
            Hermitian (d, d) operators ``V_k`` with their profiles ``f_k``: a :class:`Ramp` or a
            callable ``f(t) -> float``.

        Raises
        ------
        InvalidParameterError
            If a V is not a finite Hermitian (d, d) matrix or a profile is neither a Ramp nor
            callable.
        """
        checked = []
        for k, (v, f) in enumerate(terms or []):
            v = hermitian(f"drive[{k}].V", v, self.dim)
            if not (isinstance(f, Ramp) or callable(f)):
                raise InvalidParameterError(f"drive[{k}]: the profile {f!r} is neither a Ramp nor callable")
            checked.append((v, f))
        self._core.set_drive([(np.ascontiguousarray(v), f._as_core() if isinstance(f, Ramp) else f)
                              for v, f in checked])
        self._drive = checked

    @property
    def drive(self) -> list[tuple[np.ndarray, Ramp | Callable[[float], float]]]:
        """The drive terms ``(V_k, f_k)`` (empty: H is constant)."""
        return list(self._drive)

    def _initial_ados(self, rho0: np.ndarray | ADOState, name: str = "rho0") -> np.ndarray:
        d = self.dim
        if isinstance(rho0, ADOState):
            ados = np.asarray(rho0.ados, dtype=complex)
            if ados.shape != (self.n_ados, d, d):
                raise InvalidParameterError(
                    f"{name} is an ADOState of shape {ados.shape}, the solver needs {(self.n_ados, d, d)}"
                )
            if not np.array_equal(rho0.labels, self._labels):
                raise InvalidParameterError(f"{name} is an ADOState of a different hierarchy")
            if not np.all(np.isfinite(ados)):
                raise InvalidParameterError(f"{name} contains non-finite ADOs")
            _check_state(f"{name}.rho", ados[0])
            return np.ascontiguousarray(ados)
        rho = square_matrix(name, rho0, d)
        _check_state(name, rho)
        ados = np.zeros((self.n_ados, d, d), dtype=complex)
        ados[0] = rho
        return ados

    def run(
        self,
        rho0: np.ndarray | ADOState,
        times: Sequence[float] | np.ndarray,
        progress: bool | Callable[[float], None] = False,
    ) -> HEOMResult:
        """Propagate from ``rho0`` at ``times[0]`` through the output ``times``.

        Parameters
        ----------
        rho0 : array_like, shape (d, d), or ADOState
            Initial system state (all other ADOs zero) or a whole hierarchy (e.g. a previous
            result's ``final_state`` or :meth:`steady_state`).
        times : array_like, shape (n_t,)
            Non-decreasing output times; the propagation starts at ``times[0]``.
        progress : bool or callable, optional
            True shows a progress bar (tqdm) while propagating; a callable is called with the
            time reached, about ten times a second (from the integrator, between two steps).

        Returns
        -------
        HEOMResult

        Raises
        ------
        InvalidParameterError
            For bad shapes, non-finite or decreasing times.
        InvalidStateError
            If ``rho0`` (or the system state of an ADOState) is not a density matrix: not
            Hermitian or not positive (within ``STATE_TOL = 1e-8``), or its trace is not one
            (within ``STATE_TRACE_TOL = 1e-10``).
        IntegrationError
            If a non-finite value appears while integrating.
        InvariantViolationError
            If the result loses trace one or Hermiticity (to 1e-9; e.g. a bath whose terminator
            amplifies).
        """
        t = np.asarray(times, dtype=float)
        if t.ndim != 1 or t.size == 0:
            raise InvalidParameterError(f"times must be a non-empty 1-D array, got shape {t.shape}")
        if not np.all(np.isfinite(t)):
            raise InvalidParameterError("times contains non-finite values")
        if np.any(np.diff(t) < 0):
            raise InvalidParameterError("times must be non-decreasing")
        ados = self._initial_ados(rho0)
        before = dict(self._core.stats())
        start = time.perf_counter()
        self._core.set_state(float(t[0]), ados)
        frame_residual = self._enter_steady_frame(float(t[-1] - t[0]))
        bar = None
        callback = progress if callable(progress) else None
        if progress is True:
            from tqdm.auto import tqdm

            bar = tqdm(total=float(t[-1] - t[0]), unit="t", desc="HEOM")
            callback = lambda now: bar.update(now - t[0] - bar.n)  # noqa: E731
        try:
            rho, heat, eint = self._core.propagate(np.ascontiguousarray(t), callback)
        finally:
            if bar is not None:
                bar.close()
        # Trace and Hermiticity are kept by the generator's structure: losing them means the
        # integration broke (positivity is the caller's to judge: a truncated hierarchy may
        # lose it at strong coupling, and the pump checks it).
        invariants.check_density_matrices(rho, "HEOMSolver.run", times=t, positivity=False)
        wall = time.perf_counter() - start
        after = dict(self._core.stats())
        final = ADOState(self._core.state(), self._labels, float(t[-1]), self._dims)
        stats = {
            "n_ados": self.n_ados,
            "steps": int(after["steps"] - before["steps"]),
            "rejected_steps": int(after["rejected_steps"] - before["rejected_steps"]),
            "rhs_evaluations": int(after["rhs_evaluations"] - before["rhs_evaluations"]),
            "wall_time_s": wall,
            "steady_frame": frame_residual is not None,
            "steady_frame_residual": frame_residual,
        }
        return HEOMResult(
            times=t.copy(),
            rho=rho,
            heat_current=heat,
            interaction_energy=eint,
            final_state=final,
            stats=stats,
            dims=self._dims,
        )

    def _enter_steady_frame(self, span: float) -> float | None:
        """Subtract the stationary hierarchy of the current H from the loaded state.

        Returns the stationarity residual when the frame is used, None otherwise.
        """
        if not self._steady_frame:
            return None
        if self._drive:
            if self._frame_required:
                raise InvalidParameterError(
                    "steady_frame=True: a driven Hamiltonian has no stationary hierarchy to "
                    "subtract; use steady_frame=None or False with set_drive")
            return None
        energies = np.linalg.eigvalsh(self._H)
        periods = span * float(energies[-1] - energies[0]) / (2 * math.pi)
        if periods < STEADY_FRAME_MIN_PERIODS and not self._frame_required:
            return None
        key = self._H.tobytes()
        if key not in self._stationary:
            try:
                self._stationary_hierarchy()  # cached under this key
            except (InvalidParameterError, ComputationError):  # incl. too large, GMRES failed
                if self._frame_required:
                    raise
                self._stationary[key] = None
        stationary = self._stationary[key]
        if stationary is None:
            return None
        residual = float(self._core.set_reference(np.ascontiguousarray(stationary.ados)))
        if not residual <= _RESIDUAL_BUDGET * self._atol:  # NaN too
            self._core.clear_reference()
            if self._frame_required:
                raise IntegrationError(
                    f"steady_frame: the stationary state is not accurate enough (max |L y_s| = "
                    f"{residual:.2e} against {_RESIDUAL_BUDGET:g} atol; the generator may be "
                    "singular, with no unique steady state); use steady_frame=False"
                )
            return None
        return residual

    def steady_state(self) -> ADOState:
        """Steady state of the whole hierarchy for the current Hamiltonian.

        Solves ``L x = 0`` with ``tr rho = 1`` (the trace condition replaces one equation) with a
        sparse direct solver up to ``steady_iterative.ITERATIVE_MIN_DIM`` = 4096 unknowns and
        with preconditioned GMRES beyond (:func:`qpump.steady_iterative.solve_stationary`, to a
        relative residual of 1e-11), and checks that the system state is a density matrix. How
        it was solved, with the residual, is in :attr:`steady_state_info`.

        Returns
        -------
        ADOState
            The stationary hierarchy (``.rho`` is the stationary system state).

        Raises
        ------
        HierarchyTooLargeError
            If this process's memory plus the estimated memory of the solve exceeds
            ``memory_limit_bytes`` (checked before the matrix is built).
        InvalidParameterError
            If the steady state is not unique (singular generator).
        qpump.steady_iterative.IterativeSolveError
            If GMRES does not reach its residual (it names the residual reached).
        InvariantViolationError
            If the solution's system state is not a density matrix (e.g. a negative eigenvalue:
            a part of the system without a bath, or a truncation too poor for the model).
        """
        if self._drive:
            raise InvalidParameterError(
                "steady_state(): the Hamiltonian is driven (set_drive), so there is no steady "
                "state of it; remove the drive with set_drive(None) first")
        state = self._stationary_hierarchy()
        invariants.check_density_matrices(
            state.rho, "the steady state",
            cause="the model may have no unique steady state (a part of the system without a "
                  "bath) or the truncation (depth, n_exp, expansion) is too poor for it")
        return ADOState(state.ados.copy(), self._labels, 0.0, self._dims)

    def set_stationary(self, stationary: ADOState) -> None:
        """Give the stationary hierarchy of the current Hamiltonian, solved before (an earlier
        :meth:`steady_state` of the same model, saved and loaded), instead of solving for it again.

        :meth:`steady_state` returns it and runs use it as the steady-state frame's reference.
        Nothing is trusted: a run measures its residual max |L y_s| and uses the frame only when
        that is below 1 % of atol (the residual is carried as a forcing, so the result does not
        depend on it); ``steady_state_info`` says ``{"method": "given"}``.

        Raises
        ------
        InvalidParameterError
            If ``stationary`` is not an ADOState of this hierarchy with a density matrix as its
            system state, or the Hamiltonian is driven.
        """
        if not isinstance(stationary, ADOState):
            raise InvalidParameterError(
                f"stationary is a {type(stationary).__name__}: give an ADOState of this hierarchy")
        if self._drive:
            raise InvalidParameterError(
                "set_stationary(): the Hamiltonian is driven (set_drive), so there is no steady "
                "state of it; remove the drive with set_drive(None) first")
        ados = self._initial_ados(stationary, "stationary").copy()
        ados.setflags(write=False)
        if len(self._stationary) >= 8:
            self._stationary.clear()
        self._stationary[self._H.tobytes()] = ADOState(ados, self._labels, 0.0)
        self.steady_state_info = {"method": "given"}

    def _stationary_hierarchy(self) -> ADOState:
        """The stationary hierarchy of the current H, solved once per H and cached read-only."""
        key = self._H.tobytes()
        cached = self._stationary.get(key)
        if cached is not None:
            return cached
        from . import steady_iterative  # scipy.sparse: imported when first needed

        d, n_exponents = self.dim, self._labels.shape[1]
        iterative = self.n_ados * d * d > steady_iterative.ITERATIVE_MIN_DIM
        need = steady_state_memory_bytes(self.n_ados, d, n_exponents, self.depth)
        now = process_memory_bytes()
        if now + need > self._memory_limit:
            raise memory_error(f"the steady state of {self._what}", now + need, self._memory_limit,
                               {"GMRES" if iterative else "sparse LU": need, "process now": now})
        import scipy.sparse.linalg as spla

        rows, cols, vals, dim = self._core.generator()
        mat, rhs = steady_iterative.stationary_system(rows, cols, vals, dim, d)
        start = time.perf_counter()

        def solve() -> np.ndarray:
            if iterative:
                # Far cheaper than the LU beyond a few thousand unknowns (48,048 at depth 8 of
                # the pump: 0.4 s and 65 MB against 2 minutes and 2.4 GB); its residual is
                # reported, and one that misses rtol raises IterativeSolveError.
                solution = steady_iterative.solve_stationary(mat, rhs, d=d,
                                                             tiers=self._labels.sum(axis=1))
                self.steady_state_info = {
                    "method": "gmres", "preconditioner": solution.preconditioner,
                    "iterations": solution.iterations, "residual": solution.residual}
                return solution.x
            from threadpoolctl import threadpool_limits

            # SuperLU's dense kernels call BLAS; a multithreaded BLAS spins on a busy machine (CI,
            # a sweep's other workers) and made this solve 6x slower there (84 ms against 13 ms
            # with one thread, measured); the blocks are far too small to gain from threads.
            with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
                # A singular generator is reported below, as an error naming the cause.
                warnings.simplefilter("ignore", spla.MatrixRankWarning)
                x = spla.spsolve(mat, rhs, permc_spec="MMD_AT_PLUS_A")
            residual = float(np.linalg.norm(mat @ x - rhs)) if np.all(np.isfinite(x)) else math.inf
            self.steady_state_info = {"method": "sparse LU", "residual": residual}  # ||b|| = 1
            return x

        try:
            x = call_interruptibly(solve)
        except steady_iterative.IterativeSolveError as err:
            if math.isnan(err.residual):  # a singular pivot before any iteration
                raise InvalidParameterError(
                    f"the steady state is not unique for this model: {err}") from None
            raise
        self.steady_state_info["seconds"] = time.perf_counter() - start
        if not np.all(np.isfinite(x)):
            raise InvalidParameterError(
                "the steady state is not unique for this model or not computable (singular "
                "generator: a part of the system without a bath, or couplings so large that the "
                "matrix overflows)")
        scales = self._core.ado_scales()
        ados = x.reshape(self.n_ados, d, d) * scales[:, None, None]
        # A singular generator can also give a finite solution of enormous size (seen: 1e17 for
        # pure dephasing); no density matrix has an entry above 1.
        if float(np.max(np.abs(ados[0]))) > 1.0 + 1e-6:
            raise InvalidParameterError(
                "the steady state is not unique for this model (singular generator: the solve "
                f"gave a system state with entries of size {np.max(np.abs(ados[0])):.3g})")
        ados[0] = 0.5 * (ados[0] + ados[0].conj().T)
        if len(self._stationary) >= 8:
            self._stationary.clear()
        ados.setflags(write=False)
        stationary = ADOState(ados, self._labels, 0.0)
        self._stationary[key] = stationary
        return stationary
