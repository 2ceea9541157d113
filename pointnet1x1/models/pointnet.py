"""PointNet (Qi et al., CVPR 2017), faithful to the authors' code, from SharedMLP.

Paper: https://arxiv.org/abs/1612.00593 ; code: github.com/charlesq34/pointnet
(``models/pointnet_cls.py``, ``models/transform_nets.py``, ``part_seg/pointnet_part_seg.py``).

Classification network::

    x (B, 3+F, N) -> input T-Net 3x3 on xyz -> shared MLP (64, 64)
      -> feature T-Net 64x64 -> shared MLP (64, 128, 1024) -> max pool (B, 1024)
      -> FC 512 -> dropout -> FC 256 -> dropout -> FC num_classes

Every layer but the last has batch norm and ReLU; dropout keeps 0.7 of the units;
the training loss adds ``0.001 * ||I - A A^T||^2`` of the feature transform ``A``.
With both T-Nets the classifier has about 3.5M parameters (paper: 3.5M), without
them ("vanilla") about 0.8M.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from pointnet1x1.models.registry import register_model
from pointnet1x1.nn import SharedMLP, TNet, global_max_pool, orthogonality_loss


class PointNetFeatures(NamedTuple):
    """What the encoder computes: the pieces the heads and the loss need.

    Attributes:
        global_feature: Tensor of shape ``(B, C_global)``, the max-pooled feature.
        local_features: Per-point features of every shared-MLP layer,
            each ``(B, C_i, N)`` (used by the segmentation head).
        input_transform: ``(B, 3, 3)`` or ``None`` without an input T-Net.
        feature_transform: ``(B, k, k)`` or ``None`` without a feature T-Net.
    """

    global_feature: Tensor
    local_features: list[Tensor]
    input_transform: Tensor | None
    feature_transform: Tensor | None


def _check_points(x: Tensor, in_channels: int, name: str) -> None:
    if x.dim() != 3 or x.shape[1] != in_channels:
        raise ValueError(
            f"{name} expected points of shape (B, {in_channels}, N), "
            f"got {tuple(x.shape)}"
        )


def _apply_transform(x: Tensor, transform: Tensor) -> Tensor:
    """Multiply every point's channels by a per-cloud matrix: ``(x^T T)^T``."""
    return torch.bmm(transform.transpose(1, 2), x)  # (B, k, N)


def _apply_transform_ragged(x: Tensor, transform: Tensor, batch: Tensor) -> Tensor:
    """The ragged :func:`_apply_transform`: flat points ``(M, k)`` times their cloud's
    matrix. The points are scattered into a zero-padded ``(B, N_max, k)`` block, so
    the memory is that of a dense batch (gathering a ``k x k`` matrix per point
    would need ``M * k * k`` floats)."""
    num_clouds = transform.shape[0]
    counts = torch.bincount(batch, minlength=num_clouds)
    order = torch.argsort(batch, stable=True)
    cloud = batch[order]
    start = torch.cumsum(counts, 0) - counts
    slot = torch.arange(x.shape[0], device=x.device) - start[cloud]  # index in cloud
    dense = x.new_zeros(num_clouds, int(counts.max()), x.shape[1])
    dense[cloud, slot] = x[order]
    moved = torch.bmm(dense, transform)[cloud, slot]  # (M, k), sorted by cloud
    return torch.empty_like(moved).index_copy_(0, order, moved)


def _align_input(x: Tensor, rotate: Callable[[Tensor], Tensor]) -> Tensor:
    """Apply the input T-Net: rotate xyz, and the normals (channels 3:6) when there
    are 6 or more channels; other channels pass unchanged. Works on ``(B, C, N)``
    and on flat ``(M, C)`` points alike (channels are dim 1 in both)."""
    if x.shape[1] >= 6:
        return torch.cat([rotate(x[:, :3]), rotate(x[:, 3:6]), x[:, 6:]], dim=1)
    return torch.cat([rotate(x[:, :3]), x[:, 3:]], dim=1)


