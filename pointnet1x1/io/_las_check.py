"""Sanity checks of a LAS/LAZ header before laspy / lazrs read the file.

Both trust the header: a corrupt VLR count makes laspy loop over billions of
records and eat all the memory, a corrupt LAZ chunk table makes lazrs allocate
tens of GB and abort the interpreter (no ``except`` catches that). These checks
use only the fixed public header block and turn such files into a clear error.
"""

from __future__ import annotations

import os
import struct
from typing import IO

from pointnet1x1.io.cloud import PointCloudFileError
from pointnet1x1.io.limits import check_allocation, check_inflation

_VLR_HEADER = 54  # bytes per VLR header
_EVLR_HEADER = 60


def check_las_header(file: IO[bytes], compressed_name: bool) -> None:
    """Raise PointCloudFileError (without the path) when the header of the open
    ``file`` cannot be right; ``compressed_name``: the file is named ``.laz``.
    Leaves the file at its start."""
    size = os.fstat(file.fileno()).st_size
    file.seek(0)
    head = file.read(375)
    if size == 0:
        raise PointCloudFileError("file is empty")
    if len(head) < 227 or head[:4] != b"LASF":
        raise PointCloudFileError(f"not a LAS/LAZ file: starts with {head[:8]!r}")
    minor = head[25]
    header_size, offset, num_vlrs = struct.unpack_from("<HII", head, 94)
    format_id, record_length, count = struct.unpack_from("<BHI", head, 104)
    num_evlrs = evlr_start = 0
    if minor >= 4 and len(head) >= 255:
        evlr_start, num_evlrs, count64 = struct.unpack_from("<QIQ", head, 235)
        count = count64 or count
    if not 227 <= header_size <= offset <= size:
        raise PointCloudFileError(
            f"corrupt LAS header: header size {header_size}, point data at {offset}, "
            f"file size {size}"
        )
    if header_size + _VLR_HEADER * num_vlrs > offset:
        raise PointCloudFileError(
            f"corrupt LAS header: {num_vlrs} VLRs cannot fit before the point data "
            f"at byte {offset}"
        )
    if num_evlrs and (
        evlr_start > size or _EVLR_HEADER * num_evlrs > size - evlr_start
    ):
        raise PointCloudFileError(
            f"corrupt LAS header: {num_evlrs} extended VLRs at byte {evlr_start} "
            f"do not fit in the file ({size} bytes)"
        )
    body = count * record_length
    compressed = bool(format_id & 0x80) or compressed_name
    check_allocation(body, "LAS point records")
    if not compressed and offset + body > size:
        raise PointCloudFileError(
            f"truncated LAS file: header declares {count} points of {record_length} "
            f"bytes but only {size - offset} bytes of point data follow"
        )
    if compressed:
        check_inflation(
            body, size, f"LAZ body ({count} points of {record_length} bytes)"
        )
        _check_laszip_vlr(file, header_size, num_vlrs, offset, record_length)
        _check_chunk_table(file, offset, size, count)
    file.seek(0)


_VARIABLE_CHUNKS = 0xFFFFFFFF


def _check_laszip_vlr(
    file: IO[bytes], start: int, num_vlrs: int, end: int, record_length: int
) -> None:
    """lazrs allocates one chunk of points up front: bound the chunk size that
    the laszip VLR declares (``u32`` at byte 12 of its payload)."""
    pos = start
    for _ in range(num_vlrs):
        file.seek(pos)
        head = file.read(_VLR_HEADER)
        if len(head) < _VLR_HEADER or pos + _VLR_HEADER > end:
            return  # laspy reports the short VLR itself
        user_id, record_id, length = head[2:18], *struct.unpack_from("<HH", head, 18)
        if user_id.rstrip(b"\0") == b"laszip encoded" and record_id == 22204:
            payload = file.read(min(length, 16))
            if len(payload) == 16:
                chunk = struct.unpack_from("<I", payload, 12)[0]
                if chunk != _VARIABLE_CHUNKS:
                    check_allocation(
                        chunk * record_length, f"LAZ chunk of {chunk} points"
                    )
            return
        pos += _VLR_HEADER + length


def _check_chunk_table(file: IO[bytes], start: int, size: int, count: int) -> None:
    file.seek(start)
    offset = int.from_bytes(file.read(8), "little", signed=True)
    if offset == -1:  # the writer could not seek back: offset at the end
        file.seek(size - 8)
        offset = int.from_bytes(file.read(8), "little", signed=True)
    if not start + 8 <= offset <= size - 8:
        raise PointCloudFileError(
            f"corrupt LAZ file: chunk table offset {offset} outside the file "
            f"({size} bytes)"
        )
    file.seek(offset + 4)  # u32 version, u32 number of chunks
    chunks = int.from_bytes(file.read(4), "little")
    if chunks > max(1, count):
        raise PointCloudFileError(
            f"corrupt LAZ file: {chunks} chunks for {count} points"
        )
