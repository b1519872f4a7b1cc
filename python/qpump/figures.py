"""The paper's figures, regenerated: Figs. 1-2 (the isolated pair), 4-6 (baths and the pump) and 7
(the admissible correlations of App. A)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .closed import ClosedRun, run_closed
from .errors import InvalidParameterError
from .output import check_output_dir, dumps, write_atomic, write_text_atomic
from .pump import HeatPump, PumpResult
from .states import lambdas, optimal_correlation

__all__ = [
    "figure1",
    "figure2",
    "figure4",
    "figure5",
    "figure6",
    "figure7",
    "CorrelationRegion",
    "correlation_region",
    "pump_figure",
    "transient_runs",
    "closed_run_figure",
    "sweep_figure",
    "FIGURES",
    "save",
    "save_figure",
    "save_all",
]

_PAPER = {"TA": 2.0, "TB": 1.0, "omega_c": 0.1}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure1(t_max: float = 60.0, points: int = 601):
    """Fig. 1: SED, concurrence and mutual information of the isolated pair for delta = 0, +-pi/2.

    T_A = 2, T_B = 1, Omega = 0.1, optimal initial correlation (Eq. 10).
    """
    plt = _pyplot()
    fig, axes = plt.subplots(3, 1, figsize=(6, 8), sharex=True)
    styles = [
        (0.0, r"$\delta = 0$", dict(color="black", ls=":")),
        (math.pi / 2, r"$\delta = +\pi/2$", dict(color="tab:blue", ls="--")),
        (-math.pi / 2, r"$\delta = -\pi/2$", dict(color="tab:red", ls="-")),
    ]
    for delta, label, style in styles:
        tr = run_closed(delta=delta, t_max=t_max, points=points, **_PAPER).trajectory
        axes[0].plot(tr.times, tr.sed, label=label, **style)
        axes[1].plot(tr.times, tr.concurrence, label=label, **style)
        axes[2].plot(tr.times, tr.mutual_information, label=label, **style)
    axes[0].set_ylabel(r"SED $\Delta_{AB} = E_A - E_B$ [$\hbar\omega$]")
    label_fig1_panels(axes, r"time $t$ [$1/\omega$]")
    axes[0].legend(loc="lower right", fontsize="small")
    fig.suptitle(r"Isolated pair, $T_A = 2$, $T_B = 1$, $\Omega = 0.1$ (paper Fig. 1)")
    fig.tight_layout()
    return fig


def label_fig1_panels(axes, xlabel: str) -> None:
    """Axis labels, panel tags and grids of a Fig. 1-style column: (a) energies, (b) concurrence,
    (c) mutual information (shared by the paper's Fig. 1 and the experiment's)."""
    axes[1].set_ylabel(r"concurrence $\mathcal{C}$")
    axes[2].set_ylabel(r"mutual information $I_{AB}$ [nats]")
    axes[2].set_xlabel(xlabel)
    for ax, tag in zip(axes, "abc", strict=True):
        ax.text(0.01, 0.9, f"({tag})", transform=ax.transAxes)
        ax.grid(alpha=0.3)


def figure2(t_max: float = 60.0, points: int = 601):
    """Fig. 2: SED for normal (delta = 0) and anomalous (delta = -pi/2) exchange at three gradients."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 1, figsize=(6, 6), sharex=True)
    gradients = [
        ((1.5, 1.5), r"$T_A = T_B = 1.5$", dict(color="black", ls=":")),
        ((2.0, 1.0), r"$T_A = 2 > T_B = 1$", dict(color="tab:red", ls="-")),
        ((1.0, 2.0), r"$T_A = 1 < T_B = 2$", dict(color="tab:blue", ls="--")),
    ]
    for ax, delta, title in zip(axes, (0.0, -math.pi / 2), ("normal", "anomalous"), strict=True):
        for (ta, tb), label, style in gradients:
            tr = run_closed(TA=ta, TB=tb, omega_c=0.1, delta=delta, t_max=t_max,
                            points=points).trajectory
            ax.plot(tr.times, tr.sed, label=label, **style)
        ax.set_ylabel(r"$\Delta_{AB}$ [$\hbar\omega$]")
        ax.set_title(f"({'ab'[delta != 0.0]}) {title} exchange, " + (
            r"$\delta = 0$" if delta == 0.0 else r"$\delta = -\pi/2$"), fontsize="medium")
        ax.grid(alpha=0.3)
    axes[1].set_xlabel(r"time $t$ [$1/\omega$]")
    axes[0].legend(fontsize="small", loc="lower right")
    fig.suptitle(r"SED at three temperature gradients, $\Omega = 0.1$ (paper Fig. 2)")
    fig.tight_layout()
    return fig


