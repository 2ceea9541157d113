"""Export a classifier to ONNX or TorchScript, checked against eager PyTorch.

The exported model takes channels-first points ``(B, 3+F, N)`` float32 with a
dynamic batch size ``B`` and point count ``N`` and returns logits ``(B, K)``.
What a deployment needs besides the weights travels inside the file:

- ONNX: ``metadata_props`` ``class_names`` and ``preprocessing`` (JSON), and
  ``pointnet1x1`` (the whole checkpoint metadata, JSON);
- TorchScript: the extra file ``pointnet1x1.json`` (the same document).

Every export is followed by :func:`check_parity`: the exported file is loaded
(onnxruntime, or ``torch.jit.load``) and compared with the eager model on two
point counts and batch sizes that differ from the ones used while exporting;
above ``tolerance`` it raises :class:`ParityError` and removes the file.

:class:`OnnxClassifier` is the engine's :class:`~pointnet1x1.engine.Classifier`
(same preprocessing code, read from the file's metadata) with the network run by
onnxruntime: no checkpoint or model code is needed to deploy.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from pointnet1x1._atomic import atomic_write, atomic_write_bytes
from pointnet1x1.engine.checkpoint import make_preprocessing
from pointnet1x1.engine.predict import Classifier

__all__ = [
    "DEFAULT_OPSET",
    "OnnxClassifier",
    "ParityError",
    "ParityResult",
    "check_parity",
    "export_onnx",
    "export_torchscript",
    "read_onnx_metadata",
    "read_torchscript_metadata",
]

DEFAULT_OPSET = 18
DEFAULT_TOLERANCE = 1e-4
PARITY_SHAPES: tuple[tuple[int, int], ...] = ((2, 1024), (3, 517))
_EXAMPLE_SHAPE = (2, 128)  # (B, N) used while exporting; parity uses others
_TS_EXTRA = "pointnet1x1.json"
_FORMATS = ("onnx", "torchscript")


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


def _metadata(metadata: Mapping[str, Any] | None, in_channels: int) -> dict[str, Any]:
    meta = json.loads(json.dumps(dict(metadata or {})))  # JSON-only, a copy
    if "preprocessing" not in meta:  # the defaults of training
        normals = in_channels >= 6
        extra = in_channels - (6 if normals else 3)
        meta["preprocessing"] = make_preprocessing(
            1024, use_normals=normals, extra_channels=extra
        )
    pre = meta["preprocessing"]
    if pre.get("in_channels", in_channels) != in_channels:
        raise ValueError(
            f"metadata preprocessing has in_channels={pre['in_channels']} but the "
            f"model takes {in_channels}"
        )
    pre["in_channels"] = in_channels
    meta.setdefault("class_names", [])
    return meta


def _example(batch: int, channels: int, num_points: int, seed: int) -> Tensor:
    """Clouds like the real inputs: xyz inside the unit sphere, unit-ish features."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, num_points, generator=gen)
    x[:, :3] /= x[:, :3].norm(dim=1, keepdim=True).amax(dim=2, keepdim=True)
    return x


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporters' progress lines, deprecations and optional-op notes."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    in_channels: int | None = None,
    metadata: Mapping[str, Any] | None = None,
    opset: int = DEFAULT_OPSET,
    check: bool = True,
    tolerance: float = DEFAULT_TOLERANCE,
) -> ParityResult | None:
    """Export a classifier to one self-contained ONNX file.

    Args:
        model: A classifier taking ``(B, in_channels, N)`` and returning logits.
        path: Destination ``.onnx`` file (written atomically, weights inside).
        in_channels: Input channels (default ``model.in_channels``).
        metadata: Checkpoint metadata (class names, preprocessing...) to embed.
        opset: ONNX opset version.
        check: Run :func:`check_parity` on the written file.
        tolerance: Largest accepted absolute logit difference.

    Returns:
        The :class:`ParityResult`, or ``None`` when ``check`` is false.

    Raises:
        ParityError: If the exported model disagrees (the file is removed).
    """
    _require("onnx", "onnxscript", "onnxruntime" if check else "onnx")
    import onnx

    channels = _in_channels(model, in_channels)
    meta = _metadata(metadata, channels)
    wrapped = _export_copy(model)
    example = _example(_EXAMPLE_SHAPE[0], channels, _EXAMPLE_SHAPE[1], seed=1)
    dims = {0: torch.export.Dim("batch"), 2: torch.export.Dim("num_points")}
    try:
        with _quiet_exporter():
            program = torch.onnx.export(
                wrapped,
                (example,),
                dynamo=True,
                input_names=["points"],
                output_names=["logits"],
                dynamic_shapes={"points": dims},
                opset_version=opset,
                verbose=False,
            )
    except Exception as err:  # noqa: BLE001 - exporter errors are many types
        name = type(getattr(wrapped, "model", wrapped)).__name__
        raise ValueError(
            f"torch.onnx could not export {name} with dynamic batch and point "
            f"axes: {type(err).__name__}: {_first_line(err)}"
        ) from None
    assert program is not None  # dynamo=True always returns the program
    proto = program.model_proto
    props = {
        "class_names": json.dumps(meta["class_names"]),
        "preprocessing": json.dumps(meta["preprocessing"]),
        "pointnet1x1": json.dumps(meta),
        "input": f"points float32 (batch, {channels}, num_points), channels-first",
        "output": "logits float32 (batch, num_classes)",
    }
    onnx.helper.set_model_props(proto, props)
    proto.producer_name = "pointnet1x1"
    atomic_write_bytes(path, proto.SerializeToString())
    return _checked(model, path, channels, check, tolerance)


