"""Classifier: every input form, the checkpoint's preprocessing, probabilities."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pointnet1x1.engine import Classifier, make_preprocessing
from pointnet1x1.engine.predict import find_files


@pytest.fixture(scope="module")
def clf(tiny_run):
    return Classifier.from_checkpoint(
        tiny_run / "checkpoints" / "best.safetensors", device="cpu"
    )


def _clouds(make_shape):
    rng = np.random.default_rng(5)
    return [
        make_shape(name, rng, n)
        for name, n in (("ball", 64), ("cube", 100), ("rod", 20))
    ]


def test_predict_forms(clf, tmp_path, shape_maker):
    clouds = _clouds(shape_maker)
    preds = clf.predict(clouds, top_k=2)
    assert len(preds) == 3
    for p in preds:
        assert p.label in {"ball", "cube", "rod"} and p.path is None
        assert 0 <= p.probability <= 1 and len(p.top_k) == 2
        assert p.top_k[0] == (p.label, p.probability)
        assert p.top_k[0][1] >= p.top_k[1][1]
    probs = clf.predict_proba(clouds)
    assert probs.shape == (3, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
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


def test_preprocessing_follows_the_checkpoint(clf, shape_maker):
    cloud = shape_maker("cube", np.random.default_rng(0), 500) * 7.0 + 3.0
    x = clf.preprocess(cloud)
    assert x.shape == (32, 3)  # the checkpoint's num_points and xyz features
    assert np.linalg.norm(x, axis=1).max() <= 1.0 + 1e-5
    assert np.abs(x.mean(axis=0)).max() < 0.25
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


def test_normals_model_needs_normals(shape_maker):
    model = torch.nn.Sequential()  # never called: preprocessing fails first
    clf = Classifier(
        model,
        ["a"],
        preprocessing=make_preprocessing(16, use_normals=True),
        model_name="x",
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


def test_z_up_input_is_turned_to_y_up(clf):
    from pointnet1x1.engine.predict import _z_up_to_y_up

    pts = np.array([[1.0, 2.0, 3.0, 0.0, 0.0, 1.0]], np.float32)
    assert _z_up_to_y_up(pts).tolist() == [[1.0, 3.0, -2.0, 0.0, 1.0, -0.0]]
    # a rod standing along z, given as z up, looks like the rod along y of the training data
    rng = np.random.default_rng(0)
    rod_y = np.concatenate(
        [
            rng.uniform(-0.1, 0.1, (64, 1)),
            rng.uniform(-1, 1, (64, 1)),
            rng.uniform(-0.1, 0.1, (64, 1)),
        ],
        axis=1,
    )
    rod_z = rod_y[:, [0, 2, 1]] * np.array([1, -1, 1])
    z_clf = Classifier(
        clf.model, clf.class_names, preprocessing=clf.preprocessing, input_up_axis="z"
    )
    np.testing.assert_allclose(
        z_clf.preprocess(rod_z), clf.preprocess(rod_y), atol=1e-6
    )
    with pytest.raises(ValueError, match="input_up_axis must be 'y' or 'z', got 'x'"):
        Classifier(clf.model, clf.class_names, input_up_axis="x")
