"""Progress display of a training run: a tqdm bar per epoch on a terminal, log lines otherwise."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["Progress"]


class Progress:
    """A tqdm bar per epoch on a terminal, plain log lines otherwise."""

    def __init__(self, mode: str, enabled: bool) -> None:
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "log"
        self.mode = mode if enabled else "none"

    def bar(self, total: int, desc: str) -> Any:
        if self.mode != "bar":
            return None
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)

    def log(self, line: str) -> None:
        if self.mode != "none":
            print(line, flush=True)
