"""What a scene run leaves behind: a labelled PLY and a picture.

- :func:`write_scene_ply`: the scene's points (cleaned, at the voxel resolution, in
  the scan's coordinates) with their colours and three int32 properties per point,
  ``object_id`` (-1: no object), ``label`` (the class index of the point's object,
  -1: none or unknown) and ``plane_id`` (-1: no plane). Our
  :func:`~pointnet1x1.io.read_points` gives them back as ``fields``, Open3D's
  tensor reader (``open3d.t.io.read_point_cloud``) as point attributes.
- :func:`render_scene`: a PNG (matplotlib, headless) seen from above the support
  plane at an angle, gravity up, from the side of the scan's origin (the sensor),
  objects coloured by id with ``id: label probability`` written above each.

Shape:
    per-point ids ``(M,)`` for the scene's ``(M, 3)`` points.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from pointnet1x1.scene.classify import SceneResult
from pointnet1x1.scene.segment import Scene

__all__ = ["render_scene", "write_scene_ply"]

PathLike = str | os.PathLike[str]
_PLANE_GREY, _OTHER_GREY = 0.82, 0.55  # plane points, points of no object
_FADE = 0.6  # share of a scan's own colour kept for the points of no object
_ZOOM = 1.45  # matplotlib's 3-D axes leave wide margins


def _split(scene: Scene | SceneResult) -> tuple[Scene, SceneResult | None]:
    if isinstance(scene, SceneResult):
        return scene.scene, scene
    return scene, None


def write_scene_ply(path: PathLike, scene: Scene | SceneResult) -> Path:
    """Write the scene's points with ``object_id``, ``label``, ``plane_id`` (PLY).

    Args:
        path: The ``.ply`` file (written atomically).
        scene: A :class:`Scene`, or a :class:`SceneResult` (for the labels; a
            bare scene writes -1 labels).

    Returns:
        The path written.
    """
    from pointnet1x1.io import PointCloud, write_points

    base, result = _split(scene)
    if Path(path).suffix.lower() != ".ply":
        raise ValueError(f"{path}: a scene is written as PLY (.ply), not {path!r}")
    labels = (
        result.label_ids()
        if result is not None
        else np.full(len(base.points), -1, np.int32)
    )
    cloud = PointCloud(
        base.points,
        colors=base.colors,
        fields={
            "object_id": base.object_ids.astype(np.int32),
            "label": labels.astype(np.int32),
            "plane_id": base.plane_ids.astype(np.int32),
        },
    )
    write_points(path, cloud)
    return Path(path)


def _view_box(
    scene: Scene, result: SceneResult | None, aligned: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper corners of what is drawn: the support plane and the objects
    classified (or standing on it, or all), with a margin."""
    keep = np.zeros(len(aligned), bool)
    shown = [o.cluster for o in result.objects] if result is not None else []
    shown = shown or [c for c in scene.clusters if c.on_support] or scene.clusters
    for cluster in shown:
        keep[cluster.indices] = True
    if scene.support is not None:
        keep |= scene.plane_ids == scene.support
    chosen = aligned[keep] if keep.any() else aligned
    low, high = np.percentile(chosen, 0.5, axis=0), np.percentile(chosen, 99.5, axis=0)
    margin = 0.08 * float((high - low).max()) + 1e-9
    return low - margin, high + margin


