"""The laws every result must obey, checked before it is reported.

A run that breaks one of them raises :class:`~qpump.errors.InvariantViolationError` naming the
check, the violation, the tolerance and the likely cause; the command line then exits with
status 3 and writes no result. The tolerances:

- density matrices: ``|tr rho - 1| <= 1e-9``, ``max |rho - rho^dagger| <= 1e-9`` and smallest
  eigenvalue ``>= -1e-8`` at every output time. A correct run meets the first two to ~1e-11
  (the integrators conserve them structurally), so a violation means a broken computation; a
  negative eigenvalue means a truncation too shallow for the coupling.
- first law, per pump cycle: the residual ``Delta E_S + Delta <H_I> - Q_A - Q_B - W`` must stay
  within ``FIRST_LAW_MARGIN * (rtol * F + E_quad)``, where ``F`` is the energy that flowed in the
  cycle (the integral of ``|j_A| + |j_B|`` plus ``|W_on| + |W_off|``), ``rtol`` the integrator's
  relative tolerance and ``E_quad`` the estimated error of the heat quadrature (the HEOM's heat is
  Simpson's rule over the output grid; its error is estimated by Richardson extrapolation against
  the same rule on every other output time). A correct run's residual is the quadrature error
  (measured: 8e-9 at the paper's couplings, 5e-7 at kappa_A = 0.3, shrinking 13x when the output
  step halves), so the margin of 10 never trips on one, while a wrong heat current (e.g. a
  hierarchy with no bath memory) breaks the first law at the size of the heat itself.
- second law: ``Sigma(t) = Delta S_AB - Q_A/T_A - Q_B/T_B >= -tol`` from the start of each cycle,
  where ``tol = (1/T_A + 1/T_B)`` times the cycle's first-law tolerance (the error of the heat
  enters Sigma through Q/T).
"""

from __future__ import annotations

import numpy as np

from .errors import InvariantViolationError

__all__ = [
    "TRACE_TOL",
    "HERMITICITY_TOL",
    "POSITIVITY_TOL",
    "FIRST_LAW_MARGIN",
    "check_density_matrices",
    "simpson_error",
    "first_law_tolerance",
    "check_first_law",
    "check_entropy_production",
]

TRACE_TOL = 1e-9
HERMITICITY_TOL = 1e-9
POSITIVITY_TOL = 1e-8
FIRST_LAW_MARGIN = 10.0


def check_density_matrices(rho: np.ndarray, where: str, times: np.ndarray | None = None,
                           cause: str = "", positivity: bool = True) -> float:
    """Check trace, Hermiticity and positivity of a stack of density matrices.

    Parameters
    ----------
    rho : numpy.ndarray, shape (n, d, d) or (d, d)
    where : str
        What the states are (named in the error), e.g. ``"cycle 2"``.
    times : numpy.ndarray, optional
        The time of each state, to name where a violation happens.
    cause : str, optional
        The likely cause of a negative eigenvalue, appended to the message.
    positivity : bool, optional
        Check positivity too (default); without it the smallest eigenvalue is not computed and
        NaN is returned.

    Returns
    -------
    float
        The smallest eigenvalue found.

    Raises
    ------
    InvariantViolationError
        Naming the check, the worst value and the time.
    """
    rho = np.asarray(rho, dtype=complex)
    if rho.ndim == 2:
        rho = rho[None]

    def at(index: int) -> str:
        return f" at t = {times[index]:.6g}" if times is not None else ""

    if not np.all(np.isfinite(rho)):
        bad = int(np.flatnonzero(~np.all(np.isfinite(rho), axis=(1, 2)))[0])
        raise InvariantViolationError("finiteness", float("nan"), 0.0,
                                      f"{where}: the state is not finite{at(bad)}")
    trace_dev = np.abs(np.einsum("tii->t", rho) - 1.0)
    worst = int(np.argmax(trace_dev))
    if trace_dev[worst] > TRACE_TOL:
        raise InvariantViolationError(
            "trace", float(trace_dev[worst]), TRACE_TOL,
            f"{where}: |tr rho - 1| = {trace_dev[worst]:.3g}{at(worst)} (allowed {TRACE_TOL:g})")
    herm_dev = np.max(np.abs(rho - rho.conj().transpose(0, 2, 1)), axis=(1, 2))
    worst = int(np.argmax(herm_dev))
    if herm_dev[worst] > HERMITICITY_TOL:
        raise InvariantViolationError(
            "hermiticity", float(herm_dev[worst]), HERMITICITY_TOL,
            f"{where}: max |rho - rho^dagger| = {herm_dev[worst]:.3g}{at(worst)} "
            f"(allowed {HERMITICITY_TOL:g})")
    if not positivity:
        return float("nan")
    lowest = np.linalg.eigvalsh(0.5 * (rho + rho.conj().transpose(0, 2, 1)))[:, 0]
    worst = int(np.argmin(lowest))
    if lowest[worst] < -POSITIVITY_TOL:
        raise InvariantViolationError(
            "positivity", float(lowest[worst]), POSITIVITY_TOL,
            f"{where}: the smallest eigenvalue of rho is {lowest[worst]:.3g}{at(worst)} "
            f"(allowed >= {-POSITIVITY_TOL:g}){'; ' + cause if cause else ''}")
    return float(lowest[worst])


