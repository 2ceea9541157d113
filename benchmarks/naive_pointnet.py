"""The naive reference: PointNet as the popular PyTorch ports write it (+ bench helpers).

Written after fxia22/pointnet.pytorch (``pointnet/model.py``): ``Conv1d(k=1)`` +
``BatchNorm1d`` + ReLU stacks in fp32, ``nn.Linear`` + ``BatchNorm1d`` heads, both
T-Nets applied with ``torch.bmm`` on transposed tensors, and a per-sample Python
``Dataset`` + ``DataLoader`` with numpy augmentation for training. The benchmarks
measure our fast paths against it, interleaved in the same run.

:func:`naive_from` builds it with the weights of a
:class:`~pointnet1x1.models.PointNetClassifier`, so both give the same logits
(checked by the benchmarks before timing anything).

Shape:
    - Input: ``(B, C, N)`` channels-first, ``C = 3`` (xyz) or more (xyz + normals...).
    - Output: logits ``(B, num_classes)`` and the two transforms.
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (as the ports write it)
from torch import Tensor, nn


class STNkd(nn.Module):
    """The ports' T-Net: conv 64-128-1024, max, fc 512-256-k*k, plus identity."""

    def __init__(self, k: int = 64, in_channels: int | None = None) -> None:
        super().__init__()
        self.k = k
        self.conv1 = nn.Conv1d(in_channels or k, 64, 1)
        self.conv2 = nn.Conv1d(64, 128, 1)
        self.conv3 = nn.Conv1d(128, 1024, 1)
        self.fc1 = nn.Linear(1024, 512)
        self.fc2 = nn.Linear(512, 256)
        self.fc3 = nn.Linear(256, k * k)
        self.relu = nn.ReLU()
        self.bn1 = nn.BatchNorm1d(64)
        self.bn2 = nn.BatchNorm1d(128)
        self.bn3 = nn.BatchNorm1d(1024)
        self.bn4 = nn.BatchNorm1d(512)
        self.bn5 = nn.BatchNorm1d(256)

    def forward(self, x: Tensor) -> Tensor:
        batchsize = x.size()[0]
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = F.relu(self.bn3(self.conv3(x)))
        x = torch.max(x, 2, keepdim=True)[0]
        x = x.view(-1, 1024)
        x = F.relu(self.bn4(self.fc1(x)))
        x = F.relu(self.bn5(self.fc2(x)))
        x = self.fc3(x)
        iden = torch.eye(self.k, dtype=x.dtype, device=x.device).flatten()
        x = x + iden.view(1, self.k * self.k).repeat(batchsize, 1)
        return x.view(-1, self.k, self.k)


class PointNetfeat(nn.Module):
    """The ports' encoder: STN3d, conv 64, STNkd 64, conv 128-1024, max."""

    def __init__(self, in_channels: int = 3, feature_transform: bool = True) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.stn = STNkd(k=3, in_channels=in_channels)
        # Our PointNet has mlp1 = (64, 64): two convs before the feature T-Net.
        self.conv0 = nn.Conv1d(in_channels, 64, 1)
        self.conv1 = nn.Conv1d(64, 64, 1)
        self.conv2 = nn.Conv1d(64, 64, 1)
        self.conv3 = nn.Conv1d(64, 128, 1)
        self.conv4 = nn.Conv1d(128, 1024, 1)
        self.bn0 = nn.BatchNorm1d(64)
        self.bn1 = nn.BatchNorm1d(64)
        self.bn2 = nn.BatchNorm1d(64)
        self.bn3 = nn.BatchNorm1d(128)
        self.bn4 = nn.BatchNorm1d(1024)
        self.fstn = STNkd(k=64) if feature_transform else None

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        trans = self.stn(x)
        x = x.transpose(2, 1)
        if self.in_channels > 3:  # normals rotate with the points
            feature = x[:, :, 3:]
            x = x[:, :, :3]
        x = torch.bmm(x, trans)
        if self.in_channels > 3:
            if self.in_channels >= 6:
                normals = torch.bmm(feature[:, :, :3], trans)
                feature = torch.cat([normals, feature[:, :, 3:]], dim=2)
            x = torch.cat([x, feature], dim=2)
        x = x.transpose(2, 1)
        x = F.relu(self.bn0(self.conv0(x)))
        x = F.relu(self.bn1(self.conv1(x)))
        trans_feat = None
        if self.fstn is not None:
            trans_feat = self.fstn(x)
            x = x.transpose(2, 1)
            x = torch.bmm(x, trans_feat)
            x = x.transpose(2, 1)
        x = F.relu(self.bn2(self.conv2(x)))
        x = F.relu(self.bn3(self.conv3(x)))
        x = F.relu(self.bn4(self.conv4(x)))
        x = torch.max(x, 2, keepdim=True)[0]
        x = x.view(-1, 1024)
        return x, trans, trans_feat


