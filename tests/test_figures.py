"""Tests of qpump.figures: the paper's figures are written as real PNG/PDF files."""

import pytest

from qpump import InvalidParameterError
from qpump.cli import main
from qpump.figures import (
    figure1,
    figure2,
    figure4,
    figure5,
    pump_figure,
    save,
    save_figure,
    transient_runs,
)
from qpump.pump import HeatPump


def test_figure1_has_three_labelled_panels_with_three_curves():
    fig = figure1(t_max=20, points=41)
    axes = fig.axes
    assert len(axes) == 3
    assert all(len(ax.lines) == 3 for ax in axes)
    assert all(ax.get_ylabel() for ax in axes) and axes[-1].get_xlabel()
    assert axes[0].get_legend() is not None


def test_figure2_has_normal_and_anomalous_panels():
    fig = figure2(t_max=20, points=41)
    assert len(fig.axes) == 2
    assert [len(ax.lines) for ax in fig.axes] == [3, 3]
    assert "normal" in fig.axes[0].get_title() and "anomalous" in fig.axes[1].get_title()


@pytest.mark.parametrize("number", [1, 2])
@pytest.mark.parametrize("ext,magic", [("png", b"\x89PNG"), ("pdf", b"%PDF")])
def test_cli_writes_figures(tmp_path, number, ext, magic, capsys):
    path = tmp_path / "sub" / f"fig{number}.{ext}"
    assert main(["figure", str(number), "-o", str(path)]) == 0
    assert path.read_bytes()[:4] == magic
    assert not list(path.parent.glob(".*.tmp"))  # the atomic write left nothing behind
    assert str(path) in capsys.readouterr().out


def test_save_figure_rejects_unknown_number_and_format(tmp_path):
    with pytest.raises(InvalidParameterError, match="figure = 9"):
        save_figure(9, tmp_path / "x.png")
    with pytest.raises(InvalidParameterError, match=r"\.png, \.pdf or \.svg"):
        save_figure(1, tmp_path / "x.jpg")


@pytest.fixture(scope="module")
def lindblad_transients():
    return transient_runs(solver="lindblad", t_max=60.0)


def test_figures_4_and_5_from_transient_runs(lindblad_transients, tmp_path):
    fig4 = figure4(lindblad_transients)
    assert len(fig4.axes) == 4 and all(ax.get_ylabel() for ax in fig4.axes)
    assert len(fig4.axes[1].get_legend().get_texts()) == 2
    fig5 = figure5(lindblad_transients)
    assert [len(ax.get_lines()) for ax in fig5.axes] == [4, 4]  # Sigma, Sigma_0, Delta I, zero line
    assert save(fig5, tmp_path / "f5.png").read_bytes()[:4] == b"\x89PNG"


def test_pump_figure_marks_contacts_and_normal_heat(tmp_path):
    run = HeatPump(solver="lindblad", tau_relax=200.0, dt_relax=1.0).run()
    fig = pump_figure(run)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("cold bath" in s for s in labels) and any("normal" in s for s in labels)
    assert len(ax.patches) == 2  # one shaded contact window per cycle
    # Every curve is counted positive in the direction its label names ("drawn from",
    # "delivered to"): when the pump works, all four end above zero.
    curves = {line.get_label(): line.get_ydata() for line in ax.get_lines()
              if not line.get_label().startswith("_")}
    assert len(curves) == 4 and all(y[-1] > 0 for y in curves.values())
    assert save(fig, tmp_path / "f6.pdf").read_bytes()[:4] == b"%PDF"


def test_cli_figures_writes_all_figures_and_summary(tmp_path, capsys):
    import json

    out = tmp_path / "figs"
    assert main(["figures", "-o", str(out), "--no-progress"]) == 0
    for n in (1, 2, 4, 5, 6):
        assert (out / f"fig{n}.png").read_bytes()[:4] == b"\x89PNG"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["isolated_pair"]["C0"] == pytest.approx(0.637295, abs=5e-7)
    assert summary["pump"]["cycles"][0]["cop_ratio"] == pytest.approx(0.186, abs=0.005)
    assert summary["transient"]["min_sigma"] > -1e-9 > summary["transient"]["min_sigma0"]
    assert "summary.json" in capsys.readouterr().out
