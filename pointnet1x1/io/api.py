"""``read_points`` / ``read_mesh`` / ``write_points``: dispatch on the file extension.

Each format module is imported only when a file of its kind is read, so reading
a PLY, XYZ or NPY file never imports open3d, torch or torch_geometric.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from pointnet1x1.io.cloud import (
    Mesh,
    PathLike,
    PointCloud,
    PointCloudFileError,
    check_file,
)
from pointnet1x1.io.sampling import Seed, sample_surface, subsample

DEFAULT_MESH_POINTS = 2048

# extension -> (module, function); mesh readers return Mesh, cloud readers PointCloud
_MESH_READERS: dict[str, tuple[str, str]] = {
    ".off": ("pointnet1x1.io.off", "read_off"),
}
_CLOUD_READERS: dict[str, tuple[str, str]] = {}
_WRITERS: dict[str, tuple[str, str]] = {}


def _lookup(table: dict[str, tuple[str, str]], name: str):  # noqa: ANN202
    module, func = table[name]
    return getattr(importlib.import_module(module), func)


def supported_extensions() -> tuple[str, ...]:
    """All file extensions :func:`read_points` accepts, sorted."""
    return tuple(sorted({*_MESH_READERS, *_CLOUD_READERS}))


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
    ext = _extension(path, tuple(sorted(_MESH_READERS)))
    return _lookup(_MESH_READERS, ext)(path)


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
    if ext in _CLOUD_READERS:
        result = _lookup(_CLOUD_READERS, ext)(path)
    else:
        result = _lookup(_MESH_READERS, ext)(path)
    try:
        if isinstance(result, Mesh):
            count = DEFAULT_MESH_POINTS if num_points is None else num_points
            points, normals = sample_surface(result.vertices, result.faces, count, seed)
            return PointCloud(points, normals)
        if len(result) == 0:
            raise PointCloudFileError("file holds no finite point")
        return result if num_points is None else subsample(result, num_points, seed)
    except PointCloudFileError as err:
        raise PointCloudFileError(err.problem, path) from None


SUPPORTED_EXTENSIONS: tuple[str, ...] = supported_extensions()
