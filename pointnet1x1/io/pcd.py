"""PCD (Point Cloud Library) files: ascii, binary and binary_compressed, with numpy.

Our own parser, because Open3D's reader silently returns fewer points than the
header declares, drops extra fields and cannot say which: here the header is
checked against the body, every field is kept (``rgb``/``rgba`` unpacked to
colours, the rest as fields) and ``binary_compressed`` is decoded by the small
LZF decoder in :mod:`._lzf` (fields are stored one after the other there).
Organised clouds (``HEIGHT > 1``) are returned flat; their NaN points are
dropped by :func:`read_points`.
"""

from __future__ import annotations

import numpy as np

from pointnet1x1._atomic import atomic_open
from pointnet1x1.io._columns import cloud_from_columns
from pointnet1x1.io._lzf import lzf_decompress
from pointnet1x1.io.cloud import PathLike, PointCloud, PointCloudFileError, check_file

_TYPES = {("F", 4): "f4", ("F", 8): "f8", ("I", 1): "i1", ("I", 2): "i2"}
_TYPES |= {("I", 4): "i4", ("I", 8): "i8", ("U", 1): "u1", ("U", 2): "u2"}
_TYPES |= {("U", 4): "u4", ("U", 8): "u8"}
_MAX_HEADER = 64 * 1024


def _parse_header(raw: bytes) -> tuple[dict[str, list[str]], int]:
    """Return the header entries and the offset of the body."""
    header: dict[str, list[str]] = {}
    pos = 0
    while pos < min(len(raw), _MAX_HEADER):
        end = raw.find(b"\n", pos)
        end = len(raw) if end < 0 else end
        line = raw[pos:end].decode("latin-1").strip()
        pos = end + 1
        if not line or line.startswith("#"):
            continue
        key, *values = line.split()
        header[key.upper()] = values
        if key.upper() == "DATA":
            return header, pos
    if not raw.strip():
        raise PointCloudFileError("file is empty")
    raise PointCloudFileError("not a PCD file: no 'DATA' line in the header")


def _layout(header: dict[str, list[str]]) -> tuple[list[str], np.dtype, int]:
    names = header.get("FIELDS")
    if not names:
        raise PointCloudFileError("PCD header has no FIELDS line")
    sizes = header.get("SIZE", [])
    types = header.get("TYPE", [])
    counts = header.get("COUNT", ["1"] * len(names))
    if not len(sizes) == len(types) == len(counts) == len(names):
        raise PointCloudFileError(
            f"PCD header lists {len(names)} FIELDS but {len(sizes)} SIZE, "
            f"{len(types)} TYPE and {len(counts)} COUNT entries"
        )
    formats = []
    for name, size, kind, count in zip(names, sizes, types, counts, strict=True):
        code = _TYPES.get((kind.upper(), int(size)))
        if code is None:
            raise PointCloudFileError(
                f"field {name!r} has unknown TYPE/SIZE {kind}{size}"
            )
        formats.append(("<" + code, int(count)) if int(count) > 1 else "<" + code)
    unique = [
        f"_{i}" if n == "_" else f"{n}__{i}" if names.count(n) > 1 else n
        for i, n in enumerate(names)
    ]
    dtype = np.dtype({"names": unique, "formats": formats})
    try:
        width, height = int(header["WIDTH"][0]), int(header.get("HEIGHT", ["1"])[0])
        num = int(header["POINTS"][0]) if "POINTS" in header else width * height
    except (KeyError, IndexError, ValueError):
        raise PointCloudFileError("PCD header needs WIDTH and POINTS counts") from None
    return unique, dtype, num


def _short(what: str, num: int, got: int) -> PointCloudFileError:
    return PointCloudFileError(
        f"header declares {num} points but the {what} body holds only {got} "
        "(truncated file?)"
    )


