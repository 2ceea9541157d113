"""Convert PointNet classifiers trained with the popular PyTorch ports.

Sources (their classifier's parameter names, read from their code):

- ``fxia22``: github.com/fxia22/pointnet.pytorch, ``pointnet/model.py``,
  ``PointNetCls(k, feature_transform)``; ``train_classification.py`` saves the
  bare ``state_dict``.
- ``yanx27``: github.com/yanx27/Pointnet_Pointnet2_pytorch,
  ``models/pointnet_cls.py`` (``get_model(k, normal_channel)``) on
  ``models/pointnet_utils.py``; checkpoints are ``{"model_state_dict": ...}``.

Both share one layout::

    feat.stn      STN3d: conv1 C->64, conv2 64->128, conv3 128->1024, bn1..bn3,
                  fc1 1024->512, fc2 512->256, fc3 256->9, bn4, bn5
    feat.conv1    C->64 (bn1)            -> our encoder.mlp1 = (64,)
    feat.fstn     STNkd(k=64), optional  -> our feature T-Net
    feat.conv2    64->128 (bn2), feat.conv3 128->1024 (bn3) -> encoder.mlp2 = (128, 1024)
    fc1 1024->512 (bn1), fc2 512->256 (bn2) -> head; fc3 256->k -> classifier

so the converter builds ``PointNetClassifier(mlp1=(64,), mlp2=(128, 1024))``
(narrower than the paper's (64, 64) / (64, 128, 1024)) with the feature T-Net
only when ``feat.fstn`` is in the file (fxia22's ``--feature_transform``).

How the differences are handled:

- Their T-Nets add the identity in ``forward``; it is folded into our last bias.
- Their encoder's last layer has **no ReLU** before the max pool; ours has one.
  Since ReLU and max commute, ``max(relu(y + c)) - c == max(y)`` whenever some
  point of the cloud has ``y > -c``: each channel's batch-norm shift gets
  ``c_j = max(0, 8 |gamma_j| - beta_j)`` and the head's first bias ``-W c``
  (batch norm makes ``y_j`` about ``N(beta_j, gamma_j^2)`` over the training
  points). The logits are then the same, up to float32 rounding a few times
  that of an unconverted model (the shifted features are larger), unless every
  point of a cloud lies eight standard deviations below a channel's mean. An
  exact mapping needs an encoder option without that last ReLU.
- Their dropout (fxia22 0.3, yanx27 0.4) sits once, between ``fc2`` and ``bn2``;
  ours follows each head layer. Inference is unaffected; fine-tuning differs.
- Their regulariser is the mean Frobenius norm (not squared) of
  ``A A^T - I``; ours the squared norm (training only).
- yanx27 with ``normal_channel=True`` (6 channels) is **refused**: its input
  transform rotates xyz only, ours rotates the normals with the points.
- Segmentation networks (``PointNetDenseCls``, part seg) are refused.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from pointnet1x1.models import PointNetClassifier
from pointnet1x1.nn import TNet

__all__ = [
    "SOURCES",
    "ConversionError",
    "Converted",
    "convert_checkpoint",
    "convert_state_dict",
    "load_source_state_dict",
    "read_class_names",
]

SOURCES = ("fxia22", "yanx27")
_DROPOUT = {"fxia22": 0.3, "yanx27": 0.4}
_NUM_POINTS = {"fxia22": 2500, "yanx27": 1024}  # their training defaults
_SHIFT_STDS = 8.0
_NOTES = [
    "encoder's last layer has no ReLU in the source: folded as a batch-norm "
    "shift and a head bias (exact unless a cloud lies 8 std below a channel mean)",
    "source dropout sits once between fc2 and bn2; ours after each head layer "
    "(inference identical, fine-tuning differs)",
    "source regulariser is the mean Frobenius norm of A A^T - I, ours the "
    "squared norm (training only)",
]


class ConversionError(ValueError):
    """A source file that cannot be converted (one-line message)."""


class Converted(NamedTuple):
    """A converted model and what is needed to describe it.

    Attributes:
        model: The :class:`PointNetClassifier` with the source's weights, eval mode.
        model_kwargs: Its constructor arguments (for ``create_model("pointnet")``).
        notes: Differences that remain (training-time behaviour).
    """

    model: PointNetClassifier
    model_kwargs: dict[str, Any]
    notes: list[str]


def load_source_state_dict(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """Read a source ``.pth`` with ``torch.load(weights_only=True)``.

    Accepts a bare state dict, ``{"model_state_dict": ...}`` and
    ``{"state_dict": ...}``; strips a ``module.`` prefix (DataParallel).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"source checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure is one line
        first = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
        raise ConversionError(
            f"{path}: cannot read it with torch.load(weights_only=True), nothing "
            f"was executed: {first[:200]}"
        ) from None
    for key in ("model_state_dict", "state_dict"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not all(
        isinstance(v, Tensor) for v in obj.values()
    ):
        raise ConversionError(
            f"{path}: expected a state_dict, or a dict with 'model_state_dict' or "
            "'state_dict'"
        )
    return {
        (k[len("module.") :] if k.startswith("module.") else k): v
        for k, v in obj.items()
    }


def read_class_names(path: str | os.PathLike[str]) -> list[str]:
    """Class names, one per line (blank lines ignored), index ``i`` for logit ``i``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"class names file not found: {path}")
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not names:
        raise ConversionError(f"{path}: no class names (expected one per line)")
    if len(set(names)) != len(names):
        raise ConversionError(f"{path}: class names repeat")
    return names


def _take(state: dict[str, Tensor], key: str, shape: tuple[int, ...]) -> Tensor:
    if key not in state:
        raise ConversionError(f"missing parameter {key!r} {shape}")
    value = state.pop(key)
    if tuple(value.shape) != shape:
        raise ConversionError(
            f"parameter {key!r} has shape {tuple(value.shape)}, expected {shape}"
        )
    return value.float()


def _layers(mlp: nn.Module) -> list[tuple[nn.Conv1d, nn.BatchNorm1d]]:
    convs = [m for m in mlp.modules() if isinstance(m, nn.Conv1d)]
    norms = [m for m in mlp.modules() if isinstance(m, nn.BatchNorm1d)]
    return list(zip(convs, norms, strict=True))


@torch.no_grad()
def _load_layer(
    state: dict[str, Tensor],
    layer: tuple[nn.Conv1d, nn.BatchNorm1d],
    linear: str,
    norm: str,
) -> None:
    """Copy a source ``Conv1d``/``Linear`` + ``BatchNorm1d`` into our pair."""
    conv, bn = layer
    assert conv.bias is not None and bn.running_mean is not None
    c_out, c_in = conv.out_channels, conv.in_channels
    weight = state.get(f"{linear}.weight")
    if weight is not None and weight.dim() == 2:  # nn.Linear -> Conv1d 1x1
        state[f"{linear}.weight"] = weight.unsqueeze(-1)
    conv.weight.copy_(_take(state, f"{linear}.weight", (c_out, c_in, 1)))
    conv.bias.copy_(_take(state, f"{linear}.bias", (c_out,)))
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(bn, name).copy_(_take(state, f"{norm}.{name}", (c_out,)))
    tracked = state.pop(f"{norm}.num_batches_tracked", None)
    if tracked is not None and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.copy_(tracked.reshape(()).long())


@torch.no_grad()
def _load_tnet(state: dict[str, Tensor], tnet: TNet | None, prefix: str) -> None:
    assert tnet is not None
    for i, layer in enumerate(_layers(tnet.mlp), start=1):
        _load_layer(state, layer, f"{prefix}.conv{i}", f"{prefix}.bn{i}")
    for i, layer in enumerate(_layers(tnet.fc), start=1):
        _load_layer(state, layer, f"{prefix}.fc{i}", f"{prefix}.bn{i + 3}")
    k = tnet.k
    tnet.out.weight.copy_(_take(state, f"{prefix}.fc3.weight", (k * k, 256)))
    eye = torch.eye(k).flatten()  # their forward adds it; we keep it in the bias
    tnet.out.bias.copy_(_take(state, f"{prefix}.fc3.bias", (k * k,)) + eye)


@torch.no_grad()
def _fold_missing_relu(bn: nn.BatchNorm1d, next_conv: nn.Conv1d) -> None:
    """Make ``relu`` after ``bn`` a no-op at the max (see the module docstring)."""
    assert next_conv.bias is not None
    gamma, beta = bn.weight.double(), bn.bias.double()  # one rounding at the end
    shift = (_SHIFT_STDS * gamma.abs() - beta).clamp(min=0)
    bn.bias.copy_(beta + shift)
    weight = next_conv.weight[:, :, 0].double()
    next_conv.bias.copy_(next_conv.bias.double() - weight @ shift)


def _check_source(state: Mapping[str, Tensor], source: str) -> tuple[int, int]:
    """``(in_channels, num_classes)`` of a source classifier state dict."""
    if source not in SOURCES:
        raise ConversionError(f"unknown source {source!r}; choose one of {SOURCES}")
    if "conv4.weight" in state or "convs1.weight" in state:
        raise ConversionError(
            f"this {source} file holds a segmentation network; only the PointNet "
            "classifier (PointNetCls / pointnet_cls) can be converted"
        )
    if "feat.conv1.weight" not in state or "fc3.weight" not in state:
        some = ", ".join(sorted(state)[:4])
        raise ConversionError(
            f"not a {source} PointNet classifier state dict (no 'feat.conv1.weight' "
            f"/ 'fc3.weight'; keys start with: {some})"
        )
    in_channels = int(state["feat.conv1.weight"].shape[1])
    if in_channels != 3 and source == "yanx27":
        raise ConversionError(
            f"yanx27 model with normal_channel=True ({in_channels} input channels) "
            "cannot be converted exactly: its input transform rotates xyz only, "
            "pointnet1x1 rotates the normals with the points; convert a model "
            "trained without --use_normals"
        )
    if in_channels != 3:
        raise ConversionError(
            f"{source} classifier with {in_channels} input channels; expected 3"
        )
    return in_channels, int(state["fc3.weight"].shape[0])


def convert_state_dict(state: Mapping[str, Tensor], source: str) -> Converted:
    """Map a source PointNet classifier state dict onto our classifier.

    Args:
        state: The source's ``state_dict`` (``module.`` prefix already stripped).
        source: ``"fxia22"`` or ``"yanx27"``.

    Returns:
        :class:`Converted` with the model in eval mode.

    Raises:
        ConversionError: Unknown source, a network it cannot map, or parameters
            missing, left over or of unexpected shapes.
    """
    in_channels, num_classes = _check_source(state, source)
    kwargs: dict[str, Any] = {
        "num_classes": num_classes,
        "in_channels": in_channels,
        "mlp1": [64],
        "mlp2": [128, 1024],
        "head": [512, 256],
        "dropout": _DROPOUT[source],
        "input_transform": True,
        "feature_transform": "feat.fstn.fc3.weight" in state,
        "reg_weight": 0.001,
        "bias": True,
    }
    model = PointNetClassifier(**kwargs)
    remaining = {k: v.detach().cpu() for k, v in state.items()}
    enc = model.encoder
    try:
        _load_tnet(remaining, enc.input_tnet, "feat.stn")
        if enc.feature_tnet is not None:
            _load_tnet(remaining, enc.feature_tnet, "feat.fstn")
        _load_layer(remaining, _layers(enc.mlp1)[0], "feat.conv1", "feat.bn1")
        for i, layer in enumerate(_layers(enc.mlp2), start=2):
            _load_layer(remaining, layer, f"feat.conv{i}", f"feat.bn{i}")
        for i, layer in enumerate(_layers(model.head), start=1):
            _load_layer(remaining, layer, f"fc{i}", f"bn{i}")
        with torch.no_grad():
            model.classifier.weight.copy_(
                _take(remaining, "fc3.weight", (num_classes, 256))
            )
            model.classifier.bias.copy_(_take(remaining, "fc3.bias", (num_classes,)))
    except ConversionError as err:
        raise ConversionError(f"{source} state dict: {err}") from None
    if remaining:
        raise ConversionError(
            f"{source} state dict has parameters that pointnet1x1 cannot map: "
            f"{', '.join(sorted(remaining)[:6])}"
        )
    _fold_missing_relu(_layers(enc.mlp2)[-1][1], _layers(model.head)[0][0])
    return Converted(model.eval(), kwargs, list(_NOTES))


def convert_checkpoint(
    source_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    source: str,
    class_names: Sequence[str],
    num_points: int | None = None,
) -> tuple[Path, Converted]:
    """Convert a source ``.pth`` into a self-describing pointnet1x1 checkpoint.

    Args:
        source_path: The fxia22 / yanx27 file.
        out: Destination ``.safetensors``.
        source: ``"fxia22"`` or ``"yanx27"``.
        class_names: Names of the classes, in the order of the source's logits.
        num_points: Points per cloud for inference (default: the source's
            training default, 2500 for fxia22 and 1024 for yanx27).

    Returns:
        The written path and the :class:`Converted` model.
    """
    from pointnet1x1.engine.checkpoint import make_preprocessing, save_model_checkpoint

    converted = convert_state_dict(load_source_state_dict(source_path), source)
    num_classes = converted.model_kwargs["num_classes"]
    if len(class_names) != num_classes:
        raise ConversionError(
            f"{len(class_names)} class names given but the {source} model has "
            f"{num_classes} outputs; give one name per output, in order"
        )
    preprocessing = make_preprocessing(
        num_points or _NUM_POINTS[source],
        use_normals=converted.model_kwargs["in_channels"] == 6,
        up_axis="y",  # both ports train on y-up files (modelnet40_normal_resampled, hdf5)
    )
    written = save_model_checkpoint(
        out,
        converted.model,
        model_name="pointnet",
        model_kwargs=converted.model_kwargs,
        class_names=class_names,
        preprocessing=preprocessing,
        extra={
            "converted_from": {
                "source": source,
                "file": Path(source_path).name,
                "notes": converted.notes,
            }
        },
    )
    return written, converted
