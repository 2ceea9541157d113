"""The one up-axis convention of pointnet1x1, written once.

Every file source and dataset layout declares the up axis of its files, every
checkpoint records the up axis its model was trained in, and this module is the
only place that converts between them. Callers (datasets, predictors,
``classify``, ``show``, ``eval``, export metadata) import :func:`convert_up_axis`;
nobody re-derives it.

The conversion is the one measured against the data: ModelNet's Princeton OFF
meshes (z up) and ``modelnet40_normal_resampled`` (y up) hold the same shapes with
the y and z columns **swapped** (a reflection, not a rotation: the comparison of
``airplane_0627`` in both layouts matches only under the swap, see
``tests/data/test_modelnet.py``). The same swap relates the whole-ModelNet40 npy
tree in ``../shared/data/modelnet40_npy_1024`` (z up) to the resampled files. So
going from up axis ``a`` to up axis ``b`` swaps columns ``a`` and ``b`` of the xyz
triple, and of every other 3-vector triple that rides with the points (normals);
the swap is its own inverse.

:data:`MODEL_UP_AXIS` is the convention of the models this library trains: z up,
like the meshes and the scans users bring, so those need no conversion and no
flag. :data:`FILE_UP_AXIS` is what a file handed to ``classify`` / ``show`` is
assumed to be when nothing says otherwise.
"""

from __future__ import annotations

from typing import Any, TypeVar

__all__ = [
    "FILE_UP_AXIS",
    "MODEL_UP_AXIS",
    "UP_AXES",
    "check_up_axis",
    "convert_up_axis",
    "rotate_points",
    "rotation_about_axis",
    "rotation_between",
    "up_axis_index",
    "up_axis_permutation",
]

UP_AXES = ("x", "y", "z")
MODEL_UP_AXIS = "z"  # models trained by pointnet1x1 (checkpoints record it)
FILE_UP_AXIS = "z"  # assumed for files handed to classify/show: meshes, scans

ArrayT = TypeVar("ArrayT")
# rotation about an axis acts in the plane of the two other axes, right-handed
_PLANE = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}


def check_up_axis(axis: str, what: str = "up axis") -> str:
    """``axis`` lower-cased if it is ``"x"``, ``"y"`` or ``"z"``; else ValueError."""
    name = str(axis).lower()
    if name not in UP_AXES:
        raise ValueError(f"{what} must be one of x, y, z; got {axis!r}")
    return name


def up_axis_index(axis: str) -> int:
    """Column of ``axis`` in an xyz triple (``"x"`` 0, ``"y"`` 1, ``"z"`` 2)."""
    return UP_AXES.index(check_up_axis(axis))


def up_axis_permutation(src: str, dst: str) -> list[int]:
    """Column order that turns xyz with up axis ``src`` into up axis ``dst``.

    ``new[:, i] = old[:, perm[i]]``; the swap of the two axes, so the list is its
    own inverse (``[0, 2, 1]`` between y and z).
    """
    a, b = up_axis_index(src), up_axis_index(dst)
    perm = [0, 1, 2]
    perm[a], perm[b] = b, a
    return perm


def convert_up_axis(
    values: ArrayT, src: str, dst: str, *, triples: int = 1, dim: int = -1
) -> ArrayT:
    """Points (and normals) with up axis ``src`` expressed with up axis ``dst``.

    Args:
        values: A numpy array or torch tensor whose ``dim`` axis holds the
            channels ``x, y, z`` first, then optional features: ``(N, 3 + F)``
            per sample (``dim=-1``) or ``(B, C, N)`` channels-first (``dim=1``).
        src: The up axis of ``values`` (``"x"``, ``"y"`` or ``"z"``).
        dst: The up axis wanted.
        triples: How many leading 3-channel groups are vectors that turn with
            the points: 1 for xyz, 2 for xyz + normals. Other channels stay.
        dim: The channel axis.

    Returns:
        A new array or tensor of the same shape and type (a copy even when
        ``src == dst``, so callers may write to it).

    Raises:
        ValueError: An unknown axis, or fewer than ``3 * triples`` channels.
    """
    perm = up_axis_permutation(src, dst)
    channels = int(values.shape[dim])  # type: ignore[attr-defined]
    if triples < 1 or channels < 3 * triples:
        raise ValueError(
            f"expected at least {3 * triples} channels along dim {dim} to convert "
            f"the up axis, got shape {tuple(values.shape)}"  # type: ignore[attr-defined]
        )
    index = [3 * t + p for t in range(triples) for p in perm]
    index += list(range(3 * triples, channels))
    return _take(values, index, dim)


