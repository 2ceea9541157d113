"""Objects of a scene: DBSCAN clusters of what the planes leave (Open3D).

The clusters outside the size bounds are dropped; the others become objects,
largest first, with their centroid, their oriented bounding box (Open3D's, in the
scan's coordinates and units), their height along up and whether they stand on
the support plane.

Shape:
    scene points ``(M, 3)``; object ids ``(M,)``, -1 for points of no object.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from pointnet1x1.scene.params import SceneParams
from pointnet1x1.scene.planes import Plane

__all__ = ["REST_DISTANCES", "Cluster", "find_clusters"]

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


def find_clusters(
    pcd: Any,
    others: np.ndarray,
    params: SceneParams,
    up: np.ndarray,
    support: Plane | None,
) -> tuple[list[Cluster], np.ndarray]:
    """DBSCAN on the points of no plane, the size bounds, the boxes.

    Args:
        pcd: ``open3d.geometry.PointCloud`` of the scene's voxel points.
        others: Int64 array ``(K,)``, the indices of the points on no plane.
        params: Resolved scene parameters.
        up: Float64 ``(3,)``, the unit up direction.
        support: The support plane (normal up), or ``None``.

    Returns:
        ``(clusters, object_ids)``: the objects, largest first (id 0), and per
        scene point its object id or -1.
    """
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
    plane = support
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
