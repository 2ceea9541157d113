"""Fast eval-only PointNet classifier: the same function, rewritten for the hardware.

:func:`optimize_for_inference` turns a trained
:class:`~pointnet1x1.models.PointNetClassifier` into a module that computes the
same logits (within 1e-4 in fp32) several times faster on CPU:

1. Every batch norm is folded into the 1x1 convolution before it (eval mode).
2. Each shared MLP runs as one matrix product per layer on channels-last rows
   ``(clouds * points, C)``, with the bias and ReLU fused (oneDNN pre-packed
   weights on CPU, the kernel ``torch.compile`` picks for frozen CPU linears).
3. Each T-Net's matrix is folded into the next layer's weights, per cloud:
   ``(x T) W = x (T W)``, so the transformed points are never materialised.
4. The bias and ReLU of the layer before each max pool move after the pool:
   ``relu(t + b)`` is monotone in ``t``, so ``max relu(W x + b) = relu(max(W x) + b)``,
   which saves two passes over the widest activation (``(points, 1024)``).
5. Clouds run a few at a time (``chunk_points`` rows) so the 1,024-wide
   activations of a chunk stay in cache instead of streaming through memory.
6. Optionally bf16 weights and activations with fp32 accumulation (``precision=
   "bf16"``) on CPUs with native bf16 dot products; the T-Net heads, the
   classifier head and the first layer of the main MLP stay in fp32.

Example::

    fast = optimize_for_inference(model)          # model is left untouched
    logits = fast(x)                              # x: (B, C, N) channels-first
"""

from __future__ import annotations

import sys
import warnings

import torch
from torch import Tensor, nn

from pointnet1x1.models._fast_ops import DenseLayer, dense_layers, has_native_bf16
from pointnet1x1.models.pointnet import PointNetClassifier
from pointnet1x1.nn import TNet

__all__ = [
    "FastPointNetClassifier",
    "forward_train",
    "has_native_bf16",
    "optimize_for_inference",
    "training_precision",
]

_PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}
_warned_bf16 = False
_CPU_CHUNK = 4096  # rows per chunk on CPU: 4 clouds of 1,024 points


class _FastTNet:
    """A T-Net as folded layers: point layers, a pooled layer, FC layers, output."""

    def __init__(
        self,
        tnet: TNet,
        dtype: torch.dtype,
        pack: bool,
        what: str,
        fp32_first: bool = False,
    ) -> None:
        self.k = tnet.k
        self.points = dense_layers(tnet.mlp, dtype, pack, f"{what}.mlp")
        if fp32_first:  # raw coordinates: keep the (cheap) first layer in fp32
            self.points[0] = dense_layers(tnet.mlp, torch.float32, pack, what)[0]
        self.fc = dense_layers(tnet.fc, torch.float32, pack, f"{what}.fc")
        out = tnet.out
        self.out = DenseLayer(out.weight, out.bias, torch.float32, pack)


