"""Predictors: every input form, the checkpoint's preprocessing, the up axis of files,
the fast path, and the part-segmentation twin."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from pointnet1x1.data import ModelNet
from pointnet1x1.data.transforms import normalize_points
from pointnet1x1.engine import (
    Classifier,
    FastBackend,
    PartSegmenter,
    make_preprocessing,
)
from pointnet1x1.engine.predict import find_files, load_predictor


@pytest.fixture(scope="module")
def clf(tiny_run):
    # clouds made here are in the tiny dataset's axis: say so
    return Classifier.from_checkpoint(
        tiny_run, device="cpu", input_up_axis=ModelNet.up_axis
    )


def _clouds(make_shape, sizes=(("ball", 64), ("cube", 100), ("rod", 20)), seed=5):
    rng = np.random.default_rng(seed)
    return [make_shape(name, rng, n) for name, n in sizes]


def _rows(a):
    """The rows of an (N, C) array in a canonical order (the models ignore order)."""
    a = np.asarray(a)
    return a[np.lexsort(a.T[::-1])]


class _Recorder(nn.Module):
    """Records what the predictor feeds the model; answers uniform logits."""

    def __init__(self, num_classes: int = 1) -> None:
        super().__init__()
        self.num_classes, self.inputs = num_classes, []

    def forward(self, x):
        self.inputs.append(x.detach().clone())  # (B, C, N)
        return torch.zeros(x.shape[0], self.num_classes)


def test_predict_forms(clf, tmp_path, shape_maker):
    clouds = _clouds(shape_maker)
    probs = clf.predict_proba(clouds)
    assert probs.shape == (3, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    preds = clf.predict(clouds, top_k=2)
    for p, row in zip(preds, probs, strict=True):
        assert p.path is None and len(p.top_k) == 2
        assert (
            p.class_index == int(row.argmax())
            and p.label == clf.class_names[p.class_index]
        )
        assert p.probability == pytest.approx(float(row.max()))
        assert p.top_k[1][1] == pytest.approx(float(np.sort(row)[-2]))
    # a batch array, a tensor, and files give the same numbers as the list
    batch = np.stack([clouds[0], clouds[0]])
    np.testing.assert_allclose(
        clf.predict_proba(batch), probs[[0, 0]], rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        clf.predict_proba(torch.from_numpy(batch)), probs[[0, 0]], rtol=1e-5, atol=1e-6
    )
    paths = []
    for i, cloud in enumerate(clouds):
        np.save(tmp_path / f"c{i}.npy", cloud[:, :3])
        paths.append(tmp_path / f"c{i}.npy")
    by_file = clf.predict(paths)
    assert [p.path for p in by_file] == [str(p) for p in paths]
    np.testing.assert_allclose(clf.predict_proba(paths), probs, rtol=1e-5, atol=1e-6)
    assert clf.predict(str(paths[0]))[0].label == preds[0].label


def test_preprocessing_is_the_checkpoints(clf, shape_maker):
    cloud = shape_maker("cube", np.random.default_rng(0), 500)[:, :3] * 7.0 + 3.0
    x = clf.preprocess(cloud)
    assert x.shape == (32, 3)  # the checkpoint's num_points and xyz features
    # by hand: centre at the centroid, farthest point at radius 1; x is 32 of its rows
    centred = cloud - cloud.mean(axis=0)
    expected = centred / np.linalg.norm(centred, axis=1).max()
    dist = np.linalg.norm(x[:, None, :] - expected[None, :, :], axis=2)
    assert dist.min(axis=1).max() < 1e-5
    assert len(set(dist.argmin(axis=1).tolist())) == 32  # no point twice
    assert "num_points=32" in repr(clf)


def test_predict_errors(clf):
    with pytest.raises(
        ValueError, match=r"expected points of shape \(N, 3\+F\), got \(5,\)"
    ):
        clf.predict([np.zeros(5)])
    with pytest.raises(ValueError, match="expected a .* got int"):
        clf.predict(3)
    with pytest.raises(ValueError, match="top_k must be positive"):
        clf.predict(np.zeros((1, 10, 3), np.float32), top_k=0)
    with pytest.raises(
        ValueError, match="input_up_axis must be one of x, y, z; got 'w'"
    ):
        Classifier(clf.model, clf.class_names, input_up_axis="w")
    with pytest.raises(ValueError, match="no finite points"):
        clf.predict([np.full((4, 3), np.nan)])


def test_normals_model_needs_normals(shape_maker):
    clf = Classifier(
        _Recorder(), ["a"], preprocessing=make_preprocessing(16, use_normals=True)
    )
    cloud = shape_maker("ball", np.random.default_rng(0), 40)
    assert clf.preprocess(cloud).shape == (16, 6)
    with pytest.raises(ValueError, match="needs normals"):
        clf.preprocess(cloud[:, :3])


def test_find_files(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    for name in ("a.ply", "sub/b.npy", "notes.md"):
        (tmp_path / "d" / name).write_text("x")
    (tmp_path / "empty").mkdir()
    files, problems = find_files(
        [tmp_path / "d", tmp_path / "empty", tmp_path / "nope.ply"]
    )
    assert [f.name for f in files] == ["a.ply", "b.npy"]
    assert [p for p, _ in problems] == [
        str(tmp_path / "empty"),
        str(tmp_path / "nope.ply"),
    ]


# --- a file goes into the model as the training clouds did -----------------------------


def test_a_y_up_file_is_fed_as_the_dataset_sample_of_it(shared_data, tmp_path):
    """The real ModelNet dataset's sample of airplane_0627 vs classify of its file."""
    from pointnet1x1.data.layouts import list_split

    root = shared_data / "modelnet40_normal_resampled"
    listing = list_split(root, "test", classes=["airplane"])
    index = [p.name for p in listing.files].index("airplane_0627.txt")
    ds = ModelNet(root, "test", classes=["airplane"], num_points=2048,
                  cache_dir=tmp_path, progress=False)  # fmt: skip
    training_side = ds[index][0]  # (2048, 3): every stored point, in the model's axis
    recorder = _Recorder()
    prep = make_preprocessing(2048, up_axis=ds.up_axis)  # what train records
    clf = Classifier(
        recorder, ["airplane"], preprocessing=prep, input_up_axis=listing.up_axis
    )
    clf.predict(listing.files[index])
    fed = recorder.inputs[0][0].T.numpy()  # (2048, 3)
    np.testing.assert_allclose(_rows(fed), _rows(training_side), atol=1e-6)
    # told the wrong axis, the same file goes in differently: the check can fail
    wrong = "z" if listing.up_axis != "z" else "y"
    Classifier(recorder, ["a"], preprocessing=prep, input_up_axis=wrong).predict(
        listing.files[index]
    )
    assert (
        np.abs(_rows(recorder.inputs[1][0].T.numpy()) - _rows(training_side)).max()
        > 0.1
    )


