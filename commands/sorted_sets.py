"""Sorted-set commands (Redis group "sorted-set"), following Redis 7.0.15's t_zset.c.

Values are `keyspace.zset.ZSet`: a member -> score dict plus a SortedList of (score, member), so
ranks, rank slices and range bounds cost O(log n) as in Redis's skiplist. Reply order is fully
determined by (score, member) except for ZSCAN of a skiplist set and random picks.

Score texts follow Redis's two parsers, which differ:
* scores and increments (ZADD, ZINCRBY, WEIGHTS) use string2d: no leading space, no trailing bytes,
  no NaN, and out-of-range values ("1e400", "1e-400") are errors;
* range ends (ZRANGEBYSCORE, ZCOUNT ...) use plain strtod on the C string: leading space, the empty
  string (0), overflow to +-inf and anything after a NUL byte are accepted.

Replies: scores are Python floats, so RESP2 sends `%.17g` bulk strings and RESP3 doubles, as Redis's
addReplyDouble. WITHSCORES lists are `PairsReply` (flat in RESP2, [member, score] pairs in RESP3).
ZSCAN always sends scores as bulk strings, as Redis does.
"""

from __future__ import annotations

import math
import random
import re

from commands.args import glob_match, parse_int, try_int
from commands.blocking import block_or_reply, parse_timeout
from commands.generic import parse_cursor, parse_scan_options
from commands.hashes import PairsReply
from commands.registry import command
from keyspace.db import delete_destination, delete_if_empty, scan_snapshot
from keyspace.zset import MAX_LEX, MIN_LEX, LexBound, ZSet
from protocol.errors import (
    NOT_A_FLOAT,
    NOT_AN_INTEGER,
    SYNTAX_ERROR,
    WRONGTYPE,
    CommandError,
)
from protocol.replies import NULL_ARRAY, format_double

__all__ = ["parse_lex_bound", "parse_score", "parse_score_bound", "zset_from_pairs"]

_NAN_RESULT = "ERR resulting score is not a number (NaN)"
_MINMAX_NOT_FLOAT = "ERR min or max is not a float"
_MINMAX_NOT_LEX = "ERR min or max not valid string range item"
_LIMIT_WITH_RANK = ("ERR syntax error, LIMIT is only supported in combination with either BYSCORE "
                    "or BYLEX")
_WITHSCORES_WITH_LEX = "ERR syntax error, WITHSCORES not supported in combination with BYLEX"
_NOT_POSITIVE = "ERR value is out of range, must be positive"
_LONG_MAX = 2**63 - 1


# -- number parsing ------------------------------------------------------------------------------

_SPACE = b" \t\n\v\f\r"
_STRTOD = re.compile(
    rb"[+-]?(?:"
    rb"0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?"
    rb"|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
    rb"|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?"
    rb"|[nN][aA][nN](?:\([0-9A-Za-z_]*\))?"
    rb")")
_NONZERO_DIGIT = re.compile(rb"[1-9a-fA-F]")


def _strtod(text: bytes) -> tuple[float, bool] | None:
    """C strtod over the whole of `text` (already cut at any NUL): (value, out of range) or None.

    Leading C-locale space is skipped; None when nothing or not everything is consumed. "Out of
    range" is ERANGE: overflow to +-inf, or a non-zero number that rounds to zero.
    """
    stripped = text.lstrip(_SPACE)
    if not _STRTOD.fullmatch(stripped):
        return None
    body = stripped.lstrip(b"+-")
    lowered = body[:2].lower()
    if lowered == b"0x":
        mantissa = body.split(b"p")[0].split(b"P")[0][2:]
        try:
            value = float.fromhex(stripped.decode())
        except OverflowError:
            return (-math.inf if stripped[:1] == b"-" else math.inf), True
    else:
        if lowered[:1] == b"n":
            return math.nan, False
        if lowered[:1] == b"i":
            return (-math.inf if stripped[:1] == b"-" else math.inf), False
        mantissa = body.split(b"e")[0].split(b"E")[0]
        value = float(stripped)
        if math.isinf(value):
            return value, True
    if value == 0.0 and _NONZERO_DIGIT.search(mantissa):
        return value, True
    return value, False


def parse_score(raw: bytes, error: str = NOT_A_FLOAT) -> float:
    """Redis's string2d (getDoubleFromObject): the score/increment/weight parser."""
    if raw.isdigit() and len(raw) < 300:
        return float(raw)  # the common case (ASCII digits only): no regex
    if not raw or raw[0] in _SPACE or b"\x00" in raw:
        raise CommandError(error)
    parsed = _strtod(raw)
    if parsed is None or parsed[1] or parsed[0] != parsed[0]:
        raise CommandError(error)
    return parsed[0]


