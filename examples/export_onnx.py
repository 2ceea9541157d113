"""Deploy a trained classifier as ONNX and run it with onnxruntime.

    python examples/export_onnx.py                     # quick model on the default data
    python examples/export_onnx.py runs/x/checkpoints/best.safetensors --out onnx_out

Files go to ``--out`` when given, else to a temporary folder removed at the end
(nothing is left in the current folder).

1. Take a checkpoint (or train a small PointNet for a few epochs on the embedded
   default dataset and save one, with its class names and preprocessing).
2. Export it: ``export_checkpoint`` writes ``model.onnx`` (input ``points``
   ``(B, 3+F, N)`` with dynamic ``B`` and ``N``, output ``logits``), stores the
   class names and preprocessing in the ONNX metadata, and checks the file
   against eager PyTorch on two point counts (it raises above 1e-4).
   The command line does the same: ``pointnet1x1 export CKPT --out model.onnx``.
3. Classify with ``Classifier.from_onnx`` (the same preprocessing as the
   checkpoint's ``Classifier``, with onnxruntime as its backend), and with bare
   onnxruntime, reading the metadata like any deployment would.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from pointnet1x1 import PointNetClassifier
from pointnet1x1.data import ModelNet, collate, default_data_root
from pointnet1x1.engine import Classifier
from pointnet1x1.engine.checkpoint import make_preprocessing, save_model_checkpoint
from pointnet1x1.export import export_checkpoint, read_onnx_metadata


def train_quick(out: Path, epochs: int, num_points: int, seed: int = 0) -> Path:
    """A few epochs of PointNet on the embedded default; returns the checkpoint."""
    torch.manual_seed(seed)
    data = ModelNet(default_data_root(), "train", num_points=num_points, progress=False)
    loader = torch.utils.data.DataLoader(
        data, batch_size=32, shuffle=True, collate_fn=collate
    )
    kwargs = {"num_classes": data.num_classes, "in_channels": 3}
    model = PointNetClassifier(**kwargs)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(1, epochs + 1):
        model.train()
        for x, y in loader:  # (B, 3, N), (B,)
            logits, aux = model(x, return_aux=True)
            loss = torch.nn.functional.cross_entropy(logits, y) + aux
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: loss {loss.item():.3f}")
    return save_model_checkpoint(
        out / "model.safetensors",
        model,
        model_name="pointnet",
        model_kwargs=kwargs,
        class_names=data.class_names,
        preprocessing=make_preprocessing(num_points, up_axis=data.up_axis),
    )


def main(
    checkpoint: str | None = None,
    out: str | None = None,
    epochs: int = 3,
    num_points: int = 128,
) -> dict[str, float]:
    """Export, check and classify; returns accuracy, agreement and difference figures.

    ``out``: where the checkpoint and ``model.onnx`` go; None: a temporary folder.
    """
    if out is None:
        with tempfile.TemporaryDirectory(prefix="pointnet1x1_export_") as tmp:
            return main(checkpoint, tmp, epochs, num_points)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt = Path(checkpoint) if checkpoint else train_quick(out_dir, epochs, num_points)

    onnx_path = out_dir / "model.onnx"
    parity = export_checkpoint(ckpt, onnx_path, format="onnx")
    for batch, n, diff in parity.checks:
        print(f"parity B={batch} N={n}: max |onnxruntime - eager| = {diff:.1e}")

    # The deployment side: names + preprocessing come from the file. The test
    # clouds below are in the dataset's up axis, so the predictors are told.
    n = read_onnx_metadata(onnx_path)["preprocessing"]["num_points"]
    test = ModelNet(default_data_root(), "test", num_points=2 * n, progress=False)
    onnx_clf = Classifier.from_onnx(onnx_path, input_up_axis=test.up_axis)
    torch_clf = Classifier.from_checkpoint(
        ckpt, device="cpu", input_up_axis=test.up_axis
    )
    clouds = [points for points, _ in test]
    labels = np.array([label for _, label in test])
    onnx_probs = onnx_clf.predict_proba(clouds)
    torch_probs = torch_clf.predict_proba(clouds)
    accuracy = float((onnx_probs.argmax(1) == labels).mean())
    agreement = float((onnx_probs.argmax(1) == torch_probs.argmax(1)).mean())
    difference = float(np.abs(onnx_probs - torch_probs).max())
    print(f"{onnx_clf}")
    print(f"test accuracy (onnxruntime): {accuracy:.1%} on {len(labels)} clouds")
    print(f"same class as the PyTorch Classifier: {agreement:.1%} "
          f"(probabilities within {difference:.1e})")  # fmt: skip

    # Bare onnxruntime: everything needed is in the file.
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    names = json.loads(meta["class_names"])
    x = onnx_clf.preprocess(clouds[0])[None].transpose(0, 2, 1)  # (1, C, N)
    (logits,) = session.run(None, {"points": np.ascontiguousarray(x)})
    print(f"bare onnxruntime on one cloud: {names[int(logits.argmax())]!r}")
    return {
        "accuracy": accuracy, "agreement": agreement, "parity": parity.max_abs_diff,
        "max_probability_difference": difference,
    }  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", nargs="?", help="a pointnet1x1 checkpoint")
    parser.add_argument(
        "--out", help="output folder (default: a temporary folder, removed at the end)"
    )
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--num-points", type=int, default=128)
    args = parser.parse_args()
    main(args.checkpoint, args.out, args.epochs, args.num_points)
