"""``kill -9`` in the middle of a run loses at most one epoch; --resume finishes it
with the weights of an uninterrupted run, bit for bit (CPU, same seed), for both tasks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from pointnet1x1.engine import load_model_checkpoint, load_training_state, train

TINY_TOML = (
    "model_kwargs = {mlp1 = [16, 16], mlp2 = [32, 64], seg_mlp = [32], "
    "input_transform = false, feature_transform = false}\n"
)


def _kill_after_three_epochs(args, out, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pointnet1x1", "train", *args, "--epochs", "500",
         "--progress", "log", "--out", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=tmp_path,
    )  # fmt: skip
    metrics = out / "metrics.jsonl"
    deadline = time.monotonic() + 240  # a busy machine starts torch slowly
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
@pytest.mark.parametrize("task", ["cls", "partseg"])
def test_kill_9_then_resume_is_bit_exact(task, tiny_data, tiny_parts, tmp_path):
    if task == "cls":
        args = ["--data", str(tiny_data), "--model", "pointnet_vanilla", "--num-points",
                "32", "--batch-size", "8", "--recipe", "paper"]  # fmt: skip
    else:
        (tmp_path / "tiny.toml").write_text(TINY_TOML)
        args = ["--data", str(tiny_parts), "--model", "pointnet_partseg", "--num-points",
                "64", "--batch-size", "8", "--config", str(tmp_path / "tiny.toml")]  # fmt: skip
    out = tmp_path / "run"
    _kill_after_three_epochs(args, out, tmp_path)

    # everything on disk is whole and consistent: the state names the last saved epoch
    state = load_training_state(out / "checkpoints" / "state.pt")
    done = int(state["epoch"])
    assert done >= 3
    assert len(state["history"]) == done
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert done - 1 <= len(lines) <= done  # written just after the state
    for name in ("last", "best"):
        assert load_model_checkpoint(out / "checkpoints" / f"{name}.safetensors").model

    report = train(out=str(out), resume=True, epochs=done + 1, progress="none")
    assert report["epochs"] == done + 1
    history = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == list(range(1, done + 2))

    # the same run without the kill, as far: identical weights and history
    config = json.loads((out / "config.json").read_text())
    straight = tmp_path / "straight"
    train({**config, "out": str(straight), "epochs": done + 1, "progress": "none"})
    a = load_model_checkpoint(
        straight / "checkpoints" / "last.safetensors"
    ).model.state_dict()
    b = load_model_checkpoint(
        out / "checkpoints" / "last.safetensors"
    ).model.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    again = [
        json.loads(x) for x in (straight / "metrics.jsonl").read_text().splitlines()
    ]
    drop = [{k: v for k, v in h.items() if k != "time_s"} for h in history]
    assert drop == [{k: v for k, v in h.items() if k != "time_s"} for h in again]