def simpson_error(times: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Richardson estimate of the error of ``cumulative_simpson`` for ``int values dt``.

    Simpson's rule is fourth order, so ``|S_h - S_2h| / 15`` estimates the error of ``S_h``, the
    rule on all points, from ``S_2h``, the same rule on every other point (compared up to the
    last point both grids share). Returns one estimate per column of ``values``. With fewer than
    five points the coarse rule does not exist; there the difference between Simpson's rule and
    the trapezoidal rule (second order) bounds the error generously.
    """
    from scipy.integrate import cumulative_simpson

    times = np.asarray(times, dtype=float)
    values = np.asarray(values, dtype=float)
    if times.size < 2:
        return np.zeros(values.shape[1:])
    if times.size < 5:
        simpson_total = cumulative_simpson(values, x=times, axis=0)[-1]
        return np.abs(simpson_total - np.trapezoid(values, times, axis=0))
    end = times.size if times.size % 2 == 1 else times.size - 1
    fine = cumulative_simpson(values[:end], x=times[:end], axis=0)[-1]
    coarse = cumulative_simpson(values[:end:2], x=times[:end:2], axis=0)[-1]
    return np.abs(fine - coarse) / 15.0


def first_law_tolerance(rtol: float, energy_flow: float, quadrature_error: float) -> float:
    """The largest first-law residual a correct cycle may have (see the module docstring)."""
    return FIRST_LAW_MARGIN * (rtol * energy_flow + quadrature_error) + 1e-12


def check_first_law(residual: float, tolerance: float, where: str, cause: str = "") -> None:
    """Raise :class:`InvariantViolationError` if ``|residual| > tolerance``."""
    if not abs(residual) <= tolerance:
        raise InvariantViolationError(
            "first law", float(residual), tolerance,
            f"{where}: Delta E_S + Delta <H_I> - Q_A - Q_B - W = {residual:.3g}, allowed "
            f"+/- {tolerance:.2g}{'; ' + cause if cause else ''}")


def check_entropy_production(sigma: np.ndarray, tolerance: float, where: str,
                             times: np.ndarray | None = None, cause: str = "") -> None:
    """Raise :class:`InvariantViolationError` if ``min sigma < -tolerance`` (second law)."""
    sigma = np.asarray(sigma, dtype=float)
    worst = int(np.argmin(sigma))
    if not sigma[worst] >= -tolerance:
        at = f" at t = {times[worst]:.6g}" if times is not None else ""
        raise InvariantViolationError(
            "second law", float(sigma[worst]), tolerance,
            f"{where}: the entropy production Sigma = Delta S_AB - Q_A/T_A - Q_B/T_B is "
            f"{sigma[worst]:.3g}{at}, allowed >= {-tolerance:.2g}{'; ' + cause if cause else ''}")
