"""The pump cycle with collision-model baths on qubits (qpump.quantum.collision_pump)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg

from qpump.errors import InvalidParameterError
from qpump.lindblad import LindbladSolver
from qpump.pump import H_FREE, HeatPump
from qpump.quantum import collision_pump as cp
from qpump.quantum.backends import _edge_errors
from qpump.quantum.noise import gad_kraus, gad_superoperator
from qpump.states import coupling_potential, excited_population

STRENGTHS = (0.0, 0.1, 0.7, 1.2, math.pi / 2)
POPULATIONS = (0.0, excited_population(1.0), 0.5, 1.0)


def _random_state(seed: int, dim: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    m = rng.normal(size=(dim, dim)) + 1j * rng.normal(size=(dim, dim))
    rho = m @ m.conj().T
    return rho / np.trace(rho)


@pytest.fixture(scope="module")
def sherbrooke():
    fake = pytest.importorskip("qiskit_ibm_runtime.fake_provider")
    return fake.FakeSherbrooke()


# ------------------------------------------------------------------------------------------------
# One collision
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("g", STRENGTHS)
def test_partial_swap_is_xx_plus_yy_at_twice_the_strength(g):
    from qiskit.circuit.library import XXPlusYYGate
    from qiskit.quantum_info import Operator, SparsePauliOp

    exact = scipy.linalg.expm(-0.5j * g * SparsePauliOp(["XX", "YY"]).to_matrix())
    gate = Operator(XXPlusYYGate(cp.partial_swap_angle(g), 0.0)).data
    assert np.max(np.abs(gate - exact)) < 1e-12
    assert np.max(np.abs(cp.partial_swap(g) - exact)) < 1e-12


@pytest.mark.parametrize("g", STRENGTHS)
@pytest.mark.parametrize("p", POPULATIONS)
def test_one_collision_with_a_gibbs_ancilla_is_gad(g, p):
    channel = cp.collision_channel(g, p)
    assert np.max(np.abs(channel - gad_superoperator(math.sin(g) ** 2, p))) < 1e-12
    rho = _random_state(7)
    by_kraus = sum(k @ rho @ k.conj().T for k in gad_kraus(math.sin(g) ** 2, p))
    assert np.max(np.abs((channel @ rho.reshape(-1)).reshape(2, 2) - by_kraus)) < 1e-12


@pytest.mark.parametrize("p", POPULATIONS)
def test_full_swap_rethermalizes_exactly(p):
    for seed in range(3):
        out = (cp.collision_channel(math.pi / 2, p) @ _random_state(seed).reshape(-1)).reshape(2, 2)
        assert np.max(np.abs(out - np.diag([1 - p, p]))) < 1e-12


def test_one_full_swap_relaxation_ends_in_the_gibbs_product():
    pump = HeatPump(delta=-1.0)
    pred = cp.predict(cp.CollisionCycle(pump, n_c=2, n_r=1, g=0.5, g_relax=math.pi / 2))
    pa, pb = excited_population(pump.TA), excited_population(pump.TB)
    gibbs = np.diag([(1 - pa) * (1 - pb), (1 - pa) * pb, pa * (1 - pb), pa * pb])
    assert np.max(np.abs(pred.rho_end - gibbs)) < 1e-12


def test_continuum_strength_makes_the_collision_the_semigroup():
    bath = cp._baths(HeatPump())[1]
    dt = 0.3
    g = cp.continuum_strength(sum(bath.rates), dt)
    assert math.sin(g) ** 2 == pytest.approx(-math.expm1(-sum(bath.rates) * dt), abs=1e-15)


# ------------------------------------------------------------------------------------------------
# The exact prediction
# ------------------------------------------------------------------------------------------------

CYCLES = [
    cp.CollisionCycle(),
    cp.CollisionCycle(HeatPump(delta=-1.0), n_c=3, n_r=2, g=(0.4, 0.9), g_relax=0.6),
    cp.CollisionCycle(HeatPump(TA=1.5, TB=1.5, delta=-2.0, chi11=0.0, chi23=0.0), n_c=2, n_r=1, g=0.8),
    cp.CollisionCycle.continuum(HeatPump(delta=-1.0), 200, 1),
]


@pytest.mark.parametrize("cycle", CYCLES)
def test_first_law_closes_exactly(cycle):
    pred = cp.predict(cycle)
    assert abs(pred.first_law_residual) < 1e-12
    # Resonant qubits: U conserves H_A + H_B and V_AB separately, so the collisions' work on V_AB is
    # exactly what the switching returns, and the total work vanishes.
    assert abs(pred.work) < 1e-12
    assert abs(np.trace(pred.rho_end) - 1) < 1e-12


def test_collisions_do_work_on_v_off_resonance_of_the_phase():
    pred = cp.predict(CYCLES[1])
    assert np.all(np.abs(pred.work_collisions) > 1e-3)
    assert abs(pred.work_off) > 1e-3


def test_aer_density_matrix_of_the_circuits_equals_the_numpy_prediction():
    cycle = CYCLES[1]
    pred = cp.predict(cycle)
    aer = cp.predict_on_aer(cycle, with_start=True)
    assert np.max(np.abs(aer["heat"] - pred.heat)) < 1e-10
    assert np.max(np.abs(aer["energy_end"] - pred.energy_end)) < 1e-10
    assert np.max(np.abs(aer["energy_start"] - pred.energy_start)) < 1e-10
    assert abs(aer["residual"]) < 1e-10


def test_heat_distribution_has_the_predicted_mean():
    cycle = CYCLES[1]
    rho0 = cycle.correlation().state()
    pred = cp.predict(cycle)
    for bath in (0, 1):
        dist = cp.heat_distribution(cycle, rho0, bath)
        assert sum(dist.values()) == pytest.approx(1.0, abs=1e-12)
        assert cp._moments(dist)[0] == pytest.approx(pred.heat[bath], abs=1e-12)


# ------------------------------------------------------------------------------------------------
# Sampled runs on noise-free Aer
# ------------------------------------------------------------------------------------------------

def _within(est: cp.Estimate, value: float, k: float = 3.0) -> bool:
    return abs(est.value - value) <= k * est.error


def test_noise_free_cycle_equals_its_prediction_within_shot_noise():
    cycle = cp.CollisionCycle(n_c=1, n_r=1, g=math.pi / 4)
    pred = cp.predict(cycle)
    run = cp.run_sampled(cycle, 20000, seed=11)
    assert _within(run.heat_a, pred.heat[0]) and _within(run.heat_b, pred.heat[1])
    assert _within(run.delta_energy_system, pred.delta_energy_system)
    # Without noise every circuit conserves the number of excitations shot by shot, so the first law
    # holds in every shot: the residual and its error are zero.
    assert abs(run.first_law_residual.value) < 1e-12 and run.first_law_residual.error < 1e-12


def test_without_correlation_heat_flows_from_hot_to_cold():
    cycle = cp.CollisionCycle(HeatPump(chi11=0.0, chi23=0.0))
    pred = cp.predict(cycle)
    run = cp.run_sampled(cycle, 20000, seed=21)
    assert pred.heat[0] > 0 > pred.heat[1]
    assert _within(run.heat_a, pred.heat[0]) and _within(run.heat_b, pred.heat[1])
    assert run.heat_a.z > 3 and run.heat_b.z < -3


def test_without_correlation_at_equal_temperatures_no_heat_flows():
    cycle = cp.CollisionCycle(HeatPump(TA=1.5, TB=1.5, chi11=0.0, chi23=0.0))
    pred = cp.predict(cycle)
    assert np.max(np.abs(pred.heat)) < 1e-12
    assert np.max(np.abs(cp.predict(cp.CollisionCycle(cycle.pump, n_c=3, n_r=2, g=0.6)).heat)) < 1e-12
    run = cp.run_sampled(cycle, 20000, seed=31)
    assert _within(run.heat_a, 0.0) and _within(run.heat_b, 0.0)


def test_correlation_pumps_from_b_to_a_at_equal_temperatures():
    cycle = cp.CollisionCycle(HeatPump(TA=1.5, TB=1.5))
    pred = cp.predict(cycle)
    run = cp.run_sampled(cycle, 20000, seed=41)
    assert pred.heat[1] > 0 > pred.heat[0]
    assert _within(run.heat_a, pred.heat[0]) and _within(run.heat_b, pred.heat[1])
    assert run.heat_b.z > 3 and run.heat_a.z < -3


# ------------------------------------------------------------------------------------------------
# Continuum limit: the local master equation of lindblad.py
# ------------------------------------------------------------------------------------------------

def test_master_equation_reference_is_lindblad_py():
    pump = HeatPump(delta=-1.0)
    rho0 = pump.correlation().state()
    solver = LindbladSolver(H_FREE + coupling_potential(pump.omega_c, pump.delta), list(cp._baths(pump)))
    exact = solver.run(rho0, np.array([0.0, pump.tau]))
    ref = cp.master_equation_contact(pump)
    assert np.max(np.abs(ref["rho"] - exact.final_state)) < 1e-12
    assert np.max(np.abs(ref["heat_lindblad"] - exact.heat[-1])) < 1e-12


def test_continuum_limit_converges_to_lindblad_at_second_order():
    pump = HeatPump(delta=-1.0)  # off delta = -pi/2 the collisions do work, which the test must see
    ref = cp.master_equation_contact(pump)
    errors_rho, errors_heat, errors_global = [], [], []
    for n_c in (10, 20, 40, 80):
        pred = cp.predict(cp.CollisionCycle.continuum(pump, n_c))
        errors_rho.append(np.max(np.abs(pred.rho_contact - ref["rho"])))
        errors_heat.append(np.max(np.abs(pred.heat_contact - ref["heat_local"])))
        errors_global.append(np.max(np.abs(pred.heat_global - ref["heat_lindblad"])))
    for errors in (errors_rho, errors_heat):
        for coarse, fine in zip(errors, errors[1:], strict=False):
            assert 3.8 < coarse / fine < 4.2
    assert errors_heat[-1] < 2e-6
    # lindblad.py counts heat with H_A + H_B + V_AB, the bath side with the local energy only. The
    # difference, the collisions' work on V_AB, stays finite in the limit, and the collision model's
    # version of lindblad.py's heat (Q_K + W_coll,K) converges only at first order.
    assert np.all(np.abs(ref["heat_local"] - ref["heat_lindblad"]) > 1e-3)
    assert 1.8 < errors_global[-2] / errors_global[-1] < 2.4


# ------------------------------------------------------------------------------------------------
# Device: layout, planner, noisy run
# ------------------------------------------------------------------------------------------------

def test_line_layout_is_a_connected_path(sherbrooke):
    layout = cp.choose_line_layout(sherbrooke)
    edges = _edge_errors(sherbrooke)
    for p, q in ((layout.a_A, layout.A), (layout.A, layout.B), (layout.B, layout.a_B)):
        assert (min(p, q), max(p, q)) in edges
    assert len(set(layout.physical)) == 4
    costs = cp.measurement_costs(sherbrooke, layout, cp.CollisionCycle())
    assert costs["qubits"]["a_B"]["measure_duration"] > 0
    assert 0.9 < costs["idle_decay"]["B"] < 1.0


def test_planner_without_contact_collisions_picks_the_full_swap(sherbrooke):
    result = cp.plan(sherbrooke, 20, 8, 4000, n_c_values=(0,), n_r_values=(1, 2))
    assert result.cycle.n_c == 0 and result.cycle.n_r == 1
    assert result.cycle.strengths[0] == pytest.approx(math.pi / 2)
    assert len(result.table) == 8
    assert result.row.within_budget and result.row.significance > 3


@pytest.fixture(scope="module")
def sherbrooke_plan(sherbrooke):
    return cp.plan(sherbrooke, 40, 24, 10000)


def test_planned_cycle_on_fake_sherbrooke_pumps_and_closes_the_first_law(sherbrooke, sherbrooke_plan):
    plan = sherbrooke_plan
    assert all(r.two_qubit_gates <= 40 or not r.within_budget for r in plan.table)
    run = cp.run_sampled(plan.cycle, plan.shots, backend=sherbrooke, layout=plan.layout, seed=7,
                         mitigate=True)
    assert run.heat_b.z >= 3
    assert run.heat_a.z <= -3
    # The device's own noise is a third reservoir: the first law closes once its energy input,
    # predicted from the noise model, is counted.
    device = cp.predict_on_aer(plan.cycle, sherbrooke, plan.layout, with_start=True)
    assert _within(run.first_law_residual, device["residual"])
    assert _within(run.heat_b, device["heat"][1])


def test_bad_input_names_the_parameter(sherbrooke):
    with pytest.raises(InvalidParameterError, match="g = 2"):
        cp.CollisionCycle(g=2.0)
    with pytest.raises(InvalidParameterError, match=r"g\[B\]"):
        cp.CollisionCycle(g=(0.1, -0.1))
    with pytest.raises(InvalidParameterError, match="n_c"):
        cp.CollisionCycle(n_c=-1)
    with pytest.raises(InvalidParameterError, match="n_c \\+ n_r = 0"):
        cp.CollisionCycle(n_c=0, n_r=0)
    with pytest.raises(InvalidParameterError, match="p_excited"):
        cp.ancilla_angle(1.5)
    with pytest.raises(InvalidParameterError, match="max_mid_circuit_measurements"):
        cp.plan(sherbrooke, 10, 2, 100)
    with pytest.raises(InvalidParameterError, match="no grid point fits"):
        cp.plan(sherbrooke, 1, 4, 100, n_c_values=(0,), n_r_values=(1,), g_values=(math.pi / 2,))
    with pytest.raises(InvalidParameterError, match="shots"):
        cp.run_sampled(cp.CollisionCycle(), 0)


# ------------------------------------------------------------------------------------------------
# Repeated cycles in one dynamic circuit
# ------------------------------------------------------------------------------------------------

def test_repeated_cycles_each_pump_as_one_cycle_on_noise_free_aer():
    from qiskit import transpile
    from qiskit_aer import AerSimulator

    cycle = cp.CollisionCycle(HeatPump())
    qc = cp.repeated_cycle_circuit(cycle, 3)
    ops = qc.count_ops()
    # a_B after each of the 3 preparations; A, B, a_B before cycles 2 and 3; each ancilla before its
    # collision in cycles 2 and 3
    assert ops["reset"] == 3 + 2 * 3 + 2 * 2
    assert ops["measure"] == 3 * (4 * cycle.collisions + 2)
    sim = AerSimulator()
    counts = sim.run(transpile(qc, sim, optimization_level=0), shots=8000, seed_simulator=3).result()
    heat = cp.per_cycle_heat(counts.get_counts(), cycle.collisions, 3)
    exact = cp.predict(cycle).heat
    for q_a, q_b in heat:
        assert _within(q_a, exact[0]) and _within(q_b, exact[1])
        assert q_b.z > 3 and q_a.z < -3


def test_repeated_cycles_on_fake_sherbrooke_pump_in_every_cycle(sherbrooke):
    from qiskit_aer import AerSimulator

    from qpump.quantum.backends import noise_model_of, transpile_fixed

    cycle = cp.CollisionCycle(HeatPump())
    layout = cp.choose_line_layout(sherbrooke)
    isa = transpile_fixed([cp.repeated_cycle_circuit(cycle, 3)], sherbrooke, layout)[0]
    sim = AerSimulator(noise_model=noise_model_of(sherbrooke, layout.physical))
    counts = sim.run(isa, shots=8000, seed_simulator=3).result().get_counts()
    heat = cp.per_cycle_heat(counts, cycle.collisions, 3, cp._bit_maps(sherbrooke, layout.physical, True))
    assert all(q_b.z >= 3 and q_a.z <= -3 for q_a, q_b in heat), heat
