"""Run an exported circuit set on a backend with a SamplerV2 primitive, resumably.

The set of ``qpump circuits export`` is run as jobs: the readout calibration first, then one job per
contact time (every branch and tomography setting at that time). Simulated backends (``ideal``,
``generic``, ``fake_*``) use Aer's SamplerV2 with the device's noise model; Aer's sampler takes one
seed, so every job gets its own sampler with the seed ``seed + job index`` (recorded), which makes the
jobs independent of each other and of the order in which they run. ``ibm:NAME`` uses
qiskit-ibm-runtime's SamplerV2 in job mode, with Pauli twirling of the gates and of the
measurements and dynamical decoupling as options, and records every job ID as soon as it is submitted.
The runtime wants one shot count per job, so the circuits of one qpump job are submitted as one
runtime job per shot count (a mixture's branches have shares of the shots): ``job_ids`` lists them.

The counts file (format ``qpump-counts/1``)::

    {"format": "qpump-counts/1",
     "manifest": {"path": "<manifest.json>", "sha256": "<hash of its bytes>"},
     "backend": "fake_sherbrooke", "layout": {"A": 124, "B": 123, "ancilla": 122},
     "shots": {"<circuit>": shots, ...},            # every circuit of the set, as planned
     "counts": {"<circuit>": {"ba": n, ...}, ...},  # the finished ones; key "ba" = B's bit, A's bit
     "jobs": [{"index": 0, "circuits": [...], "seed": 20221206, "job_ids": [], "status": "done"}],
     "options": {...}}

It is rewritten atomically after every finished job (and every submission to a device), so an
interrupted run (Ctrl-C, a killed process, a lost connection to a queue of several hours) loses at
most the job in flight: the same command resumes, runs only what is missing and, with the same
seeds, ends with the counts an uninterrupted run would have.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from .. import _validate as check
from ..errors import InvalidParameterError, MissingExtraError
from ..output import dumps, write_text_atomic
from .backends import HARDWARE_EXTRA, DeviceSpec, noise_model_of, resolve_backend, runtime_service
from .export import load_manifest, manifest_hash

__all__ = ["COUNTS_FORMAT", "DEFAULT_SEED", "plan_jobs", "planned_shots", "run_experiment"]

COUNTS_FORMAT = "qpump-counts/1"
DEFAULT_SEED = 20221206


def plan_jobs(manifest: dict) -> list[list[str]]:
    """The circuits of each job: readout calibration first, then one job per contact time."""
    files = manifest["files"]
    jobs = [[name for name, entry in files.items() if entry["kind"] == "readout"]]
    times = sorted({entry["time_index"] for entry in files.values() if entry["kind"] == "contact"})
    for i in times:
        jobs.append([name for name, entry in files.items()
                     if entry["kind"] == "contact" and entry["time_index"] == i])
    jobs.append([name for name, entry in files.items() if entry["kind"] not in ("readout", "contact")])
    return [job for job in jobs if job]


def planned_shots(manifest: dict, shots: int | None) -> dict[str, int]:
    """Shots of every circuit: the manifest's suggestion, or ``shots`` per setting split by weight."""
    if shots is None:
        return {name: int(entry["suggested_shots"]) for name, entry in manifest["files"].items()}
    shots = check.positive_int("shots", shots, maximum=10**8)
    return {name: max(1, int(round(shots * entry["weight"]))) for name, entry in manifest["files"].items()}


def _load_circuits(root: Path, manifest: dict, names: list[str], device: DeviceSpec) -> list:
    """The circuits a job runs: the ISA circuits of a device, or the logical ones compiled for Aer."""
    from qiskit import qpy, transpile

    loaded = []
    for name in names:
        entry = manifest["files"][name]
        file = root / (entry["isa_qpy"] if device.backend is not None else entry["qpy"])
        try:
            with open(file, "rb") as handle:
                loaded.append(qpy.load(handle)[0])
        except FileNotFoundError:
            raise InvalidParameterError(f"{file} is missing from the exported set (export it again)") \
                from None
    if device.backend is None:
        from qiskit_aer import AerSimulator

        loaded = transpile(loaded, AerSimulator(), optimization_level=0)
    return loaded


def _counts_of(pub_result) -> dict[str, int]:
    """Counts keyed like Aer's: one register, its bits; several (the pump's mid-circuit records),
    their bits last register first, separated by spaces."""
    registers = list(pub_result.data.values())
    if len(registers) == 1:
        return {key: int(value) for key, value in registers[0].get_counts().items()}
    from collections import Counter

    per_register = [bits.get_bitstrings() for bits in reversed(registers)]
    return dict(Counter(" ".join(shot) for shot in zip(*per_register, strict=True)))