class NaivePointNetCls(nn.Module):
    """The ports' classifier: encoder, fc 512-256-k with BN, dropout, log-softmax off.

    Returns logits (the ports return ``log_softmax``; the argmax is the same and
    logits compare directly with our model).
    """

    def __init__(
        self,
        num_classes: int = 40,
        in_channels: int = 3,
        feature_transform: bool = True,
    ) -> None:
        super().__init__()
        self.feat = PointNetfeat(in_channels, feature_transform)
        self.fc1 = nn.Linear(1024, 512)
        self.fc2 = nn.Linear(512, 256)
        self.fc3 = nn.Linear(256, num_classes)
        self.dropout = nn.Dropout(p=0.3)
        self.bn1 = nn.BatchNorm1d(512)
        self.bn2 = nn.BatchNorm1d(256)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        x, trans, trans_feat = self.feat(x)
        x = F.relu(self.bn1(self.fc1(x)))
        x = F.relu(self.bn2(self.dropout(self.fc2(x))))
        x = self.fc3(x)
        return x, trans, trans_feat


def feature_transform_regularizer(trans: Tensor) -> Tensor:
    """The ports' ``||I - A A^T||`` (Frobenius norm, not squared, as they write it)."""
    d = trans.size()[1]
    eye = torch.eye(d, device=trans.device)[None, :, :]
    return torch.mean(
        torch.norm(torch.bmm(trans, trans.transpose(2, 1)) - eye, dim=(1, 2))
    )


# --- weights from a PointNetClassifier -------------------------------------------


def _copy_layer(dst: nn.Module, src: nn.Module) -> None:
    with torch.no_grad():
        dst.weight.copy_(src.weight.reshape(dst.weight.shape))
        if getattr(dst, "bias", None) is not None:
            dst.bias.copy_(src.bias)


def _copy_bn(dst: nn.BatchNorm1d, src: nn.BatchNorm1d) -> None:
    dst.load_state_dict(src.state_dict())


def _blocks(mlp: nn.Module) -> list[tuple[nn.Module, nn.Module]]:
    """(conv, bn) pairs of a SharedMLP."""
    layers = list(mlp.layers)
    convs = [m for m in layers if isinstance(m, nn.Conv1d)]
    norms = [m for m in layers if isinstance(m, nn.BatchNorm1d)]
    if len(convs) != len(norms):
        raise ValueError(
            "naive_from needs a SharedMLP with a BatchNorm after each conv"
        )
    return list(zip(convs, norms, strict=True))


def _copy_tnet(dst: STNkd, src: nn.Module) -> None:
    convs = [(dst.conv1, dst.bn1), (dst.conv2, dst.bn2), (dst.conv3, dst.bn3)]
    fcs = [(dst.fc1, dst.bn4), (dst.fc2, dst.bn5)]
    for (dc, db), (sc, sb) in zip(
        convs + fcs, _blocks(src.mlp) + _blocks(src.fc), strict=True
    ):
        _copy_layer(dc, sc)
        _copy_bn(db, sb)
    with torch.no_grad():
        dst.fc3.weight.copy_(src.out.weight)
        # Ours has the identity in the bias; the ports add it in forward.
        dst.fc3.bias.copy_(src.out.bias - torch.eye(dst.k).flatten())


def naive_from(model: nn.Module) -> NaivePointNetCls:
    """The naive port holding the weights of ``model`` (a paper-default PointNet).

    Args:
        model: A :class:`~pointnet1x1.models.PointNetClassifier` with both T-Nets
            and the default widths.

    Returns:
        A :class:`NaivePointNetCls` whose eval-mode logits equal ``model.eval()(x)``.
    """
    enc = model.encoder
    if enc.input_tnet is None or list(enc.mlp1.channels[1:]) != [64, 64]:
        raise ValueError("naive_from needs the paper PointNet with an input T-Net")
    naive = NaivePointNetCls(
        model.num_classes, model.in_channels, enc.feature_tnet is not None
    )
    f = naive.feat
    _copy_tnet(f.stn, enc.input_tnet)
    if enc.feature_tnet is not None and f.fstn is not None:
        _copy_tnet(f.fstn, enc.feature_tnet)
    pairs = [
        (f.conv0, f.bn0),
        (f.conv1, f.bn1),
        (f.conv2, f.bn2),
        (f.conv3, f.bn3),
        (f.conv4, f.bn4),
    ]
    for (dc, db), (sc, sb) in zip(
        pairs, _blocks(enc.mlp1) + _blocks(enc.mlp2), strict=True
    ):
        _copy_layer(dc, sc)
        _copy_bn(db, sb)
    for (dc, db), (sc, sb) in zip(
        [(naive.fc1, naive.bn1), (naive.fc2, naive.bn2)],
        _blocks(model.head),
        strict=True,
    ):
        _copy_layer(dc, sc)
        _copy_bn(db, sb)
    _copy_layer(naive.fc3, model.classifier)
    return naive


# --- the ports' per-sample data pipeline -----------------------------------------


