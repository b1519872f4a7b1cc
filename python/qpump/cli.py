"""The ``qpump`` command line.

Every subcommand validates its input, output paths included, before computing. Exit statuses:

- 0: done, every invariant of the result checked;
- 2: bad input, one line on stderr naming the parameter, the value and what is allowed;
- 3: a computation that failed its own checks (trace, positivity, first or second law, the
  integrator) or an output that could not be written, one line naming the check; no result is
  printed or written;
- 130: interrupted (Ctrl-C), one line; nothing partial is left behind.

No traceback for any of these. Every JSON qpump prints or writes is strict (see
:mod:`qpump.output`).
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from . import __version__
from .errors import ComputationError, QpumpError
from .output import check_output_dir, check_output_file, dumps, write_atomic, write_text_atomic
from .parsing import parse_memory, parse_number

__all__ = ["build_parser", "main", "parse_number", "parse_memory"]

EXIT_OK, EXIT_BAD_INPUT, EXIT_FAILED_CHECK, EXIT_INTERRUPTED = 0, 2, 3, 130

class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage block) with exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


# Options whose value may start with '-' (a negative number such as -pi/2), filled by _number().
_NUMBER_OPTIONS: set[str] = set()


def _number(parser: argparse.ArgumentParser, flag: str, default: float, help: str, **kw) -> None:
    _NUMBER_OPTIONS.add(flag)
    parser.add_argument(flag, type=parse_number, default=default,
                        help=f"{help} (default: {default:g})", **kw)


def _join_negative_values(argv: Sequence[str]) -> list[str]:
    """Turn ``--delta -pi/2`` into ``--delta=-pi/2``: argparse would read -pi/2 as an option."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        tok = argv[i]
        if tok in _NUMBER_OPTIONS and i + 1 < len(argv) and argv[i + 1].startswith("-"):
            out.append(f"{tok}={argv[i + 1]}")
            i += 2
        else:
            out.append(tok)
            i += 1
    return out


def _cmd_about(args: argparse.Namespace) -> int:
    from . import about

    info = about(print_it=not args.json)
    if args.json:
        print(dumps(info))
    return 0


def _cmd_cite(args: argparse.Namespace) -> int:
    from . import cite

    print(cite(), end="")
    return 0


