"""Every malformed input raises PointCloudFileError (or FileNotFoundError) with a
one-line message that names the file and the problem."""

import re

import numpy as np
import pytest

from pointnet1x1.io import (
    PointCloud,
    PointCloudFileError,
    read_mesh,
    read_points,
    write_points,
)


def _raises(path, message, reader=read_points):
    with pytest.raises(PointCloudFileError) as info:
        reader(path)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(f"{path}: "), text
    assert re.search(message, text), text
    return text


def _ply_bytes(num_declared, num_written):
    header = (
        "ply\nformat binary_little_endian 1.0\nelement vertex "
        f"{num_declared}\nproperty float x\nproperty float y\nproperty float z\n"
        "end_header\n"
    )
    body = np.arange(num_written * 3, dtype="<f4").tobytes()
    return header.encode() + body


@pytest.mark.parametrize(
    "ext", [".ply", ".pcd", ".xyz", ".off", ".obj", ".stl", ".npy"]
)
def test_empty_file(tmp_path, ext):
    path = tmp_path / f"empty{ext}"
    path.write_bytes(b"")
    _raises(path, "empty")


def test_truncated_binary_ply(tmp_path):
    path = tmp_path / "cut.ply"
    path.write_bytes(_ply_bytes(100, 100)[:-7])
    _raises(path, "truncated body: .*row 99.*early end-of-file")


def test_ply_header_claims_more_points_than_the_body(tmp_path):
    path = tmp_path / "short.ply"
    path.write_bytes(_ply_bytes(1000, 10))
    _raises(path, "truncated body")


def test_truncated_binary_pcd(tmp_path):
    path = tmp_path / "cut.pcd"
    write_points(path, PointCloud(np.ones((50, 3))))
    path.write_bytes(path.read_bytes()[:-5])
    _raises(path, "header declares 50 points but the binary body holds only 49")


def test_pcd_header_claims_more_points_than_the_body(tmp_path, clouds_dir):
    text = (clouds_dir / "PointCloudLibrary_pcl__bunny.pcd").read_text()
    path = tmp_path / "bunny.pcd"
    path.write_text(text.replace("POINTS 397", "POINTS 500"))
    _raises(path, "header declares 500 points but the ascii body holds only 397")


