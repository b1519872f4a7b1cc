"""Smoke test of the benchmark harness (timings are measured, never asserted)."""

from __future__ import annotations

import pytest

from qpump.bench import format_table, run_benchmarks
from qpump.errors import InvalidParameterError


def test_run_benchmarks_structure_without_qutip():
    result = run_benchmarks(quick=True, with_qutip=False, progress=False)
    names = [p["name"] for p in result["problems"]]
    assert names == ["pump_cycle", "deep_hierarchy"]
    by_name = {p["name"]: p for p in result["problems"]}
    assert by_name["pump_cycle"]["n_ados"] == 84
    assert by_name["deep_hierarchy"]["n_ados"] == 12870
    for p in result["problems"]:
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
