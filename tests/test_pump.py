"""Tests of qpump.pump: the cycle protocol and its bookkeeping.

The protocol is solver-independent; most tests use the exact-in-time local master equation
(``solver="lindblad"``, fast). The paper's HEOM numbers are pinned in test_pump_heom.py.
"""

import json
import math

import numpy as np
import pytest

from qpump import InvalidParameterError, InvalidStateError
from qpump.cli import main
from qpump.closed import concurrence_initial
from qpump.pump import HeatPump

FAST = dict(solver="lindblad", tau_relax=300.0, dt_relax=0.5)


@pytest.fixture(scope="module")
def paper_lindblad():
    return HeatPump(solver="lindblad").run()


def test_pump_moves_heat_from_cold_to_hot_and_closes_every_balance(paper_lindblad):
    res = paper_lindblad
    assert len(res.cycles) == 2
    for c in res.cycles:
        assert c.Q_A < 0 < c.Q_B  # delivered to the hot bath, drawn from the cold bath
        assert abs(abs(c.Q_A) - abs(c.Q_B)) < 1e-6 * abs(c.Q_B)
        assert abs(c.first_law_residual) < 1e-12
        assert c.I0 == pytest.approx(0.595453, abs=5e-7)
        # docs/pump.md: the local master equation gives 0.1832 (HEOM: 0.1868 with the bare I_0).
        assert c.cop_ratio == pytest.approx(0.1832, abs=1e-4)
        assert c.cop_ratio < c.carnot_bound == 1.0
    s = res.series
    assert np.min(s["sigma"]) > -1e-12  # Eq. C4
    assert np.min(s["sigma0"]) < -0.1  # Eq. 14 goes negative: it ignores the correlation
    assert np.allclose(s["sigma0"] - s["sigma"], s["delta_I"], atol=1e-12)
    assert res.normal_heat_current > 0  # hot to cold when coupled without correlation


def test_series_are_consistent(paper_lindblad):
    res = paper_lindblad
    s, t = res.series, res.t
    assert np.all(np.diff(t) >= 0)
    assert s["Q_A"][0] == 0.0 and s["Q_B"][0] == 0.0
    assert s["Q_B"][-1] == pytest.approx(sum(c.Q_B for c in res.cycles), abs=1e-12)
    assert s["coupled"].sum() > 0 and np.all(s["V"][~s["coupled"]] == 0)
    assert res.contact_windows == [(0.0, 6.1), (506.1, 512.2)]
    assert s["concurrence"][0] == pytest.approx(concurrence_initial(2, 1), abs=1e-12)
    for key in ("E_A", "E_B", "sed", "mutual_information", "delta_S_AB", "j_A", "j_B"):
        assert s[key].shape == t.shape


def test_switching_work_is_omega_c0_cos_delta():
    delta = 0.3
    res = HeatPump(delta=delta, cycles=1, **FAST).run(normal_reference=False)
    c = res.cycles[0]
    assert c.W_on == pytest.approx(0.1 * concurrence_initial(2, 1) * math.cos(delta), abs=1e-12)
    assert abs(c.first_law_residual) < 1e-12


def test_no_correlation_means_normal_conduction_and_equal_temperatures_no_heat():
    normal = HeatPump(chi11=0.0, chi23=0.0, cycles=1, **FAST).run(normal_reference=False)
    assert normal.cycles[0].Q_A > 0 > normal.cycles[0].Q_B  # from hot A to cold B
    equal = HeatPump(TA=1.5, TB=1.5, chi11=0.0, chi23=0.0, cycles=1, **FAST).run()
    assert abs(equal.cycles[0].Q_A) < 1e-12 and abs(equal.cycles[0].Q_B) < 1e-12  # round-off
    assert abs(equal.normal_heat_current) < 1e-16
    assert equal.carnot_bound is None and equal.regime == "no gradient"  # no bound without a gradient


def test_too_short_relaxation_is_refused_with_advice():
    with pytest.raises(InvalidStateError, match="lengthen tau_relax"):
        HeatPump(tau_relax=0.5, cycles=2, solver="lindblad").run()


@pytest.mark.parametrize("kwargs,match", [
    ({"TA": 0}, "TA = 0"), ({"TB": -1}, "TB = -1"), ({"omega_c": 0}, "omega_c = 0"),
    ({"kappa_a": -0.1}, "kappa_a = -0.1"), ({"kappa_b": math.nan}, "kappa_b = nan"),
    ({"gamma": 0}, "gamma = 0"), ({"tau": 0}, "tau = 0"), ({"tau_relax": -1}, "tau_relax = -1"),
    ({"cycles": 0}, "cycles = 0"), ({"depth": -1}, "depth = -1"), ({"n_exp": -2}, "n_exp = -2"),
    ({"expansion": "taylor"}, "expansion = 'taylor'"), ({"initial": "hot"}, "initial = 'hot'"),
    ({"solver": "magic"}, "solver = 'magic'"), ({"delta": math.inf}, "delta = inf"),
])
def test_bad_parameters_are_named(kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        HeatPump(**kwargs)


def test_bad_correlation_is_named():
    with pytest.raises(InvalidStateError, match="A2b"):
        HeatPump(chi11=0.0, chi23=0.4)


def test_cli_pump_json_and_files(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["pump", "--solver", "lindblad", "--relax", "300", "--cycles", "1", "-o", str(out),
            "--json", "--no-progress", "--delta", "-pi/2"]
    assert main(args) == 0
    payload = json.loads(capsys.readouterr().out)
    assert set(payload) >= {"params", "I0", "carnot_bound", "cycles", "normal"}
    assert set(payload["cycles"][0]) >= {"Q_A", "Q_B", "W_on", "W_off", "cop_ratio",
                                         "first_law_residual"}
    assert isinstance(payload["normal"]["heat_current"], float)
    assert json.loads((out / "results.json").read_text()) == payload
    series = np.load(out / "series.npz")
    assert {"t", "Q_A", "Q_B", "sigma", "sigma0"} <= set(series.files)
    assert (out / "fig6.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_pump_table(tmp_path, capsys):
    assert main(["pump", "--solver", "lindblad", "--relax", "300", "--cycles", "1", "-o",
                 str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "Carnot bound" in out and "Q_B/(T_A I_0)" in out and "normal reference" in out


@pytest.mark.parametrize("args,needle", [
    (["--kappa-a", "-1"], "kappa_a = -1.0 is outside the allowed range (0, inf)"),
    (["--kappa-b", "0"], "kappa_b = 0.0 is outside the allowed range (0, inf): without a bath qubit B"),
    (["--cycles", "0"], "cycles = 0 must be an integer >= 1"),
    (["--expansion", "x"], "expansion = 'x' must be one of matsubara, pade"),
    (["--ramp-time", "1"], "ramp_time = 1 needs a ramp: give ramp = 'linear' or 'sin2'"),
    (["--ramp", "sin2", "--ramp-time", "7"], "ramp_time = 7 is outside the allowed range (0, tau = 6.1]"),
    (["--ramp", "linear", "--ramp-time", "1"], "ramp = 'linear' needs solver = 'heom'"),
])
def test_cli_pump_errors(args, needle, tmp_path, capsys):
    assert main(["pump", "--solver", "lindblad", "-o", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1
