"""Part segmentation: the authors' metrics by hand, DDP-style sums, labels written to
files, and ``classify`` with a segmentation checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from plyfile import PlyData

from pointnet1x1.data.shapenetpart import CATEGORIES, SEG_CLASSES
from pointnet1x1.engine import PartSegmenter, make_preprocessing
from pointnet1x1.engine.metrics import (
    PartSegMetrics,
    category_mask,
    restrict_to_category,
    shape_iou,
)
from pointnet1x1.engine.segment import write_part_labels
from pointnet1x1.models import create_model

AIRPLANE, MUG = CATEGORIES.index("Airplane"), CATEGORIES.index("Mug")
MASK = category_mask({c: SEG_CLASSES[c] for c in CATEGORIES}, 50)


def test_shape_iou_by_hand():
    # Airplane parts 0..3; part 0: I 1 U 2; part 1: I 2 U 3; parts 2, 3 absent: 1
    pred, target = np.array([0, 1, 1, 1]), np.array([0, 0, 1, 1])
    parts = SEG_CLASSES["Airplane"]
    assert shape_iou(pred, target, parts) == pytest.approx((0.5 + 2 / 3 + 1 + 1) / 4)
    # a label outside the category only enlarges the truth's union
    assert shape_iou(np.array([36, 36]), np.array([0, 0]), parts) == pytest.approx(
        (0 + 1 + 1 + 1) / 4
    )


def _metrics():
    m = PartSegMetrics(CATEGORIES, SEG_CLASSES)
    mug = torch.tensor([[36, 36, 37, 37]])
    m.update(mug, mug, torch.tensor([MUG]))  # IoU 1
    m.update(
        torch.tensor([[0, 1, 1, 1], [0, 0, 1, 1]]),
        torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1]]),
        torch.tensor([AIRPLANE, AIRPLANE]),
    )  # IoU 0.7917 and 1
    return m


def test_instance_and_class_miou():
    out = _metrics().compute()
    a = (0.5 + 2 / 3 + 2) / 4
    assert out["instance_miou"] == pytest.approx((1 + a + 1) / 3)
    assert out["class_miou"] == pytest.approx((1 + (a + 1) / 2) / 2)
    assert out["per_category"] == pytest.approx({"Airplane": (a + 1) / 2, "Mug": 1.0})
    assert out["point_accuracy"] == pytest.approx(11 / 12) and out["shapes"] == 3


def test_metrics_add_up_over_shards_as_over_ranks():
    # two "ranks" with one part of the shapes each give the whole set's figures
    whole = _metrics()
    first = PartSegMetrics(CATEGORIES, SEG_CLASSES)
    first.update(
        torch.tensor([[36, 36, 37, 37]]),
        torch.tensor([[36, 36, 37, 37]]),
        torch.tensor([MUG]),
    )
    second = PartSegMetrics(CATEGORIES, SEG_CLASSES)
    second.update(
        torch.tensor([[0, 1, 1, 1], [0, 0, 1, 1]]),
        torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1]]),
        torch.tensor([AIRPLANE, AIRPLANE]),
    )
    first.sums += second.sums  # what all_reduce_sum does
    got, want = first.compute(), whole.compute()
    assert got.pop("per_category") == pytest.approx(want.pop("per_category"))
    assert got == pytest.approx(want)


def test_restrict_to_category():
    logits = torch.zeros(2, 50, 3)
    logits[:, 49] = 10.0  # a Table part wins overall
    logits[0, 2, 1] = 1.0
    logits[1, 37] = 1.0
    labels = restrict_to_category(logits, torch.tensor([AIRPLANE, MUG]), MASK)
    assert labels.tolist() == [[0, 2, 0], [37, 37, 37]]


def test_pointnet_segmenter_predictor_and_errors():
    torch.manual_seed(0)
    kwargs = {"mlp1": [8, 8], "mlp2": [16], "seg_mlp": [8]}
    model = create_model("pointnet_partseg", **kwargs)
    seg = PartSegmenter(
        model, [f"p{i}" for i in range(50)], category_names=CATEGORIES,
        seg_classes=SEG_CLASSES, preprocessing=make_preprocessing(64), input_up_axis="z",
    )  # fmt: skip
    points = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    points[7] = np.nan  # a point that cannot be labelled gets -1, the others a part
    (pred,) = seg.predict(points, AIRPLANE)
    assert pred.labels[7] == -1 and sum(pred.parts.values()) == 49
    with_normals = np.concatenate([points, np.ones((50, 3), np.float32)], axis=1)
    assert np.array_equal(seg.predict(with_normals, "airplane")[0].labels, pred.labels)
    with pytest.raises(ValueError, match="unknown category 'Boat'"):
        seg.predict(points, "Boat")
    with pytest.raises(
        ValueError, match=r"expected points of shape \(N, 3\+F\).*\(50, 2\)"
    ):
        seg.predict(points[:, :2], 0)
    with pytest.raises(ValueError, match="seg_classes lacks the parts of categories"):
        PartSegmenter(model, ["p"] * 50, category_names=["Airplane", "Boat"],
                      seg_classes=SEG_CLASSES)  # fmt: skip


def test_write_part_labels_formats(tmp_path):
    points = np.random.default_rng(0).normal(size=(5, 6)).astype(np.float32)
    labels = np.array([0, 1, 2, 3, 3])
    write_part_labels(tmp_path / "a.ply", points, labels)
    vertex = PlyData.read(str(tmp_path / "a.ply"))["vertex"]
    assert vertex["label"].tolist() == labels.tolist()
    np.testing.assert_allclose(vertex["nz"], points[:, 5])
    write_part_labels(tmp_path / "a.npy", points, labels)
    assert np.load(tmp_path / "a.npy").tolist() == labels.tolist()
    write_part_labels(tmp_path / "a.txt", points[:, :3], labels)
    assert np.loadtxt(tmp_path / "a.txt")[:, 3].tolist() == labels.tolist()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy", "a.ply", "a.txt"]
    with pytest.raises(
        ValueError, match=r"a\.obj: cannot write part labels as '\.obj'"
    ):
        write_part_labels(tmp_path / "a.obj", points, labels)
    with pytest.raises(ValueError, match=r"labels \(N,\)"):
        write_part_labels(tmp_path / "b.npy", points, labels[:3])


def test_classify_with_a_segmentation_checkpoint_writes_part_labels(
    tiny_parts_run, tmp_path, shared_data, capsys
):
    from pointnet1x1.cli import main

    ckpt = tiny_parts_run / "checkpoints" / "best.safetensors"
    bunny = shared_data / "clouds" / "PointCloudLibrary_pcl__bunny.pcd"  # 397 points
    bad = tmp_path / "bad.xyz"
    bad.write_text("not numbers\n")
    out = tmp_path / "parts"
    argv = ["classify", str(ckpt), str(bunny), str(bad), "--parts-dir", str(out)]
    assert (
        main([*argv, "--category", "Mug", "--json"]) == 1
    )  # the bad file, the rest done
    captured = capsys.readouterr()
    assert "bad.xyz" in captured.err and "bunny" not in captured.err
    objects = json.loads(captured.out)
    from pointnet1x1.engine import read_checkpoint_metadata

    recorded = read_checkpoint_metadata(ckpt)["preprocessing"]["up_axis"]
    assert (
        objects[0]["input_up_axis"] == "z" and objects[0]["model_up_axis"] == recorded
    )
    assert objects[1]["path"] == str(bad) and "error" in objects[1]
    vertex = PlyData.read(str(out / "PointCloudLibrary_pcl__bunny.parts.ply"))["vertex"]
    assert len(vertex["label"]) == 397  # every point of the file gets a label
    # the same labels as the predictor gives for the file
    want = PartSegmenter.from_checkpoint(ckpt, device="cpu").predict(bunny, "Mug")[0]
    assert vertex["label"].tolist() == want.labels.tolist()
    summary = json.loads((out / "summary.json").read_text())
    assert summary[0]["num_points"] == 397 and summary[0]["category"] == "Mug"
    assert summary[0]["parts"] == want.parts
    # a segmenter without --category: one line, exit code 2
    assert main(["classify", str(ckpt), str(bunny)]) == 2
    assert "pass --category" in capsys.readouterr().err
