"""Tests of qpump.sweep: specs, resumption after a real kill, pool vs Dask, a physics map."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from qpump import InvalidParameterError
from qpump.cli import main
from qpump.sweep import SweepSpec, load_spec, parse_axis, read_results, run_sweep

FAST = {"solver": "lindblad", "relax": 200.0}


def test_parse_axis_forms():
    assert parse_axis("TB=0.5:1.5:3") == ("TB", [0.5, 1.0, 1.5])
    name, values = parse_axis("kappa_a=log:0.001:0.1:3")
    assert name == "kappa_a" and np.allclose(values, [0.001, 0.01, 0.1])
    assert parse_axis("delta=-pi/2,0") == ("delta", [-math.pi / 2, 0.0])
    assert parse_axis("expansion=matsubara,pade") == ("expansion", ["matsubara", "pade"])


@pytest.mark.parametrize("text,needle", [
    ("TC=1:2:3", "unknown parameter 'TC'"),
    ("TB=1:2:x", "NUM = 'x' must be an integer"),
    ("TB=", "axis TB is empty"),
    ("TB", "expected NAME=START:STOP:NUM"),
    ("cycles=1.5,2", "must be an integer"),
])
def test_bad_axes_are_rejected(text, needle):
    with pytest.raises(InvalidParameterError, match=needle):
        parse_axis(text)


def test_spec_files_and_errors_name_the_line(tmp_path):
    good = tmp_path / "s.toml"
    good.write_text('optimize_tau = "Q_B"\n[axes]\nTB = {linspace = [0.5, 1.5, 3]}\n'
                    'delta = ["-pi/2", 0]\n[fixed]\nsolver = "lindblad"\n')
    spec = load_spec(good)
    assert spec.axes["TB"] == [0.5, 1.0, 1.5] and spec.axes["delta"] == [-math.pi / 2, 0.0]
    assert spec.fixed == {"solver": "lindblad"} and spec.optimize_tau == "Q_B" and spec.size == 6
    yml = tmp_path / "s.yaml"
    yml.write_text("axes:\n  TA: [2, 3]\nfixed:\n  solver: lindblad\n")
    assert load_spec(yml).axes == {"TA": [2.0, 3.0]}
    cases = [
        ("[axes]\nTB = [1]\nkapa_a = [0.1]\n", r"line 3: unknown parameter 'kapa_a'"),
        ("[axes]\nTB = []\n", r"line 2: axis TB is empty"),
        ("[axes]\nTB = [1]\n[fixed]\n\ngamma = 'hot'\n", r"line 5: gamma = 'hot' is not a number"),
        ("colour = 1\n[axes]\nTB = [1]\n", r"line 1: unknown key 'colour'"),
        ("[axes]\nTB = [1, -1]\n", r"line 2: TB = -1.0 is outside the allowed range"),
        ("[axes]\nTB = [1]\n[fixed]\nexpansion = 'taylor'\n", r"line 4: expansion = 'taylor'"),
        ("[axes]\nTB = [1\n", r"s\.toml"),  # the TOML parser's own message, with its line
    ]
    bad = tmp_path / "s.toml"
    for text, needle in cases:
        bad.write_text(text)
        with pytest.raises(InvalidParameterError, match=needle):
            load_spec(bad)


def test_invalid_values_are_rejected_before_any_run(tmp_path):
    spec = SweepSpec(axes={"TB": [1.0, -1.0]}, fixed=FAST)
    with pytest.raises(InvalidParameterError, match="TB = -1"):
        run_sweep(spec, tmp_path, progress=False)
    assert not (tmp_path / "points.jsonl").exists()
    with pytest.raises(InvalidParameterError, match="no axis"):
        SweepSpec(fixed=FAST).validate()


def test_failing_point_is_recorded_and_the_sweep_goes_on(tmp_path):
    # A relaxation far too short for two cycles makes the second chi injection fail inside the
    # run: that point is recorded with its error, the next one still runs.
    spec = SweepSpec(axes={"relax": [0.5, 200.0]}, fixed={"solver": "lindblad", "cycles": 2})
    rows = run_sweep(spec, tmp_path, progress=False)
    assert "lengthen tau_relax" in rows[0]["error"] and rows[0]["Q_B"] is None
    assert rows[1]["error"] is None and rows[1]["Q_B"] > 0
    table = read_results(tmp_path)
    assert np.isnan(table["Q_B"][0]) and table["Q_B"][1] > 0


def test_physics_map_shape(tmp_path):
    spec = SweepSpec(axes={"TB": [0.6, 1.0, 1.4], "delta": [-math.pi / 2, -math.pi / 4]},
                     fixed=FAST)
    rows = run_sweep(spec, tmp_path / "a", workers=2, progress=False)
    assert all(r["Q_B"] > 0 and r["efficiency"] < r["carnot_bound"] for r in rows)
    none = SweepSpec(axes={"TB": [0.6, 1.0, 1.4]}, fixed={**FAST, "chi11": 0.0, "chi23": 0.0})
    rows = run_sweep(none, tmp_path / "b", progress=False)
    assert all(r["Q_B"] < 0 for r in rows)  # no correlation: no pumping, heat runs hot to cold


def test_optimal_tau_is_near_the_closed_form_peak_and_beats_it(tmp_path):
    spec = SweepSpec(axes={"TB": [1.0]}, fixed=FAST, optimize_tau="Q_B")
    best = run_sweep(spec, tmp_path / "opt", progress=False)[0]
    plain = run_sweep(SweepSpec(axes={"TB": [1.0]}, fixed={**FAST, "tau": 7.0101}),
                      tmp_path / "plain", progress=False)[0]
    assert abs(best["tau_used"] - 7.0101) < 2.0
    assert best["Q_B"] >= plain["Q_B"] - 1e-12


def test_optimal_tau_below_the_first_bracket_is_found_not_clipped():
    """At strong coupling the best contact is shorter than a quarter of the isolated pair's peak
    (the first bracket's lower end, 1.7525 here): the search goes on below it instead of
    returning its bound (the master equation at kappa_A = 1: 0.74)."""
    from dataclasses import replace

    from qpump.closed import tau_peak
    from qpump.pump import HeatPump
    from qpump.sweep import optimal_tau

    pump = HeatPump(solver="lindblad", kappa_a=1.0, kappa_b=2.3, tau_relax=50.0, cycles=1)
    tau = optimal_tau(pump, "Q_B")
    low = 0.25 * tau_peak(pump.TA, pump.TB, pump.omega_c, pump.delta)

    def q_b(t: float) -> float:
        return replace(pump, tau=t).run(normal_reference=False).cycles[0].Q_B

    assert tau < 0.5 * low
    assert q_b(tau) > max(q_b(low), q_b(0.9 * tau), q_b(1.1 * tau))


def _journal_keys(path):
    return [json.loads(line)["key"] for line in path.read_text().splitlines() if line.strip()]


def test_a_killed_sweep_resumes_without_losing_or_repeating_points(tmp_path):
    out = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "qpump.cli", "sweep", "--axis", "TB=0.5:1.5:12",
           "--set", "solver=lindblad", "--set", "relax=200", "-o", str(out), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    journal = out / "points.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not journal.exists() or len(_journal_keys(journal)) < 3):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _journal_keys(journal)
    assert 3 <= len(before) < 12, "the kill should land mid-sweep"
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    after = _journal_keys(journal)
    assert len(after) == 12 == len(set(after))  # nothing lost, nothing computed twice
    assert after[: len(before)] == before
    table = read_results(out)
    assert np.allclose(table["TB"], np.linspace(0.5, 1.5, 12))
    assert np.all(np.isfinite(table["Q_B"]))


def test_a_different_sweep_in_the_same_folder_is_refused(tmp_path):
    run_sweep(SweepSpec(axes={"TB": [1.0]}, fixed=FAST), tmp_path, progress=False)
    with pytest.raises(InvalidParameterError, match="different sweep"):
        run_sweep(SweepSpec(axes={"TB": [0.9]}, fixed=FAST), tmp_path, progress=False)


def test_dask_local_cluster_gives_identical_results(tmp_path):
    pytest.importorskip("distributed")
    spec = SweepSpec(axes={"TB": [0.7, 1.2], "delta": [-math.pi / 2, -1.0]}, fixed=FAST)
    pool = run_sweep(spec, tmp_path / "pool", workers=2, progress=False)
    dask = run_sweep(spec, tmp_path / "dask", dask="local", progress=False)
    strip = [{k: v for k, v in r.items() if k != "wall_time_s"} for r in pool]
    assert strip == [{k: v for k, v in r.items() if k != "wall_time_s"} for r in dask]


def test_cli_sweep_and_plot(tmp_path, capsys):
    spec = tmp_path / "spec.toml"
    spec.write_text('[axes]\ndelta = {linspace = [-3.0, -0.2, 3]}\n[fixed]\nsolver = "lindblad"\n'
                    "relax = 200\n")
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--axis", "TB=0.8,1.2", "-o", str(out), "--no-progress",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"points": 6, "failed": 0,
                                                   "results": f"{out}/results.csv"}
    pd = pytest.importorskip("pandas")
    frame = pd.read_csv(out / "results.csv")  # opens in one line with pandas
    assert {"TB", "delta", "Q_B", "efficiency", "carnot_bound", "tau_used"} <= set(frame.columns)
    assert main(["plot-sweep", str(out), "-x", "delta", "-y", "TB", "--z", "Q_B", "-o",
                 str(tmp_path / "map.png")]) == 0
    assert main(["plot-sweep", str(out / "results.csv"), "-x", "delta", "-o",
                 str(tmp_path / "lines.pdf")]) == 0
    assert (tmp_path / "map.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["plot-sweep", str(out), "-x", "colour", "-o", str(tmp_path / "x.png")]) == 2
    assert "column 'colour' is not in the results" in capsys.readouterr().err


def test_an_interrupted_sweep_writes_no_table_and_says_how_far_it_got_when_resumed(
        tmp_path, monkeypatch):
    import qpump.sweep as sweep_module

    real = sweep_module.run_point
    calls = []

    def interrupted_at_the_second_point(point, optimize):
        calls.append(point)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(point, optimize)

    spec = SweepSpec(axes={"TB": [0.8, 1.0, 1.2]}, fixed=FAST)
    out = tmp_path / "sweep"
    monkeypatch.setattr(sweep_module, "run_point", interrupted_at_the_second_point)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, out, progress=False)
    assert len(_journal_keys(out / "points.jsonl")) == 1
    assert sorted(p.name for p in out.iterdir()) == ["points.jsonl", "spec.json"]  # no table
    monkeypatch.setattr(sweep_module, "run_point", real)
    lines = []
    rows = run_sweep(spec, out, progress=False, log=lines.append)
    assert lines == [f"resuming: 1 of 3 points already done in {out / 'points.jsonl'}"]
    assert len(rows) == 3 and (out / "results.csv").exists()


def test_a_sweep_interrupted_before_its_first_point_leaves_no_folder(tmp_path, monkeypatch):
    import qpump.sweep as sweep_module

    def interrupted(point, optimize):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep_module, "run_point", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(SweepSpec(axes={"TB": [1.0]}, fixed=FAST), tmp_path / "none", progress=False)
    assert not (tmp_path / "none").exists()


def test_ramp_time_is_an_axis_and_a_longer_ramp_loses_fuel(tmp_path):
    """The HEOM pump with a sin^2 ramp: the correlation decays while V_AB ramps, so less heat is
    pumped per cycle the slower the ramp (the pulse area is the same)."""
    spec = SweepSpec(axes={"ramp_time": [0.5, 3.0]},
                     fixed={"ramp": "sin2", "relax": 60.0, "cycles": 1})
    rows = run_sweep(spec, tmp_path, progress=False)
    assert all(r["error"] is None for r in rows)
    assert 0 < rows[1]["Q_B"] < rows[0]["Q_B"]
    with pytest.raises(InvalidParameterError, match="ramp_time = 7"):
        run_sweep(SweepSpec(axes={"ramp_time": [1.0, 7.0]}, fixed={"ramp": "linear"}),
                  tmp_path / "bad", progress=False)


def test_kappa_sets_both_baths_at_the_papers_ratio_and_is_an_axis(tmp_path):
    from qpump.sweep import _pump_for

    pump = _pump_for({"kappa": 0.1})
    assert (pump.kappa_a, pump.kappa_b) == (0.1, pytest.approx(0.23))
    assert _pump_for({"kappa": 0.1, "kappa_ratio": 1.0}).kappa_b == 0.1
    for bad, needle in [({"kappa": 0.1, "kappa_a": 0.2}, "not both"),
                        ({"kappa_ratio": 2.0}, "give kappa too"),
                        ({"kappa": 0.1, "kappa_ratio": -1.0}, "kappa_ratio = -1.0")]:
        with pytest.raises(InvalidParameterError, match=needle):
            _pump_for(bad)
    rows = run_sweep(SweepSpec(axes={"kappa": [0.01, 0.05]}, fixed=FAST), tmp_path, progress=False)
    assert all(r["error"] is None for r in rows) and rows[0]["Q_B"] != rows[1]["Q_B"]


def test_automatic_truncation_per_point_and_an_unconverged_point_is_not_a_number(tmp_path):
    spec = SweepSpec(axes={"kappa": [0.01, 0.05]},
                     fixed={"depth": "auto", "n_exp": "auto", "relax": 60.0, "conv_tol": 1e-4})
    rows = run_sweep(spec, tmp_path / "a", progress=False)
    assert all(r["error"] is None and r["depth_used"] >= 2 for r in rows)
    assert rows[1]["depth_used"] >= rows[0]["depth_used"]  # stronger coupling, deeper hierarchy
    starved = SweepSpec(axes={"kappa": [0.01, 0.05]},
                        fixed={"depth": "auto", "relax": 60.0, "time_limit": 1e-3})
    rows = run_sweep(starved, tmp_path / "b", progress=False)
    assert all(r["Q_B"] is None and r["error"].startswith("NotConvergedError") for r in rows)
