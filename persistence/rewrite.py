"""A dataset snapshot as the shortest command stream that rebuilds it (an AOF base in RESP).

Like Redis's rewriteAppendOnlyFileRio: one SELECT per database, variadic commands with at most 64
items each (RPUSH, SADD, HSET, ZADD), and PEXPIREAT for keys with a TTL. Used when
`aof-use-rdb-preamble no`; with the preamble the base is an RDB (persistence/rdb.py).
"""

from __future__ import annotations

from collections.abc import Iterable

import hiredis

from protocol.replies import format_double

__all__ = ["rewrite_commands"]

_BATCH = 64  # AOF_REWRITE_ITEMS_PER_CMD


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def rewrite_commands(dbs: Iterable[tuple[int, Iterable[tuple[bytes, object, int | None]]]],
                     functions: Iterable[bytes] = ()) -> bytes:
    pack = hiredis.pack_command
    out: list[bytes] = [pack((b"FUNCTION", b"LOAD", code)) for code in functions]
    for db_index, items in dbs:
        started = False
        for key, value, expire in items:
            if not started:
                out.append(pack(("SELECT", str(db_index))))
                started = True
            if isinstance(value, bytes):
                out.append(pack((b"SET", key, value)))
            elif hasattr(value, "scores"):
                pairs = []
                for member, score in value.scores.items():
                    pairs += (format_double(score), member)
                for chunk in _chunks(pairs, 2 * _BATCH):
                    out.append(pack((b"ZADD", key, *chunk)))
            elif isinstance(value, dict):
                flat = []
                for field, val in value.items():
                    flat += (field, val)
                for chunk in _chunks(flat, 2 * _BATCH):
                    out.append(pack((b"HSET", key, *chunk)))
            elif isinstance(value, (set, frozenset)):
                for chunk in _chunks(list(value), _BATCH):
                    out.append(pack((b"SADD", key, *chunk)))
            else:  # a list
                for chunk in _chunks(list(value), _BATCH):
                    out.append(pack((b"RPUSH", key, *chunk)))
            if expire is not None:
                out.append(pack((b"PEXPIREAT", key, str(expire))))
    return b"".join(out)
