"""Models built from :class:`~pointnet1x1.nn.SharedMLP`, and their registry.

Registered names (see :func:`list_models`):
    ``pointnet``          PointNet classifier with both T-Nets (paper, ~3.5M params)
    ``pointnet_vanilla``  PointNet classifier without T-Nets (~0.8M params)
    ``pointnet_partseg``  PointNet part segmenter
"""

from __future__ import annotations

from typing import Any

from pointnet1x1.models.pointnet import (
    PointNetClassifier,
    PointNetEncoder,
    PointNetFeatures,
    PointNetSegmenter,
)
from pointnet1x1.models.registry import create_model, list_models, register_model

register_model("pointnet")(PointNetClassifier)
register_model("pointnet_partseg")(PointNetSegmenter)


@register_model("pointnet_vanilla")
def _pointnet_vanilla(**kwargs: Any) -> PointNetClassifier:
    kwargs.setdefault("input_transform", False)
    kwargs.setdefault("feature_transform", False)
    return PointNetClassifier(**kwargs)


__all__ = [
    "PointNetClassifier",
    "PointNetEncoder",
    "PointNetFeatures",
    "PointNetSegmenter",
    "create_model",
    "list_models",
    "register_model",
]
