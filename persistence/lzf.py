"""LZF, the compression of long strings in RDB files (`rdbcompression yes`, Redis src/lzf_d.c).

The stream is a sequence of chunks, each led by a control byte:
  - 000LLLLL: a literal run of L+1 bytes follows;
  - LLLooooo oooooooo: copy L+2 bytes from `offset + 1` bytes back (o: 13-bit offset);
  - 111ooooo LLLLLLLL oooooooo: the same with length 7 + L + 2 (up to 264).
A back reference may overlap the bytes it produces, which repeats a short pattern.

`decompress` is what loading needs. `compress` is a simple greedy compressor producing streams the
C decompressor accepts; it runs a Python loop per input byte, so it is for tests and small values,
not for compressing a whole dump.
"""

from __future__ import annotations

__all__ = ["LzfError", "compress", "decompress"]

_MAX_LITERAL = 32
_MAX_OFFSET = 1 << 13
_MAX_MATCH = 264


class LzfError(ValueError):
    """The compressed data is malformed or does not inflate to the expected length."""


def decompress(data: bytes | memoryview, expected_length: int) -> bytes:
    """Inflate data, which must produce exactly expected_length bytes."""
    out = bytearray()
    size = len(data)
    pos = 0
    while pos < size:
        control = data[pos]
        pos += 1
        if control < 32:
            run = control + 1
            if pos + run > size:
                raise LzfError(f"literal run of {run} bytes overruns the input at byte {pos}")
            out += data[pos:pos + run]
            pos += run
        else:
            length = control >> 5
            if length == 7:
                if pos >= size:
                    raise LzfError("input ends inside a back reference")
                length += data[pos]
                pos += 1
            length += 2
            if pos >= size:
                raise LzfError("input ends inside a back reference")
            distance = ((control & 0x1F) << 8) + data[pos] + 1
            pos += 1
            start = len(out) - distance
            if start < 0:
                raise LzfError(f"back reference {distance} bytes before the start of the output")
            if distance >= length:
                out += out[start:start + length]
            else:
                pattern = out[start:]
                repeats, rest = divmod(length, distance)
                out += pattern * repeats + pattern[:rest]
        if len(out) > expected_length:
            raise LzfError(f"output exceeds the expected {expected_length} bytes")
    if len(out) != expected_length:
        raise LzfError(f"inflated to {len(out)} bytes, expected {expected_length}")
    return bytes(out)


def _emit_literals(out: bytearray, data: bytes, start: int, end: int) -> None:
    while start < end:
        run = min(_MAX_LITERAL, end - start)
        out.append(run - 1)
        out += data[start:start + run]
        start += run


def compress(data: bytes) -> bytes:
    """Greedy LZF: each 3-byte sequence is looked up at its most recent position."""
    size = len(data)
    out = bytearray()
    last_seen: dict[bytes, int] = {}
    literal_start = 0
    pos = 0
    while pos + 2 < size:
        triple = data[pos:pos + 3]
        ref = last_seen.get(triple)
        last_seen[triple] = pos
        if ref is None or pos - ref > _MAX_OFFSET:
            pos += 1
            continue
        limit = min(_MAX_MATCH, size - pos)
        length = 3
        while length < limit and data[ref + length] == data[pos + length]:
            length += 1
        _emit_literals(out, data, literal_start, pos)
        offset = pos - ref - 1
        code = length - 2
        if code < 7:
            out.append((code << 5) | (offset >> 8))
        else:
            out.append((7 << 5) | (offset >> 8))
            out.append(code - 7)
        out.append(offset & 0xFF)
        pos += length
        literal_start = pos
    _emit_literals(out, data, literal_start, size)
    return bytes(out)