def parse_score_bound(raw: bytes) -> tuple[float, bool]:
    """One end of a score range (zslParseRange): (value, exclusive)."""
    exclusive = raw[:1] == b"("
    text = raw[1:] if exclusive else raw
    nul = text.find(b"\x00")
    if nul >= 0:
        text = text[:nul]
    if not text:
        return 0.0, exclusive      # strtod("") converts nothing and stops at the terminator
    parsed = _strtod(text)
    if parsed is None or parsed[0] != parsed[0]:
        raise CommandError(_MINMAX_NOT_FLOAT)
    return parsed[0], exclusive


def parse_lex_bound(raw: bytes) -> LexBound:
    """One end of a lex range (zslParseLexRangeItem): `-`, `+`, `[value` or `(value`."""
    head = raw[:1]
    if head == b"+" or head == b"-":
        if raw[1:2] not in (b"", b"\x00"):
            raise CommandError(_MINMAX_NOT_LEX)
        return MAX_LEX if head == b"+" else MIN_LEX
    if head == b"(":
        return LexBound(0, raw[1:], True)
    if head == b"[":
        return LexBound(0, raw[1:], False)
    raise CommandError(_MINMAX_NOT_LEX)


def _range_long(raw: bytes, low: int, high: int, message: str | None = None) -> int:
    """getRangeLongFromObjectOrReply: `message` replaces both error texts when given."""
    value = try_int(raw)
    if value is None:
        raise CommandError(message or NOT_AN_INTEGER)
    if not low <= value <= high:
        raise CommandError(message or f"ERR value is out of range, value must between {low} and {high}")
    return value


# -- shared helpers -----------------------------------------------------------------------------

def zset_from_pairs(pairs, config: dict) -> ZSet:
    """A sorted set holding `pairs` [(member, score)], encoded as Redis encodes a loaded one."""
    return ZSet.from_pairs(pairs, config)


def _store(db, key: bytes, zset: ZSet | None, event: bytes) -> int:
    """Write a store command's result (replacing any value and TTL) or delete `key` when empty.

    Like Redis 7.0 (signalKeyAsReady is called by dbAdd only), blocked clients are woken when the
    key is created, not when an existing value is overwritten.
    """
    if zset:
        created = db.get(key) is None
        db.set(key, zset)
        if created:
            db.notify("n", b"new", key)
        db.notify("z", event, key)
        if created:
            db.signal_ready(key)
        db.store.dirty += 1
        return len(zset)
    delete_destination(db, key)
    return 0


def _normalize_rank(start: int, end: int, length: int) -> tuple[int, int] | None:
    """Redis's rank sanitizing: negative from the end; None for an empty range, else [start, end]."""
    if start < 0:
        start += length
    if end < 0:
        end += length
    start = max(start, 0)
    if start > end or start >= length:
        return None
    if end >= length:
        end = length - 1
    return start, end


def _members(entries) -> list[bytes]:
    return [member for _, member in entries]


def _with_scores(entries) -> PairsReply:
    return PairsReply([(member, score) for score, member in entries])


# -- ZADD / ZINCRBY ------------------------------------------------------------------------------

_NX, _XX, _GT, _LT, _INCR, _CH = (1 << i for i in range(6))
_ZADD_OPTIONS = {b"nx": _NX, b"xx": _XX, b"gt": _GT, b"lt": _LT, b"incr": _INCR, b"ch": _CH}


def _zadd_generic(db, argv: list[bytes], flags: int):
    """zaddGenericCommand: options, then every score parsed before anything changes."""
    n = len(argv)
    j = 2
    while j < n:
        option = _ZADD_OPTIONS.get(argv[j].lower())
        if option is None:
            break
        flags |= option
        j += 1
    elements = n - j
    if elements % 2 or not elements:
        raise CommandError(SYNTAX_ERROR)
    pairs = elements // 2
    nx, xx, gt, lt, incr = flags & _NX, flags & _XX, flags & _GT, flags & _LT, flags & _INCR
    if nx and xx:
        raise CommandError("ERR XX and NX options at the same time are not compatible")
    if (gt and nx) or (lt and nx) or (gt and lt):
        raise CommandError("ERR GT, LT, and/or NX options at the same time are not compatible")
    if incr and pairs > 1:
        raise CommandError("ERR INCR option supports a single increment-element pair")
    scores = [parse_score(argv[j + 2 * i]) for i in range(pairs)]

    key = argv[1]
    zset = db.typed(key, ZSet)
    added = updated = processed = 0
    score = 0.0
    created = zset is None
    if created:
        if xx:
            return None if incr else 0
        zset = ZSet()
        db.set(key, zset)
        db.notify("n", b"new", key)
    members = zset.scores
    config = db.store.config
    for i in range(pairs):
        member = argv[j + 2 * i + 1]
        score = scores[i]
        current = members.get(member)
        if current is None:
            if xx:
                continue
            zset.insert(member, score, config)
            added += 1
            processed += 1
            continue
        if nx:
            continue
        if incr:
            score += current
            if math.isnan(score):
                raise CommandError(_NAN_RESULT)
        if (lt and score >= current) or (gt and score <= current):
            continue
        processed += 1
        if score != current:
            zset.update(member, current, score)
            updated += 1
    if added or updated:
        db.notify("z", b"zincr" if incr else b"zadd", key)
        db.store.dirty += added + updated
    if created:
        db.signal_ready(key)  # Redis 7.0 wakes blocked clients when the key is created (dbAdd)
    if incr:
        return score if processed else None
    return added + updated if flags & _CH else added


