import re

import numpy as np
import pytest

from pointnet1x1.io import Mesh, PointCloudFileError, parse_off, read_mesh, read_points

TRIANGLE = "OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n"


def test_parse_off_triangle():
    mesh = parse_off(TRIANGLE)
    assert isinstance(mesh, Mesh)
    np.testing.assert_array_equal(mesh.vertices, [[0, 0, 0], [1, 0, 0], [0, 1, 0]])
    assert mesh.faces.dtype == np.int64
    np.testing.assert_array_equal(mesh.faces, [[0, 1, 2]])


def test_parse_off_counts_on_header_line():
    # ModelNet's quirk: "OFF490 518 0"
    mesh = parse_off("OFF3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n")
    assert mesh.vertices.shape == (3, 3) and mesh.faces.shape == (1, 3)


def test_parse_off_comments_quads_and_no_keyword():
    text = "# made by hand\nOFF # keyword\n\n4 1 0\n0 0 0\n1 0 0\n1 1 0\n0 1 0\n4 0 1 2 3\n"
    mesh = parse_off(text)
    np.testing.assert_array_equal(mesh.faces, [[0, 1, 2], [0, 2, 3]])
    assert parse_off(text.replace("OFF # keyword", "")).faces.shape == (2, 3)


def test_parse_off_mixed_polygons_and_colours():
    text = (
        "COFF\n5 2 0\n"
        + "".join(f"{i} {i * i} 0 1 1 1 1\n" for i in range(5))
        + "5 0 1 2 3 4 255 0 0\n3 0 1 2 0 255 0\n"
    )
    mesh = parse_off(text)
    np.testing.assert_array_equal(
        mesh.faces, [[0, 1, 2], [0, 2, 3], [0, 3, 4], [0, 1, 2]]
    )
    np.testing.assert_array_equal(mesh.vertices[:, 1], [0, 1, 4, 9, 16])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "file is empty"),
        ("PLY\n3 1 0\n", "not an OFF file"),
        ("OFF\n3 1 0\n0 0 0\n1 0 0\n", "header declares 3 vertices"),
        ("OFF\n3 2 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n", "header declares 2 faces"),
        ("OFF\n3 1 0\n0 0 0\n1 zero 0\n0 1 0\n3 0 1 2\n", "not numbers (found 'zero')"),
        ("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n", "face index 7 out of range"),
    ],
)
def test_parse_off_errors(text, message):
    with pytest.raises(PointCloudFileError, match=re.escape(message)):
        parse_off(text)


@pytest.mark.parametrize(
    "text",
    [
        "OFF3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n",  # ModelNet's quirk
        "OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2 0.5 0.5 0.5\n",  # face colour
        "OFF\n3 1 0\n0 0 0\n\n1 0 0\n0 1 0\n3 0 1 2\n",  # blank line
    ],
)
def test_read_off_fast_and_general_paths_agree(tmp_path, text):
    path = tmp_path / "m.off"
    path.write_text(text)
    mesh = read_mesh(path)
    np.testing.assert_array_equal(mesh.vertices, [[0, 0, 0], [1, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(mesh.faces, [[0, 1, 2]])


def test_read_off_error_names_file(tmp_path):
    path = tmp_path / "short.off"
    path.write_text("OFF\n3 1 0\n0 0 0\n")
    with pytest.raises(PointCloudFileError) as info:
        read_mesh(path)
    message = str(info.value)
    assert message.startswith(str(path) + ": header declares 3 vertices")
    assert "\n" not in message


def test_mesh_without_faces_cannot_be_sampled(tmp_path):
    path = tmp_path / "points.off"
    path.write_text("OFF\n3 0 0\n0 0 0\n1 0 0\n0 1 0\n")
    assert read_mesh(path).faces.shape == (0, 3)
    with pytest.raises(PointCloudFileError, match="points.off: mesh has no faces"):
        read_points(path)


def test_modelnet_meshes(data_dir):
    files = sorted((data_dir / "ModelNet40").glob("*/*/*.off"))
    assert len(files) >= 12
    for path in files:
        text = path.read_text()
        counts = [int(t) for t in text.split("\n")[1].split()]
        mesh = read_mesh(path)  # the fast path for plain files
        general = parse_off(text)  # the general path
        np.testing.assert_array_equal(mesh.vertices, general.vertices)
        np.testing.assert_array_equal(mesh.faces, general.faces)
        assert mesh.vertices.shape == (counts[0], 3), path
        assert mesh.faces.shape == (counts[1], 3), (
            path
        )  # all ModelNet faces are triangles
        cloud = read_points(path, num_points=512)
        assert cloud.points.shape == (512, 3) and cloud.normals.shape == (512, 3)
        lo, hi = mesh.vertices.min(0), mesh.vertices.max(0)
        assert np.all(cloud.points >= lo - 1e-3) and np.all(cloud.points <= hi + 1e-3)
