"""T-Net: PointNet's learned alignment, a small PointNet that predicts a k x k matrix.

Tensors are channels-first ``(B, C, N)`` (see :mod:`pointnet1x1.nn.shared_mlp`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from pointnet1x1.nn.pool import global_max_pool
from pointnet1x1.nn.shared_mlp import SharedMLP


class TNet(nn.Module):
    """Predicts a ``k x k`` transform of the input points or features.

    Shared MLP (64, 128, 1024) -> max pool -> FC (512, 256) -> ``k*k``, with batch
    norm and ReLU, as in the authors' ``transform_nets.py``. The last layer starts
    at zero weight and identity bias, so an untrained T-Net is the identity.
    Paper: Qi et al., "PointNet", CVPR 2017, https://arxiv.org/abs/1612.00593

    Args:
        k: Size of the predicted matrix (3 for points, 64 for features).
        in_channels: Channels of the input (default ``k``); the matrix can be
            predicted from more channels than it transforms (xyz + normals).
        mlp: Widths of the shared MLP.
        fc: Widths of the fully connected layers after the max pool.
        norm_layer: Norm for the shared MLP (its 1-D FC layers use ``BatchNorm1d``).
        bias: Bias of the convolutions and FC layers (the authors' code has them).

    Shape:
        - Input: ``(B, in_channels, N)``, optional mask ``(B, N)``; or flat
          ``(M, in_channels)`` with ``batch`` ``(M,)``.
        - Output: ``(B, k, k)``.
    """

    def __init__(
        self,
        k: int,
        in_channels: int | None = None,
        *,
        mlp: Sequence[int] = (64, 128, 1024),
        fc: Sequence[int] = (512, 256),
        norm_layer: type[nn.Module] | None = nn.BatchNorm1d,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        self.k = k
        self.in_channels = k if in_channels is None else in_channels
        self.mlp = SharedMLP([self.in_channels, *mlp], norm_layer=norm_layer, bias=bias)
        # The FC head runs on (B, C) vectors: Linear == Conv1d 1x1 on one "point".
        self.fc = SharedMLP([mlp[-1], *fc], norm_layer=norm_layer, bias=bias)
        self.out = nn.Linear(fc[-1], k * k)
        nn.init.zeros_(self.out.weight)
        with torch.no_grad():
            self.out.bias.copy_(torch.eye(k).flatten())

    def extra_repr(self) -> str:
        return f"k={self.k}, in_channels={self.in_channels}"

    def forward(
        self,
        x: Tensor,
        mask: Tensor | None = None,
        *,
        batch: Tensor | None = None,
        num_clouds: int | None = None,
    ) -> Tensor:
        feat = self.mlp(x)  # (B, 1024, N) or (M, 1024)
        pooled = global_max_pool(feat, mask, batch=batch, num_clouds=num_clouds)
        return self.out(self.fc(pooled)).view(-1, self.k, self.k)  # (B, k, k)


def orthogonality_loss(transform: Tensor) -> Tensor:
    """PointNet's regulariser ``||I - A A^T||_F^2``, averaged over the batch.

    Args:
        transform: Tensor of shape ``(B, k, k)`` giving predicted matrices ``A``.

    Returns:
        Scalar tensor: the mean over the batch of the squared Frobenius norm.
    """
    if transform.dim() != 3 or transform.shape[1] != transform.shape[2]:
        raise ValueError(
            f"expected transforms of shape (B, k, k), got {tuple(transform.shape)}"
        )
    k = transform.shape[1]
    eye = torch.eye(k, device=transform.device, dtype=transform.dtype)
    diff = eye - transform @ transform.transpose(1, 2)
    return diff.square().sum(dim=(1, 2)).mean()
