"""Hostile files, built here: sizes declared in headers are never trusted (issue 16,
class 2) and nothing partial looks complete (class 4). The worst cases also run in
a subprocess whose address space is capped at 1 GiB, so a reader that allocated
what a header declares would fail there with MemoryError instead of refusing."""

import io
import json
import re
import struct
import subprocess
import sys
import zipfile
import zlib

import numpy as np
import pytest

from pointnet1x1.io import (
    PointCloud,
    PointCloudFileError,
    read_mesh,
    read_points,
    write_points,
)
from pointnet1x1.io.limits import override

PCD_HEAD = (
    "VERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\n"
    "WIDTH {w}\nHEIGHT {h}\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA {mode}\n"
)


def _message(path, reader=read_points) -> str:
    with pytest.raises(PointCloudFileError) as info:
        reader(path)
    text = str(info.value)
    assert "\n" not in text and text.startswith(f"{path}: "), text
    return text


def _compressed_pcd_bomb() -> bytes:
    """160 bytes that declare 357,913,941 points (4 GiB once decompressed)."""
    n = 357_913_941
    head = PCD_HEAD.format(w=n, h=1, n=n, mode="binary_compressed").encode()
    return head + struct.pack("<II", 8, n * 12) + bytes(8)


def _npy_header(shape, descr="<f4") -> bytes:
    out = io.BytesIO()
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(out, header)
    return out.getvalue()


