"""The fast training forward of PointNet: channels-last, the widest layers fused.

Private helper of :mod:`pointnet1x1.models.fast` (see :func:`forward_train`).
Where the time of a plain training step goes on a CPU (profiled with
``torch.profiler`` on ``benchmarks/bench_train.py``): the three 128 -> 1024
layers before the max pools (both T-Nets and the encoder) are 90% of the
multiply-adds, and a ``Conv1d`` over ``(B, 128, N)`` runs them at a third of the
speed of a matrix product whose output stays in cache; ``max`` with indices over
their ``(B, 1024, N)`` outputs, the batch-norm passes over them and the dense
backward products take most of the rest. So, here:

- every shared-MLP layer is one matrix product on channels-last rows ``(M, C)``
  (``M = B * N``): the shared MLP as the ``nn.Linear`` it is, with the model's
  own ``BatchNorm1d``, ``ReLU`` and ``Dropout`` modules applied to ``(M, C)``;
- the layer before each max pool computes, per cloud and channel,
  ``max_n relu(bn(W h_n))``. Batch norm in training is ``a (z - mean) + beta``
  per channel with ``a = gamma / sqrt(var + eps)``, monotone in ``z``: the max of
  the normalised, rectified output is the normalised, rectified max of ``z`` (of
  ``-z`` where ``a < 0``, done by flipping those rows of ``W``). The batch
  statistics of ``z`` follow from the mean and ``K x K`` covariance of the
  ``K``-wide input ``h``: ``mean = W mu``, ``var = diag(W S W^T)``. So ``z`` is
  made a few clouds at a time in a buffer that stays in cache, reduced to its
  per-channel max and dropped: the ``(B, 1024, N)`` tensor never exists;
- the argmax is numpy's, on ``z^T`` laid out ``(C, points)``: torch's
  reduction with indices is ~25x slower than numpy's vectorised argmax there;
- in backward the max sends each cloud and channel's gradient to one point: the
  gradients of ``W`` and ``h`` through ``z`` are a gather and a scatter of
  ``B x C x K`` values instead of two ``M x C x K`` products; the statistics add
  one ``M x K x K`` product.

The conv bias in front of the batch norm cancels in training (its exact gradient
is zero) and only enters the running mean, which is updated as ``F.batch_norm``
does. Same logits, regulariser, gradients and running statistics as the model,
up to rounding (``tests/models/test_fast.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from pointnet1x1.models._fast_train_ops import (
    LinearBatchNormRelu,
    LinearBatchNormReluMax,
    NarrowLinear,
)
from pointnet1x1.models.pointnet import PointNetClassifier
from pointnet1x1.nn import SharedMLP, TNet, orthogonality_loss


def _layers_of(mlp: SharedMLP) -> list[nn.Module]:
    return list(mlp.layers)


def _fusable_tail(layers: list[nn.Module]) -> bool:
    """Whether the last three layers are Conv1d -> BatchNorm1d (training) -> ReLU."""
    if len(layers) < 3:
        return False
    conv, bn, act = layers[-3:]
    return (
        isinstance(conv, nn.Conv1d)
        and type(bn) is nn.BatchNorm1d
        and bn.affine
        and bn.track_running_stats
        and bn.training
        and type(act) is nn.ReLU
    )


def _widens(conv: nn.Module) -> bool:
    """Fuse a block only where it at least doubles the width (3 -> 64, 64 -> 128):
    there the passes over the output it saves outweigh the ``M x K x K``
    products of the statistics (measured: no gain for 64 -> 64)."""
    assert isinstance(conv, nn.Conv1d)
    return 2 * conv.in_channels <= conv.out_channels


def _rows(layers: list[nn.Module], h: Tensor) -> Tensor:
    """Apply shared-MLP layers to channels-last rows ``(M, C)``.

    Conv -> BatchNorm1d (training) -> ReLU blocks run fused
    (:class:`LinearBatchNormRelu`); anything else runs as the conv's linear map
    and the model's own modules on ``(M, C)``.
    """
    i = 0
    while i < len(layers):
        if _fusable_tail(layers[i : i + 3]) and _widens(layers[i]):
            conv, bn = layers[i], layers[i + 1]
            assert isinstance(conv, nn.Conv1d) and isinstance(bn, nn.BatchNorm1d)
            count = h.shape[0]
            h, mean, var = LinearBatchNormRelu.apply(
                h,
                conv.weight.squeeze(2),
                conv.bias,
                bn.weight,
                bn.bias,
                bn.eps,
                _bf16(h),
            )
            _running_stats(conv, bn, mean, var, count)
            i += 3
            continue
        layer = layers[i]
        if isinstance(layer, nn.Conv1d):
            weight = layer.weight.squeeze(2)
            if weight.shape[1] <= 8 and h.device.type == "cpu":
                h = NarrowLinear.apply(h, weight, layer.bias)
            else:
                h = F.linear(h, weight, layer.bias)
        else:  # BatchNorm1d in eval, ReLU, Dropout: the model's modules, on (M, C)
            h = layer(h)
        i += 1
    return h


def _running_stats(
    conv: nn.Conv1d, bn: nn.BatchNorm1d, mean: Tensor, var: Tensor, count: int
) -> None:
    """Update ``bn``'s running statistics from those of the conv output without
    its bias (the bias cancels in training and only enters the running mean)."""
    bias = conv.bias.detach() if conv.bias is not None else 0.0
    _update_running_stats(bn, mean + bias, var, count)


def _update_running_stats(
    bn: nn.BatchNorm1d, mean: Tensor, var: Tensor, count: int
) -> None:
    """What ``F.batch_norm(training=True)`` does to the buffers, given batch stats."""
    assert bn.running_mean is not None and bn.running_var is not None
    assert bn.num_batches_tracked is not None
    with torch.no_grad():
        bn.num_batches_tracked.add_(1)
        if bn.momentum is None:  # cumulative moving average
            factor = 1.0 / float(bn.num_batches_tracked)
        else:
            factor = bn.momentum
        unbiased = var * (count / max(count - 1, 1))
        bn.running_mean.mul_(1 - factor).add_(mean, alpha=factor)
        bn.running_var.mul_(1 - factor).add_(unbiased, alpha=factor)


def _bf16(h: Tensor) -> bool:
    return _autocast_bf16(h.device.type)


def _autocast_bf16(device_type: str) -> bool:
    """Whether autocast to bf16 is on for ``device_type`` (the wide layer then runs in bf16)."""
    try:
        return torch.is_autocast_enabled(device_type) and (
            torch.get_autocast_dtype(device_type) == torch.bfloat16
        )
    except (TypeError, AttributeError):  # torch < 2.4
        if device_type == "cpu":
            return bool(torch.is_autocast_cpu_enabled())
        return (
            torch.is_autocast_enabled()
            and torch.get_autocast_gpu_dtype() == torch.bfloat16
        )


def _pooled(mlp: SharedMLP, h: Tensor, clouds: int) -> Tensor:
    """``global_max_pool(mlp(x))`` from channels-last rows ``h``: ``(B, C_out)``."""
    layers = _layers_of(mlp)
    if not _fusable_tail(layers):
        feat = _rows(layers, h)  # (M, C)
        return feat.view(clouds, -1, feat.shape[1]).max(dim=1).values
    conv, bn = layers[-3], layers[-2]
    assert isinstance(conv, nn.Conv1d) and isinstance(bn, nn.BatchNorm1d)
    h = _rows(layers[:-3], h)
    out, mean, var = LinearBatchNormReluMax.apply(
        h,
        conv.weight.squeeze(2),
        conv.bias,
        bn.weight,
        bn.bias,
        bn.eps,
        clouds,
        _bf16(h),
    )
    _running_stats(conv, bn, mean, var, h.shape[0])
    return out


def _tnet(tnet: TNet, h: Tensor, clouds: int) -> Tensor:
    pooled = _pooled(tnet.mlp, h, clouds)  # (B, 1024)
    return tnet.out(tnet.fc(pooled)).view(-1, tnet.k, tnet.k)


def _transform(h: Tensor, transform: Tensor, clouds: int) -> Tensor:
    """Rows ``(B * N, k)`` times their cloud's ``k x k`` matrix (as the encoder)."""
    k = transform.shape[1]
    return torch.bmm(h.view(clouds, -1, k), transform).view(-1, k)


