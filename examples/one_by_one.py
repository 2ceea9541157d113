"""Walk through the identities behind pointnet1x1 and print each numerical difference.

    python examples/one_by_one.py

A "shared MLP" over the points of a cloud is a 1x1 convolution; the same idea
explains dense layers on images as convolutions. Every line below builds both
sides of an identity with the same weights in float64 and prints max |difference|.
tests/test_one_by_one.py asserts the same identities (and their gradients).
"""

from __future__ import annotations

import torch
from torch import nn

from pointnet1x1 import PointNetClassifier, SharedMLP


def _diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


def conv1d_is_shared_linear() -> float:
    # (B, C, N): 2 clouds of 1024 points
    x = torch.randn(2, 3, 1024, dtype=torch.float64)
    conv = nn.Conv1d(3, 64, kernel_size=1).double()
    linear = nn.Linear(3, 64).double()
    linear.weight.data = conv.weight.data[:, :, 0].clone()
    linear.bias.data = conv.bias.data.clone()
    per_point = torch.stack([linear(x[:, :, n]) for n in range(x.shape[2])], dim=2)
    return _diff(conv(x), per_point)


def shared_mlp_to_linear() -> float:
    mlp = SharedMLP([3, 64, 128]).double()
    mlp(torch.randn(8, 3, 256, dtype=torch.float64))  # BN statistics
    mlp.eval()
    x = torch.randn(2, 3, 512, dtype=torch.float64)
    per_point = mlp.to_linear()  # BatchNorm folded into nn.Linear
    return _diff(mlp(x), per_point(x.transpose(1, 2)).transpose(1, 2))


def dense_is_full_size_conv() -> float:
    image = torch.randn(4, 1, 28, 28, dtype=torch.float64)
    dense = nn.Linear(784, 784).double()
    # 784 filters, one 28x28 kernel each
    conv = nn.Conv2d(1, 784, kernel_size=28).double()
    conv.weight.data = dense.weight.data.view(784, 1, 28, 28).clone()
    conv.bias.data = dense.bias.data.clone()
    return _diff(dense(image.flatten(1)), conv(image).flatten(1))


def dense_is_1x1_conv_on_784_channels() -> float:
    image = torch.randn(4, 1, 28, 28, dtype=torch.float64)
    dense = nn.Linear(784, 784).double()
    conv = nn.Conv2d(784, 784, kernel_size=1).double()  # 784 filters of 1x1 kernels
    conv.weight.data = dense.weight.data.view(784, 784, 1, 1).clone()
    conv.bias.data = dense.bias.data.clone()
    return _diff(dense(image.flatten(1)), conv(image.reshape(4, 784, 1, 1)).flatten(1))


def rgb_1x1_conv_is_per_pixel_dense() -> float:
    image = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    conv = nn.Conv2d(3, 16, kernel_size=1).double()
    dense = nn.Linear(3, 16).double()
    dense.weight.data = conv.weight.data.view(16, 3).clone()
    dense.bias.data = conv.bias.data.clone()
    per_pixel = dense(image.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    return _diff(conv(image), per_pixel)


def summed_class_maps_are_dense_on_summed_features() -> float:
    feats = torch.randn(2, 64, 7, 7, dtype=torch.float64)
    conv = nn.Conv2d(64, 10, kernel_size=1).double()  # one 7x7 map per class
    dense = nn.Linear(64, 10).double()
    dense.weight.data = conv.weight.data.view(10, 64).clone()
    dense.bias.data = conv.bias.data.clone()
    maps = conv(feats).sum(dim=(2, 3))
    # the maps add the bias once per position: 49 times
    return _diff(maps, dense(feats.sum(dim=(2, 3))) + 48 * dense.bias)


def pointnet_permutation_invariance() -> float:
    model = PointNetClassifier(num_classes=40).double()
    model(torch.randn(4, 3, 256, dtype=torch.float64))  # BN statistics
    model.eval()
    x = torch.randn(2, 3, 1024, dtype=torch.float64)
    perm = torch.randperm(1024)
    return _diff(model(x), model(x[:, :, perm]))


STEPS = [
    (
        "Conv1d(kernel_size=1) == one nn.Linear applied to every point",
        conv1d_is_shared_linear,
    ),
    (
        "SharedMLP([3, 64, 128]).eval() == .to_linear() point by point",
        shared_mlp_to_linear,
    ),
    (
        "Linear(784, 784) on a flat 28x28 image == 784 filters of 28x28",
        dense_is_full_size_conv,
    ),
    (
        "Linear(784, 784) == 784 filters of 1x1 on a (784, 1, 1) image",
        dense_is_1x1_conv_on_784_channels,
    ),
    (
        "1x1 conv over an RGB image == per-pixel Linear(3, 16)",
        rgb_1x1_conv_is_per_pixel_dense,
    ),
    (
        "sum of 1x1 class maps == Linear on summed features (+48 b)",
        summed_class_maps_are_dense_on_summed_features,
    ),
    ("PointNet(x[:, :, perm]) == PointNet(x)", pointnet_permutation_invariance),
]


def main() -> None:
    torch.manual_seed(0)
    for title, step in STEPS:
        with torch.no_grad():
            print(f"{title:<66s} max |diff| = {step():.1e}")


if __name__ == "__main__":
    main()
