"""Get, unpack, prepare and inspect datasets.

pointnet1x1 data download modelnet40 [--layout off|resampled|hdf5] [--root DIR]
pointnet1x1 data prepare --from-zip FILE [--root DIR] [--sha256 HEX]
pointnet1x1 data prepare ROOT [--num-points N]   (fill the cache of both splits)
pointnet1x1 data info [ROOT]                     (layout, classes, counts, missing)
pointnet1x1 data default                         (generate/print the default dataset)
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    p = sub.add_parser(
        "download", help="download, verify and unpack a published dataset"
    )
    p.add_argument("name", choices=["modelnet40", "modelnet10"], help="which dataset")
    p.add_argument("--layout", default="off", choices=["off", "resampled", "hdf5"],
                   help="published form: Princeton OFF meshes (default), "
                   "modelnet40_normal_resampled, or modelnet40_ply_hdf5_2048")  # fmt: skip
    p.add_argument(
        "--root", help="parent folder (default: $POINTNET1X1_DATA or the data home)"
    )
    p.add_argument("--url", help="a mirror URL to use instead of the published one")
    p.add_argument(
        "--sha256", help="expected sha256 of the archive (verified before unpacking)"
    )
    p.add_argument("--size", type=int, help="expected size of the archive in bytes")
    p.add_argument(
        "--keep-zip", action="store_true", help="keep the archive after unpacking"
    )

    p = sub.add_parser(
        "prepare", help="unpack an archive (--from-zip) or fill a dataset's cache"
    )
    p.add_argument(
        "dataset", nargs="?", help="dataset root whose splits to prepare and cache"
    )
    p.add_argument(
        "--from-zip", metavar="FILE", help="a downloaded ModelNet archive to unpack"
    )
    p.add_argument("--root", help="where to unpack --from-zip (default: the data home)")
    p.add_argument("--sha256", help="expected sha256 of the archive")
    p.add_argument(
        "--num-points", type=int, default=1024, help="points per shape (default: 1024)"
    )
    p.add_argument("--classes", help="comma-separated subset of classes")
    p.add_argument(
        "--modelnet10", action="store_true", help="the ten ModelNet10 classes"
    )
    p.add_argument("--cache-dir", help="where prepared arrays go")

    p = sub.add_parser(
        "info", help="layout, classes and counts per split, and what is missing"
    )
    p.add_argument(
        "root", nargs="?", help="dataset root (default: the embedded default dataset)"
    )
    p.add_argument(
        "--modelnet10", action="store_true", help="the ten ModelNet10 classes"
    )

    sub.add_parser(
        "default", help="generate the embedded default dataset and print its root"
    )


def _classes(text: str | None) -> list[str] | None:
    return [c.strip() for c in text.split(",") if c.strip()] if text else None


def _info(root: str, modelnet10: bool) -> int:
    from pointnet1x1.data.layouts import complete_classes, list_split

    listings = {
        s: list_split(root, s, modelnet10=modelnet10) for s in ("train", "test")
    }
    first = listings["train"]
    print(f"root:    {first.root}")
    print(
        f"layout:  {first.layout} (files are {first.up_axis} up; ModelNet returns y up)"
    )
    print(f"classes: {len(first.class_names)}")
    if first.layout == "hdf5":
        for split, lst in listings.items():
            print(
                f"  {split}: {len(lst.files)} files present, {len(lst.missing)} missing"
            )
        return 0
    counts = {s: [0] * len(first.class_names) for s in listings}
    missing = {s: [0] * len(first.class_names) for s in listings}
    index = {c: i for i, c in enumerate(first.class_names)}
    for split, lst in listings.items():
        for label in lst.labels:
            counts[split][label] += 1
        for path in lst.missing:
            cls = (
                path.parent.name
                if lst.layout == "resampled"
                else path.parent.parent.name
            )
            missing[split][index[cls]] += 1
    print(f"  {'class':<14s} {'train':>12s} {'test':>12s}")
    for i, name in enumerate(first.class_names):
        cells = [
            f"{counts[s][i]}" + (f" (-{missing[s][i]})" if missing[s][i] else "")
            for s in listings
        ]
        print(f"  {name:<14s} {cells[0]:>12s} {cells[1]:>12s}")
    for split, lst in listings.items():
        total = len(lst.files) + len(lst.missing)
        print(
            f"{split}: {len(lst.files)} of {total} shapes present, {len(lst.missing)} missing"
        )
    if any(lst.missing for lst in listings.values()):
        usable = complete_classes(root, modelnet10=modelnet10)
        print(
            f"incomplete; complete classes usable with classes=[...]: {', '.join(usable) or 'none'}"
        )
    else:
        print("complete")
    return 0


def run(args: argparse.Namespace) -> int:
    from pointnet1x1.cli import UsageError

    if args.data_command == "download":
        from pointnet1x1.data.download import download_dataset

        try:
            out = download_dataset(args.name, args.layout, args.root, url=args.url, sha256=args.sha256,
                                   size=args.size, keep_zip=args.keep_zip)  # fmt: skip
        except OSError as err:  # network failures: one line, not a traceback
            if isinstance(err, FileNotFoundError):
                raise
            raise UsageError(f"{err}") from None
        print(out)
        return 0
    if args.data_command == "prepare":
        if (args.from_zip is None) == (args.dataset is None):
            raise UsageError("give either --from-zip FILE or a dataset ROOT to prepare")
        if args.from_zip:
            from pointnet1x1.data.default import data_home
            from pointnet1x1.data.download import prepare_from_zip

            print(
                prepare_from_zip(
                    args.from_zip, args.root or data_home(), sha256=args.sha256
                )
            )
            return 0
        from pointnet1x1.data.modelnet import ModelNet

        for split in ("train", "test"):
            ds = ModelNet(args.dataset, split, classes=_classes(args.classes), num_points=args.num_points,
                          modelnet10=args.modelnet10, cache_dir=args.cache_dir)  # fmt: skip
            print(
                f"{split}: {len(ds)} shapes, {ds.points.shape[1]} points each ({ds.layout})"
            )
        return 0
    if args.data_command == "info":
        from pointnet1x1.data.default import default_data_root

        return _info(args.root or str(default_data_root()), args.modelnet10)
    if args.data_command == "default":
        from pointnet1x1.data.default import default_data_root

        print(default_data_root())
        return 0
    print(f"unknown data action {args.data_command!r}", file=sys.stderr)
    return 2
