"""Generic keyspace commands (Redis group "generic"): existence, deletion, expiry, renames, scans."""

from __future__ import annotations

from commands.args import LLONG_MAX, LLONG_MIN, glob_match, parse_int
from commands.registry import Route, command, container
from keyspace.db import scan_snapshot, type_name
from keyspace.encoding import is_shared_integer, object_encoding
from protocol.errors import (
    DB_INDEX_OUT_OF_RANGE, INVALID_EXPIRE, NO_SUCH_KEY, NOT_AN_INTEGER, SYNTAX_ERROR, CommandError,
)
from protocol.replies import OK

__all__ = ["CopiedString", "copy_value", "db_index", "parse_cursor", "parse_scan_options"]

_SAME_OBJECT = "ERR source and destination objects are the same"


class CopiedString(bytes):
    """A string made by COPY. Redis duplicates the object, so even a small integer is no longer the
    shared one (OBJECT REFCOUNT 1, not INT_MAX); the encoding stays what it was."""

    __slots__ = ()


def copy_value(value):
    """A deep-enough copy for COPY: containers are copied, bytes are immutable."""
    if type(value) is bytes:
        return CopiedString(value)
    return value.copy() if hasattr(value, "copy") else value


_INT_RANGE = "ERR value is out of range, value must between -2147483648 and 2147483647"


def db_index(db, raw: bytes, error: str = NOT_AN_INTEGER) -> int:
    """Parse a database number as getIntFromObjectOrReply does, then check it against `databases`.

    A custom `error` (SWAPDB's "invalid first DB index") also replaces the out-of-int-range text.
    """
    index = parse_int(raw, error)
    if not -2**31 <= index <= 2**31 - 1:
        raise CommandError(_INT_RANGE if error == NOT_AN_INTEGER else error)
    if not 0 <= index < len(db.store.dbs):
        raise CommandError(DB_INDEX_OUT_OF_RANGE)
    return index


# -- existence and deletion ------------------------------------------------------------------------

def _delete_keys(db, argv):
    deleted = 0
    missing = []
    for key in argv[1:]:
        if db.delete(key):
            db.notify("g", b"del", key)
            deleted += 1
        else:
            missing.append(key)
    db.store.dirty += deleted
    if deleted:
        for key in missing:  # Redis signals only the keys it deleted
            db.unmodified(key)
    return deleted


@command("DEL", arity=-2, flags="write", keys=(1, -1, 1), group="generic")
def del_(db, argv):
    """DEL key [key ...] -- the number of keys removed."""
    return _delete_keys(db, argv)


@command("UNLINK", arity=-2, flags="write fast", keys=(1, -1, 1), group="generic")
def unlink(db, argv):
    """UNLINK key [key ...] -- DEL; Python frees memory as it goes, so there is nothing to defer."""
    return _delete_keys(db, argv)


@command("EXISTS", arity=-2, flags="readonly fast", keys=(1, -1, 1), group="generic")
def exists(db, argv):
    """EXISTS key [key ...] -- repeated keys count each time; each is a read lookup (hit/miss)."""
    return sum(1 for key in argv[1:] if db.read(key, object) is not None)


@command("TOUCH", arity=-2, flags="readonly fast", keys=(1, -1, 1), group="generic")
def touch(db, argv):
    """TOUCH key [key ...]"""
    return exists(db, argv)


@command("TYPE", arity=2, flags="readonly fast", keys=(1, 1, 1), group="generic")
def type_(db, argv):
    """TYPE key -- a status reply: string, list, set, zset, hash or none."""
    value = db.read(argv[1], object)
    return "none" if value is None else type_name(value)


# -- expiry ------------------------------------------------------------------------------------------

_NX, _XX, _GT, _LT = 1, 2, 4, 8
_EXPIRE_OPTIONS = {b"nx": _NX, b"xx": _XX, b"gt": _GT, b"lt": _LT}


