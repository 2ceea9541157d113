"""Reading and writing point clouds and meshes, on numpy.

``read_points(path)`` returns a :class:`PointCloud` (float32 ``(N, 3)`` points,
optional normals, colours in ``[0, 1]`` and extra fields; NaN points dropped);
meshes are sampled area-weighted on their surface (2,048 points by default,
seeded, face normals). ``read_mesh`` returns a :class:`Mesh` (vertices, int64
triangle faces). ``write_points`` writes PLY, PCD, XYZ/XYZN/XYZRGB, NPY, NPZ
atomically. Every malformed file raises :class:`PointCloudFileError` (a
``ValueError``) with a one-line message naming the file and the problem; a
missing file raises ``FileNotFoundError``.

Which reader serves which format, and why (Open3D is never used: it returns
empty or partial clouds in silence for unknown extensions, truncated PLY files
and PCD bodies shorter than their header, and costs a second to import):

==========================  ==================================================
OFF                         :mod:`.off`, our numpy parser: ``np.fromstring`` on
                            the vertex block (floats) and the face block (ints),
                            no per-line Python; accepts ``OFF490 518 0``.
PLY (ascii, binary LE/BE)   :mod:`.ply`, plyfile: correct on every variant,
                            memory-maps binary bodies, raises on truncation;
                            plain ascii vertex/face files by numpy (10x).
PCD (ascii, binary,         :mod:`.pcd`, our numpy parser + pure-Python LZF:
binary_compressed)          checks the header against the body, keeps fields.
XYZ XYZN XYZRGB PTS TXT CSV :mod:`.text`, ``np.loadtxt`` (numpy's C parser)
                            from the file; header line, ``,``/``;``/space.
NPY / NPZ                   :mod:`.numpy_io`, ``np.load(allow_pickle=False)``;
                            NPZ keys ``points`` [+ ``normals``, ``colors``].
OBJ, STL (ascii, binary)    :mod:`.obj`, :mod:`.stl`, small numpy parsers.
LAS / LAZ                   :mod:`.lidar`, laspy (+ lazrs): extra ``[las]``.
E57                         :mod:`.lidar`, pye57 (+ normals): extra ``[e57]``.
Any other extension         refused (:data:`SUPPORTED_EXTENSIONS` lists them).
==========================  ==================================================

Hostile or broken files (:mod:`.limits`, :mod:`.files`, :mod:`.walk`): every
reader opens regular files only (a FIFO, socket, device or folder is refused
before it is read), within a size limit; sizes a header declares are checked
against what the file can hold before anything is allocated (largest file,
largest declared allocation, largest decompression ratio: documented defaults,
raised with ``limits.override(...)`` or ``POINTNET1X1_MAX_*`` variables); a reader returns
the whole, finite cloud or raises. :func:`iter_files` / :func:`collect_files`
walk folders safely (symlink loops, unreadable folders, special and hidden
files are reported, not raised).

Reading PLY, XYZ or NPY imports neither open3d, torch nor torch_geometric; the
names below are imported on first use, so ``import pointnet1x1.io.errors`` (the
CLI's messages) does not import numpy.
Colours are float32 RGB in ``[0, 1]`` (8-bit sources / 255, 16-bit / 65535).
Writers: PLY, PCD, NPZ (everything), NPY and XYZN (points, normals), XYZRGB
(points, colours), XYZ (points); a cloud holding what its format cannot keep is
refused, unless ``drop_unsupported=True``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "DEFAULT_MESH_POINTS": "pointnet1x1.io.api",
    "SUPPORTED_EXTENSIONS": "pointnet1x1.io.api",
    "read_mesh": "pointnet1x1.io.api",
    "read_points": "pointnet1x1.io.api",
    "write_points": "pointnet1x1.io.api",
    "Mesh": "pointnet1x1.io.cloud",
    "PointCloud": "pointnet1x1.io.cloud",
    "PointCloudFileError": "pointnet1x1.io.cloud",
    "InputFileError": "pointnet1x1.io.errors",
    "Limits": "pointnet1x1.io.limits",
    "get_limits": "pointnet1x1.io.limits",
    "set_limits": "pointnet1x1.io.limits",
    "parse_obj": "pointnet1x1.io.obj",
    "parse_off": "pointnet1x1.io.off",
    "read_off": "pointnet1x1.io.off",
    "parse_pcd": "pointnet1x1.io.pcd",
    "sample_surface": "pointnet1x1.io.sampling",
    "subsample": "pointnet1x1.io.sampling",
    "parse_stl": "pointnet1x1.io.stl",
    "parse_text": "pointnet1x1.io.text",
    "collect_files": "pointnet1x1.io.walk",
    "iter_files": "pointnet1x1.io.walk",
}

__all__ = [
    "DEFAULT_MESH_POINTS",
    "InputFileError",
    "Limits",
    "Mesh",
    "PointCloud",
    "PointCloudFileError",
    "SUPPORTED_EXTENSIONS",
    "collect_files",
    "get_limits",
    "iter_files",
    "parse_obj",
    "parse_off",
    "parse_pcd",
    "parse_stl",
    "parse_text",
    "read_mesh",
    "read_off",
    "read_points",
    "sample_surface",
    "set_limits",
    "subsample",
    "write_points",
]

if TYPE_CHECKING:
    from pointnet1x1.io.api import (
        DEFAULT_MESH_POINTS,
        SUPPORTED_EXTENSIONS,
        read_mesh,
        read_points,
        write_points,
    )
    from pointnet1x1.io.cloud import Mesh, PointCloud, PointCloudFileError
    from pointnet1x1.io.errors import InputFileError
    from pointnet1x1.io.limits import Limits, get_limits, set_limits
    from pointnet1x1.io.obj import parse_obj
    from pointnet1x1.io.off import parse_off, read_off
    from pointnet1x1.io.pcd import parse_pcd
    from pointnet1x1.io.sampling import sample_surface, subsample
    from pointnet1x1.io.stl import parse_stl
    from pointnet1x1.io.text import parse_text
    from pointnet1x1.io.walk import collect_files, iter_files


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pointnet1x1.io' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