@command("ZADD", arity=-4, flags="write denyoom fast", keys=(1, 1, 1), group="sorted-set")
def zadd(db, argv):
    """ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]

    The number of members added (CH: added or changed); with INCR the new score, or nil if aborted.
    """
    return _zadd_generic(db, argv, 0)


@command("ZINCRBY", arity=4, flags="write denyoom fast", keys=(1, 1, 1), group="sorted-set")
def zincrby(db, argv):
    """ZINCRBY key increment member -- the new score. (An option word as increment is a syntax
    error, because Redis runs ZADD's option parser here too.)"""
    return _zadd_generic(db, argv, _INCR)


# -- simple reads --------------------------------------------------------------------------------

@command("ZCARD", arity=2, flags="readonly fast", keys=(1, 1, 1), group="sorted-set")
def zcard(db, argv):
    """ZCARD key"""
    zset = db.read(argv[1], ZSet)
    return 0 if zset is None else len(zset.scores)


@command("ZSCORE", arity=3, flags="readonly fast", keys=(1, 1, 1), group="sorted-set")
def zscore(db, argv):
    """ZSCORE key member -- a double, or nil."""
    zset = db.read(argv[1], ZSet)
    return None if zset is None else zset.scores.get(argv[2])


@command("ZMSCORE", arity=-3, flags="readonly fast", keys=(1, 1, 1), group="sorted-set")
def zmscore(db, argv):
    """ZMSCORE key member [member ...] -- a double or nil per member."""
    zset = db.read(argv[1], ZSet)
    if zset is None:
        return [None] * (len(argv) - 2)
    get = zset.scores.get
    return [get(member) for member in argv[2:]]


def _rank(db, argv, reverse: bool):
    zset = db.read(argv[1], ZSet)
    if zset is None:
        return None
    rank = zset.rank(argv[2])
    if rank is None or not reverse:
        return rank
    return len(zset.scores) - 1 - rank


@command("ZRANK", arity=3, flags="readonly fast", keys=(1, 1, 1), group="sorted-set")
def zrank(db, argv):
    """ZRANK key member -- 0-based rank by ascending score, or nil."""
    return _rank(db, argv, False)


@command("ZREVRANK", arity=3, flags="readonly fast", keys=(1, 1, 1), group="sorted-set")
def zrevrank(db, argv):
    """ZREVRANK key member -- 0-based rank by descending score, or nil."""
    return _rank(db, argv, True)


@command("ZCOUNT", arity=4, flags="readonly fast", keys=(1, 1, 1), group="sorted-set")
def zcount(db, argv):
    """ZCOUNT key min max"""
    lo, lo_ex = parse_score_bound(argv[2])
    hi, hi_ex = parse_score_bound(argv[3])
    zset = db.read(argv[1], ZSet)
    if zset is None:
        return 0
    start, stop = zset.score_span(lo, lo_ex, hi, hi_ex)
    return stop - start


@command("ZLEXCOUNT", arity=4, flags="readonly fast", keys=(1, 1, 1), group="sorted-set")
def zlexcount(db, argv):
    """ZLEXCOUNT key min max"""
    lo, hi = parse_lex_bound(argv[2]), parse_lex_bound(argv[3])
    zset = db.read(argv[1], ZSet)
    if zset is None:
        return 0
    start, stop = zset.lex_span(lo, hi)
    return stop - start


# -- ZRANGE and its family -----------------------------------------------------------------------

_AUTO, _RANK, _SCORE, _LEX = range(4)