def export_torchscript(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    in_channels: int | None = None,
    metadata: Mapping[str, Any] | None = None,
    check: bool = True,
    tolerance: float = DEFAULT_TOLERANCE,
) -> ParityResult | None:
    """Export a classifier to a TorchScript file (traced, eval mode).

    The metadata is stored as the extra file ``pointnet1x1.json``; read it back
    with :func:`read_torchscript_metadata`. Arguments are as for
    :func:`export_onnx`.
    """
    channels = _in_channels(model, in_channels)
    meta = _metadata(metadata, channels)
    wrapped = _export_copy(model)
    example = _example(_EXAMPLE_SHAPE[0], channels, _EXAMPLE_SHAPE[1], seed=1)
    with _quiet_exporter(), torch.no_grad():
        traced = torch.jit.trace(wrapped, (example,), check_trace=False)
        extra = {_TS_EXTRA: json.dumps(meta)}
        atomic_write(path, lambda f: torch.jit.save(traced, f, _extra_files=extra))
    return _checked(model, path, channels, check, tolerance)


def _checked(
    model: nn.Module,
    path: str | os.PathLike[str],
    channels: int,
    check: bool,
    tolerance: float,
) -> ParityResult | None:
    if not check:
        return None
    try:
        return check_parity(model, path, in_channels=channels, tolerance=tolerance)
    except ParityError:
        Path(path).unlink(missing_ok=True)
        raise


def _runner(path: Path) -> tuple[str, Any]:
    """``("onnx", session)`` or ``("torchscript", module)`` for an exported file."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head == b"PK\x03\x04":  # TorchScript files are zip archives
        with _quiet_exporter():
            return "torchscript", torch.jit.load(str(path), map_location="cpu").eval()
    _require("onnxruntime")
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
    except Exception as err:  # noqa: BLE001 - onnxruntime raises its own types
        first = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
        raise ValueError(
            f"{path}: not a loadable ONNX or TorchScript file ({first[:200]})"
        ) from None
    return "onnx", session


def _run(kind: str, runner: Any, x: Tensor) -> np.ndarray:
    if kind == "onnx":
        return runner.run(None, {runner.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        return runner(x).numpy()


def check_parity(
    model: nn.Module,
    exported: str | os.PathLike[str],
    *,
    in_channels: int | None = None,
    shapes: Sequence[tuple[int, int]] = PARITY_SHAPES,
    tolerance: float = DEFAULT_TOLERANCE,
    seed: int = 0,
) -> ParityResult:
    """Compare an exported file with the eager model on random clouds.

    Args:
        model: The eager model (evaluated in eval mode on CPU, on a copy).
        exported: An ``.onnx`` file (run by onnxruntime) or a TorchScript file.
        in_channels: Input channels (default ``model.in_channels``).
        shapes: ``(batch_size, num_points)`` pairs to check; the defaults
            (2 x 1024 and 3 x 517) differ from the export example, so they
            also prove the dynamic batch and point axes.
        tolerance: Largest accepted absolute logit difference.
        seed: Seed of the random clouds.

    Returns:
        :class:`ParityResult` with the differences.

    Raises:
        ParityError: Above ``tolerance``, or if an output has the wrong shape.
    """
    path = Path(exported)
    if not path.is_file():
        raise FileNotFoundError(f"exported model not found: {path}")
    channels = _in_channels(model, in_channels)
    eager = _export_copy(model)
    kind, runner = _runner(path)
    checks = []
    for i, (batch, num_points) in enumerate(shapes):
        x = _example(batch, channels, num_points, seed=seed + i)
        with torch.no_grad():
            want = eager(x).numpy()
        try:
            got = _run(kind, runner, x)
        except Exception as err:  # noqa: BLE001 - runtime errors are many types
            raise ParityError(
                f"{path}: the {kind} model fails on input {tuple(x.shape)} where "
                f"eager PyTorch works: {type(err).__name__}: {_first_line(err)}"
            ) from None
        if got.shape != want.shape:
            raise ParityError(
                f"{path}: {kind} output has shape {got.shape} for input "
                f"{tuple(x.shape)}, eager has {want.shape} (dynamic axes broken)"
            )
        checks.append((batch, num_points, float(np.abs(got - want).max())))
    worst = max(diff for _, _, diff in checks)
    if not worst <= tolerance:  # also catches NaN
        detail = ", ".join(f"B={b} N={n}: {d:.2e}" for b, n, d in checks)
        raise ParityError(
            f"{path}: {kind} logits differ from eager PyTorch by up to {worst:.2e} "
            f"(> tolerance {tolerance:.0e}; {detail})"
        )
    return ParityResult(worst, checks)


def read_onnx_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The pointnet1x1 metadata embedded in an exported ONNX file."""
    _require("onnx")
    import onnx

    if not Path(path).is_file():
        raise FileNotFoundError(f"ONNX model not found: {path}")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # noqa: BLE001 - protobuf raises its own types
        raise ValueError(f"{path}: not an ONNX file ({type(err).__name__})") from None
    props = {p.key: p.value for p in model.metadata_props}
    if "pointnet1x1" not in props:
        raise ValueError(f"{path}: ONNX file without pointnet1x1 metadata")
    return json.loads(props["pointnet1x1"])


