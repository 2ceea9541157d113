"""Autograd functions of the fast training forward (:mod:`._fast_train`).

All act on channels-last rows ``h`` of shape ``(M, K)`` (``M = B * N`` points) and
a shared-MLP layer ``z = W h`` (``W`` of shape ``(C, K)``) followed by a training
batch norm and a ReLU. The batch statistics of ``z`` follow from the moments of
``h`` (:func:`_moments`): ``mean = W mu``, ``var = diag(W S W^T)`` with ``mu`` and
``S`` the mean and covariance of ``h``, so the normalised layer is one matrix
product with folded weights, and its backward needs one ``M x K x K`` product
for the statistics (:func:`_moments_backward`) instead of passes over ``z``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

# Rows of z made at once on a CPU: 2 clouds x 1024 points x 1024 channels x 4
# bytes = 8 MB, inside the L3 cache; on a GPU the whole batch at once.
_CPU_ROWS = 2048


class _Moments(NamedTuple):
    mu: Tensor  # (K,) float64, mean of h
    cov: Tensor  # (K, K) float64, covariance of h (biased)
    mean: Tensor  # (C,) batch mean of z
    var: Tensor  # (C,) batch variance of z (biased, as batch norm normalises)
    invstd: Tensor  # (C,) 1 / sqrt(var + eps)
    scale: Tensor  # (C,) gamma * invstd


def work_dtype(h: Tensor) -> torch.dtype:
    """fp32 for 16-bit inputs (the statistics need it), else the input's own."""
    return torch.float32 if h.dtype in (torch.float16, torch.bfloat16) else h.dtype


def _moments(h: Tensor, weight: Tensor, gamma: Tensor, eps: float) -> _Moments:
    """Batch-norm statistics of ``z = W h`` from the mean and covariance of ``h``."""
    count = h.shape[0]
    mu = h.sum(dim=0).double() / count  # summed in the working dtype: no copy
    cov = torch.mm(h.t(), h).double() / count - torch.outer(mu, mu)
    w64 = weight.double()
    mean = (w64 @ mu).to(h.dtype)
    var = ((w64 @ cov) * w64).sum(dim=1).clamp_min(0.0).to(h.dtype)
    invstd = torch.rsqrt(var + eps)
    return _Moments(mu, cov, mean, var, invstd, gamma.to(h.dtype) * invstd)


def _moments_backward(
    h: Tensor,
    weight: Tensor,
    m: _Moments,
    grad_mean: Tensor,
    grad_var: Tensor,
    grad_h: Tensor | None,
    need_h: bool = True,
) -> tuple[Tensor, Tensor | None]:
    """Chain ``grad_mean``, ``grad_var`` (C,) through the moments of ``h``.

    Returns ``(d/dW, d/dh)``: ``d/dh`` is added into ``grad_h`` in place when
    given, made fresh otherwise, ``None`` when ``need_h`` is false.
    ``mean = W mu``, ``var = diag(W S W^T)``, ``S = h^T h / M - mu mu^T``.
    """
    count = h.shape[0]
    w64, gv = weight.double(), grad_var.double()
    grad_w = torch.outer(grad_mean.double(), m.mu)
    grad_w += 2.0 * gv.unsqueeze(1) * (w64 @ m.cov)
    if not need_h:
        return grad_w.to(h.dtype), None
    grad_cov = w64.t() @ (gv.unsqueeze(1) * w64)  # (K, K), symmetric
    grad_mu = w64.t() @ grad_mean.double() - 2.0 * grad_cov @ m.mu
    row = (grad_mu / count).to(h.dtype).unsqueeze(0)  # (1, K)
    mat = ((2.0 / count) * grad_cov).to(h.dtype)
    if grad_h is None:
        grad_h = torch.addmm(row, h, mat)
    else:
        grad_h.addmm_(h, mat).add_(row)
    return grad_w.to(h.dtype), grad_h


def _scale_grads(
    grad_scale: Tensor, grad_shift: Tensor, gamma: Tensor, m: _Moments
) -> tuple[Tensor, Tensor, Tensor]:
    """``(grad_gamma, grad_mean, grad_var)`` of ``y = scale (z - mean) + beta``,
    given the gradients of ``scale`` and of the shift ``beta - scale mean``."""
    grad_gamma = grad_scale * m.invstd
    grad_var = grad_scale * gamma * (-0.5) * m.invstd.pow(3)
    return grad_gamma, -grad_shift * m.scale, grad_var


