"""Tests of qpump.quantum.backends: names resolve, the layout is the best connected triple of the
calibration data, a user's layout is validated, and the layout-restricted noise model is the
device's own on the layout's qubits."""

import itertools

import numpy as np
import pytest

from qpump import InvalidParameterError
from qpump.quantum.backends import (
    Layout,
    check_layout,
    choose_layout,
    noise_model_of,
    noisy_probabilities,
    resolve_backend,
    transpile_fixed,
)
from qpump.quantum.export import circuit_set, readout_circuits


def _cost(backend, a, b, anc):
    target = backend.target
    gate = "cx" if "cx" in target.operation_names else ("ecr" if "ecr" in target.operation_names else "cz")

    def edge(p, q):
        errors = [target[gate][k].error for k in ((p, q), (q, p)) if k in target[gate]]
        return min(errors) if errors else None

    ab, b_anc = edge(a, b), edge(b, anc)
    if ab is None or b_anc is None:
        return None
    return ab + b_anc + target["measure"][(a,)].error + target["measure"][(b,)].error


def test_the_chosen_layout_is_the_connected_triple_of_least_error():
    backend = resolve_backend("generic").backend
    costs = {}
    for a, b, anc in itertools.permutations(range(backend.num_qubits), 3):
        cost = _cost(backend, a, b, anc)
        if cost is not None:
            costs[(a, b, anc)] = cost
    best = choose_layout(backend)
    assert costs[(best.A, best.B, best.ancilla)] == pytest.approx(min(costs.values()), rel=1e-12)


def test_a_users_layout_is_checked_and_completed():
    backend = resolve_backend("generic").backend  # a line 0 - 1 - 2 - 3 - 4
    assert check_layout(backend, (1, 2, 3)) == Layout(1, 2, 3)
    assert check_layout(backend, (2, 1)) == Layout(2, 1, 0)  # B's only other neighbour
    with pytest.raises(InvalidParameterError, match="B = 0 has no neighbour besides A = 1"):
        check_layout(backend, (1, 0))
    with pytest.raises(InvalidParameterError, match="repeats a qubit"):
        check_layout(backend, (1, 2, 1))


@pytest.mark.parametrize("name, gate", [("fake_sherbrooke", "ecr"), ("fake_torino", "cz")])
def test_fake_devices_resolve_with_their_two_qubit_gate(name, gate):
    device = resolve_backend(name)
    assert device.kind == "fake" and device.describe()["two_qubit_gate"] == gate


def test_the_restricted_noise_model_is_the_devices_on_the_layout():
    device = resolve_backend("fake_sherbrooke")
    layout = choose_layout(device.backend)
    items, _ = circuit_set(times=[6.0])
    chosen = [i.circuit for i in items if i.setting in ("ZZ", "XY")] + [i.circuit for i in readout_circuits()]
    isa = transpile_fixed(chosen, device.backend, layout)
    restricted = noisy_probabilities(isa, device.backend, layout)
    full = noisy_probabilities(isa, device.backend, layout, noise_model_of(device.backend))
    for mine, theirs in zip(restricted, full, strict=True):
        np.testing.assert_allclose(mine, theirs, atol=1e-12)
    assert np.max(np.abs(restricted[1] - restricted[0])) > 1e-3  # the readout error is in 'raw'
