"""Sphinx configuration of qpump's documentation.

Build (warnings are errors, so a broken reference, a docstring that does not render or a cell of
the tutorial that raises fails the build)::

    pip install '.[test]' -r docs/requirements.txt
    sphinx-build -E -W --keep-going -b html docs docs/_build/html

Sphinx rather than MkDocs: the docstrings are numpy-style and numpydoc parses them as written;
MyST renders the existing Markdown pages (maths, tables, heading anchors) without rewriting them;
myst-nb executes the tutorial during the build; the command-line page is generated from
``qpump.cli.build_parser()`` (docs/_ext/qpump_docs.py); and ``-W`` with ``nitpicky`` makes an
unresolvable reference to a qpump object an error (docs/building.md says more).
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import qpump

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

project = "qpump"
author = "the qpump developers"
copyright = "the qpump developers (MIT licence)"
release = qpump.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_nb",
    "qpump_docs",  # docs/_ext/qpump_docs.py: plain-text docstrings, references, the CLI page
]

root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", ".jupyter_cache", "jupyter_execute"]
html_theme = "furo"
# Option names (--delta) and quotes in docstrings and help texts are code-like: no typographic
# dashes or quotes.
smartquotes = False
html_title = f"qpump {release}"

# --- MyST (the Markdown pages of docs/ and the top-level README, rendered as they are) -----------
myst_enable_extensions = ["dollarmath", "amsmath"]
# GitHub-style anchors, as the pages link to each other (pump.md#weak-coupling-...).
myst_heading_anchors = 4
# The pages hold no raw HTML; an angle-bracket expression in the text (W_on = <V>, <HeomError>) is
# text, not a tag to drop.
myst_disable_syntax = ["html_inline", "html_block"]

# --- autodoc + numpydoc --------------------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "undoc-members": True, "show-inheritance": True}
autodoc_typehints = "signature"
numpydoc_show_class_members = False  # autodoc's :members: lists them once
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# Documented on the command-line page (cli.md), not as an API.
qpump_undocumented_modules = ["qpump.cli"]

# A reference that cannot be resolved is a warning, and with -W an error. The machine that builds
# the documentation has no network, so there is no intersphinx: names from numpy, scipy, Qiskit,
# the standard library and the typing machinery are ignored; a qpump name must resolve.
nitpicky = True
_EXTERNAL = ("np", "numpy", "numpy.typing", "scipy", "qiskit", "qiskit_aer", "qiskit_ibm_runtime",
             "qutip", "matplotlib", "pandas", "dask", "collections.abc", "typing", "pathlib",
             "argparse", "concurrent", "os", "io", "enum", "dataclasses", "tqdm")
nitpick_ignore_regex = [
    (r"py:.*", r"(" + "|".join(re.escape(m) for m in _EXTERNAL) + r")(\..*)?"),
    # builtins and the typing names that annotations use bare
    (r"py:.*", r"(None|int|float|complex|str|bytes|bool|dict|list|tuple|set|frozenset|object|type|"
               r"callable|Any|Callable|Iterable|Iterator|Mapping|Sequence|Path|ArrayLike|"
               r"NDArray|Self|Literal|Optional|Union|ValueError|RuntimeError|KeyboardInterrupt|"
               r"TypeError|OSError|Exception)"),
]

# --- myst-nb: the tutorial is executed on every build ------------------------------------------
# QPUMP_DOCS_EXECUTE=off builds the pages without running the tutorial (quick previews only).
nb_execution_mode = "off" if os.environ.get("QPUMP_DOCS_EXECUTE") == "off" else "force"
nb_execution_timeout = 120  # seconds per cell
qpump_notebook_budget_s = 120  # the whole tutorial (about 30 s on two cores); over it, the build fails
nb_execution_raise_on_error = True  # a cell that raises fails the build
nb_merge_streams = True
nb_execution_show_tb = True  # a failing cell's traceback goes to the build log
# tqdm.auto warns "IProgress not found" on import in a kernel without ipywidgets (the progress bars
# are off in the tutorial anyway); the kernel inherits this filter, which matches that message only.
os.environ["PYTHONWARNINGS"] = ",".join(
    filter(None, [os.environ.get("PYTHONWARNINGS"), "ignore:IProgress not found"]))


def _check_tutorial_has_no_outputs() -> None:
    """The tutorial is stored without outputs (they are made by the build): fail otherwise."""
    nb = json.loads((HERE / "tutorial.ipynb").read_text())
    stored = [i for i, cell in enumerate(nb["cells"])
              if cell.get("outputs") or cell.get("execution_count") is not None]
    if stored:
        raise RuntimeError(f"docs/tutorial.ipynb is stored with outputs in cells {stored}; "
                           "clear them (see docs/building.md)")


_check_tutorial_has_no_outputs()
