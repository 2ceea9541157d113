"""Text point clouds: XYZ, XYZN, XYZRGB, PTS, TXT, CSV; numpy on the token stream.

One value table per file, space or comma separated, with an optional header line
of column names (``x,y,z,nx,ny,nz``...) and ``#`` / ``//`` comment lines; a PTS
file may start with its point count, which is then checked. Without a header
the columns are read by count and extension:

- 3 columns: ``x y z``.
- ``.xyzn``: ``x y z nx ny nz``; ``.xyzrgb``: ``x y z r g b``.
- ``.pts``: ``x y z intensity [r g b]`` (Leica), or ``x y z r g b``.
- otherwise (``.xyz .txt .csv``) columns 4-6 are normals when they are unit
  vectors (ModelNet's ``x,y,z,nx,ny,nz``), else colours; further columns become
  fields ``column_6``, ``column_7``, ...

Colours above 1 are taken as 0-255 and divided by 255.
"""

from __future__ import annotations

import re

import numpy as np

from pointnet1x1.io._atomic import atomic_open
from pointnet1x1.io._columns import cloud_from_columns, colors_to_unit
from pointnet1x1.io.cloud import PathLike, PointCloud, PointCloudFileError, check_file

_COMMENTS = re.compile(r"^[ \t]*(#|//).*$", re.MULTILINE)
_SEPARATORS = re.compile(r"[,;\s]+")
TEXT_EXTENSIONS = (".xyz", ".xyzn", ".xyzrgb", ".pts", ".txt", ".csv")


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _split(line: str) -> list[str]:
    return [t for t in _SEPARATORS.split(line.strip()) if t]


def parse_text(text: str, extension: str = ".xyz") -> PointCloud:
    """Parse a text point cloud; ``extension`` picks the column meaning (see module)."""
    if "#" in text or "//" in text:
        text = _COMMENTS.sub("", text)
    lines = iter(text.splitlines())
    first = next((ln for ln in lines if ln.strip()), None)
    if first is None:
        raise PointCloudFileError("file is empty (no values)")
    offset = text.index(first) + len(first)
    names = None
    count = None
    tokens = _split(first)
    if not all(_is_number(t) for t in tokens):
        names = [t.strip("\"'").lower() for t in tokens]
        if len(names) < 3:
            raise PointCloudFileError(f"text is not numbers: first line {first[:60]!r}")
    elif len(tokens) == 1 and float(tokens[0]).is_integer():
        count = int(float(tokens[0]))  # PTS point count
    else:
        offset = text.index(first)
    body = text[offset:]
    data_line = next((ln for ln in body.splitlines() if ln.strip()), "")
    if not data_line:
        raise PointCloudFileError("file holds no point (a header line only)")
    num_cols = len(_split(data_line))
    if "," in data_line or ";" in data_line:
        body = body.replace(",", " ").replace(";", " ")
    try:
        values = np.fromstring(body, dtype=np.float64, sep=" ")
    except ValueError:
        bad = next((t for t in body.split() if not _is_number(t)), "?")
        raise PointCloudFileError(f"text is not numbers: found {bad[:40]!r}") from None
    if num_cols < 3 or len(values) % num_cols:
        raise PointCloudFileError(
            f"rows must hold the same number (>= 3) of values: first row has "
            f"{num_cols}, the file {len(values)} values in all (truncated line?)"
        )
    table = values.reshape(-1, num_cols)
    if count is not None and count != len(table):
        raise PointCloudFileError(
            f"first line declares {count} points but the file holds {len(table)}"
        )
    if names is not None:
        if len(names) != num_cols:
            raise PointCloudFileError(
                f"header names {len(names)} columns but rows hold {num_cols}"
            )
        return cloud_from_columns(
            {n: table[:, i].astype(np.float32) for i, n in enumerate(names)}
        )
    return _by_position(table, extension.lower())


def _by_position(table: np.ndarray, extension: str) -> PointCloud:
    points = table[:, :3]
    normals = colors = None
    fields: dict[str, np.ndarray] = {}
    rest = table[:, 3:]
    if extension == ".pts" and rest.shape[1] in (1, 4):
        fields["intensity"] = rest[:, 0].astype(np.float32)
        rest = rest[:, 1:]
        start = 4
    else:
        start = 3
    if rest.shape[1] >= 3:
        block = rest[:, :3]
        if extension == ".xyzn" or (
            extension not in (".xyzrgb", ".pts") and _unit_vectors(block)
        ):
            normals = block
        else:
            colors = colors_to_unit(block)
        rest, start = rest[:, 3:], start + 3
    for k in range(rest.shape[1]):
        fields[f"column_{start + k}"] = rest[:, k].astype(np.float32)
    return PointCloud(points, normals, colors, fields)


def _unit_vectors(block: np.ndarray) -> bool:
    norms = np.linalg.norm(block, axis=1)
    norms = norms[np.isfinite(norms)]
    return bool(norms.size) and float(np.median(np.abs(norms - 1.0))) < 1e-2


def read_text(path: PathLike) -> PointCloud:
    """Read a text point cloud (``.xyz .xyzn .xyzrgb .pts .txt .csv``)."""
    path = check_file(path)
    try:
        return parse_text(path.read_bytes().decode("latin-1"), path.suffix)
    except PointCloudFileError as err:
        raise PointCloudFileError(err.problem, path) from None


def write_text(path: PathLike, cloud: PointCloud) -> None:
    """Write ``cloud`` as text, atomically: ``.xyz`` positions only, ``.xyzn``
    positions and normals, ``.xyzrgb`` positions and 0-255 colours."""
    extension = str(path).lower().rsplit(".", 1)[-1]
    parts = [cloud.points]
    if extension == "xyzn":
        if cloud.normals is None:
            raise PointCloudFileError("cloud has no normals to write to .xyzn", path)
        parts.append(cloud.normals)
    elif extension == "xyzrgb":
        if cloud.colors is None:
            raise PointCloudFileError("cloud has no colors to write to .xyzrgb", path)
        parts.append(np.round(np.clip(cloud.colors, 0, 1) * 255))
    table = np.concatenate(parts, axis=1).astype(np.float64)
    row = " ".join(["%.9g"] * table.shape[1]) + "\n"
    with atomic_open(path) as file:
        for start in range(0, len(table), 65536):
            chunk = table[start : start + 65536]
            file.write(((row * len(chunk)) % tuple(chunk.ravel())).encode("ascii"))
