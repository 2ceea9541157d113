"""The package's public face: lazy imports, __all__, py.typed, the console script."""

import subprocess
import sys
from pathlib import Path

import pointnet1x1

ROOT = Path(__file__).resolve().parents[1]


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    return set(out.split())


def test_import_is_light():
    mods = _modules_after("import pointnet1x1")
    assert "torch" not in mods
    assert "open3d" not in mods and "torch_geometric" not in mods


def test_public_names_import_without_open3d_or_pyg():
    mods = _modules_after(
        "from pointnet1x1 import SharedMLP, TNet, PointNetClassifier, create_model"
    )
    assert "torch" in mods
    assert "open3d" not in mods and "torch_geometric" not in mods


def test_help_does_not_import_torch():
    code = (
        "import sys\nfrom pointnet1x1.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    )
    mods = _modules_after(code)
    assert "torch" not in mods and "numpy" not in mods


def test_console_script_help_lists_subcommands():
    exe = Path(sys.executable).with_name("pointnet1x1")
    out = subprocess.run(
        [str(exe), "--help"], capture_output=True, text=True, check=True
    )
    assert "usage: pointnet1x1" in out.stdout
    from pointnet1x1.cli import _COMMANDS

    for name in _COMMANDS:
        assert name in out.stdout


def test_all_names_resolve_and_py_typed_ships():
    for name in pointnet1x1.__all__:
        assert getattr(pointnet1x1, name) is not None, name
    assert (Path(pointnet1x1.__file__).parent / "py.typed").exists()


def test_unknown_attribute_is_an_attribute_error():
    try:
        pointnet1x1.NoSuchThing  # noqa: B018
    except AttributeError as err:
        assert "NoSuchThing" in str(err)
    else:
        raise AssertionError("expected AttributeError")
