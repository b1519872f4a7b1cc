"""Tests of qpump.figures: the paper's figures are written as real PNG/PDF files."""

import math

import numpy as np
import pytest

from qpump import InvalidParameterError, InvalidStateError
from qpump.cli import main
from qpump.figures import (
    FIGURES,
    correlation_region,
    figure1,
    figure2,
    figure4,
    figure5,
    figure7,
    pump_figure,
    save,
    save_figure,
    transient_runs,
)
from qpump.info import concurrence
from qpump.pump import HeatPump
from qpump.states import correlated_state, correlation_matrix


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
    for n in (1, 2, 4, 5, 6, 7):
        assert (out / f"fig{n}.png").read_bytes()[:4] == b"\x89PNG"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["isolated_pair"]["C0"] == pytest.approx(0.637295, abs=5e-7)
    assert summary["pump"]["cycles"][0]["cop_ratio"] == pytest.approx(0.186, abs=0.005)
    assert summary["transient"]["min_sigma"] > -1e-9 > summary["transient"]["min_sigma0"]
    assert "summary.json" in capsys.readouterr().out


# --- Fig. 7: the admissible correlations of App. A ------------------------------------------------

# The paper's temperatures, the reversed gradient, no gradient, an infinite and a low temperature.
FIG7_TEMPERATURES = [(2.0, 1.0), (1.0, 3.0), (1.5, 1.5), (math.inf, 0.3), (0.4, 5.0)]


def _admissible(TA, TB, x, y):
    """(A2a), (A2b) and (A4) at (chi_11, |chi_23|^2) = (x, y), as qpump.states checks a state."""
    try:
        correlation_matrix(TA, TB, chi11=x, chi23=math.sqrt(y))
    except InvalidStateError:
        return False
    return True


def _violated(TA, TB, x, y):
    """The condition that qpump.states names when it rejects (x, y), or None."""
    try:
        correlation_matrix(TA, TB, chi11=x, chi23=math.sqrt(y))
    except InvalidStateError as err:
        return next(c for c in ("A2a", "A2b", "A4") if c in str(err))
    return None


@pytest.mark.parametrize("TA,TB", FIG7_TEMPERATURES)
def test_fig7_region_is_the_set_of_states_that_qpump_states_accepts(TA, TB):
    # Every point of a grid over the drawn window: inside the shaded region exactly when
    # correlation_matrix accepts it as an entangled, locally thermal state.
    region = correlation_region(TA, TB)
    span = region.x_max - region.x_min
    xs = np.linspace(region.x_min - 0.3 * span, region.x_max + 0.1 * span, 61)
    ys = np.linspace(0.0, 1.6 * region.lambdas[3], 57)
    inside = accepted = 0
    for x in xs:
        for y in ys:
            near = min(abs(y - region.upper(x)), abs(y - region.lower(x)), abs(x - region.x_min))
            if near < 1e-12:  # on a boundary, where the two differ by round-off
                continue
            expected = _admissible(TA, TB, x, y)
            assert bool(region.contains(x, y)) == expected, (x, y)
            inside += bool(region.contains(x, y))
            accepted += expected
    assert inside == accepted > 50  # not vacuous: the region holds many grid points
    assert inside < xs.size * ys.size / 4


@pytest.mark.parametrize("TA,TB", FIG7_TEMPERATURES)
def test_fig7_each_boundary_is_the_condition_that_qpump_states_names(TA, TB):
    region = correlation_region(TA, TB)
    eps = 1e-6
    for x in np.linspace(region.x_min, region.x_corner, 9)[1:-1]:
        up, low = float(region.upper(x)), float(region.lower(x))
        assert low < up
        # (A2b) is the upper edge (included), (A4) the lower one (excluded).
        assert _violated(TA, TB, x, up * (1 - eps)) is None
        assert _violated(TA, TB, x, up * (1 + eps)) == "A2b"
        assert _violated(TA, TB, x, low * (1 + eps)) is None
        assert _violated(TA, TB, x, low * (1 - eps)) == "A4"
    # (A2a) is the vertical edge: just left of it nothing is a state.
    x = region.x_min - eps * region.lambdas[3]
    assert _violated(TA, TB, x, 0.5 * float(region.upper(x))) == "A2a"
    # The two parabolas cross at x = 0 (lambda_1 lambda_4 = lambda_2 lambda_3); to the right of
    # it no |chi_23| is both a state and entangled.
    assert region.upper(0.0) == pytest.approx(region.lower(0.0), rel=1e-12)
    for x in np.linspace(0.0, region.x_max, 7)[1:]:
        assert region.upper(x) < region.lower(x)
        assert _violated(TA, TB, x, float(region.upper(x))) == "A4"


