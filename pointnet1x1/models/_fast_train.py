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

from pointnet1x1.models.pointnet import PointNetClassifier
from pointnet1x1.nn import SharedMLP, TNet, orthogonality_loss

# Rows of z computed at once on a CPU: 2 clouds x 1024 points x 1024 channels x
# 4 bytes = 8 MB, inside the L3 cache; on a GPU the whole batch at once.
_CPU_ROWS = 2048


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


class _NarrowLinear(torch.autograd.Function):
    """``F.linear`` for a few input channels (xyz), with a weight gradient that is
    ``(x^T g)^T``: MKL computes ``g^T x`` with 3 output columns ~9x slower."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        x: Tensor,
        weight: Tensor,
        bias: Tensor | None,
    ) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None  # type: ignore[attr-defined]
        return F.linear(x, weight, bias)

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx, grad: Tensor
    ) -> tuple[Tensor | None, ...]:
        x, weight = ctx.saved_tensors  # type: ignore[attr-defined]
        needs = ctx.needs_input_grad  # type: ignore[attr-defined]
        grad = grad.to(weight.dtype)  # bf16 under autocast
        grad_x = (grad @ weight).to(x.dtype) if needs[0] else None
        grad_w = torch.mm(x.t().to(grad.dtype), grad).t() if needs[1] else None
        has_bias = ctx.has_bias  # type: ignore[attr-defined]
        grad_b = grad.sum(dim=0) if has_bias and needs[2] else None
        return grad_x, grad_w, grad_b


def _rows(layers: list[nn.Module], h: Tensor) -> Tensor:
    """Apply shared-MLP layers to channels-last rows ``(M, C)``: conv as linear."""
    for layer in layers:
        if isinstance(layer, nn.Conv1d):
            weight = layer.weight.squeeze(2)
            if weight.shape[1] <= 8 and h.device.type == "cpu":
                h = _NarrowLinear.apply(h, weight, layer.bias)
            else:
                h = F.linear(h, weight, layer.bias)
        else:  # BatchNorm1d, ReLU, Dropout: the model's modules, on (M, C)
            h = layer(h)
    return h


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


def _work_dtype(h: Tensor) -> torch.dtype:
    """fp32 for 16-bit inputs (the statistics need it), else the input's own."""
    return torch.float32 if h.dtype in (torch.float16, torch.bfloat16) else h.dtype


def _argmax_points(z: Tensor) -> tuple[Tensor, Tensor]:
    """Max and argmax over the last axis of ``z`` ``(C, c, N)``: ``(c, C)`` each.

    On a CPU numpy's argmax (vectorised along a contiguous axis) is about 25x
    faster than torch's reduction with indices on these shapes; elsewhere torch.
    """
    if z.is_cuda or z.dtype not in (torch.float32, torch.float64):
        values, index = z.max(dim=2)
        return values.t(), index.t()
    index = torch.from_numpy(z.numpy().argmax(axis=2))  # (C, c), first maximum
    values = z.gather(2, index.unsqueeze(2)).squeeze(2)
    return values.t(), index.t()


