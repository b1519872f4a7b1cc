"""Tests of qpump.output: strict JSON, output paths checked without side effects, atomic writes
that fail in one clear error."""

import errno
import json
import math

import numpy as np
import pytest

from qpump.errors import InvalidParameterError, OutputWriteError
from qpump.output import (
    check_output_dir,
    check_output_file,
    dumps,
    loads_strict,
    to_strict_json,
    write_atomic,
    write_text_atomic,
)


def test_strict_json_has_no_nan_or_infinity():
    value = {"a": math.inf, "b": -np.inf, "c": math.nan, "d": np.float64(0.5), "e": np.int64(3),
             "f": np.array([1.0, np.nan]), "g": (np.bool_(True), None, "x"), 1: [math.inf]}
    text = dumps(value)
    assert loads_strict(text) == {"a": "inf", "b": "-inf", "c": None, "d": 0.5, "e": 3,
                                  "f": [1.0, None], "g": [True, None, "x"], "1": ["inf"]}
    assert to_strict_json(2.5) == 2.5
    for bad in ("NaN", "[Infinity]", '{"x": -Infinity}'):
        with pytest.raises(ValueError, match="not strict JSON"):
            loads_strict(bad)
    assert json.loads(text)  # and any standard parser reads it


def test_output_paths_are_checked_without_creating_anything(tmp_path):
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    assert check_output_dir(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()
    with pytest.raises(InvalidParameterError, match="is an existing file, not a folder"):
        check_output_dir(afile)
    with pytest.raises(InvalidParameterError, match="which is an existing file"):
        check_output_dir(afile / "sub")
    with pytest.raises(InvalidParameterError, match="is an existing folder, not a file"):
        (tmp_path / "fig.png").mkdir()
        check_output_file(tmp_path / "fig.png", suffixes=(".png", ".pdf"))
    with pytest.raises(InvalidParameterError, match=r"must end in \.png or \.pdf"):
        check_output_file(tmp_path / "f.txt", suffixes=(".png", ".pdf"))
    with pytest.raises(InvalidParameterError, match="existing file"):
        check_output_file(afile / "f.png", suffixes=(".png",))
    assert check_output_file(tmp_path / "a" / "f.PNG", suffixes=(".png",)).name == "f.PNG"


def test_atomic_writes_create_folders_and_fail_in_one_error(tmp_path):
    target = tmp_path / "out" / "r.json"
    write_text_atomic(target, "{}\n")
    assert target.read_text() == "{}\n" and [p.name for p in target.parent.iterdir()] == ["r.json"]

    def disk_full(path):
        path.write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OutputWriteError, match=r"cannot write '.*r\.json': No space left"):
        write_atomic(target, disk_full)
    assert target.read_text() == "{}\n"  # the old file is intact, no temporary file is left
    assert [p.name for p in target.parent.iterdir()] == ["r.json"]
