"""Wavefront OBJ: ``v`` positions and ``f`` polygons, numpy on the joined lines.

Only geometry is read: ``v x y z [w | r g b]`` and ``f`` entries ``i``, ``i/t``,
``i//n`` or ``i/t/n`` (1-based, negative = relative to the end); polygons are
fan-triangulated; ``vt``/``vn``/groups/materials are ignored (sampling uses face
normals). An OBJ without faces is a point cloud.
"""

from __future__ import annotations

import re

import numpy as np

from pointnet1x1.io._polygons import fan_triangulate
from pointnet1x1.io.cloud import Mesh, PathLike, PointCloud, PointCloudFileError
from pointnet1x1.io.files import read_input

_REFS = re.compile(r"/[^\s]*")


def _numbers(text: str, what: str) -> np.ndarray:
    try:
        return np.fromstring(text, dtype=np.float64, sep=" ")
    except ValueError:
        raise PointCloudFileError(f"{what} are not numbers") from None


def parse_obj(text: str) -> Mesh:
    """Parse the text of an OBJ file into a :class:`Mesh` (faces may be empty)."""
    if not text.strip():
        raise PointCloudFileError("file is empty")
    vertex_lines, face_lines = [], []
    for line in text.splitlines():
        if line.startswith("v "):
            vertex_lines.append(line[2:])
        elif line.startswith("f "):
            face_lines.append(line[2:])
    if not vertex_lines:
        raise PointCloudFileError("OBJ file has no 'v' vertex lines")
    widths = {len(v.split()) for v in vertex_lines[:1000]}
    width = widths.pop() if len(widths) == 1 else 0
    values = _numbers(" ".join(vertex_lines), "vertex lines")
    if width >= 3 and len(values) == width * len(vertex_lines):
        vertices = values.reshape(-1, width)[:, :3]
    else:  # lines of different widths (some with colours): one at a time
        rows = [v.split()[:3] for v in vertex_lines]
        short = next(
            (v for v, r in zip(vertex_lines, rows, strict=True) if len(r) < 3), None
        )
        if short is not None:
            raise PointCloudFileError(
                f"'v {short.strip()[:40]}' has fewer than 3 coordinates"
            )
        vertices = np.array(rows, dtype=np.float64)
    if not face_lines:
        return Mesh(vertices, np.empty((0, 3), np.int64))
    faces = _faces(face_lines, len(vertices))
    if len(faces) and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise PointCloudFileError(
            f"face index out of range for {len(vertices)} vertices "
            f"(1-based {int(faces.max()) + 1})"
        )
    return Mesh(vertices, faces)


def _faces(lines: list[str], num_vertices: int) -> np.ndarray:
    sizes = np.fromiter((len(f.split()) for f in lines), np.int64, count=len(lines))
    refs = _numbers(_REFS.sub("", " ".join(lines)), "face indices").astype(np.int64)
    if len(refs) != sizes.sum():
        raise PointCloudFileError("face lines are not vertex indices")
    refs = np.where(refs < 0, refs + num_vertices, refs - 1)  # to 0-based
    ends = np.cumsum(sizes)
    out = []
    for k in np.unique(sizes[sizes >= 3]):
        starts = (ends - sizes)[sizes == k]
        out.append(fan_triangulate(refs[starts[:, None] + np.arange(k)]))
    return np.concatenate(out) if out else np.empty((0, 3), np.int64)


def read_obj(path: PathLike) -> Mesh | PointCloud:
    """Read an OBJ file: a :class:`Mesh`, or a :class:`PointCloud` without faces."""
    raw = read_input(path)
    try:
        mesh = parse_obj(raw.decode("latin-1"))
    except PointCloudFileError as err:
        raise PointCloudFileError(err.problem, path) from None
    return mesh if len(mesh.faces) else PointCloud(mesh.vertices)
