"""The pump cycle as a hardware experiment: export for a backend, run, analyze (``--experiment pump``).

The circuits are those of :mod:`qpump.quantum.collision_pump` (rho_0 as a two-branch mixture on A, B;
each bath an ancilla collision model on the line a_A - A - B - a_B; the heat read on the bath side),
with beside them what the analysis needs:

- ``pump_cycle_branchK`` and ``pump_start_branchK``: the cycle, and rho_0 measured in Z (the system's
  energy at the start), per branch K of the mixture, with the branch's weight;
- ``t00_branchK_PQ``: rho_0 in the nine tomography settings (I_0 measured, not only from theory);
- ``readout_0000``, ``readout_1111``: all four qubits prepared in |0> and |1> and measured (the
  per-qubit readout calibration the bath-side bits are mitigated with).

The manifest (format ``qpump-circuits/2``, ``"experiment": "pump"``) records the collision
parameters (planned with :func:`qpump.quantum.collision_pump.plan` on a device unless given), the
line layout, the planner's table, and the predictions: exact (:func:`~.collision_pump.predict`) and
with the device's noise model (:func:`~.collision_pump.predict_on_aer`, including the energy the
device's own noise puts in, which enters the first law). ``qpump experiment run`` runs it like any
set; the counts of a cycle circuit are keyed by its registers, last first, separated by spaces
(``"post_b pre_b post_a pre_a sys"``), as Aer writes them.

The analysis reports Q_A and Q_B from the ancillas (raw and readout-mitigated per bit with the
measured calibration; standard errors from the per-shot spread, the bits of one shot being
correlated), the system's energy change, the first-law residual Delta E_sys - Q_A - Q_B - W (W from
the prediction: work is not measurable from Z bits; on a device the residual is the energy the
device's noise adds, compared with its prediction), the efficiency Q_B / (T_A I_0) with I_0 from
theory and from the t = 0 tomography, and the verdict "heat pumped from the cold bath to the hot
bath at N sigma" (N = Q_B / sigma(Q_B), mitigated).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from qiskit import ClassicalRegister, QuantumCircuit

from .. import _validate as check
from ..errors import InvalidParameterError
from ..info import mutual_information
from ..output import dumps, write_text_atomic
from ..pump import HeatPump
from . import collision_pump as cp
from .backends import DeviceSpec, check_roles, resolve_backend, transpile_fixed
from .contact import append_contact
from .preparation import preparation_of
from .tomography import SETTINGS, Estimate, measurement_circuit, setting_probabilities, state_tomography

__all__ = ["PUMP_EXPERIMENT", "export_pump_circuits", "PumpExperimentAnalysis", "analyze_pump"]

PUMP_EXPERIMENT = "pump"
DETECTION_SIGMA = 3.0
IDEAL_LINE = cp.LineLayout(0, 1, 2, 3)


def _readout_circuit(bit: str) -> QuantumCircuit:
    qc = QuantumCircuit(4, name=f"readout_{bit * 4}")
    if bit == "1":
        qc.x(range(4))
    qc.add_register(ClassicalRegister(4, "meas"))
    qc.measure(range(4), qc.cregs[0])
    return qc


def _probabilities(p: np.ndarray) -> dict[str, float]:
    return {f"{b}{a}": float(p[2 * a + b]) for a in (0, 1) for b in (0, 1)}


def export_pump_circuits(out_dir: str | os.PathLike, pump: HeatPump | None = None, *,
                         backend: str | DeviceSpec = "ideal", layout: cp.LineLayout | None = None,
                         shots: int = 10_000, cycle: cp.CollisionCycle | None = None,
                         max_two_qubit_gates: int = 40, max_mid_circuit_measurements: int = 24,
                         cycles: int = 1) -> dict:
    """Write the pump experiment for a backend into ``out_dir``; return its manifest.

    Parameters
    ----------
    out_dir : path
        Output folder (created with its first file).
    pump : HeatPump, optional
        The pump's parameters (default: the paper's).
    backend : str or DeviceSpec
        ``ideal``, ``generic``, ``fake_NAME`` or ``ibm:NAME``.
    layout : LineLayout, optional
        Physical a_A - A - B - a_B on a device (default: the line of least gate and readout error).
    shots : int
        Shots of the cycle circuits (split over the branches by weight); also the planner's shots.
    cycle : CollisionCycle, optional
        The collision parameters; default: planned on a device within the budgets, the full swap
        (n_c = 0, n_r = 1, g = pi/2) on ``ideal``.
    max_two_qubit_gates, max_mid_circuit_measurements : int
        The planner's budgets per circuit.
    cycles : int
        With more than one, also ``pump_repeated``: that many cycles in one dynamic circuit, each
        resetting and re-preparing rho_0 (:func:`~.collision_pump.repeated_cycle_circuit`).
    """
    import qiskit

    from .. import __version__
    from .export import MANIFEST_FORMAT, _write_circuit_files, to_qasm

    pump = pump if pump is not None else HeatPump()
    shots = check.positive_int("shots", shots)
    cycles = check.positive_int("cycles", cycles, 1000)
    device = backend if isinstance(backend, DeviceSpec) else resolve_backend(backend)
    table = None
    if device.backend is None:
        line = IDEAL_LINE
        cycle = cycle if cycle is not None else cp.CollisionCycle(pump)
    else:
        line = _checked_line(device.backend, layout) if layout is not None \
            else cp.choose_line_layout(device.backend)
        if cycle is None:
            chosen = cp.plan(device.backend, max_two_qubit_gates, max_mid_circuit_measurements, shots,
                             pump=pump, layout=line)
            cycle, table = chosen.cycle, chosen.format_table()
    branches = cp.cycle_circuits(cycle)
    items: list[tuple[str, QuantumCircuit, dict]] = []
    for k, b in enumerate(branches):
        b.cycle.name, b.start.name = f"pump_cycle_branch{k}", f"pump_start_branch{k}"
        items.append((b.cycle.name, b.cycle, {"kind": "pump_cycle", "branch": k, "weight": b.weight}))
        items.append((b.start.name, b.start, {"kind": "pump_start", "branch": k, "weight": b.weight}))
        basis_state = np.count_nonzero(np.abs(b.state) > 1e-12) == 1  # |00>: the contact is a phase
        if cycle.n_c == 0:  # the state after a collision-free contact: the system side of the heat
            contact = b.start.remove_final_measurements(inplace=False)
            contact.name = f"pump_contact_branch{k}"
            contact.add_register(ClassicalRegister(2, "sys"))
            if not basis_state:
                append_contact(contact, pump.tau, pump.omega_c, pump.v_phase, qubits=(0, 1))
            contact.measure([0, 1], contact.cregs[-1])
            items.append((contact.name, contact, {"kind": "pump_contact", "branch": k, "weight": b.weight}))
    if cycles > 1:
        repeated = cp.repeated_cycle_circuit(cycle, cycles)
        repeated.name = "pump_repeated"
        items.append((repeated.name, repeated, {"kind": "pump_repeated", "weight": 1.0, "cycles": cycles}))
    prep = preparation_of(cycle.correlation(), "mixture")
    for k, branch in enumerate(prep.branches):
        for setting in SETTINGS:
            qc = measurement_circuit(branch.circuit, setting)
            qc.name = f"t00_branch{k}_{setting}"
            state = np.outer(branches[k].state, branches[k].state.conj())
            items.append((qc.name, qc, {"kind": "contact", "branch": k, "weight": branch.weight,
                                        "setting": setting, "time_index": 0, "t": 0.0,
                                        "expected": {"probabilities": _probabilities(
                                            setting_probabilities(state, setting))}}))
    for bit in "01":
        qc = _readout_circuit(bit)
        items.append((qc.name, qc, {"kind": "readout", "prepared": bit * 4, "weight": 1.0}))
    circuits = [qc for _, qc, _ in items]
    if device.backend is None:
        isa = [to_qasm(qc)[1] if qc.num_clbits == 2 and qc.num_qubits == 2 else qc for qc in circuits]
    else:
        wide = [qc if qc.num_qubits == 4 else _on_four(qc) for qc in circuits]
        isa = transpile_fixed(wide, device.backend, line)
    out = Path(out_dir)
    files = {}
    for (name, qc, meta), compiled in zip(items, isa, strict=True):
        _write_circuit_files(out, name, qc, compiled, device)
        files[name] = {"qasm": f"{name}.qasm", "qpy": f"{name}.qpy", **meta,
                       "suggested_shots": max(1, int(round(shots * meta["weight"]))),
                       "two_qubit_gates": int(sum(1 for i in compiled.data if i.operation.num_qubits == 2
                                                  and i.operation.name not in ("barrier", "measure"))),
                       "mid_circuit_measurements": (_mid_circuit_measurements(compiled, (line.A, line.B))
                                                    if meta["kind"].startswith("pump") else 0),
                       "depth": int(compiled.depth())}
        if device.backend is not None:
            files[name]["isa_qpy"] = f"isa/{name}.qpy"
    exact = cp.predict(cycle)
    predictions: dict[str, Any] = {
        "exact": {"Q_A": float(exact.heat[0]), "Q_B": float(exact.heat[1]), "work": exact.work,
                  "delta_E_sys": exact.delta_energy_system, "first_law_residual": 0.0,
                  "I0": float(mutual_information(exact.rho_start))}}
    if device.backend is not None and device.simulated:
        noisy = cp.predict_on_aer(cycle, device.backend, line, with_start=True)
        predictions["noisy"] = {"Q_A": float(noisy["heat"][0]), "Q_B": float(noisy["heat"][1]),
                                "Q_A_raw": float(noisy["heat_raw"][0]),
                                "Q_B_raw": float(noisy["heat_raw"][1]),
                                "first_law_residual": float(noisy["residual"])}
    g, g_relax = cycle.strengths, cycle.relax_strengths
    manifest = {
        "format": MANIFEST_FORMAT,
        "experiment": PUMP_EXPERIMENT,
        "generator": {"qpump": __version__, "qiskit": qiskit.__version__},
        "parameters": {**{k: getattr(pump, k) for k in ("TA", "TB", "omega_c", "delta", "tau")},
                       "phi_v": pump.v_phase, "phi_chi": pump.v_phase - pump.delta, "times": [0.0]},
        "collision": {"n_c": cycle.n_c, "n_r": cycle.n_r, "g": list(g), "g_relax": list(g_relax),
                      "collisions": cycle.collisions, "cycles": cycles,
                      "registers": ["sys", "pre_a", "post_a", "pre_b", "post_b"]},
        "planner": table,
        # The bath ancillas are measured mid-circuit and reset (the line has no spare qubit for fresh
        # ones); what that costs on the device, from its Target:
        "measurement_costs": (cp.measurement_costs(device.backend, line, cycle)
                              if device.backend is not None else None),
        "backend": device.describe(),
        "layout": line.as_dict(),
        "shots_per_setting": shots,
        "conventions": {
            "qubits": "logical 0 = A, 1 = B, 2 = a_A, 3 = a_B (bath ancillas); 'layout' gives physical ones",
            "cycle_counts": "keys list the registers last first, separated by spaces: "
                            "'post_b pre_b post_a pre_a sys'; sys = 'b a'",
            "heat": "Q_K = sum over collisions of (pre - post) bits of a_K: the heat drawn from bath K",
        },
        "predictions": predictions,
        "files": files,
    }
    write_text_atomic(out / "manifest.json", dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def _mid_circuit_measurements(circuit: QuantumCircuit, system: tuple[int, int]) -> int:
    """Measurements before the end of the circuit: all but the final ones of A and B (``system``,
    their indices in ``circuit``): every ancilla record, and A, B between repeated cycles."""
    last: dict[int, int] = {}
    for k, inst in enumerate(circuit.data):
        for q in inst.qubits:
            last[circuit.find_bit(q).index] = k
    return sum(1 for k, inst in enumerate(circuit.data) if inst.operation.name == "measure"
               and not (circuit.find_bit(inst.qubits[0]).index in system
                        and last[circuit.find_bit(inst.qubits[0]).index] == k))


def _checked_line(backend, line: cp.LineLayout) -> cp.LineLayout:
    """A user's line a_A - A - B - a_B: existing, distinct qubits, each neighbour pair coupled."""
    from .backends import _edge_errors

    roles = {"a_A": line.a_A, "A": line.A, "B": line.B, "a_B": line.a_B}
    check_roles(backend, roles)
    edges = _edge_errors(backend)
    for (r1, q1), (r2, q2) in zip(list(roles.items()), list(roles.items())[1:], strict=False):
        if (min(q1, q2), max(q1, q2)) not in edges:
            raise InvalidParameterError(f"--layout: {r1} = {q1} and {r2} = {q2} are not connected on "
                                        f"{backend.name} (the pump needs the line a_A - A - B - a_B)")
    return line


