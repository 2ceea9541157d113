"""Export a classifier to ONNX or TorchScript, checked against eager PyTorch.

:mod:`.writers` writes the files and reads their metadata back; :mod:`.parity`
holds the parity check every export runs.

The exported model takes channels-first points ``(B, 3+F, N)`` float32 with a
dynamic batch size ``B`` and point count ``N`` and returns logits ``(B, K)``.
What a deployment needs besides the weights travels inside the file:

- ONNX: ``metadata_props`` ``class_names``, ``preprocessing`` and ``up_axis``
  (the model's: inputs must be converted to it), and ``pointnet1x1`` (the whole
  checkpoint metadata, JSON);
- TorchScript: the extra file ``pointnet1x1.json`` (the same document).

Every export runs :func:`check_parity` before its file is written: the exported
model (ONNX by onnxruntime, TorchScript loaded from the exporter's own bytes, both
in memory) is compared with the eager model on two point counts and batch sizes
that differ from the ones used while exporting; above ``tolerance`` it raises
:class:`ParityError` and no file is left.

To run an ONNX file with the checkpoint's preprocessing, use
``Classifier.from_onnx(path)`` (:mod:`pointnet1x1.engine.predict`). TorchScript
archives run their own code when loaded, so this package never loads one from a
path: :func:`read_torchscript_metadata` reads the metadata out of the zip.
"""

from __future__ import annotations

from pointnet1x1.export.parity import (
    DEFAULT_TOLERANCE,
    PARITY_SHAPES,
    ParityError,
    ParityResult,
    check_parity,
)
from pointnet1x1.export.writers import (
    DEFAULT_OPSET,
    export_checkpoint,
    export_onnx,
    export_torchscript,
    read_onnx_metadata,
    read_torchscript_metadata,
)

__all__ = [
    "DEFAULT_OPSET",
    "DEFAULT_TOLERANCE",
    "PARITY_SHAPES",
    "ParityError",
    "ParityResult",
    "check_parity",
    "export_checkpoint",
    "export_onnx",
    "export_torchscript",
    "read_onnx_metadata",
    "read_torchscript_metadata",
]
