"""Your own PointNet++-style model, from SharedMLP2d / SharedMLP and the point ops.

    python examples/custom_pointnet2_style.py [--epochs 8]

A two-level hierarchy assembled by hand, trained on the embedded default dataset
(ten procedural shape classes in the ModelNet layout, generated on first use):

1. farthest point sampling picks 128 centroids; a ball query groups 16 points
   around each; a ``SharedMLP2d`` (a ``Conv2d`` 1x1: the same dense layers on every
   neighbour of every centroid) and a max over the neighbours give each centroid
   a feature;
2. 32 of those centroids again, grouped this time by k nearest neighbours, with
   the first level's features concatenated to the relative coordinates;
3. a ``SharedMLP`` (``Conv1d`` 1x1) per centroid, a global max pool, a small head.

About three minutes of CPU time (8 epochs, 640 clouds); prints the test
accuracy (94% with the defaults).
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import Tensor, nn

from pointnet1x1 import SharedMLP, SharedMLP2d
from pointnet1x1.data import ModelNet, augment_batch, collate, default_data_root
from pointnet1x1.nn import (
    ball_query,
    farthest_point_sample,
    gather_points,
    global_max_pool,
    group_points,
    knn,
)


class GroupedLevel(nn.Module):
    """Sample centroids, group neighbours, shared MLP over each group, max.

    Args:
        num_centroids: Centroids picked by farthest point sampling.
        num_neighbors: Points per group.
        channels: Shared MLP widths, the first being ``3 + C_in``.
        radius: Ball query radius; ``None`` groups by k nearest neighbours.

    Shape:
        - Input: xyz ``(B, N, 3)``, features ``(B, C_in, N)`` or ``None``.
        - Output: xyz ``(B, num_centroids, 3)``, features ``(B, C_out, num_centroids)``.
    """

    def __init__(
        self,
        num_centroids: int,
        num_neighbors: int,
        channels: list[int],
        radius: float | None = None,
    ) -> None:
        super().__init__()
        self.num_centroids, self.num_neighbors, self.radius = (
            num_centroids,
            num_neighbors,
            radius,
        )
        self.mlp = SharedMLP2d(channels)

    def forward(self, xyz: Tensor, features: Tensor | None) -> tuple[Tensor, Tensor]:
        centroids = gather_points(xyz, farthest_point_sample(xyz, self.num_centroids))
        if self.radius is not None:
            idx = ball_query(xyz, centroids, self.radius, self.num_neighbors)
        else:
            idx = knn(centroids, xyz, self.num_neighbors).idx  # (B, S, K)
        groups = group_points(xyz, idx) - centroids.unsqueeze(2)  # (B, S, K, 3)
        if features is not None:
            groups = torch.cat(
                [groups, group_points(features.transpose(1, 2), idx)], -1
            )
        h = self.mlp(groups.permute(0, 3, 1, 2))  # (B, C_out, S, K)
        return centroids, h.amax(dim=-1)  # (B, C_out, S)


class TinyPointNet2(nn.Module):
    """A user's own hierarchical point-cloud classifier.

    Shape:
        - Input: ``(B, 3, N)`` channels-first points, ``N >= 128``.
        - Output: ``(B, num_classes)`` logits.
    """

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.level1 = GroupedLevel(128, 16, [3, 32, 32, 64], radius=0.3)
        self.level2 = GroupedLevel(32, 16, [64 + 3, 64, 128])
        self.mlp = SharedMLP([128 + 3, 256])
        self.head = nn.Sequential(
            nn.Linear(256, 128), nn.ReLU(), nn.Dropout(0.4), nn.Linear(128, num_classes)
        )

    def forward(self, x: Tensor) -> Tensor:
        xyz = x[:, :3].transpose(1, 2).contiguous()  # (B, N, 3) for the point ops
        xyz, h = self.level1(xyz, None)  # (B, 64, 128)
        xyz, h = self.level2(xyz, h)  # (B, 128, 32)
        h = self.mlp(torch.cat([xyz.transpose(1, 2), h], dim=1))  # (B, 256, 32)
        return self.head(global_max_pool(h))


@torch.no_grad()
def accuracy(model: nn.Module, data: ModelNet) -> float:
    model.eval()
    loader = torch.utils.data.DataLoader(data, batch_size=64, collate_fn=collate)
    correct = sum(int((model(x).argmax(1) == y).sum()) for x, y in loader)
    return correct / len(data)


def main(epochs: int = 8, num_points: int = 512) -> float:
    torch.manual_seed(0)
    root = default_data_root()
    train = ModelNet(root, "train", num_points=num_points, progress=False)
    test = ModelNet(root, "test", num_points=num_points, progress=False)
    model = TinyPointNet2(len(train.class_names))
    params = sum(p.numel() for p in model.parameters())
    print(f"{len(train)} training / {len(test)} test clouds, {params} parameters")
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    gen = torch.Generator().manual_seed(0)
    loader = torch.utils.data.DataLoader(
        train, batch_size=32, shuffle=True, collate_fn=collate, generator=gen
    )
    for epoch in range(epochs):
        model.train()
        start, total = time.perf_counter(), 0.0
        for x, y in loader:
            x = augment_batch(x, channels_first=True, dropout=None, generator=gen)
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(y)
        sched.step()
        print(
            f"epoch {epoch + 1}/{epochs}  loss {total / len(train):.3f}  "
            f"({time.perf_counter() - start:.0f}s)"
        )
    acc = accuracy(model, test)
    print(f"test accuracy {acc:.1%} over {len(test)} clouds")
    return acc


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--num-points", type=int, default=512)
    args = parser.parse_args()
    main(args.epochs, args.num_points)
