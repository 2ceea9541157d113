"""PointNet++ (Qi et al., NeurIPS 2017), from the same 1x1-convolution SharedMLP.

Paper: https://arxiv.org/abs/1706.02413 ; authors' code: github.com/charlesq34/pointnet2
(``models/pointnet2_cls_ssg.py``, ``pointnet2_cls_msg.py``, ``pointnet2_part_seg.py``,
``utils/pointnet_util.py``).

A set abstraction layer samples ``npoint`` centroids by farthest point sampling,
groups up to ``nsample`` neighbours within a radius of each (ball query), runs a
:class:`~pointnet1x1.nn.SharedMLP2d` (a ``Conv2d`` 1x1: the same dense layers on
every neighbour of every centroid) over the ``(B, C, npoint, nsample)`` groups and
max-pools over the neighbours. Neighbour coordinates are taken relative to their
centroid and put before the neighbour's features. Multi-scale grouping (MSG) runs
one such branch per radius and concatenates them. Feature propagation
interpolates features back to denser points (three nearest neighbours, inverse
squared distance) and runs a :class:`~pointnet1x1.nn.SharedMLP`.

Every convolution has a bias followed by batch norm, as in the authors' code, so
the parameter counts match theirs: SSG 1,475,688 and MSG 1,747,368 for 40 classes
on xyz input.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from pointnet1x1.models.pointnet import category_one_hot
from pointnet1x1.models.registry import register_model
from pointnet1x1.nn import (
    SharedMLP,
    SharedMLP2d,
    ball_query,
    farthest_point_sample,
    gather_points,
    group_points,
    three_nn_interpolate,
)

# Per sampling layer: (radii, nsamples, mlps) of the authors' classifiers, whose
# npoint are 512 and 128. SSG: pointnet2_cls_ssg.py; MSG: pointnet2_cls_msg.py.
_Spec = tuple[tuple[float, ...], tuple[int, ...], tuple[tuple[int, ...], ...]]
_SSG: tuple[_Spec, _Spec] = (
    ((0.2,), (32,), ((64, 64, 128),)),
    ((0.4,), (64,), ((128, 128, 256),)),
)
_MSG: tuple[_Spec, _Spec] = (
    ((0.1, 0.2, 0.4), (16, 32, 128), ((32, 32, 64), (64, 64, 128), (64, 96, 128))),
    ((0.2, 0.4, 0.8), (32, 64, 128), ((64, 64, 128), (128, 128, 256), (128, 128, 256))),
)
_GLOBAL_MLP = (256, 512, 1024)


class SetAbstraction(nn.Module):
    """A set abstraction layer: sample, group (one or more radii), shared MLP, max.

    Args:
        npoint: Number of centroids (farthest point sampling), capped at the
            number of input points; ``None`` groups all points into one set
            around the origin (the last layer).
        radii: Ball radius of each scale (one for single-scale grouping).
        nsamples: Neighbours per ball of each scale.
        mlps: Widths of the shared MLP of each scale (input width excluded).
        in_channels: Feature channels of the input points (0 for xyz only); the
            relative xyz are added to them.
        bias: Bias in the convolutions (the authors' code has them).

    Shape:
        - Input: xyz ``(B, N, 3)`` and features ``(B, in_channels, N)`` or ``None``.
        - Output: new xyz ``(B, npoint, 3)`` (``(B, 1, 3)`` zeros when grouping
          all) and features ``(B, sum(mlp[-1]), npoint)``.
    """

    def __init__(
        self,
        npoint: int | None,
        radii: Sequence[float],
        nsamples: Sequence[int],
        mlps: Sequence[Sequence[int]],
        in_channels: int = 0,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if npoint is not None and not (len(radii) == len(nsamples) == len(mlps)):
            raise ValueError(
                f"one radius, nsample and mlp per scale, got {len(radii)} radii, "
                f"{len(nsamples)} nsamples and {len(mlps)} mlps"
            )
        self.npoint = npoint
        self.radii = [float(r) for r in radii]
        self.nsamples = [int(k) for k in nsamples]
        self.in_channels = in_channels
        self.mlps = nn.ModuleList(
            SharedMLP2d([in_channels + 3, *widths], bias=bias) for widths in mlps
        )
        self.out_channels = sum(int(widths[-1]) for widths in mlps)

    def extra_repr(self) -> str:
        if self.npoint is None:
            return "npoint=all"
        return f"npoint={self.npoint}, radii={self.radii}, nsamples={self.nsamples}"

    def forward(self, xyz: Tensor, features: Tensor | None) -> tuple[Tensor, Tensor]:
        if self.npoint is None:
            return self._group_all(xyz, features)
        # Fewer points than centroids (small inputs): every point is a centroid.
        npoint = min(self.npoint, xyz.shape[1])
        new_xyz = gather_points(xyz, farthest_point_sample(xyz, npoint))
        points = None if features is None else features.transpose(1, 2)  # (B, N, C)
        outs = []
        for radius, k, mlp in zip(self.radii, self.nsamples, self.mlps, strict=True):
            idx = ball_query(xyz, new_xyz, radius, k)  # (B, S, K)
            grouped = group_points(xyz, idx) - new_xyz.unsqueeze(2)  # (B, S, K, 3)
            if points is not None:
                grouped = torch.cat([grouped, group_points(points, idx)], dim=-1)
            h = mlp(grouped.permute(0, 3, 1, 2))  # (B, C_out, S, K)
            outs.append(h.amax(dim=-1))  # (B, C_out, S)
        return new_xyz, torch.cat(outs, dim=1)

    def _group_all(self, xyz: Tensor, features: Tensor | None) -> tuple[Tensor, Tensor]:
        # As the authors: one group of all points, xyz kept absolute (centroid 0).
        h = xyz.transpose(1, 2)  # (B, 3, N)
        if features is not None:
            h = torch.cat([h, features], dim=1)
        h = torch.cat([mlp(h.unsqueeze(2)) for mlp in self.mlps], dim=1)  # (B, C, 1, N)
        return xyz.new_zeros(xyz.shape[0], 1, 3), h.amax(dim=-1)  # (B, C, 1)


class FeaturePropagation(nn.Module):
    """Interpolate coarse features onto denser points, concatenate skip features,
    shared MLP.

    Args:
        in_channels: Coarse feature channels plus skip feature channels.
        mlp: Widths of the shared MLP.
        bias: Bias in the convolutions.

    Shape:
        - Input: dense xyz ``(B, N, 3)``, coarse xyz ``(B, M, 3)``, skip features
          ``(B, C1, N)`` or ``None``, coarse features ``(B, C2, M)``.
        - Output: ``(B, mlp[-1], N)``.
    """

    def __init__(self, in_channels: int, mlp: Sequence[int], *, bias: bool = True):
        super().__init__()
        self.mlp = SharedMLP([in_channels, *mlp], bias=bias)

    def forward(
        self, xyz: Tensor, coarse_xyz: Tensor, skip: Tensor | None, coarse: Tensor
    ) -> Tensor:
        h = three_nn_interpolate(xyz, coarse_xyz, coarse)  # (B, C2, N)
        if skip is not None:
            h = torch.cat([skip, h], dim=1)
        return self.mlp(h)


def _split_input(
    x: Tensor, in_channels: int, name: str
) -> tuple[Tensor, Tensor | None]:
    if x.dim() != 3 or x.shape[1] != in_channels:
        raise ValueError(
            f"{name} expected points of shape (B, {in_channels}, N), got {tuple(x.shape)}"
        )
    xyz = x[:, :3].transpose(1, 2).contiguous()  # (B, N, 3)
    return xyz, (x[:, 3:] if in_channels > 3 else None)


@register_model("pointnet2_msg", task="cls", defaults={"msg": True})
@register_model("pointnet2_ssg", task="cls")
class PointNet2Classifier(nn.Module):
    """PointNet++ classification network (SSG or MSG, the authors' widths).

    Paper: Qi et al., "PointNet++: Deep Hierarchical Feature Learning on Point
    Sets in a Metric Space", NeurIPS 2017, https://arxiv.org/abs/1706.02413

    Args:
        num_classes: Number of classes (40 for ModelNet40).
        in_channels: 3 for xyz, 6 with normals, ``3 + F`` in general; the extra
            channels are the first layer's point features.
        msg: Multi-scale grouping (``pointnet2_cls_msg.py``) instead of single.
        npoints: Centroids of the two sampling layers (authors: 512, 128); smaller
            values make small inputs and quick tests possible.
        head: Widths of the FC layers (authors: 512, 256).
        dropout: Dropout of the FC layers (authors: keep 0.5, so 0.5).
        bias: Bias in the convolutions (the authors' code has them).

    Shape:
        - Input: ``(B, in_channels, N)``.
        - Output: logits ``(B, num_classes)``; with ``return_aux=True`` a pair
          ``(logits, zero)`` (no regulariser), as every registered model.
    """

    def __init__(
        self,
        num_classes: int = 40,
        in_channels: int = 3,
        *,
        msg: bool = False,
        npoints: Sequence[int] = (512, 128),
        head: Sequence[int] = (512, 256),
        dropout: float = 0.5,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if num_classes <= 0:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        if in_channels < 3:
            raise ValueError(f"in_channels must be at least 3 (xyz), got {in_channels}")
        if len(npoints) != 2:
            raise ValueError(f"npoints needs two values, got {list(npoints)}")
        self.num_classes = num_classes
        self.in_channels = in_channels
        channels = in_channels - 3
        layers = []
        for npoint, (radii, nsamples, mlps) in zip(
            npoints, _MSG if msg else _SSG, strict=True
        ):
            layers.append(
                SetAbstraction(npoint, radii, nsamples, mlps, channels, bias=bias)
            )
            channels = layers[-1].out_channels
        layers.append(SetAbstraction(None, (), (), (_GLOBAL_MLP,), channels, bias=bias))
        self.sa = nn.ModuleList(layers)
        self.head = SharedMLP([_GLOBAL_MLP[-1], *head], bias=bias, dropout=dropout)
        self.classifier = nn.Linear(head[-1], num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        xyz, features = _split_input(x, self.in_channels, type(self).__name__)
        for sa in self.sa:
            xyz, features = sa(xyz, features)
        assert features is not None
        return features.squeeze(-1)  # (B, 1024)

    def forward_head(self, global_feature: Tensor) -> Tensor:
        return self.classifier(self.head(global_feature))  # (B, num_classes)

    def forward(
        self, x: Tensor, mask: Tensor | None = None, *, return_aux: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        if mask is not None and not bool(mask.all()):
            raise ValueError(
                f"{type(self).__name__} does not take padded clouds: resample every "
                "cloud to the same number of points instead of masking"
            )
        logits = self.forward_head(self.forward_features(x))
        return (logits, logits.new_zeros(())) if return_aux else logits

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the last layer with a fresh one for ``num_classes`` classes."""
        self.num_classes = num_classes
        self.classifier = nn.Linear(self.classifier.in_features, num_classes).to(
            self.classifier.weight.device
        )


@register_model("pointnet2_partseg", task="partseg")
class PointNet2Segmenter(nn.Module):
    """PointNet++ part segmentation (SSG), with the object category one-hot.

    The authors' ``pointnet2_part_seg.py`` (SA 512/0.2/64, 128/0.4/64, all; FP
    (256, 256), (256, 128), (128, 128, 128); conv 128, dropout 0.5, conv
    ``num_parts``), plus the category one-hot concatenated to the input of the
    last feature propagation as in their ``pointnet2_part_seg_msg_one_hot.py``.
    Paper: https://arxiv.org/abs/1706.02413

    Args:
        num_parts: Number of part labels (50 for ShapeNetPart).
        num_categories: Object categories of the one-hot (16; 0 for none).
        in_channels: 3 for xyz, 6 with normals (the authors use normals).
        npoints: Centroids of the two sampling layers (authors: 512, 128).
        nsample: Neighbours per ball of the first layer (authors 64; the
            yanx27 PyTorch port uses 32).
        dropout: Dropout before the last layer (authors: 0.5).
        bias: Bias in the convolutions.

    Shape:
        - Input: ``(B, in_channels, N)`` and the category
          as a long tensor ``(B,)`` or a one-hot ``(B, num_categories)``.
        - Output: part logits ``(B, num_parts, N)``.
    """

    def __init__(
        self,
        num_parts: int = 50,
        num_categories: int = 16,
        in_channels: int = 3,
        *,
        npoints: Sequence[int] = (512, 128),
        nsample: int = 64,
        dropout: float = 0.5,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if in_channels < 3:
            raise ValueError(f"in_channels must be at least 3 (xyz), got {in_channels}")
        self.num_parts = num_parts
        self.num_categories = num_categories
        self.in_channels = in_channels
        extra = in_channels - 3
        sa1 = SetAbstraction(
            npoints[0], [0.2], [nsample], [[64, 64, 128]], extra, bias=bias
        )
        sa2 = SetAbstraction(npoints[1], [0.4], [64], [[128, 128, 256]], 128, bias=bias)
        sa3 = SetAbstraction(None, [], [], [_GLOBAL_MLP], 256, bias=bias)
        self.sa = nn.ModuleList([sa1, sa2, sa3])
        self.fp = nn.ModuleList(
            [
                FeaturePropagation(1024 + 256, [256, 256], bias=bias),
                FeaturePropagation(256 + 128, [256, 128], bias=bias),
                FeaturePropagation(
                    128 + num_categories + in_channels, [128] * 3, bias=bias
                ),
            ]
        )
        self.head = SharedMLP([128, 128], bias=bias, dropout=dropout)
        self.seg_out = nn.Conv1d(128, num_parts, kernel_size=1)

    def forward(
        self,
        x: Tensor,
        category: Tensor | None = None,
        mask: Tensor | None = None,
        *,
        return_aux: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        xyz, features = _split_input(x, self.in_channels, type(self).__name__)
        if mask is not None and not bool(mask.all()):
            raise ValueError(f"{type(self).__name__} does not take padded clouds")
        one_hot = category_one_hot(
            category, self.num_categories, x.shape[0], x, type(self).__name__
        )
        levels_xyz, levels = [xyz], [features]
        for sa in self.sa:
            xyz, features = sa(xyz, features)
            levels_xyz.append(xyz)
            levels.append(features)
        h = levels[3]
        assert h is not None
        h = self.fp[0](levels_xyz[2], levels_xyz[3], levels[2], h)  # (B, 256, 128)
        h = self.fp[1](levels_xyz[1], levels_xyz[2], levels[1], h)  # (B, 128, 512)
        skip = (
            [x]
            if one_hot is None
            else [one_hot[:, :, None].expand(-1, -1, x.shape[2]), x]
        )
        h = self.fp[2](levels_xyz[0], levels_xyz[1], torch.cat(skip, dim=1), h)
        logits = self.seg_out(self.head(h))  # (B, num_parts, N)
        return (logits, logits.new_zeros(())) if return_aux else logits
