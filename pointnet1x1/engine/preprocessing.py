"""The preprocessing a model was trained with: one frozen object, recorded in checkpoints.

Training writes it into every checkpoint (and export into every exported file);
evaluation, the predictors and export read it back, so a file goes into the model
the way the training clouds did and nobody re-types the settings:

    points (N, 3+F) in the file's up axis
      -> the input features (xyz, or xyz + normals)
      -> the one up-axis conversion (:func:`pointnet1x1.io.axes.convert_up_axis`)
         from the file's axis to the model's (:attr:`Preprocessing.up_axis`)
      -> non-finite points dropped
      -> centred at the centroid, farthest point at radius 1 (the whole cloud,
         as the datasets do)
      -> ``num_points`` sampled (seeded), unless every point is wanted

Shape:
    :meth:`Preprocessing.prepare` maps ``(N, 3+F)`` to ``(num_points, in_channels)``
    (or ``(N', in_channels)`` with ``sample=False``), float32, points-major.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from pointnet1x1.io.axes import MODEL_UP_AXIS, check_up_axis, convert_up_axis

__all__ = ["LEGACY_UP_AXIS", "Preprocessing", "make_preprocessing"]

NORMALIZE = "center_unit_sphere"
FEATURES = ("xyz", "normals")
SAMPLING = ("random", "fps")
# checkpoints written before the up axis was recorded were all y up
LEGACY_UP_AXIS = "y"


@dataclass(frozen=True)
class Preprocessing:
    """How clouds were turned into model inputs in training (see the module doc)."""

    num_points: int = 1024  # points per cloud fed to the model
    features: tuple[str, ...] = ("xyz",)  # ("xyz",) or ("xyz", "normals")
    in_channels: int = 3  # 3 per feature, plus any extra channels after them
    normalize: str = NORMALIZE  # centre at the centroid, farthest point at radius 1
    sampling: str = "random"  # how clouds are reduced to num_points: random or fps
    up_axis: str = MODEL_UP_AXIS  # the model's up axis (what inputs are turned to)

    def __post_init__(self) -> None:
        if not isinstance(self.num_points, int) or self.num_points <= 0:
            raise ValueError(
                f"num_points must be a positive int, got {self.num_points!r}"
            )
        features = tuple(self.features)
        if features not in (("xyz",), ("xyz", "normals")):
            raise ValueError(
                f"features must be ['xyz'] or ['xyz', 'normals'], got {list(features)}"
            )
        object.__setattr__(self, "features", features)
        if not isinstance(self.in_channels, int) or self.in_channels < 3 * len(
            features
        ):
            raise ValueError(
                f"in_channels must be an int >= {3 * len(features)} for features "
                f"{list(features)}, got {self.in_channels!r}"
            )
        if self.normalize != NORMALIZE:
            raise ValueError(f"normalize must be {NORMALIZE!r}, got {self.normalize!r}")
        if self.sampling not in SAMPLING:
            raise ValueError(f"sampling must be random or fps, got {self.sampling!r}")
        object.__setattr__(self, "up_axis", check_up_axis(self.up_axis, "up_axis"))

    @property
    def use_normals(self) -> bool:
        return "normals" in self.features

    def replace(self, **changes: Any) -> Preprocessing:
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in checkpoint metadata (``features`` as a list)."""
        out = dataclasses.asdict(self)
        out["features"] = list(self.features)
        return out

    @classmethod
    def from_dict(cls, values: Preprocessing | Mapping[str, Any]) -> Preprocessing:
        """Read the checkpoint form; old checkpoints without ``up_axis`` were y up.

        Keys this version does not know are ignored (a newer writer may add some);
        a missing or wrongly typed known key is a ``ValueError`` naming it.
        """
        if isinstance(values, Preprocessing):
            return values
        if not isinstance(values, Mapping):
            raise ValueError(
                f"preprocessing must be a mapping, got {type(values).__name__}"
            )
        missing = [
            k for k in ("num_points", "features", "in_channels") if k not in values
        ]
        if missing:
            raise ValueError(f"preprocessing lacks {missing}")
        known = {f.name for f in dataclasses.fields(cls)}
        kept = {k: v for k, v in values.items() if k in known}
        kept.setdefault("up_axis", LEGACY_UP_AXIS)
        if not isinstance(kept["features"], (list, tuple)):
            raise ValueError(
                f"preprocessing features must be a list, got {kept['features']!r}"
            )
        kept["features"] = tuple(kept["features"])
        return cls(**kept)

    # -- the pipeline ------------------------------------------------------------
    def select_features(
        self, points: np.ndarray, normals: np.ndarray | None, name: str = "cloud"
    ) -> np.ndarray:
        """``(N, in_channels)``: xyz (and the normals) the model takes, extra columns dropped."""
        if self.use_normals:
            if normals is None:
                raise ValueError(
                    f"{name}: the model needs normals (xyz + normals) but the cloud has none"
                )
            points = np.concatenate([points[:, :3], normals], axis=1)
        if points.shape[1] < self.in_channels:
            raise ValueError(
                f"{name}: the model needs {self.in_channels} channels per point, "
                f"got {points.shape[1]}"
            )
        return points[:, : self.in_channels]

    def prepare(
        self,
        points: np.ndarray,
        normals: np.ndarray | None = None,
        *,
        input_up_axis: str,
        seed: int = 0,
        sample: bool = True,
        name: str = "cloud",
    ) -> np.ndarray:
        """One cloud in the file's up axis -> the model's input, points-major.

        Args:
            points: Array of shape (N, 3+F) giving the points (and features).
            normals: Array of shape (N, 3) of unit normals, when the cloud has them
                separately (files); otherwise columns 3:6 of ``points`` are used.
            input_up_axis: The up axis of ``points`` (``"x"``, ``"y"`` or ``"z"``).
            seed: Seeds the sampling, so a file always gives the same input.
            sample: Sample ``num_points`` (classification); ``False`` keeps every
                finite point (part segmentation labels every point).
            name: Names the cloud in error messages.

        Returns:
            float32 array of shape (num_points, in_channels), or (N', in_channels).
        """
        from pointnet1x1.data.transforms import normalize_points, sample_points

        points = np.asarray(points, dtype=np.float32)
        if points.ndim != 2 or points.shape[1] < 3:
            raise ValueError(
                f"{name}: expected points of shape (N, 3+F), got {points.shape}"
            )
        if normals is None and points.shape[1] >= 6:
            normals = points[:, 3:6]
        x = self.select_features(points, normals, name)
        triples = 2 if self.use_normals else 1
        x = convert_up_axis(
            x, check_up_axis(input_up_axis), self.up_axis, triples=triples
        )
        finite = np.isfinite(x).all(axis=1)
        if not finite.all():
            x = x[finite]
        if x.shape[0] == 0:
            raise ValueError(f"{name}: no finite points")
        x = normalize_points(x)
        if not sample:
            return np.ascontiguousarray(x, dtype=np.float32)
        method = self.sampling
        if method == "fps" and x.shape[0] < self.num_points:
            method = "random"
        return np.ascontiguousarray(
            sample_points(x, self.num_points, seed, method), dtype=np.float32
        )


def make_preprocessing(
    num_points: int,
    *,
    use_normals: bool = False,
    up_axis: str = MODEL_UP_AXIS,
    sampling: str = "random",
    extra_channels: int = 0,
) -> Preprocessing:
    """A :class:`Preprocessing` from the usual arguments.

    Args:
        num_points: Points per cloud fed to the model.
        use_normals: Whether the input features are xyz plus unit normals.
        up_axis: The up axis of the training data (what inputs are turned to).
        sampling: How clouds are reduced to ``num_points`` (``"random"``/``"fps"``).
        extra_channels: Further per-point features after xyz (and normals).
    """
    features = ("xyz", "normals") if use_normals else ("xyz",)
    return Preprocessing(
        num_points=num_points,
        features=features,
        in_channels=3 * len(features) + int(extra_channels),
        sampling=sampling,
        up_axis=up_axis,
    )
