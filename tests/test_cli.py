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
    (["figure", "3", "-o", "f.png"], "argument number: invalid choice: 3"),
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
    assert set(info) == {"qpump", "rust core", "numpy", "scipy", "qiskit", "qiskit-aer"}
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
