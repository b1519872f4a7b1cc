"""Side-by-side benchmark of qpump's HEOM solver against QuTiP's HEOMSolver.

Two problems (issue 3): (a) ``pump_cycle``, one heat-pump cycle at the paper's parameters
(tau = 6.1 with V_AB on, then 500 uncoupled, depth 3, 2 Matsubara terms, 5000 output times);
(b) ``deep_hierarchy``, the two-qubit model at depth 8 with 3 Matsubara terms per bath
(12,870 ADOs), t = 0..10. Both codes run in the same process; QuTiP with rtol 1e-8, atol 1e-10
and the heat currents computed by e_ops callbacks on its ADO state. Ratios are measured, never
asserted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .heom import ADOState, DrudeLorentzBath, HEOMSolver
from .pump import H_FREE, Q_A, Q_B
from .states import coupling_potential, optimal_correlation, product_state

__all__ = ["run_benchmarks", "format_table"]

_PAPER = dict(kappa_a=0.01, kappa_b=0.023, gamma=2.0, t_a=2.0, t_b=1.0)


def _segments(quick: bool) -> tuple[list[tuple[str, np.ndarray]], int]:
    tau, relax = 6.1, 500.0
    n_out = 5000
    if quick:
        relax, n_out = 50.0, 500
    grid = np.linspace(0.0, tau + relax, n_out)
    t1 = np.concatenate([grid[grid < tau], [tau]])
    t2 = np.concatenate([[tau], grid[grid > tau]])
    return [("on", t1), ("off", t2)], n_out


def _qutip_heat_callbacks(qbaths: list[Any], qs: list[np.ndarray], h: np.ndarray):
    """e_ops callbacks computing the heat current into each bath from QuTiP's ADO state."""
    n_total = sum(len(b.exponents) for b in qbaths)
    callbacks = []
    offset = 0
    for b, q in zip(qbaths, qs, strict=True):
        labels = []
        for k in range(len(b.exponents)):
            lab = [0] * n_total
            lab[offset + k] = 1
            labels.append(tuple(lab))
        offset += len(b.exponents)
        vks = [e.vk for e in b.exponents]
        ci0 = sum(e.ck2 if e.ck2 is not None else 0.0 for e in b.exponents)
        delta = b.terminator()[0].real
        c1 = h @ q - q @ h
        m = c1 @ q - q @ c1
        q2 = q @ q

        def current(t, state, labels=labels, vks=vks, ci0=ci0, delta=delta, q=q, q2=q2, m=m):
            j = 0.0
            for lab, vk in zip(labels, vks, strict=True):
                j += vk * np.trace(q @ state.extract(lab).full()).real
            rho = state.rho.full()
            return j - 2 * ci0 * np.trace(q2 @ rho).real + delta * np.trace(m @ rho).real

        callbacks.append(current)
    return callbacks


def _run_qutip(problem: dict) -> tuple[float, np.ndarray, np.ndarray]:
    import qutip as qt
    from qutip.solver.heom import DrudeLorentzBath as QtBath
    from qutip.solver.heom import HEOMSolver as QtSolver

    dims = [[2, 2], [2, 2]]
    qbaths = [QtBath(qt.Qobj(q, dims=dims), lam=k, gamma=g, T=t, Nk=n) for q, k, g, t, n in problem["baths"]]
    qs = [b[0] for b in problem["baths"]]
    terms = [b.terminator()[1] for b in qbaths]
    opts = dict(rtol=1e-8, atol=1e-10, nsteps=10**9, progress_bar=False, store_states=True)

    def liouvillian(h):
        out = qt.liouvillian(qt.Qobj(h, dims=dims))
        for term in terms:
            out = out + term
        return out

    state: Any = None
    if problem.get("rho0") is not None:
        state = qt.Qobj(problem["rho0"], dims=dims)
    if problem.get("start_from_steady") is not None:
        h_ss = problem["start_from_steady"]
        _, ados = QtSolver(
            liouvillian(h_ss), qbaths, problem["depth"], options={"progress_bar": False}
        ).steady_state()
        arr = np.array(ados._ado_state, dtype=complex)
        arr[0] += problem["rho0_add"].T  # QuTiP reads each block column-major
        state = arr
    rhos, currents = [], []
    elapsed = 0.0
    for i, (h, times) in enumerate(problem["segments"]):
        last = i == len(problem["segments"]) - 1
        o = dict(opts)
        o["store_ados"] = not last
        t0 = time.perf_counter()
        solver = QtSolver(liouvillian(h), qbaths, problem["depth"], options=o)
        res = solver.run(state, times, e_ops=_qutip_heat_callbacks(qbaths, qs, h))
        elapsed += time.perf_counter() - t0
        sl = slice(1, None) if i > 0 else slice(None)
        rhos.append(np.array([s.full() for s in res.states])[sl])
        currents.append(np.array(res.expect).T[sl])
        if not last:
            state = res.ado_states[-1]
    return elapsed, np.concatenate(rhos), np.concatenate(currents)


