"""The end of a run, for every task: test both checkpoints once, write report.json and plots.

Classifiers are also calibrated here: a temperature is fitted on the validation
split's logits of the validation-best model and stored in ``best.safetensors``
(rewritten atomically, ``extra["calibration"]``); ``last.safetensors`` gets the
fit of its own (last-epoch) model. ``report.json`` gives ``calibration``: the
best model's temperature and its test expected calibration error before and
after. The predictors divide the logits by it (:class:`~pointnet1x1.engine.predict.Classifier`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pointnet1x1._atomic import atomic_write_json
from pointnet1x1.engine import distributed as D
from pointnet1x1.engine.checkpoint import (
    load_model_checkpoint,
    read_checkpoint_metadata,
    save_model_checkpoint,
)
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
    best_loaded = load_model_checkpoint(
        out / "checkpoints" / "best.safetensors", map_location=run.device
    )
    best_model = best_loaded.model
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
    calibration: dict[str, Any] = {}
    if task.name == "cls":
        t0 = time.perf_counter()
        calibration = _calibrate(run, best_model, best_loaded.metadata)
        timings["calibration_s"] = time.perf_counter() - t0
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
        **({"calibration": calibration} if calibration else {}),
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


def _calibrate(
    run: Trainer, best_model: Any, best_meta: dict[str, Any]
) -> dict[str, Any]:
    """Fit and store the temperatures of both checkpoints (see the module docstring)."""
    task: Any = run.task
    ckpt = run.out / "checkpoints"
    try:
        best = task.calibration(best_model)
        last = task.calibration(run.model, with_test=False)
    except ValueError as err:  # e.g. non-finite logits of a diverged model
        message = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
        run.progress.log(f"no calibration: {message}")
        return {"temperature": None, "error": message}
    if run.info.is_main:
        _store_temperature(ckpt / "best.safetensors", best_model, best_meta, best)
        last_meta = read_checkpoint_metadata(ckpt / "last.safetensors")
        _store_temperature(ckpt / "last.safetensors", run.model, last_meta, last)
    return {
        **best,
        "checkpoint": "best",
        "last_temperature": last["temperature"],
        "note": "temperature fitted on the validation split (NLL) and stored in "
        "best.safetensors; last.safetensors holds its own fit (last_temperature); "
        "ECE: equal-width bins of the top probability, test split, before = T 1",
    }


def _store_temperature(
    path: Path, model: Any, meta: dict[str, Any], fit: dict[str, Any]
) -> None:
    """Rewrite a checkpoint (atomically) with the fitted temperature in its metadata."""
    from pointnet1x1.engine.predict import CALIBRATION_KEY

    record = {k: fit[k] for k in ("temperature", "fitted_on")}
    save_model_checkpoint(
        path, model, model_name=meta["model"]["name"],
        model_kwargs=meta["model"].get("kwargs", {}), class_names=meta["class_names"],
        preprocessing=meta["preprocessing"], metrics=meta.get("metrics"),
        extra={**meta.get("extra", {}), CALIBRATION_KEY: record},
    )  # fmt: skip
