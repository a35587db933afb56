"""The hash value: a Python `dict` of bytes -> bytes that remembers which encoding Redis 7.0 would use.

Redis 7.0 keeps a hash as a `listpack` until it gets more than `hash-max-listpack-entries` fields, or
a field or value longer than `hash-max-listpack-value` bytes is written; then it converts it to a
`hashtable`, for good (deleting fields never converts back; an emptied hash is deleted, so the next
write starts a new listpack).

A listpack is an array in insertion order, where overwriting a field keeps its place and deleting
removes it. A Python dict behaves the same, so HGETALL/HKEYS/HVALS/HSCAN of a small hash reply in
exactly Redis's order.
"""

from __future__ import annotations

from collections.abc import Iterable

from keyspace.encoding import register_encoding

__all__ = ["HashValue", "HashtableHash", "hash_from_items", "listpack_limits"]


def listpack_limits(config: dict) -> tuple[int, int]:
    """(max fields, max bytes per field or value) of a listpack hash."""
    return config.get("hash-max-listpack-entries", 512), config.get("hash-max-listpack-value", 64)


class HashValue(dict):
    """A Redis hash, listpack-encoded; `HashtableHash` is the same value once converted.

    The encoding is the class, so a new hash costs no Python-level __init__ and a conversion is a
    class change (`to_hashtable`): nothing is stored per value but the optional HSCAN cache.
    """

    __slots__ = ("scan_cache",)
    hashtable = False
    """True once Redis would have converted the hash to a hashtable (see `HashtableHash`)."""

    def to_hashtable(self) -> None:
        self.__class__ = HashtableHash

    def copy(self) -> HashValue:
        """COPY keeps the encoding (and the order), as Redis's hashTypeDup does."""
        return type(self)(self)

    def __reduce__(self):
        return (type(self), (list(self.items()),))

    def put(self, field: bytes, value: bytes, config: dict) -> bool:
        """Set one field (HSETNX, HINCRBY, HINCRBYFLOAT); True if it is new.

        Redis converts before writing a field or value that is too long, and after the field count
        exceeds the limit.
        """
        new = field not in self
        self[field] = value
        if not self.hashtable:
            max_entries, max_value = listpack_limits(config)
            if len(field) > max_value or len(value) > max_value or len(self) > max_entries:
                self.__class__ = HashtableHash
        return new


class HashtableHash(HashValue):
    """A Redis hash that Redis would hold as a hashtable: sticky, whatever is deleted later."""

    __slots__ = ()
    hashtable = True


def hash_from_items(items: Iterable[tuple[bytes, bytes]], config: dict) -> HashValue:
    """A fresh hash with these fields, encoded as Redis would after writing them in order."""
    value = HashValue(items)
    max_entries, max_value = listpack_limits(config)
    if len(value) > max_entries or any(
            len(f) > max_value or len(v) > max_value for f, v in value.items()):
        value.__class__ = HashtableHash
    return value


def _plain_encoding(value: dict, config: dict) -> str:
    return "hashtable" if hash_from_items(value.items(), config).hashtable else "listpack"


def _encoding(value: HashValue, config: dict) -> str:
    return "hashtable" if value.hashtable else "listpack"


register_encoding(HashValue, _encoding)
register_encoding(HashtableHash, _encoding)
register_encoding(dict, _plain_encoding)