def parse_pcd(raw: bytes) -> PointCloud:
    """Parse the bytes of a PCD file (ascii, binary or binary_compressed)."""
    header, start = _parse_header(raw)
    try:
        names, dtype, num = _layout(header)
    except (ValueError, TypeError) as err:  # int("x"), bad dtype
        if isinstance(err, PointCloudFileError):
            raise
        raise PointCloudFileError(f"malformed PCD header: {err}") from None
    mode = (header["DATA"] or ["?"])[0].lower()
    body = raw[start:]
    if mode == "ascii":
        text = body.decode("latin-1")
        try:
            values = np.fromstring(text, dtype=np.float64, sep=" ")
        except ValueError:
            bad = next(t for t in text.split() if not _is_float(t))
            raise PointCloudFileError(
                f"ascii body is not numbers ({bad[:40]!r})"
            ) from None
        width = sum(int(np.prod(dtype[n].shape or (1,))) for n in names)
        if len(values) < num * width:
            raise _short("ascii", num, len(values) // width)
        table = values[: num * width].reshape(num, width)
        data, col = {}, 0
        for name in names:
            k = int(np.prod(dtype[name].shape or (1,)))
            column = (
                table[:, col : col + k].squeeze(1)
                if k == 1
                else table[:, col : col + k]
            )
            base = dtype[name].base
            # packed colours are written as the float of their bits
            data[name] = column.astype(np.float32 if base.kind == "f" else base)
            col += k
    elif mode == "binary":
        if len(body) < num * dtype.itemsize:
            raise _short("binary", num, len(body) // dtype.itemsize)
        records = np.frombuffer(body, dtype=dtype, count=num)
        data = {name: records[name] for name in names}
    elif mode == "binary_compressed":
        data = _decompress(body, names, dtype, num)
    else:
        raise PointCloudFileError(
            f"unknown PCD DATA type {mode!r}; expected ascii, binary or binary_compressed"
        )
    # "_" fields are PCL's padding
    return cloud_from_columns({n: v for n, v in data.items() if not n.startswith("_")})


def _is_float(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _decompress(
    body: bytes, names: list[str], dtype: np.dtype, num: int
) -> dict[str, np.ndarray]:
    if len(body) < 8:
        raise _short("binary_compressed", num, 0)
    compressed, size = np.frombuffer(body[:8], dtype="<u4")
    if len(body) < 8 + compressed:
        raise PointCloudFileError(
            f"truncated binary_compressed body: {len(body) - 8} of {compressed} bytes"
        )
    if size != num * dtype.itemsize:
        raise PointCloudFileError(
            f"header declares {num} points ({num * dtype.itemsize} bytes) but the "
            f"compressed body holds {size} bytes"
        )
    try:
        raw = lzf_decompress(body[8 : 8 + compressed], int(size))
    except ValueError as err:
        raise PointCloudFileError(str(err)) from None
    data, offset = {}, 0
    for name in names:  # column-major: all x, then all y, ...
        field = dtype[name]
        count = num * int(np.prod(field.shape or (1,)))
        column = np.frombuffer(raw, dtype=field.base, count=count, offset=offset)
        data[name] = column.reshape((num, *field.shape))
        offset += num * field.itemsize
    return data


def read_pcd(path: PathLike) -> PointCloud:
    """Read a PCD file; see :func:`parse_pcd`."""
    path = check_file(path)
    try:
        return parse_pcd(path.read_bytes())
    except PointCloudFileError as err:
        raise PointCloudFileError(err.problem, path) from None


def write_pcd(path: PathLike, cloud: PointCloud) -> None:
    """Write ``cloud`` as a binary PCD (x y z, normals, packed rgb), atomically."""
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if cloud.normals is not None:
        fields += [("normal_x", "<f4"), ("normal_y", "<f4"), ("normal_z", "<f4")]
    if cloud.colors is not None:
        fields.append(("rgb", "<u4"))
    table = np.empty(len(cloud), dtype=fields)
    for i, axis in enumerate("xyz"):
        table[axis] = cloud.points[:, i]
        if cloud.normals is not None:
            table[f"normal_{axis}"] = cloud.normals[:, i]
    if cloud.colors is not None:
        rgb = np.round(np.clip(cloud.colors, 0, 1) * 255).astype(np.uint32)
        table["rgb"] = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
    n = len(cloud)
    header = (
        "# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\n"
        f"FIELDS {' '.join(f for f, _ in fields)}\n"
        f"SIZE {' '.join('4' for _ in fields)}\n"
        f"TYPE {' '.join('U' if t == '<u4' else 'F' for _, t in fields)}\n"
        f"COUNT {' '.join('1' for _ in fields)}\n"
        f"WIDTH {n}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA binary\n"
    )
    with atomic_open(path) as file:
        file.write(header.encode("ascii"))
        file.write(table.tobytes())
