"""Classify the objects of a segmented scene with a classifier given by the caller.

Each object's points are turned into the model's up convention (z up,
:data:`~pointnet1x1.io.axes.MODEL_UP_AXIS`) with the scene's gravity rotation and
handed to ``classifier.predict``, which applies the checkpoint's own preprocessing
(sampling, centring, scaling). A classifier that says it takes another up axis
(its ``input_up_axis``) gets them in that axis, through the one conversion.

A scene holds things the model has never seen (wall pieces, cables, clutter), and
it must say so: an object whose top probability is below ``min_probability`` gets
the label ``None`` ("unknown"), with its scores kept.

Shape:
    object points ``(K, 3)`` (``(K, 6)`` with normals) per object, z up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pointnet1x1.io.axes import MODEL_UP_AXIS, convert_up_axis
from pointnet1x1.scene.clusters import Cluster
from pointnet1x1.scene.segment import Scene

__all__ = ["DEFAULT_MIN_PROBABILITY", "SceneObject", "SceneResult", "classify_scene"]

# below this top probability a scene object is "unknown": scenes hold things that
# are none of the model's classes (the Classifier's probabilities, calibrated with the
# checkpoint's temperature where it has one: see engine.calibration)
DEFAULT_MIN_PROBABILITY = 0.5
CLUSTER_CHOICES = ("supported", "all")


@dataclass(frozen=True)
class SceneObject:
    """One classified object of a scene.

    Attributes:
        cluster: Its :class:`~pointnet1x1.scene.segment.Cluster` (id, points,
            centroid, oriented extent, height, support).
        label: The most probable class, or ``None`` when its probability is
            below the threshold ("unknown").
        probability: The top probability (kept for unknown objects too).
        class_index: The top class's index (also for unknown objects).
        top_k: ``(class name, probability)`` pairs, most probable first.
    """

    cluster: Cluster
    label: str | None
    probability: float
    class_index: int
    top_k: list[tuple[str, float]]

    @property
    def label_index(self) -> int:
        """The class index written per point: -1 for an unknown object."""
        return -1 if self.label is None else self.class_index

    def to_dict(self) -> dict[str, Any]:
        out = self.cluster.to_dict()
        out.update(
            label=self.label,
            probability=float(self.probability),
            class_index=int(self.class_index),
            top_k=[{"label": n, "probability": float(p)} for n, p in self.top_k],
        )
        return out


@dataclass(eq=False)
class SceneResult:
    """A scene and its classified objects (see :func:`classify_scene`)."""

    scene: Scene
    objects: list[SceneObject]
    class_names: list[str]
    min_probability: float
    clusters: str = "supported"
    timings: dict[str, float] = field(default_factory=dict)

    def label_ids(self) -> np.ndarray:
        """Int32 ``(M,)``: per scene point the class index of its object, or -1."""
        out = np.full(len(self.scene.points), -1, np.int32)
        for obj in self.objects:
            out[obj.cluster.indices] = obj.label_index
        return out

    def to_dict(self) -> dict[str, Any]:
        out = self.scene.to_dict()
        out["timings"] = {
            k: round(v, 4) for k, v in {**self.scene.timings, **self.timings}.items()
        }
        out.update(
            num_clusters=len(self.scene.clusters),
            clusters_classified=self.clusters,
            min_probability=self.min_probability,
            class_names=list(self.class_names),
            objects=[o.to_dict() for o in self.objects],
        )
        return out


def classify_scene(
    scene: Scene,
    classifier: Any,
    *,
    top_k: int = 3,
    min_probability: float = DEFAULT_MIN_PROBABILITY,
    clusters: str = "supported",
) -> SceneResult:
    """Classify the objects of ``scene``.

    Args:
        scene: From :func:`~pointnet1x1.scene.segment_scene`.
        classifier: A :class:`~pointnet1x1.Classifier` (or anything with
            ``predict(list of (K, C) arrays, top_k=...)`` returning predictions
            with ``label``, ``probability``, ``class_index`` and ``top_k``).
            Build it with ``input_up_axis="z"`` (the model convention): the
            objects are given z up, or in its ``input_up_axis`` if it has another.
        top_k: Classes kept per object.
        min_probability: Objects whose top probability is below this are unknown
            (label ``None``); 0 keeps every label.
        clusters: ``"supported"``: the clusters standing on the support plane
            (what is on the table, or on the floor); ``"all"``: every cluster.

    Returns:
        The :class:`SceneResult`, objects in the order of the scene's clusters.
    """
    if clusters not in CLUSTER_CHOICES:
        raise ValueError(f"clusters must be one of {CLUSTER_CHOICES}, got {clusters!r}")
    if not 0.0 <= min_probability <= 1.0:
        raise ValueError(f"min_probability must be in [0, 1], got {min_probability}")
    if top_k < 1:
        raise ValueError(f"top_k must be positive, got {top_k}")
    start = time.perf_counter()
    chosen = [c for c in scene.clusters if clusters == "all" or c.on_support]
    prep = getattr(classifier, "preprocessing", None)
    normals = bool(getattr(prep, "use_normals", False)) and scene.normals is not None
    axis = getattr(classifier, "input_up_axis", MODEL_UP_AXIS)
    clouds = []
    for cluster in chosen:
        pts = scene.object_points(cluster, normals=normals)  # z up
        if axis != MODEL_UP_AXIS:
            pts = convert_up_axis(pts, MODEL_UP_AXIS, axis, triples=1 + normals)
        clouds.append(pts)
    preds = classifier.predict(clouds, top_k=top_k) if clouds else []
    objects = [
        SceneObject(
            cluster=cluster,
            label=p.label if p.probability >= min_probability else None,
            probability=float(p.probability),
            class_index=int(p.class_index),
            top_k=[(str(n), float(q)) for n, q in p.top_k],
        )
        for cluster, p in zip(chosen, preds, strict=True)
    ]
    return SceneResult(
        scene=scene,
        objects=objects,
        class_names=list(getattr(classifier, "class_names", [])),
        min_probability=float(min_probability),
        clusters=clusters,
        timings={"classify": time.perf_counter() - start},
    )
