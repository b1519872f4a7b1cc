"""The cross-validation report on a small case: every check passes, measurements are physical."""

import json

import pytest

from qpump.cli import main


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    md = tmp_path_factory.mktemp("crossval") / "report.md"
    args = ["crossval", "--relax", "150", "--cycles", "1", "--json", "-o", str(md)]
    return md, args


def test_crossval_json_report(report, capsys):
    md, args = report
    assert main(args) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert all(set(r) == {"quantity", "max_deviation", "tolerance", "passed"} for r in rows)
    checks = [r for r in rows if r["tolerance"] is not None]
    assert len(checks) >= 15 and all(r["passed"] for r in checks)
    assert all(r["passed"] is None for r in rows if r["tolerance"] is None)
    by_name = {r["quantity"]: r["max_deviation"] for r in rows}
    for needle in ("closed form (App. B) vs exact propagation", "Aer noise-free rho(t) vs closed form",
                   "Aer with bath channels vs lindblad.py", "preparation of optimal rho0",
                   "exported QASM circuits", "exported QPY circuits"):
        assert any(needle in name for name in by_name), needle
    # Physics: the weak-coupling master equation deviates from the HEOM linearly in kappa over
    # the contact, and the pump's heat differs from the HEOM by a few per cent (docs/pump.md).
    exponents = [v for k, v in by_name.items() if "exponent p" in k]
    assert len(exponents) == 2 and all(0.8 < p < 1.2 for p in exponents)
    side = [v for k, v in by_name.items() if k.startswith("pump cycle 1: Q_B HEOM")]
    assert len(side) == 1 and 0.005 < side[0] < 0.05
    text = md.read_text()
    assert text.startswith("# qpump cross-validation") and text.count("| pass |") == len(checks)
