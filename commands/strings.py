"""String commands (Redis group "string"), from low-level helpers to handlers.

Strings are stored as `bytes`; APPEND and SETRANGE store a `RawString` so that OBJECT ENCODING can
say "raw" as Redis does. Numbers are parsed from the stored bytes on each INCR, as Redis does for a
non-shared integer object.
"""

from __future__ import annotations

from commands.args import (
    LLONG_MAX, LLONG_MIN, add_long_double, format_long_double, parse_int, parse_long_double, try_int,
)
from commands.registry import command
from keyspace.db import RawString
from keyspace.encoding import EmbString
from protocol.errors import (
    INVALID_EXPIRE, NOT_AN_INTEGER, OVERFLOW, SYNTAX_ERROR, CommandError,
)
from protocol.replies import OK

__all__: list[str] = []

_STRING_TOO_LONG = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"


def _check_length(db, total: int) -> None:
    if total > db.store.config.get("proto-max-bulk-len", 512 * 1024 * 1024):
        raise CommandError(_STRING_TOO_LONG)


def _read_string(db, key: bytes):
    return db.read(key, bytes)


# -- expiry options shared by SET, SETEX, PSETEX and GETEX --------------------------------------

_EX, _PX, _EXAT, _PXAT, _KEEPTTL, _PERSIST, _NX, _XX, _GET = (1 << i for i in range(9))
_ANY_EXPIRE = _EX | _PX | _EXAT | _PXAT
_OPTION_FLAGS = {b"ex": _EX, b"px": _PX, b"exat": _EXAT, b"pxat": _PXAT}


def _parse_set_options(argv: list[bytes], start: int, for_set: bool) -> tuple[int, bytes | None]:
    """Redis's parseExtendedStringArgumentsOrReply: returns (flags, raw expire argument)."""
    flags = 0
    expire = None
    j = start
    n = len(argv)
    while j < n:
        opt = argv[j].lower()
        has_next = j + 1 < n
        if opt == b"nx" and for_set and not flags & _XX:
            flags |= _NX
        elif opt == b"xx" and for_set and not flags & _NX:
            flags |= _XX
        elif opt == b"get" and for_set:
            flags |= _GET
        elif opt == b"keepttl" and for_set and not flags & (_PERSIST | _ANY_EXPIRE):
            flags |= _KEEPTTL
        elif opt == b"persist" and not for_set and not flags & (_ANY_EXPIRE | _KEEPTTL):
            flags |= _PERSIST
        elif opt in _OPTION_FLAGS and has_next and not flags & (
                _KEEPTTL | _PERSIST | (_ANY_EXPIRE & ~_OPTION_FLAGS[opt])):
            flags |= _OPTION_FLAGS[opt]
            expire = argv[j + 1]
            j += 1
        else:
            raise CommandError(SYNTAX_ERROR)
        j += 1
    return flags, expire


