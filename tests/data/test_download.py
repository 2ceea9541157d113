import hashlib
import http.server
import threading
import zipfile
from pathlib import Path

import pytest

from pointnet1x1.cli import main
from pointnet1x1.data.download import download_dataset, download_file, prepare_from_zip

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
        == 2
    )
    assert "error: <urlopen error" in capsys.readouterr().err
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
