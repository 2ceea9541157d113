"""Resumable, verified HTTP downloads: nothing half-fetched looks complete.

:func:`download_file` writes to ``<dest>.part``, resumes it with an HTTP ``Range``
request (checking that the server's ``Content-Range`` starts where the part
ends), and renames it to ``dest`` only after it is verified: its size against
the given or announced size, its sha256, and a ``verify`` callback (a zip's
structure and CRCs for the datasets). A download that nothing can verify is
refused and keeps its ``.part`` name. Network failures raise
:class:`DownloadError` (an ``OSError``) naming the URL.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

__all__ = ["DownloadError", "download_file", "sha256sum"]


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


class DownloadError(OSError):
    """A download that failed or could not be verified; the ``.part`` file is kept
    when a new call can resume it."""


_NETWORK_ERRORS = (OSError, http.client.HTTPException)


def _fetch(url: str, part: Path, have: int, timeout: float, chunk: int,
           progress: bool, name: str) -> int | None:  # fmt: skip
    """Append the rest of ``url`` to ``part``; returns the total size if known."""
    request = urllib.request.Request(
        url, headers={"Range": f"bytes={have}-"} if have else {}
    )
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # nothing left to fetch beyond `have`
            return None
        raise DownloadError(
            f"download of {url} failed: HTTP {err.code} {err.reason}"
        ) from None
    with response:
        resumed = response.status == 206
        total = None
        content_range = response.headers.get("Content-Range", "")
        match = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", content_range.strip())
        if resumed and (match is None or int(match[1]) != have):
            resumed = False  # a range we did not ask for: start over
            response.close()
            return _fetch(url, _truncate(part), 0, timeout, chunk, progress, name)
        if not resumed:
            have = 0  # server ignored Range: start over
        if match and match[2] != "*":
            total = int(match[2])
        length = response.headers.get("Content-Length")
        if total is None and length is not None and length.isdigit():
            total = have + int(length)
        with (
            open(part, "ab" if resumed else "wb") as f,
            _bar(total, have, name, progress) as bar,
        ):
            while block := response.read(chunk):
                f.write(block)
                bar.update(len(block))
    return total


def _truncate(part: Path) -> Path:
    part.write_bytes(b"")
    return part


def download_file(
    url: str,
    dest: str | os.PathLike[str],
    *,
    size: int | None = None,
    sha256: str | None = None,
    verify: Callable[[Path], None] | None = None,
    progress: bool = True,
    timeout: float = 60.0,
    chunk: int = 1 << 16,
) -> Path:
    """Download ``url`` to ``dest`` via ``dest + ".part"``, resuming a previous part.

    The part is renamed to ``dest`` only when it is verified: its size against
    ``size`` or the size the server announced, ``sha256``, and ``verify(part)``
    (which raises when the content is wrong). With none of these, nothing can
    tell a complete download from a cut one, and it is refused.

    Raises:
        ValueError: Size or sha256 mismatch (the bad part is deleted), or no way
            to verify the download (the part is kept).
        DownloadError: Network failure or a cut download (the part is kept, so a
            new call resumes).
    """
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    try:
        total = _fetch(url, part, have, timeout, chunk, progress, dest.name)
    except DownloadError:
        raise
    except _NETWORK_ERRORS as err:
        reason = getattr(err, "reason", None) or err
        raise DownloadError(f"cannot download {url}: {reason}") from None
    got = part.stat().st_size if part.exists() else 0
    expected = size if size is not None else total
    if expected is not None and got != expected:
        if got > expected:
            part.unlink()
            raise ValueError(
                f"{url}: got {got} bytes, expected {expected}; the partial file was deleted, retry"
            )
        raise DownloadError(
            f"{url}: connection closed after {got} of {expected} bytes; run again to resume"
        )
    if expected is None and sha256 is None and verify is None:
        raise ValueError(
            f"{url}: the server announced no size, so a complete download cannot be "
            f"told from a cut one; pass size= or sha256= (kept as {part.name})"
        )
    if sha256 is not None:
        digest = sha256sum(part)
        if digest != sha256.lower():
            part.unlink()
            raise ValueError(
                f"{url}: sha256 mismatch, expected {sha256.lower()}, got {digest}; the download was deleted"
            )
    if verify is not None:
        verify(part)
    os.replace(part, dest)
    return dest
