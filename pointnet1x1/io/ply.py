"""PLY files (Stanford): ascii and binary, little and big endian, through plyfile.

plyfile is correct on every PLY variant (any property types and order, comments,
extra elements), reads binary elements with one ``np.fromfile``/memory map, and
raises on a truncated body where Open3D returns a partial cloud. Triangle lists
are read at numpy speed by telling plyfile their length (``known_list_len``; it
checks and falls back by itself when a face is not a triangle). Writing is plain
numpy: a header and one structured array, binary little endian.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from pointnet1x1._atomic import atomic_open
from pointnet1x1.io._columns import cloud_from_columns
from pointnet1x1.io._polygons import fan_triangulate, uniform_faces
from pointnet1x1.io.cloud import (
    Mesh,
    PathLike,
    PointCloud,
    PointCloudFileError,
    check_file,
)

_FACE_LISTS = ("vertex_indices", "vertex_index")
_PLY_TYPES = {
    "f4": "float",
    "f8": "double",
    "u1": "uchar",
    "i1": "char",
    "u2": "ushort",
    "i2": "short",
    "u4": "uint",
    "i4": "int",
}


_NUMPY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}  # fmt: skip


class _Header(NamedTuple):
    format: str
    elements: list[tuple[str, int, list[tuple[str, str]]]]  # props: (name, type)
    size: int  # bytes up to the body


def _read_header(path: Path) -> _Header:
    with path.open("rb") as file:
        head = file.read(1 << 16)
    if not head:
        raise PointCloudFileError("file is empty")
    if not head.startswith(b"ply"):
        raise PointCloudFileError(f"not a PLY file: starts with {head[:20]!r}")
    end = head.find(b"end_header")
    newline = head.find(b"\n", end)
    fmt, elements = "", []  # type: tuple[str, list[tuple[str, int, list[tuple[str, str]]]]]
    for line in head[: max(end, 0)].decode("latin-1").splitlines():
        words = line.split()
        if words[:1] == ["format"] and len(words) > 1:
            fmt = words[1]
        elif words[:1] == ["element"] and len(words) > 2 and words[2].isdigit():
            elements.append((words[1], int(words[2]), []))
        elif words[:1] == ["property"] and elements and len(words) > 2:
            kind = "list" if words[1] == "list" else words[1]
            elements[-1][2].append((words[-1], kind))
    return _Header(fmt, elements, newline + 1 if end >= 0 and newline >= 0 else -1)


def _read_ascii(path: Path, header: _Header) -> PointCloud | Mesh | None:
    """ASCII PLY at numpy speed (plyfile parses ascii line by line): a vertex
    element of scalars, optionally followed by one face element of one list.
    Returns None for any other layout (plyfile reads it)."""
    (name, count, props), *rest = header.elements
    if name != "vertex" or any(kind not in _NUMPY_TYPES for _, kind in props):
        return None
    if rest and (len(rest) > 1 or rest[0][0] != "face" or len(rest[0][2]) != 1):
        return None
    body = path.read_bytes()[header.size :]
    try:
        values = np.fromstring(body, dtype=np.float64, sep=" ")
    except ValueError:
        raise PointCloudFileError("ascii body is not numbers") from None
    width = len(props)
    if len(values) < count * width:
        raise PointCloudFileError(
            f"truncated body: header declares {count} vertices of {width} values "
            f"but the ascii body holds only {len(values)} values"
        )
    table = values[: count * width].reshape(count, width)
    columns = {
        prop: table[:, i].astype(_NUMPY_TYPES[kind])
        for i, (prop, kind) in enumerate(props)
    }
    cloud = cloud_from_columns(columns)
    if not rest or rest[0][1] == 0:
        return cloud if len(values) == count * width else None
    faces = uniform_faces(values[count * width :], rest[0][1])
    if faces is None:  # mixed polygon sizes or a short body: plyfile decides
        return None
    return Mesh(cloud.points, faces)


def _triangles(faces: np.ndarray) -> np.ndarray:
    """plyfile face lists ((F, 3) or ragged object array) -> int64 triangles."""
    if faces.dtype != object:
        return fan_triangulate(faces.astype(np.int64).reshape(len(faces), -1))
    sizes = np.fromiter((len(f) for f in faces), dtype=np.int64, count=len(faces))
    out = []
    for k in np.unique(sizes[sizes >= 3]):
        out.append(fan_triangulate(np.stack(list(faces[sizes == k])).astype(np.int64)))
    return np.concatenate(out) if out else np.empty((0, 3), np.int64)


def read_ply(path: PathLike) -> PointCloud | Mesh:
    """Read a PLY file: a :class:`Mesh` when it has faces, else a :class:`PointCloud`.

    Vertex properties ``x y z``, ``nx ny nz``, ``red green blue`` become points,
    normals and colours; every other scalar property becomes a field.
    """
    path = check_file(path)
    from plyfile import PlyData, PlyParseError

    try:
        header = _read_header(path)
        if header.format == "ascii" and header.elements and header.size > 0:
            result = _read_ascii(path, header)
            if result is not None:
                return _checked(result, path)
        faces = [props for name, _, props in header.elements if name == "face"]
        list_name = (
            next((p for p, kind in faces[0] if kind == "list"), None) if faces else None
        )
        known = {"face": {list_name: 3}} if list_name else {}
        try:
            ply = PlyData.read(str(path), known_list_len=known)
        except PlyParseError as err:
            if "unexpected list length" not in str(err):
                raise
            ply = PlyData.read(str(path))  # not all triangles: the slow path
    except (PlyParseError, UnicodeDecodeError, ValueError) as err:
        if isinstance(err, PointCloudFileError):
            raise PointCloudFileError(err.problem, path) from None
        problem = "truncated body" if "end-of-file" in str(err) else "malformed PLY"
        raise PointCloudFileError(f"{problem}: {err}", path) from None
    if "vertex" not in ply:
        raise PointCloudFileError("PLY file has no 'vertex' element", path)
    vertex = ply["vertex"].data
    columns = {
        name: np.array(vertex[name])
        for name in vertex.dtype.names or ()
        if vertex.dtype[name].kind != "O"
    }
    try:
        cloud = cloud_from_columns(columns)
    except PointCloudFileError as err:
        raise PointCloudFileError(err.problem, path) from None
    names = ply["face"].data.dtype.names if "face" in ply else None
    face_list = next((n for n in _FACE_LISTS if names and n in names), None)
    if face_list is None or len(ply["face"].data) == 0:
        return cloud
    return _checked(Mesh(cloud.points, _triangles(ply["face"].data[face_list])), path)


def _checked(result: PointCloud | Mesh, path: Path) -> PointCloud | Mesh:
    if isinstance(result, Mesh) and len(result.faces):
        low, high = int(result.faces.min()), int(result.faces.max())
        if low < 0 or high >= len(result.vertices):
            raise PointCloudFileError(
                f"face index {high if high >= len(result.vertices) else low} out of range for "
                f"{len(result.vertices)} vertices",
                path,
            )
    return result


def write_ply(path: PathLike, cloud: PointCloud) -> None:
    """Write ``cloud`` as a binary little-endian PLY, atomically.

    Points and normals as float, colours as uchar ``red green blue``, fields as
    properties of their own type (``(N, K)`` fields as ``name_0 ... name_K-1``).
    """
    columns: list[tuple[str, np.ndarray]] = []
    columns += [(axis, cloud.points[:, i]) for i, axis in enumerate("xyz")]
    if cloud.normals is not None:
        columns += [(f"n{axis}", cloud.normals[:, i]) for i, axis in enumerate("xyz")]
    if cloud.colors is not None:
        rgb = np.round(np.clip(cloud.colors, 0.0, 1.0) * 255).astype(np.uint8)
        columns += [
            (name, rgb[:, i]) for i, name in enumerate(("red", "green", "blue"))
        ]
    for name, value in cloud.fields.items():
        value = np.asarray(value)
        if value.dtype.str[1:] not in _PLY_TYPES:
            value = value.astype(np.float64 if value.dtype.kind == "f" else np.int32)
        flat = value.reshape(len(cloud), -1)
        if flat.shape[1] == 1:
            columns.append((name, flat[:, 0]))
        else:
            columns += [(f"{name}_{k}", flat[:, k]) for k in range(flat.shape[1])]
    table = np.empty(len(cloud), dtype=[(n, "<" + v.dtype.str[1:]) for n, v in columns])
    for name, value in columns:
        table[name] = value
    props = "".join(f"property {_PLY_TYPES[v.dtype.str[1:]]} {n}\n" for n, v in columns)
    header = (
        "ply\nformat binary_little_endian 1.0\ncomment written by pointnet1x1\n"
        f"element vertex {len(cloud)}\n{props}end_header\n"
    )
    with atomic_open(path) as file:
        file.write(header.encode("ascii"))
        file.write(table.tobytes())
