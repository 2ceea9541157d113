"""The training engine end to end on tiny data, for both tasks: run folder, report,
model selection, exact resume, refused options."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from pointnet1x1.engine import evaluate_checkpoint, load_model_checkpoint, train
from pointnet1x1.engine import trainer as trainer_module

RUN_FILES = ("report.json", "config.json", "metrics.jsonl", "curves.png")
SCORES = {
    "cls": ("val_oa", "val_macc"),
    "partseg": ("val_instance_miou", "val_class_miou"),
}


def _history(run):
    return [
        json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
    ]


def _best_epoch(history, keys):
    """The epoch with the highest scores, the later one on ties (the documented rule)."""
    best = None
    for record in history:
        score = tuple(record[k] for k in keys)
        if best is None or score >= best[0]:
            best = (score, record["epoch"])
    assert best is not None
    return best[1]


@pytest.mark.parametrize("run_name", ["tiny_run", "tiny_parts_run"])
def test_run_folder_is_complete_for_every_task(run_name, request):
    run = request.getfixturevalue(run_name)
    for name in RUN_FILES:
        assert (run / name).is_file(), name
    for name in ("best.safetensors", "last.safetensors", "state.pt"):
        assert (run / "checkpoints" / name).is_file(), name
    assert not list(run.rglob(".*.tmp"))
    report = json.loads((run / "report.json").read_text())
    assert [h["epoch"] for h in _history(run)] == [1, 2] and report["epochs"] == 2
    assert report["test_last"]["checkpoint"] == "last (epoch 2)"
    assert report["test"]["which"] == "best"
    assert report["config"]["epochs"] == 2
    assert report["versions"]["torch"] == torch.__version__
    assert {"total_s", "train_s", "test_s", "epoch_s", "data_s"} <= set(
        report["timings"]
    )
    state = torch.load(run / "checkpoints" / "state.pt", weights_only=True)
    assert state["epoch"] == 2 and len(state["history"]) == 2


def test_classification_report_comes_from_the_whole_test_set(tiny_run):
    report = json.loads((tiny_run / "report.json").read_text())
    test = report["test"]
    assert set(test["per_class"]) == {"ball", "cube", "rod"}
    assert report["data"] == {
        **report["data"],
        "num_train": 33,
        "num_val": 3,
        "num_test": 12,
    }
    conf = test["confusion"]
    assert sum(map(sum, conf)) == 12  # 4 test clouds of each of the 3 classes
    assert [sum(row) for row in conf] == [4, 4, 4]
    assert test["oa"] == pytest.approx(sum(conf[i][i] for i in range(3)) / 12)
    recalls = [conf[i][i] / 4 for i in range(3)]
    assert test["macc"] == pytest.approx(sum(recalls) / 3)
    assert (tiny_run / "confusion.png").is_file()
    assert json.loads((tiny_run / "config.json").read_text())["num_points"] == 32


@pytest.mark.parametrize(
    ("run_name", "task"), [("tiny_run", "cls"), ("tiny_parts_run", "partseg")]
)
def test_model_selection_follows_the_history(run_name, task, request):
    run = request.getfixturevalue(run_name)
    report = json.loads((run / "report.json").read_text())
    expected = _best_epoch(_history(run), SCORES[task])
    assert report["best_epoch"] == expected
    assert report["test_best"]["checkpoint"].startswith(f"best (epoch {expected},")
    meta = load_model_checkpoint(run / "checkpoints" / "best.safetensors").metadata
    assert meta["metrics"]["epoch"] == expected
    record = _history(run)[expected - 1]
    assert all(meta["metrics"][k] == record[k] for k in SCORES[task])
    # eval of each checkpoint reproduces the report's test figures exactly
    for which in ("best", "last"):
        result = evaluate_checkpoint(
            run / "checkpoints" / f"{which}.safetensors", device="cpu"
        )
        figures = (
            ("oa", "macc", "confusion")
            if task == "cls"
            else ("instance_miou", "class_miou")
        )
        for key in figures:
            assert result[key] == report[f"test_{which}"][key], (which, key)


def test_checkpoint_is_self_describing(tiny_run, tiny_data, tiny_parts_run):
    meta = load_model_checkpoint(tiny_run / "checkpoints" / "best.safetensors").metadata
    assert meta["class_names"] == ["ball", "cube", "rod"]
    assert meta["preprocessing"]["num_points"] == 32
    from pointnet1x1.data import ModelNet

    assert meta["preprocessing"]["up_axis"] == ModelNet.up_axis  # the data's axis
    assert meta["extra"]["data"]["root"] == str(tiny_data.resolve())
    assert meta["extra"]["task"] == "cls"
    voted = evaluate_checkpoint(tiny_run, votes=3, device="cpu")
    assert voted["votes"] == 3 and voted["num_samples"] == 12
    seg = load_model_checkpoint(
        tiny_parts_run / "checkpoints" / "last.safetensors"
    ).metadata
    assert seg["extra"]["task"] == "partseg" and len(seg["class_names"]) == 50
    assert seg["extra"]["seg_classes"]["Mug"] == [36, 37]
    assert seg["model"]["kwargs"]["num_parts"] == 50


def _weights(path):
    return load_model_checkpoint(path).model.state_dict()


@pytest.mark.parametrize(
    ("data_name", "kwargs_name", "shapes"),
    [("tiny_data", "tiny_kwargs", 33), ("tiny_parts", "tiny_parts_kwargs", 48)],
)
def test_interrupt_loses_at_most_one_epoch_and_resume_is_exact(
    data_name, kwargs_name, shapes, request, tmp_path, monkeypatch
):
    data, kwargs = (
        request.getfixturevalue(data_name),
        request.getfixturevalue(kwargs_name),
    )
    straight = tmp_path / "straight"
    train(data=str(data), out=str(straight), **{**kwargs, "epochs": 3})

    # interrupt in the middle of epoch 3 (Ctrl-C): epochs 1-2 are on disk
    calls = {"n": 0}
    real = trainer_module._set_schedule
    steps_per_epoch = shapes // kwargs["batch_size"]

    def interrupting(*args):
        calls["n"] += 1
        if calls["n"] == 2 * steps_per_epoch + 2:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(trainer_module, "_set_schedule", interrupting)
    cut = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        train(data=str(data), out=str(cut), **{**kwargs, "epochs": 3})
    monkeypatch.setattr(trainer_module, "_set_schedule", real)
    state = torch.load(cut / "checkpoints" / "state.pt", weights_only=True)
    assert state["epoch"] == 2
    assert not (cut / "report.json").exists()

    report = train(out=str(cut), resume=True, progress="none", epochs=3)
    assert report["epochs"] == 3
    a = _weights(straight / "checkpoints" / "last.safetensors")
    b = _weights(cut / "checkpoints" / "last.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    drop_time = [
        {k: v for k, v in h.items() if k != "time_s"} for h in _history(straight)
    ]
    assert drop_time == [
        {k: v for k, v in h.items() if k != "time_s"} for h in _history(cut)
    ]


def test_resume_refuses_options_that_cannot_change(tiny_run, tiny_data, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    before = (run / "checkpoints" / "state.pt").read_bytes()
    with pytest.raises(ValueError) as info:
        train(out=str(run), resume=True, lr=0.5, num_points=64)
    message = str(info.value)
    assert "\n" not in message and "cannot change on --resume" in message
    assert "lr (the run has 0.01, given 0.5)" in message
    assert "num_points (the run has 32, given 64)" in message
    # the same values again, or the resumable ones, are accepted (nothing left to do)
    report = train(
        out=str(run), resume=True, data=str(tiny_data), lr=0.01, progress="none"
    )
    assert report["epochs"] == 2
    assert (run / "checkpoints" / "state.pt").read_bytes() == before


def test_options_a_task_does_not_use_are_refused(tiny_parts, tiny_data, tmp_path):
    for option, value in (("votes", 3), ("val_fraction", 0.2), ("modelnet10", True)):
        with pytest.raises(
            ValueError, match=f"--task partseg does not use {option}; drop it"
        ):
            train(
                data=str(tiny_parts),
                task="partseg",
                out=str(tmp_path / "r"),
                **{option: value},
            )
    with pytest.raises(
        ValueError, match="does not use votes, fused_forward; drop them"
    ):
        train(
            data=str(tiny_parts), model="pointnet_partseg", votes=2, fused_forward=False
        )
    assert not (tmp_path / "r").exists()
    # a model argument the model does not take is one line naming those it takes
    with pytest.raises(
        ValueError, match="takes no argument num_classes; it accepts: num_parts"
    ):
        train(data=str(tiny_parts), task="partseg", model_kwargs={"num_classes": 3},
              out=str(tmp_path / "s"), epochs=1, progress="none")  # fmt: skip


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
    with pytest.raises(ValueError, match="part segmentation needs a ShapeNetPart root"):
        train(task="partseg", out=str(tmp_path / "e"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available"):
        train(data=str(tiny_data), device="cuda", out=str(tmp_path / "d"))
    assert not (tmp_path / "d").exists()


def test_sync_bn_on_cpu_is_refused_before_starting(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="--sync-bn needs CUDA"):
        train(data=str(tiny_data), sync_bn=True, device="cpu", out=str(tmp_path / "r"))
