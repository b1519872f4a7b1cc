"""Where the experiment runs: backends by name, one pinned physical layout, ISA circuits, and the
noisy-simulator prediction of what a device will measure.

Backend names (``qpump circuits export --backend``, ``qpump experiment run --backend``):

- ``ideal``: the logical circuits on a noise-free simulator;
- ``generic``: Qiskit's ``GenericBackendV2`` (5 qubits on a line, CX, its own random but seeded
  calibration data), a stand-in device that needs no extra package;
- ``fake_NAME``: a snapshot of an IBM device from ``qiskit_ibm_runtime.fake_provider``
  (``fake_sherbrooke`` has ECR gates, ``fake_torino`` CZ gates), simulated with its noise model;
- ``ibm:NAME``: a real device through ``QiskitRuntimeService`` (a saved account is needed).

The layout is pinned: every circuit of one experiment runs on the same physical qubits
(A, B, and the ancilla of the purified preparation, which needs a coupler to B), so branches of a
mixture and tomography settings are combined over one set of qubits. Without ``--layout`` qpump
picks the connected triple (A - B - ancilla) that minimises the sum of the two two-qubit gate
errors and the readout errors of A and B in the backend's calibration data. Transpiling keeps
that layout (``initial_layout`` with level-3 optimisation); the result is checked, and a circuit
that would leave the layout (routing swaps) is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from qiskit import QuantumCircuit

from ..errors import InvalidParameterError, MissingExtraError

__all__ = [
    "DeviceSpec",
    "Layout",
    "resolve_backend",
    "choose_layout",
    "parse_layout",
    "check_layout",
    "transpile_fixed",
    "noise_model_of",
    "readout_assignment",
    "noisy_probabilities",
    "two_qubit_gate_count",
]

OPTIMIZATION_LEVEL = 3
SEED_TRANSPILER = 20221206
GENERIC_QUBITS = 5
GENERIC_SEED = 2022
ACCOUNT_HELP = ('no saved IBM Quantum account: save one once with QiskitRuntimeService.save_account('
                'channel="ibm_quantum_platform", token="<API key>", instance="<CRN>", set_as_default=True)')
HARDWARE_EXTRA = "pip install 'qpump[hardware]'"


@dataclass(frozen=True)
class DeviceSpec:
    """A resolved backend.

    Attributes
    ----------
    name : str
        The name given (``ideal``, ``generic``, ``fake_sherbrooke``, ``ibm:ibm_torino``, ...).
    kind : {"ideal", "generic", "fake", "ibm"}
    backend : BackendV2 or None
        None for ``ideal``.
    """

    name: str
    kind: str
    backend: Any

    @property
    def simulated(self) -> bool:
        """True when the experiment runs on Aer (everything but ``ibm:``)."""
        return self.kind != "ibm"

    def describe(self) -> dict:
        """The manifest's record of the backend."""
        if self.backend is None:
            return {"name": self.name, "kind": self.kind, "num_qubits": None,
                    "basis_gates": ["cx", "rz", "sx", "x"], "two_qubit_gate": "cx"}
        return {"name": self.name, "kind": self.kind, "device": self.backend.name,
                "num_qubits": int(self.backend.num_qubits),
                "basis_gates": sorted(_gate_names(self.backend)),
                "two_qubit_gate": _two_qubit_gate_name(self.backend)}


@dataclass(frozen=True)
class Layout:
    """The physical qubits of one experiment: A, B and the ancilla (coupled to B)."""

    A: int
    B: int
    ancilla: int

    def for_width(self, num_qubits: int) -> list[int]:
        """``initial_layout`` of a logical circuit with qubits (A, B) or (A, B, ancilla)."""
        return [self.A, self.B, self.ancilla][:num_qubits]

    def as_dict(self) -> dict[str, int]:
        return {"A": self.A, "B": self.B, "ancilla": self.ancilla}


def _fake_provider():
    try:
        from qiskit_ibm_runtime import fake_provider
    except ImportError:
        raise MissingExtraError(f"fake devices need qiskit-ibm-runtime: {HARDWARE_EXTRA}") from None
    return fake_provider


