"""Smoke test of the benchmark harness (timings are measured, never asserted)."""

from __future__ import annotations

import multiprocessing
from contextlib import contextmanager

import pytest

from qpump.bench import STEADY_STATE_QUICK_ROWS, busy_processes, format_table, run_benchmarks
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
