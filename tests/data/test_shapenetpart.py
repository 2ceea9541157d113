"""ShapeNetPart over a small fixture in the published layout (built in tmp_path)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pointnet1x1.data import ShapeNetPart
from pointnet1x1.data.layouts import MissingDataError
from pointnet1x1.data.shapenetpart import (
    CATEGORIES,
    PART_NAMES,
    PART_TO_CATEGORY,
    SEG_CLASSES,
    SHAPENETPART_DIRNAME,
    collate_parts,
    read_shape_file,
)

SYNSETS = {"Airplane": "02691156", "Bag": "02773838", "Mug": "03797390"}


def make_fixture(tmp_path: Path, per_split=(3, 1, 2), sizes=(150, 90)) -> Path:
    """Shapes whose part label is the band of x they fall in (learnable)."""
    root = tmp_path / SHAPENETPART_DIRNAME
    (root / "train_test_split").mkdir(parents=True)
    meta = "".join(f"{c}\t{s}\n" for c, s in SYNSETS.items())
    (root / "synsetoffset2category.txt").write_text(meta)
    rng = np.random.default_rng(0)
    lists: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for cat, syn in SYNSETS.items():
        (root / syn).mkdir()
        parts = SEG_CLASSES[cat]
        for split, count in zip(lists, per_split, strict=True):
            for i in range(count):
                sid = f"{cat.lower()}{split}{i:03d}"
                n = sizes[i % len(sizes)]
                xyz = rng.uniform(-1, 1, (n, 3)) * [2, 1, 1] + 5
                normals = rng.normal(size=(n, 3))
                normals /= np.linalg.norm(normals, axis=1, keepdims=True)
                band = np.clip(
                    ((xyz[:, 0] - 3) / 4 * len(parts)).astype(int), 0, len(parts) - 1
                )
                label = np.asarray(parts)[band]
                rows = np.column_stack([xyz, normals, label])
                np.savetxt(root / syn / f"{sid}.txt", rows, fmt="%.6f")
                lists[split].append(f"shape_data/{syn}/{sid}")
    for split, entries in lists.items():
        path = root / "train_test_split" / f"shuffled_{split}_file_list.json"
        path.write_text(json.dumps(entries))
    return root


def test_tables_are_the_standard_ones():
    assert (
        len(CATEGORIES) == 16
        and CATEGORIES[0] == "Airplane"
        and CATEGORIES[-1] == "Table"
    )
    flat = [p for c in CATEGORIES for p in SEG_CLASSES[c]]
    assert flat == list(range(50))  # contiguous, in category order
    assert PART_TO_CATEGORY[36] == CATEGORIES.index("Mug") and len(PART_NAMES) == 50


def test_items_splits_and_global_indices(tmp_path):
    root = make_fixture(tmp_path)
    train = ShapeNetPart(tmp_path, "train", num_points=128)  # parent folder works
    assert len(train) == 9 and train.root == root
    points, category, labels = train[0]
    assert points.shape == (128, 3) and points.dtype == np.float32
    assert labels.shape == (128,) and labels.dtype == np.int64
    assert set(labels.tolist()) <= set(SEG_CLASSES[CATEGORIES[category]])
    # normalised: centred, farthest point at radius 1 (on the whole shape)
    assert np.linalg.norm(points, axis=1).max() <= 1.0 + 1e-5
    assert (
        len(ShapeNetPart(root, "val")) == 3
        and len(ShapeNetPart(root, "trainval")) == 12
    )
    mugs = ShapeNetPart(
        root, "test", categories=["Mug"], use_normals=True, num_points=None
    )
    assert len(mugs) == 2 and set(mugs.categories) == {CATEGORIES.index("Mug")}
    pts, cat, lab = mugs[1]
    assert pts.shape == (90, 6) and lab.shape == (90,) and cat == 11
    np.testing.assert_allclose(np.linalg.norm(pts[:, 3:], axis=1), 1, atol=1e-4)


def test_labels_follow_their_points_and_padding(tmp_path):
    root = make_fixture(tmp_path, sizes=(100,))
    whole = ShapeNetPart(root, "train", num_points=None, normalize=False)
    full, raw = whole[0], read_shape_file(whole.files[0])
    np.testing.assert_array_equal(full[2], raw[:, 6].astype(np.int64))
    ds = ShapeNetPart(root, "train", num_points=300, normalize=False)  # > 100: padded
    points, _, labels = ds[0]
    assert points.shape == (300, 3)
    lookup = {tuple(r[:3]): int(r[6]) for r in raw}
    assert all(lookup[tuple(p)] == lab for p, lab in zip(points, labels, strict=True))
    assert len({tuple(p) for p in points}) == 100  # every point, then repeats


def test_sampling_fixed_for_eval_fresh_for_train(tmp_path):
    root = make_fixture(tmp_path)
    test = ShapeNetPart(root, "test", num_points=64)
    np.testing.assert_array_equal(test[0][0], test[0][0])
    train = ShapeNetPart(root, "train", num_points=64, seed=1)
    assert not np.array_equal(train[0][0], train[0][0])
    again = ShapeNetPart(root, "train", num_points=64, seed=1)
    np.testing.assert_array_equal(
        again[0][0], ShapeNetPart(root, "train", num_points=64, seed=1)[0][0]
    )


def test_collate_parts_is_channels_first(tmp_path):
    ds = ShapeNetPart(make_fixture(tmp_path), "train", num_points=32, use_normals=True)
    first, second = ds[0], ds[4]
    x, category, labels = collate_parts([first, second])
    assert x.shape == (2, 6, 32) and x.dtype == torch.float32
    assert category.tolist() == [ds.categories[0], ds.categories[4]]
    assert labels.shape == (2, 32) and labels.dtype == torch.int64
    torch.testing.assert_close(x[1].T, torch.from_numpy(second[0]), atol=0, rtol=0)
    assert torch.equal(labels[1], torch.from_numpy(second[2]))
    with pytest.raises(ValueError, match="set num_points"):
        full = ShapeNetPart(ds.root, "train", num_points=None)
        collate_parts([full[0], full[1]])


def test_missing_files_are_refused_clearly(tmp_path):
    root = make_fixture(tmp_path)
    ShapeNetPart(root, "test")
    for f in sorted((root / SYNSETS["Bag"]).glob("bagtest*.txt")):
        f.unlink()
    with pytest.raises(
        MissingDataError,
        match=r"2 of 6 shape files of the test split missing \(e\.g\. 02773838/bagtest000\.txt",
    ):
        ShapeNetPart(root, "test")
    assert len(ShapeNetPart(root, "test", categories=["Airplane", "Mug"])) == 4
    (root / "train_test_split" / "shuffled_val_file_list.json").unlink()
    with pytest.raises(ValueError, match="shuffled_val_file_list.json missing"):
        ShapeNetPart(root, "trainval")
    with pytest.raises(ValueError, match="synsetoffset2category.txt missing"):
        ShapeNetPart(tmp_path / "nowhere")


def test_bad_arguments(tmp_path):
    root = make_fixture(tmp_path)
    with pytest.raises(ValueError, match="split must be one of.*got 'dev'"):
        ShapeNetPart(root, "dev")
    with pytest.raises(
        ValueError, match=r"unknown ShapeNetPart categories \['Chair'\]"
    ):
        ShapeNetPart(root, categories=["Chair"])  # not in this fixture's metadata
    with pytest.raises(ValueError, match="num_points must be positive, got 0"):
        ShapeNetPart(root, num_points=0)
    bad = root / SYNSETS["Mug"] / "mugtrain000.txt"
    bad.write_text("1 2 3\n")
    with pytest.raises(ValueError, match="mugtrain000.txt: expected rows of 7 numbers"):
        ShapeNetPart(root, "train", categories=["Mug"])[0]