def _graph_inputs(data: Any, in_channels: int) -> tuple[Tensor, Tensor, int]:
    """Points ``(M, 3+F)``, batch ``(M,)`` and cloud count of a PyG ``Data``/``Batch``.

    Recognised by its attributes (``pos``, optional ``x``, ``batch``), so
    torch_geometric is never imported here. Without ``x``, a model that wants
    normals takes ``normal`` (where PyG's ``SamplePoints`` puts them).
    """
    pos = data.pos
    if pos is None or pos.dim() != 2 or pos.shape[1] != 3:
        shape = None if pos is None else tuple(pos.shape)
        raise ValueError(f"expected data.pos of shape (M, 3), got {shape}")
    feats = getattr(data, "x", None)
    if feats is None and in_channels > 3:
        feats = getattr(data, "normal", None)
    points = pos if feats is None else torch.cat([pos, feats.to(pos.dtype)], dim=1)
    batch = getattr(data, "batch", None)
    if batch is None:  # a single Data object is one cloud
        return points, pos.new_zeros(pos.shape[0], dtype=torch.long), 1
    num_clouds = getattr(data, "num_graphs", None)
    return points, batch, int(num_clouds) if num_clouds else int(batch.max()) + 1


def _check_ragged(
    x: Tensor, batch: Tensor, mask: Tensor | None, c: int, name: str
) -> None:
    if mask is not None:
        raise ValueError(
            f"{name}: pass either mask (dense) or batch (ragged), not both"
        )
    if x.dim() != 2 or x.shape[1] != c or batch.shape != (x.shape[0],):
        raise ValueError(
            f"{name} expected flat points (M, {c}) and batch (M,), "
            f"got {tuple(x.shape)} and {tuple(batch.shape)}"
        )