def _expire_generic(db, argv, base_ms: int, unit_ms: int, name: str):
    """EXPIRE/PEXPIRE/EXPIREAT/PEXPIREAT key time [NX|XX|GT|LT]: Redis's expireGenericCommand."""
    flags = 0
    for raw in argv[3:]:
        opt = _EXPIRE_OPTIONS.get(raw.lower())
        if opt is None:
            raise CommandError(f"ERR Unsupported option {raw.decode('utf-8', 'replace')}")
        flags |= opt
    if flags & _NX and flags & (_XX | _GT | _LT):
        raise CommandError("ERR NX and XX, GT or LT options at the same time are not compatible")
    if flags & _GT and flags & _LT:
        raise CommandError("ERR GT and LT options at the same time are not compatible")
    when = parse_int(argv[2])
    if unit_ms == 1000:
        if when > LLONG_MAX // 1000 or when < -(-LLONG_MIN // 1000):
            raise CommandError(INVALID_EXPIRE % name)
        when *= 1000
    if when > LLONG_MAX - base_ms:
        raise CommandError(INVALID_EXPIRE % name)
    when += base_ms
    key = argv[1]
    if db.get(key) is None:
        return 0
    if flags:
        current = db.ttl(key)
        if flags & _NX and current is not None:
            return 0
        if flags & _XX and current is None:
            return 0
        if flags & _GT and (current is None or when <= current):
            return 0
        if flags & _LT and current is not None and when >= current:
            return 0
    if when <= db.store.clock():
        db.delete(key)
        db.notify("g", b"del", key)
        db.propagate(b"DEL", key)
    else:
        db.expire_at(key, when)
        db.notify("g", b"expire", key)
        db.propagate(b"PEXPIREAT", key, b"%d" % when, *argv[3:])
    db.store.dirty += 1
    return 1


@command("EXPIRE", arity=-3, flags="write fast", keys=(1, 1, 1), group="generic")
def expire(db, argv):
    """EXPIRE key seconds [NX|XX|GT|LT]"""
    return _expire_generic(db, argv, db.store.clock(), 1000, "expire")


@command("PEXPIRE", arity=-3, flags="write fast", keys=(1, 1, 1), group="generic")
def pexpire(db, argv):
    """PEXPIRE key milliseconds [NX|XX|GT|LT]"""
    return _expire_generic(db, argv, db.store.clock(), 1, "pexpire")


@command("EXPIREAT", arity=-3, flags="write fast", keys=(1, 1, 1), group="generic")
def expireat(db, argv):
    """EXPIREAT key unix-time-seconds [NX|XX|GT|LT]"""
    return _expire_generic(db, argv, 0, 1000, "expireat")


@command("PEXPIREAT", arity=-3, flags="write fast", keys=(1, 1, 1), group="generic")
def pexpireat(db, argv):
    """PEXPIREAT key unix-time-milliseconds [NX|XX|GT|LT]"""
    return _expire_generic(db, argv, 0, 1, "pexpireat")


def _ttl_generic(db, key: bytes, absolute: bool, in_ms: bool) -> int:
    """TTL, PTTL, EXPIRETIME, PEXPIRETIME: -2 for a missing key, -1 without a TTL."""
    if db.read(key, object) is None:
        return -2
    when = db.ttl(key)
    if when is None:
        return -1
    value = when if absolute else max(when - db.store.clock(), 0)
    return value if in_ms else (value + 500) // 1000


@command("TTL", arity=2, flags="readonly fast", keys=(1, 1, 1), group="generic")
def ttl(db, argv):
    """TTL key"""
    return _ttl_generic(db, argv[1], False, False)


@command("PTTL", arity=2, flags="readonly fast", keys=(1, 1, 1), group="generic")
def pttl(db, argv):
    """PTTL key"""
    return _ttl_generic(db, argv[1], False, True)


@command("EXPIRETIME", arity=2, flags="readonly fast", keys=(1, 1, 1), group="generic")
def expiretime(db, argv):
    """EXPIRETIME key -- absolute unix seconds."""
    return _ttl_generic(db, argv[1], True, False)


@command("PEXPIRETIME", arity=2, flags="readonly fast", keys=(1, 1, 1), group="generic")
def pexpiretime(db, argv):
    """PEXPIRETIME key -- absolute unix milliseconds."""
    return _ttl_generic(db, argv[1], True, True)


@command("PERSIST", arity=2, flags="write fast", keys=(1, 1, 1), group="generic")
def persist(db, argv):
    """PERSIST key -- 1 if a TTL was removed."""
    if db.get(argv[1]) is None or not db.persist(argv[1]):
        return 0
    db.notify("g", b"persist", argv[1])
    db.store.dirty += 1
    return 1


# -- moving keys -------------------------------------------------------------------------------------

