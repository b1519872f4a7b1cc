"""Tests of qpump.quantum.validation: the cross-validation rows of the Qiskit layer."""

import json
from pathlib import Path

from qpump.pump import HeatPump
from qpump.quantum.validation import collision_pump_rows, export_rows, pump_rows, quantum_rows, row

REPO_CIRCUITS = Path(__file__).resolve().parents[1] / "circuits"


def _check(rows):
    json.dumps({"rows": rows})  # the report's --json format
    for r in rows:
        assert set(r) == {"quantity", "max_deviation", "tolerance", "passed"}
        assert r["passed"] in (True, None), r
        assert (r["tolerance"] is None) == (r["passed"] is None)


def test_quantum_rows_pass_on_a_small_case():
    rows = quantum_rows(TA=2.0, TB=1.0, omega_c=0.1, kappa_a=0.01, kappa_b=0.023, tau=3.0, dt=0.1)
    _check(rows)
    text = " | ".join(r["quantity"] for r in rows)
    for needle in ("optimal rho0 (Eq. 10), ancilla (1 ancilla, CX 3)", "mixture (0 ancilla, CX 0+1)",
                   "generic X state, ancilla (2 ancilla, CX 6)", "contact circuit", "Aer noise-free",
                   "collision-model", "matched Strang steps (rho", "matched Strang steps (heat",
                   "splitting error of rho", "Strang splitting order"):
        assert needle in text, needle
    split = [r for r in rows if "splitting error of rho" in r["quantity"]][0]
    assert 0 < split["max_deviation"] < 1e-5  # a measurement: second-order, small at dt = 0.1


def test_pump_rows_on_a_short_pump():
    pump = HeatPump(solver="lindblad", cycles=1, tau=4.0, tau_relax=100.0)
    rows, values = pump_rows(pump, dt=0.1, relax_steps=4)
    _check(rows)
    assert len(values["Q_A"]) == len(values["Q_B"]) == 1
    assert values["Q_A"][0] < 0 < values["Q_B"][0]
    assert rows[-1]["tolerance"] is None and rows[-1]["max_deviation"] < 1e-4


def test_export_rows_against_the_repository_set():
    rows = export_rows(REPO_CIRCUITS)
    _check(rows)
    assert len(rows) == 4


def test_row_semantics():
    assert row("x", 2e-9, 1e-9)["passed"] is False
    assert row("x", 1e-10, 1e-9)["passed"] is True
    assert row("x", 0.3, None)["passed"] is None


def test_collision_pump_rows_check_the_circuits_and_measure_the_order():
    rows = collision_pump_rows(device=None)
    assert rows[0]["passed"] and rows[0]["max_deviation"] < 1e-9
    assert rows[1]["tolerance"] is None and 1.9 < rows[1]["max_deviation"] < 2.1  # Strang: second order
    assert len(rows) == 2
