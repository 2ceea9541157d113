"""``classify`` on many files, streamed: read a batch, classify it, print it, repeat.

Memory holds one batch of files (``--batch-size``) whatever their number; each
batch's results are printed and flushed as soon as it is classified, in the
order of the files, so that the first lines appear while later files are still
unread. ``--json`` writes one JSON list item by item (valid once the command
ends). Progress goes to stderr: a tqdm bar (files/s, ETA) on a terminal, else a
line at least every :data:`LOG_EVERY_S` seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

__all__ = ["LOG_EVERY_S", "classify_stream"]

LOG_EVERY_S = 30.0  # a log (not a terminal) gets a progress line this often


def _clock(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):  # NaN or no rate yet
        return "?"
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class _Progress:
    """A tqdm bar on a terminal (files/s, ETA), else a line every 30 s on stderr;
    :meth:`emit` writes results and errors around the bar."""

    def __init__(self, total: int) -> None:
        self.total, self.done = total, 0
        self.start = self.last = time.monotonic()
        self.bar: Any = None
        if total > 1 and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="file", desc="classify",
                            file=sys.stderr, leave=False, dynamic_ncols=True)  # fmt: skip

    def update(self) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
            return
        now = time.monotonic()
        if now - self.last >= LOG_EVERY_S and self.done < self.total:
            self.last = now
            rate = self.done / max(now - self.start, 1e-9)
            eta = (self.total - self.done) / rate
            self.emit(
                f"pointnet1x1 classify: {self.done}/{self.total} files read, "
                f"{rate:.1f} files/s, ETA {_clock(eta)}\n",
                sys.stderr,
            )

    def emit(self, text: str, stream: TextIO) -> None:
        if self.bar is not None:
            with self.bar.external_write_mode(file=stream):
                stream.write(text)
                stream.flush()
        else:
            stream.write(text)
            stream.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class _JsonList:
    """One JSON list written item by item: ``[`` before the first, ``]`` at the end."""

    def __init__(self) -> None:
        self.count = 0

    def item(self, obj: dict[str, Any]) -> str:
        body = "\n".join("  " + line for line in json.dumps(obj, indent=2).splitlines())
        self.count += 1
        return ("[\n" if self.count == 1 else ",\n") + body

    def end(self) -> str:
        return "[]\n" if self.count == 0 else "\n]\n"


def _read_batch(
    predictor: Any, batch: Sequence[Path], progress: _Progress
) -> tuple[list[Any], list[str | None]]:
    """The preprocessed clouds of a batch, and per file None or its error message."""
    from pointnet1x1.cli import describe_error

    arrays: list[Any] = []
    errors: list[str | None] = []
    for path in batch:
        try:
            arrays.append(predictor.preprocess(path))
            errors.append(None)
        except (ValueError, OSError, MemoryError) as err:
            errors.append(describe_error(err)[1])
        progress.update()
    return arrays, errors


def _batches(files: Sequence[Path], size: int) -> Iterator[Sequence[Path]]:
    for start in range(0, len(files), size):
        yield files[start : start + size]


def classify_stream(
    args: argparse.Namespace, predictor: Any, axes: dict[str, str]
) -> int:
    """Classify ``args.paths`` batch by batch, printing as it goes; the exit code."""
    from pointnet1x1.cli._classify import _problem_line
    from pointnet1x1.engine.predictor import find_files

    files, missing = find_files(args.paths)
    progress = _Progress(len(files))
    for where, message in missing:
        progress.emit(_problem_line(where, message) + "\n", sys.stderr)
    listing = _JsonList() if args.json else None
    width = max((len(str(f)) for f in files), default=0)
    floor = float(args.min_probability)
    failed = bool(missing)
    try:
        for batch in _batches(files, args.batch_size):
            arrays, errors = _read_batch(predictor, batch, progress)
            names = [str(p) for p, e in zip(batch, errors, strict=True) if e is None]
            probs = predictor.predict_proba_preprocessed(
                arrays, batch_size=args.batch_size
            )
            preds = iter(predictor.to_predictions(probs, names, args.top_k))
            text = []
            for path, error in zip(batch, errors, strict=True):
                if error is not None:
                    failed = True
                    progress.emit(_problem_line(str(path), error) + "\n", sys.stderr)
                    if listing is not None:
                        text.append(listing.item({"path": str(path), "error": error}))
                    continue
                p = next(preds)
                unknown = p.probability < floor
                if listing is not None:
                    obj = {**p.to_dict(), **axes}
                    if unknown:
                        obj.update(label=None, class_index=None)
                    text.append(listing.item(obj))
                else:
                    others = ", ".join(f"{n} {q:.3f}" for n, q in p.top_k)
                    label = "unknown" if unknown else p.label
                    text.append(
                        f"{p.path:<{width}}  {label:<12s} {p.probability:6.3f}   "
                        f"top-{len(p.top_k)}: {others}\n"
                    )
            progress.emit("".join(text), sys.stdout)
    finally:
        progress.close()
    if listing is not None:
        for where, message in missing:  # paths that gave no file: at the end
            progress.emit(listing.item({"path": where, "error": message}), sys.stdout)
        progress.emit(listing.end(), sys.stdout)
    return 1 if failed else 0
