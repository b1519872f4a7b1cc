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
from qpump.quantum.tomography import SETTINGS, estimate_energies, sample_counts, setting_probabilities

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
    qasm = copy / "t03_ancilla_ZZ.qasm"
    qasm.write_text(qasm.read_text().replace("rz(", "rz(1e-3 + ", 1))
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["parameters"]["TA"] = 2.5
    (copy / "manifest.json").write_text(json.dumps(manifest))
    (copy / "old_file.qasm").write_text("OPENQASM 3.0;")
    diffs = "\n".join(compare_exports(copy, fresh[0]))
    assert "t03_ancilla_ZZ.qasm" in diffs and "/parameters/TA" in diffs and "old_file.qasm" in diffs


def test_manifest_describes_every_file(fresh):
    out, manifest = fresh
    params = manifest["parameters"]
    assert params == {"TA": 2.0, "TB": 1.0, "omega_c": 0.1, "delta": -math.pi / 2, "phi_v": -math.pi / 2,
                      "phi_chi": 0.0, "times": list(DEFAULT_TIMES)}
    assert manifest["derived"]["C0"] == pytest.approx(0.637295, abs=1e-6)
    assert manifest["derived"]["I0_nats"] == pytest.approx(0.595453, abs=1e-6)
    assert manifest["derived"]["tau_peak"] == pytest.approx(7.0101, abs=1e-4)
    assert manifest["backend"]["name"] == "ideal" and manifest["layout"] == {"A": 0, "B": 1, "ancilla": 2}
    # every setting at every time, for the ancilla preparation and both mixture branches; and readout
    assert len(manifest["files"]) == 3 * 9 * len(DEFAULT_TIMES) + 2
    for name, entry in manifest["files"].items():
        assert (out / entry["qasm"]).exists() and (out / entry["qpy"]).exists()
        assert entry["qubits"]["0"].startswith("A") and entry["qubits"]["1"].startswith("B")
        assert entry["suggested_shots"] >= 1
        probs = entry["expected"]["probabilities"]
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-12), name
    for group in manifest["groups"].values():
        assert sum(group["weights"]) == pytest.approx(1.0, abs=1e-14)
    gates = {name: e["two_qubit_gates"] for name, e in manifest["files"].items()}
    assert gates["t00_ancilla_ZZ"] == 3 and gates["t00_branch0_ZZ"] == 0
    assert gates["t00_branch1_ZZ"] == 1 and max(gates.values()) <= 3
    assert manifest["readout"]["prepared"] == {"readout_00": "00", "readout_11": "11"}
    assert manifest["files"]["readout_11"]["expected"]["probabilities"]["11"] == 1.0


def test_tomography_settings_exist_at_every_contact_time(fresh):
    _, manifest = fresh
    for i, t in enumerate(DEFAULT_TIMES):
        for method, labels in (("ancilla", ["ancilla"]), ("mixture", ["branch0", "branch1"])):
            for setting in SETTINGS:
                group = manifest["groups"][f"t{i:02d}_{method}_{setting}"]
                assert group["files"] == [f"t{i:02d}_{label}_{setting}" for label in labels]
                assert group["t"] == t and group["time_index"] == i
                exact = closed.rho_closed_form([t], 2.0, 1.0, 0.1, -math.pi / 2)[0]
                assert group["expected"]["probabilities"] == pytest.approx(
                    {f"{b}{a}": p for (a, b), p in zip([(0, 0), (0, 1), (1, 0), (1, 1)],
                                                       setting_probabilities(exact, setting), strict=True)},
                    abs=1e-13)


def test_the_basis_state_branch_carries_no_contact_gates():
    """|00> (branch 0 of the mixture) is only multiplied by a phase by the contact: no gate acts on it
    before the basis change of its setting."""
    items, _ = circuit_set(times=[0.0, 6.0])
    for item in items:
        if item.branch == 0:
            gates = [inst.operation.name for inst in item.circuit.data]
            assert set(gates) <= {"h", "sdg", "measure"}, (item.name, gates)
        elif item.method == "ancilla" and item.t > 0:
            assert "xx_plus_yy" in {inst.operation.name for inst in item.circuit.data}


