"""Point operations in plain torch: sampling, grouping, neighbours, interpolation.

Batched, vectorised, autograd-friendly where it applies, on CPU and GPU, with no
compiled extension (PyTorch Geometric's ``fps`` / ``radius`` / ``knn`` need
``pyg-lib`` or ``torch-cluster``; PointNet++ ships CUDA kernels).

Layout: these functions take **coordinates points-major**, ``(B, N, 3)``, like
PyTorch3D's ``knn_points`` (the three numbers of a point are what a distance is
computed from). Models keep features channels-first ``(B, C, N)`` and transpose
the xyz rows once at their boundary. :func:`gather_points` and
:func:`group_points` accept any trailing dimensions ``(B, N, *)``.

Distances are squared Euclidean throughout. Neighbours are chosen from
``|a|^2 + |b|^2 - 2 a.b`` (a matrix product, clamped at 0); the distances returned
by :func:`knn` and used as interpolation weights are then recomputed exactly as
``|a - b|^2`` for the chosen pairs. :func:`farthest_point_sample` computes
``|a - b|^2`` directly (one centroid at a time, so it is exact and cheap).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

__all__ = [
    "KNNResult",
    "ball_query",
    "farthest_point_sample",
    "gather_points",
    "group_points",
    "knn",
    "square_distance",
    "three_nn_interpolate",
]


class KNNResult(NamedTuple):
    """Result of :func:`knn`.

    Attributes:
        dists: Tensor of shape ``(B, S, k)`` giving squared distances, ascending.
        idx: Long tensor of shape ``(B, S, k)`` giving indices into ``points``.
    """

    dists: Tensor
    idx: Tensor


def _check_xyz(xyz: Tensor, name: str) -> None:
    if xyz.dim() != 3 or xyz.shape[-1] != 3:
        raise ValueError(
            f"{name} must be a tensor of shape (B, N, 3) (points-major xyz), "
            f"got {tuple(xyz.shape)}"
        )


def _check_pair(a: Tensor, b: Tensor, names: tuple[str, str]) -> None:
    _check_xyz(a, names[0])
    _check_xyz(b, names[1])
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same batch size, "
            f"got {a.shape[0]} and {b.shape[0]}"
        )


def square_distance(a: Tensor, b: Tensor) -> Tensor:
    """Squared Euclidean distances between every point of ``a`` and of ``b``.

    Args:
        a: Tensor of shape ``(B, S, D)``.
        b: Tensor of shape ``(B, N, D)``.

    Returns:
        Tensor of shape ``(B, S, N)``, clamped at 0 (the expansion
        ``|a|^2 + |b|^2 - 2 a.b`` can round slightly below).
    """
    d = (a * a).sum(-1, keepdim=True) + (b * b).sum(-1).unsqueeze(1)
    d = torch.baddbmm(d, a, b.transpose(1, 2), alpha=-2.0)  # (B, S, N)
    return d.clamp_min_(0.0) if not d.requires_grad else d.clamp_min(0.0)


def gather_points(points: Tensor, idx: Tensor) -> Tensor:
    """Pick points by index, per cloud of a batch.

    Args:
        points: Tensor of shape ``(B, N, *)`` giving the points (or features).
        idx: Long tensor of shape ``(B, S)`` (or ``(B, S, K)``, ...) of indices
            in ``[0, N)``.

    Returns:
        Tensor of shape ``(B, S, *)`` (or ``(B, S, K, *)``): ``out[b, s] =
        points[b, idx[b, s]]``. Differentiable with respect to ``points``.
    """
    if idx.shape[0] != points.shape[0]:
        raise ValueError(
            f"points and idx must have the same batch size, got "
            f"{tuple(points.shape)} and {tuple(idx.shape)}"
        )
    batch = torch.arange(points.shape[0], device=points.device)
    batch = batch.view(-1, *([1] * (idx.dim() - 1)))
    return points[batch, idx]


def group_points(points: Tensor, idx: Tensor) -> Tensor:
    """Gather the neighbourhoods given by :func:`ball_query` or :func:`knn`.

    Args:
        points: Tensor of shape ``(B, N, *)``.
        idx: Long tensor of shape ``(B, S, K)``.

    Returns:
        Tensor of shape ``(B, S, K, *)``.
    """
    if idx.dim() != 3:
        raise ValueError(f"idx must have shape (B, S, K), got {tuple(idx.shape)}")
    return gather_points(points, idx)


@torch.no_grad()
def farthest_point_sample(
    xyz: Tensor,
    num_samples: int,
    *,
    start_index: int | None = 0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Farthest point sampling: each new point is the farthest from those chosen.

    Vectorised over the batch; loops over the ``num_samples`` picks only. The
    distances are exact (``|p - c|^2`` per new centroid) and ties go to the lowest
    index, so the result is deterministic for a given start index.

    Args:
        xyz: Tensor of shape ``(B, N, 3)`` giving the point coordinates.
        num_samples: Number of points to pick, ``1 <= num_samples <= N``.
        start_index: Index of the first pick in every cloud (the authors' CUDA
            kernel starts at 0). ``None`` draws one start per cloud at random
            from ``generator``.
        generator: Random generator for ``start_index=None``.

    Returns:
        Long tensor of shape ``(B, num_samples)`` of indices into ``xyz``.
    """
    _check_xyz(xyz, "xyz")
    batch, num_points, _ = xyz.shape
    if not 1 <= num_samples <= num_points:
        raise ValueError(
            f"num_samples must be in [1, {num_points}] (the number of points), "
            f"got {num_samples}"
        )
    device = xyz.device
    if start_index is None:
        gen_device = generator.device if generator is not None else "cpu"
        farthest = torch.randint(
            num_points, (batch,), generator=generator, device=gen_device
        ).to(device)
    else:
        if not 0 <= start_index < num_points:
            raise ValueError(
                f"start_index must be in [0, {num_points}), got {start_index}"
            )
        farthest = torch.full((batch,), start_index, dtype=torch.long, device=device)
    out = torch.empty(batch, num_samples, dtype=torch.long, device=device)
    min_dist = torch.full(
        (batch, num_points), float("inf"), dtype=xyz.dtype, device=device
    )
    # (B, 3, N): each coordinate contiguous, so the per-pick work is three
    # contiguous passes rather than a strided reduction over the last dim.
    planes = xyz.transpose(1, 2).contiguous()
    for i in range(num_samples):
        out[:, i] = farthest
        centroid = planes.gather(2, farthest.view(batch, 1, 1).expand(-1, 3, 1))
        dist = (planes - centroid).square_().sum(1)  # (B, N)
        torch.minimum(min_dist, dist, out=min_dist)
        farthest = min_dist.argmax(-1)  # first maximum on ties
    return out


