"""DEBUG DIGEST and DEBUG DIGEST-VALUE, bit-for-bit as Redis 7.0 computes them.

The test suite of Redis (and ours) compares whole datasets by digest, so the result must
match a real redis-server exactly. Redis 7.0 builds it from SHA1 with two primitives:

* ``xor``: ``acc ^= SHA1(data)``. Commutative, so used for unordered things (set members,
  hash fields, zset members, the keys of a database).
* ``mix``: ``acc = SHA1(acc ^ SHA1(data))``. Order-sensitive, so used for sequences (list
  elements, key then type then value, the field then value of one hash entry).

Per value, starting from the caller's accumulator: mix the type code as a 4-byte
big-endian integer, then the payload (string: mix; list: mix each element head to tail;
set: xor each member; hash and zset: xor a per-entry digest built by mixing field/member
then value/score into zero), then xor ``"!!expire!!"`` if the key has a TTL. Scores are
written with ``"%.17g"`` in 7.0 (7.2 switched to a shortest-round-trip format). Integer
encoded strings are digested in their decimal string form, so the encoding never shows.

A dataset digest starts at zero; for every non-empty database in ascending id it mixes
the id (4-byte big-endian), then xors in each key's digest (mix key, then the value rules
above, from zero). Key order inside a database therefore does not matter, database order
does. An empty dataset digests to forty zeros.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "EMPTY_DIGEST_HEX",
    "dataset_digest",
    "digest_value_replies",
    "format_score",
    "value_digest",
]

EMPTY_DIGEST_HEX = "0" * 40
"""What Redis replies for an empty dataset or for DIGEST-VALUE of a missing key."""

_ZERO = bytes(20)
_EXPIRE_MARK = b"!!expire!!"

# Redis object type codes (OBJ_STRING ... OBJ_HASH in server.h), big-endian as htonl gives.
_TYPE_STRING = (0).to_bytes(4, "big")
_TYPE_LIST = (1).to_bytes(4, "big")
_TYPE_SET = (2).to_bytes(4, "big")
_TYPE_ZSET = (3).to_bytes(4, "big")
_TYPE_HASH = (4).to_bytes(4, "big")


def _sha1(data: bytes) -> bytes:
    return hashlib.sha1(data).digest()


def _xor(acc: bytes, data: bytes) -> bytes:
    """acc ^ SHA1(data): the order-free combination."""
    return (int.from_bytes(acc, "big") ^ int.from_bytes(_sha1(data), "big")).to_bytes(20, "big")


def _mix(acc: bytes, data: bytes) -> bytes:
    """SHA1(acc ^ SHA1(data)): the order-sensitive combination."""
    return _sha1(_xor(acc, data))


def _xor_raw(acc: int, digest: bytes) -> int:
    """acc ^ SHA1(digest) on an int accumulator, for folding finished sub-digests."""
    return acc ^ int.from_bytes(_sha1(digest), "big")


def format_score(score: float) -> bytes:
    """A zset score as Redis 7.0's digest writes it: C ``%.17g`` ("inf", "-inf", "-0")."""
    return b"%.17g" % score


def _as_bytes(item: Any) -> bytes:
    """Element bytes; ints are digested in decimal like Redis's int-encoded strings."""
    if isinstance(item, bytes):
        return bytes(item)
    if isinstance(item, (bytearray, memoryview)):
        return bytes(item)
    if isinstance(item, int) and not isinstance(item, bool):
        return str(item).encode()
    raise TypeError(f"cannot digest element of type {type(item).__name__}")


def _mix_value(acc: bytes, value: Any) -> bytes:
    """Mix the type code and payload of one value into ``acc`` (xorObjectDigest sans expire)."""
    if isinstance(value, (bytes, bytearray, memoryview)) or (
        isinstance(value, int) and not isinstance(value, bool)
    ):
        return _mix(_mix(acc, _TYPE_STRING), _as_bytes(value))
    if isinstance(value, (deque, list)):
        acc = _mix(acc, _TYPE_LIST)
        for element in value:
            acc = _mix(acc, _as_bytes(element))
        return acc
    if isinstance(value, (set, frozenset)):
        acc = _mix(acc, _TYPE_SET)
        folded = int.from_bytes(acc, "big")
        for member in value:
            folded ^= int.from_bytes(_sha1(_as_bytes(member)), "big")
        return folded.to_bytes(20, "big")
    if isinstance(value, dict):
        acc = _mix(acc, _TYPE_HASH)
        folded = int.from_bytes(acc, "big")
        for field, field_value in value.items():
            entry = _mix(_mix(_ZERO, _as_bytes(field)), _as_bytes(field_value))
            folded = _xor_raw(folded, entry)
        return folded.to_bytes(20, "big")
    scores = getattr(value, "scores", None)
    if isinstance(scores, dict):
        acc = _mix(acc, _TYPE_ZSET)
        folded = int.from_bytes(acc, "big")
        for member, score in scores.items():
            entry = _mix(_mix(_ZERO, _as_bytes(member)), format_score(score))
            folded = _xor_raw(folded, entry)
        return folded.to_bytes(20, "big")
    raise TypeError(f"cannot digest value of type {type(value).__name__}")


def _finish(acc: bytes, expire_ms: int | None) -> bytes:
    """Redis only records *that* a TTL exists, never its time, so replicas agree."""
    return _xor(acc, _EXPIRE_MARK) if expire_ms is not None else acc


def value_digest(value: Any, expire_ms: int | None = None) -> bytes:
    """The 20 raw bytes DEBUG DIGEST-VALUE reports for one value.

    Redis 7.0 does not mix in the key name, but it does xor in the expire marker when the
    key has a TTL, so pass ``expire_ms`` for keys that have one.
    """
    return _finish(_mix_value(_ZERO, value), expire_ms)


def _key_digest(key: bytes, value: Any, expire_ms: int | None) -> bytes:
    return _finish(_mix_value(_mix(_ZERO, _as_bytes(key)), value), expire_ms)


def dataset_digest(items: Iterable[tuple[int, bytes, Any, int | None]]) -> str:
    """The 40-hex-digit DEBUG DIGEST of ``(db_index, key, value, expire_ms)`` items.

    Item order is irrelevant: databases are processed in ascending id and keys inside one
    database are xored. Like Redis, callers decide whether logically expired keys that are
    still stored count (Redis counts them: it walks the dict without expiring).
    """
    per_db: dict[int, int] = {}
    for db_index, key, value, expire_ms in items:
        # Like every aggregate, the database xors in SHA1 of each finished key digest.
        per_db[db_index] = _xor_raw(per_db.get(db_index, 0), _key_digest(key, value, expire_ms))
    final = _ZERO
    for db_index in sorted(per_db):
        final = _mix(final, db_index.to_bytes(4, "big"))
        final = (int.from_bytes(final, "big") ^ per_db[db_index]).to_bytes(20, "big")
    return final.hex()


def digest_value_replies(
    values: Iterable[Any], expires: Sequence[int | None] | None = None
) -> list[str]:
    """Hex replies for DEBUG DIGEST-VALUE key [key ...]; ``None`` marks a missing key.

    ``expires``, when given, runs parallel to ``values`` and holds each key's expire time
    (or ``None``); a missing key replies forty zeros.
    """
    replies: list[str] = []
    for position, value in enumerate(values):
        if value is None:
            replies.append(EMPTY_DIGEST_HEX)
            continue
        expire_ms = expires[position] if expires is not None else None
        replies.append(value_digest(value, expire_ms).hex())
    return replies