def test_pauli_labels_in_qiskit_order_are_what_qiskits_estimator_measures(fresh, loaded):
    """Each ``paulis_qiskit_order`` value equals Qiskit's own StatevectorEstimator on the state that the
    exported circuit prepares (the ZZ file, whose basis change is empty); the A-then-B labels are the
    same numbers under reversed labels (and not Qiskit's reading of them when they differ)."""
    from qiskit.primitives import StatevectorEstimator
    from qiskit.quantum_info import SparsePauliOp

    _, manifest = fresh
    _, circuits = loaded
    estimator = StatevectorEstimator()
    for prefix in ("t00_ancilla", "t03_ancilla", "t03_branch1", "t05_branch0"):
        prepared = circuits[f"{prefix}_ZZ"]["qpy"].remove_final_measurements(inplace=False)
        labels, values = [], []
        for setting in SETTINGS:
            expected = manifest["files"][f"{prefix}_{setting}"]["expected"]
            for label, value in expected["paulis_qiskit_order"].items():
                labels.append(label)
                values.append(value)
            pairs = zip(sorted(expected["paulis_A_then_B"]), sorted(expected["paulis_qiskit_order"],
                        key=lambda q: q[-2:][::-1]), strict=True)
            for ab, qiskit_label in pairs:
                assert qiskit_label[-2:] == ab[::-1]
                assert expected["paulis_A_then_B"][ab] == expected["paulis_qiskit_order"][qiskit_label]
        measured = estimator.run([(prepared, [SparsePauliOp(label) for label in labels])]).result()[0]
        np.testing.assert_allclose(measured.data.evs, values, atol=1e-12, err_msg=prefix)
    # the defect this pins: at t = 6 the A-then-B label "ZI" read by Qiskit is Z on B, another number
    expected = manifest["files"]["t03_ancilla_ZZ"]["expected"]
    prepared = circuits["t03_ancilla_ZZ"]["qpy"].remove_final_measurements(inplace=False)
    wrong = estimator.run([(prepared, [SparsePauliOp("IZI")])]).result()[0].data.evs[0]
    assert abs(wrong - expected["paulis_A_then_B"]["ZI"]) > 0.1


def test_group_expectations_are_the_physics_of_the_paper(fresh):
    _, manifest = fresh
    for i, t in enumerate(DEFAULT_TIMES):
        e_a, e_b = closed.energies_closed_form(t, 2.0, 1.0, 0.1, -math.pi / 2)
        for method in ("ancilla", "mixture"):
            group = manifest["groups"][f"t{i:02d}_{method}_ZZ"]
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
    entry = manifest["files"]["t02_ancilla_ZZ"]
    counts = sample_counts([circuits["t02_ancilla_ZZ"]["qasm"]], entry["suggested_shots"], seed=3)[0]
    e_a, e_b = estimate_energies(counts)
    assert abs(e_a.value - entry["expected"]["E_A"]) < 5 * e_a.error
    assert abs(e_b.value - entry["expected"]["E_B"]) < 5 * e_b.error


def test_other_parameters_and_bad_input(tmp_path):
    manifest = export_circuits(tmp_path, TA=1.5, TB=0.8, omega_c=0.2, delta=0.7, times=[0.0, 1.5])
    assert manifest["parameters"]["times"] == [0.0, 1.5]
    assert len(manifest["files"]) == 3 * 9 * 2 + 2
    e_a, _ = closed.energies_closed_form(1.5, 1.5, 0.8, 0.2, 0.7)
    assert manifest["groups"]["t01_ancilla_ZZ"]["expected"]["E_A"] == pytest.approx(e_a, abs=1e-13)
    with pytest.raises(InvalidParameterError, match="times = -1"):
        export_circuits(tmp_path, times=[-1.0])
    with pytest.raises(InvalidParameterError, match="times is empty"):
        export_circuits(tmp_path, times=[])
    with pytest.raises(InvalidParameterError, match="omega_c = 0"):
        export_circuits(tmp_path, omega_c=0.0)


@pytest.mark.parametrize("layout", [None, (2, 3, 4)])
def test_a_device_export_keeps_every_circuit_on_one_recorded_layout(tmp_path, layout):
    manifest = export_circuits(tmp_path, times=[0.0, 6.0], backend="generic", layout=layout, shots=500)
    pinned = manifest["layout"]
    if layout is not None:
        assert pinned == {"A": 2, "B": 3, "ancilla": 4}
    assert manifest["backend"]["name"] == "generic" and manifest["backend"]["two_qubit_gate"] == "cx"
    _, circuits = load_exported(tmp_path)
    for name, entry in manifest["files"].items():
        isa = circuits[name]["isa"]
        used = {isa.find_bit(q).index for inst in isa.data for q in inst.qubits}
        assert used <= set(entry["physical_qubits"]) <= set(pinned.values()), name
        assert entry["physical_qubits"][:2] == [pinned["A"], pinned["B"]]
        assert entry["two_qubit_gates"] == isa.count_ops().get("cx", 0)
        assert entry["depth"] == isa.depth()
        for column in ("raw", "mitigated"):
            assert sum(entry["noisy"][column].values()) == pytest.approx(1.0, abs=1e-9)
        # the noisy prediction is close to the exact one: a few percent of gate and readout error
        for key, p in entry["expected"]["probabilities"].items():
            assert abs(entry["noisy"]["raw"][key] - p) < 0.05, name
    assert manifest["files"]["t01_branch0_ZZ"]["two_qubit_gates"] == 0
    assert manifest["files"]["t00_branch0_ZZ"]["suggested_shots"] + \
        manifest["files"]["t00_branch1_ZZ"]["suggested_shots"] == 500
