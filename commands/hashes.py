"""Hash commands (Redis group "hash"), following Redis 7.0.15's t_hash.c.

Values are `keyspace.hashes.HashValue` (a Python dict that tracks the listpack/hashtable encoding).
A small (listpack) hash replies in insertion order on both sides, so HGETALL, HKEYS, HVALS, HSCAN
and HRANDFIELD with a positive count match Redis exactly; a hashtable's order is unspecified.

HINCRBYFLOAT uses the long double emulation of commands.args, like INCRBYFLOAT.
"""

from __future__ import annotations

import random

from commands.args import (
    LLONG_MAX,
    LLONG_MIN,
    add_long_double,
    format_long_double,
    glob_match,
    parse_int,
    parse_long_double,
    try_int,
)
from commands.generic import parse_cursor, parse_scan_options
from commands.registry import command
from commands.sets import parse_range_long, random_member
from keyspace.db import delete_if_empty, scan_snapshot
from keyspace.hashes import HashValue, hash_from_items, listpack_limits
from protocol import replies
from protocol.errors import OVERFLOW, SYNTAX_ERROR, CommandError, wrong_arity
from protocol.replies import OK

__all__ = ["PairsReply"]


# -- the HRANDFIELD WITHVALUES reply shape ----------------------------------------------------------

if hasattr(replies, "PairsReply"):
    PairsReply = replies.PairsReply
else:
    class PairsReply(list):
        """[(field, value), ...]: a flat array in RESP2, an array of 2-element arrays in RESP3.

        protocol.replies has no such type yet (ZRANGE WITHSCORES needs the same shape); until it
        does, this registers its two encodings in the reply tables.
        """

        __slots__ = ()

    def _register_pairs() -> None:
        for proto, nested in ((2, False), (3, True)):
            table = replies._TABLES[proto]

            def encode_pairs(value, out, table=table, nested=nested):
                out.append(b"*%d\r\n" % (len(value) if nested else 2 * len(value)))
                for first, second in value:
                    if nested:
                        out.append(b"*2\r\n")
                    replies._encode_into(first, out, table)
                    replies._encode_into(second, out, table)

            table[PairsReply] = encode_pairs

    _register_pairs()


# -- helpers -----------------------------------------------------------------------------------------

_NOT_INTEGER = "ERR hash value is not an integer"
_NOT_FLOAT = "ERR hash value is not a float"
_HRANDFIELD_SUB_STRATEGY_MUL = 3
"""Below count * 3 <= HLEN, Redis samples a listpack in place (keeping its order)."""


def _writable(db, key: bytes) -> HashValue | None:
    """The hash at `key` for a write (no hit/miss stats), as a HashValue; WRONGTYPE if not a hash."""
    value = db.typed(key, dict)
    if value is not None and not isinstance(value, HashValue):
        value = hash_from_items(value.items(), db.store.config)
        db.set(key, value, keep_ttl=True)
    return value


def _create(db, key: bytes) -> HashValue:
    value = HashValue()
    db.set(key, value)
    db.notify("n", b"new", key)
    return value


# -- writes ------------------------------------------------------------------------------------------

def _hset(db, argv) -> int:
    if len(argv) % 2:
        raise wrong_arity(argv[0])
    key = argv[1]
    value = _writable(db, key)
    if value is None:
        value = _create(db, key)
    before = len(value)
    if len(argv) == 4:
        value[argv[2]] = argv[3]
        if not value.hashtable:
            max_entries, max_value = listpack_limits(db.store.config)
            if len(argv[2]) > max_value or len(argv[3]) > max_value or len(value) > max_entries:
                value.to_hashtable()
        db.notify("h", b"hset", key)
        db.store.dirty += 1
        return len(value) - before
    for i in range(2, len(argv), 2):
        value[argv[i]] = argv[i + 1]
    if not value.hashtable:
        max_entries, max_value = listpack_limits(db.store.config)
        if len(value) > max_entries or max(map(len, argv[2:])) > max_value:
            value.to_hashtable()
    db.notify("h", b"hset", key)
    db.store.dirty += (len(argv) - 2) // 2
    return len(value) - before


@command("HSET", arity=-4, flags="write denyoom fast", keys=(1, 1, 1), group="hash")
def hset(db, argv):
    """HSET key field value [field value ...] -- the number of new fields."""
    return _hset(db, argv)


