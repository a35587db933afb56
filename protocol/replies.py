"""Reply values and their RESP2/RESP3 encodings.

Handlers return plain Python values so that the hot path allocates nothing special:

| value                 | RESP2                 | RESP3          |
|-----------------------|-----------------------|----------------|
| `bytes`               | bulk string           | bulk string    |
| `str`                 | simple string `+..`   | simple string  |
| `int`                 | integer               | integer        |
| `bool`                | integer 1/0           | boolean        |
| `float`               | bulk `%.17g`          | double         |
| `None`                | null bulk `$-1`       | null `_`       |
| `list` / `tuple`      | array                 | array          |
| `dict`                | flat array            | map            |
| `SetReply`            | array                 | set            |
| `Verbatim`            | bulk string           | verbatim `txt` |
| `Push`                | array                 | push           |
| `NULL_ARRAY`          | null array `*-1`      | null `_`       |
| `ErrorReply`          | error                 | error          |
"""

from __future__ import annotations

import math

__all__ = [
    "SetReply", "Verbatim", "Push", "Frames", "ErrorReply", "NULL_ARRAY", "DEFERRED", "OK", "QUEUED", "PONG",
    "encode", "encode_error", "format_double",
]


class SetReply(list):
    """An unordered collection: a RESP3 set, a plain array in RESP2."""

    __slots__ = ()


class Push(list):
    """Out-of-band data (pub/sub messages): a RESP3 push frame, a plain array in RESP2."""

    __slots__ = ()


class Frames(list):
    """Several top-level replies to one command (SUBSCRIBE a b answers once per channel)."""

    __slots__ = ()


class Verbatim(bytes):
    """Human-readable text (INFO, CLIENT LIST): RESP3 verbatim `txt`, a bulk string in RESP2."""

    __slots__ = ()


class ErrorReply(str):
    """An error reply; the text carries its prefix ("ERR ...")."""

    __slots__ = ()


class _NullArray:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NULL_ARRAY"


NULL_ARRAY = _NullArray()


class _Deferred:
    __slots__ = ()

    def __repr__(self) -> str:
        return "DEFERRED"


DEFERRED = _Deferred()
"""Returned by a LOCAL handler that queued its own reply slot and will fill it later (EXEC)."""
OK = "OK"
QUEUED = "QUEUED"
PONG = "PONG"


def format_double(value: float) -> bytes:
    """Redis 7.0 `addReplyDouble`: `%.17g`, with inf/-inf/nan spelled out."""
    if math.isinf(value):
        return b"inf" if value > 0 else b"-inf"
    if value != value:
        return b"nan"
    return b"%.17g" % value


def encode_error(message: str) -> bytes:
    return b"-" + message.replace("\r", " ").replace("\n", " ").encode() + b"\r\n"


def _bulk(value: bytes, out: list) -> None:
    out.append(b"$%d\r\n%s\r\n" % (len(value), value))


def _simple(value: str, out: list) -> None:
    out.append(b"+" + value.encode() + b"\r\n")


def _integer(value: int, out: list) -> None:
    out.append(b":%d\r\n" % value)


def _error(value: ErrorReply, out: list) -> None:
    out.append(encode_error(value))


_BYTES_ONLY = {bytes}
_BULK_HEADS = [b"$%d" % n for n in range(1024)]
"""The "$<len>" heads of short bulk strings, ready made."""


def _build(resp3: bool) -> dict:
    """Type-dispatch table for one protocol version; `_encode_into` looks up `type(value)` once."""
    table: dict = {bytes: _bulk, str: _simple, int: _integer, ErrorReply: _error}

    def array(value, out, prefix=b"*"):
        out.append(b"%s%d\r\n" % (prefix, len(value)))
        if len(value) > 4 and set(map(type, value)) == _BYTES_ONLY:
            # Arrays of plain bulk strings (LRANGE, SMEMBERS, HGETALL ...): "$<len>" heads and
            # the values interleaved, joined by CRLF in C; no per-item formatting.
            try:
                heads = [_BULK_HEADS[n] for n in map(len, value)]
            except IndexError:
                heads = [b"$%d" % n for n in map(len, value)]
            parts = [b""] * (2 * len(value))
            parts[::2] = heads
            parts[1::2] = value
            out.append(b"\r\n".join(parts))
            out.append(b"\r\n")
            return
        for item in value:
            fn = table.get(type(item))
            if fn is None:
                _encode_slow(item, out, table)
            else:
                fn(item, out)

    if resp3:
        def null(value, out):
            out.append(b"_\r\n")

        def boolean(value, out):
            out.append(b"#t\r\n" if value else b"#f\r\n")

        def double(value, out):
            out.append(b"," + format_double(value) + b"\r\n")

        def mapping(value, out):
            out.append(b"%%%d\r\n" % len(value))
            for k, v in value.items():
                _encode_into(k, out, table)
                _encode_into(v, out, table)

        def set_(value, out):
            array(value, out, b"~")

        def push(value, out):
            array(value, out, b">")

        def verbatim(value, out):
            out.append(b"=%d\r\ntxt:%s\r\n" % (len(value) + 4, value))

        table.update({
            type(None): null, _NullArray: null, bool: boolean, float: double, dict: mapping,
            SetReply: set_, Push: push, Verbatim: verbatim,
        })
    else:
        def null(value, out):
            out.append(b"$-1\r\n")

        def null_array(value, out):
            out.append(b"*-1\r\n")

        def boolean(value, out):
            out.append(b":1\r\n" if value else b":0\r\n")

        def double(value, out):
            _bulk(format_double(value), out)

        def mapping(value, out):
            out.append(b"*%d\r\n" % (2 * len(value)))
            for k, v in value.items():
                _encode_into(k, out, table)
                _encode_into(v, out, table)

        def verbatim(value, out):
            _bulk(bytes(value), out)

        table.update({
            type(None): null, _NullArray: null_array, bool: boolean, float: double,
            dict: mapping, SetReply: array, Push: array, Verbatim: verbatim,
        })
    def frames(value, out):
        for item in value:
            _encode_into(item, out, table)

    table[list] = array
    table[tuple] = array
    table[Frames] = frames
    return table


def _encode_slow(value, out: list, table: dict) -> None:
    """Subclasses not in the table (e.g. a bytes subclass) fall back to their nearest base."""
    for base in type(value).__mro__[1:]:
        fn = table.get(base)
        if fn is not None:
            fn(value, out)
            return
    raise TypeError(f"cannot encode reply of type {type(value).__name__}")


def _encode_into(value, out: list, table: dict) -> None:
    fn = table.get(type(value))
    if fn is None:
        _encode_slow(value, out, table)
    else:
        fn(value, out)


_TABLES = {2: _build(False), 3: _build(True)}


def encode(value, proto: int = 2) -> bytes:
    """Encode one reply for a connection speaking `proto` (2 or 3)."""
    out: list = []
    _encode_into(value, out, _TABLES[proto])
    return out[0] if len(out) == 1 else b"".join(out)
