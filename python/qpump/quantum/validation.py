"""Cross-validation rows of the Qiskit layer, for the ``qpump crossval`` report.

Each row is a dict ``{"quantity": str, "max_deviation": float, "tolerance": float or None,
"passed": bool or None}``; tolerance and passed are None where the row is a measurement (the splitting
error of the Strang steps, pump heat against the exact master equation), not a check.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence

import numpy as np

from ..closed import pair_hamiltonian, rho_closed_form
from ..errors import MissingExtraError
from ..lindblad import LindbladSolver, LocalBath
from ..pump import HeatPump
from ..states import correlation_matrix, lambdas, optimal_correlation
from ._aer import density_matrices_of
from .aer_pump import (
    evolve_on_aer,
    evolve_split_reference,
    noise_free_states,
    run_aer_pump,
    run_split_reference_pump,
)
from .contact import circuit_operator, contact_circuit, contact_operator
from .preparation import preparation_of

__all__ = ["row", "quantum_rows", "splitting_order", "pump_rows", "export_rows", "collision_pump_rows"]

TOL_EXACT = 1e-12
TOL_NOISE_FREE = 1e-9
TOL_MATCHED = 1e-8


def row(quantity: str, deviation: float, tolerance: float | None) -> dict:
    """One report row; ``passed`` is None when ``tolerance`` is None (a measurement)."""
    deviation = float(deviation)
    return {"quantity": quantity, "max_deviation": deviation, "tolerance": tolerance,
            "passed": None if tolerance is None else bool(deviation <= tolerance)}


def _generic_correlation(TA: float, TB: float):
    """A non-optimal admissible X state (rank 4) that exercises every branch of the preparation."""
    lam = lambdas(TA, TB)
    chi11 = -0.5 * lam[3]
    chi23 = 0.5 * math.sqrt((lam[1] - chi11) * (lam[2] - chi11))
    return correlation_matrix(TA, TB, chi11, chi23, 0.7, require_entangled=False)


def _preparation_rows(TA: float, TB: float) -> list[dict]:
    rows = []
    for label, corr in (("optimal rho0 (Eq. 10)", optimal_correlation(TA, TB)),
                        ("generic X state", _generic_correlation(TA, TB))):
        for method in ("ancilla", "mixture"):
            prep = preparation_of(corr, method)
            states = density_matrices_of([b.circuit for b in prep.branches])
            rho = sum(b.weight * s for b, s in zip(prep.branches, states, strict=True))
            cx = "+".join(str(c) for c in prep.cx_counts())
            rows.append(row(f"preparation of {label}, {method} ({prep.num_ancillas} ancilla, CX {cx}) "
                            "vs qpump.states", np.max(np.abs(rho - corr.state())), TOL_EXACT))
    return rows


def quantum_rows(TA: float = 2.0, TB: float = 1.0, omega_c: float = 0.1, delta: float = -math.pi / 2,
                 kappa_a: float = 0.01, kappa_b: float = 0.023, gamma: float = 2.0, tau: float = 6.1,
                 dt: float = 0.05, times: Sequence[float] | None = None) -> list[dict]:
    """Rows: preparations vs qpump.states, contact vs closed form, Aer noise-free vs closed form, collision
    bath vs channel, Aer with baths vs lindblad.py at matched steps, and the splitting error vs exact.

    Parameters
    ----------
    TA, TB, omega_c, delta : float
        The pair (phi_chi = 0, phi_V = delta).
    kappa_a, kappa_b, gamma : float
        The Drude-Lorentz baths (weak-coupling rates of lindblad.transition_rates).
    tau : float
        Contact time of the bath comparisons.
    dt : float
        Target Strang step.
    times : sequence of float, optional
        Times of the noise-free comparison (default 0..4 tau in 9 points).
    """
    from .noise import collision_circuit, gad_parameters, gad_superoperator

    grid = np.linspace(0.0, 4 * tau, 9) if times is None else np.asarray(times, dtype=float)
    rows = _preparation_rows(TA, TB)
    dev = max(np.max(np.abs(circuit_operator(contact_circuit(t, omega_c, delta))
                            - contact_operator(t, omega_c, delta))) for t in grid)
    rows.append(row("contact circuit exp(-i t H) vs exact exponential (operator)", dev, TOL_EXACT))
    corr = optimal_correlation(TA, TB)
    prefix = preparation_of(corr, "ancilla").branches[0].circuit
    aer = noise_free_states(prefix, grid, omega_c, delta)
    closed_form = rho_closed_form(grid, TA, TB, omega_c, delta, corr)
    rows.append(row("Aer noise-free rho(t) vs closed form (App. B)", np.max(np.abs(aer - closed_form)),
                    TOL_NOISE_FREE))
    baths = [LocalBath(0, kappa_a, gamma, TA), LocalBath(1, kappa_b, gamma, TB)]
    rows.append(row("collision-model bath vs GAD channel (Choi matrix)", _collision_deviation(baths, dt,
                    collision_circuit, gad_parameters, gad_superoperator), TOL_EXACT))
    n = max(1, math.ceil(tau / dt - 1e-9))
    rho0 = corr.state()
    seg = evolve_on_aer(rho0, omega_c, delta, baths, tau, n)
    ref = evolve_split_reference(rho0, omega_c, delta, baths, tau, n)
    rows.append(row(f"Aer with bath channels vs lindblad.py, matched Strang steps (rho, {n} steps)",
                    np.max(np.abs(seg.rho - ref.rho)), TOL_MATCHED))
    rows.append(row("Aer with bath channels vs lindblad.py, matched Strang steps (heat per bath)",
                    np.max(np.abs(seg.heat - ref.heat)), TOL_MATCHED))
    exact = LindbladSolver(pair_hamiltonian(omega_c, delta), baths).run(rho0, seg.times)
    rows.append(row(f"Aer with baths vs exact lindblad.py: splitting error of rho (dt = {tau / n:.3g})",
                    np.max(np.abs(seg.rho - exact.rho)), None))
    rows.append(row(f"Aer with baths vs exact lindblad.py: splitting error of the heat (dt = {tau / n:.3g})",
                    np.max(np.abs(seg.heat - exact.heat)), None))
    order = splitting_order(rho0, omega_c, delta, baths, tau, n)
    rows.append(row(f"Strang splitting order from dt = {tau / n:.3g}, {tau / (2 * n):.3g}: |order - 2|",
                    abs(order - 2.0), 0.1))
    return rows


def splitting_order(rho0: np.ndarray, omega_c: float, phi_v: float, baths: Sequence[LocalBath],
                    duration: float, n_steps: int) -> float:
    """Observed order log2(err(dt) / err(dt/2)) of the Strang steps against the exact master equation,
    from the final state after ``duration`` with ``n_steps`` and ``2 n_steps`` steps (2 expected)."""
    exact = LindbladSolver(pair_hamiltonian(omega_c, phi_v), list(baths)).run(rho0, np.array([0.0, duration]))
    errors = [np.max(np.abs(evolve_split_reference(rho0, omega_c, phi_v, baths, duration, n).rho[-1]
                            - exact.rho[-1])) for n in (n_steps, 2 * n_steps)]
    return float(np.log2(errors[0] / errors[1]))


def _collision_deviation(baths, dt, collision_circuit, gad_parameters, gad_superoperator) -> float:
    """Max |Choi(collision on Aer) - Choi(GAD)| over the baths, the reference qubit maximally entangled."""
    from qiskit import QuantumCircuit

    from ._aer import add_save_density_matrix, run_saved, swap_order

    dev = 0.0
    for bath in baths:
        qc = QuantumCircuit(4)
        qc.h(3)
        qc.cx(3, 0)
        qc.compose(collision_circuit(bath, dt), [0, 1, 2], inplace=True)
        add_save_density_matrix(qc, (0, 3), "choi")
        choi = swap_order(np.asarray(run_saved(qc)[0]["choi"]))  # order (system, reference)
        superop = gad_superoperator(*gad_parameters(bath, dt))
        # Choi = sum_ij E(|i><j|) (x) |i><j| / 2 in the order (system, reference).
        expected = np.zeros((4, 4), dtype=complex)
        for i in range(2):
            for j in range(2):
                unit = np.zeros((2, 2))
                unit[i, j] = 1.0
                image = (superop @ unit.reshape(-1)).reshape(2, 2)
                expected += np.kron(image, unit) / 2
        dev = max(dev, float(np.max(np.abs(choi - expected))))
    return dev


def pump_rows(pump: HeatPump | None = None, dt: float = 0.05,
              relax_steps: int = 20) -> tuple[list[dict], dict]:
    """Rows of the pump on Aer against the numpy split-step pump (matched steps) and lindblad.py's exact pump.

    Returns
    -------
    rows : list of dict
    values : dict
        Q_A and Q_B per cycle on Aer (lists), for a side-by-side table with HEOM.
    """
    pump = pump if pump is not None else HeatPump(solver="lindblad")
    aer = run_aer_pump(pump, dt, relax_steps)
    split = run_split_reference_pump(pump, dt, relax_steps)
    exact = HeatPump(**{**pump.params(), "solver": "lindblad"}).run(normal_reference=False)
    q_aer = np.array([[c.Q_A, c.Q_B] for c in aer.cycles])
    q_split = np.array([[c.Q_A, c.Q_B] for c in split.cycles])
    q_exact = np.array([[c.Q_A, c.Q_B] for c in exact.cycles])
    rows = [
        row("pump on Aer vs lindblad.py split steps: rho at every step", np.max(np.abs(aer.rho - split.rho)),
            TOL_MATCHED),
        row("pump on Aer vs lindblad.py split steps: Q_A, Q_B per cycle", np.max(np.abs(q_aer - q_split)),
            TOL_MATCHED),
        row(f"pump on Aer vs exact lindblad.py pump: Q_A, Q_B per cycle (dt = {aer.params['dt']:.3g})",
            np.max(np.abs(q_aer - q_exact)), None),
    ]
    values = {"Q_A": q_aer[:, 0].tolist(), "Q_B": q_aer[:, 1].tolist(),
              "cop_ratio": [c.Q_B / (pump.TA * c.I0) for c in aer.cycles]}
    return rows, values


def export_rows(circuits_dir=None, TA: float = 2.0, TB: float = 1.0, omega_c: float = 0.1,
                delta: float = -math.pi / 2, times: Sequence[float] | None = None) -> list[dict]:
    """Rows: every exported circuit (QASM and QPY, loaded back) vs its in-memory original and vs the
    manifest's exact outcome probabilities, on Aer. Without ``circuits_dir`` a fresh set is exported to a
    temporary directory."""
    from .export import circuit_set, export_circuits, load_exported

    with tempfile.TemporaryDirectory() as tmp:
        root = circuits_dir if circuits_dir is not None else tmp
        if circuits_dir is None:
            export_circuits(tmp, TA, TB, omega_c, delta, times)
        manifest, loaded = load_exported(root)
        params = manifest["parameters"]
        items, _ = circuit_set(params["TA"], params["TB"], params["omega_c"], params["delta"],
                               params["times"])
        names = [item.name for item in items]
        original = density_matrices_of([item.circuit for item in items])
        rows = []
        for fmt in ("qasm", "qpy"):
            states = density_matrices_of([loaded[n][fmt] for n in names])
            dev = max(float(np.max(np.abs(a - b))) for a, b in zip(states, original, strict=True))
            prob = 0.0
            for name, rho in zip(names, states, strict=True):
                expected = manifest["files"][name]["expected"]["probabilities"]
                p = np.array([expected[f"{b}{a}"] for a in (0, 1) for b in (0, 1)])
                prob = max(prob, float(np.max(np.abs(np.real(np.diag(rho)) - p))))
            rows.append(row(f"exported {fmt.upper()} circuits ({len(names)}) vs in-memory originals (rho)",
                            dev, TOL_NOISE_FREE))
            rows.append(row(f"exported {fmt.upper()} circuits vs manifest expected probabilities", prob,
                            TOL_NOISE_FREE))
    return rows


def collision_pump_rows(pump: HeatPump | None = None, *, device: str | None = "fake_sherbrooke",
                        shots: int = 10_000, seed: int = 7) -> list[dict]:
    """Rows of the pump cycle with collision-model baths (:mod:`qpump.quantum.collision_pump`).

    The cycle's circuits on noise-free Aer vs its exact prediction; the continuum limit vs the
    local master equation (the measured order of the state after the contact, expected 2); and on a
    fake device's noise with ``shots``, the bath-side Q_A, Q_B (readout-mitigated) against the
    device's noisy prediction as z-scores (``device=None`` or a missing hardware extra skips it).
    """
    from . import collision_pump as cp

    pump = pump if pump is not None else HeatPump()
    cycle = cp.CollisionCycle(pump, n_c=2, n_r=1, g=0.6)
    exact = cp.predict(cycle)
    aer = cp.predict_on_aer(cycle)
    rows = [row("collision-bath pump cycle (n_c = 2, n_r = 1, g = 0.6) on Aer vs its exact prediction: "
                "Q_A, Q_B", np.max(np.abs(np.asarray(aer["heat"]) - exact.heat)), TOL_NOISE_FREE)]
    reference = cp.master_equation_contact(pump)
    errors = [np.max(np.abs(cp.predict(cp.CollisionCycle.continuum(pump, n)).rho_contact - reference["rho"]))
              for n in (20, 40)]
    rows.append(row("collision-bath contact vs lindblad.py, continuum limit: measured order in dt "
                    f"(rho after the contact; error {errors[1]:.2g} at n_c = 40)",
                    math.log2(errors[0] / errors[1]), None))
    if device is None:
        return rows
    try:
        from .backends import resolve_backend

        backend = resolve_backend(device).backend
    except MissingExtraError:
        return rows
    layout = cp.choose_line_layout(backend)
    planned = cp.CollisionCycle(pump)  # the planner's choice within any budget on these devices
    run = cp.run_sampled(planned, shots, backend=backend, layout=layout, seed=seed, mitigate=True)
    noisy = cp.predict_on_aer(planned, backend, layout)
    z = max(abs(run.heat_a.value - noisy["heat"][0]) / run.heat_a.error,
            abs(run.heat_b.value - noisy["heat"][1]) / run.heat_b.error)
    rows.append(row(f"collision-bath pump on {device} noise, {shots} shots, mitigated: Q_A "
                    f"{run.heat_a.value:+.4f}, Q_B {run.heat_b.value:+.4f} vs noisy prediction (largest |z|)",
                    z, None))
    return rows
