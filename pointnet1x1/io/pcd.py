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
from pointnet1x1.io.cloud import PathLike, PointCloud, PointCloudFileError
from pointnet1x1.io.files import read_input
from pointnet1x1.io.limits import check_inflation

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


def _layout(
    header: dict[str, list[str]],
) -> tuple[list[str], np.dtype, tuple[int, int]]:
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
        if int(count) < 1:
            raise PointCloudFileError(
                f"field {name!r} has COUNT {count}, expected >= 1"
            )
        formats.append(("<" + code, int(count)) if int(count) > 1 else "<" + code)
    unique = [
        f"_{i}" if n == "_" else f"{n}__{i}" if names.count(n) > 1 else n
        for i, n in enumerate(names)
    ]
    dtype = np.dtype({"names": unique, "formats": formats})
    return unique, dtype, _counts(header)


def _counts(header: dict[str, list[str]]) -> tuple[int, int]:
    """``(POINTS, WIDTH x HEIGHT)``, non-negative integers (POINTS defaults to the
    product, WIDTH to POINTS for the oldest headers)."""
    values = {}
    for key in ("POINTS", "WIDTH", "HEIGHT"):
        if key not in header:
            continue
        text = (header[key] or [""])[0]
        if not text.isdigit():  # also refuses "-1" and "1e9"
            raise PointCloudFileError(
                f"PCD header {key} must be a non-negative integer, got {text!r}"
            )
        values[key] = int(text)
    if "WIDTH" not in values and "POINTS" not in values:
        raise PointCloudFileError("PCD header needs WIDTH and POINTS counts")
    height = values.get("HEIGHT", 1)
    grid = values["WIDTH"] * height if "WIDTH" in values else values["POINTS"]
    return values.get("POINTS", grid), grid


def _check_grid(num: int, grid: int, header: dict[str, list[str]]) -> None:
    if num != grid:
        width, height = header["WIDTH"][0], header.get("HEIGHT", ["1"])[0]
        raise PointCloudFileError(
            f"PCD header declares POINTS {num} but WIDTH x HEIGHT = {width} x "
            f"{height} = {grid}; the file is inconsistent"
        )


def _short(what: str, num: int, got: int) -> PointCloudFileError:
    return PointCloudFileError(
        f"header declares {num} points but the {what} body holds only {got} "
        "(truncated file?)"
    )


