"""Draw point clouds to a PNG, headless (matplotlib 3-D scatter, several views).

Each file is drawn with its up axis vertical: files are taken to be z up (ModelNet
OFF meshes, the ModelNet40 npy tree, most scans) unless --up-axis says otherwise.
Points are coloured by height, or with --checkpoint of a part segmenter by the
predicted part (--category names the object category); the file is converted to
the model's up axis for the prediction, as ``classify`` does.

``show CKPT FILE --critical --out PNG`` draws the file as a PointNet classifier
sees it (the checkpoint's preprocessing: its points, centred and scaled) with its
critical set highlighted: the points that win the max pool (PointNet paper, Fig.
7; :func:`pointnet1x1.models.critical.critical_points`), and prints their count.
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
    a("--critical", action="store_true",
      help="`show CKPT FILE --critical`: draw FILE as the PointNet classifier CKPT "
      "sees it with its critical points (the max pool's winners) highlighted, and "
      "print their count")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    if args.max_points <= 0:
        raise ValueError(f"--max-points must be positive, got {args.max_points}")
    from pointnet1x1.engine.plots import draw_files
    from pointnet1x1.io.axes import FILE_UP_AXIS

    up_axis = args.up_axis or FILE_UP_AXIS
    if args.critical:
        return _critical(args, up_axis)
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


def _critical(args: argparse.Namespace, up_axis: str) -> int:
    """``show CKPT FILE --critical``: the critical set of one file, drawn and counted."""
    files = list(args.files)
    if args.checkpoint is None:
        if len(files) < 2:
            raise ValueError(
                "--critical needs a classifier checkpoint and one file: "
                "`pointnet1x1 show CKPT FILE --critical --out PNG`"
            )
        args.checkpoint = files.pop(0)
    if len(files) != 1:
        raise ValueError(
            f"--critical draws one file, got {len(files)}: {', '.join(files)}"
        )
    if args.category is not None:
        raise ValueError("--category is for part segmenters, not for --critical")
    from pointnet1x1.engine.predict import Classifier
    from pointnet1x1.models.critical import critical_points, render_critical_points

    clf = Classifier.from_checkpoint(
        args.checkpoint, device="cpu", input_up_axis=up_axis
    )
    assert clf.model is not None
    cloud = clf.preprocess(files[0])  # (num_points, C), the model's up axis
    critical = critical_points(clf.model, cloud)
    pred = clf.to_predictions(clf.predict_proba_preprocessed([cloud]), files, 1)[0]
    title = f"{files[0].rsplit('/', 1)[-1]}: {pred.label} ({pred.probability:.2f})"
    render_critical_points(
        cloud, critical, args.out, title=title, up_axis=clf.preprocessing.up_axis
    )
    print(
        f"{files[0]}: {critical.num_critical} critical points of {len(cloud)} "
        f"(predicted {pred.label}, {pred.probability:.2f})"
    )
    print(f"wrote {args.out}")
    return 0
