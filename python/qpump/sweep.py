"""Parameter maps of the heat pump: many pump runs over a grid, resumable, on a local process
pool or a Dask cluster.

A sweep is a set of axes (parameter -> list of values) and fixed parameters, named as the options
of ``qpump pump`` (TA, TB, omega_c, delta, kappa_a, kappa_b, gamma, tau, relax, cycles, depth,
n_exp, expansion, initial, solver, chi11, chi23). Every finished point is appended at once to
``DIR/points.jsonl`` (one strict JSON object a line, flushed and synced), so a sweep killed at
any moment and started again with the same command computes only the missing points.
``DIR/results.csv`` (and ``DIR/results.parquet`` when pyarrow is installed) holds the table, a row
a point, and is written only when every point is done: a folder without it holds an unfinished
sweep. The folder is created with the first finished point.

A point whose run fails (bad parameters that only show at run time, a violated invariant such as
the first law, an integration failure) is recorded with its error in the ``error`` column and no
numbers, so that one bad point does not stop the map.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import _validate as check
from .errors import InvalidParameterError
from .output import dumps, write_atomic, write_text_atomic
from .parsing import parse_number
from .pump import HeatPump

__all__ = [
    "PARAMETERS",
    "RESULT_COLUMNS",
    "SweepSpec",
    "parse_axis",
    "load_spec",
    "run_point",
    "run_sweep",
    "read_results",
]

# Sweep name -> (HeatPump field, type). Names follow `qpump pump`'s options.
PARAMETERS: dict[str, tuple[str, type]] = {
    "TA": ("TA", float), "TB": ("TB", float), "omega_c": ("omega_c", float),
    "delta": ("delta", float), "phi_v": ("phi_v", float), "kappa_a": ("kappa_a", float),
    "kappa_b": ("kappa_b", float),
    "gamma": ("gamma", float), "tau": ("tau", float), "relax": ("tau_relax", float),
    "ramp": ("ramp", str), "ramp_time": ("ramp_time", float), "cycles": ("cycles", int),
    "depth": ("depth", int), "n_exp": ("n_exp", int),
    "expansion": ("expansion", str), "initial": ("initial", str), "solver": ("solver", str),
    "chi11": ("chi11", float), "chi23": ("chi23", float),
    # Both baths at once: kappa_a = kappa, kappa_b = kappa_ratio * kappa (not HeatPump fields).
    "kappa": ("kappa", float), "kappa_ratio": ("kappa_ratio", float),
    "conv_tol": ("conv_tol", float), "time_limit": ("time_limit_s", float),
}
#: kappa_B / kappa_A of the paper (0.023 / 0.01), the default of the ``kappa`` parameter.
KAPPA_RATIO = 2.3
RESULT_COLUMNS = ["Q_A", "Q_B", "I0", "efficiency", "carnot_bound", "W_on", "W_off",
                  "first_law_residual", "tau_used", "depth_used", "n_exp_used", "expansion_used",
                  "wall_time_s", "error"]
OPTIMIZE_TARGETS = ("Q_B", "efficiency")
#: Most points on one axis: every point is validated (a HeatPump built) before any run.
MAX_AXIS_POINTS = 100_000
# Sweeps default to one cycle: from the equilibrated start every cycle is the same.
SWEEP_DEFAULTS: dict[str, Any] = {"cycles": 1}


def _coerce(name: str, value: Any, where: str) -> Any:
    if name not in PARAMETERS:
        raise InvalidParameterError(
            f"{where}: unknown parameter {name!r}; known: {', '.join(PARAMETERS)}")
    kind = PARAMETERS[name][1]
    if kind is str:
        if not isinstance(value, str):
            raise InvalidParameterError(f"{where}: {name} = {value!r} must be a string")
        return value
    if name in ("depth", "n_exp") and value == "auto":  # converged per point (HeatPump)
        return value
    if isinstance(value, str):
        try:
            value = parse_number(value)
        except Exception:
            raise InvalidParameterError(f"{where}: {name} = {value!r} is not a number") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidParameterError(f"{where}: {name} = {value!r} is not a number")
    if kind is int:
        if float(value) != int(value):
            raise InvalidParameterError(f"{where}: {name} = {value!r} must be an integer")
        return int(value)
    if not math.isfinite(float(value)):
        raise InvalidParameterError(f"{where}: {name} = {value!r} must be finite")
    return float(value)


def _values_from_range(kind: str, args: Any, name: str, where: str) -> list[float]:
    if not (isinstance(args, (list, tuple)) and len(args) == 3):
        raise InvalidParameterError(f"{where}: {name}: {kind} takes [start, stop, num]")
    start, stop = (_coerce(name, a, where) for a in args[:2])
    num = args[2]
    if isinstance(num, bool) or not isinstance(num, int) or not 1 <= num <= MAX_AXIS_POINTS:
        raise InvalidParameterError(
            f"{where}: {name}: num = {num!r} must be an integer in [1, {MAX_AXIS_POINTS}]")
    if kind == "logspace":
        if start <= 0 or stop <= 0:
            raise InvalidParameterError(f"{where}: {name}: logspace needs start, stop > 0")
        return [float(v) for v in np.geomspace(start, stop, num)]
    return [float(v) for v in np.linspace(start, stop, num)]


def _axis_values(name: str, value: Any, where: str) -> list[Any]:
    if isinstance(value, dict):
        if len(value) != 1 or next(iter(value)) not in ("linspace", "logspace"):
            raise InvalidParameterError(
                f"{where}: axis {name} must be a list or {{linspace|logspace = [start, stop, num]}}")
        kind, args = next(iter(value.items()))
        values = _values_from_range(kind, args, name, where)
    elif isinstance(value, (list, tuple)):
        values = [_coerce(name, v, where) for v in value]
    else:
        raise InvalidParameterError(f"{where}: axis {name} must be a list of values")
    if not values:
        raise InvalidParameterError(f"{where}: axis {name} is empty")
    return values


def parse_axis(text: str) -> tuple[str, list[Any]]:
    """Parse ``NAME=START:STOP:NUM`` (linspace), ``NAME=log:START:STOP:NUM`` or ``NAME=V1,V2,...``."""
    where = f"--axis {text}"
    if "=" not in text:
        raise InvalidParameterError(f"{where}: expected NAME=START:STOP:NUM or NAME=V1,V2,...")
    name, _, rhs = text.partition("=")
    name = name.strip()
    _coerce(name, 1 if PARAMETERS.get(name, (None, float))[1] is not str else "x", where)
    parts = rhs.split(":")
    if len(parts) in (3, 4) and PARAMETERS[name][1] is not str:
        kind = "logspace" if len(parts) == 4 and parts[0] == "log" else "linspace"
        if len(parts) == 4 and parts[0] != "log":
            raise InvalidParameterError(f"{where}: use log:START:STOP:NUM for a log axis")
        start, stop, num = parts[-3:]
        try:
            count = int(num)
        except ValueError:
            raise InvalidParameterError(f"{where}: NUM = {num!r} must be an integer") from None
        return name, _values_from_range(kind, [start, stop, count], name, where)
    return name, _axis_values(name, [v.strip() for v in rhs.split(",") if v.strip()], where)


@dataclass
class SweepSpec:
    """Axes (the grid is their Cartesian product, in the given order) and fixed parameters."""

    axes: dict[str, list[Any]] = field(default_factory=dict)
    fixed: dict[str, Any] = field(default_factory=dict)
    optimize_tau: str | None = None

    def validate(self) -> None:
        """Check every name and every grid point (building each HeatPump) before any run."""
        if not self.axes:
            raise InvalidParameterError("the sweep has no axis: give --axis NAME=START:STOP:NUM "
                                        "or an [axes] table in the spec")
        overlap = set(self.axes) & set(self.fixed)
        if overlap:
            raise InvalidParameterError(f"{', '.join(sorted(overlap))} is both an axis and fixed")
        if self.optimize_tau is not None:
            check.one_of("optimize_tau", self.optimize_tau, OPTIMIZE_TARGETS)
            if "tau" in self.axes or "tau" in self.fixed:
                raise InvalidParameterError("optimize_tau chooses tau: do not also set tau")
        for point in self.points():
            _pump_for(point)

    def points(self) -> Iterator[dict[str, Any]]:
        """Every grid point as a full parameter dict (fixed + axis values)."""
        names = list(self.axes)
        for combo in itertools.product(*(self.axes[n] for n in names)):
            yield {**SWEEP_DEFAULTS, **self.fixed, **dict(zip(names, combo, strict=True))}

    @property
    def size(self) -> int:
        """Number of grid points."""
        return math.prod(len(v) for v in self.axes.values())

    def to_json(self) -> dict:
        """The spec as stored in DIR/spec.json."""
        return {"axes": self.axes, "fixed": self.fixed, "optimize_tau": self.optimize_tau}


def _line_of(text: str, key: str) -> int | None:
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*[=:]")
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.match(line):
            return number
    return None


def load_spec(path: str | Path) -> SweepSpec:
    """Read a TOML (.toml) or YAML (.yaml/.yml) sweep spec with ``axes`` and ``fixed`` tables.

    Example (TOML)::

        optimize_tau = "Q_B"          # optional: "Q_B" or "efficiency"
        [axes]
        TB = {linspace = [0.5, 1.5, 5]}
        delta = [-1.5708, -0.7854]
        [fixed]
        solver = "lindblad"
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise InvalidParameterError(f"spec {str(path)!r} cannot be read: {err.strerror}") from None
    try:
        if path.suffix.lower() == ".toml":
            import tomllib

            data = tomllib.loads(text)
        elif path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            raise InvalidParameterError(f"spec {str(path)!r} must end in .toml, .yaml or .yml")
    except InvalidParameterError:
        raise
    except Exception as err:  # the parser's own message carries the line
        raise InvalidParameterError(f"{path}: {err}") from None
    if not isinstance(data, dict):
        raise InvalidParameterError(f"{path}: the spec must be a table with axes and fixed")
    unknown = set(data) - {"axes", "fixed", "optimize_tau"}
    if unknown:
        key = sorted(unknown)[0]
        raise InvalidParameterError(
            f"{path}, line {_line_of(text, key)}: unknown key {key!r} (allowed: axes, fixed, optimize_tau)")
    spec = SweepSpec(optimize_tau=data.get("optimize_tau"))
    for table in ("axes", "fixed"):
        for name, value in (data.get(table) or {}).items():
            where = f"{path}, line {_line_of(text, name)}"
            if table == "axes":
                spec.axes[name] = _axis_values(name, value, where)
            else:
                spec.fixed[name] = _coerce(name, value, where)
            for single in spec.axes.get(name, [spec.fixed.get(name)]):
                _check_alone(name, single, where)
    return spec


