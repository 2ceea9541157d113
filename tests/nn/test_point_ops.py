"""Point ops against naive pure-Python loop references, over a grid of sizes."""

from __future__ import annotations

import pytest
import torch

from pointnet1x1.nn import (
    KNNResult,
    ball_query,
    farthest_point_sample,
    gather_points,
    group_points,
    knn,
    three_nn_interpolate,
)

SIZES = [(1, 5, 1), (2, 17, 4), (3, 64, 16), (2, 130, 33)]  # (B, N, S)


def _d2(p, q):
    return sum((float(a) - float(b)) ** 2 for a, b in zip(p, q, strict=True))


def _naive_fps(xyz, num_samples, start):
    out = []
    for cloud in xyz:
        n = len(cloud)
        chosen = [start]
        min_d = [float("inf")] * n
        while len(chosen) < num_samples:
            c = cloud[chosen[-1]]
            for j in range(n):
                min_d[j] = min(min_d[j], _d2(cloud[j], c))
            best = max(range(n), key=lambda j: (min_d[j], -j))  # first max
            chosen.append(best)
        out.append(chosen)
    return out


def _naive_ball_query(xyz, centroids, radius, k):
    out = []
    for cloud, cents in zip(xyz, centroids, strict=True):
        rows = []
        for c in cents:
            d = [_d2(p, c) for p in cloud]
            found = [j for j in range(len(cloud)) if d[j] < radius * radius][:k]
            if not found:
                found = [min(range(len(cloud)), key=lambda j: d[j])]
            rows.append(found + [found[0]] * (k - len(found)))
        out.append(rows)
    return out


def _naive_knn(query, points, k):
    dists, idx = [], []
    for q_cloud, p_cloud in zip(query, points, strict=True):
        dr, ir = [], []
        for q in q_cloud:
            d = sorted((_d2(p, q), j) for j, p in enumerate(p_cloud))[:k]
            dr.append([a for a, _ in d])
            ir.append([j for _, j in d])
        dists.append(dr)
        idx.append(ir)
    return dists, idx


@pytest.mark.parametrize(("b", "n", "s"), SIZES)
def test_fps_matches_naive(b, n, s):
    xyz = torch.rand(b, n, 3, generator=torch.Generator().manual_seed(n))
    for start in (0, n - 1):
        idx = farthest_point_sample(xyz, s, start_index=start)
        assert idx.shape == (b, s) and idx.dtype == torch.long
        assert idx.tolist() == _naive_fps(xyz.double().tolist(), s, start)


def test_fps_deterministic_distinct_and_random_start():
    xyz = torch.randn(2, 200, 3, generator=torch.Generator().manual_seed(0))
    a = farthest_point_sample(xyz, 50, start_index=7)
    b = farthest_point_sample(xyz.clone(), 50, start_index=7)
    assert torch.equal(a, b)
    assert all(len(set(row)) == 50 for row in a.tolist())  # no repeats
    r1 = farthest_point_sample(
        xyz, 10, start_index=None, generator=torch.Generator().manual_seed(3)
    )
    r2 = farthest_point_sample(
        xyz, 10, start_index=None, generator=torch.Generator().manual_seed(3)
    )
    assert torch.equal(r1, r2)
    # a random start is then farthest-point sampled from there
    for b in range(2):
        start = int(r1[b, 0])
        assert torch.equal(
            r1[b], farthest_point_sample(xyz[b : b + 1], 10, start_index=start)[0]
        )


