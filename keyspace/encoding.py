"""OBJECT ENCODING: the internal encoding Redis 7.0 would use for the same value.

Each value type registers a function `(value, config) -> str`; strings are handled here, following
tryObjectEncoding: integers up to 20 chars are `int`, up to 44 bytes `embstr`, longer `raw`, and the
results of APPEND/SETRANGE are always `raw`.
"""

from __future__ import annotations

from collections.abc import Callable

from keyspace.db import RawString

__all__ = ["EmbString", "object_encoding", "register_encoding", "is_shared_integer"]

_EMBSTR_LIMIT = 44


class EmbString(bytes):
    """A string created without tryObjectEncoding (INCRBYFLOAT): never `int`."""

    __slots__ = ()


def _as_int(value: bytes) -> int | None:
    if len(value) > 20 or not value:
        return None
    try:
        number = int(value)
    except ValueError:
        return None
    if b"%d" % number != value or not -(2**63) <= number < 2**63:
        return None
    return number


def is_shared_integer(value: bytes) -> bool:
    """Redis shares the objects for 0..9999 (refcount INT_MAX) when no maxmemory is set."""
    if type(value) is not bytes:
        return False
    number = _as_int(value)
    return number is not None and 0 <= number < 10000


def _string_encoding(value: bytes, config: dict) -> str:
    kind = type(value)
    if kind is RawString:
        return "raw"
    if kind is not EmbString and _as_int(value) is not None:
        return "int"
    return "embstr" if len(value) <= _EMBSTR_LIMIT else "raw"


_ENCODERS: dict[type, Callable[[object, dict], str]] = {
    bytes: _string_encoding, RawString: _string_encoding, EmbString: _string_encoding,
}


def register_encoding(cls: type, fn: Callable[[object, dict], str]) -> None:
    _ENCODERS[cls] = fn


def object_encoding(value, config: dict) -> str:
    fn = _ENCODERS.get(type(value))
    if fn is None:
        for base in type(value).__mro__:
            fn = _ENCODERS.get(base)
            if fn is not None:
                break
        else:
            raise TypeError(f"no encoding known for {type(value).__name__}")
    return fn(value, config)
