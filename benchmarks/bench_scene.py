"""Time ``pointnet1x1 scene`` on the 209,280-point PCL table scene, stage by stage.

Runs the whole command in a fresh process each time (the interpreter, the imports
of torch and Open3D, reading the file, the scene stage, loading the model,
classifying, writing the PLY, the PNG and the JSON: what a user waits for) and
prints the wall time of each run, then the median of the stage times the command
records in its JSON. The goal is under 5 s on the project's 2-core CPU.

    .venv/bin/python benchmarks/bench_scene.py [--repeats 3] [--checkpoint CKPT]

Without ``--checkpoint`` the paper's PointNet (both T-Nets, 40 classes, 1024
points; untrained, which costs the same as trained weights) is written to a
temporary checkpoint first. ``--profile`` also runs the scene stage once under
cProfile in this process and prints its 15 most expensive functions.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCAN = (
    ROOT
    / ".."
    / "shared"
    / "data"
    / "clouds"
    / "PointCloudLibrary_pcl__table_scene_mug_stereo_textured.pcd"
).resolve()
STAGES = (
    "checkpoint", "import", "read", "spacing", "clean", "planes", "clusters",
    "model", "classify", "write",
)  # fmt: skip


def _checkpoint(folder: Path) -> Path:
    from pointnet1x1.engine.checkpoint import make_preprocessing, save_model_checkpoint
    from pointnet1x1.models import create_model

    path = folder / "pointnet40.safetensors"
    save_model_checkpoint(
        path,
        create_model("pointnet", num_classes=40),
        model_name="pointnet",
        model_kwargs={"num_classes": 40},
        class_names=[f"class{i:02d}" for i in range(40)],
        preprocessing=make_preprocessing(1024, up_axis="z"),
    )
    return path


def _run_once(checkpoint: Path, out: Path) -> tuple[float, dict[str, float]]:
    exe = Path(sys.executable).with_name("pointnet1x1")
    command = [str(exe), "scene", str(checkpoint), str(SCAN), "--out", str(out)]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"scene command failed: {done.stderr.strip()}")
    document = json.loads(next(out.glob("*.objects.json")).read_text())
    return wall, document["timings"]


def _profile() -> None:
    import cProfile
    import pstats

    from pointnet1x1.scene import segment_scene

    segment_scene(SCAN)  # imports and caches first
    profile = cProfile.Profile()
    profile.enable()
    segment_scene(SCAN)
    profile.disable()
    pstats.Stats(profile).sort_stats("cumulative").print_stats(15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    if not SCAN.is_file():
        raise SystemExit(f"{SCAN}: the PCL table scene is not there")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        checkpoint = args.checkpoint or _checkpoint(folder)
        walls, stages = [], []
        for i in range(args.repeats):
            out = folder / f"run{i}"
            wall, timings = _run_once(checkpoint, out)
            walls.append(wall)
            stages.append(timings)
            print(f"run {i + 1}: {wall:.2f} s wall")
    print(f"\nscene command on {SCAN.name} (209,280 points), {os.cpu_count()} CPUs")
    print(f"  wall time, median of {len(walls)}: {statistics.median(walls):.2f} s")
    total = 0.0
    for name in STAGES:
        values = [t.get(name, 0.0) for t in stages]
        median = statistics.median(values)
        total += median
        print(f"  {name:<11s} {median:6.3f} s")
    rest = statistics.median(walls) - total
    print(f"  {'other':<11s} {rest:6.3f} s  (interpreter start, CLI, exit)")
    if args.profile:
        _profile()


if __name__ == "__main__":
    main()
