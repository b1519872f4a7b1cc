"""Where results go: strict JSON, atomic writes, and output paths checked before a run.

Rules, the same for every command:

- JSON is strict (RFC 8259: no NaN, no Infinity). An infinite number (a parameter such as
  ``TA = inf`` of the isolated pair) is written as the string ``"inf"`` or ``"-inf"``; an
  undefined number (NaN, e.g. an efficiency with no mutual information to spend) as ``null``.
- Every file is written through a temporary file in the same folder and renamed: a reader never
  sees half a file, and an interrupted run leaves none.
- An output path is checked before any computation (an existing file where a folder is wanted,
  or a folder where a file is wanted, is bad input); folders are created only when the first file
  is written, so a run rejected or interrupted before it has a result leaves nothing behind. A
  write that fails for any other reason (permissions, a full disk) raises
  :class:`~qpump.errors.OutputWriteError`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InvalidParameterError, OutputWriteError

__all__ = ["to_strict_json", "dumps", "loads_strict", "write_atomic", "write_text_atomic",
           "check_output_dir", "check_output_file"]


def to_strict_json(value: Any) -> Any:
    """Return ``value`` with numpy scalars and arrays turned into Python objects, infinities into
    ``"inf"``/``"-inf"`` and NaN into None, so that it serialises as strict JSON."""
    if isinstance(value, dict):
        return {str(k): to_strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_strict_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return [to_strict_json(v) for v in value.tolist()]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        x = float(value)
        if math.isnan(x):
            return None
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return x
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` of :func:`to_strict_json` (``allow_nan=False``: never NaN or Infinity)."""
    return json.dumps(to_strict_json(value), allow_nan=False, **kwargs)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not strict JSON")


def loads_strict(text: str) -> Any:
    """Parse JSON, rejecting the non-standard NaN, Infinity and -Infinity."""
    return json.loads(text, parse_constant=_reject_constant)


def check_output_dir(path: str | Path, option: str = "-o") -> Path:
    """Check, without creating anything, that ``path`` can be an output folder.

    Raises
    ------
    InvalidParameterError
        If ``path`` or one of its parents is an existing file.
    """
    path = Path(path)
    for candidate in (path, *path.parents):
        if candidate.exists() and not candidate.is_dir():
            what = "is" if candidate == path else f"lies under {str(candidate)!r}, which is"
            raise InvalidParameterError(
                f"{option} {str(path)!r} {what} an existing file, not a folder: give a folder")
    return path


def check_output_file(path: str | Path, option: str = "-o",
                      suffixes: tuple[str, ...] | None = None) -> Path:
    """Check, without creating anything, that ``path`` can be an output file.

    Raises
    ------
    InvalidParameterError
        If ``path`` is an existing folder, a parent is an existing file, or the suffix is not
        one of ``suffixes``.
    """
    path = Path(path)
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise InvalidParameterError(
            f"{option} {str(path)!r} must end in {', '.join(suffixes[:-1])} or {suffixes[-1]}"
            if len(suffixes) > 1 else f"{option} {str(path)!r} must end in {suffixes[0]}")
    if path.is_dir():
        raise InvalidParameterError(f"{option} {str(path)!r} is an existing folder, not a file")
    check_output_dir(path.parent, option=f"{option} {str(path)!r}: folder")
    return path


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Create the parent folders, call ``write(tmp)`` on a temporary file beside ``path`` and
    rename it to ``path`` (atomic on POSIX).

    Raises
    ------
    OutputWriteError
        If the folder or the file cannot be written (the message names the path and the cause).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        tmp.replace(path)
    except OSError as err:
        raise OutputWriteError(
            f"cannot write {str(path)!r}: {err.strerror or err}") from None
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`write_atomic`)."""

    def write(tmp: Path) -> None:
        with open(tmp, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())

    return write_atomic(path, write)
