"""Truncation of the HEOM: validity of a bath expansion before a run, and automatic convergence.

Every HEOM result depends on the truncation: the hierarchy ``depth``, the number ``n_exp`` of
Matsubara terms or Pade poles besides the Drude term, and the ``expansion`` itself. This module
answers the two questions a user otherwise guesses at (issue 16).

1. **Is the bath expansion valid at the system's frequencies?** (:func:`check_expansion`, no run
   needed.) The expansion's power spectrum

   ``S_exp(w) = Int C_exp(t) e^{iwt} dt = sum_k [c_k / (nu_k - i w) + cbar_k / (nu_k + i w)] + 2 delta``

   (``C(t) = sum_k c_k e^{-nu_k t}`` for t > 0, ``C(-t) = C(t)* = sum_k cbar_k e^{-nu_k t}``, the
   terminator a white noise ``2 delta delta(t)``; docs/heom.md) is compared at the Bohr
   frequencies ``+-w`` of the system with the exact spectrum of the bath's spectral density,
   ``S(w) = 2 J(w) (n(w) + 1)`` for w > 0 and ``S(-w) = 2 J(w) n(w)`` (``n`` the Bose function),
   whose ratio is detailed balance, ``S(-w) / S(w) = e^{-w/T}``. These are the rates at which the
   bath takes energy ``w`` from the system and gives it back: a negative ``S_exp`` amplifies (the
   steady state need not be a density matrix), a wrong ratio thermalises the system at the wrong
   temperature. Both fail silently in a run.
2. **Which truncation is converged?** (:func:`converge`, and :func:`converge_steady_state`,
   :func:`converge_dynamics` for a model, :func:`qpump.pump.converge_pump` for the pump.) Depth
   and ``n_exp`` are raised alternately until the quantity of interest stops changing, the
   memory of each next run is estimated before it is built, and a time limit is kept. The
   result carries a table of every run.

Conventions (docs/heom.md, docs/conventions.md): hbar = k_B = 1.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from . import _core
from ._validate import hermitian, non_negative_int, positive
from .errors import HierarchyTooLargeError, InvalidParameterError, QpumpError
from .heom import (
    DrudeLorentzBath,
    ExponentialBath,
    HEOMSolver,
    UnderdampedBath,
    format_bytes,
    process_memory_bytes,
    steady_state_memory_bytes,
)

__all__ = [
    "bohr_frequencies",
    "expansion_spectrum",
    "exact_spectrum",
    "BathCheck",
    "ExpansionCheck",
    "check_expansion",
    "check_model",
    "ConvergenceRow",
    "ExpansionOutcome",
    "ConvergenceResult",
    "converge",
    "hierarchy_estimate",
    "converge_steady_state",
    "converge_dynamics",
    "EXPANSIONS",
    "SEARCH_ORDER",
    "DETAILED_BALANCE_FLOOR",
    "MAX_N_EXP",
    "DISAGREEMENT_FACTOR",
]

#: The expansions of the Bose function qpump knows (``DrudeLorentzBath``'s ``expansion``).
EXPANSIONS = ("matsubara", "pade")
#: The default search order: Pade first, since it converges with fewer exponents, so that a time
#: or memory budget goes to the likelier winner before Matsubara is tried.
SEARCH_ORDER = ("pade", "matsubara")
#: Largest n_exp :func:`check_expansion` tries for ``suggested_n_exp``, per expansion. Matsubara
#: terms cost nothing to build and converge slowly (the spectrum's error falls as 1/N^3 with the
#: terminator); the [N-1/N] Pade weights of the Rust core lose their accuracy (overflowing
#: products) from about N = 45 on, and Pade needs far fewer terms anyway.
MAX_N_EXP = {"matsubara": 200, "pade": 40}
#: Detailed balance is compared relatively, ``|r_exp - r| / max(r, floor)`` with
#: ``r = e^{-w/T}``: a ratio below the floor (an excited population under about 1e-6) needs only
#: absolute accuracy ``tol * floor``. Without it ``e^{-100}`` would have to be matched to 1 %,
#: far below the rounding of the sums that give S_exp.
DETAILED_BALANCE_FLOOR = 1e-6
#: Expansions whose converged answers differ by more than this times ``conv_tol`` disagree: at
#: least one of them has only stopped changing, not converged (Matsubara's successive changes fall
#: faster than its error).
DISAGREEMENT_FACTOR = 10.0
#: A value of S_exp below ``-NEGATIVE_TOL * S(|w|)`` counts as negative (not rounding).
NEGATIVE_TOL = 1e-12


# ----------------------------------------------------------------------------------------------
# Spectra
# ----------------------------------------------------------------------------------------------


def bohr_frequencies(H: ArrayLike, Q: ArrayLike | None = None, *, atol: float = 1e-9) -> np.ndarray:
    """The distinct nonzero Bohr frequencies ``E_i - E_j`` of a Hamiltonian.

    Parameters
    ----------
    H : array_like, shape (d, d)
        Hermitian system Hamiltonian.
    Q : array_like, shape (d, d), optional
        A coupling operator: keep only the transitions it drives (``|<i|Q|j>| > atol max|Q|`` in
        the eigenbasis of H), the only frequencies at which its bath's spectrum enters.
    atol : float, optional
        Differences closer than this (times ``max(1, max|E|)``) are one frequency; smaller ones
        are zero.

    Returns
    -------
    numpy.ndarray
        Sorted, both signs (``w`` and ``-w``), zero left out.

    Raises
    ------
    InvalidParameterError
        If H (or Q) is not a finite Hermitian matrix, or Q's shape differs from H's.
    """
    h = hermitian("H", H)
    energies, vectors = np.linalg.eigh(h)
    scale = max(1.0, float(np.max(np.abs(energies))))
    diffs = energies[:, None] - energies[None, :]
    mask = np.abs(diffs) > atol * scale
    if Q is not None:
        q = hermitian("Q", Q, h.shape[0])
        q_eig = np.abs(vectors.conj().T @ q @ vectors)
        mask &= q_eig > atol * max(float(np.max(q_eig)), 1e-300)
    values = np.sort(diffs[mask])
    distinct: list[float] = []
    for v in values:
        if not distinct or v - distinct[-1] > atol * scale:
            distinct.append(float(v))
    return np.asarray(distinct, dtype=float)


def expansion_spectrum(bath: ExponentialBath, w: ArrayLike) -> np.ndarray:
    """Power spectrum of a bath's exponential expansion (terminator included).

    ``S_exp(w) = sum_k [c_k / (nu_k - i w) + cbar_k / (nu_k + i w)] + 2 delta``: the Fourier
    transform of ``C(t) = sum_k c_k e^{-nu_k t}`` for t > 0 and of ``C(t) = C(-t)* = sum_k cbar_k
    e^{nu_k t}`` for t < 0 (the amplitudes the hierarchy uses on the two sides of rho), plus the
    terminator's white noise. For a real rate this is ``2 Re[c_k / (nu_k - i w)]`` per exponent.

    Parameters
    ----------
    bath : ExponentialBath
        Any bath (Drude-Lorentz, underdamped, generic).
    w : array_like
        Frequencies (energy taken from the system for w > 0).

    Returns
    -------
    numpy.ndarray
        Real array of the shape of ``w`` (the imaginary part, zero for an expansion whose
        ``cbar`` is the conjugate of ``c``, is dropped).
    """
    w_arr = np.asarray(w, dtype=float)
    exps = bath.exponents
    c = np.array([e.c for e in exps], dtype=complex)
    cbar = np.array([e.cbar for e in exps], dtype=complex)
    nu = np.array([e.nu for e in exps], dtype=complex)
    iw = 1j * w_arr.reshape(-1, 1)
    terms = c / (nu - iw) + cbar / (nu + iw)
    return (terms.sum(axis=1).real + 2.0 * bath.delta).reshape(w_arr.shape)


def _temperature(bath: ExponentialBath) -> float | None:
    T = getattr(bath, "T", None)
    return float(T) if isinstance(T, (int, float)) and T > 0 else None


def exact_spectrum(bath: ExponentialBath, w: ArrayLike) -> np.ndarray | None:
    """Exact power spectrum ``S(w)`` of a bath with a known spectral density.

    ``S(w) = 2 J(w) (n(w) + 1)`` for w > 0, ``2 J(|w|) n(|w|)`` for w < 0 and ``2 T J'(0)`` at
    w = 0, with ``n(w) = 1 / (e^{w/T} - 1)``; so that ``S(-w) / S(w) = e^{-w/T}``. This is the
    Fourier transform of the correlation function of docs/heom.md.

    Parameters
    ----------
    bath : ExponentialBath
        A bath with ``spectral_density`` and ``T`` (:class:`~qpump.heom.DrudeLorentzBath`,
        :class:`~qpump.heom.UnderdampedBath`).
    w : array_like
        Frequencies.

    Returns
    -------
    numpy.ndarray or None
        None for a bath without a spectral density (a generic ``ExponentialBath``).
    """
    J = getattr(bath, "spectral_density", None)
    T = _temperature(bath)
    if J is None or not callable(J) or T is None:
        return None
    w_arr = np.asarray(w, dtype=float)
    a = np.abs(w_arr)
    out = np.empty(w_arr.shape, dtype=float)
    pos, neg, zero = w_arr > 0, w_arr < 0, w_arr == 0
    j = np.asarray(J(np.where(zero, 1.0, a)), dtype=float)
    with np.errstate(over="ignore"):
        out[pos] = 2 * j[pos] / -np.expm1(-a[pos] / T)
        out[neg] = 2 * j[neg] / np.expm1(a[neg] / T)
    if np.any(zero):
        eps = 1e-7 * min(T, 1.0)
        out[zero] = 2 * T * float(np.asarray(J(np.array([eps])), dtype=float)[0]) / eps
    return out


def _rebuild(bath: ExponentialBath, n_exp: int) -> ExponentialBath | None:
    """The same bath with another n_exp, or None where the bath has no n_exp."""
    if type(bath) is DrudeLorentzBath:
        return DrudeLorentzBath(bath.Q, bath.kappa, bath.gamma, bath.T, n_exp, bath.expansion,
                                bath.terminator)
    if type(bath) is UnderdampedBath:
        return UnderdampedBath(bath.Q, bath.lam, bath.gamma, bath.w0, bath.T, n_exp)
    return None


def _expansion_of(bath: ExponentialBath) -> str | None:
    if isinstance(bath, DrudeLorentzBath):
        return bath.expansion
    if isinstance(bath, UnderdampedBath):
        return "matsubara"
    return None


def _describe(bath: ExponentialBath) -> str:
    exp = _expansion_of(bath)
    n = getattr(bath, "n_exp", None)
    if exp is None:
        return f"generic, {len(bath.exponents)} exponents"
    words = f"{'Pade' if exp == 'pade' else 'Matsubara'}, n_exp = {n}"
    if isinstance(bath, DrudeLorentzBath) and not bath.terminator:
        words += ", no terminator"
    return words


@dataclass(frozen=True)
class _Errors:
    s_exp: np.ndarray  # (n_w, 2): S_exp(w), S_exp(-w)
    s_exact: np.ndarray | None  # (n_w, 2)
    spectrum_error: np.ndarray | None  # (n_w,)
    balance_error: np.ndarray | None  # (n_w,)
    negative: np.ndarray  # (n_w, 2) bool


def _errors(bath: ExponentialBath, w: np.ndarray) -> _Errors:
    both = np.stack([w, -w], axis=1)
    s_exp = expansion_spectrum(bath, both)
    s_exact = exact_spectrum(bath, both)
    if s_exact is None:
        scale = np.max(np.abs(s_exp), axis=1, keepdims=True)
        return _Errors(s_exp, None, None, None, s_exp < -NEGATIVE_TOL * scale)
    scale = np.max(np.abs(s_exact), axis=1)
    coupled = scale > 0  # a bath with J = 0 there (kappa = 0) has no rates to balance
    scale = np.where(coupled, scale, 1.0)
    spectrum_error = np.max(np.abs(s_exp - s_exact), axis=1) / scale
    T = _temperature(bath)
    assert T is not None
    balance = np.zeros(w.size)
    nonzero = (w != 0) & coupled
    if np.any(nonzero):
        ratio = np.exp(-w[nonzero] / T)
        with np.errstate(divide="ignore", invalid="ignore"):
            r_exp = s_exp[nonzero, 1] / s_exp[nonzero, 0]
        err = np.abs(r_exp - ratio) / np.maximum(ratio, DETAILED_BALANCE_FLOOR)
        balance[nonzero] = np.where(np.isfinite(err), err, np.inf)
    negative = s_exp < -NEGATIVE_TOL * scale[:, None]
    return _Errors(s_exp, s_exact, spectrum_error, balance, negative)


def _passes(e: _Errors, tol: float) -> bool:
    if np.any(e.negative):
        return False
    if e.spectrum_error is None or e.balance_error is None:
        return True
    return bool(np.all(e.spectrum_error <= tol) and np.all(e.balance_error <= tol))


def _suggest(bath: ExponentialBath, w: np.ndarray, tol: float, expansion: str | None) -> int | None:
    """Smallest n_exp (from 0 up to MAX_N_EXP of the expansion) that passes, or None."""
    if expansion is None:
        return None
    probe = bath
    if isinstance(bath, DrudeLorentzBath) and expansion != bath.expansion:
        probe = DrudeLorentzBath(bath.Q, bath.kappa, bath.gamma, bath.T, 0, expansion, bath.terminator)
    for n in range(MAX_N_EXP[expansion] + 1):
        try:
            candidate = _rebuild(probe, n)
        except InvalidParameterError:  # gamma on a pole at this n: try the next one
            continue
        if candidate is not None and _passes(_errors(candidate, w), tol):
            return n
    return None


@dataclass(frozen=True)
class BathCheck:
    """The validity check of one bath's expansion (see :func:`check_expansion`).

    Attributes
    ----------
    index : int
        Position of the bath in the list checked.
    description : str
        Type, expansion and n_exp of the bath (e.g. ``"DrudeLorentzBath (Pade, n_exp = 2)"``).
    expansion : str or None
        ``"matsubara"``, ``"pade"``, or None for a generic bath.
    n_exp : int or None
        Its n_exp (None for a generic bath).
    frequencies : numpy.ndarray
        The positive frequencies ``w`` checked (each at ``+w`` and ``-w``; 0 if given).
    spectrum_expansion : numpy.ndarray, shape (n_w, 2)
        ``S_exp(w)``, ``S_exp(-w)``.
    spectrum_exact : numpy.ndarray or None, shape (n_w, 2)
        ``S(w)``, ``S(-w)`` (None without a spectral density).
    spectrum_error : float or None
        ``max |S_exp(+-w) - S(+-w)| / S(|w|)`` over the frequencies: the error of the transition
        rates relative to the larger of the pair.
    detailed_balance_error : float or None
        ``max |r_exp - e^{-w/T}| / max(e^{-w/T}, DETAILED_BALANCE_FLOOR)`` with
        ``r_exp = S_exp(-w) / S_exp(w)``.
    positive : bool
        Whether ``S_exp >= 0`` at every frequency checked.
    ok : bool
        Positive and both errors within ``tol`` (positivity alone for a generic bath).
    suggested_n_exp : int or None
        Smallest n_exp of the same expansion that passes (searched from 0 up to
        :data:`MAX_N_EXP`); None for a generic bath or if none up to the cap does.
    alternative : tuple of (str, int) or None
        For a Drude-Lorentz bath: the other expansion and the smallest n_exp with which it passes.
    warnings : list of str
        Human-readable lines with the numbers.
    """

    index: int
    description: str
    expansion: str | None
    n_exp: int | None
    frequencies: np.ndarray
    spectrum_expansion: np.ndarray
    spectrum_exact: np.ndarray | None
    spectrum_error: float | None
    detailed_balance_error: float | None
    positive: bool
    ok: bool
    suggested_n_exp: int | None
    alternative: tuple[str, int] | None
    warnings: list[str]

    def to_json(self) -> dict:
        """A JSON-ready dict (arrays as lists)."""
        return {
            "index": self.index, "description": self.description, "expansion": self.expansion,
            "n_exp": self.n_exp, "frequencies": self.frequencies.tolist(),
            "spectrum_expansion": self.spectrum_expansion.tolist(),
            "spectrum_exact": None if self.spectrum_exact is None else self.spectrum_exact.tolist(),
            "spectrum_error": self.spectrum_error, "detailed_balance_error": self.detailed_balance_error,
            "positive": self.positive, "ok": self.ok, "suggested_n_exp": self.suggested_n_exp,
            "alternative": None if self.alternative is None else list(self.alternative),
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class ExpansionCheck:
    """The result of :func:`check_expansion` for one or more baths.

    Attributes
    ----------
    baths : list of BathCheck
        One per bath.
    tol : float
        The relative tolerance used.
    ok : bool
        Every bath passed.
    spectrum_error, detailed_balance_error : float or None
        The largest over the baths that have a spectral density (None if none has).
    suggested_n_exp : int or None
        The largest per-bath suggestion (one n_exp for all baths, as the pump uses); None if a
        bath has no suggestion.
    warnings : list of str
        Every bath's lines.
    """

    baths: list[BathCheck]
    tol: float
    ok: bool
    spectrum_error: float | None
    detailed_balance_error: float | None
    suggested_n_exp: int | None
    warnings: list[str]

    def to_json(self) -> dict:
        """A JSON-ready dict (strict JSON after :func:`qpump.output.to_strict_json`)."""
        return {
            "tol": self.tol, "ok": self.ok, "spectrum_error": self.spectrum_error,
            "detailed_balance_error": self.detailed_balance_error,
            "suggested_n_exp": self.suggested_n_exp, "warnings": list(self.warnings),
            "baths": [b.to_json() for b in self.baths],
        }


def _fmt(x: float) -> str:
    return f"{x:.2g}" if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e4) else f"{x:.3g}"


def _check_one(index: int, bath: ExponentialBath, w: np.ndarray, tol: float) -> BathCheck:
    errs = _errors(bath, w)
    expansion = _expansion_of(bath)
    n_exp = getattr(bath, "n_exp", None) if expansion is not None else None
    what = _describe(bath)
    lines: list[str] = []
    positive_ = not bool(np.any(errs.negative))
    for i, wi in enumerate(w):
        for side, sign in ((0, 1.0), (1, -1.0)):
            if errs.negative[i, side]:
                lines.append(
                    f"bath {index}: S_exp({_fmt(sign * wi)}) = {_fmt(errs.s_exp[i, side])} < 0 ({what}): "
                    "the expansion amplifies at this Bohr frequency, so the state need not stay a "
                    "density matrix")
    spectrum_error = balance_error = None
    if errs.spectrum_error is not None and errs.balance_error is not None and errs.s_exact is not None:
        spectrum_error = float(np.max(errs.spectrum_error)) if w.size else 0.0
        balance_error = float(np.max(errs.balance_error)) if w.size else 0.0
        T = _temperature(bath)
        for i, wi in enumerate(w):
            if errs.spectrum_error[i] > tol:
                k = int(np.argmax(np.abs(errs.s_exp[i] - errs.s_exact[i])))
                wk = wi if k == 0 else -wi
                lines.append(
                    f"bath {index}: S_exp({_fmt(wk)}) = {_fmt(errs.s_exp[i, k])} against "
                    f"S({_fmt(wk)}) = {_fmt(errs.s_exact[i, k])} (error {_fmt(errs.spectrum_error[i])} "
                    f"of S({_fmt(wi)}); {what})")
            if wi != 0 and errs.balance_error[i] > tol and T is not None:
                ratio = errs.s_exp[i, 1] / errs.s_exp[i, 0] if errs.s_exp[i, 0] != 0 else math.inf
                lines.append(
                    f"bath {index}: S(-{_fmt(wi)})/S({_fmt(wi)}) = {_fmt(ratio)}, e^{{-w/T}} = "
                    f"{_fmt(math.exp(-wi / T))} at T = {T:g} ({what}): detailed balance broken "
                    f"(relative error {_fmt(errs.balance_error[i])})")
    ok = _passes(errs, tol)
    suggested = _suggest(bath, w, tol, expansion)
    if ok and n_exp is not None and suggested is not None and suggested > n_exp:
        suggested = n_exp  # non-monotonic: the n_exp given passes already
    alternative = None
    if isinstance(bath, DrudeLorentzBath):
        other = "pade" if bath.expansion == "matsubara" else "matsubara"
        n_other = _suggest(bath, w, tol, other)
        alternative = (other, n_other) if n_other is not None else None
    if not ok:
        if errs.s_exact is None:
            lines.append(f"bath {index}: a generic bath has no spectral density here: only the "
                         "positivity of S_exp was checked")
        elif expansion is None:
            lines.append(f"bath {index}: no n_exp to raise for a {type(bath).__name__}: refit or "
                         "extend its exponents")
        elif suggested is not None:
            advice = f"bath {index}: raise n_exp to {suggested}"
            if alternative is not None and alternative[1] < suggested:
                advice += f" (or use {alternative[0]} with n_exp = {alternative[1]})"
            lines.append(advice)
        else:
            advice = (f"bath {index}: no n_exp up to {MAX_N_EXP[expansion]} of this expansion "
                      f"reaches tol = {tol:g}")
            if alternative is not None:
                advice += f"; {alternative[0]} does with n_exp = {alternative[1]}"
            lines.append(advice)
    elif errs.s_exact is None:
        lines.append(f"bath {index}: S_exp is positive at every frequency checked (a generic bath "
                     "has no spectral density here: only positivity was checked)")
    return BathCheck(
        index=index, description=f"{type(bath).__name__} ({what})", expansion=expansion,
        n_exp=n_exp, frequencies=w.copy(), spectrum_expansion=errs.s_exp, spectrum_exact=errs.s_exact,
        spectrum_error=spectrum_error, detailed_balance_error=balance_error, positive=positive_,
        ok=ok, suggested_n_exp=suggested, alternative=alternative, warnings=[x for x in lines if x])


def check_expansion(
    bath: ExponentialBath | Sequence[ExponentialBath],
    bohr_frequencies: ArrayLike,
    *,
    tol: float = 0.01,
) -> ExpansionCheck:
    """Check a bath expansion at the system's Bohr frequencies, before any run.

    At every frequency ``w`` given (and at ``-w``) the expansion's spectrum
    (:func:`expansion_spectrum`, terminator included) is compared with the exact one
    (:func:`exact_spectrum`), and its detailed-balance ratio ``S_exp(-w) / S_exp(w)`` with
    ``e^{-w/T}``. A bath passes if ``S_exp`` is positive there and both relative errors are within
    ``tol``. A generic :class:`~qpump.heom.ExponentialBath` has no spectral density: only the
    positivity of ``S_exp`` is checked, and the warnings say so. For a Drude-Lorentz or underdamped
    bath the smallest sufficient n_exp of the same expansion is searched (the baths are rebuilt,
    which costs microseconds) and, for Drude-Lorentz, that of the other expansion too.

    Parameters
    ----------
    bath : ExponentialBath or sequence of ExponentialBath
        The bath(s), e.g. a ``HEOMSolver``'s ``baths``.
    bohr_frequencies : array_like
        Frequencies to check, e.g. :func:`bohr_frequencies` of the system Hamiltonian (with the
        bath's coupling operator: only the transitions it drives matter). Signs are ignored: each
        ``|w|`` is checked at ``+|w|`` and ``-|w|``. 0 checks ``S(0)`` (pure dephasing).
    tol : float, optional
        Relative tolerance of the spectrum and of detailed balance (default 0.01).

    Returns
    -------
    ExpansionCheck

    Raises
    ------
    InvalidParameterError
        If ``tol`` is not positive, a frequency is not finite, or a bath is not a bath.

    Examples
    --------
    Two Pade poles at T = 0.1 break detailed balance at the Bohr frequency 1.118 of
    ``H = 0.25 sigma_z + 0.5 sigma_x``::

        b = DrudeLorentzBath(sz, kappa=0.1, gamma=1.0, T=0.1, n_exp=2, expansion="pade")
        check_expansion(b, bohr_frequencies(H, sz)).warnings
        # ['bath 0: S_exp(1.12) = 0.234 against S(1.12) = 0.199 (error 0.18 of S(1.12); ...)',
        #  'bath 0: S(-1.12)/S(1.12) = 0.151, e^{-w/T} = 1.4e-05 at T = 0.1 (Pade, n_exp = 2): ...',
        #  'bath 0: raise n_exp to ...']
    """
    tol = positive("tol", tol)
    baths = [bath] if isinstance(bath, ExponentialBath) else list(bath)
    for i, b in enumerate(baths):
        if not isinstance(b, ExponentialBath):
            raise InvalidParameterError(f"bath[{i}] = {b!r} is not a bath (an ExponentialBath)")
    w = np.atleast_1d(np.asarray(bohr_frequencies, dtype=float))
    if w.ndim != 1 or not np.all(np.isfinite(w)):
        raise InvalidParameterError(f"bohr_frequencies = {w} must be a 1-D array of finite numbers")
    w = np.unique(np.abs(w))
    return _aggregate([_check_one(i, b, w, tol) for i, b in enumerate(baths)], tol)


def check_model(H: ArrayLike, baths: Sequence[ExponentialBath], *, tol: float = 0.01) -> ExpansionCheck:
    """:func:`check_expansion` of every bath at the Bohr frequencies of H that its coupling drives.

    Parameters
    ----------
    H : array_like, shape (d, d)
        The system Hamiltonian (e.g. ``HeatPump.coupled_hamiltonian``, or ``solver.H``).
    baths : sequence of ExponentialBath
        The baths (e.g. ``solver.baths``); bath K is checked at ``bohr_frequencies(H, baths[K].Q)``.
    tol : float, optional
        Relative tolerance (default 0.01).

    Returns
    -------
    ExpansionCheck

    Raises
    ------
    InvalidParameterError
        For a non-Hermitian H, a bath whose Q does not match it, or ``tol <= 0``.
    """
    tol = positive("tol", tol)
    checks = []
    for i, b in enumerate(baths):
        if not isinstance(b, ExponentialBath):
            raise InvalidParameterError(f"baths[{i}] = {b!r} is not a bath (an ExponentialBath)")
        w = np.unique(np.abs(bohr_frequencies(H, b.Q)))
        checks.append(_check_one(i, b, w, tol))
    return _aggregate(checks, tol)


def _aggregate(checks: list[BathCheck], tol: float) -> ExpansionCheck:
    spectral = [c for c in checks if c.spectrum_error is not None]
    suggestions = [c.suggested_n_exp for c in checks]
    return ExpansionCheck(
        baths=checks, tol=tol, ok=all(c.ok for c in checks),
        spectrum_error=max((c.spectrum_error or 0.0 for c in spectral), default=None),
        detailed_balance_error=max((c.detailed_balance_error or 0.0 for c in spectral), default=None),
        suggested_n_exp=None if not checks or None in suggestions else max(s for s in suggestions
                                                                        if s is not None),
        warnings=[line for c in checks for line in c.warnings],
    )


# ----------------------------------------------------------------------------------------------
# Automatic truncation
# ----------------------------------------------------------------------------------------------

#: ``estimate(depth, n_exp, expansion) -> (n_ados or None, bytes)``: the size of a run, before it
#: is built.
Estimate = Callable[[int, int, str], tuple[int | None, int]]


@dataclass
class ConvergenceRow:
    """One run (or one refused run) of :func:`converge`.

    Attributes
    ----------
    depth, n_exp, expansion
        The truncation.
    n_ados : int or None
        Number of ADOs (None when neither the estimate nor the built object tells).
    memory_bytes : int or None
        The estimated memory the run was checked against (None without an estimate).
    status : str
        ``"ok"``, ``"failed"`` (the run raised: ``error`` says what; typically a truncation so
        poor that the state is not a density matrix), ``"memory limit"`` or ``"time limit"``
        (not started).
    norm : float or None
        ``||q||`` (Frobenius norm of the quantity array).
    values : list or None
        The quantity itself when it has at most 4 entries (complex ones as ``[re, im]``).
    change : float or None
        ``max |q - q_prev|`` against ``compared_with`` (None for the first run and when either
        run failed).
    compared_with : tuple of (int, int) or None
        The (depth, n_exp) of the run compared against, one step down in depth or n_exp.
    seconds : float
        Wall time of ``build`` plus ``quantity``.
    error : str or None
        The exception of a failed run.
    summary : str
        The quantity as shown in a table line (its entries, or its norm).
    """

    depth: int
    n_exp: int
    expansion: str
    n_ados: int | None
    memory_bytes: int | None
    status: str
    norm: float | None = None
    values: list | None = None
    change: float | None = None
    compared_with: tuple[int, int] | None = None
    seconds: float = 0.0
    error: str | None = None
    summary: str = ""

    def __str__(self) -> str:
        parts = [f"{self.expansion:9s} depth {self.depth:2d} n_exp {self.n_exp:2d}",
                 f"ADOs {self.n_ados if self.n_ados is not None else '?':>6}"]
        if self.status == "ok":
            parts.append(f"q = {self.summary}")
            if self.compared_with is not None:
                parts.append(f"change {self.change:.2e} vs {self.compared_with}" if self.change is not None
                             else f"no change vs {self.compared_with} (failed)")
        else:
            parts.append(self.status + (f": {self.error}" if self.error else ""))
        parts.append(f"{self.seconds:.2f} s")
        return "  ".join(parts)

    def to_json(self) -> dict:
        """A JSON-ready dict."""
        return {
            "depth": self.depth, "n_exp": self.n_exp, "expansion": self.expansion,
            "n_ados": self.n_ados, "memory_bytes": self.memory_bytes, "status": self.status,
            "norm": self.norm, "values": self.values, "change": self.change,
            "compared_with": None if self.compared_with is None else list(self.compared_with),
            "seconds": self.seconds, "error": self.error,
        }


@dataclass
class ExpansionOutcome:
    """The search of one expansion.

    Attributes
    ----------
    expansion : str
    converged : bool
    depth, n_exp : int
        The truncation reached (the converged one, or the last one tried).
    n_ados : int or None
    quantity : numpy.ndarray or None
        Its quantity (None if its run failed).
    change : float or None
        The larger of the two changes that validate it (raising depth, raising n_exp).
    reason : str or None
        Why it did not converge: ``"memory limit"``, ``"time limit"`` or ``"ranges exhausted"``.
    """

    expansion: str
    converged: bool
    depth: int
    n_exp: int
    n_ados: int | None
    quantity: np.ndarray | None
    change: float | None
    reason: str | None


@dataclass
class ConvergenceResult:
    """The result of :func:`converge`.

    Attributes
    ----------
    converged : bool
        A truncation was found at which raising the depth and raising n_exp each change the
        quantity by less than ``conv_tol`` (and the converged expansions agree, see
        :data:`DISAGREEMENT_FACTOR`).
    depth, n_exp, expansion
        The final truncation: of the converged expansions the one with the fewest ADOs (or, with
        none converged, the last one tried).
    quantity : numpy.ndarray or None
        The quantity at the final truncation.
    change : float or None
        The last change: the larger of the two changes that validate the final truncation.
    reason : str or None
        Why not converged: ``"memory limit"``, ``"time limit"``, ``"ranges exhausted"`` or
        ``"expansions disagree"``; None when converged.
    conv_tol : float
    seconds : float
        Total wall time.
    runs : int
        Number of runs executed (refused ones not counted).
    table : list of ConvergenceRow
        Every run in order, and a refused one where the search stopped.
    outcomes : dict of str to ExpansionOutcome
        Per expansion searched.
    expansion_difference : float or None
        ``max |q_a - q_b|`` over the converged expansions (None with fewer than two).
    warnings : list of str
    """

    converged: bool
    depth: int
    n_exp: int
    expansion: str
    quantity: np.ndarray | None
    change: float | None
    reason: str | None
    conv_tol: float
    seconds: float
    runs: int
    table: list[ConvergenceRow]
    outcomes: dict[str, ExpansionOutcome]
    expansion_difference: float | None
    warnings: list[str] = field(default_factory=list)

    def table_text(self) -> str:
        """The table, one line per row."""
        return "\n".join(str(row) for row in self.table)

    def to_json(self) -> dict:
        """The JSON object of a ``--json`` output (strict JSON after
        :func:`qpump.output.to_strict_json`; complex entries as ``[re, im]``)."""
        return {
            "converged": self.converged, "depth": self.depth, "n_exp": self.n_exp,
            "expansion": self.expansion, "quantity": _json_values(self.quantity, 4096),
            "change": self.change, "reason": self.reason, "conv_tol": self.conv_tol,
            "seconds": self.seconds, "runs": self.runs,
            "expansion_difference": self.expansion_difference, "warnings": list(self.warnings),
            "outcomes": {
                name: {"converged": o.converged, "depth": o.depth, "n_exp": o.n_exp,
                       "n_ados": o.n_ados, "change": o.change, "reason": o.reason,
                       "quantity": _json_values(o.quantity, 4096)}
                for name, o in self.outcomes.items()
            },
            "table": [row.to_json() for row in self.table],
        }


def _summary(q: np.ndarray) -> str:
    """The quantity of a table line: its entries (at most 4, 9 digits) or its norm."""
    if q.size > 4:
        return f"|q| = {float(np.linalg.norm(q.ravel())):.9g}"
    if np.iscomplexobj(q) and np.max(np.abs(q.imag)) <= 1e-12 * max(float(np.max(np.abs(q))), 1e-300):
        q = q.real  # rounding: a Hermitian rho's real off-diagonals
    return "[" + ", ".join(f"{v:.9g}" for v in q.ravel()) + "]"


def _json_values(q: np.ndarray | None, limit: int) -> list | None:
    """``q`` as a nested list (complex entries as [re, im]), or None if absent or too large."""
    if q is None or q.size > limit:
        return None
    if np.iscomplexobj(q):
        if not np.any(q.imag):
            return np.asarray(q.real).tolist()
        return np.stack([q.real, q.imag], axis=-1).tolist()
    return np.asarray(q, dtype=float).tolist()


class _Stop(Exception):
    """The search stops: ``reason`` is "memory limit" or "time limit"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Point:
    depth: int
    n_exp: int
    quantity: np.ndarray | None
    n_ados: int | None


class _Runner:
    """Runs truncations once each (cached), checks memory and time first, records the table."""

    def __init__(self, build: Callable[[int, int, str], Any], quantity: Callable[[Any], ArrayLike],
                 estimate: Estimate | None, memory_limit: int | None, time_limit: float | None,
                 progress: Callable[[ConvergenceRow], None] | None) -> None:
        self.build, self.quantity, self.estimate = build, quantity, estimate
        self.memory_limit, self.time_limit, self.progress = memory_limit, time_limit, progress
        self.start = time.perf_counter()
        self.table: list[ConvergenceRow] = []
        self.cache: dict[tuple[int, int, str], _Point] = {}
        self.runs = 0
        self.last: tuple[float, int | None] | None = None  # seconds and n_ados of the last run

    def _emit(self, row: ConvergenceRow) -> None:
        self.table.append(row)
        if self.progress is not None:
            self.progress(row)

    def run(self, depth: int, n_exp: int, expansion: str, against: _Point | None) -> _Point:
        key = (depth, n_exp, expansion)
        point = self.cache.get(key)
        if point is None:
            point = self._execute(depth, n_exp, expansion)
            self.cache[key] = point
            row = self.table[-1]
            if against is not None:
                row.compared_with = (against.depth, against.n_exp)
                row.change = _change(point.quantity, against.quantity)
            if self.progress is not None:
                self.progress(row)
        return point

    def _execute(self, depth: int, n_exp: int, expansion: str) -> _Point:
        n_ados, need = None, None
        if self.estimate is not None:
            n_ados, need = self.estimate(depth, n_exp, expansion)
        row = ConvergenceRow(depth, n_exp, expansion, n_ados, need, "ok")
        if self.time_limit is not None:
            elapsed = time.perf_counter() - self.start
            projected = 0.0
            if self.last is not None:
                seconds, last_ados = self.last
                projected = seconds * (n_ados / last_ados if n_ados and last_ados else 1.0)
            if elapsed + projected > self.time_limit:
                row.status = "time limit"
                row.error = (f"not started: {elapsed:.3g} s spent, about {projected:.3g} s more "
                             f"projected, limit {self.time_limit:g} s")
                self._emit(row)
                raise _Stop("time limit")
        if need is not None and self.memory_limit is not None and need > self.memory_limit:
            row.status = "memory limit"
            row.error = (f"not started: estimated {format_bytes(need)} > limit "
                         f"{format_bytes(self.memory_limit)}")
            self._emit(row)
            raise _Stop("memory limit")
        t0 = time.perf_counter()
        q: np.ndarray | None = None
        try:
            built = self.build(depth, n_exp, expansion)
            if row.n_ados is None and isinstance(getattr(built, "n_ados", None), int):
                row.n_ados = int(built.n_ados)
            q = np.array(self.quantity(built))
        except HierarchyTooLargeError as err:  # the solver's own check (no or a low estimate)
            row.status, row.error = "memory limit", str(err)
            row.seconds = time.perf_counter() - t0
            self._emit(row)
            raise _Stop("memory limit") from None
        except QpumpError as err:  # the truncation is too poor for the model, or not available
            row.status, row.error = "failed", f"{type(err).__name__}: {err}"
        row.seconds = time.perf_counter() - t0
        self.runs += 1
        self.last = (row.seconds, row.n_ados)
        if q is not None:
            if not np.issubdtype(q.dtype, np.number) or not np.all(np.isfinite(q)):
                row.status, row.error = "failed", "the quantity is not an array of finite numbers"
                q = None
            else:
                row.norm = float(np.linalg.norm(q.ravel()))
                row.values = _json_values(q, 4)
                row.summary = _summary(q)
        self.table.append(row)  # progress is called once the change is known
        return _Point(depth, n_exp, q, row.n_ados)


def _change(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    """``max |a - b|`` (None if either is missing)."""
    if a is None or b is None:
        return None
    if a.shape != b.shape:
        raise InvalidParameterError(
            f"quantity returned arrays of shapes {b.shape} and {a.shape} at two truncations: it "
            "must return the same shape at every truncation")
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def _search(runner: _Runner, expansion: str, depths: list[int], n_exps: list[int],
            tol: float) -> ExpansionOutcome:
    """Raise depth and n_exp alternately at one expansion (see :func:`converge`)."""
    i = j = 0
    p: _Point | None = None
    checks: dict[str, float] = {}  # the changes that validate p, by direction

    def outcome(converged: bool, reason: str | None) -> ExpansionOutcome:
        if p is None:
            return ExpansionOutcome(expansion, False, depths[i], n_exps[j], None, None, None, reason)
        change = max(checks.values()) if converged else None
        return ExpansionOutcome(expansion, converged, p.depth, p.n_exp, p.n_ados, p.quantity,
                                change, reason)

    try:
        p = runner.run(depths[0], n_exps[0], expansion, None)
        direction = "depth"
        while len(checks) < 2:
            if direction in checks:
                direction = "n_exp" if direction == "depth" else "depth"
            if direction == "depth":
                if i + 1 >= len(depths):
                    return outcome(False, "ranges exhausted")
                q = runner.run(depths[i + 1], n_exps[j], expansion, p)
            else:
                if j + 1 >= len(n_exps):
                    return outcome(False, "ranges exhausted")
                q = runner.run(depths[i], n_exps[j + 1], expansion, p)
            change = _change(q.quantity, p.quantity)
            if change is not None and change < tol:
                checks[direction] = change
                continue
            # Not converged in this direction: move there; the other direction must be re-checked.
            if direction == "depth":
                i += 1
            else:
                j += 1
            p = q
            checks.clear()
            if q.quantity is None:  # a failed run: let the other direction try next
                direction = "n_exp" if direction == "depth" else "depth"
        return outcome(True, None)
    except _Stop as stop:
        return outcome(False, stop.reason)


def _sorted_ints(name: str, values: Sequence[int]) -> list[int]:
    try:
        items = list(values)
    except TypeError:
        raise InvalidParameterError(f"{name} = {values!r} is not a sequence of integers") from None
    if not items:
        raise InvalidParameterError(f"{name} is empty: give at least one value")
    out = [non_negative_int(f"{name}[{k}]", v) for k, v in enumerate(items)]
    if any(b <= a for a, b in zip(out, out[1:], strict=False)):
        raise InvalidParameterError(f"{name} = {out} must be strictly increasing")
    return out


def converge(
    build: Callable[[int, int, str], Any],
    quantity: Callable[[Any], ArrayLike],
    *,
    conv_tol: float = 1e-5,
    depths: Sequence[int] = range(1, 13),
    n_exps: Sequence[int] = range(0, 9),
    expansions: Sequence[str] = SEARCH_ORDER,
    memory_limit_bytes: int | None = None,
    time_limit_s: float | None = None,
    progress: Callable[[ConvergenceRow], None] | None = None,
    estimate: Estimate | None = None,
) -> ConvergenceResult:
    """Find the truncation (depth, n_exp, expansion) at which a quantity has converged.

    For each expansion in turn, starting at ``(depths[0], n_exps[0])``: the depth is raised (next
    entry of ``depths``) until the quantity changes by less than ``conv_tol``; then n_exp likewise
    (the bath is rebuilt by ``build``); if n_exp had to move, the depth is re-checked at the new
    n_exp, and so on, until one truncation P is validated in both directions: the next depth and
    the next n_exp each change the quantity by less than ``conv_tol``. P is the expansion's answer
    (the cheapest truncation the search vouches for). A run that fails (a
    :class:`~qpump.errors.QpumpError`, e.g. a steady state that is not a density matrix) counts as
    unconverged and turns the search to the other direction. At the end the converged expansions
    are compared; the final truncation is the converged one with the fewest ADOs.

    The change is ``max |q(a) - q(b)|`` over all entries of the quantity arrays (absolute, in the
    quantity's units: rho over a run, heat per cycle). Successive changes underestimate the error
    where convergence is slow (Matsubara terms: their changes fall as 1/N^3, the error as 1/N^2),
    which the comparison of expansions exposes: if two converged expansions differ by more than
    ``DISAGREEMENT_FACTOR * conv_tol``, the result is not converged (reason
    ``"expansions disagree"``). ``conv_tol`` should be well above the run's own accuracy (the
    integrator's rtol 1e-7 for dynamics), or the changes never fall below it.

    Parameters
    ----------
    build : callable
        ``build(depth, n_exp, expansion)`` returns what ``quantity`` consumes (a HEOMSolver, a
        HeatPump, ...). It must build the baths anew: n_exp belongs to the bath.
    quantity : callable
        ``quantity(built)`` returns the quantity, an array of the same shape at every truncation.
    conv_tol : float, optional
        Largest change accepted, > 0 (default 1e-5).
    depths, n_exps : sequence of int, optional
        Strictly increasing truncations to try (defaults 1..12 and 0..8).
    expansions : sequence of {"matsubara", "pade"}, optional
        The expansions to search, in this order (default both, Pade first: it converges with
        fewer exponents, so a time limit is spent on the likelier winner first).
    memory_limit_bytes : int, optional
        A run whose estimate exceeds it is not started (the search of that expansion stops with
        reason ``"memory limit"``). Needs ``estimate``; without one a ``HierarchyTooLargeError``
        raised by ``build`` or ``quantity`` stops the search the same way (pass the limit to your
        solver too).
    time_limit_s : float, optional
        Checked before each run: a run is not started if the time spent plus the projected time
        of the run (the last run's time scaled by the ratio of ADO counts, a low guess for a
        sparse LU) exceeds it. A run in progress is not interrupted.
    progress : callable, optional
        Called with each :class:`ConvergenceRow` as it is completed (``str(row)`` is a line).
    estimate : callable, optional
        ``estimate(depth, n_exp, expansion) -> (n_ados or None, bytes)``, the peak memory of a run,
        evaluated before it is built (e.g. :func:`hierarchy_estimate`).

    Returns
    -------
    ConvergenceResult

    Raises
    ------
    InvalidParameterError
        For ``conv_tol <= 0``, an empty or unsorted ``depths``/``n_exps``, an empty ``expansions``
        or an unknown one, a non-positive limit, or a quantity whose shape changes.
    """
    tol = positive("conv_tol", conv_tol)
    depth_list = _sorted_ints("depths", depths)
    n_list = _sorted_ints("n_exps", n_exps)
    exp_list = list(expansions) if not isinstance(expansions, str) else [expansions]
    if not exp_list:
        raise InvalidParameterError("expansions is empty: give 'matsubara', 'pade' or both")
    for k, e in enumerate(exp_list):
        if e not in EXPANSIONS:
            raise InvalidParameterError(f"expansions[{k}] = {e!r} must be one of {', '.join(EXPANSIONS)}")
    if len(set(exp_list)) != len(exp_list):
        raise InvalidParameterError(f"expansions = {exp_list} names one twice")
    limit = None if memory_limit_bytes is None else int(positive("memory_limit_bytes", memory_limit_bytes))
    tlimit = None if time_limit_s is None else positive("time_limit_s", time_limit_s)
    for name, f in (("build", build), ("quantity", quantity)):
        if not callable(f):
            raise InvalidParameterError(f"{name} = {f!r} is not callable")

    runner = _Runner(build, quantity, estimate, limit, tlimit, progress)
    outcomes: dict[str, ExpansionOutcome] = {}
    for e in exp_list:
        outcomes[e] = _search(runner, e, depth_list, n_list, tol)
        if outcomes[e].reason == "time limit":
            break
    seconds = time.perf_counter() - runner.start

    done = [o for o in outcomes.values() if o.converged]
    warnings: list[str] = []
    difference = None
    if len(done) >= 2:
        difference = max(_change(a.quantity, b.quantity) or 0.0
                         for a in done for b in done if a is not b)
    if done:
        final = min(done, key=lambda o: (o.n_ados if o.n_ados is not None else math.inf,
                                         o.depth + o.n_exp))
        converged, reason = True, None
        if difference is not None and difference > DISAGREEMENT_FACTOR * tol:
            converged, reason = False, "expansions disagree"
            warnings.append(
                f"the converged expansions differ by {difference:.3g} > {DISAGREEMENT_FACTOR:g} x "
                f"conv_tol: at least one has stopped changing without converging (Matsubara's "
                "changes fall faster than its error); trust the one that agrees with a larger run")
        elif difference is not None and difference > tol:
            warnings.append(
                f"the converged expansions differ by {difference:.3g} > conv_tol = {tol:g}: the error "
                f"of the answer ({final.expansion}) is probably of that size, not conv_tol")
    else:
        final = list(outcomes.values())[-1]
        converged = False
        reasons = [o.reason for o in outcomes.values()]
        reason = next((r for r in ("time limit", "memory limit") if r in reasons), "ranges exhausted")
    for o in outcomes.values():
        if not o.converged:
            line = f"{o.expansion}: not converged ({o.reason}) at depth {o.depth}, n_exp {o.n_exp}"
            gap = _change(o.quantity, final.quantity) if final is not o else None
            if gap is not None:
                line += f"; there it differs from the final answer by {gap:.3g}"
            warnings.append(line)
    if runner.table and all(r.status == "failed" for r in runner.table if r.status != "ok") \
            and not any(r.status == "ok" for r in runner.table):
        first = next(r for r in runner.table if r.error)
        warnings.append(f"every run failed; the first: {first.error}")
    return ConvergenceResult(
        converged=converged, depth=final.depth, n_exp=final.n_exp, expansion=final.expansion,
        quantity=final.quantity, change=final.change, reason=reason, conv_tol=tol, seconds=seconds,
        runs=runner.runs, table=runner.table, outcomes=outcomes, expansion_difference=difference,
        warnings=warnings)


# ----------------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------------

BathsFactory = Callable[[int, str], Sequence[ExponentialBath]]


def hierarchy_estimate(d: int, baths_factory: BathsFactory, *, steady_state: bool = True,
                       extra_bytes: int = 0) -> Estimate:
    """An ``estimate`` for :func:`converge`: the memory of a HEOMSolver run, before it is built.

    The baths are built (cheap: exponents only) to count the exponents K; then ``n_ados =
    _core.ado_count(K, depth)`` and the peak is this process's memory now, plus the ADOs and
    integrator history (``_core.solver_memory_bytes``), plus the sparse LU of a steady state
    (:func:`qpump.heom.steady_state_memory_bytes`) if ``steady_state``, plus ``extra_bytes``.

    Parameters
    ----------
    d : int
        System dimension.
    baths_factory : callable
        ``baths_factory(n_exp, expansion)`` -> the baths.
    steady_state : bool, optional
        Whether the run solves a steady state (or uses the steady-state frame).
    extra_bytes : int, optional
        Further memory of the run (e.g. its time series).

    Returns
    -------
    callable
        ``estimate(depth, n_exp, expansion) -> (n_ados, bytes)``; a hierarchy too large to index
        gives ``(None, a huge number)``.
    """

    def estimate(depth: int, n_exp: int, expansion: str) -> tuple[int | None, int]:
        try:
            k = sum(len(b.exponents) for b in baths_factory(n_exp, expansion))
        except InvalidParameterError:  # the run will fail and say why
            return None, 0
        n_ados = _core.ado_count(k, depth)
        if n_ados is None or n_ados >= 2**32 - 1:
            return None, 2**63
        need = _core.solver_memory_bytes(n_ados, d, k)
        if steady_state:
            need += steady_state_memory_bytes(n_ados, d, k, depth)
        return n_ados, int(process_memory_bytes() + need + extra_bytes)

    return estimate


def _solver_builder(H: np.ndarray, baths_factory: BathsFactory, memory_limit_bytes: int | None,
                    solver_options: dict[str, Any] | None) -> Callable[[int, int, str], HEOMSolver]:
    options = dict(solver_options or {})

    def build(depth: int, n_exp: int, expansion: str) -> HEOMSolver:
        return HEOMSolver(H, list(baths_factory(n_exp, expansion)), depth,
                          memory_limit_bytes=memory_limit_bytes, **options)

    return build


def converge_steady_state(
    H: ArrayLike,
    baths_factory: BathsFactory,
    *,
    conv_tol: float = 1e-5,
    depths: Sequence[int] = range(1, 13),
    n_exps: Sequence[int] = range(0, 9),
    expansions: Sequence[str] = SEARCH_ORDER,
    memory_limit_bytes: int | None = None,
    time_limit_s: float | None = None,
    progress: Callable[[ConvergenceRow], None] | None = None,
    solver_options: dict[str, Any] | None = None,
) -> ConvergenceResult:
    """Converge the steady-state density matrix of any model in the truncation.

    The quantity is ``HEOMSolver(H, baths_factory(n_exp, expansion), depth).steady_state().rho``
    (a (d, d) complex array; the change is the largest entry-wise difference). A truncation too
    poor for the model gives a steady state that is not a density matrix, which counts as a failed
    run (see :func:`converge`).

    Parameters
    ----------
    H : array_like, shape (d, d)
        System Hamiltonian.
    baths_factory : callable
        ``baths_factory(n_exp, expansion)`` returns the baths with that expansion, e.g.
        ``lambda n, e: [DrudeLorentzBath(Q, 0.1, 1.0, 0.5, n_exp=n, expansion=e)]``.
    conv_tol, depths, n_exps, expansions, memory_limit_bytes, time_limit_s, progress
        As in :func:`converge` (the memory estimate is :func:`hierarchy_estimate` with the LU).
    solver_options : dict, optional
        Further keyword arguments of :class:`~qpump.heom.HEOMSolver`.

    Returns
    -------
    ConvergenceResult
    """
    h = hermitian("H", H)
    if not callable(baths_factory):
        raise InvalidParameterError(f"baths_factory = {baths_factory!r} is not callable")
    return converge(
        _solver_builder(h, baths_factory, memory_limit_bytes, solver_options),
        lambda solver: solver.steady_state().rho,
        conv_tol=conv_tol, depths=depths, n_exps=n_exps, expansions=expansions,
        memory_limit_bytes=memory_limit_bytes, time_limit_s=time_limit_s, progress=progress,
        estimate=hierarchy_estimate(h.shape[0], baths_factory, steady_state=True))


def converge_dynamics(
    H: ArrayLike,
    baths_factory: BathsFactory,
    rho0: ArrayLike,
    times: ArrayLike,
    *,
    conv_tol: float = 1e-5,
    depths: Sequence[int] = range(1, 13),
    n_exps: Sequence[int] = range(0, 9),
    expansions: Sequence[str] = SEARCH_ORDER,
    memory_limit_bytes: int | None = None,
    time_limit_s: float | None = None,
    progress: Callable[[ConvergenceRow], None] | None = None,
    solver_options: dict[str, Any] | None = None,
) -> ConvergenceResult:
    """Converge the dynamics rho(t) of any model in the truncation.

    The quantity is ``HEOMSolver(...).run(rho0, times).rho``, shape (n_t, d, d); the change is
    the largest entry-wise difference over the whole run. The integrator's own error (rtol
    1e-7 by default) bounds how small ``conv_tol`` can usefully be.

    Parameters
    ----------
    H : array_like, shape (d, d)
        System Hamiltonian.
    baths_factory : callable
        ``baths_factory(n_exp, expansion)`` returns the baths.
    rho0 : array_like, shape (d, d)
        Initial system state (a product with the baths' equilibrium).
    times : array_like
        Output times.
    conv_tol, depths, n_exps, expansions, memory_limit_bytes, time_limit_s, progress
        As in :func:`converge`.
    solver_options : dict, optional
        Further keyword arguments of :class:`~qpump.heom.HEOMSolver` (rtol, atol, ...).

    Returns
    -------
    ConvergenceResult
    """
    h = hermitian("H", H)
    if not callable(baths_factory):
        raise InvalidParameterError(f"baths_factory = {baths_factory!r} is not callable")
    t = np.asarray(times, dtype=float)
    rho = np.asarray(rho0, dtype=complex)
    d = h.shape[0]
    series = int(4 * t.size * d * d * 16)
    return converge(
        _solver_builder(h, baths_factory, memory_limit_bytes, solver_options),
        lambda solver: solver.run(rho, t).rho,
        conv_tol=conv_tol, depths=depths, n_exps=n_exps, expansions=expansions,
        memory_limit_bytes=memory_limit_bytes, time_limit_s=time_limit_s, progress=progress,
        # the steady-state frame (an LU) is used on small hierarchies: count it always
        estimate=hierarchy_estimate(d, baths_factory, steady_state=True, extra_bytes=series))