def _zrange_generic(db, argv: list[bytes], key_index: int, store_key: bytes | None,
                    rangetype: int, reverse: bool | None):
    """zrangeGenericCommand: every ZRANGE variant and ZRANGESTORE (`store_key`)."""
    key = argv[key_index]
    min_index, max_index = key_index + 1, key_index + 2
    withscores = False
    offset, limit = 0, -1
    n = len(argv)
    j = key_index + 3
    while j < n:
        option = argv[j].lower()
        left = n - j - 1
        if store_key is None and option == b"withscores":
            withscores = True
        elif option == b"limit" and left >= 2:
            offset = parse_int(argv[j + 1])
            limit = parse_int(argv[j + 2])
            j += 2
        elif reverse is None and option == b"rev":
            reverse = True
        elif rangetype == _AUTO and option == b"bylex":
            rangetype = _LEX
        elif rangetype == _AUTO and option == b"byscore":
            rangetype = _SCORE
        else:
            raise CommandError(SYNTAX_ERROR)
        j += 1
    reverse = bool(reverse)
    if rangetype == _AUTO:
        rangetype = _RANK
    if limit != -1 and rangetype == _RANK:
        raise CommandError(_LIMIT_WITH_RANK)
    if withscores and rangetype == _LEX:
        raise CommandError(_WITHSCORES_WITH_LEX)
    if reverse and rangetype != _RANK:
        min_index, max_index = max_index, min_index

    if rangetype == _RANK:
        start, end = parse_int(argv[min_index]), parse_int(argv[max_index])
    elif rangetype == _SCORE:
        lo, lo_ex = parse_score_bound(argv[min_index])
        hi, hi_ex = parse_score_bound(argv[max_index])
    else:
        lo_lex, hi_lex = parse_lex_bound(argv[min_index]), parse_lex_bound(argv[max_index])

    zset = db.read(key, ZSet)
    if zset is None:
        return _store(db, store_key, None, b"zrangestore") if store_key is not None else []

    if rangetype == _RANK:
        entries = _rank_range(zset, start, end, reverse)
    else:
        if offset > 0 and offset >= len(zset.scores):
            entries = []
        else:
            if rangetype == _SCORE:
                first, stop = zset.score_span(lo, lo_ex, hi, hi_ex)
            else:
                first, stop = zset.lex_span(lo_lex, hi_lex, reverse)
            entries = _limited(zset, first, stop, offset, limit, reverse)

    if store_key is not None:
        result = ZSet.from_pairs(((m, s) for s, m in entries), db.store.config) if entries else None
        return _store(db, store_key, result, b"zrangestore")
    return _with_scores(entries) if withscores else _members(entries)


def _rank_range(zset: ZSet, start: int, end: int, reverse: bool) -> list:
    length = len(zset.scores)
    span = _normalize_rank(start, end, length)
    if span is None:
        return []
    start, end = span
    if not reverse:
        return zset.slice(start, end + 1)
    entries = zset.slice(length - 1 - end, length - start)
    entries.reverse()
    return entries


def _limited(zset: ZSet, first: int, stop: int, offset: int, limit: int, reverse: bool) -> list:
    """The members at rank positions [first, stop) after LIMIT offset count, in reply order.

    Like Redis, a negative offset skips everything and a negative count means "all".
    """
    if offset < 0 or first >= stop:
        return []
    if not reverse:
        a = first + offset
        b = stop if limit < 0 else min(stop, a + limit)
        return zset.slice(a, b)
    b = stop - offset
    a = first if limit < 0 else max(first, b - limit)
    entries = zset.slice(a, b)
    entries.reverse()
    return entries


@command("ZRANGE", arity=-4, flags="readonly", keys=(1, 1, 1), group="sorted-set")
def zrange(db, argv):
    """ZRANGE key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]"""
    return _zrange_generic(db, argv, 1, None, _AUTO, None)


@command("ZRANGESTORE", arity=-5, flags="write denyoom", keys=(1, 2, 1), group="sorted-set")
def zrangestore(db, argv):
    """ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count] -- the stored size."""
    return _zrange_generic(db, argv, 2, argv[1], _AUTO, None)


@command("ZREVRANGE", arity=-4, flags="readonly", keys=(1, 1, 1), group="sorted-set")
def zrevrange(db, argv):
    """ZREVRANGE key start stop [WITHSCORES]"""
    return _zrange_generic(db, argv, 1, None, _RANK, True)


@command("ZRANGEBYSCORE", arity=-4, flags="readonly", keys=(1, 1, 1), group="sorted-set")
def zrangebyscore(db, argv):
    """ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]"""
    return _zrange_generic(db, argv, 1, None, _SCORE, False)


@command("ZREVRANGEBYSCORE", arity=-4, flags="readonly", keys=(1, 1, 1), group="sorted-set")
def zrevrangebyscore(db, argv):
    """ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]"""
    return _zrange_generic(db, argv, 1, None, _SCORE, True)


@command("ZRANGEBYLEX", arity=-4, flags="readonly", keys=(1, 1, 1), group="sorted-set")
def zrangebylex(db, argv):
    """ZRANGEBYLEX key min max [LIMIT offset count]"""
    return _zrange_generic(db, argv, 1, None, _LEX, False)


@command("ZREVRANGEBYLEX", arity=-4, flags="readonly", keys=(1, 1, 1), group="sorted-set")
def zrevrangebylex(db, argv):
    """ZREVRANGEBYLEX key max min [LIMIT offset count]"""
    return _zrange_generic(db, argv, 1, None, _LEX, True)


