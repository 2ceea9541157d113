"""The modelnet40-cpu recipe's pieces: cosine lr, training points by epoch, the
precision record, the rotation vote beside the plain test, progress within an
epoch, and glibc's kept memory."""

from __future__ import annotations

import json
import math

import pytest

from pointnet1x1.cli import main
from pointnet1x1.engine import train
from pointnet1x1.engine.config import TrainConfig, points_at
from pointnet1x1.engine.progress import EpochBar, Progress, format_duration
from pointnet1x1.engine.trainer import keep_freed_memory, schedule

TINY = {"mlp1": [8, 8], "mlp2": [8, 16], "head": [16, 8]}


def test_the_cpu_recipe_is_the_paper_pointnet_at_1024_points():
    cfg = TrainConfig(data="somewhere", recipe="modelnet40-cpu").resolved()
    assert cfg.model == "pointnet" and cfg.model_kwargs == {}  # both T-Nets
    assert (cfg.num_points, cfg.batch_size, cfg.votes, cfg.lr_schedule) == (
        1024, 32, 12, "cosine",
    )  # fmt: skip
    assert cfg.train_points == [[1, 256], [17, 512]]
    assert [points_at(cfg, e) for e in (1, 16, 17, cfg.epochs)] == [256, 256, 512, 512]
    # the paper recipe keeps its staircase, one vote, and 1,024 training points
    paper = TrainConfig(data="somewhere").resolved()
    assert (paper.lr_schedule, paper.votes, paper.train_points) == ("step", 1, None)
    assert points_at(paper, 200) == 1024


def test_cosine_schedule_goes_from_lr_to_the_floor():
    cfg = TrainConfig(
        data="x", recipe="modelnet40-cpu", lr=2e-3, min_lr=1e-5, bn_momentum=0.1
    ).resolved()
    total = 1000
    for seen in (0, 250, 500, 999, 1000, 5000):
        t = min(seen, total) / total
        expected = 1e-5 + (2e-3 - 1e-5) * (1 + math.cos(math.pi * t)) / 2
        lr, momentum = schedule(cfg, seen, 1, total)
        assert lr == pytest.approx(expected, rel=1e-12)
        assert momentum == 0.1  # fixed under the cosine schedule
    assert schedule(cfg, 500, 1, total)[0] == pytest.approx((2e-3 + 1e-5) / 2)


@pytest.mark.parametrize(
    "plan",
    [[], [[2, 256]], [[1, 256], [1, 512]], [[1, 256], [5]], [[1, 0]], "1:256",
     [[1, 256], [9, 512], [4, 128]], [[1, True]]],
)  # fmt: skip
def test_bad_training_point_plans_are_refused(plan):
    with pytest.raises(ValueError, match="train_points must be"):
        TrainConfig(train_points=plan).validate()


def test_cli_parses_train_points_and_refuses_garbage(capsys):
    from pointnet1x1.cli._train import _train_points

    assert _train_points("1:256,17:512") == [[1, 256], [17, 512]]
    assert main(["train", "--train-points", "1:256,x", "--epochs", "1"]) == 2
    last = capsys.readouterr().err.splitlines()[-1]  # argparse: usage, then the error
    assert last.startswith("pointnet1x1 train: error: argument --train-points:")
    assert "expected EPOCH:POINTS" in last and "'1:256,x'" in last


def test_a_run_records_precision_points_and_the_vote(tmp_path):
    out = tmp_path / "run"
    report = train(
        epochs=2, num_points=64, train_points=[[1, 32], [2, 64]], votes=3,
        lr_schedule="cosine", bn_momentum=0.1, model="pointnet",
        model_kwargs=TINY, out=str(out), progress="none", batch_size=16,
    )  # fmt: skip
    history = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [h["train_points"] for h in history] == [32, 64]
    assert history[-1]["lr"] < history[0]["lr"]  # the cosine fell within the run
    assert report["training"]["precision"] == "fp32"  # this test forces nothing:
    assert report["training"]["precision_reason"]  # auto says why it chose
    assert report["training"]["fused_forward"] is True  # a PointNet in one process
    vote = report["test_vote"]
    assert vote["votes"] == 3 and vote["checkpoint"] == "best"
    # the plain test is the unvoted one: the same best checkpoint, another number
    assert report["test"]["which"] == "best" and "votes" not in report["test"]
    assert sum(sum(r) for r in vote["confusion"]) == report["data"]["num_test"]


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_log_progress_prints_at_least_every_30_seconds(capsys):
    clock = _Clock()
    progress = Progress("log", enabled=True)
    bar = progress.epoch_bar(2, 5, steps=10, clouds_per_step=32, clock=clock)
    assert isinstance(bar, EpochBar)
    for _ in range(9):  # 10 s a step
        clock.now += 10.0
        bar.step(1.5, 1e-3)
    bar.close()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3  # after 30, 60 and 90 s; the epoch's end is logged apart
    assert lines[0].startswith("epoch 2/5  step 3/10  loss 1.5000  3.2 clouds/s")
    # 3 steps in 30 s: 7 steps left in this epoch, 3 more epochs of 10 steps
    assert "epoch ETA 1m10s" in lines[0] and "run ETA 6m10s" in lines[0]
    quiet = Progress("none", enabled=True).epoch_bar(1, 1, 3, 8, clock=clock)
    clock.now += 100
    quiet.step(1.0, 1e-3)
    assert capsys.readouterr().out == ""


def test_format_duration():
    assert [format_duration(s) for s in (9, 60, 75, 3599, 3725)] == [
        "9s", "1m00s", "1m15s", "59m59s", "1h02m",
    ]  # fmt: skip


def test_glibc_keeps_freed_memory_on_linux():
    import sys

    assert keep_freed_memory() is sys.platform.startswith("linux")
