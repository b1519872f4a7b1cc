"""Export of the experiment's circuits: OpenQASM 3, QPY and manifest.json, for a backend.

For one parameter set (T_A, T_B, Omega, delta; phi_chi = 0, phi_V = delta) the set holds, at every
contact time t_i and in each of the nine tomography settings PQ (basis P on A, Q on B),

- ``tII_ancilla_PQ``: rho^0 prepared with one ancilla, the contact for t_i, the basis change and the
  measurement of A and B;
- ``tII_branchK_PQ``: the same for branch K of the ancilla-free mixture (run branch K with the share
  ``weight`` of the shots and combine the frequencies with these weights). A branch that is a
  computational basis state (|00> or |11>) gets no contact gates: the contact multiplies it by a
  phase only;
- ``readout_00``, ``readout_11``: A and B prepared in |00> and |11> and measured, the readout
  calibration of exactly the experiment's qubits (the two circuits of qiskit-experiments'
  ``LocalReadoutError``).

The ZZ setting gives E_A(t), E_B(t) (paper Fig. 1(a)); the nine settings give rho(t), C(t) and
I_AB(t) (Fig. 1(b), (c)). ``groups`` combine the branches of a mixture.

Backends (see :mod:`qpump.quantum.backends`): for ``ideal`` (the committed ``circuits/``) ``NAME.qasm``
is transpiled to ['cx', 'rz', 'sx', 'x'] (+ measure) and ``NAME.qpy`` is the logical circuit as built.
For a device ``NAME.qasm`` and ``isa/NAME.qpy`` are its ISA circuit, on one pinned layout recorded in
the manifest, and ``NAME.qpy`` is the logical circuit beside it. OpenQASM 3 uses gates of
stdgates.inc only (ecr is declared by Qiskit's exporter); no file holds an Aer-only instruction.

``manifest.json`` gives, for every file, its parameters, the role of every qubit and classical bit,
its physical qubits, two-qubit gate count and depth, suggested shots and predictions of everything
it measures: ``expected`` exact (from qpump.states and qpump.closed, not from the circuits), and
for a device ``noisy`` (Aer with the device's noise model, exact density-matrix probabilities:
``raw`` with the readout error, ``mitigated`` without it). Pauli expectation values are given in
Qiskit's label order (``paulis_qiskit_order``: the rightmost letter acts on qubit 0 = A, labels span
all the circuit's qubits) and, named as such, A then B (``paulis_A_then_B``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from qiskit import QuantumCircuit

from .. import _validate as check
from ..closed import concurrence_initial, pair_hamiltonian, propagate, rho_closed_form, tau_peak
from ..errors import InvalidParameterError
from ..info import concurrence, local_energies, mutual_information
from ..output import dumps, write_atomic, write_text_atomic
from .backends import (
    DeviceSpec,
    Layout,
    check_layout,
    choose_layout,
    noise_model_of,
    noisy_probabilities,
    resolve_backend,
    transpile_fixed,
    two_qubit_gate_count,
)
from .contact import append_contact
from .preparation import BASIS_GATES, preparation_of, spectral_form
from .tomography import SETTINGS, measurement_circuit, pauli_expectations, setting_probabilities

__all__ = [
    "DEFAULT_TIMES",
    "MANIFEST_FORMAT",
    "READOUT_STATES",
    "ExportItem",
    "circuit_set",
    "readout_circuits",
    "to_qasm",
    "export_circuits",
    "manifest_hash",
    "load_manifest",
    "load_exported",
    "compare_exports",
]

DEFAULT_TIMES = (0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0)
MANIFEST_FORMAT = "qpump-circuits/2"
SHOTS_PER_SETTING = 10_000  # standard error of an energy <= 0.5 / sqrt(shots) = 0.005
OPTIMIZATION_LEVEL = 2
SEED_TRANSPILER = 20221206
READOUT_STATES = ("00", "11")
IDEAL_LAYOUT = Layout(0, 1, 2)


@dataclass(frozen=True)
class ExportItem:
    """One exported circuit, its in-memory original and what it measures."""

    name: str
    circuit: QuantumCircuit
    kind: str
    method: str
    group: str
    weight: float
    t: float
    time_index: int | None
    setting: str
    branch: int | None
    state: np.ndarray  # the exact state measured (of this branch), qpump order


def _qiskit_label(label_a_then_b: str, num_qubits: int) -> str:
    """A-then-B label "PQ" as a Qiskit label over ``num_qubits`` qubits (qubit 0 = A rightmost)."""
    return "I" * (num_qubits - 2) + label_a_then_b[::-1]


def _expected(rho: np.ndarray, setting: str, num_qubits: int = 2) -> dict:
    p = setting_probabilities(rho, setting)
    paulis = pauli_expectations(rho, setting)
    out: dict[str, Any] = {
        "probabilities": {f"{b}{a}": float(p[2 * a + b]) for a in (0, 1) for b in (0, 1)},
        "paulis_A_then_B": paulis,
        "paulis_qiskit_order": {_qiskit_label(k, num_qubits): v for k, v in paulis.items()},
    }
    if setting == "ZZ":
        e_a, e_b = local_energies(rho)
        out["E_A"], out["E_B"] = float(e_a), float(e_b)
    return out


def _parameters(TA, TB, omega_c, delta, times) -> dict:
    TA = check.positive("TA", TA, allow_inf=True)
    TB = check.positive("TB", TB, allow_inf=True)
    omega_c = check.positive("omega_c", omega_c)
    delta = check.finite("delta", delta)
    times = DEFAULT_TIMES if times is None else tuple(check.non_negative("times", t) for t in times)
    if not times:
        raise InvalidParameterError("times is empty: give at least one contact time")
    return {"TA": TA, "TB": TB, "omega_c": omega_c, "delta": delta, "phi_v": delta, "phi_chi": 0.0,
            "times": [float(t) for t in times]}


def circuit_set(TA: float = 2.0, TB: float = 1.0, omega_c: float = 0.1, delta: float = -math.pi / 2,
                times: Sequence[float] | None = None) -> tuple[list[ExportItem], dict]:
    """Build the experiment's logical circuits in memory with their exact states.

    Returns
    -------
    items : list of ExportItem
        Every (preparation branch, contact time, tomography setting), readout calibration excluded.
    parameters : dict
        The parameter set (TA, TB, omega_c, delta, phi_v, phi_chi, times).
    """
    from ..states import optimal_correlation

    params = _parameters(TA, TB, omega_c, delta, times)
    TA, TB, times = params["TA"], params["TB"], params["times"]
    corr = optimal_correlation(TA, TB)
    ham = pair_hamiltonian(omega_c, delta)
    form = spectral_form(corr)
    vectors = form.vectors()
    items: list[ExportItem] = []
    for method in ("ancilla", "mixture"):
        prep = preparation_of(corr, method)
        nonzero = [k for k, w in enumerate(form.weights) if w > 0]
        for k, branch in enumerate(prep.branches):
            label = "ancilla" if method == "ancilla" else f"branch{k}"
            index = None if method == "ancilla" else k
            basis_state = method == "mixture" and nonzero[k] in (0, 1)  # |00> or |11>
            for i, t in enumerate(times):
                qc = branch.circuit.copy()
                if not basis_state:
                    append_contact(qc, t, omega_c, delta)
                if method == "ancilla":
                    state = rho_closed_form([t], TA, TB, omega_c, delta, corr)[0]
                else:
                    v = vectors[nonzero[k]]
                    state = propagate(np.outer(v, v.conj()), [t], ham)[0]
                for setting in SETTINGS:
                    measured = measurement_circuit(qc, setting)
                    measured.name = f"t{i:02d}_{label}_{setting}"
                    items.append(ExportItem(measured.name, measured, "contact", method,
                                            f"t{i:02d}_{method}_{setting}", branch.weight, float(t), i,
                                            setting, index, state))
    return items, params


def readout_circuits() -> list[ExportItem]:
    """A and B prepared in |00> and |11> and measured (the readout calibration)."""
    items = []
    for label in READOUT_STATES:
        qc = QuantumCircuit(2, name="prepare")
        for qubit, bit in enumerate(label):
            if bit == "1":
                qc.x(qubit)
        measured = measurement_circuit(qc, "ZZ")
        measured.name = f"readout_{label}"
        state = np.zeros((4, 4), dtype=complex)
        index = 2 * int(label[0]) + int(label[1])
        state[index, index] = 1.0
        items.append(ExportItem(measured.name, measured, "readout", "readout", measured.name, 1.0, 0.0, None,
                                "ZZ", None, state))
    return items


def to_qasm(circuit: QuantumCircuit) -> tuple[str, QuantumCircuit]:
    """Transpile to ['cx', 'rz', 'sx', 'x'] (+ measure) and dump as OpenQASM 3; returns (text, transpiled).

    The measurements are taken off before transpiling and put back after, so that the exported circuit
    prepares the very state of the original (the optimiser would otherwise drop the phases right before
    a Z measurement, which leaves the counts unchanged but not the state).
    """
    from qiskit import ClassicalRegister, qasm3, transpile

    body = circuit.remove_final_measurements(inplace=False) if circuit.num_clbits else circuit
    out = transpile(body, basis_gates=list(BASIS_GATES), optimization_level=OPTIMIZATION_LEVEL,
                    seed_transpiler=SEED_TRANSPILER)
    if circuit.num_clbits:
        out.add_register(ClassicalRegister(2, "meas"))
        out.measure(0, out.clbits[0])
        out.measure(1, out.clbits[1])
    out.name = circuit.name
    return qasm3.dumps(out), out


def _roles(qc: QuantumCircuit, layout: Layout) -> dict[str, str]:
    roles = {"0": f"A (hot qubit), physical {layout.A}", "1": f"B (cold qubit), physical {layout.B}"}
    for q in range(2, qc.num_qubits):
        roles[str(q)] = f"ancilla (purifies the mixed state; not measured), physical {layout.ancilla}"
    return roles


def _probability_dict(p: np.ndarray) -> dict[str, float]:
    return {f"{b}{a}": float(p[2 * a + b]) for a in (0, 1) for b in (0, 1)}


def _resolve_layout(device: DeviceSpec, layout: Sequence[int] | None) -> Layout:
    if device.backend is None:
        if layout is not None and tuple(layout) not in ((0, 1), (0, 1, 2)):
            raise InvalidParameterError("--layout applies to a device; the ideal backend uses qubits 0, 1, 2")
        return IDEAL_LAYOUT
    return choose_layout(device.backend) if layout is None else check_layout(device.backend, layout)


def export_circuits(out_dir: str | os.PathLike, TA: float = 2.0, TB: float = 1.0, omega_c: float = 0.1,
                    delta: float = -math.pi / 2, times: Sequence[float] | None = None, *,
                    backend: str | DeviceSpec = "ideal", layout: Sequence[int] | None = None,
                    shots: int = SHOTS_PER_SETTING) -> dict:
    """Write the experiment's circuits for a backend and manifest.json into ``out_dir``; return the manifest.

    Parameters
    ----------
    out_dir : path
        Directory to write (created if missing; files of the same names are overwritten).
    TA, TB, omega_c, delta : float
        The parameter set (phi_chi = 0, phi_V = delta).
    times : sequence of float, optional
        Contact times (>= 0); default :data:`DEFAULT_TIMES`.
    backend : str or DeviceSpec
        ``ideal``, ``generic``, ``fake_NAME`` or ``ibm:NAME``
        (:func:`~qpump.quantum.backends.resolve_backend`).
    layout : sequence of int, optional
        Physical qubits (A, B[, ancilla]) on a device; default: chosen from the calibration data.
    shots : int
        Suggested shots per setting (split over the branches of a mixture by weight).
    """
    import qiskit

    from .. import __version__

    shots = check.positive_int("shots", shots)
    items, params = circuit_set(TA, TB, omega_c, delta, times)
    device = backend if isinstance(backend, DeviceSpec) else resolve_backend(backend)
    pinned = _resolve_layout(device, layout)
    items += readout_circuits()
    out = Path(out_dir)
    circuits = [item.circuit for item in items]
    if device.backend is None:
        transpiled = [to_qasm(qc)[1] for qc in circuits]
        gates = raw = None
    else:
        transpiled = transpile_fixed(circuits, device.backend, pinned)
        gates, raw = (noisy_probabilities(transpiled, device.backend, pinned,
                                          noise_model_of(device.backend, pinned.as_dict().values()))
                      if device.simulated else (None, None))
    files: dict[str, dict] = {}
    groups: dict[str, dict] = {}
    for k, (item, isa) in enumerate(zip(items, transpiled, strict=True)):
        _write_circuit_files(out, item.name, item.circuit, isa, device)
        entry = {
            "qasm": f"{item.name}.qasm",
            "qpy": f"{item.name}.qpy",
            "kind": item.kind,
            "method": item.method,
            "group": item.group,
            "branch": item.branch,
            "weight": item.weight,
            "t": item.t,
            "time_index": item.time_index,
            "setting": item.setting,
            "qubits": _roles(item.circuit, pinned),
            "clbits": {"0": "A", "1": "B"},
            "physical_qubits": pinned.for_width(item.circuit.num_qubits),
            "suggested_shots": max(1, int(round(shots * item.weight))),
            "two_qubit_gates": two_qubit_gate_count(isa),
            "depth": int(isa.depth()),
            "expected": _expected(item.state, item.setting, item.circuit.num_qubits),
        }
        if device.backend is not None:
            entry["isa_qpy"] = f"isa/{item.name}.qpy"
        if gates is not None and raw is not None:
            entry["noisy"] = {"raw": _probability_dict(raw[k]), "mitigated": _probability_dict(gates[k])}
        files[item.name] = entry
        group = groups.setdefault(item.group, {"files": [], "weights": [], "kind": item.kind,
                                               "method": item.method, "t": item.t,
                                               "time_index": item.time_index, "setting": item.setting})
        group["files"].append(item.name)
        group["weights"].append(item.weight)
    states = {item.name: item.state for item in items}
    for group in groups.values():
        state = (rho_closed_form([group["t"]], params["TA"], params["TB"], omega_c, delta)[0]
                 if group["kind"] == "contact" else states[group["files"][0]])
        group["expected"] = _expected(state, group["setting"])
    rho0 = rho_closed_form([0.0], params["TA"], params["TB"], omega_c, delta)[0]
    manifest = {
        "format": MANIFEST_FORMAT,
        "generator": {"qpump": __version__, "qiskit": qiskit.__version__},
        "parameters": params,
        "derived": {
            "C0": concurrence_initial(params["TA"], params["TB"]),
            "concurrence_rho0": float(concurrence(rho0)),
            "I0_nats": float(mutual_information(rho0)),
            "tau_peak": tau_peak(params["TA"], params["TB"], omega_c, delta),
        },
        "backend": device.describe(),
        "layout": pinned.as_dict(),
        "shots_per_setting": shots,
        "conventions": {
            "qubits": "logical qubit 0 = A (bath T_A), 1 = B (bath T_B), 2 = ancilla; |0> ground; "
                      "'layout' gives the physical qubits on the backend",
            "clbits": "clbit 0 = A, clbit 1 = B; a Qiskit count key reads 'b a' (B's bit first)",
            "energies": "E_K = <sigma_z>/2 on qubit K with |1> excited: E_K = (P(K=1) - P(K=0))/2",
            "paulis_qiskit_order": "Qiskit Pauli labels over all the circuit's qubits, little-endian: the "
                                   "rightmost letter acts on qubit 0 = A (e.g. 'IZ' is Z on A); the state is "
                                   "the one the circuit prepares before its basis change",
            "paulis_A_then_B": "the same values with labels written A then B (e.g. 'ZI' is Z on A); "
                               "not Qiskit's order",
            "pauli_matrices": "Qiskit's: Z = diag(1, -1) = -sigma_z; outcome 0 = eigenvalue +1",
            "mixture": "run each branch of a group with its weight's share of the shots and add the"
                       " weighted frequencies: sum_k w_k n_k / N_k",
            "qasm": ("OpenQASM 3 transpiled to ['cx', 'rz', 'sx', 'x'] + measure (stdgates.inc only)"
                     if device.backend is None else "OpenQASM 3 of the ISA circuit on the layout's qubits"),
            "qpy": "the logical circuit as built by qpump.quantum",
            "isa_qpy": "the ISA circuit for the backend (devices only)",
            "noisy": "Aer with the device's noise model, exact: 'raw' with readout error, 'mitigated' "
                     "without",
        },
        "basis_gates": list(BASIS_GATES) if device.backend is None else device.describe()["basis_gates"],
        "readout": {"files": [f"readout_{label}" for label in READOUT_STATES],
                    "prepared": {f"readout_{label}": label for label in READOUT_STATES}},
        "files": files,
        "groups": groups,
    }
    write_text_atomic(out / "manifest.json", dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def _write_circuit_files(out: Path, name: str, logical: QuantumCircuit, isa: QuantumCircuit,
                         device: DeviceSpec) -> None:
    """NAME.qasm, NAME.qpy (logical) and, for a device, isa/NAME.qpy; each written atomically (the
    manifest, written last, is what makes the set complete)."""
    from qiskit import qasm3, qpy

    def dump_qpy(circuit: QuantumCircuit):
        def write(tmp: Path) -> None:
            with open(tmp, "wb") as handle:
                qpy.dump(circuit, handle)
        return write

    text = qasm3.dumps(isa)

    def write_qasm(tmp: Path) -> None:
        tmp.write_text(text)

    write_atomic(out / f"{name}.qasm", write_qasm)
    write_atomic(out / f"{name}.qpy", dump_qpy(logical))
    if device.backend is not None:
        write_atomic(out / "isa" / f"{name}.qpy", dump_qpy(isa))


def manifest_hash(manifest_path: str | os.PathLike) -> str:
    """SHA-256 of a manifest file's bytes (recorded with the counts, checked by the analysis)."""
    return hashlib.sha256(Path(manifest_path).read_bytes()).hexdigest()