def _on_four(qc: QuantumCircuit) -> QuantumCircuit:
    """A two-qubit measured circuit widened to the line's four logical qubits (A, B first)."""
    wide = QuantumCircuit(4, name=qc.name)
    for creg in qc.cregs:
        wide.add_register(creg)
    wide.compose(qc, qubits=[0, 1], clbits=qc.clbits, inplace=True)
    return wide


# ---------------------------------------------------------------------------------------------
# Analysis
# ---------------------------------------------------------------------------------------------

@dataclass
class PumpExperimentAnalysis:
    """The bath-side heat of a measured pump cycle, its first law, efficiency and verdict.

    ``raw`` and ``mitigated`` map Q_A, Q_B, delta_E_sys, first_law_residual to :class:`Estimate`;
    ``I0`` holds the theory value and the t = 0 tomography's estimate.
    """

    parameters: dict
    backend: dict
    layout: dict
    collision: dict
    raw: dict[str, Estimate]
    mitigated: dict[str, Estimate]
    predictions: dict
    I0: dict[str, Any]
    shots: int
    per_cycle: dict[str, list[tuple[Estimate, Estimate]]] = field(default_factory=dict)
    system_side: dict[str, dict[str, Estimate]] = field(default_factory=dict)

    @property
    def significance(self) -> float:
        return self.mitigated["Q_B"].z

    @property
    def verdict(self) -> str:
        q = self.mitigated["Q_B"]
        ta, tb = self.parameters["TA"], self.parameters["TB"]
        if ta <= tb:
            return (f"Q_B = {q.value:+.4f} +/- {q.error:.4f} ({q.z:.1f} sigma) with T_A = {ta:g} <= "
                    f"T_B = {tb:g}: no gradient to pump against")
        if q.z >= DETECTION_SIGMA and self.mitigated["Q_A"].value < 0:
            return (f"heat pumped from the cold bath to the hot bath at {q.z:.1f} sigma (bath side, "
                    f"readout-mitigated: Q_B = {q.value:+.4f} +/- {q.error:.4f}, Q_A = "
                    f"{self.mitigated['Q_A'].value:+.4f} +/- {self.mitigated['Q_A'].error:.4f})")
        return f"no pumping detected: Q_B = {q.value:+.4f} +/- {q.error:.4f} ({q.z:.1f} sigma, needs >= 3)"

    def efficiency(self, column: str = "mitigated") -> dict[str, Any]:
        """Q_B / (T_A I_0) with I_0 from theory and from the tomography, and the Carnot bound."""
        q, ta, tb = getattr(self, column)["Q_B"], self.parameters["TA"], self.parameters["TB"]
        measured = self.I0["tomography"]
        out = {"theory_I0": Estimate(q.value / (ta * self.I0["theory"]), q.error / (ta * self.I0["theory"])),
               "carnot_bound": tb / (ta - tb) if ta > tb else None}
        ratio = q.value / (ta * measured.value)
        out["tomography_I0"] = Estimate(ratio, abs(ratio) * math.hypot(q.error / q.value if q.value else 0.0,
                                                                         measured.error / measured.value))
        return out

    def to_json(self) -> dict:
        def est(e: Estimate) -> dict:
            return {"value": e.value, "error": e.error}

        eff = self.efficiency()
        return {
            "format": "qpump-pump-analysis/1", "parameters": self.parameters, "backend": self.backend,
            "layout": self.layout, "collision": self.collision, "shots": self.shots,
            "raw": {k: est(v) for k, v in self.raw.items()},
            "mitigated": {k: est(v) for k, v in self.mitigated.items()},
            "predictions": self.predictions,
            "I0": {"theory": self.I0["theory"], "tomography": est(self.I0["tomography"])},
            "efficiency": {"theory_I0": est(eff["theory_I0"]), "tomography_I0": est(eff["tomography_I0"]),
                           "carnot_bound": eff["carnot_bound"]},
            "verdict": {"line": self.verdict, "significance": self.significance,
                        "detected": self.verdict.startswith("heat pumped")},
            "per_cycle": {column: [{"Q_A": est(q_a), "Q_B": est(q_b)} for q_a, q_b in rows]
                          for column, rows in self.per_cycle.items()},
            "system_side": {column: {k: est(v) for k, v in heat.items()}
                            for column, heat in self.system_side.items()},
        }

    def summary_text(self) -> str:
        p, c = self.parameters, self.collision
        lines = [f"pump experiment: T_A = {p['TA']:g}, T_B = {p['TB']:g}, Omega = {p['omega_c']:g}, "
                 f"delta = {p['delta']:.4g}, tau = {p['tau']:g}; backend {self.backend.get('name')}, layout "
                 f"{self.layout}; n_c = {c['n_c']}, n_r = {c['n_r']}, g/pi = "
                 f"{', '.join(f'{x / math.pi:.3f}' for x in c['g'])}; {self.shots} shots", "",
                 f"{'quantity':<20} {'mitigated':>20} {'raw':>20} {'exact':>9} {'noisy':>9}"]
        exact, noisy = self.predictions["exact"], self.predictions.get("noisy", {})
        def cell(value: float | None) -> str:
            return f"{value:+9.4f}" if value is not None else f"{'n/a':>9}"

        for key in ("Q_A", "Q_B", "delta_E_sys", "first_law_residual"):
            m, r = self.mitigated[key], self.raw[key]
            lines.append(f"{key:<20} {m.value:+10.4f} +/- {m.error:6.4f} {r.value:+10.4f} +/- {r.error:6.4f} "
                         f"{cell(exact.get(key))} {cell(noisy.get(key))}")
        if self.system_side:
            for key in ("Q_A", "Q_B"):
                m, r = self.system_side["mitigated"][key], self.system_side["raw"][key]
                lines.append(f"{key + ' (system side)':<20} {m.value:+10.4f} +/- {m.error:6.4f} "
                             f"{r.value:+10.4f} +/- {r.error:6.4f} {cell(exact.get(key))}")
        eff = self.efficiency()
        bound = eff["carnot_bound"]
        lines += ["", f"I_0 = {self.I0['theory']:.4f} (theory), {self.I0['tomography'].value:.4f} +/- "
                      f"{self.I0['tomography'].error:.4f} (t = 0 tomography, raw)",
                  f"efficiency Q_B/(T_A I_0) = {eff['theory_I0'].value:.4f} +/- {eff['theory_I0'].error:.4f} "
                  f"(theory I_0), {eff['tomography_I0'].value:.4f} +/- {eff['tomography_I0'].error:.4f} "
                  f"(measured I_0); Carnot bound " + (f"{bound:.4f}" if bound is not None else "n/a"),
                  "", self.verdict]
        if self.per_cycle:
            lines.insert(-2, "")
            for index, (q_a, q_b) in enumerate(self.per_cycle["mitigated"]):
                lines.insert(-2, f"cycle {index + 1} of one circuit (mitigated): Q_A = {q_a.value:+.4f} +/- "
                                 f"{q_a.error:.4f}, Q_B = {q_b.value:+.4f} +/- {q_b.error:.4f} "
                                 f"({q_b.z:.1f} sigma)")
        return "\n".join(lines)

    def _accumulated(self, ax) -> None:
        """Fig. 6's accumulated heat: the cycles of the one-circuit run over the exact line."""
        values, errors = _accumulated_heat(self.per_cycle["mitigated"])
        n = np.arange(1, len(values) + 1)
        exact = self.predictions["exact"]
        for k, (key, color) in enumerate((("Q_A", "tab:red"), ("Q_B", "tab:blue"))):
            ax.plot(np.arange(0, len(values) + 1), exact[key] * np.arange(0, len(values) + 1), color=color,
                    lw=1, label=f"{key} exact")
            ax.errorbar(n, values[:, k], yerr=errors[:, k], fmt="o", color=color, label=f"{key} measured")
        ax.axhline(0.0, color="k", lw=0.6)
        ax.set_xlabel("cycles (one circuit, re-prepared by mid-circuit resets)")
        ax.set_ylabel(r"accumulated heat drawn [$\hbar\omega$]")
        ax.legend(fontsize="x-small")

    def figure(self):
        """Fig. 6-style: heat drawn from each bath over the cycle, data with error bars over the
        exact and noisy predictions."""
        from ..figures import _pyplot

        plt = _pyplot()
        if self.per_cycle:
            fig, (ax, cum) = plt.subplots(1, 2, figsize=(10.0, 4.0), constrained_layout=True)
            self._accumulated(cum)
        else:
            fig, ax = plt.subplots(figsize=(6.0, 4.0), constrained_layout=True)
        exact, noisy = self.predictions["exact"], self.predictions.get("noisy")
        for k, (key, color) in enumerate((("Q_A", "tab:red"), ("Q_B", "tab:blue"))):
            ax.bar(k - 0.2, exact[key], width=0.35, color=color, alpha=0.35, label=f"{key} exact")
            if noisy is not None:
                ax.bar(k + 0.2, noisy[key], width=0.35, color=color, alpha=0.15, hatch="//",
                       label=f"{key} noisy prediction")
            for column, marker, dx in (("mitigated", "o", -0.05), ("raw", "s", 0.05)):
                e = getattr(self, column)[key]
                ax.errorbar(k + dx, e.value, yerr=e.error, fmt=marker, color=color,
                            mfc=color if column == "mitigated" else "white", label=f"{key} {column}")
        ax.axhline(0.0, color="k", lw=0.6)
        ax.set_xticks([0, 1], ["bath A (hot)", "bath B (cold)"])
        ax.set_ylabel(r"heat drawn from the bath per cycle [$\hbar\omega$]")
        ax.legend(fontsize="x-small", ncol=2)
        ax.set_title(self.verdict.split(" (")[0], fontsize="small")
        return fig