@command("HMSET", arity=-4, flags="write denyoom fast", keys=(1, 1, 1), group="hash")
def hmset(db, argv):
    """HMSET key field value [field value ...] -- the old name of HSET, replying OK."""
    _hset(db, argv)
    return OK


@command("HSETNX", arity=4, flags="write denyoom fast", keys=(1, 1, 1), group="hash")
def hsetnx(db, argv):
    """HSETNX key field value -- 1 if set; an existing field is left alone (and not re-encoded)."""
    key, field = argv[1], argv[2]
    value = _writable(db, key)
    if value is None:
        value = _create(db, key)
    elif field in value:
        return 0
    value.put(field, argv[3], db.store.config)
    db.notify("h", b"hset", key)
    db.store.dirty += 1
    return 1


@command("HDEL", arity=-3, flags="write fast", keys=(1, 1, 1), group="hash")
def hdel(db, argv):
    """HDEL key field [field ...] -- the number removed; an emptied hash is deleted."""
    key = argv[1]
    value = db.typed(key, dict)
    if value is None:
        return 0
    deleted = 0
    for field in argv[2:]:
        if value.pop(field, None) is not None:
            deleted += 1
            if not value:
                break
    if deleted:
        db.notify("h", b"hdel", key)
        delete_if_empty(db, key, value)
    db.store.dirty += deleted
    return deleted


@command("HINCRBY", arity=4, flags="write denyoom fast", keys=(1, 1, 1), group="hash")
def hincrby(db, argv):
    """HINCRBY key field increment"""
    increment = parse_int(argv[3])
    key, field = argv[1], argv[2]
    value = _writable(db, key)
    current = 0
    if value is not None:
        old = value.get(field)
        if old is not None:
            current = try_int(old)
            if current is None:
                raise CommandError(_NOT_INTEGER)
    result = current + increment
    if not LLONG_MIN <= result <= LLONG_MAX:
        raise CommandError(OVERFLOW)
    if value is None:
        value = _create(db, key)
    value.put(field, b"%d" % result, db.store.config)
    db.notify("h", b"hincrby", key)
    db.store.dirty += 1
    return result


@command("HINCRBYFLOAT", arity=4, flags="write denyoom fast", keys=(1, 1, 1), group="hash")
def hincrbyfloat(db, argv):
    """HINCRBYFLOAT key field increment -- long double arithmetic, "%.17Lf" trimmed, like Redis."""
    increment = parse_long_double(argv[3])
    if isinstance(increment, float):  # only +-inf are floats; NaN does not parse
        raise CommandError("ERR value is NaN or Infinity")
    key, field = argv[1], argv[2]
    value = _writable(db, key)
    current = 0
    if value is not None:
        old = value.get(field)
        if old is not None:
            try:
                current = parse_long_double(old)
            except CommandError:
                raise CommandError(_NOT_FLOAT) from None
    result = add_long_double(current, increment)
    if isinstance(result, float):
        raise CommandError("ERR increment would produce NaN or Infinity")
    text = format_long_double(result)
    if value is None:
        value = _create(db, key)
    value.put(field, text, db.store.config)
    db.notify("h", b"hincrbyfloat", key)
    db.propagate(b"HSET", key, field, text)  # the exact result, not the float arithmetic
    db.store.dirty += 1
    return text


# -- reads -------------------------------------------------------------------------------------------

@command("HGET", arity=3, flags="readonly fast", keys=(1, 1, 1), group="hash")
def hget(db, argv):
    """HGET key field"""
    value = db.read(argv[1], dict)
    return None if value is None else value.get(argv[2])


@command("HMGET", arity=-3, flags="readonly fast", keys=(1, 1, 1), group="hash")
def hmget(db, argv):
    """HMGET key field [field ...] -- nil for each missing field (all of them for a missing key)."""
    value = db.read(argv[1], dict)
    if value is None:
        return [None] * (len(argv) - 2)
    get = value.get
    return [get(field) for field in argv[2:]]


@command("HEXISTS", arity=3, flags="readonly fast", keys=(1, 1, 1), group="hash")
def hexists(db, argv):
    """HEXISTS key field -- 1 or 0."""
    value = db.read(argv[1], dict)
    return 1 if value is not None and argv[2] in value else 0


