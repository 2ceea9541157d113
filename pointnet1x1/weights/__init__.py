"""Pretrained models installed with the package.

``pointnet-modelnet40``: the paper's PointNet (both T-Nets) trained on the whole
ModelNet40 (the ``modelnet40_npy_1024`` tree, 1,024 xyz points, z up) with
``pointnet1x1 train --recipe modelnet40-cpu`` on a 2-core CPU, weights stored in
16 bits. Its test figures, re-measured from the stored file, its data, recipe,
protocol and the library version are in the file's metadata (``pretrained``);
``pointnet1x1 models`` prints them. ModelNet (Princeton) is published for
academic research use only; so is a model trained on it.

Example:
    >>> from pointnet1x1 import Classifier
    >>> Classifier.pretrained().predict(["chair.off"])[0].label
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_PRETRAINED", "PRETRAINED", "pretrained_info", "pretrained_path"]

DEFAULT_PRETRAINED = "pointnet-modelnet40"
# name -> file in this folder
PRETRAINED: dict[str, str] = {
    "pointnet-modelnet40": "pointnet_modelnet40.safetensors",
}


def pretrained_path(name: str = DEFAULT_PRETRAINED) -> Path:
    """The installed checkpoint file of the pretrained model ``name``.

    Raises:
        ValueError: An unknown name (the known ones are listed).
        FileNotFoundError: The file is missing from this installation.
    """
    if name not in PRETRAINED:
        raise ValueError(
            f"unknown pretrained model {name!r}; installed: {', '.join(PRETRAINED)}"
        )
    path = Path(__file__).resolve().parent / PRETRAINED[name]
    if not path.is_file():
        raise FileNotFoundError(
            f"the pretrained model {name!r} is missing from this installation "
            f"({path}); reinstall pointnet1x1"
        )
    return path


def pretrained_info(name: str = DEFAULT_PRETRAINED) -> dict[str, Any]:
    """The ``pretrained`` metadata block of ``name`` (figures, data, recipe...),
    read from the file's safetensors header alone (no torch, no weights)."""
    from pointnet1x1.engine.weights import read_safetensors_header

    path = pretrained_path(name)
    strings, _ = read_safetensors_header(path)  # sizes checked, no torch
    meta = json.loads(strings.get("pointnet1x1", "{}"))
    info = dict(meta.get("extra", {}).get("pretrained", {}))
    info.setdefault("name", name)
    info["file"] = str(path)
    info["file_bytes"] = path.stat().st_size
    return info
