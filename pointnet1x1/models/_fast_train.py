"""A faster training forward of PointNet: batch norm, ReLU and max pool fused.

Private helper of :mod:`pointnet1x1.models.fast` (see :func:`forward_train`).

In training mode the layer before each max pool computes, per channel,
``max_n relu(bn(z_n))`` over a ``(B, 1024, N)`` tensor ``z``. Batch norm in
training is ``a (z - mean) + beta`` per channel with ``a = gamma / sqrt(var + eps)``,
monotone in ``z``: so the max of the normalised, rectified tensor is the
normalised, rectified max of ``z`` (or min, where ``a < 0``). Only the batch
statistics and the per-channel extreme are needed; the normalised tensor, its
ReLU and the dense max-pool mask are never built, forward or backward (the max
uses ``torch.max`` with indices, whose backward is a scatter). The conv bias in
front of the batch norm cancels in training (its exact gradient is zero) and
only enters the running mean, which is updated exactly as ``F.batch_norm`` does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from pointnet1x1.models.pointnet import PointNetClassifier
from pointnet1x1.nn import SharedMLP, TNet, global_max_pool, orthogonality_loss


def _split_last_block(
    mlp: SharedMLP,
) -> tuple[nn.Sequential, nn.Conv1d, nn.BatchNorm1d] | None:
    """``(blocks before, last conv, last BN)`` when the last block is conv-BN-ReLU."""
    layers = list(mlp.layers)
    if len(layers) < 3:
        return None
    conv, bn, act = layers[-3:]
    if not (isinstance(conv, nn.Conv1d) and isinstance(bn, nn.BatchNorm1d)):
        return None
    fusable = (
        type(bn) is nn.BatchNorm1d
        and bn.affine
        and bn.track_running_stats
        and bn.training
        and type(act) is nn.ReLU
    )
    return (nn.Sequential(*layers[:-3]), conv, bn) if fusable else None


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


class _BatchNormReluMax(torch.autograd.Function):
    """``max_n relu(gamma (z - mean) / sqrt(var + eps) + beta)`` with batch statistics.

    Forward reads ``z`` three times (sum, sum of squares, max with indices);
    backward writes ``dz`` in one pass (``dz = a_c z + b_c`` from the statistics'
    gradients) plus a scatter at the max indices.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        z: Tensor,
        gamma: Tensor,
        beta: Tensor,
        eps: float,
    ) -> tuple[Tensor, Tensor, Tensor]:
        b, c, n = z.shape
        count = b * n
        # Per-row reductions over the contiguous point axis (fp32 accumulators,
        # also for bf16 z under autocast), combined across the batch in fp64.
        row_sum = z.sum(dim=2, dtype=torch.float32)
        row_norm = torch.linalg.vector_norm(z, dim=2, dtype=torch.float32)
        mean = row_sum.double().sum(dim=0) / count
        mean_sq = row_norm.double().square().sum(dim=0) / count
        var = (mean_sq - mean.square()).clamp_min(0.0)
        stat = gamma.dtype  # fp32 parameters
        mean, var = mean.to(stat), var.to(stat)
        invstd = torch.rsqrt(var + eps)
        scale = gamma * invstd  # (C,)
        extreme, index = z.max(dim=2)  # (B, C)
        negative = scale < 0
        if bool(negative.any()):  # a decreasing map takes its max at the min
            low, low_index = z.min(dim=2)
            extreme = torch.where(negative, low, extreme)
            index = torch.where(negative, low_index, index)
        extreme = extreme.to(stat)
        out = ((extreme - mean) * scale + beta).relu()
        ctx.save_for_backward(z, gamma, mean, var, invstd, extreme, index, out)
        ctx.eps = eps  # type: ignore[attr-defined]
        ctx.mark_non_differentiable(mean, var)
        return out, mean, var

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        grad_out: Tensor,
        _grad_mean: Tensor,
        _grad_var: Tensor,
    ) -> tuple[Tensor | None, Tensor | None, Tensor | None, None]:
        z, gamma, mean, var, invstd, extreme, index, out = ctx.saved_tensors  # type: ignore[attr-defined]
        b, c, n = z.shape
        count = b * n
        g = grad_out * (out > 0)  # through the ReLU, (B, C)
        centred = extreme - mean
        grad_beta = g.sum(dim=0)
        grad_scale = (g * centred).sum(dim=0)  # (C,)
        grad_gamma = grad_scale * invstd
        scale = gamma * invstd
        grad_var = grad_scale * gamma * (-0.5) * invstd / (var + ctx.eps)  # type: ignore[attr-defined]
        grad_extreme = g * scale  # (B, C)
        grad_mean = -grad_extreme.sum(dim=0)
        # dz = grad_mean / count + grad_var * 2 (z - mean) / count, then the scatter.
        slope = (2.0 / count) * grad_var
        offset = grad_mean / count - slope * mean
        dt = z.dtype
        grad_z = torch.addcmul(
            offset.to(dt).view(1, c, 1), z, slope.to(dt).view(1, c, 1)
        )
        grad_z.scatter_add_(2, index.unsqueeze(2), grad_extreme.to(dt).unsqueeze(2))
        return grad_z, grad_gamma, grad_beta, None


