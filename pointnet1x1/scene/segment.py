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
from typing import Any

import numpy as np

from pointnet1x1.io import PointCloud
from pointnet1x1.io.axes import (
    FILE_UP_AXIS,
    MODEL_UP_AXIS,
    rotate_points,
    rotation_between,
)
from pointnet1x1.scene.clusters import Cluster, find_clusters
from pointnet1x1.scene.params import SceneParams, parse_up, resolve_params
from pointnet1x1.scene.planes import Plane, choose_support, find_planes

__all__ = ["Scene", "segment_scene"]

MIN_SCENE_POINTS = 10  # fewer finite points than this are not a scene


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
    if array.ndim == 3 and array.shape[2] >= 3:  # organised (H, W, 3+F), as captured
        array = array.reshape(-1, array.shape[2])
    if array.ndim != 2 or array.shape[1] < 3:
        raise ValueError(
            f"expected scene points of shape (N, 3+F) or organised (H, W, 3+F), "
            f"got {array.shape}"
        )
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


def segment_scene(
    cloud: PointCloud | np.ndarray | str | os.PathLike[str],
    params: SceneParams | None = None,
) -> Scene:
    """Clean a scan, find its planes and gravity, and cut it into objects.

    Args:
        cloud: A :class:`~pointnet1x1.io.PointCloud`, an ``(N, 3+F)`` array or an
            organised ``(H, W, 3+F)`` one (xyz used; NaN / infinite points are
            dropped), or a file in any format :func:`~pointnet1x1.io.read_points`
            reads.
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
    support_plane = planes[support] if support is not None else None
    clusters, object_ids = find_clusters(pcd, others, params, up, support_plane)
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