def read_torchscript_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The pointnet1x1 metadata embedded in an exported TorchScript file."""
    extra = {_TS_EXTRA: ""}
    with _quiet_exporter():
        torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    if not extra[_TS_EXTRA]:
        raise ValueError(f"{path}: TorchScript file without pointnet1x1 metadata")
    return json.loads(extra[_TS_EXTRA])


def export_checkpoint(
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    format: str = "onnx",
    opset: int = DEFAULT_OPSET,
    tolerance: float = DEFAULT_TOLERANCE,
) -> ParityResult:
    """Load a checkpoint and export its model with its metadata (parity checked)."""
    from pointnet1x1.engine.checkpoint import load_model_checkpoint

    if format not in _FORMATS:
        raise ValueError(f"format must be one of {_FORMATS}, got {format!r}")
    model, meta = load_model_checkpoint(checkpoint)
    channels = int(meta["preprocessing"]["in_channels"])
    if format == "onnx":
        result = export_onnx(
            model,
            out,
            in_channels=channels,
            metadata=meta,
            opset=opset,
            tolerance=tolerance,
        )
    else:
        result = export_torchscript(
            model, out, in_channels=channels, metadata=meta, tolerance=tolerance
        )
    assert result is not None
    return result


class _OnnxModule(nn.Module):
    """An onnxruntime session behind the ``nn.Module`` call the Classifier makes."""

    def __init__(self, session: Any) -> None:
        super().__init__()
        self.session = session
        self.input_name = session.get_inputs()[0].name

    def forward(self, points: Tensor) -> Tensor:
        x = points.detach().cpu().float().contiguous().numpy()
        return torch.from_numpy(self.session.run(None, {self.input_name: x})[0])


class OnnxClassifier(Classifier):
    """A :class:`~pointnet1x1.engine.Classifier` running an exported ONNX file.

    The class names and the preprocessing (point count, features, centring and
    scaling, sampling seed) come from the file's metadata and go through the
    same code as the checkpoint's classifier, so predictions match it; the
    network runs in onnxruntime on the CPU.

    Args:
        path: An ONNX file written by :func:`export_onnx` (or ``pointnet1x1
            export``).
        seed: Seeds the point sampling, as for ``Classifier``.
        input_up_axis: ``"z"`` to turn z-up inputs (scans, Princeton OFF) to the
            library's y up, as for ``Classifier``.

    Example:
        >>> clf = OnnxClassifier.from_file("model.onnx")
        >>> clf.predict(["chair.ply"])[0].label
    """

    def __init__(
        self, path: str | os.PathLike[str], *, seed: int = 0, input_up_axis: str = "y"
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {self.path}")
        kind, session = _runner(self.path)
        if kind != "onnx":
            raise ValueError(f"{self.path}: a TorchScript file, not an ONNX model")
        meta = read_onnx_metadata(self.path)
        super().__init__(
            _OnnxModule(session),
            meta["class_names"],
            preprocessing=meta["preprocessing"],
            device="cpu",
            model_name="onnx",
            seed=seed,
            input_up_axis=input_up_axis,
        )
        self.metadata = meta

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], *, seed: int = 0, input_up_axis: str = "y"
    ) -> OnnxClassifier:
        """Load an exported ONNX file (same as the constructor)."""
        return cls(path, seed=seed, input_up_axis=input_up_axis)

    @classmethod
    def from_checkpoint(cls, path: Any, **kwargs: Any) -> Classifier:
        raise ValueError(
            "OnnxClassifier runs exported .onnx files: use OnnxClassifier.from_file, "
            f"or Classifier.from_checkpoint({str(path)!r}) for a checkpoint"
        )

    def __repr__(self) -> str:
        prep = self.preprocessing
        return (
            f"OnnxClassifier({str(self.path)!r}, classes={len(self.class_names)}, "
            f"num_points={prep['num_points']}, features={prep['features']})"
        )
