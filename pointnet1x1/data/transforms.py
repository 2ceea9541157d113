"""Per-sample point-cloud transforms (numpy, points-major ``(N, 3+F)``).

Each transform is a small class with a ``__repr__``; :class:`Compose` chains them.
A transform is called as ``t(points, rng=None)``: ``points`` is an array of shape
``(N, 3 + F)`` whose first three columns are ``x, y, z`` and, when ``F >= 3``, the
next three are unit normals ``nx, ny, nz`` (rotations turn them with the points;
scales and shifts leave them alone). ``rng`` is a :class:`numpy.random.Generator`;
without one, each transform uses its own (seeded with ``seed``, or from OS entropy).

Axis convention: ``z`` is up (:data:`~pointnet1x1.io.axes.MODEL_UP_AXIS`, what
every dataset returns); :class:`RandomRotateUp` turns about it. Rotation
matrices come from :mod:`pointnet1x1.io.axes`, the one place they are written.

For augmentation of whole batches on the device (CPU or GPU), see
:func:`pointnet1x1.data.batch.augment_batch`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from pointnet1x1.io.axes import (
    MODEL_UP_AXIS,
    check_up_axis,
    rotate_points,
    rotation_about_axis,
)

__all__ = [
    "Compose",
    "FarthestPointSample",
    "Jitter",
    "Normalize",
    "PointDropout",
    "RandomRotateSO3",
    "RandomRotateUp",
    "RandomSample",
    "RandomScale",
    "RandomShift",
    "Transform",
    "farthest_point_sample",
    "normalize_points",
    "random_rotation_matrix",
    "sample_points",
]

RngLike = np.random.Generator | int | None


def _as_rng(rng: RngLike) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def _check_points(points: np.ndarray) -> np.ndarray:
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] < 3:
        raise ValueError(f"expected points of shape (N, 3+F), got {points.shape}")
    return points


def normalize_points(points: np.ndarray) -> np.ndarray:
    """Centre ``xyz`` at the centroid and scale the farthest point to radius 1.

    Args:
        points: Array of shape (N, 3+F); extra columns (normals) are kept as is.

    Returns:
        A new float32 array of the same shape.
    """
    points = _check_points(points)
    out = np.array(points, dtype=np.float32, copy=True)
    xyz = out[:, :3]
    xyz -= xyz.mean(axis=0, dtype=np.float64).astype(np.float32)
    radius = float(np.sqrt(np.einsum("ij,ij->i", xyz, xyz).max(initial=0.0)))
    if radius > 0:
        xyz *= np.float32(1.0 / radius)
    return out


def farthest_point_sample(
    xyz: np.ndarray, num_points: int, rng: RngLike = None
) -> np.ndarray:
    """Indices of ``num_points`` points chosen by iterative farthest point sampling.

    Args:
        xyz: Array of shape (N, 3+F) giving the points (only ``xyz`` is used).
        num_points: How many indices to return; at most N.
        rng: Chooses the first point (index 0 when None).

    Returns:
        int64 array of shape (num_points,) of distinct indices.
    """
    xyz = _check_points(xyz)[:, :3].astype(np.float64)
    n = xyz.shape[0]
    if not 0 < num_points <= n:
        raise ValueError(f"num_points must be in [1, {n}] for FPS, got {num_points}")
    first = 0 if rng is None else int(_as_rng(rng).integers(n))
    idx = np.empty(num_points, dtype=np.int64)
    idx[0] = first
    dist = ((xyz - xyz[first]) ** 2).sum(axis=1)
    for i in range(1, num_points):
        idx[i] = int(dist.argmax())
        dist = np.minimum(dist, ((xyz - xyz[idx[i]]) ** 2).sum(axis=1))
    return idx


def sample_points(
    points: np.ndarray, num_points: int, rng: RngLike = None, method: str = "random"
) -> np.ndarray:
    """Sample ``num_points`` rows of ``points`` (random subset or farthest points).

    With fewer than ``num_points`` rows, ``"random"`` draws with replacement (after
    taking every row once); ``"fps"`` requires enough rows.

    Args:
        points: Array of shape (N, 3+F).
        num_points: Number of rows to return.
        rng: Generator or seed.
        method: ``"random"`` or ``"fps"``.

    Returns:
        Array of shape (num_points, 3+F).
    """
    points = _check_points(points)
    if num_points <= 0:
        raise ValueError(f"num_points must be positive, got {num_points}")
    n = points.shape[0]
    if method == "fps":
        return points[farthest_point_sample(points, num_points, rng)]
    if method != "random":
        raise ValueError(f"method must be 'random' or 'fps', got {method!r}")
    gen = _as_rng(rng)
    if n >= num_points:
        return points[gen.choice(n, num_points, replace=False)]
    if n == 0:
        raise ValueError("cannot sample points from an empty cloud (N = 0)")
    extra = gen.integers(n, size=num_points - n)
    return points[np.concatenate([gen.permutation(n), extra])]


def random_rotation_matrix(rng: RngLike = None, axis: str | None = None) -> np.ndarray:
    """A random rotation: uniform in SO(3) (``axis=None``) or about one axis.

    Returns:
        float64 array of shape (3, 3); apply as ``xyz @ R.T``.
    """
    gen = _as_rng(rng)
    if axis is None:
        # QR of a Gaussian matrix with a sign fix is Haar-uniform on O(3).
        q, r = np.linalg.qr(gen.standard_normal((3, 3)))
        q *= np.sign(np.diag(r))
        if np.linalg.det(q) < 0:
            q[:, 0] = -q[:, 0]
        return q
    return rotation_about_axis(
        gen.uniform(0.0, 2.0 * np.pi), check_up_axis(axis, "axis")
    )


class Transform:
    """Base class: ``__call__(points, rng=None)`` returns transformed points."""

    seed: int | None = None
    _rng: np.random.Generator | None = None

    def _gen(self, rng: np.random.Generator | None) -> np.random.Generator:
        if rng is not None:
            return rng
        if self._rng is None:
            self._rng = np.random.default_rng(self.seed)
        return self._rng

    def __call__(
        self, points: np.ndarray, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._repr_args().items())
        return f"{type(self).__name__}({args})"

    def _repr_args(self) -> dict[str, object]:
        return {}


class Compose(Transform):
    """Apply ``transforms`` in order, passing the same ``rng`` to each."""

    def __init__(self, transforms: Sequence[Callable[..., np.ndarray]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, points, rng=None):
        for t in self.transforms:
            points = t(points, rng) if isinstance(t, Transform) else t(points)
        return points

    def __repr__(self) -> str:
        inner = "".join(f"\n  {t!r}," for t in self.transforms)
        return f"Compose([{inner}\n])" if inner else "Compose([])"


class Normalize(Transform):
    """Centre at the centroid, farthest point at radius 1 (see :func:`normalize_points`)."""

    def __call__(self, points, rng=None):
        return normalize_points(points)


class RandomSample(Transform):
    """Random subset of ``num_points`` rows (with replacement only when too few)."""

    def __init__(self, num_points: int, seed: int | None = None) -> None:
        if num_points <= 0:
            raise ValueError(f"num_points must be positive, got {num_points}")
        self.num_points, self.seed = num_points, seed

    def __call__(self, points, rng=None):
        return sample_points(points, self.num_points, self._gen(rng), "random")

    def _repr_args(self):
        return {"num_points": self.num_points}


class FarthestPointSample(Transform):
    """``num_points`` rows by farthest point sampling from a random first point."""

    def __init__(self, num_points: int, seed: int | None = None) -> None:
        if num_points <= 0:
            raise ValueError(f"num_points must be positive, got {num_points}")
        self.num_points, self.seed = num_points, seed

    def __call__(self, points, rng=None):
        return sample_points(points, self.num_points, self._gen(rng), "fps")

    def _repr_args(self):
        return {"num_points": self.num_points}


class RandomScale(Transform):
    """Scale ``xyz`` by one factor drawn uniformly from ``[low, high]``."""

    def __init__(self, low: float = 0.8, high: float = 1.25, seed: int | None = None):
        if not 0 < low <= high:
            raise ValueError(f"need 0 < low <= high, got low={low}, high={high}")
        self.low, self.high, self.seed = low, high, seed

    def __call__(self, points, rng=None):
        out = np.array(_check_points(points), dtype=np.float32, copy=True)
        out[:, :3] *= np.float32(self._gen(rng).uniform(self.low, self.high))
        return out

    def _repr_args(self):
        return {"low": self.low, "high": self.high}


class RandomShift(Transform):
    """Translate ``xyz`` by a vector drawn uniformly from ``[-shift, shift]^3``."""

    def __init__(self, shift: float = 0.1, seed: int | None = None) -> None:
        if shift < 0:
            raise ValueError(f"shift must be >= 0, got {shift}")
        self.shift, self.seed = shift, seed

    def __call__(self, points, rng=None):
        out = np.array(_check_points(points), dtype=np.float32, copy=True)
        out[:, :3] += (
            self._gen(rng).uniform(-self.shift, self.shift, 3).astype(np.float32)
        )
        return out

    def _repr_args(self):
        return {"shift": self.shift}


class Jitter(Transform):
    """Add Gaussian noise ``N(0, sigma^2)`` to ``xyz``, clipped to ``[-clip, clip]``."""

    def __init__(
        self, sigma: float = 0.01, clip: float = 0.05, seed: int | None = None
    ) -> None:
        if sigma < 0 or clip < 0:
            raise ValueError(f"sigma and clip must be >= 0, got {sigma}, {clip}")
        self.sigma, self.clip, self.seed = sigma, clip, seed

    def __call__(self, points, rng=None):
        out = np.array(_check_points(points), dtype=np.float32, copy=True)
        noise = self._gen(rng).normal(0.0, self.sigma, (out.shape[0], 3))
        out[:, :3] += np.clip(noise, -self.clip, self.clip).astype(np.float32)
        return out

    def _repr_args(self):
        return {"sigma": self.sigma, "clip": self.clip}


def _rotate(points: np.ndarray, rot: np.ndarray) -> np.ndarray:
    out = np.asarray(_check_points(points), dtype=np.float32)
    return rotate_points(out, rot.astype(np.float32))


class RandomRotateUp(Transform):
    """Rotate by a uniform angle about the up axis (``z``); normals turn too."""

    def __init__(self, axis: str = MODEL_UP_AXIS, seed: int | None = None) -> None:
        self.axis, self.seed = check_up_axis(axis, "axis"), seed

    def __call__(self, points, rng=None):
        return _rotate(points, random_rotation_matrix(self._gen(rng), self.axis))

    def _repr_args(self):
        return {"axis": self.axis}


class RandomRotateSO3(Transform):
    """Rotate by a rotation drawn uniformly from SO(3); normals turn too."""

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed

    def __call__(self, points, rng=None):
        return _rotate(points, random_rotation_matrix(self._gen(rng), None))


class PointDropout(Transform):
    """PointNet++ dropout: replace a random fraction of points by the first point.

    The fraction is drawn uniformly from ``[0, max_ratio]`` per call, so the number
    of points (and the max-pooled features of a PointNet) stay well defined.
    """

    def __init__(self, max_ratio: float = 0.875, seed: int | None = None) -> None:
        if not 0 <= max_ratio < 1:
            raise ValueError(f"max_ratio must be in [0, 1), got {max_ratio}")
        self.max_ratio, self.seed = max_ratio, seed

    def __call__(self, points, rng=None):
        gen = self._gen(rng)
        out = np.array(_check_points(points), copy=True)
        ratio = gen.uniform(0.0, self.max_ratio)
        drop = gen.random(out.shape[0]) <= ratio
        out[drop] = out[0]
        return out

    def _repr_args(self):
        return {"max_ratio": self.max_ratio}
