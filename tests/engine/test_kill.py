"""``kill -9`` in the middle of a run loses at most one epoch; --resume finishes it."""

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


@pytest.mark.slow
def test_kill_9_then_resume(tiny_data, tmp_path):
    out = tmp_path / "run"
    args = ["--data", str(tiny_data), "--model", "pointnet_vanilla", "--num-points", "32",
            "--batch-size", "8", "--recipe", "paper", "--epochs", "500",
            "--progress", "log", "--out", str(out)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pointnet1x1", "train", *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    metrics = out / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    # everything on disk is whole and consistent: the state names the last saved epoch
    state = load_training_state(out / "checkpoints" / "state.pt")
    done = int(state["epoch"])
    assert done >= 3
    assert len(state["history"]) == done
    lines = metrics.read_text().splitlines()
    assert done - 1 <= len(lines) <= done  # written just after the state
    for name in ("last", "best"):
        assert load_model_checkpoint(out / "checkpoints" / f"{name}.safetensors").model

    report = train(out=str(out), resume=True, epochs=done + 1, progress="none")
    assert report["epochs"] == done + 1
    assert [json.loads(x)["epoch"] for x in metrics.read_text().splitlines()] == list(
        range(1, done + 2)
    )
    last = load_model_checkpoint(out / "checkpoints" / "last.safetensors").model
    assert all(torch.isfinite(p).all() for p in last.parameters())