def _move_key(src_db, key: bytes, dst_db, dst_key: bytes, value, keep_source: bool) -> None:
    """The destination is always added afresh (Redis's dbAdd): it is a `new` key."""
    when = src_db.ttl(key)
    if not keep_source:
        src_db.delete(key)
    dst_db.set(dst_key, value)
    dst_db.notify("n", b"new", dst_key)
    if when is not None:
        dst_db.expire_at(dst_key, when)


def _rename_generic(db, argv, nx: bool):
    src, dst = argv[1], argv[2]
    value = db.get(src)
    if value is None:
        raise CommandError(NO_SUCH_KEY)
    if src == dst:
        return 0 if nx else OK
    if db.get(dst) is not None:
        if nx:
            return 0
        db.delete(dst)
    _move_key(db, src, db, dst, value, keep_source=False)
    db.notify("g", b"rename_from", src)
    db.notify("g", b"rename_to", dst)
    db.store.dirty += 1
    return 1 if nx else OK


@command("RENAME", arity=3, flags="write", keys=(1, 2, 1), group="generic")
def rename(db, argv):
    """RENAME key newkey -- the TTL moves with the value."""
    return _rename_generic(db, argv, nx=False)


@command("RENAMENX", arity=3, flags="write fast", keys=(1, 2, 1), group="generic")
def renamenx(db, argv):
    """RENAMENX key newkey -- 0 if newkey exists."""
    return _rename_generic(db, argv, nx=True)


@command("MOVE", arity=3, flags="write fast", keys=(1, 1, 1), group="generic")
def move(db, argv):
    """MOVE key db -- 1 if moved; 0 if missing here or present there."""
    target = db.store.dbs[db_index(db, argv[2])]
    if target.index == db.index:
        raise CommandError(_SAME_OBJECT)
    key = argv[1]
    value = db.get(key)
    if value is None or target.get(key) is not None:
        return 0
    _move_key(db, key, target, key, value, keep_source=False)
    db.notify("g", b"move_from", key)
    target.notify("g", b"move_to", key)
    db.store.dirty += 1
    target.signal_modified(key)     # Redis signals both; the key arguments are in this db only
    return 1


@command("COPY", arity=-3, flags="write denyoom", keys=(1, 2, 1), group="generic")
def copy(db, argv):
    """COPY source destination [DB destination-db] [REPLACE]"""
    replace = False
    target = db
    j = 3
    while j < len(argv):
        opt = argv[j].lower()
        if opt == b"replace":
            replace = True
        elif opt == b"db" and j + 1 < len(argv):
            target = db.store.dbs[db_index(db, argv[j + 1])]
            j += 1
        else:
            raise CommandError(SYNTAX_ERROR)
        j += 1
    src, dst = argv[1], argv[2]
    if target.index == db.index and src == dst:
        raise CommandError(_SAME_OBJECT)
    value = db.read(src, object)  # a read lookup in Redis (counts a hit or miss); dst is a write
    if value is None:
        return 0
    if target.get(dst) is not None:
        if not replace:
            return 0
        target.delete(dst)
    _move_key(db, src, target, dst, copy_value(value), keep_source=True)
    target.notify("g", b"copy_to", dst)
    db.store.dirty += 1
    # Redis's copyCommand signals the destination only, in the destination's database.
    db.unmodified(src)
    if target.index != db.index:
        db.unmodified(dst)
        target.signal_modified(dst)
    return 1


# -- whole-keyspace reads ------------------------------------------------------------------------------

@command("KEYS", arity=2, flags="readonly", group="generic", route=Route.ALL)
def keys(db, argv):
    """KEYS pattern"""
    pattern = argv[1]
    if pattern == b"*":
        return list(db.keys())
    return [k for k in db.keys() if glob_match(pattern, k)]


@command("RANDOMKEY", arity=1, flags="readonly", group="generic", route=Route.ALL)
def randomkey(db, argv):
    """RANDOMKEY -- nil only when no live key is left.

    `random_key` gives up after 100 expired picks (deleting each); Redis keeps going until it finds
    a live key or the database is empty, so retry while that makes progress.
    """
    while True:
        before = len(db)
        key = db.random_key()
        if key is not None or len(db) in (0, before):
            return key


