"""Calibration wired into training (issue 15, part 3): the tiny run's report has
the temperature and the test ECE before / after, recomputed here from logits of
the checkpoint's own model with an ECE loop of the test's own; the checkpoints
hold the temperature ``fit_temperature`` gives on their validation logits; the
Classifier's probabilities are ``softmax(logits / T)``, and a checkpoint without
a temperature keeps the plain softmax."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from pointnet1x1.engine.calibration import fit_temperature
from pointnet1x1.engine.checkpoint import (
    load_model_checkpoint,
    read_checkpoint_metadata,
    save_model_checkpoint,
)
from pointnet1x1.engine.data import load_classification_data
from pointnet1x1.engine.predict import Classifier


def _ece(
    logits: np.ndarray, labels: np.ndarray, temperature: float, bins: int
) -> float:
    """Binned ECE, written out: bin m holds top probabilities in (m/M, (m+1)/M]."""
    total = 0.0
    rows = []
    for z, y in zip(logits, labels, strict=True):
        e = [math.exp((v - max(z)) / temperature) for v in z]
        p = [v / sum(e) for v in e]
        top = max(p)
        rows.append((top, p.index(top) == y))
    for m in range(bins):
        lo, hi = m / bins, (m + 1) / bins
        inside = [(c, ok) for c, ok in rows if (lo < c <= hi) or (m == 0 and c == 0)]
        if inside:
            acc = sum(ok for _, ok in inside) / len(inside)
            conf = sum(c for c, _ in inside) / len(inside)
            total += len(inside) / len(rows) * abs(acc - conf)
    return total


def _eager_logits(model: torch.nn.Module, points: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(points.transpose(1, 2).contiguous()).double().numpy()


@pytest.fixture(scope="module")
def splits(tiny_run):
    meta = read_checkpoint_metadata(tiny_run / "checkpoints" / "best.safetensors")
    cfg = meta["extra"]["config"]
    return load_classification_data(
        meta["extra"]["data"], val_fraction=cfg["val_fraction"], progress=False
    )


def test_report_gives_the_temperature_and_test_ece_before_and_after(tiny_run, splits):
    report = json.loads((tiny_run / "report.json").read_text())
    cal = report["calibration"]
    loaded = load_model_checkpoint(tiny_run / "checkpoints" / "best.safetensors")
    stored = loaded.metadata["extra"]["calibration"]["temperature"]
    assert cal["temperature"] == stored and cal["bins"] == 15
    z_test = _eager_logits(loaded.model, splits.test.points)
    y_test = splits.test.labels.numpy()
    assert len(y_test) == report["data"]["num_test"] == 12
    before = _ece(z_test, y_test, 1.0, 15)
    after = _ece(z_test, y_test, stored, 15)
    assert cal["test_ece_before"] == pytest.approx(before, abs=1e-3)
    assert cal["test_ece_after"] == pytest.approx(after, abs=1e-3)


@pytest.mark.parametrize("name", ["best", "last"])
def test_each_checkpoint_holds_the_temperature_fitted_on_its_val_logits(
    tiny_run, splits, name
):
    loaded = load_model_checkpoint(tiny_run / "checkpoints" / f"{name}.safetensors")
    z_val = _eager_logits(loaded.model, splits.val.points)
    expected = fit_temperature(z_val, splits.val.labels.numpy())
    stored = loaded.metadata["extra"]["calibration"]
    assert stored["temperature"] == pytest.approx(expected, rel=1e-3)
    assert stored["fitted_on"] == f"validation split ({len(splits.val)} shapes)"
    report = json.loads((tiny_run / "report.json").read_text())
    key = "temperature" if name == "best" else "last_temperature"
    assert report["calibration"][key] == stored["temperature"]


def test_classifier_probabilities_are_softmax_of_logits_over_t(
    tiny_run, splits, tmp_path
):
    path = tiny_run / "checkpoints" / "best.safetensors"
    clf = Classifier.from_checkpoint(path, device="cpu")
    loaded = load_model_checkpoint(path)
    t = loaded.metadata["extra"]["calibration"]["temperature"]
    assert clf.temperature == t and abs(t - 1.0) > 1e-3
    clouds = splits.test.points[:5]
    probs = clf.predict_proba_preprocessed(list(clouds.numpy()))
    z = _eager_logits(loaded.model, clouds)
    by_hand = np.exp(z / t) / np.exp(z / t).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probs, by_hand, atol=1e-5)
    # a checkpoint written without a temperature keeps the plain softmax
    meta = loaded.metadata
    extra = {k: v for k, v in meta["extra"].items() if k != "calibration"}
    old = tmp_path / "old.safetensors"
    save_model_checkpoint(
        old, loaded.model, model_name=meta["model"]["name"],
        model_kwargs=meta["model"]["kwargs"], class_names=meta["class_names"],
        preprocessing=meta["preprocessing"], extra=extra,
    )  # fmt: skip
    plain = Classifier.from_checkpoint(old, device="cpu")
    assert plain.temperature == 1.0
    expected = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(
        plain.predict_proba_preprocessed(list(clouds.numpy())), expected, atol=1e-5
    )
    with pytest.raises(ValueError, match="temperature must be positive"):
        Classifier(loaded.model, meta["class_names"], temperature=0.0)
