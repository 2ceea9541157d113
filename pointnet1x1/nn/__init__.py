"""Layers: shared MLPs as 1x1 convolutions, T-Nets, pooling, point operations.

Every module takes channels-first tensors ``(B, C, N)`` (or flat ``(M, C)`` points
with a ``batch`` vector where stated); see :mod:`pointnet1x1.nn.shared_mlp`.
"""

from pointnet1x1.nn.point_ops import (
    KNNResult,
    ball_query,
    farthest_point_sample,
    gather_points,
    group_points,
    knn,
    square_distance,
    three_nn_interpolate,
)
from pointnet1x1.nn.pool import global_max_pool
from pointnet1x1.nn.shared_mlp import SharedMLP, SharedMLP2d, fold_batchnorm
from pointnet1x1.nn.tnet import TNet, orthogonality_loss

__all__ = [
    "KNNResult",
    "ball_query",
    "farthest_point_sample",
    "gather_points",
    "group_points",
    "knn",
    "square_distance",
    "three_nn_interpolate",
    "SharedMLP",
    "SharedMLP2d",
    "TNet",
    "fold_batchnorm",
    "global_max_pool",
    "orthogonality_loss",
]
