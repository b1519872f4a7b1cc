"""`qpump circuits export` writes the hardware set; bad input is one line with exit status 2."""

import json

from qpump.cli import main


def test_export_writes_qasm_qpy_and_manifest(tmp_path, capsys):
    out = tmp_path / "set"
    assert main(["circuits", "export", "-o", str(out), "--times", "0,pi,7", "--json"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert json.loads((out / "manifest.json").read_text()) == manifest
    for name in manifest["files"]:
        assert (out / f"{name}.qasm").read_text().startswith("OPENQASM 3")
        assert (out / f"{name}.qpy").stat().st_size > 0
    assert sum(name.endswith("_ZZ") for name in manifest["files"]) == 3 * 3
    assert len(manifest["files"]) == 3 * 3 * 9 + 2


def test_export_rejects_bad_input(tmp_path, capsys):
    assert main(["circuits", "export", "-o", str(tmp_path / "x"), "--TA", "-1"]) == 2
    assert "TA = -1.0 is outside the allowed range" in capsys.readouterr().err
    assert main(["circuits", "export", "-o", str(tmp_path / "y"), "--times", "1,foo"]) == 2
    assert "--times" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_export_for_a_backend_rejects_bad_names_and_layouts_before_writing(tmp_path, capsys):
    cases = [
        (["--backend", "nope"], "backend = 'nope' is unknown"),
        (["--backend", "fake_nothing"], "is not a fake device"),
        (["--backend", "generic", "--layout", "0,2"], "A = 0 and B = 2 are not connected"),
        (["--backend", "generic", "--layout", "0,7"], "qubit B = 7 does not exist on generic"),
        (["--backend", "generic", "--layout", "1,2,0"], "the ancilla 0 is not connected to B = 2"),
        (["--backend", "generic", "--layout", "a,b"], "--layout = 'a,b' must be"),
        (["--backend", "generic", "--shots", "0"], "shots = 0"),
    ]
    for options, message in cases:
        out = tmp_path / "set"
        assert main(["circuits", "export", "-o", str(out), *options]) == 2, options
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
        assert not out.exists()
