"""``train --data FOLDER`` on a folder dataset (issue 12): a ``<class>/<file>``
tree of real ModelNet40 npy files trains, writes its split manifest into the run
folder and the checkpoint, and ``eval`` keeps scoring exactly those test files
after files are added; bad files stop the run by name or, with ``--skip-bad``,
are listed in the report; a test-only folder is refused."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from pointnet1x1.cli import main

NPY = "modelnet40_npy_1024"
CLASSES = {"airplane": 8, "bowl": 8, "guitar": 8}


def _class_tree(shared: Path, root: Path, extra: int = 0) -> list[str]:
    """``<root>/<class>/sNN.npy`` symlinks to real shapes (names that are not
    ModelNet's, so the tree is one's own data); returns the relative paths."""
    made = []
    for cls, n in CLASSES.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        src = sorted((shared / NPY / cls / "train").iterdir())
        for i in range(n + extra):
            rel = f"{cls}/s{i:02d}.npy"
            if not (root / rel).exists():
                os.symlink(src[i], root / rel)
            made.append(rel)
    return made


def _expected_test(rels: list[str], seed: int = 0, fraction: float = 0.2) -> list[str]:
    """The documented rule: per class, round(fraction * n) (at least 1, at most
    n - 1) files with the smallest sha1(f"{seed}:{path}") go to test."""
    out = []
    for cls in sorted({r.split("/")[0] for r in rels}):
        members = sorted(
            (r for r in rels if r.startswith(cls + "/")),
            key=lambda r: hashlib.sha1(f"{seed}:{r}".encode()).hexdigest(),
        )
        take = min(max(round(fraction * len(members)), 1), len(members) - 1)
        out += sorted(members[:take])
    return out


@pytest.fixture(scope="module")
def folder_run(shared_data, tmp_path_factory, tiny_kwargs):
    from pointnet1x1.engine import train

    base = tmp_path_factory.mktemp("folder_run")
    root = base / "own"
    rels = _class_tree(shared_data, root)
    kw = {**tiny_kwargs, "num_points": 64, "epochs": 1}
    report = train(
        data=str(root), out=str(base / "run"), cache_dir=str(base / "c"), **kw
    )
    return root, rels, base / "run", report


def test_a_class_tree_trains_and_keeps_its_split_in_run_folder_and_checkpoint(
    folder_run,
):
    from pointnet1x1.engine.checkpoint import read_checkpoint_metadata

    root, rels, run, report = folder_run
    assert report["class_names"] == sorted(CLASSES)
    assert report["data"]["layout"] == "class"
    # 8 files a class: 2 to test (round(1.6)), 6 to train, 1 of them carved for val
    assert report["data"]["num_test"] == 6
    assert (report["data"]["num_train"], report["data"]["num_val"]) == (15, 3)
    assert report["data"]["bad_files"] == []
    split = json.loads((run / "split.json").read_text())
    assert split["test"] == _expected_test(rels)
    assert sorted(split["train"] + split["test"]) == sorted(rels)
    assert split["layout"] == "class" and split["classes"] == sorted(CLASSES)
    assert split["root"] == str(root.resolve())
    for name in ("best", "last"):
        meta = read_checkpoint_metadata(run / "checkpoints" / f"{name}.safetensors")
        assert meta["extra"]["split"] == split


def test_eval_scores_the_manifest_s_test_files_after_files_are_added(
    folder_run, shared_data, tmp_path, capsys
):
    from pointnet1x1.data import FolderDataset

    root, rels, run, _ = folder_run
    split = json.loads((run / "split.json").read_text())
    added = _class_tree(shared_data, root, extra=6)  # 14 a class now: 3 would test
    assert len(added) == len(rels) + 18
    # the folder's own split has changed: another count of test files a class
    fresh = FolderDataset(root, "test", num_points=64, cache_dir=tmp_path / "c",
                          progress=False)  # fmt: skip
    assert len(fresh.files) == 9 and fresh.files != split["test"]
    out = tmp_path / "eval.json"
    code = main(["eval", str(run / "checkpoints" / "best.safetensors"),
                 "--json", str(out), "--device", "cpu"])  # fmt: skip
    assert code == 0
    result = json.loads(out.read_text())
    assert result["files"] == split["test"]
    assert result["num_samples"] == len(split["test"]) == 6
    printed = capsys.readouterr().out
    assert (
        "split: the checkpoint's split manifest (6 test files; 18 files of the "
        "folder not in it, not scored)"
    ) in printed


def test_bad_files_stop_the_run_by_name_or_are_listed_with_skip_bad(
    shared_data, tmp_path, tiny_kwargs, capsys
):
    from pointnet1x1.engine import train

    root = tmp_path / "own"
    _class_tree(shared_data, root)
    (root / "bowl" / "broken.npy").write_bytes(b"\x93NUMPY not really")
    code = main(["train", "--data", str(root), "--out", str(tmp_path / "r1"),
                 "--cache-dir", str(tmp_path / "c"), "--progress", "none"])  # fmt: skip
    err = capsys.readouterr().err
    assert code != 0 and "bowl/broken.npy" in err and "Traceback" not in err
    assert not (tmp_path / "r1" / "report.json").exists()
    kw = {**tiny_kwargs, "num_points": 64, "epochs": 1}
    report = train(data=str(root), out=str(tmp_path / "r2"), skip_bad=True,
                   cache_dir=str(tmp_path / "c"), **kw)  # fmt: skip
    bad = report["data"]["bad_files"]
    assert [b["file"] for b in bad] == ["bowl/broken.npy"]
    assert bad[0]["split"] in ("train", "test") and bad[0]["problem"]
    assert report["data"]["skip_bad"] is True
    assert report["data"]["num_train"] + report["data"]["num_val"] + report["data"][
        "num_test"
    ] == sum(CLASSES.values())


def test_training_on_a_test_only_folder_is_refused(shared_data, tmp_path, capsys):
    code = main(["train", "--data", str(shared_data / "modelnet10_pcd_test"),
                 "--out", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c"),
                 "--progress", "none"])  # fmt: skip
    err = capsys.readouterr().err
    assert code != 0
    assert "ModelNet10" in err and "holds only a test split (908 shapes)" in err
    assert not (tmp_path / "r" / "report.json").exists()
