"""Draw point clouds to a PNG, headless (matplotlib 3-D scatter, several views).

Points are coloured by height, or with --checkpoint of a part segmenter by the
predicted part (with --category for models that need the object category).
"""

from __future__ import annotations

import argparse
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a("files", nargs="+", metavar="FILE", help="point-cloud or mesh files")
    a("--out", required=True, metavar="PNG", help="the picture to write")
    a(
        "--up-axis",
        choices=["x", "y", "z"],
        default="y",
        help="axis drawn vertically (default: y)",
    )
    a(
        "--max-points",
        type=int,
        default=4096,
        help="points drawn per cloud (default: 4096)",
    )
    a(
        "--checkpoint",
        metavar="CKPT",
        default=None,
        help="colour by the parts a segmenter predicts",
    )
    a(
        "--category",
        default=None,
        help="object category for the segmenter (e.g. Airplane)",
    )


def _part_colours(ckpt: str, clouds: list[Any], category: str | None) -> list[Any]:
    from pointnet1x1.engine.checkpoint import load_model_checkpoint
    from pointnet1x1.engine.partseg import predict_parts

    loaded = load_model_checkpoint(ckpt)
    extra = loaded.metadata.get("extra", {})
    if extra.get("task") != "partseg":
        raise ValueError(
            f"{ckpt}: not a part-segmentation checkpoint "
            f"(its task is {extra.get('task', 'cls')!r})"
        )
    if category is None:
        names = ", ".join(extra.get("category_names", []))
        raise ValueError(f"colouring by part needs --category (one of: {names})")
    return [
        predict_parts(loaded.model, cloud, category).astype(float) for cloud in clouds
    ]


def run(args: argparse.Namespace) -> int:
    if args.max_points <= 0:
        raise ValueError(f"--max-points must be positive, got {args.max_points}")
    from pathlib import Path

    import numpy as np

    from pointnet1x1.engine.plots import render_clouds
    from pointnet1x1.io import read_points

    clouds, titles = [], []
    for path in args.files:
        pc = read_points(path)
        cloud = (
            pc.points
            if pc.normals is None
            else np.concatenate([pc.points, pc.normals], axis=1)
        )
        clouds.append(cloud)
        titles.append(f"{Path(path).name} ({len(pc.points):,} points)")
    colours = None
    if args.checkpoint:
        colours = _part_colours(args.checkpoint, clouds, args.category)
    render_clouds(
        clouds,
        args.out,
        titles=titles,
        colors=colours,
        up_axis=args.up_axis,
        max_points=args.max_points,
    )
    print(f"wrote {args.out}")
    return 0
