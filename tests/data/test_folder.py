"""Folder datasets on real files: the ModelNet40 npy tree, the ModelNet10 PCD test
split, and mixed-format trees built in ``tmp_path`` from real shapes."""

import json
import os
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from pointnet1x1.data import (
    BadFilesError,
    FolderDataset,
    MissingDataError,
    ModelNet,
    collate,
    open_dataset,
)
from pointnet1x1.data.layouts import list_split
from pointnet1x1.data.splits import stratified_test_count
from pointnet1x1.io import read_points, write_points


def _lists(shared: Path, prefix: str) -> tuple[list[str], dict[str, Counter]]:
    """Class order and per-class counts from the official list files (independent)."""
    base = shared / "modelnet40_normal_resampled"
    order = (base / f"{prefix}_shape_names.txt").read_text().split()
    counts = {
        s: Counter(n.rsplit("_", 1)[0] for n in (base / f"{prefix}_{s}.txt").read_text().split())
        for s in ("train", "test")
    }  # fmt: skip
    return order, counts


def _unit(points: np.ndarray) -> np.ndarray:
    xyz = points.astype(np.float64) - points.astype(np.float64).mean(0)
    return xyz / np.linalg.norm(xyz, axis=1).max()


def test_whole_modelnet40_npy_tree_is_recognised_in_the_official_order(
    shared_data, tmp_path
):
    root = shared_data / "modelnet40_npy_1024"
    order, counts = _lists(shared_data, "modelnet40")
    for split, total in (("train", 9843), ("test", 2468)):
        listing = list_split(root, split)
        assert (listing.layout, listing.dataset, listing.up_axis) == (
            "class-split",
            "ModelNet40",
            "z",
        )
        assert listing.class_names == order and not listing.missing
        assert len(listing.files) == total == sum(counts[split].values())
        per_class = Counter(listing.class_names[i] for i in listing.labels)
        assert per_class == counts[split]
        assert listing.extensions() == {".npy": total}
    # a dataset of two of its classes: official labels in the order asked, the points
    # of each file (already unit-sphere, z up) stored unchanged
    ds = FolderDataset(root, "test", classes=["cup", "bowl"], cache_dir=tmp_path, progress=False)  # fmt: skip
    assert ds.dataset_name == "ModelNet40" and ds.up_axis == "z"
    assert np.bincount(ds.labels).tolist() == [counts["test"]["cup"], counts["test"]["bowl"]]  # fmt: skip
    assert ds.points.shape == (40, 1024, 3) and ds.files[0] == "cup/test/cup_0080.npy"
    raw = np.load(root / ds.files[0])
    np.testing.assert_allclose(ds.points[0], _unit(raw), atol=2e-6)
    # npy is z up: the airplane's wings span x/y, the smallest extent is along z
    plane = np.load(root / "airplane/test/airplane_0627.npy")
    assert np.ptp(plane, axis=0).argmin() == 2


def test_modelnet10_pcd_folder_is_modelnet10_s_test_split(shared_data, tmp_path):
    root = shared_data / "modelnet10_pcd_test"
    order, counts = _lists(shared_data, "modelnet10")
    ds = open_dataset(root, "test", cache_dir=tmp_path, progress=False)
    assert isinstance(ds, FolderDataset) and ds.dataset_name == "ModelNet10"
    assert ds.class_names == order and len(ds) == 908
    assert Counter(order[i] for i in ds.labels) == counts["test"]
    with pytest.raises(MissingDataError) as info:
        open_dataset(root, "train", cache_dir=tmp_path, progress=False)
    message = str(info.value)
    assert "\n" not in message and message.startswith("ModelNet10 (class-split layout)")
    assert "holds only a test split (908 shapes): it can be evaluated" in message
    assert "not trained on" in message
    # mesh units, whatever the scale: every sample centred and in the unit sphere
    extents = []
    for i in range(908):
        raw = read_points(root / ds.files[i]).points
        extents.append(np.ptp(raw, axis=0).max())
        np.testing.assert_allclose(ds.points[i], _unit(raw), atol=1e-5)
    assert min(extents) < 2 and max(extents) > 5e4  # largest extent 1.4 to 75,000
    x, _ = ds[5]
    assert x.shape == (1024, 3)
    np.testing.assert_allclose(x.mean(0), 0.0, atol=1e-5)
    assert np.linalg.norm(x, axis=1).max() == pytest.approx(1.0, abs=1e-5)
    half = open_dataset(
        root, "test", num_points=256, cache_dir=tmp_path, progress=False
    )
    norms = np.linalg.norm(np.stack([half[i][0] for i in range(0, 908, 50)]), axis=2)
    assert norms.max() <= 1.0 + 1e-5


