"""Planes of a scan (RANSAC, Open3D) and the support plane that gives gravity.

The planes are found one after another with Open3D's ``segment_plane`` on what the
previous ones left; a plane parallel to and touching an earlier one (one wall,
slightly bent, split in two) is merged into it.

Which plane gives gravity: the **support plane**, the largest plane that something
stands on. "Largest" counts the scan's own points on the plane (full resolution,
within the inlier distance and the footprint), not the voxel points: a sensor
measures the surface it looks at most densely. In the PCL table scene the wall
behind the table holds the most voxel points (33,033 of 71,097 at a 3 mm voxel)
but less than half as many of the scan's points as the table (which the stereo
camera sees from 0.8 m instead of 2 m). A point stands on a plane when it lies
above it by more than the inlier distance and at most the support height, and its
foot falls inside the plane's footprint (the rectangle of its inliers along their
principal axes, 1st to 99th percentile); a plane carries something when at least
``min_cluster_points`` points stand on it. The up direction is the support plane's
normal turned to the side with more standing points (every plane's normal is
turned so). When no plane carries anything, the largest plane is used, its normal
turned towards the other points (or, with none, towards the origin: the sensor of
a scan in sensor coordinates).

Shape:
    points ``(M, 3)``; plane ids ``(M,)``, -1 for points on no plane.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

__all__ = ["Plane", "choose_support", "find_planes", "standing_on"]

MERGE_COS = float(np.cos(np.radians(10.0)))  # planes within 10 degrees may merge
MERGE_DISTANCES = 3.0  # ... when their points are within 3 inlier distances


class Plane(NamedTuple):
    """One plane of a scene, ``normal @ p + offset == 0``.

    Attributes:
        normal: Float64 array of shape ``(3,)``, unit normal (for the support
            plane, pointing up; for the others, as RANSAC gave it).
        offset: The plane's signed offset.
        num_points: Its inliers at the voxel resolution.
        centre: Float64 array of shape ``(3,)``, the centre of its footprint.
        axes: Float64 array of shape ``(2, 3)``, the footprint's directions.
        sides: Float64 array of shape ``(2,)``, the footprint's sides, longer first.
        standing: Points standing on it (see the module docstring).
        num_scan_points: The scan's points (full resolution) on it.
    """

    normal: np.ndarray
    offset: float
    num_points: int
    centre: np.ndarray
    axes: np.ndarray
    sides: np.ndarray
    standing: int = 0
    num_scan_points: int = 0

    def flipped(self) -> Plane:
        return self._replace(normal=-self.normal, offset=-self.offset)

    def to_dict(self) -> dict[str, Any]:
        return {
            "normal": [float(v) for v in self.normal],
            "offset": float(self.offset),
            "num_points": int(self.num_points),
            "centre": [float(v) for v in self.centre],
            "sides": [float(v) for v in self.sides],
            "standing": int(self.standing),
            "num_scan_points": int(self.num_scan_points),
        }


def _footprint(
    points: np.ndarray, normal: np.ndarray, offset: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre, principal axes ``(2, 3)`` and sides of the inliers' rectangle."""
    foot = points - np.outer(points @ normal + offset, normal)  # onto the plane
    mean = foot.mean(axis=0)
    # the two largest principal directions of the projected points lie in the plane
    _, _, vt = np.linalg.svd(foot - mean, full_matrices=False)
    axes = vt[:2]
    coords = (foot - mean) @ axes.T  # (K, 2)
    low, high = np.percentile(coords, [1.0, 99.0], axis=0)
    centre = mean + ((low + high) / 2) @ axes
    return centre, axes, high - low


def _fit(model: np.ndarray) -> tuple[np.ndarray, float]:
    normal = np.asarray(model[:3], dtype=np.float64)
    norm = float(np.linalg.norm(normal))
    return normal / norm, float(model[3]) / norm


def find_planes(cloud: Any, params: Any) -> tuple[list[Plane], np.ndarray]:
    """Up to ``params.num_planes`` planes of an Open3D cloud, largest first.

    Args:
        cloud: ``open3d.geometry.PointCloud`` of the cleaned voxel points.
        params: Resolved :class:`~pointnet1x1.scene.params.SceneParams`.

    Returns:
        ``(planes, plane_ids)``: the planes (``standing`` still 0) and, for every
        point, the index of its plane or -1.
    """
    import open3d as o3d

    points = np.asarray(cloud.points)
    ids = np.full(len(points), -1, np.int32)
    remaining = np.arange(len(points))
    smallest = max(3, int(np.ceil(params.min_plane_fraction * len(points))))
    o3d.utility.random.seed(int(params.seed))
    planes: list[Plane] = []
    for _ in range(params.num_planes):
        if len(remaining) < smallest:
            break
        model, inliers = cloud.select_by_index(remaining).segment_plane(
            params.plane_distance, 3, params.plane_iterations
        )
        inliers = np.asarray(inliers, dtype=np.int64)
        if len(inliers) < smallest:
            break
        members = remaining[inliers]
        remaining = np.delete(remaining, inliers)
        normal, offset = _fit(model)
        target = _same_surface(planes, points[members], normal, params)
        if target is None:
            ids[members] = len(planes)
            planes.append(_plane(points[members], normal, offset))
        else:  # the same surface again: refit its footprint with all its points
            ids[members] = target
            merged = points[ids == target]
            old = planes[target]
            planes[target] = _plane(merged, old.normal, _offset(merged, old.normal))
    order = np.argsort([-p.num_points for p in planes], kind="stable")
    rank = np.empty(len(planes), np.int32)
    rank[order] = np.arange(len(planes), dtype=np.int32)
    ids[ids >= 0] = rank[ids[ids >= 0]]
    return [planes[i] for i in order], ids


