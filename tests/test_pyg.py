"""PyTorch Geometric interop: ragged batches through the models, conversions, views."""

import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch
from torch_geometric.loader import DataLoader

from pointnet1x1 import PointNetClassifier, create_model
from pointnet1x1.pyg import (
    PyGDatasetView,
    forward_batch,
    from_batch,
    from_data,
    to_batch,
    to_data,
    to_pyg_dataset,
)


def _trained_like(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-trivial BN statistics and T-Nets, so that every path matters."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
    enc = model.encoder
    for tnet, std in ((enc.input_tnet, 0.05), (enc.feature_tnet, 0.01)):
        if tnet is not None:
            with torch.no_grad():
                tnet.out.weight.copy_(
                    torch.randn(tnet.out.weight.shape, generator=gen) * std
                )
    return model.eval()


@pytest.mark.parametrize("in_channels", [3, 6])
def test_ragged_equal_sizes_matches_dense(in_channels):
    model = _trained_like(PointNetClassifier(num_classes=5, in_channels=in_channels))
    x = torch.randn(3, in_channels, 40)
    dense = model(x)
    flat = x.transpose(1, 2).reshape(-1, in_channels)
    batch = torch.arange(3).repeat_interleave(40)
    assert torch.allclose(model(flat, batch=batch), dense, atol=1e-5)
    perm = torch.randperm(flat.shape[0])  # unsorted batch vectors work too
    assert torch.allclose(model(flat[perm], batch=batch[perm]), dense, atol=1e-5)


def test_ragged_train_mode_sees_the_same_points():
    torch.manual_seed(0)
    model = PointNetClassifier(num_classes=4, dropout=0.0).double().train()
    x = torch.randn(3, 3, 30, dtype=torch.float64)
    flat = x.transpose(1, 2).reshape(-1, 3)
    batch = torch.arange(3).repeat_interleave(30)
    dense, aux_d = model(x, return_aux=True)
    ragged, aux_r = model(flat, batch=batch, return_aux=True)
    assert torch.allclose(dense, ragged, atol=1e-10)
    assert torch.allclose(aux_d, aux_r, atol=1e-12)


def test_batch_of_different_sizes_equals_each_cloud_alone():
    model = _trained_like(PointNetClassifier(num_classes=4, in_channels=6))
    clouds = [torch.randn(n, 6) for n in (17, 40, 5)]
    batch = Batch.from_data_list([to_data(c, i) for i, c in enumerate(clouds)])
    logits = model(batch)
    alone = torch.cat([model(c.t().unsqueeze(0)) for c in clouds])
    assert logits.shape == (3, 4)
    assert torch.allclose(logits, alone, atol=1e-5)
    assert torch.allclose(forward_batch(model, batch), logits)
    single = model(to_data(clouds[1]))  # a lone Data is one cloud
    assert torch.allclose(single, alone[1:2], atol=1e-5)
    # PyG's SamplePoints(include_normals=True) puts normals in `normal`
    data = to_data(clouds[0][:, :3])
    data.normal = clouds[0][:, 3:]
    assert torch.allclose(model(data), alone[0:1], atol=1e-5)


def test_pyg_batch_gradients_and_aux():
    model = create_model("pointnet", num_classes=3)
    batch = Batch.from_data_list([to_data(torch.randn(n, 3), 0) for n in (9, 12)])
    logits, aux = model(batch, return_aux=True)
    (logits.sum() + aux).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_vanilla_model_ragged_with_num_clouds():
    model = _trained_like(create_model("pointnet_vanilla", num_classes=3))
    flat, batch = torch.randn(10, 3), torch.zeros(10, dtype=torch.long)
    assert model(flat, batch=batch, num_clouds=1).shape == (1, 3)


def test_ragged_input_errors():
    model = PointNetClassifier(num_classes=3)
    flat = torch.randn(10, 3)
    with pytest.raises(ValueError, match=r"flat points \(M, 3\) and batch \(M,\)"):
        model(flat, batch=torch.zeros(9, dtype=torch.long))
    with pytest.raises(ValueError, match="either mask"):
        model(flat, torch.ones(10, dtype=torch.bool), batch=torch.zeros(10).long())
    with pytest.raises(ValueError, match=r"\(M, 3\)"):  # normals given to an xyz model
        model(to_data(torch.randn(8, 6)))


def test_sample_round_trip_through_data():
    points = np.random.default_rng(0).random((12, 6), dtype=np.float32)
    data = to_data(points, 7)
    assert data.pos.shape == (12, 3) and data.x.shape == (12, 3)
    assert data.y.tolist() == [7]
    back, label = from_data(data)
    assert label == 7 and back.dtype == np.float32
    np.testing.assert_array_equal(back, points)
    xyz_only = to_data(points[:, :3])
    assert xyz_only.x is None and xyz_only.y is None
    assert from_data(xyz_only)[1] is None
    xyz_only.normal = torch.from_numpy(points[:, 3:])  # as PyG's SamplePoints
    np.testing.assert_array_equal(from_data(xyz_only)[0], points)
    with pytest.raises(ValueError, match=r"\(N, 3\+F\), got \(12,\)"):
        to_data(points[:, 0])


def test_batch_round_trip():
    rng = np.random.default_rng(1)
    samples = [(rng.random((n, 3), dtype=np.float32), i) for i, n in enumerate((4, 9))]
    batch = Batch.from_data_list([to_data(p, y) for p, y in samples])
    back = from_batch(batch)
    assert [y for _, y in back] == [0, 1]
    for (p, _), (q, _) in zip(samples, back, strict=True):
        np.testing.assert_array_equal(p, q)
    with pytest.raises(ValueError, match="expected a torch_geometric Batch"):
        from_batch(to_data(samples[0][0]))
    as_collate = to_batch(samples)  # also a collate_fn for plain DataLoaders
    assert as_collate.num_graphs == 2 and as_collate.y.tolist() == [0, 1]
    assert as_collate.batch.tolist() == [0] * 4 + [1] * 9
    with pytest.raises(ValueError, match="empty list"):
        to_batch([])


class _Samples:
    """Stand-in for our datasets: ``[i] -> (points (N, 3+F), label)``."""

    class_names = ["cone", "cube", "sphere"]

    def __init__(self) -> None:
        rng = np.random.default_rng(2)
        self.items = [(rng.random((16, 6), dtype=np.float32), i % 3) for i in range(5)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        return self.items[i]


def test_dataset_view_works_with_pyg_loader_and_model():
    source = _Samples()
    view = to_pyg_dataset(source)
    assert isinstance(view, PyGDatasetView) and len(view) == 5
    assert view.num_classes == 3 and view.num_node_features == 3
    assert view.class_names == source.class_names
    np.testing.assert_array_equal(from_data(view[2])[0], source[2][0])
    loader = DataLoader(view, batch_size=2, shuffle=False)
    model = _trained_like(PointNetClassifier(num_classes=3, in_channels=6))
    batches = list(loader)
    assert [b.num_graphs for b in batches] == [2, 2, 1]
    assert batches[0].y.tolist() == [0, 1]
    dense = torch.from_numpy(np.stack([p for p, _ in source.items[:2]])).transpose(1, 2)
    assert torch.allclose(model(batches[0]), model(dense), atol=1e-5)


def test_dataset_view_applies_pyg_transforms():
    def scale(data):
        data.pos = data.pos * 2
        return data

    view = to_pyg_dataset(_Samples(), transform=scale)
    np.testing.assert_allclose(view[0].pos.numpy(), _Samples()[0][0][:, :3] * 2)


def test_models_do_not_import_torch_geometric():
    code = (
        "import sys, pointnet1x1.models, pointnet1x1.nn;"
        "assert 'torch_geometric' not in sys.modules, 'imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


class _Always(torch.nn.Module):
    """Predicts class ``k`` for every cloud of a PyG batch."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k

    def forward(self, batch):
        logits = torch.zeros(batch.num_graphs, 3)
        logits[:, self.k] = 1.0
        return logits


def test_pyg_example_runs_on_ragged_batches():
    example = Path(__file__).resolve().parents[1] / "examples" / "pyg_interop.py"
    module = runpy.run_path(str(example))
    result = module["main"](epochs=1, num_points=32, limit=64)
    assert result["max_diff"] < 1e-5
    # its accuracy counts whole clouds of every batch: a constant answer scores the
    # share of that class (labels 0, 1, 2, 0, 1 of the five samples)
    loader = DataLoader(to_pyg_dataset(_Samples()), batch_size=2)
    assert module["accuracy"](_Always(0), loader) == pytest.approx(2 / 5)
    assert module["accuracy"](_Always(2), loader) == pytest.approx(1 / 5)
