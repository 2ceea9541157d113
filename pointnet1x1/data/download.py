"""Download and unpack ModelNet archives: resumable, verified, atomic.

A download goes to ``<root>/<name>.zip.part``; an interrupted one resumes from
where it stopped with an HTTP ``Range`` request. Only a complete, verified file is
renamed to ``<name>.zip``: its size against the published, given or
server-announced size, its sha256 against the published or user-given checksum,
and the zip itself (its central directory, which a cut file lacks, and every
member's CRC-32). A download that nothing can verify (no size known, no
checksum, not a zip) keeps its ``.part`` name: it never looks complete.

Unpacking (:mod:`pointnet1x1.io.archives`) refuses absolute, ``..``/``.`` and
duplicate member names and declared sizes beyond the ratio limit, checks the
files whose md5 is known, and extracts into a hidden temporary folder beside the
target that is renamed into place last; temporary folders left by killed runs are
removed by the next one.

No checksums of the public archives were known when this was written (see
``datasets/modelnet40.md``): pass ``sha256=`` (CLI ``--sha256``) to verify one, and
the computed digest is printed so that it can be recorded. Offline, the error
names the URL and how to unpack an archive fetched some other way
(``pointnet1x1 data prepare --from-zip``).
"""

from __future__ import annotations

import hashlib
import os
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from pointnet1x1.io.archives import open_zip, unpack_zip
from pointnet1x1.io.errors import InputFileError, display_path
from pointnet1x1.io.fetch import DownloadError, download_file, sha256sum

__all__ = [
    "SOURCES",
    "DownloadError",
    "Source",
    "download_dataset",
    "download_file",
    "prepare_from_zip",
    "sha256sum",
]


@dataclass(frozen=True)
class Source:
    """A published archive.

    Attributes:
        url: Where it is published.
        folder: The top folder inside the archive (the dataset root).
        layout: ``"off"``, ``"resampled"`` or ``"hdf5"``.
        size: Exact size in bytes when known, else None.
        sha256: Hex digest when known, else None.
        approx_size: Human-readable size as published, for messages.
        member_md5: Known md5 digests of files inside the archive (paths below
            ``folder``), checked after extraction, before the folder is renamed
            into place.
    """

    url: str
    folder: str
    layout: str
    size: int | None = None
    sha256: str | None = None
    approx_size: str = "unknown"
    member_md5: dict[str, str] = field(default_factory=dict)

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


SOURCES: dict[tuple[str, str], Source] = {
    ("modelnet40", "off"): Source(
        "http://modelnet.cs.princeton.edu/ModelNet40.zip", "ModelNet40", "off", approx_size="about 2 GB"
    ),
    ("modelnet10", "off"): Source(
        "http://vision.princeton.edu/projects/2014/3DShapeNets/ModelNet10.zip", "ModelNet10", "off",
        approx_size="about 0.45 GB",
    ),
    ("modelnet40", "resampled"): Source(
        "https://shapenet.cs.stanford.edu/media/modelnet40_normal_resampled.zip",
        "modelnet40_normal_resampled", "resampled", approx_size="1.6 GB (as stated by PointNet++)",
    ),
    ("modelnet40", "hdf5"): Source(
        "https://shapenet.cs.stanford.edu/media/modelnet40_ply_hdf5_2048.zip",
        "modelnet40_ply_hdf5_2048", "hdf5", approx_size="416 MB (as stated by PointNet)",
        # md5 of the extracted files, as published by several public loaders of this
        # archive (torchvision-style ModelNet40 datasets), identical in each
        member_md5={
            "ply_data_train0.h5": "3176385ffc31a7b6b5af22191fd920d1",
            "ply_data_train1.h5": "e3f613fb500559403b34925112754dc4",
            "ply_data_train2.h5": "0c56e233a090ff87c3049d4ce08e7d8b",
            "ply_data_train3.h5": "9d2af465adfa33a3285c369f3ca66c45",
            "ply_data_train4.h5": "dff38de489b2c41bfaeded86c2208984",
            "ply_data_test0.h5": "e9732e6d83b09e79e9a7617df058adee",
            "ply_data_test1.h5": "aba4b12a67c34391cc3c015a6f08ed4b",
        },
    ),
}  # fmt: skip