@command("HLEN", arity=2, flags="readonly fast", keys=(1, 1, 1), group="hash")
def hlen(db, argv):
    """HLEN key"""
    value = db.read(argv[1], dict)
    return 0 if value is None else len(value)


@command("HSTRLEN", arity=3, flags="readonly fast", keys=(1, 1, 1), group="hash")
def hstrlen(db, argv):
    """HSTRLEN key field -- 0 for a missing field."""
    value = db.read(argv[1], dict)
    if value is None:
        return 0
    found = value.get(argv[2])
    return 0 if found is None else len(found)


@command("HKEYS", arity=2, flags="readonly", keys=(1, 1, 1), group="hash")
def hkeys(db, argv):
    """HKEYS key"""
    value = db.read(argv[1], dict)
    return [] if value is None else list(value)


@command("HVALS", arity=2, flags="readonly", keys=(1, 1, 1), group="hash")
def hvals(db, argv):
    """HVALS key"""
    value = db.read(argv[1], dict)
    return [] if value is None else list(value.values())


@command("HGETALL", arity=2, flags="readonly", keys=(1, 1, 1), group="hash")
def hgetall(db, argv):
    """HGETALL key -- a map in RESP3, a flat array in RESP2."""
    value = db.read(argv[1], dict)
    return {} if value is None else dict(value)


@command("HRANDFIELD", arity=-2, flags="readonly", keys=(1, 1, 1), group="hash")
def hrandfield(db, argv):
    """HRANDFIELD key [count [WITHVALUES]]

    A negative count (or 1) draws independently, with repeats; a positive count gives distinct
    fields: all of them in order when count >= HLEN; when count is at least a third of HLEN a
    random sample in random order; below that, an in-order sample of a listpack hash (Redis samples
    the listpack in place) or a random one of a hashtable. WITHVALUES pairs are nested arrays in
    RESP3.
    """
    if len(argv) == 2:
        value = db.read(argv[1], dict)
        if value is None:
            return None
        return random_member(value)
    wanted = parse_range_long(argv[2], -LLONG_MAX, LLONG_MAX)
    with_values = False
    if len(argv) > 4 or (len(argv) == 4 and argv[3].lower() != b"withvalues"):
        raise CommandError(SYNTAX_ERROR)
    if len(argv) == 4:
        with_values = True
        if not -(LLONG_MAX // 2) <= wanted <= LLONG_MAX // 2:
            raise CommandError("ERR value is out of range")
    value = db.read(argv[1], dict)
    if value is None or wanted == 0:
        return []
    if wanted < 0 or wanted == 1:
        picked = random.choices(tuple(value.items()), k=abs(wanted))
    elif wanted >= len(value):
        picked = list(value.items())
    else:
        items = tuple(value.items())
        if wanted * _HRANDFIELD_SUB_STRATEGY_MUL > len(items) or getattr(value, "hashtable", False):
            picked = random.sample(items, wanted)   # through a temporary dict: no order
        else:
            # a listpack samples in place, so the fields keep the hash's order
            picked = [items[i] for i in sorted(random.sample(range(len(items)), wanted))]
    if with_values:
        return PairsReply(picked)
    return [field for field, _ in picked]


@command("HSCAN", arity=-3, flags="readonly", keys=(1, 1, 1), group="hash")
def hscan(db, argv):
    """HSCAN key cursor [MATCH pattern] [COUNT count]

    A listpack hash is returned whole with cursor 0, as Redis does. A hashtable hash is iterated over
    a snapshot of its fields taken at cursor 0 (keyspace.db.scan_snapshot): fields present for the
    whole iteration are returned, with their current values; fields deleted meanwhile are skipped.
    """
    cursor = parse_cursor(argv[2])
    value = db.read(argv[1], dict)
    if value is None:
        return [b"0", []]
    pattern, count, _ = parse_scan_options(argv, 3, allow_type=False)
    if getattr(value, "hashtable", False):
        cache = getattr(value, "scan_cache", None)
        if cache is None:
            cache = value.scan_cache = {}
        cursor, fields = scan_snapshot(cache, cursor, lambda: list(value), count)
    else:
        cursor, fields = 0, value
    out = []
    for field in fields:
        if pattern is not None and not glob_match(pattern, field):
            continue
        found = value.get(field)
        if found is not None:
            out.append(field)
            out.append(found)
    return [b"%d" % cursor, out]
