"""Train PointNet from Python on the embedded default dataset, then classify with it.

    python examples/train_and_classify.py            # the fast recipe, about a minute
    python examples/train_and_classify.py --epochs 3 # a quicker look

The same two steps from the shell::

    pointnet1x1 train --out runs/example
    pointnet1x1 classify runs/example path/to/cloud.ply
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import pointnet1x1
from pointnet1x1.data import ModelNet, default_data_root


def main(epochs: int | None = None, out: str = "runs/example") -> dict:
    # 1. Train: a TrainConfig (or a dict, or a TOML/YAML file) plus overrides.
    #    No `data` -> the embedded default dataset and the fast recipe.
    config = pointnet1x1.TrainConfig(out=out, epochs=epochs)
    report = pointnet1x1.train(config)
    print(f"test OA {report['test']['oa']:.3f}, mAcc {report['test']['macc']:.3f} "
          f"({report['test']['checkpoint']})")  # fmt: skip

    # 2. Classify with the validation-best checkpoint; its preprocessing comes along.
    #    Files are taken to be z up (meshes, scans) and turned to the model's axis.
    checkpoint = Path(out) / "checkpoints" / "best.safetensors"
    mesh = sorted((default_data_root() / "torus" / "test").glob("*.off"))[0]
    clf = pointnet1x1.Classifier.from_checkpoint(checkpoint)
    print(clf)
    print(f"  {mesh.name}:", clf.predict([mesh])[0].label)

    # Arrays from a dataset are already in the dataset's up axis: say so.
    test = ModelNet(default_data_root(), "test", num_points=512, progress=False)
    clf = pointnet1x1.Classifier.from_checkpoint(checkpoint, input_up_axis=test.up_axis)
    # a (B, N, 3) batch ...
    batch = test.points[:4, :512]
    for pred, label in zip(clf.predict(batch, top_k=2), test.labels[:4], strict=True):
        top = ", ".join(f"{name} {p:.2f}" for name, p in pred.top_k)
        print(f"  true {test.class_names[label]:<10s} predicted {top}")

    # ... clouds of different sizes ...
    rng = np.random.default_rng(0)
    sphere = rng.normal(size=(700, 3))
    sphere /= np.linalg.norm(sphere, axis=1, keepdims=True)
    print("  a random sphere:", clf.predict([sphere, test.points[5, :300]])[0].label)
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--out", default="runs/example")
    args = parser.parse_args()
    main(args.epochs, args.out)
