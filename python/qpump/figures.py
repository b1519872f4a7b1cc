"""The paper's figures, regenerated (Figs. 1 and 2: the isolated pair)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from .closed import ClosedRun, run_closed
from .errors import InvalidParameterError

__all__ = ["figure1", "figure2", "closed_run_figure", "FIGURES", "save", "save_figure"]

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
    axes[1].set_ylabel(r"concurrence $\mathcal{C}$")
    axes[2].set_ylabel(r"mutual information $I_{AB}$ [nats]")
    axes[2].set_xlabel(r"time $t$ [$1/\omega$]")
    for ax, tag in zip(axes, "abc", strict=True):
        ax.text(0.01, 0.9, f"({tag})", transform=ax.transAxes)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="lower right", fontsize="small")
    fig.suptitle(r"Isolated pair, $T_A = 2$, $T_B = 1$, $\Omega = 0.1$ (paper Fig. 1)")
    fig.tight_layout()
    return fig


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


FIGURES: dict[int, Callable] = {1: figure1, 2: figure2}


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


def save(fig, path: str | Path) -> Path:
    """Save a matplotlib figure atomically; the format follows the extension (.png, .pdf, .svg)."""
    path = Path(path)
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in ("png", "pdf", "svg"):
        raise InvalidParameterError(f"output file {str(path)!r} must end in .png, .pdf or .svg")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        fig.savefig(tmp, dpi=150, format=suffix)
        tmp.replace(path)  # atomic: a reader never sees half a figure
    finally:
        tmp.unlink(missing_ok=True)
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