def transient_runs(solver: str = "heom", t_max: float = 100.0, **overrides) -> dict[str, PumpResult]:
    """The runs behind Figs. 4 and 5: the qubits coupled from t = 0 on and never decoupled,
    kappa_A = kappa_B = 0.01, from the correlated state ("anomalous") and without correlation
    ("normal"). ``overrides`` go to :class:`HeatPump` (e.g. depth, n_exp)."""
    common: dict[str, Any] = dict(kappa_a=0.01, kappa_b=0.01, tau=t_max, tau_relax=0.0, cycles=1,
                                  solver=solver, dt_contact=0.02)
    common.update(overrides)
    return {
        "anomalous": HeatPump(**common).run(normal_reference=False),
        "normal": HeatPump(chi11=0.0, chi23=0.0, **common).run(normal_reference=False),
    }


def figure4(runs: dict[str, PumpResult] | None = None):
    """Fig. 4: transient anomalous dynamics with baths (SED, heat, concurrence, mutual information)."""
    plt = _pyplot()
    run = (runs or transient_runs())["anomalous"]
    s, t = run.series, run.t
    fig, axes = plt.subplots(4, 1, figsize=(6, 9), sharex=True)
    axes[0].plot(t, s["sed"], color="tab:red")
    axes[0].set_ylabel(r"SED $\Delta_{AB}$ [$\hbar\omega$]")
    axes[1].plot(t, s["Q_A"], color="tab:red", label=r"$Q_A$ (from hot bath A)")
    axes[1].plot(t, s["Q_B"], color="tab:blue", ls="--", label=r"$Q_B$ (from cold bath B)")
    axes[1].axhline(0, color="gray", lw=0.6)
    axes[1].set_ylabel(r"heat [$\hbar\omega$]")
    axes[1].legend(fontsize="small")
    axes[2].plot(t, s["concurrence"], color="tab:red")
    axes[2].set_ylabel(r"concurrence $\mathcal{C}$")
    axes[3].plot(t, s["mutual_information"], color="tab:red")
    axes[3].set_ylabel(r"$I_{AB}$ [nats]")
    axes[3].set_xlabel(r"time $t$ [$1/\omega$]")
    for ax, tag in zip(axes, "abcd", strict=True):
        ax.text(0.01, 0.88, f"({tag})", transform=ax.transAxes)
        ax.grid(alpha=0.3)
    p = run.params
    fig.suptitle(rf"Anomalous heat with baths: $T_A = {p['TA']:g}$, $T_B = {p['TB']:g}$, "
                 rf"$\kappa_A = \kappa_B = {p['kappa_a']:g}$ (paper Fig. 4)", fontsize="medium")
    fig.tight_layout()
    return fig


def figure5(runs: dict[str, PumpResult] | None = None):
    """Fig. 5: entropy production Sigma, Sigma_0 and Delta I_AB, normal (a) and anomalous (b) heat."""
    plt = _pyplot()
    runs = runs or transient_runs()
    fig, axes = plt.subplots(2, 1, figsize=(6, 6), sharex=True)
    for ax, key, tag in zip(axes, ("normal", "anomalous"), "ab", strict=True):
        s, t = runs[key].series, runs[key].t
        ax.plot(t, s["sigma"], color="tab:red", label=r"$\Sigma$ (Eq. 15)")
        ax.plot(t, s["sigma0"], color="tab:blue", ls="--", label=r"$\Sigma_0$ (Eq. 14)")
        ax.plot(t, s["delta_I"], color="black", ls="-.", label=r"$\Delta I_{AB}$")
        ax.axhline(0, color="gray", lw=0.6)
        ax.set_ylabel("entropy [nats]")
        ax.set_title(f"({tag}) {key} heat" + (" (no initial correlation)" if key == "normal" else
                                              " (optimal initial correlation)"), fontsize="medium")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="small")
    axes[1].set_xlabel(r"time $t$ [$1/\omega$]")
    fig.suptitle("Entropy production (paper Fig. 5)", fontsize="medium")
    fig.tight_layout()
    return fig


