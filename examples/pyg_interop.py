"""PyTorch Geometric users: our data through PyG loaders, PyG batches through our model.

    python examples/pyg_interop.py [--epochs 3] [--num-points 128]

1. Wrap the embedded default dataset (ModelNet layout) as a PyG ``Dataset``
   with :func:`pointnet1x1.pyg.to_pyg_dataset`; a PyG transform keeps a random
   number of points per cloud, so every batch is *ragged* (clouds of different
   sizes), as PyG data usually is.
2. Train PointNet on ``torch_geometric.loader.DataLoader`` batches: the model
   takes the ``Batch`` directly (``pos``, optional ``x``, the ``batch`` vector;
   T-Nets and max pooling per cloud), no padding.
3. Check that a cloud's logits in a mixed batch equal its logits alone, and
   evaluate on the test split.
"""

from __future__ import annotations

import argparse

import torch
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader

from pointnet1x1 import PointNetClassifier
from pointnet1x1.data import ModelNet, default_data_root
from pointnet1x1.pyg import from_batch, to_data, to_pyg_dataset


class RandomPointCount:
    """A PyG-style transform: keep between ``low`` and all points of a cloud."""

    def __init__(self, low: int, seed: int = 0) -> None:
        self.low = low
        self.gen = torch.Generator().manual_seed(seed)

    def __call__(self, data: Data) -> Data:
        n = data.pos.shape[0]
        keep = int(torch.randint(self.low, n + 1, (1,), generator=self.gen))
        idx = torch.randperm(n, generator=self.gen)[:keep]
        out = Data(pos=data.pos[idx], y=data.y)
        if data.x is not None:
            out.x = data.x[idx]
        return out


@torch.no_grad()
def accuracy(model: torch.nn.Module, loader: DataLoader) -> float:
    model.eval()
    correct = total = 0
    for batch in loader:
        correct += int((model(batch).argmax(1) == batch.y).sum())
        total += batch.num_graphs
    return correct / total


def main(
    epochs: int = 3, num_points: int = 128, seed: int = 0, limit: int | None = None
) -> dict[str, float]:
    """Train, check and evaluate; returns the test accuracy and the batch/alone diff."""
    torch.manual_seed(seed)
    root = default_data_root()
    train_set = ModelNet(root, "train", num_points=num_points, progress=False)
    test_set = ModelNet(root, "test", num_points=num_points, progress=False)
    ragged = RandomPointCount(low=num_points // 2, seed=seed)
    train_pyg = to_pyg_dataset(train_set, transform=ragged)
    test_pyg = to_pyg_dataset(test_set, transform=ragged)
    if limit is not None:  # PyG datasets slice like lists (a quick run)
        train_pyg, test_pyg = train_pyg[:limit], test_pyg[:limit]
    print(f"{train_pyg}: {train_pyg.num_classes} classes, e.g. {train_pyg[0]}")

    loader = DataLoader(train_pyg, batch_size=32, shuffle=True)
    test_loader = DataLoader(test_pyg, batch_size=64)
    model = PointNetClassifier(num_classes=train_pyg.num_classes, in_channels=3)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(1, epochs + 1):
        model.train()
        for batch in loader:  # DataBatch(pos=[M, 3], y=[B], batch=[M], ptr=[B+1])
            logits, aux = model(batch, return_aux=True)
            loss = torch.nn.functional.cross_entropy(logits, batch.y) + aux
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: loss {loss.item():.3f}")

    # Ragged batches are exact: each cloud's logits equal those of the cloud alone.
    model.eval()
    batch = next(iter(test_loader))
    sizes = batch.ptr.diff().tolist()
    with torch.no_grad():
        together = model(batch)
        alone = torch.cat([model(to_data(p)) for p, _ in from_batch(batch)])
    diff = (together - alone).abs().max().item()
    print(
        f"batch of {len(sizes)} clouds of {min(sizes)}..{max(sizes)} points: "
        f"max |logits in batch - logits alone| = {diff:.1e}"
    )

    acc = accuracy(model, test_loader)
    print(f"test accuracy on ragged clouds: {acc:.1%} ({len(test_pyg)} clouds)")
    return {"accuracy": acc, "max_diff": diff}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--num-points", type=int, default=128)
    args = parser.parse_args()
    main(epochs=args.epochs, num_points=args.num_points)
