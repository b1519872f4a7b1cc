"""The pump beyond weak coupling: converged HEOM against the local master equation, per kappa.

The paper stops at kappa = 0.01-0.023, where the local master equation is within 2 %. This module
runs the pump at both baths' couplings kappa_A = kappa, kappa_B = kappa_ratio * kappa (the paper's
ratio 2.3 by default) with the HEOM truncation converged at every kappa
(:meth:`qpump.pump.HeatPump.converged`), tau re-optimized for the heat drawn from the cold bath,
and compares the local master equation at the same tau; it also records how much the gauge phi_V
(docs/conventions.md) moves Q_B there. :func:`coupling_figure` draws the result
(``qpump figure coupling``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from ._validate import positive
from .errors import InvalidParameterError, NotConvergedError
from .pump import HeatPump
from .sweep import KAPPA_RATIO, optimal_tau

__all__ = ["CouplingRow", "coupling_scan", "coupling_figure", "relaxation_time_for", "DEFAULT_KAPPAS"]

#: The couplings of ``qpump figure coupling``: the paper's decade and three beyond it (kappa_A = 1
#: takes most of the 12 minutes: its search reaches depth 10, 92,378 ADOs with Matsubara).
DEFAULT_KAPPAS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.2, 0.5, 1.0)


def relaxation_time_for(kappa: float) -> float:
    """A rethermalization time long enough at coupling ``kappa``: 5 / kappa (the paper's 500 at
    kappa = 0.01), within [50, 5000]."""
    return min(max(50.0, 5.0 / kappa), 5000.0)


@dataclass(frozen=True)
class CouplingRow:
    """One kappa of :func:`coupling_scan` (HEOM values; ``None`` where the truncation did not
    converge within its budget).

    ``efficiency`` is Q_B / (T_A I_0) with the I_0 of the dressed state the cycle starts from,
    ``efficiency_bare`` with the bare I_0 of Eq. 10; ``work`` is W_on + W_off;
    ``lindblad_*`` the local master equation at the same tau, ``relative_difference`` its
    (Q_B^Lindblad - Q_B^HEOM) / |Q_B^HEOM|; ``phi_v_spread`` is Q_B(phi_V = 0) - Q_B(phi_V = delta)
    at the same truncation and tau.
    """

    kappa: float
    kappa_a: float
    kappa_b: float
    tau: float
    tau_relax: float
    Q_A: float | None
    Q_B: float | None
    heat_ratio: float | None
    efficiency: float | None
    efficiency_bare: float | None
    work: float | None
    lindblad_Q_B: float
    lindblad_efficiency: float
    relative_difference: float | None
    phi_v_spread: float | None
    depth: int | None
    n_exp: int | None
    expansion: str | None
    converged: bool
    last_change: float | None
    search_runs: int
    seconds: float
    error: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


def coupling_scan(kappas: Sequence[float] = DEFAULT_KAPPAS, *, kappa_ratio: float = KAPPA_RATIO,
                  conv_tol: float = 1e-5, time_limit_s: float | None = None,
                  optimize_tau: bool = True, base: HeatPump | None = None,
                  progress: Callable[[str], None] | None = None) -> list[CouplingRow]:
    """The pump at each coupling, HEOM converged, against the local master equation.

    Parameters
    ----------
    kappas : sequence of float
        kappa_A values (> 0); kappa_B = kappa_ratio * kappa_A.
    kappa_ratio : float
        kappa_B / kappa_A (> 0; the paper's 2.3 by default).
    conv_tol : float
        Convergence tolerance of the truncation on Q_A, Q_B (absolute).
    time_limit_s : float, optional
        Budget of each kappa's truncation search; a kappa that does not converge within it is
        recorded with ``converged=False`` and no HEOM numbers.
    optimize_tau : bool
        Re-optimize tau for Q_B at each kappa (at the converged truncation).
    base : HeatPump, optional
        The other parameters (default: the paper's, one cycle).
    progress : callable, optional
        Called with a line per finished step: each truncation the search tries, each kappa.

    Returns
    -------
    list of CouplingRow
    """
    kappas = [positive("kappa", k) for k in kappas]
    if not kappas:
        raise InvalidParameterError("kappas is empty: give at least one coupling")
    positive("kappa_ratio", kappa_ratio)
    base = base or HeatPump(cycles=1)
    rows = []
    for kappa in kappas:
        start = time.perf_counter()
        pump = replace(base, kappa_a=kappa, kappa_b=kappa_ratio * kappa,
                       tau_relax=relaxation_time_for(kappa), depth="auto", n_exp="auto",
                       conv_tol=conv_tol, time_limit_s=time_limit_s, cycles=1)
        try:
            converged, search = pump.converged(progress=_per_truncation(progress, kappa))
        except NotConvergedError as err:
            rows.append(_unconverged(pump, kappa, err, time.perf_counter() - start))
            if progress:
                progress(f"kappa = {kappa:g}: not converged ({err})")
            continue
        if optimize_tau:
            converged = replace(converged, tau=optimal_tau(converged, "Q_B"))
        cycle = converged.run(normal_reference=False).cycles[0]
        local = _master_equation_cycle(converged)
        gauge = replace(converged, phi_v=0.0).run(normal_reference=False).cycles[0]
        rows.append(CouplingRow(
            kappa=kappa, kappa_a=converged.kappa_a, kappa_b=converged.kappa_b, tau=converged.tau,
            tau_relax=converged.tau_relax, Q_A=cycle.Q_A, Q_B=cycle.Q_B,
            heat_ratio=abs(cycle.Q_A) / abs(cycle.Q_B) if cycle.Q_B else None,
            efficiency=cycle.cop_ratio, efficiency_bare=cycle.cop_ratio_bare,
            work=cycle.W_on + cycle.W_off, lindblad_Q_B=local.Q_B,
            lindblad_efficiency=local.cop_ratio,
            relative_difference=(local.Q_B - cycle.Q_B) / abs(cycle.Q_B) if cycle.Q_B else None,
            phi_v_spread=gauge.Q_B - cycle.Q_B, depth=converged.truncation[0],
            n_exp=converged.truncation[1], expansion=converged.expansion, converged=True,
            last_change=search.change, search_runs=search.runs,
            seconds=time.perf_counter() - start))
        if progress:
            r = rows[-1]
            progress(f"kappa = {kappa:g}: Q_B = {r.Q_B:.6f} (Lindblad {r.lindblad_Q_B:.6f}), "
                     f"efficiency {r.efficiency:.4f}, tau {r.tau:.3f}, depth {r.depth}, n_exp "
                     f"{r.n_exp} ({r.expansion}), {r.seconds:.0f} s")
    return rows


def _per_truncation(progress: Callable[[str], None] | None,
                    kappa: float) -> Callable[[Any], None] | None:
    """The progress line of each truncation the search at ``kappa`` tries; None without progress."""
    if progress is None:
        return None
    return lambda row: progress(f"kappa = {kappa:g}: truncation: {row}")


def _master_equation_cycle(pump: HeatPump):
    """The cycle of ``pump`` with the local master equation (its truncation fields are HEOM-only)."""
    return replace(pump, solver="lindblad", depth=3, n_exp=2).run(normal_reference=False).cycles[0]


def _unconverged(pump: HeatPump, kappa: float, err: NotConvergedError, seconds: float) -> CouplingRow:
    """The row of a kappa whose truncation search stopped at its budget: the local master
    equation's numbers only."""
    local = _master_equation_cycle(pump)
    search = err.result
    changes = [r.change for r in search.table if r.change is not None]  # type: ignore[attr-defined]
    return CouplingRow(
        kappa=kappa, kappa_a=pump.kappa_a, kappa_b=pump.kappa_b, tau=pump.tau,
        tau_relax=pump.tau_relax, Q_A=None, Q_B=None, heat_ratio=None, efficiency=None,
        efficiency_bare=None, work=None, lindblad_Q_B=local.Q_B,
        lindblad_efficiency=local.cop_ratio, relative_difference=None, phi_v_spread=None,
        depth=None, n_exp=None, expansion=None, converged=False,
        last_change=changes[-1] if changes else None,
        search_runs=search.runs, seconds=seconds, error=str(err))  # type: ignore[attr-defined]


def coupling_figure(rows: Sequence[CouplingRow], carnot_bound: float | None = None):
    """Efficiency and heat per cycle against kappa, HEOM (converged) against the local master
    equation, with the Carnot bound; unconverged couplings are left out of the HEOM curve."""
    from .figures import _pyplot

    plt = _pyplot()
    kappa = np.array([r.kappa for r in rows])
    ok = np.array([r.converged for r in rows])

    def column(name: str) -> np.ndarray:
        return np.array([math.nan if getattr(r, name) is None else getattr(r, name) for r in rows])

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.4, 7.0), sharex=True)
    top.plot(kappa[ok], column("efficiency")[ok], "o-", label="HEOM (converged)")
    top.plot(kappa, column("lindblad_efficiency"), "s--", label="local master equation")
    if carnot_bound is not None:
        top.axhline(carnot_bound, color="black", ls=":", label=f"Carnot bound {carnot_bound:g}")
    top.set_ylabel(r"$Q_B / (T_A I_0)$")
    top.legend()
    bottom.plot(kappa[ok], column("Q_B")[ok], "o-", label=r"$Q_B$ HEOM")
    bottom.plot(kappa[ok], -column("Q_A")[ok], "^-", label=r"$-Q_A$ HEOM")
    bottom.plot(kappa, column("lindblad_Q_B"), "s--", label=r"$Q_B$ local master equation")
    bottom.axhline(0.0, color="grey", lw=0.8)
    bottom.set_xscale("log")
    ratio = rows[0].kappa_b / rows[0].kappa_a if rows else KAPPA_RATIO
    bottom.set_xlabel(rf"$\kappa_A$ ($\kappa_B = {ratio:g}\,\kappa_A$)")
    bottom.set_ylabel("heat per cycle")
    bottom.legend()
    fig.suptitle("The pump beyond weak coupling (tau optimized per kappa)")
    fig.tight_layout()
    return fig
