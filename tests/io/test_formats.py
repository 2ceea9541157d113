"""Format variants and writer round trips through tmp_path."""

import os
import struct

import numpy as np
import pytest
from plyfile import PlyData, PlyElement

from pointnet1x1.io import (
    PointCloud,
    PointCloudFileError,
    parse_obj,
    parse_pcd,
    parse_stl,
    parse_text,
    read_mesh,
    read_points,
    write_points,
)
from pointnet1x1.io._lzf import lzf_decompress

RNG = np.random.default_rng(0)
N = 50


def _cloud(normals=True, colors=True, fields=True):
    unit = RNG.normal(size=(N, 3))
    return PointCloud(
        RNG.normal(size=(N, 3)).astype(np.float32),
        unit / np.linalg.norm(unit, axis=1, keepdims=True) if normals else None,
        np.round(RNG.random((N, 3)) * 255) / 255 if colors else None,
        {"intensity": RNG.random(N).astype(np.float32), "label": np.arange(N)}
        if fields
        else {},
    )


@pytest.mark.parametrize(
    ("ext", "normals", "colors", "fields"),
    [
        (".ply", True, True, True),
        (".npz", True, True, True),
        (".pcd", True, True, True),
        (".npy", True, False, False),
        (".npy", False, False, False),
        (".xyz", False, False, False),
        (".xyzn", True, False, False),
        (".xyzrgb", False, True, False),
    ],
)
def test_write_read_round_trip(tmp_path, ext, normals, colors, fields):
    cloud = _cloud(normals, colors, fields)
    path = tmp_path / f"cloud{ext}"
    write_points(path, cloud)
    back = read_points(path)
    np.testing.assert_array_equal(back.points, cloud.points)
    for name in ("normals", "colors"):
        if getattr(cloud, name) is None:
            assert getattr(back, name) is None
        else:
            np.testing.assert_allclose(
                getattr(back, name), getattr(cloud, name), atol=1e-6
            )
    for key, value in cloud.fields.items():
        np.testing.assert_array_equal(back.fields[key], value)
    assert os.listdir(tmp_path) == [path.name]  # no temporary file left


def test_write_is_atomic_and_refuses_what_the_format_cannot_hold(tmp_path):
    path = tmp_path / "cloud.npy"
    write_points(path, _cloud(False, False, False))
    before = path.read_bytes()
    with pytest.raises(
        PointCloudFileError,
        match=r"cannot hold the cloud's colors and fields; write \.ply / \.pcd / \.npz",
    ):
        write_points(path, _cloud())
    with pytest.raises(PointCloudFileError, match="no normals to write to .xyzn"):
        write_points(tmp_path / "c.xyzn", _cloud(normals=False))
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == [path.name]


def test_write_points_takes_an_array(tmp_path):
    array = RNG.normal(size=(N, 6)).astype(np.float32)
    write_points(tmp_path / "a.ply", array)
    back = read_points(tmp_path / "a.ply")
    np.testing.assert_array_equal(back.points, array[:, :3])
    np.testing.assert_array_equal(back.normals, array[:, 3:])


@pytest.mark.parametrize(
    ("text", "byte_order"), [(True, "="), (False, "<"), (False, ">")]
)
def test_ply_variants_double_extra_properties_and_quads(tmp_path, text, byte_order):
    vertex = np.zeros(
        4,
        [
            ("x", "f8"),
            ("y", "f8"),
            ("z", "f8"),
            ("red", "u1"),
            ("green", "u1"),
            ("blue", "u1"),
            ("quality", "f4"),
        ],
    )
    vertex["x"], vertex["y"] = [0, 1, 1, 0], [0, 0, 1, 1]
    vertex["red"], vertex["quality"] = 255, [1, 2, 3, 4]
    elements = [PlyElement.describe(vertex, "vertex", comments=["c"] * 30)]
    path = tmp_path / "v.ply"
    PlyData(elements, text=text, byte_order=byte_order).write(str(path))
    cloud = read_points(path)
    np.testing.assert_array_equal(cloud.points[:, 0], [0, 1, 1, 0])
    np.testing.assert_array_equal(cloud.colors[:, 0], 1.0)
    np.testing.assert_array_equal(cloud.fields["quality"], [1, 2, 3, 4])
    faces = np.array([([0, 1, 2, 3],)], dtype=[("vertex_indices", "O")])
    elements.append(PlyElement.describe(faces, "face"))
    PlyData(elements, text=text, byte_order=byte_order).write(str(path))
    np.testing.assert_array_equal(read_mesh(path).faces, [[0, 1, 2], [0, 2, 3]])


