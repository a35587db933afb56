"""Set commands (Redis group "set"), following Redis 7.0.15's t_set.c.

Values are `keyspace.sets.SetValue` (a Python set that tracks the intset/hashtable encoding). Where
Redis's reply order is determined, ours is the same: an intset iterates in ascending numeric order,
so SMEMBERS of a small integer set, SSCAN of it, and the results Redis builds as a temporary intset
(SUNION, SDIFF, SPOP of the whole set) come out sorted. Hashtable order is unspecified on both sides.

Random picks (SPOP, SRANDMEMBER) follow Redis's cases: which count gives distinct members, when the
whole set is returned, and when SPOP rebuilds the remaining set (which may turn it back into an
intset).
"""

from __future__ import annotations

import random
from itertools import islice

from commands.args import LLONG_MAX, glob_match, try_int
from commands.generic import parse_cursor, parse_scan_options
from commands.registry import command
from keyspace.db import delete_destination, delete_if_empty, scan_snapshot
from keyspace.sets import (
    HashtableSet,
    SetValue,
    intset_limit,
    is_intset_member,
    ordered,
    set_from_members,
)
from protocol.errors import NOT_AN_INTEGER, SYNTAX_ERROR, WRONGTYPE, CommandError
from protocol.replies import SetReply

__all__ = ["parse_positive_long", "parse_range_long", "random_member"]

_SPOP_MOVE_STRATEGY_MUL = 5
_PICK_BY_SKIPPING = 4096
"""Above this size a single random member is found by skipping through the set in C (islice)
instead of copying it to a tuple; below it either is cheap."""


# -- argument helpers (getRangeLongFromObjectOrReply and friends) -----------------------------------

def parse_range_long(raw: bytes, low: int, high: int, message: str | None = None) -> int:
    """Redis's getRangeLongFromObjectOrReply: `message` (if given) replaces both error texts."""
    value = try_int(raw)
    if value is None:
        raise CommandError(message or NOT_AN_INTEGER)
    if not low <= value <= high:
        raise CommandError(message or f"ERR value is out of range, value must between {low} and {high}")
    return value


def parse_positive_long(raw: bytes, message: str | None = None) -> int:
    """Redis's getPositiveLongFromObjectOrReply."""
    return parse_range_long(raw, 0, LLONG_MAX, message or "ERR value is out of range, must be positive")


# -- value helpers ---------------------------------------------------------------------------------

def _writable(db, key: bytes) -> SetValue | None:
    """The set at `key` for a write (no hit/miss stats), as a SetValue; WRONGTYPE if not a set."""
    value = db.typed(key, set)
    if value is not None and not isinstance(value, SetValue):
        value = set_from_members(value, db.store.config)
        db.set(key, value, keep_ttl=True)
    return value


def random_member(value: set | dict) -> bytes:
    """A uniformly random member of a set (or field of a dict), without copying a large one."""
    size = len(value)
    if size > _PICK_BY_SKIPPING:
        return next(islice(iter(value), random.randrange(size), None))
    return random.choice(tuple(value))


def _would_be_intset(members, limit: int) -> bool:
    """Whether a set built by adding `members` would still be an intset (setTypeAdd's rules)."""
    return len(members) <= limit and all(map(is_intset_member, members))


def _intset_order(members, as_intset: bool) -> list[bytes]:
    items = list(members)
    if as_intset:
        items.sort(key=int)
    return items


def _store(db, dst: bytes, members: set, hashtable: bool, event: bytes) -> int:
    """Write a *STORE result (setKey drops the TTL) or delete `dst` when it is empty."""
    if members:
        value = (HashtableSet if hashtable else SetValue)(members)
        created = db.get(dst) is None
        db.set(dst, value)
        if created:
            db.notify("n", b"new", dst)
        db.notify("s", event, dst)
        db.store.dirty += 1
        return len(value)
    delete_destination(db, dst)
    return 0


# -- single-key commands ---------------------------------------------------------------------------

