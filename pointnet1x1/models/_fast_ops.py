"""Dense layers of the fast inference path: folded weights, channels-last matmuls.

Private helpers of :mod:`pointnet1x1.models.fast`. Every layer here acts on
channels-last rows ``(M, C_in)`` (``M = clouds * points``), the layout in which a
shared MLP is one matrix product per layer. On CPU the weights are pre-packed
for oneDNN (``torch.ops.mkldnn._linear_pointwise``, the kernel ``torch.compile``
uses for frozen CPU linears, with the bias and ReLU fused); where that op is
missing or fails its self-check, plain ``torch.addmm`` is used with the same
numbers.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from pointnet1x1.nn import fold_batchnorm

# Channel blocks a per-cloud transform multiplies, e.g. xyz and normals.
Blocks = Sequence[tuple[int, int]]

# Rows the oneDNN weight packing is tuned for: one chunk of 4 x 1,024 points.
_PACK_ROWS = 4096


def has_native_bf16() -> bool:
    """Whether this CPU computes bf16 dot products natively.

    Reads the CPU flags (``avx512_bf16`` or ``amx_bf16`` on x86, ``bf16`` on
    Arm) from ``/proc/cpuinfo``; elsewhere asks torch for an AMX capability.
    oneDNN emulates bf16 on CPUs without it, which is slower than fp32.
    """
    return _native_bf16()


@functools.cache
def _native_bf16() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in {"flags", "Features"}:
            flags = set(value.split())
            return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})
    try:
        return "AMX" in torch.backends.cpu.get_cpu_capability()
    except (AttributeError, RuntimeError):  # pragma: no cover - old torch
        return False


@functools.cache
def _onednn_ok(dtype: torch.dtype) -> bool:
    """Whether the pre-packed oneDNN linear exists here and computes ``x W^T + b``."""
    if os.environ.get("POINTNET1X1_NO_ONEDNN"):
        return False
    try:
        if not torch.backends.mkldnn.is_available():
            return False
        gen = torch.Generator().manual_seed(0)
        w = torch.randn(24, 5, generator=gen).to(dtype)
        b = torch.randn(24, generator=gen)  # fp32 bias, also with bf16 weights
        x = torch.randn(7, 5, generator=gen).to(dtype)
        packed = torch.ops.mkldnn._reorder_linear_weight(w, 7)
        got = torch.ops.mkldnn._linear_pointwise(x, packed, b, "relu", [], "")
        want = torch.addmm(b, x.float(), w.float().t()).relu()
        tol = 1e-5 if dtype == torch.float32 else 0.1
        return bool(torch.allclose(got.float(), want, atol=tol, rtol=tol))
    except (AttributeError, RuntimeError, TypeError):
        return False


class DenseLayer:
    """One folded layer ``y = x W^T + b`` (batch norm already in ``W, b``).

    Args:
        weight: Tensor of shape ``(C_out, C_in)`` in fp32.
        bias: Tensor of shape ``(C_out,)`` in fp32.
        dtype: Dtype the layer computes in (fp32, or bf16 with fp32 accumulation).
        pack: Pre-pack the weight for oneDNN (CPU only).
    """

    def __init__(
        self, weight: Tensor, bias: Tensor, dtype: torch.dtype, pack: bool
    ) -> None:
        self.dtype = dtype
        self.weight = weight.detach().to(dtype, copy=True).contiguous()  # (C_out, C_in)
        self.weight_t = self.weight.t().contiguous()  # (C_in, C_out) for x @ W^T
        self.bias = bias.detach().to(dtype, copy=True).contiguous()
        self.bias32 = bias.detach().to(torch.float32, copy=True).contiguous()
        self.packed: Tensor | None = None
        if pack and self.weight.device.type == "cpu" and _onednn_ok(dtype):
            self.packed = torch.ops.mkldnn._reorder_linear_weight(
                self.weight, _PACK_ROWS
            )

    @property
    def in_channels(self) -> int:
        return self.weight.shape[1]

    @property
    def out_channels(self) -> int:
        return self.weight.shape[0]

    def __call__(self, x: Tensor, relu: bool = True) -> Tensor:
        """``relu(x W^T + b)`` (or without ReLU) on rows ``(M, C_in)``."""
        if self.packed is not None:
            op = "relu" if relu else "none"
            # oneDNN adds an fp32 bias to the fp32 accumulator, then rounds.
            return torch.ops.mkldnn._linear_pointwise(
                x, self.packed, self.bias32, op, [], ""
            )
        y = torch.addmm(self.bias, x, self.weight_t)
        return y.relu_() if relu else y

    def matmul(self, x: Tensor) -> Tensor:
        """``x W^T`` without the bias (it is added after the max pool)."""
        if self.packed is not None:
            return torch.ops.mkldnn._linear_pointwise(
                x, self.packed, None, "none", [], ""
            )
        return torch.mm(x, self.weight_t)

    def folded(self, transform: Tensor, blocks: Blocks) -> Tensor:
        """Per-cloud weights ``(b, C_in, C_out)`` with a transform folded in.

        The model multiplies each point's channels ``[i, j)`` of every block by
        the cloud's matrix ``T`` (``x -> x T``) before this layer; since
        ``(x T) W^T = x (T W^T)``, the layer can take the raw points instead.

        Args:
            transform: Tensor of shape ``(b, k, k)`` giving each cloud's ``T``.
            blocks: Channel ranges ``(i, i + k)`` that ``T`` multiplies.
        """
        w = self.weight_t.float()  # (C_in, C_out)
        out = w.expand(transform.shape[0], -1, -1).clone()  # (b, C_in, C_out)
        for i, j in blocks:
            out[:, i:j] = torch.matmul(transform.float(), w[i:j])
        return out.to(self.dtype)

    def batched(self, x: Tensor, weight: Tensor, relu: bool = True) -> Tensor:
        """``relu(x_i W_i + b)`` per cloud: ``x (b, N, C_in)``, ``weight (b, C_in, C_out)``."""
        y = torch.baddbmm(self.bias, x, weight)  # (b, N, C_out)
        return y.relu_() if relu else y


def dense_layers(
    module: nn.Module, dtype: torch.dtype, pack: bool, what: str
) -> list[DenseLayer]:
    """Fold a :class:`~pointnet1x1.nn.SharedMLP` into dense layers, each followed by ReLU.

    Each ``Conv1d`` (1x1) and the ``BatchNorm1d`` after it become one ``W, b``
    (:func:`~pointnet1x1.nn.fold_batchnorm`, running statistics); dropout is
    dropped (eval mode).

    Raises:
        ValueError: If the MLP is not a stack of (conv, batch norm, ReLU,
            dropout) blocks, the only kind the fast path reproduces exactly.
    """
    seq = getattr(module, "layers", None)
    if not isinstance(seq, nn.Sequential):
        raise ValueError(f"{what}: expected a SharedMLP, got {type(module).__name__}")
    mods = [m for m in seq if not isinstance(m, nn.Dropout)]
    kinds = [type(m).__name__ for m in seq]
    layers: list[DenseLayer] = []
    i = 0
    while i < len(mods):
        conv = mods[i]
        norm = mods[i + 1] if i + 1 < len(mods) else None
        has_norm = isinstance(norm, nn.BatchNorm1d)
        act = mods[i + 2] if has_norm and i + 2 < len(mods) else norm
        if not (isinstance(conv, nn.Conv1d) and conv.kernel_size == (1,)) or (
            type(act) is not nn.ReLU
        ):
            raise ValueError(
                f"{what}: the fast path needs Conv1d(k=1) + BatchNorm1d + ReLU "
                f"blocks, got {kinds}"
            )
        with torch.no_grad():
            weight = conv.weight.reshape(conv.out_channels, conv.in_channels)
            bias = conv.bias
            if has_norm:
                weight, bias = fold_batchnorm(weight, bias, norm)  # type: ignore[arg-type]
            if bias is None:
                bias = weight.new_zeros(conv.out_channels)
            layers.append(DenseLayer(weight, bias, dtype, pack))
        i += 3 if has_norm else 2
    return layers
