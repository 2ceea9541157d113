"""Store a run's validation-best model as the package's pretrained model, in 16 bits.

    .venv/bin/python scripts/ship_pretrained.py RUN_DIR [--name pointnet-modelnet40]
        [--data ../shared/data/modelnet40_npy_1024] [--votes 12] [--fp32]

Writes ``pointnet1x1/weights/<file>`` (see :data:`pointnet1x1.weights.PRETRAINED`)
with the floating-point weights in float16 (``--fp32``: as trained) and a
``pretrained`` block in the metadata: the data, the recipe and the protocol of
the run, the run's own test figures, the figures **re-measured from the stored
file** on the same test split (plain and voted), the wall time, the machine and
the library version, and ModelNet's terms of use. It refuses to store float16
weights whose plain test OA or mAcc moved by more than 0.2 points from the
run's (then use ``--fp32``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pointnet1x1 import __version__  # noqa: E402
from pointnet1x1._atomic import atomic_write_bytes  # noqa: E402
from pointnet1x1.engine.checkpoint import load_model_checkpoint  # noqa: E402
from pointnet1x1.engine.evaluate import evaluate_checkpoint  # noqa: E402
from pointnet1x1.weights import PRETRAINED  # noqa: E402

LICENSE = (
    "trained on ModelNet40 (Princeton ModelNet, Wu et al. 2015), which is published "
    "for academic research use only; use this model under the same terms"
)
TOLERANCE = 0.002  # OA / mAcc, as fractions


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _write(path: Path, model: torch.nn.Module, meta: dict, half: bool) -> None:
    from safetensors.torch import save

    state = {
        k: (v.half() if half and v.is_floating_point() else v)
        .detach()
        .cpu()
        .contiguous()
        for k, v in model.state_dict().items()
    }
    header = {"format": "pt", "pointnet1x1": json.dumps(meta)}
    atomic_write_bytes(path, save(state, metadata=header))


def _calibrate(cfg: dict, model: torch.nn.Module) -> dict:
    """The trainer's calibration (ClassificationTask.calibration) of ``model`` on the
    run's own validation split, with the test ECE before and after."""
    from pointnet1x1.engine.config import TrainConfig
    from pointnet1x1.engine.distributed import DistInfo
    from pointnet1x1.engine.tasks import get_task

    known = {f for f in TrainConfig.__dataclass_fields__}
    config = TrainConfig.from_dict({k: v for k, v in cfg.items() if k in known})
    task = get_task("cls")(config, DistInfo(), torch.device("cpu"))
    task.load_data(progress=False)
    return task.calibration(model)  # type: ignore[attr-defined, no-any-return]


def _figures(result: dict) -> dict:
    return {"oa": result["oa"], "macc": result["macc"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path)
    p.add_argument("--name", default="pointnet-modelnet40", choices=list(PRETRAINED))
    p.add_argument("--data", default=None, help="test data (default: the run's)")
    p.add_argument("--votes", type=int, default=12)
    p.add_argument("--fp32", action="store_true", help="store the weights as trained")
    args = p.parse_args(argv)

    report = json.loads((args.run / "report.json").read_text())
    loaded = load_model_checkpoint(args.run / "checkpoints" / "best.safetensors")
    meta = dict(loaded.metadata)
    cfg = report["config"]
    calibration = meta.get("extra", {}).get("calibration")
    if calibration is None:  # a run from before the trainer calibrated: as it does now
        calibration = _calibrate(cfg, loaded.model)
        meta.setdefault("extra", {})["calibration"] = {
            k: calibration[k] for k in ("temperature", "fitted_on")
        }
    print(f"temperature {calibration['temperature']:.4f} ({calibration['fitted_on']})")
    dest = ROOT / "pointnet1x1" / "weights" / PRETRAINED[args.name]
    with tempfile.TemporaryDirectory() as tmp:
        trial = Path(tmp) / dest.name
        _write(trial, loaded.model, meta, half=not args.fp32)
        plain = evaluate_checkpoint(trial, data=args.data, votes=1)
        voted = evaluate_checkpoint(trial, data=args.data, votes=args.votes)
    run_test = report["test_best"]
    moved = max(
        abs(plain["oa"] - run_test["oa"]), abs(plain["macc"] - run_test["macc"])
    )
    print(
        f"stored file: OA {100 * plain['oa']:.2f}% mAcc {100 * plain['macc']:.2f}% "
        f"(run: {100 * run_test['oa']:.2f}% / {100 * run_test['macc']:.2f}%); "
        f"{args.votes}-rotation vote OA {100 * voted['oa']:.2f}% "
        f"mAcc {100 * voted['macc']:.2f}%"
    )
    if moved > TOLERANCE and not args.fp32:
        print(f"float16 moved the test figures by {100 * moved:.2f} points: use --fp32")
        return 1
    timings = report["timings"]
    meta.setdefault("extra", {})["pretrained"] = {
        "name": args.name,
        "model": report["model"],
        "data": {
            "root": Path(report["data"]["root"]).name,
            "train": report["data"]["num_train"],
            "val": report["data"]["num_val"],
            "test": report["data"]["num_test"],
            "points": meta["preprocessing"]["num_points"],
            "up_axis": meta["preprocessing"]["up_axis"],
        },
        "recipe": cfg["recipe"],
        "command": f"pointnet1x1 train --data ../shared/data/{Path(report['data']['root']).name} "
        f"--recipe {cfg['recipe']}",
        "protocol": (
            f"validation split ({report['data']['num_val']} shapes) of the official "
            f"train set picks the epoch ({report['selection']}); the official test set "
            "scored once by this (validation-best) model"
        ),
        "best_epoch": report["best_epoch"],
        "epochs": report["epochs"],
        "test_run": _figures(run_test),
        "test_last_run": _figures(report["test_last"]),
        "test": _figures(plain),
        "test_vote": {**_figures(voted), "votes": args.votes},
        "weights": "float32" if args.fp32 else "float16",
        "calibration": calibration,
        "wall_s": round(timings["total_s"], 1),
        "machine": f"{_cpu_model()}, {torch.get_num_threads()} threads, CPU",
        "library_version": __version__,
        "torch": torch.__version__,
        "license": LICENSE,
    }
    _write(dest, loaded.model, meta, half=not args.fp32)
    print(f"wrote {dest} ({dest.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
