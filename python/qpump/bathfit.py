"""Bath correlation functions from spectral densities, and their fit to sums of exponentials.

The HEOM needs the correlation function of each bath as a sum of exponentials (docs/heom.md).
For a spectral density without a known expansion this module

1. computes the correlation function by quadrature (:func:`correlation_from_spectral_density`),
2. gives the closed form of the (sub-/super-)Ohmic bath as a reference
   (:func:`ohmic_spectral_density`, :func:`ohmic_correlation`),
3. fits the real and the imaginary part of a sampled correlation function, each a real function
   of t, to a sum of decaying exponentials (:func:`fit_correlation`, :func:`fit_spectral_density`),
   returning an :class:`ExponentFit` in QuTiP's ``BosonicBath`` convention.

Conventions (docs/heom.md, identical to QuTiP's): hbar = k_B = 1 and

    C(t) = (1/pi) Int_0^inf dw J(w) [coth(w / 2T) cos(w t) - i sin(w t)].

The module is pure numpy/scipy: it does not use the Rust core.

References
----------
- T. Ooura and M. Mori, J. Comput. Appl. Math. 112, 229 (1999): the double-exponential formula
  for Fourier-type integrals used for slowly decaying tails of J.
- R. Roy and T. Kailath, IEEE Trans. Acoust. Speech Signal Process. 37, 984 (1989) (ESPRIT), and
  Y. Hua and T. K. Sarkar, IEEE Trans. Acoust. Speech Signal Process. 38, 814 (1990) (matrix
  pencil): the exponents of a uniformly sampled sum of exponentials from the shift invariance
  of its Hankel matrix.
- N. Lambert et al., Phys. Rev. Research 5, 013181 (2023) (QuTiP-BoFiN) and Y.-T. Huang et al.,
  Commun. Phys. 6, 313 (2023) (HierarchicalEOM.jl): HEOM with fitted bath correlation functions.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.integrate
import scipy.linalg
import scipy.optimize
import scipy.special
from numpy.typing import ArrayLike, NDArray
from threadpoolctl import threadpool_limits

from ._validate import finite, positive, positive_int
from .errors import ComputationError, InvalidParameterError

__all__ = [
    "ExponentFit",
    "correlation_from_spectral_density",
    "ohmic_spectral_density",
    "ohmic_correlation",
    "fit_correlation",
    "fit_spectral_density",
]

FloatArray = NDArray[np.float64]
ComplexArray = NDArray[np.complex128]
SpectralDensity = Callable[[FloatArray], ArrayLike]

# --------------------------------------------------------------------------------------------
# Quadrature of C(t)
# --------------------------------------------------------------------------------------------

#: Gauss-Legendre rule used on every panel of [0, W].
_GL_X, _GL_W = np.polynomial.legendre.leggauss(16)
#: Largest phase w t across one panel: 16-point Gauss-Legendre integrates exp(i w t) over a panel
#: of phase 8 to 1e-15 (measured), so 6 leaves a margin for the variation of J.
_PANEL_PHASE = 6.0
#: Relative accuracy asked of each panel of the adaptive mesh on [0, W] (in units of the total
#: mass of |J coth| + |J|).
_MESH_EPS = 1e-15
#: Frequency scan used to find the support and the tail of J: 50 points per decade.
_SCAN = np.logspace(-9.0, 13.0, 22 * 50 + 1)
#: Most quadrature nodes of [0, W] for one call (the cost grows like W t_max).
_MAX_NODES = 4_000_000
#: Ooura-Mori parameter M (mesh h = pi / M): 1e-15 on int_0^inf cos(w x)/(x + a) dx (measured).
_OM_M = 64
#: Largest ESPRIT pencil parameter (rows of the Hankel matrix less one): beyond ~100 the fits
#: measured no better, and the SVD costs grow like its square.
_PENCIL_CAP = 250
#: Singular values of the Hankel matrix below this fraction of the largest are rounding noise.
_RANK_RTOL = 1e-13


def _check_spectral_density(J: object) -> SpectralDensity:
    if not callable(J):
        raise InvalidParameterError(f"J = {J!r} must be a callable J(w) accepting a numpy array")
    return J  # type: ignore[return-value]


class _Integrand:
    """J(w) coth(w / 2T) and J(w) at w > 0, with the checks on what J returns."""

    def __init__(self, J: SpectralDensity, T: float) -> None:
        self.J = J
        self.T = T

    def __call__(self, w: FloatArray) -> tuple[FloatArray, FloatArray]:
        with np.errstate(all="ignore"):
            raw = self.J(w)
        try:
            val = np.broadcast_to(np.asarray(raw), w.shape)
        except ValueError:
            raise InvalidParameterError(
                f"J(w) returned shape {np.shape(raw)} for w of shape {w.shape}: J must act elementwise"
            ) from None
        if np.iscomplexobj(val):
            if np.any(val.imag != 0):
                k = int(np.argmax(np.abs(val.imag).ravel()))
                raise InvalidParameterError(
                    f"J(w) must be real, got J({w.ravel()[k]:.6g}) = {val.ravel()[k]!r}"
                )
            val = val.real
        try:
            j = np.asarray(val, dtype=float)
        except (TypeError, ValueError):
            raise InvalidParameterError(f"J(w) returned non-numeric values of type {val.dtype}") from None
        if not np.all(np.isfinite(j)):
            k = int(np.argmin(np.isfinite(j).ravel()))
            raise InvalidParameterError(
                f"J(w) must be finite for w > 0, got J({w.ravel()[k]:.6g}) = {j.ravel()[k]}; "
                "if J is only meaningful below some frequency, give w_max"
            )
        # w > 0 always (Gauss nodes are interior), so tanh(w / 2T) > 0: no 0/0 at w -> 0.
        return j / np.tanh(w / (2.0 * self.T)), j


def _panel_nodes(a: FloatArray, b: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Gauss-Legendre nodes and weights of the panels [a_i, b_i], shape (n_panels, 16)."""
    mid = 0.5 * (a + b)[:, None]
    half = 0.5 * (b - a)[:, None]
    return mid + half * _GL_X, half * _GL_W


