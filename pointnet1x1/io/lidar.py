"""LAS/LAZ (laspy, extra ``pointnet1x1[las]``) and E57 (pye57, extra
``pointnet1x1[e57]``): well-kept readers of these binary survey formats.

Positions are the scaled coordinates as float32; large georeferenced offsets
lose precision in float32, which does not matter for classification but does
for survey work (use laspy directly there). Without the package installed the
reader says which one to install.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import numpy as np

from pointnet1x1.io._columns import colors_to_unit
from pointnet1x1.io._las_check import check_las_header
from pointnet1x1.io.cloud import PathLike, PointCloud, PointCloudFileError
from pointnet1x1.io.files import check_file, open_input
from pointnet1x1.io.limits import check_allocation

_LAS_FIELDS = ("intensity", "classification", "return_number", "gps_time")


def _require(module: str, extra: str, package: str, path: PathLike) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise PointCloudFileError(
            f"reading this file needs {package}: pip install 'pointnet1x1[{extra}]' "
            f"(or pip install {package})",
            path,
        ) from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def read_las(path: PathLike) -> PointCloud:
    """Read a LAS or LAZ file with laspy (LAZ through its lazrs backend)."""
    path = check_file(path)
    laspy = _require("laspy", "las", "laspy[lazrs]", path)
    with open_input(path) as file:
        try:
            check_las_header(file, path.suffix.lower() == ".laz")
            las = laspy.read(file, closefd=False)
        except PointCloudFileError as err:
            raise PointCloudFileError(err.problem, path) from None
        except BaseException as err:  # laspy's errors, plain ones, lazrs panics
            if isinstance(err, KeyboardInterrupt | SystemExit):
                raise
            problem = _first_line(err)
            raise PointCloudFileError(f"cannot read LAS/LAZ: {problem}", path) from None
    names = set(las.point_format.dimension_names)
    colors = None
    if {"red", "green", "blue"} <= names:
        rgb = np.stack([las.red, las.green, las.blue], axis=1).astype(np.uint16)
        # the LAS spec says 16-bit colours, many writers store 8-bit values
        colors = colors_to_unit(
            rgb.astype(np.uint8) if rgb.size and rgb.max() <= 255 else rgb
        )
    fields = {n: np.asarray(las[n]) for n in _LAS_FIELDS if n in names}
    return PointCloud(np.asarray(las.xyz), colors=colors, fields=fields)


_E57_NORMALS = ("nor:normalX", "nor:normalY", "nor:normalZ")


def read_e57(path: PathLike) -> PointCloud:
    """Read every scan of an E57 file with pye57, in the file's global frame.

    Normals (the ``nor:`` extension, which pye57's ``read_scan`` skips) are read
    through libE57 buffers for cartesian scans. libE57 opens the file by name,
    after :func:`~pointnet1x1.io.files.check_file` (a regular file within the
    size limit); each scan's declared point count is checked against the
    allocation limit before its buffers are made.
    """
    path = check_file(path)
    pye57 = _require("pye57", "e57", "pye57", path)
    try:
        e57 = pye57.E57(str(path))
        scans = [_e57_scan(pye57, e57, i) for i in range(e57.scan_count)]
    except PointCloudFileError as err:
        raise PointCloudFileError(err.problem, path) from None
    except BaseException as err:  # libE57's errors, plain ones, panics
        if isinstance(err, KeyboardInterrupt | SystemExit):
            raise
        raise PointCloudFileError(
            f"cannot read E57: {_first_line(err)}", path
        ) from None
    if not scans:
        raise PointCloudFileError("E57 file holds no scan", path)
    points = np.concatenate([s[0] for s in scans])
    normals = None
    if all(s[1] is not None for s in scans):
        normals = np.concatenate([s[1] for s in scans])  # type: ignore[misc]
    fields = {}
    if all("intensity" in s[2] for s in scans):
        fields["intensity"] = np.concatenate([s[2]["intensity"] for s in scans])
    colors = None
    if all("colors" in s[2] for s in scans):
        colors = colors_to_unit(np.concatenate([s[2]["colors"] for s in scans]))
    return PointCloud(points, normals, colors, fields)


def _e57_scan(
    pye57: ModuleType, e57: Any, index: int
) -> tuple[np.ndarray, np.ndarray | None, dict[str, np.ndarray]]:
    header = e57.get_header(index)
    check_allocation(
        int(header.point_count) * 8 * max(len(header.point_fields), 3),
        f"E57 scan {index} ({header.point_count} points)",
    )
    available = set(header.point_fields)
    wanted = ["cartesianX", "cartesianY", "cartesianZ"]
    if not set(wanted) <= available:  # spherical scan: let pye57 convert it
        data = e57.read_scan(index, ignore_missing_fields=True)
        xyz = np.stack([data[k] for k in wanted], axis=1)
        return xyz, None, {}
    extras = [
        f
        for f in (
            *_E57_NORMALS,
            "intensity",
            "colorRed",
            "colorGreen",
            "colorBlue",
            "cartesianInvalidState",
        )
        if f in available
    ]
    count = header.point_count
    arrays: dict[str, np.ndarray] = {}
    buffers = pye57.libe57.VectorSourceDestBuffer()
    for field in wanted + extras:
        dtype = np.int32 if field in ("cartesianInvalidState",) else np.float64
        arrays[field] = np.empty(count, dtype)
        buffers.append(
            pye57.libe57.SourceDestBuffer(
                e57.image_file,
                field,
                arrays[field],
                count,
                True,
                True,
            )
        )
    header.points.reader(buffers).read()
    rotation = pye57.e57.Quaternion(header.rotation).rotation_matrix
    xyz = (
        np.stack([arrays[k] for k in wanted], axis=1) @ rotation.T + header.translation
    )
    normals = None
    if all(k in arrays for k in _E57_NORMALS):
        normals = np.stack([arrays[k] for k in _E57_NORMALS], axis=1) @ rotation.T
    extra: dict[str, np.ndarray] = {}
    if "intensity" in arrays:
        extra["intensity"] = arrays["intensity"].astype(np.float32)
    if all(f"color{c}" in arrays for c in ("Red", "Green", "Blue")):
        extra["colors"] = np.stack(
            [arrays[f"color{c}"] for c in ("Red", "Green", "Blue")], axis=1
        )
    keep = arrays.get("cartesianInvalidState", np.zeros(count)) == 0
    extra = {k: v[keep] for k, v in extra.items()}
    return xyz[keep], None if normals is None else normals[keep], extra