def _check_alone(name: str, value: Any, where: str) -> None:
    """Reject a value that no pump accepts (e.g. TB = -1), naming the spec's line; chi11 and
    chi23 only make sense together, kappa_ratio only with kappa, and are checked with the whole
    grid."""
    if name in ("chi11", "chi23", "kappa_ratio"):
        return
    try:
        _pump_for({name: value})
    except ValueError as err:
        raise InvalidParameterError(f"{where}: {err}") from None


def _pump_for(point: dict[str, Any]) -> HeatPump:
    kwargs = {PARAMETERS[k][0]: v for k, v in point.items() if k in PARAMETERS}
    ratio = kwargs.pop("kappa_ratio", None)
    if "kappa" in kwargs:
        if {"kappa_a", "kappa_b"} & set(kwargs):
            raise InvalidParameterError("give kappa (both baths) or kappa_a and kappa_b, not both")
        ratio = KAPPA_RATIO if ratio is None else ratio
        if not (math.isfinite(ratio) and ratio > 0):
            raise InvalidParameterError(f"kappa_ratio = {ratio} is outside the allowed range (0, inf)")
        kappa = kwargs.pop("kappa")
        kwargs.update(kappa_a=kappa, kappa_b=ratio * kappa)
    elif ratio is not None:
        raise InvalidParameterError("kappa_ratio scales kappa: give kappa too")
    return HeatPump(**kwargs)


