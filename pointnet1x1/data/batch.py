"""Batches: :func:`collate` (the one transpose) and :func:`augment_batch` (on device).

Datasets and transforms work per sample, points-major ``(N, 3+F)``; every
``nn.Module`` takes channels-first ``(B, C, N)``. :func:`collate` is the single
place where one becomes the other.

:func:`augment_batch` applies the usual training augmentations to a whole batch
at once, on whatever device the batch lives (CPU or GPU), with one
:class:`torch.Generator` for reproducibility. Its distribution matches the
per-sample :mod:`pointnet1x1.data.transforms` applied in the order rotate, scale,
shift, jitter, dropout.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pointnet1x1.io.axes import (
    MODEL_UP_AXIS,
    check_up_axis,
    rotate_points,
    rotation_about_axis,
)

__all__ = ["augment_batch", "collate", "random_rotation_matrices"]


def collate(samples: Sequence[tuple[Any, Any]]) -> tuple[Tensor, Tensor]:
    """Stack ``(points, label)`` samples into a channels-first batch.

    Args:
        samples: Sequence of pairs: array or tensor of shape (N, 3+F) giving the
            points of one cloud (the same N for all), and an integer label.

    Returns:
        Tensor of shape (B, 3+F, N), float32, and tensor of shape (B,), int64.
    """
    if len(samples) == 0:
        raise ValueError("cannot collate an empty list of samples")
    clouds: list[Tensor] = []
    labels: list[int] = []
    for i, sample in enumerate(samples):
        if len(sample) != 2:
            raise ValueError(
                f"sample {i}: expected (points, label), got {len(sample)} items"
            )
        pts = torch.as_tensor(
            np.asarray(sample[0]) if not torch.is_tensor(sample[0]) else sample[0]
        )
        if pts.ndim != 2 or pts.shape[1] < 3:
            raise ValueError(
                f"sample {i}: expected points of shape (N, 3+F), got {tuple(pts.shape)}"
            )
        if clouds and pts.shape != clouds[0].shape:
            raise ValueError(
                f"sample {i}: shape {tuple(pts.shape)} differs from {tuple(clouds[0].shape)}"
                "; sample every cloud to the same num_points before collating"
            )
        clouds.append(pts)
        labels.append(int(sample[1]))
    x = torch.stack(clouds).to(torch.float32).transpose(1, 2).contiguous()  # (B, C, N)
    return x, torch.tensor(labels, dtype=torch.int64)


def _uniform(
    shape: tuple[int, ...], low: float, high: float, like: Tensor, gen
) -> Tensor:
    u = torch.rand(shape, generator=gen, device=like.device, dtype=torch.float32)
    return (low + (high - low) * u).to(like.dtype)


def random_rotation_matrices(
    batch: int,
    mode: str,
    *,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
    axis: str = MODEL_UP_AXIS,
) -> Tensor:
    """``batch`` random rotations: about ``axis`` (``mode="up"``) or uniform in SO(3).

    Returns:
        Tensor of shape (B, 3, 3), float32; apply as ``xyz @ R.transpose(1, 2)``.
    """
    if mode == "so3":
        # A normalised Gaussian quaternion is uniform on S^3, hence on SO(3).
        q = torch.randn(batch, 4, generator=generator, device=device)
        w, x, y, z = (q / q.norm(dim=1, keepdim=True)).unbind(1)
        rows = [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ]  # fmt: skip
        return torch.stack(rows, dim=1).view(batch, 3, 3)
    if mode != "up":
        raise ValueError(f"rotate must be 'up', 'so3' or None, got {mode!r}")
    axis = check_up_axis(axis, "axis")
    theta = torch.rand(batch, generator=generator, device=device) * (2 * math.pi)
    return rotation_about_axis(theta, axis)


def augment_batch(
    x: Tensor,
    *,
    scale: tuple[float, float] | None = (0.8, 1.25),
    shift: float | None = 0.1,
    jitter: float | None = 0.01,
    jitter_clip: float = 0.05,
    rotate: str | None = None,
    dropout: float | None = 0.875,
    up_axis: str = MODEL_UP_AXIS,
    channels_first: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Augment every cloud of a batch independently, on the batch's device.

    In order: rotation (``"up"`` about ``up_axis`` or ``"so3"``; normals in
    channels 3:6 turn with the points), one scale factor per cloud drawn from
    ``scale``, one shift per cloud from ``[-shift, shift]^3``, Gaussian jitter of
    std ``jitter`` clipped to ``jitter_clip``, and PointNet++ dropout (a fraction
    drawn from ``[0, dropout]`` of points replaced by the first point). ``None`` (or
    0) switches a step off.

    Args:
        x: Tensor of shape (B, N, 3+F) giving the clouds (or (B, 3+F, N) with
            ``channels_first=True``), float, on any device.
        generator: A :class:`torch.Generator` on ``x.device``, for reproducibility.

    Returns:
        A new tensor of the same shape, dtype and device.
    """
    if x.ndim != 3:
        raise ValueError(f"expected a batch of shape (B, N, 3+F), got {tuple(x.shape)}")
    pts = x.transpose(1, 2) if channels_first else x  # (B, N, C)
    if pts.shape[2] < 3:
        raise ValueError(
            f"expected at least 3 channels (xyz), got shape {tuple(x.shape)}"
        )
    b, n, _ = pts.shape
    out = pts.clone()
    if rotate is not None:
        rot = random_rotation_matrices(
            b, rotate, device=x.device, generator=generator, axis=up_axis
        ).to(x.dtype)
        out = rotate_points(out, rot)  # normals (channels 3:6) turn too
    xyz = out[:, :, :3]
    if scale is not None:
        low, high = scale
        if not 0 < low <= high:
            raise ValueError(
                f"scale must be (low, high) with 0 < low <= high, got {scale}"
            )
        xyz.mul_(_uniform((b, 1, 1), low, high, x, generator))
    if shift:
        xyz.add_(_uniform((b, 1, 3), -shift, shift, x, generator))
    if jitter:
        noise = torch.randn((b, n, 3), generator=generator, device=x.device) * jitter
        xyz.add_(noise.clamp_(-jitter_clip, jitter_clip).to(x.dtype))
    if dropout:
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        ratio = torch.rand((b, 1), generator=generator, device=x.device) * dropout
        drop = torch.rand((b, n), generator=generator, device=x.device) <= ratio
        out = torch.where(drop.unsqueeze(2), out[:, :1, :].expand_as(out), out)
    return out.transpose(1, 2).contiguous() if channels_first else out
