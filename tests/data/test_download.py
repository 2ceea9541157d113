import hashlib
import http.server
import os
import socket
import threading
import warnings
import zipfile
from pathlib import Path

import pytest

from pointnet1x1.cli import main
from pointnet1x1.data.download import (
    DownloadError,
    download_dataset,
    download_file,
    prepare_from_zip,
)
from pointnet1x1.io.errors import InputFileError

RESAMPLED = (
    Path(__file__).resolve().parents[2]
    / ".."
    / "shared"
    / "data"
    / "modelnet40_normal_resampled"
)


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves `payload` with HTTP Range support; `cut` truncates the next response."""

    payload = b""
    cut: int | None = None
    send_length = True  # False: no Content-Length, the end is the connection's
    requests: list = []

    def do_GET(self):  # noqa: N802
        cls = type(self)
        cls.requests.append(self.headers.get("Range"))
        start = 0
        rng = self.headers.get("Range")
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(cls.payload):
                self.send_response(416)
                self.end_headers()
                return
            self.send_response(206)
            self.send_header(
                "Content-Range",
                f"bytes {start}-{len(cls.payload) - 1}/{len(cls.payload)}",
            )
        else:
            self.send_response(200)
        body = cls.payload[start:]
        if cls.send_length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if cls.cut is not None:
            body, cls.cut = body[: cls.cut], None  # announce all, send part, hang up
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture()
def server(tmp_path):
    class Handler(_Handler):
        requests = []

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield Handler, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _resampled_zip(path: Path) -> bytes:
    """A small archive in the modelnet40_normal_resampled layout (real files)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        top = "modelnet40_normal_resampled"
        z.writestr(f"{top}/modelnet40_shape_names.txt", "person\n")
        z.writestr(f"{top}/modelnet40_train.txt", "person_0001\nperson_0002\n")
        z.writestr(f"{top}/modelnet40_test.txt", "person_0089\n")
        for name in ("person_0001", "person_0002", "person_0089"):
            z.write(RESAMPLED / "person" / f"{name}.txt", f"{top}/person/{name}.txt")
    return path.read_bytes()


def test_download_resumes_after_a_cut_and_verifies(server, tmp_path):
    handler, url = server
    handler.payload = _resampled_zip(tmp_path / "src.zip")
    sha = hashlib.sha256(handler.payload).hexdigest()
    handler.cut = 5000
    dest = tmp_path / "dl" / "data.zip"
    with pytest.raises(
        OSError, match="connection closed after 5000 of .* run again to resume"
    ):
        download_file(f"{url}/data.zip", dest, sha256=sha, progress=False)
    assert (
        not dest.exists() and (tmp_path / "dl" / "data.zip.part").stat().st_size == 5000
    )
    download_file(f"{url}/data.zip", dest, sha256=sha, progress=False)
    assert dest.read_bytes() == handler.payload and handler.requests == [
        None,
        "bytes=5000-",
    ]
    assert not (tmp_path / "dl" / "data.zip.part").exists()


def test_checksum_mismatch_deletes_the_download_and_extracts_nothing(server, tmp_path):
    handler, url = server
    handler.payload = _resampled_zip(tmp_path / "src.zip")
    with pytest.raises(
        ValueError, match="sha256 mismatch, expected 0{64}, got [0-9a-f]{64}"
    ):
        download_dataset(
            "modelnet40",
            "resampled",
            tmp_path / "root",
            url=f"{url}/m.zip",
            sha256="0" * 64,
            progress=False,
        )
    assert [p.name for p in (tmp_path / "root").iterdir()] == []


def test_download_dataset_unpacks_atomically_and_loads(server, tmp_path):
    handler, url = server
    handler.payload = _resampled_zip(tmp_path / "src.zip")
    sha = hashlib.sha256(handler.payload).hexdigest()
    root = tmp_path / "root"
    out = download_dataset(
        "modelnet40", "resampled", root, url=f"{url}/x.zip", sha256=sha, progress=False
    )
    assert out == root / "modelnet40_normal_resampled"
    assert sorted(p.name for p in root.iterdir()) == [
        "modelnet40_normal_resampled"
    ]  # no zip, no temp
    from pointnet1x1.data import ModelNet

    ds = ModelNet(root, "train", num_points=64, progress=False)
    assert (ds.layout, len(ds), ds.class_names) == ("resampled", 2, ["person"])
    assert (
        download_dataset("modelnet40", "resampled", root, url=f"{url}/x.zip") == out
    )  # present: no fetch
    assert len(handler.requests) == 1