def load_manifest(path: str | os.PathLike) -> tuple[dict, Path]:
    """Read a manifest (a folder or its manifest.json), checking that it is a qpump circuit set.

    Returns (manifest, folder).
    """
    path = Path(path)
    file = path / "manifest.json" if path.is_dir() else path
    try:
        manifest = json.loads(file.read_text())
    except FileNotFoundError:
        raise InvalidParameterError(f"{file} does not exist (export circuits with `qpump circuits export`)") \
            from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InvalidParameterError(f"{file} is not valid JSON: {err}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise InvalidParameterError(f"{file} has format {found!r}, not {MANIFEST_FORMAT!r}; export again "
                                    "with `qpump circuits export`")
    return manifest, file.parent


def load_exported(out_dir: str | os.PathLike) -> tuple[dict, dict[str, dict[str, QuantumCircuit]]]:
    """Read manifest.json and every circuit of an exported set.

    Returns
    -------
    manifest : dict
    circuits : dict name -> {"qasm": QuantumCircuit, "qpy": QuantumCircuit[, "isa": QuantumCircuit]}
        The QASM files parsed by qiskit.qasm3.loads (needs qiskit-qasm3-import), the QPY files loaded,
        and for a device the ISA circuits.
    """
    from qiskit import qasm3, qpy

    manifest, root = load_manifest(out_dir)
    circuits = {}
    for name, entry in manifest["files"].items():
        circuits[name] = {"qasm": qasm3.loads((root / entry["qasm"]).read_text())}
        for key, file in (("qpy", entry["qpy"]), ("isa", entry.get("isa_qpy"))):
            if file is not None:
                with open(root / file, "rb") as handle:
                    circuits[name][key] = qpy.load(handle)[0]
    return manifest, circuits


