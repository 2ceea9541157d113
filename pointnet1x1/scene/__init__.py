"""Real scans: clean them, find gravity from their supporting planes, cut them into
objects and classify each (the only part of pointnet1x1 that uses Open3D).

::

    from pointnet1x1 import Classifier
    from pointnet1x1.scene import SceneParams, classify_scene, segment_scene

    scene = segment_scene("table.pcd", SceneParams())    # planes, gravity, clusters
    clf = Classifier.from_checkpoint("runs/x", input_up_axis="z")
    result = classify_scene(scene, clf, top_k=3)          # labels, probabilities
    write_scene_ply("table.objects.ply", result)          # object_id, label per point
    render_scene("table.objects.png", result)

Open3D is imported when a scene is segmented, never by ``import pointnet1x1`` or
``import pointnet1x1.scene``.

Shape:
    a scan ``(N, 3+F)`` in its own units and axes; scene points ``(M, 3)`` at the
    voxel resolution; objects ``(K, 3)`` each, turned z up for the model.
"""

from pointnet1x1.scene.classify import (
    DEFAULT_MIN_PROBABILITY,
    SceneObject,
    SceneResult,
    classify_scene,
)
from pointnet1x1.scene.clusters import Cluster
from pointnet1x1.scene.outputs import render_scene, write_scene_ply
from pointnet1x1.scene.params import SceneParams, median_spacing, resolve_params
from pointnet1x1.scene.planes import Plane
from pointnet1x1.scene.segment import Scene, segment_scene

__all__ = [
    "DEFAULT_MIN_PROBABILITY",
    "Cluster",
    "Plane",
    "Scene",
    "SceneObject",
    "SceneParams",
    "SceneResult",
    "classify_scene",
    "median_spacing",
    "render_scene",
    "resolve_params",
    "segment_scene",
    "write_scene_ply",
]
