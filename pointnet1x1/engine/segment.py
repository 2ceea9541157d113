"""Part segmentation inference: :class:`PartSegmenter`, the Classifier's twin.

It shares the :class:`~pointnet1x1.engine.predictor.Predictor` machinery (the
checkpoint's preprocessing, the up-axis conversion from the file's axis to the
model's, a backend) and labels **every** point of a cloud: the whole cloud is
normalised as in training and fed at once, and the arg-max runs over the parts
of the given object category only, as the authors evaluate.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from pointnet1x1._atomic import atomic_write
from pointnet1x1.engine.metrics import category_mask, restrict_to_category
from pointnet1x1.engine.predictor import (
    Predictor,
    _clouds,
    find_files,
    one_line,
    read_cloud,
)

__all__ = ["PartPrediction", "PartSegmenter", "write_part_labels"]


class PartPrediction(NamedTuple):
    """The parts of one cloud.

    Attributes:
        labels: ``(N,)`` int64 global part labels of every point of the input
            (``-1`` for points with non-finite coordinates).
        category: The object category used.
        parts: Part name -> number of points, for the parts found.
        path: The file the cloud came from, or ``None``.
    """

    labels: np.ndarray
    category: str
    parts: dict[str, int]
    path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {} if self.path is None else {"path": self.path}
        out.update(
            category=self.category, num_points=len(self.labels), parts=self.parts
        )
        return out


class PartSegmenter(Predictor):
    """Label the parts of point clouds with a trained part segmenter.

    Arguments are those of :class:`~pointnet1x1.engine.predictor.Predictor`
    (``class_names`` are the part names), plus:

    Args:
        category_names: The object categories, in the model's index order.
        seg_classes: Category name -> the indices of its parts.

    Example:
        >>> seg = PartSegmenter.from_checkpoint("runs/parts")
        >>> seg.predict("plane.ply", category="Airplane")[0].parts
    """

    task = "partseg"

    def __init__(
        self,
        model: nn.Module | Any,
        class_names: Sequence[str],
        *,
        category_names: Sequence[str],
        seg_classes: dict[str, Sequence[int]],
        **kwargs: Any,
    ) -> None:
        super().__init__(model, class_names, **kwargs)
        self.category_names = list(category_names)
        self.seg_classes = {c: list(p) for c, p in seg_classes.items()}
        missing = [c for c in self.category_names if c not in self.seg_classes]
        if missing:
            raise ValueError(f"seg_classes lacks the parts of categories {missing}")
        self._mask = category_mask(
            {c: self.seg_classes[c] for c in self.category_names}, len(self.class_names)
        )

    @classmethod
    def _build(cls, model: Any, meta: dict[str, Any], **kwargs: Any) -> Any:
        extra = meta.get("extra", {})
        if "category_names" not in extra or "seg_classes" not in extra:
            from pointnet1x1.data.shapenetpart import CATEGORIES, SEG_CLASSES

            # checkpoints written before these were recorded: ShapeNetPart's
            extra = {
                "category_names": list(CATEGORIES),
                "seg_classes": dict(SEG_CLASSES),
                **extra,
            }
        out = cls(
            model, meta["class_names"], preprocessing=meta["preprocessing"],
            category_names=extra["category_names"], seg_classes=extra["seg_classes"], **kwargs,
        )  # fmt: skip
        out.metadata = meta
        return out

    def category_index(self, category: int | str) -> int:
        """The index of a category given by name (any case) or index."""
        if isinstance(category, str):
            names = {c.lower(): i for i, c in enumerate(self.category_names)}
            if category.lower() not in names:
                raise ValueError(
                    f"unknown category {category!r}; choose from {', '.join(self.category_names)}"
                )
            return names[category.lower()]
        if not 0 <= int(category) < len(self.category_names):
            raise ValueError(
                f"category must be in [0, {len(self.category_names)}), got {category}"
            )
        return int(category)

    @torch.no_grad()
    def predict_labels(
        self, cloud: Any, category: int | str, name: str = "cloud"
    ) -> np.ndarray:
        """``(N,)`` part labels of every point of one cloud (file, array or tensor)."""
        index = self.category_index(category)
        points, normals, name = read_cloud(cloud, name)
        finite = np.isfinite(points[:, :3]).all(axis=1)
        if normals is not None:
            normals = normals[finite]
        x = self.preprocessing.prepare(
            points[finite],
            normals,
            input_up_axis=self.input_up_axis,
            sample=False,
            name=name,
        )
        cat = torch.tensor([index], device=self.device)
        logits = self.backend(self._to_device(x[None]), cat)  # (1, P, N)
        labels = np.full(len(points), -1, dtype=np.int64)
        labels[finite] = restrict_to_category(logits, cat, self._mask)[0].cpu().numpy()
        return labels

    def predict(self, x: Any, category: int | str) -> list[PartPrediction]:
        """The parts of every cloud.

        Args:
            x: One ``(N, 3+F)`` cloud, a ``(B, N, 3+F)`` array, a list of clouds of
                any sizes, or file paths (any supported format).
            category: The object category of the clouds (name or index).

        Returns:
            One :class:`PartPrediction` per cloud, in order.
        """
        name = self.category_names[self.category_index(category)]
        out = []
        for i, (cloud, path) in enumerate(zip(*_clouds(x), strict=True)):
            labels = self.predict_labels(cloud, category, path or f"cloud {i}")
            found, counts = np.unique(labels[labels >= 0], return_counts=True)
            parts = {
                self.class_names[p]: int(n) for p, n in zip(found, counts, strict=True)
            }
            out.append(PartPrediction(labels, name, parts, path))
        return out

    def segment_files(
        self,
        paths: Sequence[str | os.PathLike[str]],
        category: int | str,
        out_dir: str | os.PathLike[str],
        *,
        file_format: str = "ply",
    ) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
        """Label every point of files and folders; write ``<stem>.parts.<format>``.

        Each file's labels go to ``out_dir`` (PLY with a ``label`` property, or
        NPY), and a ``summary.json`` of the results beside them.

        Returns:
            One summary per labelled file (``path``, ``category``, ``num_points``,
            ``labels`` (the file written), ``parts``), and ``(path, message)``
            for each path that could not be read.
        """
        results: list[dict[str, Any]] = []
        problems: list[tuple[str, str]] = []
        for path, result, problem in self.iter_segment_files(
            paths, category, out_dir, file_format=file_format
        ):
            if result is not None:
                results.append(result)
            else:
                problems.append((path, str(problem)))
        return results, problems

    def iter_segment_files(
        self,
        paths: Sequence[str | os.PathLike[str]],
        category: int | str,
        out_dir: str | os.PathLike[str],
        *,
        file_format: str = "ply",
    ) -> Iterator[tuple[str, dict[str, Any] | None, str | None]]:
        """:meth:`segment_files` one file at a time, as each is done: ``(path,
        summary, None)`` or ``(path, None, problem)``; paths that name no file
        come first, ``summary.json`` is written once the last file is done."""
        if file_format not in ("ply", "npy"):
            raise ValueError(f"file_format must be ply or npy, got {file_format!r}")
        name = self.category_names[self.category_index(category)]
        out, (files, problems) = Path(out_dir), find_files(paths)
        for where, message in problems:
            yield where, None, message
        results: list[dict[str, Any]] = []
        used: set[str] = set()
        for path in files:
            try:
                points, normals, _ = read_cloud(path)
                pts = (
                    points
                    if normals is None
                    else np.concatenate([points[:, :3], normals], axis=1)
                )
                labels = self.predict_labels(pts, category, str(path))
            except (ValueError, OSError) as err:
                yield str(path), None, one_line(err)
                continue
            stem = path.stem
            while f"{stem}.parts.{file_format}" in used:  # same name, other folder
                stem += "_"
            used.add(f"{stem}.parts.{file_format}")
            target = write_part_labels(out / f"{stem}.parts.{file_format}", pts, labels)
            found, counts = np.unique(labels[labels >= 0], return_counts=True)
            parts = {
                self.class_names[p]: int(n) for p, n in zip(found, counts, strict=True)
            }
            result = {
                "path": str(path), "category": name, "num_points": len(points),
                "labels": str(target), "parts": parts,
            }  # fmt: skip
            results.append(result)
            yield str(path), result, None
        if results:
            from pointnet1x1._atomic import atomic_write_json

            atomic_write_json(out / "summary.json", results)

    def __repr__(self) -> str:
        prep = self.preprocessing
        return (
            f"PartSegmenter(parts={len(self.class_names)}, categories={len(self.category_names)}, "
            f"features={list(prep.features)}, up_axis={self.input_up_axis!r}->{prep.up_axis!r}, "
            f"backend={self.backend!r})"
        )


def write_part_labels(path: str | os.PathLike[str], points: Any, labels: Any) -> Path:
    """Write per-point part labels, atomically.

    ``.ply``: binary PLY of the points (``x y z`` and normals when given) with an
    int ``label`` property; ``.npy``: the ``(N,)`` int64 labels; ``.txt``:
    ``x y z label`` rows.
    """
    path = Path(path)
    pts, lab = np.asarray(points, dtype=np.float32), np.asarray(labels).astype(np.int64)
    if pts.ndim != 2 or pts.shape[1] < 3 or lab.shape != (len(pts),):
        raise ValueError(
            f"expected points (N, 3+F) and labels (N,), got {pts.shape} and {lab.shape}"
        )
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return atomic_write(path, lambda f: np.save(f, lab))
    if suffix == ".txt":
        rows = np.column_stack([pts[:, :3], lab])
        return atomic_write(
            path, lambda f: np.savetxt(f, rows, fmt="%.6f %.6f %.6f %d")
        )
    if suffix == ".ply":
        from plyfile import PlyData, PlyElement

        names = ["x", "y", "z", "nx", "ny", "nz"][: 6 if pts.shape[1] >= 6 else 3]
        vertex = np.empty(
            len(pts), dtype=[*((n, "f4") for n in names), ("label", "i4")]
        )
        for i, name in enumerate(names):
            vertex[name] = pts[:, i]
        vertex["label"] = lab
        ply = PlyData([PlyElement.describe(vertex, "vertex")])
        return atomic_write(path, ply.write)
    raise ValueError(
        f"{path}: cannot write part labels as {suffix!r}; use .ply, .npy or .txt"
    )