def parse_cursor(raw: bytes) -> int:
    """strtoul as Redis uses it: optional sign, decimal digits, wraps negatives, no spaces.

    An empty argument is cursor 0: strtoul consumes nothing and stops at the terminator.
    """
    if not raw:
        return 0
    text = raw.decode("latin-1")
    body = text[1:] if text[:1] in "+-" else text
    if not body.isdigit() or not body.isascii():
        raise CommandError("ERR invalid cursor")
    value = int(text)
    if abs(value) >= 2**64:
        raise CommandError("ERR invalid cursor")
    return value % 2**64


def parse_scan_options(argv: list[bytes], start: int, allow_type: bool):
    """[MATCH pattern] [COUNT count] [TYPE type] -> (pattern or None, count, type or None)."""
    count, pattern, wanted_type = 10, None, None
    i = start
    while i < len(argv):
        opt = argv[i].lower()
        more = len(argv) - i >= 2
        if opt == b"count" and more:
            count = parse_int(argv[i + 1])
            if count < 1:
                raise CommandError(SYNTAX_ERROR)
        elif opt == b"match" and more:
            pattern = None if argv[i + 1] == b"*" else argv[i + 1]
        elif opt == b"type" and allow_type and more:
            wanted_type = argv[i + 1].decode("utf-8", "replace")
        else:
            raise CommandError(SYNTAX_ERROR)
        i += 2
    return pattern, count, wanted_type


@command("SCAN", arity=-2, flags="readonly", group="generic", route=Route.ALL)
def scan(db, argv):
    """SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]"""
    cursor = parse_cursor(argv[1])
    pattern, count, wanted_type = parse_scan_options(argv, 2, allow_type=True)
    cursor, batch = scan_snapshot(db.scan_cache, cursor, lambda: list(db.keys()), count)
    out = []
    for key in batch:
        value = db.get(key)
        if value is None:
            continue
        if pattern is not None and not glob_match(pattern, key):
            continue
        if wanted_type is not None and type_name(value) != wanted_type.lower():
            continue
        out.append(key)
    return [b"%d" % cursor, out]


# -- OBJECT ---------------------------------------------------------------------------------------------

container("OBJECT", arity=-2, group="generic")

_OBJECT_HELP = [
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
]


@command("OBJECT|HELP", arity=2, flags="loading stale", group="generic", route=Route.LOCAL)
def object_help(client, argv):
    """OBJECT HELP"""
    return list(_OBJECT_HELP)


def _object_lookup(db, key: bytes):
    """OBJECT's lookup (LOOKUP_NOTOUCH|LOOKUP_NONOTIFY): counted as a hit or miss, but a miss is no
    `keymiss` event, so this does not go through db.read."""
    value = db.get(key)
    if value is None:
        db.store.keyspace_misses += 1
    else:
        db.store.keyspace_hits += 1
    return value


@command("OBJECT|ENCODING", arity=3, flags="readonly", keys=(2, 2, 1), group="generic")
def object_encoding_(db, argv):
    """OBJECT ENCODING key"""
    value = _object_lookup(db, argv[2])
    return None if value is None else object_encoding(value, db.store.config).encode()


@command("OBJECT|REFCOUNT", arity=3, flags="readonly", keys=(2, 2, 1), group="generic")
def object_refcount(db, argv):
    """OBJECT REFCOUNT key -- shared integers report INT_MAX, as in Redis."""
    value = _object_lookup(db, argv[2])
    if value is None:
        return None
    return 2147483647 if is_shared_integer(value) else 1


def _lfu_selected(db) -> bool:
    return "lfu" in str(db.store.config.get("maxmemory-policy", "noeviction"))


@command("OBJECT|IDLETIME", arity=3, flags="readonly", keys=(2, 2, 1), group="generic")
def object_idletime(db, argv):
    """OBJECT IDLETIME key -- Shardis does not track access times yet, so a live key reports 0."""
    value = _object_lookup(db, argv[2])
    if value is None:
        return None
    if _lfu_selected(db):
        raise CommandError(
            "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when "
            "switching between policies at runtime LRU and LFU data will take some time to adjust.")
    return 0


@command("OBJECT|FREQ", arity=3, flags="readonly", keys=(2, 2, 1), group="generic")
def object_freq(db, argv):
    """OBJECT FREQ key -- only under an LFU policy; the counter starts at LFU_INIT_VAL (5)."""
    value = _object_lookup(db, argv[2])
    if value is None:
        return None
    if not _lfu_selected(db):
        raise CommandError(
            "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note "
            "that when switching between policies at runtime LRU and LFU data will take some time "
            "to adjust.")
    return 5
