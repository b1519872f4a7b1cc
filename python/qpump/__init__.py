"""qpump: the heat pump driven entirely by quantum correlation (Holdsworth & Kawai,
Phys. Rev. A 106, 062604 (2022)): correlated thermal states, the isolated pair, HEOM in Rust,
the pump cycle, and Qiskit circuits for hardware."""

from __future__ import annotations

from importlib import metadata

from . import _core as _core
from .errors import (
    HierarchyTooLargeError,
    IntegrationError,
    InvalidParameterError,
    InvalidStateError,
    QpumpError,
)

try:
    __version__ = metadata.version("qpump")
except metadata.PackageNotFoundError:  # running from a source tree without installation
    __version__ = _core.core_version()

__all__ = [
    "__version__",
    "about",
    "cite",
    "QpumpError",
    "InvalidParameterError",
    "InvalidStateError",
    "HierarchyTooLargeError",
    "IntegrationError",
]

_BIBTEX = """@article{holdsworth2022heatpump,
  title     = {Heat pump driven entirely by quantum correlation},
  author    = {Holdsworth, Tharon and Kawai, Ryoichi},
  journal   = {Phys. Rev. A},
  volume    = {106},
  issue     = {6},
  pages     = {062604},
  year      = {2022},
  publisher = {American Physical Society},
  doi       = {10.1103/PhysRevA.106.062604},
  url       = {https://doi.org/10.1103/PhysRevA.106.062604}
}
"""


def _version_of(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def about(print_it: bool = True) -> dict[str, str]:
    """Print (and return) qpump's version, the Rust core's build, and the key dependency versions."""
    info = {
        "qpump": __version__,
        "rust core": f"{_core.core_version()} ({_core.build_profile()} build)",
        **{name: _version_of(name) for name in ("numpy", "scipy", "qiskit", "qiskit-aer",
                                                "qiskit-ibm-runtime", "qiskit-experiments")},
    }
    if print_it:
        width = max(map(len, info))
        for key, value in info.items():
            print(f"{key:<{width}}  {value}")
    return info


def cite() -> str:
    """The BibTeX entry of the paper qpump implements."""
    return _BIBTEX
