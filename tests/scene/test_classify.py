"""classify_scene with a real (tiny, trained) classifier: what it is given, what it
says, unknown objects; and the labelled PLY and the picture it leaves."""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest
from matplotlib import colormaps

from pointnet1x1.io import read_points
from pointnet1x1.io.axes import convert_up_axis
from pointnet1x1.scene import classify_scene, render_scene, write_scene_ply


@pytest.fixture(scope="module")
def clf(tiny_run):
    from pointnet1x1.engine import Classifier

    return Classifier.from_checkpoint(tiny_run, device="cpu", input_up_axis="z")


class _Recording:
    """The real classifier, remembering the clouds it was given."""

    def __init__(self, clf, input_up_axis: str) -> None:
        self.clf, self.input_up_axis, self.seen = clf, input_up_axis, []
        self.class_names, self.preprocessing = clf.class_names, clf.preprocessing

    def predict(self, clouds, top_k):
        self.seen = [np.array(c) for c in clouds]
        return self.clf.predict(clouds, top_k=top_k)


def test_objects_are_classified_z_up_with_the_checkpoint(pcl_scene, clf):
    result = classify_scene(pcl_scene, clf, top_k=2, min_probability=0.0)
    standing = [c for c in pcl_scene.clusters if c.on_support]
    assert [o.cluster for o in result.objects] == standing
    for obj in result.objects:
        assert obj.label == obj.top_k[0][0] and obj.label in clf.class_names
        assert obj.probability == pytest.approx(obj.top_k[0][1])
        assert len(obj.top_k) == 2 and obj.top_k[0][1] >= obj.top_k[1][1]
        assert obj.class_index == clf.class_names.index(obj.label)
    # the same numbers as the classifier gives for the aligned points itself
    direct = clf.predict([pcl_scene.object_points(c) for c in standing], top_k=2)
    assert [o.probability for o in result.objects] == pytest.approx(
        [p.probability for p in direct]
    )
    every = classify_scene(pcl_scene, clf, clusters="all")
    assert len(every.objects) == len(pcl_scene.clusters)
    d = result.to_dict()
    assert d["objects"][0]["label"] == result.objects[0].label
    assert d["num_clusters"] == len(pcl_scene.clusters) and d["support_plane"] == 1


def test_what_the_classifier_is_given(pcl_scene, clf):
    z_up = _Recording(clf, "z")
    classify_scene(pcl_scene, z_up)
    mug = next(c for c in pcl_scene.clusters if c.on_support)  # the first given
    expected = (pcl_scene.points[mug.indices].astype(np.float64)) @ pcl_scene.rotation.T
    np.testing.assert_allclose(z_up.seen[0], expected, atol=1e-5)
    # the mug stands upright: its extent along z is its height along the scan's up
    assert np.ptp(z_up.seen[0][:, 2]) == pytest.approx(mug.height, abs=1e-5)
    y_up = _Recording(clf, "y")  # a classifier that takes y up gets y up
    classify_scene(pcl_scene, y_up)
    np.testing.assert_allclose(
        y_up.seen[0], convert_up_axis(expected, "z", "y"), atol=1e-5
    )


def test_unknown_objects_keep_their_scores(pcl_scene, clf):
    sure = classify_scene(pcl_scene, clf, min_probability=0.0)
    unsure = classify_scene(pcl_scene, clf, min_probability=1.0)
    for a, b in zip(sure.objects, unsure.objects, strict=True):
        assert b.label is None and b.label_index == -1
        assert (b.probability, b.top_k, b.class_index) == (
            a.probability,
            a.top_k,
            a.class_index,
        )
        assert b.to_dict()["label"] is None and b.to_dict()["top_k"]
    with pytest.raises(ValueError, match=r"min_probability must be in \[0, 1\]"):
        classify_scene(pcl_scene, clf, min_probability=1.5)
    with pytest.raises(ValueError, match="clusters must be one of"):
        classify_scene(pcl_scene, clf, clusters="some")


def test_the_ply_round_trips_through_our_reader_and_open3d(pcl_scene, clf, tmp_path):
    import open3d as o3d

    result = classify_scene(pcl_scene, clf, min_probability=0.0)
    path = write_scene_ply(tmp_path / "scene.ply", result)
    ours = read_points(path)
    np.testing.assert_array_equal(ours.points, pcl_scene.points)
    np.testing.assert_array_equal(ours.fields["object_id"], pcl_scene.object_ids)
    np.testing.assert_array_equal(ours.fields["plane_id"], pcl_scene.plane_ids)
    labels = np.full(len(pcl_scene.points), -1)
    for obj in result.objects:  # per point: the class index of its object
        labels[obj.cluster.indices] = obj.class_index
    np.testing.assert_array_equal(ours.fields["label"], labels)
    theirs = o3d.t.io.read_point_cloud(str(path))
    np.testing.assert_array_equal(theirs.point.positions.numpy(), pcl_scene.points)
    for name, expected in (("object_id", pcl_scene.object_ids), ("label", labels)):
        np.testing.assert_array_equal(theirs.point[name].numpy().ravel(), expected)
    legacy = o3d.io.read_point_cloud(str(path))
    np.testing.assert_allclose(np.asarray(legacy.points), pcl_scene.points)
    np.testing.assert_allclose(
        np.asarray(legacy.colors), np.round(pcl_scene.colors * 255) / 255, atol=1e-6
    )
    with pytest.raises(ValueError, match="written as PLY"):
        write_scene_ply(tmp_path / "scene.pcd", result)


def test_the_picture_shows_the_objects(pcl_scene, clf, tmp_path):
    result = classify_scene(pcl_scene, clf, min_probability=0.0)
    path = render_scene(tmp_path / "scene.png", result)
    image = matplotlib.image.imread(path)[..., :3]
    assert image.shape == (560, 800, 3)
    # the mug drawn in its object's colour of matplotlib's tab10
    mug = result.objects[0].cluster
    colour = np.array(colormaps["tab10"](mug.id % 10)[:3])
    assert (np.abs(image - colour).max(axis=2) < 0.02).sum() > 500
    # a bare scene draws as well (objects numbered, not labelled)
    assert render_scene(tmp_path / "bare.png", pcl_scene).stat().st_size > 10_000
