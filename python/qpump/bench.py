"""Side-by-side benchmark of qpump's HEOM solver against QuTiP's HEOMSolver.

Two problems (issue 3): (a) ``pump_cycle``, one heat-pump cycle at the paper's parameters
(tau = 6.1 with V_AB on, then 500 uncoupled, depth 3, 2 Matsubara terms, 5000 output times);
(b) ``deep_hierarchy``, the two-qubit model at depth 8 with 3 Matsubara terms per bath
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
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

import numpy as np

from ._validate import non_negative_int, one_of
from .errors import InvalidParameterError
from .heom import ADOState, DrudeLorentzBath, HEOMSolver
from .pump import H_FREE, Q_A, Q_B
from .states import coupling_potential, optimal_correlation, product_state

__all__ = ["run_benchmarks", "format_table", "qutip_liouvillian", "qutip_heat_currents"]

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
    Matsubara or Pade tail), the model qpump's own hierarchy solves."""
    import qutip as qt

    out = qt.liouvillian(qt.Qobj(h, dims=dims))
    for b in qbaths:
        out = out + b.terminator()[1]
    return out


def qutip_heat_currents(qbaths: list[Any], qs: list[np.ndarray], h: np.ndarray) -> list:
    """The heat current into each bath read from QuTiP's ADO state: one callable
    ``current(t, ado_state)`` per bath, usable as an ``e_ops`` callback.

    The reference formula of qpump's own observable (docs/heom.md), written independently of
    it: ``j_K = sum_k nu_k Re tr[Q_K rho_{e_k}] - 2 C_K^I(0) tr[Q_K^2 rho]
    + delta_K tr([[H, Q_K], Q_K] rho)`` over the exponents k of bath K, with QuTiP's
    first-tier ADOs and terminator amplitude.
    """
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


#: QuTiP's tolerances in the timed runs (issue 3) and in the optional accurate check.
QUTIP_TOLERANCES = dict(rtol=1e-8, atol=1e-10)
QUTIP_TIGHT_TOLERANCES = dict(rtol=1e-10, atol=1e-12)
#: QuTiP's integrator in both (see the module documentation), and the ones it offers for HEOM.
QUTIP_METHOD = "tsit5"
QUTIP_METHODS = ("adams", "bdf", "lsoda", "tsit5", "dop853", "vern7", "vern9")
#: The benchmark problems, in the order they run.
PROBLEM_NAMES = ("pump_cycle", "deep_hierarchy")


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
        Which problems to run, from ``PROBLEM_NAMES`` (default: both).

    Returns
    -------
    dict
        ``{"problems": [{"name", "n_ados", "qutip_s", "qpump_s", "ratio", "ratio_median",
        "max_deviation", "qpump_error", "qutip_error", "max_deviation_qutip_tight",
        "qutip_method", "repeat", "qpump_times_s", "qutip_times_s", "rhs_evaluations", "steps",
        "ns_per_ado_per_rhs"}]}``; the QuTiP fields are None when
        QuTiP is absent or not requested, the errors None without the reference.
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
    for prob in _problems(quick):
        if prob["name"] not in problems:
            continue
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
        out.append(entry)
    return {"problems": out}


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
    return "\n".join(lines)