# -- removal -------------------------------------------------------------------------------------

@command("ZREM", arity=-3, flags="write fast", keys=(1, 1, 1), group="sorted-set")
def zrem(db, argv):
    """ZREM key member [member ...] -- how many were removed."""
    key = argv[1]
    zset = db.typed(key, ZSet)
    if zset is None:
        return 0
    deleted = 0
    for member in argv[2:]:
        if zset.discard(member):
            deleted += 1
            if not zset.scores:
                break
    if deleted:
        db.notify("z", b"zrem", key)
        delete_if_empty(db, key, zset.scores)
    db.store.dirty += deleted
    return deleted


_ZREMRANGE_EVENTS = {_RANK: b"zremrangebyrank", _SCORE: b"zremrangebyscore", _LEX: b"zremrangebylex"}


def _zremrange_generic(db, argv, rangetype: int) -> int:
    """zremrangeGenericCommand: parse the range, then remove it."""
    if rangetype == _RANK:
        start, end = parse_int(argv[2]), parse_int(argv[3])
    elif rangetype == _SCORE:
        lo, lo_ex = parse_score_bound(argv[2])
        hi, hi_ex = parse_score_bound(argv[3])
    else:
        lo_lex, hi_lex = parse_lex_bound(argv[2]), parse_lex_bound(argv[3])
    key = argv[1]
    zset = db.typed(key, ZSet)
    if zset is None:
        return 0
    if rangetype == _RANK:
        span = _normalize_rank(start, end, len(zset.scores))
        if span is None:
            return 0
        first, stop = span[0], span[1] + 1
    elif rangetype == _SCORE:
        first, stop = zset.score_span(lo, lo_ex, hi, hi_ex)
    else:
        first, stop = zset.lex_span(lo_lex, hi_lex)
    deleted = zset.remove_span(first, stop)
    if deleted:
        db.notify("z", _ZREMRANGE_EVENTS[rangetype], key)
    delete_if_empty(db, key, zset.scores)
    db.store.dirty += deleted
    return deleted


@command("ZREMRANGEBYRANK", arity=4, flags="write", keys=(1, 1, 1), group="sorted-set")
def zremrangebyrank(db, argv):
    """ZREMRANGEBYRANK key start stop"""
    return _zremrange_generic(db, argv, _RANK)


@command("ZREMRANGEBYSCORE", arity=4, flags="write", keys=(1, 1, 1), group="sorted-set")
def zremrangebyscore(db, argv):
    """ZREMRANGEBYSCORE key min max"""
    return _zremrange_generic(db, argv, _SCORE)


@command("ZREMRANGEBYLEX", arity=4, flags="write", keys=(1, 1, 1), group="sorted-set")
def zremrangebylex(db, argv):
    """ZREMRANGEBYLEX key min max"""
    return _zremrange_generic(db, argv, _LEX)


# -- popping -------------------------------------------------------------------------------------

def _pop_from(db, key: bytes, zset: ZSet, count: int, highest: bool) -> list[tuple[bytes, float]]:
    popped = zset.pop(count, highest)
    db.notify("z", b"zpopmax" if highest else b"zpopmin", key)
    delete_if_empty(db, key, zset.scores)
    db.store.dirty += len(popped)
    return popped


def _zpop(db, argv, highest: bool):
    """ZPOPMIN/ZPOPMAX key [count]: flat [member, score] without count; pairs with it (RESP3)."""
    if len(argv) > 3:
        raise CommandError(SYNTAX_ERROR)
    count = -1
    if len(argv) == 3:
        count = _range_long(argv[2], 0, _LONG_MAX, _NOT_POSITIVE)
    key = argv[1]
    zset = db.typed(key, ZSet)
    if zset is None or count == 0:
        return []
    if count == -1:
        member, score = _pop_from(db, key, zset, 1, highest)[0]
        return [member, score]
    return PairsReply(_pop_from(db, key, zset, count, highest))


@command("ZPOPMIN", arity=-2, flags="write fast", keys=(1, 1, 1), group="sorted-set")
def zpopmin(db, argv):
    """ZPOPMIN key [count]"""
    return _zpop(db, argv, False)


@command("ZPOPMAX", arity=-2, flags="write fast", keys=(1, 1, 1), group="sorted-set")
def zpopmax(db, argv):
    """ZPOPMAX key [count]"""
    return _zpop(db, argv, True)


def _bzpop(db, argv, highest: bool):
    """BZPOPMIN/BZPOPMAX key [key ...] timeout: [key, member, score] from the first non-empty key."""
    timeout = parse_timeout(argv[-1])
    keys = argv[1:-1]
    for key in keys:
        zset = db.typed(key, ZSet)
        if zset is None:
            continue
        member, score = _pop_from(db, key, zset, 1, highest)[0]
        db.unmodified_except(keys, key)     # Redis signals the one key it popped from
        db.propagate(b"ZPOPMAX" if highest else b"ZPOPMIN", key)  # replayed without blocking
        return [key, member, score]
    return block_or_reply(db, keys, timeout, NULL_ARRAY)


