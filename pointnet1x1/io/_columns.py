"""Turning named per-point columns (PLY properties, PCD fields, text headers) into
a :class:`PointCloud`: which names are positions, normals and colours."""

from __future__ import annotations

import numpy as np

from pointnet1x1.io.cloud import PointCloud, PointCloudFileError

_XYZ = ("x", "y", "z")
_NORMALS = (("nx", "ny", "nz"), ("normal_x", "normal_y", "normal_z"))
_COLORS = (
    ("red", "green", "blue"),
    ("r", "g", "b"),
    ("diffuse_red", "diffuse_green", "diffuse_blue"),
)
_PACKED = ("rgb", "rgba")


def colors_to_unit(rgb: np.ndarray) -> np.ndarray:
    """Colours as float32 in ``[0, 1]``: uint8 / 255, uint16 / 65535, other
    integers / 255; floats are kept unless some value exceeds 1 (then / 255)."""
    if rgb.dtype == np.uint16:
        return (rgb / 65535.0).astype(np.float32)
    if rgb.dtype.kind in "iu":
        return (rgb / 255.0).astype(np.float32)
    rgb = rgb.astype(np.float32)
    finite = rgb[np.isfinite(rgb)]
    return rgb / 255.0 if finite.size and finite.max() > 1.0 else rgb


def unpack_rgb(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PCL's packed colour (uint32 or float32 bits ``0xAARRGGBB``) -> (rgb, alpha)."""
    if packed.dtype.kind == "f":
        packed = packed.astype(np.float32).view(np.uint32)
    packed = packed.astype(np.uint32)
    rgb = np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], axis=1)
    return (rgb / 255.0).astype(np.float32), ((packed >> 24) & 255).astype(np.uint8)


def _take(lower: dict[str, str], names: tuple[str, ...]) -> list[str] | None:
    found = [lower.get(n) for n in names]
    return None if None in found else found  # type: ignore[return-value]


def cloud_from_columns(columns: dict[str, np.ndarray]) -> PointCloud:
    """Build a cloud from named ``(N,)`` or ``(N, K)`` columns.

    ``x y z`` are the positions; ``nx ny nz`` / ``normal_x ...`` the normals;
    ``red green blue`` / ``r g b`` / packed ``rgb`` / ``rgba`` the colours (alpha
    of ``rgba`` kept as field ``alpha``); every other column becomes a field.
    """
    lower = {name.lower(): name for name in columns}
    xyz = _take(lower, _XYZ)
    if xyz is None:
        raise PointCloudFileError(
            f"no x, y, z columns (found: {', '.join(columns) or 'none'})"
        )
    used = set(xyz)
    points = np.stack([columns[n] for n in xyz], axis=1)
    normals = colors = None
    for names in _NORMALS:
        found = _take(lower, names)
        if found is not None:
            normals = np.stack([columns[n] for n in found], axis=1)
            used.update(found)
            break
    fields: dict[str, np.ndarray] = {}
    for names in _COLORS:
        found = _take(lower, names)
        if found is not None:
            rgb = np.stack([columns[n] for n in found], axis=1)
            colors = colors_to_unit(rgb)
            used.update(found)
            break
    if colors is None:
        for packed in _PACKED:
            if packed in lower:
                colors, alpha = unpack_rgb(columns[lower[packed]])
                if packed == "rgba":
                    fields["alpha"] = alpha
                used.add(lower[packed])
                break
    fields.update({n: np.asarray(v) for n, v in columns.items() if n not in used})
    return PointCloud(points, normals, colors, fields)