def _plane(points: np.ndarray, normal: np.ndarray, offset: float) -> Plane:
    centre, axes, sides = _footprint(points, normal, offset)
    return Plane(normal, offset, len(points), centre, axes, sides)


def _offset(points: np.ndarray, normal: np.ndarray) -> float:
    return float(-np.median(points @ normal))


def _same_surface(
    planes: list[Plane], points: np.ndarray, normal: np.ndarray, params: Any
) -> int | None:
    """The earlier plane these inliers continue (parallel, within reach), if any."""
    for i, plane in enumerate(planes):
        if abs(float(normal @ plane.normal)) < MERGE_COS:
            continue
        gap = np.abs(points @ plane.normal + plane.offset)
        if float(np.median(gap)) <= MERGE_DISTANCES * params.plane_distance:
            return i
    return None


def standing_on(
    plane: Plane, points: np.ndarray, low: float, high: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the points standing above and below ``plane`` (see module docstring).

    Args:
        plane: The plane.
        points: Array of shape ``(K, 3)``, the candidates.
        low: Heights up to this are the plane itself (its inlier distance).
        high: The support height; ``None``: half the footprint's shorter side.
    """
    high = float(plane.sides.min()) / 2 if high is None else high
    height = points @ plane.normal + plane.offset
    inside = _inside(plane, points)
    above = inside & (height > low) & (height <= high)
    below = inside & (height < -low) & (height >= -high)
    return above, below


def _inside(plane: Plane, points: np.ndarray) -> np.ndarray:
    coords = (points - plane.centre) @ plane.axes.T  # (K, 2) in the footprint
    return (np.abs(coords) <= plane.sides / 2).all(axis=1)


def choose_support(
    planes: list[Plane],
    others: np.ndarray,
    scan: np.ndarray,
    params: Any,
    up: np.ndarray | None = None,
) -> tuple[list[Plane], int | None]:
    """Count what stands on every plane, pick the support plane, turn normals up.

    Args:
        planes: From :func:`find_planes`.
        others: Array of shape ``(K, 3)``, the voxel points on no plane.
        scan: Array of shape ``(N, 3)``, the scan's finite points (full resolution).
        params: Resolved scene parameters (``plane_distance``, ``support_height``,
            ``min_cluster_points``).
        up: The up direction when it is known: the support plane is then the
            largest plane within 10 degrees of horizontal (its normal turned up),
            or none.

    Returns:
        ``(planes, support)``: the planes with ``standing`` and ``num_scan_points``
        counted and their normals turned to the side more points stand on, and the
        support plane's index, or ``None`` when there is no plane.
    """
    counted = []
    for plane in planes:
        above, below = standing_on(
            plane, others, params.plane_distance, params.support_height
        )
        n_above, n_below = int(above.sum()), int(below.sum())
        plane = plane if n_above >= n_below else plane.flipped()  # where things stand
        near = scan[np.abs(scan @ plane.normal + plane.offset) <= params.plane_distance]
        on_plane = int(_inside(plane, near).sum())  # the footprint test on few points
        counted.append(
            plane._replace(standing=max(n_above, n_below), num_scan_points=on_plane)
        )
    if not counted:
        return counted, None
    size = [p.num_scan_points for p in counted]
    if up is not None:
        level = [i for i, p in enumerate(counted) if abs(p.normal @ up) >= MERGE_COS]
        if not level:
            return counted, None
        support = max(level, key=lambda i: (size[i], -i))
        if counted[support].normal @ up < 0:
            counted[support] = counted[support].flipped()
        return counted, support
    carrying = [
        i for i, p in enumerate(counted) if p.standing >= params.min_cluster_points
    ]
    support = max(carrying or range(len(counted)), key=lambda i: (size[i], -i))
    plane = counted[support]
    if plane.standing == 0:  # nothing stands anywhere: towards the other points
        towards = others.mean(axis=0) if len(others) else np.zeros(3)
        if float(towards @ plane.normal + plane.offset) < 0:
            counted[support] = plane.flipped()
    return counted, support