SOURCES = {  # class -> real files (npy tree, PCD test split, OFF meshes, clouds)
    "plane": [f"modelnet40_npy_1024/airplane/train/airplane_{i:04d}.npy" for i in range(1, 8)],
    "tub": [
        "modelnet40_npy_1024/bathtub/test/bathtub_0107.npy",
        "modelnet10_pcd_test/bathtub/test/bathtub_0108.pcd",
        "modelnet10_pcd_test/bathtub/test/bathtub_0109.pcd",
        "ModelNet40/bathtub/train/bathtub_0001.off",
        "ModelNet40/bathtub/train/bathtub_0002.off",
        "ModelNet40/bathtub/train/bathtub_0004.off",
    ],
    "seat": [
        "modelnet40_npy_1024/chair/train/chair_0001.npy",
        "modelnet40_npy_1024/chair/train/chair_0002.npy",
        "modelnet10_pcd_test/chair/test/chair_0890.pcd",
        "ModelNet40/chair/test/chair_0890.off",
        "ModelNet40/stool/train/stool_0002.off",
        "modelnet40_npy_1024/stool/train/stool_0001.npy",
    ],
    "toy": [
        "clouds/facebookresearch_pytorch3d__teapot.obj",
        "clouds/fwilliams_point-cloud-utils__bunny.ply",
        "clouds/PointCloudLibrary_pcl__bunny.pcd",
    ],
}  # fmt: skip
# clouds are written again in other formats, in turn
FORMATS = [".ply", ".pcd", ".xyz", ".npz", ".npy"]


def _mixed_tree(shared: Path, root: Path) -> dict[str, str]:
    """``<root>/<class>/<file>`` of real shapes in many formats; rel path -> class."""
    made, k = {}, 0
    for cls, sources in SOURCES.items():
        (root / cls).mkdir(parents=True)
        for src in sources:
            path = shared / src
            if path.suffix in (".off", ".obj") or "clouds/" in src:
                target = root / cls / path.name
                shutil.copy(path, target)
            else:
                target = root / cls / f"{path.stem}{FORMATS[k % len(FORMATS)]}"
                write_points(target, read_points(path))
                k += 1
            made[f"{cls}/{target.name}"] = cls
    (root / "plane" / ".DS_Store").write_bytes(b"\0\1")
    (root / "tub" / "notes.md").write_text("not a cloud\n")
    return made


