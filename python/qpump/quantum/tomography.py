"""What hardware returns is counts: energy measurement (Z basis) and two-qubit state tomography.

Measurement circuits append a basis change and measure qubit A into classical bit 0 and B into bit 1,
so a Qiskit count key reads "b a" (bit 1 first). A setting is a two-letter label, the basis of A then
of B, from X, Y, Z: X is measured after H, Y after S^dagger H; outcome 0 is the +1 eigenvalue.

Estimators (all from outcome frequencies, no fitting):

- energies: E_K = Tr(H_K rho) = (P(K = 1) - P(K = 0)) / 2 with H = sigma_z/2, |1> excited (note:
  Qiskit's Z = diag(1, -1) = -sigma_z), from the ZZ setting;
- tomography: linear inversion rho = (1/4) sum_{P,Q in I,X,Y,Z} <P (x) Q> P (x) Q over the nine
  settings, with <P (x) I> averaged over the three settings that measure P on A (likewise for B).
  rho is linear in the nine probability vectors, so the standard error of every entry and of every
  linear observable follows exactly from the multinomial covariance (diag(p) - p p^T) / shots;
- concurrence and mutual information (nats) of the nearest physical state (eigenvalues projected
  onto the simplex as in Smolin, Gambetta & Smith, PRL 108, 070502 (2012)), with errors from a
  parametric bootstrap of the counts (seeded, reproducible).

A preparation that is a mixture of branches is measured branch by branch: the data of a setting is a
list of (weight, counts); the frequency estimate is sum_k w_k n_k / N_k and its covariance
sum_k w_k^2 Cov_k. Every standard error scales as 1/sqrt(shots).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from qiskit import ClassicalRegister, QuantumCircuit

from .. import _validate as check
from ..errors import InvalidParameterError
from ..info import concurrence, mutual_information
from ..states import H_A, H_B

__all__ = [
    "SETTINGS",
    "PAULI",
    "ESTIMATOR_MAPS",
    "Estimate",
    "measurement_circuit",
    "energy_circuit",
    "tomography_circuits",
    "setting_probabilities",
    "pauli_expectations",
    "estimate_energies",
    "TomographyResult",
    "state_tomography",
    "project_to_state",
    "sample_counts",
    "measure_preparation",
]

SETTINGS = tuple(a + b for a in "XYZ" for b in "XYZ")
PAULI = {
    "I": np.eye(2, dtype=complex),
    "X": np.array([[0, 1], [1, 0]], dtype=complex),
    "Y": np.array([[0, -1j], [1j, 0]], dtype=complex),
    "Z": np.array([[1, 0], [0, -1]], dtype=complex),  # Qiskit's Z; qpump's sigma_z is -Z
}
# Outcome index o = 2a + b; sign of a Pauli on A, on B, and on both, for each outcome.
_SIGN_A = np.array([1, 1, -1, -1], dtype=float)
_SIGN_B = np.array([1, -1, 1, -1], dtype=float)
# Rotation taking the eigenbasis of each Pauli to the computational basis (as applied before measuring).
_ROTATION = {
    "X": np.array([[1, 1], [1, -1]], dtype=complex) / math.sqrt(2),  # H
    "Y": np.array([[1, -1j], [1, 1j]], dtype=complex) / math.sqrt(2),  # H S^dagger
    "Z": np.eye(2, dtype=complex),
}

CountData = Mapping[str, int] | Sequence[tuple[float, Mapping[str, int]]]


@dataclass(frozen=True)
class Estimate:
    """A value with its one-standard-error bar."""

    value: float
    error: float

    def __iter__(self):
        return iter((self.value, self.error))

    @property
    def z(self) -> float:
        """value / error, the significance of a non-zero value (inf for an exact non-zero value)."""
        if self.error == 0.0:
            return 0.0 if self.value == 0.0 else math.copysign(math.inf, self.value)
        return self.value / self.error


def _check_setting(setting: str) -> str:
    if setting not in SETTINGS:
        raise InvalidParameterError(f"setting = {setting!r} must be one of {', '.join(SETTINGS)}")
    return setting


def measurement_circuit(prep: QuantumCircuit, setting: str = "ZZ",
                        system: tuple[int, int] = (0, 1)) -> QuantumCircuit:
    """``prep`` followed by the basis change of ``setting`` and the measurement of A -> c0, B -> c1.

    Parameters
    ----------
    prep : QuantumCircuit
        A measurement-free circuit preparing the state of interest.
    setting : str
        Two letters from X, Y, Z: the basis of A, then of B.
    system : (int, int)
        The qubits playing A and B.
    """
    _check_setting(setting)
    qc = prep.copy(name=f"{prep.name}_{setting}")
    qc.add_register(ClassicalRegister(2, "meas"))
    for basis, qubit in zip(setting, system, strict=True):
        if basis == "Y":
            qc.sdg(qubit)
        if basis in "XY":
            qc.h(qubit)
    qc.measure(system[0], qc.clbits[-2])
    qc.measure(system[1], qc.clbits[-1])
    return qc


def energy_circuit(prep: QuantumCircuit, system: tuple[int, int] = (0, 1)) -> QuantumCircuit:
    """The Z-basis measurement of A and B (for E_A, E_B and the populations)."""
    return measurement_circuit(prep, "ZZ", system)


def tomography_circuits(prep: QuantumCircuit, system: tuple[int, int] = (0, 1)) -> dict[str, QuantumCircuit]:
    """The nine measurement circuits of two-qubit state tomography, keyed by setting."""
    return {s: measurement_circuit(prep, s, system) for s in SETTINGS}


def setting_probabilities(rho: np.ndarray, setting: str) -> np.ndarray:
    """Exact outcome probabilities P(a, b) (index 2a + b) of ``setting`` on ``rho`` (qpump order)."""
    _check_setting(setting)
    rot = np.kron(_ROTATION[setting[0]], _ROTATION[setting[1]])
    return np.clip(np.real(np.diag(rot @ np.asarray(rho, dtype=complex) @ rot.conj().T)), 0.0, None)


def pauli_expectations(rho: np.ndarray, setting: str) -> dict[str, float]:
    """Exact <P (x) I>, <I (x) Q>, <P (x) Q> measured by ``setting`` = PQ (Qiskit's Pauli matrices)."""
    p = setting_probabilities(rho, setting)
    a, b = setting[0], setting[1]
    return {f"{a}I": float(_SIGN_A @ p), f"I{b}": float(_SIGN_B @ p), setting: float(_SIGN_A * _SIGN_B @ p)}


def _as_branches(data: CountData) -> list[tuple[float, Mapping[str, int]]]:
    if isinstance(data, Mapping):
        return [(1.0, data)]
    return [(float(w), c) for w, c in data]


def _frequencies(counts: Mapping[str, int]) -> tuple[np.ndarray, int]:
    """Outcome counts n(2a + b) and the number of shots from a Qiskit counts dict (key "b a")."""
    n = np.zeros(4)
    for key, value in counts.items():
        bits = key.replace(" ", "")
        if len(bits) < 2 or set(bits) - {"0", "1"}:
            raise InvalidParameterError(f"count key {key!r} is not a bit string of A and B")
        n[2 * int(bits[-1]) + int(bits[-2])] += value
    shots = int(n.sum())
    if shots <= 0:
        raise InvalidParameterError("counts are empty: shots must be >= 1")
    return n, shots


def _probability_estimate(data: CountData) -> tuple[np.ndarray, np.ndarray]:
    """Weighted frequency estimate of the outcome distribution and its covariance."""
    p, cov = np.zeros(4), np.zeros((4, 4))
    for weight, counts in _as_branches(data):
        n, shots = _frequencies(counts)
        q = n / shots
        p += weight * q
        cov += weight * weight * (np.diag(q) - np.outer(q, q)) / shots
    return p, cov


def estimate_energies(data: CountData) -> tuple[Estimate, Estimate]:
    """(E_A, E_B) with standard errors from Z-basis (ZZ setting) counts."""
    p, cov = _probability_estimate(data)
    out = []
    for sign in (_SIGN_A, _SIGN_B):
        row = -0.5 * sign  # E = -<Z>/2
        out.append(Estimate(float(row @ p), float(math.sqrt(max(row @ cov @ row, 0.0)))))
    return out[0], out[1]


def _general_maps() -> dict[str, np.ndarray]:
    """M_s (16 x 4 complex) with vec(rho) = vec(I/4) + sum_s M_s p_s (qpump order, A first)."""
    maps = {s: np.zeros((16, 4), dtype=complex) for s in SETTINGS}
    for pa in "IXYZ":
        for pb in "IXYZ":
            if pa == pb == "I":
                continue
            op = np.kron(PAULI[pa], PAULI[pb]).reshape(-1) / 4
            compatible = [s for s in SETTINGS if pa in ("I", s[0]) and pb in ("I", s[1])]
            sign = (_SIGN_A if pa != "I" else 1.0) * (_SIGN_B if pb != "I" else 1.0) * np.ones(4)
            for s in compatible:
                maps[s] += np.outer(op, sign) / len(compatible)
    return maps


def _x_state_maps() -> dict[str, np.ndarray]:
    """M_s of the X-state estimator: populations from ZZ alone; rho_23 = <01|rho|10> =
    (<XX> + <YY> + i <XY> - i <YX>) / 4, rho_32 its conjugate; all other entries zero."""
    maps = {s: np.zeros((16, 4), dtype=complex) for s in ("ZZ", "XX", "XY", "YX", "YY")}
    for j in range(4):
        maps["ZZ"][5 * j, j] = 1.0  # vec index of rho_jj
    both = _SIGN_A * _SIGN_B
    for setting, coefficient in (("XX", 1.0), ("YY", 1.0), ("XY", 1j), ("YX", -1j)):
        maps[setting][1 * 4 + 2] += coefficient * both / 4
        maps[setting][2 * 4 + 1] += np.conj(coefficient) * both / 4
    return maps


#: The linear estimators of :func:`state_tomography`, model -> (M_s per setting, constant):
#: vec(rho) = constant + sum_s M_s p_s (shared with :mod:`qpump.quantum.analysis`).
ESTIMATOR_MAPS = {
    "general": (_general_maps(), np.eye(4, dtype=complex).reshape(-1) / 4),
    "x_state": (_x_state_maps(), np.zeros(16, dtype=complex)),
}


def project_to_state(rho: np.ndarray) -> np.ndarray:
    """The states nearest to Hermitian, unit-trace ``rho`` (d, d) or (..., d, d): eigenvalues projected
    onto the simplex (Smolin, Gambetta & Smith, PRL 108, 070502 (2012)): the smallest eigenvalues are
    zeroed while their sum, spread over the rest, would leave the next one negative."""
    rho = np.asarray(rho, dtype=complex)
    mu, vecs = np.linalg.eigh((rho + np.swapaxes(rho.conj(), -1, -2)) / 2)  # ascending
    d = mu.shape[-1]
    lam = np.zeros_like(mu)
    carried = np.zeros(mu.shape[:-1])
    done = np.zeros(mu.shape[:-1], dtype=bool)
    above = np.arange(d)
    for i in range(d):
        keep = d - i
        drop = ~done & (mu[..., i] + carried / keep < 0)
        carried = np.where(drop, carried + mu[..., i], carried)
        settle = ~done & ~drop
        lam = np.where(settle[..., None] & (above >= i), mu + (carried / keep)[..., None], lam)
        done |= settle
    return (vecs * lam[..., None, :]) @ np.swapaxes(vecs.conj(), -1, -2)


@dataclass(frozen=True)
class TomographyResult:
    """Linear-inversion tomography with error bars.

    Attributes
    ----------
    model : {"general", "x_state"}
        The estimator (see :func:`state_tomography`).
    rho : (4, 4) array
        Linear-inversion estimate (qpump order; Hermitian, possibly slightly non-positive).
    rho_error : (4, 4) complex array
        Standard errors: real part = error of Re rho_ij, imaginary part = error of Im rho_ij.
    physical : (4, 4) array
        The nearest density matrix (:func:`project_to_state`).
    concurrence, mutual_information : Estimate
        Of the physical state (mutual information in nats); errors by parametric bootstrap.
    shots : int
        Total number of shots used.
    """

    model: str
    rho: np.ndarray
    rho_error: np.ndarray
    physical: np.ndarray
    concurrence: Estimate
    mutual_information: Estimate
    shots: int
    _p: dict
    _cov: dict

    def expectation(self, observable: np.ndarray) -> Estimate:
        """Tr(O rho) of a Hermitian 4x4 observable (qpump order) with its exact linear standard error."""
        obs = check.hermitian("observable", observable, 4)
        maps, constant = ESTIMATOR_MAPS[self.model]
        weights = obs.T.reshape(-1)  # Tr(O X) = vec(O^T) . vec(X)
        value, var = float(np.real(weights @ constant)), 0.0
        for s, m in maps.items():
            row = np.real(weights @ m)
            value += row @ self._p[s]
            var += row @ self._cov[s] @ row
        return Estimate(float(value), float(math.sqrt(max(var, 0.0))))

    @property
    def energies(self) -> tuple[Estimate, Estimate]:
        """(E_A, E_B) with standard errors."""
        return self.expectation(H_A), self.expectation(H_B)


def _nonlinear(rho: np.ndarray) -> tuple[float, float]:
    phys = project_to_state(rho)
    return float(concurrence(phys)), float(mutual_information(phys))


def _invert(model: str, ps: Mapping[str, np.ndarray]) -> np.ndarray:
    maps, constant = ESTIMATOR_MAPS[model]
    return (constant + sum(m @ ps[s] for s, m in maps.items())).reshape(4, 4)


def state_tomography(data: Mapping[str, CountData], *, model: str = "general", bootstrap: int = 200,
                     seed: int = 1234) -> TomographyResult:
    """Two-qubit state tomography from counts, with error bars.

    Parameters
    ----------
    data : mapping setting -> counts
        Counts of each setting (a Qiskit counts dict), or a list of (weight, counts) per branch of a mixture.
    model : {"general", "x_state"}
        ``"general"``: linear inversion over all nine settings, for any state. ``"x_state"``: for states of
        the X form of Eq. 8 (every state of the paper: the preparations and the contact keep it), from the
        settings ZZ, XX, XY, YX, YY only: populations straight from the ZZ frequencies (a population
        that is exactly zero, like |11> of the optimal state, is then estimated as zero) and rho_23 from
        the four XY-plane settings. With it the concurrence and mutual information converge as
        1/sqrt(shots) also for the rank-2 optimal state; the general estimator, whose projection
        onto states lifts the zero eigenvalues by ~shots^{-1/2}, biases the concurrence by
        ~shots^{-1/4} there.
    bootstrap : int
        Number of parametric bootstrap resamples for the concurrence and mutual-information errors (>= 2).
    seed : int
        Seed of the bootstrap.
    """
    if model not in ESTIMATOR_MAPS:
        raise InvalidParameterError(f"model = {model!r} must be one of {', '.join(ESTIMATOR_MAPS)}")
    maps = ESTIMATOR_MAPS[model][0]
    missing = [s for s in maps if s not in data]
    if missing:
        raise InvalidParameterError(f"model {model!r} needs the settings {', '.join(maps)}; "
                                    f"missing {', '.join(missing)}")
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, (int, np.integer)) or bootstrap < 2:
        raise InvalidParameterError(f"bootstrap = {bootstrap!r} must be an integer >= 2")
    branches = {s: _as_branches(data[s]) for s in maps}
    estimates = {s: _probability_estimate(branches[s]) for s in maps}
    ps = {s: e[0] for s, e in estimates.items()}
    covs = {s: e[1] for s, e in estimates.items()}
    rho = _invert(model, ps)
    var_re, var_im = np.zeros(16), np.zeros(16)
    for s, m in maps.items():
        var_re += np.einsum("ij,jk,ik->i", np.real(m), covs[s], np.real(m))
        var_im += np.einsum("ij,jk,ik->i", np.imag(m), covs[s], np.imag(m))
    rho_error = (np.sqrt(np.clip(var_re, 0, None)) + 1j * np.sqrt(np.clip(var_im, 0, None))).reshape(4, 4)
    c0, i0 = _nonlinear(rho)
    rng = np.random.default_rng(seed)
    frequencies = {s: [(w, *_frequencies(c)) for w, c in branches[s]] for s in maps}
    samples = np.empty((bootstrap, 2))
    for r in range(bootstrap):
        resampled = {s: np.sum([w * rng.multinomial(shots, n / shots) / shots
                                for w, n, shots in frequencies[s]], axis=0)
                     for s in maps}
        samples[r] = _nonlinear(_invert(model, resampled))
    spread = samples.std(axis=0, ddof=1)
    shots_total = sum(shots for s in maps for _, _, shots in frequencies[s])
    return TomographyResult(model=model, rho=rho, rho_error=rho_error, physical=project_to_state(rho),
                            concurrence=Estimate(c0, float(spread[0])),
                            mutual_information=Estimate(i0, float(spread[1])), shots=shots_total,
                            _p=ps, _cov=covs)


