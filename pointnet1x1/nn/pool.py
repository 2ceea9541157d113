"""Max pooling over the points of each cloud, dense with a mask or ragged by batch.

Shape conventions follow :mod:`pointnet1x1.nn.shared_mlp`: dense clouds are
channels-first ``(B, C, N)``; ragged clouds are flat ``(M, C)`` with a ``batch``
vector of shape ``(M,)`` giving the cloud index of every point.
"""

from __future__ import annotations

import torch
from torch import Tensor


def global_max_pool(
    x: Tensor,
    mask: Tensor | None = None,
    *,
    batch: Tensor | None = None,
    num_clouds: int | None = None,
) -> Tensor:
    """Max over the points of each cloud: the symmetric function of PointNet.

    Args:
        x: Tensor of shape ``(B, C, N)`` giving per-point features, or ``(M, C)``
            flat features when ``batch`` is given.
        mask: Optional bool tensor of shape ``(B, N)``, true for real points;
            padded points are ignored. Every cloud needs at least one real point.
        batch: Optional long tensor of shape ``(M,)`` giving the cloud of every
            row of a flat ``x`` (sorted or not).
        num_clouds: Number of clouds ``B`` for ``batch`` (default ``batch.max()+1``).

    Returns:
        Tensor of shape ``(B, C)`` giving each cloud's pooled feature.
    """
    if batch is not None:
        if x.dim() != 2 or batch.shape != (x.shape[0],):
            raise ValueError(
                "global_max_pool with batch expects x of shape (M, C) and batch of "
                f"shape (M,), got {tuple(x.shape)} and {tuple(batch.shape)}"
            )
        size = int(batch.max()) + 1 if num_clouds is None else num_clouds
        out = x.new_full((size, x.shape[1]), float("-inf"))
        index = batch.long().unsqueeze(1).expand_as(x)
        return out.scatter_reduce(0, index, x, reduce="amax", include_self=True)
    if x.dim() != 3:
        raise ValueError(
            f"global_max_pool expects x of shape (B, C, N), got {tuple(x.shape)}"
        )
    # max(...).values, not amax: its backward is a cheap scatter to the argmax
    # instead of a dense (B, C, N) mask, and PointNet pools 1024 x N activations.
    if mask is None:
        return x.max(dim=2).values
    if mask.shape != (x.shape[0], x.shape[2]):
        raise ValueError(
            f"mask must have shape (B, N) = {(x.shape[0], x.shape[2])}, "
            f"got {tuple(mask.shape)}"
        )
    fill = torch.finfo(x.dtype).min
    return x.masked_fill(~mask.bool().unsqueeze(1), fill).max(dim=2).values
