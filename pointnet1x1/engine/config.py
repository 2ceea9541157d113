"""The training configuration: one commented dataclass holding every default.

Fields left as ``None`` take their value from a **recipe**
(:data:`pointnet1x1.engine.recipes.RECIPES`: ``"paper"``, ``"fast"``,
``"partseg"``); the task comes from the model's registry entry when not given.
Precedence: dataclass defaults < recipe < config file (TOML or YAML) < flags.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pointnet1x1.engine.recipes import RECIPES

__all__ = [
    "RECIPES",
    "TrainConfig",
    "as_config",
    "build_config",
    "check_device",
    "load_config_file",
]

TASKS = ("cls", "partseg")


@dataclass
class TrainConfig:
    """Everything a training run needs; ``None`` fields come from the recipe."""

    # --- what to train on -------------------------------------------------------
    task: str | None = None  # "cls" or "partseg"; None = the model's (else "cls")
    data: str | None = None  # dataset root; None = the embedded default dataset
    classes: list[str] | None = None  # subset of classes (partseg: categories)
    modelnet10: bool = False  # use the ModelNet10 lists of a ModelNet40 root
    normals: bool = False  # feed xyz + normals (6 channels) instead of xyz
    num_points: int | None = None  # points per cloud (paper 1024, fast 256)
    train_points: list[list[int]] | None = None  # training points by epoch, e.g.
    #   [[1, 256], [17, 512]]: 256 from epoch 1, 512 from 17; validation, test and
    #   the checkpoint's preprocessing keep num_points. None = num_points throughout
    cache_dir: str | None = None  # where the dataset may cache sampled points
    skip_bad: bool = False  # train without the files that cannot be read (listed
    #   in report.json's data.bad_files) instead of stopping with their names

    # --- the model ----------------------------------------------------------------
    model: str | None = None  # registered name (list_models()); paper "pointnet"
    model_kwargs: dict[str, Any] | None = None  # constructor overrides (widths...)
    dropout: float | None = None  # dropout; None = the model's own default
    #   (PointNet: 0.3, i.e. the paper's keep probability 0.7; PointNet++: 0.5)

    # --- optimisation -------------------------------------------------------------
    recipe: str = "auto"  # "auto", "paper", "fast", "partseg" or "modelnet40-cpu"
    epochs: int | None = None  # paper 250
    batch_size: int | None = None  # per process; paper 32
    lr: float | None = None  # Adam learning rate; paper 0.001
    optimizer: str = "adam"  # "adam" (paper) or "sgd" (momentum 0.9)
    weight_decay: float | None = None  # paper: none (the ports use 1e-4)
    decay_step: int | None = None  # samples between lr/BN-momentum decays; paper 200k
    decay_epochs: int | None = None  # or epochs between decays (partseg: 20)
    lr_decay: float | None = None  # lr multiplier per decay (paper 0.7)
    min_lr: float = 1e-5  # lr floor (paper 1e-5)
    lr_schedule: str | None = None  # "step" (paper: the staircase above) or
    #   "cosine" (lr -> min_lr along a half cosine over the run; BN momentum fixed)
    bn_momentum: float | None = None  # initial BN momentum (PyTorch sense; paper 0.5)
    bn_momentum_decay: float | None = None  # BN momentum multiplier per decay (0.5)
    min_bn_momentum: float = 0.01  # BN momentum floor (TF decay clip 0.99)

    # --- augmentation (training batches only) -------------------------------------
    rotate: str | None = None  # "up" (about the up axis, paper), "so3" or "none"
    jitter: float | None = None  # Gaussian jitter sigma (paper 0.01); 0 = off
    jitter_clip: float | None = None  # jitter clipped to +-clip (paper 0.05)
    scale: list[float] | None = None  # e.g. [0.8, 1.25] (ports, partseg); paper off
    shift: float | None = None  # e.g. 0.1 (ports, partseg); paper off; 0 = off

    # --- protocol -----------------------------------------------------------------
    val_fraction: float = 0.1  # classification: stratified validation split of train
    seed: int = 0  # seeds the split, sampling, shuffling, augmentation, init
    votes: int | None = None  # classification: a test-time vote over this many
    #   rotations about the up axis, reported beside the plain test (recipes: 1;
    #   modelnet40-cpu: 12)

    # --- running ------------------------------------------------------------------
    device: str = "auto"  # "auto", "cpu", "cuda" or "cuda:N"
    threads: int | None = None  # CPU threads for torch; 0 = torch's default; fast: 1
    out: str | None = None  # run folder; None = runs/<model>-<data>-<time>
    resume: str | bool = False  # True = resume the run in `out`; or a state/run path
    force: bool = False  # replace a finished run in `out` (else refused)
    sync_bn: bool = False  # SyncBatchNorm under torchrun (CUDA)
    fused_forward: bool = True  # PointNet classifier: fused BN+ReLU+max-pool forward
    #   (pointnet1x1.models.fast.forward_train, same maths, ~4x on CPU; one process)
    precision: str = "auto"  # fused forward's compute: "fp32", "bf16" (fp32 master
    #   weights) or "auto" (bf16 where the CPU/GPU has native bf16, else fp32)
    progress: str = "auto"  # "auto" (bar on a terminal), "bar", "log", "none"
    extra: dict[str, Any] = field(default_factory=dict)  # free-form, kept in report

    def given(self) -> list[str]:
        """The fields set to something other than their default, in field order."""
        return [
            f.name
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != _default(f)
        ]

    def resolved(self) -> TrainConfig:
        """A copy with the task, the model and the recipe's values filled, validated."""
        from pointnet1x1.engine.recipes import apply_recipe

        self.validate()
        cfg = apply_recipe(self)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad value."""
        for name in (
            "epochs",
            "batch_size",
            "num_points",
            "decay_step",
            "decay_epochs",
        ):
            value = getattr(self, name)
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool)
            ):
                raise ValueError(f"{name} must be an integer, got {value!r}")
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if self.decay_step is not None and self.decay_epochs is not None:
            raise ValueError("give decay_step (samples) or decay_epochs, not both")
        for name in ("lr", "lr_decay", "bn_momentum", "bn_momentum_decay"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if self.task is not None and self.task not in TASKS:
            raise ValueError(
                f"task must be one of {', '.join(TASKS)}, got {self.task!r}"
            )
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(
                f"optimizer must be 'adam' or 'sgd', got {self.optimizer!r}"
            )
        if self.rotate not in (None, "up", "so3", "none"):
            raise ValueError(
                f"rotate must be 'up', 'so3' or 'none', got {self.rotate!r}"
            )
        if self.scale is not None and (
            len(self.scale) != 2 or not 0 < self.scale[0] <= self.scale[1]
        ):
            raise ValueError(
                f"scale must be [low, high] with 0 < low <= high, got {self.scale}"
            )
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.threads is not None and self.threads < 0:
            raise ValueError(
                f"threads must be >= 0 (0 = torch's default), got {self.threads}"
            )
        if self.dropout is not None and not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.votes is not None and self.votes <= 0:
            raise ValueError(f"votes must be positive, got {self.votes}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(
                f"precision must be auto, fp32 or bf16, got {self.precision!r}"
            )
        if self.lr_schedule not in (None, "step", "cosine"):
            raise ValueError(
                f"lr_schedule must be 'step' or 'cosine', got {self.lr_schedule!r}"
            )
        if self.train_points is not None:
            check_train_points(self.train_points)
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


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def check_train_points(plan: Any) -> None:
    """Refuse a ``train_points`` plan that is not ``[[1, n1], [e2, n2], ...]``."""
    rows = plan if isinstance(plan, list) else None
    ok = bool(rows) and all(
        isinstance(r, (list, tuple)) and len(r) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in r)
        for r in rows or []
    )  # fmt: skip
    if ok:
        starts = [r[0] for r in rows]  # type: ignore[union-attr]
        ok = starts[0] == 1 and starts == sorted(set(starts))
    if not ok:
        raise ValueError(
            "train_points must be [[1, points], [epoch, points], ...] with "
            f"increasing first epochs starting at 1, got {plan!r}"
        )


def points_at(cfg: TrainConfig, epoch: int) -> int:
    """The training points per cloud in ``epoch`` (``train_points`` or ``num_points``)."""
    assert cfg.num_points is not None, "call cfg.resolved() first"
    points = cfg.num_points
    for start, n in cfg.train_points or []:
        if epoch >= start:
            points = n
    return points


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


ConfigLike = TrainConfig | Mapping[str, Any] | str | os.PathLike[str] | None


def as_config(config: ConfigLike, overrides: dict[str, Any]) -> TrainConfig:
    """A :class:`TrainConfig` from any accepted form, with ``overrides`` applied."""
    if config is None or isinstance(config, (str, os.PathLike)):
        return build_config(config, **overrides)
    if isinstance(config, TrainConfig):
        return dataclasses.replace(config, **overrides)
    if isinstance(config, Mapping):
        return TrainConfig.from_dict({**config, **overrides})
    raise TypeError(
        f"config must be a TrainConfig, a mapping or a file, got {type(config).__name__}"
    )
