"""``pointnet1x1 show CKPT FILE --critical`` (issue 15, part 4): the picture of a
real file's cloud as the classifier sees it, with its critical set in red, and
the count of critical points printed."""

from __future__ import annotations

import re

from pointnet1x1.cli import main

FILE = "modelnet40_npy_1024/airplane/test/airplane_0627.npy"


def test_show_critical_writes_the_png_and_prints_the_count(
    tiny_run, shared_data, tmp_path, capsys
):
    from matplotlib.image import imread

    from pointnet1x1.engine.predict import Classifier
    from pointnet1x1.models.critical import critical_points

    ckpt = tiny_run / "checkpoints" / "best.safetensors"
    path = shared_data / FILE
    out = tmp_path / "critical.png"
    assert main(["show", str(ckpt), str(path), "--critical", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    match = re.search(r": (\d+) critical points of (\d+) \(predicted (\w+)", printed)
    assert match is not None, printed
    clf = Classifier.from_checkpoint(ckpt, device="cpu")
    cloud = clf.preprocess(path)
    expected = critical_points(clf.model, cloud)
    assert int(match.group(1)) == len(expected.indices)
    assert int(match.group(2)) == len(cloud) == clf.preprocessing.num_points
    assert match.group(3) in clf.class_names
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rgb = imread(out)[..., :3]
    red = (rgb[..., 0] > 0.7) & (rgb[..., 1] < 0.35) & (rgb[..., 2] < 0.35)
    assert red.sum() > 0  # the critical points are drawn in red


def test_show_critical_needs_a_checkpoint_and_one_file(shared_data, tmp_path, capsys):
    out = tmp_path / "x.png"
    assert main(["show", str(shared_data / FILE), "--critical", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--critical needs a classifier checkpoint and one file" in err
    assert not out.exists()
