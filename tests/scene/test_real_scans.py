"""The scene stage on two real scans, checked against what can be known without a
model: planes fitted independently with numpy, points picked by simple rules.

- The PCL table scene (stereo camera, organised 640 x 480, NaN pixels, sensor
  coordinates with z forward and y down): a table top with one mug, a wall 2 m
  away behind it (perpendicular to the table) and clutter on its left. Seen from
  the camera (x / z, y / z) the mug covers about [0, 0.17] x [0, 0.14].
- The Open3D-ML fragment: part of a room fused from RGB-D frames, y roughly up: a
  wall with a framed picture, a lamp shade hanging about 30 cm in front of it, the
  edge of a side wall. No floor or table is in view.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pointnet1x1.io import parse_pcd, read_points
from pointnet1x1.scene import SceneParams, segment_scene


def trimmed_plane(points: np.ndarray, keep: float, rounds: int = 4):
    """A least-squares plane (numpy SVD) refitted on the points within ``keep`` of
    the previous fit: independent of RANSAC and Open3D. Returns (normal, centroid)."""
    chosen = points.astype(np.float64)
    normal = centre = None
    for _ in range(rounds):
        centre = chosen.mean(axis=0)
        normal = np.linalg.svd(chosen - centre, full_matrices=False)[2][-1]
        distance = np.abs((points - centre) @ normal)
        chosen = points[distance < keep].astype(np.float64)
    return normal, centre


def angle_degrees(a: np.ndarray, b: np.ndarray) -> float:
    """Angle between two directions (sign included)."""
    cos = float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def _table(pcl_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The table plane by trimmed least squares on the near points (z < 1.3 m:
    the table and the mug; the wall is at 2 m), its normal turned towards the
    camera, which looks down at the table from above."""
    points = read_points(pcl_path).points
    normal, centre = trimmed_plane(points[points[:, 2] < 1.3], keep=0.005)
    return (normal if -centre @ normal > 0 else -normal), centre