def _key(point: dict[str, Any]) -> str:
    return hashlib.sha256(dumps(point, sort_keys=True).encode()).hexdigest()[:16]


def optimal_tau(pump: HeatPump, target: str) -> float:
    """The contact time maximizing ``target`` ("Q_B" or "efficiency") of one cycle.

    Searched within [0.25, 2] times the isolated pair's anomalous peak, which brackets the optimum
    at weak coupling. Strong coupling moves it to shorter contacts (at kappa_A = 0.5 below that
    bracket), so an optimum found at the lower end is searched again below it, down to 1/256 of
    the peak: a bounded search returns its bound when the optimum lies outside.
    """
    from dataclasses import replace

    from scipy.optimize import minimize_scalar

    from .closed import tau_peak

    start = tau_peak(pump.TA, pump.TB, pump.omega_c, pump.delta)
    if not start > 0:
        start = math.pi / (4 * pump.omega_c)

    def loss(tau: float) -> float:
        cycle = replace(pump, tau=tau, cycles=1).run(normal_reference=False).cycles[0]
        return -(cycle.Q_B if target == "Q_B" else cycle.cop_ratio)

    xatol = 1e-3 * start
    low, high = 0.25 * start, 2.0 * start
    while True:
        res = minimize_scalar(loss, bounds=(low, high), method="bounded", options={"xatol": xatol})
        if res.x > low + 3 * xatol or low <= start / 256:
            return float(res.x)
        low, high = low / 4, low + 3 * xatol


