"""Short runs that must learn, for each task: the loss falls and the test figures
end far above what chance gives (thresholds derived from the chance level)."""

from __future__ import annotations

import json
import math

from pointnet1x1.engine import train


def _history(run):
    return [
        json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
    ]


def test_classification_learns_on_the_embedded_default_data(tmp_path):
    # the default data and the fast recipe, two epochs instead of thirty
    report = train(out=str(tmp_path / "run"), epochs=2, progress="none")
    history = _history(tmp_path / "run")
    k = len(report["class_names"])
    assert k == 10 and report["data"]["root"] == "embedded default"
    counts = [sum(row) for row in report["test"]["confusion"]]
    assert counts == [20] * k  # balanced: chance OA is 1 / k
    chance = 1 / k
    assert history[1]["train_loss"] < history[0]["train_loss"]
    # a model that has learnt nothing has cross-entropy ln k; half of it is far below
    assert history[1]["train_loss"] < 0.5 * math.log(k)
    for which in ("test_best", "test_last"):
        assert report[which]["oa"] > chance + 0.5 * (1 - chance), which  # > 0.55


def test_part_segmentation_learns(tiny_parts, tiny_parts_kwargs, tmp_path):
    from pointnet1x1.data.shapenetpart import SEG_CLASSES

    kwargs = {**tiny_parts_kwargs, "epochs": 8}
    report = train(data=str(tiny_parts), out=str(tmp_path / "run"), **kwargs)
    history = _history(tmp_path / "run")
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]
    # chance: a label drawn uniformly from the parts of the shape's category.
    # Its point accuracy is 1/P; with equal-sized parts its IoU per part is
    # (1/P^2) / (2/P - 1/P^2) = 1 / (2P - 1). Test shapes: 8 per category.
    parts = [len(SEG_CLASSES[c]) for c in ("Airplane", "Mug")]  # 4 and 2
    chance_acc = sum(1 / p for p in parts) / len(parts)
    chance_miou = sum(1 / (2 * p - 1) for p in parts) / len(parts)
    test = report["test"]
    assert test["shapes"] == 16
    assert test["point_accuracy"] > chance_acc + 0.5 * (1 - chance_acc)  # > 0.69
    assert test["instance_miou"] > chance_miou + 0.5 * (1 - chance_miou)  # > 0.62
    assert set(test["per_category"]) == {"Airplane", "Mug"}
