import numpy as np
import pytest

from pointnet1x1.io import PointCloud, PointCloudFileError, sample_surface, subsample

SQUARE = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], dtype=np.float64)


def test_sample_surface_shapes_dtype_and_seed():
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    points, normals = sample_surface(SQUARE, faces, 100, seed=3)
    assert points.shape == normals.shape == (100, 3)
    assert points.dtype == normals.dtype == np.float32
    np.testing.assert_allclose(np.abs(normals[:, 2]), 1.0)
    again, _ = sample_surface(SQUARE, faces, 100, seed=3)
    other, _ = sample_surface(SQUARE, faces, 100, seed=4)
    np.testing.assert_array_equal(points, again)
    assert not np.array_equal(points, other)
    assert np.all((points[:, :2] >= 0) & (points[:, :2] <= 1)) and np.all(
        points[:, 2] == 0
    )


def test_sample_surface_is_area_weighted():
    # triangle 0 has area 0.5, triangle 1 (same plane, far away) has area 4.5
    vertices = np.array(
        [[0, 0, 0], [1, 0, 0], [0, 1, 0], [10, 0, 0], [13, 0, 0], [10, 3, 0]], float
    )
    points, _ = sample_surface(vertices, np.array([[0, 1, 2], [3, 4, 5]]), 20000)
    share = np.mean(points[:, 0] >= 10)
    assert abs(share - 0.9) < 0.01
    # uniform inside a triangle: mean is the centroid
    np.testing.assert_allclose(
        points[points[:, 0] >= 10].mean(0), [11, 1, 0], atol=0.03
    )


def test_sample_surface_skips_degenerate_faces():
    vertices = np.vstack([SQUARE, [[5, 5, 5]]])
    faces = np.array([[0, 1, 2], [4, 4, 4], [0, 0, 1]])
    points, normals = sample_surface(vertices, faces, 500)
    assert np.all(np.isfinite(normals)) and np.all(points[:, 2] == 0)


def test_sample_surface_errors():
    with pytest.raises(PointCloudFileError, match="mesh has no faces"):
        sample_surface(SQUARE, np.empty((0, 3), np.int64), 10)
    with pytest.raises(PointCloudFileError, match="zero area"):
        sample_surface(SQUARE, np.array([[0, 0, 1]]), 10)
    with pytest.raises(ValueError, match=r"face indices must lie in \[0, 4\)"):
        sample_surface(SQUARE, np.array([[0, 1, 9]]), 10)
    with pytest.raises(ValueError, match="num_points must be positive"):
        sample_surface(SQUARE, np.array([[0, 1, 2]]), 0)


def test_subsample_reproducible_with_and_without_replacement():
    cloud = PointCloud(np.arange(30, dtype=np.float32).reshape(10, 3))
    small = subsample(cloud, 4, seed=1)
    assert len(small) == 4 and len(np.unique(small.points[:, 0])) == 4
    np.testing.assert_array_equal(small.points, subsample(cloud, 4, seed=1).points)
    big = subsample(cloud, 25, seed=1)
    assert len(big) == 25 and set(big.points[:, 0]) == set(cloud.points[:, 0])
