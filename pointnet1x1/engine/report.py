"""The end of a run: test both checkpoints once, write report.json and the plots."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pointnet1x1._atomic import atomic_write_json
from pointnet1x1.engine import distributed as D
from pointnet1x1.engine._data import ClassificationData
from pointnet1x1.engine.checkpoint import _versions, load_model_checkpoint
from pointnet1x1.engine.config import TrainConfig
from pointnet1x1.engine.evaluate import evaluate_split
from pointnet1x1.engine.metrics import classification_metrics


def finish_run(
    cfg: TrainConfig,
    data: ClassificationData,
    model: nn.Module,
    history: list[dict[str, Any]],
    best: dict[str, Any],
    out: Path,
    device: torch.device,
    info: D.DistInfo,
    timings: dict[str, float],
    log: Any,
) -> dict[str, Any]:
    """Evaluate the last and the validation-best model on the test split, once.

    ``test`` in the report is the validation-best model's (the honest choice: it
    was picked without looking at the test set); ``test_last`` is the last epoch's.
    """
    from pointnet1x1.engine.plots import plot_confusion, plot_curves

    assert data.test is not None
    k, names = len(data.class_names), data.class_names
    t0 = time.perf_counter()
    best_model = load_model_checkpoint(
        out / "checkpoints" / "best.safetensors", map_location=device
    ).model
    results: dict[str, dict[str, Any]] = {}
    for which, net in (("last", model), ("best", best_model)):
        conf, loss = evaluate_split(
            net, data.test.points, data.test.labels, k, batch_size=64,
            device=device, votes=cfg.votes, up_axis=data.up_axis, info=info,
        )  # fmt: skip
        results[which] = {**classification_metrics(conf).to_dict(names), "loss": loss}
    timings["test_s"] = time.perf_counter() - t0
    digests = [str(d) for d in D.gather_objects(D.weight_digest(model), info)]
    last_epoch = history[-1]["epoch"] if history else 0
    results["last"]["checkpoint"] = f"last (epoch {last_epoch})"
    results["best"]["checkpoint"] = (
        f"best (epoch {best['epoch']}, highest validation OA, latest on ties)"
    )
    timings["total_s"] = time.perf_counter() - timings.pop("start")
    timings["epoch_s"] = timings["train_s"] / max(len(history), 1)
    ckpt = out / "checkpoints"
    report = {
        "task": "cls",
        "run_dir": str(out.resolve()),
        "model": cfg.model,
        "class_names": names,
        "data": {
            "root": data.root or "embedded default",
            "num_train": len(data.train),
            "num_val": len(data.val),
            "num_test": len(data.test),
        },  # fmt: skip
        "test": {**results["best"], "which": "best"},
        "test_best": results["best"],
        "test_last": results["last"],
        "note": "test = the validation-best checkpoint (test_best); test_last = the last epoch's",
        "best_epoch": best["epoch"],
        "val_best": {"oa": best["val_oa"], "macc": best["val_macc"]},
        "votes": cfg.votes,
        "epochs": last_epoch,
        "timings": timings,
        "checkpoints": {
            name: str(ckpt / f"{name}.{ext}")
            for name, ext in (
                ("best", "safetensors"),
                ("last", "safetensors"),
                ("state", "pt"),
            )
        },
        "device": str(device),
        "world_size": info.world_size,
        "weight_digests": digests,
        "weights_identical_across_ranks": len(set(digests)) == 1,
        "config": cfg.to_dict(),
        "versions": _versions(),
    }
    if info.is_main:
        atomic_write_json(out / "report.json", report)
        if history:
            plot_curves(history, out / "curves.png")
        title = f"test, {results['best']['checkpoint']}"
        plot_confusion(
            results["best"]["confusion"], names, out / "confusion.png", title=title
        )
        b, last = results["best"], results["last"]
        log(
            f"test OA {100 * b['oa']:.2f}%  mAcc {100 * b['macc']:.2f}% (validation-best, "
            f"epoch {best['epoch']}); last epoch: OA {100 * last['oa']:.2f}%  mAcc "
            f"{100 * last['macc']:.2f}%; {timings['total_s']:.0f}s; run folder {out}"
        )
    return report