def _dataset_turns_z_up(points):
    """What the datasets do to a z-up file's points (before normalising), today."""
    if ModelNet.up_axis == "z":
        return points
    return points[:, [0, 2, 1]]  # the measured y/z swap (tests/io/test_axes.py)


@pytest.mark.parametrize("model_axis", ["model", "y"])
def test_a_z_up_file_goes_in_as_in_training_not_mirrored(model_axis, shared_data):
    """airplane_0627 of the z-up npy tree, classified with no flag (files are z up)."""
    path = shared_data / "modelnet40_npy_1024/airplane/test/airplane_0627.npy"
    points = np.load(path).astype(np.float32)  # (1024, 3), z up
    axis = ModelNet.up_axis if model_axis == "model" else "y"  # "y": older checkpoints
    recorder = _Recorder()
    prep = make_preprocessing(1024, up_axis=axis)
    Classifier(recorder, ["airplane"], preprocessing=prep).predict(path)
    fed = _rows(recorder.inputs[0][0].T.numpy())
    if axis == "y":
        # a y-up model saw ModelNet's files through the measured y/z swap
        training_side = normalize_points(points[:, [0, 2, 1]])
    else:
        training_side = normalize_points(_dataset_turns_z_up(points))
    np.testing.assert_allclose(fed, _rows(training_side), atol=1e-6)
    # the mirror image of the old (x, z, -y) conversion is a different cloud
    if axis == "y":
        mirrored = normalize_points(
            np.stack([points[:, 0], points[:, 2], -points[:, 1]], 1)
        )
        assert np.abs(fed - _rows(mirrored)).max() > 0.1