def _take(values: Any, index: list[int], dim: int) -> Any:
    # torch is imported only when a tensor comes in: reading files stays torch-free
    if hasattr(values, "index_select"):
        import torch

        positions = torch.tensor(index, dtype=torch.long, device=values.device)
        return values.index_select(dim, positions)
    import numpy as np

    return np.take(values, index, axis=dim)


def rotation_about_axis(angle: Any, axis: str) -> Any:
    """Right-handed rotation matrices by ``angle`` radians about ``axis``.

    Args:
        angle: A float, a numpy array or a torch tensor of angles, any shape ``S``.
        axis: ``"x"``, ``"y"`` or ``"z"``.

    Returns:
        Matrices of shape ``S + (3, 3)``: float64 numpy for a float or an array,
        a tensor of ``angle``'s dtype and device for a tensor. Apply as
        ``xyz @ R.T`` (points-major) or ``R @ x`` (channels-first ``(3, N)``).
    """
    i, j = _PLANE[check_up_axis(axis)]
    c: Any
    s: Any
    rot: Any
    if hasattr(angle, "index_select"):
        import torch

        c, s = torch.cos(angle), torch.sin(angle)
        rot = torch.zeros((*angle.shape, 3, 3), dtype=angle.dtype, device=angle.device)
    else:
        import numpy as np

        a = np.asarray(angle, dtype=np.float64)
        c, s = np.cos(a), np.sin(a)
        rot = np.zeros((*a.shape, 3, 3))
    k = 3 - i - j  # the axis itself
    rot[..., k, k] = 1.0
    rot[..., i, i], rot[..., i, j], rot[..., j, i], rot[..., j, j] = c, -s, s, c
    return rot


def rotation_between(src: Any, dst: Any) -> Any:
    """The rotation that turns direction ``src`` into direction ``dst``.

    The smallest one: about the axis ``src x dst`` by the angle between them
    (Rodrigues' formula), so a vector perpendicular to both keeps its direction.
    For opposite directions it is the half turn about an axis perpendicular to
    ``src`` (the one nearest to the coordinate axis least aligned with ``src``).
    Scenes use it to turn the up direction they find into :data:`MODEL_UP_AXIS`.

    Args:
        src: A 3-vector (any length but zero).
        dst: A 3-vector (any length but zero), or an axis name ``"x"``,
            ``"y"``, ``"z"``.

    Returns:
        A float64 numpy ``(3, 3)`` proper rotation ``R`` with
        ``R @ src / |src| == dst / |dst|``; apply as :func:`rotate_points`.

    Raises:
        ValueError: A vector that is not three finite numbers, or is zero.
    """
    import numpy as np

    def unit(v: Any, name: str) -> Any:
        if isinstance(v, str):
            v = np.eye(3)[up_axis_index(v)]
        v = np.asarray(v, dtype=np.float64).reshape(-1)
        norm = float(np.linalg.norm(v)) if v.shape == (3,) else 0.0
        if not (np.isfinite(v).all() and norm > 0):
            raise ValueError(f"{name} must be a non-zero finite 3-vector, got {v}")
        return v / norm

    a, b = unit(src, "src"), unit(dst, "dst")
    axis = np.cross(a, b)
    sin, cos = float(np.linalg.norm(axis)), float(a @ b)
    if sin < 1e-12 and cos > 0:
        return np.eye(3)
    if sin < 1e-12:  # opposite: a half turn about any axis perpendicular to a
        helper = np.eye(3)[int(np.argmin(np.abs(a)))]
        axis = np.cross(a, helper)
        axis /= np.linalg.norm(axis)
        return 2.0 * np.outer(axis, axis) - np.eye(3)
    k = axis / sin
    cross = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + sin * cross + (1.0 - cos) * (cross @ cross)


def rotate_points(points: ArrayT, rot: Any, *, triples: int | None = None) -> ArrayT:
    """Rotate points-major ``(..., N, 3 + F)`` points and their normals by ``rot``.

    ``rot`` is ``(3, 3)`` or batched ``(..., 3, 3)`` (numpy with numpy, torch with
    torch). ``triples`` is how many leading 3-channel groups turn (default: 2,
    xyz and normals, when there are at least 6 channels, else 1). Returns a copy.
    """
    channels = int(points.shape[-1])  # type: ignore[attr-defined]
    if triples is None:
        triples = 2 if channels >= 6 else 1
    out = points.copy() if hasattr(points, "copy") else points.clone()  # type: ignore[attr-defined]
    rot_t = rot.swapaxes(-1, -2) if hasattr(rot, "swapaxes") else rot.transpose(-1, -2)
    for t in range(triples):
        block = points[..., 3 * t : 3 * t + 3]  # type: ignore[index]
        out[..., 3 * t : 3 * t + 3] = block @ rot_t  # type: ignore[index]
    return out
