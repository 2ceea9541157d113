"""torchrun + DDP on CPU (gloo): two processes train the tiny dataset, then resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from pointnet1x1.engine import load_model_checkpoint


def _torchrun(args, cwd):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "pointnet1x1", "train", *args]  # fmt: skip
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")
    }
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def test_two_processes_gloo_train_and_resume(tiny_data, tmp_path):
    out = tmp_path / "ddp"
    common = ["--data", str(tiny_data), "--model", "pointnet_vanilla", "--num-points", "32",
              "--batch-size", "4", "--recipe", "paper", "--progress", "log", "--out", str(out)]  # fmt: skip
    first = _torchrun([*common, "--epochs", "1"], tmp_path)
    assert first.stdout.count("epoch   1/1") == 1  # only rank 0 logs
    report = json.loads((out / "report.json").read_text())
    assert report["world_size"] == 2
    assert report["weights_identical_across_ranks"] is True
    assert len(report["weight_digests"]) == 2
    # metrics are over the whole test set (12 clouds), not per rank
    assert report["test"]["num_samples"] == 12
    assert sum(map(sum, report["test_last"]["confusion"])) == 12

    _torchrun([*common, "--epochs", "2", "--resume"], tmp_path)
    report = json.loads((out / "report.json").read_text())
    assert report["epochs"] == 2 and report["weights_identical_across_ranks"] is True
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2]
    loaded = load_model_checkpoint(out / "checkpoints" / "last.safetensors")
    assert loaded.metadata["extra"]["data"]["classes"] == ["ball", "cube", "rod"]
    assert all(torch.isfinite(p).all() for p in loaded.model.parameters())
    assert not list(out.rglob(".*.tmp"))


def test_part_segmentation_trains_under_torchrun_too(tiny_parts, tmp_path):
    (tmp_path / "tiny.toml").write_text(
        "model_kwargs = {mlp1 = [16, 16], mlp2 = [32, 64], seg_mlp = [32], "
        "input_transform = false, feature_transform = false}\n"
    )
    out = tmp_path / "ddp"
    args = ["--data", str(tiny_parts), "--model", "pointnet_partseg", "--num-points", "64",
            "--batch-size", "4", "--epochs", "1", "--config", str(tmp_path / "tiny.toml"),
            "--progress", "log", "--out", str(out)]  # fmt: skip
    first = _torchrun(args, tmp_path)
    assert first.stdout.count("epoch   1/1") == 1  # only rank 0 logs
    report = json.loads((out / "report.json").read_text())
    assert report["task"] == "partseg" and report["world_size"] == 2
    assert report["weights_identical_across_ranks"] is True
    # every test shape counts once, not once per rank: 8 per category
    assert report["test"]["shapes"] == 16
    from pointnet1x1.engine import evaluate_checkpoint

    alone = evaluate_checkpoint(out / "checkpoints" / "last.safetensors", device="cpu")
    assert alone["instance_miou"] == pytest.approx(report["test_last"]["instance_miou"])
