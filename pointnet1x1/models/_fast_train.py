"""A faster training forward of PointNet: conv, batch norm, ReLU and max pool fused.

Private helper of :mod:`pointnet1x1.models.fast` (see :func:`forward_train`).

In training mode the layer before each max pool computes, per channel,
``max_n relu(bn(z_n))`` with ``z = W h`` a ``(B, 1024, N)`` tensor. Batch norm in
training is ``a (z - mean) + beta`` per channel with ``a = gamma / sqrt(var + eps)``,
monotone in ``z``: so the max of the normalised, rectified tensor is the
normalised, rectified max of ``z`` (or min, where ``a < 0``). The batch
statistics of ``z`` follow from the mean and the ``K x K`` covariance of the
``K = 128``-wide input ``h``. So ``z`` is computed once, read once by the max
(``torch.max`` with indices) and dropped; the normalised tensor, its ReLU and the
dense max-pool mask are never built, and the backward pass of the widest layer
is a gather, a scatter and one ``K x K`` product instead of two full products.
The conv bias in front of the batch norm cancels in training (its exact
gradient is zero) and only enters the running mean, which is updated exactly as
``F.batch_norm`` does.
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


def _autocast_bf16(device_type: str) -> bool:
    """Whether autocast to bf16 is on for ``device_type`` (the wide conv then runs in bf16)."""
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


class _ConvBatchNormReluMax(torch.autograd.Function):
    """``max_n relu(bn(W h_n))`` per cloud and channel, batch statistics from ``h``.

    The batch statistics of ``z = W h`` come from those of ``h`` (its mean
    ``mu`` and covariance ``S``, ``K x K`` with ``K = 128``): ``mean = W mu`` and
    ``var = diag(W S W^T)``. So ``z`` is only read once, by the max (with
    indices), and never saved. In backward, the max sends each cloud and
    channel's gradient to one point: the gradients of ``W`` and ``h`` through
    ``z`` are a gather and a scatter of ``B x C x K`` values instead of two
    ``(B N) x C x K`` products; the statistics add one ``K x K`` product on ``h``.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        h: Tensor,
        weight: Tensor,
        gamma: Tensor,
        beta: Tensor,
        eps: float,
        bf16: bool,
    ) -> tuple[Tensor, Tensor, Tensor]:
        b, k, n = h.shape
        count = b * n
        with torch.autocast(h.device.type, enabled=False):
            low = torch.bfloat16 if bf16 else h.dtype
            z = F.conv1d(h.to(low), weight.to(low).unsqueeze(2))  # (B, C, N)
            h32 = h.float()
            mu = h32.sum(dim=(0, 2)).double() / count  # (K,)
            gram = torch.bmm(h32, h32.transpose(1, 2)).sum(dim=0).double()
            cov = gram / count - torch.outer(mu, mu)  # (K, K)
            w64 = weight.double()
            mean = (w64 @ mu).float()  # (C,)
            var = ((w64 @ cov) * w64).sum(dim=1).clamp_min(0.0).float()
            invstd = torch.rsqrt(var + eps)
            scale = gamma * invstd  # (C,)
            extreme, index = z.max(dim=2)  # (B, C)
            negative = scale < 0
            if bool(negative.any()):  # a decreasing map takes its max at the min
                low_val, low_index = z.min(dim=2)
                extreme = torch.where(negative, low_val, extreme)
                index = torch.where(negative, low_index, index)
            extreme = extreme.float()
            out = ((extreme - mean) * scale + beta).relu()
        ctx.save_for_backward(
            h, weight, gamma, index, extreme, mean, invstd, out, mu, cov
        )
        ctx.mark_non_differentiable(mean, var)
        return out, mean, var

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        grad_out: Tensor,
        _grad_mean: Tensor,
        _grad_var: Tensor,
    ) -> tuple[Tensor | None, ...]:
        h, weight, gamma, index, extreme, mean, invstd, out, mu, cov = ctx.saved_tensors  # type: ignore[attr-defined]
        b, k, n = h.shape
        count = b * n
        with torch.autocast(h.device.type, enabled=False):
            h32 = h.float()
            g = grad_out.float() * (out > 0)  # through the ReLU, (B, C)
            grad_beta = g.sum(dim=0)
            grad_scale = (g * (extreme - mean)).sum(dim=0)  # (C,)
            grad_gamma = grad_scale * invstd
            grad_var = grad_scale * gamma * (-0.5) * invstd.pow(3)
            grad_ext = g * (gamma * invstd)  # (B, C)
            grad_mean = -grad_ext.sum(dim=0)  # (C,)
            # extreme[b, c] = W[c] . h[b, :, index[b, c]]: a gather and a scatter.
            idx = index.unsqueeze(1).expand(b, k, -1)  # (B, K, C)
            picked = torch.gather(h32, 2, idx)  # (B, K, C)
            grad_w = torch.einsum("bc,bkc->ck", grad_ext, picked)
            grad_h = torch.zeros_like(h32)
            grad_h.scatter_add_(2, idx, weight.t().unsqueeze(0) * grad_ext.unsqueeze(1))
            # mean = W mu, var = diag(W S W^T), S = gram / count - mu mu^T.
            w64 = weight.double()
            gv = grad_var.double()
            grad_w = grad_w + torch.outer(grad_mean, mu.float())
            grad_w = grad_w + (2.0 * gv.unsqueeze(1) * (w64 @ cov)).float()
            grad_cov = w64.t() @ (gv.unsqueeze(1) * w64)  # (K, K), symmetric
            grad_mu = w64.t() @ grad_mean.double() - 2.0 * grad_cov @ mu
            mat = (2.0 / count) * grad_cov  # d/dh of sum h^T M h / count
            grad_h = grad_h + torch.matmul(mat.float(), h32)
            grad_h = grad_h + (grad_mu.float() / count).view(1, k, 1)
        return (
            grad_h.to(h.dtype),
            grad_w.to(weight.dtype),
            grad_gamma,
            grad_beta,
            None,
            None,
        )


def _conv_bn_relu_max(h: Tensor, conv: nn.Conv1d, bn: nn.BatchNorm1d) -> Tensor:
    """``max_n relu(bn(conv(h)))`` of shape ``(B, C_out)`` without the dense tensors."""
    weight = conv.weight.view(conv.out_channels, conv.in_channels)
    out, mean, var = _ConvBatchNormReluMax.apply(
        h, weight, bn.weight, bn.bias, bn.eps, _autocast_bf16(h.device.type)
    )
    # The conv bias cancels in the batch norm; it only enters the running mean.
    bias = conv.bias.detach() if conv.bias is not None else 0.0
    _update_running_stats(bn, mean + bias, var, h.shape[0] * h.shape[2])
    if conv.bias is not None:  # give the cancelled bias its exact (zero) gradient
        out = out + 0.0 * conv.bias.sum()
    return out


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