def fake_backend_names() -> list[str]:
    """The ``fake_*`` names that resolve (from qiskit_ibm_runtime.fake_provider)."""
    provider = _fake_provider()
    names = []
    for attr in dir(provider):
        cls = getattr(provider, attr)
        if attr.startswith("Fake") and isinstance(cls, type) and hasattr(cls, "target") \
                and not attr.endswith("V2") and attr != "FakeProviderForBackendV2":
            names.append("fake_" + attr[4:].lower())
    return sorted(names)


def _fake_class(name: str):
    provider = _fake_provider()
    wanted = name.replace("_", "").lower()
    for attr in dir(provider):
        if attr.lower() == wanted and isinstance(getattr(provider, attr), type):
            return getattr(provider, attr)
    known = fake_backend_names()
    raise InvalidParameterError(
        f"backend = {name!r} is not a fake device of qiskit_ibm_runtime.fake_provider "
        f"(e.g. {', '.join(n for n in ('fake_sherbrooke', 'fake_torino', 'fake_brisbane') if n in known)}; "
        f"{len(known)} in all)")


def resolve_backend(name: str) -> DeviceSpec:
    """Resolve a backend name (see the module docstring); bad names raise InvalidParameterError."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidParameterError(f"backend = {name!r} must be ideal, generic, fake_NAME or ibm:NAME")
    name = name.strip()
    if name == "ideal":
        return DeviceSpec(name, "ideal", None)
    if name == "generic":
        from qiskit.providers.fake_provider import GenericBackendV2
        from qiskit.transpiler import CouplingMap

        backend = GenericBackendV2(GENERIC_QUBITS, coupling_map=CouplingMap.from_line(GENERIC_QUBITS),
                                   seed=GENERIC_SEED)
        return DeviceSpec(name, "generic", backend)
    if name.startswith("fake_"):
        return DeviceSpec(name, "fake", _fake_class(name)())
    if name.startswith("ibm:") and len(name) > 4:
        return DeviceSpec(name, "ibm", _ibm_backend(name[4:]))
    raise InvalidParameterError(
        f"backend = {name!r} is unknown: use ideal, generic, fake_NAME (e.g. fake_sherbrooke) or ibm:NAME")


def runtime_service():
    """QiskitRuntimeService from the user's saved account (InvalidParameterError without one)."""
    try:
        from qiskit_ibm_runtime import QiskitRuntimeService
        from qiskit_ibm_runtime.accounts import AccountNotFoundError
    except ImportError:
        raise MissingExtraError(f"ibm: backends need qiskit-ibm-runtime: {HARDWARE_EXTRA}") from None
    try:
        return QiskitRuntimeService()
    except AccountNotFoundError:
        raise InvalidParameterError(ACCOUNT_HELP) from None


def _ibm_backend(device: str):  # pragma: no cover - needs an account and the network
    service = runtime_service()
    try:
        return service.backend(device)
    except Exception as err:  # the runtime raises its own QiskitBackendNotFoundError
        raise InvalidParameterError(f"backend = 'ibm:{device}' is not available to this account: {err}") \
            from None


def _gate_names(backend) -> set[str]:
    skip = {"for_loop", "switch_case", "if_else", "while_loop", "delay", "reset", "measure", "id"}
    return {n for n in backend.target.operation_names if n not in skip}


def _two_qubit_gate_name(backend) -> str:
    target = backend.target
    names = [n for n in sorted(_gate_names(backend))
             if getattr(target.operation_from_name(n), "num_qubits", 0) == 2]
    if not names:
        raise InvalidParameterError(f"backend {backend.name!r} has no two-qubit gate")
    return names[0]


def _edge_errors(backend) -> dict[tuple[int, int], float]:
    """Error of the two-qubit gate per undirected coupler (the lower of its two directions)."""
    target = backend.target
    gate = _two_qubit_gate_name(backend)
    errors: dict[tuple[int, int], float] = {}
    for qargs, props in target[gate].items():
        if qargs is None or len(qargs) != 2:
            continue
        key = (min(qargs), max(qargs))
        error = props.error if props is not None and props.error is not None else 0.0
        errors[key] = min(errors.get(key, np.inf), float(error))
    return errors


def _readout_error(backend, qubit: int) -> float:
    props = backend.target["measure"].get((qubit,)) if "measure" in backend.target else None
    return float(props.error) if props is not None and props.error is not None else 0.0


