"""Smoke test of the benchmark harness (timings are measured, never asserted)."""

from __future__ import annotations

import json
import multiprocessing
import re
import subprocess
import sys
from contextlib import contextmanager

import numpy as np
import pytest

from qpump.bench import (
    ALL_PROBLEM_NAMES,
    PROBLEM_NAMES,
    STEADY_STATE_QUICK_ROWS,
    STRONG_COUPLING_QUICK,
    busy_processes,
    format_table,
    run_benchmarks,
)
from qpump.cli import main
from qpump.errors import InvalidParameterError


def test_run_benchmarks_structure_without_qutip():
    result = run_benchmarks(quick=True, with_qutip=False, progress=False)
    names = [p["name"] for p in result["problems"]]
    assert names == ["pump_cycle", "deep_hierarchy", "steady_state"]
    by_name = {p["name"]: p for p in result["problems"]}
    assert by_name["pump_cycle"]["n_ados"] == 84
    assert by_name["deep_hierarchy"]["n_ados"] == 12870
    steady = by_name["steady_state"]
    assert steady["qutip_s"] is None and steady["busy"] == 0
    assert all(r["qutip_s"] is None and r["max_deviation"] is None for r in steady["rows"])
    for p in result["problems"][:2]:
        assert p["qutip_s"] is None and p["ratio"] is None and p["max_deviation"] is None
        assert p["qutip_error"] is None and p["repeat"] == 1 and p["ratio_median"] is None
        assert p["qutip_times_s"] is None and len(p["qpump_times_s"]) == 1
        assert p["qpump_s"] > 0 and p["rhs_evaluations"] > 0 and p["ns_per_ado_per_rhs"] > 0
        # the default tolerances against the untimed tight reference (issue 3: within 1e-8)
        assert 0 < p["qpump_error"] < 1e-8
    table = format_table(result)
    assert "pump_cycle" in table and "deep_hierarchy" in table and "12870" in table


def test_repeat_must_be_a_positive_integer():
    with pytest.raises(InvalidParameterError, match="repeat"):
        run_benchmarks(quick=True, with_qutip=False, progress=False, repeat=0)


def test_unknown_qutip_method_and_problem_are_named():
    with pytest.raises(InvalidParameterError, match="qutip_method = 'rk4' must be one of .*vern7"):
        run_benchmarks(quick=True, progress=False, qutip_method="rk4")
    with pytest.raises(InvalidParameterError, match="problems = 'pump' must be one of"):
        run_benchmarks(quick=True, progress=False, problems=("pump",))
    with pytest.raises(InvalidParameterError, match="at least one"):
        run_benchmarks(quick=True, progress=False, problems=())


def test_one_problem_against_qutip_agrees_within_1e_7():
    pytest.importorskip("qutip")
    result = run_benchmarks(quick=True, progress=False, problems="pump_cycle", repeat=2)
    (p,) = result["problems"]
    assert p["name"] == "pump_cycle" and p["qutip_method"] == "tsit5"
    assert len(p["qpump_times_s"]) == len(p["qutip_times_s"]) == 2
    assert p["qutip_s"] == min(p["qutip_times_s"]) and p["qpump_s"] == min(p["qpump_times_s"])
    assert p["ratio"] > 0 and p["ratio_median"] > 0
    # issue 3: the two codes agree within 1e-7, and each is within it of the tight reference
    assert p["max_deviation"] < 1e-7
    assert p["qutip_error"] < 1e-7 and p["qpump_error"] < 1e-8
    assert "QuTiP: method tsit5" in format_table(result)


def test_quick_steady_state_agrees_with_qutip_within_1e_9():
    pytest.importorskip("qutip")
    result = run_benchmarks(quick=True, progress=False, problems=("steady_state",), repeat=2)
    (p,) = result["problems"]
    assert p["name"] == "steady_state" and p["busy"] == 0
    rows = p["rows"]
    keys = [(r["model"], r["expansion"], r["kappa"], r["depth"]) for r in rows]
    assert keys == list(STEADY_STATE_QUICK_ROWS)
    assert {(r["d"], r["expansion"]) for r in rows} == {(2, "matsubara"), (2, "pade"), (4, "matsubara"),
                                                         (4, "pade")}
    # ADOs: one bath with 4 exponents at depth 6 (d = 2), two with 3 each at depth 3 (d = 4)
    assert {r["d"]: r["n_ados"] for r in rows} == {2: 210, 4: 84}
    for r in rows:
        assert len(r["qpump_times_s"]) == len(r["qutip_times_s"]) == 2
        assert r["qpump_s"] > 0 and r["qutip_s"] > 0 and r["ratio"] > 0
        # issue 15: the two codes solve the same stationary hierarchy
        assert r["max_deviation"] < 1e-9
    assert p["max_deviation"] == max(r["max_deviation"] for r in rows)
    assert p["qpump_s"] == min(p["qpump_times_s"]) and p["qutip_s"] == min(p["qutip_times_s"])
    table = format_table(result)
    assert "steady_state: construction + steady_state()" in table and "max |drho|" in table


