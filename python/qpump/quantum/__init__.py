"""The Qiskit side of qpump: circuits for the correlated state and the DM/XY contact, Aer runs with the
baths as noise, measurement and tomography from counts, and export for qubit hardware.

Conventions (docs/conventions.md, Qiskit conventions): qubit A = Qiskit qubit 0, B = qubit 1,
ancillas above; Qiskit is little-endian and its Z = diag(1, -1) = -sigma_z, so H_A = -Z/2 on q0.
Density matrices returned by this package are in qpump's order (index 2a + b, A first). The
experiment on hardware: :mod:`.backends` (where it runs), :mod:`.export` (the circuits),
:mod:`.experiment` (running them), :mod:`.analysis` (the counts).
"""

from __future__ import annotations

from .aer_pump import (
    TROTTER_BOUND,
    AerBackend,
    StepSegment,
    check_trotter_step,
    evolve_on_aer,
    evolve_split_reference,
    noise_free_states,
    run_aer_pump,
    run_split_reference_pump,
    trotter_error_estimate,
)
from .backends import DeviceSpec, Layout, choose_layout, resolve_backend
from .contact import append_contact, circuit_operator, contact_circuit, contact_operator
from .experiment import run_experiment
from .export import (
    DEFAULT_TIMES,
    ExportItem,
    circuit_set,
    compare_exports,
    export_circuits,
    load_exported,
    load_manifest,
    readout_circuits,
    to_qasm,
)
from .noise import (
    BathNoise,
    append_collision,
    bath_error,
    collision_circuit,
    gad_kraus,
    gad_parameters,
    gad_superoperator,
)
from .preparation import (
    BASIS_GATES,
    Branch,
    Preparation,
    SpectralForm,
    cx_count,
    preparation_of,
    prepare_optimal_state,
    prepare_state,
    spectral_form,
)
from .tomography import (
    SETTINGS,
    Estimate,
    TomographyResult,
    energy_circuit,
    estimate_energies,
    measure_preparation,
    measurement_circuit,
    pauli_expectations,
    project_to_state,
    sample_counts,
    setting_probabilities,
    state_tomography,
    tomography_circuits,
)
from .validation import export_rows, pump_rows, quantum_rows, splitting_order

__all__ = [
    # preparation
    "BASIS_GATES",
    "Branch",
    "Preparation",
    "SpectralForm",
    "spectral_form",
    "prepare_state",
    "prepare_optimal_state",
    "preparation_of",
    "cx_count",
    # contact
    "contact_circuit",
    "append_contact",
    "circuit_operator",
    "contact_operator",
    # noise
    "gad_kraus",
    "gad_parameters",
    "gad_superoperator",
    "bath_error",
    "BathNoise",
    "append_collision",
    "collision_circuit",
    # aer_pump
    "TROTTER_BOUND",
    "trotter_error_estimate",
    "check_trotter_step",
    "StepSegment",
    "evolve_on_aer",
    "evolve_split_reference",
    "noise_free_states",
    "AerBackend",
    "run_aer_pump",
    "run_split_reference_pump",
    # tomography
    "SETTINGS",
    "Estimate",
    "TomographyResult",
    "measurement_circuit",
    "energy_circuit",
    "tomography_circuits",
    "setting_probabilities",
    "pauli_expectations",
    "estimate_energies",
    "state_tomography",
    "project_to_state",
    "sample_counts",
    "measure_preparation",
    # backends and the experiment
    "DeviceSpec",
    "Layout",
    "resolve_backend",
    "choose_layout",
    "run_experiment",
    # export
    "DEFAULT_TIMES",
    "ExportItem",
    "circuit_set",
    "readout_circuits",
    "load_manifest",
    "to_qasm",
    "export_circuits",
    "load_exported",
    "compare_exports",
    # validation
    "quantum_rows",
    "splitting_order",
    "pump_rows",
    "export_rows",
]
