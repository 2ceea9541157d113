import numpy as np
import pytest
import torch

from pointnet1x1.engine.data import stratified_split
from pointnet1x1.engine.metrics import (
    classification_metrics,
    confusion_matrix,
    format_table,
)


def test_metrics_over_the_whole_set_by_hand():
    target = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2, 2, 2])
    pred = torch.tensor([0, 0, 0, 1, 1, 0, 2, 2, 2, 2])
    conf = confusion_matrix(target, pred, 4)
    assert conf.tolist() == [[3, 1, 0, 0], [1, 1, 0, 0], [0, 0, 4, 0], [0, 0, 0, 0]]
    m = classification_metrics(conf)
    assert m.oa == pytest.approx(8 / 10)
    assert m.per_class == [0.75, 0.5, 1.0, None]  # class 3 absent
    assert m.macc == pytest.approx((0.75 + 0.5 + 1.0) / 3)  # not over absent classes
    # per-batch averaging would give another number: the metric must not depend on batching
    halves = confusion_matrix(target[:5], pred[:5], 4) + confusion_matrix(
        target[5:], pred[5:], 4
    )
    assert torch.equal(halves, conf)
    table = format_table(m, ["a", "b", "c", "d"])
    assert "OA" in table and "80.00%" in table and "n/a" in table
    d = m.to_dict(["a", "b", "c", "d"])
    assert d["per_class"]["b"] == 0.5 and d["num_samples"] == 10


def test_stratified_split_is_seeded_disjoint_and_stratified():
    labels = np.repeat(np.arange(4), [50, 20, 10, 3])
    tr, va = stratified_split(labels, 0.2, seed=3)
    tr2, va2 = stratified_split(labels, 0.2, seed=3)
    assert np.array_equal(va, va2) and np.array_equal(tr, tr2)
    assert not set(tr) & set(va) and len(tr) + len(va) == len(labels)
    assert np.bincount(labels[va]).tolist() == [
        10,
        4,
        2,
        1,
    ]  # every class, in proportion
    _, va3 = stratified_split(labels, 0.2, seed=4)
    assert not np.array_equal(va, va3)
