"""OFF meshes (Princeton ModelNet, Geomview), parsed with numpy on the token stream.

ModelNet40 holds 12,311 OFF files of up to a few MB, so the parser avoids
per-line Python work: the whole body after the header is parsed by one
``np.fromstring`` call (C speed), vertices are a reshape of the first ``V * C``
numbers and all-triangle (or all-``k``-gon) faces are a reshape of the rest.
Only files mixing polygon sizes or carrying face colours take a per-line path.

Accepted: the ``[ST][C][N]OFF`` keywords (extra vertex columns are ignored),
a missing keyword, ModelNet's ``OFF490 518 0`` (counts on the keyword line),
``#`` comments and blank lines.
"""

from __future__ import annotations

import re

import numpy as np

from pointnet1x1.io._polygons import uniform_faces
from pointnet1x1.io.cloud import Mesh, PathLike, PointCloudFileError
from pointnet1x1.io.files import read_input

_KEYWORD = re.compile(r"\s*((?:ST)?C?N?4?n?OFF)?", re.ASCII)
_COMMENT = re.compile(r"#[^\n]*")


def _numbers(text: str, what: str) -> np.ndarray:
    try:
        return np.fromstring(text, dtype=np.float64, sep=" ")
    except ValueError:
        bad = next((t for t in text.split() if not _is_number(t)), "?")
        raise PointCloudFileError(
            f"{what} is not numbers (found {bad[:40]!r})"
        ) from None


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _faces_per_line(lines: list[str]) -> np.ndarray:
    """Slow path: faces with mixed sizes or trailing colours, one line at a time."""
    tris: list[list[int]] = []
    for line in lines:
        tokens = line.split()
        try:
            k = int(tokens[0])
            ids = [int(t) for t in tokens[1 : k + 1]]
        except ValueError:
            raise PointCloudFileError(
                f"face line {line.strip()[:60]!r} is not integers (a vertex count "
                "in the header that does not match the vertices?)"
            ) from None
        if k < 0 or len(tokens) < k + 1:
            raise PointCloudFileError(f"face line {line.strip()[:60]!r} is too short")
        tris.extend([ids[0], ids[i], ids[i + 1]] for i in range(1, k - 1))
    return np.asarray(tris, dtype=np.int64).reshape(-1, 3)


def parse_off(text: str) -> Mesh:
    """Parse the text of an OFF file.

    Args:
        text: The whole file content.

    Returns:
        A :class:`Mesh` with float64 vertices ``(V, 3)`` and int64 triangle faces
        ``(F', 3)`` (polygons fan-triangulated, faces with fewer than 3 vertices
        dropped).

    Raises:
        PointCloudFileError: The text is empty, not OFF, not numbers, or holds
            fewer vertices / faces than its header declares.
    """
    if "#" in text:
        text = _COMMENT.sub("", text)
    match = _KEYWORD.match(text)
    pos = match.end() if match else 0
    # counts: the first three integers after the keyword (same line or next)
    header = re.compile(r"\s*(\d+)\s+(\d+)(?:[ \t]+(\d+))?[ \t]*(?:\r?\n|$)").match(
        text, pos
    )
    if header is None:
        if not text.strip():
            raise PointCloudFileError("file is empty")
        start = text[pos:].lstrip()[:40]
        raise PointCloudFileError(
            f"not an OFF file: expected 'OFF' and vertex/face counts, found {start!r}"
        )
    num_vertices, num_faces = int(header.group(1)), int(header.group(2))
    body = text[header.end() :]
    first_line = body.lstrip().split("\n", 1)[0]
    cols = len(first_line.split()) if num_vertices else 3
    if cols < 3:
        raise PointCloudFileError(
            f"vertex line {first_line!r} has fewer than 3 numbers"
        )
    values = _numbers(body, "OFF body")
    need = num_vertices * cols
    if len(values) < need:
        raise PointCloudFileError(
            f"header declares {num_vertices} vertices of {cols} numbers but the body "
            f"holds only {len(values)} numbers (truncated file?)"
        )
    vertices = values[:need].reshape(num_vertices, cols)[:, :3]
    rest = values[need:]
    faces = uniform_faces(rest, num_faces)
    if faces is None:
        lines = [ln for ln in body.splitlines() if ln.strip()]
        skip, used = 0, 0
        while used < need:
            used += len(lines[skip].split())
            skip += 1
        face_lines = lines[skip : skip + num_faces]
        if len(face_lines) < num_faces:
            raise PointCloudFileError(
                f"header declares {num_faces} faces but the body holds only "
                f"{len(face_lines)} (truncated file?)"
            )
        faces = _faces_per_line(face_lines)
    if len(faces) and (faces.min() < 0 or faces.max() >= num_vertices):
        bad = faces.max() if faces.max() >= num_vertices else faces.min()
        raise PointCloudFileError(
            f"face index {int(bad)} out of range for {num_vertices} vertices"
        )
    return Mesh(np.ascontiguousarray(vertices), faces)


_PLAIN_HEADER = re.compile(rb"\s*OFF\s*?(\d+)[ \t]+(\d+)(?:[ \t]+\d+)?[ \t]*\r?\n")


def _parse_plain(raw: bytes) -> Mesh | None:
    """Fast path for the usual layout (``OFF``, one vertex per line, integer
    faces, no comments): vertices parsed as floats, faces as integers (3x
    faster). Returns None whenever the file is not exactly that layout, and
    :func:`parse_off` then handles it."""
    match = _PLAIN_HEADER.match(raw)
    if match is None or b"#" in raw:
        return None
    num_vertices, num_faces = int(match.group(1)), int(match.group(2))
    start = match.end()
    newlines = np.flatnonzero(np.frombuffer(raw, np.uint8, offset=start) == 10)
    if num_vertices == 0 or len(newlines) < num_vertices:
        return None
    cut = start + int(newlines[num_vertices - 1]) + 1
    cols = len(raw[start : start + int(newlines[0])].split())
    try:
        coords = np.fromstring(raw[start:cut], dtype=np.float64, sep=" ")
        table = np.fromstring(raw[cut:], dtype=np.int64, sep=" ")
    except ValueError:
        return None
    if cols < 3 or coords.size != num_vertices * cols:
        return None
    faces = uniform_faces(table, num_faces)
    if faces is None or (
        len(faces) and (faces.min() < 0 or faces.max() >= num_vertices)
    ):
        return None
    return Mesh(np.ascontiguousarray(coords.reshape(-1, cols)[:, :3]), faces)


def read_off(path: PathLike) -> Mesh:
    """Read an OFF mesh file; see :func:`parse_off`."""
    raw = read_input(path)
    try:
        mesh = _parse_plain(raw)
        return mesh if mesh is not None else parse_off(raw.decode("latin-1"))
    except PointCloudFileError as err:
        raise PointCloudFileError(err.problem, path) from None