def test_ascii_ply_fast_path_and_plyfile_fallback(tmp_path):
    head = (
        "ply\nformat ascii 1.0\nelement vertex 5\nproperty float x\nproperty float y\n"
    )
    head += "property float z\nproperty uchar red\nproperty uchar green\n"
    head += (
        "property uchar blue\nelement face 2\nproperty list uchar int vertex_indices\n"
    )
    head += "end_header\n"
    body = "".join(f"{i} {i * i} 0 255 0 0\n" for i in range(5))
    path = tmp_path / "a.ply"
    path.write_text(head + body + "3 0 1 2\n4 0 1 2 3\n")  # mixed sizes: plyfile
    mesh = read_mesh(path)
    np.testing.assert_array_equal(mesh.faces, [[0, 1, 2], [0, 1, 2], [0, 2, 3]])
    path.write_text(head + body + "4 0 1 2 3\n4 1 2 3 4\n")  # fast path
    np.testing.assert_array_equal(read_mesh(path).faces[2], [1, 2, 3])
    path.write_text(head.replace("element face 2\n", "element face 0\n") + body)
    cloud = read_points(path)
    np.testing.assert_array_equal(cloud.colors, np.tile([1, 0, 0], (5, 1)))
    path.write_text(head + body[:-12])
    with pytest.raises(PointCloudFileError, match="truncated body: header declares 5"):
        read_points(path)
    path.write_text(head + body + "3 0 1 9\n3 0 1 2\n")
    with pytest.raises(PointCloudFileError, match="face index 9 out of range for 5"):
        read_mesh(path)


def test_pcd_ascii_packed_rgb_padding_and_count(tmp_path):
    rgb = struct.unpack("<f", struct.pack("<I", (255 << 16) | (128 << 8) | 0))[0]
    text = (
        "# comment\nVERSION 0.7\nFIELDS x y z rgb _ hist\nSIZE 4 4 4 4 1 4\n"
        "TYPE F F F F U F\nCOUNT 1 1 1 1 1 2\nWIDTH 2\nHEIGHT 1\nPOINTS 2\nDATA ascii\n"
        f"1 2 3 {rgb!r} 0 5 6\nnan nan nan {rgb!r} 0 7 8\n"
    )
    cloud = parse_pcd(text.encode())
    np.testing.assert_allclose(cloud.colors[0], [1, 128 / 255, 0])
    np.testing.assert_array_equal(cloud.fields["hist"], [[5, 6], [7, 8]])
    assert "_" not in cloud.fields and len(cloud) == 2
    path = tmp_path / "c.pcd"
    path.write_text(text)
    assert len(read_points(path)) == 1  # NaN point dropped


def test_pcd_binary_organised_matches_header(tmp_path):
    points = np.arange(24, dtype="<f4").reshape(8, 3)
    header = (
        "VERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\n"
        "WIDTH 4\nHEIGHT 2\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS 8\nDATA binary\n"
    )
    cloud = parse_pcd(header.encode() + points.tobytes())
    np.testing.assert_array_equal(cloud.points, points)


def test_lzf_literals_and_overlapping_back_references():
    # literal "ab", then a back-reference of length 6 at distance 2 -> "abababab"
    stream = bytes([1]) + b"ab" + bytes([(4 << 5) | 0, 1])
    assert lzf_decompress(stream, 8) == b"abababab"
    # long reference (length code 7 + extra byte)
    stream = bytes([2]) + b"xyz" + bytes([(7 << 5) | 0, 3, 2])
    assert lzf_decompress(stream, 15) == b"xyz" * 5
    with pytest.raises(ValueError, match="decodes to 3 bytes, expected 4"):
        lzf_decompress(bytes([2]) + b"xyz", 4)
    with pytest.raises(ValueError, match="back-reference out of range"):
        lzf_decompress(bytes([(1 << 5) | 0, 9]), 3)


