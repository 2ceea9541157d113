"""Dataset preparation throughput: the npy tree, OFF meshes, resampled text files.

    .venv/bin/python benchmarks/bench_data.py [--repeat 8] [--workers N] [--rounds 2]

0. The whole ModelNet40 as 12,311 npy files (``../shared/data/modelnet40_npy_1024``):
   indexing and reading both splits the first time (``FolderDataset`` train + test
   into an empty cache folder; goal < 15 s on 2 cores), on all cores with processes
   (the default), with threads, and in one process; then opening both again from
   the cache (goal < 2 s). Variants interleaved over ``--rounds`` rounds.
1. OFF preparation (read + area-weighted sampling of 2,048 points + normalisation),
   on the real Princeton meshes of ``../shared/data/ModelNet40`` repeated
   ``--repeat`` times: ``load_split`` on all cores vs a naive per-file loop (a
   pure-Python OFF parser, as many ModelNet ports have, then the same sampling)
   and vs our per-file function in one process. Extrapolated to the whole
   ModelNet40 (12,311 meshes) from a per-file time model ``t = a + b * bytes``
   fitted on the real files, applied to their size distribution, divided by
   the measured parallel speed-up.
2. Text layout: the four complete classes of ``modelnet40_normal_resampled``
   (1,183 files of 2,048 rows): ``load_split`` on all cores vs ``np.loadtxt`` per
   file in a loop. Extrapolated to 12,311 files.
3. Loading a prepared split back from the cache.
4. With ``--learning-curve EPOCHS``: PointNet on the embedded default dataset (Adam
   lr 1e-3, batch 32, scale/shift augmentation, 2 threads), eval-mode test accuracy
   and process CPU seconds after each epoch (``--points`` per cloud).

Page cache is warm (files read once before timing).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from pointnet1x1.data.cache import num_workers
from pointnet1x1.data.layouts import list_split
from pointnet1x1.data.modelnet import KEEP_POINTS, load_split
from pointnet1x1.data.prepare import Recipe, read_shape
from pointnet1x1.io import sample_surface

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
MODELNET40_MESHES = 12311


def _naive_off(path: Path) -> np.ndarray:
    """What many ports do: parse the OFF text line by line in Python."""
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    head = lines[0].strip()
    if head == "OFF":
        counts, body = lines[1].split(), lines[2:]
    else:  # "OFF490 518 0"
        counts, body = head[3:].split(), lines[1:]
    nv, nf = int(counts[0]), int(counts[1])
    verts = np.array([[float(t) for t in ln.split()[:3]] for ln in body[:nv]])
    tris = []
    for ln in body[nv : nv + nf]:
        idx = [int(t) for t in ln.split()[1:]]
        tris += [(idx[0], idx[k], idx[k + 1]) for k in range(1, len(idx) - 1)]
    points, normals = sample_surface(
        verts, np.array(tris, dtype=np.int64), KEEP_POINTS, seed=0
    )
    return np.concatenate([points, normals], axis=1)


def _timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t, out


def _time_preparation(listing, tmp: str, workers: int) -> tuple[float, float, float]:
    """Seconds to prepare ``listing`` on 1 process, on ``workers``, then from cache."""
    t_serial, _ = _timed(
        load_split, listing, cache_dir=Path(tmp) / "serial", progress=False, workers=1
    )
    t_par, _ = _timed(
        load_split,
        listing,
        cache_dir=Path(tmp) / "parallel",
        progress=False,
        workers=workers,
    )
    t_cached, _ = _timed(
        load_split, listing, cache_dir=Path(tmp) / "parallel", progress=False
    )
    return t_serial, t_par, t_cached


def _open_npy_tree(cache: Path, workers: int, threads: bool) -> int:
    from unittest import mock

    from pointnet1x1.data import FolderDataset
    from pointnet1x1.data import cache as cache_mod

    root = SHARED / "modelnet40_npy_1024"
    real_map = cache_mod.parallel_map

    def mapped(*args, **kwargs):
        return real_map(*args, **{**kwargs, "threads": threads})

    with mock.patch.object(cache_mod, "parallel_map", mapped):
        sets = [
            FolderDataset(root, s, cache_dir=cache, progress=False, workers=workers)
            for s in ("train", "test")
        ]
    return sum(len(d) for d in sets)


def bench_npy_tree(workers: int, rounds: int) -> None:
    root = SHARED / "modelnet40_npy_1024"
    files = sorted(root.glob("*/*/*.npy"))
    for p in files:  # warm the page cache: the figure is indexing + parsing
        p.read_bytes()
    variants = {
        f"processes ({workers})": (workers, False),
        f"threads ({workers})": (workers, True),
        "1 process": (1, False),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    cached: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            names = list(variants)
            names = names[r % len(names) :] + names[: r % len(names)]
            for name in names:
                cache = Path(tmp) / f"{r}-{name.split()[0]}"
                t, n = _timed(_open_npy_tree, cache, *variants[name])
                times[name].append(t)
                assert n == 12311, n
            t, _ = _timed(_open_npy_tree, cache, workers, False)
            cached.append(t)
    print(f"npy tree: {len(files)} files (whole ModelNet40, 1,024 xyz each), both splits, "
          f"first time into an empty cache (goal < 15 s):")  # fmt: skip
    base = np.median(times["1 process"])
    for name, ts in times.items():
        print(f"  {name:<14s} median {np.median(ts):6.2f} s ({len(files) / np.median(ts):5.0f} "
              f"files/s, {base / np.median(ts):.2f}x over 1 process)  all: "
              f"{', '.join(f'{t:.2f}' for t in ts)}")  # fmt: skip
    print(f"  from the cache: median {np.median(cached):.2f} s (goal < 2 s)")


def _prepare_off(item: tuple[str, int], keep: int, seed: int) -> np.ndarray:
    """Our per-file preparation of one mesh (read, sample ``keep`` points, normalise)."""
    recipe = Recipe(num_points=keep, normals=True, seed=seed)
    return read_shape(Path(item[0]), Path(item[0]).name, recipe)


def bench_off(repeat: int, workers: int) -> None:
    real = sorted((SHARED / "ModelNet40").glob("*/*/*.off"))
    sizes = np.array([p.stat().st_size for p in real], dtype=np.float64)
    print(f"OFF: {len(real)} real meshes, {sizes.min() / 1e3:.0f} KB to {sizes.max() / 1e6:.1f} MB, "
          f"mean {sizes.mean() / 1e3:.0f} KB")  # fmt: skip
    for p in real:
        p.read_bytes()
    # per-file serial times (median of 3) -> t = a + b * bytes
    ours, naive = [], []
    for p in real:
        ours.append(
            min(_timed(_prepare_off, (str(p), 0), KEEP_POINTS, 0)[0] for _ in range(3))
        )
        naive.append(_timed(_naive_off, p)[0])
    b, a = np.polyfit(sizes, ours, 1)
    print(f"  per-file model (ours, 1 core): {a * 1e3:.2f} ms + {b * 1e9:.2f} ms/MB; "
          f"naive loop {sum(naive) / sum(ours):.1f}x slower per file")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "rep"
        for k in range(repeat):
            for i, p in enumerate(real):
                folder = root / f"c{i % 4}" / "train"
                folder.mkdir(parents=True, exist_ok=True)
                os.symlink(p, folder / f"m{k:03d}_{p.name}")
        listing = list_split(root, "train")
        n = len(listing.files)
        total_bytes = sizes.sum() * repeat
        t_naive = sum(naive) * repeat
        t_serial, t_par, t_cached = _time_preparation(listing, tmp, workers)
    speedup = t_serial / t_par
    print(f"  {n} meshes ({total_bytes / 1e6:.0f} MB): naive loop {n / t_naive:.0f} meshes/s "
          f"(sum of per-file times), ours 1 process {n / t_serial:.0f} meshes/s, "
          f"ours {workers} workers {n / t_par:.0f} meshes/s ({speedup:.2f}x over 1 process, "
          f"{t_naive / t_par:.1f}x over naive), {total_bytes / t_par / 1e6:.0f} MB/s")  # fmt: skip
    print(f"  from cache: {t_cached * 1e3:.0f} ms for {n} meshes")
    est = MODELNET40_MESHES * (a + b * sizes.mean()) / speedup
    est_naive = MODELNET40_MESHES * (np.mean(naive))
    print(f"  whole ModelNet40 ({MODELNET40_MESHES} meshes at this size distribution, "
          f"{MODELNET40_MESHES * sizes.mean() / 1e9:.1f} GB): ours ~{est:.0f} s on {workers} "
          f"workers, naive loop ~{est_naive:.0f} s")  # fmt: skip


def bench_text(workers: int) -> None:
    root = SHARED / "modelnet40_normal_resampled"
    classes = ["airplane", "bathtub", "bench", "person"]
    listing = list_split(root, "train", classes=classes)
    test = list_split(root, "test", classes=classes)
    files = listing.files + test.files
    for p in files:
        p.read_bytes()
    listing.files, listing.labels = files, listing.labels + test.labels
    n = len(files)
    t_naive, _ = _timed(
        lambda: [np.loadtxt(p, delimiter=",", dtype=np.float32) for p in files]
    )
    with tempfile.TemporaryDirectory() as tmp:
        t_serial, t_par, t_cached = _time_preparation(listing, tmp, workers)
    print(f"text layout: {n} files of 2,048 rows: naive np.loadtxt loop {n / t_naive:.0f} shapes/s, "
          f"ours 1 process {n / t_serial:.0f} shapes/s, ours {workers} workers {n / t_par:.0f} "
          f"shapes/s; from cache {n / t_cached:.0f} shapes/s")  # fmt: skip
    print(f"  whole ModelNet40 ({MODELNET40_MESHES} files): ours ~{MODELNET40_MESHES * t_par / n:.0f} s "
          f"(reads only the first 2,048 of the 10,000 published rows), naive loop on the published "
          f"10,000-row files ~{MODELNET40_MESHES * t_naive / n * 10000 / 2048:.0f} s (rows scale linearly)")  # fmt: skip


def learning_curve(epochs: int, points: int) -> None:
    import torch
    from torch.utils.data import DataLoader

    from pointnet1x1.data import ModelNet, augment_batch, collate, default_data_root
    from pointnet1x1.models import PointNetClassifier

    torch.set_num_threads(2)
    torch.manual_seed(0)
    root = default_data_root()
    train = ModelNet(root, "train", num_points=points, progress=False)
    test = ModelNet(root, "test", num_points=points, progress=False)
    loader = DataLoader(
        train, batch_size=32, shuffle=True, collate_fn=collate, drop_last=True
    )
    model = PointNetClassifier(num_classes=train.num_classes)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    gen = torch.Generator().manual_seed(0)
    xt, yt = collate([test[i] for i in range(len(test))])
    cpu0, wall0 = time.process_time(), time.perf_counter()
    print(f"default dataset: {len(train)} train / {len(test)} test, {points} points")
    for epoch in range(1, epochs + 1):
        correct = 0
        for x, y in loader:
            x = augment_batch(
                x, channels_first=True, jitter=None, dropout=None, generator=gen
            )
            logits, aux = model(x, return_aux=True)
            loss = torch.nn.functional.cross_entropy(logits, y) + aux
            opt.zero_grad()
            loss.backward()
            opt.step()
            correct += int((logits.argmax(1) == y).sum())
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        model.eval()
        with torch.no_grad():
            pred = torch.cat(
                [model(xt[i : i + 100]).argmax(1) for i in range(0, len(xt), 100)]
            )
        model.train()
        acc = float((pred == yt).float().mean())
        print(f"  epoch {epoch}: train acc {correct / (len(loader) * 32):.3f}, test acc {acc:.3f} "
              f"(eval mode), {cpu:.0f} CPU s, {wall:.0f} s wall")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeat", type=int, default=8, help="copies of the real OFF meshes"
    )
    parser.add_argument(
        "--workers", type=int, default=num_workers(), help="worker processes"
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="rounds of the npy-tree variants"
    )
    parser.add_argument(
        "--only-npy", action="store_true", help="run the npy-tree measurement only"
    )
    parser.add_argument(
        "--learning-curve",
        type=int,
        default=0,
        metavar="EPOCHS",
        help="also train PointNet on the default dataset for EPOCHS",
    )
    parser.add_argument(
        "--points", type=int, default=1024, help="points for --learning-curve"
    )
    args = parser.parse_args()
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {args.workers} workers"
    )
    bench_npy_tree(args.workers, args.rounds)
    if args.only_npy:
        return 0
    bench_off(args.repeat, args.workers)
    bench_text(args.workers)
    if args.learning_curve:
        learning_curve(args.learning_curve, args.points)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
