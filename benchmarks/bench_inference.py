"""CPU inference: our fast PointNet against the naive port, interleaved in one run.

    .venv/bin/python benchmarks/bench_inference.py [--checkpoint CKPT] [--rounds 15]

Times one forward pass of a ``(32, 3, 1024)`` batch (default) for: the naive
port (``naive_pointnet.py``: Conv1d + BatchNorm1d + ReLU, T-Nets, fp32, eval), our
plain ``PointNetClassifier``, ``optimize_for_inference`` in fp32 and bf16, the
naive port under bf16 autocast, and ``Classifier.predict`` on a ``(32, 1024, 3)``
array (preprocessing included) when ``pointnet1x1.engine.predict`` exists. Every
variant runs once per round in rotating order; the table gives medians and the
median per-round speed-up over the naive port.

Before timing, it checks that all variants hold the same weights (logits equal
within 1e-4 in fp32), then measures on the real ModelNet40 test clouds of the
four complete classes (airplane, bathtub, bench, person): the top-1 agreement of
fp32 and bf16 and the largest logit difference. Pass ``--checkpoint`` (a
pointnet1x1 checkpoint, e.g. the one ``bench_train.py --save`` writes after
training on those classes) for meaningful agreement figures; without it the
weights are random (with non-trivial batch-norm statistics) and it says so.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
from naive_pointnet import (
    COMPLETE_CLASSES,
    interleaved,
    load_modelnet_subset,
    machine_info,
    naive_from,
    ratio_summary,
)

from pointnet1x1.models import PointNetClassifier
from pointnet1x1.models.fast import has_native_bf16, optimize_for_inference


def random_trained_like(
    num_classes: int, in_channels: int, seed: int = 0
) -> PointNetClassifier:
    """A paper PointNet with random weights, batch-norm statistics and T-Nets."""
    torch.manual_seed(seed)
    model = PointNetClassifier(num_classes, in_channels)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
        for tnet in (model.encoder.input_tnet, model.encoder.feature_tnet):
            torch.nn.init.normal_(tnet.out.weight, std=0.01)
    return model.eval()


def load_model(args: argparse.Namespace) -> tuple[PointNetClassifier, str, list[str]]:
    if args.checkpoint is None:
        model = random_trained_like(40, args.channels)
        return model, "random weights (no --checkpoint)", [str(i) for i in range(40)]
    from pointnet1x1.engine.checkpoint import load_model_checkpoint

    loaded = load_model_checkpoint(args.checkpoint)
    if not isinstance(loaded.model, PointNetClassifier):
        sys.exit(f"{args.checkpoint}: not a PointNet classifier checkpoint")
    names = list(loaded.metadata["class_names"])
    return loaded.model.eval(), f"checkpoint {args.checkpoint}", names


def agreement(model: PointNetClassifier, names: list[str], has_bf16: bool) -> None:
    """fp32 / bf16 vs the plain model on the real test clouds of the 4 classes."""
    try:
        points, labels = load_modelnet_subset("test", COMPLETE_CLASSES, 1024)
    except FileNotFoundError as err:
        print(f"\nreal-data agreement skipped: {err}")
        return
    x = torch.from_numpy(points[:, :, : model.in_channels]).transpose(1, 2).contiguous()
    variants = {"fast fp32": optimize_for_inference(model, "fp32")}
    if has_bf16:
        variants["fast bf16"] = optimize_for_inference(model, "bf16")
    with torch.no_grad():
        ref = torch.cat([model(xb) for xb in x.split(32)])
        print(
            f"\nreal test clouds: {len(x)} ModelNet40 test shapes of {', '.join(COMPLETE_CLASSES)}"
        )
        known = [names.index(c) if c in names else -1 for c in COMPLETE_CLASSES]
        truth = torch.tensor([known[i] for i in labels])
        if (truth >= 0).all():
            print(
                f"  plain model fp32: accuracy {(ref.argmax(1) == truth).float().mean():.4f}"
            )
        for name, fast in variants.items():
            got = torch.cat([fast(xb) for xb in x.split(32)])
            agree = (got.argmax(1) == ref.argmax(1)).float().mean().item()
            diff = (got - ref).abs().max().item()
            acc = ""
            if (truth >= 0).all():
                acc = f", accuracy {(got.argmax(1) == truth).float().mean():.4f}"
            print(
                f"  {name}: top-1 agreement with fp32 {agree * 100:.2f}% "
                f"({int(round(agree * len(x)))}/{len(x)}), largest logit difference "
                f"{diff:.2e} (logits span {ref.abs().max():.1f}){acc}"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--checkpoint", help="pointnet1x1 checkpoint (default: random weights)"
    )
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--points", type=int, default=1024)
    parser.add_argument("--channels", type=int, default=3, help="without --checkpoint")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--no-extras", action="store_true", help="time only naive and fast"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model, source, names = load_model(args)
    native = has_native_bf16()
    print(f"machine: {machine_info()}")
    print(
        f"model: PointNet ({model.in_channels} channels, {model.num_classes} classes), {source}"
    )
    if not native:
        print("this CPU has no native bf16: the bf16 variants are left out")

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, model.in_channels, args.points, generator=gen)
    naive = naive_from(model).eval()
    fast32 = optimize_for_inference(model, "fp32")
    with torch.no_grad():
        want = model(x)
        scale = max(1.0, want.abs().max().item())
        for name, out in (("naive port", naive(x)[0]), ("fast fp32", fast32(x))):
            err = (out - want).abs().max().item()
            ok = err <= 1e-4 * scale  # 1e-4, relative to logits larger than 1
            print(
                f"check {name} == plain model: max |diff| {err:.1e} "
                f"(logits up to {scale:.1f}; {'ok' if ok else 'MISMATCH'})"
            )
            if not ok:
                return 1

    def autocast_naive() -> object:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return naive(x)

    fns = {"naive port fp32": lambda: naive(x), "fast fp32": lambda: fast32(x)}
    if native:
        fast16 = optimize_for_inference(model, "bf16")
        fns["fast bf16"] = lambda: fast16(x)
    if not args.no_extras:
        fns["plain PointNetClassifier fp32"] = lambda: model(x)
        if native:
            fns["naive port bf16 autocast"] = autocast_naive
        try:
            from pointnet1x1.engine.checkpoint import make_preprocessing
            from pointnet1x1.engine.predict import Classifier
        except ImportError:
            print(
                "Classifier.predict not measured: pointnet1x1.engine.predict is not there yet"
            )
        else:
            arr = np.ascontiguousarray(
                x.transpose(1, 2).numpy()
            )  # (B, N, C) as users pass
            prep = make_preprocessing(args.points, use_normals=model.in_channels >= 6)
            clf32 = Classifier(model, names, preprocessing=prep, device="cpu")
            fns["Classifier.predict fp32"] = lambda: clf32.predict(
                arr, batch_size=args.batch
            )
            if native:
                clf16 = Classifier(
                    model, names, preprocessing=prep, device="cpu", precision="bf16"
                )
                fns["Classifier.predict bf16"] = lambda: clf16.predict(
                    arr, batch_size=args.batch
                )
    with torch.no_grad():
        times = interleaved(fns, args.rounds)
    print(
        f"\nbatch ({args.batch}, {model.in_channels}, {args.points}), {args.rounds} rounds:"
    )
    print(ratio_summary(times, "naive port fp32", args.batch))
    agreement(model, names, native)
    return 0


if __name__ == "__main__":
    sys.exit(main())
