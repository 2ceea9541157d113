"""A run owns its --out folder; a finished run is not overwritten; early one-liners.

Issue 16, class 4 (two runs on one folder, a finished run silently replaced) and
class 6 (``train --task partseg --data WRONG``, offline ``data download``).
"""

from __future__ import annotations

import fcntl
import json
import os

import pytest
import torch

from pointnet1x1.cli import main
from pointnet1x1.engine.resume import LOCK_NAME, claim_run_folder

_TINY_FLAGS = [
    "--model", "pointnet", "--epochs", "1", "--batch-size", "8", "--num-points",
    "32", "--progress", "none", "--device", "cpu",
]  # fmt: skip


@pytest.fixture
def held(tmp_path):
    """A run folder whose lock this test process holds, as a running train would."""
    out = tmp_path / "run"
    out.mkdir()
    fd = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    yield out
    os.close(fd)


def test_a_second_train_on_a_locked_folder_fails_at_once(
    held, tiny_data, capsys, monkeypatch
):
    loaded = []
    import pointnet1x1.engine.trainer as trainer

    monkeypatch.setattr(trainer, "Trainer", lambda *a, **k: loaded.append(a))
    argv = ["train", "--data", str(tiny_data), "--out", str(held), *_TINY_FLAGS]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("pointnet1x1 train: error: ")
    assert f"{held} is in use by another `pointnet1x1 train`" in err
    assert str(held / LOCK_NAME) in err
    assert loaded == []  # refused before the data or the model were touched
    assert sorted(p.name for p in held.iterdir()) == [LOCK_NAME]  # nothing written


def test_the_lock_is_held_for_the_run_and_released_after(tmp_path):
    out = tmp_path / "run"
    with claim_run_folder(out):
        fd = os.open(out / LOCK_NAME, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            busy = pytest.raises(ValueError, match="in use by another")
            with busy, claim_run_folder(out):
                pass
        finally:
            os.close(fd)
    with claim_run_folder(out):  # released: the next run may take it
        pass
    with pytest.raises(RuntimeError, match="boom"), claim_run_folder(out):
        raise RuntimeError("boom")
    with claim_run_folder(out):  # released by a failed run too
        pass


def test_a_finished_run_is_refused_without_resume_or_force(tiny_run, tiny_data, capsys):
    report = (tiny_run / "report.json").read_bytes()
    argv = ["train", "--data", str(tiny_data), "--out", str(tiny_run), *_TINY_FLAGS]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{tiny_run} holds a finished run (report.json)" in err
    assert "--resume" in err and "--force" in err
    assert (tiny_run / "report.json").read_bytes() == report  # untouched
    with claim_run_folder(tiny_run, resuming=True):  # --resume may continue it
        assert (tiny_run / "report.json").read_bytes() == report


def test_force_replaces_a_finished_run(tiny_data, tmp_path, capsys):
    out = tmp_path / "old"
    (out / "checkpoints").mkdir(parents=True)
    (out / "report.json").write_text('{"old": true}')
    (out / "checkpoints" / "state.pt").write_bytes(b"stale")
    argv = ["train", "--data", str(tiny_data), "--out", str(out), *_TINY_FLAGS]
    assert main([*argv, "--force", "--threads", "1"]) == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert "old" not in report and report["config"]["force"] is True
    state = torch.load(out / "checkpoints" / "state.pt", weights_only=True)
    assert state["epoch"] == 1  # the new run's state, not the stale bytes


def test_force_clears_the_old_files_before_the_new_run_writes(tmp_path):
    out = tmp_path / "old"
    (out / "checkpoints").mkdir(parents=True)
    names = ["report.json", "metrics.jsonl", "checkpoints/best.safetensors"]
    for name in [*names, "notes.txt"]:
        (out / name).write_text("old")
    with claim_run_folder(out, force=True):
        assert [n for n in names if (out / n).exists()] == []
        assert (out / "notes.txt").read_text() == "old"  # not the run's: kept


def test_partseg_with_a_wrong_root_names_the_root(tmp_path, capsys):
    wrong = tmp_path / "WRONG"
    assert main(["train", "--task", "partseg", "--data", str(wrong)]) == 2
    err = capsys.readouterr().err
    assert err == f"pointnet1x1 train: error: data root not found: {wrong}\n"


def test_a_download_error_is_one_line_with_exit_1(tmp_path, capsys, monkeypatch):
    from pointnet1x1.data import download
    from pointnet1x1.io.fetch import DownloadError

    def offline(name, *args, **kwargs):
        raise DownloadError(f"cannot download http://example.invalid/{name}.zip: "
                            "[Errno -3] Temporary failure in name resolution")  # fmt: skip

    monkeypatch.setattr(download, "download_dataset", offline)
    argv = ["data", "download", "modelnet40", "--root", str(tmp_path)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err == (
        "pointnet1x1 data: error: cannot download http://example.invalid/modelnet40"
        ".zip: [Errno -3] Temporary failure in name resolution\n"
    )
