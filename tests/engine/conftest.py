"""Shared fixtures: tiny ModelNet- and ShapeNetPart-layout datasets, tiny trained runs.

``tests/cli/conftest.py`` re-uses these (it loads this file); both keep their
results under pytest's session base folder, so each run is trained once per session.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import pytest

CLASSES = ["ball", "cube", "rod"]
TINY_MODEL = {"mlp1": [8, 8], "mlp2": [8, 16], "head": [16, 8]}
TINY = dict(
    model="pointnet", model_kwargs=TINY_MODEL, num_points=32, batch_size=8,
    epochs=2, lr=0.01, progress="none", recipe="paper", decay_step=64,
)  # fmt: skip


def make_shape(name: str, rng: np.random.Generator, n: int = 64) -> np.ndarray:
    """(n, 6) xyz + normals of a noisy sphere, cube surface or long rod."""
    v = rng.normal(size=(n, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    if name == "cube":
        v = v / np.abs(v).max(axis=1, keepdims=True)
    elif name == "rod":
        v = v * np.array([0.15, 1.0, 0.15])
    pts = v * rng.uniform(0.8, 1.2) + rng.normal(scale=0.02, size=v.shape)
    normals = v / np.linalg.norm(v, axis=1, keepdims=True)
    return np.concatenate([pts, normals], axis=1).astype(np.float32)


def make_tiny_modelnet(root: Path, train: int = 12, test: int = 4) -> Path:
    """A ``modelnet40_normal_resampled``-layout folder with three easy classes."""
    if (root / "modelnet40_shape_names.txt").exists():
        return root
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    lists: dict[str, list[str]] = {"train": [], "test": []}
    for cls in CLASSES:
        (root / cls).mkdir()
        for i in range(train + test):
            name = f"{cls}_{i + 1:04d}"
            np.savetxt(
                root / cls / f"{name}.txt",
                make_shape(cls, rng),
                delimiter=",",
                fmt="%.6f",
            )
            lists["train" if i < train else "test"].append(name)
    (root / "modelnet40_shape_names.txt").write_text("\n".join(CLASSES) + "\n")
    for split, names in lists.items():
        (root / f"modelnet40_{split}.txt").write_text("\n".join(names) + "\n")
    return root


# ShapeNetPart categories of the tiny part dataset and their global parts
PART_SYNSETS = {"Airplane": "02691156", "Mug": "03797390"}
PART_RANGES = {"Airplane": (0, 1, 2, 3), "Mug": (36, 37)}
TINY_PARTS = dict(
    model="pointnet_partseg", model_kwargs={
        "mlp1": [16, 16], "mlp2": [32, 64], "seg_mlp": [32],
        "input_transform": False, "feature_transform": False,
    },
    num_points=64, batch_size=8, epochs=2, lr=0.01, progress="none",
)  # fmt: skip


def make_tiny_shapenetpart(
    root: Path, counts: tuple[int, int, int] = (24, 4, 8), n: int = 96
) -> Path:
    """A ShapeNetPart-layout folder whose parts are bands of height.

    Each shape is a noisy box of random proportions, y up as ShapeNetPart's files;
    a point's part is the band of the height (y) it lies in, one band per part of
    its category (Airplane 4, Mug 2): learnable from the points alone.
    """
    from pointnet1x1.data.shapenetpart import SHAPENETPART_DIRNAME

    base = root / SHAPENETPART_DIRNAME
    if (base / "synsetoffset2category.txt").exists():
        return root
    (base / "train_test_split").mkdir(parents=True)
    rng = np.random.default_rng(0)
    lists: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for cat, syn in PART_SYNSETS.items():
        (base / syn).mkdir()
        parts = np.asarray(PART_RANGES[cat])
        for split, count in zip(lists, counts, strict=True):
            for i in range(count):
                xyz = rng.uniform(-1, 1, (n, 3)) * rng.uniform(0.5, 1.5, 3)
                height = (xyz[:, 1] - xyz[:, 1].min()) / np.ptp(xyz[:, 1])
                band = np.minimum((height * len(parts)).astype(int), len(parts) - 1)
                normals = np.tile([0.0, 0.0, 1.0], (n, 1))
                rows = np.column_stack([xyz, normals, parts[band]])
                np.savetxt(base / syn / f"{split}{i}.txt", rows, fmt="%.5f")
                lists[split].append(f"shape_data/{syn}/{split}{i}")
    for split, entries in lists.items():
        (base / "train_test_split" / f"shuffled_{split}_file_list.json").write_text(
            json.dumps(entries)
        )
    (base / "synsetoffset2category.txt").write_text(
        "".join(f"{c}\t{s}\n" for c, s in PART_SYNSETS.items())
    )  # written last: its presence says the folder is complete
    return root


@contextlib.contextmanager
def one_thread():
    """Tiny models run fastest on one thread (and a shared CPU is not oversubscribed)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_modelnet(tmp_path_factory.getbasetemp() / "tiny_modelnet")


@pytest.fixture(scope="session")
def tiny_run(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 2-epoch run folder on the tiny dataset."""
    out = tmp_path_factory.getbasetemp() / "tiny_run"
    if not (out / "report.json").exists():
        from pointnet1x1.engine import train

        with one_thread():
            train(data=str(tiny_data), out=str(out), **TINY)
    return out


@pytest.fixture(scope="session")
def tiny_parts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_shapenetpart(tmp_path_factory.getbasetemp() / "tiny_shapenetpart")


@pytest.fixture(scope="session")
def tiny_parts_run(tiny_parts: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 2-epoch part-segmentation run folder on the tiny part dataset."""
    out = tmp_path_factory.getbasetemp() / "tiny_parts_run"
    if not (out / "report.json").exists():
        from pointnet1x1.engine import train

        with one_thread():
            train(data=str(tiny_parts), out=str(out), **TINY_PARTS)
    return out


@pytest.fixture(scope="session")
def tiny_parts_kwargs() -> dict:
    """The tiny part-segmentation training settings (a copy)."""
    return dict(TINY_PARTS)


@pytest.fixture(scope="session")
def tiny_kwargs() -> dict:
    """The tiny training settings (a copy)."""
    return dict(TINY)


@pytest.fixture(scope="session")
def shape_maker():
    """``make_shape(name, rng, n)``: a synthetic (n, 6) cloud of a tiny class."""
    return make_shape