def _run_qpump(problem: dict) -> tuple[float, np.ndarray, np.ndarray, dict]:
    baths = [DrudeLorentzBath(q, k, g, t, n_exp=n) for q, k, g, t, n in problem["baths"]]
    solver = HEOMSolver(problem["segments"][0][0], baths, depth=problem["depth"])
    state: Any = problem["rho0"]
    if problem.get("start_from_steady") is not None:
        solver.set_hamiltonian(problem["start_from_steady"])
        ss = solver.steady_state()
        ados = ss.ados.copy()
        ados[0] += problem["rho0_add"]
        state = ADOState(ados, ss.labels, 0.0)
    rhos, currents = [], []
    stats = {"steps": 0, "rhs_evaluations": 0}
    elapsed = 0.0
    for i, (h, times) in enumerate(problem["segments"]):
        t0 = time.perf_counter()
        solver.set_hamiltonian(h)
        res = solver.run(state, times)
        elapsed += time.perf_counter() - t0
        sl = slice(1, None) if i > 0 else slice(None)
        rhos.append(res.rho[sl])
        currents.append(res.heat_current[sl])
        state = res.final_state
        for key in stats:
            stats[key] += res.stats[key]
    stats["n_ados"] = solver.n_ados
    return elapsed, np.concatenate(rhos), np.concatenate(currents), stats


def _problems(quick: bool) -> list[dict]:
    h0, v, qa, qb = H_FREE, coupling_potential(0.1, -math.pi / 2), Q_A, Q_B
    p = _PAPER
    chi = optimal_correlation(p["t_a"], p["t_b"]).matrix
    segs, _ = _segments(quick)
    seg_h = {"on": h0 + v, "off": h0}
    pump = dict(
        name="pump_cycle",
        baths=[(qa, p["kappa_a"], p["gamma"], p["t_a"], 2), (qb, p["kappa_b"], p["gamma"], p["t_b"], 2)],
        depth=3,
        segments=[(seg_h[k], t) for k, t in segs],
        rho0=None,
        start_from_steady=h0,
        rho0_add=chi,
    )
    t_end, n_out = (2.0, 21) if quick else (10.0, 101)
    deep = dict(
        name="deep_hierarchy",
        baths=[(qa, p["kappa_a"], p["gamma"], p["t_a"], 3), (qb, p["kappa_b"], p["gamma"], p["t_b"], 3)],
        depth=8,
        segments=[(h0 + v, np.linspace(0.0, t_end, n_out))],
        rho0=product_state(p["t_a"], p["t_b"]) + chi,
    )
    return [pump, deep]


def run_benchmarks(quick: bool = False, with_qutip: bool = True, progress: bool = True) -> dict:
    """Run the benchmark problems with qpump and (optionally) QuTiP.

    Parameters
    ----------
    quick : bool, optional
        Shorter runs (pump: 50 instead of 500 relaxation time, 500 outputs; deep: t = 0..2).
    with_qutip : bool, optional
        Also run QuTiP (when installed) and compare.
    progress : bool, optional
        Print one line per finished run.

    Returns
    -------
    dict
        ``{"problems": [{"name", "n_ados", "qutip_s", "qpump_s", "ratio", "max_deviation",
        "rhs_evaluations", "steps", "ns_per_ado_per_rhs"}]}``; the QuTiP fields are None when
        QuTiP is absent or not requested.
    """
    have_qutip = False
    if with_qutip:
        try:
            import qutip  # noqa: F401

            have_qutip = True
        except ImportError:
            have_qutip = False
    say: Callable[[str], None] = print if progress else (lambda _msg: None)
    out = []
    for prob in _problems(quick):
        q_s, rho_p, j_p, stats = _run_qpump(prob)
        say(f"{prob['name']}: qpump {q_s:.3f} s ({stats['n_ados']} ADOs)")
        entry: dict[str, Any] = {
            "name": prob["name"],
            "n_ados": int(stats["n_ados"]),
            "qutip_s": None,
            "qpump_s": q_s,
            "ratio": None,
            "max_deviation": None,
            "steps": int(stats["steps"]),
            "rhs_evaluations": int(stats["rhs_evaluations"]),
            "ns_per_ado_per_rhs": q_s / max(stats["rhs_evaluations"], 1) / stats["n_ados"] * 1e9,
        }
        if have_qutip:
            qt_s, rho_q, j_q = _run_qutip(prob)
            dev = max(float(np.max(np.abs(rho_q - rho_p))), float(np.max(np.abs(j_q - j_p))))
            entry.update(qutip_s=qt_s, ratio=qt_s / q_s, max_deviation=dev)
            say(f"{prob['name']}: qutip {qt_s:.3f} s, ratio {qt_s / q_s:.1f}, deviation {dev:.2e}")
        out.append(entry)
    return {"problems": out}


def format_table(result: dict) -> str:
    """Format :func:`run_benchmarks` output as a text table."""

    def f(x: Any, fmt: str) -> str:
        return "-" if x is None else format(x, fmt)

    head = f"{'problem':<16}{'ADOs':>8}{'qutip s':>10}{'qpump s':>10}{'ratio':>8}{'max dev':>10}"
    head += f"{'ns/ADO/rhs':>12}"
    lines = [head, "-" * len(head)]
    for p in result["problems"]:
        lines.append(
            f"{p['name']:<16}{p['n_ados']:>8d}{f(p['qutip_s'], '.2f'):>10}"
            f"{f(p['qpump_s'], '.3f'):>10}{f(p['ratio'], '.1f'):>8}"
            f"{f(p['max_deviation'], '.1e'):>10}{f(p.get('ns_per_ado_per_rhs'), '.0f'):>12}"
        )
    return "\n".join(lines)