def _zip_member(name: str, data: bytes, declared: int | None = None) -> bytes:
    """A one-member deflate zip; ``declared`` forges the uncompressed size."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    raw = bytearray(out.getvalue())
    if declared is not None:  # local header at 22, central directory entry at 24
        struct.pack_into("<I", raw, 22, declared)
        central = raw.rfind(b"PK\x01\x02")
        struct.pack_into("<I", raw, central + 24, declared)
    return bytes(raw)


def _ply_faces_bomb() -> bytes:
    # a binary face list of unknown length: plyfile would allocate 10^9 rows
    head = (
        "ply\nformat binary_little_endian 1.0\nelement vertex 3\nproperty float x\n"
        "property float y\nproperty float z\nelement face 1000000000\n"
        "property list uchar int vertex_indices\nend_header\n"
    )
    body = np.eye(3, dtype="<f4").tobytes() + bytes([4]) + bytes(16)
    return head.encode() + body


HOSTILE = {
    "bomb.pcd": (_compressed_pcd_bomb, r"ratio above the limit of 200"),
    "shape.npy": (
        lambda: _npy_header((10**9, 3)) + bytes(12),
        r"truncated: array header declares shape \(1000000000, 3\) float32 "
        r"\(12000000000 bytes\) but only 12 bytes follow",
    ),
    "member.npz": (
        lambda: _zip_member("points.npy", _npy_header((4, 3)) + bytes(48), 3 << 30),
        r"NPZ archive: 3\.0 GiB declared from \d+ compressed bytes, a ratio above",
    ),
    "faces.ply": (
        _ply_faces_bomb,
        r"header declares 1000000000 face rows of at least 1 bytes but only 17 "
        r"bytes follow$",
    ),
    "vertices.ply": (
        lambda: (
            b"ply\nformat ascii 1.0\nelement vertex 2000000000\nproperty float x\n"
            b"property float y\nproperty float z\nend_header\n0 0 0\n"
        ),
        r"header declares 2000000000 vertex rows of at least 3 bytes but only 6",
    ),
    "counts.off": (
        lambda: b"OFF\n1000000000 1000000000 0\n0 0 0\n",
        r"header declares 1000000000 vertices of 3 numbers but the body holds only 3",
    ),
    "count.stl": (
        lambda: bytes(80) + struct.pack("<I", 2**32 - 1) + bytes(50),
        r"truncated binary STL: header declares 4294967295 triangles",
    ),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_declared_sizes_are_checked_before_allocating(tmp_path, name):
    make, message = HOSTILE[name]
    path = tmp_path / name
    path.write_bytes(make())
    assert re.search(message, _message(path)), _message(path)


def test_hostile_files_stay_within_1_gib_of_address_space(tmp_path):
    paths = []
    for name, (make, _) in sorted(HOSTILE.items()):
        (tmp_path / name).write_bytes(make())
        paths.append(str(tmp_path / name))
    code = (
        "import json, resource, sys\n"
        "from pointnet1x1.io import read_points, PointCloudFileError\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
        "out = {}\n"
        "for path in json.loads(sys.argv[1]):\n"
        "    try:\n"
        "        read_points(path)\n"
        "        out[path] = 'read'\n"
        "    except PointCloudFileError:\n"
        "        out[path] = 'refused'\n"
        "    except MemoryError:\n"
        "        out[path] = 'MemoryError'\n"
        "print(json.dumps(out))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, json.dumps(paths)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == dict.fromkeys(paths, "refused")


def test_a_real_deflate_bomb_in_an_npz_is_refused(tmp_path):
    # 64 MiB of zeros deflate to ~64 KiB: a ratio of ~1000, refused before inflating
    data = _npy_header((1 << 22, 4)) + bytes(64 << 20)
    assert len(zlib.compress(data)) * 200 < len(data)
    path = tmp_path / "bomb.npz"
    path.write_bytes(_zip_member("points.npy", data))
    assert "a ratio above the limit of 200" in _message(path)
    with override(max_ratio=5000):  # raised on purpose: then the shape is checked
        assert "must have shape (N, 3), got (4194304, 4)" in _message(path)


def test_npz_members_are_checked(tmp_path):
    path = tmp_path / "dup.npz"
    member = _npy_header((2, 3)) + bytes(24)
    with zipfile.ZipFile(path, "w") as archive, pytest.warns(UserWarning):
        archive.writestr("points.npy", member)
        archive.writestr("points.npy", member)  # zipfile warns, keeps both
    assert "NPZ archive holds 'points.npy' twice" in _message(path)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("points.npy", member)
        archive.writestr("run.py", "print('hello')")
    assert "member 'run.py' is not an .npy array" in _message(path)
    np.save(tmp_path / "long.npy", np.zeros((4, 3), np.float32))
    raw = (tmp_path / "long.npy").read_bytes()
    (tmp_path / "long.npy").write_bytes(raw + bytes(12))  # one row beyond the header
    text = _message(tmp_path / "long.npy")
    assert "declares shape (4, 3) float32 (48 bytes) but 60 bytes follow" in text


def test_npy_fortran_order_and_writable_arrays(tmp_path):
    array = np.asfortranarray(np.arange(12, dtype=np.float64).reshape(4, 3))
    np.save(tmp_path / "f.npy", array)
    cloud = read_points(tmp_path / "f.npy")
    np.testing.assert_array_equal(cloud.points, array)
    cloud.points[0, 0] = 7.0  # np.load returns writable arrays: so do we


@pytest.mark.parametrize(
    ("w", "h", "n", "message"),
    [
        (397, 1, 300, r"declares POINTS 300 but WIDTH x HEIGHT = 397 x 1 = 397"),
        (397, 1, -1, r"PCD header POINTS must be a non-negative integer, got '-1'"),
        (-397, 1, 397, r"PCD header WIDTH must be a non-negative integer, got '-397'"),
        (100, 4, 397, r"WIDTH x HEIGHT = 100 x 4 = 400"),
    ],
)
def test_pcd_points_must_agree_with_width_and_height(tmp_path, w, h, n, message):
    path = tmp_path / "bad.pcd"
    head = PCD_HEAD.format(w=w, h=h, n=n, mode="binary").encode()
    body = np.arange(397 * 3, dtype="<f4").tobytes()
    path.write_bytes(head + (body if n != 300 else body[: 300 * 12]))
    assert re.search(message, _message(path)), _message(path)


def test_pcd_body_holding_more_points_than_declared(tmp_path):
    head = PCD_HEAD.format(w=3, h=1, n=3, mode="binary").encode()
    path = tmp_path / "long.pcd"
    path.write_bytes(head + np.zeros((5, 3), "<f4").tobytes())
    assert "header declares 3 points but the binary body holds 5" in _message(path)
    path.write_text(PCD_HEAD.format(w=1, h=1, n=1, mode="ascii") + "1 2 3\n4 5 6\n")
    assert "declares 1 points of 3 values but the ascii body holds 6" in _message(path)


@pytest.mark.parametrize("value", ["1e39", "-4e38", "inf", "nan"])
def test_mesh_vertices_beyond_float32_are_refused(tmp_path, value):
    path = tmp_path / "big.off"
    path.write_text(f"OFF\n4 2 0\n0 0 0\n1 0 0\n0 1 0\n{value} 1 1\n3 0 1 2\n3 1 2 3\n")
    for reader in (read_points, read_mesh):
        text = _message(path, reader)
        assert "1 of 4 vertices are NaN, infinite or beyond the float32 range" in text


def test_cloud_points_beyond_float32_are_refused_nan_points_dropped(tmp_path):
    path = tmp_path / "c.xyz"
    path.write_text("0 0 0\n1 2 3\n1e39 0 0\n")
    text = _message(path)
    assert "1 points have infinite coordinates or ones beyond the float32" in text
    path.write_text("0 0 0\nnan nan nan\n1 2 3\n")  # PCL's invalid point: dropped
    np.testing.assert_array_equal(read_points(path).points, [[0, 0, 0], [1, 2, 3]])


_FULL = PointCloud(
    np.zeros((4, 3)), np.tile([0.0, 0.0, 1.0], (4, 1)), np.full((4, 3), 0.5),
    {"label": np.arange(4)},
)  # fmt: skip


@pytest.mark.parametrize(
    ("ext", "lost"),
    [
        (".xyz", "normals and colors and fields"),
        (".xyzn", "colors and fields"),
        (".xyzrgb", "normals and fields"),
        (".npy", "colors and fields"),
    ],
)
def test_every_writer_refuses_what_it_cannot_hold_or_drops_it_when_told(
    tmp_path, ext, lost
):
    path = tmp_path / f"c{ext}"
    with pytest.raises(PointCloudFileError) as info:
        write_points(path, _FULL)
    assert f"a {ext} file cannot hold the cloud's {lost}; write .ply / .pcd / .npz" in (
        str(info.value)
    )
    assert not path.exists()
    write_points(path, _FULL, drop_unsupported=True)
    back = read_points(path)
    assert (back.normals is not None) == (ext in (".xyzn", ".npy"))
    assert (back.colors is not None) == (ext == ".xyzrgb") and not back.fields


@pytest.mark.parametrize("ext", [".ply", ".pcd", ".npz"])
def test_full_formats_keep_everything(tmp_path, ext):
    write_points(tmp_path / f"c{ext}", _FULL)
    back = read_points(tmp_path / f"c{ext}")
    np.testing.assert_array_equal(back.normals, _FULL.normals)
    np.testing.assert_allclose(back.colors, 128 / 255 if ext != ".npz" else 0.5)
    np.testing.assert_array_equal(back.fields["label"], np.arange(4))