_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def _qasm_differs(a: str, b: str, tol: float) -> bool:
    """True if two QASM texts differ in anything but floating-point noise of their numbers."""
    if _NUMBER.sub("#", a) != _NUMBER.sub("#", b):
        return True
    xs = [float(x) for x in _NUMBER.findall(a)]
    ys = [float(y) for y in _NUMBER.findall(b)]
    return any(abs(x - y) > tol for x, y in zip(xs, ys, strict=True))


def _json_differs(a, b, tol: float, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}/{k}: missing on one side" for k in sorted(set(a) ^ set(b))]
        for k in sorted(set(a) & set(b)):
            out += _json_differs(a[k], b[k], tol, f"{path}/{k}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: lengths {len(a)} != {len(b)}"]
        pairs = enumerate(zip(a, b, strict=True))
        return [d for k, (x, y) in pairs for d in _json_differs(x, y, tol, f"{path}[{k}]")]
    if isinstance(a, float) or isinstance(b, float):
        ok = isinstance(a, (int, float)) and isinstance(b, (int, float)) and abs(a - b) <= tol
        return [] if ok else [f"{path}: {a!r} != {b!r}"]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def compare_exports(reference_dir: str | os.PathLike, fresh_dir: str | os.PathLike,
                    tol: float = 1e-10) -> list[str]:
    """Differences between two exported sets (empty list: the same set).

    Manifests are compared entry by entry (numbers to ``tol``; the generator versions are ignored), QASM
    texts token by token (numbers to ``tol``) when both were written by the same Qiskit version, and QPY
    files by the circuits they load (QPY bytes embed versions).
    """
    from qiskit import qpy

    ref_root, new_root = Path(reference_dir), Path(fresh_dir)
    if not (ref_root / "manifest.json").exists():
        return [f"{ref_root / 'manifest.json'} does not exist"]
    ref = json.loads((ref_root / "manifest.json").read_text())
    new = json.loads((new_root / "manifest.json").read_text())
    diffs = _json_differs({k: v for k, v in ref.items() if k != "generator"},
                          {k: v for k, v in new.items() if k != "generator"}, tol, "manifest")
    same_qiskit = ref.get("generator", {}).get("qiskit") == new.get("generator", {}).get("qiskit")
    for name, entry in new["files"].items():
        if name not in ref["files"]:
            continue
        a, b = ref_root / entry["qasm"], new_root / entry["qasm"]
        if not a.exists():
            diffs.append(f"{a} is missing")
        elif same_qiskit and _qasm_differs(a.read_text(), b.read_text(), tol):
            diffs.append(f"{entry['qasm']}: QASM text differs")
        a, b = ref_root / entry["qpy"], new_root / entry["qpy"]
        if not a.exists():
            diffs.append(f"{a} is missing")
            continue
        with open(a, "rb") as fa, open(b, "rb") as fb:
            if qpy.load(fa)[0] != qpy.load(fb)[0]:
                diffs.append(f"{entry['qpy']}: QPY circuit differs")
    extra = sorted({p.name for p in ref_root.glob("*.q*")} - {p.name for p in new_root.glob("*.q*")})
    diffs += [f"{name}: stale file not in the fresh set" for name in extra]
    return diffs
