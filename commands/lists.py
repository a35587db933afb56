"""List commands (Redis group "list"), following Redis 7.0's t_list.c.

Lists are `collections.deque`s of bytes (see keyspace/lists.py); an emptied list is deleted at once.
The order of checks matters for error replies and follows Redis command by command: LRANGE, LTRIM,
LREM, LPOS and the *POP commands parse their numbers before looking at the key, LINDEX and LSET look
at the key first. Write paths use `db.typed` (Redis's lookupKeyWrite counts no hits or misses),
reads use `db.read`.

Every push calls `db.signal_ready(key)` so that clients blocked on the key are served. Blocking
commands try to serve at once and otherwise raise `Block` (commands/blocking.py). BLMOVE and
BRPOPLPUSH reply a null *array* on timeout but a null *bulk* inside MULTI, as Redis 7.0 does.
"""

from __future__ import annotations

from collections import deque

from commands.args import try_int
from commands.blocking import Block, block_or_reply, parse_timeout
from commands.registry import command
from keyspace.lists import list_range, pop_many, positions, remove, trim
from protocol.errors import (
    NO_SUCH_KEY, NOT_AN_INTEGER, OUT_OF_RANGE, SYNTAX_ERROR, CommandError, wrong_arity,
)
from protocol.replies import NULL_ARRAY, OK
from keyspace.db import delete_if_empty

__all__: list[str] = []

_MUST_BE_POSITIVE = "ERR value is out of range, must be positive"
_RANK_ZERO = ("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... "
              "or use negative to start from the end of the list")


# -- argument parsing ----------------------------------------------------------------------------

def _long(raw: bytes) -> int:
    """getLongFromObjectOrReply with the default message."""
    value = try_int(raw)
    if value is None:
        raise CommandError(NOT_AN_INTEGER)
    return value


def _ranged(raw: bytes, low: int, error: str) -> int:
    """getRangeLongFromObjectOrReply(low, LONG_MAX, msg): one message for bad syntax and range."""
    value = try_int(raw)
    if value is None or value < low:
        raise CommandError(error)
    return value


def _left(raw: bytes) -> bool:
    """LEFT / RIGHT (getListPositionFromObjectOrReply): True for LEFT."""
    word = raw.lower()
    if word == b"left":
        return True
    if word == b"right":
        return False
    raise CommandError(SYNTAX_ERROR)


def _parse_mpop(argv: list[bytes], numkeys_at: int) -> tuple[list[bytes], bool, int]:
    """numkeys key [key ...] LEFT|RIGHT [COUNT count] of LMPOP/BLMPOP: (keys, left, count)."""
    numkeys = _ranged(argv[numkeys_at], 1, "ERR numkeys should be greater than 0")
    where_at = numkeys_at + numkeys + 1
    argc = len(argv)
    if where_at >= argc:
        raise CommandError(SYNTAX_ERROR)
    left = _left(argv[where_at])
    count = -1
    j = where_at + 1
    while j < argc:
        if count == -1 and argv[j].lower() == b"count" and j + 1 < argc:
            j += 1
            count = _ranged(argv[j], 1, "ERR count should be greater than 0")
        else:
            raise CommandError(SYNTAX_ERROR)
        j += 1
    return argv[numkeys_at + 1:where_at], left, 1 if count == -1 else count


def _numkeys_positions(argv: list[bytes], numkeys_at: int) -> list[int]:
    """Key positions for routing; none when numkeys is invalid (the handler then replies the error)."""
    numkeys = try_int(argv[numkeys_at]) if len(argv) > numkeys_at else None
    if numkeys is None or numkeys < 1 or numkeys > len(argv) - numkeys_at - 1:
        return []
    return list(range(numkeys_at + 1, numkeys_at + 1 + numkeys))


def _lmpop_keys(argv: list[bytes]) -> list[int]:
    return _numkeys_positions(argv, 1)


def _blmpop_keys(argv: list[bytes]) -> list[int]:
    return _numkeys_positions(argv, 2)


# -- shared operations ----------------------------------------------------------------------------

def _popped(db, key: bytes, value: deque, left: bool) -> None:
    """After a pop: the lpop/rpop event, and an emptied list is deleted (with its `del` event)."""
    db.notify("l", b"lpop" if left else b"rpop", key)
    delete_if_empty(db, key, value)


