"""NPY and NPZ point clouds: bounded, without pickles.

Key convention:

- ``.npy``: one ``(N, 3+F)`` array: ``(N, 3)`` positions; ``(N, 6)`` positions
  and normals (the ModelNet / PointNet++ layout); any other ``F`` keeps the extra
  columns as the field ``features`` ``(N, F)``.
- ``.npz``: ``points`` (or ``xyz`` / ``pos``) ``(N, 3)``, optional ``normals``
  and ``colors`` ``(N, 3)``; every other array with ``N`` rows becomes a field.
  An archive with a single array is read like an ``.npy`` file.

Files are parsed with ``numpy.lib.format`` (header) and ``np.frombuffer``, not
``np.load``: the declared shape is checked against the bytes present first.
"""

from __future__ import annotations

import math
import os
import zipfile
import zlib
from pathlib import Path
from tokenize import TokenError
from typing import IO

import numpy as np

from pointnet1x1._atomic import atomic_open
from pointnet1x1.io.cloud import PathLike, PointCloud, PointCloudFileError
from pointnet1x1.io.files import check_file, open_input
from pointnet1x1.io.limits import check_allocation, check_inflation

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


_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
# a corrupt .npy header can fail in numpy's literal parser (SyntaxError, TokenError)
_LOAD_ERRORS = (
    ValueError,
    EOFError,
    zipfile.BadZipFile,
    zlib.error,
    SyntaxError,
    TokenError,
    NotImplementedError,  # a zip compression method Python lacks
    RuntimeError,  # an encrypted zip member
    OSError,  # a seek to a corrupt offset (the file is open already)
)


def _read_array(stream: IO[bytes], available: int, what: str) -> np.ndarray:
    """One array from ``stream`` (at an NPY magic), checking the shape its header
    declares against the ``available`` bytes before anything is allocated."""
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        header = np.lib.format.read_array_header_1_0(stream)
    else:  # 2.0 and 3.0 share the layout (3.0 only allows utf-8 field names)
        header = np.lib.format.read_array_header_2_0(stream)
    shape, fortran_order, dtype = header
    if dtype.hasobject:
        raise PointCloudFileError(
            f"{what} holds Python objects (a pickle); refused, no code is run"
        )
    need = math.prod(shape) * dtype.itemsize
    left = available - stream.tell()
    shown = f"{what} header declares shape {tuple(shape)} {dtype} ({need} bytes)"
    if need > left:
        raise PointCloudFileError(f"truncated: {shown} but only {left} bytes follow")
    if need < left:
        raise PointCloudFileError(f"{shown} but {left} bytes follow (corrupt file?)")
    check_allocation(need, what)
    data = bytearray(need)  # writable, unlike np.frombuffer on bytes
    if stream.readinto(data) != need:  # type: ignore[attr-defined]
        raise PointCloudFileError(f"truncated: {shown}")
    array = np.frombuffer(data, dtype=dtype, count=math.prod(shape))
    if fortran_order:
        return array.reshape(shape[::-1]).transpose()
    return array.reshape(shape)


def _read_archive(file: IO[bytes], size: int) -> dict[str, np.ndarray]:
    """The arrays of an NPZ archive: unique ``.npy`` members only, their total
    size bounded by the ratio limit before one is inflated."""
    with zipfile.ZipFile(file) as archive:
        infos = archive.infolist()
        names = [info.filename for info in infos]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise PointCloudFileError(f"NPZ archive holds {twice[0]!r} twice")
        other = [n for n in names if not n.endswith(".npy")]
        if other:
            raise PointCloudFileError(
                f"NPZ archive member {other[0]!r} is not an .npy array"
            )
        check_inflation(sum(i.file_size for i in infos), size, "NPZ archive")
        arrays = {}
        for info in infos:
            with archive.open(info) as member:
                arrays[info.filename[:-4]] = _read_array(
                    member, info.file_size, f"NPZ array {info.filename[:-4]!r}"
                )
        return arrays


def _load(path: Path) -> np.ndarray | dict[str, np.ndarray]:
    with open_input(path) as file:  # closed even when a read fails half-way
        size = os.fstat(file.fileno()).st_size
        if size == 0:
            raise PointCloudFileError("file is empty", path)
        magic = file.read(6)
        file.seek(0)
        try:
            if magic.startswith(_ZIP_MAGIC):
                return _read_archive(file, size)
            if magic == b"\x93NUMPY":
                return _read_array(file, size, "array")
            raise PointCloudFileError(f"starts with {magic!r}, not an NPY/NPZ magic")
        except _LOAD_ERRORS as err:
            if isinstance(err, PointCloudFileError):
                problem = err.problem
            else:
                problem = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise PointCloudFileError(
                f"not a valid NumPy file ({problem})", path
            ) from None


def read_numpy(path: PathLike) -> PointCloud:
    """Read a ``.npy`` or ``.npz`` point cloud (see the module key convention).

    The file is parsed here, not by ``np.load``: the shape an NPY header declares
    is checked against the bytes present before it is allocated, NPZ members
    inflate only within the ratio limit (:mod:`pointnet1x1.io.limits`), object
    arrays (pickles) are refused and no code runs.
    """
    path = check_file(path)
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
    for name in (key, "normals", "colors"):
        value = arrays.get(name)
        if value is not None and value.dtype.kind not in "fiub":
            raise PointCloudFileError(
                f"NPZ array {name!r} must be numeric, got {value.dtype}"
            )
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
