"""The end of a run, for every task: test both checkpoints once, write report.json and plots."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pointnet1x1._atomic import atomic_write_json
from pointnet1x1.engine import distributed as D
from pointnet1x1.engine.checkpoint import load_model_checkpoint
from pointnet1x1.engine.metadata import _versions

if TYPE_CHECKING:
    from pointnet1x1.engine.trainer import Trainer


def finish_run(run: Trainer) -> dict[str, Any]:
    """Evaluate the last and the validation-best model on the test split, once.

    ``test`` in the report is the validation-best model's (the honest choice: it
    was picked without looking at the test set); ``test_last`` is the last epoch's.
    """
    from pointnet1x1.engine.plots import plot_curves

    cfg, task, info, out = run.cfg, run.task, run.info, run.out
    history, best, timings = run.history, run.best, run.timings
    t0 = time.perf_counter()
    best_model = load_model_checkpoint(
        out / "checkpoints" / "best.safetensors", map_location=run.device
    ).model
    results = {
        "last": task.evaluate(run.model, "test"),
        "best": task.evaluate(best_model, "test"),
    }
    timings["test_s"] = time.perf_counter() - t0
    voted: dict[str, Any] = {}
    if (cfg.votes or 1) > 1 and task.name == "cls":  # reported beside, never instead
        t0 = time.perf_counter()
        voted = task.evaluate(best_model, "test", votes=int(cfg.votes or 1))
        voted["checkpoint"] = "best"
        timings["vote_s"] = time.perf_counter() - t0
    digests = [str(d) for d in D.gather_objects(D.weight_digest(run.model), info)]
    last_epoch = history[-1]["epoch"] if history else 0
    results["last"]["checkpoint"] = f"last (epoch {last_epoch})"
    results["best"]["checkpoint"] = (
        f"best (epoch {best['epoch']}, {task.selection}, latest on ties)"
    )
    timings["total_s"] = time.perf_counter() - timings.pop("start")
    timings["epoch_s"] = timings.get("train_s", 0.0) / max(len(history), 1)
    ckpt = out / "checkpoints"
    best_record: dict[str, Any] = next(
        (h for h in history if h["epoch"] == best["epoch"]), {}
    )
    report = {
        "task": task.name,
        "run_dir": str(out.resolve()),
        "model": cfg.model,
        "test": {**results["best"], "which": "best"},
        "test_best": results["best"],
        "test_last": results["last"],
        "note": "test = the validation-best checkpoint (test_best); test_last = the last "
        "epoch's; test_vote = the best checkpoint voting over rotations about the up axis",
        **({"test_vote": {**voted, "votes": cfg.votes}} if voted else {}),
        "training": {
            "precision": task.precision,
            "precision_reason": run.precision_reason,
            "fused_forward": bool(getattr(task, "_fused", False)),
        },
        "best_epoch": best["epoch"],
        "selection": task.selection + "; ties go to the later epoch",
        "val_best": {k[4:]: v for k, v in best_record.items() if k.startswith("val_")},
        "epochs": last_epoch,
        "timings": timings,
        "checkpoints": {
            "best": str(ckpt / "best.safetensors"),
            "last": str(ckpt / "last.safetensors"),
            "state": str(ckpt / "state.pt"),
        },
        "device": str(run.device),
        "world_size": info.world_size,
        "weight_digests": digests,
        "weights_identical_across_ranks": len(set(digests)) == 1,
        **task.report(results, out),
        "config": cfg.to_dict(),
        "versions": _versions(),
    }
    if info.is_main:
        atomic_write_json(out / "report.json", report)
        if history:
            plot_curves(history, out / "curves.png", metrics=task.curves)
        run.progress.log(
            f"test {task.summary(results['best'])} (validation-best, epoch "
            f"{best['epoch']}); last epoch: {task.summary(results['last'])}"
            + (f"; {cfg.votes}-rotation vote: {task.summary(voted)}" if voted else "")
            + f"; {timings['total_s']:.0f}s; run folder {out}"
        )
    return report