def _push(db, argv: list[bytes], left: bool) -> int:
    key = argv[1]
    value = db.typed(key, deque)
    if value is None:
        value = deque()
        db.set(key, value)
        db.notify("n", b"new", key)
    if len(argv) == 3:
        if left:
            value.appendleft(argv[2])
        else:
            value.append(argv[2])
    elif left:
        value.extendleft(argv[2:])
    else:
        value.extend(argv[2:])
    db.notify("l", b"lpush" if left else b"rpush", key)
    db.store.dirty += len(argv) - 2
    db.signal_ready(key)
    return len(value)


def _pushx(db, argv: list[bytes], left: bool) -> int:
    value = db.typed(argv[1], deque)
    if value is None:
        return 0
    if left:
        value.extendleft(argv[2:])
    else:
        value.extend(argv[2:])
    db.notify("l", b"lpush" if left else b"rpush", argv[1])
    db.store.dirty += len(argv) - 2
    db.signal_ready(argv[1])
    return len(value)


def _pop(db, argv: list[bytes], left: bool):
    """LPOP/RPOP key [count]: a bulk without count; an array (null array if missing) with it."""
    argc = len(argv)
    if argc > 3:
        raise wrong_arity(argv[0])
    key = argv[1]
    if argc == 2:
        value = db.typed(key, deque)
        if value is None:
            return None
        item = value.popleft() if left else value.pop()
        _popped(db, key, value, left)
        db.store.dirty += 1
        return item
    count = _ranged(argv[2], 0, _MUST_BE_POSITIVE)
    value = db.typed(key, deque)
    if value is None:
        return NULL_ARRAY
    if not count:
        return []
    items = pop_many(value, count, left)
    _popped(db, key, value, left)
    db.store.dirty += len(items)
    return items


def _mpop(db, keys: list[bytes], left: bool, count: int):
    """[key, [elements]] from the first non-empty list, or None when every list is empty."""
    for key in keys:
        value = db.typed(key, deque)
        if value is not None:
            items = pop_many(value, count, left)
            _popped(db, key, value, left)
            db.store.dirty += len(items)
            db.unmodified_except(keys, key)     # Redis signals the one list it popped from
            return [key, items]
    return None


def _move(db, source: bytes, destination: bytes, from_left: bool, to_left: bool):
    """LMOVE: None when the source is missing; WRONGTYPE on either key before anything moves."""
    value = db.typed(source, deque)
    if value is None:
        return None
    target = db.typed(destination, deque)
    item = value.popleft() if from_left else value.pop()
    if target is None:
        target = deque()
        db.set(destination, target)
        db.notify("n", b"new", destination)
    if to_left:
        target.appendleft(item)
    else:
        target.append(item)
    db.notify("l", b"lpush" if to_left else b"rpush", destination)
    _popped(db, source, value, from_left)
    db.store.dirty += 1
    db.signal_ready(destination)
    return item


def _blocking_move(db, source: bytes, destination: bytes, from_left: bool, to_left: bool,
                   timeout: float):
    if db.typed(source, deque) is None:
        if db.store.no_block:
            return None
        raise Block([source], timeout, NULL_ARRAY)
    item = _move(db, source, destination, from_left, to_left)
    db.propagate(b"LMOVE", source, destination, b"LEFT" if from_left else b"RIGHT",
                 b"LEFT" if to_left else b"RIGHT")
    return item


def _serving_first(db, keys: list[bytes]) -> list[bytes]:
    """Keys in the order a blocked client tries them: the key whose push woke it comes first.

    Redis serves a woken client from the key that became ready, not from its first non-empty key
    (BLPOP a b, then MULTI; RPUSH b x; RPUSH a y; EXEC pops b). The shard names that key in
    `store.serving_key` while it re-runs a waiter; it is absent or None otherwise.
    """
    hint = getattr(db.store, "serving_key", None)
    if hint is None or hint not in keys or keys[0] == hint:
        return keys
    return [hint, *(key for key in keys if key != hint)]


def _blocking_pop(db, argv: list[bytes], left: bool):
    timeout = parse_timeout(argv[-1])
    keys = argv[1:-1]
    for key in _serving_first(db, keys):
        value = db.typed(key, deque)
        if value is not None:
            item = value.popleft() if left else value.pop()
            _popped(db, key, value, left)
            db.store.dirty += 1
            db.unmodified_except(keys, key)     # Redis signals the one list it popped from
            db.propagate(b"LPOP" if left else b"RPOP", key)  # replayed without blocking
            return [key, item]
    return block_or_reply(db, list(dict.fromkeys(keys)), timeout, NULL_ARRAY)