def test_text_header_comma_and_pts_count():
    cloud = parse_text("# scan\nX,Y,Z,Intensity\n1,2,3,7\n4,5,6,8\n", ".csv")
    np.testing.assert_array_equal(cloud.points, [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(cloud.fields["intensity"], [7, 8])
    pts = parse_text("2\n1 2 3 10 255 0 0\n4 5 6 20 0 255 0\n", ".pts")
    np.testing.assert_array_equal(pts.colors, [[1, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(pts.fields["intensity"], [10, 20])
    with pytest.raises(PointCloudFileError, match="first line declares 3 points"):
        parse_text("3\n1 2 3\n", ".pts")
    rgb = parse_text("1 2 3 0 128 255\n", ".xyz")  # not unit vectors -> colours
    np.testing.assert_allclose(rgb.colors, [[0, 128 / 255, 1]])


def test_modelnet_normal_resampled_text(data_dir):
    path = data_dir / "modelnet40_normal_resampled" / "airplane" / "airplane_0001.txt"
    cloud = read_points(path)
    assert cloud.points.shape == (2048, 3) and cloud.colors is None
    np.testing.assert_allclose(np.linalg.norm(cloud.normals, axis=1), 1, atol=1e-3)
    first = [float(v) for v in path.read_text().split("\n")[0].split(",")]
    np.testing.assert_allclose(cloud.points[0], first[:3], rtol=1e-6)
    sub = read_points(path, num_points=100, seed=2)
    assert len(sub) == 100 and sub.normals.shape == (100, 3)
    np.testing.assert_array_equal(
        sub.points, read_points(path, num_points=100, seed=2).points
    )


def test_stl_ascii_and_binary_agree(tmp_path):
    tris = np.array(
        [[[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[1, 0, 0], [1, 1, 0], [0, 1, 0]]], "<f4"
    )
    ascii_text = (
        "solid t\n"
        + "".join(
            "facet normal 0 0 1\nouter loop\n"
            + "".join(f"vertex {x} {y} {z}\n" for x, y, z in tri)
            + "endloop\nendfacet\n"
            for tri in tris
        )
        + "endsolid t\n"
    )
    table = np.zeros(2, [("n", "<f4", 3), ("v", "<f4", (3, 3)), ("a", "<u2")])
    table["v"] = tris
    binary = (
        b"solid but binary".ljust(80, b" ") + struct.pack("<I", 2) + table.tobytes()
    )
    for raw in (ascii_text.encode(), binary):
        mesh = parse_stl(raw)
        assert mesh.vertices.shape == (4, 3) and mesh.faces.shape == (2, 3)
        np.testing.assert_array_equal(mesh.vertices[mesh.faces], tris)


def test_obj_relative_indices_quads_and_vertex_only(tmp_path):
    mesh = parse_obj(
        "v 0 0 0 1 0 0\nv 1 0 0 1 0 0\nv 1 1 0 1 0 0\nv 0 1 0 1 0 0\n"
        "vt 0 0\nf -4/1 -3/1 -2/1 -1/1\n"
    )
    np.testing.assert_array_equal(mesh.faces, [[0, 1, 2], [0, 2, 3]])
    path = tmp_path / "points.obj"
    path.write_text("# cloud\nv 1 2 3\nv 4 5 6\n")
    np.testing.assert_array_equal(read_points(path).points, [[1, 2, 3], [4, 5, 6]])
    with pytest.raises(PointCloudFileError, match="face index out of range"):
        parse_obj("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n")


def test_read_points_is_reproducible_and_subsamples(clouds_dir):
    path = clouds_dir / "PointCloudLibrary_pcl__bunny.pcd"
    a = read_points(path, num_points=128, seed=5)
    b = read_points(path, num_points=128, seed=5)
    np.testing.assert_array_equal(a.points, b.points)
    assert len(read_points(path, num_points=1000)) == 1000  # with repeats
