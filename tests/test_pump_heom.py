"""The paper's numbers with the exact HEOM (Sec. IV-V, Figs. 4-6): slower than test_pump.py."""

import json
import math

import numpy as np
import pytest

from qpump.figures import transient_runs
from qpump.pump import HeatPump


@pytest.fixture(scope="module")
def paper_pump():
    return HeatPump(cycles=1).run()


@pytest.fixture(scope="module")
def transients():
    return transient_runs(solver="heom", t_max=100.0)


def test_pumped_heat_and_efficiency_reproduce_the_paper(paper_pump):
    cycle = paper_pump.cycles[0]
    assert cycle.Q_A < 0 < cycle.Q_B
    assert cycle.cop_ratio == pytest.approx(0.186, abs=0.005)  # Eq. 18, paper: 0.186
    assert cycle.cop_ratio < paper_pump.carnot_bound == 1.0
    assert abs(abs(cycle.Q_A) - abs(cycle.Q_B)) < 0.01 * abs(cycle.Q_B)  # |Q_A| = |Q_B|
    # What is not pumped is the work of switching V off: the first law closes.
    assert abs(cycle.first_law_residual) < 1e-7
    assert abs(cycle.W_on) < 1e-15  # Tr rho0 V = 0 at delta = -pi/2 (Sec. IV)
    # The bath-dressed start stays a state after chi is added (docs/pump.md, one cycle: ~6e-4).
    assert 1e-4 < cycle.min_eigenvalue_after_chi < 1e-3
    assert np.min(paper_pump.series["sigma"]) > -1e-9
    assert paper_pump.normal_heat_current > 0


def test_fig4_anomalous_heat_then_normal_conduction(transients):
    run = transients["anomalous"]
    s, t = run.series, run.t
    peak = np.argmax(s["sed"])
    assert 3.0 < t[peak] < 10.0 and s["sed"][peak] > 3 * s["sed"][0]  # one sharp anomalous peak
    assert np.max(s["sed"][t > 40]) < 0.5 * s["sed"][peak]  # which then decays
    early = t <= 15
    assert np.all(s["Q_A"][early][1:] < 0) and np.all(s["Q_B"][early][1:] > 0)  # cold to hot
    assert s["Q_A"][-1] > 0 > s["Q_B"][-1]  # normal conduction has taken over by t = 100
    # Entanglement sudden death within about one SED oscillation; I_AB decays more slowly.
    dead = t[np.argmax(s["concurrence"] < 1e-12)]
    assert 0 < dead < math.pi / 0.1
    assert np.all(s["concurrence"][t > 40] < 1e-12)
    assert s["mutual_information"][np.argmin(np.abs(t - dead))] > 1e-3
    assert np.all(s["mutual_information"][t < 20] > 0)


def test_fig5_entropy_production(transients):
    anomalous, normal = transients["anomalous"].series, transients["normal"].series
    for s in (anomalous, normal):
        assert np.min(s["sigma"]) > -1e-9  # Eq. C4
    assert np.min(anomalous["sigma0"]) < -0.1  # Eq. 14 fails while the correlation is spent
    assert np.min(normal["sigma0"]) > -1e-9
    assert anomalous["sigma"][-1] > 5 * normal["sigma"][-1]  # "larger by an order of magnitude"


def test_limits_no_correlation_and_equal_temperatures():
    normal = HeatPump(chi11=0.0, chi23=0.0, cycles=1, tau_relax=200.0).run(normal_reference=False)
    assert normal.cycles[0].Q_A > 0 > normal.cycles[0].Q_B
    equal = HeatPump(TA=1.5, TB=1.5, chi11=0.0, chi23=0.0, cycles=1, tau_relax=200.0).run()
    # No steady current without a gradient (compare ~3e-3 at TA = 2, TB = 1); the HEOM's own
    # steady-state accuracy is pinned in test_heom.py.
    assert abs(equal.normal_heat_current) < 1e-7
    # Over a cycle no heat is drawn from either bath: both only absorb the work spent on
    # switching V (which is not zero with baths: <V> builds up while coupled).
    c = equal.cycles[0]
    assert c.Q_A < 1e-10 and c.Q_B < 1e-10
    assert c.Q_A + c.Q_B == pytest.approx(-(c.W_on + c.W_off), abs=1e-7)