def _ooura_mori_rule(kind: str) -> tuple[FloatArray, FloatArray]:
    """Nodes ``M phi(u_n)`` and weights of the Ooura-Mori (1999) formula for ``omega = 1``.

    ``int_0^inf f(x) trig(omega x) dx ~= (1/omega) sum_n weight_n f(node_n / omega)`` with
    ``trig`` = sin (``kind="sin"``, u_n = n h) or cos (u_n = (n - 1/2) h), h = pi / M,
    ``phi(u) = u / (1 - exp(-2u - alpha (1 - e^-u) - beta (e^u - 1)))``, beta = 1/4 and
    ``alpha = beta / sqrt(1 + M log(1 + M) / (4 pi))``. The factor trig(M phi(u_n)) is folded into
    the weight; for u > 0 it is evaluated as +-sin(M (phi(u) - u)), which is accurate where it is
    doubly exponentially small.
    """
    M = float(_OM_M)
    h = math.pi / M
    beta = 0.25
    alpha = beta / math.sqrt(1.0 + M * math.log1p(M) / (4.0 * math.pi))
    n = np.arange(-12 * _OM_M, 4 * _OM_M + 1, dtype=float)
    u = n * h if kind == "sin" else (n - 0.5) * h
    with np.errstate(over="ignore"):
        g = 2.0 * u - alpha * np.expm1(-u) + beta * np.expm1(u)
    keep = (g > -80.0) & (g < 80.0)  # outside, the terms are below 1e-34 of the largest
    n, u, g = n[keep], u[keep], g[keep]
    gp = 2.0 + alpha * np.exp(-u) + beta * np.exp(u)
    one_minus = -np.expm1(-g)  # 1 - exp(-g)
    zero = u == 0.0
    safe = np.where(zero, 1.0, one_minus)
    phi = np.where(zero, 0.0, u / safe)
    dphi = (one_minus - u * gp * np.exp(-g)) / safe**2
    g1, g2 = 2.0 + alpha + beta, 0.5 * (beta - alpha)  # g(u) = g1 u + g2 u^2 + O(u^3)
    phi = np.where(zero, 1.0 / g1, phi)
    dphi = np.where(zero, (0.5 * g1**2 - g2) / g1**2, dphi)
    sign = np.where(n % 2 == 0, 1.0, -1.0)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        small = sign * np.sin(M * u / np.expm1(g))  # sin or cos of M phi, near its zero
    direct = np.sin(M * phi) if kind == "sin" else np.cos(M * phi)
    trig = np.where(u > 0.5, small, direct)
    return M * phi, math.pi * dphi * trig


_OM_SIN = _ooura_mori_rule("sin")
_OM_COS = _ooura_mori_rule("cos")


