"""Tests of qpump.quantum.aer_pump (and lindblad.strang_split_run, its numpy reference): Aer with bath
channels equals lindblad.py at matched steps, the splitting is second order, the pump on Aer."""

import math
import warnings

import numpy as np
import pytest

from qpump import closed, states
from qpump.lindblad import LindbladSolver, LocalBath, strang_split_run
from qpump.pump import HeatPump
from qpump.quantum.aer_pump import (
    TROTTER_BOUND,
    check_trotter_step,
    evolve_on_aer,
    evolve_split_reference,
    noise_free_states,
    run_aer_pump,
    run_split_reference_pump,
    trotter_error_estimate,
)
from qpump.quantum.preparation import prepare_optimal_state

TA, TB, OMEGA, DELTA = 2.0, 1.0, 0.1, -math.pi / 2
BATHS = [LocalBath(0, 0.01, 2.0, TA), LocalBath(1, 0.023, 2.0, TB)]
STRONG = [LocalBath(0, 0.05, 2.0, TA), LocalBath(1, 0.08, 2.0, TB)]


@pytest.mark.parametrize("method", ["ancilla", "mixture"])
def test_aer_noise_free_equals_the_closed_form(method):
    times = np.linspace(0.0, 80.0, 17)
    prep = prepare_optimal_state(TA, TB, method=method)
    rho = sum(b.weight * noise_free_states(b.circuit, times, OMEGA, DELTA) for b in prep.branches)
    assert np.max(np.abs(rho - closed.rho_closed_form(times, TA, TB, OMEGA, DELTA))) < 1e-9
    direct = noise_free_states(None, times, OMEGA, DELTA, rho0=states.correlated_state(TA, TB))
    assert np.max(np.abs(direct - closed.rho_closed_form(times, TA, TB, OMEGA, DELTA))) < 1e-9


@pytest.mark.parametrize("bath_model", ["channel", "collision"])
def test_aer_with_baths_equals_lindblad_split_steps(bath_model):
    rho0 = states.correlated_state(TA, TB)
    n = 40
    seg = evolve_on_aer(rho0, OMEGA, DELTA, STRONG, 6.0, n, bath_model=bath_model)
    ref = evolve_split_reference(rho0, OMEGA, DELTA, STRONG, 6.0, n)
    assert np.max(np.abs(seg.rho - ref.rho)) < 1e-8
    assert np.max(np.abs(seg.heat - ref.heat)) < 1e-8
    assert np.allclose(seg.times, ref.times, atol=1e-15)
    # first law: the unitary conserves H, so the energy change is the heat drawn from the baths
    assert np.max(np.abs(seg.energy - seg.energy[0] - seg.heat.sum(axis=1))) < 1e-13


def test_strang_splitting_is_second_order_against_exact_lindblad():
    rho0 = states.correlated_state(TA, TB)
    h = closed.pair_hamiltonian(OMEGA, DELTA)
    exact = LindbladSolver(h, STRONG).run(rho0, np.array([0.0, 6.0]))
    errors = []
    for n in (6, 12, 24, 48):
        res = strang_split_run(rho0, h, STRONG, 6.0 / n, n)
        errors.append((np.max(np.abs(res.rho[-1] - exact.rho[-1])),
                       np.max(np.abs(res.heat[-1] - exact.heat[-1]))))
        bound = trotter_error_estimate(6.0 / n, OMEGA, STRONG, 6.0)
        assert np.max(np.abs(res.rho[-1] - exact.rho[-1])) < bound
    errors = np.array(errors)
    ratios = errors[:-1] / errors[1:]
    assert np.all((ratios > 3.8) & (ratios < 4.2)), ratios  # halving dt divides the error by 4


def test_splitting_is_exact_when_uncoupled_and_heat_is_exact():
    rho0 = states.correlated_state(TA, TB)
    h = states.H_A + states.H_B
    exact = LindbladSolver(h, STRONG).run(rho0, np.linspace(0.0, 50.0, 6))
    res = strang_split_run(rho0, h, STRONG, 10.0, 5)
    assert np.max(np.abs(res.rho - exact.rho)) < 1e-13
    assert np.max(np.abs(res.heat - exact.heat)) < 1e-13
    assert np.max(np.abs(res.heat_current - exact.heat_current)) < 1e-15