def pump_figure(run: PumpResult):
    """Fig. 6: heat drawn from the cold bath and delivered to the hot bath over the pump cycles,
    with the normal steady-state heat of the coupled, uncorrelated pair for comparison."""
    plt = _pyplot()
    s, t = run.series, run.t
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for start, stop in run.contact_windows:
        ax.axvspan(start, stop, color="gold", alpha=0.5, lw=0)
        ax.axvline(start, color="gray", lw=0.5)
        ax.axvline(stop, color="gray", lw=0.5)
    # Every curve is an amount of heat counted positive in the direction its label names, as in
    # the paper's Fig. 6: the two pump curves coincide when |Q_A| = |Q_B|, and so do the two
    # normal ones in the steady state (wide translucent line under a thin one).
    cold, hot = ("cold bath", "hot bath") if run.regime == "pump" else ("bath B", "bath A")
    ax.plot(t, s["Q_B"], color="tab:blue", lw=3.5, alpha=0.6,
            label=rf"$Q_B$: drawn from the {cold}")
    ax.plot(t, -s["Q_A"], color="black", label=rf"$-Q_A$: delivered to the {hot}")
    if run.normal_heat_current is not None:
        normal = run.normal_heat_current * t
        ax.plot(t, normal, color="gray", ls="--", lw=3.5, alpha=0.6,
                label=f"normal: drawn from the {hot}")
        ax.plot(t, normal, color="black", ls="--", lw=0.8,
                label=f"normal: delivered to the {cold}")
    ax.axhline(0, color="gray", lw=0.6)
    ax.set_xlabel(r"time $t$ [$1/\omega$]")
    ax.set_ylabel(r"accumulated heat [$\hbar\omega$]")
    p = run.params
    ratio = run.cycles[-1].cop_ratio
    ax.set_title(rf"Heat pump: $\kappa_A = {p['kappa_a']:g}$, $\kappa_B = {p['kappa_b']:g}$, "
                 rf"$\tau = {p['tau']:g}$, $\tau_{{relax}} = {p['tau_relax']:g}$; "
                 rf"$\bar Q_B/(T_A I_0) = {ratio:.4f}$ (paper Fig. 6)", fontsize="small")
    ax.legend(fontsize="small", loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def sweep_figure(columns: dict, x: str, y: str | None = None, z: str = "efficiency"):
    """Map of a sweep: ``z`` against ``x`` (one line per value of the other varying parameters)
    or, with ``y``, a heat map over (x, y). The zero-pumping contour (Q_B = 0) is drawn on heat
    maps; the Carnot bound is drawn with efficiency."""
    plt = _pyplot()
    for name in (x, y, z):
        if name is not None and name not in columns:
            raise InvalidParameterError(
                f"column {name!r} is not in the results; available: {', '.join(columns)}")
    from .sweep import PARAMETERS

    ok = np.isfinite(columns[z])  # failed points have no results
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    labels = {"efficiency": r"$\bar Q_B/(T_A I_0)$", "Q_B": r"$\bar Q_B$ per cycle",
              "Q_A": r"$\bar Q_A$ per cycle", "delta": r"$\delta$", "TB": r"$T_B$", "TA": r"$T_A$"}
    if y is None:
        others = [c for c in columns if c not in (x, z) and c in PARAMETERS
                  and columns[c].dtype.kind == "f" and np.unique(columns[c][ok]).size > 1]
        groups = sorted({tuple(columns[c][i] for c in others) for i in np.flatnonzero(ok)})
        for group in groups:
            sel = ok & np.all([columns[c] == v for c, v in zip(others, group, strict=True)], axis=0)
            order = np.argsort(columns[x][sel])
            label = ", ".join(f"{c} = {v:.4g}" for c, v in zip(others, group, strict=True)) or None
            ax.plot(columns[x][sel][order], columns[z][sel][order], marker="o", ms=3, label=label)
            if z == "efficiency":
                ax.plot(columns[x][sel][order], columns["carnot_bound"][sel][order], ls="--",
                        color="gray", lw=1)
        if z == "efficiency":
            ax.plot([], [], ls="--", color="gray", label="Carnot bound $T_B/(T_A - T_B)$")
        ax.axhline(0, color="black", lw=0.6)
        ax.set_ylabel(labels.get(z, z))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    else:
        xs, ys = np.unique(columns[x][ok]), np.unique(columns[y][ok])
        grid = np.full((ys.size, xs.size), np.nan)
        qb = np.full_like(grid, np.nan)
        for i in np.flatnonzero(ok):
            r, c = np.searchsorted(ys, columns[y][i]), np.searchsorted(xs, columns[x][i])
            grid[r, c] = columns[z][i]
            qb[r, c] = columns["Q_B"][i]
        style: dict[str, Any] = {"cmap": "viridis"}
        if np.nanmin(grid) < 0 < np.nanmax(grid):
            # Signed maps: pumping (> 0) red, reversed (< 0) blue, whatever the two ranges are.
            from matplotlib.colors import TwoSlopeNorm

            style = {"cmap": "RdBu_r", "norm": TwoSlopeNorm(0.0, np.nanmin(grid), np.nanmax(grid))}
        mesh = ax.pcolormesh(xs, ys, grid, shading="nearest", **style)
        fig.colorbar(mesh, ax=ax, label=labels.get(z, z))
        if xs.size > 1 and ys.size > 1 and np.nanmin(qb) < 0 < np.nanmax(qb):
            ax.contour(xs, ys, qb, levels=[0.0], colors="black", linewidths=1.5)
            ax.plot([], [], color="black", label=r"no pumping ($\bar Q_B = 0$)")
        if z == "efficiency" and xs.size > 1 and ys.size > 1:
            carnot = np.full_like(grid, np.nan)
            for i in np.flatnonzero(ok):
                carnot[np.searchsorted(ys, columns[y][i]), np.searchsorted(xs, columns[x][i])] = \
                    columns["carnot_bound"][i]
            if np.nanmin(grid - carnot) < 0 < np.nanmax(grid - carnot):
                ax.contour(xs, ys, grid - carnot, levels=[0.0], colors="red", linestyles="--")
        ax.set_ylabel(labels.get(y, y))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small", loc="best")
    ax.set_xlabel(labels.get(x, x))
    ax.set_title(f"Pump map: {z}", fontsize="medium")
    fig.tight_layout()
    return fig


def figure6(run: PumpResult | None = None):
    """Fig. 6 at the paper's parameters (runs the HEOM pump unless a result is given)."""
    return pump_figure(run or HeatPump().run())


@dataclass(frozen=True)
class CorrelationRegion:
    """The admissible correlations of App. A in the plane of Fig. 7: x = chi_11, y = |chi_23|^2.

    The conditions, with lambda_1..4 the populations of Eq. 6 at (TA, TB):

    - (A2a) positivity of the diagonal: -lambda_4 <= x <= min(lambda_2, lambda_3);
    - (A2b) positivity of the |01>, |10> block: y <= (lambda_2 - x)(lambda_3 - x);
    - (A4) entanglement: y > (lambda_1 + x)(lambda_4 + x).

    The two parabolas cross at x = 0 (lambda_1 lambda_4 = lambda_2 lambda_3), so the region is
    -lambda_4 <= x < 0 between them. Its vertical edge is x = -lambda_4, 0 < y <= lambda_4: there
    the concurrence (A3) is 2 sqrt(y), largest at the top corner, which is the optimal correlation
    of Eq. 10 (chi_11 = -lambda_4, |chi_23| = sqrt(lambda_4)) with C0 = 2 sqrt(lambda_4) (Eq. 11):
    the edge's height lambda_4 is (C0/2)^2.

    Attributes
    ----------
    TA, TB : float
        The local temperatures.
    lambdas : numpy.ndarray
        lambda_1..4 (Eq. 6), from :func:`qpump.states.lambdas`.
    optimal : tuple of float
        (chi_11, |chi_23|^2) of Eq. 10, from :func:`qpump.states.optimal_correlation`.
    C0 : float
        The concurrence of the optimal correlation (:attr:`qpump.states.XStateCorrelation.concurrence`).
    """

    TA: float
    TB: float
    lambdas: np.ndarray
    optimal: tuple[float, float]
    C0: float

    @property
    def x_min(self) -> float:
        """The lower bound -lambda_4 of (A2a): the region's vertical edge."""
        return float(-self.lambdas[3])

    @property
    def x_max(self) -> float:
        """The upper bound min(lambda_2, lambda_3) of (A2a)."""
        return float(min(self.lambdas[1], self.lambdas[2]))

    @property
    def x_corner(self) -> float:
        """Where the bounds of (A2b) and (A4) cross: x = 0, y = lambda_2 lambda_3."""
        return 0.0

    def upper(self, x):
        """The bound of (A2b) on y = |chi_23|^2: (lambda_2 - x)(lambda_3 - x) (included)."""
        lam = self.lambdas
        return (lam[1] - np.asarray(x, dtype=float)) * (lam[2] - np.asarray(x, dtype=float))

    def lower(self, x):
        """The bound of (A4) on y = |chi_23|^2: (lambda_1 + x)(lambda_4 + x) (excluded)."""
        lam = self.lambdas
        return (lam[0] + np.asarray(x, dtype=float)) * (lam[3] + np.asarray(x, dtype=float))

    def contains(self, x, y):
        """True where (x, y) satisfies (A2a), (A2b) and (A4): an entangled, locally thermal state."""
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        return (x >= self.x_min) & (x <= self.x_max) & (y >= 0) & (y <= self.upper(x)) & \
            (y > self.lower(x))


def correlation_region(TA: float = 2.0, TB: float = 1.0) -> CorrelationRegion:
    """The region of Fig. 7 at local temperatures (TA, TB), in (0, inf] each."""
    best = optimal_correlation(TA, TB)
    return CorrelationRegion(float(TA), float(TB), lambdas(TA, TB), (best.chi11, best.chi23_abs ** 2),
                             best.concurrence)


def figure7(TA: float = 2.0, TB: float = 1.0, points: int = 401):
    """Fig. 7: the conditions (A2a), (A2b) and (A4) in the plane x = chi_11, y = |chi_23|^2, the
    admissible entangled region shaded, and the optimal correlation of Eq. 10 marked at the top
    of its vertical edge, y = lambda_4 = (C0/2)^2. See :class:`CorrelationRegion`."""
    plt = _pyplot()
    region = correlation_region(TA, TB)
    lam4 = region.lambdas[3]
    span = region.x_max - region.x_min
    x = np.linspace(region.x_min - 0.25 * span, region.x_max + 0.1 * span, points)
    fig, ax = plt.subplots(figsize=(6.4, 6.0))
    inside = np.linspace(region.x_min, region.x_corner, points)
    ax.fill_between(inside, region.lower(inside), region.upper(inside), color="tab:orange",
                    alpha=0.35, lw=0, label="all three conditions")
    ax.plot(x, region.upper(x), color="tab:blue",
            label=r"(A2b): $y \leq (\lambda_2 - x)(\lambda_3 - x)$")
    ax.plot(x, region.lower(x), color="tab:red", ls="--",
            label=r"(A4): $y > (\lambda_1 + x)(\lambda_4 + x)$")
    for edge in (region.x_min, region.x_max):
        ax.axvline(edge, color="black", ls=":", lw=1)
    ax.plot([], [], color="black", ls=":", lw=1,
            label=r"(A2a): $-\lambda_4 \leq x \leq \min(\lambda_2, \lambda_3)$")
    ax.plot(*region.optimal, "o", color="black", ms=7,
            label=rf"Eq. 10: $x = -\lambda_4$, $y = \lambda_4 = (\mathcal{{C}}_0/2)^2$, "
                  rf"$\mathcal{{C}}_0 = {region.C0:.4f}$")
    ax.annotate("", xy=(region.x_min, 0.0), xytext=(region.x_min, lam4),
                arrowprops=dict(arrowstyle="<->", color="black", lw=1.2))
    ax.text(region.x_min - 0.02 * span, lam4 / 2, r"$\lambda_4 = \mathcal{C}_0^2/4$", ha="right",
            va="center", fontsize="small")
    ax.axhline(0, color="gray", lw=0.6)
    ax.set_xlim(x[0], x[-1])
    ax.set_ylim(-0.05 * lam4, 1.6 * lam4)
    ax.set_xlabel(r"$x = \chi_{11}$")
    ax.set_ylabel(r"$y = |\chi_{23}|^2$")
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=1)
    ax.grid(alpha=0.3)
    ta, tb = (r"\infty" if math.isinf(t) else f"{t:g}" for t in (region.TA, region.TB))
    ax.set_title(rf"Admissible correlations, $T_A = {ta}$, $T_B = {tb}$ (paper Fig. 7)",
                 fontsize="medium")
    fig.tight_layout()
    return fig