def _conv_bn_relu_max(h: Tensor, conv: nn.Conv1d, bn: nn.BatchNorm1d) -> Tensor:
    """``max_n relu(bn(conv(h)))`` of shape ``(B, C_out)`` without the dense tensors."""
    z = F.conv1d(h, conv.weight)  # (B, C_out, N); the bias cancels in the batch norm
    out, mean, var = _apply_fused(z, bn)
    bias = conv.bias.detach() if conv.bias is not None else 0.0
    _update_running_stats(bn, mean + bias, var, z.shape[0] * z.shape[2])
    if conv.bias is not None:  # give the cancelled bias its exact (zero) gradient
        out = out + 0.0 * conv.bias.sum()
    return out


def _apply_fused(z: Tensor, bn: nn.BatchNorm1d) -> tuple[Tensor, Tensor, Tensor]:
    return _BatchNormReluMax.apply(z, bn.weight, bn.bias, bn.eps)  # type: ignore[no-any-return]


def _pooled_mlp(mlp: SharedMLP, h: Tensor) -> Tensor:
    """``global_max_pool(mlp(h))`` with the last block fused when possible."""
    split = _split_last_block(mlp)
    if split is None:
        return global_max_pool(mlp(h))
    before, conv, bn = split
    return _conv_bn_relu_max(before(h), conv, bn)


def _tnet(tnet: TNet, h: Tensor) -> Tensor:
    pooled = _pooled_mlp(tnet.mlp, h)  # (B, 1024)
    return tnet.out(tnet.fc(pooled)).view(-1, tnet.k, tnet.k)


def _apply(x: Tensor, transform: Tensor) -> Tensor:
    return torch.bmm(transform.transpose(1, 2), x)  # (B, k, N), as the encoder


def forward_train(model: PointNetClassifier, x: Tensor) -> tuple[Tensor, Tensor]:
    """``model(x, return_aux=True)`` with fused pooled layers (see the module doc)."""
    enc = model.encoder
    if x.dim() != 3 or x.shape[1] != enc.in_channels:
        raise ValueError(
            f"{type(model).__name__} expected points of shape "
            f"(B, {enc.in_channels}, N), got {tuple(x.shape)}"
        )
    if enc.input_tnet is not None:
        t_in = _tnet(enc.input_tnet, x)
        parts = [_apply(x[:, :3], t_in)]
        if enc.in_channels >= 6:  # normals rotate with the points
            parts.append(_apply(x[:, 3:6], t_in))
        x = torch.cat([*parts, x[:, 6:]], dim=1)
    local = enc.mlp1(x)
    t_feat = None
    if enc.feature_tnet is not None:
        t_feat = _tnet(enc.feature_tnet, local)
        local = _apply(local, t_feat)
    logits = model.forward_head(_pooled_mlp(enc.mlp2, local))
    if t_feat is None:
        return logits, logits.new_zeros(())
    return logits, model.reg_weight * orthogonality_loss(t_feat)