# -- pushes ---------------------------------------------------------------------------------------

@command("LPUSH", arity=-3, flags="write denyoom fast", keys=(1, 1, 1), group="list")
def lpush(db, argv):
    """LPUSH key element [element ...] -- the new length."""
    return _push(db, argv, True)


@command("RPUSH", arity=-3, flags="write denyoom fast", keys=(1, 1, 1), group="list")
def rpush(db, argv):
    """RPUSH key element [element ...] -- the new length."""
    return _push(db, argv, False)


@command("LPUSHX", arity=-3, flags="write denyoom fast", keys=(1, 1, 1), group="list")
def lpushx(db, argv):
    """LPUSHX key element [element ...] -- 0 when the list does not exist."""
    return _pushx(db, argv, True)


@command("RPUSHX", arity=-3, flags="write denyoom fast", keys=(1, 1, 1), group="list")
def rpushx(db, argv):
    """RPUSHX key element [element ...] -- 0 when the list does not exist."""
    return _pushx(db, argv, False)


@command("LINSERT", arity=5, flags="write denyoom", keys=(1, 1, 1), group="list")
def linsert(db, argv):
    """LINSERT key BEFORE|AFTER pivot element -- the new length, -1 without pivot, 0 without key."""
    where = argv[2].lower()
    if where == b"after":
        after = True
    elif where == b"before":
        after = False
    else:
        raise CommandError(SYNTAX_ERROR)
    value = db.typed(argv[1], deque)
    if value is None:
        return 0
    try:
        index = value.index(argv[3])
    except ValueError:
        return -1
    value.insert(index + 1 if after else index, argv[4])
    db.notify("l", b"linsert", argv[1])
    db.store.dirty += 1
    return len(value)


# -- reads ----------------------------------------------------------------------------------------

@command("LLEN", arity=2, flags="readonly fast", keys=(1, 1, 1), group="list")
def llen(db, argv):
    """LLEN key"""
    value = db.read(argv[1], deque)
    return 0 if value is None else len(value)


@command("LINDEX", arity=3, flags="readonly", keys=(1, 1, 1), group="list")
def lindex(db, argv):
    """LINDEX key index -- the key is looked up before the index is parsed."""
    value = db.read(argv[1], deque)
    if value is None:
        return None
    index = _long(argv[2])
    if -len(value) <= index < len(value):
        return value[index]
    return None


@command("LRANGE", arity=4, flags="readonly", keys=(1, 1, 1), group="list")
def lrange(db, argv):
    """LRANGE key start stop"""
    start = _long(argv[2])
    end = _long(argv[3])
    value = db.read(argv[1], deque)
    if value is None:
        return []
    return list_range(value, start, end)


@command("LPOS", arity=-3, flags="readonly", keys=(1, 1, 1), group="list")
def lpos(db, argv):
    """LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]"""
    rank, count, maxlen = 1, None, 0
    argc = len(argv)
    j = 3
    while j < argc:
        option = argv[j].lower()
        if j + 1 >= argc:
            raise CommandError(SYNTAX_ERROR)
        if option == b"rank":
            j += 1
            rank = _long(argv[j])
            if rank == 0:
                raise CommandError(_RANK_ZERO)
        elif option == b"count":
            j += 1
            count = _ranged(argv[j], 0, "ERR COUNT can't be negative")
        elif option == b"maxlen":
            j += 1
            maxlen = _ranged(argv[j], 0, "ERR MAXLEN can't be negative")
        else:
            raise CommandError(SYNTAX_ERROR)
        j += 1
    value = db.read(argv[1], deque)
    if value is None:
        return None if count is None else []
    return positions(value, argv[2], rank, count, maxlen)


# -- in-place edits -------------------------------------------------------------------------------

@command("LSET", arity=4, flags="write denyoom", keys=(1, 1, 1), group="list")
def lset(db, argv):
    """LSET key index element -- the key is looked up before the index is parsed."""
    value = db.typed(argv[1], deque)
    if value is None:
        raise CommandError(NO_SUCH_KEY)
    index = _long(argv[2])
    if not -len(value) <= index < len(value):
        raise CommandError(OUT_OF_RANGE)
    value[index] = argv[3]
    db.notify("l", b"lset", argv[1])
    db.store.dirty += 1
    return OK


