"""The hardware experiment end to end through the command line, as an experimentalist runs it:
`qpump circuits export --backend` -> `qpump experiment run` -> `qpump experiment analyze`, on the
noise of an ECR device (fake_sherbrooke) and a CZ device (fake_torino), and noise-free with many
shots; bad input to `analyze` is one line, exit status 2, nothing written."""

import json
import math
import sys

import pytest

from qpump import closed, info
from qpump.cli import main
from qpump.quantum.export import load_exported

TIMES = "0,6,12"
C0 = 0.637295


def _strict(text: str) -> dict:
    def refuse(constant):
        raise ValueError(f"non-strict JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def _experiment(tmp_path, capsys, backend: str, shots: int) -> tuple[dict, dict]:
    circuits, counts, out = tmp_path / "circuits", tmp_path / "counts.json", tmp_path / "analysis"
    assert main(["circuits", "export", "--backend", backend, "--times", TIMES, "-o", str(circuits)]) == 0
    assert main(["experiment", "run", str(circuits), "--shots", str(shots), "-o", str(counts)]) == 0
    capsys.readouterr()
    assert main(["experiment", "analyze", str(counts), "-o", str(out), "--json"]) == 0
    analysis = _strict(capsys.readouterr().out)
    assert _strict((out / "analysis.json").read_text()) == analysis
    assert (out / "fig1_experiment.png").stat().st_size > 10_000 and (out / "fig1_experiment.pdf").exists()
    manifest, loaded = load_exported(circuits)
    return analysis, {"manifest": manifest, "circuits": loaded}


@pytest.mark.parametrize("backend", ["fake_sherbrooke", "fake_torino"])
def test_the_experiment_on_a_devices_noise_detects_the_anomalous_exchange(tmp_path, capsys, backend):
    analysis, exported = _experiment(tmp_path, capsys, backend, shots=2000)
    manifest = exported["manifest"]
    # every circuit of the set sits on the manifest's layout
    layout = set(manifest["layout"].values())
    for name, circuits in exported["circuits"].items():
        isa = circuits["isa"]
        assert {isa.find_bit(q).index for inst in isa.data for q in inst.qubits} <= layout, name
    verdict = analysis["verdict"]
    assert verdict["detected"] and verdict["significance"] >= 5, verdict["line"]
    for method in ("ancilla", "mixture"):
        points = analysis["methods"][method]["points"]
        for point in points:
            for quantity in ("E_A", "E_B"):
                z = point["z"]["mitigated"]["noisy"][quantity]
                assert abs(z) < 3, (method, point["t"], quantity, z)
        raw, mitigated = points[0]["raw"]["concurrence"], points[0]["mitigated"]["concurrence"]
        assert abs(mitigated["value"] - C0) < abs(raw["value"] - C0), (method, raw, mitigated)


def test_the_ideal_experiment_with_many_shots_measures_the_exact_values(tmp_path, capsys):
    analysis, _ = _experiment(tmp_path, capsys, "ideal", shots=40_000)
    for method in ("ancilla", "mixture"):
        for point in analysis["methods"][method]["points"]:
            t = point["t"]
            rho = closed.rho_closed_form([t], 2.0, 1.0, 0.1, -math.pi / 2)[0]
            e_a, e_b = closed.energies_closed_form(t, 2.0, 1.0, 0.1, -math.pi / 2)
            exact = {"E_A": e_a, "E_B": e_b, "sed": e_a - e_b, "concurrence": info.concurrence(rho),
                     "mutual_information": info.mutual_information(rho)}
            for quantity, value in exact.items():
                estimate = point["mitigated"][quantity]
                assert abs(estimate["value"] - value) < 3 * estimate["error"], (method, t, quantity, estimate)
    assert analysis["verdict"]["detected"]


def test_analyze_rejects_counts_that_do_not_belong_in_one_line(tmp_path, capsys):
    circuits, counts = tmp_path / "circuits", tmp_path / "counts.json"
    assert main(["circuits", "export", "--backend", "generic", "--times", "0", "-o", str(circuits)]) == 0
    assert main(["experiment", "run", str(circuits), "--shots", "100", "-o", str(counts)]) == 0
    other = tmp_path / "other"
    assert main(["circuits", "export", "--backend", "generic", "--times", "0,1", "-o", str(other)]) == 0
    capsys.readouterr()
    doc = json.loads(counts.read_text())
    cases = {
        "another manifest": (doc, ["--manifest", str(other)], "counts belong to another manifest"),
        "a missing circuit": ({**doc, "counts": {k: v for k, v in doc["counts"].items()
                                                 if k != "t00_branch1_XY"}}, [], "t00_branch1_XY"),
        "zero shots": ({**doc, "shots": {**doc["shots"], "t00_ancilla_ZZ": 0},
                        "counts": {**doc["counts"], "t00_ancilla_ZZ": {}}}, [], "t00_ancilla_ZZ"),
    }
    for label, (content, options, message) in cases.items():
        path = tmp_path / f"{label}.json"
        path.write_text(json.dumps(content))
        out = tmp_path / f"out-{label}"
        assert main(["experiment", "analyze", str(path), "-o", str(out), *options]) == 2, label
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (label, err)
        assert not out.exists()
    malformed = tmp_path / "malformed.json"
    malformed.write_text('{"format": "qpump-counts/1", ')
    assert main(["experiment", "analyze", str(malformed)]) == 2
    err = capsys.readouterr().err
    assert "malformed.json" in err and err.count("\n") == 1


@pytest.mark.parametrize("module, argv", [
    ("qiskit_ibm_runtime", ["circuits", "export", "--backend", "fake_sherbrooke"]),
    ("qiskit_experiments", ["experiment", "analyze", "COUNTS"]),
])
def test_a_missing_hardware_extra_is_named(tmp_path, capsys, monkeypatch, module, argv):
    if module == "qiskit_experiments":  # a valid run, analyzed without qiskit-experiments
        circuits, counts = tmp_path / "circuits", tmp_path / "counts.json"
        assert main(["circuits", "export", "--backend", "generic", "--times", "0", "-o", str(circuits)]) == 0
        assert main(["experiment", "run", str(circuits), "--shots", "50", "-o", str(counts)]) == 0
        argv = [str(counts) if a == "COUNTS" else a for a in argv]
    else:
        argv = [*argv, "-o", str(tmp_path / "set")]
    capsys.readouterr()
    for name in list(sys.modules):
        if name == module or name.startswith(module + "."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "pip install 'qpump[hardware]'" in err and err.count("\n") == 1, err
    assert not (tmp_path / "set").exists()
