"""Turning meshes and large clouds into fixed-size point sets, seeded and vectorised."""

from __future__ import annotations

import numpy as np

from pointnet1x1.io.cloud import PointCloud, PointCloudFileError

Seed = int | np.random.Generator | None


def sample_surface(
    vertices: np.ndarray, faces: np.ndarray, num_points: int, seed: Seed = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Sample points uniformly on a triangle mesh surface (area-weighted).

    Each point picks a face with probability proportional to its area, then a
    uniform position inside it (square-root barycentric trick); its normal is the
    face normal. Zero-area and non-finite faces are never picked. The same
    ``seed`` gives the same points.

    Args:
        vertices: Array of shape ``(V, 3)`` giving vertex positions.
        faces: Integer array of shape ``(F, 3)`` giving triangle vertex indices.
        num_points: Number of points ``P`` to draw (> 0).
        seed: Seed or ``np.random.Generator``.

    Returns:
        ``(points, normals)``, float32 arrays of shape ``(P, 3)`` giving positions
        and unit face normals.

    Raises:
        PointCloudFileError: The mesh has no faces or only zero-area faces.
        ValueError: Bad shapes, indices out of range, ``num_points <= 0``, or
            vertices beyond the float32 range.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"vertices must have shape (V, 3), got {vertices.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.dtype.kind not in "iu":
        raise ValueError(
            f"faces must be an integer array of shape (F, 3), got {faces.shape} "
            f"{faces.dtype}"
        )
    if num_points <= 0:
        raise ValueError(f"num_points must be positive, got {num_points}")
    if len(faces) == 0:
        raise PointCloudFileError(
            "mesh has no faces, cannot sample its surface (read it as a point cloud "
            "instead)"
        )
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise ValueError(
            f"face indices must lie in [0, {len(vertices)}), got "
            f"[{faces.min()}, {faces.max()}]"
        )
    a, b, c = vertices[faces[:, 0]], vertices[faces[:, 1]], vertices[faces[:, 2]]
    cross = np.cross(b - a, c - a)  # (F, 3), norm = 2 * area
    area = np.sqrt(np.einsum("ij,ij->i", cross, cross))
    area[~np.isfinite(area)] = 0.0
    cumulative = np.cumsum(area)
    total = cumulative[-1]
    if not total > 0:
        raise PointCloudFileError(
            f"all {len(faces)} faces of the mesh have zero area, nothing to sample"
        )
    rng = np.random.default_rng(seed)
    # empty intervals of zero-area faces are never hit with side="right"
    picked = np.searchsorted(cumulative, rng.random(num_points) * total, side="right")
    picked = np.minimum(picked, len(faces) - 1)
    r1 = np.sqrt(rng.random((num_points, 1)))
    r2 = rng.random((num_points, 1))
    fa, fb, fc = a[picked], b[picked], c[picked]
    points = (1.0 - r1) * fa + r1 * (1.0 - r2) * fb + r1 * r2 * fc
    normals = cross[picked] / area[picked, None]
    points32 = points.astype(np.float32)
    if not np.isfinite(points32).all():
        raise ValueError(
            "vertices beyond the float32 range (+-3.4e38) sample to infinite points"
        )
    return points32, normals.astype(np.float32)


def subsample(cloud: PointCloud, num_points: int, seed: Seed = 0) -> PointCloud:
    """Pick ``num_points`` points of ``cloud`` reproducibly.

    Without replacement when the cloud has enough points (order kept), with
    replacement (every point at least once, then random repeats) otherwise.

    Args:
        cloud: The cloud to sample from (at least one point).
        num_points: Number of points wanted (> 0).
        seed: Seed or ``np.random.Generator``.

    Returns:
        A :class:`PointCloud` of exactly ``num_points`` points.
    """
    if num_points <= 0:
        raise ValueError(f"num_points must be positive, got {num_points}")
    n = len(cloud)
    if n == 0:
        raise PointCloudFileError("cloud has no points to sample from")
    rng = np.random.default_rng(seed)
    if num_points <= n:
        index = np.sort(rng.choice(n, size=num_points, replace=False))
    else:
        extra = rng.integers(0, n, size=num_points - n)
        index = np.concatenate([rng.permutation(n), extra])
    return cloud.select(index)