def _md5sum(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _check_members(folder: Path, member_md5: dict[str, str], archive: Path) -> None:
    """Raise if a file with a known md5 is absent or differs (before the rename)."""
    for name, expected in member_md5.items():
        path = folder / name
        if not path.is_file():
            raise InputFileError(f"{name} is missing from the archive", archive)
        got = _md5sum(path)
        if got != expected:
            raise InputFileError(
                f"{name} md5 mismatch, expected {expected}, got {got}; "
                "delete the archive and download again",
                archive,
            )


def _verify_zip(part: Path) -> None:
    """A cut zip has no central directory: keep it as a part to resume; a complete
    one whose CRCs fail is deleted."""
    try:
        zipfile.ZipFile(part).close()
    except (zipfile.BadZipFile, OSError) as err:
        raise DownloadError(
            f"{display_path(part)}: not a complete zip archive yet ({err}); run "
            "again to resume, or delete the file if this repeats"
        ) from None
    try:
        open_zip(part).close()
    except InputFileError:
        part.unlink()
        raise


def _layout_of(names: list[str], zip_path: Path) -> str:
    base = {n.rsplit("/", 1)[-1] for n in names}
    if "modelnet40_shape_names.txt" in base:
        return "resampled"
    if "shape_names.txt" in base and any(n.endswith(".h5") for n in names):
        return "hdf5"
    if any(n.lower().endswith(".off") for n in names):
        return "off"
    raise InputFileError(
        "archive holds no ModelNet layout (no .off meshes, modelnet40_shape_names.txt "
        "or .h5 files)",
        zip_path,
    )


def prepare_from_zip(
    zip_path: str | os.PathLike[str],
    root: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    member_md5: dict[str, str] | None = None,
    progress: bool = True,
    check_crc: bool = True,
) -> Path:
    """Verify and unpack a ModelNet archive under ``root``; returns the dataset root.

    The archive's top folder (e.g. ``ModelNet40``) becomes ``<root>/<folder>``; an
    archive without a single top folder is unpacked into ``<root>/<zip stem>``.
    Files with a known md5 (``member_md5``, by default those of the published
    archive of the same name in :data:`SOURCES`) are checked before the rename.
    ``check_crc=False`` skips the CRC pass for an archive verified already.

    Raises:
        FileNotFoundError: No such archive.
        InputFileError: A bad checksum, CRC or md5, unsafe or duplicate member
            names, a decompression bomb, or no ModelNet layout.
        OSError: The disk is full (nothing is left in ``root``).
    """
    zip_path, root = Path(zip_path), Path(root).expanduser()
    if not zip_path.is_file():
        raise FileNotFoundError(f"archive {display_path(zip_path)} does not exist")
    if sha256 is not None:
        digest = sha256sum(zip_path)
        if digest != sha256.lower():
            raise InputFileError(
                f"sha256 mismatch, expected {sha256.lower()}, got {digest}", zip_path
            )
    with open_zip(zip_path, check_crc=check_crc) as archive:
        names = [n for n in archive.namelist() if not n.startswith("__MACOSX/")]
        _layout_of(names, zip_path)
        tops = {n.split("/", 1)[0] for n in names}
        single = len(tops) == 1 and all("/" in n for n in names)
        folder = next(iter(tops)) if single else zip_path.stem
        target = root / folder
        if target.exists():
            return target
        if member_md5 is None:
            known = [src for src in SOURCES.values() if src.filename == zip_path.name]
            member_md5 = known[0].member_md5 if known else {}
        md5 = member_md5
        from tqdm.auto import tqdm

        def bar(items):
            return tqdm(items, desc=f"extracting {zip_path.name}", unit="file",
                        disable=not progress or None, leave=False)  # fmt: skip

        return unpack_zip(
            archive,
            target,
            [n for n in names if not n.endswith("/")],
            strip=folder if single else None,
            check=lambda unpacked: _check_members(unpacked, md5, zip_path),
            progress=bar,
        )


def download_dataset(
    name: str = "modelnet40",
    layout: str = "off",
    root: str | os.PathLike[str] | None = None,
    *,
    url: str | None = None,
    sha256: str | None = None,
    size: int | None = None,
    keep_zip: bool = False,
    progress: bool = True,
) -> Path:
    """Download, verify and unpack a published dataset; returns its root folder.

    Args:
        name: ``"modelnet40"`` or ``"modelnet10"``.
        layout: ``"off"``, ``"resampled"`` or ``"hdf5"`` (see :data:`SOURCES`).
        root: Parent folder (default: :func:`~pointnet1x1.data.default.data_home`).
        url: Override the published URL (a mirror); the archive name is kept.
        sha256: Expected sha256 (overrides the known one).
        size: Expected size in bytes (overrides the known one).
        keep_zip: Keep the archive after unpacking.

    Raises:
        DownloadError: Offline or the server failed: the message names the URL and
            how to unpack an archive fetched another way.
    """
    source = SOURCES.get((name, layout))
    if source is None:
        known = ", ".join(f"{n} --layout {lay}" for n, lay in SOURCES)
        raise ValueError(
            f"no published source for {name!r} in layout {layout!r}; known: {known}"
        )
    if root is None:
        from pointnet1x1.data.default import data_home

        root = data_home()
    root = Path(root).expanduser()
    target = root / source.folder
    if target.is_dir():
        print(f"{target} already exists; delete it to download again", file=sys.stderr)
        return target
    archive = root / source.filename
    expected_sha = sha256 or source.sha256
    fresh = not archive.is_file()
    if fresh:
        where = url or source.url
        try:
            download_file(where, archive, size=size or source.size, sha256=expected_sha,
                          verify=_verify_zip, progress=progress)  # fmt: skip
        except DownloadError as err:
            raise DownloadError(
                f"{err}; or download {where} another way and run: pointnet1x1 data "
                f"prepare --from-zip {source.filename} --root {display_path(root)}"
            ) from None
    if expected_sha is None:
        print(f"sha256 of {archive.name}: {sha256sum(archive)} (no published checksum to compare; "
              "the zip's CRC-32s are checked)", file=sys.stderr)  # fmt: skip
    # a fresh download was verified already (checksum and CRCs); an archive left
    # by an earlier run is not
    out = prepare_from_zip(archive, root, sha256=None if fresh else expected_sha,
                           progress=progress, check_crc=not fresh)  # fmt: skip
    if not keep_zip:
        archive.unlink()
    return out
