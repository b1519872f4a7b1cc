"""Tests of the qpump command line: outputs, JSON schema and one-line errors with exit status 2."""

import json
import math
import subprocess
import sys

import pytest

from qpump.cli import main, parse_number


def _run(*args):
    return subprocess.run([sys.executable, "-m", "qpump.cli", *args], capture_output=True,
                           text=True, timeout=300)


def test_version_is_the_packages_and_the_parser_is_public(capsys):
    import qpump
    from qpump.cli import build_parser

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"qpump {qpump.__version__}"
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert {"pump", "closed", "sweep", "figure", "circuits", "experiment", "bench"} <= set(commands)


@pytest.mark.parametrize("text,value", [("2", 2.0), ("-pi/2", -math.pi / 2), ("3*pi/4", 3 * math.pi / 4),
                                        ("inf", math.inf), ("1e-3", 1e-3), ("-(pi)", -math.pi)])
def test_parse_number(text, value):
    assert parse_number(text) == value


@pytest.mark.parametrize("text", ["pie", "__import__('os')", "1/0", "", "2**"])
def test_parse_number_rejects(text):
    with pytest.raises(Exception, match="not a number or pi expression"):
        parse_number(text)


def test_closed_json_schema_and_paper_numbers(capsys):
    assert main(["closed", "--delta", "-pi/2", "--points", "11", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"params", "t", "E_A", "E_B", "sed", "concurrence", "mutual_information",
                        "theta", "tau_peak", "C0", "I0"}
    assert len(out["t"]) == 11 and out["t"][-1] == 40.0
    assert all(len(out[k]) == 11 for k in ("E_A", "E_B", "sed", "concurrence", "mutual_information"))
    assert out["C0"] == pytest.approx(0.637295, abs=5e-7)
    assert out["tau_peak"] == pytest.approx(7.0101, abs=5e-5)
    assert out["params"]["delta"] == pytest.approx(-math.pi / 2)


def test_closed_table_and_plot(tmp_path, capsys):
    plot = tmp_path / "closed.pdf"
    assert main(["closed", "--TA", "1.5", "--TB=1.5", "--t-max", "10", "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "C0 =" in out and "tau_peak" in out and "concurrence" in out
    assert plot.read_bytes()[:4] == b"%PDF"


@pytest.mark.parametrize("args,needle", [
    (["closed", "--TA", "-1"], "TA = -1.0 is outside the allowed range (0, inf]"),
    (["closed", "--TB", "0"], "TB = 0.0 is outside the allowed range (0, inf]"),
    (["closed", "--omega-c", "-0.1"], "omega_c = -0.1 is outside the allowed range (0, inf)"),
    (["closed", "--t-max", "0"], "t_max = 0.0 is outside the allowed range (0, inf)"),
    (["closed", "--points", "1"], "points = 1 must be an integer in [2, 1000000]"),
    (["closed", "--delta", "foo"], "argument --delta: 'foo' is not a number or pi expression"),
    (["closed", "--points", "x"], "argument --points: invalid int value: 'x'"),
    (["figure", "3", "-o", "f.png"], "argument NAME: invalid choice: '3'"),
    (["figure", "1", "-o", "f.txt"], "must end in .png, .pdf or .svg"),
    (["bench", "--quick", "--qutip-method", "rk4"], "qutip_method = 'rk4' must be one of adams, bdf"),
    (["bench", "--quick", "--problem", "pump"], "problems = 'pump' must be one of pump_cycle"),
])
def test_bad_input_is_one_line_exit_2(args, needle, capsys):
    try:
        status = main(args)
    except SystemExit as exit_:  # argparse errors exit from inside parse_args
        status = exit_.code
    err = capsys.readouterr().err
    assert status == 2
    assert needle in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_error_from_a_real_process_has_no_traceback():
    proc = _run("closed", "--TA", "-inf")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "qpump closed: error: TA = -inf is outside the allowed range (0, inf]"
    assert proc.stdout == ""


def test_help_explains_the_commands():
    proc = _run("--help")
    assert proc.returncode == 0
    for word in ("closed", "figure", "about", "cite", "nats"):
        assert word in proc.stdout
    proc = _run("closed", "--help")
    assert "--omega-c" in proc.stdout and "pi" in proc.stdout


def test_about_and_cite(capsys):
    assert main(["about", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert set(info) == {"qpump", "rust core", "numpy", "scipy", "qiskit", "qiskit-aer", "qiskit-ibm-runtime",
                         "qiskit-experiments"}
    assert main(["cite"]) == 0
    assert "10.1103/PhysRevA.106.062604" in capsys.readouterr().out


def test_bench_one_problem_json(capsys):
    assert main(["bench", "--quick", "--no-qutip", "--no-reference", "--problem", "pump_cycle",
                 "--json"]) == 0
    captured = capsys.readouterr()
    (p,) = json.loads(captured.out)["problems"]
    assert "pump_cycle: qpump" in captured.err  # progress goes to stderr, JSON alone to stdout
    assert p["name"] == "pump_cycle" and p["n_ados"] == 84
    assert p["qutip_s"] is None and p["qutip_method"] is None and p["qpump_s"] > 0


def _status(args):
    try:
        return main(args)
    except SystemExit as exit_:
        return exit_.code


@pytest.mark.parametrize("command", [
    ["pump"], ["sweep", "--axis", "TB=1,2"], ["figures"], ["circuits", "export"],
])
def test_an_existing_file_as_output_folder_is_bad_input(command, tmp_path, capsys):
    afile = tmp_path / "taken"
    afile.write_text("keep me")
    assert _status([*command, "-o", str(afile)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is an existing file, not a folder" in err
    assert afile.read_text() == "keep me"


@pytest.mark.parametrize("command", [
    ["figure", "1", "-o", "{d}"], ["plot-sweep", "{d}", "-x", "TB", "-o", "{d}"],
    ["closed", "--plot", "{d}"], ["crossval", "-o", "{d}"],
])
def test_an_existing_folder_as_output_file_is_bad_input(command, tmp_path, capsys):
    folder = tmp_path / "fig.png"
    folder.mkdir()
    assert _status([a.format(d=folder) for a in command]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "existing folder, not a file" in err


def test_a_rejected_run_leaves_no_folder(tmp_path, capsys):
    for args in (["--TB", "-1"], ["--depth", "0"], ["--memory-limit", "1K"]):
        out = tmp_path / "never"
        assert _status(["pump", *args, "-o", str(out), "--no-progress"]) == 2
        assert not out.exists()
    err = capsys.readouterr().err.splitlines()
    assert "depth = 0 keeps no bath memory" in err[1] and "use depth >= 1" in err[1]
    assert "--memory-limit" in err[2]


def test_a_failed_check_exits_3_with_one_line_and_no_result(tmp_path, capsys, heat_scaled_by):
    heat_scaled_by(1.5)
    out = tmp_path / "out"
    assert main(["pump", "--relax", "50", "--cycles", "1", "-o", str(out), "--no-progress"]) == 3
    captured = capsys.readouterr()
    assert captured.out == "" and not out.exists()
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("qpump pump: error: check failed: first law: cycle 1")


def test_an_output_that_cannot_be_written_exits_3(tmp_path, capsys, monkeypatch):
    import errno
    import pathlib

    def disk_full(self, target):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pathlib.Path, "replace", disk_full)
    assert main(["closed", "--plot", str(tmp_path / "c.png"), "--points", "5"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write" in err and "No space left on device" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("TB,regime,words", [
    ("2", "no gradient", "T_A = T_B: no temperature gradient"),
    ("3", "reversed", "T_B > T_A: bath A is the colder one"),
])
def test_no_gradient_or_reversed_temperatures_are_said_and_have_no_carnot_bound(
        TB, regime, words, tmp_path, capsys):
    from qpump.output import loads_strict

    args = ["pump", "--TB", TB, "--solver", "lindblad", "--relax", "200", "--cycles", "1",
            "--no-progress", "-o", str(tmp_path / "o")]
    assert main([*args, "--json"]) == 0
    payload = loads_strict(capsys.readouterr().out)
    assert payload["carnot_bound"] is None and payload["regime"] == regime
    assert loads_strict((tmp_path / "o" / "results.json").read_text())["carnot_bound"] is None
    assert main(args) == 0
    out = capsys.readouterr().out
    assert words in out and "Carnot bound =" not in out and "hot bath" not in out
    assert "(paper: 0.186" not in out


def test_the_paper_value_is_quoted_only_at_the_paper_parameters(tmp_path, capsys):
    base = ["pump", "--solver", "lindblad", "--cycles", "1", "--no-progress", "-o", str(tmp_path)]
    assert main(base) == 0
    assert "(paper: 0.186 against 1)" in capsys.readouterr().out
    assert main([*base, "--tau", "5"]) == 0
    assert "paper:" not in capsys.readouterr().out


def test_infinite_temperatures_are_strict_json_strings(capsys):
    from qpump.output import loads_strict

    assert main(["closed", "--TA", "inf", "--points", "3", "--json"]) == 0
    payload = loads_strict(capsys.readouterr().out)
    assert payload["params"]["TA"] == "inf" and payload["params"]["TB"] == 1.0
    assert _status(["pump", "--TA", "inf", "-o", "never"]) == 2
    assert "TA = inf is outside the allowed range (0, inf)" in capsys.readouterr().err


@pytest.mark.parametrize("text,value", [("8G", 8 * 1024**3), ("512M", 512 * 1024**2),
                                        ("1.5GiB", int(1.5 * 1024**3)), ("1000", 1000)])
def test_parse_memory(text, value):
    from qpump.cli import parse_memory

    assert parse_memory(text) == value


@pytest.mark.parametrize("text", ["", "-1G", "0", "8X", "G", "nan"])
def test_parse_memory_rejects(text):
    from qpump.cli import parse_memory

    with pytest.raises(Exception, match="is not a memory size"):
        parse_memory(text)


def _interrupt_when(cmd, ready, tmp_path, group=False, timeout=240):
    """Start ``cmd``, wait until its stderr shows ``ready``, send SIGINT (to the process group,
    as a terminal does, when ``group``) and return (seconds to exit, exit status, stderr read
    before and after the signal, process id)."""
    import os
    import signal
    import threading
    import time

    # The child takes SIGINT as a terminal's process would, even where this test runs with
    # SIGINT ignored (a background job): Python then installs its KeyboardInterrupt handler.
    proc = subprocess.Popen([sys.executable, "-m", "qpump.cli", *cmd], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen: list[str] = []
    arrived = threading.Event()

    def read() -> None:
        buffer = ""
        while chunk := proc.stderr.read(1):
            buffer += chunk
            if ready in buffer:
                arrived.set()
        seen.append(buffer)
        arrived.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert arrived.wait(timeout), f"{ready!r} never appeared"
        assert proc.poll() is None, "the run ended before the signal"
        before = time.monotonic()
        if group:
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        elapsed = time.monotonic() - before
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    reader.join(10)
    return elapsed, proc.returncode, seen[0], proc.pid


def _one_closing_line(stderr: str) -> str:
    """The lines a run printed that are not progress (bars, phase lines): exactly one."""
    lines = [part.strip() for line in stderr.splitlines() for part in line.split("\r")]
    kept = [x for x in lines if x and not x.startswith(("qpump: ", "pump:", "sweep:", "HEOM:"))]
    assert "Traceback" not in stderr
    assert len(kept) == 1, repr(stderr[-500:])
    return kept[0]


def test_ctrl_c_during_the_heom_propagation_exits_130_at_once(tmp_path):
    elapsed, status, stderr, pid = _interrupt_when(
        ["pump", "--initial", "product", "--depth", "4", "--relax", "1e5", "--cycles", "1",
         "-o", "out"], "pump:", tmp_path)
    assert status == 130 and elapsed < 5, (status, elapsed)
    assert _one_closing_line(stderr) == "qpump pump: interrupted; no partial result was written"
    assert not (tmp_path / "out").exists()


def test_ctrl_c_during_the_steady_state_solve_exits_130_at_once(tmp_path):
    # Depth 10: GMRES on 128,128 unknowns takes about 2 s (and ~600 MB).
    marker = "steady state of the uncoupled hierarchy (the initial state) ..."
    elapsed, status, stderr, pid = _interrupt_when(
        ["pump", "--depth", "10", "--cycles", "1", "--relax", "1", "-o", "out"], marker, tmp_path)
    assert "done in" not in stderr.split(marker)[1].split("interrupted")[0], \
        "the signal should land inside the solve"
    assert status == 130 and elapsed < 5, (status, elapsed)
    assert _one_closing_line(stderr) == "qpump pump: interrupted; no partial result was written"
    assert not (tmp_path / "out").exists()


def test_ctrl_c_stops_a_sweep_and_its_workers(tmp_path):
    import os
    import time

    # The signal goes to the whole process group, workers included, as a terminal sends it.
    elapsed, status, stderr, pid = _interrupt_when(
        ["sweep", "--axis", "TB=0.5:1.5:40", "--set", "relax=300", "--workers", "2", "-o", "map"],
        " 1/40 [", tmp_path, group=True)
    assert status == 130 and elapsed < 5, (status, elapsed)
    line = _one_closing_line(stderr)
    assert line.startswith("qpump sweep: interrupted; the finished points are kept in map/points.jsonl")
    points = (tmp_path / "map" / "points.jsonl").read_text().splitlines()
    assert 1 <= len(points) < 40
    assert sorted(p.name for p in (tmp_path / "map").iterdir()) == ["points.jsonl", "spec.json"]

    def session_members(sid: int) -> list[int]:
        members = []
        for stat in os.listdir("/proc"):
            try:
                fields = open(f"/proc/{stat}/stat").read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if stat.isdigit() and int(fields[3]) == sid:  # field 6 of stat: the session id
                members.append(int(stat))
        return members

    deadline = time.monotonic() + 5
    while session_members(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert session_members(pid) == [], "a worker outlived the sweep"