def _mug_rule(points: np.ndarray, up: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Points 1.5 to 15 cm above the table inside the mug's box in the image."""
    height = (points - centre) @ up
    u, v = points[:, 0] / points[:, 2], points[:, 1] / points[:, 2]
    in_box = (u > -0.02) & (u < 0.2) & (v > -0.02) & (v < 0.18)
    return in_box & (height > 0.015) & (height < 0.15)


def test_the_table_is_the_support_plane_and_its_normal_is_gravity(pcl_scene, pcl_path):
    up, centre = _table(pcl_path)
    scene = pcl_scene
    assert scene.up_source == "support plane"
    assert angle_degrees(scene.up, up) < 1.0
    table = scene.planes[scene.support]
    assert angle_degrees(table.normal, up) < 1.0
    assert abs(table.offset + centre @ table.normal) < 0.005  # the same plane
    # the largest plane in voxel points is the wall behind, perpendicular to it
    wall = max(scene.planes, key=lambda p: p.num_points)
    assert wall is not table and 80 < angle_degrees(wall.normal, up) < 100
    assert table.num_scan_points > 2 * wall.num_scan_points
    # the rotation turns up into the model's z; the table comes out level
    np.testing.assert_allclose(scene.rotation @ scene.up, [0, 0, 1], atol=1e-12)
    level = scene.aligned(scene.points[scene.plane_ids == scene.support])[:, 2]
    assert level.std() < 0.004
    # and the mug, above the table, is above it along up
    mug = read_points(pcl_path).points
    mug = mug[_mug_rule(mug, up, centre)]
    assert ((mug - centre) @ scene.up > 0).all()


def test_the_mug_is_one_cluster_standing_on_the_table(pcl_scene, pcl_path):
    up, centre = _table(pcl_path)
    scene = pcl_scene
    rule = _mug_rule(scene.points.astype(np.float64), up, centre)
    assert rule.sum() > 1000
    ids, counts = np.unique(scene.object_ids[rule], return_counts=True)
    mug_id = int(ids[np.argmax(counts)])
    assert mug_id >= 0 and counts.max() >= 0.9 * rule.sum()
    mug = scene.clusters[mug_id]
    assert mug.id == mug_id and mug.on_support
    # the cluster is the mug and nothing else: its points are in the mug's box
    points = scene.points[mug.indices].astype(np.float64)
    u, v = points[:, 0] / points[:, 2], points[:, 1] / points[:, 2]
    assert ((u > -0.02) & (u < 0.2) & (v > -0.02) & (v < 0.18)).mean() > 0.98
    # its top where the scan's mug points end: the rim, 98% of them below it (above
    # the rim, 1.5% of them float 12 to 14 cm high, past a 1 cm gap: stereo noise)
    scan = read_points(pcl_path).points.astype(np.float64)
    rim = np.percentile((scan[_mug_rule(scan, up, centre)] - centre) @ up, 98)
    top = np.percentile((points - centre) @ up, 99)
    assert abs(top - rim) < 0.01
    assert 0.08 < mug.height < 0.12  # a mug, about 10 cm tall
    assert list(mug.extent) == sorted(mug.extent, reverse=True)
    assert mug.extent[0] < 0.2
    np.testing.assert_allclose(mug.centroid, points.mean(axis=0))
    # what stands on the table: the mug (its handle may come off through the
    # stereo shadow beside it), nothing else is on the table in the camera image
    on_table = [c for c in scene.clusters if c.on_support]
    assert 1 <= len(on_table) <= 2 and mug in on_table


def test_nan_and_organised_clouds(pcl_scene, pcl_path):
    raw = parse_pcd(pcl_path.read_bytes())  # organised: NaN pixels kept
    organised = raw.points.reshape(480, 640, 3).copy()
    nan_rows = np.flatnonzero(~np.isfinite(raw.points).all(axis=1))
    assert len(nan_rows) == 307200 - 209280
    organised.reshape(-1, 3)[nan_rows[:100]] = np.inf  # infinities too
    scene = segment_scene(organised)
    assert scene.num_input_points == 307200 and scene.num_finite_points == 209280
    assert np.isfinite(scene.points).all()
    # the same points in another memory layout: equal up to BLAS rounding
    np.testing.assert_allclose(scene.up, pcl_scene.up, atol=1e-4)
    assert len(scene.clusters) == len(pcl_scene.clusters)
    # a PointCloud with NaN points (and colours) goes through as well
    from_cloud = segment_scene(raw)
    assert from_cloud.colors is not None and np.isfinite(from_cloud.colors).all()
    np.testing.assert_allclose(from_cloud.up, pcl_scene.up, atol=1e-4)


def _wall(
    fragment_path: Path, keep: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The wall by trimmed least squares on all points (it holds most of them),
    its normal turned to the side where most of the off-wall points are. The fused
    wall is not flat (its left and right halves differ by 8 degrees), so the band
    ``keep`` must be the scene's inlier distance for the two fits to be comparable
    (with 1 and 2 cm bands the fit turns by 2.5 and 2 degrees)."""
    points = read_points(fragment_path).points
    normal, centre = trimmed_plane(points, keep=keep)
    height = (points - centre) @ normal
    if (height > 0.1).sum() < (height < -0.1).sum():
        normal = -normal
    return normal, centre, points


def test_the_fragment_wall_and_the_lamp_in_front_of_it(fragment_scene, fragment_path):
    scene = fragment_scene
    front, centre, _ = _wall(fragment_path, scene.params.plane_distance)
    assert angle_degrees(scene.planes[0].normal, front) < 1.0
    # the lamp shade: voxel points more than 15 cm in front of the wall, in the
    # shade's box seen face on (x 1.3 to 1.7 m, y 1.7 to 2.1 m; the ledge at the top
    # and the side wall stick out of the wall too)
    height = (scene.points - centre) @ front
    x, y = scene.points[:, 0], scene.points[:, 1]
    lamp = (height > 0.15) & (x > 1.3) & (x < 1.7) & (y > 1.7) & (y < 2.1)
    assert lamp.sum() > 100
    ids, counts = np.unique(scene.object_ids[lamp], return_counts=True)
    lamp_id = int(ids[np.argmax(counts)])
    assert lamp_id >= 0 and counts.max() >= 0.9 * lamp.sum()
    # one cluster, separate from the wall: none of its points is near the wall
    lamp_heights = height[scene.clusters[lamp_id].indices]
    assert lamp_heights.min() > 0.05
    # no floor in view: the wall is taken as the support plane (pass up= instead)
    assert scene.up_source == "support plane"
    assert angle_degrees(scene.up, front) < 1.0


def test_a_given_up_direction_is_used(fragment_path):
    scene = segment_scene(fragment_path, SceneParams(up="y"))
    assert scene.up_source == "given"
    np.testing.assert_allclose(scene.up, [0, 1, 0])
    np.testing.assert_allclose(scene.rotation @ [0, 1, 0], [0, 0, 1], atol=1e-12)
    # no plane of this scan is level with y up: no support, nothing stands on one
    assert scene.support is None
    assert scene.clusters and not any(c.on_support for c in scene.clusters)