def _cmd_closed(args: argparse.Namespace) -> int:
    from .closed import run_closed

    if args.plot:
        check_output_file(args.plot, "--plot", (".png", ".pdf", ".svg"))
    run = run_closed(TA=args.TA, TB=args.TB, omega_c=args.omega_c, delta=args.delta,
                     t_max=args.t_max, points=args.points)
    if args.plot:
        from .figures import closed_run_figure, save

        save(closed_run_figure(run), args.plot)
    if args.json:
        print(dumps(run.to_json()))
        return 0
    tr = run.trajectory
    p = run.params
    print(f"Isolated pair: TA = {p['TA']:g}, TB = {p['TB']:g}, Omega = {p['omega_c']:g}, "
          f"delta = {p['delta']:.6g} (phi_V = delta, phi_chi = 0), optimal chi (Eq. 10)")
    print(f"C0 = {run.C0:.6f}   I0 = {run.I0:.6f} nats   Delta_AB(0) = {tr.sed[0]:.6f}   "
          f"theta = {run.theta:.6f}   tau_peak = |theta|/(2 Omega) = {run.tau_peak:.4f}")
    print(f"{'t':>9} {'E_A':>11} {'E_B':>11} {'SED':>11} {'concurrence':>12} {'I_AB':>10}")
    stride = max(1, (len(tr.times) - 1) // 10)
    for i in range(0, len(tr.times), stride):
        print(f"{tr.times[i]:9.3f} {tr.E_A[i]:11.6f} {tr.E_B[i]:11.6f} {tr.sed[i]:11.6f} "
              f"{tr.concurrence[i]:12.6f} {tr.mutual_information[i]:10.6f}")
    if args.plot:
        print(f"plot written to {args.plot}")
    return 0


def _truncation(text: str) -> int | str:
    """``auto`` or a non-negative integer (range checked by HeatPump, naming the option)."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer or auto") from None


def _pump_from_args(args: argparse.Namespace):
    from .pump import HeatPump

    return HeatPump(
        TA=args.TA, TB=args.TB, omega_c=args.omega_c, delta=args.delta, phi_v=args.phi_v,
        kappa_a=args.kappa_a, kappa_b=args.kappa_b, gamma=args.gamma, tau=args.tau,
        tau_relax=args.relax, ramp=args.ramp, ramp_time=args.ramp_time, cycles=args.cycles,
        depth=args.depth, n_exp=args.n_exp, expansion=args.expansion, initial=args.initial,
        solver=args.solver, memory_limit_bytes=args.memory_limit, conv_tol=args.conv_tol,
        time_limit_s=args.time_limit,
    )


_PAPER_FIELDS = ("TA", "TB", "omega_c", "delta", "phi_v", "kappa_a", "kappa_b", "gamma", "tau",
                 "tau_relax", "ramp", "chi11", "chi23")


def _fmt(value: float | None, spec: str) -> str:
    """``value`` formatted, or ``n/a`` where it is undefined (None or NaN)."""
    return "n/a" if value is None or not math.isfinite(value) else format(value, spec)


def _print_pump(result, pump, out) -> None:

    p = result.params
    print(f"Heat pump ({p['solver']}): TA = {p['TA']:g}, TB = {p['TB']:g}, Omega = {p['omega_c']:g}, "
          f"delta = {p['delta']:.6g}, phi_V = {pump.v_phase:.6g}, kappa_A = {p['kappa_a']:g}, "
          f"kappa_B = {p['kappa_b']:g}, gamma = {p['gamma']:g}, tau = {p['tau']:g}, "
          f"tau_relax = {p['tau_relax']:g}")
    if p["ramp"] != "none":
        print(f"V_AB switched by a {p['ramp']} ramp of {p['ramp_time']:g} each way (contact "
              f"{pump.contact_duration:g}, the same pulse area as tau); W = int f' <V_AB> dt")
    if p["solver"] == "heom":
        print(f"HEOM: depth {p['depth']}, {p['n_exp']} {p['expansion']} terms per bath, "
              f"initial state: {p['initial']}")
    print(f"\n{'cycle':>5} {'Q_A':>11} {'Q_B':>11} {'W_on':>10} {'W_off':>10} {'I_0':>9} "
          f"{'Q_B/(T_A I_0)':>14} {'1st-law res.':>13}")
    for c in result.cycles:
        print(f"{c.index:5d} {c.Q_A:11.6f} {c.Q_B:11.6f} {c.W_on:10.2e} {c.W_off:10.2e} "
              f"{c.I0:9.6f} {_fmt(c.cop_ratio, '14.6f'):>14} {c.first_law_residual:13.2e}")
    last = result.cycles[-1]
    ratio = f"Q_B/(T_A I_0) = {_fmt(last.cop_ratio, '.4f')}"
    bare = f"with the I_0 of the bare state of Eq. 10: {_fmt(last.cop_ratio_bare, '.4f')}"
    pumping = result.regime == "pump" and last.Q_B > 0 > last.Q_A
    if result.regime == "pump":
        at_paper = all(getattr(pump, k) == getattr(_paper(), k) for k in _PAPER_FIELDS)
        paper = " (paper: 0.186 against 1)" if at_paper else ""
        print(f"\nefficiency {ratio} against the Carnot bound T_B/(T_A - T_B) = "
              f"{result.carnot_bound:.4f}{paper}; {bare}")
    elif result.regime == "no gradient":
        print(f"\nT_A = T_B: no temperature gradient to pump against, so no Carnot bound; {ratio}; "
              f"{bare}")
    else:
        print(f"\nT_B > T_A: bath A is the colder one here (the roles of Fig. 6 are swapped) and no "
              f"Carnot bound applies; {ratio}; {bare}")
    magnitude = (f"; |Q_A|/|Q_B| = {abs(last.Q_A) / abs(last.Q_B):.5f}" if last.Q_B != 0 else "")
    if pumping:
        print(f"heat pumped per cycle: drawn from the cold bath {last.Q_B:.6f}, delivered to the hot "
              f"bath {-last.Q_A:.6f}{magnitude}")
    else:
        print(f"heat drawn per cycle from bath A: {last.Q_A:.6f}, from bath B: {last.Q_B:.6f}"
              f"{magnitude}" + (" (no heat pumped from the cold bath to the hot one)"
                                if result.regime == "pump" else ""))
    if result.normal_heat_current is not None:
        cycle_time = pump.contact_duration + p["tau_relax"]
        print(f"normal reference (coupled all the time, no correlation): steady current "
              f"{result.normal_heat_current:.6g} from bath A to bath B, "
              f"{result.normal_heat_current * cycle_time:.6f} per cycle time")
    print(f"wall time {result.wall_time_s:.1f} s; all invariants hold; wrote {out}/results.json, "
          "series.npz, fig6.png")


def _cmd_pump(args: argparse.Namespace) -> int:
    import numpy as np

    from .errors import NotConvergedError
    from .figures import pump_figure, save

    out = check_output_dir(args.output)
    pump = _pump_from_args(args)
    try:
        result = pump.run(progress=not args.no_progress)
    except NotConvergedError as err:
        # The search's table is the result of a run that did not converge: written, then exit 3.
        table = err.result.to_json()  # type: ignore[attr-defined]
        write_text_atomic(out / "convergence.json", dumps(table, indent=2) + "\n")
        if not args.json:
            print(err.result.table_text())  # type: ignore[attr-defined]
        print(f"not converged; the convergence table is in {out}/convergence.json",
              file=sys.stderr)
        raise
    payload = result.to_json()

    def write_series(path) -> None:
        # A file object, not a name: np.savez would append ".npz" to the temporary name.
        with open(path, "wb") as fh:
            arrays: dict[str, Any] = {k: np.asarray(v) for k, v in result.series.items()}
            np.savez_compressed(fh, t=result.t, **arrays)

    write_text_atomic(out / "results.json", dumps(payload, indent=2) + "\n")
    write_atomic(out / "series.npz", write_series)
    save(pump_figure(result), out / "fig6.png")
    if args.json:
        print(dumps(payload))
    else:
        if result.convergence is not None:
            conv = result.convergence
            print(f"truncation converged to {conv.conv_tol:g} in {conv.runs} runs ({conv.seconds:.1f} "
                  f"s): depth {conv.depth}, n_exp {conv.n_exp} ({conv.expansion})")
            print(conv.table_text() + "\n")
        _print_pump(result, pump, out)
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from .errors import InvalidParameterError
    from .sweep import SweepSpec, load_spec, parse_axis, run_sweep

    check_output_dir(args.output)
    spec = load_spec(args.spec) if args.spec else SweepSpec()
    for text in args.axis:
        name, values = parse_axis(text)
        spec.axes[name] = values
    for text in args.set:
        name, values = parse_axis(text)
        if len(values) != 1:
            raise InvalidParameterError(f"--set {text}: give one value (use --axis for several)")
        spec.fixed[name] = values[0]
    if args.optimize_tau:
        spec.optimize_tau = args.optimize_tau
    spec.validate()
    if not args.json:
        print(f"sweep of {spec.size} points over {', '.join(spec.axes)} -> {args.output}/results.csv")
    try:
        rows = run_sweep(spec, args.output, workers=args.workers, dask=args.dask,
                         progress=not args.no_progress,
                         log=lambda line: print(line, file=sys.stderr if args.json else sys.stdout))
    except KeyboardInterrupt:
        print(f"\rqpump sweep: interrupted; the finished points are kept in {args.output}/points.jsonl "
              "(no results.csv yet): run the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    failed = [r for r in rows if r.get("error")]
    if args.json:
        print(dumps({"points": len(rows), "failed": len(failed),
                     "results": f"{args.output}/results.csv"}))
        return 0
    print(f"{len(rows)} points done, {len(failed)} failed; table: {args.output}/results.csv")
    for r in failed[:5]:
        print(f"  failed at {', '.join(f'{k}={r[k]}' for k in spec.axes)}: {r['error']}")
    return 0


def _cmd_plot_sweep(args: argparse.Namespace) -> int:
    from .figures import save, sweep_figure
    from .sweep import read_results

    check_output_file(args.output, "-o", (".png", ".pdf", ".svg"))
    columns = read_results(args.results)
    path = save(sweep_figure(columns, args.x, args.y, args.z), args.output)
    print(f"map written to {path}")
    return 0


def _cmd_circuits_export(args: argparse.Namespace) -> int:
    from .errors import InvalidParameterError
    from .quantum import export_circuits
    from .quantum.backends import parse_layout

    check_output_dir(args.output)
    times = None
    if args.times:
        try:
            times = [parse_number(t) for t in args.times.split(",") if t.strip()]
        except argparse.ArgumentTypeError as err:
            raise InvalidParameterError(f"--times: {err}") from None
    layout = parse_layout(args.layout) if args.layout else None
    if args.experiment == "pump":
        from .pump import HeatPump
        from .quantum.collision_pump import LineLayout
        from .quantum.pump_experiment import export_pump_circuits

        if layout is not None and len(layout) != 4:
            raise InvalidParameterError("--layout for --experiment pump names four qubits: a_A,A,B,a_B")
        line = LineLayout(layout[1], layout[2], layout[0], layout[3]) if layout is not None else None
        pump = HeatPump(TA=args.TA, TB=args.TB, omega_c=args.omega_c, delta=args.delta)
        manifest = export_pump_circuits(args.output, pump, backend=args.backend, layout=line,
                                        shots=args.shots, cycles=args.cycles)
        if manifest["planner"]:
            print(manifest["planner"], file=sys.stderr)
    elif args.experiment == "energies":
        manifest = export_circuits(args.output, TA=args.TA, TB=args.TB, omega_c=args.omega_c,
                                   delta=args.delta, times=times, backend=args.backend, layout=layout,
                                   shots=args.shots)
    else:
        raise InvalidParameterError(f"--experiment = {args.experiment!r} must be energies or pump")
    if args.json:
        print(dumps(manifest))
    else:
        lay = ", ".join(f"{role} = qubit {q}" for role, q in manifest["layout"].items())
        gates = [e["two_qubit_gates"] for e in manifest["files"].values()]
        print(f"wrote {len(manifest['files'])} circuits (OpenQASM 3 and QPY) and manifest.json to "
              f"{args.output} for backend {manifest['backend']['name']}: {lay}; "
              f"{min(gates)}-{max(gates)} two-qubit gates per circuit")
    return 0


def _cmd_experiment_run(args: argparse.Namespace) -> int:
    from .quantum.experiment import plan_jobs, run_experiment
    from .quantum.export import load_manifest

    check_output_file(args.output, "-o", (".json",))
    try:
        doc = run_experiment(args.circuits, args.output, backend=args.backend, shots=args.shots,
                             seed=args.seed, twirling=args.twirling,
                             dynamical_decoupling=args.dynamical_decoupling, progress=sys.stderr.isatty(),
                             log=lambda line: print(line, file=sys.stderr))
    except KeyboardInterrupt:
        print(f"\rqpump experiment run: interrupted; the finished jobs are saved in {args.output}: run "
              "the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    manifest, _ = load_manifest(args.circuits)
    print(f"ran {len(plan_jobs(manifest))} jobs, {len(doc['counts'])} circuits, "
          f"{sum(doc['shots'].values())} shots on {doc['backend']}; counts written to {args.output}")
    return 0


def _cmd_experiment_analyze(args: argparse.Namespace) -> int:
    from .quantum.analysis import analyze, write_analysis

    if args.output:
        check_output_dir(args.output)
    result = analyze(args.counts, args.manifest, bootstrap=args.bootstrap)
    if args.output:
        write_analysis(result, args.output)
    if args.json:
        print(dumps(result.to_json()))
    else:
        print(result.summary_text())
        if args.output:
            print(f"analysis.json and the figure written to {args.output}")
    return 0


def _cmd_crossval(args: argparse.Namespace) -> int:
    from .crossval import REPO_CIRCUITS, crossval_rows, format_markdown, format_table
    from .errors import InvalidParameterError

    if args.output:
        check_output_file(args.output, "-o")
    pump = _pump_from_args(args)
    if pump.ramp != "none":
        raise InvalidParameterError("qpump crossval compares the sudden switch (the circuits, Aer "
                                    "and the local master equation have no ramp); drop --ramp")
    default = all(getattr(args, k) == getattr(_paper(), k) for k in ("TA", "TB", "omega_c", "delta"))
    circuits = REPO_CIRCUITS if default and (REPO_CIRCUITS / "manifest.json").exists() else None
    rows = crossval_rows(pump, dt=args.dt, circuits_dir=circuits)
    if args.output:
        write_text_atomic(args.output, format_markdown(rows))
    if args.json:
        print(dumps({"rows": rows}))
    else:
        print(format_table(rows))
        failed = [r for r in rows if r["passed"] is False]
        print(f"\n{len(rows)} rows, {sum(r['passed'] is True for r in rows)} passed, "
              f"{len(failed)} failed, {sum(r['passed'] is None for r in rows)} measurements")
    return EXIT_FAILED_CHECK if any(r["passed"] is False for r in rows) else EXIT_OK


def _cmd_figures(args: argparse.Namespace) -> int:
    from .figures import save_all

    check_output_dir(args.output)
    summary = save_all(args.output, progress=not args.no_progress)
    print(f"wrote {', '.join(summary['files'])} and summary.json to {args.output}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from .bench import PROBLEM_NAMES, QUTIP_METHOD, format_table, run_benchmarks

    result = run_benchmarks(quick=args.quick, with_qutip=not args.no_qutip,
                            progress=not args.no_progress, repeat=args.repeat,
                            with_reference=not args.no_reference, qutip_tight=args.qutip_tight,
                            qutip_method=args.qutip_method or QUTIP_METHOD,
                            problems=tuple(args.problem or PROBLEM_NAMES), busy=args.busy)
    print(dumps(result) if args.json else format_table(result))
    return 0


def _cmd_figure(args: argparse.Namespace) -> int:
    from .figures import save, save_figure

    check_output_file(args.output, "-o", (".png", ".pdf", ".svg"))
    if args.number != "coupling":
        path = save_figure(int(args.number), args.output)
        print(f"figure {args.number} written to {path}")
        return 0
    from pathlib import Path

    from .coupling import DEFAULT_KAPPAS, coupling_figure, coupling_scan
    from .pump import HeatPump

    kappas = (DEFAULT_KAPPAS if args.kappas is None
              else [parse_number(k) for k in args.kappas.split(",") if k.strip()])
    rows = coupling_scan(kappas, conv_tol=args.conv_tol, time_limit_s=args.time_limit,
                         progress=lambda line: print(line, file=sys.stderr, flush=True))
    table = Path(args.output).with_suffix(".json")
    write_text_atomic(table, dumps([r.to_json() for r in rows], indent=2) + "\n")
    path = save(coupling_figure(rows, HeatPump().carnot_bound), args.output)
    print(f"figure coupling written to {path}, its table to {table}")
    return 0


def _paper():
    """The paper's parameters: the defaults of :class:`qpump.pump.HeatPump`, the one place they are
    written."""
    from .pump import HeatPump

    return HeatPump()


def _pair_options(p: argparse.ArgumentParser) -> None:
    """The isolated pair's parameters, shared by `qpump closed` and `qpump circuits export`."""
    paper = _paper()
    _number(p, "--TA", paper.TA, "temperature of qubit A, in (0, inf]; inf is a maximally mixed qubit, "
            "written to JSON as the string \"inf\"")
    _number(p, "--TB", paper.TB, "temperature of qubit B, in (0, inf] (as --TA)")
    _number(p, "--omega-c", paper.omega_c, "coupling strength Omega of V_AB, > 0", dest="omega_c")
    _number(p, "--delta", paper.delta,
            "phase difference delta = phi_V - phi_chi, a number or pi expression such as -pi/2")


def _pump_options(p: argparse.ArgumentParser) -> None:
    """The parameters of the pump, shared by `qpump pump` and `qpump crossval`."""
    from .pump import EXPANSIONS, INITIALS, RAMPS, SOLVERS

    paper = _paper()
    _number(p, "--TA", paper.TA, "temperature of bath A (the hot one), in (0, inf): a Drude-Lorentz "
            "bath at infinite temperature has no finite correlation function")
    _number(p, "--TB", paper.TB, "temperature of bath B (the cold one), in (0, inf); TB >= TA is "
            "allowed and reported as such (no gradient, or the roles swapped; no Carnot bound)")
    _number(p, "--omega-c", paper.omega_c, "coupling strength Omega of V_AB, > 0", dest="omega_c")
    _number(p, "--delta", paper.delta,
            "phase difference delta = phi_V - phi_chi, a number or pi expression such as -pi/2")
    _NUMBER_OPTIONS.add("--phi-v")
    p.add_argument("--phi-v", type=parse_number, default=None, dest="phi_v", metavar="PHI",
                   help="phase phi_V of V_AB (phi_chi = phi_V - delta): the baths couple through "
                        "sigma_x, so the pump depends on the gauge beyond weak coupling, unlike the "
                        "isolated pair (default: phi_V = delta, phi_chi = 0)")
    _number(p, "--kappa-a", paper.kappa_a, "reorganisation energy of bath A, in (0, inf)",
            dest="kappa_a")
    _number(p, "--kappa-b", paper.kappa_b, "reorganisation energy of bath B, in (0, inf)",
            dest="kappa_b")
    _number(p, "--gamma", paper.gamma, "Drude cutoff of both baths, > 0")
    _number(p, "--tau", paper.tau, "contact time with V_AB on, in (0, inf)")
    _number(p, "--relax", paper.tau_relax, "rethermalization time with V_AB off, in [0, inf)")
    p.add_argument("--ramp", default=paper.ramp, choices=RAMPS,
                   help="how V_AB is switched: none (suddenly, as the paper), linear or sin2 (f(t) "
                        "V_AB rising over --ramp-time from the contact's start and falling over "
                        "--ramp-time from tau on: the same pulse area, the contact lasting tau + "
                        f"ramp time; HEOM only) (default: {paper.ramp})")
    _number(p, "--ramp-time", paper.ramp_time, "length of each ramp, in (0, tau] with --ramp "
            "linear or sin2", dest="ramp_time")
    p.add_argument("--cycles", type=int, default=paper.cycles,
                   help=f"number of cycles, >= 1 (default: {paper.cycles})")
    p.add_argument("--depth", type=_truncation, default=paper.depth,
                   help="HEOM hierarchy depth, >= 1 (the heat currents come from the first tier), "
                        f"or auto: raised until the heat per cycle converges (default: {paper.depth})")
    p.add_argument("--n-exp", type=_truncation, default=paper.n_exp, dest="n_exp",
                   help="HEOM exponents per bath besides the Drude term, >= 0, or auto: raised "
                        "(comparing Matsubara with Pade) until the heat per cycle converges "
                        f"(default: {paper.n_exp})")
    _number(p, "--conv-tol", paper.conv_tol, "with --depth/--n-exp auto: the largest change of "
            "Q_A, Q_B between successive truncations that counts as converged, > 0",
            dest="conv_tol")
    p.add_argument("--time-limit", type=parse_number, default=None, dest="time_limit",
                   metavar="SECONDS", help="with --depth/--n-exp auto: wall-time budget of the "
                   "search; reaching it (or --memory-limit) first exits with status 3 and the "
                   "convergence table written (default: none)")
    p.add_argument("--memory-limit", type=parse_memory, default=None, dest="memory_limit",
                   metavar="SIZE",
                   help="largest memory the HEOM run may use, e.g. 8G or 512M (default: half the "
                        "machine's memory); the whole run's peak is estimated before anything is "
                        "allocated")
    p.add_argument("--expansion", default=paper.expansion,
                   help=f"{' or '.join(EXPANSIONS)} (default: {paper.expansion})")
    p.add_argument("--initial", default=paper.initial,
                   help=f"{INITIALS[0]} (steady state of the uncoupled hierarchy, chi added) or "
                        f"{INITIALS[1]} (bare Gibbs product, all ADOs zero) (default: {paper.initial})")
    p.add_argument("--solver", default=paper.solver,
                   help=f"{SOLVERS[0]} (exact) or {SOLVERS[1]} (weak-coupling local master equation) "
                        f"(default: {paper.solver})")


def build_parser() -> argparse.ArgumentParser:
    """The ``qpump`` command line's parser, with every subcommand (public so that the
    documentation's CLI reference is generated from it, not written twice)."""
    parser = _Parser(
        prog="qpump",
        description=(
            "qpump: the heat pump driven entirely by quantum correlation (Holdsworth & Kawai, "
            "PRA 106, 062604, 2022). Units: hbar = k_B = omega = 1; entropies in nats. Angles "
            "accept pi expressions such as -pi/2."
        ),
        epilog=(
            "Exit status: 0 done (every invariant of the result checked), 2 bad input, 3 a "
            "computation that failed its own checks or an output that could not be written, 130 "
            "interrupted. JSON output is strict: inf is written as \"inf\", an undefined number "
            "as null."
        ),
    )
    parser.add_argument("--version", action="version", version=f"qpump {__version__}",
                        help="print qpump's version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("about", help="versions of qpump, its Rust core and its dependencies",
                       description="Print the versions of qpump, its Rust core and dependencies.")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_about)

    p = sub.add_parser("cite", help="BibTeX of the paper", description="Print the paper's BibTeX.")
    p.set_defaults(func=_cmd_cite)

    p = sub.add_parser(
        "closed",
        help="the isolated pair: exact dynamics from the optimal entangled state (Sec. III)",
        description=(
            "Propagate two qubits, locally Gibbs at TA and TB and maximally entangled (Eq. 10), "
            "under H_A + H_B + V_AB; print energies, SED, concurrence and mutual information."
        ),
    )
    _pair_options(p)
    _number(p, "--t-max", 40.0, "last time, > 0", dest="t_max")
    p.add_argument("--points", type=int, default=401, help="number of output times, >= 2 "
                   "(default: 401)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object (params, t, E_A, E_B, sed, concurrence, "
                        "mutual_information, theta, tau_peak, C0, I0)")
    p.add_argument("--plot", metavar="FILE", help="also draw the run to FILE (.png, .pdf, .svg)")
    p.set_defaults(func=_cmd_closed)

    p = sub.add_parser(
        "pump",
        help="the heat pump (main job): cycles, heat per cycle, efficiency vs the Carnot bound",
        description=(
            "Run the correlation-driven heat pump (paper Sec. V): each cycle injects the optimal "
            "correlation, couples the qubits for tau, then lets them rethermalize for tau_relax. "
            "Prints the per-cycle heat table, the efficiency Q_B/(T_A I_0) against the Carnot "
            "bound and the normal-conduction reference; writes results.json, series.npz and "
            "fig6.png to the output folder. Defaults are the paper's Fig. 6."
        ),
    )
    _pump_options(p)
    p.add_argument("-o", "--output", default="qpump-out", metavar="DIR",
                   help="output folder (default: qpump-out)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object (params, I0, carnot_bound, cycles, normal)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    p.set_defaults(func=_cmd_pump)

    p = sub.add_parser(
        "crossval",
        help="cross-validate closed form, HEOM, master equation, Aer and exported circuits",
        description=(
            "Run the whole chain at one parameter set and print one table (quantity, max "
            "deviation, tolerance, pass/fail): closed form vs exact propagation vs Aer; Aer with "
            "bath channels vs lindblad.py; lindblad.py vs HEOM at weak coupling (measured); the "
            "pump on HEOM and on Aer side by side; state preparation; exported circuits. Exit "
            "status 3 when a check fails."
        ),
    )
    _pump_options(p)
    _number(p, "--dt", 0.05, "Trotter step of the Aer runs, > 0")
    p.add_argument("-o", "--output", metavar="FILE", help="also write the table as Markdown")
    p.add_argument("--json", action="store_true", help='print {"rows": [...]}')
    p.set_defaults(func=_cmd_crossval)

    p = sub.add_parser("circuits", help="hardware circuits: export for qubit hardware",
                       description="Circuits for qubit hardware.")
    circuits = p.add_subparsers(dest="circuits_command", metavar="ACTION", parser_class=_Parser)
    circuits.required = True
    p = circuits.add_parser(
        "export",
        help="write preparation, contact and tomography circuits (OpenQASM 3, QPY, manifest.json)",
        description=(
            "Write, for one parameter set, the preparation of rho_0, the contact at a list of "
            "times (E_A, E_B vs t) and the tomography settings, as OpenQASM 3 (standard gates) and "
            "QPY, with manifest.json giving each file's parameters, qubit roles, suggested shots "
            "and the exact expected value of what it measures."
        ),
    )
    _pair_options(p)
    p.add_argument("--times", metavar="T1,T2,...", help="contact times (default: 0,2,...,16)")
    p.add_argument("--backend", default="ideal", metavar="NAME",
                   help="ideal (logical circuits, the default), generic (GenericBackendV2), a fake "
                        "device such as fake_sherbrooke (ECR) or fake_torino (CZ), or ibm:NAME (a real "
                        "device; needs a saved IBM Quantum account); devices need "
                        "'pip install qpump[hardware]'")
    p.add_argument("--experiment", default="energies", metavar="NAME",
                   help="energies (paper Sec. III: the anomalous energy exchange, tomography at every "
                        "contact time; the default) or pump (the pump cycle with each bath an ancilla "
                        "collision model, heat measured on the bath side; parameters planned for the "
                        "device's gate budget)")
    p.add_argument("--cycles", type=int, default=1,
                   help="--experiment pump: also run this many cycles in one dynamic circuit, each "
                        "re-prepared by mid-circuit resets (default 1: single cycles only)")
    p.add_argument("--layout", metavar="A,B[,ANCILLA]",
                   help="physical qubits of A, B and the ancilla (coupled to B); default: the connected "
                        "triple of least gate and readout error in the backend's calibration data "
                        "(--experiment pump: a_A,A,B,a_B, a line)")
    p.add_argument("--shots", type=int, default=10_000,
                   help="suggested shots per tomography setting, >= 1 (default: 10000)")
    p.add_argument("-o", "--output", default="circuits", metavar="DIR",
                   help="output folder (default: circuits)")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    p.set_defaults(func=_cmd_circuits_export)

    p = sub.add_parser("experiment", help="the hardware experiment: run exported circuits, analyze counts",
                       description="Run the experiment of paper Sec. III on a backend and analyze it.")
    experiment = p.add_subparsers(dest="experiment_command", metavar="ACTION", parser_class=_Parser)
    experiment.required = True
    p = experiment.add_parser(
        "run",
        help="run an exported set with a SamplerV2 primitive and write the counts (resumable)",
        description=(
            "Run the circuits of `qpump circuits export` as jobs (readout calibration, then one job "
            "per contact time) on the backend they were exported for: Aer's SamplerV2 with the "
            "device's noise model for ideal, generic and fake devices (job k seeded with SEED + k), "
            "qiskit-ibm-runtime's for ibm:NAME. The counts file is rewritten after every job; "
            "running the same command again resumes an interrupted run."
        ),
    )
    p.add_argument("circuits", metavar="DIR", help="folder of an exported set (with manifest.json)")
    p.add_argument("--backend", metavar="NAME",
                   help="the backend (default: the one the set was exported for; must match it)")
    p.add_argument("--shots", type=int, help="shots per tomography setting, split over a mixture's "
                   "branches by weight (default: the manifest's suggestion)")
    p.add_argument("--seed", type=int, default=20221206,
                   help="seed of the simulator of job 0; job k uses SEED + k (default: 20221206)")
    p.add_argument("--twirling", action="store_true",
                   help="ibm: devices: Pauli twirling of the gates and the measurements")
    p.add_argument("--dynamical-decoupling", action="store_true", dest="dynamical_decoupling",
                   help="ibm: devices: dynamical decoupling of idle qubits")
    p.add_argument("-o", "--output", default="counts.json", metavar="FILE",
                   help="counts file (default: counts.json); an existing one of the same run is resumed")
    p.set_defaults(func=_cmd_experiment_run)
    p = experiment.add_parser(
        "analyze",
        help="energies, tomography, concurrence and mutual information with error bars, and a verdict",
        description=(
            "Check that the counts belong to the manifest, then report for every contact time E_A, "
            "E_B, the SED, rho, concurrence and mutual information, raw and readout-mitigated, with "
            "bootstrap error bars, next to the ideal and the noisy-simulator predictions, and state "
            "whether the anomalous energy exchange (E_A up, E_B down against T_A > T_B) is detected."
        ),
    )
    p.add_argument("counts", metavar="COUNTS", help="counts file of `qpump experiment run`")
    p.add_argument("--manifest", metavar="PATH",
                   help="manifest.json or its folder (default: the one recorded in the counts file)")
    p.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples, >= 2 (default: 200)")
    p.add_argument("-o", "--output", metavar="DIR",
                   help="write analysis.json and the figure (PNG and PDF) into DIR")
    p.add_argument("--json", action="store_true", help="print the analysis as JSON")
    p.set_defaults(func=_cmd_experiment_analyze)

    p = sub.add_parser(
        "sweep",
        help="parameter maps: the pump over a grid, resumable, on a process pool or Dask",
        description=(
            "Run the pump at every point of a grid (axes from a TOML/YAML SPEC and/or --axis) and "
            "write DIR/results.csv, a row a point. Every finished point is kept at once: the same "
            "command after an interruption computes only the missing points. Parameter names: "
            "TA, TB, omega_c, delta, kappa_a, kappa_b, gamma, tau, relax, cycles (default 1), "
            "depth, n_exp, expansion, initial, solver, chi11, chi23."
        ),
    )
    p.add_argument("spec", nargs="?", help="TOML or YAML file with [axes] and [fixed] tables")
    p.add_argument("--axis", action="append", default=[], metavar="NAME=START:STOP:NUM",
                   help="an axis: NAME=START:STOP:NUM (linspace), NAME=log:START:STOP:NUM or "
                        "NAME=V1,V2,... (repeatable)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="a fixed parameter (repeatable), e.g. --set solver=lindblad")
    p.add_argument("--optimize-tau", choices=["Q_B", "efficiency"], dest="optimize_tau",
                   help="at each point choose tau maximising Q_B per cycle or the efficiency "
                        "(starting from the closed-form SED peak |theta|/(2 Omega))")
    p.add_argument("--workers", type=int, default=1, help="local worker processes (default: 1)")
    p.add_argument("--dask", metavar="ADDRESS",
                   help="run on a Dask cluster at ADDRESS, or 'local' for a LocalCluster "
                        "(needs pip install 'qpump[dask]')")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=_cmd_sweep)

    p = sub.add_parser("plot-sweep", help="line plot or heat map of a sweep's results",
                       description="Plot a sweep: z against x (lines) or over (x, y) (heat map), "
                                   "with the Carnot bound and the zero-pumping contour marked.")
    p.add_argument("results", help="DIR of a sweep or its results.csv")
    p.add_argument("-x", required=True, help="parameter on the x axis")
    p.add_argument("-y", help="parameter on the y axis (heat map)")
    p.add_argument("--z", default="efficiency",
                   help="column to show: efficiency, Q_B, Q_A, W_off, ... (default: efficiency)")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="PNG/PDF/SVG file")
    p.set_defaults(func=_cmd_plot_sweep)

    p = sub.add_parser("figures", help="all of the paper's figures and a summary.json",
                       description="Draw Figs. 1, 2, 4, 5, 6, 7 as PNG into DIR and write "
                                   "summary.json with the key numbers (runs the HEOM).")
    p.add_argument("-o", "--output", default="qpump-figures", metavar="DIR",
                   help="output folder (default: qpump-figures)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=_cmd_figures)

    p = sub.add_parser(
        "bench",
        help="HEOM benchmark: qpump vs QuTiP side by side, wall-time ratios",
        description=(
            "Run (a) one pump cycle at the paper's parameters (84 ADOs, 5000 output times) and "
            "(b) the two-qubit model at depth 8 with 3 Matsubara terms per bath (12,870 ADOs) and "
            "(c) steady states of a qubit and of the pump's pair over kappa, expansion and depth, "
            "with qpump and with QuTiP (when installed) in one process; print the agreement, the "
            "wall times and their ratio. Timings are measurements: the machine may be shared "
            "(--busy N measures beside N busy-looping processes)."
        ),
    )
    p.add_argument("--json", action="store_true", help='print {"problems": [...]}')
    p.add_argument("--quick", action="store_true", help="shorter problems (a smoke run)")
    p.add_argument("--no-qutip", action="store_true", help="time qpump only")
    p.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="run each code N times, the two taking turns, and keep each one's shortest "
                        "time; the ratio of medians is printed too (default 1)")
    p.add_argument("--no-reference", action="store_true",
                   help="skip the untimed tight qpump run both codes' errors are measured against")
    p.add_argument("--qutip-tight", action="store_true",
                   help="also compare with QuTiP at rtol 1e-10, atol 1e-12 (untimed; slow)")
    p.add_argument("--no-progress", action="store_true", help="no progress lines on stderr")
    p.add_argument("--qutip-method", default=None, metavar="METHOD",
                   help="QuTiP's integrator (default tsit5, QuTiP's fastest here, within 1e-8 of a "
                        "converged run on both problems; QuTiP's own default, adams, is 5e-7 off on "
                        "(b)); a wrong name lists the allowed ones")
    p.add_argument("--problem", action="append", metavar="NAME",
                   help="run only this problem, pump_cycle, deep_hierarchy, steady_state or "
                        "strong_coupling (repeatable; default all but strong_coupling, whose QuTiP "
                        "runs take minutes: one pump cycle at kappa 0.1/0.23, depth 5, 3 Matsubara "
                        "terms, each code in its own process with its peak memory)")
    p.add_argument("--busy", type=int, default=0, metavar="N",
                   help="run N busy-looping processes while the problems run, to measure on a busy "
                        "machine (default 0)")
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("figure", help="draw one of the paper's figures, or qpump's own",
                       description="Draw one of the paper's figures (1, 2, 4, 5, 6, 7) or one of "
                                   "qpump's (coupling: the pump from weak to strong coupling, HEOM "
                                   "converged at each kappa against the local master equation; "
                                   "it also writes FILE's table as JSON beside it) to a PNG/PDF/SVG "
                                   "file. Figs. 4-6 run the HEOM and take a while, coupling much "
                                   "longer; Fig. 7 (the admissible correlations of App. A) is drawn "
                                   "at T_A = 2, T_B = 1.")
    p.add_argument("number", choices=["1", "2", "4", "5", "6", "7", "coupling"],
                   metavar="NAME", help="figure number (1, 2, 4, 5, 6, 7) or name (coupling)")
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="output file (.png, .pdf or .svg)")
    p.add_argument("--kappas", default=None, metavar="LIST",
                   help="coupling: the kappa_A values, comma-separated (default: "
                        "0.001,0.003,0.01,0.03,0.1,0.2,0.5,1); kappa_B = 2.3 kappa_A")
    _number(p, "--conv-tol", 1e-4, "coupling: convergence tolerance of the truncation on Q_A, "
            "Q_B at each kappa", dest="conv_tol")
    p.add_argument("--time-limit", type=parse_number, default=None, dest="time_limit",
                   metavar="SECONDS", help="coupling: budget of each kappa's truncation search; a "
                   "kappa that does not converge in it is drawn from the master equation only")
    p.set_defaults(func=_cmd_figure)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0, 2 bad input, 3 failed check, 130
    interrupted; see the module docstring)."""
    parser = build_parser()
    try:
        args = parser.parse_args(_join_negative_values(list(sys.argv[1:] if argv is None else argv)))
    except KeyboardInterrupt:
        return _interrupted("qpump")
    func: Callable[[argparse.Namespace], int] = args.func
    name = f"qpump {args.command}"

    def show_warning(message, category, *_args, **_kwargs) -> None:  # one line, no source echo
        print(f"{name}: warning: {message}", file=sys.stderr)

    warnings.showwarning = show_warning
    try:
        return func(args)
    except ComputationError as err:
        print(f"{name}: error: {err}", file=sys.stderr)
        return EXIT_FAILED_CHECK
    except QpumpError as err:
        print(f"{name}: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return _interrupted(name)
    except BrokenPipeError:  # e.g. `qpump closed | head`: the reader left, nothing to report
        sys.stderr.close()
        return EXIT_OK


def _interrupted(name: str) -> int:
    """Report an interruption in one line; the carriage return starts it at the beginning of the
    line a progress bar may still occupy."""
    print(f"\r{name}: interrupted; no partial result was written", file=sys.stderr)
    return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