def neighbours_of(backend) -> dict[int, dict[int, float]]:
    """Every qubit's coupled neighbours with the error of the two-qubit gate between them."""
    neighbours: dict[int, dict[int, float]] = {}
    for (p, q), error in _edge_errors(backend).items():
        neighbours.setdefault(p, {})[q] = error
        neighbours.setdefault(q, {})[p] = error
    return neighbours


def check_roles(backend, roles: dict[str, int]) -> None:
    """A user's ``--layout``: every qubit exists on ``backend`` and none is repeated."""
    n = int(backend.num_qubits)
    for role, q in roles.items():
        if not 0 <= q < n:
            raise InvalidParameterError(f"--layout: qubit {role} = {q} does not exist on {backend.name} "
                                        f"(qubits 0..{n - 1})")
    if len(set(roles.values())) != len(roles):
        raise InvalidParameterError(f"--layout = {','.join(map(str, roles.values()))} repeats a qubit")


def choose_layout(backend) -> Layout:
    """The connected triple A - B - ancilla of least two-qubit gate + readout error (module docstring)."""
    neighbours = neighbours_of(backend)
    best, best_cost = None, np.inf
    for b, around in sorted(neighbours.items()):
        for a, error_ab in sorted(around.items()):
            for anc, error_b_anc in sorted(around.items()):
                if anc == a:
                    continue
                cost = error_ab + error_b_anc + _readout_error(backend, a) + _readout_error(backend, b)
                if cost < best_cost:
                    best, best_cost = Layout(a, b, anc), cost
    if best is None:
        raise InvalidParameterError(f"backend {backend.name!r} has no three connected qubits A - B - ancilla")
    return best


def parse_layout(text: str) -> tuple[int, ...]:
    """``"A,B"`` or ``"A,B,ANCILLA"`` as physical qubit indices."""
    try:
        qubits = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise InvalidParameterError(
            f"--layout = {text!r} must be two or three qubit indices A,B[,ANCILLA] (e.g. 12,13,14)") from None
    if len(qubits) not in (2, 3, 4):
        raise InvalidParameterError(f"--layout = {text!r} must name 2 or 3 qubits (A,B[,ANCILLA]), or 4 "
                                    "for --experiment pump (a_A,A,B,a_B)")
    return qubits


def check_layout(backend, qubits: Sequence[int]) -> Layout:
    """Validate a user's layout on ``backend``: existing, distinct qubits; A-B and B-ancilla coupled.
    Without an ancilla, the best-calibrated neighbour of B is taken."""
    if len(qubits) > 3:
        raise InvalidParameterError(f"--layout = {','.join(map(str, qubits))}: four qubits are for "
                                    "--experiment pump; this experiment takes A,B[,ANCILLA]")
    check_roles(backend, dict(zip(("A", "B", "ancilla"), qubits, strict=False)))
    edges = _edge_errors(backend)
    a, b = qubits[0], qubits[1]
    if (min(a, b), max(a, b)) not in edges:
        raise InvalidParameterError(f"--layout: qubits A = {a} and B = {b} are not connected on "
                                    f"{backend.name} (no two-qubit gate between them)")
    if len(qubits) == 3:
        anc = qubits[2]
        if (min(b, anc), max(b, anc)) not in edges:
            raise InvalidParameterError(f"--layout: the ancilla {anc} is not connected to B = {b} on "
                                        f"{backend.name} (the purified preparation needs that coupler)")
        return Layout(a, b, anc)
    candidates = {(q if p == b else p): e for (p, q), e in edges.items() if b in (p, q)}
    candidates.pop(a, None)
    if not candidates:
        raise InvalidParameterError(f"--layout: B = {b} has no neighbour besides A = {a} for the ancilla")
    return Layout(a, b, min(candidates, key=lambda q: (candidates[q], q)))


