"""Polygon helpers shared by the mesh readers: fans and uniform face tables."""

from __future__ import annotations

import numpy as np


def fan_triangulate(polygons: np.ndarray) -> np.ndarray:
    """Triangulate ``(F, k)`` polygons as fans ``(v0, vi, vi+1)`` -> ``(F*(k-2), 3)``."""
    k = polygons.shape[1]
    if k == 3:
        return polygons
    tris = np.empty((len(polygons), k - 2, 3), dtype=polygons.dtype)
    tris[:, :, 0] = polygons[:, :1]
    tris[:, :, 1] = polygons[:, 1:-1]
    tris[:, :, 2] = polygons[:, 2:]
    return tris.reshape(-1, 3)


def uniform_faces(rest: np.ndarray, num_faces: int) -> np.ndarray | None:
    """Faces from a flat number stream ``k i1 .. ik k i1 .. ik ...`` in one reshape.

    Returns int64 triangles when all ``num_faces`` faces have the same size
    ``k >= 3`` and nothing else (no colours), else None (the caller's slow path).
    """
    if num_faces == 0:
        return np.empty((0, 3), dtype=np.int64)
    if len(rest) % num_faces:
        return None
    width = len(rest) // num_faces
    table = rest.reshape(num_faces, width)
    k = width - 1
    if k < 3 or not np.all(table[:, 0] == k):
        return None
    return fan_triangulate(table[:, 1:].astype(np.int64, copy=False))
