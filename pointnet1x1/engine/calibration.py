"""Confidence that means something: temperature scaling and the calibration error.

A classifier's softmax is *calibrated* when, among the predictions it makes with
probability ``p``, a fraction ``p`` is right. Deep networks are usually
over-confident; temperature scaling (Guo et al., "On Calibration of Modern Neural
Networks", ICML 2017, https://arxiv.org/abs/1706.04599) divides the logits by one
scalar ``T`` fitted on held-out data, which keeps every argmax (so the accuracy)
and fixes most of the over-confidence.

- :func:`fit_temperature`: the ``T`` that minimises the negative log-likelihood of
  validation logits. With ``beta = 1 / T`` the NLL is
  ``mean(logsumexp(beta * z) - beta * z_y)``, convex in ``beta`` (a log-sum-exp of
  linear functions minus a linear one), so its derivative
  ``mean(E_softmax(beta z)[z] - z_y)`` increases with ``beta`` and one bisection
  on its sign finds the minimum: deterministic, no learning rate, no start value.
- :func:`expected_calibration_error`: the standard equal-width binned ECE,
  ``sum_m |B_m| / n * |acc(B_m) - conf(B_m)|`` over bins ``(m/M, (m+1)/M]`` of the
  top probability.

Both take numpy arrays or torch tensors (moved to the CPU) and import no torch.

Shape:
    logits ``(S, K)`` and labels ``(S,)``; probabilities ``(S, K)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "MAX_TEMPERATURE",
    "MIN_TEMPERATURE",
    "expected_calibration_error",
    "fit_temperature",
    "negative_log_likelihood",
]

MIN_TEMPERATURE = 0.01  # T is searched in [MIN_TEMPERATURE, MAX_TEMPERATURE]
MAX_TEMPERATURE = 100.0
_BISECTION_STEPS = 100  # halves log(beta)'s interval of width 9.2 to below 1e-29


def _as_numpy(values: Any, name: str) -> np.ndarray:
    if hasattr(values, "detach"):  # a torch tensor, without importing torch
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def _check(logits: Any, labels: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    z = _as_numpy(logits, what).astype(np.float64)
    y = _as_numpy(labels, "labels")
    if z.ndim != 2 or z.shape[0] == 0 or z.shape[1] < 2:
        raise ValueError(
            f"expected {what} of shape (S, K) with S >= 1 and K >= 2, got {z.shape}"
        )
    if y.shape != (z.shape[0],):
        raise ValueError(
            f"expected labels of shape ({z.shape[0]},) for {what} of shape "
            f"{z.shape}, got {y.shape}"
        )
    if y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= z.shape[1]:
        raise ValueError(
            f"labels must be integers in [0, {z.shape[1] - 1}], got dtype {y.dtype} "
            f"and range [{y.min()}, {y.max()}]"
        )
    if not np.isfinite(z).all():
        raise ValueError(f"{what} hold NaN or infinite values")
    return z, y.astype(np.int64)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def negative_log_likelihood(
    logits: Any, labels: Any, temperature: float = 1.0
) -> float:
    """Mean ``-log softmax(logits / temperature)[label]`` over the samples."""
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    z, y = _check(logits, labels, "logits")
    log_p = _log_softmax(z / temperature)
    return float(-log_p[np.arange(len(y)), y].mean())


def _nll_slope(z: np.ndarray, y: np.ndarray, beta: float) -> float:
    """d NLL / d beta at ``beta = 1 / T``: ``mean(E_p[z] - z_y)``."""
    p = np.exp(_log_softmax(beta * z))
    return float(((p * z).sum(axis=1) - z[np.arange(len(y)), y]).mean())


def fit_temperature(
    logits: Any,
    labels: Any,
    *,
    min_temperature: float = MIN_TEMPERATURE,
    max_temperature: float = MAX_TEMPERATURE,
) -> float:
    """The temperature ``T`` minimising the NLL of ``softmax(logits / T)``.

    Args:
        logits: Array of shape ``(S, K)`` giving held-out (validation) logits.
        labels: Integer array of shape ``(S,)`` giving their true classes.
        min_temperature: Smallest ``T`` considered; returned when the data ask for
            sharper probabilities still (e.g. every sample right by a wide margin).
        max_temperature: Largest ``T`` considered (e.g. labels unrelated to the
            logits push ``T`` to infinity, the uniform distribution).

    Returns:
        ``T`` in ``[min_temperature, max_temperature]``; calibrated probabilities
        are ``softmax(logits / T)``. The same inputs give the same ``T``.

    Raises:
        ValueError: Bad shapes, labels out of range, non-finite logits or bounds.
    """
    if not 0 < min_temperature < max_temperature:
        raise ValueError(
            "expected 0 < min_temperature < max_temperature, got "
            f"{min_temperature} and {max_temperature}"
        )
    z, y = _check(logits, labels, "logits")
    # bisection on log(beta): the slope increases with beta (the NLL is convex)
    lo, hi = np.log(1.0 / max_temperature), np.log(1.0 / min_temperature)
    if _nll_slope(z, y, float(np.exp(lo))) >= 0:
        return float(max_temperature)
    if _nll_slope(z, y, float(np.exp(hi))) <= 0:
        return float(min_temperature)
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        if _nll_slope(z, y, float(np.exp(mid))) > 0:
            hi = mid
        else:
            lo = mid
        if hi - lo < 1e-12:
            break
    return float(1.0 / np.exp(0.5 * (lo + hi)))


def expected_calibration_error(
    probabilities: Any, labels: Any, bins: int = 15
) -> float:
    """Equal-width binned expected calibration error of the top probability.

    Each sample falls in the bin ``(m / bins, (m + 1) / bins]`` of its top
    probability (its confidence); the ECE is the sample-weighted mean over the
    bins of ``|accuracy - mean confidence|`` (Guo et al. 2017, eq. 3).

    Args:
        probabilities: Array of shape ``(S, K)`` giving class probabilities (rows
            summing to 1, e.g. ``softmax(logits / T)``).
        labels: Integer array of shape ``(S,)`` giving the true classes.
        bins: Number of equal-width bins over ``[0, 1]`` (15 as in the paper).

    Returns:
        The ECE, a fraction in ``[0, 1]``.
    """
    if not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    p, y = _check(probabilities, labels, "probabilities")
    if (p < 0).any() or not np.allclose(p.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError(
            "probabilities must be non-negative rows summing to 1 (apply softmax "
            "to logits first)"
        )
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    # bin m holds (edges[m], edges[m + 1]] (the edges of Guo et al.'s code, so a
    # confidence on an edge lands where theirs does); 0 exactly joins bin 0
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    count = np.bincount(index, minlength=bins)
    gap = np.bincount(index, weights=correct - confidence, minlength=bins)
    # |sum(acc - conf)| / n per bin == |B_m| / n * |acc(B_m) - conf(B_m)|
    return float(np.abs(gap[count > 0]).sum() / len(y))