def test_prepare_from_zip_checks_crc_and_layout(tmp_path):
    good = tmp_path / "good.zip"
    _resampled_zip(good)
    out = prepare_from_zip(good, tmp_path / "r", progress=False)
    assert (out / "person" / "person_0089.txt").is_file()
    data = bytearray(good.read_bytes())
    pos = data.find(b"person_0001.txt") + 200  # inside the first member's data
    data[pos] ^= 0xFF
    bad = tmp_path / "bad.zip"
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="fails its CRC check|not a zip"):
        prepare_from_zip(bad, tmp_path / "r2", progress=False)
    assert not (tmp_path / "r2" / "modelnet40_normal_resampled").exists()
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("readme.txt", "hello")
    with pytest.raises(ValueError, match="no ModelNet layout"):
        prepare_from_zip(other, tmp_path / "r3")
    with pytest.raises(ValueError, match="sha256 mismatch"):
        prepare_from_zip(good, tmp_path / "r4", sha256="ab" * 32)


def test_cli_download_prepare_info(server, tmp_path, capsys):
    handler, url = server
    handler.payload = _resampled_zip(tmp_path / "src.zip")
    root = tmp_path / "root"
    assert main(["data", "download", "modelnet40", "--layout", "resampled", "--root", str(root),
                 "--url", f"{url}/z.zip"]) == 0  # fmt: skip
    captured = capsys.readouterr()
    assert (
        "sha256 of modelnet40_normal_resampled.zip:" in captured.err
        and "modelnet40_normal_resampled" in captured.out
    )
    assert main(["data", "info", str(root)]) == 0
    out = capsys.readouterr().out
    assert (
        "layout:  resampled" in out and "train: 2 of 2 shapes present, 0 missing" in out
    )
    assert "complete" in out
    assert (
        main(
            [
                "data",
                "prepare",
                "--from-zip",
                str(tmp_path / "src.zip"),
                "--root",
                str(tmp_path / "p"),
            ]
        )
        == 0
    )
    assert (tmp_path / "p" / "modelnet40_normal_resampled" / "person").is_dir()
    assert (
        main(
            [
                "data",
                "prepare",
                str(root),
                "--num-points",
                "64",
                "--cache-dir",
                str(tmp_path / "c"),
            ]
        )
        == 0
    )
    assert "train: 2 shapes, 2048 points each (resampled)" in capsys.readouterr().out
    assert main(["data", "info", str(RESAMPLED)]) == 0
    out = capsys.readouterr().out
    assert "train: 1110 of 9843 shapes present, 8733 missing" in out
    assert "airplane, bathtub, bench, person" in out
    assert main(["data", "download", "modelnet40", "--layout", "hdf5", "--root", str(tmp_path / "x"),
                 "--url", f"{url}/missing.zip", "--sha256", "0" * 64]) == 2  # fmt: skip
    assert "error: " in capsys.readouterr().err
    assert (
        main(
            [
                "data",
                "download",
                "modelnet10",
                "--root",
                str(tmp_path / "y"),
                "--url",
                "http://127.0.0.1:1/a.zip",
            ]
        )
        == 1  # a DownloadError: a failed input, one line
    )
    err = capsys.readouterr().err
    assert (
        "cannot download http://127.0.0.1:1/a.zip: [Errno 111] Connection refused"
        in err
    )
    assert "pointnet1x1 data prepare --from-zip ModelNet10.zip --root" in err
    assert main(["data", "prepare"]) == 2
    assert "either --from-zip FILE or a dataset ROOT" in capsys.readouterr().err


def test_known_member_md5_of_the_hdf5_archive_is_checked_before_the_rename(tmp_path):
    # an archive named like the published one but with a different train0 file
    zpath = tmp_path / "modelnet40_ply_hdf5_2048.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        z.writestr("modelnet40_ply_hdf5_2048/ply_data_train0.h5", b"not the real file")
        z.writestr("modelnet40_ply_hdf5_2048/shape_names.txt", "airplane\n")
    out = tmp_path / "data"
    with pytest.raises(
        ValueError, match="ply_data_train0.h5 md5 mismatch, expected 3176385f"
    ):
        prepare_from_zip(zpath, out, progress=False)
    assert not (out / "modelnet40_ply_hdf5_2048").exists()
    assert list(out.iterdir()) == []  # not even a temporary folder
    # the same bytes with their own md5 as the known one pass
    digest = hashlib.md5(b"not the real file").hexdigest()
    root = prepare_from_zip(
        zpath, out, member_md5={"ply_data_train0.h5": digest}, progress=False
    )
    assert (root / "ply_data_train0.h5").read_bytes() == b"not the real file"


