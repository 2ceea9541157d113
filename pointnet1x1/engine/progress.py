"""Progress display of long work: a tqdm bar on a terminal, timed log lines otherwise.

Within a training epoch a terminal shows a bar in clouds with their rate, the
epoch's ETA and the run's ETA at the current rate; a log (not a terminal) gets
a line at least every :data:`LOG_EVERY_S` seconds with the same figures, so a
job's output never goes quiet for long.
"""

from __future__ import annotations

import sys
import time
from typing import Any

__all__ = ["LOG_EVERY_S", "EpochBar", "Progress", "format_duration"]

LOG_EVERY_S = 30.0


def format_duration(seconds: float) -> str:
    """``75`` -> ``"1m15s"``, ``3725`` -> ``"1h02m"``, ``9`` -> ``"9s"``."""
    s = max(int(round(seconds)), 0)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class Progress:
    """A tqdm bar per epoch on a terminal, plain log lines otherwise."""

    def __init__(self, mode: str, enabled: bool) -> None:
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "log"
        self.mode = mode if enabled else "none"

    def bar(self, total: int, desc: str, unit: str = "it") -> Any:
        """A tqdm bar of ``total`` items on a terminal (``mode == "bar"``), else None."""
        if self.mode != "bar":
            return None
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True)

    def epoch_bar(
        self,
        epoch: int,
        epochs: int,
        steps: int,
        clouds_per_step: int,
        *,
        every_s: float = LOG_EVERY_S,
        clock: Any = time.perf_counter,
    ) -> EpochBar:
        """The display of one training epoch (see :class:`EpochBar`)."""
        return EpochBar(self, epoch, epochs, steps, clouds_per_step, every_s, clock)

    def log(self, line: str) -> None:
        if self.mode != "none":
            print(line, flush=True)


class EpochBar:
    """Clouds/s, the epoch's ETA and the run's ETA (at the current rate), per step.

    ``mode == "bar"``: a tqdm bar; ``"log"``: a line when ``every_s`` seconds have
    passed since the last one; ``"none"``: nothing.
    """

    def __init__(
        self,
        progress: Progress,
        epoch: int,
        epochs: int,
        steps: int,
        clouds_per_step: int,
        every_s: float,
        clock: Any,
    ) -> None:
        self.mode, self.log = progress.mode, progress.log
        self.epoch, self.epochs, self.steps = epoch, epochs, steps
        self.per_step, self.every_s, self.clock = clouds_per_step, every_s, clock
        self.done = 0
        self.start = self.last_line = clock()
        self.tqdm = progress.bar(
            steps * clouds_per_step, f"epoch {epoch}/{epochs}", "cloud"
        )

    def figures(self) -> tuple[float, float, float]:
        """(clouds/s, seconds left in the epoch, seconds left in the run)."""
        elapsed = max(self.clock() - self.start, 1e-9)
        rate = self.done * self.per_step / elapsed
        per_step_s = elapsed / max(self.done, 1)
        epoch_left = (self.steps - self.done) * per_step_s
        run_left = epoch_left + (self.epochs - self.epoch) * self.steps * per_step_s
        return rate, epoch_left, run_left

    def step(self, loss: Any, lr: float) -> None:
        """One optimisation step done (``loss``: a tensor, read only when shown)."""
        self.done += 1
        if self.mode == "none":
            return
        rate, epoch_left, run_left = self.figures()
        if self.tqdm is not None:
            self.tqdm.update(self.per_step)
            self.tqdm.set_postfix_str(
                f"loss {float(loss):.3f} lr {lr:.1e} run ETA {format_duration(run_left)}",
                refresh=False,
            )
            return
        now = self.clock()
        if now - self.last_line >= self.every_s and self.done < self.steps:
            self.last_line = now
            self.log(
                f"epoch {self.epoch}/{self.epochs}  step {self.done}/{self.steps}  "
                f"loss {float(loss):.4f}  {rate:.1f} clouds/s  epoch ETA "
                f"{format_duration(epoch_left)}  run ETA {format_duration(run_left)}"
            )

    def close(self) -> None:
        if self.tqdm is not None:
            self.tqdm.close()
