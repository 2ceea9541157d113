"""The pretrained model installed with the package: it loads, says what it is, and
classifies real z-up ModelNet40 meshes (../shared/data/ModelNet40) as their classes."""

from __future__ import annotations

import json
import struct

import pytest

from pointnet1x1 import Classifier
from pointnet1x1.cli import main
from pointnet1x1.weights import DEFAULT_PRETRAINED, pretrained_info, pretrained_path


def test_the_installed_file_is_small_16_bit_and_documented():
    path = pretrained_path()
    assert path.stat().st_size <= 15_000_000
    with path.open("rb") as f:  # the safetensors header, read by hand
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
    dtypes = {v["dtype"] for k, v in header.items() if k != "__metadata__"}
    assert dtypes <= {"F16", "I64"} and "F16" in dtypes
    info = pretrained_info()
    assert info["name"] == DEFAULT_PRETRAINED and info["model"] == "pointnet"
    assert info["recipe"] == "modelnet40-cpu" and info["data"]["points"] == 1024
    assert info["data"]["up_axis"] == "z" and info["weights"] == "float16"
    assert (info["data"]["train"], info["data"]["val"], info["data"]["test"]) == (
        8858, 985, 2468,  # the official 9,843 train less 10% validation; 2,468 test
    )  # fmt: skip
    assert "academic research" in info["license"]
    assert info["library_version"]
    # the figures re-measured from the stored file stay those of the run
    for key in ("oa", "macc"):
        assert abs(info["test"][key] - info["test_run"][key]) <= 0.002
    assert info["test_vote"]["votes"] == 12


def test_it_classifies_real_z_up_meshes_as_their_classes(shared_data):
    files = sorted((shared_data / "ModelNet40").glob("*/*/*.off"))
    assert len(files) == 12
    clf = Classifier.pretrained()
    assert len(clf.class_names) == 40 and clf.input_up_axis == "z"
    predictions = clf.predict(files)
    truth = [f.parent.parent.name for f in files]  # <class>/<split>/<file>.off
    labels = [p.label for p in predictions]
    # the model's measured test accuracy (BENCHMARKS.md) is 98-99% on airplane,
    # bed and chair and 88% on bathtub, but 0/20 on flower_pot (taken for plant or
    # vase) and 11/20 on stool (chair): every file of the four strong classes must
    # be right, the two weak-class files (one each) may not be
    weak = {"flower_pot", "stool"}
    strong = [(t, p) for t, p in zip(truth, labels, strict=True) if t not in weak]
    assert len(strong) == 10 and all(t == p for t, p in strong), strong
    assert all(p.probability > 0.5 for p in predictions)  # confident on each


def test_classify_without_a_checkpoint_uses_it(shared_data, capsys):
    chair = shared_data / "ModelNet40" / "chair" / "test" / "chair_0890.off"
    assert main(["classify", str(chair), "--json"]) == 0
    (item,) = json.loads(capsys.readouterr().out)
    assert item["label"] == "chair"


def test_models_lists_the_pretrained_model_and_the_architectures(capsys):
    assert main(["models", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    (pre,) = listing["pretrained"]
    assert pre["name"] == DEFAULT_PRETRAINED and pre["test"]["oa"] > 0.8
    names = {a["name"]: a["task"] for a in listing["architectures"]}
    assert names["pointnet"] == "cls" and names["pointnet2_partseg"] == "partseg"
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    assert f"{DEFAULT_PRETRAINED}: pointnet on modelnet40_npy_1024, 1024 points" in text
    assert f"test OA {100 * pre['test']['oa']:.1f}%" in text


def test_an_unknown_pretrained_name_is_one_line():
    with pytest.raises(
        ValueError, match="unknown pretrained model 'nope'; installed: "
    ):
        Classifier.pretrained("nope")
