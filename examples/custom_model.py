"""Build your own 3D model from pointnet1x1's SharedMLP.

    python examples/custom_model.py

A tiny point-cloud classifier: a shared MLP (1x1 convolutions) per point, max and
mean pooling over points, and a small head, trained for a few steps on two kinds of
synthetic clouds (points on a sphere vs. points in a cube) to show it learns.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pointnet1x1 import SharedMLP
from pointnet1x1.nn import global_max_pool


class TinyPointClassifier(nn.Module):
    """A user's own model: SharedMLP encoder, max+mean pooling, MLP head.

    Shape:
        - Input: ``(B, 3, N)`` channels-first points.
        - Output: ``(B, num_classes)`` logits.
    """

    def __init__(self, num_classes: int, width: int = 64) -> None:
        super().__init__()
        self.encoder = SharedMLP([3, 32, width])  # Conv1d 1x1 + BN + ReLU per point
        self.head = nn.Sequential(
            nn.Linear(2 * width, 32), nn.ReLU(), nn.Linear(32, num_classes)
        )

    def forward(self, x: Tensor) -> Tensor:
        feat = self.encoder(x)  # (B, width, N)
        pooled = torch.cat([global_max_pool(feat), feat.mean(dim=2)], dim=1)
        return self.head(pooled)


def make_batch(
    batch: int, num_points: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    labels = torch.randint(0, 2, (batch,), generator=generator)
    pts = torch.randn(batch, num_points, 3, generator=generator)
    sphere = pts / pts.norm(dim=2, keepdim=True)
    cube = torch.rand(batch, num_points, 3, generator=generator) * 2 - 1
    clouds = torch.where(labels[:, None, None] == 0, sphere, cube)
    return clouds.transpose(1, 2), labels  # (B, 3, N): the one transpose


def main(steps: int = 60) -> float:
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = TinyPointClassifier(num_classes=2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(steps):
        x, y = make_batch(16, 256, gen)
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 20 == 0:
            print(f"step {step:3d}  loss {loss.item():.3f}")
    model.eval()
    with torch.no_grad():
        x, y = make_batch(200, 256, gen)
        accuracy = (model(x).argmax(dim=1) == y).float().mean().item()
    print(
        f"{type(model).__name__}: {sum(p.numel() for p in model.parameters())} "
        f"parameters, test accuracy {accuracy:.1%}"
    )
    return accuracy


if __name__ == "__main__":
    main()
