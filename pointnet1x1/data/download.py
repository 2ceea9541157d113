"""Download and unpack ModelNet archives: resumable, verified, atomic.

A download goes to ``<root>/<name>.zip.part``; an interrupted one resumes from
where it stopped with an HTTP ``Range`` request. Only a complete, verified file is
renamed to ``<name>.zip``: its size against the published or server-announced
size, its sha256 against the published or user-given checksum, and every member
against its CRC-32 (``ZipFile.testzip``) before anything is extracted. Extraction
goes to a temp folder beside the target, which is renamed into place last; a
failed or partial download therefore never leaves anything that looks complete.

No checksums of the public archives were known when this was written (see
``datasets/modelnet40.md``): pass ``sha256=`` (CLI ``--sha256``) to verify one, and
the computed digest is printed so that it can be recorded.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "SOURCES",
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
            raise ValueError(f"{archive}: {name} is missing from the archive")
        got = _md5sum(path)
        if got != expected:
            raise ValueError(
                f"{archive}: {name} md5 mismatch, expected {expected}, got {got}; "
                "delete the archive and download again"
            )


def sha256sum(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _bar(total: int | None, initial: int, desc: str, progress: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="B", unit_scale=True,
                unit_divisor=1024, disable=not progress or None, leave=False)  # fmt: skip


def download_file(
    url: str,
    dest: str | os.PathLike[str],
    *,
    size: int | None = None,
    sha256: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
    chunk: int = 1 << 16,
) -> Path:
    """Download ``url`` to ``dest`` via ``dest + ".part"``, resuming a previous part.

    Raises:
        ValueError: Size or sha256 mismatch (the bad part is deleted).
        OSError: Network failure (the part is kept, so a new call resumes).
    """
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(
        url, headers={"Range": f"bytes={have}-"} if have else {}
    )
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code != 416 or not have:  # 416: nothing left to fetch beyond `have`
            raise OSError(
                f"download of {url} failed: HTTP {err.code} {err.reason}"
            ) from None
        response = None
    total: int | None = have
    if response is not None:
        with response:
            resumed = response.status == 206
            if not resumed:
                have = 0  # server ignored Range: start over
            length = response.headers.get("Content-Length")
            total = have + int(length) if length is not None else None
            with (
                open(part, "ab" if resumed else "wb") as f,
                _bar(total, have, dest.name, progress) as bar,
            ):
                while block := response.read(chunk):
                    f.write(block)
                    bar.update(len(block))
    got = part.stat().st_size
    expected = size if size is not None else total
    if expected is not None and got != expected:
        if got > expected:
            part.unlink()
            raise ValueError(
                f"{url}: got {got} bytes, expected {expected}; the partial file was deleted, retry"
            )
        raise OSError(
            f"{url}: connection closed after {got} of {expected} bytes; run again to resume"
        )
    if sha256 is not None:
        digest = sha256sum(part)
        if digest != sha256.lower():
            part.unlink()
            raise ValueError(
                f"{url}: sha256 mismatch, expected {sha256.lower()}, got {digest}; the download was deleted"
            )
    os.replace(part, dest)
    return dest


def _layout_of(names: list[str]) -> str:
    base = {n.rsplit("/", 1)[-1] for n in names}
    if "modelnet40_shape_names.txt" in base:
        return "resampled"
    if "shape_names.txt" in base and any(n.endswith(".h5") for n in names):
        return "hdf5"
    if any(n.lower().endswith(".off") for n in names):
        return "off"
    raise ValueError(
        "archive holds no ModelNet layout (no .off meshes, modelnet40_shape_names.txt or .h5 files)"
    )


def prepare_from_zip(
    zip_path: str | os.PathLike[str],
    root: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    member_md5: dict[str, str] | None = None,
    progress: bool = True,
) -> Path:
    """Verify and unpack a ModelNet archive under ``root``; returns the dataset root.

    The archive's top folder (e.g. ``ModelNet40``) becomes ``<root>/<folder>``; an
    archive without a single top folder is unpacked into ``<root>/<zip stem>``.
    Files with a known md5 (``member_md5``, by default those of the published
    archive of the same name in :data:`SOURCES`) are checked before the rename.
    """
    zip_path, root = Path(zip_path), Path(root).expanduser()
    if not zip_path.is_file():
        raise FileNotFoundError(f"archive {zip_path} does not exist")
    if sha256 is not None:
        digest = sha256sum(zip_path)
        if digest != sha256.lower():
            raise ValueError(
                f"{zip_path}: sha256 mismatch, expected {sha256.lower()}, got {digest}"
            )
    try:
        archive = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile as err:
        raise ValueError(
            f"{zip_path}: not a zip archive ({err}); delete it and download again"
        ) from None
    with archive:
        names = [n for n in archive.namelist() if not n.startswith("__MACOSX/")]
        try:
            bad = archive.testzip()
        except (zipfile.BadZipFile, zlib.error, EOFError) as err:
            bad = f"? ({err})"
        if bad is not None:
            raise ValueError(
                f"{zip_path}: member {bad} fails its CRC check; delete the archive and download again"
            )
        _layout_of(names)
        tops = {n.split("/", 1)[0] for n in names}
        single = len(tops) == 1 and all("/" in n for n in names)
        folder = next(iter(tops)) if single else zip_path.stem
        target = root / folder
        if target.exists():
            return target
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder}.tmp-", dir=root))
        try:
            members = [n for n in names if not n.endswith("/")]
            from tqdm.auto import tqdm

            for name in tqdm(members, desc=f"extracting {zip_path.name}", unit="file",
                             disable=not progress or None, leave=False):  # fmt: skip
                archive.extract(name, tmp if single else tmp / folder)
            if member_md5 is None:
                known = [
                    src for src in SOURCES.values() if src.filename == zip_path.name
                ]
                member_md5 = known[0].member_md5 if known else {}
            _check_members(tmp / folder, member_md5, zip_path)
            os.replace(tmp / folder, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


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
        download_file(
            url or source.url,
            archive,
            size=size or source.size,
            sha256=expected_sha,
            progress=progress,
        )
    if expected_sha is None:
        print(f"sha256 of {archive.name}: {sha256sum(archive)} (no published checksum to compare; "
              "the zip's CRC-32s are checked)", file=sys.stderr)  # fmt: skip
    # a fresh download was verified already; an archive left by an earlier run is not
    out = prepare_from_zip(
        archive, root, sha256=None if fresh else expected_sha, progress=progress
    )
    if not keep_zip:
        archive.unlink()
    return out
