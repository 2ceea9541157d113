"""Read speed of pointnet1x1.io against Open3D on the same 1,000,000-point files.

Writes a binary PLY, an ascii XYZ, a binary PCD (our writers) and a
binary_compressed PCD (Open3D's writer) to a temporary folder, then times our
``read_points`` and Open3D's ``read_point_cloud`` (+ ``np.asarray``) on each file,
interleaved, and prints the median of several pairs and the ratio.

    .venv/bin/python benchmarks/bench_io.py [--points 1000000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from pointnet1x1.io import PointCloud, read_points, write_points


def _time(func) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def _import_time(module: str) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return float(out.stdout.strip())


def _modelnet(repeats: int) -> None:
    """Parse + sample throughput on the real ModelNet OFF meshes, if present."""
    from pointnet1x1.io import read_mesh, sample_surface

    root = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ModelNet40"
    files = sorted(root.glob("*/*/*.off"))
    if not files:
        print(f"(no ModelNet OFF meshes under {root}: OFF throughput skipped)")
        return
    size = sum(f.stat().st_size for f in files) / 1e6

    def run() -> None:
        for f in files:
            sample_surface(*read_mesh(f), 1024)

    best = min(_time(run) for _ in range(repeats))
    print(
        f"ModelNet OFF: {len(files)} meshes, {size:.1f} MB, read + sample 1024 points "
        f"in {best:.3f} s = {size / best:.0f} MB/s, {best / len(files) * 1e3:.1f} ms/mesh "
        "(one core)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import open3d as o3d

    rng = np.random.default_rng(0)
    points = rng.normal(size=(args.points, 3)).astype(np.float32)
    normals = rng.normal(size=(args.points, 3)).astype(np.float32)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    cloud = PointCloud(points, normals)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = {
            "binary PLY (xyz+normals)": folder / "cloud.ply",
            "ascii XYZ (xyz)": folder / "cloud.xyz",
            "binary PCD (xyz+normals)": folder / "cloud.pcd",
        }
        for path in files.values():
            write_points(path, cloud)
        from plyfile import PlyData, PlyElement

        vertex = np.empty(args.points, [("x", "f4"), ("y", "f4"), ("z", "f4")])
        for i, axis in enumerate("xyz"):
            vertex[axis] = points[:, i]
        files["ascii PLY (xyz)"] = folder / "ascii.ply"
        PlyData([PlyElement.describe(vertex, "vertex")], text=True).write(
            str(files["ascii PLY (xyz)"])
        )
        compressed = folder / "compressed.pcd"
        legacy = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
        o3d.io.write_point_cloud(str(compressed), legacy, compressed=True)
        files["binary_compressed PCD (xyz)"] = compressed

        print(f"{args.points:,} points, median of {args.repeats} interleaved pairs")
        print(
            f"{'file':30s} {'size MB':>8s} {'ours s':>8s} {'open3d s':>9s} {'ours/o3d':>9s}"
        )
        for name, path in files.items():
            ours_t, o3d_t = [], []
            for _ in range(args.repeats):
                ours_t.append(_time(lambda p=path: read_points(p)))
                o3d_t.append(
                    _time(
                        lambda p=path: np.asarray(
                            o3d.io.read_point_cloud(str(p)).points
                        )
                    )
                )
            assert len(read_points(path)) == args.points
            ours, theirs = statistics.median(ours_t), statistics.median(o3d_t)
            size = path.stat().st_size / 1e6
            print(
                f"{name:30s} {size:8.1f} {ours:8.3f} {theirs:9.3f} {ours / theirs:9.2f}"
            )
        npy = folder / "cloud.npy"
        write_points(npy, cloud)
        npy_t = statistics.median(
            _time(lambda: read_points(npy)) for _ in range(args.repeats)
        )
        print(
            f"{'NPY (xyz+normals), ours only':30s} {npy.stat().st_size / 1e6:8.1f} {npy_t:8.3f}"
        )
    _modelnet(args.repeats)
    print(
        f"import time: pointnet1x1.io {_import_time('pointnet1x1.io'):.2f} s, "
        f"open3d {_import_time('open3d'):.2f} s"
    )


if __name__ == "__main__":
    main()