def forward_train(model: PointNetClassifier, x: Tensor) -> tuple[Tensor, Tensor]:
    """``model(x, return_aux=True)`` channels-last with fused pools (module doc)."""
    enc = model.encoder
    if x.dim() != 3 or x.shape[1] != enc.in_channels:
        raise ValueError(
            f"{type(model).__name__} expected points of shape "
            f"(B, {enc.in_channels}, N), got {tuple(x.shape)}"
        )
    clouds, channels = x.shape[0], x.shape[1]
    h = x.transpose(1, 2).reshape(-1, channels)  # (B * N, C), the one transpose
    if enc.input_tnet is not None:
        t_in = _tnet(enc.input_tnet, h, clouds)  # (B, 3, 3)
        parts = [_transform(h[:, :3], t_in, clouds)]
        if channels >= 6:  # normals rotate with the points
            parts.append(_transform(h[:, 3:6], t_in, clouds))
        h = torch.cat([*parts, h[:, 3 * len(parts) :]], dim=1)
    local = _rows(_layers_of(enc.mlp1), h)  # (B * N, 64)
    t_feat = None
    if enc.feature_tnet is not None:
        t_feat = _tnet(enc.feature_tnet, local, clouds)  # (B, 64, 64)
        local = _transform(local, t_feat, clouds)
    logits = model.forward_head(_pooled(enc.mlp2, local, clouds))
    if t_feat is None:
        return logits, logits.new_zeros(())
    return logits, model.reg_weight * orthogonality_loss(t_feat)
