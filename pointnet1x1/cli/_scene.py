"""Classify the objects in a scan: a table top, a room, anything with a floor.

SCAN (any supported format, NaN points and organised clouds included) is cleaned
(voxel grid, statistical outliers), its planes are found with RANSAC, gravity is
taken from the support plane (the largest plane that things stand on) unless --up
gives it, the planes are removed and the rest is split into objects with DBSCAN.
Each object standing on the support plane (every cluster with --all-clusters) is
turned z up and classified with the checkpoint's own preprocessing. Prints one
line per object (id, points, centroid, oriented extent, label, probability, top-k;
--json for JSON); an object below --min-probability is "unknown". Writes to --out
a PLY of the scene with object_id, label and plane_id per point, a PNG of the
scene coloured by object with the labels, and the JSON. Distances are in the
scan's units; left out, they are derived from the scan's point spacing.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

# the scene parameters the command line sets: (field of SceneParams, type, help)
_PARAMS: tuple[tuple[str, Any, str], ...] = (
    ("voxel_size", float, "voxel grid edge (default: 3 x the median point spacing)"),
    ("outlier_neighbors", int, "statistical outlier removal: neighbours (default: 20)"),
    ("outlier_std_ratio", float, "... standard deviations kept (default: 2.0)"),
    ("plane_distance", float, "RANSAC inlier distance (default: 2 voxels)"),
    ("plane_iterations", int, "RANSAC iterations per plane (default: 1000)"),
    ("num_planes", int, "planes found and removed at most (default: 3)"),
    ("min_plane_fraction", float,
     "smallest plane, as a fraction of the points (default: 0.1)"),
    ("support_height", float,
     "how high above a plane points stand on it (default: half its shorter side)"),
    ("cluster_eps", float, "DBSCAN radius (default: 3 voxels)"),
    ("cluster_min_points", int, "DBSCAN neighbours of a core point (default: 10)"),
    ("min_cluster_points", int, "smallest object, in voxel points (default: 50)"),
    ("max_cluster_points", int, "largest object, in voxel points (default: none)"),
    ("up", str, "the scan's up direction if known: x, y, z, -x, -y, -z or 'X,Y,Z' "
     "(default: from the support plane)"),
    ("seed", int, "seed of RANSAC's sampling (default: 0)"),
)  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a("checkpoint", metavar="CKPT", help="classification checkpoint or run folder")
    a("scan", metavar="SCAN", help="the scan: PCD, PLY, LAS, E57, XYZ, NPY, ...")
    a("--out", default="scenes", metavar="DIR",
      help="where <scan>.objects.{ply,png,json} go (default: ./scenes)")  # fmt: skip
    a("--json", action="store_true", help="print JSON instead of a table")
    a("--top-k", type=int, default=3, help="classes shown per object (default: 3)")
    a("--min-probability", type=float, default=None, metavar="P",
      help="objects whose top probability is below P are 'unknown' (JSON: null "
      "label, scores kept); default: 0.5")  # fmt: skip
    a("--all-clusters", action="store_true",
      help="classify every cluster, not only those standing on the support plane")  # fmt: skip
    a("--no-picture", action="store_true", help="do not draw the PNG")
    a("--device", default="cpu", help="cpu (default), auto, cuda or cuda:N")
    a("--precision", choices=["fp32", "bf16"], default="fp32")
    group = parser.add_argument_group("scene parameters (in the scan's units)")
    for name, kind, text in _PARAMS:
        metavar = {int: "N", float: "X"}.get(kind, name.upper())
        group.add_argument(
            "--" + name.replace("_", "-"),
            type=kind,
            default=None,
            metavar=metavar,
            help=text,
        )


def _params(args: argparse.Namespace) -> Any:
    from pointnet1x1.scene import SceneParams

    given = {n: getattr(args, n) for n, _, _ in _PARAMS if getattr(args, n) is not None}
    if isinstance(given.get("up"), str) and "," in given["up"]:
        try:
            given["up"] = tuple(float(v) for v in given["up"].split(","))
        except ValueError:
            raise ValueError(
                f"--up must be an axis or three numbers 'X,Y,Z', got {args.up!r}"
            ) from None
    return SceneParams(**given)


def _vector(values: Any, digits: int = 3) -> str:
    return "(" + ", ".join(f"{float(v):.{digits}f}" for v in values) + ")"


def _print_table(result: Any) -> None:
    scene = result.scene
    voxel = scene.params.voxel_size
    support = "no support plane" if scene.support is None else "a support plane"
    print(
        f"{scene.path}: {scene.num_input_points:,} points ({scene.num_finite_points:,} "
        f"finite) -> {len(scene.points):,} at a {voxel:.4g} voxel; "
        f"{len(scene.planes)} planes, {support}; up {_vector(scene.up)} "
        f"({scene.up_source}); {len(scene.clusters)} clusters, "
        f"{len(result.objects)} classified"
    )
    for obj in result.objects:
        c = obj.cluster
        label = "unknown" if obj.label is None else obj.label
        extent = " x ".join(f"{v:.3f}" for v in c.extent)
        others = ", ".join(f"{n} {p:.3f}" for n, p in obj.top_k)
        print(
            f"  {c.id:3d}  {c.num_points:6d} points  centroid {_vector(c.centroid)}  "
            f"extent {extent}  {label:<12s} {obj.probability:6.3f}   "
            f"top-{len(obj.top_k)}: {others}"
        )


def run(args: argparse.Namespace) -> int:
    import json
    import time
    from pathlib import Path

    from pointnet1x1.engine.config import check_device

    check_device(args.device)
    if args.top_k <= 0:
        raise ValueError(f"--top-k must be positive, got {args.top_k}")
    if args.min_probability is not None and not 0 <= args.min_probability <= 1:
        raise ValueError(
            f"--min-probability must be in [0, 1], got {args.min_probability}"
        )
    params = _params(args)
    if not Path(args.scan).is_file():
        raise FileNotFoundError(f"{args.scan}: no such file")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out}: is a file, expected a folder")

    from pointnet1x1._atomic import atomic_write_json
    from pointnet1x1.engine.checkpoint import read_checkpoint_metadata
    from pointnet1x1.io.axes import MODEL_UP_AXIS
    from pointnet1x1.scene import (
        DEFAULT_MIN_PROBABILITY,
        classify_scene,
        render_scene,
        segment_scene,
        write_scene_ply,
    )

    start = time.perf_counter()
    metadata = read_checkpoint_metadata(args.checkpoint)
    if metadata.get("extra", {}).get("task") == "partseg":
        raise ValueError(
            f"{args.checkpoint} is a part segmenter: scenes need a classifier"
        )
    checkpoint_time = time.perf_counter() - start  # torch's import, mostly
    scene = segment_scene(args.scan, params)
    scene.timings["checkpoint"] = checkpoint_time
    start = time.perf_counter()
    from pointnet1x1.engine.predict import Classifier

    clf = Classifier.from_checkpoint(
        args.checkpoint,
        device=args.device,
        precision=args.precision,
        input_up_axis=MODEL_UP_AXIS,  # scene objects come z up, the model convention
    )
    scene.timings["model"] = time.perf_counter() - start
    threshold = (
        DEFAULT_MIN_PROBABILITY
        if args.min_probability is None
        else args.min_probability
    )
    result = classify_scene(
        scene,
        clf,
        top_k=args.top_k,
        min_probability=threshold,
        clusters="all" if args.all_clusters else "supported",
    )
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{Path(args.scan).stem}.objects"
    start = time.perf_counter()
    written = [write_scene_ply(out / f"{stem}.ply", result)]
    if not args.no_picture:
        written.append(render_scene(out / f"{stem}.png", result))
    result.timings["write"] = time.perf_counter() - start
    document = result.to_dict()
    written.append(atomic_write_json(out / f"{stem}.json", document))
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        _print_table(result)
    print("wrote " + ", ".join(str(p) for p in written), file=sys.stderr)
    return 0