@command("SADD", arity=-3, flags="write denyoom fast", keys=(1, 1, 1), group="set")
def sadd(db, argv):
    """SADD key member [member ...] -- the number of members added."""
    key = argv[1]
    value = _writable(db, key)
    if value is None:
        value = SetValue()
        db.set(key, value)
        db.notify("n", b"new", key)
    elif value.hashtable and len(argv) == 3:  # the common case, without the conversion checks
        if argv[2] in value:
            return 0
        value.add(argv[2])
        db.notify("s", b"sadd", key)
        db.store.dirty += 1
        return 1
    added = value.add_members(argv[2:], intset_limit(db.store.config))
    if added:
        db.notify("s", b"sadd", key)
    db.store.dirty += added
    return added


@command("SREM", arity=-3, flags="write fast", keys=(1, 1, 1), group="set")
def srem(db, argv):
    """SREM key member [member ...] -- the number removed; an emptied set is deleted."""
    key = argv[1]
    value = db.typed(key, set)
    if value is None:
        return 0
    before = len(value)
    value.difference_update(argv[2:])
    removed = before - len(value)
    if removed:
        db.notify("s", b"srem", key)
    delete_if_empty(db, key, value)
    db.store.dirty += removed
    return removed


@command("SCARD", arity=2, flags="readonly fast", keys=(1, 1, 1), group="set")
def scard(db, argv):
    """SCARD key"""
    value = db.read(argv[1], set)
    return 0 if value is None else len(value)


@command("SISMEMBER", arity=3, flags="readonly fast", keys=(1, 1, 1), group="set")
def sismember(db, argv):
    """SISMEMBER key member -- 1 or 0."""
    value = db.read(argv[1], set)
    return 1 if value is not None and argv[2] in value else 0


@command("SMISMEMBER", arity=-3, flags="readonly fast", keys=(1, 1, 1), group="set")
def smismember(db, argv):
    """SMISMEMBER key member [member ...] -- a missing key is an empty set."""
    value = db.read(argv[1], set)
    if value is None:
        return [0] * (len(argv) - 2)
    return [1 if member in value else 0 for member in argv[2:]]


@command("SMEMBERS", arity=2, flags="readonly", keys=(1, 1, 1), group="set")
def smembers(db, argv):
    """SMEMBERS key -- SINTER of one key in Redis 7.0; a RESP3 set."""
    value = db.read(argv[1], set)
    if value is None:
        return SetReply()
    return SetReply(ordered(value))


@command("SMOVE", arity=4, flags="write fast", keys=(1, 2, 1), group="set")
def smove(db, argv):
    """SMOVE source destination member -- 1 if moved (or already there when source is destination)."""
    src_key, dst_key, member = argv[1], argv[2], argv[3]
    src = db.get(src_key)
    dst = db.get(dst_key)
    if src is None:
        return 0
    if not isinstance(src, set) or (dst is not None and not isinstance(dst, set)):
        raise CommandError(WRONGTYPE)
    if src is dst:
        return 1 if member in src else 0
    if member not in src:
        return 0
    src.remove(member)
    db.notify("s", b"srem", src_key)
    delete_if_empty(db, src_key, src)
    if dst is None:
        dst = SetValue()
        db.set(dst_key, dst)
        db.notify("n", b"new", dst_key)
    elif not isinstance(dst, SetValue):
        dst = _writable(db, dst_key)
    db.store.dirty += 1
    if dst.add_member(member, intset_limit(db.store.config)):
        db.store.dirty += 1
        db.notify("s", b"sadd", dst_key)
    else:
        db.unmodified(dst_key)      # Redis signals the destination only when the member was added
    return 1


@command("SPOP", arity=-2, flags="write fast", keys=(1, 1, 1), group="set")
def spop(db, argv):
    """SPOP key [count]"""
    if len(argv) == 3:
        return _spop_with_count(db, argv)
    if len(argv) > 3:
        raise CommandError(SYNTAX_ERROR)
    key = argv[1]
    value = db.typed(key, set)
    if value is None:
        return None
    size = len(value)
    if size == 1 or size > _PICK_BY_SKIPPING:
        member = value.pop()  # O(1); the order of a large set's hash table is pseudo-random
    else:
        member = random.choice(tuple(value))
        value.remove(member)
    db.notify("s", b"spop", key)
    delete_if_empty(db, key, value)
    db.propagate(b"SREM", key, member)  # the random choice is replayed exactly
    db.store.dirty += 1
    return member