def render_scene(
    path: PathLike,
    scene: Scene | SceneResult,
    *,
    max_points: int = 30000,
    elevation: float = 35.0,
    title: str | None = None,
) -> Path:
    """Draw the scene, gravity up, objects coloured and labelled, into a PNG.

    Args:
        path: The PNG (written atomically).
        scene: A :class:`Scene` (objects numbered) or a :class:`SceneResult`
            (objects labelled with their class and probability, unknown ones
            ``unknown``).
        max_points: Points drawn at most (a seeded sample; objects keep theirs).
        elevation: Degrees above the support plane the view looks from.
        title: The picture's title (default: the file name and the counts).

    Returns:
        The path written.
    """
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from pointnet1x1._atomic import atomic_savefig

    base, result = _split(scene)
    aligned = base.aligned()  # (M, 3), z up
    low, high = _view_box(base, result, aligned)
    inside = np.flatnonzero(((aligned >= low) & (aligned <= high)).all(axis=1))
    on_object = inside[base.object_ids[inside] >= 0]
    rest = inside[base.object_ids[inside] < 0]
    budget = max(max_points - len(on_object), 0)
    if len(rest) > budget:
        rest = np.sort(np.random.default_rng(0).choice(rest, budget, replace=False))
    drawn = np.concatenate([rest, on_object])
    palette = colormaps["tab10"]
    colours = np.full((len(drawn), 4), 1.0)
    if base.colors is not None:  # the scan's own colours, faded, around the objects
        colours[:, :3] = _FADE * base.colors[drawn] + (1 - _FADE)
    else:
        grey = np.where(base.plane_ids[drawn] >= 0, _PLANE_GREY, _OTHER_GREY)
        colours[:, :3] = grey[:, None]
    ids = base.object_ids[drawn]
    colours[ids >= 0] = palette(ids[ids >= 0] % 10)
    fig = Figure(figsize=(8, 5.6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(projection="3d")
    xyz = aligned[drawn]
    sizes = np.where(ids >= 0, 2.5, 1.0)
    ax.scatter(*xyz.T, c=colours, s=sizes, linewidths=0, depthshade=False)
    for cluster, text in _labels(base, result):
        pts = aligned[cluster.indices]
        top = pts[:, 2].max() + 0.04 * float((high - low).max())
        x, y = pts[:, 0].mean(), pts[:, 1].mean()
        if not ((low[:2] <= (x, y)).all() and ((x, y) <= high[:2]).all()):
            continue
        ax.text(x, y, top, text, fontsize=9, ha="center", va="bottom", zorder=10,
                bbox={"boxstyle": "round,pad=0.2", "fc": "white", "alpha": 0.85,
                      "ec": palette(cluster.id % 10)})  # fmt: skip
    _look_from_origin(ax, base, low, high, elevation)
    fig.suptitle(title or _title(base, result), fontsize=10)
    fig.subplots_adjust(left=0, right=1, bottom=0, top=0.94)
    return atomic_savefig(path, fig)


def _labels(base: Scene, result: SceneResult | None) -> list[tuple[Any, str]]:
    if result is None:
        return [(c, f"{c.id}") for c in base.clusters if c.on_support]
    out = []
    for obj in result.objects:
        name = "unknown" if obj.label is None else obj.label
        out.append((obj.cluster, f"{obj.cluster.id}: {name} {obj.probability:.2f}"))
    return out


def _title(base: Scene, result: SceneResult | None) -> str:
    name = Path(base.path).name if base.path else "scene"
    count = f"{len(base.clusters)} clusters"
    if result is not None:
        count += f", {len(result.objects)} classified"
    source = {"assumed": "assumed, no plane found"}.get(base.up_source, base.up_source)
    return f"{name}\n{count}; up: {source}"


def _look_from_origin(
    ax: Any, scene: Scene, low: np.ndarray, high: np.ndarray, elevation: float
) -> None:
    """One scale on all axes over the box; look from the side of the scan's origin."""
    centre = (low + high) / 2
    half = float((high[:2] - low[:2]).max()) / 2
    ax.set_xlim(centre[0] - half, centre[0] + half)
    ax.set_ylim(centre[1] - half, centre[1] + half)
    ax.set_zlim(low[2], high[2])
    aspect = max(float(high[2] - low[2]) / (2 * half), 0.05)
    ax.set_box_aspect((1, 1, aspect), zoom=_ZOOM)
    sensor = scene.aligned(np.zeros((1, 3)))[0] - centre
    azimuth = -60.0
    if np.hypot(sensor[0], sensor[1]) > 1e-6 * (half + 1):
        azimuth = float(np.degrees(np.arctan2(sensor[1], sensor[0])))
    ax.view_init(elev=elevation, azim=azimuth)
    ax.set_axis_off()
