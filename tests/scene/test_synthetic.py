"""A made scene with known geometry, turned and moved at random: gravity is found,
not assumed; the objects come out whole, with their heights; units do not matter."""

from __future__ import annotations

import numpy as np
import pytest

from pointnet1x1.io.axes import rotation_about_axis
from pointnet1x1.scene import segment_scene

STEP = 0.0025  # sampling of the made surfaces (metres)


def _surface(lo: np.ndarray, hi: np.ndarray, fixed: int, value: float) -> np.ndarray:
    """Points on an axis-aligned rectangle: axis ``fixed`` = ``value``."""
    free = [a for a in range(3) if a != fixed]
    axes = [np.arange(lo[a], hi[a] + 1e-9, STEP) for a in free]
    u, v = np.meshgrid(*axes, indexing="ij")
    out = np.empty((u.size, 3))
    out[:, free[0]], out[:, free[1]], out[:, fixed] = u.ravel(), v.ravel(), value
    return out


def _box(centre, size) -> np.ndarray:
    lo, hi = np.asarray(centre) - np.asarray(size) / 2, np.asarray(centre) + size / 2
    lo[2], hi[2] = 0.0, size[2]  # standing on z = 0
    faces = [_surface(lo, hi, 2, hi[2])]
    for axis in (0, 1):
        faces += [_surface(lo, hi, axis, lo[axis]), _surface(lo, hi, axis, hi[axis])]
    return np.concatenate(faces)


def _cylinder(centre, radius: float, height: float) -> np.ndarray:
    angles = np.arange(0, 2 * np.pi, STEP / radius)
    heights = np.arange(0, height, STEP)
    a, h = np.meshgrid(angles, heights, indexing="ij")
    side = np.stack(
        [centre[0] + radius * np.cos(a.ravel()), centre[1] + radius * np.sin(a.ravel()),
         h.ravel()], axis=1)  # fmt: skip
    return side


def _table_scene() -> tuple[np.ndarray, list[tuple[np.ndarray, float]]]:
    table = _surface(np.array([-0.3, -0.25, 0]), np.array([0.3, 0.25, 0]), 2, 0.0)
    box = _box(np.array([0.12, 0.08, 0]), np.array([0.1, 0.08, 0.15]))
    can = _cylinder(np.array([-0.15, -0.08]), 0.04, 0.12)
    rng = np.random.default_rng(0)
    points = np.concatenate([table, box, can])
    points += rng.normal(scale=0.0005, size=points.shape)
    return points, [(np.array([0.12, 0.08]), 0.15), (np.array([-0.15, -0.08]), 0.12)]


@pytest.mark.parametrize("scale", [1.0, 1000.0])  # metres, millimetres
def test_gravity_is_found_in_a_turned_scene(scale):
    points, objects = _table_scene()
    turn = rotation_about_axis(0.9, "x") @ rotation_about_axis(-2.3, "y")
    shift = np.array([0.4, -1.2, 2.5])
    scan = (points @ turn.T + shift) * scale
    scene = segment_scene(scan)
    up = turn @ [0.0, 0.0, 1.0]  # where z went
    assert scene.up_source == "support plane"
    assert np.degrees(np.arccos(np.clip(scene.up @ up, -1, 1))) < 1.0
    standing = [c for c in scene.clusters if c.on_support]
    assert len(standing) == 2
    distance = scene.params.plane_distance / scale
    voxel = scene.params.voxel_size / scale
    for (foot, height), cluster in zip(objects, standing, strict=True):
        # the centroid sits over the object's foot; the part of the object within
        # the plane's inlier distance went with the table, and voxel centroids pull
        # the top and the bottom in by up to half a voxel each (the plane's offset
        # moves by less than a voxel with what the band takes of the objects)
        centre = ((cluster.centroid / scale - shift) @ turn)[:2]
        assert np.linalg.norm(centre - foot) < 0.02
        low = height - distance - 2 * voxel
        assert low < cluster.height / scale < height + voxel
    # the objects are whole: every point of the box and the can is in one cluster
    assert sum(c.num_points for c in standing) > 0.95 * (scene.object_ids >= 0).sum()


def test_a_scene_without_a_plane_assumes_the_file_up_axis():
    from pointnet1x1.scene import SceneParams

    points, _ = _table_scene()
    scene = segment_scene(points, SceneParams(num_planes=0))  # no plane searched
    assert scene.planes == [] and scene.support is None
    assert scene.up_source == "assumed"
    np.testing.assert_array_equal(scene.up, [0, 0, 1])  # FILE_UP_AXIS
    # the table is not removed: table, box and can are one cluster
    assert len(scene.clusters) == 1 and not scene.clusters[0].on_support


def test_too_few_points_say_so():
    with pytest.raises(ValueError, match="at least 10 finite points, got 3 of 12"):
        segment_scene(np.concatenate([np.eye(3), np.full((9, 3), np.nan)]))
    with pytest.raises(ValueError, match=r"shape \(N, 3\+F\)"):
        segment_scene(np.zeros((10, 2)))
    from pointnet1x1.scene import SceneParams

    points, _ = _table_scene()
    with pytest.raises(ValueError, match="use a smaller voxel_size"):
        segment_scene(points, SceneParams(voxel_size=10.0))
