"""Tests of the package surface: the compiled core, about(), cite(), __all__."""

import qpump
from qpump import _core


def test_core_is_compiled_and_reports_its_build():
    assert _core.build_profile() in ("release", "debug")
    assert _core.core_version() == qpump.__version__


def test_about_prints_versions(capsys):
    info = qpump.about()
    out = capsys.readouterr().out
    for key in ("qpump", "rust core", "numpy", "scipy", "qiskit", "qiskit-aer", "qiskit-ibm-runtime",
                "qiskit-experiments"):
        assert key in info and key in out
    assert "build" in info["rust core"]


def test_cite_is_bibtex_of_the_paper():
    bib = qpump.cite()
    assert bib.startswith("@article{") and "Holdsworth" in bib and "062604" in bib


def test_public_names_exist():
    for name in qpump.__all__:
        assert hasattr(qpump, name)
