"""The resource limits (pointnet1x1.io.limits) and the one-line message helpers
(pointnet1x1.io.errors)."""

import struct
import threading
from typing import Literal

import numpy as np
import pytest

from pointnet1x1.io import PointCloudFileError, read_points
from pointnet1x1.io.errors import InputFileError, check_value, display_path, one_line
from pointnet1x1.io.limits import (
    Limits,
    check_inflation,
    get_limits,
    override,
    set_limits,
)


def test_defaults_environment_and_blocks(monkeypatch):
    for var in ("FILE_BYTES", "ALLOC_BYTES", "RATIO"):
        monkeypatch.delenv(f"POINTNET1X1_MAX_{var}", raising=False)
    assert get_limits() == Limits(4 * 2**30, 4 * 2**30, 200.0)
    monkeypatch.setenv("POINTNET1X1_MAX_FILE_BYTES", "16G")
    monkeypatch.setenv("POINTNET1X1_MAX_ALLOC_BYTES", "1536")
    monkeypatch.setenv("POINTNET1X1_MAX_RATIO", "50")
    assert get_limits() == Limits(16 * 2**30, 1536, 50.0)
    with override(max_ratio=7) as inner:
        assert inner == Limits(16 * 2**30, 1536, 7.0) == get_limits()
        with override(max_file_bytes=10):
            assert get_limits().max_file_bytes == 10
        assert get_limits().max_file_bytes == 16 * 2**30
    assert get_limits().max_ratio == 50.0


def test_set_limits_for_the_process_and_back():
    try:
        set_limits(max_alloc_bytes=123)
        seen = []
        thread = threading.Thread(target=lambda: seen.append(get_limits()))
        thread.start()
        thread.join()
        assert seen[0].max_alloc_bytes == 123  # every thread
    finally:
        set_limits()
    assert get_limits().max_alloc_bytes == 4 * 2**30


@pytest.mark.parametrize(
    ("var", "value"),
    [("POINTNET1X1_MAX_FILE_BYTES", "lots"), ("POINTNET1X1_MAX_RATIO", "x")],
)
def test_bad_environment_value_names_the_variable(monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    with pytest.raises(ValueError, match=f"environment variable {var}={value!r}"):
        get_limits()


def test_bad_limit_values():
    with pytest.raises(ValueError, match="max_ratio must be positive, got 0"):
        Limits(max_ratio=0)
    with pytest.raises(ValueError, match="max_file_bytes must be a number"):
        Limits(max_file_bytes="big")  # type: ignore[arg-type]


def test_ratio_floor_and_allocation_limit():
    check_inflation(1 << 20, 1, "small")  # a MiB from one byte: never refused
    with pytest.raises(PointCloudFileError, match="ratio above the limit of 200"):
        check_inflation((1 << 20) + 1, 100, "stream")
    with (
        override(max_alloc_bytes=1000),
        pytest.raises(
            PointCloudFileError, match="would need 1001 B, above the limit of 1000 B"
        ),
    ):
        check_inflation(1001, 1001, "array")


def test_the_allocation_limit_bounds_a_real_compressed_pcd(tmp_path, clouds_dir):
    raw = (clouds_dir / "PointCloudLibrary_pcl__milk_color.pcd").read_bytes()
    start = raw.index(b"DATA binary_compressed\n") + len(b"DATA binary_compressed\n")
    _, size = struct.unpack_from("<II", raw, start)  # decompressed bytes declared
    assert size == 13704 * 16  # x y z rgba, 4 bytes each
    path = tmp_path / "milk.pcd"
    path.write_bytes(raw)
    with (
        override(max_alloc_bytes=size - 1),
        pytest.raises(
            PointCloudFileError, match="would need 214.1 KiB, above the limit of"
        ),
    ):
        read_points(path)
    with override(max_alloc_bytes=size):
        assert len(read_points(path)) == 13704


def test_one_line_escapes_what_would_break_the_line():
    assert one_line("a\nb\tc\x1b[31m\u2028d") == "a\\nb\\tc\\x1b[31m\\u2028d"
    assert one_line("caf\u00e9  ok") == "caf\u00e9  ok"  # printable text unchanged
    assert display_path(b"bad\xffname.ply") == "bad\\udcffname.ply"
    long = "x" * 1000 + ".ply"
    shown = display_path(long)
    assert len(shown) < 250 and shown.startswith("xxx") and shown.endswith(".ply")


def test_input_file_error_is_one_line_whatever_the_name():
    err = InputFileError("truncated\n  body", "dir\n/evil\r.ply")
    assert str(err) == "dir\\n/evil\\r.ply: truncated body"
    assert isinstance(err, ValueError) and err.path == "dir\n/evil\r.ply"
    assert issubclass(PointCloudFileError, InputFileError)


@pytest.mark.parametrize(
    ("value", "annotation", "expected"),
    [
        (3, int, 3),
        (3, float, 3.0),
        ([0.8, 1], tuple[float, float], (0.8, 1.0)),
        (None, int | None, None),
        (["a", "b"], list[str], ["a", "b"]),
        ("cls", Literal["cls", "partseg"], "cls"),
        ({"mlp1": [32]}, dict[str, list[int]], {"mlp1": [32]}),
    ],
)
def test_check_value_accepts(value, annotation, expected):
    out = check_value(value, annotation, "x")
    assert out == expected and type(out) is type(expected)


@pytest.mark.parametrize(
    ("value", "annotation", "message"),
    [
        ("x", int, "epochs must be an integer, got 'x' (str)"),
        (100.5, int, "epochs must be an integer, got 100.5 (float)"),
        (True, int, "epochs must be an integer, got True (bool)"),
        ("1e-3", float, "epochs must be a number, got '1e-3' (str)"),
        ([1, 2, 3], tuple[float, float], "must be a list of 2 values (a number, a"),
        (
            "seg",
            Literal["cls", "partseg"],
            "must be one of 'cls', 'partseg', got 'seg'",
        ),
        (np.float64(2.0), str, "must be a string, got"),
    ],
)
def test_check_value_refuses_with_one_line(value, annotation, message):
    with pytest.raises(
        ValueError, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        check_value(value, annotation, "epochs")
