import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from pointnet1x1.data import ModelNet, collate
from pointnet1x1.data import cache as cache_mod
from pointnet1x1.data.layouts import MissingDataError, detect_layout, list_split

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
RESAMPLED = SHARED / "modelnet40_normal_resampled"
OFF = SHARED / "ModelNet40"
HDF5 = SHARED / "hdf5"
FOUR = ["airplane", "bathtub", "bench", "person"]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def test_resampled_four_complete_classes_load_with_official_counts(cache_dir):
    train = ModelNet(
        RESAMPLED, "train", classes=FOUR, cache_dir=cache_dir, progress=False
    )
    test = ModelNet(
        RESAMPLED,
        "test",
        classes=FOUR,
        use_normals=True,
        cache_dir=cache_dir,
        progress=False,
    )
    assert (len(train), len(test)) == (993, 190)
    assert (train.layout, train.class_names, train.dataset_name) == (
        "resampled",
        FOUR,
        "ModelNet40",
    )
    assert (train.source_up_axis, train.up_axis) == ("y", "z")
    assert np.bincount(train.labels).tolist() == [626, 106, 173, 88]
    assert np.bincount(test.labels).tolist() == [100, 50, 20, 20]
    assert train.points.dtype == np.float32 and train.points.shape == (993, 2048, 3)
    assert test.in_channels == 6 and test.points.shape == (190, 2048, 6)
    centre = train.points.mean(axis=1)
    np.testing.assert_allclose(centre, 0.0, atol=1e-5)
    np.testing.assert_allclose(
        np.linalg.norm(train.points, axis=2).max(1), 1.0, atol=1e-5
    )
    # airplane_0001.txt, normalised and turned z up (columns y and z swapped)
    raw = np.loadtxt(
        RESAMPLED / "airplane" / "airplane_0001.txt", delimiter=",", max_rows=2048
    )
    xyz = raw[:, [0, 2, 1]] - raw[:, [0, 2, 1]].mean(0)
    xyz /= np.linalg.norm(xyz, axis=1).max()
    np.testing.assert_allclose(train.points[0], xyz, atol=1e-5)
    pts, label = test[5]
    assert pts.shape == (1024, 6) and pts.dtype == np.float32 and label == 0
    np.testing.assert_array_equal(test[5][0], pts)  # test split: a fixed subset
    x, y = collate([train[i] for i in range(4)])
    assert x.shape == (4, 3, 1024) and y.tolist() == [0, 0, 0, 0]


def test_resampled_order_of_classes_gives_labels(cache_dir):
    ds = ModelNet(
        RESAMPLED,
        "test",
        classes=["person", "airplane"],
        cache_dir=cache_dir,
        progress=False,
    )
    assert ds.class_names == ["person", "airplane"]
    assert np.bincount(ds.labels).tolist() == [20, 100]


def test_incomplete_resampled_whole_is_refused_with_counts_and_hint():
    with pytest.raises(MissingDataError) as info:
        ModelNet(RESAMPLED, "train")
    msg = str(info.value)
    assert isinstance(info.value, ValueError) and "\n" not in msg
    assert (
        "train: 8733 of 9843 files missing" in msg
        and "test: 2251 of 2468 files missing" in msg
    )
    assert "(e.g. bed/bed_0002.txt, bed/bed_0003.txt" in msg and "classes=" in msg
    assert "(airplane, bathtub, bench, person)" in msg
    with pytest.raises(MissingDataError, match="missing"):
        ModelNet(RESAMPLED, "test", modelnet10=True)


def test_modelnet10_selection_and_bad_classes():
    listing = list_split(RESAMPLED, "test", classes=["bathtub"], modelnet10=True)
    assert (
        listing.all_classes[:3] == ["bathtub", "bed", "chair"]
        and len(listing.files) == 50
    )
    with pytest.raises(ValueError, match=r"unknown or repeated names \['plane'\]"):
        ModelNet(RESAMPLED, "train", classes=["plane"])
    with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'val'"):
        ModelNet(RESAMPLED, "val", classes=FOUR)
    with pytest.raises(FileNotFoundError, match="no dataset layout found"):
        detect_layout(HDF5)


def test_official_off_tree_reports_missing_meshes():
    with pytest.raises(
        MissingDataError, match=r"train: 9832 of 9843 files missing.*test: 2467 of 2468"
    ):
        ModelNet(OFF, "train")
    with pytest.raises(MissingDataError, match="bathtub/train/bathtub_0006.off"):
        ModelNet(OFF, "train", classes=["bathtub"])


