"""What tests/io/test_fuzz.py found, one regression test each."""

import struct
import subprocess
import sys

import numpy as np
import pytest

from pointnet1x1.io import PointCloudFileError, read_mesh, read_points


def test_off_vertex_count_too_small_makes_faces_of_floats(tmp_path):
    # a header edit of stool_0002.off: fewer vertices declared than written, so
    # vertex lines were parsed as faces and int("54.6531") escaped as ValueError
    path = tmp_path / "short.off"
    path.write_text("OFF\n2 1 0\n0 0 0\n1 0 0\n54.6531 1 0\n3 0 1 2\n")
    with pytest.raises(PointCloudFileError) as info:
        read_mesh(path)
    assert str(info.value) == (
        f"{path}: face line '54.6531 1 0' is not integers (a vertex count in the "
        "header that does not match the vertices?)"
    )


def test_npz_whose_central_directory_offset_is_corrupt(tmp_path):
    # a header edit of an .npz: zipfile seeks to a negative offset, OSError EINVAL
    path = tmp_path / "bad.npz"
    np.savez(path, points=np.zeros((5, 3), np.float32))
    raw = bytearray(path.read_bytes())
    end = raw.rfind(b"PK\x05\x06")  # end of central directory record
    offset = struct.unpack_from("<I", raw, end + 16)[0]
    struct.pack_into("<I", raw, end + 16, offset + 1000)
    path.write_bytes(bytes(raw))
    with pytest.raises(PointCloudFileError, match=r"bad\.npz: not a valid NumPy file"):
        read_points(path)


def _laz_with_chunk_size(clouds_dir, tmp_path, chunk: int):
    raw = bytearray((clouds_dir / "laspy_laspy__simple.laz").read_bytes())
    vlr = raw.index(b"laszip encoded") - 2  # the VLR header starts 2 bytes before
    assert struct.unpack_from("<H", raw, vlr + 18)[0] == 22204  # laszip record id
    assert struct.unpack_from("<I", raw, vlr + 54 + 12)[0] == 50000  # chunk size
    struct.pack_into("<I", raw, vlr + 54 + 12, chunk)
    path = tmp_path / f"chunk{chunk}.laz"
    path.write_bytes(bytes(raw))
    return path


def test_laz_chunk_size_is_bounded_before_lazrs_allocates_it(tmp_path, clouds_dir):
    # one flipped byte made lazrs allocate 145 GB and abort the interpreter: run
    # in a subprocess so that a regression fails this test, not the whole suite
    path = _laz_with_chunk_size(clouds_dir, tmp_path, 0xFF00C350)
    code = f"from pointnet1x1.io import read_points\nread_points({str(path)!r})\n"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 1, run.stderr[-500:]
    assert (
        run.stderr.strip()
        .splitlines()[-1]
        .endswith(
            f"{path}: LAZ chunk of 4278240080 points would need 135.5 GiB, above the "
            "limit of 4.0 GiB for one array; raise the limit with "
            "POINTNET1X1_MAX_ALLOC_BYTES=... or pointnet1x1.io.limits.override(max_alloc_bytes=...) "
            "if the file is genuine"
        )
    )


def test_a_lazrs_panic_is_a_file_error(tmp_path, clouds_dir):
    # chunk size 1: lazrs raises pyo3's PanicException, a BaseException
    path = _laz_with_chunk_size(clouds_dir, tmp_path, 1)
    with pytest.raises(PointCloudFileError, match=r"chunk1\.laz: cannot read LAS/LAZ"):
        read_points(path)