def test_large_trotter_steps_warn_with_the_implied_error():
    rho0 = states.correlated_state(TA, TB)
    with pytest.warns(UserWarning, match=r"Trotter step dt = 3 .* splitting error after t = 6 is about"):
        check_trotter_step(3.0, OMEGA, STRONG, 6.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_trotter_step(TROTTER_BOUND / 2 / OMEGA, OMEGA, BATHS, 6.0)  # both products below the bound
        check_trotter_step(50.0, 0.0, BATHS, 500.0)  # uncoupled: no splitting, no warning
        evolve_on_aer(rho0, 0.0, 0.0, BATHS, 500.0, 5)
    with pytest.warns(UserWarning, match="Omega dt"):
        evolve_on_aer(rho0, OMEGA, DELTA, BATHS, 6.0, 3)


@pytest.fixture(scope="module")
def pump_runs():
    pump = HeatPump(solver="lindblad", cycles=2, tau=6.1, tau_relax=300.0, dt_contact=0.05, dt_relax=1.0)
    return (pump, run_aer_pump(pump, dt=0.05, relax_steps=10),
            run_split_reference_pump(pump, dt=0.05, relax_steps=10), pump.run(normal_reference=False))


def test_pump_on_aer_equals_matched_split_steps(pump_runs):
    _, aer, split, _ = pump_runs
    assert np.max(np.abs(aer.rho - split.rho)) < 1e-8
    for a, s in zip(aer.cycles, split.cycles, strict=True):
        assert abs(a.Q_A - s.Q_A) < 1e-8 and abs(a.Q_B - s.Q_B) < 1e-8
    for key in ("E_A", "E_B", "Q_A", "Q_B", "concurrence", "mutual_information"):
        assert np.max(np.abs(aer.series[key] - split.series[key])) < 1e-8, key


def test_pump_on_aer_reproduces_the_lindblad_pump(pump_runs):
    pump, aer, _, exact = pump_runs
    i0 = exact.I0
    for a, e in zip(aer.cycles, exact.cycles, strict=True):
        # second-order splitting error at dt = 0.05: ~1e-6 (measured 9e-7)
        assert abs(a.Q_A - e.Q_A) < 3e-6 and abs(a.Q_B - e.Q_B) < 3e-6
        assert a.Q_A < 0 < a.Q_B  # heat pumped from the cold bath B into the hot bath A
        assert abs(abs(a.Q_A) - abs(a.Q_B)) < 0.01 * abs(a.Q_B)
        assert abs(a.first_law_residual) < 1e-12
        assert a.Q_B / (pump.TA * i0) == pytest.approx(0.1832, abs=5e-4)  # docs/pump.md: the paper's numbers
    assert aer.series["concurrence"][0] == pytest.approx(closed.concurrence_initial(TA, TB), abs=1e-12)
    assert aer.series["mutual_information"][0] == pytest.approx(0.595453, abs=1e-6)
    assert aer.t.shape == aer.series["E_A"].shape == aer.series["Q_B"].shape
    coupled = aer.series["coupled"]
    assert coupled.sum() == 2 * (round(6.1 / 0.05) + 1)


def test_pump_with_preparation_circuit_and_collision_baths_agrees():
    pump = HeatPump(solver="lindblad", cycles=1, tau=2.0, tau_relax=50.0)
    exact_injection = run_aer_pump(pump, dt=0.1, relax_steps=2)
    circuit = run_aer_pump(pump, dt=0.1, relax_steps=2, injection="circuit", bath_model="collision")
    assert np.max(np.abs(circuit.rho - exact_injection.rho)) < 1e-10
    assert abs(circuit.cycles[0].Q_B - exact_injection.cycles[0].Q_B) < 1e-10
