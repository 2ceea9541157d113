"""main() is the one mechanism that turns failures into one line (issue 16,
classes 5 and 6): exit code 2 for a user mistake, 1 for a bad file or a failure
while running, a hint for bugs, one line whatever a file's name holds, and each
subcommand's own usage with a close match for a mistyped option."""

import errno
import os
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import pytest

import pointnet1x1.cli as cli
from pointnet1x1.cli import TRACEBACK_ENV, UsageError, build_parser, main
from pointnet1x1.io import PointCloudFileError

RESAMPLED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
RESAMPLED = RESAMPLED / "modelnet40_normal_resampled"
EVIL = "scan\n\x1b[2Jevil\r.ply"  # a newline, a terminal escape, a carriage return
EVIL_SHOWN = "scan\\n\\x1b[2Jevil\\r.ply"


@pytest.fixture()
def command(monkeypatch):
    """A fake subcommand ``boom`` whose run raises ``command.error``."""
    module = types.ModuleType("pointnet1x1_test_boom")
    module.add_arguments = lambda parser: None

    def run(args):
        raise module.error

    module.run = run
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(cli._COMMANDS, "boom", (module.__name__, "test command"))
    monkeypatch.delenv(TRACEBACK_ENV, raising=False)
    return module


CASES = [
    (UsageError("give either --from-zip FILE or a ROOT"), 2,
     "give either --from-zip FILE or a ROOT"),
    (ValueError("epochs must be an integer, got 'x' (str)"), 2,
     "epochs must be an integer, got 'x' (str)"),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", EVIL), 2,
     f"{EVIL_SHOWN}: No such file or directory (errno 2)"),
    (IsADirectoryError(errno.EISDIR, "Is a directory", "runs/x"), 2,
     "runs/x: Is a directory (errno 21)"),
    (PointCloudFileError("truncated body", EVIL), 1, f"{EVIL_SHOWN}: truncated body"),
    (PermissionError(errno.EACCES, "Permission denied", "ckpt.safetensors"), 1,
     "ckpt.safetensors: Permission denied (errno 13)"),
    (OSError(errno.ENOSPC, "No space left on device", "runs/x/last.safetensors"), 1,
     "runs/x/last.safetensors: No space left on device (errno 28); free some disk "
     "space (or choose another --out) and run again"),
    (MemoryError(), 1, "out of memory; try a smaller --batch-size or --num-points, "
     "or fewer files at once"),
    (zipfile.BadZipFile("File is not a zip file"), 1,
     "corrupt data: BadZipFile: File is not a zip file"),
    (KeyError("class_names"), 1, "internal error: KeyError: 'class_names' (a bug: "
     f"rerun with {TRACEBACK_ENV}=1 to see the traceback, and please report it)"),
    (TypeError("unsupported operand\ntype(s)"), 1,
     "internal error: TypeError: unsupported operand\\ntype(s) (a bug: rerun with "
     f"{TRACEBACK_ENV}=1 to see the traceback, and please report it)"),
]  # fmt: skip


@pytest.mark.parametrize(("error", "code", "message"), CASES)
def test_every_exception_is_one_line_with_its_exit_code(
    command, capsys, error, code, message
):
    command.error = error
    assert main(["boom"]) == code
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"pointnet1x1 boom: error: {message}\n"


def test_the_traceback_on_request(command, capsys, monkeypatch):
    command.error = KeyError("class_names")
    monkeypatch.setenv(TRACEBACK_ENV, "1")
    assert main(["boom"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "Traceback (most recent call last):"
    assert err[-2] == "KeyError: 'class_names'"
    assert err[-1].startswith("pointnet1x1 boom: error: internal error: KeyError")


def test_keyboard_interrupt(command, capsys):
    command.error = KeyboardInterrupt()
    assert main(["boom"]) == 130
    assert capsys.readouterr().err == "pointnet1x1: interrupted\n"


def test_a_mistyped_option_gets_the_subcommands_usage_and_a_suggestion(capsys):
    assert main(["train", "--epcohs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: pointnet1x1 train ")
    assert err.splitlines()[-1] == (
        "pointnet1x1 train: error: unrecognized arguments: --epcohs 1 "
        "(did you mean --epochs?)"
    )


def _subparsers(parser, prefix=()):
    """(command words, parser) for every subcommand, nested ones included."""
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            for name, sub in action.choices.items():
                yield (*prefix, name), sub
                yield from _subparsers(sub, (*prefix, name))


def _required_arguments(parser) -> list[str]:
    values = []
    for action in parser._actions:
        value = str(next(iter(action.choices))) if action.choices else "x"
        if action.option_strings and action.required:  # `show --out`
            values += [action.option_strings[-1], value]
        if not action.option_strings and action.nargs not in ("?", "*"):
            values.append(value)
    return values


def test_every_subcommand_shows_its_own_usage_and_close_matches(capsys):
    checked = []
    for words, parser in _subparsers(build_parser()):
        if any(a.__class__.__name__ == "_SubParsersAction" for a in parser._actions):
            continue  # `data` itself: its actions are checked one by one
        options = [o for a in parser._actions for o in a.option_strings]
        option = next((o for o in options if o.startswith("--") and len(o) > 6), None)
        if option is None or option == "--help":
            continue
        typo = option[:3] + option[4] + option[3] + option[5:]  # swap two letters
        argv = [*words, *_required_arguments(parser), typo]
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith(f"usage: pointnet1x1 {' '.join(words)} "), (argv, err)
        assert err.splitlines()[-1] == (
            f"pointnet1x1 {' '.join(words)}: error: unrecognized arguments: {typo} "
            f"(did you mean {option}?)"
        )
        checked.append(" ".join(words))
    for name in ("train", "eval", "classify", "show", "export", "convert"):
        assert name in checked
    assert "data download" in checked and "data prepare" in checked


def test_a_mistyped_command_is_matched(capsys):
    assert main(["trian"]) == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("pointnet1x1: error: argument COMMAND: invalid choice: ")
    assert last.endswith("did you mean 'train'?")


def _run(*args, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "pointnet1x1", *args],
        capture_output=True, text=True, timeout=300, **kwargs,
    )  # fmt: skip


def test_a_missing_file_with_a_newline_in_its_name_is_one_line(tmp_path):
    run = _run(
        "data", "prepare", "--from-zip", str(tmp_path / EVIL), "--root", str(tmp_path)
    )
    assert run.returncode == 2
    assert run.stderr == (
        f"pointnet1x1 data: error: archive {tmp_path}/{EVIL_SHOWN} does not exist\n"
    )


def test_disk_full_while_unpacking_is_one_line_and_leaves_nothing(tmp_path):
    archive = tmp_path / "src.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        top = "modelnet40_normal_resampled"
        z.writestr(f"{top}/modelnet40_shape_names.txt", "person\n")
        for name in ("person_0001", "person_0002"):
            z.write(RESAMPLED / "person" / f"{name}.txt", f"{top}/person/{name}.txt")
    root = tmp_path / "root"
    # files above 50 kB fail with EFBIG, as on a full disk (SIGXFSZ ignored)
    code = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))\n"
        "from pointnet1x1.cli import main\n"
        f"sys.exit(main(['data', 'prepare', '--from-zip', {str(archive)!r}, "
        f"'--root', {str(root)!r}]))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))  # fmt: skip
    assert run.returncode == 1, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pointnet1x1 data: error: ")
    assert "File too large (errno 27); free some disk space" in lines[0]
    assert list(root.iterdir()) == []  # no half-unpacked dataset, no temp folder