#: Seed offset of the second Aer call of a job that mixes static and dynamic circuits.
DYNAMIC_SEED_OFFSET = 1_000_000


def _is_dynamic(circuit) -> bool:
    """True for a circuit with a reset or a measurement before its end (mid-circuit operations)."""
    seen_measure: set = set()
    for inst in circuit.data:
        name = inst.operation.name
        if name == "reset" or (name not in ("measure", "barrier") and seen_measure & set(inst.qubits)):
            return True
        if name == "measure":
            if set(inst.qubits) & seen_measure:
                return True
            seen_measure |= set(inst.qubits)
    return False


def _run_on_aer(device: DeviceSpec, pubs: list, seed: int, noise_model) -> list[dict[str, int]]:
    """Counts of ``pubs`` on Aer. Static and dynamic circuits (mid-circuit measurements, resets) go to
    separate sampler calls, the dynamic ones seeded ``seed + DYNAMIC_SEED_OFFSET``: qiskit-aer 0.18,
    with a noise model, returns wrong counts for a static circuit that follows a dynamic one in the
    same batch (measured here: a two-qubit state came back with one qubit never excited)."""
    dynamic = [_is_dynamic(qc) for qc, _, _ in pubs]
    counts: list[dict[str, int]] = [{} for _ in pubs]
    for flag, call_seed in ((False, seed), (True, seed + DYNAMIC_SEED_OFFSET)):
        chosen = [k for k, d in enumerate(dynamic) if d == flag]
        if chosen:
            result = _aer_sampler(device, call_seed, noise_model).run([pubs[k] for k in chosen]).result()
            for k, pub_result in zip(chosen, result, strict=True):
                counts[k] = _counts_of(pub_result)
    return counts


def _aer_sampler(device: DeviceSpec, seed: int, noise_model):
    from qiskit_aer.primitives import SamplerV2

    options = {"backend_options": {"noise_model": noise_model}} if noise_model is not None else {}
    return SamplerV2(seed=seed, options=options)


def _runtime_sampler(device: DeviceSpec, twirling: bool, dynamical_decoupling: bool):
    try:
        from qiskit_ibm_runtime import SamplerV2
    except ImportError:
        raise MissingExtraError(f"ibm: backends need qiskit-ibm-runtime: {HARDWARE_EXTRA}") from None
    sampler = SamplerV2(mode=device.backend)
    sampler.options.twirling.enable_gates = twirling
    sampler.options.twirling.enable_measure = twirling
    sampler.options.dynamical_decoupling.enable = dynamical_decoupling
    return sampler


def _resume(path: Path, fresh: dict) -> dict:
    """The counts document to continue: the file's, if it belongs to the same run, else a new one."""
    if not path.exists():
        return fresh
    import json

    try:
        old = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InvalidParameterError(f"{path} exists and is not a counts file ({err}); choose another -o") \
            from None
    if not isinstance(old, dict) or old.get("format") != COUNTS_FORMAT:
        raise InvalidParameterError(f"{path} exists and is not a qpump counts file; choose another -o")
    for key, what in (("manifest", "another circuit set"), ("backend", "another backend"),
                      ("shots", "other shots")):
        mine = fresh[key]["sha256"] if key == "manifest" else fresh[key]
        theirs = old.get(key, {}).get("sha256") if key == "manifest" else old.get(key)
        if mine != theirs:
            raise InvalidParameterError(f"{path} holds a run of {what}; choose another -o to start a new "
                                        "run, or run the same command as before to resume it")
    if old.get("options") != fresh["options"]:
        raise InvalidParameterError(f"{path} holds a run with other options ({old.get('options')}); choose "
                                    "another -o to start a new run")
    return old


