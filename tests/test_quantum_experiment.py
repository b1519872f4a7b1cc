"""Tests of qpump.quantum.experiment: an exported set runs as seeded, independent jobs; the counts file
is complete and documented; an interrupted run (a killed process) resumes with only the missing jobs
and ends with the counts of an uninterrupted run; bad input is one line, exit status 2, nothing
written."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qpump import InvalidParameterError
from qpump.cli import main
from qpump.quantum.experiment import COUNTS_FORMAT, plan_jobs, planned_shots, run_experiment
from qpump.quantum.export import export_circuits, manifest_hash


@pytest.fixture(scope="module")
def generic_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("generic")
    manifest = export_circuits(out, times=[0.0, 2.0, 4.0, 6.0, 8.0, 10.0], backend="generic", shots=300)
    return out, manifest


@pytest.fixture(scope="module")
def reference_counts(generic_set, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "counts.json"
    return run_experiment(generic_set[0], out), out


def test_the_counts_file_holds_every_circuit_with_its_shots_and_seeds(generic_set, reference_counts):
    root, manifest = generic_set
    doc, path = reference_counts
    assert json.loads(path.read_text()) == doc
    assert doc["format"] == COUNTS_FORMAT and doc["backend"] == "generic"
    assert doc["manifest"]["sha256"] == manifest_hash(root / "manifest.json")
    assert doc["layout"] == manifest["layout"]
    assert set(doc["counts"]) == set(manifest["files"])
    for name, counts in doc["counts"].items():
        assert sum(counts.values()) == doc["shots"][name] == manifest["files"][name]["suggested_shots"]
        assert all(len(key) == 2 and set(key) <= {"0", "1"} for key in counts)
    jobs = plan_jobs(manifest)
    assert [job["index"] for job in doc["jobs"]] == list(range(len(jobs)))
    assert [job["circuits"] for job in doc["jobs"]] == jobs
    assert jobs[0] == ["readout_00", "readout_11"]
    assert [job["seed"] for job in doc["jobs"]] == [doc["options"]["seed"] + k for k in range(len(jobs))]
    assert all(job["status"] == "done" for job in doc["jobs"])
    # every frequency agrees with the exact noisy-simulator prediction of the manifest
    for name, counts in doc["counts"].items():
        shots = doc["shots"][name]
        for key, p in manifest["files"][name]["noisy"]["raw"].items():
            sigma = max((p * (1 - p) / shots) ** 0.5, 1 / shots)
            assert abs(counts.get(key, 0) / shots - p) < 5 * sigma, (name, key)


def test_shots_per_setting_are_split_over_the_branches_by_weight(generic_set):
    _, manifest = generic_set
    shots = planned_shots(manifest, 1000)
    assert shots["t00_ancilla_XY"] == 1000
    assert shots["t00_branch0_XY"] + shots["t00_branch1_XY"] == 1000
    with pytest.raises(InvalidParameterError, match="shots = 0"):
        planned_shots(manifest, 0)


def test_a_resumed_run_runs_only_the_missing_jobs_and_gives_the_same_counts(generic_set, reference_counts,
                                                                            tmp_path):
    root, manifest = generic_set
    doc, _ = reference_counts
    partial = dict(doc, counts={n: c for n, c in doc["counts"].items() if not n.startswith(("t03", "t05"))},
                   jobs=[j for j in doc["jobs"] if j["index"] not in (4, 6)])
    path = tmp_path / "counts.json"
    path.write_text(json.dumps(partial))
    lines, done = [], []
    resumed = run_experiment(root, path, log=lines.append, progress=lambda k, n: done.append((k, n)))
    assert resumed["counts"] == doc["counts"] and resumed["jobs"] == doc["jobs"]
    assert lines == [f"resuming {path}: 5 of 7 jobs were done; running the other 2"]
    assert done == [(5, 7), (6, 7), (7, 7)]


def _done_jobs(path: Path) -> int:
    try:
        return len(json.loads(path.read_text())["jobs"])
    except (FileNotFoundError, json.JSONDecodeError):
        return 0


def test_a_killed_run_resumes_and_ends_with_the_counts_of_an_uninterrupted_run(generic_set, reference_counts,
                                                                              tmp_path):
    root, manifest = generic_set
    doc, _ = reference_counts
    path = tmp_path / "counts.json"
    command = [sys.executable, "-m", "qpump.cli", "experiment", "run", str(root), "-o", str(path)]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 120
    while _done_jobs(path) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = _done_jobs(path)
    total = len(plan_jobs(manifest))
    assert 2 <= killed_at < total, f"the run was not caught mid-way ({killed_at} of {total} jobs)"
    finished = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert f"{killed_at} of {total} jobs were done; running the other {total - killed_at}" in finished.stderr
    resumed = json.loads(path.read_text())
    assert resumed["counts"] == doc["counts"]
    assert [j["seed"] for j in resumed["jobs"]] == [j["seed"] for j in doc["jobs"]]


def test_run_rejects_bad_input_in_one_line_and_writes_nothing(generic_set, reference_counts, tmp_path,
                                                              capsys):
    root, _ = generic_set
    _, reference = reference_counts
    cases = [
        (["experiment", "run", str(tmp_path / "nowhere")], "does not exist"),
        (["experiment", "run", str(root), "--backend", "fake_torino"], "were exported for 'generic'"),
        (["experiment", "run", str(root), "--shots", "0"], "shots = 0"),
    ]
    for argv, message in cases:
        out = tmp_path / "counts.json"
        assert main(argv + ["-o", str(out)]) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
        assert not out.exists()
    # a counts file of another run is never overwritten
    other = tmp_path / "other"
    export_circuits(other, times=[0.0], backend="generic", shots=100)
    before = reference.read_text()
    assert main(["experiment", "run", str(other), "-o", str(reference)]) == 2
    assert "holds a run of another circuit set" in capsys.readouterr().err
    assert reference.read_text() == before
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["experiment", "run", str(root), "-o", str(bad)]) == 2
    assert "is not a counts file" in capsys.readouterr().err


def test_an_ibm_device_without_a_saved_account_is_one_line_naming_the_channel(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("QISKIT_IBM_TOKEN", "QISKIT_IBM_CHANNEL", "QISKIT_IBM_INSTANCE", "QISKIT_IBM_URL"):
        monkeypatch.delenv(name, raising=False)
    assert main(["circuits", "export", "--backend", "ibm:ibm_torino", "-o", str(tmp_path / "set")]) == 2
    err = capsys.readouterr().err
    assert 'channel="ibm_quantum_platform"' in err and err.count("\n") == 1
    assert not (tmp_path / "set").exists()


def test_the_runtime_path_records_job_ids_and_resumes_a_submitted_job(generic_set, monkeypatch, tmp_path):
    """The ibm: path, run offline: qiskit-ibm-runtime's SamplerV2 in its local testing mode on the
    generic device stands in for a real one; a job that was submitted before a stop is fetched by its
    ID, not submitted again."""
    import warnings

    from qpump.quantum import experiment
    from qpump.quantum.backends import DeviceSpec, resolve_backend

    root, manifest = generic_set
    device = DeviceSpec("generic", "ibm", resolve_backend("generic").backend)
    monkeypatch.setattr(experiment, "resolve_backend", lambda name: device)
    submitted = {}

    class Service:
        def job(self, job_id):
            return submitted[job_id]

    monkeypatch.setattr(experiment, "runtime_service", lambda: Service())
    real_sampler = experiment._runtime_sampler

    def recording_sampler(*args):
        sampler = real_sampler(*args)
        run = sampler.run

        def run_and_record(pubs):
            job = run(pubs)
            submitted[job.job_id()] = job
            return job

        sampler.run = run_and_record
        return sampler

    monkeypatch.setattr(experiment, "_runtime_sampler", recording_sampler)
    path = tmp_path / "counts.json"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "options have no effect in local testing mode"
        doc = run_experiment(root, path, shots=50, twirling=True, dynamical_decoupling=True)
    assert set(doc["counts"]) == set(manifest["files"])
    assert all(job["seed"] is None and job["job_ids"] and set(job["job_ids"]) <= set(submitted)
               for job in doc["jobs"])
    # one runtime job per shot count: the readout job has one, a contact time three (N, N w_0, N w_1)
    assert [len(job["job_ids"]) for job in doc["jobs"]] == [1] + [3] * (len(doc["jobs"]) - 1)
    assert doc["options"] == {"seed": doc["options"]["seed"], "twirling": True, "dynamical_decoupling": True}
    # a stop after the submission of job 2: its record says submitted, its counts are missing
    record = doc["jobs"][2]
    stopped = dict(doc, counts={n: c for n, c in doc["counts"].items() if n not in record["circuits"]},
                   jobs=[j for j in doc["jobs"] if j["index"] != 2] + [dict(record, status="submitted")])
    path.write_text(json.dumps(stopped))
    count = len(submitted)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        resumed = run_experiment(root, path, shots=50, twirling=True, dynamical_decoupling=True)
    assert len(submitted) == count  # nothing submitted again
    assert resumed["counts"] == doc["counts"] and resumed["jobs"][2]["status"] == "done"


def test_ctrl_c_stops_a_run_with_its_finished_jobs_saved(generic_set, tmp_path):
    root, manifest = generic_set
    path = tmp_path / "counts.json"
    command = [sys.executable, "-m", "qpump.cli", "experiment", "run", str(root), "-o", str(path)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, OPENBLAS_NUM_THREADS="1"),
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while _done_jobs(path) < 1 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    saved = _done_jobs(path)
    if process.returncode == 0:
        pytest.skip("the run finished before the interrupt arrived")
    assert process.returncode == 130, err
    assert "interrupted; the finished jobs are saved" in err and "Traceback" not in err
    assert 1 <= saved < len(plan_jobs(manifest))