def test_product_start_carries_a_switch_on_transient():
    product = HeatPump(initial="product", cycles=1, tau_relax=200.0).run(normal_reference=False)
    assert product.cycles[0].Q_A < 0 < product.cycles[0].Q_B
    assert abs(product.cycles[0].first_law_residual) < 1e-7


_PEAK_SCRIPT = """
import json, sys
from qpump.cli import main
from qpump.pump import HeatPump
import qpump.figures  # what `qpump pump` has imported when it plans the run
depth = int(sys.argv[1])
estimate = HeatPump(depth=depth, cycles=1, tau_relax=50.0).memory_estimate()["total"]
status = main(["pump", "--depth", str(depth), "--cycles", "1", "--relax", "50", "-o", sys.argv[2],
               "--no-progress"])
# VmHWM, not ru_maxrss: the latter keeps the peak of the forked parent across exec.
peak = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status")
            if line.startswith("VmHWM:"))
print(json.dumps({"status": status, "estimate": estimate, "peak": peak}))
"""


@pytest.mark.parametrize("depth", [3, 6])
def test_the_memory_estimate_is_within_a_factor_2_of_the_measured_peak(depth, tmp_path):
    import json
    import os
    import subprocess
    import sys

    # One BLAS thread: SuperLU's spinning BLAS threads slow the LU many times on a busy machine,
    # and do not change its memory.
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, str(depth), str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=600, env=env)
    run = json.loads(proc.stdout.splitlines()[-1])
    assert run["status"] == 0, proc.stderr
    assert 0.5 < run["peak"] / run["estimate"] < 2.0, run


def test_a_run_that_will_not_fit_is_refused_before_it_starts():
    from qpump.errors import HierarchyTooLargeError

    pump = HeatPump(depth=8, memory_limit_bytes=200 * 1024**2)
    parts = pump.memory_estimate()
    # GMRES made the steady state 10x cheaper than the LU was (2.1 GiB), but still the largest part
    assert 100 * 1024**2 < parts["steady state"] < 400 * 1024**2
    assert parts["steady state"] > parts["ADOs and integrator"]
    with pytest.raises(HierarchyTooLargeError, match=r"needs about \d+ MiB at its peak .*"
                                                     r"steady state .*--memory-limit"):
        pump.run()


# ----------------------------------------------------------------------------------------------
# Ramped coupling: f(t) V_AB instead of the sudden switch
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["linear", "sin2"])
def test_a_vanishing_ramp_time_recovers_the_sudden_switch(shape):
    """The ramp adds ramp_time to the contact (same pulse area), so the cycle differs from the
    sudden one by O(ramp_time): the deviation shrinks tenfold with the ramp time."""
    common = dict(cycles=1, tau_relax=60.0)
    sudden = HeatPump(**common).run(normal_reference=False).cycles[0]
    deviations = []
    for ramp_time in (1e-2, 1e-3):
        c = HeatPump(ramp=shape, ramp_time=ramp_time, **common).run(normal_reference=False).cycles[0]
        deviations.append(max(abs(c.Q_A - sudden.Q_A), abs(c.Q_B - sudden.Q_B),
                              abs(c.W_on - sudden.W_on), abs(c.W_off - sudden.W_off)))
        assert abs(c.first_law_residual) <= c.first_law_tolerance
    assert deviations[1] < 2e-5 and 5 < deviations[0] / deviations[1] < 20
    assert sudden.W_off > 1e-3  # the sudden switch does work the ramp must reproduce


def test_a_slow_ramp_does_work_and_keeps_the_first_law():
    """A ramp over the whole contact: the work is the integral of f' <V_AB>, the first law of the
    cycle closes with it, and the coupling series follows the ramp."""
    pump = HeatPump(cycles=1, tau_relax=60.0, ramp="sin2", ramp_time=3.0)
    res = pump.run(normal_reference=False)
    c = res.cycles[0]
    assert abs(c.first_law_residual) < 1e-8 < abs(c.W_on)
    coupled = res.series["coupled"]
    f = res.series["coupling"][coupled]
    t = res.t[coupled]
    assert res.contact_windows[0] == (0.0, pump.contact_duration) == (0.0, 9.1)
    assert f[0] == 0.0 and abs(f[-1]) < 1e-15 and np.max(f) == 1.0
    plateau = (t >= 3.0) & (t <= 6.1)
    assert np.all(f[plateau] == 1.0)
    assert np.allclose(f[t <= 3.0], np.sin(0.5 * np.pi * t[t <= 3.0] / 3.0) ** 2, atol=1e-14)
    assert np.all(res.series["coupling"][~coupled] == 0.0)


