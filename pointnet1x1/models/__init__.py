"""Models built from :class:`~pointnet1x1.nn.SharedMLP`, and their registry.

Each model registers itself where it is defined (``@register_model``), with its
task and default recipe; :func:`model_info` says what a name is.

Registered names (see :func:`list_models`):
    ``pointnet``          PointNet classifier with both T-Nets (paper, ~3.5M params)
    ``pointnet_vanilla``  PointNet classifier without T-Nets (~0.8M params)
    ``pointnet_partseg``  PointNet part segmenter
    ``pointnet2_ssg``     PointNet++ classifier, single-scale grouping (~1.48M params)
    ``pointnet2_msg``     PointNet++ classifier, multi-scale grouping (~1.75M params)
    ``pointnet2_partseg`` PointNet++ part segmenter (SSG, category one-hot)
"""

from __future__ import annotations

from pointnet1x1.models.pointnet import (
    PointNetClassifier,
    PointNetEncoder,
    PointNetFeatures,
    PointNetSegmenter,
)
from pointnet1x1.models.pointnet2 import PointNet2Classifier, PointNet2Segmenter
from pointnet1x1.models.registry import (
    ModelInfo,
    create_model,
    list_models,
    model_info,
    register_model,
)

__all__ = [
    "ModelInfo",
    "PointNet2Classifier",
    "PointNet2Segmenter",
    "PointNetClassifier",
    "PointNetEncoder",
    "PointNetFeatures",
    "PointNetSegmenter",
    "create_model",
    "list_models",
    "model_info",
    "register_model",
]
