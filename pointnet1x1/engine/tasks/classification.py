"""Classification: one label per cloud (ModelNet40/10 in any layout, folders of
files per class, the embedded default).

Protocol: a seeded, stratified validation split carved from the training set
picks the best epoch (highest validation OA, then mAcc); the test set is scored
once at the end, optionally voting over rotations about the up axis. OA and mAcc
come from the whole-set confusion matrix. The dataset's split manifest (the
train / test file lists) goes into every checkpoint's ``extra["split"]`` and into
``split.json`` in the run folder, so ``eval`` of a ``<class>/<file>`` tree scores
the same test files even after files were added. At the end a temperature is
fitted on the validation split (:meth:`ClassificationTask.calibration`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pointnet1x1.engine.data import (
    ClassificationData,
    load_classification_data,
    sample_pool,
)
from pointnet1x1.engine.evaluate import evaluate_split
from pointnet1x1.engine.metrics import classification_metrics, confusion_matrix
from pointnet1x1.engine.preprocessing import Preprocessing, make_preprocessing
from pointnet1x1.engine.tasks.base import Batch, Task, augment

__all__ = ["ECE_BINS", "SPLIT_FILE", "ClassificationTask"]

SPLIT_FILE = "split.json"  # the run folder's split manifest
ECE_BINS = 15  # equal-width bins of the expected calibration error (Guo et al.)


def _root_of(data: str | None) -> str | None:
    return None if data is None else str(Path(data).expanduser().resolve())


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class ClassificationTask(Task):
    """Cross-entropy (plus the model's regulariser) on class logits ``(B, K)``."""

    name = "cls"
    selection = "highest validation OA, then mAcc"
    curves = (("train_oa", "train OA"), ("val_oa", "val OA"), ("val_macc", "val mAcc"))

    def load_data(self, progress: bool) -> None:
        cfg = self.cfg
        self.data_cfg: dict[str, Any] = {
            "root": cfg.data, "classes": cfg.classes, "num_points": cfg.num_points,
            "normals": cfg.normals, "modelnet10": cfg.modelnet10, "seed": cfg.seed,
            "cache_dir": cfg.cache_dir, "skip_bad": cfg.skip_bad,
        }  # fmt: skip
        self.data: ClassificationData = load_classification_data(
            self.data_cfg, val_fraction=cfg.val_fraction, progress=progress,
            manifest=self._resumed_manifest(),
        )  # fmt: skip
        self.data_cfg.update(classes=self.data.class_names, root=self.data.root)
        self.train = self.data.train.to(self.device)
        self._fused: bool | None = None
        self._split_written = False

    def _resumed_manifest(self) -> dict[str, Any] | None:
        """The split of the run being resumed (its ``split.json``: same root and
        seed), so a ``<class>/<file>`` tree whose files changed since keeps it;
        else None (the dataset's own split)."""
        out = Path(str(self.cfg.out)) if self.cfg.out else None
        if out is None or not (out / "checkpoints" / "state.pt").is_file():
            return None
        path = out / SPLIT_FILE
        if not path.is_file():
            return None
        try:
            manifest = json.loads(path.read_text())
        except (OSError, ValueError):
            return None  # not this run's: the dataset makes its split again
        same = (
            isinstance(manifest, dict)
            and manifest.get("layout") == "class"
            and manifest.get("root") == _root_of(self.cfg.data)
            and manifest.get("seed") == self.cfg.seed
        )
        return dict(manifest) if same else None

    @property
    def num_train(self) -> int:
        return len(self.data.train)

    def describe(self) -> str:
        d = self.data
        where = "embedded default dataset" if d.root is None else d.root
        return (
            f"{where}: {len(d.class_names)} classes, {len(d.train)} train / "
            f"{len(d.val)} val / {len(d.test or [])} test shapes"
        )

    def model_kwargs(self) -> dict[str, Any]:
        return {
            "num_classes": len(self.data.class_names),
            "in_channels": self.data.in_channels,
        }

    # -- training ----------------------------------------------------------------
    def train_batch(self, idx: Tensor, gen: torch.Generator) -> Batch:
        assert self.cfg.num_points is not None
        points = int(self.train_points or self.cfg.num_points)
        clouds, _ = sample_pool(self.train.points, idx, points, gen)
        clouds = augment(self.cfg, clouds, gen, self.data.up_axis)
        return Batch(
            clouds.transpose(1, 2).contiguous(), self.train.labels[idx]
        )  # (B, C, N)

    def _use_fused(self, model: nn.Module) -> bool:
        """PointNet classifiers in one process train through the fused forward."""
        if self._fused is None:
            from pointnet1x1.models import PointNetClassifier

            self._fused = (
                self.cfg.fused_forward
                and not self.info.enabled  # DDP needs its own forward
                and isinstance(model, PointNetClassifier)
            )
        return self._fused

    def forward_loss(
        self, net: nn.Module, model: nn.Module, batch: Batch
    ) -> tuple[Tensor, Tensor]:
        if self._use_fused(model):
            from pointnet1x1.models.fast import forward_train

            logits, aux = forward_train(model, batch.x, precision=self.precision)  # type: ignore[arg-type]
        else:
            logits, aux = net(batch.x, return_aux=True)
        loss = F.cross_entropy(logits, batch.target) + aux
        k = len(self.data.class_names)
        counts = confusion_matrix(batch.target, logits.detach().argmax(1), k).flatten()
        return loss, counts

    def train_metrics(self, sums: Tensor) -> dict[str, float]:
        k = len(self.data.class_names)
        return {"oa": classification_metrics(sums.round().long().view(k, k)).oa}

    # -- evaluation --------------------------------------------------------------
    def evaluate(self, model: nn.Module, split: str, votes: int = 1) -> dict[str, Any]:
        data = self.data
        part = data.val if split == "val" else data.test
        assert part is not None, split
        conf, loss = evaluate_split(
            model, part.points, part.labels, len(data.class_names),
            batch_size=max(int(self.cfg.batch_size or 0), 64), device=self.device,
            votes=votes, up_axis=data.up_axis,
            info=self.info,
        )  # fmt: skip
        return {**classification_metrics(conf).to_dict(data.class_names), "loss": loss}

    def score(self, metrics: dict[str, Any]) -> tuple[float, ...]:
        return (metrics["oa"], metrics["macc"])

    def scalars(self, metrics: dict[str, Any]) -> dict[str, float]:
        return {"loss": metrics["loss"], "oa": metrics["oa"], "macc": metrics["macc"]}

    def summary(self, metrics: dict[str, Any]) -> str:
        return f"OA {100 * metrics['oa']:.2f}%  mAcc {100 * metrics['macc']:.2f}%"

    # -- checkpoint and report ---------------------------------------------------
    def class_names(self) -> list[str]:
        return list(self.data.class_names)

    def preprocessing(self) -> Preprocessing:
        assert self.cfg.num_points is not None
        return make_preprocessing(
            self.cfg.num_points, use_normals=self.cfg.normals, up_axis=self.data.up_axis
        )

    def split_manifest(self) -> dict[str, Any] | None:
        """The train / test file lists of the dataset (None: ModelNet's official
        lists), with the dataset root."""
        plan = self.data.split_manifest
        return None if plan is None else {**plan, "root": self.data.root}

    def checkpoint_extra(self) -> dict[str, Any]:
        plan = self.split_manifest()
        if plan is not None and not self._split_written and self.info.is_main:
            # with the first checkpoint: the run folder exists and is this run's
            from pointnet1x1._atomic import atomic_write_json

            atomic_write_json(Path(str(self.cfg.out)) / SPLIT_FILE, plan)
            self._split_written = True
        return {"data": self.data_cfg, **({"split": plan} if plan else {})}

    @torch.no_grad()
    def logits(self, model: nn.Module, split: str) -> tuple[np.ndarray, np.ndarray]:
        """Logits ``(S, K)`` of the whole ``"val"`` or ``"test"`` split (every
        rank computes all of them) and the labels ``(S,)``."""
        from pointnet1x1.engine.evaluate import predict_logits

        part = self.data.val if split == "val" else self.data.test
        assert part is not None, split
        z = predict_logits(
            model, part.points, batch_size=max(int(self.cfg.batch_size or 0), 64),
            device=self.device,
        )  # fmt: skip
        return z.double().numpy(), part.labels.cpu().numpy()

    def calibration(
        self, model: nn.Module, bins: int = ECE_BINS, with_test: bool = True
    ) -> dict[str, Any]:
        """Temperature scaling of ``model``: ``T`` fitted on the validation split's
        logits (:func:`~pointnet1x1.engine.calibration.fit_temperature`), and
        (``with_test``) the test split's expected calibration error before
        (``T = 1``) and after, ``bins`` equal-width bins."""
        from pointnet1x1.engine.calibration import (
            expected_calibration_error,
            fit_temperature,
        )

        z_val, y_val = self.logits(model, "val")
        temperature = fit_temperature(z_val, y_val)
        out: dict[str, Any] = {
            "temperature": temperature, "bins": bins,
            "fitted_on": f"validation split ({len(y_val)} shapes)",
        }  # fmt: skip
        if with_test and self.data.test is not None and len(self.data.test):
            z, y = self.logits(model, "test")
            out["test_ece_before"] = expected_calibration_error(_softmax(z), y, bins)
            out["test_ece_after"] = expected_calibration_error(
                _softmax(z / temperature), y, bins
            )
        return out

    def report(self, results: dict[str, dict[str, Any]], out: Path) -> dict[str, Any]:
        from pointnet1x1.engine.plots import plot_confusion

        d, best = self.data, results["best"]
        if self.info.is_main:
            plot_confusion(
                best["confusion"], d.class_names, out / "confusion.png",
                title=f"test, {best['checkpoint']}",
            )  # fmt: skip
        return {
            "class_names": d.class_names,
            "data": {
                "root": d.root or "embedded default",
                "layout": d.layout,
                "num_train": len(d.train),
                "num_val": len(d.val),
                "num_test": len(d.test or []),
                "split_manifest": None
                if d.split_manifest is None
                else str(out / SPLIT_FILE),
                "skip_bad": bool(self.cfg.skip_bad),
                "bad_files": d.bad_files,
                "short_files": d.short_files,
            },  # fmt: skip
            "votes": self.cfg.votes,
        }