def _spop_with_count(db, argv):
    """spopWithCountCommand: three strategies, which decide the reply order and the encoding left."""
    count = parse_positive_long(argv[2])
    key = argv[1]
    value = _writable(db, key)
    if value is None or count == 0:
        return SetReply()
    size = len(value)
    limit = intset_limit(db.store.config)
    if count >= size:
        # CASE 1: the whole set, replied through a temporary union set (sorted if an intset).
        members = _intset_order(value, _would_be_intset(value, limit))
        db.delete(key)
        db.notify("s", b"spop", key)
        db.notify("g", b"del", key)
        db.propagate(b"DEL", key)
        db.store.dirty += size
        return SetReply(members)
    db.notify("s", b"spop", key)
    db.store.dirty += count
    remaining = size - count
    if remaining * _SPOP_MOVE_STRATEGY_MUL > count:
        # CASE 2: pop `count` random members one by one.
        popped = random.sample(tuple(value), count)
        value.difference_update(popped)
        db.propagate(b"SREM", key, *popped)
        return SetReply(popped)
    # CASE 3: keep `remaining` random members in a new set (re-encoded), reply the rest in the
    # old set's iteration order.
    keep = set(random.sample(tuple(value), remaining))
    popped = [member for member in ordered(value) if member not in keep]
    value.intersection_update(keep)
    value.reencode(limit)
    db.propagate(b"SREM", key, *popped)
    return SetReply(popped)


@command("SRANDMEMBER", arity=-2, flags="readonly", keys=(1, 1, 1), group="set")
def srandmember(db, argv):
    """SRANDMEMBER key [count] -- a negative count may repeat members."""
    if len(argv) == 3:
        return _srandmember_with_count(db, argv)
    if len(argv) > 3:
        raise CommandError(SYNTAX_ERROR)
    value = db.read(argv[1], set)
    if value is None:
        return None
    return random_member(value)


def _srandmember_with_count(db, argv):
    wanted = parse_range_long(argv[2], -LLONG_MAX, LLONG_MAX)
    value = db.read(argv[1], set)
    if value is None or wanted == 0:
        return []
    if wanted < 0 or wanted == 1:
        # CASE 1: independent draws, repeats allowed.
        return random.choices(tuple(value), k=abs(wanted))
    if wanted >= len(value):
        # CASE 2: the whole set in iteration order.
        return ordered(value)
    # CASES 3 and 4: distinct members, in no particular order.
    return random.sample(tuple(value), wanted)


@command("SSCAN", arity=-3, flags="readonly", keys=(1, 1, 1), group="set")
def sscan(db, argv):
    """SSCAN key cursor [MATCH pattern] [COUNT count]

    An intset is returned whole with cursor 0, as Redis does for compact encodings. A hashtable
    set is iterated over a snapshot of its members taken at cursor 0 (keyspace.db.scan_snapshot):
    members present for the whole iteration are returned, members removed meanwhile are skipped.
    """
    cursor = parse_cursor(argv[2])
    value = db.read(argv[1], set)
    if value is None:
        return [b"0", []]
    pattern, count, _ = parse_scan_options(argv, 3, allow_type=False)
    if getattr(value, "hashtable", False):
        cache = getattr(value, "scan_cache", None)
        if cache is None:
            cache = value.scan_cache = {}
        cursor, batch = scan_snapshot(cache, cursor, lambda: list(value), count)
        members = [member for member in batch if member in value]
    else:
        cursor, members = 0, ordered(value)
    if pattern is not None:
        members = [member for member in members if glob_match(pattern, member)]
    return [b"%d" % cursor, members]


# -- multi-key commands ----------------------------------------------------------------------------

def _sinter(db, keys, dst: bytes | None = None, cardinality_only: bool = False, limit: int = 0):
    """sinterGenericCommand: every key is type-checked even after a missing one."""
    sets = []
    empty = False
    for key in keys:
        value = db.read(key, set)
        if value is None:
            empty = True
        else:
            sets.append(value)
    if empty:
        if dst is not None:
            delete_destination(db, dst)
            return 0
        return 0 if cardinality_only else SetReply()
    sets.sort(key=len)  # stable, like glibc's merge sort for small arrays
    smallest = sets[0]
    others = [s for s in sets[1:] if s is not smallest]
    result = smallest.intersection(*others) if others else set(smallest)
    if cardinality_only:
        return min(len(result), limit) if limit else len(result)
    if dst is not None:
        return _store(db, dst, result,
                      not _would_be_intset(result, intset_limit(db.store.config)), b"sinterstore")
    return SetReply(ordered(smallest, result))