def _zero_bias_grad(ctx: torch.autograd.function.FunctionCtx) -> Tensor | None:
    """The exact gradient of a conv bias in front of a training batch norm: zero
    (it cancels in the normalisation and only enters the running mean)."""
    like = ctx.bias_like  # type: ignore[attr-defined]
    if like is None:
        return None
    shape, dtype, device = like
    return torch.zeros(shape, dtype=dtype, device=device)


class LinearBatchNormRelu(torch.autograd.Function):
    """``relu(bn(W h))`` of rows ``h`` ``(M, K)``: one product with folded weights.

    Outputs ``(y (M, C), mean, var)``; ``mean``/``var`` are the batch statistics of
    ``z = W h`` for the running statistics. The backward is two ``M x C x K``
    products and one ``M x K x K`` for the statistics; no pass over ``z``.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        h: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        gamma: Tensor,
        beta: Tensor,
        eps: float,
        bf16: bool,
    ) -> tuple[Tensor, Tensor, Tensor]:
        work = work_dtype(h)
        with torch.autocast(h.device.type, enabled=False):
            h32, w32 = h.to(work), weight.to(work)
            m = _moments(h32, w32, gamma, eps)
            folded = w32 * m.scale.unsqueeze(1)  # (C, K)
            shift = beta.to(work) - m.scale * m.mean  # (C,)
            low = torch.bfloat16 if bf16 else work
            y = torch.addmm(shift.to(low), h32.to(low), folded.t().to(low)).relu_()
        ctx.bias_like = None if bias is None else (bias.shape, bias.dtype, bias.device)  # type: ignore[attr-defined]
        ctx.save_for_backward(h, weight, gamma, y, *m)
        ctx.mark_non_differentiable(m.mean, m.var)
        return y, m.mean, m.var

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        grad_y: Tensor,
        _grad_mean: Tensor,
        _grad_var: Tensor,
    ) -> tuple[Tensor | None, ...]:
        h, weight, gamma, y, *moments = ctx.saved_tensors  # type: ignore[attr-defined]
        m = _Moments(*moments)
        needs_h = ctx.needs_input_grad[0]  # type: ignore[attr-defined]
        work = work_dtype(h)
        with torch.autocast(h.device.type, enabled=False):
            h32, w32, gamma32 = h.to(work), weight.to(work), gamma.to(work)
            g = torch.ops.aten.threshold_backward(grad_y.to(work), y.to(work), 0.0)
            grad_folded = torch.mm(h32.t(), g).t()  # (C, K); this order is fast
            grad_shift = g.sum(dim=0)
            grad_scale = (grad_folded * w32).sum(dim=1) - grad_shift * m.mean
            grad_gamma, grad_mean, grad_var = _scale_grads(
                grad_scale, grad_shift, gamma32, m
            )
            grad_h = g @ (w32 * m.scale.unsqueeze(1)) if needs_h else None
            grad_w_stats, grad_h = _moments_backward(
                h32, w32, m, grad_mean, grad_var, grad_h, needs_h
            )
            grad_w = m.scale.unsqueeze(1) * grad_folded + grad_w_stats
        return (
            None if grad_h is None else grad_h.to(h.dtype),
            grad_w.to(weight.dtype),
            _zero_bias_grad(ctx),
            grad_gamma.to(gamma.dtype),
            grad_shift.to(gamma.dtype),
            None,
            None,
        )


def _argmax_points(z: Tensor) -> tuple[Tensor, Tensor]:
    """Max and argmax over the last axis of ``z`` ``(C, c, N)``: ``(c, C)`` each.

    On a CPU numpy's argmax (vectorised along a contiguous axis) is about 25x
    faster than torch's reduction with indices on these shapes; elsewhere torch.
    """
    if z.is_cuda:
        values, index = z.max(dim=2)
        return values.t(), index.t()
    if z.dtype not in (torch.float32, torch.float64):  # bf16: numpy has none
        z = z.float()
    index = torch.from_numpy(z.numpy().argmax(axis=2))  # (C, c), first maximum
    values = z.gather(2, index.unsqueeze(2)).squeeze(2)
    return values.t(), index.t()


def _pooled_max(h: Tensor, weight: Tensor, clouds: int) -> tuple[Tensor, Tensor]:
    """Per cloud and channel, max over points of ``W h_n`` and its argmax.

    ``h`` is ``(B * N, K)``, ``weight`` ``(C, K)``; returns ``(B, C)`` values and
    point indices in ``[0, N)``. ``z^T = W h^T`` is made a few clouds at a time,
    ``(C, points)`` so that each channel's points are contiguous.
    """
    n, c = h.shape[0] // clouds, weight.shape[0]
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


class LinearBatchNormReluMax(torch.autograd.Function):
    """``max_n relu(bn(W h_n))`` per cloud and channel from rows ``h`` ``(B * N, K)``.

    Batch norm is monotone per channel, so the pooled output is the normalised
    max of ``z`` (of ``-z`` where ``gamma < 0``, done by flipping those rows of
    ``W``); ``z`` is made a few clouds at a time and dropped. Outputs the pooled
    ``(B, C)`` and the batch ``mean``, ``var`` of ``z``. In backward the max sends
    each cloud and channel's gradient to one point: a gather and a scatter.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        h: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        gamma: Tensor,
        beta: Tensor,
        eps: float,
        clouds: int,
        bf16: bool,
    ) -> tuple[Tensor, Tensor, Tensor]:
        work = work_dtype(h)
        with torch.autocast(h.device.type, enabled=False):
            h32, w32 = h.to(work), weight.to(work)
            m = _moments(h32, w32, gamma, eps)
            sign = torch.where(m.scale < 0, -1.0, 1.0).to(work)  # max(-z) = -min(z)
            low = torch.bfloat16 if bf16 else work
            signed = (w32 * sign.unsqueeze(1)).to(low)  # (C, K)
            top, index = _pooled_max(h32.to(low), signed, clouds)
            extreme = top.to(work) * sign  # z at the winning point, (B, C)
            out = ((extreme - m.mean) * m.scale + beta.to(work)).relu()
        ctx.clouds = clouds  # type: ignore[attr-defined]
        ctx.bias_like = None if bias is None else (bias.shape, bias.dtype, bias.device)  # type: ignore[attr-defined]
        ctx.save_for_backward(h, weight, gamma, index, extreme, out, *m)
        ctx.mark_non_differentiable(m.mean, m.var)
        return out, m.mean, m.var

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        grad_out: Tensor,
        _grad_mean: Tensor,
        _grad_var: Tensor,
    ) -> tuple[Tensor | None, ...]:
        h, weight, gamma, index, extreme, out, *moments = ctx.saved_tensors  # type: ignore[attr-defined]
        m = _Moments(*moments)
        clouds: int = ctx.clouds  # type: ignore[attr-defined]
        count, k = h.shape
        work = work_dtype(h)
        with torch.autocast(h.device.type, enabled=False):
            h32, w32, gamma32 = h.to(work), weight.to(work), gamma.to(work)
            # through the ReLU; contiguous, as the head may hand a transposed view
            g = (grad_out.to(work) * (out > 0)).contiguous()  # (B, C)
            grad_shift = g.sum(dim=0)
            grad_scale = (g * (extreme - m.mean)).sum(dim=0)  # (C,)
            grad_gamma, grad_mean, grad_var = _scale_grads(
                grad_scale, grad_shift, gamma32, m
            )
            grad_ext = g * m.scale  # d out / d z at the winner, (B, C)
            # extreme[b, c] = W[c] . h[b * N + index[b, c]]: a gather and a scatter.
            rows = index + torch.arange(clouds, device=h.device).unsqueeze(1) * (
                count // clouds
            )
            rows = rows.flatten()  # (B * C,)
            picked = h32.index_select(0, rows).view(clouds, -1, k)  # (B, C, K)
            grad_w = (grad_ext.unsqueeze(2) * picked).sum(dim=0)  # (C, K)
            grad_w_stats, grad_h = _moments_backward(
                h32, w32, m, grad_mean, grad_var, None
            )
            grad_w += grad_w_stats
            assert grad_h is not None
            spread = grad_ext.unsqueeze(2) * w32.unsqueeze(0)  # (B, C, K)
            grad_h.index_add_(0, rows, spread.view(-1, k))
        return (
            grad_h.to(h.dtype),
            grad_w.to(weight.dtype),
            _zero_bias_grad(ctx),
            grad_gamma.to(gamma.dtype),
            grad_shift.to(gamma.dtype),
            None,
            None,
            None,
        )


class NarrowLinear(torch.autograd.Function):
    """``F.linear`` for a few input channels (xyz) with the weight gradient made as
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