def run_experiment(circuits_dir: str | os.PathLike, output: str | os.PathLike, *, backend: str | None = None,
                   shots: int | None = None, seed: int = DEFAULT_SEED, twirling: bool = False,
                   dynamical_decoupling: bool = False,
                   progress: bool | Callable[[int, int], None] = False,
                   log: Callable[[str], None] | None = None) -> dict:
    """Run (or resume) an exported set and write its counts; returns the counts document.

    Parameters
    ----------
    circuits_dir : path
        The folder of ``qpump circuits export`` (or its manifest.json).
    output : path
        The counts file (format in the module docstring); an existing one of the same run is resumed.
    backend : str, optional
        Must be the backend the set was exported for (default: that one).
    shots : int, optional
        Shots per tomography setting, split over a mixture's branches by weight (default: the
        manifest's suggested shots).
    seed : int
        Seed of the first job's simulator; job k uses ``seed + k`` (simulated backends only).
    twirling, dynamical_decoupling : bool
        Runtime options for ``ibm:`` devices (gate and measurement twirling; dynamical decoupling).
    progress : bool or callable
        A progress bar over the jobs, or a callable ``(jobs done, jobs in all)``.
    log : callable, optional
        Receives one line when a run is resumed (how many jobs were already done).
    """
    manifest, root = load_manifest(circuits_dir)
    exported_for = manifest["backend"]["name"]
    name = exported_for if backend is None else backend
    if name != exported_for:
        raise InvalidParameterError(
            f"--backend {name!r}: the circuits in {root} were exported for {exported_for!r}; export them "
            f"again with `qpump circuits export --backend {name}`")
    seed = check.non_negative_int("seed", seed, maximum=2**32 - 1 - 10_000)
    manifest_file = root / "manifest.json"
    fresh = {"format": COUNTS_FORMAT,
             "manifest": {"path": str(manifest_file.resolve()), "sha256": manifest_hash(manifest_file)},
             "backend": name, "layout": manifest["layout"], "shots": planned_shots(manifest, shots),
             "counts": {}, "jobs": [],
             "options": {"seed": seed, "twirling": twirling, "dynamical_decoupling": dynamical_decoupling}}
    output = Path(output)
    doc = _resume(output, fresh)
    device = resolve_backend(name)
    jobs = plan_jobs(manifest)
    records = {job["index"]: job for job in doc["jobs"]}
    todo = [k for k, names in enumerate(jobs) if not all(n in doc["counts"] for n in names)]
    if log is not None and doc is not fresh:
        log(f"resuming {output}: {len(jobs) - len(todo)} of {len(jobs)} jobs were done; running the "
            f"other {len(todo)}")
    report = _progress(progress, len(jobs))
    report(len(jobs) - len(todo))
    noise_model = noise_model_of(device.backend, manifest["layout"].values()) if device.simulated else None
    for k in todo:
        names = jobs[k]
        pubs = [(qc, None, doc["shots"][n])
                for qc, n in zip(_load_circuits(root, manifest, names, device), names, strict=True)]
        if device.simulated:
            record = {"index": k, "circuits": names, "seed": seed + k, "job_ids": [], "status": "running"}
            counts = _run_on_aer(device, pubs, seed + k, noise_model)
        else:
            record = records.get(k) or {"index": k, "circuits": names, "seed": None, "job_ids": []}
            counts = _run_on_runtime(device, pubs, record, twirling, dynamical_decoupling,
                                     lambda submitted: _store(doc, submitted, output))
        for n, pub_counts in zip(names, counts, strict=True):
            doc["counts"][n] = pub_counts
        record["status"] = "done"
        _store(doc, record, output)
        report(1)
    report(None)
    return doc


def _run_on_runtime(device: DeviceSpec, pubs: list, record: dict, twirling: bool, dynamical_decoupling: bool,
                    saved: Callable[[dict], None]) -> list[dict[str, int]]:
    """Submit ``pubs`` as one runtime job per shot count (or fetch the jobs a stopped run submitted,
    by the IDs in ``record``) and return the counts in the order of ``pubs``."""
    order = sorted({shots for _, _, shots in pubs})
    groups = [[k for k, pub in enumerate(pubs) if pub[2] == shots] for shots in order]
    if record.get("job_ids"):
        service = runtime_service()
        jobs = [service.job(job_id) for job_id in record["job_ids"]]
    else:
        sampler = _runtime_sampler(device, twirling, dynamical_decoupling)
        jobs = [sampler.run([pubs[k] for k in group]) for group in groups]
        record.update(job_ids=[job.job_id() for job in jobs], status="submitted")
        saved(record)
    counts: list[dict[str, int]] = [{} for _ in pubs]
    for group, job in zip(groups, jobs, strict=True):
        for k, pub_result in zip(group, job.result(), strict=True):
            counts[k] = _counts_of(pub_result)
    return counts


def _store(doc: dict, record: dict, output: Path) -> None:
    doc["jobs"] = sorted([j for j in doc["jobs"] if j["index"] != record["index"]] + [record],
                         key=lambda j: j["index"])
    write_text_atomic(output, dumps(doc, indent=1) + "\n")


def _progress(progress: bool | Callable[[int, int], None], total: int) -> Callable[[int | None], None]:
    """``report(n)`` advances by n jobs (the first call sets the jobs already done); None closes."""
    if callable(progress):
        done = [0]

        def report_to(n: int | None) -> None:
            if n is not None:
                done[0] += n
                progress(done[0], total)

        return report_to
    from tqdm import tqdm

    bar = tqdm(total=total, disable=not progress, desc="jobs", unit="job", leave=False)

    def report(n: int | None) -> None:
        if n is None:
            bar.close()
        else:
            bar.update(n)

    return report