@torch.no_grad()
def ball_query(
    xyz: Tensor, centroids: Tensor, radius: float, num_neighbors: int
) -> Tensor:
    """Up to ``num_neighbors`` points within ``radius`` of each centroid.

    The PointNet++ convention: the neighbours are the first points (in index
    order) with squared distance ``< radius**2`` (strict, as the authors' CUDA
    kernel); when fewer are found the list is padded with the first one found.
    A centroid with no point in its ball gets its nearest point (the authors'
    kernels leave index 0 there; centroids sampled from ``xyz`` always find
    themselves).

    Args:
        xyz: Tensor of shape ``(B, N, 3)`` giving the points.
        centroids: Tensor of shape ``(B, S, 3)`` giving the ball centres.
        radius: Ball radius, ``> 0``.
        num_neighbors: ``K``, the number of indices per ball.

    Returns:
        Long tensor of shape ``(B, S, K)`` of indices into ``xyz``.
    """
    _check_pair(xyz, centroids, ("xyz", "centroids"))
    if radius <= 0:
        raise ValueError(f"radius must be positive, got {radius}")
    if num_neighbors < 1:
        raise ValueError(f"num_neighbors must be at least 1, got {num_neighbors}")
    num_points = xyz.shape[1]
    k = min(num_neighbors, num_points)
    dist = square_distance(centroids, xyz)  # (B, S, N)
    # Indices of the points inside, N elsewhere; the K smallest are the first K
    # found in index order (topk with small K beats a full sort of every row).
    index = torch.arange(num_points, dtype=torch.int32, device=xyz.device)
    index = torch.where(dist < radius * radius, index, num_points)
    found = index.topk(k, dim=-1, largest=False, sorted=True).values.long()
    first = found[..., :1]  # (B, S, 1)
    first = torch.where(first < num_points, first, dist.argmin(-1, keepdim=True))
    found = torch.where(found < num_points, found, first)
    if k < num_neighbors:  # fewer points than K: pad with the first one
        found = torch.cat([found, first.expand(-1, -1, num_neighbors - k)], -1)
    return found