class _Quadrature:
    """C(t) of a spectral density, by a Gauss-Legendre mesh on [0, W] plus a tail on [W, inf).

    The mesh on [0, W] starts from a logarithmic grid (10 panels per decade from 1e-9, so that
    features at every scale and the w -> 0 end are resolved) and is bisected adaptively until
    16-point Gauss-Legendre on each panel agrees with the rule on its two halves to 1e-15 of the
    total mass of |J coth(w/2T)| + |J|. For a time t the panels are further divided so that the
    phase w t varies by at most 6 across each. The tail is dropped when its mass is below 1e-16
    of the total (J decaying exponentially); otherwise (J decaying as a power of w) it is
    integrated with the Ooura-Mori formula, and at t = 0 with QUADPACK.
    """

    def __init__(self, J: SpectralDensity, T: float, w_max: float | None) -> None:
        self.f = _Integrand(J, T)
        scan = _SCAN if w_max is None else np.append(_SCAN[_SCAN < w_max], w_max)
        fr, fi = self.f(scan)
        g = np.abs(fr) + np.abs(fi)
        h = scan * g  # mass density per unit of log w
        logw = np.log(scan)
        tail_mass = np.concatenate(
            [scipy.integrate.cumulative_trapezoid(h[::-1], -logw[::-1])[::-1], [0.0]]
        )
        total = float(tail_mass[0]) if tail_mass.size else 0.0
        self.zero = not total > 0.0
        self.p_tail = math.inf  # J coth ~ w^-p at large w (inf: faster than any power)
        self.tail = False
        if w_max is not None:
            self.W = w_max
        elif self.zero:
            self.W = 1.0
        else:
            self.W = self._upper_limit(scan, g, h, tail_mass, total)
        below = scan <= self.W
        self.total = max(total, np.finfo(float).tiny)
        self._scan, self._tail_mass = scan, tail_mass
        self.w_high = self.quantile(1e-3)
        self.panels = self._mesh(scan[below][::5])

    def quantile(self, level: float) -> float:
        """Smallest scanned frequency beyond which the mass of |J coth| + |J| is below ``level``
        of the total (at most w_max)."""
        frac = self._tail_mass / self.total
        idx = int(np.argmax(frac <= level)) if np.any(frac <= level) else len(frac) - 1
        return float(self._scan[idx])

    def _upper_limit(self, scan: FloatArray, g: FloatArray, h: FloatArray,
                     tail_mass: FloatArray, total: float) -> float:
        """Upper end W of the Gauss-Legendre mesh, and whether a tail beyond it is integrated."""
        negligible = tail_mass <= 1e-16 * total
        # the scan must end where J has died out, or the mass beyond it is unknown
        decayed = h[-1] <= 1e-20 * total
        w_neg = float(scan[int(np.argmax(negligible))]) if decayed else math.inf
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = -np.gradient(np.log(g), np.log(scan))
        w_pl = math.inf
        if np.all(np.isfinite(slope[-50:])) and slope[-1] > 0.05:
            p_end = float(slope[-1])
            ok = np.isfinite(slope) & (np.abs(slope - p_end) <= 0.02)
            bad = np.flatnonzero(~ok)
            k0 = int(bad[-1]) + 1 if bad.size else 0
            if k0 < len(scan) - 100:  # power law over at least the last two decades
                w_pl = 2.0 * float(scan[k0])
                self.p_tail = p_end
        if math.isfinite(w_neg) and w_neg <= 8.0 * w_pl:
            return w_neg
        if math.isfinite(w_pl):
            self.tail = True
            return w_pl
        k = int(np.argmax(h))
        raise InvalidParameterError(
            f"J(w) does not decay at large w (J coth(w/2T) ~ {g[-1]:.3g} at w = {scan[-1]:.3g}, "
            f"peak {g[k]:.3g} at w = {scan[k]:.3g}); give a finite w_max"
        )

    def _mesh(self, breaks: FloatArray) -> FloatArray:
        """Adaptive panels of [0, W] resolving J: array of shape (n, 2)."""
        edges = np.unique(np.concatenate([[0.0], breaks[breaks < self.W], [self.W]]))
        a, b = edges[:-1], edges[1:]
        tol = _MESH_EPS * self.total
        done: list[FloatArray] = []
        for _ in range(400):
            m = 0.5 * (a + b)
            x, w = _panel_nodes(np.concatenate([a, a, m]), np.concatenate([b, m, b]))
            fr, fi = self.f(x)
            ir, ii = (fr * w).sum(axis=1), (fi * w).sum(axis=1)
            n = len(a)
            err = np.abs(ir[:n] - ir[n:2 * n] - ir[2 * n:]) + np.abs(ii[:n] - ii[n:2 * n] - ii[2 * n:])
            ok = (err <= tol) | (b - a <= 1e-13 * np.maximum(b, 1e-290))
            # keep the halves of an accepted panel (the more accurate rule)
            done.append(np.stack([np.concatenate([a[ok], m[ok]]), np.concatenate([m[ok], b[ok]])], 1))
            a, b, m, left = a[~ok], b[~ok], m[~ok], err[~ok]
            if not a.size or len(a) > 200_000:
                break
            a, b = np.concatenate([a, m]), np.concatenate([m, b])
        else:
            a, b = a[: len(a) // 2], b[len(b) // 2:]  # the panels before their last split
        if a.size:
            # an integrable singularity at w = 0 (sub-Ohmic J, s << 1) is still bisected after 400
            # levels; it is harmless while the estimated error left is small
            if float(np.sum(left)) > 1e-11 * self.total:
                warnings.warn(
                    f"correlation_from_spectral_density: the mesh on [0, {self.W:.3g}] did not converge "
                    f"({len(a)} panels left, estimated error {float(np.sum(left)) / self.total:.2g} of the "
                    "total); the result may be inaccurate", RuntimeWarning, stacklevel=3,
                )
            done.append(np.stack([a, b], 1))
        panels = np.concatenate(done)
        return panels[np.argsort(panels[:, 0])]

    def __call__(self, t: FloatArray) -> ComplexArray:
        out = np.zeros(t.shape, dtype=complex)
        if self.zero or t.size == 0:
            return out
        flat = np.abs(t.ravel())
        t_top = float(flat.max())
        a, b = self.panels[:, 0], self.panels[:, 1]
        pieces = np.maximum(1, np.ceil((b - a) * t_top / _PANEL_PHASE)).astype(np.int64)
        n_nodes = int(pieces.sum()) * len(_GL_X)
        if n_nodes > _MAX_NODES:
            raise InvalidParameterError(
                f"t = {t_top:.6g} is too long for the quadrature on [0, {self.W:.4g}] ({n_nodes} nodes, "
                f"at most {_MAX_NODES}): the allowed range is |t| <= "
                f"{t_top * _MAX_NODES / n_nodes:.4g}; shorten t or give a smaller w_max"
            )
        start = np.repeat(a, pieces)
        step = np.repeat((b - a) / pieces, pieces)
        k = np.arange(len(start)) - np.repeat(np.cumsum(pieces) - pieces, pieces)
        x, w = _panel_nodes(start + k * step, start + (k + 1) * step)
        x, w = x.ravel(), w.ravel()
        fr, fi = self.f(x)
        wr, wi = w * fr, w * fi
        re, im = _fourier_sums(flat, x, wr, wi)
        if self.tail:
            tr, ti = self._tail(flat)
            re += tr
            im += ti
        im = np.where(t.ravel() < 0, -im, im)  # C(-t) = C(t)*
        return np.asarray((re - 1j * im) / math.pi, dtype=np.complex128).reshape(t.shape)

    def _tail(self, t: FloatArray) -> tuple[FloatArray, FloatArray]:
        """int_W^inf J coth cos(w t) dw and int_W^inf J sin(w t) dw at the times t >= 0."""
        W = self.W
        tr = np.zeros(t.shape)
        ti = np.zeros(t.shape)
        pos = t > 0
        if np.any(~pos):
            if self.p_tail <= 1.0 + 1e-3:
                raise InvalidParameterError(
                    f"C(t) at t = 0 is infinite for this spectral density: J(w) coth(w/2T) decays "
                    f"like w^-{self.p_tail:.4g} (an integrable tail needs a power above 1); "
                    "give times t > 0 or a finite w_max"
                )
            val, err = scipy.integrate.quad(
                lambda w: float(self.f(np.array([w]))[0][0]), W, math.inf, epsabs=0.0, epsrel=1e-13,
                limit=500,
            )
            if not abs(err) <= 1e-9 * self.total:
                warnings.warn(
                    f"correlation_from_spectral_density: the tail of C(0) beyond w = {W:.4g} has an "
                    f"estimated error of {err:.3g}", RuntimeWarning, stacklevel=3,
                )
            tr[~pos] = val
        if np.any(pos):
            tp = t[pos]
            parts = []
            for nodes, weights in (_OM_COS, _OM_SIN):
                x = W + nodes[None, :] / tp[:, None]
                fr, fi = self.f(x)
                parts.append(((fr * weights).sum(axis=1) / tp, (fi * weights).sum(axis=1) / tp))
            (cr, ci), (sr, si) = parts
            c, s = np.cos(W * tp), np.sin(W * tp)
            tr[pos] = c * cr - s * sr
            ti[pos] = s * ci + c * si
        return tr, ti


def _fourier_sums(t: FloatArray, x: FloatArray, wr: FloatArray,
                  wi: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``sum_j wr_j cos(x_j t)`` and ``sum_j wi_j sin(x_j t)`` at every t (1-D).

    On a uniform grid t_0 + (b B + k) dt the phase factor is split as
    ``exp(i x (t_0 + b B dt)) exp(i x k dt)``, both factors computed directly (so the error stays
    at rounding level), and the sums over j become one complex matrix product: about
    2 sqrt(len(t)) instead of len(t) exponentials per node. BLAS runs on one thread: these
    products are skinny, and threads made them 30x slower on a loaded two-core machine.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        return _fourier_sums_impl(t, x, wr, wi)


def _fourier_sums_impl(t: FloatArray, x: FloatArray, wr: FloatArray,
                       wi: FloatArray) -> tuple[FloatArray, FloatArray]:
    n = len(t)
    steps = np.diff(t)
    if n >= 64 and steps[0] > 0 and np.all(np.abs(steps - steps[0]) <= 1e-12 * np.max(np.abs(t))):
        dt = (t[-1] - t[0]) / (n - 1)
        block = int(math.ceil(math.sqrt(n)))
        starts = t[0] + dt * block * np.arange(-(-n // block))
        inner = np.exp(1j * np.outer(x, dt * np.arange(block)))  # (nodes, block)
        re = np.empty(n)
        im = np.empty(n)
        rows = max(1, 4_000_000 // len(x))
        for s in range(0, len(starts), rows):
            outer = np.exp(1j * np.outer(starts[s:s + rows], x))  # (rows, nodes)
            sr = ((outer * wr) @ inner).real.ravel()
            si = ((outer * wi) @ inner).imag.ravel()
            lo = s * block
            hi = min(n, lo + len(sr))
            re[lo:hi] = sr[:hi - lo]
            im[lo:hi] = si[:hi - lo]
        return re, im
    re = np.empty(n)
    im = np.empty(n)
    chunk = max(1, 2_000_000 // len(x))
    for s in range(0, n, chunk):
        phase = np.outer(t[s:s + chunk], x)
        re[s:s + chunk] = np.cos(phase) @ wr
        im[s:s + chunk] = np.sin(phase) @ wi
    return re, im


def _times(name: str, t: ArrayLike) -> FloatArray:
    try:
        arr = np.asarray(t, dtype=float)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"{name} = {t!r} must be an array of real numbers") from None
    if not np.all(np.isfinite(arr)):
        raise InvalidParameterError(f"{name} contains non-finite values (allowed: finite real numbers)")
    return arr


def correlation_from_spectral_density(
    J: SpectralDensity,
    T: float,
    t: ArrayLike,
    *,
    w_max: float | None = None,
) -> ComplexArray:
    """The bath correlation function of a spectral density, by numerical quadrature.

    ``C(t) = (1/pi) Int_0^w_max dw J(w) [coth(w / 2T) cos(w t) - i sin(w t)]``.

    Parameters
    ----------
    J : callable
        Spectral density ``J(w)`` for w > 0, evaluated elementwise on numpy arrays; it must return
        finite real values. It is never evaluated at w = 0, so ``J(w) coth(w / 2T)`` may be
        written without care for its (finite, for Ohmic J) limit there.
    T : float
        Temperature, > 0.
    t : array_like
        Times (any shape, any finite real values; ``C(-t) = C(t)*``).
    w_max : float, optional
        If given, J is cut off above ``w_max`` (a hard cutoff, > 0; it makes C(t) ring at
        frequency w_max with an amplitude decaying like 1/t). By default the integral runs
        to infinity: where J decays exponentially, up to the frequency beyond which the mass of
        ``|J coth|`` is below 1e-16 of the total; where it decays as a power of w (found on a
        scan of w in [1e-9, 1e13]), the tail is integrated with the double-exponential formula
        of Ooura & Mori (1999).

    Returns
    -------
    numpy.ndarray
        Complex ``C(t)``, same shape as ``t``.

    Raises
    ------
    InvalidParameterError
        If ``J`` is not callable, returns non-finite or complex values, or does not decay; if
        ``T`` or ``w_max`` is not positive and finite, ``t`` not finite, or ``t`` so long that the
        quadrature would need more than 4e6 nodes; or if ``t`` contains 0 while ``C(0)`` is
        infinite (J coth(w/2T) decaying like 1/w or slower, as for Drude-Lorentz without w_max).

    Notes
    -----
    [0, W] is covered by 16-point Gauss-Legendre panels on a mesh that starts logarithmic (so
    that the w -> 0 end and features at every scale are resolved) and is bisected until each
    panel agrees with its halves to 1e-15 of the total mass; the panels are then split so that
    the phase w t changes by at most 6 across each. Measured accuracy, as max |error| / max |C|
    (tests/test_bathfit.py asserts 1e-12): 1e-15 to 4e-15 for Ohmic J (s = 0.25 to 4, T = 1e-3
    to 100) against the closed form (6e-14 at s = 0.1, where J coth ~ w^-0.9 at w -> 0), 1e-15
    for Drude-Lorentz (1/w tail, t >= 0.02) and for underdamped Brownian J (1/w^3 tail, peak
    widths 0.3 to 1e-3) against their Matsubara sums. The cost grows like W max|t|: J is
    evaluated on about 16 W max|t| / 6 nodes.
    """
    J = _check_spectral_density(J)
    T = positive("T", T)
    if w_max is not None:
        w_max = positive("w_max", w_max)
    times = _times("t", t)
    return _Quadrature(J, T, w_max)(times)


# --------------------------------------------------------------------------------------------
# Ohmic bath: closed form
# --------------------------------------------------------------------------------------------


def ohmic_spectral_density(alpha: float, wc: float, s: float = 1.0) -> Callable[[ArrayLike], FloatArray]:
    """The (sub-/super-)Ohmic spectral density ``J(w) = alpha w^s wc^(1-s) exp(-w / wc)``.

    This is QuTiP's ``OhmicEnvironment`` convention (``alpha w^s / wc^(s-1) e^(-w/wc)``).

    Parameters
    ----------
    alpha : float
        Coupling strength, >= 0.
    wc : float
        Cutoff frequency, > 0.
    s : float, optional
        Exponent, > 0 (s < 1 sub-Ohmic, s = 1 Ohmic, s > 1 super-Ohmic). At T > 0, ``C(0)`` is
        finite only for s > 0.

    Returns
    -------
    callable
        ``J(w)`` for array-like w; 0 for w <= 0.
    """
    alpha = finite("alpha", alpha)
    if alpha < 0:
        raise InvalidParameterError(f"alpha = {alpha} is outside the allowed range [0, inf)")
    wc = positive("wc", wc)
    s = positive("s", s)

    def J(w: ArrayLike) -> FloatArray:
        x = np.asarray(w, dtype=float)
        with np.errstate(all="ignore"):
            val = alpha * wc * (x / wc) ** s * np.exp(-x / wc)
        return np.where(x > 0, val, 0.0)

    return J


#: Euler-Maclaurin coefficients B_2j / (2j)! for the Hurwitz zeta function.
_EM_TERMS = 12
_EM_SHIFT = 24
_EM_COEF = np.array(
    [scipy.special.bernoulli(2 * _EM_TERMS)[2 * j] / math.factorial(2 * j) for j in range(1, _EM_TERMS + 1)]
)


def _hurwitz_zeta(sigma: float, a: ComplexArray) -> ComplexArray:
    """Hurwitz zeta ``sum_{k>=0} (a + k)^-sigma`` for real sigma > 1 and complex a with Re a > 0.

    Euler-Maclaurin summation: the first 24 terms explicitly, then with b = a + 24
    ``b^(1-sigma)/(sigma-1) + b^-sigma/2 + sum_j B_2j/(2j)! (sigma)_(2j-1) b^(-sigma-2j+1)``
    (12 Bernoulli terms; the remainder is below 1e-20 relative for |b| >= 24 and sigma <= 6,
    and |b| >= 24 holds since Re a > 0). Powers are principal, which is right for Re(a + k) > 0.
    """
    k = np.arange(_EM_SHIFT)
    out = np.sum((a[..., None] + k) ** (-sigma), axis=-1)
    b = a + _EM_SHIFT
    out = out + b ** (1.0 - sigma) / (sigma - 1.0) + 0.5 * b ** (-sigma)
    for j in range(1, _EM_TERMS + 1):
        out = out + _EM_COEF[j - 1] * scipy.special.poch(sigma, 2 * j - 1) * b ** (-sigma - 2 * j + 1)
    return np.asarray(out, dtype=complex)


def ohmic_correlation(alpha: float, wc: float, T: float, t: ArrayLike, s: float = 1.0) -> ComplexArray:
    """Exact correlation function of the bath of :func:`ohmic_spectral_density` at temperature T.

    Expanding ``coth(w/2T) cos(wt) - i sin(wt) = (1 + n) e^(-iwt) + n e^(iwt)`` with
    ``n = 1/(e^(w/T) - 1) = sum_{k>=1} e^(-k w/T)`` and using
    ``Int_0^inf w^s e^(-z w) dw = Gamma(s+1) z^-(s+1)`` (Re z > 0) term by term gives

        C(t) = alpha wc^(1-s) Gamma(s+1) T^(s+1) / pi
               * [zeta(s+1, T/wc + i T t) + zeta(s+1, 1 + T/wc - i T t)],

    with the Hurwitz zeta function (QuTiP's ``OhmicEnvironment.correlation_function`` gives the
    same expression). The zeta function is evaluated by Euler-Maclaurin summation (scipy's
    ``zeta`` takes no complex argument), accurate to about 1e-15 relative.

    Parameters
    ----------
    alpha, wc, s : float
        As in :func:`ohmic_spectral_density` (alpha >= 0, wc > 0, 0 < s <= 5).
    T : float
        Temperature, > 0.
    t : array_like
        Times (any finite real values).

    Returns
    -------
    numpy.ndarray
        Complex ``C(t)``, same shape as ``t``.
    """
    alpha = finite("alpha", alpha)
    if alpha < 0:
        raise InvalidParameterError(f"alpha = {alpha} is outside the allowed range [0, inf)")
    wc = positive("wc", wc)
    T = positive("T", T)
    s = positive("s", s)
    if s > 5.0:
        raise InvalidParameterError(f"s = {s} is outside the allowed range (0, 5]")
    times = _times("t", t)
    sigma = s + 1.0
    pref = alpha * wc ** (1.0 - s) * math.gamma(sigma) * T**sigma / math.pi
    flat = times.ravel()
    z1 = _hurwitz_zeta(sigma, np.asarray(T / wc + 1j * T * flat, dtype=np.complex128))
    z2 = _hurwitz_zeta(sigma, np.asarray(1.0 + T / wc - 1j * T * flat, dtype=np.complex128))
    return np.asarray(pref * (z1 + z2), dtype=complex).reshape(times.shape)


# --------------------------------------------------------------------------------------------
# Fit to a sum of exponentials
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ExponentFit:
    """A bath correlation function fitted to exponentials, in QuTiP's ``BosonicBath`` convention.

    ``C(t) = sum_k ck_real[k] exp(-vk_real[k] t) + i sum_k ck_imag[k] exp(-vk_imag[k] t)`` for
    t >= 0, where each sum is a real function of t: its terms are real or come in complex
    conjugate pairs (ck, vk), (ck*, vk*). Every rate has a positive real part.

    Attributes
    ----------
    ck_real, vk_real : numpy.ndarray
        Amplitudes and rates of the real part ``C_R(t)`` (complex arrays, read-only).
    ck_imag, vk_imag : numpy.ndarray
        Amplitudes and rates of the imaginary part ``C_I(t)``.
    t : numpy.ndarray
        The (uniform) time grid of the fit.
    max_error : float
        ``max |C_fit(t) - C(t)|`` over the grid (absolute).
    rms_error : float
        Root mean square of ``|C_fit(t) - C(t)|`` over the grid, relative to ``scale``.
    scale : float
        ``max |C(t)|`` over the grid.
    attempts : tuple of (str, int, float)
        Every fit tried: (``"real"`` or ``"imag"``, number of terms asked, relative max error of
        that part on the grid and the check points), in order; with ``target_error`` this records
        how the numbers were raised.
    check_error : float or None
        ``max |C_fit - C|`` at the midpoints of the grid (set by :func:`fit_spectral_density`,
        which computes C there too, and holds it to ``target_error`` as well; None otherwise).
        It exposes what the grid cannot: aliasing, overfitting, structure between samples.
    """

    ck_real: ComplexArray
    vk_real: ComplexArray
    ck_imag: ComplexArray
    vk_imag: ComplexArray
    t: FloatArray
    max_error: float
    rms_error: float
    scale: float
    attempts: tuple[tuple[str, int, float], ...] = ()
    check_error: float | None = field(default=None)

    def __post_init__(self) -> None:
        for name in ("ck_real", "vk_real", "ck_imag", "vk_imag", "t"):
            arr = np.array(getattr(self, name), dtype=float if name == "t" else complex)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    @property
    def rel_max_error(self) -> float:
        """``max_error / scale``: the relative max error on the grid."""
        return self.max_error / self.scale

    @property
    def n_real(self) -> int:
        """Number of exponentials of the real part."""
        return len(self.ck_real)

    @property
    def n_imag(self) -> int:
        """Number of exponentials of the imaginary part."""
        return len(self.ck_imag)

    def exponents(self, rtol: float = 1e-12) -> tuple[ComplexArray, ComplexArray, ComplexArray]:
        """The terms merged by rate: ``(nu, c_real, c_imag)``.

        ``C(t) = sum_k (c_real[k] + i c_imag[k]) exp(-nu[k] t)``; a rate of the real part and
        one of the imaginary part within ``rtol`` (relative) become one term. Since each part is
        a real function, ``C(t)* = sum_k (c_real[k] - i c_imag[k]) exp(-nu[k] t)`` with the same
        rates, so in the HEOM a term couples down through ``-i c_real [Q, .] + c_imag {Q, .}``
        (docs/heom.md's ``-i c^R [Q, .] + c^I {Q, .}`` when rates and amplitudes are real, and
        QuTiP's R/I/RI exponents).
        """
        nus: list[complex] = []
        cr: list[complex] = []
        ci: list[complex] = []
        for ck, vk, real in ((self.ck_real, self.vk_real, True), (self.ck_imag, self.vk_imag, False)):
            for c, v in zip(ck, vk, strict=True):
                matches = [k for k, nu in enumerate(nus) if abs(nu - v) <= rtol * max(abs(nu), abs(v))]
                if matches:
                    k = matches[0]
                else:
                    k = len(nus)
                    nus.append(complex(v))
                    cr.append(0j)
                    ci.append(0j)
                if real:
                    cr[k] += c
                else:
                    ci[k] += c
        return np.array(nus, dtype=complex), np.array(cr, dtype=complex), np.array(ci, dtype=complex)

    @property
    def n_exponents(self) -> int:
        """Number of distinct rates (the exponents the HEOM needs), after merging equal rates."""
        return len(self.exponents()[0])

    def correlation(self, t: ArrayLike) -> ComplexArray:
        """Evaluate the fitted ``C(t)`` (for t < 0 as ``C(|t|)*``).

        Parameters
        ----------
        t : array_like
            Times (finite).

        Returns
        -------
        numpy.ndarray
            Complex values, same shape as ``t``.
        """
        times = _times("t", t)
        tt = np.abs(times)[..., None]
        re = np.real(np.exp(-tt * self.vk_real) @ self.ck_real)
        im = np.real(np.exp(-tt * self.vk_imag) @ self.ck_imag)
        im = np.where(times < 0, -im, im)
        return np.asarray(re + 1j * im, dtype=complex)


@dataclass
class _PartFit:
    """Exponentials of one real function: real terms c e^(-nu t), and pairs 2 Re(c e^(-nu t))."""

    nu_real: FloatArray
    c_real: FloatArray
    nu_pair: ComplexArray  # Im > 0
    c_pair: ComplexArray

    def evaluate(self, t: FloatArray) -> FloatArray:
        out = np.exp(-np.outer(t, self.nu_real)) @ self.c_real
        out = out + 2.0 * np.real(np.exp(-np.outer(t, self.nu_pair)) @ self.c_pair)
        return np.asarray(out, dtype=float)

    def qutip_lists(self) -> tuple[ComplexArray, ComplexArray]:
        ck = np.concatenate([self.c_real, self.c_pair, np.conj(self.c_pair)]).astype(complex)
        vk = np.concatenate([self.nu_real, self.nu_pair, np.conj(self.nu_pair)]).astype(complex)
        order = np.lexsort((vk.imag, vk.real))
        return ck[order], vk[order]


_EMPTY_PART = _PartFit(np.zeros(0), np.zeros(0), np.zeros(0, complex), np.zeros(0, complex))


def _amplitudes(y: FloatArray, t: FloatArray, nu_real: FloatArray, nu_pair: ComplexArray) -> _PartFit:
    """Least-squares amplitudes for fixed rates."""
    cols = [np.exp(-np.outer(t, nu_real))]
    e = np.exp(-np.outer(t, nu_pair))
    cols += [2.0 * e.real, -2.0 * e.imag]
    A = np.concatenate(cols, axis=1)
    coef = scipy.linalg.lstsq(A, y)[0]
    nr, npair = len(nu_real), len(nu_pair)
    c_pair = coef[nr:nr + npair] + 1j * coef[nr + npair:]
    return _PartFit(nu_real.copy(), coef[:nr].copy(), nu_pair.copy(), c_pair)


class _PartFitter:
    """ESPRIT (with a shared SVD of the Hankel matrix) plus nonlinear least squares, one part."""

    def __init__(self, y: FloatArray, t: FloatArray, refine: bool) -> None:
        self.y, self.t, self.refine = y, t, refine
        self.dt = float(t[1] - t[0])
        n = len(y)
        self.pencil = min(n // 2, _PENCIL_CAP)
        H = scipy.linalg.hankel(y[:self.pencil + 1], y[self.pencil:])
        self.U, sv, _ = scipy.linalg.svd(H, full_matrices=False)
        # numerical rank: singular vectors beyond it span rounding noise, whose roots mean nothing
        self.rank = int(np.count_nonzero(sv > _RANK_RTOL * sv[0]))

    def _roots(self, m: int) -> tuple[FloatArray, ComplexArray]:
        """Decaying rates from ESPRIT of order m: real ones, and one of each conjugate pair."""
        Um = self.U[:, :m]
        phi = scipy.linalg.lstsq(Um[:-1], Um[1:])[0]
        z = scipy.linalg.eigvals(phi)
        with np.errstate(divide="ignore"):
            nu = -np.log(z) / self.dt
        valid = (np.abs(z) < 1.0) & (np.abs(z) > 0.0) & np.isfinite(nu) & (nu.real > 0)
        real = valid & (z.imag == 0) & (z.real > 0)
        pair = valid & (z.imag > 0)
        return nu[real].real.copy(), nu[pair].copy()

    def _error(self, p: _PartFit) -> float:
        return float(np.max(np.abs(p.evaluate(self.t) - self.y)))

    def fit(self, n: int) -> _PartFit:
        """The best fit with at most n terms."""
        best: _PartFit | None = None
        best_err = math.inf
        for m in range(min(n, self.rank), min(n + 4, self.rank, self.pencil - 1) + 1):
            nu_r, nu_p = self._roots(m)
            if not (nu_r.size or nu_p.size):
                continue
            full = _amplitudes(self.y, self.t, nu_r, nu_p)
            # keep the largest contributions (a pair counts twice) within n terms
            size_r = np.abs(full.c_real) * np.linalg.norm(np.exp(-np.outer(self.t, nu_r)), axis=0)
            size_p = 2.0 * np.abs(full.c_pair) * np.linalg.norm(np.exp(-np.outer(self.t, nu_p)), axis=0)
            order = np.argsort(-np.concatenate([size_r, size_p]), kind="stable")
            keep_r: list[int] = []
            keep_p: list[int] = []
            used = 0
            for k in order:
                is_real = k < len(nu_r)
                width = 1 if is_real else 2
                if used + width <= n:
                    used += width
                    if is_real:
                        keep_r.append(int(k))
                    else:
                        keep_p.append(int(k) - len(nu_r))
            cand = _amplitudes(self.y, self.t, nu_r[keep_r], nu_p[keep_p])
            err = self._error(cand)
            if err < best_err:
                best, best_err = cand, err
        if best is None:
            raise ComputationError(
                f"no decaying exponential found in the data with {n} terms (ESPRIT gave only rates with "
                "Re(nu) <= 0 or at the Nyquist frequency); sample a longer or finer grid"
            )
        if self.refine:
            refined = self._refine(best)
            if refined is not None and self._error(refined) < best_err:
                best = refined
        return best

    def _refine(self, p: _PartFit) -> _PartFit | None:
        """Nonlinear least squares on all rates and amplitudes, with Re(nu) = exp(param) > 0."""
        nr, npair = len(p.nu_real), len(p.nu_pair)
        t, y = self.t, self.y

        def unpack(x: FloatArray) -> _PartFit:
            nu_r = np.exp(x[:nr])
            c_r = x[nr:2 * nr]
            q = x[2 * nr:].reshape(npair, 4) if npair else np.zeros((0, 4))
            return _PartFit(nu_r, c_r, np.exp(q[:, 0]) + 1j * q[:, 1], q[:, 2] + 1j * q[:, 3])

        def residual(x: FloatArray) -> FloatArray:
            return unpack(x).evaluate(t) - y

        def jac(x: FloatArray) -> FloatArray:
            q = unpack(x)
            cols = []
            er = np.exp(-np.outer(t, q.nu_real))
            cols += [-(t[:, None] * q.nu_real) * q.c_real * er, er]
            jr = np.concatenate(cols, axis=1)
            ep = np.exp(-np.outer(t, q.nu_pair))
            ce = q.c_pair * ep
            jp = np.stack([
                2.0 * np.real(-t[:, None] * q.nu_pair.real * ce),
                2.0 * np.real(-1j * t[:, None] * ce),
                2.0 * ep.real,
                -2.0 * ep.imag,
            ], axis=2).reshape(len(t), 4 * npair)
            return np.concatenate([jr, jp], axis=1)

        x0 = np.concatenate([
            np.log(p.nu_real), p.c_real,
            np.stack([np.log(p.nu_pair.real), p.nu_pair.imag, p.c_pair.real, p.c_pair.imag], 1).ravel(),
        ])
        if len(x0) >= len(t):
            return None
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sol = scipy.optimize.least_squares(
                    residual, x0, jac=jac, method="lm", xtol=1e-15, ftol=1e-15, gtol=1e-15,
                    max_nfev=100 * (len(x0) + 1),
                )
        except (ValueError, np.linalg.LinAlgError):
            return None
        q = unpack(sol.x)
        rates = np.concatenate([q.nu_real, q.nu_pair.real])
        if not (np.all(np.isfinite(sol.x)) and np.all(rates > 0)):
            return None
        return q


def _uniform_grid(t: ArrayLike) -> FloatArray:
    times = _times("t", t)
    if times.ndim != 1 or times.size < 8:
        raise InvalidParameterError(f"t must be a 1-D array of at least 8 times, got shape {times.shape}")
    steps = np.diff(times)
    dt = (times[-1] - times[0]) / (times.size - 1)
    if not dt > 0 or np.max(np.abs(steps - dt)) > 1e-8 * dt:
        raise InvalidParameterError(
            f"t must be increasing and uniformly spaced (ESPRIT needs uniform samples): the steps range "
            f"from {steps.min():.6g} to {steps.max():.6g}"
        )
    return times


def fit_correlation(
    C: ArrayLike,
    t: ArrayLike,
    *,
    n_real: int | None = None,
    n_imag: int | None = None,
    target_error: float | None = None,
    max_terms: int = 12,
    refine: bool = True,
) -> ExponentFit:
    """Fit a sampled correlation function to sums of decaying exponentials.

    The real part ``C_R(t)`` and the imaginary part ``C_I(t)`` are fitted separately, each to a
    real sum of exponentials whose rates are real or come in complex conjugate pairs. The rates
    come from ESPRIT on the uniformly sampled data (eigenvalues z of the shift-invariance of the
    dominant left singular vectors of the Hankel matrix, nu = -log(z) / dt); the amplitudes from
    linear least squares. Rates with Re(nu) <= 0, and real negative z (which have no real
    continuous-time counterpart), are discarded; ESPRIT orders n to n + 4 (up to the numerical rank
    of the Hankel matrix: singular values above 1e-13 of the largest) are tried and, from
    each, the largest contributions within n terms are kept (a conjugate pair counts as two
    terms), and the best is taken. With ``refine`` all rates and amplitudes are then polished by
    nonlinear least squares with ``Re(nu) = exp(p) > 0``, and the result is kept if it lowers
    the max error. Deterministic.

    Parameters
    ----------
    C : array_like
        Complex samples ``C(t)``, shape ``(N,)``.
    t : array_like
        Increasing, uniformly spaced times, shape ``(N,)``, N >= 8; normally starting at 0.
    n_real, n_imag : int, optional
        Numbers of exponentials of the real and of the imaginary part (at most; a pair cannot be
        split, so fewer may be used). Required without ``target_error``; with it they are the
        numbers to start from (default 1).
    target_error : float, optional
        If given, in (0, 1): the numbers of terms of each part are raised one at a time until
        that part's max error is below ``target_error / sqrt(2)`` of ``max |C|``, so that
        ``max |C_fit - C| <= target_error max |C|`` on the grid. ``ExponentFit.attempts`` records
        the steps.
    max_terms : int, optional
        Cap on the number of terms of each part with ``target_error`` (default 12), >= 1.
    refine : bool, optional
        Polish the ESPRIT fit by nonlinear least squares (default True).

    Returns
    -------
    ExponentFit
        The fit, with its errors measured on the grid.

    Raises
    ------
    InvalidParameterError
        If the inputs are malformed (t not uniform, shapes differ, non-finite values, C zero,
        term numbers out of range, or too few samples for the number of terms).
    ComputationError
        If no decaying exponential can be found, or ``target_error`` is not reached with
        ``max_terms`` terms per part.
    """
    plan = _FitPlan.make(C, t, n_real, n_imag, target_error, max_terms, refine)
    return plan.run()


@dataclass
class _FitPlan:
    """Validated inputs of a fit: data, grid, term numbers to try, and optional check points."""

    data: ComplexArray
    times: FloatArray
    scale: float
    starts: dict[str, int]
    caps: dict[str, int]
    target_error: float | None
    refine: bool
    check: tuple[FloatArray, ComplexArray] | None = None

    @classmethod
    def make(cls, C: ArrayLike, t: ArrayLike, n_real: int | None, n_imag: int | None,
             target_error: float | None, max_terms: int, refine: bool) -> _FitPlan:
        times = _uniform_grid(t)
        try:
            data = np.asarray(C, dtype=complex)
        except (TypeError, ValueError):
            raise InvalidParameterError("C must be an array of complex numbers") from None
        if data.shape != times.shape:
            raise InvalidParameterError(f"C has shape {data.shape} but t has shape {times.shape}")
        if not np.all(np.isfinite(data)):
            raise InvalidParameterError("C contains non-finite values (allowed: finite complex numbers)")
        scale = float(np.max(np.abs(data)))
        if scale == 0.0:
            raise InvalidParameterError("C is zero at every time: there is nothing to fit")
        limit = min(len(times) // 2, _PENCIL_CAP) - 1  # ESPRIT's pencil parameter less one
        max_terms = min(positive_int("max_terms", max_terms), limit)
        if target_error is None:
            if n_real is None or n_imag is None:
                raise InvalidParameterError("give n_real and n_imag (numbers of terms), or target_error")
            starts = {
                "real": positive_int("n_real", n_real, limit),
                "imag": positive_int("n_imag", n_imag, limit),
            }
            caps = dict(starts)
        else:
            target_error = finite("target_error", target_error)
            if not 0 < target_error < 1:
                raise InvalidParameterError(
                    f"target_error = {target_error} is outside the allowed range (0, 1)"
                )
            starts = {
                "real": positive_int("n_real", 1 if n_real is None else n_real, max_terms),
                "imag": positive_int("n_imag", 1 if n_imag is None else n_imag, max_terms),
            }
            caps = {"real": max_terms, "imag": max_terms}
        return cls(data, times, scale, starts, caps, target_error, refine)

    def run(self) -> ExponentFit:
        # small dense problems: one BLAS thread is faster, and much faster on a loaded machine
        with threadpool_limits(limits=1, user_api="blas"):
            return _fit_parts(self)


def _fit_parts(plan: _FitPlan) -> ExponentFit:
    data, times, scale, target_error = plan.data, plan.times, plan.scale, plan.target_error
    attempts: list[tuple[str, int, float]] = []
    parts: dict[str, _PartFit] = {}
    for part, y in (("real", data.real.copy()), ("imag", data.imag.copy())):
        if not np.any(y):
            parts[part] = _EMPTY_PART
            continue
        fitter = _PartFitter(y, times, plan.refine)
        best: _PartFit | None = None
        best_err = math.inf
        for n in range(plan.starts[part], plan.caps[part] + 1):
            p = fitter.fit(n)
            err = float(np.max(np.abs(p.evaluate(times) - y))) / scale
            if plan.check is not None:
                tc, cc = plan.check
                yc = cc.real if part == "real" else cc.imag
                err = max(err, float(np.max(np.abs(p.evaluate(tc) - yc))) / scale)
            attempts.append((part, n, err))
            if err < best_err:
                best, best_err = p, err
            if target_error is None or err <= target_error / math.sqrt(2.0):
                break
        else:
            raise ComputationError(
                f"target_error = {target_error:g} not reached for the {part} part of C: the best relative "
                f"max error with up to {plan.caps[part]} terms is {best_err:.3g}; raise max_terms, relax "
                "target_error, or sample a longer grid"
            )
        assert best is not None
        parts[part] = best
    ck_r, vk_r = parts["real"].qutip_lists()
    ck_i, vk_i = parts["imag"].qutip_lists()
    if np.any(vk_r.real <= 0) or np.any(vk_i.real <= 0):  # guaranteed by construction
        raise ComputationError("a fitted rate has Re(nu) <= 0")
    def residual(t: FloatArray, c: ComplexArray) -> FloatArray:
        return np.abs(parts["real"].evaluate(t) + 1j * parts["imag"].evaluate(t) - c)

    resid = residual(times, data)
    check_error = None if plan.check is None else float(np.max(residual(*plan.check)))
    return ExponentFit(
        ck_real=ck_r, vk_real=vk_r, ck_imag=ck_i, vk_imag=vk_i, t=times,
        max_error=float(np.max(resid)),
        rms_error=float(np.sqrt(np.mean(resid**2))) / scale,
        scale=scale, attempts=tuple(attempts), check_error=check_error,
    )


def _choose_t_max(quad: _Quadrature, c0: float, tail: float) -> float:
    """Smallest sampled time after which |C(t)| stays below ``tail * |C(0)|``.

    Windows [s, 2s] (32 samples each), s = 1/w_high, 2/w_high, 4/w_high, ..., are scanned until
    two consecutive windows lie below the level; w_high is the frequency below which all but
    1e-3 of the mass of |J coth(w/2T)| + |J| lies.
    """
    s = 1.0 / quad.w_high
    quiet = 0
    last_loud = 0.0
    for _ in range(60):
        window = np.linspace(s, 2.0 * s, 32)
        try:
            values = np.abs(quad(window))
        except InvalidParameterError:
            break
        loud = window[values > tail * c0]
        if loud.size:
            last_loud = float(loud[-1])
            quiet = 0
        else:
            quiet += 1
            if quiet == 2:
                return max(last_loud, s / 2.0)
        s *= 2.0
    raise InvalidParameterError(
        f"|C(t)| does not fall below tail = {tail:g} of |C(0)| within the times the quadrature can reach "
        f"(t <= {s:.4g}); give t_max"
    )


def fit_spectral_density(
    J: SpectralDensity,
    T: float,
    *,
    n_real: int | None = None,
    n_imag: int | None = None,
    target_error: float | None = None,
    t_max: float | None = None,
    n_t: int | None = None,
    w_max: float | None = None,
    tail: float | None = None,
    max_terms: int = 12,
    refine: bool = True,
) -> ExponentFit:
    """Fit the correlation function of a spectral density to sums of exponentials.

    C(t) is computed by :func:`correlation_from_spectral_density` on ``2 n_t - 1`` uniform times
    in [0, t_max]; :func:`fit_correlation` fits the ``n_t`` even ones, and the odd ones (the
    midpoints) give ``ExponentFit.check_error``. The grid is chosen from J and T with one level,
    ``tail``: t_max is where |C(t)| has decayed to ``tail`` of |C(0)|, and the step resolves the
    frequencies that carry all but ``tail`` of the mass of ``|J coth(w/2T)| + |J|``.

    Parameters
    ----------
    J : callable
        Spectral density (see :func:`correlation_from_spectral_density`).
    T : float
        Temperature, > 0.
    n_real, n_imag, target_error, max_terms, refine
        As in :func:`fit_correlation`.
    t_max : float, optional
        End of the time grid, > 0. By default the smallest time after which ``|C(t)|`` stays
        below ``tail * |C(0)|``, found on windows [s, 2s], s = 1/w_h, 2/w_h, ... (32 samples
        each, until two consecutive windows are quiet), with w_h the frequency below which all
        but 1e-3 of the mass of ``|J coth(w/2T)| + |J|`` lies.
    n_t : int, optional
        Number of fitted times, >= 16. By default ``t_max / dt + 1`` clipped to [200, 4000], with
        ``dt = pi / (2 w_tail)`` and w_tail the frequency beyond which ``tail`` of the mass of
        ``|J coth(w/2T)| + |J|`` lies (a quarter of the sampling frequency that would alias it).
    w_max : float, optional
        Hard cutoff of J (see :func:`correlation_from_spectral_density`); needed when ``C(0)`` is
        infinite (J decaying like 1/w, e.g. Drude-Lorentz).
    tail : float, optional
        Level that defines the default grid, in (0, 1); default ``min(1e-4, target_error)``.

    Returns
    -------
    ExponentFit

    Raises
    ------
    InvalidParameterError, ComputationError
        As :func:`correlation_from_spectral_density` and :func:`fit_correlation`.
    """
    J = _check_spectral_density(J)
    T = positive("T", T)
    if w_max is not None:
        w_max = positive("w_max", w_max)
    if n_t is not None:
        n_t = positive_int("n_t", n_t)
        if n_t < 16:
            raise InvalidParameterError(f"n_t = {n_t} is outside the allowed range [16, inf)")
    if tail is None:
        level = 1e-4 if target_error is None else min(1e-4, finite("target_error", target_error))
    else:
        level = finite("tail", tail)
    if not 0 < level < 1:
        raise InvalidParameterError(f"tail = {level} is outside the allowed range (0, 1)")
    quad = _Quadrature(J, T, w_max)
    if quad.zero:
        raise InvalidParameterError("J(w) is zero on (0, w_max]: there is nothing to fit")
    if t_max is None:
        c0 = float(np.abs(quad(np.zeros(1)))[0])
        t_end = _choose_t_max(quad, c0, level)
    else:
        t_end = positive("t_max", t_max)
    if n_t is None:
        dt = math.pi / (2.0 * quad.quantile(level))
        n_t = int(min(max(math.ceil(t_end / dt) + 1, 200), 4000))
    fine = np.linspace(0.0, t_end, 2 * n_t - 1)
    values = quad(fine)
    plan = _FitPlan.make(values[::2], fine[::2], n_real, n_imag, target_error, max_terms, refine)
    plan.check = (fine[1::2], values[1::2])
    return plan.run()
