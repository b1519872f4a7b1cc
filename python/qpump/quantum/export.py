"""Export of the hardware circuits: OpenQASM 3 (standard gates only), QPY and manifest.json.

For one parameter set (T_A, T_B, Omega, delta; phi_chi = 0, phi_V = delta) the set contains

- ``contact_tNN_ancilla``: rho^0 prepared with one ancilla, the contact for the time t_NN, Z-basis
  measurement of A and B (the Micadei-type experiment: E_A(t), E_B(t));
- ``contact_tNN_branchK``: the same with the ancilla-free two-branch mixture (run branch K with the
  share ``weight`` of the shots and combine the frequencies with these weights);
- ``tomography_ancilla_PQ`` and ``tomography_branchK_PQ``: rho^0 measured in the nine Pauli settings
  (basis P on A, Q on B) for state tomography (concurrence C0, mutual information I0).

Each circuit is written twice: ``NAME.qasm``, OpenQASM 3 after transpiling to the basis
['cx', 'rz', 'sx', 'x'] (only gates of stdgates.inc; parses back with qiskit.qasm3.loads, which needs the
package qiskit-qasm3-import), and ``NAME.qpy``, the untranspiled circuit as built. The circuits hold
no Aer-only instruction (no save, noise or set_density_matrix). ``manifest.json`` gives, for every
file, its parameters, the role of every qubit and classical bit, suggested shots, the CX count, and the
exact expected value of everything it measures (outcome probabilities keyed like Qiskit counts "b a",
the Pauli expectations, and for the Z basis the energies E_A, E_B), computed from qpump.states and
qpump.closed, not from the circuits. ``groups`` combine the branches of a mixture.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from qiskit import QuantumCircuit

from .. import _validate as check
from ..closed import concurrence_initial, pair_hamiltonian, propagate, rho_closed_form, tau_peak
from ..errors import InvalidParameterError
from ..info import concurrence, local_energies, mutual_information
from ..output import dumps, write_text_atomic
from .contact import append_contact
from .preparation import BASIS_GATES, preparation_of, spectral_form
from .tomography import SETTINGS, measurement_circuit, pauli_expectations, setting_probabilities

__all__ = [
    "DEFAULT_TIMES",
    "MANIFEST_FORMAT",
    "ExportItem",
    "circuit_set",
    "to_qasm",
    "export_circuits",
    "load_exported",
    "compare_exports",
]

DEFAULT_TIMES = (0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0)
MANIFEST_FORMAT = "qpump-circuits/1"
SHOTS_PER_SETTING = 10_000  # standard error of an energy <= 0.5 / sqrt(shots) = 0.005
OPTIMIZATION_LEVEL = 2
SEED_TRANSPILER = 20221206


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
    setting: str
    branch: int | None
    state: np.ndarray  # the exact state measured (of this branch), qpump order
    extra: dict = field(default_factory=dict)


def _expected(rho: np.ndarray, setting: str) -> dict:
    p = setting_probabilities(rho, setting)
    out = {
        "probabilities": {f"{b}{a}": float(p[2 * a + b]) for a in (0, 1) for b in (0, 1)},
        "paulis": pauli_expectations(rho, setting),
    }
    if setting == "ZZ":
        e_a, e_b = local_energies(rho)
        out["E_A"], out["E_B"] = float(e_a), float(e_b)
    return out


def circuit_set(TA: float = 2.0, TB: float = 1.0, omega_c: float = 0.1, delta: float = -math.pi / 2,
                times: Sequence[float] | None = None) -> tuple[list[ExportItem], dict]:
    """Build the exported circuits in memory with their exact states.

    Returns
    -------
    items : list of ExportItem
    parameters : dict
        The parameter set (TA, TB, omega_c, delta, phi_v, phi_chi, times).
    """
    from ..states import optimal_correlation

    TA = check.positive("TA", TA, allow_inf=True)
    TB = check.positive("TB", TB, allow_inf=True)
    omega_c = check.positive("omega_c", omega_c)
    delta = check.finite("delta", delta)
    times = DEFAULT_TIMES if times is None else tuple(check.non_negative("times", t) for t in times)
    if not times:
        raise InvalidParameterError("times is empty: give at least one contact time")
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
            if method == "ancilla":
                state0 = corr.state()
            else:
                v = vectors[nonzero[k]]
                state0 = np.outer(v, v.conj())
            for i, t in enumerate(times):
                qc = branch.circuit.copy()
                append_contact(qc, t, omega_c, delta)
                measured = measurement_circuit(qc, "ZZ")
                name = f"contact_t{i:02d}_{label}"
                measured.name = name
                state = (rho_closed_form([t], TA, TB, omega_c, delta, corr)[0] if method == "ancilla"
                         else propagate(state0, [t], ham)[0])
                items.append(ExportItem(name, measured, "contact", method, f"contact_t{i:02d}_{method}",
                                        branch.weight, float(t), "ZZ", index, state))
            for setting in SETTINGS:
                measured = measurement_circuit(branch.circuit, setting)
                name = f"tomography_{label}_{setting}"
                measured.name = name
                items.append(ExportItem(name, measured, "tomography", method,
                                        f"tomography_{method}_{setting}", branch.weight, 0.0, setting,
                                        index, state0))
    params = {"TA": TA, "TB": TB, "omega_c": omega_c, "delta": delta, "phi_v": delta, "phi_chi": 0.0,
              "times": [float(t) for t in times]}
    return items, params


def to_qasm(circuit: QuantumCircuit) -> tuple[str, QuantumCircuit]:
    """Transpile to ['cx', 'rz', 'sx', 'x'] (+ measure) and dump as OpenQASM 3; returns (text, transpiled)."""
    from qiskit import qasm3, transpile

    out = transpile(circuit, basis_gates=list(BASIS_GATES), optimization_level=OPTIMIZATION_LEVEL,
                    seed_transpiler=SEED_TRANSPILER)
    return qasm3.dumps(out), out


def _roles(qc: QuantumCircuit) -> dict[str, str]:
    roles = {"0": "A (hot qubit)", "1": "B (cold qubit)"}
    for q in range(2, qc.num_qubits):
        roles[str(q)] = "ancilla (purifies the mixed state; not measured)"
    return roles


def export_circuits(out_dir: str | os.PathLike, TA: float = 2.0, TB: float = 1.0, omega_c: float = 0.1,
                    delta: float = -math.pi / 2, times: Sequence[float] | None = None) -> dict:
    """Write the circuit set (QASM 3, QPY) and manifest.json into ``out_dir``; return the manifest.

    Parameters
    ----------
    out_dir : path
        Directory to write (created if missing; files of the same names are overwritten).
    TA, TB, omega_c, delta : float
        The parameter set (phi_chi = 0, phi_V = delta).
    times : sequence of float, optional
        Contact times (>= 0); default :data:`DEFAULT_TIMES`.
    """
    import qiskit
    from qiskit import qpy

    from .. import __version__

    items, params = circuit_set(TA, TB, omega_c, delta, times)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rho0 = rho_closed_form([0.0], params["TA"], params["TB"], omega_c, delta)[0]
    files: dict[str, dict] = {}
    groups: dict[str, dict] = {}
    for item in items:
        text, transpiled = to_qasm(item.circuit)
        (out / f"{item.name}.qasm").write_text(text)
        with open(out / f"{item.name}.qpy", "wb") as handle:
            qpy.dump(item.circuit, handle)
        shots = max(100, int(round(SHOTS_PER_SETTING * item.weight)))
        files[item.name] = {
            "qasm": f"{item.name}.qasm",
            "qpy": f"{item.name}.qpy",
            "kind": item.kind,
            "method": item.method,
            "group": item.group,
            "branch": item.branch,
            "weight": item.weight,
            "t": item.t,
            "setting": item.setting,
            "qubits": _roles(item.circuit),
            "clbits": {"0": "A", "1": "B"},
            "suggested_shots": shots,
            "cx_count": int(transpiled.count_ops().get("cx", 0)),
            "expected": _expected(item.state, item.setting),
        }
        group = groups.setdefault(item.group, {"files": [], "weights": [], "kind": item.kind,
                                               "method": item.method, "t": item.t, "setting": item.setting})
        group["files"].append(item.name)
        group["weights"].append(item.weight)
    for _name, group in groups.items():
        t = group["t"]
        state = rho_closed_form([t], params["TA"], params["TB"], omega_c, delta)[0]
        group["expected"] = _expected(state, group["setting"])
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
        "conventions": {
            "qubits": "qubit 0 = A (bath T_A), qubit 1 = B (bath T_B), higher = ancillas; |0> ground",
            "clbits": "clbit 0 = A, clbit 1 = B; a Qiskit count key reads 'b a' (B's bit first)",
            "energies": "E_K = <sigma_z>/2 on qubit K with |1> excited: E_K = (P(K=1) - P(K=0))/2",
            "paulis": "expectations of Qiskit Pauli labels written A then B (Z = diag(1, -1) = -sigma_z);"
                      " outcome 0 = eigenvalue +1",
            "mixture": "run each branch of a group with its weight's share of the shots and add the"
                       " weighted frequencies: sum_k w_k n_k / N_k",
            "qasm": f"OpenQASM 3, transpiled to {list(BASIS_GATES)} + measure (stdgates.inc only)",
            "qpy": "the untranspiled circuit as built by qpump.quantum",
        },
        "basis_gates": list(BASIS_GATES),
        "files": files,
        "groups": groups,
    }
    write_text_atomic(out / "manifest.json", dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def load_exported(out_dir: str | os.PathLike) -> tuple[dict, dict[str, dict[str, QuantumCircuit]]]:
    """Read manifest.json and every circuit of an exported set.

    Returns
    -------
    manifest : dict
    circuits : dict name -> {"qasm": QuantumCircuit, "qpy": QuantumCircuit}
        The QASM files parsed by qiskit.qasm3.loads (needs qiskit-qasm3-import) and the QPY files loaded.
    """
    from qiskit import qasm3, qpy

    root = Path(out_dir)
    manifest = json.loads((root / "manifest.json").read_text())
    circuits = {}
    for name, entry in manifest["files"].items():
        with open(root / entry["qpy"], "rb") as handle:
            loaded_qpy = qpy.load(handle)[0]
        circuits[name] = {"qasm": qasm3.loads((root / entry["qasm"]).read_text()), "qpy": loaded_qpy}
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
