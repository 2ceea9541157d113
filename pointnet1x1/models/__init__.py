"""Models built from :class:`~pointnet1x1.nn.SharedMLP`, and their registry.

Registered names (see :func:`list_models`):
    ``pointnet``          PointNet classifier with both T-Nets (paper, ~3.5M params)
    ``pointnet_vanilla``  PointNet classifier without T-Nets (~0.8M params)
    ``pointnet_partseg``  PointNet part segmenter
    ``pointnet2_ssg``     PointNet++ classifier, single-scale grouping (~1.48M params)
    ``pointnet2_msg``     PointNet++ classifier, multi-scale grouping (~1.75M params)
    ``pointnet2_partseg`` PointNet++ part segmenter (SSG, category one-hot)
"""

from __future__ import annotations

from typing import Any

from pointnet1x1.models.pointnet import (
    PointNetClassifier,
    PointNetEncoder,
    PointNetFeatures,
    PointNetSegmenter,
)
from pointnet1x1.models.pointnet2 import PointNet2Classifier, PointNet2Segmenter
from pointnet1x1.models.registry import create_model, list_models, register_model

register_model("pointnet")(PointNetClassifier)
register_model("pointnet_partseg")(PointNetSegmenter)
register_model("pointnet2_ssg")(PointNet2Classifier)
register_model("pointnet2_partseg")(PointNet2Segmenter)


@register_model("pointnet2_msg")
def _pointnet2_msg(**kwargs: Any) -> PointNet2Classifier:
    kwargs.setdefault("msg", True)
    return PointNet2Classifier(**kwargs)


@register_model("pointnet_vanilla")
def _pointnet_vanilla(**kwargs: Any) -> PointNetClassifier:
    kwargs.setdefault("input_transform", False)
    kwargs.setdefault("feature_transform", False)
    return PointNetClassifier(**kwargs)


__all__ = [
    "PointNet2Classifier",
    "PointNet2Segmenter",
    "PointNetClassifier",
    "PointNetEncoder",
    "PointNetFeatures",
    "PointNetSegmenter",
    "create_model",
    "list_models",
    "register_model",
]