def test_busy_processes_spin_inside_and_are_gone_after():
    with busy_processes(1) as procs:
        assert len(procs) == 1 and procs[0].is_alive()
    assert not procs[0].is_alive() and procs[0].exitcode is not None
    assert not multiprocessing.active_children()
    with pytest.raises(InvalidParameterError, match="busy"):
        run_benchmarks(quick=True, progress=False, busy=-1)


def test_busy_processes_are_ended_when_the_block_raises():
    with pytest.raises(RuntimeError, match="inside"), busy_processes(2) as procs:
        raise RuntimeError("inside")
    assert len(procs) == 2 and not any(p.is_alive() for p in procs)
    assert not multiprocessing.active_children()


def test_cli_bench_busy_1_starts_and_stops_its_processes(capsys, monkeypatch):
    import qpump.bench as bench

    seen = []
    real = bench.busy_processes

    @contextmanager
    def recording(n):
        with real(n) as procs:
            seen.append([p.is_alive() for p in procs])
            yield procs
        seen.append(procs)

    monkeypatch.setattr(bench, "busy_processes", recording)
    assert main(["bench", "--quick", "--no-qutip", "--problem", "steady_state", "--busy", "1", "--json",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert '"busy": 1' in out and '"steady_state"' in out
    alive_inside, procs = seen
    assert alive_inside == [True] and len(procs) == 1
    assert not procs[0].is_alive() and not multiprocessing.active_children()


def test_strong_coupling_is_opt_in_and_named_in_the_registry():
    assert PROBLEM_NAMES == ("pump_cycle", "deep_hierarchy", "steady_state")
    assert ALL_PROBLEM_NAMES == PROBLEM_NAMES + ("strong_coupling",)
    with pytest.raises(InvalidParameterError, match="must be one of .*strong_coupling"):
        run_benchmarks(quick=True, progress=False, problems=("strong",))


def test_quick_strong_coupling_each_code_in_its_subprocess_agrees_on_q_b(capsys):
    """The strong-coupling problem at depth 2, relaxation 10 (45 ADOs) through the CLI: the JSON
    schema, and qpump and QuTiP agreeing on the cycle's heat."""
    pytest.importorskip("qutip")
    from qpump.pump import HeatPump

    assert main(["bench", "--quick", "--problem", "strong_coupling", "--qutip-method", "dop853", "--json",
                 "--no-progress"]) == 0
    result = json.loads(capsys.readouterr().out)
    (p,) = result["problems"]
    assert p["name"] == "strong_coupling" and p["n_ados"] == 45 and p["busy"] == 0 and p["repeat"] == 1
    for key, value in STRONG_COUPLING_QUICK.items():
        assert p["params"][key] == value
    assert (p["params"]["TA"], p["params"]["TB"], p["params"]["tau"]) == (2.0, 1.0, 6.1)
    assert p["params"]["n_times"] == 611 + 101 - 1  # dt 0.01 over tau, 0.1 over the relaxation
    assert p["qutip_method"] == "dop853" and p["qutip_tolerances"] == {"rtol": 1e-8, "atol": 1e-10}
    assert "fastest accurate method of dop853" in p["equal_accuracy"]
    (method,) = p["qutip_methods"]
    assert method["method"] == "dop853" and method["accurate"] is True
    assert method["Q_B"] == p["heat"]["qutip"]["Q_B"] and method["times_s"] == p["qutip_times_s"]
    # both codes start from qpump's stationary hierarchy, stationary under QuTiP's generator too
    assert 0 <= p["qutip_start_residual"] < 1e-12
    # Q_A, Q_B of both codes, their difference, and each one's error against the reference
    heat = p["heat"]
    assert set(heat) == {"qpump", "qutip", "reference", "qutip_tight"} and heat["qutip_tight"] is None
    q_p, q_q, q_r = heat["qpump"], heat["qutip"], heat["reference"]
    assert q_p["Q_B"] > 0 > q_p["Q_A"]  # heat drawn from the cold bath B, given to A
    assert p["Q_B_difference"] == pytest.approx(q_p["Q_B"] - q_q["Q_B"], abs=1e-15)
    assert p["Q_A_difference"] == pytest.approx(q_p["Q_A"] - q_q["Q_A"], abs=1e-15)
    assert p["Q_B_relative_difference"] < 1e-6 and abs(p["Q_A_difference"]) < 1e-6 * abs(q_p["Q_A"])
    assert p["qpump_Q_B_relative_error"] < 1e-6 and p["qutip_Q_B_relative_error"] < 1e-6
    assert p["qpump_accurate"] is True and p["qutip_accurate"] is True
    assert abs(q_r["Q_B"] - q_p["Q_B"]) < 1e-6 * abs(q_r["Q_B"])
    assert p["max_deviation"] < 1e-7 and p["qpump_error"] < 1e-7 and p["qutip_error"] < 1e-7
    # the problem is HeatPump's cycle: its own run gives qpump's heat
    record = HeatPump(**STRONG_COUPLING_QUICK, cycles=1).run(normal_reference=False).cycles[0]
    assert record.Q_B == pytest.approx(q_p["Q_B"], rel=1e-9)
    assert record.Q_A == pytest.approx(q_p["Q_A"], rel=1e-9)
    # times and peak memory of each code (measured, never compared)
    assert p["qpump_s"] == min(p["qpump_times_s"]) > 0 and p["qutip_s"] == min(p["qutip_times_s"]) > 0
    assert p["ratio"] > 0 and p["ratio_median"] > 0
    # the start's stationary solve, untimed in both codes, counted in on request
    assert p["qpump_start_s"] > 0
    assert p["ratio_median_with_start"] == pytest.approx(
        float(np.median(p["qutip_times_s"]) / (np.median(p["qpump_times_s"]) + p["qpump_start_s"])))
    assert p["qpump_steady_frame"] == [False, False]  # 10 of relaxation: under 10 Bohr periods
    assert p["qpump_peak_rss_bytes"] > 0 and p["qutip_peak_rss_bytes"] > 0
    assert p["memory_ratio"] == pytest.approx(p["qutip_peak_rss_bytes"] / p["qpump_peak_rss_bytes"])
    assert p["memory_fraction"] == pytest.approx(1 / p["memory_ratio"])
    assert set(p["targets"]) == {"speedup", "memory_fraction", "speedup_met", "memory_met"}
    assert p["targets"]["speedup"] == 30 and p["targets"]["memory_fraction"] == 0.25
    # the thread scaling, and the time per ADO per RHS against the bandwidth bound
    assert [t["threads"] for t in p["threads"]] == [1, 2] and p["qpump_threads"] == 2
    for t in p["threads"]:
        assert len(t["times_s"]) == 1 and t["median_s"] > 0 and t["ns_per_ado_per_rhs"] > 0
        assert t["cores_used"] > 0
        assert t["peak_rss_bytes"] >= t["baseline_rss_bytes"] > 0
    assert p["thread_speedup"] == pytest.approx(p["threads"][0]["median_s"] / p["threads"][1]["median_s"])
    assert p["rhs_evaluations"] > p["steps"] > 0
    assert p["ns_per_ado_per_rhs"] == p["threads"][1]["ns_per_ado_per_rhs"]
    bw = p["bandwidth"]
    # 8 exponents at depth 2: (1 x 8 + 8 x 9 + 8 x 1 + 28 x 2) / 45 neighbours on average
    assert bw["n_exponents"] == 8 and bw["max_neighbours"] == 9
    assert bw["mean_neighbours"] == pytest.approx(144 / 45)
    assert bw["block_bytes"] == 256 and bw["bytes_per_ado_per_rhs"] == pytest.approx((2 + 144 / 45) * 256)
    assert bw["bytes_per_ado_per_rhs_max"] == 18 * 256 and bw["copy_bytes_per_s"] > 0
    bound = bw["bytes_per_ado_per_rhs"] / bw["copy_bytes_per_s"] * 1e9
    assert bw["bound_ns_per_ado_per_rhs"] == pytest.approx(bound)
    assert bw["fraction"] == pytest.approx(bw["bound_ns_per_ado_per_rhs"] / p["ns_per_ado_per_rhs"])
    # one table row per code
    assert [(c["code"], c["threads"], c["headline"]) for c in p["codes"]] == [
        ("qpump", 2, True), ("qpump", 1, False), ("qutip", None, True)]
    table = format_table(result)
    assert "strong_coupling: one pump cycle" in table
    rows = [line for line in table.splitlines() if re.match(r"(qpump|qutip dop853)( \*)? +(\d+|-) +\d", line)]
    assert len(rows) == 3
    assert "counted in, the time ratio is" in table


def test_the_timed_qpump_cycle_needs_no_scipy_and_relaxes_in_the_given_frame(tmp_path):
    """The strong-coupling problem's qpump process runs its cycle from a given start and
    stationary hierarchy without importing scipy (so its peak memory is the cycle's, not
    scipy's 50 MiB), and its relaxation uses the given stationary hierarchy as its frame."""
    from qpump.bench import _qpump_cycle, _qpump_start, _strong_pump

    spec = dict(STRONG_COUPLING_QUICK, tau_relax=70.0)
    stationary, _, _ = _qpump_start(_strong_pump(spec))
    np.save(tmp_path / "stationary.npy", stationary)
    child = (
        "import json, sys, numpy as np\n"
        "from qpump.bench import _qpump_cycle, _strong_pump\n"
        f"pump = _strong_pump({spec!r})\n"
        f"stationary = np.load({str(tmp_path / 'stationary.npy')!r})\n"
        "start = stationary.copy(); start[0] += pump.correlation().matrix\n"
        "stats = _qpump_cycle(pump, start, stationary)[3]\n"
        "scipy = sorted(m for m in sys.modules if m.split('.')[0] == 'scipy')\n"
        "print(json.dumps([stats['steady_frame'], scipy]))\n"
    )
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True)
    frames, scipy_modules = json.loads(out.stdout.strip().splitlines()[-1])
    assert frames == [False, True] and scipy_modules == []
    # the same cycle as solving the stationary hierarchy in the process
    pump = _strong_pump(spec)
    start = stationary.copy()
    start[0] += pump.correlation().matrix
    given = _qpump_cycle(pump, start, stationary)
    solved = _qpump_cycle(pump, start)
    assert given[3]["steady_frame"] == solved[3]["steady_frame"] == [False, True]
    for a, b in zip(given[1] + given[2], solved[1] + solved[2], strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_start_mapped_onto_qutips_labels_is_qutips_own_stationary_hierarchy():
    pytest.importorskip("qutip")
    import numpy as np
    from qutip.solver.heom import HEOMSolver as QtSolver

    from qpump.bench import _qpump_start, _qutip_setup, _qutip_start, _strong_pump, qutip_liouvillian
    from qpump.pump import H_FREE

    pump = _strong_pump(STRONG_COUPLING_QUICK)
    stationary, labels, info = _qpump_start(pump)
    assert info["n_ados"] == len(labels) == 45
    start, residual = _qutip_start(pump, stationary, labels)
    qbaths, dims = _qutip_setup(pump)
    _, own = QtSolver(qutip_liouvillian(H_FREE, qbaths, dims), qbaths, pump.depth,
                      options={"progress_bar": False}).steady_state()
    own = np.array(own._ado_state)
    own[0] += pump.correlation().matrix.T
    assert residual < 1e-12 and np.max(np.abs(start - own)) < 1e-12


def test_qutips_compared_method_is_its_fastest_accurate_one():
    from qpump.bench import QUTIP_METHODS, STRONG_COUPLING_QUTIP_METHODS, _fastest_accurate

    def row(m, t, err, acc):
        return {"method": m, "median_s": t, "Q_B_relative_error": err, "accurate": acc}

    assert _fastest_accurate([]) is None
    rows = [row("adams", 1.0, 2e-6, False), row("bdf", 3.0, 1e-7, True), row("dop853", 2.0, 1e-9, True)]
    assert _fastest_accurate(rows)["method"] == "dop853"
    rows = [row("adams", 1.0, 2e-6, False), row("bdf", 3.0, 5e-6, False)]
    assert _fastest_accurate(rows)["method"] == "adams"  # none accurate: the most accurate
    rows = [row("adams", 2.0, None, None), row("bdf", 1.0, None, None)]
    assert _fastest_accurate(rows)["method"] == "bdf"  # no reference: the fastest
    assert set(STRONG_COUPLING_QUTIP_METHODS) <= set(QUTIP_METHODS)
    with pytest.raises(InvalidParameterError, match="qutip_methods = 'rk4' must be one of"):
        run_benchmarks(quick=True, progress=False, problems=("strong_coupling",), qutip_methods=("rk4",))
