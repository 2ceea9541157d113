"""dev.py, the two-command set-up: the system-library step and the argument check."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def dev():
    spec = importlib.util.spec_from_file_location("pointnet1x1_dev", ROOT / "dev.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_missing_libusb_without_root_says_what_to_install(dev, monkeypatch, capsys):
    monkeypatch.setattr(dev, "_has_libusb", lambda: False)
    monkeypatch.setattr(dev.os, "geteuid", lambda: 1000)
    calls = []
    monkeypatch.setattr(dev, "_run", lambda cmd, **kw: calls.append(cmd))
    dev._ensure_libusb()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "missing system library libusb-1.0" in err[0]
    assert "apt-get install libusb-1.0-0" in err[0]
    assert calls == []


def test_missing_libusb_as_root_installs_it_with_apt(dev, monkeypatch):
    monkeypatch.setattr(dev, "_has_libusb", lambda: False)
    monkeypatch.setattr(dev.os, "geteuid", lambda: 0)
    monkeypatch.setattr(dev.shutil, "which", lambda name: "/usr/bin/apt-get")
    calls = []
    monkeypatch.setattr(dev, "_run", lambda cmd, **kw: calls.append(cmd))
    dev._ensure_libusb()
    assert calls[-1][:3] == ["apt-get", "install", "-y"]
    assert "libusb-1.0-0" in calls[-1]


def test_present_libusb_installs_nothing(dev, monkeypatch):
    monkeypatch.setattr(dev, "_has_libusb", lambda: True)
    calls = []
    monkeypatch.setattr(dev, "_run", lambda cmd, **kw: calls.append(cmd))
    dev._ensure_libusb()
    assert calls == []


def test_unknown_command_prints_usage_and_fails(dev, capsys):
    assert dev.main(["nope"]) == 2
    assert "python3 dev.py train" in capsys.readouterr().err


def test_this_environment_has_libusb(dev):
    # The set-up that ran before these tests must have made Open3D loadable.
    assert dev._has_libusb()


def test_train_from_another_folder_runs_in_the_callers_folder(dev, tmp_path):
    # a set-up that is done already (stamp matches), whose `pointnet1x1` prints
    # the folder it runs in: dev.py must not move to the checkout
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"  # this environment's python, through a script
    python.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)
    script = venv / "bin" / "pointnet1x1"
    script.write_text('#!/bin/sh\npwd -P\necho "$@"\n')
    script.chmod(0o755)
    # should the set-up want to install anything, pip fails at once instead
    env = dict(os.environ, POINTNET1X1_VENV=str(venv), PIP_NO_INDEX="1")
    env["PIP_FIND_LINKS"] = ""
    env.pop("POINTNET1X1_TORCH", None)
    env.pop("POINTNET1X1_TORCH_INDEX", None)
    (venv / ".pointnet1x1-setup.json").write_text(json.dumps(dev._wanted()))
    caller = tmp_path / "elsewhere"
    caller.mkdir()
    run = subprocess.run(
        [sys.executable, str(ROOT / "dev.py"), "train", "--out", "runs/x"],
        cwd=caller, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [str(caller.resolve()), "train --out runs/x"]