def parse_pcd(raw: bytes) -> PointCloud:
    """Parse the bytes of a PCD file (ascii, binary or binary_compressed).

    The header's counts are checked before anything is allocated: ``POINTS``
    must equal ``WIDTH x HEIGHT``, the body must hold exactly that many points
    (binary_compressed: PCL's padding after the stream is allowed) and a
    compressed body may not claim more than the ratio limit allows
    (:mod:`pointnet1x1.io.limits`).
    """
    header, start = _parse_header(raw)
    try:
        names, dtype, (num, grid) = _layout(header)
    except (ValueError, TypeError) as err:  # int("x"), bad dtype
        if isinstance(err, PointCloudFileError):
            raise
        raise PointCloudFileError(f"malformed PCD header: {err}") from None
    mode = (header["DATA"] or ["?"])[0].lower()
    body = raw[start:]
    if mode == "ascii":
        data = _ascii(body, names, dtype, num)
    elif mode == "binary":
        need = num * dtype.itemsize
        if len(body) < need:
            raise _short("binary", num, len(body) // dtype.itemsize)
        if len(body) - need >= dtype.itemsize:
            raise PointCloudFileError(
                f"header declares {num} points but the binary body holds "
                f"{len(body) // dtype.itemsize} (a wrong POINTS count?)"
            )
        records = np.frombuffer(body, dtype=dtype, count=num)
        data = {name: records[name] for name in names}
    elif mode == "binary_compressed":
        data = _decompress(body, names, dtype, num)
    else:
        raise PointCloudFileError(
            f"unknown PCD DATA type {mode!r}; expected ascii, binary or binary_compressed"
        )
    _check_grid(num, grid, header)
    # "_" fields are PCL's padding
    return cloud_from_columns({n: v for n, v in data.items() if not n.startswith("_")})


def _ascii(
    body: bytes, names: list[str], dtype: np.dtype, num: int
) -> dict[str, np.ndarray]:
    text = body.decode("latin-1")
    try:
        values = np.fromstring(text, dtype=np.float64, sep=" ")
    except ValueError:
        bad = next((t for t in text.split() if not _is_float(t)), "?")
        raise PointCloudFileError(f"ascii body is not numbers ({bad[:40]!r})") from None
    width = sum(int(np.prod(dtype[n].shape or (1,))) for n in names)
    if len(values) < num * width:
        raise _short("ascii", num, len(values) // width)
    if len(values) > num * width:
        raise PointCloudFileError(
            f"header declares {num} points of {width} values but the ascii body "
            f"holds {len(values)} values (a wrong POINTS count?)"
        )
    table = values.reshape(num, width)
    data, col = {}, 0
    for name in names:
        k = int(np.prod(dtype[name].shape or (1,)))
        column = table[:, col] if k == 1 else table[:, col : col + k]
        base = dtype[name].base
        # packed colours are written as the float of their bits
        data[name] = column.astype(np.float32 if base.kind == "f" else base)
        col += k
    return data


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
    check_inflation(int(size), int(compressed), "binary_compressed body")
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
    raw = read_input(path)
    try:
        return parse_pcd(raw)
    except PointCloudFileError as err:
        raise PointCloudFileError(err.problem, path) from None


_RESERVED = {"x", "y", "z", "normal_x", "normal_y", "normal_z", "rgb", "rgba", "_"}
_PCD_TYPES = {code: kind_size for kind_size, code in _TYPES.items()}


def _field_columns(cloud: PointCloud) -> list[tuple[str, np.ndarray]]:
    """The cloud's extra fields as ``(name, (N, K) array)`` of a PCD type."""
    out = []
    for name, value in cloud.fields.items():
        if (
            not name.isascii()
            or not name.isprintable()
            or any(c.isspace() for c in name)
            or name.lower() in _RESERVED
        ):
            raise PointCloudFileError(
                f"field name {name!r} cannot be written to PCD (reserved or has "
                "spaces); rename it, or write .ply / .npz"
            )
        value = np.asarray(value)
        if value.dtype == np.bool_:
            value = value.astype(np.uint8)
        elif value.dtype.str[1:] not in _PCD_TYPES:
            value = value.astype(np.float64 if value.dtype.kind == "f" else np.int32)
        out.append((name, value.reshape(len(cloud), -1)))
    return out


def write_pcd(path: PathLike, cloud: PointCloud) -> None:
    """Write ``cloud`` as a binary PCD, atomically: x y z, normals
    (``normal_x ...``), colours (packed ``rgb``) and every field (its own type;
    ``(N, K)`` fields with ``COUNT K``, deeper ones flattened)."""
    fields: list[tuple[str, str, int]] = [(a, "<f4", 1) for a in "xyz"]
    if cloud.normals is not None:
        fields += [(f"normal_{a}", "<f4", 1) for a in "xyz"]
    if cloud.colors is not None:
        fields.append(("rgb", "<u4", 1))
    extra = _field_columns(cloud)
    fields += [(n, "<" + v.dtype.str[1:], v.shape[1]) for n, v in extra]
    table = np.empty(
        len(cloud), dtype=[(n, t, (k,)) if k > 1 else (n, t) for n, t, k in fields]
    )
    for i, axis in enumerate("xyz"):
        table[axis] = cloud.points[:, i]
        if cloud.normals is not None:
            table[f"normal_{axis}"] = cloud.normals[:, i]
    if cloud.colors is not None:
        rgb = np.round(np.clip(cloud.colors, 0, 1) * 255).astype(np.uint32)
        table["rgb"] = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
    for name, value in extra:
        table[name] = value[:, 0] if value.shape[1] == 1 else value
    kinds = [_PCD_TYPES[t[1:]] for _, t, _ in fields]
    n = len(cloud)
    header = (
        "# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\n"
        f"FIELDS {' '.join(f for f, _, _ in fields)}\n"
        f"SIZE {' '.join(str(size) for _, size in kinds)}\n"
        f"TYPE {' '.join(kind for kind, _ in kinds)}\n"
        f"COUNT {' '.join(str(k) for _, _, k in fields)}\n"
        f"WIDTH {n}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA binary\n"
    )
    with atomic_open(path) as file:
        file.write(header.encode("ascii"))
        file.write(table.tobytes())
