"""Training end to end on a tiny dataset: run folder, honest report, exact resume."""

from __future__ import annotations

import json

import pytest
import torch

from pointnet1x1.engine import evaluate_checkpoint, load_model_checkpoint, train
from pointnet1x1.engine import trainer as trainer_module


def test_run_folder_and_report(tiny_run):
    for name in (
        "report.json",
        "config.json",
        "metrics.jsonl",
        "curves.png",
        "confusion.png",
    ):
        assert (tiny_run / name).is_file(), name
    for name in ("best.safetensors", "last.safetensors", "state.pt"):
        assert (tiny_run / "checkpoints" / name).is_file(), name
    assert not list(tiny_run.rglob(".*.tmp"))
    report = json.loads((tiny_run / "report.json").read_text())
    lines = (tiny_run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    assert {"train_loss", "val_loss", "val_oa", "val_macc", "lr"} <= set(
        json.loads(lines[0])
    )
    test = report["test"]
    assert 0.0 <= test["oa"] <= 1.0 and 0.0 <= test["macc"] <= 1.0
    assert set(test["per_class"]) == {"ball", "cube", "rod"}
    assert test["which"] == "best" and test["checkpoint"].startswith("best (epoch")
    assert report["test_last"]["checkpoint"] == "last (epoch 2)"
    assert report["data"] == {
        **report["data"],
        "num_train": 33,
        "num_val": 3,
        "num_test": 12,
    }
    conf = test["confusion"]
    assert sum(map(sum, conf)) == 12
    assert test["oa"] == pytest.approx(sum(conf[i][i] for i in range(3)) / 12)
    assert (
        report["config"]["epochs"] == 2
        and report["versions"]["torch"] == torch.__version__
    )
    assert {"total_s", "train_s", "test_s", "epoch_s"} <= set(report["timings"])
    assert json.loads((tiny_run / "config.json").read_text())["num_points"] == 32


def test_checkpoint_is_self_describing_and_eval_reproduces_the_report(
    tiny_run, tiny_data
):
    report = json.loads((tiny_run / "report.json").read_text())
    meta = load_model_checkpoint(tiny_run / "checkpoints" / "best.safetensors").metadata
    assert meta["class_names"] == ["ball", "cube", "rod"]
    assert meta["preprocessing"]["num_points"] == 32
    assert meta["extra"]["data"]["root"] == str(tiny_data.resolve())
    for which in ("best", "last"):
        result = evaluate_checkpoint(
            tiny_run / "checkpoints" / f"{which}.safetensors", device="cpu"
        )
        assert result["oa"] == report[f"test_{which}"]["oa"]
        assert result["macc"] == report[f"test_{which}"]["macc"]
        assert result["confusion"] == report[f"test_{which}"]["confusion"]
    voted = evaluate_checkpoint(tiny_run, votes=3, device="cpu")
    assert voted["votes"] == 3 and voted["num_samples"] == 12


def _weights(path):
    return load_model_checkpoint(path).model.state_dict()


def test_interrupt_loses_at_most_one_epoch_and_resume_is_exact(
    tiny_data, tiny_kwargs, tmp_path, monkeypatch
):
    TINY = tiny_kwargs
    straight = tmp_path / "straight"
    train(data=str(tiny_data), out=str(straight), **{**TINY, "epochs": 3})

    # interrupt in the middle of epoch 3 (Ctrl-C): epochs 1-2 are on disk
    calls = {"n": 0}
    real = trainer_module._set_schedule
    steps_per_epoch = 33 // 8

    def interrupting(*args):
        calls["n"] += 1
        if calls["n"] == 2 * steps_per_epoch + 2:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(trainer_module, "_set_schedule", interrupting)
    cut = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        train(data=str(tiny_data), out=str(cut), **{**TINY, "epochs": 3})
    monkeypatch.setattr(trainer_module, "_set_schedule", real)
    state = torch.load(cut / "checkpoints" / "state.pt", weights_only=True)
    assert state["epoch"] == 2
    assert not (cut / "report.json").exists()

    report = train(out=str(cut), resume=True, progress="none")
    assert report["epochs"] == 3
    a, b = (
        _weights(straight / "checkpoints" / "last.safetensors"),
        _weights(cut / "checkpoints" / "last.safetensors"),
    )
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    straight_lines = (straight / "metrics.jsonl").read_text().splitlines()
    cut_lines = (cut / "metrics.jsonl").read_text().splitlines()
    drop_time = [
        {k: v for k, v in json.loads(x).items() if k != "time_s"}
        for x in straight_lines
    ]
    assert drop_time == [
        {k: v for k, v in json.loads(x).items() if k != "time_s"} for x in cut_lines
    ]


def test_resume_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        train(out=str(tmp_path / "none"), resume=True)
    with pytest.raises(ValueError, match="needs --out"):
        train(resume=True)


def test_user_mistakes_are_one_line_errors(tiny_data, tmp_path, monkeypatch):
    with pytest.raises(
        ValueError, match="unknown model 'nope'; choose one of: .*pointnet"
    ):
        train(data=str(tiny_data), model="nope", out=str(tmp_path / "a"))
    with pytest.raises(FileNotFoundError, match="data root not found"):
        train(data=str(tmp_path / "missing"), out=str(tmp_path / "b"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="is empty"):
        train(data=str(tmp_path / "empty"), out=str(tmp_path / "c"))
    with pytest.raises(ValueError, match="num_points must be positive, got -5"):
        train(data=str(tiny_data), num_points=-5)
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        train(data=str(tiny_data), device="gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available"):
        train(data=str(tiny_data), device="cuda", out=str(tmp_path / "d"))
    assert not (tmp_path / "d").exists()


def test_sync_bn_on_cpu_is_refused_before_starting(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="--sync-bn needs CUDA"):
        train(data=str(tiny_data), sync_bn=True, device="cpu", out=str(tmp_path / "r"))
