"""Analysis of the measured counts of the Sec. III experiment (``qpump experiment analyze``).

Input: the counts file written by ``qpump experiment run`` (format ``qpump-counts/1``) and the
``manifest.json`` of the exported circuit set (format ``qpump-circuits/2``) it belongs to. For each
preparation method present (``ancilla``: rho_0 purified with one ancilla; ``mixture``: its branches run
separately and combined with their weights) and every contact time t_i, the analysis reports with error
bars E_A, E_B, the SED Delta_AB = E_A - E_B, the state rho (qpump order, index 2a + b), its concurrence
and its mutual information (nats); each from the raw counts and readout-mitigated.

Estimators (those of :mod:`qpump.quantum.tomography`, applied to probability vectors):

- energies E_K = (P(K = 1) - P(K = 0)) / 2 from the ZZ setting (linear, unbiased);
- the state: the X-state model (populations from ZZ, the coherence rho_23 from XX, XY, YX, YY) is the
  main estimate; every state of this experiment is an X state, and for the rank-2 initial state this
  model keeps the zero population of |11> at zero, so the concurrence is not biased by lifted zero
  eigenvalues. The general nine-setting linear inversion is recorded beside it;
- the physical state: the linear-inversion estimate with its eigenvalues projected onto the simplex
  (Smolin, Gambetta & Smith, PRL 108, 070502 (2012)). This is the maximum-likelihood density matrix
  under the approximation that the errors of the linear-inversion estimate are independent Gaussian
  with equal variance (the Frobenius-nearest state). It is *not* the maximum-likelihood state under
  the actual multinomial likelihood of the counts; near the boundary of the state space (the
  rank-deficient states measured here) the two differ at the level of the statistical error.
  Concurrence and mutual information are those of the physical state.

Readout mitigation: the two calibration circuits (A and B prepared in |00> and |11>) give per-qubit
assignment matrices M_K[measured, prepared] (their marginals: A is the right bit of a count key, B the
left). qiskit-experiments' ``LocalReadoutMitigator`` inverts the tensor product; its mitigation matrix
is applied to each circuit's probability vector before the branches of a mixture are combined. The
result is a quasi-probability vector (entries may be slightly negative), which the linear estimators
take as they are; the projection then makes the state physical.

Why the tomography fit is qpump's own and not qiskit-experiments' ``StateTomography``: that experiment
generates and runs its own measurement circuits and fits the counts of one circuit per basis. Here the
circuits are exported and run elsewhere, and the mixture preparation is a weighted sum of branches run
as separate circuits (frequency sum_k w_k n_k / N_k); neither fits its interface.

Error bars: a parametric bootstrap over shots. Every circuit's counts, the readout calibration's
included (so the calibration's uncertainty propagates into the mitigated values), are resampled
multinomially from the observed frequencies; every quantity is recomputed; the error is the standard
deviation over replicas (seeded, reproducible). Everything is vectorised over replicas.

Predictions: the same estimators applied to the manifest's exact outcome probabilities, i.e. for
infinite shots: ``ideal`` from ``expected.probabilities``; ``noisy`` from ``noisy.raw`` (raw column)
and ``noisy.mitigated`` (mitigated column) when the manifest has them (device backends), else ideal.

Verdict: the anomalous energy exchange is E_A rising above its initial value while E_B falls below
its own, against the gradient T_A > T_B. The time is chosen before looking at the data: the t_i > 0
maximising min(E_A(t) - E_A(0), E_B(0) - E_B(t)) in the ideal prediction. There, per method,
N = min(z_A, z_B), z_A = (E_A(t) - E_A(0)) / s(E_A(t) - E_A(0)) (and z_B with E_B(0) - E_B(t)),
from the readout-mitigated estimates (raw reported too). The error of a difference is the bootstrap
spread of the difference itself: the two times share the readout calibration, so their mitigated
errors are correlated (for raw estimates this equals sqrt(s(t)^2 + s(0)^2) up to bootstrap noise).
The headline is the method with the larger N; "detected" means N >= 3.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from ..closed import energies_closed_form, rho_closed_form
from ..errors import InvalidParameterError, MissingExtraError
from ..info import concurrence, mutual_information
from ..output import check_output_dir, dumps, write_text_atomic
from .experiment import COUNTS_FORMAT
from .export import load_manifest, manifest_hash
from .pump_experiment import PUMP_EXPERIMENT, PumpExperimentAnalysis, analyze_pump
from .tomography import ESTIMATOR_MAPS, SETTINGS, Estimate, project_to_state

__all__ = [
    "COUNTS_FORMAT",
    "SCALARS",
    "DETECTION_SIGMA",
    "ExperimentAnalysis",
    "load_counts",
    "check_counts",
    "count_vector",
    "assignment_matrices",
    "mitigation_matrix",
    "mitigate",
    "estimate_quantities",
    "analyze",
    "write_analysis",
]

DETECTION_SIGMA = 3.0
METHODS = ("ancilla", "mixture")
COLUMNS = ("raw", "mitigated")
#: Scalar quantities per time (z-scores are given for these); rho and rho_general are 4x4.
SCALARS = ("E_A", "E_B", "sed", "concurrence", "mutual_information", "concurrence_general",
           "mutual_information_general")
MATRICES = ("rho", "rho_general")
_LABELS = {"E_A": "E_A", "E_B": "E_B", "sed": "SED", "concurrence": "C", "mutual_information": "I [nats]"}
_KEY = re.compile(r"[01]{2}")
# qpump's outcome index 2a + b <-> Qiskit's little-endian a + 2b (the permutation is its own inverse).
_QISKIT_ORDER = np.array([0, 2, 1, 3])
_ZZ = SETTINGS.index("ZZ")


def _model_maps(model: str) -> tuple[np.ndarray, np.ndarray]:
    """(maps (9, 16, 4), constant (16,)) of a tomography model with vec(rho) = constant + sum_s M_s p_s;
    a setting the model does not use gets a zero map."""
    maps, constant = ESTIMATOR_MAPS[model]
    stacked = np.zeros((len(SETTINGS), 16, 4), dtype=complex)
    for s, m in maps.items():
        stacked[SETTINGS.index(s)] = m
    return stacked, constant


_X_STATE_MAPS = _model_maps("x_state")
_GENERAL_MAPS = _model_maps("general")


# ---------------------------------------------------------------------------------------------------------
# Reading and checking the counts


def _fail(message: str) -> NoReturn:
    raise InvalidParameterError(message)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def count_vector(counts: Mapping[str, int], where: str = "counts") -> np.ndarray:
    """Outcome counts n(2a + b) (qpump order) from a Qiskit counts dict (keys "b a", spaces allowed).

    Raises
    ------
    InvalidParameterError
        For a key that is not a 2-bit string or a count that is not a non-negative integer.
    """
    n = np.zeros(4)
    for key, value in counts.items():
        bits = str(key).replace(" ", "")
        if not _KEY.fullmatch(bits):
            _fail(f"count key {key!r} of {where} is not a 2-bit string (B's bit, then A's)")
        if not _is_int(value) or value < 0:
            _fail(f"count {value!r} of key {key!r} of {where} is not a non-negative integer")
        n[2 * int(bits[1]) + int(bits[0])] += value
    return n


def _total(counts: Mapping[str, int], where: str) -> int:
    """The shots in a counts dict whose keys are bit strings (registers separated by spaces)."""
    total = 0
    for key, value in counts.items():
        if not re.fullmatch(r"[01]+( [01]+)*", str(key)):
            _fail(f"count key {key!r} of {where} is not a bit string")
        if not _is_int(value) or value < 0:
            _fail(f"count {value!r} of key {key!r} of {where} is not a non-negative integer")
        total += int(value)
    return total


def load_counts(path: str | os.PathLike) -> dict:
    """Read a counts file (format ``qpump-counts/1``) and check everything it can be checked for alone.

    Checks: valid JSON, the format, a manifest record with its sha256, for every circuit in ``counts``
    a positive number of shots in ``shots``, bit-string count keys, non-negative integer counts summing
    to the recorded shots.

    Raises
    ------
    InvalidParameterError
        One line naming the problem.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InvalidParameterError(f"counts file {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise InvalidParameterError(f"counts file {str(path)!r} is a folder, not a file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InvalidParameterError(f"counts file {str(path)!r} is not valid JSON: {err}") from None
    if not isinstance(data, dict) or data.get("format") != COUNTS_FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        _fail(f"counts file {str(path)!r} has format {found!r}, not {COUNTS_FORMAT!r}")
    record = data.get("manifest")
    if not isinstance(record, dict) or not isinstance(record.get("sha256"), str):
        _fail(f"counts file {str(path)!r} has no manifest record with its sha256")
    shots, counts = data.get("shots"), data.get("counts")
    if not isinstance(shots, dict) or not isinstance(counts, dict):
        _fail(f"counts file {str(path)!r} needs objects 'shots' and 'counts' keyed by circuit name")
    for name, circuit_counts in counts.items():
        if not isinstance(circuit_counts, dict):
            _fail(f"counts of circuit {name!r} in {str(path)!r} are not an object of count keys")
        if name not in shots:
            _fail(f"circuit {name!r} has counts but no entry in 'shots' of {str(path)!r}")
        recorded = shots[name]
        if not _is_int(recorded) or recorded < 0:
            _fail(f"shots of circuit {name!r} = {recorded!r} must be a positive integer")
        if recorded == 0:
            _fail(f"circuit {name!r} has zero shots in {str(path)!r}")
        total = _total(circuit_counts, f"circuit {name!r}")
        if total != recorded:
            _fail(f"counts of circuit {name!r} sum to {total} but its shots are recorded as {recorded}")
    return data


def check_counts(counts: dict, manifest: dict, manifest_path: str | os.PathLike) -> None:
    """Check that a counts file (as from :func:`load_counts`) belongs to a manifest and is complete.

    Checks: the sha256 of the manifest file, the backend and the layout (when the counts record them),
    no circuit unknown to the manifest, and counts for every circuit of the manifest.

    Raises
    ------
    InvalidParameterError
        One line naming the problem.
    """
    manifest_path = Path(manifest_path)
    file = manifest_path / "manifest.json" if manifest_path.is_dir() else manifest_path
    recorded, actual = counts["manifest"]["sha256"], manifest_hash(file)
    if recorded != actual:
        _fail(f"counts belong to another manifest: sha256 {recorded} != {actual} of {str(file)!r}")
    backend = manifest.get("backend", {}).get("name")
    if counts.get("backend") is not None and counts["backend"] != backend:
        _fail(f"counts were measured on backend {counts['backend']!r}, the manifest is for {backend!r}")
    if counts.get("layout") is not None:
        try:
            got = {k: int(v) for k, v in counts["layout"].items()}
        except (AttributeError, TypeError, ValueError):
            got = counts["layout"]
        if got != manifest.get("layout"):
            _fail(f"counts were measured on layout {counts['layout']!r}, the manifest pins "
                  f"{manifest.get('layout')!r}")
    unknown = sorted(set(counts["counts"]) - set(manifest["files"]))
    if unknown:
        _fail(f"{len(unknown)} circuit(s) of the counts are not in the manifest, e.g. {unknown[0]!r}")
    missing = [name for name in manifest["files"] if name not in counts["counts"]]
    if missing:
        _fail(f"{len(missing)} of {len(manifest['files'])} circuits of the manifest have no counts, "
              f"e.g. {missing[0]!r}: the run is incomplete")


def _resolve_manifest(counts: dict, counts_path: Path, manifest_path: str | os.PathLike | None) -> Path:
    if manifest_path is not None:
        return Path(manifest_path)
    recorded = counts["manifest"].get("path")
    if not isinstance(recorded, str) or not recorded:
        _fail(f"counts file {str(counts_path)!r} records no manifest path: give the manifest (--manifest)")
    path = Path(recorded)
    candidates = [path] if path.is_absolute() else [counts_path.parent / path, Path.cwd() / path]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    looked = " or ".join(repr(str(c)) for c in candidates)
    _fail(f"manifest {recorded!r} recorded in the counts is not found (looked for {looked}): "
          "give it with --manifest")


# ---------------------------------------------------------------------------------------------------------
# From probability vectors to quantities (shared by raw, mitigated and predicted data)


def assignment_matrices(p00: np.ndarray, p11: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-qubit assignment matrices M_K[measured, prepared] from the readout circuits, batched.

    Parameters
    ----------
    p00, p11 : (..., 4) arrays
        Outcome probabilities (qpump order 2a + b) of A and B prepared in |00> and |11>.

    Returns
    -------
    (M_A, M_B) : (..., 2, 2) arrays, columns summing to one (qiskit-experiments' convention).
    """
    grid00 = np.asarray(p00, dtype=float).reshape(*np.shape(p00)[:-1], 2, 2)  # [a, b]
    grid11 = np.asarray(p11, dtype=float).reshape(*np.shape(p11)[:-1], 2, 2)
    m_a = np.stack([grid00.sum(axis=-1), grid11.sum(axis=-1)], axis=-1)
    m_b = np.stack([grid00.sum(axis=-2), grid11.sum(axis=-2)], axis=-1)
    return m_a, m_b


def _mitigator_class():
    try:
        from qiskit_experiments.data_processing import LocalReadoutMitigator
    except ImportError:
        raise MissingExtraError(
            "readout mitigation needs qiskit-experiments: pip install 'qpump[hardware]'") from None
    return LocalReadoutMitigator


def mitigation_matrix(m_a: np.ndarray, m_b: np.ndarray, qubits: tuple[int, int] = (0, 1)) -> np.ndarray:
    """The inverse of the tensored assignment matrix, in qpump's outcome order (2a + b), batched.

    Built by qiskit-experiments' ``LocalReadoutMitigator`` with ``qubits = [A, B]`` (physical qubits).
    Its matrix is in Qiskit's little-endian order (index a + 2b: the first qubit is the least
    significant); rows and columns are permuted to qpump's order here.
    """
    mitigator_class = _mitigator_class()
    m_a, m_b = np.asarray(m_a, dtype=float), np.asarray(m_b, dtype=float)
    batch = m_a.shape[:-2]
    flat_a, flat_b = m_a.reshape(-1, 2, 2), m_b.reshape(-1, 2, 2)
    out = np.empty((flat_a.shape[0], 4, 4))
    physical = [int(qubits[0]), int(qubits[1])]
    for k in range(flat_a.shape[0]):
        mitigator = mitigator_class(assignment_matrices=[flat_a[k], flat_b[k]], qubits=physical)
        little = mitigator.mitigation_matrix(qubits=physical)
        out[k] = little[np.ix_(_QISKIT_ORDER, _QISKIT_ORDER)]
    return out.reshape(*batch, 4, 4)


def mitigate(probabilities: np.ndarray, p00: np.ndarray, p11: np.ndarray,
             qubits: tuple[int, int] = (0, 1)) -> np.ndarray:
    """Readout-mitigated quasi-probabilities of every circuit.

    Parameters
    ----------
    probabilities : (R, C, 4) array
        Outcome probabilities (qpump order) of C circuits in R replicas.
    p00, p11 : (R, 4) arrays
        Those of the readout calibration circuits in the same replicas.
    qubits : (int, int)
        The physical qubits of A and B.
    """
    inverse = mitigation_matrix(*assignment_matrices(p00, p11), qubits=qubits)
    return np.einsum("rij,rcj->rci", inverse, probabilities)


def _state(maps: tuple[np.ndarray, np.ndarray], groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    stacked, constant = maps
    linear = (constant + np.einsum("sij,...sj->...i", stacked, groups)).reshape(*groups.shape[:-2], 4, 4)
    return linear, project_to_state(linear)


def estimate_quantities(groups: np.ndarray) -> dict[str, np.ndarray]:
    """Every reported quantity from per-group outcome probabilities.

    Parameters
    ----------
    groups : (..., 9, 4) array
        Outcome probabilities (or quasi-probabilities) of the nine settings in
        :data:`~qpump.quantum.tomography.SETTINGS` order, qpump outcome order 2a + b.

    Returns
    -------
    dict name -> array of shape (...) for the scalars (E_A, E_B, sed, concurrence, mutual_information,
    concurrence_general, mutual_information_general), (..., 4, 4) for rho (X-state model, physical)
    and rho_general (nine-setting linear inversion, physical); also rho_linear (X-state, before the
    projection).
    """
    groups = np.asarray(groups, dtype=float)
    zz = groups[..., _ZZ, :]
    e_a = 0.5 * (zz[..., 2] + zz[..., 3] - zz[..., 0] - zz[..., 1])
    e_b = 0.5 * (zz[..., 1] + zz[..., 3] - zz[..., 0] - zz[..., 2])
    linear, rho = _state(_X_STATE_MAPS, groups)
    _, rho_general = _state(_GENERAL_MAPS, groups)
    return {
        "E_A": e_a,
        "E_B": e_b,
        "sed": e_a - e_b,
        "concurrence": np.asarray(concurrence(rho)),
        "mutual_information": np.asarray(mutual_information(rho)),
        "concurrence_general": np.asarray(concurrence(rho_general)),
        "mutual_information_general": np.asarray(mutual_information(rho_general)),
        "rho": rho,
        "rho_general": rho_general,
        "rho_linear": linear,
    }


# ---------------------------------------------------------------------------------------------------------
# The experiment's structure, read from the manifest


@dataclass(frozen=True)
class _Layout:
    names: list[str]  # circuits with data, contact circuits first, then readout_00, readout_11
    methods: tuple[str, ...]
    times: np.ndarray
    weights: np.ndarray  # (M, T, 9, C): group probabilities = weights @ circuit probabilities
    readout: tuple[int, int]  # indices of readout_00, readout_11 in names


def _structure(manifest: dict) -> _Layout:
    files = manifest["files"]
    times = np.asarray([float(t) for t in manifest["parameters"]["times"]])
    contact = [n for n, e in files.items() if e.get("kind") == "contact"]
    methods = tuple(m for m in METHODS if any(files[n]["method"] == m for n in contact))
    if not methods:
        _fail("the manifest has no contact circuits to analyse")
    for label in ("readout_00", "readout_11"):
        if label not in files:
            _fail(f"the manifest has no readout calibration circuit {label!r}: export the set again")
    names = contact + ["readout_00", "readout_11"]
    index = {n: k for k, n in enumerate(names)}
    weights = np.zeros((len(methods), times.size, len(SETTINGS), len(names)))
    for group in manifest["groups"].values():
        if group.get("kind") != "contact" or group["method"] not in methods:
            continue
        m, i, s = methods.index(group["method"]), int(group["time_index"]), SETTINGS.index(group["setting"])
        for name, w in zip(group["files"], group["weights"], strict=True):
            weights[m, i, s, index[name]] += float(w)
    covered = np.abs(weights.sum(axis=-1) - 1.0) < 1e-9
    if not covered.all():
        m, i, s = np.argwhere(~covered)[0]
        _fail(f"the manifest's groups do not cover method {methods[m]!r}, time index {i}, setting "
              f"{SETTINGS[s]} with weights summing to 1")
    return _Layout(names, methods, times, weights, (index["readout_00"], index["readout_11"]))


def _probabilities_of(manifest: dict, names: list[str], *path: str) -> np.ndarray | None:
    out = np.zeros((len(names), 4))
    for k, name in enumerate(names):
        entry: Any = manifest["files"][name]
        for key in path:
            if not isinstance(entry, dict) or key not in entry:
                return None
            entry = entry[key]
        out[k] = _probability_vector(entry)
    return out


def _probability_vector(probabilities: Mapping[str, float]) -> np.ndarray:
    """Outcome probabilities in qpump order (2a + b) from a dict keyed like Qiskit counts ("b a")."""
    p = np.zeros(4)
    for key, value in probabilities.items():
        bits = str(key).replace(" ", "")
        if not _KEY.fullmatch(bits):
            _fail(f"probability key {key!r} is not a 2-bit string")
        p[2 * int(bits[1]) + int(bits[0])] += float(value)
    return p


def _quantities(layout: _Layout, probabilities: np.ndarray) -> dict[str, np.ndarray]:
    """(R, C, 4) per-circuit probabilities -> quantities with leading axes (R, M, T)."""
    groups = np.einsum("mtsc,rcj->rmtsj", layout.weights, probabilities)
    return estimate_quantities(groups)


# ---------------------------------------------------------------------------------------------------------
# The result


def _estimate_json(value: np.ndarray, error: np.ndarray) -> dict:
    if np.iscomplexobj(value) or np.ndim(value) == 2:
        value, error = np.asarray(value), np.asarray(error)
        return {"value": {"real": value.real, "imag": value.imag},
                "error": {"real": error.real, "imag": error.imag}}
    return {"value": float(value), "error": float(error)}


@dataclass(frozen=True)
class ExperimentAnalysis:
    """The analysed experiment.

    Attributes
    ----------
    parameters : dict
        The manifest's parameter set (TA, TB, omega_c, delta, phi_v, phi_chi, times).
    backend : dict
        The manifest's backend record.
    layout : dict
        Physical qubits {"A", "B", "ancilla"}.
    shots : dict
        Shots per circuit.
    times : (T,) array
    methods : tuple of str
        Preparation methods present ("ancilla", "mixture").
    values, errors : dict
        ``values[method][column][quantity]``, column "raw" or "mitigated": arrays over times, shape (T,)
        for the scalars of :data:`SCALARS`, (T, 4, 4) for rho and rho_general (errors: std of real part +
        1j * std of imaginary part).
    predictions : dict
        ``predictions[method][source][quantity]``, source "ideal", "noisy_raw", "noisy_mitigated".
    readout : dict
        Assignment matrices M_K[measured, prepared] of A and B with their bootstrap errors.
    verdict_info : dict
        See :attr:`verdict` and :meth:`to_json`.
    has_noisy_prediction : bool
        False for an ideal-backend manifest (the noisy predictions are then the ideal ones).
    """

    parameters: dict
    backend: dict
    layout: dict
    shots: dict
    times: np.ndarray
    methods: tuple[str, ...]
    values: dict
    errors: dict
    predictions: dict
    readout: dict
    verdict_info: dict
    has_noisy_prediction: bool
    counts_path: str
    manifest_path: str
    manifest_sha256: str
    bootstrap: int
    seed: int

    @property
    def verdict(self) -> str:
        """The one-line verdict on the anomalous energy exchange."""
        return self.verdict_info["line"]

    def estimate(self, method: str, quantity: str, time_index: int, column: str = "mitigated") -> Estimate:
        """One scalar quantity at one time with its error."""
        return Estimate(float(self.values[method][column][quantity][time_index]),
                        float(self.errors[method][column][quantity][time_index]))

    def z_scores(self, method: str, column: str, against: str) -> dict[str, np.ndarray]:
        """(measured - prediction) / error per scalar and time; ``against`` "ideal" or "noisy".

        NaN where the error is zero.
        """
        source = "ideal" if against == "ideal" else f"noisy_{column}"
        out = {}
        for q in SCALARS:
            diff = self.values[method][column][q] - self.predictions[method][source][q]
            err = self.errors[method][column][q]
            out[q] = np.divide(diff, err, out=np.full(diff.shape, np.nan), where=err > 0)
        return out

    def to_json(self) -> dict:
        """A dict for strict JSON (:func:`qpump.output.dumps`)."""
        methods = {}
        for method in self.methods:
            points = []
            z = {c: {a: self.z_scores(method, c, a) for a in ("ideal", "noisy")} for c in COLUMNS}
            for i, t in enumerate(self.times):
                point: dict[str, Any] = {"t": float(t), "time_index": i}
                for column in COLUMNS:
                    point[column] = {q: _estimate_json(self.values[method][column][q][i],
                                                       self.errors[method][column][q][i])
                                     for q in (*SCALARS, *MATRICES)}
                point["predictions"] = {
                    source: {q: (float(v[q][i]) if q in SCALARS
                                 else {"real": v[q][i].real, "imag": v[q][i].imag})
                             for q in (*SCALARS, *MATRICES)}
                    for source, v in self.predictions[method].items()}
                point["z"] = {c: {a: {q: float(z[c][a][q][i]) for q in SCALARS} for a in z[c]} for c in z}
                points.append(point)
            methods[method] = {"points": points}
        return {
            "format": "qpump-analysis/1",
            "counts": self.counts_path,
            "manifest": {"path": self.manifest_path, "sha256": self.manifest_sha256},
            "parameters": self.parameters,
            "backend": self.backend,
            "layout": self.layout,
            "shots": {"total": int(sum(self.shots.values())), "per_circuit": self.shots},
            "bootstrap": {"replicas": self.bootstrap, "seed": self.seed},
            "estimators": {
                "energies": "E_K = (P(K=1) - P(K=0))/2 from the ZZ setting",
                "sed": "E_A - E_B",
                "rho": "X-state model (ZZ populations, XX/XY/YX/YY coherence), projected onto states "
                       "(Smolin-Gambetta-Smith); qpump order, index 2a + b",
                "rho_general": "nine-setting linear inversion, projected onto states",
                "concurrence, mutual_information": "of rho (nats); *_general: of rho_general",
                "errors": "standard deviation over a parametric bootstrap of every circuit's counts, "
                          "readout calibration included",
                "mitigation": "LocalReadoutMitigator (qiskit-experiments) from readout_00 and readout_11",
                "z": "(measured - prediction) / error; null where the error is zero",
            },
            "readout": self.readout,
            "has_noisy_prediction": self.has_noisy_prediction,
            "methods": methods,
            "verdict": self.verdict_info,
        }

    def summary_text(self) -> str:
        """A readable table per method: every time and scalar, mitigated and raw with errors, and the
        predictions."""
        p = self.parameters
        lines = [f"experiment: T_A = {p['TA']}, T_B = {p['TB']}, Omega = {p['omega_c']}, "
                 f"delta = {float(p['delta']):.4g}; backend {self.backend.get('name')}, layout "
                 f"A = {self.layout.get('A')}, B = {self.layout.get('B')}; "
                 f"{sum(self.shots.values())} shots, {self.bootstrap} bootstrap replicas"]
        noisy = "noisy mit" if self.has_noisy_prediction else "(= ideal)"
        header = (f"{'t':>7}  {'quantity':<9} {'mitigated':>18} {'raw':>18} {'ideal':>9} "
                  f"{noisy:>9} {'noisy raw':>9}")
        for method in self.methods:
            lines += ["", f"method: {method}", header]
            for i, t in enumerate(self.times):
                for q, label in _LABELS.items():
                    cells = []
                    for column in ("mitigated", "raw"):
                        v, e = self.values[method][column][q][i], self.errors[method][column][q][i]
                        cells.append(f"{v:+.4f} +/- {e:.4f}")
                    pred = self.predictions[method]
                    lines.append(f"{t:7.3g}  {label:<9} {cells[0]:>18} {cells[1]:>18} "
                                 f"{pred['ideal'][q][i]:+9.4f} {pred['noisy_mitigated'][q][i]:+9.4f} "
                                 f"{pred['noisy_raw'][q][i]:+9.4f}")
        lines += ["", self.verdict]
        return "\n".join(lines)

    def figure(self):
        """A figure like the paper's Fig. 1 for the measured pair: (a) E_A and E_B, (b) concurrence,
        (c) mutual information against t. Exact curves (qpump.closed), the noisy prediction at the
        measured times (dashed: mitigated, dotted: raw), data with error bars (filled: mitigated,
        open: raw; one marker per method)."""
        from matplotlib.lines import Line2D

        from ..figures import _pyplot, label_fig1_panels

        plt = _pyplot()
        p = self.parameters
        ta, tb, omega, delta = (float(p[k]) for k in ("TA", "TB", "omega_c", "delta"))
        phi_v = float(p.get("phi_v", delta))
        t_max = float(self.times.max()) if self.times.max() > 0 else 1.0
        fine = np.linspace(0.0, t_max, 400)
        e_a, e_b = energies_closed_form(fine, ta, tb, omega, delta)
        rho = rho_closed_form(fine, ta, tb, omega, phi_v)
        theory = {"concurrence": np.asarray(concurrence(rho)),
                  "mutual_information": np.asarray(mutual_information(rho))}

        fig, axes = plt.subplots(3, 1, figsize=(6.5, 8.5), sharex=True)
        axes[0].plot(fine, e_a, color="tab:red", lw=1.2)
        axes[0].plot(fine, e_b, color="tab:blue", lw=1.2)
        axes[1].plot(fine, theory["concurrence"], color="black", lw=1.2)
        axes[2].plot(fine, theory["mutual_information"], color="black", lw=1.2)
        panels = [(axes[0], "E_A", "tab:red"), (axes[0], "E_B", "tab:blue"),
                  (axes[1], "concurrence", "black"), (axes[2], "mutual_information", "black")]
        markers = {"ancilla": "o", "mixture": "s"}
        shift = 0.008 * t_max
        for k, method in enumerate(self.methods):
            for ax, q, color in panels:
                if self.has_noisy_prediction:
                    for source, ls in (("noisy_mitigated", "--"), ("noisy_raw", ":")):
                        ax.plot(self.times, self.predictions[method][source][q], ls=ls, color=color,
                                lw=0.8, alpha=0.7, marker=markers[method], ms=3, mfc="none")
                for j, column in enumerate(COLUMNS):
                    offset = shift * (2 * k + j - 1.5)
                    ax.errorbar(self.times + offset, self.values[method][column][q],
                                yerr=self.errors[method][column][q], fmt=markers[method], color=color,
                                mfc=color if column == "mitigated" else "none", ms=4.5, capsize=2, lw=0.9)
        handles = [Line2D([], [], color="tab:red", label=r"$E_A$ exact"),
                   Line2D([], [], color="tab:blue", label=r"$E_B$ exact")]
        handles += [Line2D([], [], color="gray", marker=markers[m], ls="none", label=f"{m}: mitigated")
                    for m in self.methods]
        handles += [Line2D([], [], color="gray", marker=markers[m], mfc="none", ls="none", label=f"{m}: raw")
                    for m in self.methods]
        if self.has_noisy_prediction:
            handles += [Line2D([], [], color="gray", ls="--", label="noisy prediction (mitigated)"),
                        Line2D([], [], color="gray", ls=":", label="noisy prediction (raw)")]
        axes[0].legend(handles=handles, fontsize="x-small", loc="best", ncol=2)
        axes[0].set_ylabel(r"local energy $E_K$ [$\hbar\omega$]")
        label_fig1_panels(axes, r"contact time $t$ [$1/\omega$]")
        fig.suptitle(rf"Experiment on {self.backend.get('name')}: $T_A = {ta:g}$, $T_B = {tb:g}$, "
                     rf"$\Omega = {omega:g}$, $\delta = {delta:.3g}$", fontsize="medium")
        fig.text(0.01, 0.005, self.verdict, fontsize=6, wrap=True)
        fig.tight_layout(rect=(0, 0.03, 1, 1))
        return fig


# ---------------------------------------------------------------------------------------------------------
# The verdict


def _z(diff: float, err: float) -> float:
    if err > 0:
        return diff / err
    return math.copysign(math.inf, diff) if diff != 0 else 0.0


def _verdict(layout: _Layout, parameters: dict, ideal: dict, central: dict, replicas: dict) -> dict:
    """Per method and column: the changes of E_A and E_B at the pre-chosen time and N = min(z_A, z_B)."""
    times = layout.times
    ta, tb = float(parameters["TA"]), float(parameters["TB"])
    zero = np.flatnonzero(times == 0.0)
    later = np.flatnonzero(times > 0.0)
    base: dict[str, Any] = {"significance": None, "detected": False, "time": None, "method": None,
                            "threshold_sigma": DETECTION_SIGMA, "methods": {}}
    if zero.size == 0 or later.size == 0:
        base["line"] = ("no claim on the anomalous energy exchange: the set needs t = 0 and a time t > 0 "
                        f"(times {[float(t) for t in times]})")
        return base
    i0 = int(zero[0])
    per_method = {}
    for m, method in enumerate(layout.methods):
        # The time is fixed by the ideal prediction alone, before the data are looked at.
        gain = np.minimum(ideal["E_A"][m, later] - ideal["E_A"][m, i0],
                          ideal["E_B"][m, i0] - ideal["E_B"][m, later])
        i = int(later[int(np.argmax(gain))])
        entry: dict[str, Any] = {"time": float(times[i]), "time_index": i,
                                 "predicted_gain": float(gain.max())}
        for column in COLUMNS:
            d_a = central[column]["E_A"][m, i] - central[column]["E_A"][m, i0]
            d_b = central[column]["E_B"][m, i] - central[column]["E_B"][m, i0]
            r = replicas[column]
            s_a = float(np.std(r["E_A"][:, m, i] - r["E_A"][:, m, i0], ddof=1))
            s_b = float(np.std(r["E_B"][:, m, i] - r["E_B"][:, m, i0], ddof=1))
            z_a, z_b = _z(float(d_a), s_a), _z(float(-d_b), s_b)
            entry[column] = {"dE_A": {"value": float(d_a), "error": s_a},
                             "dE_B": {"value": float(d_b), "error": s_b},
                             "z_A": z_a, "z_B": z_b, "significance": min(z_a, z_b)}
        per_method[method] = entry
    base["methods"] = per_method

    def part(method: str, column: str) -> str:
        e = per_method[method]
        c = e[column]
        return (f"{method}: E_A {c['dE_A']['value']:+.3f} +/- {c['dE_A']['error']:.3f}, "
                f"E_B {c['dE_B']['value']:+.3f} +/- {c['dE_B']['error']:.3f} at t = {e['time']:g}, "
                f"{c['significance']:.1f} sigma")

    mitigated = "; ".join(part(method, "mitigated") for method in layout.methods)
    raw = ", ".join(f"{method} {per_method[method]['raw']['significance']:.1f} sigma"
                    for method in layout.methods)
    best = max(layout.methods, key=lambda method: per_method[method]["mitigated"]["significance"])
    significance = per_method[best]["mitigated"]["significance"]
    base.update(significance=significance, method=best, time=per_method[best]["time"])
    if not ta > tb:
        base["line"] = (f"no claim on the anomalous energy exchange: T_A = {ta:g} <= T_B = {tb:g}, there is "
                        f"no gradient to go against (readout-mitigated changes from t = 0: {mitigated})")
        base["significance"] = None
        return base
    detected = significance >= DETECTION_SIGMA
    base["detected"] = bool(detected)
    head = (f"anomalous energy exchange detected at {significance:.1f} sigma (>= {DETECTION_SIGMA:g})"
            if detected else f"anomalous energy exchange not detected ({significance:.1f} sigma < "
                             f"{DETECTION_SIGMA:g})")
    base["line"] = (f"{head}, against T_A = {ta:g} > T_B = {tb:g}; changes from t = 0, readout-mitigated: "
                    f"{mitigated}; raw: {raw}")
    return base


# ---------------------------------------------------------------------------------------------------------
# The analysis


def analyze(counts_path: str | os.PathLike, manifest_path: str | os.PathLike | None = None, *,
            bootstrap: int = 200, seed: int = 1234) -> ExperimentAnalysis | PumpExperimentAnalysis:
    """Analyse the measured counts of the Sec. III experiment (or, for a set exported with
    ``--experiment pump``, of the pump cycle: :func:`qpump.quantum.pump_experiment.analyze_pump`).

    Parameters
    ----------
    counts_path : path
        The counts file (format ``qpump-counts/1``).
    manifest_path : path, optional
        The circuit set's manifest.json (or its folder); default: the path recorded in the counts,
        relative paths resolved against the counts file's folder, then the working directory.
    bootstrap : int
        Number of bootstrap replicas for the error bars (>= 2).
    seed : int
        Seed of the bootstrap.

    Raises
    ------
    InvalidParameterError
        For a counts file or manifest that is malformed, incomplete or of another experiment.
    MissingExtraError
        Without qiskit-experiments (needed for the readout mitigation).
    """
    if not _is_int(bootstrap) or bootstrap < 2:
        _fail(f"bootstrap = {bootstrap!r} must be an integer >= 2")
    if not _is_int(seed) or seed < 0:
        _fail(f"seed = {seed!r} must be a non-negative integer")
    _mitigator_class()  # fail early, before any work, when the extra is missing
    counts_path = Path(counts_path)
    data = load_counts(counts_path)
    located = _resolve_manifest(data, counts_path, manifest_path)
    manifest, _ = load_manifest(located)
    manifest_file = located if located.is_file() else located / "manifest.json"
    check_counts(data, manifest, manifest_file)
    if manifest.get("experiment") == PUMP_EXPERIMENT:
        return analyze_pump(data, manifest)

    layout = _structure(manifest)
    qubits = (int(manifest["layout"]["A"]), int(manifest["layout"]["B"]))
    n = np.stack([count_vector(data["counts"][name], f"circuit {name!r}") for name in layout.names])
    shots = np.array([int(data["shots"][name]) for name in layout.names])
    observed = n / shots[:, None]

    rng = np.random.default_rng(seed)
    resampled = rng.multinomial(shots, observed, size=(bootstrap, len(layout.names))) / shots[:, None]
    frequencies = np.concatenate([observed[None], resampled])  # replica 0 is the data
    r00, r11 = layout.readout
    columns = {"raw": frequencies,
               "mitigated": mitigate(frequencies, frequencies[:, r00], frequencies[:, r11], qubits)}
    m_a, m_b = assignment_matrices(frequencies[:, r00], frequencies[:, r11])
    worst = min(float(np.linalg.det(m_a[0])), float(np.linalg.det(m_b[0])))
    if worst <= 0:
        _fail("the readout calibration (readout_00, readout_11) reads a qubit no better than chance: "
              "readout mitigation is impossible")
    computed = {column: _quantities(layout, probabilities) for column, probabilities in columns.items()}

    ideal_p = _probabilities_of(manifest, layout.names, "expected", "probabilities")
    if ideal_p is None:
        _fail("the manifest has no expected probabilities: export the set again")
    noisy_raw = _probabilities_of(manifest, layout.names, "noisy", "raw")
    noisy_mit = _probabilities_of(manifest, layout.names, "noisy", "mitigated")
    has_noisy = noisy_raw is not None and noisy_mit is not None
    sources = {"ideal": ideal_p, "noisy_raw": ideal_p, "noisy_mitigated": ideal_p}
    if noisy_raw is not None and noisy_mit is not None:
        sources.update(noisy_raw=noisy_raw, noisy_mitigated=noisy_mit)
    predicted = {s: _quantities(layout, p[None]) for s, p in sources.items()}

    values: dict = {method: {} for method in layout.methods}
    errors: dict = {method: {} for method in layout.methods}
    for column, q in computed.items():
        for m, method in enumerate(layout.methods):
            values[method][column] = {k: q[k][0, m] for k in (*SCALARS, *MATRICES)}
            errors[method][column] = {k: _spread(q[k][1:, m]) for k in (*SCALARS, *MATRICES)}
    predictions = {method: {s: {k: q[k][0, m] for k in (*SCALARS, *MATRICES)} for s, q in predicted.items()}
                   for m, method in enumerate(layout.methods)}
    central = {c: {k: computed[c][k][0] for k in ("E_A", "E_B")} for c in COLUMNS}
    replicas = {c: {k: computed[c][k][1:] for k in ("E_A", "E_B")} for c in COLUMNS}
    verdict = _verdict(layout, manifest["parameters"], {k: predicted["ideal"][k][0] for k in ("E_A", "E_B")},
                       central, replicas)
    readout = {"A": {"qubit": qubits[0], "assignment": m_a[0], "error": m_a[1:].std(axis=0, ddof=1)},
               "B": {"qubit": qubits[1], "assignment": m_b[0], "error": m_b[1:].std(axis=0, ddof=1)},
               "convention": "M[measured, prepared]"}
    return ExperimentAnalysis(
        parameters=dict(manifest["parameters"]), backend=dict(manifest.get("backend", {})),
        layout=dict(manifest["layout"]), shots={name: int(data["shots"][name]) for name in layout.names},
        times=layout.times, methods=layout.methods, values=values, errors=errors, predictions=predictions,
        readout=readout, verdict_info=verdict, has_noisy_prediction=has_noisy, counts_path=str(counts_path),
        manifest_path=str(manifest_file), manifest_sha256=data["manifest"]["sha256"], bootstrap=bootstrap,
        seed=seed)


def _spread(samples: np.ndarray) -> np.ndarray:
    """Standard deviation over the first axis; complex: std of the real part + 1j std of the imaginary."""
    if np.iscomplexobj(samples):
        return samples.real.std(axis=0, ddof=1) + 1j * samples.imag.std(axis=0, ddof=1)
    return samples.std(axis=0, ddof=1)


def write_analysis(analysis: ExperimentAnalysis | PumpExperimentAnalysis, out_dir: str | Path
                   ) -> dict[str, Path]:
    """Write ``analysis.json`` (strict JSON) and ``fig1_experiment.png`` / ``.pdf`` into ``out_dir``
    (for the pump experiment ``fig6_experiment.*``).

    Every file is written atomically. Returns {"json", "png", "pdf"} -> path.
    """
    from ..figures import save

    stem = "fig6_experiment" if isinstance(analysis, PumpExperimentAnalysis) else "fig1_experiment"
    out = check_output_dir(out_dir)
    paths = {"json": out / "analysis.json", "png": out / f"{stem}.png", "pdf": out / f"{stem}.pdf"}
    write_text_atomic(paths["json"], dumps(analysis.to_json(), indent=1) + "\n")
    fig = analysis.figure()
    save(fig, paths["png"], close=False)
    save(fig, paths["pdf"])
    return paths
