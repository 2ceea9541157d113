"""Shared MLPs: the same dense layers applied to every point, as 1x1 convolutions.

Tensor convention of the whole package: every ``nn.Module`` takes channels-first
tensors, ``(B, C, N)`` for clouds of ``N`` points with ``C`` channels, which is what
``Conv1d`` expects. A ``Conv1d(C_in, C_out, kernel_size=1)`` computes ``W @ x_n + b``
for every point ``n``, i.e. one ``nn.Linear`` shared by all points: that is the
"shared MLP" of PointNet. Files, datasets and transforms work per sample,
points-major ``(N, 3 + F)``; the one transpose happens in the collate function.

:class:`SharedMLP` also takes a flat ``(M, C)`` tensor of points (the ragged,
PyTorch Geometric layout) and gives the same numbers with the same weights.
:class:`SharedMLP2d` is the ``Conv2d`` 1x1 variant for grouped neighbourhoods
``(B, C, N, K)`` as used by PointNet++.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


def _check_channels(channels: Sequence[int]) -> list[int]:
    channels = [int(c) for c in channels]
    if len(channels) < 2:
        raise ValueError(
            f"channels needs at least an input and an output width, got {channels}"
        )
    if any(c <= 0 for c in channels):
        raise ValueError(f"channels must be positive, got {channels}")
    return channels


class _SharedMLPBase(nn.Module):
    """Stack of 1x1 convolution + norm + activation blocks (shared by 1-D and 2-D)."""

    _conv: type[nn.Module]
    _default_norm: type[nn.Module]
    _dims: int  # number of spatial dims after the channel dim

    def __init__(
        self,
        channels: Sequence[int],
        *,
        norm_layer: type[nn.Module] | None = None,
        act_layer: type[nn.Module] | None = nn.ReLU,
        bias: bool | None = None,
        dropout: float = 0.0,
        plain_last: bool = False,
    ) -> None:
        super().__init__()
        self.channels = _check_channels(channels)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.plain_last = plain_last
        layers: list[nn.Module] = []
        pairs = list(zip(self.channels[:-1], self.channels[1:], strict=True))
        for i, (c_in, c_out) in enumerate(pairs):
            last_plain = plain_last and i == len(pairs) - 1
            use_norm = norm_layer is not None and not last_plain
            # A bias before a norm layer is cancelled by the norm's mean: skip it.
            layer_bias = (not use_norm) if bias is None else bias
            layers.append(self._conv(c_in, c_out, kernel_size=1, bias=layer_bias))
            if last_plain:
                continue
            if norm_layer is not None:
                layers.append(norm_layer(c_out))
            if act_layer is not None:
                layers.append(act_layer())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        self.layers = nn.Sequential(*layers)

    @property
    def in_channels(self) -> int:
        return self.channels[0]

    @property
    def out_channels(self) -> int:
        return self.channels[-1]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(map(str, self.channels))})"

    def _shape_error(self, x: Tensor) -> ValueError:
        c = self.in_channels
        expected = "(B, {c}, N) or (M, {c})" if self._dims == 1 else "(B, {c}, N, K)"
        return ValueError(
            f"{type(self).__name__} expected input of shape {expected.format(c=c)}, "
            f"got {tuple(x.shape)}"
        )


class SharedMLP(_SharedMLPBase):
    """A shared MLP over points: ``Conv1d(kernel_size=1)`` + norm + activation blocks.

    The same weights apply to every point, exactly like one ``nn.Linear`` per layer
    applied point by point (see :meth:`to_linear`).

    Args:
        channels: Widths from input to output, e.g. ``[3, 64, 128]``.
        norm_layer: Norm class instantiated with the width of each layer
            (default ``nn.BatchNorm1d``; ``None`` for no norm).
        act_layer: Activation class (default ``nn.ReLU``; ``None`` for none).
        bias: Bias of the convolutions; default: only where no norm follows.
        dropout: Dropout probability after each activation.
        plain_last: If true, the last layer is a bare convolution (no norm,
            activation or dropout), as for a layer that outputs logits.

    Shape:
        - Input: ``(B, C_in, N)`` channels-first, or ``(M, C_in)`` flat points.
        - Output: ``(B, C_out, N)``, or ``(M, C_out)`` for flat input.
    """

    _conv = nn.Conv1d
    _dims = 1

    def __init__(
        self,
        channels: Sequence[int],
        *,
        norm_layer: type[nn.Module] | None = nn.BatchNorm1d,
        act_layer: type[nn.Module] | None = nn.ReLU,
        bias: bool | None = None,
        dropout: float = 0.0,
        plain_last: bool = False,
    ) -> None:
        super().__init__(
            channels,
            norm_layer=norm_layer,
            act_layer=act_layer,
            bias=bias,
            dropout=dropout,
            plain_last=plain_last,
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 3 and x.shape[1] == self.in_channels:
            return self.layers(x)
        if x.dim() == 2 and x.shape[1] == self.in_channels:
            # (M, C) -> (1, C, M): BatchNorm1d statistics over M points are the
            # same as over the batch dim of (M, C), so the numbers match exactly.
            return self.layers(x.t().unsqueeze(0)).squeeze(0).t()  # (M, C_out)
        raise self._shape_error(x)

    def to_linear(self) -> nn.Sequential:
        """The equivalent per-point module made of ``nn.Linear`` layers.

        Each ``Conv1d`` becomes an ``nn.Linear`` with the same weights, and each
        ``BatchNorm1d`` is **folded into the preceding Linear** using its running
        statistics, so the result equals this module in **eval mode**. Activations
        and dropout are kept as they are. The returned module acts on channels-last
        tensors ``(..., C_in)``: applied to ``x[:, :, n]`` (shape ``(B, C_in)``) it
        gives ``self.eval()(x)[:, :, n]``.

        Raises:
            ValueError: If a norm layer other than ``BatchNorm1d`` is used (it
                cannot be folded into a linear map).
        """
        return _fold_to_linear(self.layers)


class SharedMLP2d(_SharedMLPBase):
    """A shared MLP over grouped neighbourhoods: ``Conv2d`` 1x1 blocks.

    Used by PointNet++ set abstraction on ``(B, C, npoint, nsample)`` groups: the
    same dense layers apply to every neighbour of every centroid.

    Args:
        channels: Widths from input to output, e.g. ``[3, 64, 64, 128]``.
        norm_layer: Norm class (default ``nn.BatchNorm2d``; ``None`` for none).
        act_layer: Activation class (default ``nn.ReLU``).
        bias: Bias of the convolutions; default: only where no norm follows.
        dropout: Dropout probability after each activation.
        plain_last: If true, the last layer is a bare convolution.

    Shape:
        - Input: ``(B, C_in, N, K)``.
        - Output: ``(B, C_out, N, K)``.
    """

    _conv = nn.Conv2d
    _dims = 2

    def __init__(
        self,
        channels: Sequence[int],
        *,
        norm_layer: type[nn.Module] | None = nn.BatchNorm2d,
        act_layer: type[nn.Module] | None = nn.ReLU,
        bias: bool | None = None,
        dropout: float = 0.0,
        plain_last: bool = False,
    ) -> None:
        super().__init__(
            channels,
            norm_layer=norm_layer,
            act_layer=act_layer,
            bias=bias,
            dropout=dropout,
            plain_last=plain_last,
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 4 and x.shape[1] == self.in_channels:
            return self.layers(x)
        raise self._shape_error(x)

    def to_linear(self) -> nn.Sequential:
        """The equivalent per-point ``nn.Linear`` module (eval mode, BN folded).

        See :meth:`SharedMLP.to_linear`; acts on channels-last ``(..., C_in)``.
        """
        return _fold_to_linear(self.layers)


def fold_batchnorm(
    weight: Tensor, bias: Tensor | None, norm: nn.modules.batchnorm._BatchNorm
) -> tuple[Tensor, Tensor]:
    """Fold an eval-mode batch norm that follows ``y = W x + b`` into ``W, b``.

    Args:
        weight: Tensor of shape ``(C_out, C_in)`` giving the layer's weight.
        bias: Tensor of shape ``(C_out,)`` or ``None``.
        norm: The batch norm applied to the layer's output.

    Returns:
        ``(W', b')`` with ``W' x + b' == norm.eval()(W x + b)``.
    """
    if norm.running_mean is None or norm.running_var is None:
        raise ValueError("cannot fold a BatchNorm without running statistics")
    scale = torch.rsqrt(norm.running_var + norm.eps)
    if norm.weight is not None:
        scale = scale * norm.weight
    b = bias if bias is not None else torch.zeros_like(norm.running_mean)
    new_bias = (b - norm.running_mean) * scale
    if norm.bias is not None:
        new_bias = new_bias + norm.bias
    return weight * scale[:, None], new_bias


def _fold_to_linear(layers: nn.Sequential) -> nn.Sequential:
    out: list[nn.Module] = []
    modules = list(layers)
    i = 0
    while i < len(modules):
        m = modules[i]
        if isinstance(m, nn.Conv1d | nn.Conv2d):
            weight = m.weight.detach().reshape(m.out_channels, m.in_channels)
            bias = None if m.bias is None else m.bias.detach()
            nxt = modules[i + 1] if i + 1 < len(modules) else None
            if isinstance(nxt, nn.modules.batchnorm._BatchNorm):
                weight, bias = fold_batchnorm(weight, bias, nxt)
                i += 1
            elif nxt is not None and _is_norm(nxt):
                raise ValueError(
                    f"to_linear() can fold only BatchNorm layers, got {type(nxt).__name__}"
                )
            linear = nn.Linear(
                m.in_channels,
                m.out_channels,
                bias=bias is not None,
                device=weight.device,
                dtype=weight.dtype,
            )
            with torch.no_grad():
                linear.weight.copy_(weight)
                if bias is not None:
                    linear.bias.copy_(bias)
            out.append(linear)
        else:
            out.append(m)
        i += 1
    return nn.Sequential(*out)


def _is_norm(m: nn.Module) -> bool:
    norms = (nn.LayerNorm, nn.GroupNorm, nn.modules.instancenorm._InstanceNorm)
    return isinstance(m, norms)
