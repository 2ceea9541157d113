"""Text point clouds: XYZ, XYZN, XYZRGB, PTS, TXT, CSV, read by numpy's C parser.

One value table per file, space, comma or semicolon separated, with an optional header line
of column names (``x,y,z,nx,ny,nz``...) and ``#`` / ``//`` comment lines; a PTS
file may start with its point count, which is then checked. Without a header
the columns are read by count and extension:

- 3 columns: ``x y z``.
- ``.xyzn``: ``x y z nx ny nz``; ``.xyzrgb``: ``x y z r g b``.
- ``.pts``: ``x y z intensity [r g b]`` (Leica), or ``x y z r g b``.
- otherwise (``.xyz .txt .csv``) columns 4-6 are normals when they are unit
  vectors (ModelNet's ``x,y,z,nx,ny,nz``), else colours; further columns become
  fields ``column_6``, ``column_7``, ...

Colours above 1 are taken as 0-255 and divided by 255. The table is read by
``np.loadtxt`` (numpy's C parser since 1.23) from the text of the file, read
through :func:`~pointnet1x1.io.files.read_input` (regular files, size limit).
"""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path

import numpy as np

from pointnet1x1._atomic import atomic_open
from pointnet1x1.io._columns import cloud_from_columns, colors_to_unit
from pointnet1x1.io.cloud import PathLike, PointCloud, PointCloudFileError
from pointnet1x1.io.files import read_input

_BAD_VALUE = re.compile(
    r"could not convert string (.*) to \w+ at row (\d+), column (\d+)"
)
_HEAD = 1 << 16  # bytes sniffed for a header line and the delimiter
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


def _sniff(head: str) -> tuple[int, list[str] | None, int | None, str | None]:
    """From the first lines: lines to skip, header names, PTS count, delimiter."""
    lines = head.splitlines()
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "//")):
            continue
        tokens = _split(stripped)
        if not all(_is_number(t) for t in tokens):
            names = [t.strip("\"'").lower() for t in tokens]
            if len(names) < 3:
                raise PointCloudFileError(
                    f"text is not numbers: line {index + 1} is {stripped[:60]!r}"
                )
            return index + 1, names, None, _delimiter(lines[index + 1 :])
        if len(tokens) == 1 and float(tokens[0]).is_integer():
            return (
                index + 1,
                None,
                int(float(tokens[0])),
                _delimiter(lines[index + 1 :]),
            )
        return index, None, None, _delimiter(lines[index:])
    raise PointCloudFileError("file is empty (no values)")


def _delimiter(lines: list[str]) -> str | None:
    line = next((ln for ln in lines if ln.strip() and ln.strip()[0] not in "#/"), "")
    if not line:
        raise PointCloudFileError("file holds no point (a header line only)")
    return "," if "," in line else ";" if ";" in line else None


def _parse(source: str | io.StringIO, head: str, extension: str) -> PointCloud:
    skip, names, count, delimiter = _sniff(head)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
            table = np.loadtxt(
                source,
                dtype=np.float64,
                delimiter=delimiter,
                # a second comment marker costs loadtxt its fast path
                comments=("#", "//") if "//" in head else "#",
                skiprows=skip,
                ndmin=2,
                encoding="latin-1",
            )
    except ValueError as err:
        problem = str(err).split("; use `usecols`")[0].rstrip(".")
        if "number of columns" in problem:
            problem = f"rows must hold the same number of values: {problem}"
        else:
            match = _BAD_VALUE.search(problem)
            if match:  # loadtxt counts data rows from 0, columns from 1
                value, row, column = match.groups()
                problem = f"{value} at data row {int(row) + 1}, column {column}"
            problem = f"text is not numbers: {problem}"
        raise PointCloudFileError(problem) from None
    if table.shape[1] < 3 and table.size:
        raise PointCloudFileError(
            f"rows must hold at least 3 values (x y z), got {table.shape[1]}"
        )
    if count is not None and count != len(table):
        raise PointCloudFileError(
            f"first line declares {count} points but the file holds {len(table)}"
        )
    if names is not None:
        if table.size and len(names) != table.shape[1]:
            raise PointCloudFileError(
                f"header names {len(names)} columns but rows hold {table.shape[1]}"
            )
        table = table.reshape(-1, len(names))
        return cloud_from_columns(
            {n: table[:, i].astype(np.float32) for i, n in enumerate(names)}
        )
    return _by_position(table.reshape(-1, max(3, table.shape[1])), extension.lower())


def parse_text(text: str, extension: str = ".xyz") -> PointCloud:
    """Parse a text point cloud; ``extension`` picks the column meaning (see module)."""
    return _parse(io.StringIO(text), text[:_HEAD], extension)


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
    raw = read_input(path)
    text = raw.decode("latin-1")
    del raw  # the text alone from here on
    try:
        return _parse(io.StringIO(text), text[:_HEAD], Path(path).suffix)
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