def _pooled_max(h: Tensor, weight: Tensor, clouds: int) -> tuple[Tensor, Tensor]:
    """Per cloud and channel, max over points of ``W h_n`` and its argmax.

    ``h`` is ``(B * N, K)``, ``weight`` ``(C, K)``; returns ``(B, C)`` values and
    point indices in ``[0, N)``. ``z^T = W h^T`` is made a few clouds at a time,
    ``(C, points)`` so that each channel's points are contiguous.
    """
    rows = h.shape[0]
    n, c = rows // clouds, weight.shape[0]
    step = clouds if h.is_cuda else max(1, _CPU_ROWS // n)
    values = torch.empty(clouds, c, dtype=h.dtype, device=h.device)
    index = torch.empty(clouds, c, dtype=torch.long, device=h.device)
    buf = torch.empty(c, min(step, clouds) * n, dtype=h.dtype, device=h.device)
    for start in range(0, clouds, step):
        stop = min(start + step, clouds)
        out = buf[:, : (stop - start) * n]
        torch.mm(weight, h[start * n : stop * n].t(), out=out)
        v, i = _argmax_points(out.view(c, stop - start, n))
        values[start:stop], index[start:stop] = v, i
    return values, index


class _LinearBatchNormReluMax(torch.autograd.Function):
    """``max_n relu(bn(W h_n))`` per cloud and channel from channels-last ``h``.

    See the module docstring. Inputs: ``h`` ``(B * N, K)``, ``weight`` ``(C, K)``,
    BN ``gamma``, ``beta`` ``(C,)``. Outputs: the pooled ``(B, C)`` and the batch
    ``mean``, ``var`` of ``z = W h`` (for the running statistics).
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        h: Tensor,
        weight: Tensor,
        gamma: Tensor,
        beta: Tensor,
        eps: float,
        clouds: int,
        bf16: bool,
    ) -> tuple[Tensor, Tensor, Tensor]:
        count = h.shape[0]
        work = _work_dtype(h)
        with torch.autocast(h.device.type, enabled=False):
            h32, w32 = h.to(work), weight.to(work)
            mu = h32.sum(dim=0).double() / count  # (K,), summed in fp32: no copy
            gram = torch.mm(h32.t(), h32).double()  # (K, K)
            cov = gram / count - torch.outer(mu, mu)
            w64 = w32.double()
            mean = (w64 @ mu).to(work)  # (C,)
            var = ((w64 @ cov) * w64).sum(dim=1).clamp_min(0.0).to(work)
            invstd = torch.rsqrt(var + eps)
            scale = gamma.to(work) * invstd  # (C,)
            sign = torch.where(scale < 0, -1.0, 1.0).to(work)  # max(-z) = -min(z)
            low = torch.bfloat16 if bf16 else work
            signed = (w32 * sign.unsqueeze(1)).to(low)  # (C, K)
            top, index = _pooled_max(h32.to(low), signed, clouds)
            extreme = top.to(work) * sign  # z at the winning point, (B, C)
            out = ((extreme - mean) * scale + beta.to(work)).relu()
        ctx.clouds = clouds  # type: ignore[attr-defined]
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
        saved = ctx.saved_tensors  # type: ignore[attr-defined]
        h, weight, gamma, index, extreme, mean, invstd, out, mu, cov = saved
        clouds: int = ctx.clouds  # type: ignore[attr-defined]
        count, k = h.shape
        n = count // clouds
        work = _work_dtype(h)
        with torch.autocast(h.device.type, enabled=False):
            h32, w32, gamma32 = h.to(work), weight.to(work), gamma.to(work)
            g = grad_out.to(work) * (out > 0)  # through the ReLU, (B, C)
            grad_beta = g.sum(dim=0)
            grad_scale = (g * (extreme - mean)).sum(dim=0)  # (C,)
            grad_gamma = grad_scale * invstd
            grad_var = grad_scale * gamma32 * (-0.5) * invstd.pow(3)
            grad_ext = g * (gamma32 * invstd)  # d out / d z at the winner, (B, C)
            grad_mean = -grad_ext.sum(dim=0)  # (C,)
            # extreme[b, c] = W[c] . h[b * N + index[b, c]]: a gather and a scatter.
            rows = index + torch.arange(clouds, device=h.device).unsqueeze(1) * n
            rows = rows.flatten()  # (B * C,)
            picked = h32.index_select(0, rows).view(clouds, -1, k)  # (B, C, K)
            grad_w = (grad_ext.unsqueeze(2) * picked).sum(dim=0)  # (C, K)
            # mean = W mu, var = diag(W S W^T) with S = gram / count - mu mu^T.
            w64, gv = w32.double(), grad_var.double()
            grad_w += torch.outer(grad_mean, mu.to(work))
            grad_w += (2.0 * gv.unsqueeze(1) * (w64 @ cov)).to(work)
            grad_cov = w64.t() @ (gv.unsqueeze(1) * w64)  # (K, K), symmetric
            grad_mu = w64.t() @ grad_mean.double() - 2.0 * grad_cov @ mu
            # d/dh of (sum_n h_n^T M h_n) / count and of mu, then the scatter
            grad_h = torch.addmm(
                (grad_mu / count).to(work).unsqueeze(0),
                h32,
                ((2.0 / count) * grad_cov).to(work),
            )
            spread = grad_ext.unsqueeze(2) * w32.unsqueeze(0)  # (B, C, K)
            grad_h.index_add_(0, rows, spread.reshape(-1, k))
        return (
            grad_h.to(h.dtype),
            grad_w.to(weight.dtype),
            grad_gamma.to(gamma.dtype),
            grad_beta.to(gamma.dtype),
            None,
            None,
            None,
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
    weight = conv.weight.squeeze(2)
    out, mean, var = _LinearBatchNormReluMax.apply(
        h, weight, bn.weight, bn.bias, bn.eps, clouds, _autocast_bf16(h.device.type)
    )
    # The conv bias cancels in the batch norm; it only enters the running mean.
    bias = conv.bias.detach() if conv.bias is not None else 0.0
    _update_running_stats(bn, mean + bias, var, h.shape[0])
    if conv.bias is not None:  # give the cancelled bias its exact (zero) gradient
        out = out + 0.0 * conv.bias.sum()
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
