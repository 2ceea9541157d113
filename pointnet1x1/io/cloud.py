"""The data types of :mod:`pointnet1x1.io`: point clouds, meshes and the file error.

Per-sample arrays are points-major, the shared convention of the package:
``points`` is ``(N, 3)`` float32 and every per-point attribute is ``(N, ...)``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from pointnet1x1.io.errors import InputFileError

PathLike = str | os.PathLike[str]


class PointCloudFileError(InputFileError):
    """A point-cloud or mesh file that cannot be read (or written) correctly.

    The message is one line that names the file and the problem, e.g.
    ``"cloud.ply: truncated binary body: header declares 1000 vertices, ..."``;
    the name is escaped (:func:`~pointnet1x1.io.errors.display_path`) so that the
    line stays one line. An :class:`~pointnet1x1.io.errors.InputFileError`, hence
    a ``ValueError``.

    Args:
        problem: What is wrong, with the offending value and the fix when known.
        path: The file concerned; prefixed to the message when given.
    """


class Mesh(NamedTuple):
    """A triangle mesh.

    Attributes:
        vertices: Array of shape ``(V, 3)`` (float64 or float32) giving positions.
        faces: Int64 array of shape ``(F, 3)`` giving vertex indices of triangles
            (polygons are triangulated as fans when read).
    """

    vertices: np.ndarray
    faces: np.ndarray


@dataclass(frozen=True, eq=False)
class PointCloud:
    """A point cloud with optional per-point attributes.

    Attributes:
        points: Float32 array of shape ``(N, 3)`` giving xyz positions.
        normals: Optional float32 array of shape ``(N, 3)`` giving normals.
        colors: Optional float32 array of shape ``(N, 3)`` giving RGB in ``[0, 1]``.
        fields: Extra per-point fields by name (intensity, curvature, alpha,
            classification, ...), each an array of shape ``(N,)`` or ``(N, K)``.
    """

    points: np.ndarray
    normals: np.ndarray | None = None
    colors: np.ndarray | None = None
    fields: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        points = np.asarray(self.points)
        if points.ndim != 2 or points.shape[1] != 3:
            raise ValueError(f"points must have shape (N, 3), got {points.shape}")
        with np.errstate(over="ignore"):  # beyond float32 -> inf, refused by readers
            points = np.ascontiguousarray(points, np.float32)
        object.__setattr__(self, "points", points)
        n = len(points)
        for name in ("normals", "colors"):
            value = getattr(self, name)
            if value is None:
                continue
            with np.errstate(over="ignore"):
                value = np.ascontiguousarray(value, np.float32)
            if value.shape != (n, 3):
                raise ValueError(f"{name} must have shape ({n}, 3), got {value.shape}")
            object.__setattr__(self, name, value)
        for key, value in self.fields.items():
            if len(value) != n:
                raise ValueError(f"field {key!r} has {len(value)} rows, expected {n}")

    def __len__(self) -> int:
        return len(self.points)

    def __repr__(self) -> str:
        extras = [k for k in ("normals", "colors") if getattr(self, k) is not None]
        extras += list(self.fields)
        return f"PointCloud(num_points={len(self)}, extras={extras})"

    def select(self, index: np.ndarray) -> PointCloud:
        """Return the cloud restricted to ``index`` (int indices or a bool mask)."""
        return PointCloud(
            self.points[index],
            None if self.normals is None else self.normals[index],
            None if self.colors is None else self.colors[index],
            {k: v[index] for k, v in self.fields.items()},
        )

    def to_array(self, *, normals: bool = False, colors: bool = False) -> np.ndarray:
        """Stack points and the requested attributes into an ``(N, 3+F)`` array."""
        parts = [self.points]
        for name, wanted in (("normals", normals), ("colors", colors)):
            value = getattr(self, name)
            if wanted and value is None:
                raise ValueError(f"this cloud has no {name}")
            if wanted:
                parts.append(value)
        return np.concatenate(parts, axis=1) if len(parts) > 1 else self.points
