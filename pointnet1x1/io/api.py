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

from pointnet1x1.io.cloud import Mesh, PathLike, PointCloud, PointCloudFileError
from pointnet1x1.io.files import check_file
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
# what each writer keeps besides the points; the one table write_points checks
WRITER_KEEPS: dict[str, frozenset[str]] = {
    ".ply": frozenset({"normals", "colors", "fields"}),
    ".pcd": frozenset({"normals", "colors", "fields"}),
    ".npz": frozenset({"normals", "colors", "fields"}),
    ".npy": frozenset({"normals"}),
    ".xyz": frozenset(),
    ".xyzn": frozenset({"normals"}),
    ".xyzrgb": frozenset({"colors"}),
}
_WRITER_NEEDS = {".xyzn": "normals", ".xyzrgb": "colors"}
_FLOAT32_MAX = float(np.finfo(np.float32).max)


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
        return Mesh(_finite_points(result, path).points, np.empty((0, 3), np.int64))
    return _checked_mesh(result, path)


def _checked_mesh(mesh: Mesh, path: Path) -> Mesh:
    """Refuse vertices that are NaN, infinite or beyond float32 (they would
    sample to non-finite points)."""
    vertices = np.asarray(mesh.vertices)
    bad = ~np.isfinite(vertices).all(axis=1)
    if vertices.dtype != np.float32:
        bad |= (np.abs(vertices) > _FLOAT32_MAX).any(axis=1)
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise PointCloudFileError(
            f"{int(bad.sum())} of {len(vertices)} vertices are NaN, infinite or "
            f"beyond the float32 range (+-3.4e38), e.g. vertex {index}: "
            f"{vertices[index].tolist()}",
            path,
        )
    return mesh


def _finite_points(cloud: PointCloud, path: Path) -> PointCloud:
    """Drop NaN points (PCL's invalid points of organised clouds); refuse
    infinite ones (a coordinate beyond float32 reads as inf): the cloud is
    either whole or refused."""
    finite = np.isfinite(cloud.points).all(axis=1)
    if finite.all():
        return cloud
    if not finite.any():
        raise PointCloudFileError(
            f"all {len(cloud)} points are NaN or infinite, no point to use", path
        )
    infinite = np.isinf(cloud.points).any(axis=1)
    if infinite.any():
        index = int(np.flatnonzero(infinite)[0])
        raise PointCloudFileError(
            f"{int(infinite.sum())} points have infinite coordinates or ones beyond "
            f"the float32 range (+-3.4e38), e.g. point {index}",
            path,
        )
    return cloud.select(finite)


def read_points(
    path: PathLike, *, num_points: int | None = None, seed: Seed = 0
) -> PointCloud:
    """Read a point cloud, or sample one from the surface of a mesh.

    Meshes (OFF, OBJ, STL, and PLY files that have faces) are sampled
    area-weighted with ``num_points`` points (default 2,048) and face normals;
    a mesh with a NaN, infinite or beyond-float32 vertex is refused. Clouds are
    returned whole, or subsampled reproducibly to exactly ``num_points`` when it
    is given; NaN points (invalid points of organised scans) are the one subset
    dropped, and a point with an infinite or beyond-float32 coordinate is refused.

    Args:
        path: The file; its extension picks the reader (see ``SUPPORTED_EXTENSIONS``).
        num_points: Number of points wanted, or ``None``.
        seed: Seed of the sampling, for reproducible results.

    Returns:
        A :class:`PointCloud` with float32 points ``(N, 3)``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        PointCloudFileError: Unknown extension, not a regular file, above the
            limits of :mod:`pointnet1x1.io.limits`, a malformed, truncated or
            inconsistent file, or a file with no finite point.
    """
    path = check_file(path)
    ext = _extension(path, supported_extensions())
    result = _lookup(_READERS, ext)(path)
    try:
        if isinstance(result, Mesh):
            _checked_mesh(result, path)
            count = DEFAULT_MESH_POINTS if num_points is None else num_points
            points, normals = sample_surface(result.vertices, result.faces, count, seed)
            return PointCloud(points, normals)
        if len(result) == 0:
            raise PointCloudFileError("file holds no point")
        result = _finite_points(result, path)
        return result if num_points is None else subsample(result, num_points, seed)
    except PointCloudFileError as err:
        raise PointCloudFileError(err.problem, path) from None


def _present(cloud: PointCloud) -> list[str]:
    return [k for k in ("normals", "colors") if getattr(cloud, k) is not None] + (
        ["fields"] if cloud.fields else []
    )


def write_points(
    path: PathLike, cloud: PointCloud | np.ndarray, *, drop_unsupported: bool = False
) -> None:
    """Write a point cloud, atomically (temporary file in the folder + rename).

    What each format keeps besides the points (:data:`WRITER_KEEPS`):
    ``.ply``, ``.pcd``, ``.npz``: normals, colours and fields; ``.npy`` and
    ``.xyzn``: normals; ``.xyzrgb``: colours; ``.xyz``: nothing. A cloud holding
    something the format cannot keep is refused with one line naming it and the
    formats that can, unless ``drop_unsupported=True`` (then it is left out).

    Args:
        path: Target file; its extension picks the format.
        cloud: A :class:`PointCloud`, or an ``(N, 3+F)`` array read by the
            ``.npy`` convention (``(N, 6)`` = points and normals).
        drop_unsupported: Leave out what the format cannot hold instead of
            refusing.

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
    needed = _WRITER_NEEDS.get(ext)
    if needed is not None and getattr(cloud, needed) is None:
        raise PointCloudFileError(f"cloud has no {needed} to write to {ext}", path)
    lost = [k for k in _present(cloud) if k not in WRITER_KEEPS[ext]]
    if lost and not drop_unsupported:
        able = [e for e, keeps in WRITER_KEEPS.items() if set(lost) <= keeps]
        raise PointCloudFileError(
            f"a {ext} file cannot hold the cloud's {' and '.join(lost)}; write "
            f"{' / '.join(able)} to keep them, or pass drop_unsupported=True "
            "to write without them",
            path,
        )
    if lost:
        cloud = PointCloud(
            cloud.points,
            cloud.normals if "normals" in WRITER_KEEPS[ext] else None,
            cloud.colors if "colors" in WRITER_KEEPS[ext] else None,
            cloud.fields if "fields" in WRITER_KEEPS[ext] else {},
        )
    try:
        _lookup(_WRITERS, ext)(path, cloud)
    except PointCloudFileError as err:
        if err.path is not None:
            raise
        raise PointCloudFileError(err.problem, path) from None


SUPPORTED_EXTENSIONS: tuple[str, ...] = supported_extensions()