@pytest.mark.parametrize("TA,TB", FIG7_TEMPERATURES)
def test_fig7_optimal_point_tops_the_vertical_edge_at_the_square_of_half_C0(TA, TB):
    region = correlation_region(TA, TB)
    lam4 = region.lambdas[3]
    c0 = concurrence(correlated_state(TA, TB))  # Wootters, from the state matrix of Eq. 10
    assert region.C0 == pytest.approx(c0, rel=1e-9)
    x_opt, y_opt = region.optimal
    # On the vertical edge x = -lambda_4, at its top y = upper(-lambda_4) = lambda_4 = (C0/2)^2.
    assert x_opt == pytest.approx(region.x_min, abs=1e-15)
    assert y_opt == pytest.approx(float(region.upper(region.x_min)), rel=1e-12)
    assert y_opt == pytest.approx(lam4, rel=1e-12)
    assert y_opt == pytest.approx((c0 / 2) ** 2, rel=1e-9)
    assert region.lower(region.x_min) == pytest.approx(0.0, abs=1e-15)
    assert _admissible(TA, TB, x_opt, y_opt)
    # No admissible point is more entangled: the concurrence of states sampled over the region,
    # computed from their density matrices, stays below C0 and reaches it only at the corner.
    rng = np.random.default_rng(7)
    x = rng.uniform(region.x_min, region.x_corner, 400)
    y = rng.uniform(region.lower(x), region.upper(x))
    states = np.array([correlated_state(TA, TB, chi11=a, chi23=math.sqrt(b))
                       for a, b in zip(x, y, strict=True)])
    c = concurrence(states)
    assert np.all(c > 0) and np.all(c < c0)
    assert np.max(c) > 0.5 * c0


def test_fig7_draws_the_region_the_conditions_and_the_optimal_point(tmp_path):
    fig = figure7(2.0, 1.0)
    ax = fig.axes[0]
    region = correlation_region(2.0, 1.0)
    # The shaded polygon lies between the two bounds, from the vertical edge to the corner.
    (shaded,) = ax.collections
    vx, vy = shaded.get_paths()[0].vertices.T
    assert vx.min() == pytest.approx(region.x_min) and vx.max() == pytest.approx(0.0, abs=1e-15)
    assert np.all(vy <= region.upper(vx) + 1e-12) and np.all(vy >= region.lower(vx) - 1e-12)
    edge = np.isclose(vx, region.x_min, rtol=0, atol=1e-15)
    assert vy[edge].min() == pytest.approx(0.0, abs=1e-15)
    assert vy[edge].max() == pytest.approx(region.lambdas[3])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    for tag in ("(A2a)", "(A2b)", "(A4)", "Eq. 10"):
        assert sum(tag in s for s in labels) == 1, tag
    (marker,) = [line for line in ax.get_lines() if line.get_label().startswith("Eq. 10")]
    assert (marker.get_xdata()[0], marker.get_ydata()[0]) == pytest.approx(region.optimal)
    assert "chi_{11}" in ax.get_xlabel() and "chi_{23}" in ax.get_ylabel()
    assert save(fig, tmp_path / "f7.svg").read_bytes().lstrip().startswith(b"<?xml")


def test_fig7_is_registered_and_drawn_by_the_command_line(tmp_path, capsys):
    assert FIGURES[7] is figure7
    path = tmp_path / "fig7.png"
    assert main(["figure", "7", "-o", str(path)]) == 0
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert str(path) in capsys.readouterr().out