@command("BZPOPMIN", arity=-3, flags="write noscript blocking fast", keys=(1, -2, 1),
         group="sorted-set")
def bzpopmin(db, argv):
    """BZPOPMIN key [key ...] timeout"""
    return _bzpop(db, argv, False)


@command("BZPOPMAX", arity=-3, flags="write noscript blocking fast", keys=(1, -2, 1),
         group="sorted-set")
def bzpopmax(db, argv):
    """BZPOPMAX key [key ...] timeout"""
    return _bzpop(db, argv, True)


def _zmpop_generic(db, argv, numkeys_index: int, blocking: bool):
    """zmpopGenericCommand: numkeys, MIN|MAX, [COUNT n]; then pop from the first non-empty key."""
    numkeys = _range_long(argv[numkeys_index], 1, _LONG_MAX, "ERR numkeys should be greater than 0")
    where_index = numkeys_index + numkeys + 1
    if where_index >= len(argv):
        raise CommandError(SYNTAX_ERROR)
    where = argv[where_index].lower()
    if where not in (b"min", b"max"):
        raise CommandError(SYNTAX_ERROR)
    count = -1
    j = where_index + 1
    while j < len(argv):
        if count == -1 and argv[j].lower() == b"count" and j + 1 < len(argv):
            j += 1
            count = _range_long(argv[j], 1, _LONG_MAX, "ERR count should be greater than 0")
        else:
            raise CommandError(SYNTAX_ERROR)
        j += 1
    if count == -1:
        count = 1
    timeout = parse_timeout(argv[1]) if blocking else 0.0
    keys = argv[numkeys_index + 1:where_index]
    highest = where == b"max"
    for key in keys:
        zset = db.typed(key, ZSet)
        if zset is None:
            continue
        popped = _pop_from(db, key, zset, count, highest)
        db.unmodified_except(keys, key)     # Redis signals the one key it popped from
        if blocking:
            db.propagate(b"ZPOPMAX" if highest else b"ZPOPMIN", key, b"%d" % len(popped))
        return [key, [[member, score] for member, score in popped]]
    if blocking:
        return block_or_reply(db, keys, timeout, NULL_ARRAY)
    return NULL_ARRAY


def _numkeys_positions(numkeys_index: int, store_index: int = 0):
    """getkeys for commands with a numkeys argument; [] when numkeys is unusable (the handler will
    then reply with the error, in global mode)."""
    def positions(argv: list[bytes]) -> list[int]:
        numkeys = try_int(argv[numkeys_index]) if len(argv) > numkeys_index else None
        first = numkeys_index + 1
        if numkeys is None or numkeys < 1 or numkeys > len(argv) - first:
            return []
        keys = list(range(first, first + numkeys))
        return [store_index, *keys] if store_index else keys
    return positions


@command("ZMPOP", arity=-4, flags="write movablekeys", group="sorted-set",
         getkeys=_numkeys_positions(1))
def zmpop(db, argv):
    """ZMPOP numkeys key [key ...] MIN|MAX [COUNT count] -- [key, [[member, score] ...]] or nil."""
    return _zmpop_generic(db, argv, 1, False)


@command("BZMPOP", arity=-5, flags="write blocking movablekeys", group="sorted-set",
         getkeys=_numkeys_positions(2))
def bzmpop(db, argv):
    """BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]"""
    return _zmpop_generic(db, argv, 2, True)


# -- ZRANDMEMBER ---------------------------------------------------------------------------------

