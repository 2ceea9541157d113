"""Special files are refused before they are read, and folder walks survive any
shape (issue 16, class 3): FIFOs, sockets, devices, symlink loops, unreadable
folders, hidden files."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pointnet1x1.io import PointCloud, PointCloudFileError, read_points, write_points
from pointnet1x1.io.files import open_input, read_input
from pointnet1x1.io.limits import override
from pointnet1x1.io.walk import Skipped, collect_files, iter_files

EXTENSIONS = (".ply", ".pcd", ".npy", ".npz", ".xyz", ".off", ".obj", ".stl", ".las")


@pytest.mark.parametrize("ext", EXTENSIONS)
def test_a_symlink_to_dev_zero_is_refused_before_reading(tmp_path, ext):
    link = tmp_path / f"zero{ext}"
    link.symlink_to("/dev/zero")
    with pytest.raises(PointCloudFileError) as info:
        read_points(link)
    assert str(info.value) == (
        f"{link}: is a character device (a symlink to /dev/zero), not a regular "
        "file; expected a point-cloud file"
    )


def test_a_fifo_named_scan_ply_does_not_hang(tmp_path):
    fifo = tmp_path / "scan.ply"
    os.mkfifo(fifo)
    code = f"from pointnet1x1.io import read_points\nread_points({str(fifo)!r})\n"
    # in a subprocess: a reader that opened the FIFO would block for ever
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert last.endswith(f"{fifo}: is a FIFO (named pipe), not a regular file; "
                         "expected a point-cloud file")  # fmt: skip


def test_a_socket_is_refused(tmp_path):
    path = tmp_path / "s.xyz"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
        with pytest.raises(PointCloudFileError, match="is a socket, not a regular"):
            read_points(path)
    finally:
        server.close()


def test_a_fifo_swapped_in_after_the_check_is_caught_by_fstat(tmp_path, monkeypatch):
    # the first stat sees a regular file; the open (O_NONBLOCK) must not block and
    # fstat on the descriptor must see the FIFO
    regular = tmp_path / "real.ply"
    regular.write_bytes(b"ply\n")
    fifo = tmp_path / "swapped.ply"
    os.mkfifo(fifo)
    real_stat = os.stat
    monkeypatch.setattr(
        os, "stat", lambda p, *a, **k: real_stat(regular if p == fifo else p, *a, **k)
    )
    with pytest.raises(PointCloudFileError, match="is a FIFO"):
        open_input(fifo)


def test_broken_symlink_and_symlink_loop(tmp_path):
    broken = tmp_path / "gone.ply"
    broken.symlink_to(tmp_path / "nothing.ply")
    with pytest.raises(FileNotFoundError, match="gone.ply: broken symlink to "):
        read_points(broken)
    loop = tmp_path / "loop.ply"
    loop.symlink_to(loop)
    with pytest.raises(PointCloudFileError, match="loop.ply: is a symlink loop"):
        read_points(loop)


def test_file_size_limit_and_how_to_raise_it(tmp_path, monkeypatch):
    path = tmp_path / "c.xyz"
    path.write_text("".join(f"{i} 0 0\n" for i in range(100)))  # 690 bytes
    size = path.stat().st_size
    with override(max_file_bytes=size - 1), pytest.raises(PointCloudFileError) as info:
        read_points(path)
    assert "larger than the readers' limit" in str(info.value)
    assert "POINTNET1X1_MAX_FILE_BYTES" in str(info.value)
    with override(max_file_bytes=size):
        assert len(read_points(path)) == 100
    monkeypatch.setenv("POINTNET1X1_MAX_FILE_BYTES", "0.5K")
    with pytest.raises(PointCloudFileError, match="690 B, larger than .* 512 B"):
        read_points(path)


def test_a_file_without_a_reported_size_is_read_only_up_to_the_limit():
    # /proc files are regular files of size 0 that still hold bytes
    status = Path("/proc/self/status")
    assert status.stat().st_size == 0
    assert read_input(status).startswith(b"Name:")
    with override(max_file_bytes=64), pytest.raises(PointCloudFileError, match="limit"):
        read_input(status)


def _tree(root: Path) -> None:
    cloud = PointCloud(np.zeros((2, 3)))
    (root / "sub").mkdir(parents=True)
    (root / "x.ply").mkdir()  # a folder with a point-cloud name: walked
    (root / ".hidden").mkdir()
    for name in (
        "a.ply",
        "B.PLY",
        "sub/c.ply",
        "x.ply/d.ply",
        ".h.ply",
        ".hidden/e.ply",
    ):
        write_points(root / name, cloud)
    (root / "notes.txt.bak").write_text("not a cloud")
    os.mkfifo(root / "scan.ply")
    (root / "sub" / "up").symlink_to("..")  # a loop: sub/up -> root
    (root / "gone.ply").symlink_to(root / "missing.ply")
    (root / "zero.ply").symlink_to("/dev/zero")


def test_iter_files_regular_files_only_each_folder_once(tmp_path):
    root = tmp_path / "data"
    _tree(root)
    seen: list[Skipped] = []
    files = list(iter_files(root, [".ply"], report=seen.append))
    names = [p.relative_to(root).as_posix() for p in files]
    assert names == ["B.PLY", "a.ply", "sub/c.ply", "x.ply/d.ply"]  # sorted by name
    reasons = {s.path.relative_to(root).as_posix(): (s.reason, s.problem) for s in seen}
    assert reasons == {
        ".h.ply": ("hidden file, skipped", False),
        ".hidden": ("hidden folder, skipped", False),
        "gone.ply": ("broken symlink, skipped", True),
        "scan.ply": ("is a FIFO (named pipe), not a regular file, skipped", True),
        "zero.ply": ("is a character device, not a regular file, skipped", True),
        "sub/up": (f"the same folder as {root} (a symlink), skipped", False),
    }
    hidden = list(iter_files(root, ["ply"], report=lambda s: None, include_hidden=True))
    assert {p.name for p in hidden} - {p.name for p in files} == {".h.ply", "e.ply"}


def test_iter_files_reports_an_unreadable_folder_and_goes_on(tmp_path, monkeypatch):
    root = tmp_path / "data"
    _tree(root)
    real_scandir = os.scandir

    def scandir(path):  # root can read any folder: simulate EACCES on one
        if Path(path) == root / "sub":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    seen: list[Skipped] = []
    files = list(iter_files(root, [".ply"], report=seen.append))
    assert [p.name for p in files] == ["B.PLY", "a.ply", "d.ply"]
    assert (
        Skipped(
            root / "sub", "cannot read this folder (Permission denied), skipped", True
        )
        in seen
    )


def test_collect_files_mixes_files_and_folders(tmp_path):
    root = tmp_path / "data"
    _tree(root)
    empty = tmp_path / "empty"
    empty.mkdir()
    given = [root / "a.ply", root / "scan.ply", tmp_path / "nope.ply", empty]
    found = collect_files([*given, root / "x.ply", root / "sub"])
    # sub/up links back to data/, not walked yet: walked once, without what was
    # listed already (a.ply, the folder x.ply)
    assert found.files == [
        root / "a.ply",
        root / "x.ply" / "d.ply",
        root / "sub" / "c.ply",
        root / "sub" / "up" / "B.PLY",
    ]
    problems = [
        (p.path.relative_to(tmp_path).as_posix(), p.reason) for p in found.problems
    ]
    folder_message = problems[2][1]
    assert folder_message.startswith("no supported point-cloud files in this folder")
    assert problems == [
        ("data/scan.ply", "is a FIFO (named pipe), not a regular file"),
        ("nope.ply", "no such file or folder"),
        ("empty", folder_message),
        ("data/sub/up/gone.ply", "broken symlink, skipped"),
        ("data/sub/up/scan.ply", "is a FIFO (named pipe), not a regular file, skipped"),
        ("data/sub/up/zero.ply", "is a character device, not a regular file, skipped"),
    ]
    notes = [n.path.relative_to(tmp_path).as_posix() for n in found.notes]
    assert notes == [
        "data/sub/up/.h.ply",
        "data/sub/up/.hidden",
        "data/sub/up/a.ply",
        "data/sub/up/sub",
        "data/sub/up/x.ply",
    ]
    assert found.notes[2].reason == f"the same file as {root / 'a.ply'}, skipped"


def _stack_depth() -> int:
    frame, depth = sys._getframe(), 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1
    return depth


def test_deep_folders_do_not_hit_the_recursion_limit(tmp_path):
    # a walk that recursed once per folder would need 120 more frames than allowed
    folder = tmp_path
    for _ in range(120):
        folder = folder / "d"
    folder.mkdir(parents=True)
    (folder / "x.xyz").write_text("1 2 3\n")
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(_stack_depth() + 60)
    try:
        found = list(iter_files(tmp_path, [".xyz"]))
    finally:
        sys.setrecursionlimit(old)
    assert found == [folder / "x.xyz"]
