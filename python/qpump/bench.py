"""Side-by-side benchmark of qpump's HEOM solver against QuTiP's HEOMSolver.

Three problems. Two time evolutions (issue 3): (a) ``pump_cycle``, one heat-pump cycle at the
paper's parameters (tau = 6.1 with V_AB on, then 500 uncoupled, depth 3, 2 Matsubara terms, 5000
output times); (b) ``deep_hierarchy``, the two-qubit model at depth 8 with 3 Matsubara terms per bath
(12,870 ADOs), t = 0..10. Both codes run in the same process; QuTiP with rtol 1e-8, atol 1e-10
and the heat currents computed by e_ops callbacks on its ADO state. Ratios are measured, never
asserted.

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
"""

from __future__ import annotations

import math
import multiprocessing
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from ._validate import non_negative_int, one_of
from .errors import InvalidParameterError
from .heom import ADOState, DrudeLorentzBath, HEOMSolver
from .pump import H_FREE, Q_A, Q_B
from .states import coupling_potential, optimal_correlation, product_state

__all__ = ["run_benchmarks", "format_table", "qutip_liouvillian", "qutip_heat_currents", "busy_processes"]

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
#: The benchmark problems, in the order they run.
PROBLEM_NAMES = ("pump_cycle", "deep_hierarchy", "steady_state")


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
) -> dict:
    """Run the benchmark problems with qpump and (optionally) QuTiP.

    Parameters
    ----------
    quick : bool, optional
        Shorter runs (pump: 50 instead of 500 relaxation time, 500 outputs; deep: t = 0..2).
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
    problems : tuple of str, optional
        Which problems to run, from ``PROBLEM_NAMES`` (default: all).
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
    """
    repeat = non_negative_int("repeat", repeat)
    if repeat < 1:
        raise InvalidParameterError(f"repeat = {repeat} is outside the allowed range [1, inf)")
    one_of("qutip_method", qutip_method, QUTIP_METHODS)
    if isinstance(problems, str):
        problems = (problems,)
    if not problems:
        raise InvalidParameterError(f"problems = {problems!r} must name at least one of {PROBLEM_NAMES}")
    for name in problems:
        one_of("problems", name, PROBLEM_NAMES)
    busy = non_negative_int("busy", busy)
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

    def f(x: Any, fmt: str) -> str:
        return "-" if x is None else format(x, fmt)

    head = f"{'problem':<16}{'ADOs':>8}{'qutip s':>10}{'qpump s':>10}{'ratio':>8}{'median':>8}{'max dev':>10}"
    head += f"{'qpump err':>11}{'qutip err':>11}{'ns/ADO/rhs':>12}"
    lines = [head, "-" * len(head)]
    for p in result["problems"]:
        lines.append(
            f"{p['name']:<16}{p['n_ados']:>8d}{f(p['qutip_s'], '.2f'):>10}"
            f"{f(p['qpump_s'], '.3f'):>10}{f(p['ratio'], '.1f'):>8}{f(p.get('ratio_median'), '.1f'):>8}"
            f"{f(p['max_deviation'], '.1e'):>10}{f(p.get('qpump_error'), '.1e'):>11}"
            f"{f(p.get('qutip_error'), '.1e'):>11}{f(p.get('ns_per_ado_per_rhs'), '.0f'):>12}"
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
    busy = {p.get("busy", 0) for p in result["problems"]}
    if busy - {0}:
        lines.append(f"measured beside {max(busy)} busy-looping process(es) (--busy).")
    return "\n".join(lines)


def _format_steady_rows(rows: list[dict], repeat: int) -> str:
    """The rows of the steady-state problem as a table of their own."""

    def f(x: Any, fmt: str) -> str:
        return "-" if x is None else format(x, fmt)

    head = (f"{'d':>3}{'expansion':>11}{'kappa':>8}{'depth':>7}{'ADOs':>7}{'qpump ms':>10}{'qutip ms':>10}"
            f"{'ratio':>8}{'max |drho|':>12}")
    lines = ["", "steady_state: construction + steady_state() of each code", head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['d']:>3d}{r['expansion']:>11}{r['kappa']:>8g}{r['depth']:>7d}{r['n_ados']:>7d}"
            f"{r['qpump_s'] * 1e3:>10.1f}{f(r['qutip_s'] and r['qutip_s'] * 1e3, '.1f'):>10}"
            f"{f(r['ratio'], '.1f'):>8}{f(r['max_deviation'], '.1e'):>12}"
        )
    lines.append(f"times: median of {repeat} run(s), the codes taking turns; ratio: QuTiP's over qpump's;\n"
                 "max |drho|: largest entry of |rho_qpump - rho_qutip|; d = 2: H = 0.5 SZ + 0.25 SX, one "
                 "bath on SZ\n(gamma 1, T 0.5, n_exp 3); d = 4: the pump's H_FREE + V_AB and its two baths "
                 "(kappa_b = 2.3 kappa, n_exp 2).")
    return "\n".join(lines)
