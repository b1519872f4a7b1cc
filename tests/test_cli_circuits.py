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
