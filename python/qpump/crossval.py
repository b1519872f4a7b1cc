"""Cross-validation of every route through the physics, in one report.

closed form vs exact propagation vs Aer (noise-free); Aer with bath channels vs the local master
equation (lindblad.py); lindblad.py vs HEOM at weak coupling (a physics measurement: the deviation
and its scaling with kappa); the pump side by side, HEOM vs Aer with bath noise; state preparation
by every method vs qpump.states; exported circuits vs their in-memory originals; the pump cycle with
collision-model baths (the hardware pump) vs its exact prediction, its continuum limit vs lindblad.py
(measured order) and, on a fake device's noise with shots, its bath-side heat vs the noisy prediction.

A row is ``{"quantity": str, "max_deviation": float, "tolerance": float | None,
"passed": bool | None}``; tolerance and passed are None where the row is a measurement.
"""

from __future__ import annotations

import math
from dataclasses import replace
from importlib import resources
from pathlib import Path

import numpy as np

from .closed import pair_hamiltonian, propagate, rho_closed_form
from .pump import HeatPump
from .quantum.validation import collision_pump_rows, export_rows, pump_rows, quantum_rows, row
from .states import optimal_correlation

__all__ = ["crossval_rows", "weak_coupling_rows", "format_table", "format_markdown", "REPO_CIRCUITS"]

#: The committed circuit set for the paper's parameters, shipped inside the package (the repository's
#: top-level ``circuits/`` points to the same folder).
REPO_CIRCUITS = Path(str(resources.files("qpump") / "circuits"))
WEAK_KAPPAS = (0.001, 0.01)


def _closed_rows(pump: HeatPump) -> list[dict]:
    times = np.linspace(0.0, 4 * pump.tau, 41)
    corr = optimal_correlation(pump.TA, pump.TB)
    numeric = propagate(corr.state(), times, pair_hamiltonian(pump.omega_c, pump.v_phase))
    closed_form = rho_closed_form(times, pump.TA, pump.TB, pump.omega_c, pump.v_phase, corr)
    return [row("isolated pair: closed form (App. B) vs exact propagation (rho)",
                np.max(np.abs(numeric - closed_form)), 1e-12)]


def weak_coupling_rows(pump: HeatPump, window: float = 0.0) -> list[dict]:
    """lindblad.py vs HEOM for kappa_A = kappa_B = kappa in WEAK_KAPPAS, from the same product
    start (chi added to the bare Gibbs product, all ADOs zero), over the contact and ``window``
    of relaxation: max |rho_HEOM - rho_ME| and |Q_B^HEOM - Q_B^ME| at the end, and the exponent
    of their growth with kappa. Measurements, not checks: the local master equation is the
    weak-coupling limit, and its error is physics. Over the contact alone both deviations grow
    linearly in kappa (the switch-on of the system-bath coupling, which the master equation
    lacks, moves an energy of the order of the reorganisation energy kappa); over long windows
    both solvers relax and the state deviation saturates."""
    rows, devs = [], []
    for kappa in WEAK_KAPPAS:
        base = replace(pump, kappa_a=kappa, kappa_b=kappa, cycles=1, tau_relax=window,
                       initial="product")
        heom = base.run(normal_reference=False)
        me = replace(base, solver="lindblad").run(normal_reference=False)
        d_rho = float(np.max(np.abs(heom.rho - me.rho)))
        d_q = abs(heom.cycles[0].Q_B - me.cycles[0].Q_B)
        devs.append((d_rho, d_q))
        span_text = f"tau = {pump.tau:g}" + (f" + {window:g} relaxing" if window else "")
        rows.append(row(f"HEOM vs lindblad.py at kappa = {kappa:g}: rho(t) over {span_text}",
                        d_rho, None))
        rows.append(row(f"HEOM vs lindblad.py at kappa = {kappa:g}: Q_B after {span_text} "
                        f"(HEOM {heom.cycles[0].Q_B:.6f})", d_q, None))
    span = math.log10(WEAK_KAPPAS[1] / WEAK_KAPPAS[0])
    for k, name in ((0, "rho(t)"), (1, "Q_B")):
        low, high = devs[0][k], devs[1][k]
        if low > 0 and high > 0:
            rows.append(row(f"HEOM vs lindblad.py: exponent p of deviation ~ kappa^p ({name})",
                            math.log10(high / low) / span, None))
    return rows


def _pump_side_by_side(pump: HeatPump, dt: float) -> list[dict]:
    aer_rows, aer = pump_rows(replace(pump, solver="lindblad"), dt=dt)
    heom = replace(pump, solver="heom").run(normal_reference=False)
    rows = list(aer_rows)
    for k, cycle in enumerate(heom.cycles):
        for name in ("Q_A", "Q_B"):
            h, a = getattr(cycle, name), aer[name][k]
            rows.append(row(f"pump cycle {k + 1}: {name} HEOM {h:+.6f} vs Aer with bath noise "
                            f"{a:+.6f} (relative difference)", abs(h - a) / abs(h), None))
    return rows


def crossval_rows(pump: HeatPump | None = None, *, dt: float = 0.05, circuits_dir=None,
                  weak_window: float = 0.0) -> list[dict]:
    """All rows of the report at one parameter set (the pump's)."""
    pump = pump or HeatPump()
    rows = _closed_rows(pump)
    rows += quantum_rows(pump.TA, pump.TB, pump.omega_c, pump.v_phase, pump.kappa_a, pump.kappa_b,
                         pump.gamma, pump.tau, dt)
    rows += weak_coupling_rows(pump, weak_window)
    rows += _pump_side_by_side(pump, dt)
    rows += export_rows(circuits_dir, pump.TA, pump.TB, pump.omega_c, pump.v_phase)
    rows += collision_pump_rows(pump)
    return rows


def format_table(rows: list[dict]) -> str:
    """A plain-text table: quantity, max deviation, tolerance, pass/fail."""
    width = max(len(r["quantity"]) for r in rows)
    lines = [f"{'quantity':<{width}}  {'max deviation':>13}  {'tolerance':>9}  result",
             "-" * (width + 40)]
    for r in rows:
        tol = "-" if r["tolerance"] is None else f"{r['tolerance']:.0e}"
        verdict = "measured" if r["passed"] is None else ("pass" if r["passed"] else "FAIL")
        lines.append(f"{r['quantity']:<{width}}  {r['max_deviation']:13.3e}  {tol:>9}  {verdict}")
    return "\n".join(lines)


def format_markdown(rows: list[dict], title: str = "qpump cross-validation") -> str:
    """The same table as Markdown."""
    lines = [f"# {title}", "", "| quantity | max deviation | tolerance | result |", "|---|---|---|---|"]
    for r in rows:
        tol = "-" if r["tolerance"] is None else f"{r['tolerance']:.0e}"
        verdict = "measured" if r["passed"] is None else ("pass" if r["passed"] else "**FAIL**")
        lines.append(f"| {r['quantity']} | {r['max_deviation']:.3e} | {tol} | {verdict} |")
    return "\n".join(lines) + "\n"
