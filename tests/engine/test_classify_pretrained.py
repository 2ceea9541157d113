"""classify [CKPT] PATH...: a model file or run folder first, else the pretrained model."""

from __future__ import annotations

import json

from pointnet1x1.cli import main


def test_classify_tells_a_checkpoint_from_files(tiny_run, shared_data, capsys):
    chair = str(shared_data / "ModelNet40" / "chair" / "test" / "chair_0890.off")
    cases = [
        (["classify", str(tiny_run)], "no files to classify after the checkpoint"),
        (["classify", str(tiny_run), chair, "--pretrained", "pointnet-modelnet40"],
         "give a checkpoint"),
        (["classify", chair, "--pretrained", "nope"], "unknown pretrained model 'nope'"),
    ]  # fmt: skip
    for argv, needle in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and needle in err, err
    # a run folder first: that model (the tiny run's own classes), not the pretrained
    assert main(["classify", str(tiny_run), chair, "--json"]) == 0
    (item,) = json.loads(capsys.readouterr().out)
    assert item["label"] not in (None, "chair")  # the tiny run knows no chairs
