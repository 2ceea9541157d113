"""The main-job commands: train, eval, classify, show (through ``pointnet1x1.cli.main``)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from pointnet1x1.cli import main


def _files(tmp_path, shape_maker):
    rng = np.random.default_rng(1)
    paths = []
    for i, name in enumerate(["ball", "rod"]):
        path = tmp_path / f"{name}{i}.xyz"
        np.savetxt(path, shape_maker(name, rng, 80)[:, :3])
        paths.append(path)
    return paths


def test_classify_good_and_bad_files(tiny_run, tmp_path, shape_maker, capsys):
    good = _files(tmp_path, shape_maker)
    bad = tmp_path / "broken.ply"
    bad.write_text("ply\nformat nonsense\n")
    code = main(
        [
            "classify",
            str(tiny_run),
            str(good[0]),
            str(bad),
            str(good[1]),
            "--top-k",
            "2",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 1
    assert (
        err.count("\n") == 1
        and "pointnet1x1 classify: error:" in err
        and str(bad) in err
    )
    lines = out.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(str(good[0])) and "top-2:" in lines[0]


def test_classify_json_and_folders(tiny_run, tmp_path, shape_maker, capsys):
    good = _files(tmp_path, shape_maker)
    assert (
        main(["classify", str(tiny_run), str(tmp_path), "--json", "--batch-size", "1"])
        == 0
    )
    objects = json.loads(capsys.readouterr().out)
    assert [o["path"] for o in objects] == [str(p) for p in sorted(good)]
    from pointnet1x1.engine import Classifier

    clf = Classifier.from_checkpoint(tiny_run, device="cpu")  # files: z up, as the CLI
    for o, probs in zip(objects, clf.predict_proba(sorted(good)), strict=True):
        assert o["label"] == clf.class_names[int(probs.argmax())]
        assert o["probability"] == pytest.approx(float(probs.max()))
        assert o["top_k"][0] == {"label": o["label"], "probability": o["probability"]}
        assert o["input_up_axis"] == "z"  # the stated assumption
        assert o["model_up_axis"] == clf.preprocessing.up_axis
    # --up-axis says what the files are; y-up files go in through the y/z swap
    assert (
        main(["classify", str(tiny_run), str(good[0]), "--json", "--up-axis", "y"]) == 0
    )
    (as_y,) = json.loads(capsys.readouterr().out)
    assert as_y["input_up_axis"] == "y"
    swapped = np.loadtxt(good[0])[:, [0, 2, 1]]
    want = clf.predict_proba([swapped])[0]  # the same points given z up
    assert as_y["probability"] == pytest.approx(float(want.max()), abs=1e-6)
    # a missing file is reported in the JSON too, and the exit code says so
    assert (
        main(
            [
                "classify",
                str(tiny_run),
                str(good[0]),
                str(tmp_path / "nope.xyz"),
                "--json",
            ]
        )
        == 1
    )
    captured = capsys.readouterr()
    objects = json.loads(captured.out)
    assert objects[-1] == {
        "path": str(tmp_path / "nope.xyz"),
        "error": "no such file or folder",
    }
    assert "nope.xyz" in captured.err


def test_eval_prints_table_and_writes_json_matching_the_report(
    tiny_run, tmp_path, capsys
):
    report = json.loads((tiny_run / "report.json").read_text())
    out_json = tmp_path / "eval.json"
    best = tiny_run / "checkpoints" / "best.safetensors"
    assert main(["eval", str(best), "--json", str(out_json), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "OA" in out and "mAcc" in out and "ball" in out
    result = json.loads(out_json.read_text())
    assert (
        result["oa"] == report["test"]["oa"]
        and result["macc"] == report["test"]["macc"]
    )
    errors, voted_json = tmp_path / "errors", tmp_path / "voted.json"
    args = ["--votes", "2", "--render-errors", str(errors), "--json", str(voted_json)]
    assert main(["eval", str(best), *args]) == 0
    voted = json.loads(voted_json.read_text())
    wrong = sum(voted["confusion"][i][j] for i in range(3) for j in range(3) if i != j)
    assert voted["votes"] == 2
    assert (
        len(list(errors.glob("error_*.png"))) == wrong == len(voted["rendered_errors"])
    )


def test_help_states_the_default_up_axis(capsys):
    from pointnet1x1.io.axes import FILE_UP_AXIS

    for command in ("classify", "show"):
        assert main([command, "--help"]) == 0
        text = " ".join(capsys.readouterr().out.split())
        assert (
            f"--up-axis {{x,y,z}} up axis of the files (default: {FILE_UP_AXIS},"
            in text
        )


def test_show_writes_a_png(tmp_path, shape_maker, capsys):
    paths = _files(tmp_path, shape_maker)
    out = tmp_path / "pic.png"
    assert main(["show", *map(str, paths), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wrote" in capsys.readouterr().out


def test_train_command_and_config_file(tiny_data, tmp_path, capsys):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(
        '[train]\nmodel = "pointnet_vanilla"\nepochs = 1\nnum_points = 32\nbatch_size = 8\n'
        'recipe = "paper"\nmodel_kwargs = {mlp1 = [8, 8], mlp2 = [8, 16], head = [16, 8]}\n'
    )
    out = tmp_path / "run"
    code = main(["train", "--data", str(tiny_data), "--config", str(cfg), "--epochs", "2",
                 "--out", str(out), "--progress", "log"])  # fmt: skip
    assert code == 0
    log = capsys.readouterr().out
    assert "epoch   2/2" in log and "test OA" in log
    saved = json.loads((out / "config.json").read_text())
    assert saved["epochs"] == 2 and saved["model"] == "pointnet_vanilla"  # flag > file
    assert saved["model_kwargs"]["head"] == [16, 8]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "nope"], "unknown model 'nope'"),
        (["--data", "/definitely/missing"], "data root not found: /definitely/missing"),
        (["--num-points", "0"], "num_points must be positive, got 0"),
        (["--device", "tpu"], "unknown device 'tpu'"),
        (["--device", "cuda"], "CUDA is not available"),
        (["--config", "/missing.toml"], "config file not found"),
        (["--votes", "3", "--task", "partseg"], "--task partseg does not use votes"),
        (
            ["--model", "pointnet_partseg", "--val-fraction", "0.2"],
            "does not use val_fraction",
        ),
        (["--task", "partseg", "--model", "pointnet"], "'pointnet' is a cls model"),
    ],
)
def test_train_user_mistakes_exit_2_with_one_line(
    args, message, tiny_data, tmp_path, capsys, monkeypatch
):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    if "--data" not in args:
        args = [*args, "--data", str(tiny_data)]
    assert main(["train", *args, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pointnet1x1 train: error: ") and message in err
    assert err.count("\n") == 1


def test_empty_data_root_and_bad_checkpoint(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["train", "--data", str(tmp_path / "empty")]) == 2
    assert "is empty" in capsys.readouterr().err
    fake = tmp_path / "model.pt"
    fake.write_bytes(b"\x80\x04not really")
    assert main(["classify", str(fake), str(fake)]) == 1  # a bad input file
    assert "refusing to unpickle" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "missing.safetensors")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_classify_one_ply_file_imports_neither_open3d_nor_pyg(tiny_run, tmp_path):
    ply = tmp_path / "one.ply"
    pts = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    header = "ply\nformat ascii 1.0\nelement vertex 50\nproperty float x\nproperty float y\nproperty float z\nend_header\n"
    ply.write_text(header + "\n".join(" ".join(map(str, p)) for p in pts) + "\n")
    code = (
        "import sys\nfrom pointnet1x1.cli import main\n"
        f"rc = main(['classify', {str(tiny_run)!r}, {str(ply)!r}])\n"
        "heavy = [m for m in ('open3d', 'torch_geometric', 'matplotlib') if m in sys.modules]\n"
        "print('HEAVY', heavy, rc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY [] 0" in proc.stdout


def test_show_colours_by_predicted_part(tmp_path, shape_maker, capsys):
    from pointnet1x1.engine import make_preprocessing, save_model_checkpoint
    from pointnet1x1.models import create_model

    kwargs = {"mlp1": [8, 8, 8], "mlp2": [8, 16], "seg_mlp": [8, 8]}
    model = create_model("pointnet_partseg", **kwargs)
    ckpt = save_model_checkpoint(
        tmp_path / "seg.safetensors", model, model_name="pointnet_partseg",
        model_kwargs=kwargs, class_names=[f"p{i}" for i in range(50)],
        preprocessing=make_preprocessing(64),
        extra={"task": "partseg", "category_names": ["Airplane", "Bag"]},
    )  # fmt: skip
    (path,) = _files(tmp_path, shape_maker)[:1]
    out = tmp_path / "parts.png"
    args = ["show", str(path), "--out", str(out), "--checkpoint", str(ckpt)]
    assert main([*args, "--category", "Airplane"]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert main(args) == 2
    assert "needs --category" in capsys.readouterr().err
