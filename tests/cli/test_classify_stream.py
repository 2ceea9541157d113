"""``classify`` on many real files streams: each batch is printed before the next is read.

Real files: the Princeton ModelNet40 OFF meshes and npy clouds of the whole-ModelNet40
npy tree in ``../shared/data``, classified by the tiny checkpoint trained in the
session (``tiny_run``); expected values come from ``Classifier.predict_proba``.
"""

from __future__ import annotations

import io
import json
import sys

import numpy as np
import pytest

from pointnet1x1.cli import main


@pytest.fixture(autouse=True)
def _no_log_lines(monkeypatch):
    """No 30-s progress line on a slow machine unless a test asks for them."""
    import pointnet1x1.cli._stream as stream

    monkeypatch.setattr(stream, "LOG_EVERY_S", 1e9)


@pytest.fixture(scope="module")
def real_files(shared_data):
    off = sorted((shared_data / "ModelNet40").glob("*/*/*.off"))[:5]
    npy = sorted((shared_data / "modelnet40_npy_1024" / "cup" / "test").glob("*.npy"))
    assert len(off) == 5 and len(npy) >= 5
    return [off[0], npy[0], off[1], npy[1], off[2], npy[2], off[3], npy[3], off[4]]


class _Recorder(io.StringIO):
    """A stdout that logs each write next to the reads (the order is the test)."""

    def __init__(self, events):
        super().__init__()
        self.events = events

    def write(self, text):
        if text:
            self.events.append(("print", text))
        return super().write(text)


def test_each_batch_is_printed_before_the_next_is_read(
    tiny_run, real_files, monkeypatch, capsys
):
    import pointnet1x1.io as pio

    events: list[tuple[str, str]] = []
    real_read = pio.read_points

    def reading(path, *args, **kwargs):
        events.append(("read", str(path)))
        return real_read(path, *args, **kwargs)

    monkeypatch.setattr(pio, "read_points", reading)
    out = _Recorder(events)
    monkeypatch.setattr(sys, "stdout", out)
    argv = ["classify", str(tiny_run), *map(str, real_files), "--batch-size", "4"]
    assert main(argv) == 0
    # expected: read 4 files, print their 4 lines, read the next 4, ...
    want: list[tuple[str, object]] = []
    for start in range(0, len(real_files), 4):
        batch = [str(p) for p in real_files[start : start + 4]]
        want += [("read", p) for p in batch] + [("print", batch)]
    got = [
        (kind, [line.split()[0] for line in text.splitlines()])
        if kind == "print"
        else (kind, text)
        for kind, text in events
    ]
    assert got == want
    lines = out.getvalue().splitlines()
    assert [line.split()[0] for line in lines] == [str(p) for p in real_files]
    assert capsys.readouterr().err == ""  # not a terminal: no bar


def test_json_streams_a_valid_list_with_errors_in_place_and_min_probability(
    tiny_run, real_files, tmp_path, capsys
):
    from pointnet1x1.engine import Classifier

    broken = tmp_path / "broken.ply"
    broken.write_text("ply\nformat nonsense\n")
    files = [*real_files[:4], broken, *real_files[4:]]
    clf = Classifier.from_checkpoint(tiny_run, device="cpu")
    top = np.sort(clf.predict_proba(real_files).max(axis=1))
    assert top[0] < top[-1]
    k = int(np.argmax(np.diff(top)))  # a threshold between two distinct maxima
    floor = float(top[k] + top[k + 1]) / 2
    argv = ["classify", str(tiny_run), *map(str, files), "--batch-size", "3"]
    assert main([*argv, "--json", "--min-probability", str(floor)]) == 1
    captured = capsys.readouterr()
    objects = json.loads(captured.out)
    assert [o["path"] for o in objects] == [str(p) for p in files]
    assert (
        set(objects[4]) == {"path", "error"} and "malformed PLY" in objects[4]["error"]
    )
    assert captured.err.count("\n") == 1 and str(broken) in captured.err
    assert captured.err.startswith("pointnet1x1 classify: error: ")
    good = [o for o in objects if "error" not in o]
    probs = clf.predict_proba(real_files)  # computed apart from the command
    for o, row in zip(good, probs, strict=True):
        assert o["probability"] == pytest.approx(float(row.max()), abs=1e-5)
        assert [t["label"] for t in o["top_k"]] == [
            clf.class_names[i] for i in np.argsort(-row, kind="stable")[:3]
        ]
        if row.max() < floor:
            assert o["label"] is None and o["class_index"] is None
        else:
            assert o["label"] == clf.class_names[int(row.argmax())]
    nulls = sum(o["label"] is None for o in good)
    assert nulls == int((probs.max(axis=1) < floor).sum()) == k + 1
    # the same files as text lines: "unknown" exactly where JSON says null
    assert main([*argv, "--min-probability", str(floor)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1] == "unknown" for line in lines] == [
        o["label"] is None for o in good
    ]
    # default 0: never unknown
    assert main(argv) == 1
    assert "unknown" not in capsys.readouterr().out


