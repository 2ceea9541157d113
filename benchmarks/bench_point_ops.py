"""Point ops: the plain-torch versions against naive references and ``fpsample``.

Run: ``.venv/bin/python benchmarks/bench_point_ops.py [--quick] [--threads N]``

Compares, at PointNet++ sizes (a batch of 1024-point clouds, 512 centroids):

- farthest point sampling: ours (batched torch, loop over picks) vs a per-cloud
  torch loop, the data module's numpy FPS, and ``fpsample`` (C++, per cloud;
  ``pip install fpsample``) whose indices are checked against ours;
- ball query: ours (cumsum + scatter) vs the sort-based version of the common
  PyTorch port (yanx27 ``query_ball_point``) and a per-centroid loop;
- kNN: ours (matmul distances + topk) vs ``torch.cdist`` + sort;
- three-NN interpolation: ours vs a per-point loop.

Prints milliseconds per call (median of repeats) and, for the references, how
many times the time of ours they take (at the same sizes).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from pointnet1x1.nn import (
    ball_query,
    farthest_point_sample,
    gather_points,
    knn,
    square_distance,
    three_nn_interpolate,
)


def _time(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def _row(name: str, ms: float, ours: float | None = None) -> None:
    """One line; with ``ours``, also how many times slower than ours this is."""
    speed = f"{ms / ours:8.1f}x ours" if ours is not None else ""
    print(f"  {name:44s} {ms:10.2f} ms {speed}")


def _fps_per_cloud(xyz: torch.Tensor, s: int) -> torch.Tensor:
    return torch.stack([farthest_point_sample(c[None], s)[0] for c in xyz])


def _ball_query_sort(xyz, new_xyz, radius, k):
    """yanx27's ``query_ball_point``: full sort of every row (strict < here)."""
    b, n, _ = xyz.shape
    s = new_xyz.shape[1]
    idx = torch.arange(n).view(1, 1, n).repeat(b, s, 1)
    d = square_distance(new_xyz, xyz)  # the same distances as ours
    idx[d >= radius**2] = n
    idx = idx.sort(dim=-1)[0][:, :, :k]
    first = idx[:, :, :1].expand(-1, -1, k)
    return torch.where(idx == n, first, idx)


def _ball_query_loop(xyz, new_xyz, radius, k):
    out = torch.empty(xyz.shape[0], new_xyz.shape[1], k, dtype=torch.long)
    for b in range(xyz.shape[0]):
        for s in range(new_xyz.shape[1]):
            d = ((xyz[b] - new_xyz[b, s]) ** 2).sum(-1)
            found = torch.nonzero(d < radius * radius).flatten()[:k]
            out[b, s] = torch.cat([found, found[:1].expand(k - len(found))])
    return out


def _knn_cdist(query, points, k):
    d = torch.cdist(query, points) ** 2
    return d.sort(dim=-1)