def _off_tree(root: Path) -> Path:
    """Real Princeton meshes under non-ModelNet class names (read as found)."""
    for cls, split, src in [
        ("tub", "train", "bathtub/train/bathtub_0002.off"),
        ("tub", "train", "bathtub/train/bathtub_0004.off"),
        ("tub", "test", "bathtub/train/bathtub_0001.off"),
        ("seat", "train", "stool/train/stool_0002.off"),
        ("seat", "train", "chair/test/chair_0890.off"),
        ("seat", "test", "bed/train/bed_0001.off"),
    ]:
        (root / cls / split).mkdir(parents=True, exist_ok=True)
        os.symlink(OFF / src, root / cls / split / Path(src).name)
    return root


def test_off_layout_samples_meshes_z_up_and_caches(tmp_path, monkeypatch):
    root = _off_tree(tmp_path / "meshes")
    ds = ModelNet(
        root,
        "train",
        num_points=256,
        use_normals=True,
        cache_dir=tmp_path / "c",
        progress=False,
    )
    assert (ds.layout, ds.source_up_axis, ds.up_axis) == ("class-split", "z", "z")
    assert ds.class_names == ["seat", "tub"] and ds.dataset_name is None
    assert ds.points.shape == (4, 2048, 6) and ds.labels.tolist() == [0, 0, 1, 1]
    np.testing.assert_allclose(
        np.linalg.norm(ds.points[..., 3:], axis=2), 1.0, atol=1e-4
    )
    manifest = json.loads(next((tmp_path / "c").glob("train-*.json")).read_text())
    assert manifest["sources"]["count"] == 4 and manifest["setting"]["seed"] == 0
    assert manifest["shape"] == [4, 2048, 6] and "version" in manifest

    def boom(*args, **kwargs):
        raise AssertionError("prepared again although the cache is valid")

    monkeypatch.setattr(cache_mod, "parallel_map", boom)
    again = ModelNet(
        root, "train", num_points=256, use_normals=True, cache_dir=tmp_path / "c"
    )
    np.testing.assert_array_equal(again.points, ds.points)
    # a changed source set makes the cache stale
    os.symlink(OFF / "bed/train/bed_0003.off", root / "seat" / "train" / "bed_0003.off")
    with pytest.raises(AssertionError, match="prepared again"):
        ModelNet(root, "train", cache_dir=tmp_path / "c")


def test_interrupted_cache_is_rebuilt_and_read_only_root_uses_user_cache(
    tmp_path, monkeypatch
):
    root = _off_tree(tmp_path / "meshes")
    ModelNet(root, "test", progress=False)  # default cache: beside the data
    folder = root / ".pointnet1x1_cache"
    (manifest,) = folder.glob("test-*.json")
    manifest.unlink()  # as if killed between the array and its manifest
    np.save(manifest.with_suffix(".npy"), np.zeros(3))
    ds = ModelNet(root, "test", progress=False)
    assert ds.points.shape == (2, 2048, 3) and manifest.exists()
    # read-only root (permission bits; root user included): cache goes to the user cache
    ro = _off_tree(tmp_path / "ro")
    monkeypatch.setenv("POINTNET1X1_CACHE", str(tmp_path / "user"))
    ro.chmod(0o555)
    try:
        ModelNet(ro, "test", progress=False)
    finally:
        ro.chmod(0o755)
    assert not (ro / ".pointnet1x1_cache").exists()
    assert list((tmp_path / "user" / "prepared").glob("ro-*/test-*.npy"))


def test_off_axis_convention_matches_the_resampled_files(tmp_path):
    """bathtub_0004 exists in both published forms: both datasets agree, z up."""
    root = tmp_path / "m"
    (root / "plane" / "train").mkdir(parents=True)
    os.symlink(
        OFF / "bathtub/train/bathtub_0004.off",
        root / "plane" / "train" / "bathtub_0004.off",
    )
    off = ModelNet(root, "train", cache_dir=tmp_path / "c", progress=False).points[0]
    resampled = ModelNet(
        RESAMPLED,
        "train",
        classes=["bathtub"],
        cache_dir=tmp_path / "c",
        progress=False,
    )
    txt = resampled.points[resampled.files.index("bathtub/bathtub_0004.txt")]

    def chamfer(a, b):
        d = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
        return np.sqrt(d.min(0)).mean() + np.sqrt(d.min(1)).mean()

    ours = chamfer(off, txt)
    assert ours < 0.1
    # the mirror images and the unconverted y-up cloud are all clearly farther
    for other in (off * [-1, 1, 1], off * [1, 1, -1], off[:, [0, 2, 1]]):
        assert ours < 0.7 * chamfer(other, txt)