def run_point(point: dict[str, Any], optimize_tau: str | None = None) -> dict[str, Any]:
    """Run the pump at one grid point; a failure is returned in the ``error`` column, not raised."""
    start = time.perf_counter()
    row: dict[str, Any] = dict(point)
    row.update({c: None for c in RESULT_COLUMNS})
    try:
        pump = _pump_for(point)
        if pump.auto_truncation:
            # Converged once at the starting tau; a point whose search stops at its budget is
            # recorded with that error (NotConvergedError), not as a number.
            pump, _ = pump.converged()
        if optimize_tau:
            from dataclasses import replace

            pump = replace(pump, tau=optimal_tau(pump, optimize_tau))
        result = pump.run(normal_reference=False)
        last = result.cycles[-1]
        row.update(Q_A=last.Q_A, Q_B=last.Q_B, I0=last.I0, efficiency=last.cop_ratio,
                   carnot_bound=last.carnot_bound, W_on=last.W_on, W_off=last.W_off,
                   first_law_residual=last.first_law_residual, tau_used=pump.tau,
                   **({"depth_used": pump.depth, "n_exp_used": pump.n_exp,
                       "expansion_used": pump.expansion} if pump.solver == "heom" else {}))
    except Exception as err:  # recorded, so that one bad point does not stop the map
        row["error"] = f"{type(err).__name__}: {err}"
    row["wall_time_s"] = time.perf_counter() - start
    return row


def _read_done(journal: Path) -> dict[str, dict]:
    done: dict[str, dict] = {}
    if journal.exists():
        for line in journal.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill: that point is simply run again
            done[record["key"]] = record["row"]
    return done


def _append(journal: Path, key: str, row: dict) -> None:
    line = dumps({"key": key, "row": row}) + "\n"
    fd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_table(out: Path, rows: list[dict]) -> Path:
    columns = list(PARAMETERS)
    present = [c for c in columns if any(c in r for r in rows)] + RESULT_COLUMNS

    def write_csv(path: Path) -> None:
        with open(path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=present, extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in present})

    write_atomic(out / "results.csv", write_csv)
    try:
        import pandas as pd
        import pyarrow  # noqa: F401
    except ImportError:
        return out / "results.csv"
    frame = pd.DataFrame(rows, columns=present)
    write_atomic(out / "results.parquet", lambda path: frame.to_parquet(path))
    return out / "results.csv"


