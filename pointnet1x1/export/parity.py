"""The parity check of an export: the exported model against eager PyTorch.

The exported model (an ONNX session, or a TorchScript module loaded from the
exporter's own bytes in memory) and the eager model run on random clouds of two
point counts and batch sizes that differ from the export example (so the dynamic
axes are proven too); a difference above the tolerance is a :class:`ParityError`.

Shape:
    Clouds ``(B, C, N)`` channels-first in, logits ``(B, K)`` out.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from pointnet1x1.engine.formats import describe_kind, file_kind

__all__ = [
    "DEFAULT_TOLERANCE",
    "PARITY_SHAPES",
    "ParityError",
    "ParityResult",
    "check_parity",
]

DEFAULT_TOLERANCE = 1e-4
PARITY_SHAPES: tuple[tuple[int, int], ...] = ((2, 1024), (3, 517))


class ParityError(ValueError):
    """An exported model disagrees with the eager one (one-line message)."""


class ParityResult(NamedTuple):
    """Outcome of :func:`check_parity`.

    Attributes:
        max_abs_diff: Largest absolute logit difference over all checks.
        checks: ``(batch_size, num_points, max_abs_diff)`` of each check.
    """

    max_abs_diff: float
    checks: list[tuple[int, int, float]]


def _require(*modules: str) -> None:
    """Fail with the install hint when the optional ONNX packages are missing."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ValueError(
            f"ONNX export and inference need {', '.join(missing)}: "
            "pip install 'pointnet1x1[onnx]' (or use --format torchscript)"
        )


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines[0] if lines else type(err).__name__)[:300]


class _LogitsOnly(nn.Module):
    """One tensor in, one tensor out: the graph an exporter sees."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, points: Tensor) -> Tensor:
        return self.model(points)  # (B, K)


def _export_copy(model: nn.Module) -> nn.Module:
    """A CPU, eval-mode copy, so exporting never changes the caller's model."""
    module = getattr(model, "module", model)  # unwrap DistributedDataParallel
    module = getattr(module, "_orig_mod", module)  # unwrap torch.compile
    return _LogitsOnly(copy.deepcopy(module).cpu().float().eval()).eval()


def _in_channels(model: nn.Module, in_channels: int | None) -> int:
    found = getattr(model, "in_channels", None) if in_channels is None else in_channels
    if not isinstance(found, int) or found < 3:
        raise ValueError(
            f"in_channels must be an int >= 3 (xyz + features), got {found!r}; "
            "pass in_channels= for this model"
        )
    return found


def _example(batch: int, channels: int, num_points: int, seed: int) -> Tensor:
    """Clouds like the real inputs: xyz inside the unit sphere, unit-ish features."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, num_points, generator=gen)
    x[:, :3] /= x[:, :3].norm(dim=1, keepdim=True).amax(dim=2, keepdim=True)
    return x


def _onnx_session(source: Path | bytes, name: str) -> Any:
    """An onnxruntime session of an ONNX file (recognised by its bytes first) or bytes."""
    if isinstance(source, Path):
        kind = file_kind(source)
        if kind != "onnx":
            why = (
                " (TorchScript runs code when loaded)" if kind == "torchscript" else ""
            )
            raise ValueError(
                f"{source}: {describe_kind(kind)}, not an ONNX model; check_parity runs "
                f"ONNX files or an already loaded module{why}"
            )
    _require("onnxruntime")
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    what = str(source) if isinstance(source, Path) else source
    try:
        return ort.InferenceSession(what, options, providers=["CPUExecutionProvider"])
    except Exception as err:  # noqa: BLE001 - onnxruntime raises its own types
        raise ValueError(
            f"{name}: not a loadable ONNX model ({_first_line(err)[:200]})"
        ) from None


def _run(kind: str, runner: Any, x: Tensor) -> np.ndarray:
    if kind == "onnx":
        return runner.run(None, {runner.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        return runner(x).float().numpy()


def check_parity(
    model: nn.Module,
    exported: str | os.PathLike[str] | nn.Module,
    *,
    in_channels: int | None = None,
    shapes: Sequence[tuple[int, int]] = PARITY_SHAPES,
    tolerance: float = DEFAULT_TOLERANCE,
    seed: int = 0,
    name: str | None = None,
) -> ParityResult:
    """Compare an exported model with the eager model on random clouds.

    Args:
        model: The eager model (evaluated in eval mode on CPU, on a copy).
        exported: An ``.onnx`` file (run by onnxruntime), or a module already
            loaded (a TorchScript module: TorchScript files are never loaded
            from a path, since loading one runs its code).
        in_channels: Input channels (default ``model.in_channels``).
        shapes: ``(batch_size, num_points)`` pairs to check; the defaults
            (2 x 1024 and 3 x 517) differ from the export example, so they
            also prove the dynamic batch and point axes.
        tolerance: Largest accepted absolute logit difference.
        seed: Seed of the random clouds.
        name: Names the exported model in messages (default: its path).

    Returns:
        :class:`ParityResult` with the differences.

    Raises:
        ParityError: Above ``tolerance``, or if an output has the wrong shape.
    """
    channels = _in_channels(model, in_channels)
    if isinstance(exported, nn.Module):
        kind, runner = "torchscript", exported
        name = name or type(exported).__name__
    else:
        if not Path(exported).is_file():
            raise FileNotFoundError(f"exported model not found: {exported}")
        name = name or str(exported)
        kind, runner = "onnx", _onnx_session(Path(exported), name)
    return _compare(model, kind, runner, channels, shapes, tolerance, seed, name)


def _compare(
    model: nn.Module,
    kind: str,
    runner: Any,
    channels: int,
    shapes: Sequence[tuple[int, int]] = PARITY_SHAPES,
    tolerance: float = DEFAULT_TOLERANCE,
    seed: int = 0,
    name: str = "exported model",
) -> ParityResult:
    eager = _export_copy(model)
    checks = []
    for i, (batch, num_points) in enumerate(shapes):
        x = _example(batch, channels, num_points, seed=seed + i)
        with torch.no_grad():
            want = eager(x).numpy()
        try:
            got = _run(kind, runner, x)
        except Exception as err:  # noqa: BLE001 - runtime errors are many types
            raise ParityError(
                f"{name}: the {kind} model fails on input {tuple(x.shape)} where "
                f"eager PyTorch works: {type(err).__name__}: {_first_line(err)}"
            ) from None
        if got.shape != want.shape:
            raise ParityError(
                f"{name}: {kind} output has shape {got.shape} for input "
                f"{tuple(x.shape)}, eager has {want.shape} (dynamic axes broken)"
            )
        checks.append((batch, num_points, float(np.abs(got - want).max())))
    worst = max(diff for _, _, diff in checks)
    if not worst <= tolerance:  # also catches NaN
        detail = ", ".join(f"B={b} N={n}: {d:.2e}" for b, n, d in checks)
        raise ParityError(
            f"{name}: {kind} logits differ from eager PyTorch by up to {worst:.2e} "
            f"(> tolerance {tolerance:.0e}; {detail})"
        )
    return ParityResult(worst, checks)
