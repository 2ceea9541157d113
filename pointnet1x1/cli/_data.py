"""Get, unpack, prepare and inspect datasets.

pointnet1x1 data download modelnet40 [--layout off|resampled|hdf5] [--root DIR]
pointnet1x1 data prepare --from-zip FILE [--root DIR] [--sha256 HEX]
pointnet1x1 data prepare ROOT [--num-points N] [--skip-bad]   (fill the cache)
pointnet1x1 data info [ROOT] [--no-read]         (layout, classes, counts, missing,
                                                  skipped and unreadable files)
pointnet1x1 data default                         (generate/print the default dataset)

ROOT is ModelNet in any published layout, or a folder of your own files in any
format pointnet1x1 reads (PLY, PCD, OFF, OBJ, STL, NPY, XYZ, ..., mixed):
  ROOT/<class>/{train,test}/<file>    ROOT/{train,test}/<class>/<file>
  ROOT/<class>/<file>                 (no split: a seeded, stratified 80/20 one)
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
    p.add_argument("--skip-bad", action="store_true",
                   help="prepare without the files that cannot be read (listed)")  # fmt: skip

    p = sub.add_parser(
        "info",
        help="layout, classes, counts per split and extension, what is missing, "
        "skipped or unreadable",
    )
    p.add_argument(
        "root", nargs="?", help="dataset root (default: the embedded default dataset)"
    )
    p.add_argument(
        "--modelnet10", action="store_true", help="the ten ModelNet10 classes"
    )
    p.add_argument("--no-read", action="store_true",
                   help="list only; do not read the files (which finds unreadable "
                   "and short ones, and fills the cache)")  # fmt: skip
    p.add_argument("--num-points", type=int, default=1024,
                   help="points per shape when reading (default: 1024)")  # fmt: skip
    p.add_argument("--cache-dir", help="where prepared arrays go")

    sub.add_parser(
        "default", help="generate the embedded default dataset and print its root"
    )


def _classes(text: str | None) -> list[str] | None:
    return [c.strip() for c in text.split(",") if c.strip()] if text else None


def run(args: argparse.Namespace) -> int:
    from pointnet1x1.cli import UsageError

    if args.data_command == "download":
        from pointnet1x1.data.download import download_dataset

        # a DownloadError (offline, a server failure, a cut or unverifiable archive)
        # names the URL and how to unpack an archive fetched another way; main()
        # prints it as one line with exit code 1, as any other failed input
        out = download_dataset(args.name, args.layout, args.root, url=args.url, sha256=args.sha256,
                               size=args.size, keep_zip=args.keep_zip)  # fmt: skip
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
        from pointnet1x1.data import BadFilesError, open_dataset

        for split in ("train", "test"):
            try:
                ds = open_dataset(args.dataset, split, classes=_classes(args.classes), num_points=args.num_points,
                                  modelnet10=args.modelnet10, cache_dir=args.cache_dir,
                                  skip_bad=args.skip_bad)  # fmt: skip
            except BadFilesError as err:  # every line: one per file
                print(f"pointnet1x1 data: error: {err}", file=sys.stderr)
                return 2
            print(
                f"{split}: {len(ds)} shapes, {ds.points.shape[1]} points each ({ds.layout})"
            )
            for rel, problem in ds.bad_files:
                print(f"  skipped (cannot be read): {rel}: {problem}")
        return 0
    if args.data_command == "info":
        from pointnet1x1.data.default import default_data_root
        from pointnet1x1.data.info import describe_dataset

        lines = describe_dataset(
            args.root or str(default_data_root()),
            modelnet10=args.modelnet10,
            read=not args.no_read,
            num_points=args.num_points,
            cache_dir=args.cache_dir,
        )
        print("\n".join(lines))
        return 0
    if args.data_command == "default":
        from pointnet1x1.data.default import default_data_root

        print(default_data_root())
        return 0
    print(f"unknown data action {args.data_command!r}", file=sys.stderr)
    return 2