# ----------------------------------------------------------------------------------------------
# The gauge phi_V at fixed delta = phi_V - phi_chi
# ----------------------------------------------------------------------------------------------


def test_the_phase_of_v_matters_with_baths_beyond_weak_coupling_and_not_without_them():
    """The isolated pair and the local (phase-covariant) master equation depend on delta alone;
    the HEOM baths couple through sigma_x, which a z rotation turns towards sigma_y, so at
    kappa_A = 0.1, kappa_B = 0.23 the gauge moves Q_B by 0.65 %."""
    strong = dict(kappa_a=0.1, kappa_b=0.23, tau_relax=200.0, cycles=1)
    default = HeatPump(**strong).run(normal_reference=False).cycles[0]
    same = HeatPump(phi_v=-math.pi / 2, **strong).run(normal_reference=False).cycles[0]
    rotated = HeatPump(phi_v=0.0, **strong).run(normal_reference=False).cycles[0]
    assert same.Q_B == default.Q_B  # phi_v = delta is the default, bit for bit
    assert rotated.Q_B == pytest.approx(0.07944, abs=1e-5)
    assert default.Q_B == pytest.approx(0.07893, abs=1e-5)
    local = [HeatPump(phi_v=phi, solver="lindblad", **strong).run(normal_reference=False).cycles[0].Q_B
             for phi in (0.0, -math.pi / 2, 1.0)]
    assert max(local) - min(local) < 1e-10 * abs(local[0])


# ----------------------------------------------------------------------------------------------
# Automatic truncation
# ----------------------------------------------------------------------------------------------


def test_automatic_truncation_converges_to_a_deep_reference():
    pump = HeatPump(cycles=1, tau_relax=100.0, depth="auto", n_exp="auto", conv_tol=1e-5)
    result = pump.run(normal_reference=False)
    conv = result.convergence
    assert conv.converged and conv.change < 1e-5 and conv.runs == len(conv.table) > 4
    assert (result.params["depth"], result.params["n_exp"]) == (conv.depth, conv.n_exp)
    assert result.params["depth_requested"] == "auto"
    deep = HeatPump(cycles=1, tau_relax=100.0, depth=6, n_exp=5, expansion="pade").run(
        normal_reference=False).cycles[0]
    assert abs(result.cycles[0].Q_B - deep.Q_B) < 5e-5 and abs(result.cycles[0].Q_A - deep.Q_A) < 5e-5
    assert "convergence" in result.to_json()
    with pytest.raises(Exception, match="automatic"):
        pump.memory_estimate()


def test_a_search_stopped_by_its_budget_is_not_a_result(tmp_path, capsys):
    from qpump.cli import main
    from qpump.errors import NotConvergedError

    pump = HeatPump(cycles=1, tau_relax=100.0, depth="auto", n_exp="auto", time_limit_s=0.05)
    with pytest.raises(NotConvergedError, match="time limit") as info:
        pump.run()
    assert info.value.result.table and not info.value.result.converged
    out = tmp_path / "o"
    assert main(["pump", "--depth", "auto", "--relax", "100", "--cycles", "1", "--time-limit", "0.05",
                 "-o", str(out), "--no-progress"]) == 3
    assert "not converged" in capsys.readouterr().err
    table = json.loads((out / "convergence.json").read_text())
    assert table["converged"] is False and table["reason"] == "time limit"
    assert not (out / "results.json").exists()


def test_an_expansion_that_misses_detailed_balance_is_flagged_before_the_run():
    from qpump.errors import InvalidParameterError, TruncationWarning

    # One Pade pole at T = 0.2, 0.1: warned before the run, which then fails on its own check
    with pytest.warns(TruncationWarning, match=r"detailed balance broken .*"), \
            pytest.raises(InvalidParameterError, match="not unique"):
        HeatPump(TA=0.2, TB=0.1, n_exp=1, expansion="pade", tau_relax=1.0, cycles=1).run(
            normal_reference=False)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncationWarning)
        HeatPump(tau_relax=1.0, cycles=1).run(normal_reference=False)  # the paper's truncation passes