class NaiveDataset(torch.utils.data.Dataset):
    """Per-sample dataset with numpy augmentation, as the ports write it.

    Each item samples ``num_points`` points, centres and scales to the unit
    sphere, then (training) rotates about the up axis, jitters and returns a
    ``(num_points, C)`` float32 tensor; the DataLoader's default collate stacks
    them and the training loop transposes to ``(B, C, N)``.
    """

    def __init__(
        self, points: np.ndarray, labels: np.ndarray, num_points: int = 1024
    ) -> None:
        self.points = points  # (S, P, C) float32
        self.labels = labels  # (S,)
        self.num_points = num_points

    def __len__(self) -> int:
        return len(self.points)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        cloud = self.points[index]
        choice = np.random.choice(len(cloud), self.num_points, replace=True)
        point_set = cloud[choice, :].copy()
        xyz = point_set[:, :3]
        xyz = xyz - np.expand_dims(np.mean(xyz, axis=0), 0)
        dist = np.max(np.sqrt(np.sum(xyz**2, axis=1)), 0)
        xyz = xyz / dist
        theta = np.random.uniform(0, np.pi * 2)
        rot = np.array(
            [[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]]
        )
        xyz[:, [0, 2]] = xyz[:, [0, 2]].dot(rot)
        if point_set.shape[1] >= 6:
            nrm = point_set[:, 3:6]
            nrm[:, [0, 2]] = nrm[:, [0, 2]].dot(rot)
        xyz += np.random.normal(0, 0.02, size=xyz.shape)
        point_set[:, :3] = xyz
        return (
            torch.from_numpy(point_set.astype(np.float32)),
            torch.from_numpy(np.array([self.labels[index]]).astype(np.int64)),
        )


# --- shared by the benchmarks: real data, timing, machine ------------------------

DATA_ROOT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
MODELNET = DATA_ROOT / "modelnet40_normal_resampled"
# The classes of which every official train and test shape is present here.
COMPLETE_CLASSES = ("airplane", "bathtub", "bench", "person")


def load_modelnet_subset(
    split: str,
    classes: Sequence[str] = COMPLETE_CLASSES,
    num_points: int | None = 1024,
    root: Path = MODELNET,
) -> tuple[np.ndarray, np.ndarray]:
    """Read the per-shape ``x,y,z,nx,ny,nz`` files of an official split.

    Args:
        split: ``"train"`` or ``"test"``.
        classes: Class names; labels are their indices in this order.
        num_points: Keep the first ``num_points`` points of each file (the
            PointNet++ loader's choice); ``None`` keeps all stored points.
        root: The ``modelnet40_normal_resampled`` folder.

    Returns:
        ``(points, labels)``: float32 ``(S, P, 6)`` with xyz centred at the
        centroid and scaled to the unit sphere, and int64 ``(S,)``.
    """
    listing = root / f"modelnet40_{split}.txt"
    if not listing.is_file():
        raise FileNotFoundError(
            f"{listing}: missing; the benchmarks need ../shared/data"
        )
    index = {c: i for i, c in enumerate(classes)}
    clouds, labels = [], []
    for name in listing.read_text().split():
        cls = name.rsplit("_", 1)[0]
        if cls not in index:
            continue
        pts = np.loadtxt(root / cls / f"{name}.txt", delimiter=",", dtype=np.float32)
        pts = pts[:num_points].copy()
        pts[:, :3] -= pts[:, :3].mean(axis=0)
        pts[:, :3] /= np.linalg.norm(pts[:, :3], axis=1).max()
        clouds.append(pts)
        labels.append(index[cls])
    if not clouds:
        raise FileNotFoundError(f"{root}: no {split} shapes of {list(classes)}")
    return np.stack(clouds), np.asarray(labels, dtype=np.int64)


def interleaved(
    fns: dict[str, Callable[[], object]], rounds: int, warmup: int = 2
) -> dict[str, list[float]]:
    """Time every function once per round, in rotating order; seconds per call.

    Rotating the order each round spreads the noise of a shared machine evenly;
    compare medians of per-round ratios (see :func:`ratio_summary`).
    """
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            t0 = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t0)
    return times


def ratio_summary(
    times: dict[str, list[float]], baseline: str, items: int, unit: str = "clouds/s"
) -> str:
    """Table: median time, throughput and median per-round speed-up vs ``baseline``."""
    base = times[baseline]
    lines = [f"{'variant':<34} {'median ms':>10} {unit:>12} {'x ' + baseline:>14}"]
    for name, ts in times.items():
        ratio = statistics.median(b / t for b, t in zip(base, ts, strict=True))
        med = statistics.median(ts)
        lines.append(
            f"{name:<34} {med * 1e3:>10.1f} {items / med:>12.1f} {ratio:>13.2f}x"
        )
    return "\n".join(lines)


def machine_info() -> str:
    """One line: CPU model, cores, threads, torch, native bf16, load average."""
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    from pointnet1x1.models.fast import has_native_bf16

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), native bf16: {has_native_bf16()}, "
        f"load average {load:.2f}"
    )
