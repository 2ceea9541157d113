"""Part segmentation: metrics by hand, a tiny training run, prediction and writing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from plyfile import PlyData

from pointnet1x1.data.shapenetpart import CATEGORIES, SEG_CLASSES, SHAPENETPART_DIRNAME
from pointnet1x1.engine.partseg import (
    PartSegConfig,
    PartSegMetrics,
    predict_parts,
    restrict_to_category,
    shape_iou,
    train_partseg,
    write_part_labels,
)
from pointnet1x1.models import create_model

SYNSETS = {"Airplane": "02691156", "Mug": "03797390"}
AIRPLANE, MUG = CATEGORIES.index("Airplane"), CATEGORIES.index("Mug")


def _fixture(tmp_path: Path) -> Path:
    """A small ShapeNetPart in its layout: the part is the band of x a point is in."""
    root = tmp_path / SHAPENETPART_DIRNAME
    (root / "train_test_split").mkdir(parents=True)
    (root / "synsetoffset2category.txt").write_text(
        "".join(f"{c}\t{s}\n" for c, s in SYNSETS.items())
    )
    rng = np.random.default_rng(0)
    lists: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for cat, syn in SYNSETS.items():
        (root / syn).mkdir()
        parts = np.asarray(SEG_CLASSES[cat])
        for split, count in zip(lists, (4, 2, 2), strict=True):
            for i in range(count):
                xyz = rng.uniform(-1, 1, (120, 3))
                band = np.clip(
                    ((xyz[:, 0] + 1) / 2 * len(parts)).astype(int), 0, len(parts) - 1
                )
                rows = np.column_stack(
                    [xyz, np.zeros((120, 2)), np.ones(120), parts[band]]
                )
                np.savetxt(root / syn / f"{split}{i}.txt", rows, fmt="%.5f")
                lists[split].append(f"shape_data/{syn}/{split}{i}")
    for split, entries in lists.items():
        (root / "train_test_split" / f"shuffled_{split}_file_list.json").write_text(
            json.dumps(entries)
        )
    return tmp_path


def test_shape_iou_by_hand():
    # Airplane parts 0..3; part 0: I 1 U 2; part 1: I 2 U 3; parts 2, 3 absent: 1
    pred, target = np.array([0, 1, 1, 1]), np.array([0, 0, 1, 1])
    assert shape_iou(pred, target, AIRPLANE) == pytest.approx((0.5 + 2 / 3 + 1 + 1) / 4)
    # a label outside the category only enlarges the truth's union
    assert shape_iou(np.array([36, 36]), np.array([0, 0]), AIRPLANE) == pytest.approx(
        (0 + 1 + 1 + 1) / 4
    )


def test_instance_and_class_miou():
    m = PartSegMetrics()
    mug = torch.tensor([[36, 36, 37, 37]])
    m.update(mug, mug, torch.tensor([MUG]))  # IoU 1
    m.update(
        torch.tensor([[0, 1, 1, 1], [0, 0, 1, 1]]),
        torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1]]),
        torch.tensor([AIRPLANE, AIRPLANE]),
    )  # IoU 0.7917 and 1
    out = m.compute()
    a = (0.5 + 2 / 3 + 2) / 4
    assert out["instance_miou"] == pytest.approx((1 + a + 1) / 3)
    assert out["class_miou"] == pytest.approx((1 + (a + 1) / 2) / 2)
    assert out["per_category"] == pytest.approx({"Airplane": (a + 1) / 2, "Mug": 1.0})
    assert out["point_accuracy"] == pytest.approx(11 / 12) and out["shapes"] == 3


def test_restrict_to_category():
    logits = torch.zeros(2, 50, 3)
    logits[:, 49] = 10.0  # a Table part wins overall
    logits[0, 2, 1] = 1.0
    logits[1, 37] = 1.0
    labels = restrict_to_category(logits, torch.tensor([AIRPLANE, MUG]))
    assert labels.tolist() == [[0, 2, 0], [37, 37, 37]]


def test_train_partseg_tiny_run(tmp_path):
    cfg = PartSegConfig(
        data=str(_fixture(tmp_path)),
        model="pointnet2_partseg",
        model_kwargs={"npoints": [32, 8], "nsample": 8},
        num_points=64,
        epochs=2,
        batch_size=4,
        out=str(tmp_path / "run"),
        log=False,
    )
    report = train_partseg(cfg)
    assert report["shapes"] == {"train": 8, "val": 4, "test": 4}
    assert len(report["history"]) == 2 and report["best_epoch"] in (1, 2)
    for key in ("instance_miou", "class_miou"):
        assert 0.0 <= report["test"][key] <= 1.0
    assert set(report["test"]["per_category"]) == {"Airplane", "Mug"}
    assert "best validation" in report["test"]["weights"]
    on_disk = json.loads((tmp_path / "run" / "report.json").read_text())
    assert on_disk["test"] == report["test"]
    from pointnet1x1.engine.checkpoint import load_model_checkpoint

    model, meta = load_model_checkpoint(report["checkpoint"])
    assert (
        meta["extra"]["task"] == "partseg"
        and meta["extra"]["category_names"][0] == "Airplane"
    )
    assert len(meta["class_names"]) == 50 and meta["preprocessing"]["num_points"] == 64
    points = np.random.default_rng(1).uniform(-1, 1, (20, 3)).astype(np.float32)
    labels = predict_parts(model, points, "mug")  # 20 < 32 centroids: fine
    assert labels.shape == (20,) and set(labels.tolist()) <= {36, 37}


def test_train_config_mapping_and_errors(tmp_path):
    from pointnet1x1.engine.config import TrainConfig
    from pointnet1x1.engine.partseg import _from_train_config

    cfg = _from_train_config(
        TrainConfig(
            task="partseg", data="somewhere", model="pointnet", epochs=3, normals=True
        )
    )
    assert (cfg.model, cfg.epochs, cfg.use_normals, cfg.num_points) == (
        "pointnet_partseg",
        3,
        True,
        2048,
    )
    with pytest.raises(ValueError, match="needs a ShapeNetPart root: pass --data"):
        train_partseg(PartSegConfig())
    with pytest.raises(ValueError, match="'pointnet2_msg' is not a part segmenter"):
        train_partseg(PartSegConfig(data="x", model="pointnet2_msg"))


def test_predict_parts_pointnet_segmenter_and_errors():
    torch.manual_seed(0)
    model = create_model("pointnet_partseg", mlp1=[8, 8], mlp2=[16], seg_mlp=[8])
    points = np.random.default_rng(0).normal(size=(50, 3))
    labels = predict_parts(model, points, AIRPLANE)
    assert labels.shape == (50,) and set(labels.tolist()) <= {0, 1, 2, 3}
    with_normals = np.concatenate([points, np.ones((50, 3))], axis=1)
    assert np.array_equal(predict_parts(model, with_normals, "Airplane"), labels)
    with pytest.raises(ValueError, match="unknown category 'Boat'"):
        predict_parts(model, points, "Boat")
    with pytest.raises(
        ValueError, match=r"takes points of shape \(N, 3\).*got \(50, 2\)"
    ):
        predict_parts(model, points[:, :2], 0)


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
    tmp_path, shared_data, capsys
):
    from pointnet1x1.cli import main
    from pointnet1x1.engine.checkpoint import make_preprocessing, save_model_checkpoint

    torch.manual_seed(0)
    kwargs = {"mlp1": [8, 8], "mlp2": [16], "seg_mlp": [8]}
    model = create_model("pointnet_partseg", **kwargs).eval()
    ckpt = save_model_checkpoint(
        tmp_path / "seg.safetensors",
        model,
        model_name="pointnet_partseg",
        model_kwargs=kwargs,
        class_names=[f"part{i}" for i in range(50)],
        preprocessing=make_preprocessing(256),
        extra={"task": "partseg", "category_names": list(CATEGORIES)},
    )
    bunny = shared_data / "clouds" / "PointCloudLibrary_pcl__bunny.pcd"  # 397 points
    bad = tmp_path / "bad.xyz"
    bad.write_text("not numbers\n")
    out = tmp_path / "parts"
    argv = ["classify", str(ckpt), str(bunny), str(bad), "--parts-dir", str(out)]
    assert main([*argv, "--category", "Mug"]) == 1  # the bad file, the rest done
    captured = capsys.readouterr()
    assert "bad.xyz" in captured.err and "bunny" not in captured.err
    vertex = PlyData.read(str(out / "PointCloudLibrary_pcl__bunny.parts.ply"))["vertex"]
    assert len(vertex["label"]) == 397  # every point of the file gets a label
    assert set(vertex["label"].tolist()) <= set(SEG_CLASSES["Mug"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary[0]["num_points"] == 397 and summary[0]["category"] == "Mug"
    assert sum(summary[0]["parts"].values()) == 397
    # a segmenter without --category: one line, exit code 2
    assert main(["classify", str(ckpt), str(bunny)]) == 2
    assert "pass --category" in capsys.readouterr().err