def transpile_fixed(circuits: Sequence[QuantumCircuit], backend, layout) -> list[QuantumCircuit]:
    """ISA circuits on exactly the layout's qubits; InvalidParameterError if a circuit left them.

    ``layout`` gives the physical qubits of a circuit's logical ones (``for_width(num_qubits)``) and
    names them (``as_dict()``): a :class:`Layout` or the pump's line
    (:class:`qpump.quantum.collision_pump.LineLayout`).
    """
    from qiskit import transpile

    out = []
    for qc in circuits:
        isa = transpile(qc, backend=backend, initial_layout=layout.for_width(qc.num_qubits),
                        optimization_level=OPTIMIZATION_LEVEL, seed_transpiler=SEED_TRANSPILER)
        allowed = set(layout.for_width(qc.num_qubits))
        used = {isa.find_bit(q).index for inst in isa.data for q in inst.qubits}
        final = isa.layout.final_index_layout()[: qc.num_qubits] if isa.layout is not None else None
        if not used <= allowed or final != layout.for_width(qc.num_qubits):
            raise InvalidParameterError(
                f"circuit {qc.name!r} cannot stay on the layout {layout.as_dict()} of {backend.name} "
                f"(it would use qubits {sorted(used)}); choose connected qubits with --layout")
        out.append(isa)
    return out


def two_qubit_gate_count(circuit: QuantumCircuit) -> int:
    """Number of two-qubit gates (measurements and barriers excluded)."""
    return sum(1 for inst in circuit.data
               if inst.operation.num_qubits == 2 and inst.operation.name not in ("barrier", "measure"))


def noise_model_of(backend, qubits: Iterable[int] | None = None):
    """Aer's noise model of a device (None for the ideal backend).

    With ``qubits``, only the errors acting within those qubits, built from the same device models
    (gate errors with thermal relaxation, readout errors) as ``NoiseModel.from_backend``: identical
    for circuits on those qubits (tested), and a simulation of a 127-qubit device's noise then
    costs 0.1 s a job instead of 1.6 s, most of which went into handing Aer the errors of every
    other qubit.
    """
    if backend is None:
        return None
    from qiskit_aer.noise import NoiseModel

    if qubits is None:
        return NoiseModel.from_backend(backend)
    from warnings import catch_warnings, filterwarnings

    from qiskit_aer.noise.device.models import basic_device_gate_errors, basic_device_readout_errors

    keep = set(qubits)
    model = NoiseModel(basis_gates=backend.operation_names)
    for error_qubits, error in basic_device_readout_errors(target=backend.target):
        if set(error_qubits) <= keep:
            model.add_readout_error(error, error_qubits)
    with catch_warnings():
        filterwarnings("ignore", category=DeprecationWarning, module="qiskit_aer.noise")
        gate_errors = basic_device_gate_errors(target=backend.target)
    for name, error_qubits, error in gate_errors:
        if set(error_qubits) <= keep:
            model.add_quantum_error(error, name, error_qubits)
    return model


def readout_assignment(backend, qubit: int) -> np.ndarray:
    """The readout assignment matrix M[prepared, measured] that Aer's device noise model applies."""
    from qiskit_aer.noise.device.models import basic_device_readout_errors

    for qubits, error in basic_device_readout_errors(target=backend.target):
        if list(qubits) == [qubit]:
            return np.asarray(error.probabilities, dtype=float)
    return np.eye(2)


def noisy_probabilities(isa_circuits: Sequence[QuantumCircuit], backend, layout: Layout,
                        noise_model=None) -> tuple[np.ndarray, np.ndarray]:
    """Exact outcome probabilities (index 2a + b) of measured ISA circuits under the device's noise.

    Returns ``(gates, raw)``: ``gates`` with the gate and idle noise only (what perfect readout
    mitigation would recover), ``raw`` with the readout error applied as well (what the counts
    estimate). Density-matrix simulation of the pre-measurement state of A and B; Aer drops the idle
    qubits of the device.
    """
    from qiskit_aer import AerSimulator

    if noise_model is None:
        noise_model = noise_model_of(backend, layout.as_dict().values())
    runs = []
    for isa in isa_circuits:
        state = isa.remove_final_measurements(inplace=False)
        state.save_density_matrix(qubits=[layout.A, layout.B])
        runs.append(state)
    simulator = AerSimulator(method="density_matrix", noise_model=noise_model)
    result = simulator.run(runs).result()
    gates = np.empty((len(runs), 4))
    for k in range(len(runs)):
        little = np.real(np.diag(np.asarray(result.data(k)["density_matrix"])))  # index a + 2b
        gates[k] = np.clip(little[[0, 2, 1, 3]], 0.0, None)  # -> 2a + b
    readout = np.kron(readout_assignment(backend, layout.A), readout_assignment(backend, layout.B))
    return gates, gates @ readout