@command("ZRANDMEMBER", arity=-2, flags="readonly", keys=(1, 1, 1), group="sorted-set")
def zrandmember(db, argv):
    """ZRANDMEMBER key [count [WITHSCORES]]

    Count >= 0: distinct members in random order, or the whole set from the highest score down when
    count >= size (Redis's set iterator walks from the tail). Count < 0: |count| independent picks.
    """
    key = argv[1]
    if len(argv) == 2:
        zset = db.read(key, ZSet)
        if zset is None:
            return None
        return zset.entry(random.randrange(len(zset.scores)))[1]
    count = _range_long(argv[2], -_LONG_MAX, _LONG_MAX)
    withscores = False
    if len(argv) > 4 or (len(argv) == 4 and argv[3].lower() != b"withscores"):
        raise CommandError(SYNTAX_ERROR)
    if len(argv) == 4:
        withscores = True
        if not -(_LONG_MAX // 2) <= count <= _LONG_MAX // 2:  # C division truncates
            raise CommandError("ERR value is out of range")
    zset = db.read(key, ZSet)
    if zset is None or count == 0:
        return []
    size = len(zset.scores)
    index = zset.index
    if count < 0 or count == 1:
        picks = [index[random.randrange(size)] for _ in range(abs(count))]
    elif count >= size:
        picks = list(reversed(index))  # zuiNext walks from the tail
    else:
        picks = [index[i] for i in random.sample(range(size), count)]
    return _with_scores(picks) if withscores else _members(picks)


# -- ZSCAN ---------------------------------------------------------------------------------------

@command("ZSCAN", arity=-3, flags="readonly", keys=(1, 1, 1), group="sorted-set")
def zscan(db, argv):
    """ZSCAN key cursor [MATCH pattern] [COUNT count]

    A listpack set comes back whole, in rank order, with cursor 0, as in Redis. A skiplist set is
    iterated over a snapshot of its members taken at cursor 0 (keyspace.db.scan_snapshot): members
    present for the whole scan are returned with their current scores; removed ones are skipped.
    """
    cursor = parse_cursor(argv[2])
    zset = db.read(argv[1], ZSet)
    if zset is None:
        return [b"0", []]
    pattern, count, _ = parse_scan_options(argv, 3, allow_type=False)
    if zset.listpack:
        cursor = 0
        pairs = list(zset.items())
    else:
        cache = zset.scan_cache
        if cache is None:
            cache = zset.scan_cache = {}
        cursor, batch = scan_snapshot(cache, cursor, lambda: list(zset.scores), count)
        scores = zset.scores
        pairs = [(m, scores[m]) for m in batch if m in scores]
    out = []
    for member, score in pairs:
        if pattern is not None and not glob_match(pattern, member):
            continue
        out.append(member)
        out.append(format_double(score))
    return [b"%d" % cursor, out]


# -- ZUNION / ZINTER / ZDIFF and their STORE forms, ZINTERCARD ------------------------------------

_UNION, _INTER, _DIFF = range(3)
_STORE_EVENTS = {_UNION: b"zunionstore", _INTER: b"zinterstore", _DIFF: b"zdiffstore"}
_SUM, _MIN, _MAX = range(3)
_AGGREGATES = {b"sum": _SUM, b"min": _MIN, b"max": _MAX}


class _Source:
    """One input of a set operation: a sorted set, a plain set (every score 1) or nothing."""

    __slots__ = ("value", "weight")

    def __init__(self, value) -> None:
        self.value = value
        self.weight = 1.0

    def __len__(self) -> int:
        value = self.value
        return 0 if value is None else len(value)

    def items(self):
        """(member, score) pairs; a sorted set's in rank order."""
        value = self.value
        if value is None:
            return ()
        if isinstance(value, ZSet):
            return value.items()
        return ((member, 1.0) for member in value)

    def find(self, member: bytes) -> float | None:
        value = self.value
        if isinstance(value, ZSet):
            return value.scores.get(member)
        return 1.0 if member in value else None


def _aggregate(target: float, value: float, aggregate: int) -> float:
    """zunionInterAggregate: SUM turns NaN (inf + -inf) into 0; MIN/MAX ignore a NaN value."""
    if aggregate == _SUM:
        target = target + value
        return 0.0 if math.isnan(target) else target
    if aggregate == _MIN:
        return min(target, value)
    return max(target, value)


def _set_operation(db, argv: list[bytes], numkeys_index: int, store_key: bytes | None, op: int,
                   cardinality_only: bool, name: str):
    """zunionInterDiffGenericCommand."""
    setnum = parse_int(argv[numkeys_index])
    if setnum < 1:
        raise CommandError(f"ERR at least 1 input key is needed for '{name}' command")
    if setnum > len(argv) - (numkeys_index + 1):
        raise CommandError(SYNTAX_ERROR)
    sources = []
    j = numkeys_index + 1
    for key in argv[j:j + setnum]:
        value = db.get(key)
        if value is None:
            db.store.keyspace_misses += 1
        else:
            db.store.keyspace_hits += 1
            if not isinstance(value, (ZSet, set)):
                raise CommandError(WRONGTYPE)
        sources.append(_Source(value))
    j += setnum

    aggregate = _SUM
    withscores = False
    limit = 0
    n = len(argv)
    while j < n:
        remaining = n - j
        option = argv[j].lower()
        if op != _DIFF and not cardinality_only and remaining >= setnum + 1 and option == b"weights":
            j += 1
            for source in sources:
                source.weight = parse_score(argv[j], "ERR weight value is not a float")
                j += 1
        elif op != _DIFF and not cardinality_only and remaining >= 2 and option == b"aggregate":
            chosen = _AGGREGATES.get(argv[j + 1].lower())
            if chosen is None:
                raise CommandError(SYNTAX_ERROR)
            aggregate = chosen
            j += 2
        elif store_key is None and not cardinality_only and option == b"withscores":
            withscores = True
            j += 1
        elif cardinality_only and remaining >= 2 and option == b"limit":
            limit = _range_long(argv[j + 1], 0, _LONG_MAX, "ERR LIMIT can't be negative")
            j += 2
        else:
            raise CommandError(SYNTAX_ERROR)

    if op != _DIFF:
        # Smallest input first, as Redis's (stable) qsort does; with infinities the order of the
        # additions decides the result, so it must be the same.
        sources.sort(key=len)

    if op == _INTER:
        result = _intersection(sources, aggregate, cardinality_only, limit)
        if cardinality_only:
            return result
    elif op == _UNION:
        result = _union(sources, aggregate)
    else:
        result = _difference(sources)

    if store_key is not None:
        zset = ZSet.from_pairs(result.items(), db.store.config) if result else None
        return _store(db, store_key, zset, _STORE_EVENTS[op])
    entries = sorted((score, member) for member, score in result.items())
    return _with_scores(entries) if withscores else _members(entries)


def _intersection(sources: list[_Source], aggregate: int, cardinality_only: bool, limit: int):
    first = sources[0]
    result: dict[bytes, float] = {}
    cardinality = 0
    if not len(first):
        return 0 if cardinality_only else result
    others = sources[1:]
    for member, value in first.items():
        score = first.weight * value
        if math.isnan(score):
            score = 0.0
        for other in others:
            found = other.find(member)
            if found is None:
                break
            score = _aggregate(score, found * other.weight, aggregate)
        else:
            if cardinality_only:
                cardinality += 1
                if limit and cardinality >= limit:
                    break
            else:
                result[member] = score
    return cardinality if cardinality_only else result


def _union(sources: list[_Source], aggregate: int) -> dict[bytes, float]:
    result: dict[bytes, float] = {}
    for source in sources:
        weight = source.weight
        for member, value in source.items():
            score = weight * value
            if math.isnan(score):
                score = 0.0
            current = result.get(member)
            result[member] = score if current is None else _aggregate(current, score, aggregate)
    return result


def _difference(sources: list[_Source]) -> dict[bytes, float]:
    first, others = sources[0], sources[1:]
    result: dict[bytes, float] = {}
    for member, score in first.items():
        if not any(other.value is not None and other.find(member) is not None for other in others):
            result[member] = score
    return result


_STORE_KEYS = _numkeys_positions(2, store_index=1)
_INPUT_KEYS = _numkeys_positions(1)


@command("ZUNIONSTORE", arity=-4, flags="write denyoom movablekeys", keys=(1, 1, 1),
         group="sorted-set", getkeys=_STORE_KEYS)
def zunionstore(db, argv):
    """ZUNIONSTORE dst numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX]"""
    return _set_operation(db, argv, 2, argv[1], _UNION, False, "zunionstore")


@command("ZINTERSTORE", arity=-4, flags="write denyoom movablekeys", keys=(1, 1, 1),
         group="sorted-set", getkeys=_STORE_KEYS)
def zinterstore(db, argv):
    """ZINTERSTORE dst numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX]"""
    return _set_operation(db, argv, 2, argv[1], _INTER, False, "zinterstore")


@command("ZDIFFSTORE", arity=-4, flags="write denyoom movablekeys", keys=(1, 1, 1),
         group="sorted-set", getkeys=_STORE_KEYS)
def zdiffstore(db, argv):
    """ZDIFFSTORE dst numkeys key [key ...]"""
    return _set_operation(db, argv, 2, argv[1], _DIFF, False, "zdiffstore")


@command("ZUNION", arity=-3, flags="readonly movablekeys", group="sorted-set", getkeys=_INPUT_KEYS)
def zunion(db, argv):
    """ZUNION numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]"""
    return _set_operation(db, argv, 1, None, _UNION, False, "zunion")


@command("ZINTER", arity=-3, flags="readonly movablekeys", group="sorted-set", getkeys=_INPUT_KEYS)
def zinter(db, argv):
    """ZINTER numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]"""
    return _set_operation(db, argv, 1, None, _INTER, False, "zinter")


@command("ZDIFF", arity=-3, flags="readonly movablekeys", group="sorted-set", getkeys=_INPUT_KEYS)
def zdiff(db, argv):
    """ZDIFF numkeys key [key ...] [WITHSCORES]"""
    return _set_operation(db, argv, 1, None, _DIFF, False, "zdiff")


@command("ZINTERCARD", arity=-3, flags="readonly movablekeys", group="sorted-set",
         getkeys=_INPUT_KEYS)
def zintercard(db, argv):
    """ZINTERCARD numkeys key [key ...] [LIMIT limit] -- the intersection's size (up to LIMIT)."""
    return _set_operation(db, argv, 1, None, _INTER, True, "zintercard")

