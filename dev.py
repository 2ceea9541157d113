#!/usr/bin/env python3
"""Set up pointnet1x1 on a fresh machine and run its main job or its tests.

    python3 dev.py train [ARGS...]   # set up, then `pointnet1x1 train ARGS...`
    python3 dev.py test [ARGS...]    # set up, then `python -m pytest ARGS...`

`train` runs in the caller's folder (relative `--data` / `--out` paths are the
caller's, wherever the checkout is); `test` runs the checkout's suite from the
checkout.

Only the standard library is used here, so this runs on a bare Python >= 3.11.
The set-up is idempotent: a virtual environment in `.venv/` of this checkout,
torch first when it is missing, then this project with its test extras, then the
system library Open3D needs (libusb-1.0). A stamp in the environment records what
was installed; when nothing changed a second run installs nothing and only checks.

Environment variables:
    POINTNET1X1_TORCH        the pip requirement for torch (default ``torch==2.13.0``,
                             the CPU wheel on the project's machines), for example
                             ``torch==2.5.1`` or ``torch`` for the newest CUDA build.
    POINTNET1X1_TORCH_INDEX  an extra index URL for torch, for example
                             ``https://download.pytorch.org/whl/cu124``.
    POINTNET1X1_VENV         where to create the environment (default ``.venv``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("POINTNET1X1_VENV", ROOT / ".venv"))
TORCH = os.environ.get("POINTNET1X1_TORCH", "torch==2.13.0")
TORCH_INDEX = os.environ.get("POINTNET1X1_TORCH_INDEX", "")
STAMP = VENV / ".pointnet1x1-setup.json"


def _say(message: str) -> None:
    print(f"[dev.py] {message}", file=sys.stderr, flush=True)


def _python() -> Path:
    return VENV / "bin" / "python"


def _run(cmd: list[str], **kwargs: object) -> None:
    subprocess.run(cmd, check=True, **kwargs)  # type: ignore[call-overload]


def _wanted() -> dict[str, str]:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    return {"pyproject": digest, "torch": TORCH, "torch_index": TORCH_INDEX}


def _has_libusb() -> bool:
    try:
        out = subprocess.run(
            ["ldconfig", "-p"], capture_output=True, text=True, check=False
        ).stdout
    except FileNotFoundError:
        out = ""
    if "libusb-1.0.so" in out:
        return True
    return any(
        Path(d, "libusb-1.0.so.0").exists()
        for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib")
    )


def _ensure_libusb() -> None:
    """Open3D links against libusb-1.0; install it with apt-get where we can."""
    if _has_libusb():
        return
    if os.name == "posix" and os.geteuid() == 0 and shutil.which("apt-get"):
        _say("installing the system library libusb-1.0-0 (needed by Open3D)")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        _run(["apt-get", "update", "-qq"], env=env)
        _run(["apt-get", "install", "-y", "-qq", "libusb-1.0-0"], env=env)
        return
    _say(
        "missing system library libusb-1.0 (Open3D needs it): install it with "
        "`sudo apt-get install libusb-1.0-0` (Debian/Ubuntu) or your system's "
        "package manager; formats read without Open3D still work"
    )


def _torch_installed() -> bool:
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is None)"
    return subprocess.run([str(_python()), "-c", probe], check=False).returncode == 0


def setup() -> None:
    """Create the environment and install what is missing (idempotent)."""
    if not _python().exists():
        _say(f"creating the virtual environment {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = _wanted()
    done = json.loads(STAMP.read_text()) if STAMP.exists() else {}
    pip = [str(_python()), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    if (
        done.get("torch") != TORCH
        or done.get("torch_index") != TORCH_INDEX
        or not _torch_installed()
    ):
        _say(
            f"installing {TORCH} first (set POINTNET1X1_TORCH to choose another build)"
        )
        extra = ["--extra-index-url", TORCH_INDEX] if TORCH_INDEX else []
        _run([*pip, TORCH, *extra])
        done.pop("pyproject", None)
    if done.get("pyproject") != wanted["pyproject"]:
        _say("installing pointnet1x1 with its test extras")
        _run([*pip, "-e", f"{ROOT}[test]"])
    _ensure_libusb()
    tmp = STAMP.with_suffix(".tmp")
    tmp.write_text(json.dumps(wanted))
    os.replace(tmp, STAMP)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"train", "test", "setup"}:
        print(__doc__, file=sys.stderr)
        return 2
    setup()
    command, rest = argv[0], argv[1:]
    if command == "setup":
        return 0
    bin_dir = VENV / "bin"
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    if command == "train":
        # in the caller's folder: `--data ../x`, `--out runs/y` mean what they say
        cmd, cwd = [str(bin_dir / "pointnet1x1"), "train", *rest], None
    else:
        # the suite of this checkout, whatever the caller's folder (test paths
        # such as `tests/io` are relative to the checkout)
        cmd, cwd = [str(_python()), "-m", "pytest", *rest], ROOT
    _say("running: " + " ".join(cmd[-len(rest) - 2 :] if rest else cmd[-2:]))
    return subprocess.run(cmd, cwd=cwd, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
