"""The pump cycle as a hardware experiment through the command line: export (planned on a device),
run, analyze; the bath-side heat, the first law and the verdict."""

import json
import math

import pytest

from qpump.cli import main
from qpump.quantum.experiment import _is_dynamic
from qpump.quantum.export import load_exported


def _strict(text: str) -> dict:
    def refuse(constant):
        raise ValueError(constant)

    return json.loads(text, parse_constant=refuse)


def _pump_experiment(tmp_path, capsys, backend: str, shots: int, cycles: int = 1) -> tuple[dict, dict]:
    circuits, counts, out = tmp_path / "circuits", tmp_path / "counts.json", tmp_path / "analysis"
    assert main(["circuits", "export", "--experiment", "pump", "--backend", backend, "--cycles", str(cycles),
                 "-o", str(circuits)]) == 0
    assert main(["experiment", "run", str(circuits), "--shots", str(shots), "-o", str(counts)]) == 0
    capsys.readouterr()
    assert main(["experiment", "analyze", str(counts), "-o", str(out), "--json"]) == 0
    analysis = _strict(capsys.readouterr().out)
    assert (out / "fig6_experiment.png").stat().st_size > 10_000 and (out / "fig6_experiment.pdf").exists()
    manifest, loaded = load_exported(circuits)
    return analysis, {"manifest": manifest, "circuits": loaded}


def test_the_ideal_pump_experiment_measures_the_exact_heat_and_closes_the_first_law(tmp_path, capsys):
    analysis, exported = _pump_experiment(tmp_path, capsys, "ideal", 8000, cycles=3)
    exact = exported["manifest"]["predictions"]["exact"]
    # three cycles in one circuit, each re-prepared by mid-circuit resets: each pumps as one cycle
    assert exported["manifest"]["files"]["pump_repeated"]["mid_circuit_measurements"] == 3 * 6 - 2
    assert len(analysis["per_cycle"]["mitigated"]) == 3
    for row in analysis["per_cycle"]["mitigated"]:
        for key in ("Q_A", "Q_B"):
            assert abs(row[key]["value"] - exact[key]) < 3 * row[key]["error"], (key, row)
    for key in ("Q_A", "Q_B"):
        estimate = analysis["mitigated"][key]
        assert abs(estimate["value"] - exact[key]) < 3 * estimate["error"], (key, estimate, exact[key])
    # the system side (what each qubit gains in the relaxation) measures the same heat independently
    for key in ("Q_A", "Q_B"):
        system = analysis["system_side"]["mitigated"][key]
        assert abs(system["value"] - exact[key]) < 3 * system["error"], (key, system)
    # every circuit conserves the number of excitations: without noise the law holds shot by shot
    assert abs(analysis["mitigated"]["first_law_residual"]["value"]) < 1e-12
    assert analysis["verdict"]["detected"] and analysis["verdict"]["line"].startswith("heat pumped")
    i0 = analysis["I0"]
    assert abs(i0["tomography"]["value"] - i0["theory"]) < 3 * i0["tomography"]["error"]
    assert i0["theory"] == pytest.approx(0.595453, abs=1e-6)


def test_the_pump_on_fake_sherbrooke_is_planned_detected_and_its_first_law_closes(tmp_path, capsys):
    analysis, exported = _pump_experiment(tmp_path, capsys, "fake_sherbrooke", 10000)
    manifest = exported["manifest"]
    assert manifest["collision"]["n_c"] == 0 and manifest["collision"]["g"] == [math.pi / 2] * 2
    assert manifest["planner"] and "*" in manifest["planner"]
    layout = set(manifest["layout"].values())
    for name, circuits in exported["circuits"].items():
        isa = circuits["isa"]
        assert {isa.find_bit(q).index for inst in isa.data for q in inst.qubits} <= layout, name
    assert analysis["verdict"]["significance"] >= 3 and analysis["verdict"]["detected"]
    noisy = manifest["predictions"]["noisy"]
    measured = analysis["mitigated"]
    assert abs(measured["Q_B"]["value"] - noisy["Q_B"]) < 3 * measured["Q_B"]["error"]
    # the device's noise is a third reservoir: the residual is the energy it puts in, as predicted
    residual = measured["first_law_residual"]
    assert abs(residual["value"] - noisy["first_law_residual"]) < 3 * residual["error"]


def test_a_pump_layout_must_be_a_line_on_the_device(tmp_path, capsys):
    for layout, message in (("0,1,2", "four qubits"), ("0,1,3,4", "A = 1 and B = 3 are not connected"),
                            ("0,1,2,300", "does not exist")):
        out = tmp_path / "set"
        code = main(["circuits", "export", "--experiment", "pump", "--backend", "generic", "--layout", layout,
                     "-o", str(out)])
        err = capsys.readouterr().err
        assert code == 2 and message in err and err.count("\n") == 1, (layout, err)
        assert not out.exists()


def test_dynamic_circuits_are_told_apart():
    from qiskit import QuantumCircuit

    static = QuantumCircuit(2, 2)
    static.h(0)
    static.measure([0, 1], [0, 1])
    mid = QuantumCircuit(2, 2)
    mid.measure(0, 0)
    mid.x(0)
    mid.measure(0, 1)
    reset = QuantumCircuit(1)
    reset.reset(0)
    assert not _is_dynamic(static) and _is_dynamic(mid) and _is_dynamic(reset)
