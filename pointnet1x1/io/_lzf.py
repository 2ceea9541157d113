"""LZF decompression (the codec of PCD ``binary_compressed``), in pure Python.

liblzf's format: a control byte ``c < 32`` starts a literal run of ``c + 1``
bytes; otherwise ``c >> 5`` is the back-reference length - 2 (7 means "add the
next byte") and ``(c & 31) << 8 | next byte`` the distance - 1. Literal runs and
non-overlapping references are copied as slices, so the Python loop runs once per
token, not per byte.
"""

from __future__ import annotations


def lzf_decompress(data: bytes, size: int) -> bytes:
    """Decompress LZF ``data`` into exactly ``size`` bytes.

    Raises:
        ValueError: The stream is corrupt or does not decode to ``size`` bytes.
    """
    out = bytearray(size)
    ip = op = 0
    end = len(data)
    while ip < end:
        ctrl = data[ip]
        ip += 1
        if ctrl < 32:
            length = ctrl + 1
            if ip + length > end or op + length > size:
                raise ValueError("corrupt LZF stream: literal run past the end")
            out[op : op + length] = data[ip : ip + length]
            ip += length
            op += length
            continue
        length = ctrl >> 5
        if length == 7:
            if ip >= end:
                raise ValueError("corrupt LZF stream: cut inside a back-reference")
            length += data[ip]
            ip += 1
        if ip >= end:
            raise ValueError("corrupt LZF stream: cut inside a back-reference")
        ref = op - ((ctrl & 31) << 8) - data[ip] - 1
        ip += 1
        length += 2
        if ref < 0 or op + length > size:
            raise ValueError("corrupt LZF stream: back-reference out of range")
        if ref + length <= op:
            out[op : op + length] = out[ref : ref + length]
        else:  # overlapping copy repeats the last (op - ref) bytes
            pattern = bytes(out[ref:op])
            reps = length // len(pattern) + 1
            out[op : op + length] = (pattern * reps)[:length]
        op += length
    if op != size:
        raise ValueError(f"LZF stream decodes to {op} bytes, expected {size}")
    return bytes(out)
