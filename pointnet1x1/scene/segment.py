"""Split a scan into objects: clean, downsample, planes, gravity, clusters (Open3D).

:func:`segment_scene` runs, on Open3D's own operations:

1. drop NaN / infinite points (organised clouds keep their invalid pixels as NaN);
2. ``voxel_down_sample`` on a grid of ``voxel_size`` (default 3 x the median
   nearest-neighbour spacing);
3. ``remove_statistical_outlier``;
4. RANSAC planes and the support plane, whose upward normal is gravity's opposite
   (:mod:`pointnet1x1.scene.planes`), unless ``params.up`` says where up is;
5. ``cluster_dbscan`` on the points of no plane; clusters outside the size bounds
   are dropped, the others become objects, largest first;
6. per object its centroid and oriented bounding box (in the scan's coordinates and
   units), and its height along up.

The rotation that turns the scan's up into the model's (:data:`MODEL_UP_AXIS`, z)
comes with the scene: ``scene.aligned(points)`` is what the classifier is given.

Shape:
    scene points ``(M, 3)`` (voxel resolution, scan coordinates); ids ``(M,)``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from pointnet1x1.io import PointCloud
from pointnet1x1.io.axes import (
    FILE_UP_AXIS,
    MODEL_UP_AXIS,
    rotate_points,
    rotation_between,
)
from pointnet1x1.scene.params import SceneParams, parse_up, resolve_params
from pointnet1x1.scene.planes import Plane, choose_support, find_planes

__all__ = ["Cluster", "Scene", "segment_scene"]

MIN_SCENE_POINTS = 10  # fewer finite points than this are not a scene
REST_DISTANCES = 4.0  # an object whose lowest point is this many inlier distances
# (or less) above the support plane stands on it


class Cluster(NamedTuple):
    """One object cut out of a scene.

    Attributes:
        id: Its object id (0 the largest); the ``object_id`` of its points.
        indices: Int64 array ``(K,)``, its points' indices in ``Scene.points``.
        centroid: Float64 array ``(3,)``, the mean of its points (scan coordinates).
        extent: Float64 array ``(3,)``, the sides of its oriented bounding box
            (Open3D), longest first, in the scan's units.
        height: Its extent along the up direction.
        on_support: Whether it stands on the support plane (its lowest point at
            most ``REST_DISTANCES`` inlier distances above it, its centroid over
            the plane's footprint).
    """

    id: int
    indices: np.ndarray
    centroid: np.ndarray
    extent: np.ndarray
    height: float
    on_support: bool

    @property
    def num_points(self) -> int:
        return len(self.indices)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "num_points": self.num_points,
            "centroid": [float(v) for v in self.centroid],
            "extent": [float(v) for v in self.extent],
            "height": float(self.height),
            "on_support": bool(self.on_support),
        }


@dataclass(eq=False)
class Scene:
    """A segmented scan (see :func:`segment_scene`).

    Attributes:
        points: Float32 ``(M, 3)``, the cleaned voxel points (scan coordinates).
        colors: Float32 ``(M, 3)`` RGB in ``[0, 1]``, or ``None``.
        normals: Float32 ``(M, 3)``, or ``None`` when the scan has none.
        plane_ids: Int32 ``(M,)``, each point's plane (index in ``planes``) or -1.
        object_ids: Int32 ``(M,)``, each point's object (``Cluster.id``) or -1.
        planes: The planes found, largest first.
        support: Index of the support plane in ``planes``, or ``None``.
        up: Float64 ``(3,)``, the unit up direction in scan coordinates.
        up_source: ``"support plane"``, ``"given"`` or ``"assumed"`` (no plane
            found: the file convention's up axis).
        rotation: Float64 ``(3, 3)``, turns ``up`` into the model's up axis.
        clusters: The objects, largest first.
        params: The parameters used, every derived default filled in.
        num_input_points: Points in the input; ``num_finite_points`` of them finite.
        path: The file read, or ``None``.
        timings: Seconds per stage.
    """

    points: np.ndarray
    colors: np.ndarray | None
    normals: np.ndarray | None
    plane_ids: np.ndarray
    object_ids: np.ndarray
    planes: list[Plane]
    support: int | None
    up: np.ndarray
    up_source: str
    rotation: np.ndarray
    clusters: list[Cluster]
    params: SceneParams
    num_input_points: int
    num_finite_points: int
    path: str | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def aligned(self, points: np.ndarray | None = None) -> np.ndarray:
        """``points`` (default: the scene's) turned so that up is the model's axis."""
        pts = self.points if points is None else points
        return rotate_points(np.asarray(pts, np.float64), self.rotation, triples=1)

    def object_points(self, cluster: Cluster, *, normals: bool = False) -> np.ndarray:
        """One object's points ``(K, 3)`` (``(K, 6)`` with normals), aligned z up."""
        pts = self.points[cluster.indices].astype(np.float64)
        if normals:
            if self.normals is None:
                raise ValueError("this scan has no normals")
            pts = np.concatenate([pts, self.normals[cluster.indices]], axis=1)
        return rotate_points(pts, self.rotation).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "num_input_points": self.num_input_points,
            "num_finite_points": self.num_finite_points,
            "num_scene_points": len(self.points),
            "up": [float(v) for v in self.up],
            "up_source": self.up_source,
            "model_up_axis": MODEL_UP_AXIS,
            "support_plane": self.support,
            "planes": [p.to_dict() for p in self.planes],
            "params": self.params.to_dict(),
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }


def _input(
    cloud: PointCloud | np.ndarray | str | os.PathLike[str],
) -> tuple[PointCloud, str | None]:
    if isinstance(cloud, (str, os.PathLike)):
        from pointnet1x1.io import read_points

        return read_points(cloud), os.fspath(cloud)
    if isinstance(cloud, PointCloud):
        return cloud, None
    array = np.asarray(cloud)
    if array.ndim != 2 or array.shape[1] < 3:
        raise ValueError(f"expected scene points of shape (N, 3+F), got {array.shape}")
    return PointCloud(array[:, :3].astype(np.float32)), None


def _open3d_cloud(cloud: PointCloud) -> Any:
    import open3d as o3d

    pcd = o3d.geometry.PointCloud(
        o3d.utility.Vector3dVector(cloud.points.astype(np.float64))
    )
    if cloud.colors is not None:
        pcd.colors = o3d.utility.Vector3dVector(cloud.colors.astype(np.float64))
    if cloud.normals is not None:
        pcd.normals = o3d.utility.Vector3dVector(cloud.normals.astype(np.float64))
    return pcd


def _oriented_extent(points: np.ndarray) -> np.ndarray:
    import open3d as o3d

    try:
        box = o3d.geometry.OrientedBoundingBox.create_from_points(
            o3d.utility.Vector3dVector(points), robust=True
        )
        extent = np.asarray(box.extent, dtype=np.float64)
    except RuntimeError:  # flat or degenerate points: the axis-aligned box
        extent = points.max(axis=0) - points.min(axis=0)
    return np.sort(extent)[::-1].copy()


def segment_scene(
    cloud: PointCloud | np.ndarray | str | os.PathLike[str],
    params: SceneParams | None = None,
) -> Scene:
    """Clean a scan, find its planes and gravity, and cut it into objects.

    Args:
        cloud: A :class:`~pointnet1x1.io.PointCloud`, an ``(N, 3+F)`` array (xyz
            used), or a file in any format :func:`~pointnet1x1.io.read_points` reads.
        params: :class:`SceneParams`; ``None`` fields are derived from the scan.

    Returns:
        The :class:`Scene`.

    Raises:
        ValueError: Fewer than ``MIN_SCENE_POINTS`` finite points, bad parameters.
        PointCloudFileError / FileNotFoundError: From reading ``cloud``.
    """
    timings: dict[str, float] = {}
    start = time.perf_counter()
    import open3d  # noqa: F401  (timed on its own: a second or more, once)

    timings["import"] = time.perf_counter() - start
    start = time.perf_counter()
    source, path = _input(cloud)
    where = f"{path}: " if path else ""
    finite = np.isfinite(source.points).all(axis=1)
    if finite.sum() < MIN_SCENE_POINTS:
        raise ValueError(
            f"{where}a scene needs at least {MIN_SCENE_POINTS} finite points, "
            f"got {int(finite.sum())} of {len(source)}"
        )
    clean_source = source if finite.all() else source.select(finite)
    timings["read"] = time.perf_counter() - start
    start = time.perf_counter()
    params = resolve_params(params or SceneParams(), clean_source.points)
    timings["spacing"] = time.perf_counter() - start

    start = time.perf_counter()
    pcd = _open3d_cloud(clean_source).voxel_down_sample(params.distance("voxel_size"))
    pcd, _ = pcd.remove_statistical_outlier(
        params.outlier_neighbors, params.outlier_std_ratio
    )
    points = np.asarray(pcd.points)
    if len(points) < MIN_SCENE_POINTS:
        raise ValueError(
            f"{where}only {len(points)} points are left after downsampling on a "
            f"{params.voxel_size:g} voxel grid and removing outliers; use a smaller "
            "voxel_size"
        )
    timings["clean"] = time.perf_counter() - start

    start = time.perf_counter()
    planes, plane_ids = find_planes(pcd, params)
    others = np.flatnonzero(plane_ids < 0)
    given = None if params.up is None else parse_up(params.up)
    planes, support = choose_support(
        planes, points[others], clean_source.points.astype(np.float64), params, given
    )
    if given is not None:
        up, up_source = given, "given"
    elif support is not None:
        up, up_source = planes[support].normal, "support plane"
    else:
        up, up_source = parse_up(FILE_UP_AXIS), "assumed"
    rotation = rotation_between(up, MODEL_UP_AXIS)
    timings["planes"] = time.perf_counter() - start

    start = time.perf_counter()
    clusters, object_ids = _clusters(pcd, others, params, up, planes, support)
    timings["clusters"] = time.perf_counter() - start
    colors = np.asarray(pcd.colors, np.float32) if pcd.has_colors() else None
    normals = np.asarray(pcd.normals, np.float32) if pcd.has_normals() else None
    if normals is not None:  # voxel averages of unit normals are shorter than 1
        normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    return Scene(
        points=points.astype(np.float32),
        colors=colors,
        normals=normals,
        plane_ids=plane_ids,
        object_ids=object_ids,
        planes=planes,
        support=support,
        up=np.asarray(up, np.float64),
        up_source=up_source,
        rotation=rotation,
        clusters=clusters,
        params=params,
        num_input_points=len(source),
        num_finite_points=int(finite.sum()),
        path=path,
        timings=timings,
    )


def _clusters(
    pcd: Any,
    others: np.ndarray,
    params: SceneParams,
    up: np.ndarray,
    planes: list[Plane],
    support: int | None,
) -> tuple[list[Cluster], np.ndarray]:
    """DBSCAN on the points of no plane; size bounds; boxes; ids largest first."""
    points = np.asarray(pcd.points)
    object_ids = np.full(len(points), -1, np.int32)
    if len(others) == 0:
        return [], object_ids
    labels = np.asarray(
        pcd.select_by_index(others).cluster_dbscan(
            params.distance("cluster_eps"), params.cluster_min_points
        )
    )
    found = labels >= 0
    if not found.any():
        return [], object_ids
    sizes = np.bincount(labels[found])
    keep = sizes >= params.min_cluster_points
    if params.max_cluster_points is not None:
        keep &= sizes <= params.max_cluster_points
    order = [int(k) for k in np.argsort(-sizes, kind="stable") if keep[k]]
    members = np.argsort(labels, kind="stable")  # points grouped by label
    bounds = np.concatenate([[0], np.cumsum(np.bincount(labels + 1))])
    plane = planes[support] if support is not None else None
    distance = params.distance("plane_distance")
    clusters = []
    for new_id, label in enumerate(order):
        group = members[bounds[label + 1] : bounds[label + 2]]
        indices = np.sort(others[group])
        pts = points[indices]
        heights = pts @ up
        on_support = False
        if plane is not None:
            lowest = float((pts @ plane.normal).min() + plane.offset)
            foot = (pts.mean(axis=0) - plane.centre) @ plane.axes.T
            on_support = bool(
                -distance <= lowest <= REST_DISTANCES * distance
                and (np.abs(foot) <= plane.sides / 2).all()
            )
        clusters.append(
            Cluster(
                id=new_id,
                indices=indices,
                centroid=pts.mean(axis=0),
                extent=_oriented_extent(pts),
                height=float(heights.max() - heights.min()),
                on_support=on_support,
            )
        )
        object_ids[indices] = new_id
    return clusters, object_ids