def _sunion(db, keys, dst: bytes | None = None):
    found = [value for value in (db.read(key, set) for key in keys) if value is not None]
    result = set().union(*found)
    as_intset = _would_be_intset(result, intset_limit(db.store.config))
    if dst is not None:
        return _store(db, dst, result, not as_intset, b"sunionstore")
    return SetReply(_intset_order(result, as_intset))


def _sdiff(db, keys, dst: bytes | None = None):
    """sunionDiffGenericCommand for DIFF: the algorithm Redis picks decides the result's encoding."""
    sets = [db.read(key, set) for key in keys]
    first = sets[0]
    present = [value for value in sets if value is not None]
    result: set = set()
    hashtable = False
    limit = intset_limit(db.store.config)
    if first is not None and not any(value is first for value in sets[1:]):
        others = [value for value in sets[1:] if value is not None]
        result = first.difference(*others) if others else set(first)
        algo_one_work = len(first) * len(present) // 2
        algo_two_work = sum(len(value) for value in present)
        if algo_one_work > algo_two_work:
            # Algorithm 2 adds the whole first set before removing: its encoding sticks.
            hashtable = not _would_be_intset(first, limit)
    as_intset = not hashtable and _would_be_intset(result, limit)
    if dst is not None:
        return _store(db, dst, result, not as_intset, b"sdiffstore")
    return SetReply(_intset_order(result, as_intset))


@command("SINTER", arity=-2, flags="readonly", keys=(1, -1, 1), group="set")
def sinter(db, argv):
    """SINTER key [key ...]"""
    return _sinter(db, argv[1:])


@command("SINTERSTORE", arity=-3, flags="write denyoom", keys=(1, -1, 1), group="set")
def sinterstore(db, argv):
    """SINTERSTORE destination key [key ...]"""
    return _sinter(db, argv[2:], dst=argv[1])


def _sintercard_keys(argv: list[bytes]) -> list[int]:
    numkeys = try_int(argv[1]) if len(argv) > 1 else None
    if numkeys is None or numkeys < 1 or numkeys > len(argv) - 2:
        return []
    return list(range(2, 2 + numkeys))


@command("SINTERCARD", arity=-3, flags="readonly movablekeys", keys=(0, 0, 0), group="set",
         getkeys=_sintercard_keys)
def sintercard(db, argv):
    """SINTERCARD numkeys key [key ...] [LIMIT limit]"""
    numkeys = parse_range_long(argv[1], 1, LLONG_MAX, "ERR numkeys should be greater than 0")
    if numkeys > len(argv) - 2:
        raise CommandError("ERR Number of keys can't be greater than number of args")
    limit = 0
    j = 2 + numkeys
    while j < len(argv):
        if argv[j].lower() == b"limit" and j + 1 < len(argv):
            j += 1
            limit = parse_positive_long(argv[j], "ERR LIMIT can't be negative")
        else:
            raise CommandError(SYNTAX_ERROR)
        j += 1
    return _sinter(db, argv[2:2 + numkeys], cardinality_only=True, limit=limit)


@command("SUNION", arity=-2, flags="readonly", keys=(1, -1, 1), group="set")
def sunion(db, argv):
    """SUNION key [key ...]"""
    return _sunion(db, argv[1:])


@command("SUNIONSTORE", arity=-3, flags="write denyoom", keys=(1, -1, 1), group="set")
def sunionstore(db, argv):
    """SUNIONSTORE destination key [key ...]"""
    return _sunion(db, argv[2:], dst=argv[1])


@command("SDIFF", arity=-2, flags="readonly", keys=(1, -1, 1), group="set")
def sdiff(db, argv):
    """SDIFF key [key ...]"""
    return _sdiff(db, argv[1:])


@command("SDIFFSTORE", arity=-3, flags="write denyoom", keys=(1, -1, 1), group="set")
def sdiffstore(db, argv):
    """SDIFFSTORE destination key [key ...]"""
    return _sdiff(db, argv[2:], dst=argv[1])