def sample_counts(circuits: Sequence[QuantumCircuit], shots: int, seed: int) -> list[dict[str, int]]:
    """Run measurement circuits on Aer (noise-free) with ``shots`` each and a fixed seed; return counts."""
    from qiskit import transpile
    from qiskit_aer import AerSimulator

    shots = check.non_negative_int("shots", shots)
    if shots < 1:
        raise InvalidParameterError("shots = 0 must be >= 1")
    sim = AerSimulator(method="density_matrix", seed_simulator=seed, max_parallel_threads=1)
    result = sim.run(transpile(list(circuits), sim, optimization_level=0), shots=shots).result()
    return [dict(result.get_counts(k)) for k in range(len(circuits))]


def measure_preparation(preparation, shots: int, seed: int, settings: Sequence[str] = SETTINGS) -> dict:
    """Simulate the measurement of a :class:`~qpump.quantum.preparation.Preparation` on Aer.

    The shots of each setting are split over the branches in proportion to their weights (at least one
    each). Returns ``{setting: [(weight, counts), ...]}``, ready for :func:`state_tomography` or
    :func:`estimate_energies`.
    """
    circuits, keys = [], []
    for s in settings:
        for k, branch in enumerate(preparation.branches):
            circuits.append(measurement_circuit(branch.circuit, s))
            keys.append((s, k))
    out: dict[str, list] = {s: [] for s in settings}
    # One Aer job per branch size keeps the shots exact per branch.
    for k, branch in enumerate(preparation.branches):
        n = max(1, round(branch.weight * shots))
        idx = [i for i, key in enumerate(keys) if key[1] == k]
        counts = sample_counts([circuits[i] for i in idx], n, seed + 7919 * k)
        for i, c in zip(idx, counts, strict=True):
            out[keys[i][0]].append((branch.weight, c))
    return out
