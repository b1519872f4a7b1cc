"""Tests of qpump.quantum.tomography: estimates from counts with error bars that shrink as 1/sqrt(shots).

Statistical checks use fixed seeds and 5-sigma tolerances: a correct estimator fails one with
probability ~6e-7, while a wrong sign, basis or factor 2 is off by many sigma at these shot numbers.
"""

import math

import numpy as np
import pytest

from qpump import InvalidParameterError, closed, info, states
from qpump.quantum._aer import density_matrices_of
from qpump.quantum.contact import append_contact
from qpump.quantum.preparation import prepare_optimal_state, prepare_state
from qpump.quantum.tomography import (
    SETTINGS,
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

RHO0 = states.correlated_state(2.0, 1.0)
X_SETTINGS = ("ZZ", "XX", "XY", "YX", "YY")


def test_setting_probabilities_match_the_measurement_circuits_on_aer():
    prep = prepare_state(2.0, 1.0, -0.06, 0.25, -0.8)  # complex coherence: tests the Y rotations
    circuits = tomography_circuits(prep.branches[0].circuit)
    assert list(circuits) == list(SETTINGS)
    rhos = density_matrices_of(list(circuits.values()))
    for setting, rho in zip(SETTINGS, rhos, strict=True):
        p = setting_probabilities(prep.target_state(), setting)
        assert np.max(np.abs(np.real(np.diag(rho)) - p)) < 1e-12, setting
    # pin the conventions: ZZ probabilities are the populations; <ZI> = -<sigma_z^A>
    e = pauli_expectations(RHO0, "ZZ")
    e_a, e_b = info.local_energies(RHO0)
    assert e["ZI"] == pytest.approx(-2 * e_a, abs=1e-15) and e["IZ"] == pytest.approx(-2 * e_b, abs=1e-15)
    assert np.allclose(setting_probabilities(RHO0, "ZZ"), np.real(np.diag(RHO0)), atol=1e-15)


def test_measurement_circuit_layout():
    qc = energy_circuit(prepare_optimal_state(2.0, 1.0).branches[0].circuit)
    assert qc.num_clbits == 2 and qc.count_ops()["measure"] == 2
    measured = [(qc.find_bit(i.qubits[0]).index, qc.find_bit(i.clbits[0]).index)
                for i in qc.data if i.operation.name == "measure"]
    assert measured == [(0, 0), (1, 1)]  # A -> c0, B -> c1
    with pytest.raises(InvalidParameterError, match="setting = 'ZX '"):
        measurement_circuit(qc, "ZX ")


def test_energies_from_counts_converge_as_one_over_sqrt_shots():
    t = 3.0  # (at the SED peak t = 7, P(B = 1) ~ 7e-7 and no shot ever sees it)
    qc = prepare_optimal_state(2.0, 1.0).branches[0].circuit.copy()
    append_contact(qc, t, 0.1, -math.pi / 2)
    e_a, e_b = closed.energies_closed_form(t, 2.0, 1.0, 0.1, -math.pi / 2)
    scaled = []
    for shots in (1_000, 10_000, 100_000):
        counts = sample_counts([energy_circuit(qc)], shots, seed=shots + 1)[0]
        est_a, est_b = estimate_energies(counts)
        assert abs(est_a.value - e_a) < 5 * est_a.error
        assert abs(est_b.value - e_b) < 5 * est_b.error
        scaled.append(est_a.error * math.sqrt(shots))
    # the error bar is sqrt(Var/shots) with Var = 1/4 - E^2 for outcomes +-1/2
    assert np.allclose(scaled, math.sqrt(0.25 - e_a**2), rtol=0.05)


@pytest.mark.parametrize("method", ["ancilla", "mixture"])
def test_general_tomography_entries_are_within_five_sigma(method):
    prep = prepare_optimal_state(2.0, 1.0, method=method)
    errors = []
    for shots in (1_000, 100_000):
        res = state_tomography(measure_preparation(prep, shots, seed=11), bootstrap=20)
        assert res.model == "general"
        for part in (np.real, np.imag):
            dev = np.abs(part(res.rho) - part(RHO0))
            bar = part(res.rho_error)
            assert np.all(dev <= 5 * bar + 1e-12), (shots, dev.max())
        e_a, e_b = res.energies
        exact_a, exact_b = info.local_energies(RHO0)
        assert abs(e_a.value - exact_a) < 5 * e_a.error and abs(e_b.value - exact_b) < 5 * e_b.error
        assert np.min(np.linalg.eigvalsh(res.physical)) > -1e-12
        assert np.trace(res.physical).real == pytest.approx(1.0, abs=1e-12)
        assert res.shots >= 9 * shots * 0.99
        errors.append(np.max(np.real(res.rho_error)))
    assert errors[0] / errors[1] == pytest.approx(10.0, rel=0.15)  # 100x the shots: 10x smaller bars


CASES = [("ancilla", None), ("mixture", None), ("ancilla", (-0.06, 0.25, -0.8))]


@pytest.mark.parametrize("method,chi", CASES)
def test_concurrence_and_mutual_information_converge(method, chi):
    prep = prepare_state(2.0, 1.0, *(chi or (None, None, 0.0)), method=method)
    rho = prep.target_state()
    c0, i0 = info.concurrence(rho), info.mutual_information(rho)
    bars = []
    for shots in (1_000, 100_000):
        data = measure_preparation(prep, shots, seed=5, settings=X_SETTINGS)
        res = state_tomography(data, model="x_state", bootstrap=100, seed=9)
        assert abs(res.concurrence.value - c0) < 5 * res.concurrence.error
        assert abs(res.mutual_information.value - i0) < 5 * res.mutual_information.error
        if chi is None:
            assert res.rho[3, 3] == 0.0  # |11> is never observed in ZZ: estimated as exactly zero
        bars.append((res.concurrence.error, res.mutual_information.error))
    ratio = np.array(bars[0]) / np.array(bars[1])
    assert 7.0 < ratio[0] < 14.0, ratio  # 100x the shots: ~sqrt(100) = 10x smaller bars
    if chi is None:
        # rank 2: I contains -mu ln mu of an eigenvalue mu = 0, estimated with noise ~ shots^-1/2,
        # so its error shrinks as shots^-1/2 up to a logarithm (measured ratio ~5.5)
        assert 4.0 < ratio[1] < 14.0, ratio
    else:
        assert 7.0 < ratio[1] < 14.0, ratio


def test_mixture_counts_are_combined_with_weights():
    # Two branches |00> (weight w) and |11> (1 - w) measured in ZZ: P(00) = w exactly.
    w = 0.3
    data = [(w, {"00": 1000}), (1 - w, {"11": 500})]
    e_a, e_b = estimate_energies(data)
    assert e_a.value == pytest.approx(w * -0.5 + (1 - w) * 0.5)
    assert e_a.error == 0.0 and e_b.value == pytest.approx(e_a.value)


def test_project_to_state():
    rho = np.diag([0.6, 0.5, -0.05, -0.05]).astype(complex)
    phys = project_to_state(rho)
    assert np.allclose(phys, np.diag([0.55, 0.45, 0.0, 0.0]), atol=1e-15)
    assert np.allclose(project_to_state(RHO0), RHO0, atol=1e-14)


def test_bad_input_is_rejected():
    with pytest.raises(InvalidParameterError, match="missing"):
        state_tomography({"ZZ": {"00": 10}})
    with pytest.raises(InvalidParameterError, match="model = 'mle'"):
        state_tomography({}, model="mle")
    with pytest.raises(InvalidParameterError, match="count key"):
        estimate_energies({"0x": 3})
    with pytest.raises(InvalidParameterError, match="shots"):
        estimate_energies({})
    with pytest.raises(InvalidParameterError, match="bootstrap"):
        full = {s: {"00": 1} for s in SETTINGS}
        state_tomography(full, bootstrap=1)


def _simplex_projection_one_by_one(rho):
    """The projection written the direct way, one matrix at a time (the oracle of the batched one)."""
    mu, vecs = np.linalg.eigh((rho + rho.conj().T) / 2)
    mu, vecs = mu[::-1], vecs[:, ::-1]
    lam, carried = np.zeros_like(mu), 0.0
    for i in range(mu.size - 1, -1, -1):
        if mu[i] + carried / (i + 1) < 0:
            carried += mu[i]
        else:
            lam[: i + 1] = mu[: i + 1] + carried / (i + 1)
            break
    return (vecs * lam) @ vecs.conj().T


def test_project_to_state_of_a_batch_is_each_matrix_projected():
    rng = np.random.default_rng(5)
    mats = []
    for _ in range(200):
        x = rng.normal(size=(4, 4)) + 1j * rng.normal(size=(4, 4))
        h = x + x.conj().T
        mats.append(h / np.trace(h).real)  # Hermitian, unit trace, usually indefinite
    batched = project_to_state(np.array(mats))
    for rho, projected in zip(mats, batched, strict=True):
        np.testing.assert_allclose(projected, _simplex_projection_one_by_one(rho), atol=1e-12)
        assert np.linalg.eigvalsh(projected)[0] > -1e-12
    assert np.allclose(np.trace(batched, axis1=1, axis2=2), 1.0)
