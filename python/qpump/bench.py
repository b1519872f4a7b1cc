"""Side-by-side benchmark of qpump's HEOM solver against QuTiP's HEOMSolver.

Four problems, the fourth run only when named. Two time evolutions (issue 3): (a)
``pump_cycle``, one heat-pump cycle at the paper's parameters (tau = 6.1 with V_AB on, then 500
uncoupled, depth 3, 2 Matsubara terms, 5000 output times); (b) ``deep_hierarchy``, the two-qubit
model at depth 8 with 3 Matsubara terms per bath (12,870 ADOs), t = 0..10. Both codes run in
the same process; QuTiP with rtol 1e-8, atol 1e-10 and the heat currents computed by e_ops
callbacks on its ADO state. Ratios are measured, never asserted.

QuTiP integrates with Tsitouras' 5(4) Runge-Kutta method (``method="tsit5"``) by default, not
with its default Adams method (scipy's zvode), so that the comparison is both fair and able to
confirm the 1e-7 agreement asked of the two codes. Measured on this project's machine at
rtol 1e-8, atol 1e-10 (shortest of five interleaved runs on (a), one run on (b); error against a
converged qpump run):

=========  ===============  ===============
method     (a) pump cycle   (b) deep
=========  ===============  ===============
adams      7.4 s, 5.0e-8    135 s, 5.2e-7
tsit5      4.3 s, 1.6e-10   110 s, 8.0e-9
vern7      6.3 s, 2.5e-11   115 s, 3.6e-9
dop853     6.7 s, 1.3e-11   110 s, 2.5e-10
=========  ===============  ===============

tsit5 is QuTiP's fastest method on (a) and tied for fastest on (b), and accurate on both; Adams
leaves 5e-7 of its own error on (b), although its error norm (an RMS over all ADO entries) is of
the same kind as the Runge-Kutta methods'. On (a), bdf was 3.7e-7 off, lsoda took 117 s and
vern9 9.2 s. Any of QuTiP's methods can be chosen instead.

(c) ``steady_state`` (issue 15): the stationary hierarchy, one row per model, expansion, kappa and
depth (``STEADY_STATE_ROWS``): a qubit (H = 0.5 SZ + 0.25 SX, one Drude-Lorentz bath on SZ,
gamma 1, T 0.5, 3 exponents besides the Drude term, depth 6) and the pump's coupled pair
(``H_FREE + V_AB`` with the pump's two baths, kappa_b = 2.3 kappa_a, depths 3 and 4). Each code
is timed as a user pays it, baths and solver construction plus ``steady_state()``; the rows
report median times and the largest deviation of the two stationary system states. The solve is
a sparse LU in both codes; qpump runs SuperLU's BLAS on one thread (threadpoolctl), QuTiP with
the BLAS's default threads. ``busy`` (``qpump bench --busy N``) runs N busy-looping processes
beside the problems, the shared machine on which the multithreaded BLAS collapsed.

(d) ``strong_coupling``, run only when named (``qpump bench --problem strong_coupling``): one
pump cycle, ``HeatPump(kappa_a=0.1, kappa_b=0.23, tau_relax=200, depth=5, n_exp=3, cycles=1)``
(the paper's other defaults; 1,287 ADOs, 611 + 2001 output times), the route of (a): each code
starts from the stationary hierarchy of the uncoupled pair with chi added (computed once by
qpump, untimed, mapped onto QuTiP's ADO labels and checked stationary under QuTiP's generator),
and is timed over its solvers' construction and the two segments. qpump's solver is also given
that stationary hierarchy (``HEOMSolver.set_stationary``), the reference of the steady-state frame
of its relaxation, as ``HeatPump.run`` has it from solving for its start; the solve's time is
reported (``qpump_start_s``, GMRES) with the time ratio that counts it in
(``ratio_median_with_start``). Q_A and Q_B are Simpson's
integrals of the heat currents as in ``HeatPump.run``. Each run is a fresh Python process
(``_run_child``), so that its peak resident memory (VmHWM) is that code's alone; qpump runs
with RAYON_NUM_THREADS 1 and 2 (``STRONG_COUPLING_THREADS``; the speedup and the time per ADO
per right-hand side of each), QuTiP with each of ``STRONG_COUPLING_QUTIP_METHODS`` at
``QUTIP_TOLERANCES``. Equal accuracy: qpump at its defaults; QuTiP's time is its fastest method
whose Q_B is within ``STRONG_COUPLING_ACCURACY`` (1e-6, relative) of the untimed tight qpump
reference. The candidates come from a survey of ``QUTIP_METHODS`` (one run each, own process;
Q_B's relative error; qpump, before its relaxation had the steady-state frame, 4.4 s and 9.5e-9
beside it):

==========  ======================  =======================  ===========================
method      relax 200, rtol 1e-8    relax 20, rtol 1e-8      relax 20, rtol 1e-6, atol 1e-8
==========  ======================  =======================  ===========================
dop853      74 s, 4.3e-13           13.0 s, 1.8e-12          11.9 s, 3.2e-11
adams       88 s, 5.0e-8            11.4 s, 5.0e-8           13.2 s, 2.1e-6 (inaccurate)
bdf         88 s, 8.6e-8            12.5 s, 8.6e-8           14.7 s, 7.0e-6 (inaccurate)
tsit5       612 s (busy), 2.4e-11   46.9 s, 2.5e-11          196 s, 2.4e-11
==========  ======================  =======================  ===========================

At relax 2, vern7 (29 s; 14 s at rtol 1e-6) and vern9 (85 s; 28 s) were slower than dop853
(11 s; 8 s), and lsoda's process died without a message (likely the dense Jacobian of its
stiff switch, 41,184 reals square). Looser tolerances gain the Runge-Kutta methods little (their
steps are bounded by stability, not accuracy: tsit5 got slower) and cost Adams and BDF their
accuracy, so all run at ``QUTIP_TOLERANCES``; the three close ones are each timed in every run.
QuTiP steps through the outputs with its ``start``/``step`` (the loop of its ``run``), handing a
segment's final ADOs on without storing the ADOs at every output (0.2 GB at 611 outputs).

The bandwidth bound of the time per ADO per right-hand side: a one-thread ``numpy.copyto`` of
128 MiB arrays gives the bandwidth; the coupling sweep reads an ADO's own block and its
neighbours' (one exponent up, K of them below the deepest tier, and one down per non-zero index:
6.15 on average, at most 12 at depth 5 with K = 8) and writes one, 256 bytes each (2,088 bytes
in all). The ADOs (0.3 MB) and the integrator's history (3 MB) fit the caches, so the DRAM
bandwidth is a loose bound, and the predictor and corrector passes of each step (counted in the
time, not in the bytes) move more: the fraction is an estimate, not a roofline.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from ._validate import non_negative_int, one_of
from .errors import InvalidParameterError
from .heom import DEFAULT_ATOL, DEFAULT_RTOL, ADOState, DrudeLorentzBath, HEOMSolver
from .pump import H_FREE, Q_A, Q_B, HeatPump
from .states import coupling_potential, optimal_correlation, product_state

__all__ = ["run_benchmarks", "format_table", "qutip_liouvillian", "qutip_heat_currents", "busy_processes",
           "measure_copy_bandwidth"]

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


def qutip_liouvillian(h: np.ndarray, qbaths: list[Any], dims: list) -> Any:
    """QuTiP's generator of the system for :class:`qutip.solver.heom.HEOMSolver`: the
    Liouvillian of ``h`` plus the terminator of each bath (the Markovian remainder of its
    Matsubara or Pade tail, for the baths that have one), the model qpump's own hierarchy solves."""
    import qutip as qt

    out = qt.liouvillian(qt.Qobj(h, dims=dims))
    for b in qbaths:
        if hasattr(b, "terminator"):
            out = out + b.terminator()[1]
    return out


