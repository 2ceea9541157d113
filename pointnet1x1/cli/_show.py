"""Draw point clouds to a PNG, headless (matplotlib 3-D scatter, several views).

Each file is drawn with its up axis vertical: files are taken to be z up (ModelNet
OFF meshes, the ModelNet40 npy tree, most scans) unless --up-axis says otherwise.
Points are coloured by height, or with --checkpoint of a part segmenter by the
predicted part (--category names the object category); the file is converted to
the model's up axis for the prediction, as ``classify`` does.
"""

from __future__ import annotations

import argparse

from pointnet1x1.cli._classify import UP_AXIS_HELP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a("files", nargs="+", metavar="FILE", help="point-cloud or mesh files")
    a("--out", required=True, metavar="PNG", help="the picture to write")
    a("--up-axis", choices=["x", "y", "z"], default=None,
      help=UP_AXIS_HELP.replace("converted to the model's up axis", "drawn with it vertical"))  # fmt: skip
    a(
        "--max-points",
        type=int,
        default=4096,
        help="points drawn per cloud (default: 4096)",
    )
    a("--checkpoint", metavar="CKPT", default=None,
      help="colour by the parts a segmenter predicts")  # fmt: skip
    a(
        "--category",
        default=None,
        help="object category for the segmenter (e.g. Airplane)",
    )


def run(args: argparse.Namespace) -> int:
    if args.max_points <= 0:
        raise ValueError(f"--max-points must be positive, got {args.max_points}")
    from pointnet1x1.engine.plots import draw_files
    from pointnet1x1.io.axes import FILE_UP_AXIS

    up_axis = args.up_axis or FILE_UP_AXIS
    segmenter = None
    if args.checkpoint:
        from pointnet1x1.engine.segment import PartSegmenter

        segmenter = PartSegmenter.from_checkpoint(
            args.checkpoint, device="cpu", input_up_axis=up_axis
        )
        if args.category is None:
            names = ", ".join(segmenter.category_names)
            raise ValueError(f"colouring by part needs --category (one of: {names})")
    draw_files(
        args.files, args.out, up_axis=up_axis, max_points=args.max_points,
        segmenter=segmenter, category=args.category,
    )  # fmt: skip
    print(f"wrote {args.out}")
    return 0