@command("LTRIM", arity=4, flags="write", keys=(1, 1, 1), group="list")
def ltrim(db, argv):
    """LTRIM key start stop -- OK even when the key is missing."""
    start = _long(argv[2])
    end = _long(argv[3])
    key = argv[1]
    value = db.typed(key, deque)
    if value is None:
        return OK
    removed = trim(value, start, end)
    db.notify("l", b"ltrim", key)
    delete_if_empty(db, key, value)
    db.store.dirty += removed
    if not removed:
        db.signal_modified(key)     # Redis signals the key even when nothing was trimmed
    return OK


@command("LREM", arity=4, flags="write", keys=(1, 1, 1), group="list")
def lrem(db, argv):
    """LREM key count element -- count > 0 from the head, < 0 from the tail, 0 all."""
    count = _long(argv[2])
    key = argv[1]
    value = db.typed(key, deque)
    if value is None:
        return 0
    removed = remove(value, argv[3], count)
    if removed:
        db.notify("l", b"lrem", key)
        delete_if_empty(db, key, value)
        db.store.dirty += removed
    return removed


# -- pops and moves -------------------------------------------------------------------------------

@command("LPOP", arity=-2, flags="write fast", keys=(1, 1, 1), group="list")
def lpop(db, argv):
    """LPOP key [count]"""
    return _pop(db, argv, True)


@command("RPOP", arity=-2, flags="write fast", keys=(1, 1, 1), group="list")
def rpop(db, argv):
    """RPOP key [count]"""
    return _pop(db, argv, False)


@command("LMPOP", arity=-4, flags="write movablekeys", keys=(0, 0, 0), group="list",
         getkeys=_lmpop_keys)
def lmpop(db, argv):
    """LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count] -- [key, elements] or a null array."""
    keys, left, count = _parse_mpop(argv, 1)
    found = _mpop(db, keys, left, count)
    return NULL_ARRAY if found is None else found


@command("LMOVE", arity=5, flags="write denyoom", keys=(1, 2, 1), group="list")
def lmove(db, argv):
    """LMOVE source destination LEFT|RIGHT LEFT|RIGHT"""
    from_left = _left(argv[3])
    to_left = _left(argv[4])
    return _move(db, argv[1], argv[2], from_left, to_left)


@command("RPOPLPUSH", arity=3, flags="write denyoom", keys=(1, 2, 1), group="list")
def rpoplpush(db, argv):
    """RPOPLPUSH source destination (LMOVE source destination RIGHT LEFT)"""
    return _move(db, argv[1], argv[2], False, True)


# -- blocking variants ----------------------------------------------------------------------------

@command("BLPOP", arity=-3, flags="write noscript blocking", keys=(1, -2, 1), group="list")
def blpop(db, argv):
    """BLPOP key [key ...] timeout -- [key, element] or a null array on timeout."""
    return _blocking_pop(db, argv, True)


@command("BRPOP", arity=-3, flags="write noscript blocking", keys=(1, -2, 1), group="list")
def brpop(db, argv):
    """BRPOP key [key ...] timeout -- [key, element] or a null array on timeout."""
    return _blocking_pop(db, argv, False)


@command("BLMPOP", arity=-5, flags="write blocking movablekeys", keys=(0, 0, 0), group="list",
         getkeys=_blmpop_keys)
def blmpop(db, argv):
    """BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count] -- the timeout is parsed last."""
    keys, left, count = _parse_mpop(argv, 2)
    timeout = parse_timeout(argv[1])
    found = _mpop(db, _serving_first(db, keys), left, count)
    if found is not None:
        db.propagate(b"LPOP" if left else b"RPOP", found[0], b"%d" % len(found[1]))
        return found
    return block_or_reply(db, list(dict.fromkeys(keys)), timeout, NULL_ARRAY)


@command("BLMOVE", arity=6, flags="write denyoom noscript blocking", keys=(1, 2, 1), group="list")
def blmove(db, argv):
    """BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout"""
    from_left = _left(argv[3])
    to_left = _left(argv[4])
    timeout = parse_timeout(argv[5])
    return _blocking_move(db, argv[1], argv[2], from_left, to_left, timeout)


@command("BRPOPLPUSH", arity=4, flags="write denyoom noscript blocking", keys=(1, 2, 1),
         group="list")
def brpoplpush(db, argv):
    """BRPOPLPUSH source destination timeout"""
    timeout = parse_timeout(argv[3])
    return _blocking_move(db, argv[1], argv[2], False, True, timeout)

