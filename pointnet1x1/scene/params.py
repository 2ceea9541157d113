"""The parameters of the scene stage, each with a default in the scan's own units.

A field left ``None`` is derived from the scan by :func:`resolve_params`: the voxel
size from the median nearest-neighbour spacing of the points, and every distance
after it from the voxel size, so the same defaults work on a table top scanned in
metres at 1 mm spacing and on a room fused at 7 mm spacing (or on a scan in
millimetres). Counts and ratios have plain defaults. The resolved parameters are
reported with every scene (``Scene.params``), so a run can be repeated exactly.

Shape:
    points ``(N, 3)`` in the scan's units.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["SceneParams", "median_spacing", "parse_up", "resolve_params"]

VOXEL_PER_SPACING = 3.0  # default voxel edge, in median nearest-neighbour spacings
PLANE_DISTANCE_PER_VOXEL = 2.0  # default RANSAC inlier distance, in voxels
CLUSTER_EPS_PER_VOXEL = 3.0  # default DBSCAN radius, in voxels
SPACING_SAMPLE = 5000  # points whose nearest neighbour gives the spacing


@dataclass(frozen=True)
class SceneParams:
    """How a scan is cleaned and split into objects (``None``: derived from the scan).

    Distances are in the scan's own units (metres for most scanners).
    """

    # edge of the voxel grid the scan is downsampled on; default 3 x the median
    # nearest-neighbour spacing of the scan's points
    voxel_size: float | None = None
    # statistical outlier removal: neighbours looked at per point, and the number of
    # standard deviations of the mean neighbour distance beyond which a point goes
    outlier_neighbors: int = 20
    outlier_std_ratio: float = 2.0
    # RANSAC plane fit: inlier distance (default 2 voxels), iterations per plane
    plane_distance: float | None = None
    plane_iterations: int = 1000
    # at most this many planes are found and removed; the search stops at the
    # first plane holding less than min_plane_fraction of the cleaned points (a
    # face of a box on a table holds about 5% of a table-top scan: it must stay)
    num_planes: int = 3
    min_plane_fraction: float = 0.1
    # how far above a plane a point counts as standing on it when the support
    # plane (the one gravity comes from) is chosen; default half the shorter side
    # of each plane's footprint
    support_height: float | None = None
    # DBSCAN on what the planes leave: neighbourhood radius (default 3 voxels) and
    # neighbours a core point needs
    cluster_eps: float | None = None
    cluster_min_points: int = 10
    # clusters with fewer (more) points than this, at the voxel resolution, are
    # not objects; None: no upper bound
    min_cluster_points: int = 50
    max_cluster_points: int | None = None
    # the scan's up direction when it is known ("x", "-y", "+z" or a 3-vector in
    # scan coordinates); None: found from the support plane
    up: str | tuple[float, float, float] | None = None
    # seed of RANSAC's random sampling (Open3D's generator), for repeatable scenes
    seed: int = 0

    def __post_init__(self) -> None:
        for name in (
            "voxel_size",
            "plane_distance",
            "support_height",
            "cluster_eps",
            "outlier_std_ratio",
        ):
            value = getattr(self, name)
            if value is not None and not (np.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        for name in (
            "outlier_neighbors",
            "plane_iterations",
            "cluster_min_points",
            "min_cluster_points",
        ):
            if int(getattr(self, name)) < 1:
                raise ValueError(
                    f"{name} must be at least 1, got {getattr(self, name)}"
                )
        if self.num_planes < 0:
            raise ValueError(f"num_planes must be 0 or more, got {self.num_planes}")
        if not 0 < self.min_plane_fraction <= 1:
            raise ValueError(
                f"min_plane_fraction must be in (0, 1], got {self.min_plane_fraction}"
            )
        low, high = self.min_cluster_points, self.max_cluster_points
        if high is not None and high < low:
            raise ValueError(
                f"max_cluster_points ({high}) is below min_cluster_points ({low})"
            )
        if self.up is not None:
            parse_up(self.up)

    def distance(self, name: str) -> float:
        """A distance parameter of resolved parameters (see :func:`resolve_params`)."""
        value = getattr(self, name)
        if value is None:
            raise ValueError(f"{name} is not resolved yet: call resolve_params first")
        return float(value)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        if isinstance(self.up, tuple):
            out["up"] = [float(v) for v in self.up]
        return out


def parse_up(up: str | tuple[float, float, float] | Any) -> np.ndarray:
    """A unit up vector from ``"z"``, ``"-y"``, ``"+x"`` or three numbers."""
    if isinstance(up, str):
        text = up.strip().lower()
        sign = -1.0 if text.startswith("-") else 1.0
        axis = text.lstrip("+-")
        if axis not in ("x", "y", "z"):
            raise ValueError(
                f"up must be an axis (x, y, z, -x, -y, -z) or three numbers, got {up!r}"
            )
        return sign * np.eye(3)["xyz".index(axis)]
    vector = np.asarray(up, dtype=np.float64).reshape(-1)
    if vector.shape != (3,) or not np.isfinite(vector).all() or not vector.any():
        raise ValueError(f"up must be a non-zero 3-vector or an axis, got {up!r}")
    return vector / np.linalg.norm(vector)


def median_spacing(points: np.ndarray, seed: int = 0) -> float:
    """Median distance from a point to its nearest neighbour (over a sample).

    Up to :data:`SPACING_SAMPLE` points, drawn with ``seed``, are looked up among
    all the points with Open3D's nearest-neighbour search. Duplicated points (zero
    distance) are left out, so a scan saved twice over gives its real spacing.
    """
    import open3d.core as o3c

    points = np.ascontiguousarray(points, dtype=np.float64)
    if len(points) < 2:
        raise ValueError(f"a spacing needs at least 2 points, got {len(points)}")
    rng = np.random.default_rng(seed)
    sample = points
    if len(points) > SPACING_SAMPLE:
        sample = points[rng.choice(len(points), SPACING_SAMPLE, replace=False)]
    search = o3c.nns.NearestNeighborSearch(o3c.Tensor.from_numpy(points))
    search.knn_index()
    k = min(len(points), 4)  # the point itself, and duplicates of it
    _, dist2 = search.knn_search(o3c.Tensor.from_numpy(np.ascontiguousarray(sample)), k)
    dist = np.sqrt(dist2.numpy())
    nearest = np.where(dist > 0, dist, np.inf).min(axis=1)
    nearest = nearest[np.isfinite(nearest)]
    if not len(nearest):
        raise ValueError("every point is a duplicate: no spacing to derive from")
    return float(np.median(nearest))


def resolve_params(params: SceneParams, points: np.ndarray) -> SceneParams:
    """``params`` with every ``None`` distance filled in from ``points``.

    ``support_height`` stays ``None`` (it is derived per plane, from its footprint).
    """
    voxel = params.voxel_size
    if voxel is None:
        voxel = VOXEL_PER_SPACING * median_spacing(points, params.seed)
    return dataclasses.replace(
        params,
        voxel_size=float(voxel),
        plane_distance=float(params.plane_distance or PLANE_DISTANCE_PER_VOXEL * voxel),
        cluster_eps=float(params.cluster_eps or CLUSTER_EPS_PER_VOXEL * voxel),
    )
