"""STL meshes, ascii and binary, with numpy (vertices are welded by value).

Binary STL is told apart from ascii by its size (``84 + 50 * count`` bytes),
not by the ``solid`` word, which many binary writers also put in the header.
"""

from __future__ import annotations

import numpy as np

from pointnet1x1.io.cloud import Mesh, PathLike, PointCloudFileError
from pointnet1x1.io.files import read_input

_FACET = np.dtype(
    [("normal", "<f4", 3), ("vertices", "<f4", (3, 3)), ("attribute", "<u2")]
)


def parse_stl(raw: bytes) -> Mesh:
    """Parse the bytes of an ascii or binary STL file into a :class:`Mesh`."""
    if not raw.strip():
        raise PointCloudFileError("file is empty")
    count = int(np.frombuffer(raw[80:84], "<u4")[0]) if len(raw) >= 84 else -1
    if len(raw) == 84 + 50 * count:
        corners = np.frombuffer(raw, _FACET, count=count, offset=84)["vertices"]
    elif raw.lstrip().startswith(b"solid") and b"facet" in raw[:4096]:
        corners = _ascii_corners(raw.decode("latin-1"))
    elif count >= 0:
        raise PointCloudFileError(
            f"truncated binary STL: header declares {count} triangles "
            f"({84 + 50 * count} bytes) but the file has {len(raw)} bytes"
        )
    else:
        raise PointCloudFileError("not an STL file (no 'solid ... facet' text)")
    corners = corners.reshape(-1, 3).astype(np.float64)
    vertices, inverse = np.unique(corners, axis=0, return_inverse=True)
    return Mesh(vertices, inverse.reshape(-1, 3).astype(np.int64))


def _ascii_corners(text: str) -> np.ndarray:
    tokens = np.array(text.split())
    where = np.flatnonzero(tokens == "vertex")
    if len(where) % 3 or (len(where) and where[-1] + 3 >= len(tokens)):
        raise PointCloudFileError("truncated ascii STL: a facet is incomplete")
    try:
        return tokens[where[:, None] + np.arange(1, 4)].astype(np.float64)
    except ValueError:
        raise PointCloudFileError("ascii STL 'vertex' lines are not numbers") from None


def read_stl(path: PathLike) -> Mesh:
    """Read an STL mesh; see :func:`parse_stl`."""
    raw = read_input(path)
    try:
        return parse_stl(raw)
    except PointCloudFileError as err:
        raise PointCloudFileError(err.problem, path) from None