def test_an_empty_listing_and_a_bad_threshold(tiny_run, tmp_path, capsys):
    assert main(["classify", str(tiny_run), str(tmp_path / "nope.xyz"), "--json"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out) == [
        {"path": str(tmp_path / "nope.xyz"), "error": "no such file or folder"}
    ]
    assert captured.err.count("\n") == 1 and "nope.xyz" in captured.err
    argv = ["classify", str(tiny_run), str(tmp_path), "--min-probability", "1.5"]
    assert main(argv) == 2
    assert "--min-probability must be in [0, 1], got 1.5" in capsys.readouterr().err


def test_progress_a_bar_on_a_terminal_lines_in_a_log(
    tiny_run, real_files, monkeypatch, capsys
):
    import pointnet1x1.cli._stream as stream

    argv = ["classify", str(tiny_run), *map(str, real_files[:5]), "--batch-size", "2"]
    monkeypatch.setattr(stream, "LOG_EVERY_S", 0.0)  # a log line after every file
    assert main(argv) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 4  # all but the last file
    for i, line in enumerate(err, start=1):
        assert line.startswith(f"pointnet1x1 classify: {i}/5 files read, ")
        assert "files/s, ETA " in line

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    tty = Terminal()
    monkeypatch.setattr(sys, "stderr", tty)
    assert main(argv) == 0
    bar = tty.getvalue()
    assert "classify" in bar and "file/s" in bar and "/5 [" in bar
    assert len(capsys.readouterr().out.splitlines()) == 5  # results still on stdout


def test_part_segmentation_streams_file_by_file(
    real_files, tmp_path, monkeypatch, capsys
):
    """An (untrained) tiny part segmenter: each file's line before the next is read."""
    import torch

    import pointnet1x1.io as pio
    from pointnet1x1.data.shapenetpart import CATEGORIES, SEG_CLASSES
    from pointnet1x1.engine.checkpoint import make_preprocessing, save_model_checkpoint
    from pointnet1x1.models import create_model

    kwargs = {"mlp1": [8, 8], "mlp2": [8, 16], "seg_mlp": [8],
              "input_transform": False, "feature_transform": False}  # fmt: skip
    torch.manual_seed(0)
    ckpt = save_model_checkpoint(
        tmp_path / "seg.safetensors", create_model("pointnet_partseg", **kwargs),
        model_name="pointnet_partseg", model_kwargs=kwargs,
        class_names=[f"part{i}" for i in range(50)], preprocessing=make_preprocessing(64),
        extra={"task": "partseg", "category_names": list(CATEGORIES),
               "seg_classes": {k: list(v) for k, v in SEG_CLASSES.items()}},
    )  # fmt: skip
    events: list[tuple[str, str]] = []
    real_read = pio.read_points

    def reading(path, *args, **kw):
        events.append(("read", str(path)))
        return real_read(path, *args, **kw)

    monkeypatch.setattr(pio, "read_points", reading)
    monkeypatch.setattr(sys, "stdout", _Recorder(events))
    files = [str(p) for p in real_files[:3]]
    argv = ["classify", str(ckpt), *files, "--category", "Mug", "--parts-format",
            "npy", "--parts-dir", str(tmp_path / "parts")]  # fmt: skip
    assert main(argv) == 0
    got = [(k, t.split()[0] if k == "print" else t) for k, t in events]
    assert got == [e for f in files for e in (("read", f), ("print", f))]
    summary = json.loads((tmp_path / "parts" / "summary.json").read_text())
    assert [s["path"] for s in summary] == files
    capsys.readouterr()