def knn(query: Tensor, points: Tensor, k: int) -> KNNResult:
    """The ``k`` nearest points of every query point (squared distances).

    Args:
        query: Tensor of shape ``(B, S, 3)`` giving the query points.
        points: Tensor of shape ``(B, N, 3)`` giving the points searched.
        k: Number of neighbours, ``1 <= k <= N``.

    Returns:
        :class:`KNNResult` of ``dists`` ``(B, S, k)`` (ascending, computed as
        ``|q - p|^2`` for the chosen pairs, differentiable with respect to both
        inputs) and ``idx`` ``(B, S, k)``.
    """
    _check_pair(query, points, ("query", "points"))
    if not 1 <= k <= points.shape[1]:
        raise ValueError(
            f"k must be in [1, {points.shape[1]}] (the number of points), got {k}"
        )
    with torch.no_grad():
        idx = square_distance(query, points).topk(k, dim=-1, largest=False).indices
    # Exact |q - p|^2 of the chosen neighbours (the expansion used to choose them
    # loses digits for close pairs), differentiable, re-sorted ascending.
    dists = (group_points(points, idx) - query.unsqueeze(2)).square().sum(-1)
    dists, order = dists.sort(dim=-1)
    idx = idx.gather(-1, order)
    return KNNResult(dists, idx)


def three_nn_interpolate(
    unknown: Tensor, known: Tensor, known_features: Tensor, *, eps: float = 1e-8
) -> Tensor:
    """Inverse-distance weighted interpolation from the three nearest known points.

    PointNet++ feature propagation (paper eq. 2 with ``p = 2, k = 3``): each
    unknown point gets ``sum_i w_i f_i / sum_i w_i`` over its three nearest known
    points, ``w_i = 1 / (d_i^2 + eps)``. With fewer than three known points all
    of them are used (one known point is simply broadcast).

    Args:
        unknown: Tensor of shape ``(B, N, 3)`` giving where to interpolate.
        known: Tensor of shape ``(B, M, 3)`` giving where features are known.
        known_features: Tensor of shape ``(B, C, M)`` (channels-first, as the
            model's features) giving the features at ``known``.
        eps: Added to squared distances so a coincident point gets a finite weight.

    Returns:
        Tensor of shape ``(B, C, N)``, differentiable with respect to the features
        (and the coordinates).
    """
    _check_pair(unknown, known, ("unknown", "known"))
    if known_features.dim() != 3 or known_features.shape[::2] != (
        known.shape[0],
        known.shape[1],
    ):
        raise ValueError(
            f"known_features must have shape (B, C, M) = ({known.shape[0]}, C, "
            f"{known.shape[1]}), got {tuple(known_features.shape)}"
        )
    num_known = known.shape[1]
    if num_known == 1:
        return known_features.expand(-1, -1, unknown.shape[1])
    dists, idx = knn(unknown, known, min(3, num_known))  # (B, N, k)
    weight = 1.0 / (dists + eps)
    weight = weight / weight.sum(-1, keepdim=True)  # (B, N, k)
    neighbours = group_points(known_features.transpose(1, 2), idx)  # (B, N, k, C)
    out = (neighbours * weight.unsqueeze(-1)).sum(2)  # (B, N, C)
    return out.transpose(1, 2)