class PointNetEncoder(nn.Module):
    """PointNet's encoder: T-Nets, shared MLPs, max pool.

    Args:
        in_channels: Input channels, 3 for xyz plus features (6 with normals). The
            input T-Net rotates xyz (and normals, when ``in_channels == 6``).
        mlp1: Widths of the shared MLP before the feature transform.
        mlp2: Widths of the shared MLP after it; the last is the global width.
        input_transform: Use the 3x3 input T-Net.
        feature_transform: Use the feature T-Net (size ``mlp1[-1]``).
        bias: Bias in every convolution (the authors' code has them).

    Shape:
        - Input: ``(B, in_channels, N)``; optional mask ``(B, N)`` of real points.
          Or ragged: flat points ``(M, in_channels)`` with ``batch`` ``(M,)``
          giving each point's cloud (the PyTorch Geometric layout); the T-Nets
          and the max pool then work per cloud, and ``num_clouds`` sets ``B``
          (default ``batch.max() + 1``).
        - Output: :class:`PointNetFeatures` with a ``(B, mlp2[-1])`` global feature
          (its local features are flat ``(M, C_i)`` for ragged input).
    """

    def __init__(
        self,
        in_channels: int = 3,
        *,
        mlp1: Sequence[int] = (64, 64),
        mlp2: Sequence[int] = (64, 128, 1024),
        input_transform: bool = True,
        feature_transform: bool = True,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if in_channels < 3:
            raise ValueError(f"in_channels must be at least 3 (xyz), got {in_channels}")
        self.in_channels = in_channels
        self.input_tnet = TNet(3, in_channels, bias=bias) if input_transform else None
        self.mlp1 = SharedMLP([in_channels, *mlp1], bias=bias)
        self.feature_tnet = TNet(mlp1[-1], bias=bias) if feature_transform else None
        self.mlp2 = SharedMLP([mlp1[-1], *mlp2], bias=bias)
        self.out_channels = mlp2[-1]

    def forward(
        self,
        x: Tensor,
        mask: Tensor | None = None,
        *,
        batch: Tensor | None = None,
        num_clouds: int | None = None,
    ) -> PointNetFeatures:
        if batch is not None:
            return self._forward_ragged(x, batch, num_clouds, mask)
        _check_points(x, self.in_channels, type(self).__name__)
        t_in = t_feat = None
        if self.input_tnet is not None:
            t_in = self.input_tnet(x, mask)  # (B, 3, 3)
            x = _align_input(x, lambda part: _apply_transform(part, t_in))
        local = self.mlp1(x)  # (B, 64, N)
        if self.feature_tnet is not None:
            t_feat = self.feature_tnet(local, mask)  # (B, 64, 64)
            local = _apply_transform(local, t_feat)
        feat = self.mlp2(local)  # (B, 1024, N)
        return PointNetFeatures(
            global_max_pool(feat, mask), [local, feat], t_in, t_feat
        )

    def _forward_ragged(
        self, x: Tensor, batch: Tensor, num_clouds: int | None, mask: Tensor | None
    ) -> PointNetFeatures:
        """The same network on flat points ``(M, C)``: T-Nets and pooling per cloud."""
        _check_ragged(x, batch, mask, self.in_channels, type(self).__name__)
        batch = batch.long()
        size = int(batch.max()) + 1 if num_clouds is None else num_clouds
        t_in = t_feat = None
        if self.input_tnet is not None:
            t_in = self.input_tnet(x, batch=batch, num_clouds=size)  # (B, 3, 3)
            x = _align_input(x, lambda part: _apply_transform_ragged(part, t_in, batch))
        local = self.mlp1(x)  # (M, 64)
        if self.feature_tnet is not None:
            t_feat = self.feature_tnet(local, batch=batch, num_clouds=size)
            local = _apply_transform_ragged(local, t_feat, batch)
        feat = self.mlp2(local)  # (M, 1024)
        pooled = global_max_pool(feat, batch=batch, num_clouds=size)  # (B, 1024)
        return PointNetFeatures(pooled, [local, feat], t_in, t_feat)


@register_model(
    "pointnet_vanilla",
    task="cls",
    defaults={"input_transform": False, "feature_transform": False},
)
@register_model("pointnet", task="cls")
class PointNetClassifier(nn.Module):
    """PointNet classification network (paper-faithful defaults).

    Paper: Qi et al., "PointNet: Deep Learning on Point Sets for 3D Classification
    and Segmentation", CVPR 2017, https://arxiv.org/abs/1612.00593

    Args:
        num_classes: Number of classes (40 for ModelNet40).
        in_channels: 3 for xyz, 6 with normals, ``3 + F`` in general.
        mlp1: Shared MLP widths before the feature transform (paper: 64, 64).
        mlp2: Shared MLP widths after it (paper: 64, 128, 1024).
        head: Widths of the FC layers (paper: 512, 256).
        dropout: Dropout probability of the FC layers (paper: keep 0.7, so 0.3).
        input_transform: Use the input T-Net (paper: yes).
        feature_transform: Use the feature T-Net (paper: yes).
        reg_weight: Weight of the orthogonality regulariser of the feature
            transform (paper: 0.001); returned by ``forward(x, return_aux=True)``.
        bias: Bias in the convolutions (the authors' code has them).

    Shape:
        - Input: ``(B, in_channels, N)``; optional mask ``(B, N)`` of real points.
          Or ragged: flat points ``(M, in_channels)`` with ``batch`` ``(M,)``; or a
          PyTorch Geometric ``Data``/``Batch`` (xyz in ``pos`` ``(M, 3)``, optional
          features in ``x`` ``(M, F)`` (or normals in ``normal``), the ``batch``
          vector), clouds of any sizes.
        - Output: logits ``(B, num_classes)``; with ``return_aux=True`` a pair
          ``(logits, aux_loss)`` where ``aux_loss`` is the weighted regulariser.
    """

    def __init__(
        self,
        num_classes: int = 40,
        in_channels: int = 3,
        *,
        mlp1: Sequence[int] = (64, 64),
        mlp2: Sequence[int] = (64, 128, 1024),
        head: Sequence[int] = (512, 256),
        dropout: float = 0.3,
        input_transform: bool = True,
        feature_transform: bool = True,
        reg_weight: float = 0.001,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if num_classes <= 0:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.reg_weight = reg_weight
        self.encoder = PointNetEncoder(
            in_channels,
            mlp1=mlp1,
            mlp2=mlp2,
            input_transform=input_transform,
            feature_transform=feature_transform,
            bias=bias,
        )
        self.head = SharedMLP(
            [self.encoder.out_channels, *head], bias=bias, dropout=dropout
        )
        self.classifier = nn.Linear(head[-1], num_classes)

    def forward_features(
        self,
        x: Tensor,
        mask: Tensor | None = None,
        *,
        batch: Tensor | None = None,
        num_clouds: int | None = None,
    ) -> PointNetFeatures:
        if not isinstance(x, Tensor) and hasattr(x, "pos"):  # a PyG Data / Batch
            x, batch, num_clouds = _graph_inputs(x, self.in_channels)
        return self.encoder(x, mask, batch=batch, num_clouds=num_clouds)

    def forward_head(self, global_feature: Tensor) -> Tensor:
        return self.classifier(self.head(global_feature))  # (B, num_classes)

    def aux_loss(self, features: PointNetFeatures) -> Tensor:
        """The weighted orthogonality regulariser of the feature transform."""
        if features.feature_transform is None:
            return features.global_feature.new_zeros(())
        return self.reg_weight * orthogonality_loss(features.feature_transform)

    def forward(
        self,
        x: Tensor,
        mask: Tensor | None = None,
        *,
        batch: Tensor | None = None,
        num_clouds: int | None = None,
        return_aux: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        features = self.forward_features(x, mask, batch=batch, num_clouds=num_clouds)
        logits = self.forward_head(features.global_feature)
        if return_aux:
            return logits, self.aux_loss(features)
        return logits

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the last layer with a fresh one for ``num_classes`` classes."""
        self.num_classes = num_classes
        self.classifier = nn.Linear(self.classifier.in_features, num_classes).to(
            self.classifier.weight.device
        )


def category_one_hot(
    category: Tensor | None, num_categories: int, batch: int, ref: Tensor, name: str
) -> Tensor | None:
    """The object category of each cloud as a one-hot ``(B, num_categories)`` in the
    dtype of ``ref`` (``None`` when the model takes no category).

    Args:
        category: Long tensor ``(B,)`` of indices, or a one-hot ``(B, C)``.
        num_categories: Number of categories (0: the model takes none).
        batch: Number of clouds ``B``.
        ref: Tensor whose dtype the result takes.
        name: The model's name, for error messages.
    """
    if num_categories == 0:
        return None
    if category is None:
        raise ValueError(
            f"{name} with num_categories={num_categories} needs the object "
            "category: pass category of shape (B,) or (B, C)"
        )
    if category.dim() == 1:
        category = nn.functional.one_hot(category.long(), num_categories)
    if category.shape != (batch, num_categories):
        raise ValueError(
            f"expected category of shape ({batch},) or ({batch}, {num_categories}), "
            f"got {tuple(category.shape)}"
        )
    return category.to(ref.dtype)


@register_model("pointnet_partseg", task="partseg")
class PointNetSegmenter(nn.Module):
    """PointNet part segmentation network, as in the authors' ``pointnet_part_seg.py``.

    Input T-Net -> shared MLP (64, 128, 128) -> feature T-Net 128x128 -> shared
    MLP (512, 2048) -> max pool; the global feature, the one-hot object category
    and the local features of every layer are concatenated per point and a shared
    MLP (256, 256, 128) gives the part logits.
    Paper: Qi et al., CVPR 2017, https://arxiv.org/abs/1612.00593

    Args:
        num_parts: Number of part labels (50 for ShapeNetPart).
        num_categories: Number of object categories for the one-hot input
            (16 for ShapeNetPart; 0 for none).
        in_channels: 3 for xyz, 6 with normals.
        mlp1: Widths before the feature transform.
        mlp2: Widths after it; the last is the global width.
        seg_mlp: Widths of the per-point head.
        dropout: Dropout before the last layer (the authors use 0.2 in their
            PyTorch ports' seg heads; 0 disables it).
        input_transform / feature_transform: Use each T-Net.
        reg_weight: Weight of the feature-transform regulariser.

    Shape:
        - Input: ``(B, in_channels, N)`` and, when ``num_categories > 0``, the
          category as a long tensor ``(B,)`` or a one-hot ``(B, num_categories)``.
        - Output: part logits ``(B, num_parts, N)`` (straight into cross_entropy).
    """

    def __init__(
        self,
        num_parts: int = 50,
        num_categories: int = 16,
        in_channels: int = 3,
        *,
        mlp1: Sequence[int] = (64, 128, 128),
        mlp2: Sequence[int] = (512, 2048),
        seg_mlp: Sequence[int] = (256, 256, 128),
        dropout: float = 0.2,
        input_transform: bool = True,
        feature_transform: bool = True,
        reg_weight: float = 0.001,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.num_parts = num_parts
        self.num_categories = num_categories
        self.in_channels = in_channels
        self.reg_weight = reg_weight
        self.input_tnet = TNet(3, in_channels, bias=bias) if input_transform else None
        widths = [in_channels, *mlp1]
        self.local_mlps = nn.ModuleList(
            SharedMLP([a, b], bias=bias)
            for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        self.feature_tnet = TNet(mlp1[-1], bias=bias) if feature_transform else None
        widths2 = [mlp1[-1], *mlp2]
        self.global_mlps = nn.ModuleList(
            SharedMLP([a, b], bias=bias)
            for a, b in zip(widths2[:-1], widths2[1:], strict=True)
        )
        concat = sum(mlp1) + sum(mlp2) + mlp2[-1] + num_categories
        self.seg_head = SharedMLP([concat, *seg_mlp], bias=bias, dropout=0.0)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.seg_out = nn.Conv1d(seg_mlp[-1], num_parts, kernel_size=1)

    def forward(
        self,
        x: Tensor,
        category: Tensor | None = None,
        mask: Tensor | None = None,
        *,
        return_aux: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        _check_points(x, self.in_channels, type(self).__name__)
        batch, _, num_points = x.shape
        one_hot = category_one_hot(
            category, self.num_categories, batch, x, type(self).__name__
        )
        if self.input_tnet is not None:
            t_in = self.input_tnet(x, mask)
            x = _align_input(x, lambda part: _apply_transform(part, t_in))
        features: list[Tensor] = []
        h = x
        for i, mlp in enumerate(self.local_mlps):
            h = mlp(h)
            if i == len(self.local_mlps) - 1 and self.feature_tnet is not None:
                t_feat = self.feature_tnet(h, mask)  # (B, 128, 128)
                h = _apply_transform(h, t_feat)
            features.append(h)
        for mlp in self.global_mlps:
            h = mlp(h)
            features.append(h)
        glob = global_max_pool(h, mask)  # (B, 2048)
        extra = [glob] if one_hot is None else [glob, one_hot]
        expanded = torch.cat(extra, dim=1).unsqueeze(2).expand(-1, -1, num_points)
        h = self.seg_head(torch.cat([expanded, *features], dim=1))  # (B, 128, N)
        logits = self.seg_out(self.dropout(h))  # (B, num_parts, N)
        if not return_aux:
            return logits
        if self.feature_tnet is None:
            return logits, logits.new_zeros(())
        return logits, self.reg_weight * orthogonality_loss(t_feat)
