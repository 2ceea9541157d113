"""dev.py, the two-command set-up: the system-library step and the argument check."""

import importlib.util
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