FIGURES: dict[int, Callable] = {1: figure1, 2: figure2, 4: figure4, 5: figure5, 6: figure6,
                                7: figure7}


def closed_run_figure(run: ClosedRun):
    """SED (numerical and closed form), concurrence and mutual information of one closed run."""
    plt = _pyplot()
    tr = run.trajectory
    fig, axes = plt.subplots(3, 1, figsize=(6, 7), sharex=True)
    axes[0].plot(tr.times, tr.sed, color="tab:red", label="exact propagation")
    axes[0].plot(tr.times, run.sed_closed_form, color="black", ls=":", label="closed form (Eq. 12)")
    axes[0].axvline(run.tau_peak, color="gray", lw=0.8, ls="--",
                    label=r"$\tau = |\theta|/2\Omega$")
    axes[1].plot(tr.times, tr.concurrence, color="tab:red")
    axes[2].plot(tr.times, tr.mutual_information, color="tab:red")
    axes[0].set_ylabel(r"$\Delta_{AB}$ [$\hbar\omega$]")
    axes[1].set_ylabel(r"concurrence $\mathcal{C}$")
    axes[2].set_ylabel(r"$I_{AB}$ [nats]")
    axes[2].set_xlabel(r"time $t$ [$1/\omega$]")
    axes[0].legend(fontsize="small")
    for ax in axes:
        ax.grid(alpha=0.3)
    p = run.params
    fig.suptitle(
        rf"Isolated pair: $T_A = {p['TA']:g}$, $T_B = {p['TB']:g}$, $\Omega = {p['omega_c']:g}$, "
        rf"$\delta = {p['delta']:.4g}$"
    )
    fig.tight_layout()
    return fig


