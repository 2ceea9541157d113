"""Start-up time of the command line, measured with fresh processes.

    .venv/bin/python benchmarks/bench_startup.py [--rounds 7] [--checkpoint CKPT]

1. ``pointnet1x1 --help`` (goal: under 0.5 s, and torch is not imported);
2. ``pointnet1x1 classify CKPT one.ply`` against ``python -c "import torch"``
   (goal: at most 1.3x), each run once per round, interleaved, medians.

The cloud is a real PLY file written by another tool
(``../shared/data/clouds/fwilliams_point-cloud-utils__bunny.ply``). Without
``--checkpoint`` a checkpoint of the paper PointNet with random weights is
written to a temporary folder (the time to classify does not depend on the
weights). Until the ``classify`` command and the checkpoint writer exist, part 2
is skipped with a message.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLOUD = (
    ROOT
    / ".."
    / "shared"
    / "data"
    / "clouds"
    / "fwilliams_point-cloud-utils__bunny.ply"
)


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("pointnet1x1")
    return [str(script)] if script.exists() else [sys.executable, "-m", "pointnet1x1"]


def _time(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {tail}")
    return elapsed


def _interleave(cmds: dict[str, list[str]], rounds: int) -> dict[str, list[float]]:
    for cmd in cmds.values():  # warm the page cache
        _time(cmd)
    times: dict[str, list[float]] = {k: [] for k in cmds}
    names = list(cmds)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(_time(cmds[name]))
    return times


def _help_imports_torch() -> bool:
    code = (
        "import sys\n"
        "from pointnet1x1.cli import build_parser\n"
        "build_parser().format_help()\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT
    )
    return out.stdout.strip() == "True"


def _make_checkpoint(folder: Path) -> Path | None:
    try:
        import torch

        from pointnet1x1.engine.checkpoint import (
            make_preprocessing,
            save_model_checkpoint,
        )
        from pointnet1x1.models import PointNetClassifier
    except ImportError as err:
        print(f"classify skipped: cannot write a checkpoint yet ({err})")
        return None
    torch.manual_seed(0)
    path = folder / "pointnet_random.safetensors"
    save_model_checkpoint(
        path,
        PointNetClassifier(40),
        model_name="pointnet",
        model_kwargs={"num_classes": 40},
        class_names=[f"class_{i}" for i in range(40)],
        preprocessing=make_preprocessing(1024),
    )
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--checkpoint", help="checkpoint to classify with")
    parser.add_argument("--cloud", default=str(CLOUD), help="the file to classify")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    args = parser.parse_args()
    cli = _cli()
    load = os.getloadavg()[0]
    print(
        f"machine: {os.cpu_count()} cores, load average {load:.2f}; cli: {' '.join(cli)}"
    )

    help_times = _interleave({"help": [*cli, "--help"]}, args.rounds)["help"]
    med = statistics.median(help_times)
    torch_free = not _help_imports_torch()
    print(
        f"pointnet1x1 --help: median {med:.3f} s over {args.rounds} runs "
        f"(goal < 0.5 s: {'met' if med < 0.5 else 'NOT met'}); "
        f"torch imported: {'no' if torch_free else 'YES'}"
    )

    probe = subprocess.run([*cli, "--help"], capture_output=True, text=True, cwd=ROOT)
    if " classify " not in probe.stdout and "classify" not in probe.stdout.split():
        print("classify skipped: the classify command does not exist yet")
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="bench_startup_"))
    try:
        ckpt = Path(args.checkpoint) if args.checkpoint else _make_checkpoint(tmp)
        if ckpt is None:
            return 0
        classify = [
            *cli,
            "classify",
            str(ckpt),
            args.cloud,
            "--precision",
            args.precision,
        ]
        times = _interleave(
            {
                "import torch": [sys.executable, "-c", "import torch"],
                "classify": classify,
            },
            args.rounds,
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    t_torch = statistics.median(times["import torch"])
    t_cls = statistics.median(times["classify"])
    ratio = statistics.median(
        c / t for c, t in zip(times["classify"], times["import torch"], strict=True)
    )
    print(f'python -c "import torch": median {t_torch:.3f} s')
    print(
        f"pointnet1x1 classify CKPT {Path(args.cloud).name} ({args.precision}): "
        f"median {t_cls:.3f} s, {ratio:.2f}x import torch "
        f"(goal <= 1.3x: {'met' if ratio <= 1.3 else 'NOT met'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
