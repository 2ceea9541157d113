"""The training configuration: one commented dataclass holding every default.

Two recipes fill the fields left as ``None``:

- ``"paper"`` (used when ``data`` is given): the authors' recipe from
  charlesq34/pointnet ``train.py``: Adam, lr 0.001, batch 32, 250 epochs, 1024
  points, lr x0.7 every 200k samples (floor 1e-5), BN momentum 0.5 halved every
  200k samples down to 0.01 (TF's decay 0.5 -> 0.99), dropout keep 0.7, and
  augmentation by a random rotation about the up axis plus jitter (sigma 0.01,
  clip 0.05). The popular PyTorch ports (yanx27, fxia22) scale by U(0.8, 1.25) and
  shift by U(-0.1, 0.1) instead of rotating: set ``scale``/``shift``/``rotate``.
- ``"fast"`` (used for the embedded default dataset, no ``data``): a narrower
  PointNet on fewer points that trains in about a minute on two CPU cores.

Precedence: dataclass defaults < recipe < config file (TOML or YAML) < flags.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Fields that take their value from the recipe when left as None.
RECIPES: dict[str, dict[str, Any]] = {
    "paper": {
        "model": "pointnet",  # both T-Nets, ~3.5M parameters
        "epochs": 250,
        "batch_size": 32,
        "num_points": 1024,
        "lr": 1e-3,
        "decay_step": 200_000,  # samples
        "model_kwargs": {},
        "threads": 0,  # torch's default (one per core)
    },
    "fast": {
        "model": "pointnet_vanilla",  # no T-Nets: the 3x3 T-Net alone costs 6x
        "epochs": 30,
        "batch_size": 32,
        "num_points": 256,
        "lr": 2e-3,
        "decay_step": 6_000,  # samples (~10 epochs of the embedded set)
        "model_kwargs": {"mlp1": [32, 32], "mlp2": [32, 64, 256], "head": [128, 64]},
        # layers of 32-256 channels are too small to split across threads: one
        # thread is as fast alone and much faster on a busy (shared) CPU
        "threads": 1,
    },
}


@dataclass
class TrainConfig:
    """Everything a training run needs; ``None`` fields come from the recipe."""

    # --- what to train on -------------------------------------------------------
    task: str = "cls"  # "cls" (classification) or "partseg" (part segmentation)
    data: str | None = None  # dataset root; None = the embedded default dataset
    classes: list[str] | None = None  # subset of class names; None = all present
    modelnet10: bool = False  # use the ModelNet10 lists of a ModelNet40 root
    normals: bool = False  # feed xyz + normals (6 channels) instead of xyz
    num_points: int | None = None  # points per cloud (paper 1024, fast 256)
    cache_dir: str | None = None  # where the dataset may cache sampled points

    # --- the model ----------------------------------------------------------------
    model: str | None = None  # registered name (list_models()); paper "pointnet"
    model_kwargs: dict[str, Any] | None = None  # constructor overrides (widths...)
    dropout: float | None = None  # FC dropout; None = the model's own default
    #   (PointNet: 0.3, i.e. the paper's keep probability 0.7; PointNet++: 0.5)

    # --- optimisation -------------------------------------------------------------
    recipe: str = "auto"  # "auto" (paper with data, fast without), "paper", "fast"
    epochs: int | None = None  # paper 250
    batch_size: int | None = None  # per process; paper 32
    lr: float | None = None  # Adam learning rate; paper 0.001
    optimizer: str = "adam"  # "adam" (paper) or "sgd" (momentum 0.9)
    weight_decay: float = 0.0  # paper: none (the ports use 1e-4)
    decay_step: int | None = None  # samples between lr/BN-momentum decays; paper 200k
    lr_decay: float = 0.7  # lr multiplier every decay_step samples (paper 0.7)
    min_lr: float = 1e-5  # lr floor (paper 1e-5)
    bn_momentum: float = 0.5  # initial BN momentum (PyTorch sense = 1 - TF decay)
    bn_momentum_decay: float = 0.5  # BN momentum multiplier every decay_step samples
    min_bn_momentum: float = 0.01  # BN momentum floor (TF decay clip 0.99)

    # --- augmentation (training batches only) -------------------------------------
    rotate: str | None = "up"  # "up" (about the up axis, paper), "so3" or None
    jitter: float = 0.01  # Gaussian jitter sigma (paper 0.01)
    jitter_clip: float = 0.05  # jitter clipped to +-clip (paper 0.05)
    scale: list[float] | None = None  # e.g. [0.8, 1.25] as in the ports; None = off
    shift: float | None = None  # e.g. 0.1 as in the ports; None = off

    # --- protocol -----------------------------------------------------------------
    val_fraction: float = 0.1  # stratified validation split carved from train
    seed: int = 0  # seeds the split, sampling, shuffling, augmentation, init
    votes: int = 1  # test-time votes (rotations about the up axis) at the end

    # --- running ------------------------------------------------------------------
    device: str = "auto"  # "auto", "cpu", "cuda" or "cuda:N"
    threads: int | None = None  # CPU threads for torch; 0 = torch's default; fast: 1
    out: str | None = None  # run folder; None = runs/<model>-<data>-<time>
    resume: str | bool = False  # True = resume the run in `out`; or a state/run path
    sync_bn: bool = False  # SyncBatchNorm under torchrun (CUDA)
    fused_forward: bool = True  # PointNet: fused BN+ReLU+max-pool training forward
    #   (pointnet1x1.models.fast.forward_train, same maths, ~2x on CPU; one process)
    progress: str = "auto"  # "auto" (bar on a terminal), "bar", "log", "none"
    extra: dict[str, Any] = field(default_factory=dict)  # free-form, kept in report

    def resolved(self) -> TrainConfig:
        """A copy with the recipe's values in every ``None`` field, validated."""
        recipe = self.recipe
        if recipe == "auto":
            recipe = "paper" if self.data else "fast"
        if recipe not in RECIPES:
            raise ValueError(
                f"recipe must be 'auto', 'paper' or 'fast', got {self.recipe!r}"
            )
        values = dataclasses.asdict(self)
        recipe_model = RECIPES[recipe]["model"]
        for key, value in RECIPES[recipe].items():
            if key == "model_kwargs":
                # the recipe's widths fit the recipe's model only, not one the user chose
                mine = values["model"] in (None, recipe_model)
                values[key] = {**(value if mine else {}), **(self.model_kwargs or {})}
            elif values[key] is None:
                values[key] = value
        values["recipe"] = recipe
        cfg = TrainConfig(**values)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad value."""
        positive = ("epochs", "batch_size", "num_points", "decay_step")
        for name in positive:
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if self.lr is not None and self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.task not in ("cls", "partseg"):
            raise ValueError(f"task must be 'cls' or 'partseg', got {self.task!r}")
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(
                f"optimizer must be 'adam' or 'sgd', got {self.optimizer!r}"
            )
        if self.rotate not in (None, "up", "so3"):
            raise ValueError(f"rotate must be 'up', 'so3' or None, got {self.rotate!r}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.threads is not None and self.threads < 0:
            raise ValueError(
                f"threads must be >= 0 (0 = torch's default), got {self.threads}"
            )
        if self.dropout is not None and not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.votes <= 0:
            raise ValueError(f"votes must be positive, got {self.votes}")
        if self.progress not in ("auto", "bar", "log", "none"):
            raise ValueError(
                f"progress must be auto, bar, log or none, got {self.progress!r}"
            )
        check_device(self.device)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a mapping, refusing unknown keys (with the known ones)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"unknown config key(s) {unknown}; known keys: {', '.join(sorted(known))}"
            )
        return cls(**values)


def check_device(device: str) -> None:
    """Refuse a device string that is not auto/cpu/cuda[:N] (no torch import)."""
    ok = device in ("auto", "cpu", "cuda") or (
        device.startswith("cuda:") and device[5:].isdigit()
    )
    if not ok:
        raise ValueError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a TOML (``.toml``) or YAML (``.yaml``/``.yml``) file of config values.

    A ``[train]`` table (or ``train:`` mapping) is used when present, otherwise the
    top level. Keys are the :class:`TrainConfig` field names (``-`` may be ``_``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    suffix = path.suffix.lower()
    text = path.read_text(encoding="utf-8")
    if suffix == ".toml":
        import tomllib

        try:
            values = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"{path}: invalid TOML: {err}") from None
    elif suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ValueError(
                f"{path}: reading YAML needs PyYAML (pip install pyyaml), or use TOML"
            ) from None
        try:
            values = yaml.safe_load(text) or {}
        except yaml.YAMLError as err:
            first = str(err).splitlines()[0]
            raise ValueError(f"{path}: invalid YAML: {first}") from None
    else:
        raise ValueError(f"{path}: config files must be .toml, .yaml or .yml")
    if not isinstance(values, dict):
        raise ValueError(
            f"{path}: expected a mapping of config keys, got {type(values).__name__}"
        )
    if isinstance(values.get("train"), dict):
        values = values["train"]
    return {str(k).replace("-", "_"): v for k, v in values.items()}


def build_config(
    file: str | os.PathLike[str] | None = None, **overrides: Any
) -> TrainConfig:
    """Defaults < config ``file`` < ``overrides`` (``None`` overrides are ignored)."""
    values: dict[str, Any] = load_config_file(file) if file else {}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig.from_dict(values)
