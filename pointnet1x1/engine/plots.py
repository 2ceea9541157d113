"""Headless pictures (matplotlib Agg, no pyplot, no display needed).

:func:`plot_curves` and :func:`plot_confusion` for the run folder,
:func:`render_clouds` for ``show`` and ``eval --render-errors``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pointnet1x1._atomic import atomic_savefig
from pointnet1x1.io.axes import convert_up_axis

# (elevation, azimuth) of the views of each cloud; matplotlib's z is vertical.
VIEWS: tuple[tuple[float, float], ...] = ((20, -60), (20, 30), (90, -90))


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


_CLASSIFICATION = (
    ("train_oa", "train OA"),
    ("val_oa", "val OA"),
    ("val_macc", "val mAcc"),
)


def plot_curves(
    history: Sequence[dict[str, Any]],
    path: str | os.PathLike[str],
    metrics: Sequence[tuple[str, str]] = _CLASSIFICATION,
) -> Path:
    """Loss and the task's figures per epoch (train and validation) into one PNG.

    Args:
        history: The records of ``metrics.jsonl``.
        path: The PNG to write.
        metrics: ``(key, label)`` of the fractions to draw beside the loss.
    """
    fig = _figure(10, 4)
    ax_loss, ax_acc = fig.subplots(1, 2)
    epochs = [h["epoch"] for h in history]
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        ax_loss.plot(epochs, [h[key] for h in history], marker=".", label=label)
    for key, label in metrics:
        ax_acc.plot(epochs, [h[key] for h in history], marker=".", label=label)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="fraction", title="accuracy", ylim=(0, 1.01))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return atomic_savefig(path, fig)


def plot_confusion(
    confusion: Sequence[Sequence[int]],
    class_names: Sequence[str],
    path: str | os.PathLike[str],
    title: str = "confusion matrix",
) -> Path:
    """Row-normalised confusion matrix (true class per row) with counts."""
    conf = np.asarray(confusion, dtype=np.float64)
    k = len(class_names)
    rows = conf / np.maximum(conf.sum(axis=1, keepdims=True), 1)
    size = min(4 + 0.35 * k, 20)
    fig = _figure(size + 1.5, size)
    ax = fig.subplots()
    image = ax.imshow(rows, vmin=0, vmax=1, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(
        range(k), labels=class_names, rotation=90, fontsize=max(5, 10 - k // 8)
    )
    ax.set_yticks(range(k), labels=class_names, fontsize=max(5, 10 - k // 8))
    ax.set(xlabel="predicted", ylabel="true", title=title)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                if conf[i, j]:
                    color = "white" if rows[i, j] > 0.5 else "black"
                    ax.text(
                        j,
                        i,
                        f"{int(conf[i, j])}",
                        ha="center",
                        va="center",
                        fontsize=8,
                        color=color,
                    )
    fig.tight_layout()
    return atomic_savefig(path, fig)


def render_clouds(
    clouds: Sequence[np.ndarray],
    path: str | os.PathLike[str],
    *,
    titles: Sequence[str] | None = None,
    colors: Sequence[np.ndarray | None] | None = None,
    views: Sequence[tuple[float, float]] = VIEWS,
    up_axis: str = "z",
    max_points: int = 4096,
    point_size: float | None = None,
) -> Path:
    """Draw each cloud from several views, one row per cloud, into one PNG.

    Args:
        clouds: Arrays of shape (N_i, 3+) (only xyz is drawn).
        titles: One title per cloud.
        colors: Per cloud, values (N_i,) for a colormap (e.g. part labels) or
            None to colour by height along ``up_axis``.
        up_axis: The clouds' up axis, drawn vertically (converted to
            matplotlib's z with :func:`~pointnet1x1.io.axes.convert_up_axis`).
    """
    fig = _figure(3.2 * len(views), 3.2 * len(clouds) + 0.2)
    rng = np.random.default_rng(0)
    for row, cloud in enumerate(clouds):
        xyz = np.asarray(cloud, dtype=np.float64)[:, :3]
        value = None if colors is None else colors[row]
        keep = np.arange(len(xyz))
        if len(xyz) > max_points:
            keep = np.sort(rng.choice(len(xyz), max_points, replace=False))
        xyz = convert_up_axis(xyz[keep], up_axis, "z")
        c = xyz[:, 2] if value is None else np.asarray(value)[keep]
        cmap = "viridis" if value is None else "tab20"
        centre = (xyz.max(0) + xyz.min(0)) / 2 if len(xyz) else np.zeros(3)
        half = (
            max(float((xyz.max(0) - xyz.min(0)).max()) / 2, 1e-9) if len(xyz) else 1.0
        )
        for col, (elev, azim) in enumerate(views):
            ax = fig.add_subplot(
                len(clouds), len(views), row * len(views) + col + 1, projection="3d"
            )
            size = point_size or float(np.clip(3000 / max(len(xyz), 1), 1.0, 10.0))
            ax.scatter(
                xyz[:, 0], xyz[:, 1], xyz[:, 2], c=c, cmap=cmap, s=size, linewidths=0
            )
            ax.view_init(elev=elev, azim=azim)
            for setter, mid in zip(
                (ax.set_xlim, ax.set_ylim, ax.set_zlim), centre, strict=True
            ):
                setter(mid - half, mid + half)
            ax.set_box_aspect((1, 1, 1))
            ax.set_axis_off()
            if col == 0 and titles is not None:
                ax.set_title(titles[row], fontsize=9, loc="left")
    fig.subplots_adjust(left=0, right=1, bottom=0, top=0.95, wspace=0, hspace=0.1)
    return atomic_savefig(path, fig)


def draw_files(
    paths: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    up_axis: str,
    max_points: int = 4096,
    segmenter: Any = None,
    category: str | int | None = None,
) -> Path:
    """Read point-cloud / mesh files and draw them with ``up_axis`` vertical.

    With a :class:`~pointnet1x1.engine.segment.PartSegmenter` (and the object
    ``category``) the points are coloured by their predicted part.
    """
    from pointnet1x1.engine.predictor import read_cloud

    clouds, titles, colours = [], [], []
    for path in paths:
        points, normals, _ = read_cloud(path)
        clouds.append(points)
        titles.append(f"{Path(path).name} ({len(points):,} points)")
        if segmenter is not None:
            assert category is not None
            cloud = (
                points
                if normals is None
                else np.concatenate([points[:, :3], normals], 1)
            )
            colours.append(
                segmenter.predict_labels(cloud, category, str(path)).astype(float)
            )
    return render_clouds(
        clouds, out, titles=titles, colors=colours if segmenter is not None else None,
        up_axis=up_axis, max_points=max_points,
    )  # fmt: skip