# --- the fast path -------------------------------------------------------------------------


def test_many_clouds_take_the_fast_path_with_the_same_answers(clf, shape_maker):
    names = ("ball", "cube", "rod") * 7
    clouds = _clouds(
        shape_maker, [(n, 40 + 3 * i) for i, n in enumerate(names)], seed=9
    )
    assert isinstance(clf.backend_for(len(clouds)), FastBackend)
    assert not isinstance(clf.backend_for(3), FastBackend)
    many = clf.predict_proba(clouds)  # 21 clouds: the fast rewrite
    one_by_one = np.concatenate([clf.predict_proba([c]) for c in clouds])  # eager
    np.testing.assert_allclose(many, one_by_one, atol=1e-4)  # logits agree within 1e-4
    assert (many.argmax(1) == one_by_one.argmax(1)).all()


def test_bf16_answers_agree_with_fp32(tiny_run, clf, shape_maker):
    names = ("ball", "cube", "rod") * 6
    clouds = _clouds(shape_maker, [(n, 50) for n in names], seed=11)
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", RuntimeWarning
        )  # no native bf16: fp32 fast path
        bf16 = Classifier.from_checkpoint(
            tiny_run, device="cpu", precision="bf16", input_up_axis=ModelNet.up_axis
        )
        fast = bf16.predict_proba(clouds)  # 18 clouds: the fast path
        eager = np.concatenate(
            [bf16.predict_proba(clouds[i : i + 3]) for i in range(0, 18, 3)]
        )
    assert (
        isinstance(bf16.backend_for(18), FastBackend)
        and bf16.backend.precision == "bf16"
    )
    ref = clf.predict_proba(clouds)
    for got in (fast, eager):  # bf16 keeps 8 bits: logits move by ~1%, not more
        assert np.abs(got - ref).max() < 0.1
        clear = np.sort(ref, axis=1)[:, -1] - np.sort(ref, axis=1)[:, -2] > 0.2
        assert (got.argmax(1) == ref.argmax(1))[clear].all()


# --- part segmentation -------------------------------------------------------------------


def test_part_segmenter_labels_every_point_as_the_model_does(tiny_parts_run, tmp_path):
    seg = load_predictor(tiny_parts_run, device="cpu", input_up_axis="y")
    assert isinstance(seg, PartSegmenter)
    rng = np.random.default_rng(3)
    cloud = rng.uniform(-1, 1, (150, 3)).astype(np.float32) * [1.0, 2.0, 0.5]
    np.save(tmp_path / "mug.npy", cloud)
    (pred,) = seg.predict(tmp_path / "mug.npy", "mug")
    # by hand: normalise all 150 points, run the model, arg-max over Mug's parts 36, 37
    from pointnet1x1.data.shapenetpart import CATEGORIES

    mug = CATEGORIES.index("Mug")
    x = torch.from_numpy(normalize_points(cloud)).T[None]
    with torch.no_grad():
        logits = seg.model(x, torch.tensor([mug]))
    want = 36 + logits[0, [36, 37]].argmax(0).numpy()
    assert pred.labels.shape == (150,) and pred.category == "Mug"
    np.testing.assert_array_equal(pred.labels, want)
    assert sum(pred.parts.values()) == 150
    # the same shape stored z up, with no flag (files are z up): the same labels
    z_seg = PartSegmenter.from_checkpoint(tiny_parts_run, device="cpu")
    z_cloud = cloud[:, [0, 2, 1]]  # the measured y/z swap
    np.testing.assert_array_equal(z_seg.predict(z_cloud, mug)[0].labels, want)
    with pytest.raises(ValueError, match="unknown category 'Boat'"):
        seg.predict(cloud, "Boat")
    with pytest.raises(ValueError, match="category must be in"):
        seg.predict(cloud, 16)
    with pytest.raises(
        ValueError, match="a partseg checkpoint; load it with PartSegmenter"
    ):
        Classifier.from_checkpoint(tiny_parts_run)