def _interpolate_loop(unknown, known, feats):
    out = torch.empty(feats.shape[0], feats.shape[1], unknown.shape[1])
    for b in range(unknown.shape[0]):
        for i in range(unknown.shape[1]):
            d = ((known[b] - unknown[b, i]) ** 2).sum(-1)
            dist, idx = d.topk(3, largest=False)
            w = 1.0 / (dist + 1e-8)
            out[b, :, i] = (feats[b][:, idx] * (w / w.sum())).sum(-1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = 3 if args.quick else 7
    torch.manual_seed(0)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}"
    )
    b, n, s, k = 16, 1024, 512, 32
    xyz = torch.rand(b, n, 3)
    xyz_np = xyz.numpy()

    print(f"\nfarthest point sampling: B={b}, N={n}, S={s}")
    ours = _time(lambda: farthest_point_sample(xyz, s), repeats)
    _row("pointnet1x1 farthest_point_sample (batched)", ours)
    _row(
        "same op, one cloud at a time",
        _time(lambda: _fps_per_cloud(xyz, s), repeats),
        ours,
    )
    try:
        from pointnet1x1.data.transforms import farthest_point_sample as np_fps
    except ImportError:
        pass
    else:
        t = _time(lambda: [np_fps(c, s) for c in xyz_np], repeats)
        _row("pointnet1x1.data numpy FPS, per cloud", t, ours)
    try:
        import fpsample
    except ImportError:
        print("  fpsample: not installed (pip install fpsample)")
    else:
        t = _time(
            lambda: [fpsample.fps_sampling(c, s, start_idx=0) for c in xyz_np], repeats
        )
        _row("fpsample.fps_sampling (C++), per cloud", t, ours)
        t = _time(
            lambda: [
                fpsample.bucket_fps_kdline_sampling(c, s, h=5, start_idx=0)
                for c in xyz_np
            ],
            repeats,
        )
        _row("fpsample.bucket_fps_kdline_sampling h=5", t, ours)
        ref = np.stack([fpsample.fps_sampling(c, s, start_idx=0) for c in xyz_np])
        same = (ref == farthest_point_sample(xyz, s).numpy()).all(axis=1).mean()
        print(
            f"  identical index sequences to fpsample.fps_sampling: {same:.0%} of clouds"
        )

    centroids = gather_points(xyz, farthest_point_sample(xyz, s))
    print(f"\nball query: B={b}, N={n}, S={s}, radius 0.2, K={k}")
    ours = _time(lambda: ball_query(xyz, centroids, 0.2, k), repeats)
    _row("pointnet1x1 ball_query (masked index + topk)", ours)
    same = ball_query(xyz, centroids, 0.2, k) == _ball_query_sort(
        xyz, centroids, 0.2, k
    )
    t = _time(lambda: _ball_query_sort(xyz, centroids, 0.2, k), repeats)
    _row("sort-based (yanx27 query_ball_point)", t, ours)
    print(f"  identical to the sort-based indices: {bool(same.all())}")
    small = (xyz[:2], centroids[:2, :64])
    t_small = _time(lambda: ball_query(*small, 0.2, k), repeats)
    _row("ours at B=2, S=64", t_small)
    _row(
        "per-centroid loop at B=2, S=64",
        _time(lambda: _ball_query_loop(*small, 0.2, k), 1),
        t_small,
    )

    print(f"\nkNN: B={b}, S={s} queries, N={n} points, k=16")
    ours = _time(lambda: knn(centroids, xyz, 16), repeats)
    _row("pointnet1x1 knn (matmul + topk, exact dists)", ours)
    t = _time(lambda: _knn_cdist(centroids, xyz, 16), repeats)
    _row("torch.cdist + full sort", t, ours)

    print(f"\nthree-NN interpolation: B={b}, {n} unknown from {s} known, C=128")
    feats = torch.randn(b, 128, s)
    ours = _time(lambda: three_nn_interpolate(xyz, centroids, feats), repeats)
    _row("pointnet1x1 three_nn_interpolate", ours)
    one = (xyz[:1, :128], centroids[:1], feats[:1])
    t_one = _time(lambda: three_nn_interpolate(*one), repeats)
    _row("ours at B=1, 128 unknown", t_one)
    _row(
        "per-point loop at B=1, 128 unknown",
        _time(lambda: _interpolate_loop(*one), 1),
        t_one,
    )
    torch.testing.assert_close(three_nn_interpolate(*one), _interpolate_loop(*one))

    from pointnet1x1.models import create_model

    x = torch.randn(8, 3, 1024)
    print("\nPointNet++ built on these ops, B=8, N=1024, 40 classes")
    for name in ("pointnet2_ssg", "pointnet2_msg"):
        model = create_model(name).eval()
        with torch.no_grad():
            _row(
                f"{name} forward (eval)",
                _time(lambda m=model: m(x), max(1, repeats // 2)),
            )
        model.train()
        opt = torch.optim.Adam(model.parameters())

        def step(m=model, o=opt):
            o.zero_grad()
            m(x).logsumexp(1).mean().backward()
            o.step()

        _row(f"{name} training step", _time(step, max(1, repeats // 2)))


if __name__ == "__main__":
    main()