def _deadline_ms(db, raw: bytes, flags: int, name: str) -> int:
    """Absolute unix ms for an EX/PX/EXAT/PXAT argument, with Redis's range errors."""
    value = parse_int(raw)
    seconds = bool(flags & (_EX | _EXAT))
    if value <= 0 or (seconds and value > LLONG_MAX // 1000):
        raise CommandError(INVALID_EXPIRE % name)
    if seconds:
        value *= 1000
    if flags & (_EX | _PX):
        value += db.store.clock()
    if value > LLONG_MAX:
        raise CommandError(INVALID_EXPIRE % name)
    return value


def _set_generic(db, name: str, key: bytes, value: bytes, flags: int, expire: bytes | None,
                 ok=OK, aborted=None):
    """SET, SETEX, PSETEX and SETNX: Redis's setGenericCommand."""
    when = _deadline_ms(db, expire, flags, name) if expire is not None else None
    old = None
    if flags & _GET:
        old = _read_string(db, key)
    found = old is not None or db.exists(key)
    if (flags & _NX and found) or (flags & _XX and not found):
        return old if flags & _GET else aborted
    db.set(key, value, keep_ttl=bool(flags & _KEEPTTL))
    if not found:
        db.notify("n", b"new", key)
    db.notify("$", b"set", key)
    if when is not None:
        db.expire_at(key, when)
        db.notify("g", b"expire", key)
        db.propagate(b"SET", key, value, b"PXAT", b"%d" % when)  # relative TTLs become absolute
    elif flags & _GET:
        kept = [word for bit, word in ((_NX, b"NX"), (_XX, b"XX"), (_KEEPTTL, b"KEEPTTL"))
                if flags & bit]
        db.propagate(b"SET", key, value, *kept)  # GET is dropped from the AOF record
    db.store.dirty += 1
    return old if flags & _GET else ok


def _set_key(db, key: bytes, value: bytes) -> None:
    """Redis's setKey without options: a key that did not exist (or had expired) is `new`."""
    created = db.get(key) is None
    db.set(key, value)
    if created:
        db.notify("n", b"new", key)


# -- handlers ------------------------------------------------------------------------------------

@command("GET", arity=2, flags="readonly fast", keys=(1, 1, 1), group="string")
def get(db, argv):
    """GET key"""
    return db.read(argv[1], bytes)


@command("SET", arity=-3, flags="write denyoom", keys=(1, 1, 1), group="string")
def set_(db, argv):
    """SET key value [NX|XX] [GET] [EX s|PX ms|EXAT ts|PXAT ts|KEEPTTL]"""
    if len(argv) == 3:
        _set_key(db, argv[1], argv[2])
        db.notify("$", b"set", argv[1])
        db.store.dirty += 1
        return OK
    flags, expire = _parse_set_options(argv, 3, True)
    return _set_generic(db, "set", argv[1], argv[2], flags, expire)


@command("SETNX", arity=3, flags="write denyoom fast", keys=(1, 1, 1), group="string")
def setnx(db, argv):
    """SETNX key value -- 1 if set, 0 if the key existed."""
    return _set_generic(db, "setnx", argv[1], argv[2], _NX, None, ok=1, aborted=0)


@command("SETEX", arity=4, flags="write denyoom", keys=(1, 1, 1), group="string")
def setex(db, argv):
    """SETEX key seconds value"""
    return _set_generic(db, "setex", argv[1], argv[3], _EX, argv[2])


@command("PSETEX", arity=4, flags="write denyoom", keys=(1, 1, 1), group="string")
def psetex(db, argv):
    """PSETEX key milliseconds value"""
    return _set_generic(db, "psetex", argv[1], argv[3], _PX, argv[2])


@command("GETSET", arity=3, flags="write denyoom fast", keys=(1, 1, 1), group="string")
def getset(db, argv):
    """GETSET key value -- the old value; the new one drops any TTL."""
    old = _read_string(db, argv[1])
    db.set(argv[1], argv[2])
    if old is None:
        db.notify("n", b"new", argv[1])
    db.notify("$", b"set", argv[1])
    db.propagate(b"SET", argv[1], argv[2])
    db.store.dirty += 1
    return old


@command("GETDEL", arity=2, flags="write fast", keys=(1, 1, 1), group="string")
def getdel(db, argv):
    """GETDEL key"""
    old = _read_string(db, argv[1])
    if old is not None:
        db.delete(argv[1])
        db.notify("g", b"del", argv[1])
        db.propagate(b"DEL", argv[1])
        db.store.dirty += 1
    return old


@command("GETEX", arity=-2, flags="write fast", keys=(1, 1, 1), group="string")
def getex(db, argv):
    """GETEX key [EX s|PX ms|EXAT ts|PXAT ts|PERSIST]"""
    flags, expire = _parse_set_options(argv, 2, False)
    key = argv[1]
    value = _read_string(db, key)
    if value is None:
        return None
    if expire is not None:
        when = _deadline_ms(db, expire, flags, "getex")
        if when <= db.store.clock():
            db.delete(key)
            db.notify("g", b"del", key)
            db.propagate(b"DEL", key)
        else:
            db.expire_at(key, when)
            db.notify("g", b"expire", key)
            db.propagate(b"PEXPIREAT", key, b"%d" % when)
        db.store.dirty += 1
    elif flags & _PERSIST:
        if db.persist(key):
            db.notify("g", b"persist", key)
            db.propagate(b"PERSIST", key)
            db.store.dirty += 1
    return value


@command("MGET", arity=-2, flags="readonly fast", keys=(1, -1, 1), group="string")
def mget(db, argv):
    """MGET key [key ...] -- a non-string value reads as nil (each key is a read lookup, counted as
    a hit or a miss, as Redis's lookupKeyRead)."""
    out = []
    for key in argv[1:]:
        value = db.read(key, object)
        out.append(value if isinstance(value, bytes) else None)
    return out


def _check_pairs(argv: list[bytes]) -> None:
    if len(argv) % 2 == 0:
        raise CommandError(f"ERR wrong number of arguments for '{argv[0].decode().lower()}' command")


@command("MSET", arity=-3, flags="write denyoom", keys=(1, -1, 2), group="string")
def mset(db, argv):
    """MSET key value [key value ...]"""
    _check_pairs(argv)
    for i in range(1, len(argv), 2):
        _set_key(db, argv[i], argv[i + 1])
        db.notify("$", b"set", argv[i])
    db.store.dirty += (len(argv) - 1) // 2
    return OK


@command("MSETNX", arity=-3, flags="write denyoom", keys=(1, -1, 2), group="string")
def msetnx(db, argv):
    """MSETNX key value [key value ...] -- all or nothing: 0 if any key exists."""
    _check_pairs(argv)
    if any(db.exists(argv[i]) for i in range(1, len(argv), 2)):
        return 0
    return 1 if mset(db, argv) == OK else 0


@command("APPEND", arity=3, flags="write denyoom fast", keys=(1, 1, 1), group="string")
def append(db, argv):
    """APPEND key value -- the new length."""
    key, extra = argv[1], argv[2]
    old = db.typed(key, bytes)
    if old is None:
        db.set(key, extra)
        db.notify("n", b"new", key)
        new = extra
    else:
        _check_length(db, len(old) + len(extra))
        new = RawString(old + extra)
        db.set(key, new, keep_ttl=True)
    db.notify("$", b"append", key)
    db.store.dirty += 1
    return len(new)


@command("STRLEN", arity=2, flags="readonly fast", keys=(1, 1, 1), group="string")
def strlen(db, argv):
    """STRLEN key"""
    value = _read_string(db, argv[1])
    return 0 if value is None else len(value)


@command("SETRANGE", arity=4, flags="write denyoom", keys=(1, 1, 1), group="string")
def setrange(db, argv):
    """SETRANGE key offset value -- zero-pads as needed; the new length."""
    offset = parse_int(argv[2])
    if offset < 0:
        raise CommandError("ERR offset is out of range")
    key, patch = argv[1], argv[3]
    old = db.typed(key, bytes)
    created = old is None
    if created:
        if not patch:
            return 0
        old = b""
    elif not patch:
        return len(old)
    _check_length(db, offset + len(patch))
    buf = bytearray(old)
    if len(buf) < offset:
        buf.extend(bytes(offset - len(buf)))
    buf[offset:offset + len(patch)] = patch
    db.set(key, RawString(buf), keep_ttl=True)
    if created:
        db.notify("n", b"new", key)
    db.notify("$", b"setrange", key)
    db.store.dirty += 1
    return len(buf)


@command("GETRANGE", arity=4, flags="readonly", keys=(1, 1, 1), group="string")
def getrange(db, argv):
    """GETRANGE key start end -- inclusive, negative indexes count from the end."""
    start = parse_int(argv[2])
    end = parse_int(argv[3])
    value = _read_string(db, argv[1])
    if not value:
        return b""
    n = len(value)
    if start < 0 and end < 0 and start > end:
        return b""
    if start < 0:
        start = max(n + start, 0)
    if end < 0:
        end = max(n + end, 0)
    end = min(end, n - 1)
    if start > end:
        return b""
    return value[start:end + 1]


@command("SUBSTR", arity=4, flags="readonly", keys=(1, 1, 1), group="string")
def substr(db, argv):
    """SUBSTR key start end -- the old name of GETRANGE."""
    return getrange(db, argv)


def _incr_by(db, key: bytes, delta: int) -> int:
    old = db.typed(key, bytes)
    current = 0
    if old is not None:
        current = try_int(old)
        if current is None:
            raise CommandError(NOT_AN_INTEGER)
    result = current + delta
    if not LLONG_MIN <= result <= LLONG_MAX:
        raise CommandError(OVERFLOW)
    db.set(key, b"%d" % result, keep_ttl=True)
    if old is None:
        db.notify("n", b"new", key)
    db.notify("$", b"incrby", key)
    db.store.dirty += 1
    return result


@command("INCR", arity=2, flags="write denyoom fast", keys=(1, 1, 1), group="string")
def incr(db, argv):
    """INCR key"""
    return _incr_by(db, argv[1], 1)


@command("DECR", arity=2, flags="write denyoom fast", keys=(1, 1, 1), group="string")
def decr(db, argv):
    """DECR key"""
    return _incr_by(db, argv[1], -1)


@command("INCRBY", arity=3, flags="write denyoom fast", keys=(1, 1, 1), group="string")
def incrby(db, argv):
    """INCRBY key increment"""
    return _incr_by(db, argv[1], parse_int(argv[2]))


@command("DECRBY", arity=3, flags="write denyoom fast", keys=(1, 1, 1), group="string")
def decrby(db, argv):
    """DECRBY key decrement"""
    delta = parse_int(argv[2])
    if delta == LLONG_MIN:
        raise CommandError("ERR decrement would overflow")
    return _incr_by(db, argv[1], -delta)


@command("INCRBYFLOAT", arity=3, flags="write denyoom fast", keys=(1, 1, 1), group="string")
def incrbyfloat(db, argv):
    """INCRBYFLOAT key increment -- computed in long double precision, as Redis does."""
    key = argv[1]
    old = db.typed(key, bytes)
    current = parse_long_double(old) if old is not None else 0
    result = add_long_double(current, parse_long_double(argv[2]))
    if isinstance(result, float):  # only inf/nan stay floats
        raise CommandError("ERR increment would produce NaN or Infinity")
    text = EmbString(format_long_double(result))
    db.set(key, text, keep_ttl=True)
    if old is None:
        db.notify("n", b"new", key)
    db.notify("$", b"incrbyfloat", key)
    db.propagate(b"SET", key, text, b"KEEPTTL")  # the exact result, not the float arithmetic
    db.store.dirty += 1
    return text


def _lcs_rows(a: bytes, b: bytes) -> list[int]:
    """The LCS table of Redis's lcsCommand, one int per row, computed bit-parallel (Hyyro 2004).

    Bit j of row i is 0 exactly where LCS(i, j+1) = LCS(i, j) + 1, so
    LCS(i, j) = j - popcount(row_i & (2**j - 1)). A Python loop over every cell would stall the
    shard for seconds on strings of a few kilobytes; this costs a few big-int operations per row.
    """
    full = (1 << len(b)) - 1
    reversed_b = b[::-1]
    masks = {}
    for ch in set(b):
        bits = reversed_b.translate(_ONE_BYTE_TABLES[ch])
        masks[ch] = int(bits, 2)
    rows = [full]
    v = full
    for ch in a:
        u = v & masks.get(ch, 0)
        v = ((v + u) | (v - u)) & full
        rows.append(v)
    return rows


# For each byte value, a translation to "1" for that byte and "0" for every other one.
_ONE_BYTE_TABLES = [bytes(49 if x == c else 48 for x in range(256)) for c in range(256)]


@command("LCS", arity=-3, flags="readonly", keys=(1, 2, 1), group="string")
def lcs(db, argv):
    """LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]

    The table holds the same values as Redis's lcsCommand (computed bit-parallel) and the backward
    walk follows it step by step, so the reported ranges (and their quirks) are the same.
    """
    a_val, b_val = db.read(argv[1], object), db.read(argv[2], object)  # hits/misses, as Redis
    if (a_val is not None and not isinstance(a_val, bytes)) or (
            b_val is not None and not isinstance(b_val, bytes)):
        raise CommandError("ERR The specified keys must contain string values")
    a = a_val or b""
    b = b_val or b""
    get_len = get_idx = with_match_len = False
    min_match_len = 0
    j = 3
    while j < len(argv):
        opt = argv[j].lower()
        if opt == b"idx":
            get_idx = True
        elif opt == b"len":
            get_len = True
        elif opt == b"withmatchlen":
            with_match_len = True
        elif opt == b"minmatchlen" and j + 1 < len(argv):
            min_match_len = max(parse_int(argv[j + 1]), 0)
            j += 1
        else:
            raise CommandError(SYNTAX_ERROR)
        j += 1
    if get_idx and get_len:
        raise CommandError("ERR If you want both the length and indexes, please just use IDX.")

    alen, blen = len(a), len(b)
    rows = _lcs_rows(a, b)
    total = blen - rows[alen].bit_count()
    if get_len:
        return total

    result = bytearray(total)
    idx = total
    matches = []
    a_start, a_end, b_start, b_end = alen, 0, 0, 0
    i, jj = alen, blen
    while i > 0 and jj > 0:
        emit = False
        if a[i - 1] == b[jj - 1]:
            result[idx - 1] = a[i - 1]
            if a_start == alen:
                a_start = a_end = i - 1
                b_start = b_end = jj - 1
            elif a_start == i and b_start == jj:
                a_start -= 1
                b_start -= 1
            else:
                emit = True
            if a_start == 0 or b_start == 0:
                emit = True
            idx -= 1
            i -= 1
            jj -= 1
        else:
            below = (1 << jj) - 1
            lcs_up = jj - (rows[i - 1] & below).bit_count()          # LCS(i-1, j)
            lcs_left = jj - 1 - (rows[i] & (below >> 1)).bit_count()  # LCS(i, j-1)
            if lcs_up > lcs_left:
                i -= 1
            else:
                jj -= 1
            if a_start != alen:
                emit = True
        if emit:
            match_len = a_end - a_start + 1
            if min_match_len == 0 or match_len >= min_match_len:
                entry = [[a_start, a_end], [b_start, b_end]]
                if with_match_len:
                    entry.append(match_len)
                matches.append(entry)
            a_start = alen
    if get_idx:
        return {b"matches": matches, b"len": total}
    return bytes(result)