class FastPointNetClassifier(nn.Module):
    """Eval-only PointNet classifier with folded, fused, channels-last layers.

    Built by :func:`optimize_for_inference`; holds folded copies of the weights
    (the source model is not modified, nor referenced). Build it on the device
    it will run on: it does not follow ``.to()``.

    Args:
        model: The :class:`~pointnet1x1.models.PointNetClassifier` to copy.
        precision: ``"fp32"`` or ``"bf16"`` (bf16 weights and point features,
            fp32 accumulation, fp32 T-Net and classifier heads).
        chunk_points: Rows (clouds x points) processed at once; clouds are
            never split, so a chunk holds ``max(1, chunk_points // N)`` clouds.
            Default: 4096 on CPU (a few clouds stay in cache), the whole batch
            on a GPU.

    Shape:
        - Input: ``(B, C, N)`` channels-first, any ``B`` and ``N``; optional
          bool mask ``(B, N)`` of real points.
        - Output: logits ``(B, num_classes)`` in fp32.
    """

    def __init__(
        self,
        model: PointNetClassifier,
        precision: str = "fp32",
        chunk_points: int | None = None,
    ) -> None:
        super().__init__()
        if precision not in _PRECISIONS:
            raise ValueError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
        dtype = _PRECISIONS[precision]
        enc = model.encoder
        device = next(model.parameters()).device
        pack = device.type == "cpu"
        if chunk_points is None:
            chunk_points = _CPU_CHUNK if pack else sys.maxsize
        if chunk_points <= 0:
            raise ValueError(f"chunk_points must be positive, got {chunk_points}")
        self.precision = precision
        self.chunk_points = chunk_points
        self.in_channels = int(model.in_channels)
        self.num_classes = int(model.num_classes)
        self.dtype = dtype
        self.input_tnet = (
            None
            if enc.input_tnet is None
            else _FastTNet(enc.input_tnet, dtype, pack, "encoder.input_tnet", True)
        )
        self.feature_tnet = (
            None
            if enc.feature_tnet is None
            else _FastTNet(enc.feature_tnet, dtype, pack, "encoder.feature_tnet")
        )
        # The first layer sees raw coordinates: keep it in fp32 (it is cheap).
        self.mlp1 = [
            *dense_layers(enc.mlp1, torch.float32, pack, "encoder.mlp1")[:1],
            *dense_layers(enc.mlp1, dtype, pack, "encoder.mlp1")[1:],
        ]
        self.mlp2 = dense_layers(enc.mlp2, dtype, pack, "encoder.mlp2")
        self.head = [
            *dense_layers(model.head, torch.float32, pack, "head"),
            DenseLayer(
                model.classifier.weight, model.classifier.bias, torch.float32, pack
            ),
        ]
        # Channel blocks the input T-Net rotates: xyz, and normals with 6+ channels.
        self._input_blocks = [(0, 3)] + ([(3, 6)] if self.in_channels >= 6 else [])

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, num_classes={self.num_classes}, "
            f"precision={self.precision!r}, chunk_points={self.chunk_points}"
        )

    def train(self, mode: bool = True) -> FastPointNetClassifier:
        if mode:
            raise RuntimeError(
                "FastPointNetClassifier is eval-only; train the PointNetClassifier "
                "and call optimize_for_inference again"
            )
        return super().train(False)

    @torch.no_grad()
    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        if x.dim() != 3 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{type(self).__name__} expected points of shape "
                f"(B, {self.in_channels}, N), got {tuple(x.shape)}"
            )
        batch, _, num_points = x.shape
        if mask is not None and mask.shape != (batch, num_points):
            raise ValueError(
                f"mask must have shape (B, N) = {(batch, num_points)}, "
                f"got {tuple(mask.shape)}"
            )
        x = x.float().transpose(1, 2)  # (B, N, C) channels-last, a view
        per_chunk = max(1, self.chunk_points // max(num_points, 1))
        pooled = [
            self._encode(
                x[s : s + per_chunk].contiguous(),
                None if mask is None else mask[s : s + per_chunk].bool(),
            )
            for s in range(0, batch, per_chunk)
        ]
        g = torch.cat(pooled) if pooled else x.new_zeros(0, self.mlp2[-1].out_channels)
        for layer in self.head[:-1]:
            g = layer(g)
        return self.head[-1](g, relu=False)  # (B, num_classes)

    def _encode(self, x: Tensor, mask: Tensor | None) -> Tensor:
        """Global features ``(b, C_global)`` of a chunk ``x`` of shape ``(b, N, C)``."""
        b, n, c = x.shape
        rows = x.view(b * n, c)
        first = self.mlp1[0]
        if self.input_tnet is not None:
            t_in = self._tnet(self.input_tnet, rows, b, n, mask)
            h = first.batched(x, first.folded(t_in, self._input_blocks))
            h = h.view(b * n, -1)
        else:
            h = first(rows)
        h = h.to(self.dtype)
        for layer in self.mlp1[1:]:
            h = layer(h)  # (b * N, 64)
        layers = self.mlp2
        if self.feature_tnet is not None:
            t_feat = self._tnet(self.feature_tnet, h, b, n, mask)
            k = self.feature_tnet.k
            w = layers[0].folded(t_feat, [(0, k)])  # (b, 64, C_1)
            if len(layers) == 1:  # the folded layer is also the pooled one
                z = torch.bmm(h.view(b, n, -1), w).view(b * n, -1)
                return self._finish_pool(layers[0], z, b, n, mask)
            h = layers[0].batched(h.view(b, n, -1), w).view(b * n, -1)
            layers = layers[1:]
        for layer in layers[:-1]:
            h = layer(h)
        return self._pool(layers[-1], h, b, n, mask)  # (b, 1024)

    def _tnet(
        self, tnet: _FastTNet, h: Tensor, b: int, n: int, mask: Tensor | None
    ) -> Tensor:
        """The ``(b, k, k)`` matrices of a T-Net from rows ``h (b * N, C)``."""
        for layer in tnet.points[:-1]:
            h = layer(h.to(layer.dtype))
        g = self._pool(tnet.points[-1], h.to(tnet.points[-1].dtype), b, n, mask)
        for layer in tnet.fc:
            g = layer(g)
        return tnet.out(g, relu=False).view(b, tnet.k, tnet.k)

    def _pool(
        self, layer: DenseLayer, h: Tensor, b: int, n: int, mask: Tensor | None
    ) -> Tensor:
        """``max_n relu(W h_n + b)`` computed as ``relu(max_n (W h_n) + b)`` in fp32."""
        return self._finish_pool(layer, layer.matmul(h), b, n, mask)

    @staticmethod
    def _finish_pool(
        layer: DenseLayer, z: Tensor, b: int, n: int, mask: Tensor | None
    ) -> Tensor:
        z = z.view(b, n, -1)  # (b, N, C_out)
        if mask is not None:
            z = z.masked_fill(~mask.unsqueeze(2), float("-inf"))
        return (z.amax(dim=1).float() + layer.bias32).relu_()  # (b, C_out)


def optimize_for_inference(
    model: PointNetClassifier,
    precision: str = "fp32",
    *,
    chunk_points: int | None = None,
) -> FastPointNetClassifier:
    """A fast eval-only copy of a PointNet classifier (the model is not modified).

    Args:
        model: A :class:`~pointnet1x1.models.PointNetClassifier` (with or without
            T-Nets, any widths, 3 or 6+ input channels).
        precision: ``"fp32"`` (logits equal ``model.eval()(x)`` within 1e-4) or
            ``"bf16"`` (bf16 weights and activations with fp32 accumulation;
            on a CPU without native bf16 it warns once and uses fp32).
        chunk_points: Rows processed at once (clouds are never split); default
            4096 on CPU, the whole batch on a GPU.

    Returns:
        A :class:`FastPointNetClassifier` taking ``(B, C, N)`` and returning
        ``(B, num_classes)`` logits.

    Raises:
        ValueError: For a model the fast path does not reproduce (not a
            PointNetClassifier, 4 or 5 input channels, norms other than batch
            norm, activations other than ReLU); callers fall back to the model.
    """
    global _warned_bf16
    if not isinstance(model, PointNetClassifier):
        raise ValueError(
            f"optimize_for_inference supports PointNetClassifier, got "
            f"{type(model).__name__}; use the model as it is"
        )
    if 3 < model.in_channels < 6:
        raise ValueError(
            f"optimize_for_inference supports 3 or 6+ input channels, got "
            f"{model.in_channels}"
        )
    if precision not in _PRECISIONS:
        raise ValueError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
    device = next(model.parameters()).device
    if precision == "bf16" and device.type == "cpu" and not has_native_bf16():
        if not _warned_bf16:
            warnings.warn(
                "this CPU has no native bf16 (no avx512_bf16/amx_bf16 flag): "
                "optimize_for_inference uses fp32",
                RuntimeWarning,
                stacklevel=2,
            )
            _warned_bf16 = True
        precision = "fp32"
    return FastPointNetClassifier(model, precision, chunk_points).eval()


def training_precision(precision: str, device: torch.device | str) -> tuple[str, str]:
    """The training precision to use for ``precision`` on ``device``, and why.

    ``"auto"`` picks bf16 compute (fp32 master weights, statistics and
    accumulation) where the hardware multiplies bf16 natively (a CUDA GPU with
    bf16, a CPU with ``avx512_bf16``/``amx_bf16``), else exact fp32; ``"fp32"``
    and ``"bf16"`` are taken as asked (bf16 on a CPU without it is emulated:
    correct, slower).

    Returns:
        ``(precision, reason)``, ``precision`` being ``"fp32"`` or ``"bf16"``.
    """
    if precision not in ("auto", *_PRECISIONS):
        raise ValueError(
            f"precision must be 'auto', 'fp32' or 'bf16', got {precision!r}"
        )
    device = torch.device(device)
    if precision != "auto":
        return precision, "as requested"
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return "bf16", "this GPU computes bf16 natively"
        return "fp32", "this GPU has no native bf16"
    if device.type == "cpu" and has_native_bf16():
        return "bf16", "this CPU has native bf16 (avx512_bf16/amx_bf16)"
    return "fp32", "this CPU has no native bf16 (no avx512_bf16/amx_bf16): exact fp32"


def forward_train(
    model: PointNetClassifier,
    x: Tensor,
    mask: Tensor | None = None,
    *,
    precision: str = "fp32",
) -> tuple[Tensor, Tensor]:
    """``model(x, mask, return_aux=True)`` for a training step, faster on CPU.

    Every shared-MLP layer runs as one matrix product on channels-last rows, and
    the layer before each max pool (both T-Nets and the encoder: the
    ``(B, 1024, N)`` activations) runs fused: batch norm + ReLU are monotone per
    channel, so the pooled feature is the normalised per-channel max of the
    layer's output, whose batch statistics follow from the mean and covariance
    of its 128-wide input. The wide output is made a few clouds at a time in
    cache and dropped, and its backward pass is a gather and a scatter (see
    :mod:`pointnet1x1.models._fast_train`). Same logits, regulariser, gradients
    and running statistics as the model, up to rounding (checked in float64).
    With a mask, in eval mode, or for layers it cannot fuse, it runs the model
    as it is.

    Args:
        model: A :class:`~pointnet1x1.models.PointNetClassifier`.
        x: Tensor of shape ``(B, C, N)`` giving the clouds.
        mask: Optional bool tensor ``(B, N)`` of real points (runs the model).
        precision: ``"fp32"``, or ``"bf16"``: the products in bf16 under autocast,
            the statistics, the pooled maxima and the master weights in fp32 (see
            :func:`training_precision`).

    Returns:
        ``(logits (B, num_classes), aux_loss scalar)``, in ``x``'s dtype (fp32
        for bf16).

    Raises:
        ValueError: If ``model`` is not a PointNetClassifier, or an unknown
            precision.
    """
    if not isinstance(model, PointNetClassifier):
        raise ValueError(
            f"forward_train supports PointNetClassifier, got {type(model).__name__}; "
            "call model(x, return_aux=True)"
        )
    if precision not in _PRECISIONS:
        raise ValueError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
    with torch.autocast(x.device.type, torch.bfloat16, enabled=precision == "bf16"):
        if mask is not None or not model.training:
            out = model(x, mask, return_aux=True)
            assert isinstance(out, tuple)
            logits, aux = out
        else:
            from pointnet1x1.models._fast_train import forward_train as _forward

            logits, aux = _forward(model, x)
    if precision == "bf16":  # the loss and its gradient in fp32
        return logits.float(), aux.float()
    return logits, aux
