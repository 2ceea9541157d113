"""Convert a PointNet classifier trained with fxia22/pointnet.pytorch or
yanx27/Pointnet_Pointnet2_pytorch into a pointnet1x1 checkpoint.

The source is read with torch.load(weights_only=True) (never unpickled freely);
the converter builds the matching PointNetClassifier (their encoder widths
64 | 128, 1024; the feature T-Net when the file has one) and checks every
parameter name and shape. Use the result with classify, eval or export.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="the source .pth (state_dict or model_state_dict)")
    parser.add_argument(
        "--from",
        dest="source",
        required=True,
        choices=["fxia22", "yanx27"],
        help="which repository trained it",
    )
    parser.add_argument(
        "--classes",
        required=True,
        metavar="NAMES_FILE",
        help="text file with one class name per line, in the order of the logits "
        "(e.g. modelnet40_shape_names.txt)",
    )
    parser.add_argument("--out", required=True, help="output checkpoint (.safetensors)")
    parser.add_argument(
        "--num-points",
        type=int,
        default=None,
        help="points per cloud at inference (default: the source's training "
        "default, fxia22 2500, yanx27 1024)",
    )


def run(args: argparse.Namespace) -> int:
    from pointnet1x1.convert import convert_checkpoint, read_class_names

    names = read_class_names(args.classes)
    path, converted = convert_checkpoint(
        args.file,
        args.out,
        source=args.source,
        class_names=names,
        num_points=args.num_points,
    )
    kw = converted.model_kwargs
    print(
        f"converted {args.source} PointNet ({kw['num_classes']} classes, "
        f"feature transform: {'yes' if kw['feature_transform'] else 'no'}) -> {path}"
    )
    for note in converted.notes:
        print(f"  note: {note}")
    return 0