def test_mixed_format_tree_loads_with_its_labels_and_trains(shared_data, tmp_path):
    made = _mixed_tree(shared_data, tmp_path / "mixed")
    kw = dict(
        num_points=256, cache_dir=tmp_path / "c", progress=False, test_fraction=0.25
    )
    train = open_dataset(tmp_path / "mixed", "train", **kw)
    test = open_dataset(tmp_path / "mixed", "test", **kw)
    assert isinstance(train, FolderDataset) and train.layout == "class"
    assert (
        train.class_names == ["plane", "seat", "toy", "tub"]
        and train.dataset_name is None
    )
    assert sorted(train.files + test.files) == sorted(made)
    for ds in (train, test):
        assert [ds.class_names[i] for i in ds.labels] == [made[f] for f in ds.files]
    exts = Counter(Path(f).suffix for f in made)
    assert Counter(Path(f).suffix for f in train.files + test.files) == exts
    assert len(exts) == 7  # .ply .pcd .xyz .npz .npy .off .obj
    assert train.skipped == {"hidden": ["plane/.DS_Store"], "unknown extension": ["tub/notes.md"]}  # fmt: skip
    # the bunny PCD has 397 points < 512: filled by repeating its own points, listed
    short = FolderDataset(tmp_path / "mixed", "train", **{**kw, "num_points": 512})
    bunny = "toy/PointCloudLibrary_pcl__bunny.pcd"
    where = "train" if bunny in short.files else "test"
    ds = short if where == "train" else FolderDataset(tmp_path / "mixed", "test", **{**kw, "num_points": 512})  # fmt: skip
    assert ds.short_files == [bunny]
    rows = ds.points[ds.files.index(bunny)]
    raw = _unit(read_points(shared_data / "clouds" / Path(bunny).name).points)
    assert len({tuple(r) for r in np.round(rows, 5)}) == 397
    np.testing.assert_allclose(np.unique(rows, axis=0), np.unique(raw.astype(np.float32), axis=0), atol=1e-5)  # fmt: skip
    # P = points every shape holds without repeats: the bunny's 397 (>= num_points)
    assert train.points.shape == (len(train), 397, 3)
    # a copy written by write_points holds the real file's points, normalised
    ply = next(
        f for f in train.files + test.files if f.endswith(".ply") and "airplane" in f
    )
    held = train if ply in train.files else test
    src = _unit(np.load(shared_data / "modelnet40_npy_1024/airplane/train" / f"{Path(ply).stem}.npy"))  # fmt: skip
    stored = held.points[held.files.index(ply)]
    gaps = np.abs(stored[:, None, :] - src[None, :, :]).sum(-1).min(1)
    assert gaps.max() < 1e-5 and len(np.unique(stored, axis=0)) == 397
    # one epoch of a tiny PointNet on it, plain torch
    from pointnet1x1.models import PointNetClassifier

    torch.manual_seed(0)
    model = PointNetClassifier(train.num_classes, mlp1=[8, 8], mlp2=[8, 16], head=[16], input_transform=False, feature_transform=False)  # fmt: skip
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    loader = torch.utils.data.DataLoader(
        train, batch_size=4, shuffle=True, collate_fn=collate
    )
    losses = []
    for x, y in loader:
        assert x.shape[1:] == (3, 256)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        assert all(
            p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters()
        )
        opt.step()
        losses.append(loss.item())
    assert len(losses) == -(-len(train) // 4) and np.isfinite(losses).all()


def test_a_corrupt_file_is_refused_by_name_and_skip_bad_lists_it(shared_data, tmp_path):
    root = tmp_path / "t"
    for cls, src in (
        ("a", "airplane/train/airplane_%04d.npy"),
        ("b", "bed/train/bed_%04d.npy"),
    ):
        (root / cls / "train").mkdir(parents=True)
        (root / cls / "test").mkdir()
        for i in range(1, 5):
            split = "test" if i == 4 else "train"
            write_points(root / cls / split / f"{i}.ply", read_points(shared_data / "modelnet40_npy_1024" / (src % i)))  # fmt: skip
    good = (root / "a" / "train" / "1.ply").read_bytes()
    (root / "a" / "train" / "cut.ply").write_bytes(good[: len(good) // 2])
    (root / "b" / "train" / "junk.pcd").write_text(
        "VERSION 0.7\nFIELDS x y z\nDATA ascii\n1 2\n"
    )
    kw = dict(cache_dir=tmp_path / "c", progress=False, num_points=512)
    with pytest.raises(BadFilesError) as info:
        FolderDataset(root, "train", **kw)
    lines = str(info.value).splitlines()
    assert lines[0].startswith("2 of 8 files under") and "skip_bad=True" in lines[0]
    assert [ln.split(":")[0].strip() for ln in lines[1:]] == ["a/train/cut.ply", "b/train/junk.pcd"]  # fmt: skip
    assert "truncated" in lines[1] or "expected" in lines[1]
    assert [b for b, _ in info.value.bad] == ["a/train/cut.ply", "b/train/junk.pcd"]
    assert "cannot be read (a/train/cut.ply, b/train/junk.pcd); " in lines[0]
    ds = FolderDataset(root, "train", skip_bad=True, **kw)
    assert len(ds) == 6 and [b for b, _ in ds.bad_files] == ["a/train/cut.ply", "b/train/junk.pcd"]  # fmt: skip
    assert "cut.ply" not in " ".join(ds.files) and ds.labels.tolist() == [
        0,
        0,
        0,
        1,
        1,
        1,
    ]
    # from the cache, the refusal is the same, without reading again
    with pytest.raises(BadFilesError, match="2 of 8 files"):
        FolderDataset(root, "train", **kw)
    # many bad files: a few named, then a count
    for i in range(6):
        (root / "b" / "train" / f"z{i}.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(BadFilesError) as info:
        FolderDataset(root, "train", **kw)
    lines = str(info.value).splitlines()
    assert lines[0].startswith("8 of 14 files") and len(lines) == 7
    assert lines[-1] == "  ... and 3 more"
    assert "(a/train/cut.ply, b/train/junk.pcd, b/train/z0.npy and 5 more)" in lines[0]


def test_no_split_tree_writes_and_reuses_a_stratified_split(shared_data, tmp_path):
    root = tmp_path / "own"
    sizes = {"one": 1, "two": 2, "five": 5, "ten": 10}
    src = sorted((shared_data / "modelnet40_npy_1024" / "sofa" / "train").iterdir())
    k = 0
    for cls, n in sizes.items():
        (root / cls).mkdir(parents=True)
        for i in range(n):
            os.symlink(src[k], root / cls / f"s{i:02d}.npy")
            k += 1
    cache = tmp_path / "c"
    kw = dict(cache_dir=cache, progress=False, num_points=256)
    test = FolderDataset(root, "test", **kw)
    train = FolderDataset(root, "train", **kw)
    for (
        cls,
        n,
    ) in sizes.items():  # n_test = min(max(round(0.2 n), 1), n - 1), 0 if n < 2
        expected = 0 if n < 2 else min(max(round(0.2 * n), 1), n - 1)
        assert sum(f.startswith(cls + "/") for f in test.files) == expected
        assert stratified_test_count(n, 0.2) == expected
    assert sorted(train.files + test.files) == sorted(f"{c}/s{i:02d}.npy" for c, n in sizes.items() for i in range(n))  # fmt: skip
    stored = json.loads((cache / "split-seed0-test0.2.json").read_text())
    assert stored["train"] == train.files and stored["test"] == test.files
    assert train.split_manifest["test"] == test.files
    again = FolderDataset(root, "test", **kw)
    assert again.files == test.files
    other = FolderDataset(root, "test", **{**kw, "seed": 1})
    assert other.files != test.files and len(other.files) == len(test.files)
    # the stored split is read back, not recomputed: edit it and it is followed
    moved = stored["train"][-1]
    stored["train"].remove(moved)
    stored["test"].append(moved)
    (cache / "split-seed0-test0.2.json").write_text(json.dumps(stored))
    assert moved in FolderDataset(root, "test", **kw).files
    # a manifest given back reproduces exactly its split, whatever the seed
    same = FolderDataset(root, "test", manifest=train.split_manifest, seed=7, cache_dir=cache, progress=False, num_points=256)  # fmt: skip
    assert same.files == test.files and same.class_names == train.class_names
    gone = dict(train.split_manifest, test=[*test.files, "ten/missing.npy"])
    with pytest.raises(MissingDataError, match="ten/missing.npy"):
        FolderDataset(root, "test", manifest=gone, **kw)


def test_split_class_layout_and_per_file_seeds_do_not_depend_on_workers(
    shared_data, tmp_path
):
    root = tmp_path / "sc"
    meshes = sorted((shared_data / "ModelNet40").glob("*/*/*.off"))[:10]
    for i, mesh in enumerate(meshes):
        split, cls = ("test" if i % 5 == 4 else "train"), ("m" if i % 2 else "n")
        (root / split / cls).mkdir(parents=True, exist_ok=True)
        os.symlink(mesh, root / split / cls / mesh.name)
    a = FolderDataset(
        root, "train", cache_dir=tmp_path / "a", progress=False, workers=1
    )
    b = FolderDataset(
        root, "train", cache_dir=tmp_path / "b", progress=False, workers=2
    )
    assert a.layout == "split-class" and a.class_names == ["m", "n"] and len(a) == 8
    assert all(f.startswith("train/") for f in a.files) and a.files == b.files
    np.testing.assert_array_equal(a.points, b.points)
    assert [a.class_names[i] for i in a.labels] == [f.split("/")[1] for f in a.files]


def test_fps_sampling_keeps_spread_points(shared_data, tmp_path):
    root = tmp_path / "f" / "c"
    root.mkdir(parents=True)
    os.symlink(
        shared_data / "modelnet10_pcd_test/sofa/test/sofa_0681.pcd", root / "x.pcd"
    )
    (root.parent / "d").mkdir()
    os.symlink(shared_data / "modelnet10_pcd_test/desk/test/desk_0201.pcd", root.parent / "d" / "y.pcd")  # fmt: skip
    ds = FolderDataset(root.parent, "train", num_points=64, sampling="fps", cache_dir=tmp_path, progress=False, test_fraction=0.5)  # fmt: skip
    assert ds.points.shape[1] == 64
    full = _unit(read_points(root.parent / ds.files[0]).points).astype(np.float32)
    chosen = ds.points[0]
    assert all(
        np.abs(full - p).sum(1).min() < 1e-5 for p in chosen
    )  # rows of the cloud

    def cover(subset):  # how far the farthest point of the cloud is from the subset
        return np.sqrt(((full[:, None] - subset[None]) ** 2).sum(-1)).min(1).max()

    rng = np.random.default_rng(0)
    randoms = [cover(full[rng.choice(len(full), 64, replace=False)]) for _ in range(10)]
    assert cover(chosen) < min(randoms)


def test_modelnet_reads_folder_trees_like_folder_dataset(shared_data, tmp_path):
    kw = dict(classes=["bowl"], cache_dir=tmp_path, progress=False)
    a = ModelNet(shared_data / "modelnet40_npy_1024", "train", **kw)
    b = FolderDataset(shared_data / "modelnet40_npy_1024", "train", **kw)
    assert a.files == b.files and len(a) == 64
    np.testing.assert_array_equal(a.points, b.points)
    resampled = shared_data / "modelnet40_normal_resampled"
    # the engine may pass every folder argument: defaults are accepted, others refused
    ds = open_dataset(resampled, "test", manifest=None, test_fraction=0.3, source_up_axis=None, **{**kw, "classes": ["bench"]})  # fmt: skip
    assert isinstance(ds, ModelNet) and len(ds) == 20 and ds.split_manifest is None
    with pytest.raises(ValueError, match="manifest: not for the resampled layout"):
        open_dataset(resampled, "test", manifest=b.split_manifest, **kw)
    with pytest.raises(ValueError, match="ModelNet's resampled layout, not folders"):
        FolderDataset(resampled, "test")


def test_data_info_counts_layout_extensions_skipped_bad_and_short(
    shared_data, tmp_path, capsys
):
    from pointnet1x1.cli import main

    root = tmp_path / "info"
    for cls, split, src in (
        ("a", "train", "modelnet40_npy_1024/airplane/train/airplane_0001.npy"),
        ("a", "train", "modelnet10_pcd_test/sofa/test/sofa_0681.pcd"),
        ("a", "test", "clouds/PointCloudLibrary_pcl__bunny.pcd"),
        ("b", "train", "ModelNet40/bed/train/bed_0001.off"),
        ("b", "test", "modelnet40_npy_1024/bed/test/bed_0516.npy"),
    ):
        (root / cls / split).mkdir(parents=True, exist_ok=True)
        shutil.copy(shared_data / src, root / cls / split)
    (root / "a" / "train" / ".hidden.ply").write_text("x")
    (root / "b" / "train" / "readme.md").write_text("x")
    (root / "b" / "train" / "broken.ply").write_text("ply\nformat ascii 1.0\n")
    (root / "LICENSE").write_text("x")
    assert main(["data", "info", str(root), "--cache-dir", str(tmp_path / "c"), "--num-points", "512"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "dataset: a folder dataset" in out and "layout:  class-split" in out
    assert "files are z up, datasets return z up" in out
    assert "train: 4 of 4 shapes present, 0 missing; files by extension: .npy 1, .pcd 1, .off 1, .ply 1" in out  # fmt: skip
    assert "test: 2 of 2 shapes present" in out
    assert "  hidden: 1 (a/train/.hidden.ply)" in out
    assert "  unknown extension: 1 (b/train/readme.md)" in out
    assert "  not in a class folder: 1 (LICENSE)" in out
    assert "  cannot be read: 1" in out and "    b/train/broken.ply: " in out
    assert "short (fewer than 512 points, filled by repeating their own points): 1 (a/test/PointCloudLibrary_pcl__bunny.pcd)" in out  # fmt: skip
    # data prepare: refused with one line per file, or prepared without them
    args = ["data", "prepare", str(root), "--cache-dir", str(tmp_path / "c"), "--num-points", "512"]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("pointnet1x1 data: error: 1 of 4 files under")
    assert err[1].startswith("  b/train/broken.ply: ")
    assert main([*args, "--skip-bad"]) == 0
    out = capsys.readouterr().out
    assert "train: 3 shapes, 1024 points each (class-split)" in out
    assert "  skipped (cannot be read): b/train/broken.ply: " in out


def test_a_class_tree_of_official_names_gets_the_official_split(shared_data, tmp_path):
    root = tmp_path / "flat" / "bowl"
    root.mkdir(parents=True)
    for path in (shared_data / "modelnet40_npy_1024" / "bowl").glob("*/*.npy"):
        os.symlink(path, root / path.name)  # bowl/bowl_NNNN.npy, no split folders
    kw = dict(classes=["bowl"], cache_dir=tmp_path / "c", progress=False)
    train = FolderDataset(root.parent, "train", **kw)
    test = FolderDataset(root.parent, "test", **kw)
    assert train.layout == "class" and train.dataset_name == "ModelNet40"
    # ModelNet40's bowl: 64 train shapes (0001-0064), 20 test (0065-0084)
    assert train.files == [f"bowl/bowl_{i:04d}.npy" for i in range(1, 65)]
    assert test.files == [f"bowl/bowl_{i:04d}.npy" for i in range(65, 85)]
    with pytest.raises(MissingDataError, match="train: 9779 of 9843 files missing"):
        FolderDataset(root.parent, "train", cache_dir=tmp_path / "c", progress=False)


def test_an_unexpected_reader_error_is_reported_as_a_bad_file(tmp_path, monkeypatch):
    from pointnet1x1.data import prepare

    root = tmp_path / "r"
    for cls in ("a", "b"):
        (root / cls / "train").mkdir(parents=True)
        for i in range(3):
            cloud = np.random.default_rng(i).normal(size=(50, 3))
            np.save(root / cls / "train" / f"{i}.npy", cloud)
    real = prepare.read_shape

    def flaky(path, rel, recipe):
        if rel == "b/train/1.npy":
            raise IndexError("index 7 is out of bounds")
        return real(path, rel, recipe)

    monkeypatch.setattr(prepare, "read_shape", flaky)
    with pytest.raises(BadFilesError) as info:
        FolderDataset(root, "train", num_points=32, cache_dir=tmp_path / "c", progress=False, workers=1)  # fmt: skip
    assert info.value.bad == [("b/train/1.npy", "unexpected IndexError while reading: index 7 is out of bounds")]  # fmt: skip
