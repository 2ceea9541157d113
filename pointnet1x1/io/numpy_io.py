"""NPY and NPZ point clouds, read with ``np.load(allow_pickle=False)``.

Key convention:

- ``.npy``: one ``(N, 3+F)`` array: ``(N, 3)`` positions; ``(N, 6)`` positions
  and normals (the ModelNet / PointNet++ layout); any other ``F`` keeps the extra
  columns as the field ``features`` ``(N, F)``.
- ``.npz``: ``points`` (or ``xyz`` / ``pos``) ``(N, 3)``, optional ``normals``
  and ``colors`` ``(N, 3)``; every other array with ``N`` rows becomes a field.
  An archive with a single array is read like an ``.npy`` file.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from tokenize import TokenError

import numpy as np

from pointnet1x1._atomic import atomic_open
from pointnet1x1.io.cloud import PathLike, PointCloud, PointCloudFileError, check_file

_POINT_KEYS = ("points", "xyz", "pos")


def cloud_from_array(array: np.ndarray, what: str = "array") -> PointCloud:
    """Interpret an ``(N, 3+F)`` array by the ``.npy`` convention above."""
    if array.ndim != 2 or array.shape[1] < 3 or array.dtype.kind not in "fiu":
        raise PointCloudFileError(
            f"expected a numeric {what} of shape (N, 3+F), got {array.shape} "
            f"{array.dtype}"
        )
    if array.shape[1] == 3:
        return PointCloud(array)
    if array.shape[1] == 6:
        return PointCloud(array[:, :3], array[:, 3:])
    return PointCloud(array[:, :3], fields={"features": array[:, 3:]})


def _load(path: Path) -> np.ndarray | dict[str, np.ndarray]:
    # a corrupt .npy header can fail in numpy's literal parser (SyntaxError, TokenError)
    errors = (
        ValueError,
        OSError,
        EOFError,
        zipfile.BadZipFile,
        SyntaxError,
        TokenError,
    )
    with path.open("rb") as file:  # closed even when np.load fails half-way
        try:
            loaded = np.load(file, allow_pickle=False)
            if isinstance(loaded, np.ndarray):
                return loaded
            with loaded:
                return {key: loaded[key] for key in loaded.files}
        except errors as err:
            problem = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise PointCloudFileError(
                f"not a valid NumPy file ({problem})", path
            ) from None


def read_numpy(path: PathLike) -> PointCloud:
    """Read a ``.npy`` or ``.npz`` point cloud (see the module key convention)."""
    path = check_file(path)
    if path.stat().st_size == 0:
        raise PointCloudFileError("file is empty", path)
    loaded = _load(path)
    try:
        if isinstance(loaded, np.ndarray):
            return cloud_from_array(loaded)
        return _from_archive(loaded)
    except PointCloudFileError as err:
        raise PointCloudFileError(err.problem, path) from None
    except ValueError as err:  # shapes that do not match between arrays
        raise PointCloudFileError(str(err), path) from None


def _from_archive(arrays: dict[str, np.ndarray]) -> PointCloud:
    key = next((k for k in _POINT_KEYS if k in arrays), None)
    if key is None:
        if len(arrays) == 1:
            ((name, array),) = arrays.items()
            return cloud_from_array(array, f"array {name!r}")
        raise PointCloudFileError(
            f"NPZ archive needs a 'points' array (found: {', '.join(arrays) or 'none'})"
        )
    points = arrays[key]
    if points.ndim != 2 or points.shape[1] != 3:
        raise PointCloudFileError(
            f"NPZ array {key!r} must have shape (N, 3), got {points.shape}"
        )
    fields = {k: v for k, v in arrays.items() if k not in (key, "normals", "colors")}
    for name, value in fields.items():
        if value.ndim == 0 or len(value) != len(points):
            raise PointCloudFileError(
                f"NPZ array {name!r} has shape {value.shape}, expected {len(points)} rows"
            )
    return PointCloud(points, arrays.get("normals"), arrays.get("colors"), fields)


def write_numpy(path: PathLike, cloud: PointCloud) -> None:
    """Write ``cloud`` atomically: ``.npz`` keeps everything under the keys above;
    ``.npy`` writes ``(N, 3)`` or, with normals, ``(N, 6)`` and refuses colours
    and fields (use ``.npz`` for them)."""
    if str(path).lower().endswith(".npz"):
        arrays = {"points": cloud.points, **cloud.fields}
        if cloud.normals is not None:
            arrays["normals"] = cloud.normals
        if cloud.colors is not None:
            arrays["colors"] = cloud.colors
        with atomic_open(path) as file:
            np.savez(file, **arrays)  # type: ignore[arg-type]
        return
    if cloud.colors is not None or cloud.fields:
        raise PointCloudFileError(
            "an .npy file holds points and normals only; write .npz to keep colors "
            "and fields",
            path,
        )
    with atomic_open(path) as file:
        np.save(file, cloud.to_array(normals=cloud.normals is not None))
