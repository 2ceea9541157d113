"""PLY files (Stanford): ascii and binary, little and big endian, through plyfile.

plyfile is correct on every PLY variant (any property types and order, comments,
extra elements), reads binary elements with one ``np.fromfile``/memory map, and
raises on a truncated body where Open3D returns a partial cloud. Triangle lists
are read at numpy speed by telling plyfile their length (``known_list_len``; it
checks and falls back by itself when a face is not a triangle). Writing is plain
numpy: a header and one structured array, binary little endian.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any, NamedTuple

import numpy as np

from pointnet1x1._atomic import atomic_open
from pointnet1x1.io._columns import cloud_from_columns
from pointnet1x1.io._polygons import fan_triangulate, uniform_faces
from pointnet1x1.io.cloud import Mesh, PathLike, PointCloud, PointCloudFileError
from pointnet1x1.io.files import open_input

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
    # (name, count, props); a prop is (name, type) or, for lists, (name, "list",
    # type of the length)
    elements: list[tuple[str, int, list[tuple[str, ...]]]]
    size: int  # bytes up to the body


def _parse_header(head: bytes) -> _Header:
    if not head:
        raise PointCloudFileError("file is empty")
    if not head.startswith(b"ply"):
        raise PointCloudFileError(f"not a PLY file: starts with {head[:20]!r}")
    end = head.find(b"end_header")
    newline = head.find(b"\n", end)
    if end < 0 or newline < 0:
        raise PointCloudFileError(
            f"malformed PLY: no 'end_header' line in the first {len(head)} bytes"
        )
    fmt, elements = "", []  # type: tuple[str, list[tuple[str, int, list[tuple[str, ...]]]]]
    for line in head[:end].decode("latin-1").splitlines():
        words = line.split()
        if words[:1] == ["format"] and len(words) > 1:
            fmt = words[1]
        elif words[:1] == ["element"] and len(words) > 2:
            if not words[2].isdigit():
                raise PointCloudFileError(
                    f"malformed PLY header: element {words[1]!r} count {words[2]!r} "
                    "is not a non-negative integer"
                )
            elements.append((words[1], int(words[2]), []))
        elif words[:1] == ["property"] and elements and len(words) > 2:
            if words[1] == "list" and len(words) > 4:
                elements[-1][2].append((words[-1], "list", words[2]))
            else:
                elements[-1][2].append((words[-1], words[1]))
    return _Header(fmt, elements, newline + 1)


def _check_counts(header: _Header, size: int) -> None:
    """Refuse element counts the body cannot hold, before plyfile allocates them
    (it makes an array of the declared count for elements with lists and for
    ascii bodies): a binary row takes at least its scalars and list lengths, an
    ascii row at least one byte per property."""
    left = size - header.size
    binary = header.format != "ascii"
    for name, count, props in header.elements:
        row = 0
        for prop in props:
            kind = prop[2] if prop[1] == "list" else prop[1]
            row += np.dtype(_NUMPY_TYPES.get(kind, "u1")).itemsize if binary else 1
        if count * row > left:
            exact = binary and all(p[1] != "list" for p in props)
            what = f"{row} bytes" if exact else f"at least {row} bytes"
            where = f" (row {left // row}: early end-of-file)" if exact else ""
            raise PointCloudFileError(
                f"truncated body: header declares {count} {name} rows of {what} "
                f"but only {max(left, 0)} bytes follow{where}"
            )
        if count and not props:
            raise PointCloudFileError(
                f"malformed PLY header: element {name!r} has {count} rows but no "
                "property"
            )
        left -= count * row


def _read_ascii(raw: bytes, header: _Header) -> PointCloud | Mesh | None:
    """ASCII PLY at numpy speed (plyfile parses ascii line by line): a vertex
    element of scalars, optionally followed by one face element of one list.
    Returns None for any other layout (plyfile reads it)."""
    (name, count, props), *rest = header.elements
    if name != "vertex" or any(p[1] not in _NUMPY_TYPES for p in props):
        return None
    if rest and (len(rest) > 1 or rest[0][0] != "face" or len(rest[0][2]) != 1):
        return None
    body = raw[header.size :]
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
        prop[0]: table[:, i].astype(_NUMPY_TYPES[prop[1]])
        for i, prop in enumerate(props)
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
    normals and colours; every other scalar property becomes a field. Element
    counts are checked against the file size before plyfile reads the body.
    """
    from plyfile import PlyData, PlyParseError

    path = Path(path)
    with open_input(path) as file:
        try:
            ply = _read(file, PlyData, PlyParseError)
        except PointCloudFileError as err:
            raise PointCloudFileError(err.problem, path) from None
        except (PlyParseError, UnicodeDecodeError, ValueError) as err:
            problem = "truncated body" if "end-of-file" in str(err) else "malformed PLY"
            raise PointCloudFileError(f"{problem}: {err}", path) from None
    if not isinstance(ply, PlyData):
        return _checked(ply, path)
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


def _read(file: IO[bytes], ply_data: Any, parse_error: type[Exception]) -> Any:
    """The ascii fast path's cloud or mesh, else plyfile's ``PlyData``."""
    size = os.fstat(file.fileno()).st_size
    header = _parse_header(file.read(1 << 16))
    _check_counts(header, size)
    if header.format == "ascii" and header.elements:
        file.seek(0)
        result = _read_ascii(file.read(), header)
        if result is not None:
            return result
    faces = [props for name, _, props in header.elements if name == "face"]
    list_name = (
        next((p[0] for p in faces[0] if p[1] == "list"), None) if faces else None
    )
    known = {"face": {list_name: 3}} if list_name else {}
    file.seek(0)
    try:
        return ply_data.read(file, known_list_len=known)
    except parse_error as err:
        if "unexpected list length" not in str(err):
            raise
    file.seek(0)
    return ply_data.read(file)  # not all triangles: the slow path


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