def _accumulated_heat(rows: list[tuple[Estimate, Estimate]]) -> tuple[np.ndarray, np.ndarray]:
    """Heat drawn from each bath accumulated over the cycles (n, 2) with its errors (independent
    cycles: the variances add)."""
    values = np.cumsum([[q_a.value, q_b.value] for q_a, q_b in rows], axis=0)
    errors = np.sqrt(np.cumsum([[q_a.error**2, q_b.error**2] for q_a, q_b in rows], axis=0))
    return values, errors


def _system_energies(counts: dict[str, int], maps: list[tuple[float, float]]
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(E_A, E_B) and the variances of their means from the final ``sys`` bits (the rightmost
    register of a key), each bit mapped by (offset, scale) of its qubit."""
    total = sum(counts.values())
    values = np.array([[cp._mapped_bit(key.split()[-1], q, maps[q]) - 0.5 for q in (0, 1)] for key in counts])
    weights = np.array([counts[key] for key in counts], dtype=float)
    mean = weights @ values / total
    var = weights @ (values - mean) ** 2 / max(total - 1.0, 1.0) / total
    return mean, var


def _bits(counts: dict[str, int], width: int) -> np.ndarray:
    """(P(bit i = 1)) for i < width from counts of a single register (bit i is the i-th from the right)."""
    total = sum(counts.values())
    ones = np.zeros(width)
    for key, n in counts.items():
        bits = key.replace(" ", "")
        for i in range(width):
            ones[i] += n * (bits[-1 - i] == "1")
    return ones / total


def analyze_pump(counts: dict, manifest: dict) -> PumpExperimentAnalysis:
    """Analyze the counts of a pump experiment (already checked against ``manifest``)."""
    files = manifest["files"]
    coll = manifest["collision"]
    p0, p1 = _bits(counts["counts"]["readout_0000"], 4), _bits(counts["counts"]["readout_1111"], 4)
    raw_maps = [(0.0, 1.0)] * 4
    scales = p1 - p0
    if np.any(scales <= 0.05):
        raise InvalidParameterError("the readout calibration reads a qubit no better than chance: readout "
                                    "mitigation is impossible")
    mitigated_maps = [(float(p0[i]), float(scales[i])) for i in range(4)]
    work = float(manifest["predictions"]["exact"]["work"])
    branches = sorted({e["branch"] for e in files.values() if e["kind"] == "pump_cycle"})
    columns = {}
    for column, maps in (("raw", raw_maps), ("mitigated", mitigated_maps)):
        mean_c, var_c, mean_s, var_s = np.zeros(4), np.zeros(4), 0.0, 0.0
        for k in branches:
            weight = files[f"pump_cycle_branch{k}"]["weight"]
            m, v = cp._mean_var(*cp._per_shot(counts["counts"][f"pump_cycle_branch{k}"], coll["collisions"],
                                              maps, True))
            ms, vs = cp._mean_var(*cp._per_shot(counts["counts"][f"pump_start_branch{k}"], 0, maps, False))
            mean_c += weight * m
            var_c += weight**2 * v
            mean_s += weight * ms[2]
            var_s += weight**2 * vs[2]
        columns[column] = {
            "Q_A": Estimate(float(mean_c[0]), math.sqrt(var_c[0])),
            "Q_B": Estimate(float(mean_c[1]), math.sqrt(var_c[1])),
            "delta_E_sys": Estimate(float(mean_c[2] - mean_s), math.sqrt(var_c[2] + var_s)),
            "first_law_residual": Estimate(float(mean_c[3] - mean_s - work), math.sqrt(var_c[3] + var_s)),
        }
    tomography_data = {s: [(files[f"t00_branch{k}_{s}"]["weight"], counts["counts"][f"t00_branch{k}_{s}"])
                           for k in branches] for s in SETTINGS}
    tomo = state_tomography(tomography_data, model="x_state")
    system_side: dict[str, dict[str, Estimate]] = {}
    if all(f"pump_contact_branch{k}" in files for k in branches):
        # n_c = 0: the heat each bath gives is what its qubit gains in the relaxation collisions,
        # E_K(end) - E_K(after the contact), measured on the system, independently of the ancillas.
        for column, maps in (("raw", raw_maps), ("mitigated", mitigated_maps)):
            heat, var = np.zeros(2), np.zeros(2)
            for k in branches:
                weight = files[f"pump_cycle_branch{k}"]["weight"]
                end, var_end = _system_energies(counts["counts"][f"pump_cycle_branch{k}"], maps)
                after, var_after = _system_energies(counts["counts"][f"pump_contact_branch{k}"], maps)
                heat += weight * (end - after)
                var += weight**2 * (var_end + var_after)
            system_side[column] = {"Q_A": Estimate(float(heat[0]), math.sqrt(var[0])),
                                   "Q_B": Estimate(float(heat[1]), math.sqrt(var[1]))}
    per_cycle = {}
    if "pump_repeated" in files:
        for column, maps in (("raw", raw_maps), ("mitigated", mitigated_maps)):
            per_cycle[column] = cp.per_cycle_heat(counts["counts"]["pump_repeated"], coll["collisions"],
                                                  files["pump_repeated"]["cycles"], maps)
    return PumpExperimentAnalysis(
        parameters=manifest["parameters"], backend=manifest["backend"], layout=manifest["layout"],
        collision=coll, raw=columns["raw"], mitigated=columns["mitigated"],
        predictions=manifest["predictions"],
        I0={"theory": manifest["predictions"]["exact"]["I0"], "tomography": tomo.mutual_information},
        shots=int(sum(counts["shots"].values())), per_cycle=per_cycle, system_side=system_side)
