"""PointNet's critical points: the points that win the max pool (paper, Fig. 7).

The encoder applies one shared MLP (1x1 convolutions) to every point and then takes,
for each of the ``C`` global channels (1024 in the paper), the maximum over the
points. Each channel's maximum is attained by one point, its *winner*; the union of
the winners is the critical set ``C_S``. Without T-Nets the global feature of the
critical set alone equals that of the whole cloud (paper, Theorem 2): every other
point could move or vanish, within limits, without changing the model's answer.
With T-Nets the per-point features also depend on the transforms predicted from the
whole cloud, so the set is the max pool's winners for this cloud.

:func:`critical_points` runs the model's own encoder (its T-Nets and shared MLPs, in
eval mode) and reads the per-point features it pools; nothing of the encoder's maths
is re-typed here. :func:`render_critical_points` draws the cloud with its critical
set highlighted and counted (matplotlib, headless).

Shape:
    cloud ``(N, C)`` points-major, as the model sees it (preprocessed, e.g. by
    ``Classifier.preprocess``); winners ``(C_global,)``; critical indices ``(K,)``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from pointnet1x1.models.pointnet import PointNetClassifier, PointNetEncoder

__all__ = ["CriticalPoints", "critical_points", "render_critical_points"]


class CriticalPoints(NamedTuple):
    """The max pool's winners for one cloud.

    Attributes:
        indices: Sorted int64 array of shape ``(K,)`` giving the critical points
            (the union of the winners) as indices into the cloud.
        num_critical: ``K``, the size of the critical set.
        winners: Int64 array of shape ``(C_global,)`` giving the winning point of
            every global channel (the first of equal maxima), or -1 for a channel
            on which every point ties (e.g. a ReLU at 0 everywhere): no point wins it.
        global_feature: Float32 array of shape ``(C_global,)``, the pooled feature.
    """

    indices: np.ndarray
    num_critical: int
    winners: np.ndarray
    global_feature: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {
            "num_critical": self.num_critical,
            "indices": self.indices.tolist(),
            "channels": len(self.winners),
            "channels_without_winner": int((self.winners < 0).sum()),
        }


def _encoder(model: nn.Module) -> PointNetEncoder:
    if isinstance(model, PointNetEncoder):
        return model
    if isinstance(model, PointNetClassifier):
        return model.encoder
    raise ValueError(
        f"critical points need a PointNetClassifier or a PointNetEncoder (a model "
        f"that max-pools one shared MLP's features), got {type(model).__name__}"
    )


@torch.no_grad()
def critical_points(model: nn.Module, cloud: Any) -> CriticalPoints:
    """The points of ``cloud`` that win the max pool of the PointNet encoder.

    Args:
        model: A :class:`PointNetClassifier` (its encoder is used) or a
            :class:`PointNetEncoder`. It runs in eval mode (batch norm with its
            running statistics); its mode is restored afterwards.
        cloud: Array or tensor of shape ``(N, C)`` giving the points as the model
            takes them (``C == model.in_channels``, already preprocessed).

    Returns:
        A :class:`CriticalPoints`.

    Raises:
        ValueError: Another kind of model, or a cloud of the wrong shape.
    """
    encoder = _encoder(model)
    points = torch.as_tensor(np.asarray(cloud) if not torch.is_tensor(cloud) else cloud)
    if points.dim() != 2 or points.shape[1] != encoder.in_channels or not len(points):
        raise ValueError(
            f"expected a cloud of shape (N, {encoder.in_channels}) with N >= 1, "
            f"got {tuple(points.shape)}"
        )
    param = next(encoder.parameters())
    x = points.to(param.device, param.dtype).T.unsqueeze(0)  # (1, C, N)
    was_training = encoder.training
    encoder.eval()
    try:
        features = encoder(x)
    finally:
        encoder.train(was_training)
    # the encoder's last local feature is the (1, C_global, N) tensor it pools
    per_point = features.local_features[-1][0].float().cpu().numpy()
    winners = per_point.argmax(axis=1).astype(np.int64)  # first of equal maxima
    winners[per_point.max(axis=1) == per_point.min(axis=1)] = -1
    indices = np.unique(winners[winners >= 0])
    pooled = features.global_feature[0].float().cpu().numpy()
    return CriticalPoints(indices, len(indices), winners, pooled)


def render_critical_points(
    cloud: Any,
    critical: CriticalPoints,
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    up_axis: str = "z",
    views: tuple[tuple[float, float], ...] = ((20, -60), (20, 30)),
) -> Path:
    """Draw ``cloud`` with its critical set highlighted into a PNG (headless).

    The critical points are drawn large and red over the others (small, grey);
    the count ``K of N points`` is written on the picture.

    Args:
        cloud: Array of shape ``(N, 3+F)`` (only xyz is drawn), the cloud given to
            :func:`critical_points`.
        critical: Its :class:`CriticalPoints`.
        path: The PNG to write (atomically).
        title: Text before the count (e.g. the file name and the predicted label).
        up_axis: The data axis drawn vertically (the model's, z by default).
        views: ``(elevation, azimuth)`` of each panel.

    Returns:
        The path written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from pointnet1x1._atomic import atomic_savefig
    from pointnet1x1.io.axes import convert_up_axis

    xyz = np.asarray(cloud, dtype=np.float64)[:, :3]
    if len(critical.indices) and critical.indices.max() >= len(xyz):
        raise ValueError(
            f"critical point index {int(critical.indices.max())} is out of range "
            f"for a cloud of {len(xyz)} points: pass the cloud the set was found on"
        )
    xyz = convert_up_axis(xyz, up_axis, "z")  # matplotlib draws z vertically
    mask = np.zeros(len(xyz), bool)
    mask[critical.indices] = True
    fig = Figure(figsize=(3.6 * len(views), 3.9), dpi=100)
    FigureCanvasAgg(fig)
    centre = (xyz.max(0) + xyz.min(0)) / 2
    half = max(float((xyz.max(0) - xyz.min(0)).max()) / 2, 1e-9)
    for col, (elev, azim) in enumerate(views):
        ax = fig.add_subplot(1, len(views), col + 1, projection="3d")
        rest, crit = xyz[~mask], xyz[mask]
        ax.scatter(*rest.T, s=2, c="0.6", linewidths=0, alpha=0.6)
        ax.scatter(*crit.T, s=9, c="tab:red", linewidths=0)
        ax.view_init(elev=elev, azim=azim)
        for setter, mid in zip(
            (ax.set_xlim, ax.set_ylim, ax.set_zlim), centre, strict=True
        ):
            setter(mid - half, mid + half)
        ax.set_box_aspect((1, 1, 1))
        ax.set_axis_off()
    text = f"critical points: {critical.num_critical} of {len(xyz)} points (red)"
    fig.suptitle(text if title is None else f"{title}\n{text}", fontsize=10)
    fig.subplots_adjust(left=0, right=1, bottom=0, top=0.88, wspace=0)
    return atomic_savefig(path, fig)