def test_fps_covers_clusters():
    # four tight far-apart clusters: the first four picks hit all four
    centres = torch.tensor([[0.0, 0, 0], [10, 0, 0], [0, 10, 0], [0, 0, 10]])
    xyz = (centres.repeat_interleave(25, 0) + 0.01 * torch.randn(100, 3))[None]
    idx = farthest_point_sample(xyz, 4)[0]
    assert sorted((idx // 25).tolist()) == [0, 1, 2, 3]


@pytest.mark.parametrize(("b", "n", "s"), SIZES)
@pytest.mark.parametrize("k", [1, 4, 9])
def test_ball_query_matches_naive(b, n, s, k):
    g = torch.Generator().manual_seed(n * 10 + k)
    xyz = torch.rand(b, n, 3, generator=g)
    centroids = torch.cat([xyz[:, : s - 1], torch.full((b, 1, 3), 5.0)], 1)
    radius = 0.35
    idx = ball_query(xyz, centroids, radius, k)
    assert idx.shape == (b, s, k)
    ref = _naive_ball_query(
        xyz.double().tolist(), centroids.double().tolist(), radius, k
    )
    assert idx.tolist() == ref


@pytest.mark.parametrize(("b", "n", "s"), SIZES)
def test_knn_matches_naive(b, n, s):
    g = torch.Generator().manual_seed(n)
    points, query = torch.rand(b, n, 3, generator=g), torch.rand(b, s, 3, generator=g)
    k = min(5, n)
    result = knn(query, points, k)
    assert isinstance(result, KNNResult)
    ref_d, ref_i = _naive_knn(query.double().tolist(), points.double().tolist(), k)
    assert result.idx.tolist() == ref_i
    torch.testing.assert_close(result.dists, torch.tensor(ref_d), atol=1e-5, rtol=0)


def test_gather_and_group_points_and_gradient():
    x = torch.randn(2, 10, 4, requires_grad=True)
    idx = torch.tensor([[0, 3, 3], [9, 1, 0]])
    out = gather_points(x, idx)
    assert out.shape == (2, 3, 4)
    assert torch.equal(out[1, 0], x[1, 9])
    grouped = group_points(x, idx[:, :, None].expand(-1, -1, 2))
    assert grouped.shape == (2, 3, 2, 4)
    out.sum().backward()
    assert x.grad[0, 3].eq(2).all() and x.grad[0, 1].eq(0).all()  # picked twice/never
    with pytest.raises(ValueError, match="idx must have shape"):
        group_points(x, idx)


def _naive_interpolate(unknown, known, feats, eps=1e-8):
    b, c, _ = feats.shape
    out = torch.zeros(b, c, unknown.shape[1], dtype=feats.dtype)
    for bi in range(b):
        for i in range(unknown.shape[1]):
            d = ((known[bi] - unknown[bi, i]) ** 2).sum(-1)
            order = sorted(range(known.shape[1]), key=lambda j: float(d[j]))[:3]
            w = torch.stack([1.0 / (d[j] + eps) for j in order])
            w = w / w.sum()
            for wj, j in zip(w, order, strict=True):
                out[bi, :, i] = out[bi, :, i] + wj * feats[bi, :, j]
    return out


@pytest.mark.parametrize(("n", "m"), [(7, 1), (7, 2), (9, 3), (33, 12)])
def test_three_nn_interpolate_matches_naive_with_gradients(n, m):
    g = torch.Generator().manual_seed(n + m)
    unknown = torch.rand(2, n, 3, generator=g, dtype=torch.float64)
    known = torch.rand(2, m, 3, generator=g, dtype=torch.float64)
    feats = torch.randn(2, 5, m, generator=g, dtype=torch.float64, requires_grad=True)
    out = three_nn_interpolate(unknown, known, feats)
    ref = _naive_interpolate(unknown, known, feats)
    assert out.shape == (2, 5, n)
    torch.testing.assert_close(out, ref)
    w = torch.randn_like(out)
    (grad,) = torch.autograd.grad((out * w).sum(), feats)
    (ref_grad,) = torch.autograd.grad((ref * w).sum(), feats)
    torch.testing.assert_close(grad, ref_grad)


def test_three_nn_interpolate_reproduces_known_points_and_coord_gradcheck():
    g = torch.Generator().manual_seed(0)
    eye = torch.eye(3, dtype=torch.float64)
    known = torch.cat([eye, -eye])[None]  # six well-separated points
    feats = torch.randn(1, 2, 6, generator=g, dtype=torch.float64)
    out = three_nn_interpolate(known, known, feats)
    torch.testing.assert_close(out, feats, atol=1e-6, rtol=0)
    unknown = torch.rand(1, 4, 3, generator=g, dtype=torch.float64) * 0.5
    unknown.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda u, f: three_nn_interpolate(u, known, f),
        (unknown, feats.clone().requires_grad_()),
    )


def test_bad_arguments_name_the_value():
    xyz = torch.rand(2, 10, 3)
    with pytest.raises(ValueError, match=r"\(B, N, 3\).*\(2, 3, 10\)"):
        farthest_point_sample(xyz.transpose(1, 2), 4)
    with pytest.raises(ValueError, match=r"num_samples must be in \[1, 10\].*got 11"):
        farthest_point_sample(xyz, 11)
    with pytest.raises(ValueError, match="start_index must be in"):
        farthest_point_sample(xyz, 3, start_index=10)
    with pytest.raises(ValueError, match="radius must be positive, got 0"):
        ball_query(xyz, xyz, 0, 4)
    with pytest.raises(ValueError, match="same batch size"):
        knn(xyz[:1], xyz, 2)
    with pytest.raises(ValueError, match="k must be in"):
        knn(xyz, xyz, 11)
    with pytest.raises(ValueError, match="known_features must have shape"):
        three_nn_interpolate(xyz, xyz, torch.rand(2, 10, 4))