def _ignore_sigint() -> None:
    """Pool workers leave Ctrl-C to the main process, which terminates them (no tracebacks)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _call(task: tuple) -> Any:
    func, args = task
    return func(*args)


def _local_pool(workers: int) -> Callable[[Callable, Iterable], Iterator]:
    def mapper(func: Callable, items: Iterable) -> Iterator:
        import multiprocessing

        pool = multiprocessing.Pool(workers, initializer=_ignore_sigint)
        try:
            yield from pool.imap_unordered(_call, [(func, item) for item in items])
            pool.close()
        except BaseException:  # Ctrl-C, or the consumer stopped: no worker outlives the sweep
            pool.terminate()
            raise
        finally:
            pool.join()

    return mapper


def _dask(address: str) -> Callable[[Callable, Iterable], Iterator]:
    def mapper(func: Callable, items: Iterable) -> Iterator:
        try:
            from distributed import Client, LocalCluster, as_completed
        except ImportError:
            raise InvalidParameterError(
                "--dask needs the optional extra: pip install 'qpump[dask]'") from None
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=None) if address == "local" else None
        try:
            with Client(cluster if cluster is not None else address) as client:
                futures = [client.submit(func, *item, pure=False) for item in items]
                for fut in as_completed(futures):
                    yield fut.result()
        finally:
            if cluster is not None:
                cluster.close()

    return mapper


def _keyed(func: Callable, key: str, point: dict, optimize: str | None) -> tuple[str, dict]:
    return key, func(point, optimize)


def run_sweep(
    spec: SweepSpec,
    out_dir: str | Path,
    workers: int = 1,
    dask: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> list[dict]:
    """Run (or resume) a sweep into ``out_dir``; returns the rows in grid order.

    Parameters
    ----------
    log : callable, optional
        Receives one line when the sweep resumes (how many points were already done).

    Raises
    ------
    InvalidParameterError
        Before any computation, for a bad spec or when ``out_dir`` holds a different sweep.
    KeyboardInterrupt
        On Ctrl-C, after the workers are stopped; the finished points stay in the journal and
        no ``results.csv`` is written.
    """
    spec.validate()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidParameterError(f"workers = {workers!r} must be an integer >= 1")
    out = Path(out_dir)
    spec_file = out / "spec.json"
    stored_spec = json.loads(dumps(spec.to_json()))
    if spec_file.exists():
        if json.loads(spec_file.read_text()) != stored_spec:
            raise InvalidParameterError(
                f"{out} holds a different sweep (spec.json differs); use another -o DIR")
    journal = out / "points.jsonl"
    done = _read_done(journal)
    points = list(spec.points())
    keys = [_key(p) for p in points]
    todo = [(run_point, k, p, spec.optimize_tau) for k, p in zip(keys, points, strict=True)
            if k not in done]
    already = len(points) - len(todo)
    if already and log is not None:
        log(f"resuming: {already} of {len(points)} points already done in {journal}")
    from tqdm.auto import tqdm

    bar = tqdm(total=len(points), initial=already, disable=not progress, desc="sweep",
               unit="point", leave=False)
    mapper = _dask(dask) if dask else (_local_pool(workers) if workers > 1 else
                                       (lambda f, items: (f(*i) for i in items)))
    try:
        for key, row in mapper(_keyed, todo):
            if not spec_file.exists():  # the folder and the spec come with the first point
                write_text_atomic(spec_file, dumps(spec.to_json(), indent=2))
            _append(journal, key, row)
            done[key] = row
            bar.update(1)
    finally:
        bar.close()
    rows = [done[k] for k in keys]
    _write_table(out, rows)
    return rows


def read_results(path: str | Path) -> dict[str, np.ndarray]:
    """Read DIR/results.csv (or the file itself) into columns: floats where numeric, else strings."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.csv"
    if not path.exists():
        raise InvalidParameterError(f"results file {str(path)!r} does not exist")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise InvalidParameterError(f"{path} has no rows")
    columns: dict[str, np.ndarray] = {}
    for name in rows[0]:
        raw = [r[name] for r in rows]
        try:
            columns[name] = np.array([float(v) if v != "" else math.nan for v in raw])
        except ValueError:
            columns[name] = np.array(raw)
    return columns
