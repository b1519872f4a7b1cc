"""Tests of qpump.quantum.export: the circuits/ set in the repository is current, every file round-trips
through OpenQASM 3 and QPY and reproduces the manifest's exact expected values on Aer."""

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from qpump import InvalidParameterError, closed
from qpump.quantum._aer import density_matrices_of
from qpump.quantum.export import (
    DEFAULT_TIMES,
    circuit_set,
    compare_exports,
    export_circuits,
    load_exported,
)
from qpump.quantum.tomography import estimate_energies, sample_counts

REPO_CIRCUITS = Path(__file__).resolve().parents[1] / "circuits"
STANDARD = {"cx", "rz", "sx", "x", "measure", "barrier"}
AER_ONLY = ("save_", "set_", "kraus", "quantum_channel", "superop", "unitary")


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    out = tmp_path_factory.mktemp("circuits")
    manifest = export_circuits(out)  # the defaults are the paper's: TA=2, TB=1, Omega=0.1, delta=-pi/2
    return out, manifest


@pytest.fixture(scope="module")
def loaded(fresh):
    return load_exported(fresh[0])


def test_repository_circuits_are_not_stale(fresh):
    diffs = compare_exports(REPO_CIRCUITS, fresh[0])
    assert not diffs, "circuits/ is stale; regenerate with qpump.quantum.export_circuits('circuits'):\n" + \
        "\n".join(diffs[:20])


def test_staleness_check_detects_changes(fresh, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(fresh[0], copy)
    assert compare_exports(copy, fresh[0]) == []
    qasm = copy / "contact_t03_ancilla.qasm"
    qasm.write_text(qasm.read_text().replace("rz(", "rz(1e-3 + ", 1))
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["parameters"]["TA"] = 2.5
    (copy / "manifest.json").write_text(json.dumps(manifest))
    (copy / "old_file.qasm").write_text("OPENQASM 3.0;")
    diffs = "\n".join(compare_exports(copy, fresh[0]))
    assert "contact_t03_ancilla.qasm" in diffs and "/parameters/TA" in diffs and "old_file.qasm" in diffs


def test_manifest_describes_every_file(fresh):
    out, manifest = fresh
    params = manifest["parameters"]
    assert params == {"TA": 2.0, "TB": 1.0, "omega_c": 0.1, "delta": -math.pi / 2, "phi_v": -math.pi / 2,
                      "phi_chi": 0.0, "times": list(DEFAULT_TIMES)}
    assert manifest["derived"]["C0"] == pytest.approx(0.637295, abs=1e-6)
    assert manifest["derived"]["I0_nats"] == pytest.approx(0.595453, abs=1e-6)
    assert manifest["derived"]["tau_peak"] == pytest.approx(7.0101, abs=1e-4)
    assert len(manifest["files"]) == 3 * len(DEFAULT_TIMES) + 27
    for name, entry in manifest["files"].items():
        assert (out / entry["qasm"]).exists() and (out / entry["qpy"]).exists()
        assert entry["qubits"]["0"].startswith("A") and entry["qubits"]["1"].startswith("B")
        assert entry["suggested_shots"] >= 100
        probs = entry["expected"]["probabilities"]
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-12), name
    for group in manifest["groups"].values():
        assert sum(group["weights"]) == pytest.approx(1.0, abs=1e-14)
    cx = {name: e["cx_count"] for name, e in manifest["files"].items()}
    assert cx["tomography_ancilla_ZZ"] == 3 and cx["tomography_branch0_ZZ"] == 0
    assert cx["tomography_branch1_ZZ"] == 1 and max(cx.values()) <= 3


def test_group_expectations_are_the_physics_of_the_paper(fresh):
    _, manifest = fresh
    for i, t in enumerate(DEFAULT_TIMES):
        e_a, e_b = closed.energies_closed_form(t, 2.0, 1.0, 0.1, -math.pi / 2)
        for method in ("ancilla", "mixture"):
            group = manifest["groups"][f"contact_t{i:02d}_{method}"]
            assert group["expected"]["E_A"] == pytest.approx(e_a, abs=1e-13)
            assert group["expected"]["E_B"] == pytest.approx(e_b, abs=1e-13)
            # the weighted branches add up to the group's expectation
            mixed = sum(w * manifest["files"][f]["expected"]["E_A"]
                        for f, w in zip(group["files"], group["weights"], strict=True))
            assert mixed == pytest.approx(e_a, abs=1e-13)


def test_every_file_round_trips_and_reproduces_its_expected_values(fresh, loaded):
    _, manifest = fresh
    manifest_loaded, circuits = loaded
    assert manifest_loaded == manifest
    items, _ = circuit_set()
    originals = density_matrices_of([item.circuit for item in items])
    for fmt in ("qasm", "qpy"):
        states = density_matrices_of([circuits[item.name][fmt] for item in items])
        for item, rho, original in zip(items, states, originals, strict=True):
            assert np.max(np.abs(rho - original)) < 1e-9, (fmt, item.name)
            expected = manifest["files"][item.name]["expected"]["probabilities"]
            p = np.array([expected[f"{b}{a}"] for a in (0, 1) for b in (0, 1)])
            assert np.max(np.abs(np.real(np.diag(rho)) - p)) < 1e-9, (fmt, item.name)
    for item in items:
        qasm = circuits[item.name]["qasm"]
        assert set(qasm.count_ops()) <= STANDARD, item.name
        assert circuits[item.name]["qpy"] == item.circuit
        names = {op.operation.name for op in item.circuit.data}
        assert not any(n.startswith(AER_ONLY) for n in names), names


def test_sampled_counts_of_an_exported_file_match_the_manifest(fresh, loaded):
    _, manifest = fresh
    _, circuits = loaded
    entry = manifest["files"]["contact_t02_ancilla"]
    counts = sample_counts([circuits["contact_t02_ancilla"]["qasm"]], entry["suggested_shots"], seed=3)[0]
    e_a, e_b = estimate_energies(counts)
    assert abs(e_a.value - entry["expected"]["E_A"]) < 5 * e_a.error
    assert abs(e_b.value - entry["expected"]["E_B"]) < 5 * e_b.error


def test_other_parameters_and_bad_input(tmp_path):
    manifest = export_circuits(tmp_path, TA=1.5, TB=0.8, omega_c=0.2, delta=0.7, times=[0.0, 1.5])
    assert manifest["parameters"]["times"] == [0.0, 1.5]
    assert len(manifest["files"]) == 3 * 2 + 27
    e_a, _ = closed.energies_closed_form(1.5, 1.5, 0.8, 0.2, 0.7)
    assert manifest["groups"]["contact_t01_ancilla"]["expected"]["E_A"] == pytest.approx(e_a, abs=1e-13)
    with pytest.raises(InvalidParameterError, match="times = -1"):
        export_circuits(tmp_path, times=[-1.0])
    with pytest.raises(InvalidParameterError, match="times is empty"):
        export_circuits(tmp_path, times=[])
    with pytest.raises(InvalidParameterError, match="omega_c = 0"):
        export_circuits(tmp_path, omega_c=0.0)