def test_truncated_compressed_pcd(tmp_path, clouds_dir):
    raw = (clouds_dir / "PointCloudLibrary_pcl__milk_color.pcd").read_bytes()
    path = tmp_path / "milk.pcd"
    path.write_bytes(raw[: len(raw) // 2])  # PCL pads the end: cut well inside
    _raises(path, r"truncated binary_compressed body: \d+ of 141983 bytes")


def test_truncated_binary_stl(tmp_path):
    path = tmp_path / "cut.stl"
    path.write_bytes(b"\0" * 80 + np.uint32(10).tobytes() + b"\0" * 300)
    _raises(path, r"truncated binary STL: header declares 10 triangles")


def test_off_header_claims_more_vertices(tmp_path):
    path = tmp_path / "cut.off"
    path.write_text("OFF\n4 1 0\n0 0 0\n1 0 0\n")
    _raises(path, "header declares 4 vertices")


def test_unknown_extension(tmp_path):
    path = tmp_path / "cloud.foo"
    path.write_text("1 2 3\n")
    _raises(path, r"unknown point-cloud format '\.foo'; supported: \.csv, ")
    with pytest.raises(PointCloudFileError, match="unknown point-cloud format"):
        write_points(tmp_path / "out.foo", PointCloud(np.zeros((1, 3))))


def test_point_cloud_format_is_not_a_mesh(tmp_path, clouds_dir):
    path = clouds_dir / "PointCloudLibrary_pcl__bunny.pcd"
    _raises(path, r"a \.pcd file holds a point cloud, not a mesh", read_mesh)


def test_directory(tmp_path):
    folder = tmp_path / "scans.ply"
    folder.mkdir()
    _raises(folder, "is a directory, expected a point-cloud file")
    _raises(folder, "is a directory", read_mesh)


def test_missing_file(tmp_path):
    path = tmp_path / "nothing.ply"
    with pytest.raises(FileNotFoundError, match=f"{re.escape(str(path))}: no such"):
        read_points(path)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        write_points(tmp_path / "no" / "x.ply", PointCloud(np.zeros((1, 3))))


@pytest.mark.parametrize(
    ("ext", "text", "message"),
    [
        (
            ".xyz",
            "1 2 3\n4 five 6\n",
            "text is not numbers: 'five' at data row 2, column 2",
        ),
        (
            ".csv",
            "x,y,z\n1,2,3\n4,5,six\n",
            "text is not numbers: 'six' at data row 2, column 3",
        ),
        (".txt", "hello world\n", "text is not numbers"),
        (
            ".pcd",
            "FIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nWIDTH 1\nPOINTS 1\n"
            "DATA ascii\n1 a 3\n",
            "ascii body is not numbers",
        ),
        (".off", "OFF\n1 0 0\n1 x 2\n", "not numbers"),
        (".xyz", "1 2 3\n4 5\n", "rows must hold the same number"),
    ],
)
def test_text_that_is_not_numbers(tmp_path, ext, text, message):
    path = tmp_path / f"bad{ext}"
    path.write_text(text)
    _raises(path, re.escape(message))


def test_only_non_finite_points(tmp_path):
    path = tmp_path / "nan.xyz"
    path.write_text("nan nan nan\ninf 1 2\n")
    _raises(path, "all 2 points are NaN or infinite")
    path = tmp_path / "nan.npy"
    np.save(path, np.full((4, 3), np.nan, np.float32))
    _raises(path, "all 4 points are NaN or infinite")


def test_zero_points(tmp_path):
    path = tmp_path / "zero.ply"
    path.write_bytes(_ply_bytes(0, 0))
    _raises(path, "holds no point")
    path = tmp_path / "zero.npy"
    np.save(path, np.zeros((0, 3), np.float32))
    _raises(path, "holds no point")
    path = tmp_path / "header.csv"
    path.write_text("x,y,z\n")
    _raises(path, "holds no point")


def test_mesh_with_no_faces_where_faces_are_needed(tmp_path):
    path = tmp_path / "no_faces.off"
    path.write_text("OFF\n3 0 0\n0 0 0\n1 0 0\n0 1 0\n")
    _raises(path, "mesh has no faces, cannot sample")
    path = tmp_path / "flat.stl"
    path.write_text(
        "solid s\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0 0\n"
        "vertex 2 0 0\nendloop\nendfacet\nendsolid s\n"
    )
    _raises(path, "faces of the mesh have zero area")


@pytest.mark.parametrize("shape", [(1024,), (10, 2), (2, 16, 3)])
def test_npy_of_the_wrong_shape(tmp_path, shape):
    path = tmp_path / "wrong.npy"
    np.save(path, np.zeros(shape, np.float32))
    _raises(path, re.escape(f"expected a numeric array of shape (N, 3+F), got {shape}"))


def test_npz_without_points_and_pickled_npy(tmp_path):
    path = tmp_path / "two.npz"
    np.savez(path, a=np.zeros((3, 3)), b=np.zeros((3, 3)))
    _raises(path, "NPZ archive needs a 'points' array \\(found: a, b\\)")
    path = tmp_path / "obj.npy"
    np.save(path, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    _raises(path, "not a valid NumPy file")


def test_missing_optional_package_message(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "laspy", None)  # import laspy -> ImportError
    monkeypatch.setitem(sys.modules, "pye57", None)
    path = tmp_path / "x.las"
    path.write_bytes(b"LASF")
    _raises(path, re.escape("needs laspy[lazrs]: pip install 'pointnet1x1[las]'"))
    path = tmp_path / "x.e57"
    path.write_bytes(b"ASTM-E57")
    _raises(path, re.escape("needs pye57: pip install 'pointnet1x1[e57]'"))


def test_corrupt_headers_found_by_fuzzing(tmp_path, clouds_dir):
    ply = bytearray(
        (clouds_dir / "fwilliams_point-cloud-utils__bunny.ply").read_bytes()
    )
    ply[20] = 0xE4  # a non-ASCII byte inside the header
    path = tmp_path / "bad.ply"
    path.write_bytes(bytes(ply))
    _raises(path, "malformed PLY")
    pcd = (clouds_dir / "PointCloudLibrary_pcl__bunny.pcd").read_text()
    path = tmp_path / "bad.pcd"
    path.write_text(pcd.replace("SIZE 4 4 4", "SIZE 4 x 4"))
    _raises(path, "malformed PCD header: invalid literal for int")
    path = tmp_path / "bad.npz"
    np.savez(path, points=np.zeros((5, 3)))
    path.write_bytes(path.read_bytes()[:-30])
    _raises(path, "not a valid NumPy file")


def test_corrupt_laz_chunk_table_is_refused_not_fatal(tmp_path, clouds_dir):
    # lazrs would try to allocate tens of GB and abort the interpreter
    raw = bytearray((clouds_dir / "laspy_laspy__simple.laz").read_bytes())
    start = int.from_bytes(raw[96:100], "little")  # offset to point data
    path = tmp_path / "bad.laz"
    raw[start : start + 8] = (len(raw) + 100).to_bytes(8, "little")
    path.write_bytes(bytes(raw))
    _raises(path, "corrupt LAZ file: chunk table offset .* outside the file")
    raw[start : start + 8] = (start + 8).to_bytes(8, "little")
    raw[start + 12 : start + 16] = (0xFFFFFFF0).to_bytes(4, "little")
    path.write_bytes(bytes(raw))
    _raises(path, "corrupt LAZ file: 4294967280 chunks for 1065 points")


def test_corrupt_or_truncated_las_header(tmp_path, clouds_dir):
    raw = bytearray((clouds_dir / "laspy_laspy__simple.las").read_bytes())
    path = tmp_path / "cut.las"
    path.write_bytes(bytes(raw[:-1000]))
    _raises(path, "truncated LAS file: header declares 1065 points of 34 bytes")
    raw[100:104] = (0xF0000001).to_bytes(4, "little")  # number of VLRs
    path = tmp_path / "vlrs.laz"
    path.write_bytes(bytes(raw))
    _raises(path, "corrupt LAS header: 4026531841 VLRs cannot fit before the point")
