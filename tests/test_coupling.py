"""Tests of qpump.coupling: the converged-HEOM pump per kappa against the local master equation."""

import json

import numpy as np
import pytest

from qpump.cli import main
from qpump.coupling import coupling_figure, coupling_scan, relaxation_time_for
from qpump.errors import InvalidParameterError


def test_weak_coupling_agrees_with_the_master_equation_and_stronger_coupling_departs():
    rows = coupling_scan([0.003, 0.05], conv_tol=1e-4, optimize_tau=False)
    weak, strong = rows
    assert weak.converged and strong.converged
    assert (weak.kappa_a, weak.kappa_b) == (0.003, pytest.approx(0.0069))
    assert abs(weak.relative_difference) < 0.02 < abs(strong.relative_difference)
    assert strong.depth >= weak.depth and weak.tau == pytest.approx(6.1)
    assert weak.Q_B > 0 > weak.Q_A and 0 < weak.efficiency < 1.0  # below Carnot (T_B/(T_A - T_B) = 1)
    assert abs(weak.phi_v_spread) < abs(strong.phi_v_spread)  # the gauge matters more when stronger
    fig = coupling_figure(rows, carnot_bound=1.0)
    assert len(fig.axes) == 2 and fig.axes[1].get_xscale() == "log"


def test_an_unconverged_coupling_keeps_the_master_equation_and_no_heom_number():
    (row,) = coupling_scan([0.05], time_limit_s=1e-3, optimize_tau=False)
    assert not row.converged and row.Q_B is None and row.depth is None
    assert "time limit" in row.error and np.isfinite(row.lindblad_Q_B)
    coupling_figure([row])  # drawn from the master equation alone


def test_inputs_and_the_relaxation_time():
    assert relaxation_time_for(0.01) == 500.0
    assert relaxation_time_for(1.0) == 50.0 and relaxation_time_for(1e-5) == 5000.0
    with pytest.raises(InvalidParameterError, match="kappa"):
        coupling_scan([0.01, -1.0])
    with pytest.raises(InvalidParameterError, match="empty"):
        coupling_scan([])


def test_cli_figure_coupling_writes_the_figure_and_its_table(tmp_path, capsys):
    out = tmp_path / "coupling.png"
    assert main(["figure", "coupling", "--kappas", "0.01", "--conv-tol", "1e-3", "-o", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    table = json.loads(out.with_suffix(".json").read_text())
    assert table[0]["kappa"] == 0.01 and table[0]["converged"] and table[0]["tau"] != 6.1
    # the search reports each truncation it tries as it goes (it can take many minutes), then kappa
    lines = capsys.readouterr().err.splitlines()
    tried = [line for line in lines if line.startswith("kappa = 0.01: truncation: ")]
    assert len(tried) == table[0]["search_runs"] >= 2
    assert lines[-1].startswith("kappa = 0.01: Q_B = ")