def _free_port() -> int:
    with socket.socket() as probe:  # bound then closed: nothing listens there
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_offline_download_names_the_url_and_the_way_out(tmp_path):
    url = f"http://127.0.0.1:{_free_port()}/modelnet40_normal_resampled.zip"
    with pytest.raises(DownloadError) as info:
        download_dataset("modelnet40", "resampled", tmp_path, url=url, progress=False)
    message = str(info.value)
    assert message.startswith(f"cannot download {url}: [Errno 111] Connection refused")
    assert message.endswith(
        f"or download {url} another way and run: pointnet1x1 data prepare "
        f"--from-zip modelnet40_normal_resampled.zip --root {tmp_path}"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_cut_download_without_content_length_never_looks_complete(server, tmp_path):
    handler, url = server
    handler.payload = _resampled_zip(tmp_path / "src.zip")
    handler.send_length, handler.cut = False, 3000  # the server just hangs up
    root = tmp_path / "root"
    with pytest.raises(DownloadError, match="not a complete zip archive yet"):
        download_dataset(
            "modelnet40", "resampled", root, url=f"{url}/m.zip", progress=False
        )
    assert sorted(p.name for p in root.iterdir()) == [
        "modelnet40_normal_resampled.zip.part"
    ]
    # the next run resumes the part, and only the verified whole is unpacked
    out = download_dataset(
        "modelnet40", "resampled", root, url=f"{url}/m.zip", progress=False
    )
    assert handler.requests == [None, "bytes=3000-"]
    assert sorted(p.name for p in root.iterdir()) == ["modelnet40_normal_resampled"]
    assert (out / "person" / "person_0089.txt").read_bytes() == (
        RESAMPLED / "person" / "person_0089.txt"
    ).read_bytes()


def test_download_file_without_any_way_to_verify_keeps_the_part(server, tmp_path):
    handler, url = server
    handler.payload, handler.send_length = b"x" * 1000, False
    dest = tmp_path / "f.bin"
    with pytest.raises(ValueError, match="announced no size, so a complete download"):
        download_file(f"{url}/f.bin", dest, progress=False)
    assert not dest.exists() and (tmp_path / "f.bin.part").stat().st_size == 1000
    assert download_file(f"{url}/f.bin", dest, size=1000, progress=False) == dest


def _zip(path: Path, names: list[str]) -> Path:
    with zipfile.ZipFile(path, "w") as z, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names
        for name in names:
            z.writestr(name, "x.off\n" if name.endswith(".txt") else "OFF\n0 0 0\n")
    return path


@pytest.mark.parametrize(
    ("names", "problem"),
    [
        (["../ModelNet40/a/train/a_1.off"], "has an empty, '.' or '..' component"),
        (["./ModelNet40/a/train/a_1.off"], "has an empty, '.' or '..' component"),
        (["ModelNet40/../../x.off"], "has an empty, '.' or '..' component"),
        (["/etc/ModelNet40/a_1.off"], "is an absolute path"),
        (["ModelNet40\\a\\a_1.off"], "holds a backslash"),
        (["ModelNet40/a/a_1.off", "ModelNet40/a/a_1.off"], "appears twice"),
    ],
)
def test_unsafe_or_duplicate_member_names_are_refused(tmp_path, names, problem):
    archive = _zip(tmp_path / "ModelNet40.zip", names)
    root = tmp_path / "root"
    with pytest.raises(InputFileError) as info:
        prepare_from_zip(archive, root, progress=False)
    assert f"member {names[-1]!r} {problem}; refusing to unpack" in str(info.value)
    assert not root.exists()


def test_a_zip_bomb_is_refused_before_unpacking(tmp_path):
    archive = tmp_path / "ModelNet40.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("ModelNet40/a/train/a_1.off", b"OFF\n" + bytes(64 << 20))
    assert archive.stat().st_size * 200 < 64 << 20  # deflate: about 1000:1
    with pytest.raises(InputFileError, match="a ratio above the limit of 200"):
        prepare_from_zip(archive, tmp_path / "root", progress=False)
    assert not (tmp_path / "root").exists()


def test_a_killed_unpack_leaves_nothing_for_the_next_run(tmp_path):
    root = tmp_path / "root"
    dead = root / ".modelnet40_normal_resampled.unpack-999999999-abc"  # no such pid
    legacy = root / ".modelnet40_normal_resampled.tmp-xyz"  # the old naming
    alive = root / f".modelnet40_normal_resampled.unpack-{os.getpid()}-def"
    for folder in (dead, legacy, alive):
        (folder / "person").mkdir(parents=True)
    good = tmp_path / "good.zip"
    _resampled_zip(good)
    prepare_from_zip(good, root, progress=False)
    names = sorted(p.name for p in root.iterdir())
    assert names == [alive.name, "modelnet40_normal_resampled"]  # a live run's stays
