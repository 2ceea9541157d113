"""Temperature scaling and the expected calibration error, against derivations by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pointnet1x1.engine.calibration import (
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
)


def test_ece_by_hand():
    # confidences 0.9, 0.75, 0.7, 0.55; predictions 0, 1, 0, 1; right, wrong, right, right
    p = np.array([[0.9, 0.1], [0.25, 0.75], [0.7, 0.3], [0.45, 0.55]])
    y = np.array([0, 0, 0, 1])
    # 5 bins: (0.8, 1] holds 0.9 (acc 1), (0.6, 0.8] holds 0.75 and 0.7 (acc 1/2,
    # conf 0.725), (0.4, 0.6] holds 0.55 (acc 1)
    by_hand = 1 / 4 * 0.1 + 2 / 4 * 0.225 + 1 / 4 * 0.45
    assert expected_calibration_error(p, y, bins=5) == pytest.approx(by_hand)
    # one bin: |accuracy - mean confidence| of the whole set
    assert expected_calibration_error(p, y, bins=1) == pytest.approx(
        abs(3 / 4 - (0.9 + 0.75 + 0.7 + 0.55) / 4)
    )
    # a confidence on an edge belongs to the bin below it: (0, 0.5] with 2 bins
    edge = np.array([[0.5, 0.5], [0.2, 0.8]])
    assert expected_calibration_error(edge, np.array([0, 1]), bins=2) == pytest.approx(
        1 / 2 * abs(1 - 0.5) + 1 / 2 * abs(1 - 0.8)
    )
    # a perfectly calibrated toy set: 10 samples at 0.7, 7 of them right
    p7 = np.tile([0.7, 0.3], (10, 1))
    y7 = np.array([0] * 7 + [1] * 3)
    assert expected_calibration_error(p7, y7) == pytest.approx(0.0, abs=1e-12)


def test_ece_loop_reference_on_random_data():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(500, 7)) * 3
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = rng.integers(0, 7, 500)
    bins = 10
    total = 0.0
    for m in range(bins):  # the definition, one bin at a time
        lo, hi = m / bins, (m + 1) / bins
        inside = [i for i in range(500) if lo < p[i].max() <= hi]
        if inside:
            acc = np.mean([p[i].argmax() == y[i] for i in inside])
            conf = np.mean([p[i].max() for i in inside])
            total += len(inside) / 500 * abs(acc - conf)
    assert expected_calibration_error(p, y, bins=bins) == pytest.approx(total)
    assert expected_calibration_error(
        torch.from_numpy(p), torch.from_numpy(y), bins
    ) == (pytest.approx(total))


def _calibrated_logits(rng, samples=20000, classes=5):
    """Logits whose softmax is the true label distribution (calibrated at T = 1)."""
    z = rng.normal(size=(samples, classes)) * 2.0
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    labels = (p.cumsum(1) < rng.random((samples, 1))).sum(1)
    return z, np.minimum(labels, classes - 1)


@pytest.mark.parametrize("factor", [0.5, 3.0])
def test_temperature_recovers_a_known_factor(factor):
    z, y = _calibrated_logits(np.random.default_rng(1))
    scaled = z * factor  # over-confident by 3 (or under-confident by 2)
    t = fit_temperature(scaled, y)
    assert t == pytest.approx(factor, rel=0.05)
    # an independent check: a brute-force grid of the NLL has its minimum there
    grid = np.exp(np.linspace(np.log(0.1), np.log(10), 801))
    nll = [negative_log_likelihood(scaled, y, g) for g in grid]
    best = grid[int(np.argmin(nll))]
    assert t == pytest.approx(best, rel=0.01)
    assert negative_log_likelihood(scaled, y, t) <= negative_log_likelihood(scaled, y)
    assert negative_log_likelihood(scaled, y, t) <= min(nll) + 1e-9
    # dividing by the fitted T lowers the calibration error of over-confident logits
    if factor > 1:

        def softmax(a):
            e = np.exp(a - a.max(1, keepdims=True))
            return e / e.sum(1, keepdims=True)

        before = expected_calibration_error(softmax(scaled), y)
        after = expected_calibration_error(softmax(scaled / t), y)
        assert after < before / 3


def test_temperature_is_deterministic_and_takes_tensors():
    z, y = _calibrated_logits(np.random.default_rng(2), 2000, 4)
    z = z * 2
    t = fit_temperature(z, y)
    assert fit_temperature(z, y) == t
    assert fit_temperature(torch.from_numpy(z).float(), torch.from_numpy(y)) == (
        pytest.approx(t, rel=1e-5)
    )


def test_temperature_bounds():
    # every sample right by a wide margin: sharper is always better -> the lower bound
    z = np.array([[10.0, 0.0], [0.0, 10.0]])
    assert fit_temperature(z, np.array([0, 1])) == 0.01
    # labels opposite to the logits: flatter is always better -> the upper bound
    assert fit_temperature(z, np.array([1, 0]), max_temperature=50.0) == 50.0


def test_bad_inputs_say_what_is_wrong():
    z = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"labels of shape \(3,\)"):
        fit_temperature(z, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"integers in \[0, 3\]"):
        fit_temperature(z, np.array([0, 1, 4]))
    with pytest.raises(ValueError, match=r"shape \(S, K\)"):
        fit_temperature(np.zeros(3), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="NaN"):
        fit_temperature(np.full((3, 4), np.nan), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="summing to 1"):
        expected_calibration_error(np.ones((3, 4)), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="bins must be a positive integer"):
        expected_calibration_error(np.full((3, 4), 0.25), np.array([0, 1, 2]), bins=0)
    with pytest.raises(ValueError, match="temperature must be positive"):
        negative_log_likelihood(z, np.array([0, 1, 2]), 0.0)