def save(fig, path: str | Path, close: bool = True) -> Path:
    """Save a matplotlib figure atomically; the format follows the extension (.png, .pdf, .svg).
    The figure is closed afterwards unless ``close`` is False (to save it in another format too)."""
    path = Path(path)
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in ("png", "pdf", "svg"):
        raise InvalidParameterError(f"output file {str(path)!r} must end in .png, .pdf or .svg")
    try:
        write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=150, format=suffix))
    finally:
        if close:
            _pyplot().close(fig)
    return path


def save_figure(number: int, path: str | Path) -> Path:
    """Draw paper figure ``number`` and save it to ``path`` (format from the extension)."""
    if number not in FIGURES:
        raise InvalidParameterError(
            f"figure = {number!r} is not available; choose one of {sorted(FIGURES)}"
        )
    if Path(path).suffix.lower() not in (".png", ".pdf", ".svg"):
        raise InvalidParameterError(f"output file {str(path)!r} must end in .png, .pdf or .svg")
    return save(FIGURES[number](), path)


def save_all(out_dir: str | Path, progress: bool = False) -> dict:
    """Draw Figs. 1, 2, 4, 5, 6, 7 as PNG into ``out_dir`` and write ``summary.json`` with the key
    numbers (isolated pair, transient anomalous heat, pump per cycle). Returns the summary."""
    from .closed import concurrence_initial, sed_initial, tau_peak, theta
    from .info import mutual_information
    from .states import correlated_state

    out = check_output_dir(out_dir)
    steps = ["fig1", "fig2", "transients", "fig4", "fig5", "pump", "fig6", "fig7"]
    from tqdm.auto import tqdm

    bar = tqdm(total=len(steps), disable=not progress, desc="figures", unit="step", leave=False)
    written = []

    def done(path: Path | None = None) -> None:
        if path is not None:
            written.append(path.name)
        bar.update(1)

    try:
        done(save(figure1(), out / "fig1.png"))
        done(save(figure2(), out / "fig2.png"))
        runs = transient_runs()
        done()
        done(save(figure4(runs), out / "fig4.png"))
        done(save(figure5(runs), out / "fig5.png"))
        pump = HeatPump().run()
        done()
        done(save(pump_figure(pump), out / "fig6.png"))
        done(save(figure7(), out / "fig7.png"))
    finally:
        bar.close()
    anomalous = runs["anomalous"]
    s, t = anomalous.series, anomalous.t
    summary = {
        "isolated_pair": {"TA": 2.0, "TB": 1.0, "omega_c": 0.1, "delta": -math.pi / 2,
                          "C0": concurrence_initial(2, 1),
                          "I0": float(mutual_information(correlated_state(2, 1))),
                          "Delta_AB_0": sed_initial(2, 1), "theta": theta(2, 1, -math.pi / 2),
                          "tau_peak": tau_peak(2, 1, 0.1, -math.pi / 2)},
        "transient": {"kappa_a": 0.01, "kappa_b": 0.01,
                      "sed_peak_time": float(t[np.argmax(s["sed"])]),
                      "sed_peak": float(np.max(s["sed"])),
                      "concurrence_death_time": float(t[np.argmax(s["concurrence"] < 1e-12)]),
                      "min_sigma": float(np.min(s["sigma"])),
                      "min_sigma0": float(np.min(s["sigma0"]))},
        "pump": pump.to_json(),
        "files": written,
    }
    write_text_atomic(out / "summary.json", dumps(summary, indent=2) + "\n")
    return summary
