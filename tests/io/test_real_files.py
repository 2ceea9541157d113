"""The real third-party files of ../shared/data/clouds: the facts of its README."""

import numpy as np
import pytest

from pointnet1x1.io import read_mesh, read_points
from pointnet1x1.io.pcd import read_pcd
from pointnet1x1.io.ply import read_ply


def _o3d():
    import open3d  # a project dependency: a broken install must fail, not skip

    return open3d


@pytest.mark.parametrize(
    ("name", "count", "extras"),
    [
        ("PointCloudLibrary_pcl__bunny.pcd", 397, set()),
        (
            "PointCloudLibrary_pcl__colored_cloud.pcd",
            1000,
            {"normals", "colors", "curvature"},
        ),
        ("PointCloudLibrary_pcl__milk_color.pcd", 13704, {"colors", "alpha"}),
        (
            "isl-org_Open3D-ML__fragment.pcd",
            113662,
            {"normals", "colors", "curvature"},
        ),
    ],
)
def test_pcd_counts_fields_and_open3d_agreement(clouds_dir, name, count, extras):
    path = clouds_dir / name
    cloud = read_points(path)
    assert cloud.points.shape == (count, 3) and cloud.points.dtype == np.float32
    have = {k for k in ("normals", "colors") if getattr(cloud, k) is not None}
    assert have | set(cloud.fields) == extras
    reference = _o3d().io.read_point_cloud(str(path))
    np.testing.assert_array_equal(
        np.asarray(reference.points, np.float32), cloud.points
    )
    if cloud.colors is not None:
        np.testing.assert_allclose(
            np.asarray(reference.colors), cloud.colors, atol=1e-6
        )
    if cloud.normals is not None:
        np.testing.assert_allclose(np.asarray(reference.normals), cloud.normals)


def test_pcd_colored_cloud_colours_are_not_grey(clouds_dir):
    cloud = read_points(clouds_dir / "PointCloudLibrary_pcl__colored_cloud.pcd")
    assert cloud.colors.min() >= 0 and cloud.colors.max() <= 1
    assert np.ptp(cloud.colors, axis=0).min() > 0.1
    np.testing.assert_allclose(np.linalg.norm(cloud.normals, axis=1), 1, atol=1e-3)


def test_pcd_organised_cloud_with_nan_points(clouds_dir):
    path = clouds_dir / "PointCloudLibrary_pcl__table_scene_mug_stereo_textured.pcd"
    raw = read_pcd(path)  # all 640 x 480 cells, NaN included
    assert len(raw) == 640 * 480
    finite = np.isfinite(raw.points).all(axis=1)
    assert 0 < finite.sum() < len(raw)
    cloud = read_points(path)
    assert len(cloud) == finite.sum() and np.isfinite(cloud.points).all()
    assert len(cloud.colors) == len(cloud)
    reference = _o3d().io.read_point_cloud(str(path), remove_nan_points=True)
    np.testing.assert_array_equal(
        np.asarray(reference.points, np.float32), cloud.points
    )
    sub = read_points(path, num_points=1024, seed=1)
    assert len(sub) == 1024 and np.isfinite(sub.points).all()


def test_ply_mesh_with_long_comments_matches_plyfile(clouds_dir):
    from plyfile import PlyData

    path = clouds_dir / "fwilliams_point-cloud-utils__bunny.ply"
    mesh = read_mesh(path)
    assert mesh.vertices.shape == (2885, 3) and mesh.faces.shape == (5766, 3)
    ply = PlyData.read(str(path))
    assert len(ply.comments) > 10
    xyz = np.stack([ply["vertex"][a] for a in "xyz"], axis=1)
    np.testing.assert_array_equal(mesh.vertices, xyz)
    np.testing.assert_array_equal(mesh.faces, np.stack(ply["face"]["vertex_indices"]))
    cloud = read_points(path, num_points=300)
    assert cloud.points.shape == (300, 3) and cloud.normals.shape == (300, 3)
    assert isinstance(read_ply(path), type(mesh))


def test_obj_teapot(clouds_dir):
    path = clouds_dir / "facebookresearch_pytorch3d__teapot.obj"
    mesh = read_mesh(path)
    assert mesh.vertices.shape == (1292, 3) and mesh.faces.shape == (2464, 3)
    first = next(ln for ln in path.read_text().splitlines() if ln.startswith("f "))
    expected = [int(t.split("/")[0]) - 1 for t in first.split()[1:]]
    np.testing.assert_array_equal(mesh.faces[0], expected)
    cloud = read_points(path)
    assert cloud.points.shape == (2048, 3)
    np.testing.assert_allclose(np.linalg.norm(cloud.normals, axis=1), 1, atol=1e-5)


@pytest.mark.parametrize(
    ("name", "count", "colors"),
    [
        ("laspy_laspy__simple.las", 1065, True),
        ("laspy_laspy__simple.laz", 1065, True),
        ("laspy_laspy__test1_4.las", 1000, False),
    ],
)
def test_las_laz(clouds_dir, name, count, colors):
    cloud = read_points(clouds_dir / name)
    assert len(cloud) == count
    assert (cloud.colors is not None) == colors
    assert {"intensity", "classification"} <= set(cloud.fields)


def test_las_and_laz_hold_the_same_points(clouds_dir):
    las = read_points(clouds_dir / "laspy_laspy__simple.las")
    laz = read_points(clouds_dir / "laspy_laspy__simple.laz")
    np.testing.assert_array_equal(las.points, laz.points)
    np.testing.assert_array_equal(las.colors, laz.colors)
    assert las.colors.max() > 0.5  # 8-bit values in 16-bit fields, scaled by 255


def test_e57_scan_with_normals(clouds_dir):
    cloud = read_points(clouds_dir / "davidcaron_pye57__testWithNormals.e57")
    assert len(cloud) == 2
    np.testing.assert_array_equal(cloud.points, [[1, 0, 0], [2, 0, 0]])
    np.testing.assert_allclose(np.linalg.norm(cloud.normals, axis=1), 1, atol=1e-5)