def _hdf5_root(root: Path) -> Path:
    root.mkdir()
    names = ["c0", "c1", "c2", "c3", "c4", "c5"]
    (root / "shape_names.txt").write_text("\n".join(names) + "\n")
    shutil.copy(HDF5 / "k8xu_ycb_objects_train.h5", root / "ply_data_train0.h5")
    with h5py.File(HDF5 / "k8xu_box.h5") as f:  # float64 data, (1, 1) labels
        data, label = f["data"][:], f["label"][:]
    with h5py.File(root / "ply_data_train1.h5", "w") as f:
        f["data"], f["label"] = data, label
    shutil.copy(HDF5 / "k8xu_test_model.h5", root / "ply_data_test0.h5")
    prefix = "data/modelnet40_ply_hdf5_2048/"
    (root / "train_files.txt").write_text(
        f"{prefix}ply_data_train0.h5\n{prefix}ply_data_train1.h5\n"
    )
    (root / "test_files.txt").write_text(f"{prefix}ply_data_test0.h5\n")
    return root


def test_hdf5_layout_with_float64_and_2d_labels(tmp_path):
    root = _hdf5_root(tmp_path / "h5")
    train = ModelNet(root, "train", num_points=512)
    assert (
        train.layout == "hdf5"
        and len(train) == 61
        and train.points.shape == (61, 2048, 3)
    )
    with h5py.File(HDF5 / "k8xu_ycb_objects_train.h5") as f:
        assert train.labels[:60].tolist() == f["label"][:].tolist()
        first = f["data"][0].astype(np.float64)[:, [0, 2, 1]]  # y up -> z up
    first -= first.mean(0)
    first /= np.linalg.norm(first, axis=1).max()
    np.testing.assert_allclose(train.points[0], first, atol=1e-5)
    assert train.labels[60] == 0 and train.num_classes == 6
    np.testing.assert_allclose(
        np.linalg.norm(train.points, axis=2).max(1), 1.0, atol=1e-5
    )
    sub = ModelNet(root, "test", classes=["c4", "c2"])
    assert sub.labels.tolist() == [0, 1] and sub[1][0].shape == (1024, 3)
    with pytest.raises(ValueError, match="hold no normals"):
        ModelNet(root, "test", use_normals=True)
    (root / "ply_data_test0.h5").unlink()
    with pytest.raises(MissingDataError, match="test: 1 of 1 files missing"):
        ModelNet(root, "test")


def test_train_sampling_varies_and_transform_gets_the_rng(tmp_path):
    root = _hdf5_root(tmp_path / "h5")
    seen = []

    def transform(points):
        seen.append(points.shape)
        return points * 2

    ds = ModelNet(root, "train", num_points=128, transform=transform)
    a, b = ds[0][0], ds[0][0]
    assert a.shape == (128, 3) and not np.array_equal(a, b) and seen == [(128, 3)] * 2
    assert np.abs(a).max() <= 2.0 + 1e-5
    with pytest.raises(IndexError):
        ds[61]
    assert "layout='hdf5'" in repr(ds) and "samples=61" in repr(ds)


def test_dataloader_workers_draw_different_reproducible_samples(tmp_path):
    import torch
    from torch.utils.data import DataLoader

    root = _hdf5_root(tmp_path / "h5")
    ds = ModelNet(root, "train", num_points=64)
    sub = torch.utils.data.Subset(ds, [0] * 4)  # the same shape four times

    def run():
        torch.manual_seed(0)
        loader = DataLoader(sub, batch_size=1, num_workers=2, collate_fn=collate)
        return [x for x, _ in loader]

    first, second = run(), run()
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    # batches 0 and 1 come from different workers: their draws differ
    assert not torch.equal(first[0], first[1])


def test_a_complete_modelnet10_off_tree_is_recognised(tmp_path, monkeypatch):
    from pointnet1x1.data import layouts

    for cls in layouts.MODELNET40_COUNTS:  # official numbering, fewer files (fast)
        monkeypatch.setitem(layouts.MODELNET40_COUNTS, cls, (3, 2))
    root = tmp_path / "ModelNet10"
    for cls in layouts.MODELNET10_CLASSES:
        for split, first, count in (("train", 1, 3), ("test", 4, 2)):
            (root / cls / split).mkdir(parents=True)
            for i in range(first, first + count):
                (root / cls / split / f"{cls}_{i:04d}.off").touch()
    # exactly ModelNet10's classes: ModelNet10, complete, not ModelNet40 less 30
    assert layouts.missing_message(tmp_path, "train") is None
    listing = list_split(tmp_path, "train")
    assert listing.dataset == "ModelNet10" and listing.root == root
    assert (
        len(listing.files) == 30 and listing.class_names == layouts.MODELNET10_CLASSES
    )
    assert listing.files[0].name == "bathtub_0001.off"
    assert list_split(tmp_path, "test").labels == [i for i in range(10) for _ in "ab"]
    # a missing file is reported against ModelNet10's lists
    (root / "toilet" / "train" / "toilet_0001.off").unlink()
    message = layouts.missing_message(root, "train")
    assert message.startswith("ModelNet10 (class-split layout)")
    assert "train: 1 of 30 files missing; test: 0 of 20" in message
    assert "toilet/train/toilet_0001.off" in message