def qutip_heat_currents(qbaths: list[Any], qs: list[np.ndarray], h: np.ndarray) -> list:
    """The heat current into each bath read from QuTiP's ADO state: one callable
    ``current(t, ado_state)`` per bath, usable as an ``e_ops`` callback.

    The reference formula of qpump's own observable (docs/heom.md), written independently of
    it: ``j_K = sum_k Re(nu_k tr[Q_K rho_{e_k}]) - 2 C_K^I(0) tr[Q_K^2 rho]
    + delta_K tr([[H, Q_K], Q_K] rho) + delta_K sum_{J != K, j in J} Re tr([[Q_J, Q_K], Q_K]
    rho_{e_j}])`` over the exponents k of bath K (rates may be complex),
    with QuTiP's first-tier ADOs and terminator amplitude; ``C_K^I(0)`` sums the amplitudes of
    QuTiP's imaginary-part exponents ("I" and the second of "RI").
    """
    n_total = sum(len(b.exponents) for b in qbaths)
    offsets = np.cumsum([0] + [len(b.exponents) for b in qbaths])

    def tier1_labels(bath: int) -> list[tuple[int, ...]]:
        return [tuple(int(i == offsets[bath] + k) for i in range(n_total))
                for k in range(len(qbaths[bath].exponents))]

    def commutator(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a @ b - b @ a

    callbacks = []
    for kb, (b, q) in enumerate(zip(qbaths, qs, strict=True)):
        labels = tier1_labels(kb)
        vks = [e.vk for e in b.exponents]
        ci0 = sum((e.ck2 if e.type.name == "RI" else e.ck if e.type.name == "I" else 0.0).real
                  for e in b.exponents)
        delta = b.terminator()[0].real if hasattr(b, "terminator") else 0.0  # no terminator
        m = commutator(commutator(h, q), q)
        q2 = q @ q
        # The terminator also acts on the other baths' first-tier ADOs, and what it takes from
        # their interaction energy flows into this bath: delta tr([[Q_J, Q], Q] rho_{e_j}).
        cross = [(tier1_labels(jb), delta * commutator(commutator(qj, q), q))
                 for jb, qj in enumerate(qs) if jb != kb and delta != 0.0]

        def current(t, state, labels=labels, vks=vks, ci0=ci0, delta=delta, q=q, q2=q2, m=m,
                    cross=cross):
            j = 0.0
            for lab, vk in zip(labels, vks, strict=True):
                j += (vk * np.trace(q @ state.extract(lab).full())).real
            for other_labels, mj in cross:
                j += sum(np.trace(mj @ state.extract(lab).full()).real for lab in other_labels)
            rho = state.rho.full()
            return j - 2 * ci0 * np.trace(q2 @ rho).real + delta * np.trace(m @ rho).real

        callbacks.append(current)
    return callbacks


#: QuTiP's tolerances in the timed runs (issue 3) and in the optional accurate check.
QUTIP_TOLERANCES = dict(rtol=1e-8, atol=1e-10)
QUTIP_TIGHT_TOLERANCES = dict(rtol=1e-10, atol=1e-12)
#: QuTiP's integrator in both (see the module documentation), and the ones it offers for HEOM.
QUTIP_METHOD = "tsit5"
QUTIP_METHODS = ("adams", "bdf", "lsoda", "tsit5", "dop853", "vern7", "vern9")
#: The benchmark problems run by default (``qpump bench`` without ``--problem``), in the order
#: they run.
PROBLEM_NAMES = ("pump_cycle", "deep_hierarchy", "steady_state")
#: Problems run only when named (``--problem strong_coupling``): QuTiP takes minutes on them.
OPT_IN_PROBLEM_NAMES = ("strong_coupling",)
#: The registry of every problem :func:`run_benchmarks` knows, in the order they run.
ALL_PROBLEM_NAMES = PROBLEM_NAMES + OPT_IN_PROBLEM_NAMES


def _run_qutip(
    problem: dict, rtol: float, atol: float, method: str
) -> tuple[float, np.ndarray, np.ndarray]:
    import qutip as qt
    from qutip.solver.heom import DrudeLorentzBath as QtBath
    from qutip.solver.heom import HEOMSolver as QtSolver

    dims = [[2, 2], [2, 2]]
    qbaths = [QtBath(qt.Qobj(q, dims=dims), lam=k, gamma=g, T=t, Nk=n) for q, k, g, t, n in problem["baths"]]
    qs = [b[0] for b in problem["baths"]]
    opts = dict(method=method, rtol=rtol, atol=atol, nsteps=10**9, progress_bar=False, store_states=True)

    state: Any = None
    if problem.get("rho0") is not None:
        state = qt.Qobj(problem["rho0"], dims=dims)
    if problem.get("start_from_steady") is not None:
        h_ss = problem["start_from_steady"]
        _, ados = QtSolver(
            qutip_liouvillian(h_ss, qbaths, dims), qbaths, problem["depth"], options={"progress_bar": False}
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
        solver = QtSolver(qutip_liouvillian(h, qbaths, dims), qbaths, problem["depth"], options=o)
        res = solver.run(state, times, e_ops=qutip_heat_currents(qbaths, qs, h))
        elapsed += time.perf_counter() - t0
        sl = slice(1, None) if i > 0 else slice(None)
        rhos.append(np.array([s.full() for s in res.states])[sl])
        currents.append(np.array(res.expect).T[sl])
        if not last:
            state = res.ado_states[-1]
    return elapsed, np.concatenate(rhos), np.concatenate(currents)


def _run_qpump(problem: dict, **solver_kw: Any) -> tuple[float, np.ndarray, np.ndarray, dict]:
    baths = [DrudeLorentzBath(q, k, g, t, n_exp=n) for q, k, g, t, n in problem["baths"]]
    state: Any = problem["rho0"]
    if problem.get("start_from_steady") is not None:
        # The start state comes from a solver of its own, untimed as in QuTiP's run; the timed
        # solver then computes (and pays for) every stationary state its steady-state frame uses.
        ss = HEOMSolver(problem["start_from_steady"], baths, depth=problem["depth"]).steady_state()
        ados = ss.ados.copy()
        ados[0] += problem["rho0_add"]
        state = ADOState(ados, ss.labels, 0.0)
    rhos, currents = [], []
    stats = {"steps": 0, "rhs_evaluations": 0}
    elapsed = 0.0
    t0 = time.perf_counter()
    solver = HEOMSolver(problem["segments"][0][0], baths, depth=problem["depth"], **solver_kw)
    elapsed += time.perf_counter() - t0
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


#: The rows of the steady-state problem: (model, expansion, kappa, depth); ``model`` is "qubit"
#: (d = 2) or "pump" (d = 4), kappa the reorganisation energy of the qubit's bath or of the pump's
#: bath A. The pump's rows stop at depth 4: QuTiP took 2.4 s at depth 5 on a quiet machine and
#: 50-100 s beside other jobs (its multithreaded BLAS), far over the problem's minute.
STEADY_STATE_KAPPAS = (1e-4, 0.01, 0.1)
STEADY_STATE_ROWS = tuple(
    (model, expansion, kappa, depth)
    for model, depths in (("qubit", (6,)), ("pump", (3, 4)))
    for expansion in ("matsubara", "pade")
    for kappa in STEADY_STATE_KAPPAS
    for depth in depths
)
#: The rows of ``quick=True``: both models and expansions at one kappa, a few seconds in all.
STEADY_STATE_QUICK_ROWS = tuple(
    (model, expansion, 0.01, depth) for model, depth in (("qubit", 6), ("pump", 3))
    for expansion in ("matsubara", "pade")
)

_SZ = np.diag([1.0, -1.0]).astype(complex)
_SX = np.array([[0.0, 1.0], [1.0, 0.0]], dtype=complex)


def _steady_model(model: str, kappa: float) -> tuple[np.ndarray, list[tuple], list[list[int]]]:
    """Hamiltonian, baths ``(Q, kappa, gamma, T, n_exp)`` and QuTiP dims of one steady-state row."""
    if model == "qubit":
        return 0.5 * _SZ + 0.25 * _SX, [(_SZ, kappa, 1.0, 0.5, 3)], [[2], [2]]
    p = _PAPER
    # The pump's baths (HeatPump's defaults: n_exp 2, kappa_b / kappa_a = 0.023 / 0.01) and its
    # coupled Hamiltonian, whose steady state is the pump's normal reference.
    ratio = p["kappa_b"] / p["kappa_a"]
    baths = [(Q_A, kappa, p["gamma"], p["t_a"], 2), (Q_B, ratio * kappa, p["gamma"], p["t_b"], 2)]
    return H_FREE + coupling_potential(0.1, -math.pi / 2), baths, [[2, 2], [2, 2]]


def _steady_qpump(
    h: np.ndarray, baths: list[tuple], depth: int, expansion: str
) -> tuple[float, np.ndarray, int]:
    """Time qpump's construction and ``steady_state()``; return the time, rho and the ADO count."""
    t0 = time.perf_counter()
    qbaths = [DrudeLorentzBath(q, k, g, t, n_exp=n, expansion=expansion) for q, k, g, t, n in baths]
    solver = HEOMSolver(h, qbaths, depth=depth)
    rho = solver.steady_state().rho
    return time.perf_counter() - t0, rho, solver.n_ados


def _steady_qutip(
    h: np.ndarray, baths: list[tuple], depth: int, expansion: str, dims: list
) -> tuple[float, np.ndarray]:
    """Time QuTiP's construction (its baths with their terminators, as qpump's) and ``steady_state()``."""
    import qutip as qt
    from qutip.solver.heom import DrudeLorentzBath as QtBath
    from qutip.solver.heom import DrudeLorentzPadeBath as QtPadeBath
    from qutip.solver.heom import HEOMSolver as QtSolver

    cls = QtBath if expansion == "matsubara" else QtPadeBath
    t0 = time.perf_counter()
    qbaths = [cls(qt.Qobj(q, dims=dims), lam=k, gamma=g, T=t, Nk=n) for q, k, g, t, n in baths]
    solver = QtSolver(qutip_liouvillian(h, qbaths, dims), qbaths, depth, options={"progress_bar": False})
    rho, _ = solver.steady_state()
    return time.perf_counter() - t0, rho.full()


def _run_steady_state(quick: bool, repeat: int, have_qutip: bool, say: Any) -> dict:
    """The steady-state problem: every row timed ``repeat`` times, the codes taking turns."""
    rows = STEADY_STATE_QUICK_ROWS if quick else STEADY_STATE_ROWS
    models = [_steady_model(model, kappa) for model, _, kappa, _ in rows]
    # One untimed call of each code first: the first call pays imports and caches (QuTiP's HEOM
    # module, scipy's SuperLU) that no later row does and that the table is not about.
    h, baths, dims = models[0]
    _steady_qpump(h, baths, rows[0][3], rows[0][1])
    if have_qutip:
        _steady_qutip(h, baths, rows[0][3], rows[0][1], dims)
    q_times: list[list[float]] = [[] for _ in rows]
    qt_times: list[list[float]] = [[] for _ in rows]
    rho_p: list[np.ndarray] = []
    rho_q: list[np.ndarray] = []
    n_ados: list[int] = []
    # Whole passes over the rows, so that each turn's total is a time of the whole problem (as in
    # the other problems) and every row samples the machine at several moments.
    for turn in range(repeat):
        for i, ((_, expansion, _, depth), (h, baths, dims)) in enumerate(zip(rows, models, strict=True)):
            t, rho, n = _steady_qpump(h, baths, depth, expansion)
            q_times[i].append(t)
            if turn == 0:
                rho_p.append(rho)
                n_ados.append(n)
            if have_qutip:
                t, rho = _steady_qutip(h, baths, depth, expansion, dims)
                qt_times[i].append(t)
                if turn == 0:
                    rho_q.append(rho)
    out_rows = []
    for i, (model, expansion, kappa, depth) in enumerate(rows):
        row: dict[str, Any] = {
            "model": model, "d": int(models[i][0].shape[0]), "expansion": expansion, "kappa": kappa,
            "depth": depth, "n_ados": n_ados[i], "qpump_s": float(np.median(q_times[i])),
            "qutip_s": None, "ratio": None, "max_deviation": None, "qpump_times_s": q_times[i],
            "qutip_times_s": None,
        }
        if have_qutip:
            qt_s = float(np.median(qt_times[i]))
            row.update(qutip_s=qt_s, ratio=qt_s / row["qpump_s"], qutip_times_s=qt_times[i],
                       max_deviation=float(np.max(np.abs(rho_p[i] - rho_q[i]))))
        say(f"steady_state: d = {row['d']} {expansion} kappa {kappa:g} depth {depth} ({n_ados[i]} ADOs): "
            f"qpump {row['qpump_s'] * 1e3:.1f} ms" + (f", qutip {row['qutip_s'] * 1e3:.1f} ms, "
                                                     f"deviation {row['max_deviation']:.1e}"
                                                     if have_qutip else ""))
        out_rows.append(row)
    totals = [sum(t[k] for t in q_times) for k in range(repeat)]
    entry: dict[str, Any] = {
        "name": "steady_state", "n_ados": max(n_ados), "qutip_s": None, "qpump_s": min(totals),
        "ratio": None, "ratio_median": None, "max_deviation": None, "qpump_error": None,
        "qutip_error": None, "max_deviation_qutip_tight": None, "qutip_method": None, "repeat": repeat,
        "qpump_times_s": totals, "qutip_times_s": None, "steps": None, "rhs_evaluations": None,
        "ns_per_ado_per_rhs": None, "rows": out_rows,
    }
    if have_qutip:
        qt_totals = [sum(t[k] for t in qt_times) for k in range(repeat)]
        entry.update(qutip_s=min(qt_totals), ratio=min(qt_totals) / min(totals), qutip_times_s=qt_totals,
                     ratio_median=float(np.median(qt_totals) / np.median(totals)),
                     max_deviation=max(r["max_deviation"] for r in out_rows))
    return entry


# -- (d) strong_coupling: one pump cycle at ten times the paper's coupling, each code in a
# subprocess of its own, so that each one's peak memory is its own.

#: The strong-coupling cycle, ``HeatPump(**STRONG_COUPLING, cycles=1)`` with the paper's other
#: defaults (TA 2, TB 1, omega_c 0.1, delta -pi/2, gamma 2, tau 6.1, output every 0.01 while
#: coupled and every 0.1 while relaxing): 2 x 4 exponents at depth 5, 1,287 ADOs.
STRONG_COUPLING = dict(kappa_a=0.1, kappa_b=0.23, tau_relax=200.0, depth=5, n_exp=3)
#: Its ``quick=True`` size (depth 2, 45 ADOs, relaxation 10): seconds.
STRONG_COUPLING_QUICK = dict(kappa_a=0.1, kappa_b=0.23, tau_relax=10.0, depth=2, n_exp=3)
#: The rayon thread counts qpump is timed with (RAYON_NUM_THREADS of its subprocess); the last
#: is the headline time (``qpump_s``), the first and last give ``thread_speedup``.
STRONG_COUPLING_THREADS = (1, 2)
#: A code is accurate on the problem when its Q_B is within this relative error of the reference.
STRONG_COUPLING_ACCURACY = 1e-6
#: QuTiP's methods tried on the problem, each at ``QUTIP_TOLERANCES``; the fastest accurate one is
#: QuTiP's time (see the module documentation for the survey that chose them).
STRONG_COUPLING_QUTIP_METHODS = ("adams", "bdf", "dop853")
#: The targets, reported and never asserted: QuTiP's time over qpump's at least ``speedup``, and
#: qpump's peak memory at most ``memory_fraction`` of QuTiP's.
STRONG_COUPLING_TARGETS = dict(speedup=30.0, memory_fraction=0.25)
#: Size of each array of the copy that measures the memory bandwidth (far larger than any cache).
BANDWIDTH_ARRAY_BYTES = 1 << 27

_EQUAL_ACCURACY = (
    "qpump at its default tolerances; QuTiP's fastest accurate method of {methods} at {qt}; "
    "accurate = Q_B within {acc:g} (relative) of an untimed qpump run at {ref}"
)


def _strong_pump(spec: dict) -> HeatPump:
    """The heat pump of the strong-coupling problem at size ``spec``."""
    return HeatPump(**spec, cycles=1)


def _strong_segments(pump: HeatPump) -> list[tuple[np.ndarray, np.ndarray]]:
    """(Hamiltonian, output times) of the contact and of the relaxation, each from time 0."""
    return [(pump.coupled_hamiltonian, pump.contact_times()), (H_FREE, pump.relaxation_times())]


def _strong_baths(pump: HeatPump) -> list[tuple]:
    """The pump's two baths as ``(Q, kappa, gamma, T, n_exp)``."""
    n_exp = pump.truncation[1]
    return [(Q_A, pump.kappa_a, pump.gamma, pump.TA, n_exp),
            (Q_B, pump.kappa_b, pump.gamma, pump.TB, n_exp)]


def _qpump_cycle_solver(pump: HeatPump, **solver_kw: Any) -> HEOMSolver:
    baths = [DrudeLorentzBath(q, k, g, t, n_exp=n) for q, k, g, t, n in _strong_baths(pump)]
    return HEOMSolver(_strong_segments(pump)[0][0], baths, depth=pump.truncation[0], **solver_kw)


def _qpump_start(pump: HeatPump) -> tuple[np.ndarray, np.ndarray, dict]:
    """The stationary hierarchy of the uncoupled pair (the cycle starts from it with chi added to
    rho, as ``HeatPump.run`` does), its labels and the hierarchy's neighbour counts."""
    solver = _qpump_cycle_solver(pump)
    solver.set_hamiltonian(H_FREE)
    ados = solver.steady_state().ados.copy()
    labels = np.asarray(solver.labels)
    # Each ADO's right-hand side reads the ADOs one exponent up (all K of them below the deepest
    # tier) and one exponent down (one per non-zero entry of its label).
    neighbours = np.where(labels.sum(axis=1) < pump.depth, labels.shape[1], 0) + (labels > 0).sum(axis=1)
    info = {"n_ados": int(solver.n_ados), "n_exponents": int(labels.shape[1]),
            "mean_neighbours": float(neighbours.mean()), "max_neighbours": int(neighbours.max()),
            "block_bytes": int(solver.dim**2 * 16)}
    return ados, labels, info


def _qpump_cycle(pump: HeatPump, start: np.ndarray, stationary: np.ndarray | None = None,
                 **solver_kw: Any) -> tuple[float, list, list, dict]:
    """Time qpump's cycle as the pump-cycle problem does: the solver's construction and its run
    over each segment. ``stationary``, the uncoupled pair's stationary hierarchy (the start
    without chi), is given to the solver as ``HeatPump.run`` has it from solving for the start,
    for the relaxation's steady-state frame. Returns the time, rho and currents per segment and
    the integration counts."""
    t0 = time.perf_counter()
    solver = _qpump_cycle_solver(pump, **solver_kw)
    if stationary is not None:
        solver.set_hamiltonian(H_FREE)
        solver.set_stationary(ADOState(stationary, solver.labels))
    state: Any = ADOState(start, solver.labels, 0.0)
    rhos, currents = [], []
    stats: dict[str, Any] = {"steps": 0, "rhs_evaluations": 0, "rejected_steps": 0, "wall_time_s": 0.0}
    frames = []
    for h, times in _strong_segments(pump):
        solver.set_hamiltonian(h)
        res = solver.run(state, times)
        rhos.append(res.rho)
        currents.append(res.heat_current)
        state = res.final_state
        for key in stats:
            stats[key] += res.stats[key]
        frames.append(res.stats["steady_frame"])
    stats["steady_frame"] = frames
    elapsed = time.perf_counter() - t0
    stats["n_ados"] = int(solver.n_ados)
    return elapsed, rhos, currents, stats


def _qutip_setup(pump: HeatPump) -> tuple[list, list]:
    import qutip as qt
    from qutip.solver.heom import DrudeLorentzBath as QtBath

    dims = [[2, 2], [2, 2]]
    return [QtBath(qt.Qobj(q, dims=dims), lam=k, gamma=g, T=t, Nk=n)
            for q, k, g, t, n in _strong_baths(pump)], dims


def _qutip_start(pump: HeatPump, stationary: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, float]:
    """QuTiP's start: qpump's stationary hierarchy of the uncoupled pair on QuTiP's ADO labels
    (the two codes' ADOs are the same operators, exponents in the same order), checked against
    QuTiP's own generator, and chi added to rho. Returns the ADOs and max |L y| of the stationary
    part under QuTiP's generator (QuTiP's own sparse LU of this hierarchy took over ten minutes
    on the project's shared machine, and the start is untimed in both codes).
    """
    from qutip.solver.heom import HEOMSolver as QtSolver

    qbaths, dims = _qutip_setup(pump)
    solver = QtSolver(qutip_liouvillian(H_FREE, qbaths, dims), qbaths, pump.depth,
                      options={"progress_bar": False})
    index = {tuple(int(n) for n in lab): i for i, lab in enumerate(labels)}
    # QuTiP holds each block column-major: its array's block is the transposed ADO.
    arr = np.array([stationary[index[tuple(int(n) for n in lab)]].T for lab in solver.ados.labels])
    generator = solver.rhs(0).to("CSR").data.as_scipy()
    residual = float(np.max(np.abs(generator @ arr.reshape(-1))))
    arr[0] += pump.correlation().matrix.T
    return arr, residual


def _qutip_cycle(pump: HeatPump, start: np.ndarray, rtol: float, atol: float,
                 method: str) -> tuple[float, list, list]:
    """Time QuTiP's cycle: per segment its solver's construction and the propagation through the
    output times with the heat currents of :func:`qutip_heat_currents` (QuTiP's ``start`` and
    ``step``, the loop of its ``run``, so that the segment's final ADOs are handed on without
    storing the ADOs at every output time, ``store_ados``, which would cost QuTiP 0.2 GB here)."""
    import qutip as qt
    from qutip.solver.heom import HEOMSolver as QtSolver
    from qutip.solver.heom import HierarchyADOsState

    qbaths, dims = _qutip_setup(pump)
    qs = [b[0] for b in _strong_baths(pump)]
    opts = dict(method=method, rtol=rtol, atol=atol, nsteps=10**9, progress_bar=False)
    t0 = time.perf_counter()
    state = start
    rhos, currents = [], []
    for h, times in _strong_segments(pump):
        solver = QtSolver(qutip_liouvillian(h, qbaths, dims), qbaths, pump.depth, options=opts)
        callbacks = qutip_heat_currents(qbaths, qs, h)
        solver.start(state, times[0])
        ado = HierarchyADOsState(qt.Qobj(state[0].T, dims=dims), solver.ados, state)
        rho, j = [], []
        for i, t in enumerate(times):
            if i > 0:
                ado = solver.step(t)
            rho.append(ado.rho.full())
            j.append([f(t, ado) for f in callbacks])
        state = np.array(ado._ado_state, dtype=complex)
        rhos.append(np.array(rho))
        currents.append(np.array(j))
    return time.perf_counter() - t0, rhos, currents


def _status_bytes(field: str) -> int | None:
    """A ``kB`` field of /proc/self/status (``VmHWM``, ``VmRSS``) in bytes; None without /proc."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _peak_rss_bytes() -> int:
    """This process's peak resident memory: VmHWM, else ``ru_maxrss``."""
    peak = _status_bytes("VmHWM")
    if peak is None:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    return int(peak)


def _save_cycle(path: str, rhos: list, currents: list) -> None:
    arrays = {f"rho{i}": r for i, r in enumerate(rhos)}
    arrays.update({f"j{i}": j for i, j in enumerate(currents)})
    np.savez(path, **arrays)


def _load_cycle(path: str) -> tuple[list, list]:
    with np.load(path) as f:
        n = sum(1 for k in f.files if k.startswith("rho"))
        return [f[f"rho{i}"] for i in range(n)], [f[f"j{i}"] for i in range(n)]


def _child_task(task: dict) -> dict:
    """One subprocess's work (:func:`_child_main`): ``"start"`` (qpump) writes the stationary
    hierarchy and the start state (and, with ``accurate`` tolerances, the cycle at them, untimed);
    ``"cycle"`` times one code's cycle from its start and reports the process's memory."""
    pump = _strong_pump(task["spec"])
    code = task["code"]
    out: dict[str, Any] = {"code": code}
    if task["task"] == "start":  # qpump's: its stationary hierarchy, the start and the reference
        t0 = time.perf_counter()
        stationary, labels, info = _qpump_start(pump)
        out.update(info, start_s=time.perf_counter() - t0)
        np.savez(task["stationary"], ados=stationary, labels=labels)
        start = stationary.copy()
        start[0] += pump.correlation().matrix
        np.save(task["start"], start)
        if task.get("accurate"):
            _, rhos, currents, _ = _qpump_cycle(pump, start, **task["accurate"])
            _save_cycle(task["out"], rhos, currents)
        return out
    start = np.load(task["start"])
    if code == "qutip":
        import qutip.solver.heom  # noqa: F401  (the baseline is each code's after its imports)
    out["baseline_rss_bytes"] = _status_bytes("VmRSS")
    cpu = time.process_time()
    if code == "qpump":
        with np.load(task["stationary"]) as f:
            stationary = f["ados"]
        elapsed, rhos, currents, stats = _qpump_cycle(pump, start, stationary,
                                                      **task.get("tolerances", {}))
        out["stats"] = stats
    else:
        tol = task["tolerances"]
        elapsed, rhos, currents = _qutip_cycle(pump, start, tol["rtol"], tol["atol"], task["method"])
    out["elapsed_s"] = elapsed
    # The process's CPU time over the run (all its threads): over elapsed_s, the cores it had.
    out["cpu_s"] = time.process_time() - cpu
    out["peak_rss_bytes"] = _peak_rss_bytes()
    out["rayon_threads"] = os.environ.get("RAYON_NUM_THREADS")
    _save_cycle(task["out"], rhos, currents)
    return out


def _child_main() -> None:
    """Entry point of a benchmark subprocess: a task as JSON on stdin, its report as the last line
    of stdout."""
    task = json.loads(sys.stdin.read())
    report = _child_task(task)
    sys.stdout.write("\n" + json.dumps(report) + "\n")
    sys.stdout.flush()


def _run_child(task: dict, threads: int | None = None) -> dict:
    """Run :func:`_child_task` in a fresh Python process (its memory its own) and return its report;
    ``threads`` sets RAYON_NUM_THREADS (qpump's threads)."""
    env = dict(os.environ)
    if threads is not None:
        env["RAYON_NUM_THREADS"] = str(threads)
    # The child imports this very qpump (an editable install or a source checkout on sys.path).
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
    proc = subprocess.run([sys.executable, "-c", "from qpump.bench import _child_main; _child_main()"],
                          input=json.dumps(task), capture_output=True, text=True, env=env)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"the {task['code']} benchmark subprocess ({task['task']}) failed with exit code "
                           f"{proc.returncode}:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def measure_copy_bandwidth(n_bytes: int = BANDWIDTH_ARRAY_BYTES, repeat: int = 5) -> dict:
    """The machine's memory bandwidth as one thread sees it: ``numpy.copyto`` of an ``n_bytes``
    array (STREAM's copy: the bytes read plus the bytes written, ``2 n_bytes``, per copy).

    Returns
    -------
    dict
        ``{"bytes_per_s": best, "median_bytes_per_s", "array_bytes"}``.
    """
    n = max(int(n_bytes) // 8, 1)
    src = np.ones(n)
    dst = np.empty(n)
    np.copyto(dst, src)  # fault the pages in
    rates = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        rates.append(2 * n * 8 / (time.perf_counter() - t0))
    return {"bytes_per_s": max(rates), "median_bytes_per_s": float(np.median(rates)), "array_bytes": n * 8}


def _cycle_heat(currents: list, times: list) -> np.ndarray:
    """(Q_A, Q_B) of the cycle as ``HeatPump.run`` integrates them: minus Simpson's integral of
    each segment's currents on its output grid."""
    from scipy.integrate import cumulative_simpson

    return -sum(cumulative_simpson(j, x=t, axis=0, initial=0.0)[-1]
                for j, t in zip(currents, times, strict=True))


def _joined_cycle(rhos: list, currents: list) -> tuple[np.ndarray, np.ndarray]:
    """The segments joined (the relaxation's first output, the contact's last, dropped)."""
    return (np.concatenate([rhos[0]] + [r[1:] for r in rhos[1:]]),
            np.concatenate([currents[0]] + [j[1:] for j in currents[1:]]))


def _relative(a: float, b: float) -> float:
    return abs(a - b) / abs(b) if b != 0 else math.inf


def _fastest_accurate(rows: list[dict]) -> dict | None:
    """QuTiP's compared method: the fastest (median) accurate one; without a reference (accuracy
    None) the fastest; with none accurate the most accurate. None for no rows."""
    if not rows:
        return None
    accurate = [r for r in rows if r["accurate"]]
    if accurate or any(r["accurate"] is None for r in rows):
        return min(accurate or rows, key=lambda r: r["median_s"])
    return min(rows, key=lambda r: r["Q_B_relative_error"])


def _run_strong_coupling(
    quick: bool, repeat: int, have_qutip: bool, with_reference: bool, qutip_tight: bool,
    qutip_methods: tuple[str, ...], say: Any, spec: dict | None = None,
) -> dict:
    """The strong-coupling problem (see :func:`run_benchmarks`): QuTiP with each of
    ``qutip_methods``, its fastest accurate one the headline."""
    spec = dict(spec or (STRONG_COUPLING_QUICK if quick else STRONG_COUPLING))
    pump = _strong_pump(spec)
    grids = [t for _, t in _strong_segments(pump)]
    threads = STRONG_COUPLING_THREADS
    methods = tuple(qutip_methods) if have_qutip else ()
    with tempfile.TemporaryDirectory(prefix="qpump-bench-") as tmp:
        def path(name: str) -> str:
            return os.path.join(tmp, name)

        def task(kind: str, code: str, start: str, out: str, **more: Any) -> dict:
            return {"task": kind, "code": code, "spec": spec, "start": path(start), "out": path(out), **more}

        bandwidth = measure_copy_bandwidth()
        say(f"strong_coupling: copy bandwidth {bandwidth['bytes_per_s'] / 1e9:.2f} GB/s (one thread)")
        # The start, untimed and outside the timed processes (the stationary hierarchy, a GMRES
        # solve whose memory and imports are not the cycle's), with the untimed reference.
        info = _run_child(task("start", "qpump", "qpump_start.npy", "reference.npz",
                               stationary=path("stationary.npz"),
                               accurate=REFERENCE_TOLERANCES if with_reference else None))
        say(f"strong_coupling: qpump start ({info['n_ados']} ADOs) in {info['start_s']:.1f} s")
        qt_residual = None
        if methods:
            with np.load(path("stationary.npz")) as f:
                qt_start, qt_residual = _qutip_start(pump, f["ados"], f["labels"])
            np.save(path("qutip_start.npy"), qt_start)
            say(f"strong_coupling: the stationary hierarchy under QuTiP's generator: max |L y| "
                f"{qt_residual:.1e}")
        runs: dict[int, list[dict]] = {n: [] for n in threads}
        qt_runs: dict[str, list[dict]] = {m: [] for m in methods}
        # The codes take turns, so that both sample the same stretches of a shared machine.
        for turn in range(repeat):
            for n in threads:
                r = _run_child(task("cycle", "qpump", "qpump_start.npy", f"qpump_{n}_{turn}.npz",
                                    stationary=path("stationary.npz")), threads=n)
                runs[n].append(r)
                say(f"strong_coupling: qpump ({n} thread{'s' if n > 1 else ''}) {r['elapsed_s']:.2f} s, "
                    f"peak {r['peak_rss_bytes'] / 2**20:.0f} MiB")
            for m in methods:
                r = _run_child(task("cycle", "qutip", "qutip_start.npy", f"qutip_{m}_{turn}.npz",
                                    tolerances=QUTIP_TOLERANCES, method=m))
                qt_runs[m].append(r)
                say(f"strong_coupling: QuTiP ({m}) {r['elapsed_s']:.2f} s, "
                    f"peak {r['peak_rss_bytes'] / 2**20:.0f} MiB")
        main = threads[-1]
        rho_p, j_p = _load_cycle(path(f"qpump_{main}_0.npz"))
        ref = _load_cycle(path("reference.npz")) if with_reference else None
        qt_cycles = {m: _load_cycle(path(f"qutip_{m}_0.npz")) for m in methods}

    n_ados = info["n_ados"]
    q_p = _cycle_heat(j_p, grids)
    rho_pj, j_pj = _joined_cycle(rho_p, j_p)
    q_r = _cycle_heat(ref[1], grids) if ref is not None else None

    def thread_row(n: int) -> dict:
        rs = runs[n]
        times_s = [r["elapsed_s"] for r in rs]
        ns = [r["stats"]["wall_time_s"] / max(r["stats"]["rhs_evaluations"], 1) / n_ados * 1e9 for r in rs]
        return {"threads": n, "times_s": times_s, "median_s": float(np.median(times_s)),
                "cores_used": float(np.median([r["cpu_s"] / r["elapsed_s"] for r in rs])),
                "ns_per_ado_per_rhs": float(np.median(ns)),
                "peak_rss_bytes": max(r["peak_rss_bytes"] for r in rs),
                "baseline_rss_bytes": rs[0]["baseline_rss_bytes"]}

    def method_row(m: str) -> dict:
        rs = qt_runs[m]
        times_s = [r["elapsed_s"] for r in rs]
        q_q = _cycle_heat(qt_cycles[m][1], grids)
        err = _relative(float(q_q[1]), float(q_r[1])) if q_r is not None else None
        return {"method": m, "times_s": times_s, "median_s": float(np.median(times_s)),
                "peak_rss_bytes": max(r["peak_rss_bytes"] for r in rs),
                "baseline_rss_bytes": rs[0]["baseline_rss_bytes"], "Q_A": float(q_q[0]), "Q_B": float(q_q[1]),
                "Q_B_relative_error": err,
                "accurate": None if err is None else bool(err < STRONG_COUPLING_ACCURACY)}

    thread_rows = [thread_row(n) for n in threads]
    method_rows = [method_row(m) for m in methods]
    head = thread_rows[-1]
    stats = runs[main][0]["stats"]
    q_times = head["times_s"]
    q_s = min(q_times)
    # The bytes of one right-hand side per ADO: its own block and its neighbours' read, its block
    # of the result written (the coupling sweep only; the predictor and corrector passes of each
    # step move more, so the fraction below is an underestimate of the bandwidth achieved).
    block = info["block_bytes"]
    per_ado = (1 + info["mean_neighbours"]) * block + block
    bound_ns = per_ado / bandwidth["bytes_per_s"] * 1e9
    bw = {"copy_bytes_per_s": bandwidth["bytes_per_s"],
          "copy_median_bytes_per_s": bandwidth["median_bytes_per_s"],
          "copy_array_bytes": bandwidth["array_bytes"], "block_bytes": block,
          "n_exponents": info["n_exponents"],
          "mean_neighbours": info["mean_neighbours"], "max_neighbours": info["max_neighbours"],
          "bytes_per_ado_per_rhs": per_ado,
          "bytes_per_ado_per_rhs_max": (2 + 2 * info["n_exponents"]) * block,
          "bound_ns_per_ado_per_rhs": bound_ns,
          "fraction": bound_ns / head["ns_per_ado_per_rhs"],
          "fraction_1_thread": bound_ns / thread_rows[0]["ns_per_ado_per_rhs"]}
    heat: dict[str, Any] = {"qpump": {"Q_A": float(q_p[0]), "Q_B": float(q_p[1])},
                            "qutip": None, "reference": None, "qutip_tight": None}
    chosen = _fastest_accurate(method_rows)
    codes = [{"code": "qpump", "threads": r["threads"], "method": None, "time_s": r["median_s"],
              "peak_rss_bytes": r["peak_rss_bytes"], "baseline_rss_bytes": r["baseline_rss_bytes"],
              "Q_A": float(q_p[0]), "Q_B": float(q_p[1]), "Q_B_relative_error": None,
              "ns_per_ado_per_rhs": r["ns_per_ado_per_rhs"], "headline": r is head}
             for r in reversed(thread_rows)]
    codes += [{"code": "qutip", "threads": None, "method": r["method"], "time_s": r["median_s"],
               "peak_rss_bytes": r["peak_rss_bytes"], "baseline_rss_bytes": r["baseline_rss_bytes"],
               "Q_A": r["Q_A"], "Q_B": r["Q_B"], "Q_B_relative_error": r["Q_B_relative_error"],
               "ns_per_ado_per_rhs": None, "headline": r is chosen} for r in method_rows]
    entry: dict[str, Any] = {
        "name": "strong_coupling", "n_ados": n_ados, "qutip_s": None, "qpump_s": q_s, "ratio": None,
        "ratio_median": None, "max_deviation": None, "qpump_error": None, "qutip_error": None,
        "max_deviation_qutip_tight": None, "qutip_method": chosen["method"] if chosen else None,
        "repeat": repeat, "qpump_times_s": q_times, "qutip_times_s": None, "steps": int(stats["steps"]),
        "rhs_evaluations": int(stats["rhs_evaluations"]), "ns_per_ado_per_rhs": head["ns_per_ado_per_rhs"],
        "params": {**pump.params(), "n_times": int(sum(t.size for t in grids) - (len(grids) - 1))},
        "qpump_threads": main, "qpump_tolerances": {"rtol": DEFAULT_RTOL, "atol": DEFAULT_ATOL},
        "qutip_tolerances": dict(QUTIP_TOLERANCES) if methods else None,
        "equal_accuracy": _EQUAL_ACCURACY.format(methods=", ".join(methods) or "-",
                                                 qt=_tolerances(QUTIP_TOLERANCES),
                                                 ref=_tolerances(REFERENCE_TOLERANCES),
                                                 acc=STRONG_COUPLING_ACCURACY),
        "accuracy": STRONG_COUPLING_ACCURACY, "qutip_start_residual": qt_residual, "heat": heat,
        "Q_A_difference": None, "Q_B_difference": None, "Q_B_relative_difference": None,
        "qpump_Q_B_relative_error": None, "qutip_Q_B_relative_error": None,
        "qpump_accurate": None, "qutip_accurate": None,
        "qpump_peak_rss_bytes": head["peak_rss_bytes"], "qutip_peak_rss_bytes": None,
        "memory_ratio": None, "memory_fraction": None, "memory_fraction_above_baseline": None,
        "qpump_start_s": info["start_s"], "ratio_median_with_start": None,
        "qpump_steady_frame": stats["steady_frame"],
        "threads": thread_rows,
        "thread_speedup": thread_rows[0]["median_s"] / head["median_s"],
        "qutip_methods": method_rows,
        "bandwidth": bw,
        "targets": {**STRONG_COUPLING_TARGETS, "speedup_met": None, "memory_met": None},
        "codes": codes,
    }
    if q_r is not None and ref is not None:
        heat["reference"] = {"Q_A": float(q_r[0]), "Q_B": float(q_r[1])}
        entry["qpump_error"] = _deviation(rho_pj, j_pj, *_joined_cycle(*ref))
        err = _relative(float(q_p[1]), float(q_r[1]))
        entry.update(qpump_Q_B_relative_error=err, qpump_accurate=err < STRONG_COUPLING_ACCURACY)
        for row in codes[:len(thread_rows)]:
            row["Q_B_relative_error"] = err
        say(f"strong_coupling: qpump Q_B relative error against the reference {err:.1e}")
    if chosen is not None:
        m = chosen["method"]
        qt_times = chosen["times_s"]
        qt_s = min(qt_times)
        rho_qj, j_qj = _joined_cycle(*qt_cycles[m])
        heat["qutip"] = {"Q_A": chosen["Q_A"], "Q_B": chosen["Q_B"]}
        qt_peak, qt_base = chosen["peak_rss_bytes"], chosen["baseline_rss_bytes"]
        entry.update(
            qutip_s=qt_s, ratio=qt_s / q_s, ratio_median=float(np.median(qt_times) / np.median(q_times)),
            ratio_median_with_start=float(np.median(qt_times) / (np.median(q_times) + info["start_s"])),
            qutip_times_s=qt_times, max_deviation=_deviation(rho_qj, j_qj, rho_pj, j_pj),
            Q_A_difference=float(q_p[0]) - chosen["Q_A"], Q_B_difference=float(q_p[1]) - chosen["Q_B"],
            Q_B_relative_difference=_relative(float(q_p[1]), chosen["Q_B"]),
            qutip_Q_B_relative_error=chosen["Q_B_relative_error"], qutip_accurate=chosen["accurate"],
            qutip_peak_rss_bytes=qt_peak, memory_ratio=qt_peak / head["peak_rss_bytes"],
            memory_fraction=head["peak_rss_bytes"] / qt_peak,
        )
        if qt_base is not None and head["baseline_rss_bytes"] is not None and qt_peak > qt_base:
            entry["memory_fraction_above_baseline"] = ((head["peak_rss_bytes"] - head["baseline_rss_bytes"])
                                                       / (qt_peak - qt_base))
        targets = STRONG_COUPLING_TARGETS
        entry["targets"].update(speedup_met=entry["ratio_median"] >= targets["speedup"],
                                memory_met=entry["memory_fraction"] <= targets["memory_fraction"])
        if ref is not None:
            entry["qutip_error"] = _deviation(rho_qj, j_qj, *_joined_cycle(*ref))
        if qutip_tight:  # untimed, in this process
            tol = QUTIP_TIGHT_TOLERANCES
            tight = _qutip_cycle(pump, qt_start, tol["rtol"], tol["atol"], m)[1:]
            q_t = _cycle_heat(tight[1], grids)
            heat["qutip_tight"] = {"Q_A": float(q_t[0]), "Q_B": float(q_t[1])}
            entry["max_deviation_qutip_tight"] = _deviation(*_joined_cycle(*tight), rho_pj, j_pj)
        say(f"strong_coupling: QuTiP ({m}) / qpump time {entry['ratio_median']:.1f}x, peak memory "
            f"{entry['memory_ratio']:.1f}x, Q_B relative difference {entry['Q_B_relative_difference']:.1e}")
    return entry


def _cell(x: Any, fmt: str) -> str:
    """A table cell: ``x`` formatted, or "-" for a missing value (None)."""
    return "-" if x is None else format(x, fmt)


def _format_strong_rows(p: dict) -> str:
    """The strong-coupling problem's table: one row per code, then its ratios."""

    par = p["params"]
    head = (f"{'code':<14}{'threads':>8}{'time s':>10}{'peak MiB':>10}{'base MiB':>10}{'Q_A':>18}{'Q_B':>18}"
            f"{'Q_B rel err':>13}{'ns/ADO/rhs':>12}")
    lines = ["", f"strong_coupling: one pump cycle at kappa_a {par['kappa_a']:g}, "
                 f"kappa_b {par['kappa_b']:g}, tau_relax {par['tau_relax']:g}, depth {par['depth']}, "
                 f"n_exp {par['n_exp']} ({p['n_ados']} ADOs); each code in a subprocess of its own",
             head, "-" * len(head)]
    for c in p["codes"]:
        name = c["code"] if c["method"] is None else f"{c['code']} {c['method']}"
        name += " *" if c["headline"] else ""
        lines.append(
            f"{name:<14}{_cell(c['threads'], 'd'):>8}{c['time_s']:>10.2f}{c['peak_rss_bytes'] / 2**20:>10.1f}"
            f"{_cell(c['baseline_rss_bytes'] and c['baseline_rss_bytes'] / 2**20, '.1f'):>10}"
            f"{c['Q_A']:>18.12f}{c['Q_B']:>18.12f}{_cell(c['Q_B_relative_error'], '.1e'):>13}"
            f"{_cell(c['ns_per_ado_per_rhs'], '.0f'):>12}"
        )
    ref = p["heat"]["reference"]
    if ref is not None:
        lines.append(f"{'reference':<14}{'':>8}{'-':>10}{'-':>10}{'-':>10}"
                     f"{ref['Q_A']:>18.12f}{ref['Q_B']:>18.12f}")
    lines.append(f"times: median of {p['repeat']} run(s) per code; Q_B rel err: against the reference; "
                 f"*: the compared runs. Equal accuracy: {p['equal_accuracy']}.")
    t = p["targets"]
    if p["ratio_median"] is not None:
        lines.append(
            f"QuTiP ({p['qutip_method']}) / qpump ({p['qpump_threads']} threads): time "
            f"{p['ratio_median']:.1f}x (target >= {t['speedup']:g}x), peak memory {p['memory_ratio']:.1f}x: "
            f"qpump's is {p['memory_fraction']:.2f} of QuTiP's (target <= {t['memory_fraction']:g}"
            + (f"; {p['memory_fraction_above_baseline']:.2f} above each process's baseline after imports)"
               if p["memory_fraction_above_baseline"] is not None else ")")
            + f"; Q_A difference {p['Q_A_difference']:.1e}, Q_B difference {p['Q_B_difference']:.1e} "
              f"(relative {p['Q_B_relative_difference']:.1e})."
        )
    if p["ratio_median_with_start"] is not None:
        lines.append(f"The start (the uncoupled pair's stationary hierarchy; chi added) is untimed in both "
                     f"codes; qpump's relaxation reuses it as its steady-state frame, as HeatPump.run does. "
                     f"Solving it took qpump {p['qpump_start_s']:.2f} s: counted in, the time ratio is "
                     f"{p['ratio_median_with_start']:.1f}x.")
    r1, rn = p["threads"][0], p["threads"][-1]
    b = p["bandwidth"]
    lines.append(f"qpump threads {r1['threads']} -> {rn['threads']}: speedup {p['thread_speedup']:.2f}x "
                 f"({r1['median_s']:.2f} s -> {rn['median_s']:.2f} s; CPU time over wall time "
                 f"{r1['cores_used']:.2f} -> {rn['cores_used']:.2f}: the cores each run had).")
    lines.append(
        f"time per ADO per RHS {rn['ns_per_ado_per_rhs']:.0f} ns ({r1['ns_per_ado_per_rhs']:.0f} ns on 1 "
        f"thread); bandwidth bound {b['bound_ns_per_ado_per_rhs']:.0f} ns = "
        f"{b['bytes_per_ado_per_rhs']:.0f} B "
        f"(own block, {b['mean_neighbours']:.2f} neighbours on average of at most {b['max_neighbours']}, one "
        f"block written; {b['block_bytes']} B each) at the copy bandwidth "
        f"{b['copy_bytes_per_s'] / 1e9:.2f} GB/s: achieved {b['fraction']:.0%} "
        f"({b['fraction_1_thread']:.0%} on 1 thread).")
    return "\n".join(lines)


def _spin(started: Any) -> None:
    """Busy-loop for ever (a process of :func:`busy_processes`)."""
    # Ctrl-C reaches the whole process group; the parent's ``finally`` ends this process.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    started.set()
    while True:
        pass


@contextmanager
def busy_processes(n: int) -> Iterator[list[Any]]:
    """Run ``n`` busy-looping processes for the duration of the ``with`` block.

    Parameters
    ----------
    n : int
        Number of processes (>= 0), each spinning one CPU.

    Yields
    ------
    list of multiprocessing.Process
        The processes, all spinning when the block starts; terminated (killed if need be) and
        joined when it ends, however it ends.
    """
    n = non_negative_int("busy", n)
    ctx = multiprocessing.get_context()
    procs: list[Any] = []
    try:
        for _ in range(n):
            started = ctx.Event()
            proc = ctx.Process(target=_spin, args=(started,), name="qpump-bench-busy", daemon=True)
            proc.start()
            procs.append(proc)
            # Wait until it spins, so that the first timed run already shares the machine.
            started.wait(timeout=60)
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join()


#: Tolerances of the untimed qpump reference both codes are measured against.
REFERENCE_TOLERANCES = dict(rtol=1e-11, atol=1e-13, steady_frame=False)


def _tolerances(tol: dict) -> str:
    """``rtol .., atol ..`` of a tolerance dictionary, for the printed lines."""
    return ", ".join(f"{k} {tol[k]:.0e}".replace("e-0", "e-") for k in ("rtol", "atol"))


def _deviation(rho_a: np.ndarray, j_a: np.ndarray, rho_b: np.ndarray, j_b: np.ndarray) -> float:
    """Largest absolute difference of rho and of the heat currents."""
    return max(float(np.max(np.abs(rho_a - rho_b))), float(np.max(np.abs(j_a - j_b))))


def run_benchmarks(
    quick: bool = False,
    with_qutip: bool = True,
    progress: bool = True,
    repeat: int = 1,
    with_reference: bool = True,
    qutip_tight: bool = False,
    qutip_method: str = QUTIP_METHOD,
    problems: tuple[str, ...] = PROBLEM_NAMES,
    busy: int = 0,
    qutip_methods: tuple[str, ...] | None = None,
) -> dict:
    """Run the benchmark problems with qpump and (optionally) QuTiP.

    Parameters
    ----------
    quick : bool, optional
        Shorter runs (pump: 50 instead of 500 relaxation time, 500 outputs; deep: t = 0..2;
        strong coupling: ``STRONG_COUPLING_QUICK``, depth 2 and relaxation 10).
    with_qutip : bool, optional
        Also run QuTiP (when installed) and compare.
    progress : bool, optional
        Print one line per finished run, to stderr (a full run takes minutes).
    repeat : int, optional
        Run each code this many times, taking turns, and keep its shortest time (the machine may
        be shared; the minimum is the least disturbed measurement of the same work). The ratio of
        the median times is reported too (``ratio_median``), as is every time.
    with_reference : bool, optional
        Also measure both codes against an untimed qpump run at ``REFERENCE_TOLERANCES``, which
        tells whose integration error a deviation between them is.
    qutip_tight : bool, optional
        Also run QuTiP once, untimed, at ``QUTIP_TIGHT_TOLERANCES`` and report qpump's deviation
        from it (``max_deviation_qutip_tight``): the agreement of the two codes when QuTiP's own
        integration error is out of the way.
    qutip_method : str, optional
        QuTiP's integrator, one of ``QUTIP_METHODS`` (default ``QUTIP_METHOD``, see the module
        documentation for why not QuTiP's own default).
    qutip_methods : tuple of str, optional
        ``strong_coupling`` only: QuTiP's candidate methods, each timed at ``QUTIP_TOLERANCES``;
        the fastest whose Q_B is within ``STRONG_COUPLING_ACCURACY`` of the reference gives
        QuTiP's time. Default ``STRONG_COUPLING_QUTIP_METHODS``, or ``(qutip_method,)`` when
        ``qutip_method`` is not ``QUTIP_METHOD`` (``qpump bench --qutip-method M`` times M alone).
    problems : tuple of str, optional
        Which problems to run, from ``ALL_PROBLEM_NAMES`` (default ``PROBLEM_NAMES``: all but the
        opt-in ``strong_coupling``).
    busy : int, optional
        Run this many busy-looping processes while the problems run (:func:`busy_processes`), to
        measure on a busy machine (default 0).

    Returns
    -------
    dict
        ``{"problems": [{"name", "n_ados", "qutip_s", "qpump_s", "ratio", "ratio_median",
        "max_deviation", "qpump_error", "qutip_error", "max_deviation_qutip_tight",
        "qutip_method", "repeat", "qpump_times_s", "qutip_times_s", "rhs_evaluations", "steps",
        "ns_per_ado_per_rhs", "busy"}]}``; the QuTiP fields are None when
        QuTiP is absent or not requested, the errors None without the reference. The
        ``steady_state`` problem has no integration (its steps, errors, tight deviation and
        method are None) and a list ``rows`` of ``{"model", "d", "expansion", "kappa", "depth",
        "n_ados", "qpump_s", "qutip_s", "ratio", "max_deviation", "qpump_times_s",
        "qutip_times_s"}`` (times: medians per row); its own times are the totals of each turn
        over the rows, and ``max_deviation`` the largest over them (of rho only).
        The ``strong_coupling`` problem (times: each code's own subprocess; ``qpump_s`` at the
        last of ``STRONG_COUPLING_THREADS``) adds ``params`` (the HeatPump's), ``qpump_threads``,
        ``qpump_tolerances``, ``qutip_tolerances``, ``equal_accuracy`` (how the tolerances were
        chosen), ``accuracy``, ``qutip_start_residual`` (max |L y| of the stationary hierarchy
        both codes start from under QuTiP's generator), ``heat`` (``{"qpump", "qutip",
        "reference", "qutip_tight"}``, each ``{"Q_A", "Q_B"}`` or None), ``Q_A_difference``,
        ``Q_B_difference`` (qpump - QuTiP), ``Q_B_relative_difference``,
        ``qpump_Q_B_relative_error``, ``qutip_Q_B_relative_error``
        (against the reference), ``qpump_accurate``, ``qutip_accurate``, ``qpump_peak_rss_bytes``,
        ``qutip_peak_rss_bytes``, ``memory_ratio`` (QuTiP's peak over qpump's),
        ``memory_fraction`` (its inverse), ``memory_fraction_above_baseline``, ``threads`` (one
        ``{"threads", "times_s", "median_s", "cores_used", "ns_per_ado_per_rhs", "peak_rss_bytes",
        "baseline_rss_bytes"}`` per thread count; ``cores_used``: the median of the runs' CPU
        time over their wall time, all threads counted), ``thread_speedup``, ``bandwidth``
        (``{"copy_bytes_per_s", "copy_median_bytes_per_s", "copy_array_bytes", "block_bytes",
        "n_exponents", "mean_neighbours", "max_neighbours", "bytes_per_ado_per_rhs",
        "bytes_per_ado_per_rhs_max", "bound_ns_per_ado_per_rhs", "fraction",
        "fraction_1_thread"}``), ``targets`` (``{"speedup", "memory_fraction", "speedup_met",
        "memory_met"}``) and ``codes``, the rows of its table (``{"code", "threads", "method",
        "time_s", "peak_rss_bytes", "baseline_rss_bytes", "Q_A", "Q_B", "Q_B_relative_error",
        "ns_per_ado_per_rhs"}``). Its ``ns_per_ado_per_rhs`` is the propagation's wall time (the
        solver's ``stats["wall_time_s"]``) per ADO per right-hand side.
    """
    repeat = non_negative_int("repeat", repeat)
    if repeat < 1:
        raise InvalidParameterError(f"repeat = {repeat} is outside the allowed range [1, inf)")
    one_of("qutip_method", qutip_method, QUTIP_METHODS)
    if isinstance(problems, str):
        problems = (problems,)
    if not problems:
        raise InvalidParameterError(f"problems = {problems!r} must name at least one of {ALL_PROBLEM_NAMES}")
    for name in problems:
        one_of("problems", name, ALL_PROBLEM_NAMES)
    busy = non_negative_int("busy", busy)
    if qutip_methods is None:
        qutip_methods = STRONG_COUPLING_QUTIP_METHODS if qutip_method == QUTIP_METHOD else (qutip_method,)
    if isinstance(qutip_methods, str):
        qutip_methods = (qutip_methods,)
    strong_methods = tuple(qutip_methods)
    if not strong_methods:
        raise InvalidParameterError("qutip_methods = () must name at least one of QuTiP's methods")
    for m in strong_methods:
        one_of("qutip_methods", m, QUTIP_METHODS)
    have_qutip = False
    if with_qutip:
        try:
            import qutip  # noqa: F401

            have_qutip = True
        except ImportError:
            have_qutip = False

    def say(msg: str) -> None:
        if progress:
            print(msg, file=sys.stderr, flush=True)

    out = []
    with busy_processes(busy):
        if busy:
            say(f"{busy} busy-looping process{'es' if busy > 1 else ''} running")
        for prob in _problems(quick):
            if prob["name"] in problems:
                out.append(_run_trajectory_problem(prob, repeat, have_qutip, with_reference, qutip_tight,
                                                   qutip_method, say))
        if "steady_state" in problems:
            out.append(_run_steady_state(quick, repeat, have_qutip, say))
        if "strong_coupling" in problems:
            out.append(_run_strong_coupling(quick, repeat, have_qutip, with_reference, qutip_tight,
                                            strong_methods, say))
    for entry in out:
        entry["busy"] = busy
    return {"problems": out}


def _run_trajectory_problem(
    prob: dict, repeat: int, have_qutip: bool, with_reference: bool, qutip_tight: bool, qutip_method: str,
    say: Any,
) -> dict:
    """Time one of the time-evolution problems (see :func:`run_benchmarks`)."""
    # The codes take turns, so that both sample the same stretches of a shared machine.
    runs, qt_runs = [], []
    for _ in range(repeat):
        runs.append(_run_qpump(prob))
        if have_qutip:
            qt_runs.append(_run_qutip(prob, **QUTIP_TOLERANCES, method=qutip_method))
    q_times = [r[0] for r in runs]
    q_s = min(q_times)
    _, rho_p, j_p, stats = runs[0]
    say(f"{prob['name']}: qpump {q_s:.3f} s ({stats['n_ados']} ADOs)")
    entry: dict[str, Any] = {
        "name": prob["name"],
        "n_ados": int(stats["n_ados"]),
        "qutip_s": None,
        "qpump_s": q_s,
        "ratio": None,
        "ratio_median": None,
        "max_deviation": None,
        "qpump_error": None,
        "qutip_error": None,
        "max_deviation_qutip_tight": None,
        "qutip_method": qutip_method if have_qutip else None,
        "repeat": repeat,
        "qpump_times_s": q_times,
        "qutip_times_s": None,
        "steps": int(stats["steps"]),
        "rhs_evaluations": int(stats["rhs_evaluations"]),
        "ns_per_ado_per_rhs": q_s / max(stats["rhs_evaluations"], 1) / stats["n_ados"] * 1e9,
    }
    reference = None
    if with_reference:
        _, rho_r, j_r, _ = _run_qpump(prob, **REFERENCE_TOLERANCES)
        reference = (rho_r, j_r)
        entry["qpump_error"] = _deviation(rho_p, j_p, *reference)
        say(f"{prob['name']}: qpump error against the reference {entry['qpump_error']:.2e}")
    if have_qutip:
        qt_times = [r[0] for r in qt_runs]
        qt_s = min(qt_times)
        _, rho_q, j_q = qt_runs[0]
        dev = _deviation(rho_q, j_q, rho_p, j_p)
        entry.update(qutip_s=qt_s, ratio=qt_s / q_s, max_deviation=dev, qutip_times_s=qt_times,
                     ratio_median=float(np.median(qt_times) / np.median(q_times)))
        if reference is not None:
            entry["qutip_error"] = _deviation(rho_q, j_q, *reference)
        say(f"{prob['name']}: qutip ({qutip_method}) {qt_s:.3f} s, ratio {qt_s / q_s:.1f}, "
            f"deviation {dev:.2e}")
        if qutip_tight:
            _, rho_t, j_t = _run_qutip(prob, **QUTIP_TIGHT_TOLERANCES, method=qutip_method)
            entry["max_deviation_qutip_tight"] = _deviation(rho_t, j_t, rho_p, j_p)
            say(f"{prob['name']}: deviation from QuTiP at {_tolerances(QUTIP_TIGHT_TOLERANCES)} "
                f"{entry['max_deviation_qutip_tight']:.2e}")
    return entry


def format_table(result: dict) -> str:
    """Format :func:`run_benchmarks` output as a text table."""

    head = f"{'problem':<16}{'ADOs':>8}{'qutip s':>10}{'qpump s':>10}{'ratio':>8}{'median':>8}{'max dev':>10}"
    head += f"{'qpump err':>11}{'qutip err':>11}{'ns/ADO/rhs':>12}"
    lines = [head, "-" * len(head)]
    for p in result["problems"]:
        lines.append(
            f"{p['name']:<16}{p['n_ados']:>8d}{_cell(p['qutip_s'], '.2f'):>10}"
            f"{_cell(p['qpump_s'], '.3f'):>10}{_cell(p['ratio'], '.1f'):>8}"
            f"{_cell(p.get('ratio_median'), '.1f'):>8}"
            f"{_cell(p['max_deviation'], '.1e'):>10}{_cell(p.get('qpump_error'), '.1e'):>11}"
            f"{_cell(p.get('qutip_error'), '.1e'):>11}{_cell(p.get('ns_per_ado_per_rhs'), '.0f'):>12}"
        )
    lines.append(
        "times: shortest of the runs (the codes take turns); median: ratio of the median times; "
        "max dev: qpump against QuTiP;\nerrors: each code against an untimed qpump run at "
        f"{_tolerances(REFERENCE_TOLERANCES)} (rho and heat currents, absolute)."
    )
    methods = sorted({p["qutip_method"] for p in result["problems"] if p.get("qutip_method")})
    if methods:
        lines.append(f"QuTiP: method {', '.join(methods)}, {_tolerances(QUTIP_TOLERANCES)}.")
    for p in result["problems"]:
        if p.get("max_deviation_qutip_tight") is not None:
            lines.append(
                f"{p['name']}: qpump against QuTiP at {_tolerances(QUTIP_TIGHT_TOLERANCES)}: "
                f"{p['max_deviation_qutip_tight']:.1e}"
            )
    for p in result["problems"]:
        if p.get("rows"):
            lines.append(_format_steady_rows(p["rows"], p["repeat"]))
        if p.get("codes"):
            lines.append(_format_strong_rows(p))
    busy = {p.get("busy", 0) for p in result["problems"]}
    if busy - {0}:
        lines.append(f"measured beside {max(busy)} busy-looping process(es) (--busy).")
    return "\n".join(lines)


def _format_steady_rows(rows: list[dict], repeat: int) -> str:
    """The rows of the steady-state problem as a table of their own."""

    head = (f"{'d':>3}{'expansion':>11}{'kappa':>8}{'depth':>7}{'ADOs':>7}{'qpump ms':>10}{'qutip ms':>10}"
            f"{'ratio':>8}{'max |drho|':>12}")
    lines = ["", "steady_state: construction + steady_state() of each code", head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['d']:>3d}{r['expansion']:>11}{r['kappa']:>8g}{r['depth']:>7d}{r['n_ados']:>7d}"
            f"{r['qpump_s'] * 1e3:>10.1f}{_cell(r['qutip_s'] and r['qutip_s'] * 1e3, '.1f'):>10}"
            f"{_cell(r['ratio'], '.1f'):>8}{_cell(r['max_deviation'], '.1e'):>12}"
        )
    lines.append(f"times: median of {repeat} run(s), the codes taking turns; ratio: QuTiP's over qpump's;\n"
                 "max |drho|: largest entry of |rho_qpump - rho_qutip|; d = 2: H = 0.5 SZ + 0.25 SX, one "
                 "bath on SZ\n(gamma 1, T 0.5, n_exp 3); d = 4: the pump's H_FREE + V_AB and its two baths "
                 "(kappa_b = 2.3 kappa, n_exp 2).")
    return "\n".join(lines)
