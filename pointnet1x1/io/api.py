"""``read_points`` / ``read_mesh`` / ``write_points``: dispatch on the file extension.

Third-party readers (plyfile, laspy, pye57) are imported on first use of their
format; nothing here imports open3d, torch or torch_geometric.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pointnet1x1.io.cloud import (
    Mesh,
    PathLike,
    PointCloud,
    PointCloudFileError,
    check_file,
)
from pointnet1x1.io.sampling import Seed, sample_surface, subsample

DEFAULT_MESH_POINTS = 2048

# extension -> (module, function); readers return a Mesh or a PointCloud
_TEXT = ("pointnet1x1.io.text", "read_text")
_READERS: dict[str, tuple[str, str]] = {
    ".off": ("pointnet1x1.io.off", "read_off"),
    ".obj": ("pointnet1x1.io.obj", "read_obj"),
    ".stl": ("pointnet1x1.io.stl", "read_stl"),
    ".ply": ("pointnet1x1.io.ply", "read_ply"),
    ".pcd": ("pointnet1x1.io.pcd", "read_pcd"),
    ".npy": ("pointnet1x1.io.numpy_io", "read_numpy"),
    ".npz": ("pointnet1x1.io.numpy_io", "read_numpy"),
    ".las": ("pointnet1x1.io.lidar", "read_las"),
    ".laz": ("pointnet1x1.io.lidar", "read_las"),
    ".e57": ("pointnet1x1.io.lidar", "read_e57"),
    **dict.fromkeys((".xyz", ".xyzn", ".xyzrgb", ".pts", ".txt", ".csv"), _TEXT),
}
_MESH_EXTENSIONS = (".obj", ".off", ".ply", ".stl")
_WRITERS: dict[str, tuple[str, str]] = {
    ".ply": ("pointnet1x1.io.ply", "write_ply"),
    ".pcd": ("pointnet1x1.io.pcd", "write_pcd"),
    ".npy": ("pointnet1x1.io.numpy_io", "write_numpy"),
    ".npz": ("pointnet1x1.io.numpy_io", "write_numpy"),
    **dict.fromkeys(
        (".xyz", ".xyzn", ".xyzrgb"), ("pointnet1x1.io.text", "write_text")
    ),
}


def _lookup(table: dict[str, tuple[str, str]], name: str) -> Callable[..., Any]:
    module, func = table[name]
    return getattr(importlib.import_module(module), func)


def supported_extensions() -> tuple[str, ...]:
    """All file extensions :func:`read_points` accepts, sorted."""
    return tuple(sorted(_READERS))


def _extension(path: Path, table_names: tuple[str, ...]) -> str:
    ext = path.suffix.lower()
    if ext not in table_names:
        shown = ext or "no extension"
        raise PointCloudFileError(
            f"unknown point-cloud format {shown!r}; supported: {', '.join(table_names)}",
            path,
        )
    return ext


def read_mesh(path: PathLike) -> Mesh:
    """Read a triangle mesh (OFF, OBJ, STL, PLY with faces).

    Args:
        path: The mesh file.

    Returns:
        A :class:`Mesh`: vertices ``(V, 3)`` and int64 triangle faces ``(F, 3)``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        PointCloudFileError: Unknown extension, a directory, or a malformed file.
    """
    path = check_file(path)
    if path.suffix.lower() in _READERS and path.suffix.lower() not in _MESH_EXTENSIONS:
        raise PointCloudFileError(
            f"a {path.suffix} file holds a point cloud, not a mesh (mesh formats: "
            f"{', '.join(_MESH_EXTENSIONS)}); read it with read_points",
            path,
        )
    ext = _extension(path, _MESH_EXTENSIONS)
    result = _lookup(_READERS, ext)(path)
    if isinstance(result, PointCloud):  # a PLY / OBJ without faces
        return Mesh(result.points, np.empty((0, 3), np.int64))
    return result


def read_points(
    path: PathLike, *, num_points: int | None = None, seed: Seed = 0
) -> PointCloud:
    """Read a point cloud, or sample one from the surface of a mesh.

    Meshes (OFF, OBJ, STL, and PLY files that have faces) are sampled
    area-weighted with ``num_points`` points (default 2,048) and face normals.
    Clouds are returned with every finite point, or subsampled reproducibly to
    exactly ``num_points`` when it is given.

    Args:
        path: The file; its extension picks the reader (see ``SUPPORTED_EXTENSIONS``).
        num_points: Number of points wanted, or ``None``.
        seed: Seed of the sampling, for reproducible results.

    Returns:
        A :class:`PointCloud` with float32 points ``(N, 3)``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        PointCloudFileError: Unknown extension, a directory, a malformed or
            truncated file, or a file with no finite point.
    """
    path = check_file(path)
    ext = _extension(path, supported_extensions())
    result = _lookup(_READERS, ext)(path)
    try:
        if isinstance(result, Mesh):
            count = DEFAULT_MESH_POINTS if num_points is None else num_points
            points, normals = sample_surface(result.vertices, result.faces, count, seed)
            return PointCloud(points, normals)
        finite = np.isfinite(result.points).all(axis=1)
        if not finite.all():  # NaN points of organised clouds, invalid returns
            if not finite.any():
                raise PointCloudFileError(
                    f"all {len(result)} points are NaN or infinite, no point to use"
                )
            result = result.select(finite)
        if len(result) == 0:
            raise PointCloudFileError("file holds no point")
        return result if num_points is None else subsample(result, num_points, seed)
    except PointCloudFileError as err:
        raise PointCloudFileError(err.problem, path) from None


def write_points(path: PathLike, cloud: PointCloud | np.ndarray) -> None:
    """Write a point cloud, atomically (temporary file in the folder + rename).

    Formats: ``.ply`` (binary, everything kept), ``.pcd`` (binary: points,
    normals, colours), ``.npz`` (everything), ``.npy`` (points and normals),
    ``.xyz`` (points), ``.xyzn`` (points, normals), ``.xyzrgb`` (points, colours).

    Args:
        path: Target file; its extension picks the format.
        cloud: A :class:`PointCloud`, or an ``(N, 3+F)`` array read by the
            ``.npy`` convention (``(N, 6)`` = points and normals).

    Raises:
        FileNotFoundError: The folder of ``path`` does not exist.
        PointCloudFileError: Unknown extension, or data the format cannot hold.
    """
    path = Path(path)
    ext = _extension(path, tuple(sorted(_WRITERS)))
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path.parent}: no such folder to write {path.name}")
    if not isinstance(cloud, PointCloud):
        from pointnet1x1.io.numpy_io import cloud_from_array

        cloud = cloud_from_array(np.asarray(cloud))
    _lookup(_WRITERS, ext)(path, cloud)


SUPPORTED_EXTENSIONS: tuple[str, ...] = supported_extensions()
