"""PyTorch Geometric interop: our samples and datasets as PyG ``Data``, and back.

PyG stores a batch of clouds of different sizes *flat*: ``pos`` ``(M, 3)``,
optional per-point features ``x`` ``(M, F)``, and a ``batch`` vector ``(M,)``
giving each point's cloud. Our samples are points-major ``(N, 3+F)`` arrays with
an integer label. This module converts one into the other:

- :func:`to_data` / :func:`from_data`: one sample <-> one ``Data`` (xyz in
  ``pos``, the other channels, e.g. normals, in ``x``, the label in ``y`` of
  shape ``(1,)``, so that a ``Batch`` holds ``y`` of shape ``(B,)``).
- :func:`to_batch` / :func:`from_batch`: samples of any sizes <-> one ``Batch``
  (``to_batch`` also serves as a ``collate_fn``).
- :func:`to_pyg_dataset`: a PyG ``Dataset`` view of any of our datasets
  (``dataset[i] -> (points, label)``), for ``torch_geometric.loader.DataLoader``
  and PyG transforms.

The models take a ``Data`` / ``Batch`` directly (``model(batch)``): see
:class:`~pointnet1x1.models.PointNetClassifier`. This is the only module of the
package that imports torch_geometric; :func:`forward_batch` is the same call for
any model that has a ragged ``batch=`` forward.

Example::

    from torch_geometric.loader import DataLoader
    from pointnet1x1.pyg import to_pyg_dataset

    loader = DataLoader(to_pyg_dataset(dataset), batch_size=32, shuffle=True)
    for batch in loader:
        logits = model(batch)  # (num_graphs, num_classes)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data
from torch_geometric.data import Dataset as _PyGDataset

__all__ = [
    "PyGDatasetView",
    "forward_batch",
    "from_batch",
    "from_data",
    "to_batch",
    "to_data",
    "to_pyg_dataset",
]


def _as_points(points: Any) -> Tensor:
    pts = points if isinstance(points, Tensor) else torch.from_numpy(np.asarray(points))
    if pts.dim() != 2 or pts.shape[1] < 3:
        raise ValueError(f"expected points of shape (N, 3+F), got {tuple(pts.shape)}")
    return pts.to(torch.float32)


def to_data(points: Any, label: int | None = None) -> Data:
    """One sample as a PyG ``Data``.

    Args:
        points: Array or tensor of shape ``(N, 3+F)`` giving xyz then features.
        label: The class index, stored as ``y`` of shape ``(1,)`` (none if ``None``).

    Returns:
        ``Data(pos=(N, 3), x=(N, F) or None, y=(1,))``, float32 / int64.
    """
    pts = _as_points(points)
    data = Data(pos=pts[:, :3].contiguous())
    if pts.shape[1] > 3:
        data.x = pts[:, 3:].contiguous()
    if label is not None:
        data.y = torch.tensor([int(label)], dtype=torch.long)
    return data


def _label(y: Tensor | None) -> int | None:
    if y is None:
        return None
    if y.numel() != 1:
        raise ValueError(
            f"expected one label per cloud in data.y, got shape {tuple(y.shape)}"
        )
    return int(y.reshape(()).item())


def from_data(data: Data) -> tuple[np.ndarray, int | None]:
    """One PyG ``Data`` as our sample: points ``(N, 3+F)`` float32 and the label.

    ``pos`` gives xyz and ``x`` (if any) the features, or else ``normal`` (where
    PyG's ``SamplePoints`` puts normals); ``y`` must hold one value (or be
    absent, giving ``None``).
    """
    pos = getattr(data, "pos", None)
    if pos is None or pos.dim() != 2 or pos.shape[1] != 3:
        shape = None if pos is None else tuple(pos.shape)
        raise ValueError(f"expected data.pos of shape (N, 3), got {shape}")
    feats = getattr(data, "x", None)
    if feats is None:
        feats = getattr(data, "normal", None)
    pts = pos if feats is None else torch.cat([pos, feats.to(pos.dtype)], dim=1)
    points = pts.detach().cpu().numpy().astype(np.float32, copy=False)
    return points, _label(getattr(data, "y", None))


def from_batch(batch: Batch) -> list[tuple[np.ndarray, int | None]]:
    """A PyG ``Batch`` back to a list of ``(points (N_i, 3+F), label)`` samples."""
    if not hasattr(batch, "to_data_list"):
        raise ValueError(
            f"expected a torch_geometric Batch, got {type(batch).__name__}"
        )
    return [from_data(data) for data in batch.to_data_list()]


def to_batch(samples: Sequence[tuple[Any, Any]]) -> Batch:
    """Samples ``(points (N_i, 3+F), label)`` of any sizes as one PyG ``Batch``.

    Usable as ``collate_fn`` of a plain ``torch.utils.data.DataLoader`` over our
    datasets: ``DataLoader(ModelNet(...), batch_size=32, collate_fn=to_batch)``.
    """
    if len(samples) == 0:
        raise ValueError("cannot batch an empty list of samples")
    return Batch.from_data_list([to_data(points, label) for points, label in samples])


def forward_batch(model: nn.Module, batch: Data, **kwargs: Any) -> Any:
    """Run a model with a ragged forward on a PyG ``Data``/``Batch``.

    Equivalent to ``model(batch)`` for the PointNet classifier; for other models
    with a ``forward(x, *, batch=, num_clouds=)`` it passes the flat points
    ``(M, 3+F)`` (``pos`` then ``x``) and the batch vector.
    """
    points, vector = _flat_points(batch)
    num = getattr(batch, "num_graphs", None) or int(vector.max()) + 1
    return model(points, batch=vector, num_clouds=int(num), **kwargs)


def _flat_points(data: Data) -> tuple[Tensor, Tensor]:
    """Flat points ``(M, 3+F)`` and the batch vector ``(M,)`` of a ``Data``/``Batch``."""
    pos = data.pos
    feats = getattr(data, "x", None)
    points = pos if feats is None else torch.cat([pos, feats.to(pos.dtype)], dim=1)
    vector = getattr(data, "batch", None)
    if vector is None:
        vector = torch.zeros(pos.shape[0], dtype=torch.long, device=pos.device)
    return points, vector


class PyGDatasetView(_PyGDataset):
    """A PyG ``Dataset`` over one of our datasets, converting samples on access.

    Args:
        dataset: Any sequence with ``dataset[i] -> (points (N, 3+F), label)``;
            its ``class_names`` (if any) give :attr:`num_classes`.
        transform: Optional PyG transform applied to each ``Data`` on access.

    Each item is ``to_data(*dataset[i])``: ``pos`` ``(N, 3)``, ``x`` ``(N, F)``
    for the extra channels (normals) or ``None``, ``y`` ``(1,)``.
    """

    def __init__(
        self,
        dataset: Sequence[Any],
        transform: Callable[[Data], Data] | None = None,
    ) -> None:
        self.source = dataset
        super().__init__(root=None, transform=transform)

    @property
    def class_names(self) -> list[str] | None:
        names = getattr(self.source, "class_names", None)
        return None if names is None else list(names)

    @property
    def num_classes(self) -> int:
        names = self.class_names
        if names is not None:
            return len(names)
        return super().num_classes

    def len(self) -> int:
        return len(self.source)

    def get(self, idx: int) -> Data:
        points, label = self.source[int(idx)]
        return to_data(points, label)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.source).__name__}, len={len(self)})"


def to_pyg_dataset(
    dataset: Sequence[Any], transform: Callable[[Data], Data] | None = None
) -> PyGDatasetView:
    """Wrap one of our datasets as a PyG ``Dataset`` (see :class:`PyGDatasetView`)."""
    return PyGDatasetView(dataset, transform=transform)
