"""The generic keyspace commands against a real redis-server 7.0, reply for reply.

Replies are compared byte for byte through `Duo` (see test_strings_diff.py). KEYS and SCAN are
compared as sets (Redis leaves their order, and SCAN's cursors, unspecified); TTLs with a tolerance.
"""

from __future__ import annotations

import pytest

from tests.differential.test_strings_diff import Duo, Err, assert_ttl_close, make_wrong_type

pytestmark = [pytest.mark.differential, pytest.mark.timeout(60)]

FAR = 4102444800  # 2100-01-01 in unix seconds: deadlines that never pass during a test


@pytest.fixture
def duo(pair):
    d = Duo(pair)
    yield d
    d.close()


# -- arity and unknown subcommands ---------------------------------------------------------------------

WRONG_ARITY = [
    ("DEL",), ("UNLINK",), ("EXISTS",), ("TOUCH",), ("TYPE",), ("TYPE", "a", "b"), ("EXPIRE", "k"),
    ("PEXPIRE", "k"), ("EXPIREAT", "k"), ("PEXPIREAT", "k"), ("TTL",), ("PTTL", "a", "b"),
    ("EXPIRETIME",), ("PEXPIRETIME", "a", "b"), ("PERSIST",), ("RENAME", "a"), ("RENAMENX", "a"),
    ("RENAME", "a", "b", "c"), ("MOVE", "a"), ("MOVE", "a", "1", "2"), ("COPY", "a"), ("KEYS",),
    ("KEYS", "a", "b"), ("RANDOMKEY", "x"), ("SCAN",), ("OBJECT",), ("OBJECT", "ENCODING"),
    ("OBJECT", "ENCODING", "a", "b"), ("OBJECT", "REFCOUNT"), ("OBJECT", "FREQ"),
    ("OBJECT", "IDLETIME", "a", "b"), ("OBJECT", "HELP", "x"), ("OBJECT", "BOGUS"),
    ("OBJECT", "bogus", "k"), ("object", "encoding"),
]


def test_wrong_arity_and_subcommands(duo):
    for args in WRONG_ARITY:
        duo.error(*args)


def test_object_help(duo):
    duo("OBJECT", "HELP")
    duo("object", "help")


# -- existence and deletion ------------------------------------------------------------------------------

def test_del_exists_touch_unlink_across_shards(duo):
    keys = [f"user:{i}" for i in range(30)]
    duo("MSET", *[x for k in keys for x in (k, k)])
    duo("EXISTS", *keys)
    duo("EXISTS", keys[0], keys[0], "missing", keys[1], keys[0])
    duo("TOUCH", *keys[:10], "missing", keys[0])
    duo("DEL", *keys[:10], "missing", keys[0], keys[0])
    duo("EXISTS", *keys)
    duo("UNLINK", *keys[10:20], keys[25])
    duo("UNLINK", "missing")
    duo("DEL", "missing", "missing2")
    duo("EXISTS", *keys)
    duo("DBSIZE")
    duo("DEL", *keys)
    duo("DBSIZE")


def test_type(duo):
    duo("TYPE", "missing")
    duo("SET", "s", "v")
    duo("TYPE", "s")
    duo("SET", "n", "12")
    duo("TYPE", "n")
    make_wrong_type(duo, "l")
    duo("TYPE", "l")
    duo("GET", "l")
    duo("SET", "l", "now a string")
    duo("TYPE", "l")


# -- expiry ------------------------------------------------------------------------------------------------

EXPIRE_ARGUMENTS = [
    ["abc"], ["1.5"], [" 1"], ["+1"], [""], ["99999999999999999999"], ["9223372036854775807"],
    ["-9223372036854775808"], ["9223372036854775"], ["9223372036854776"], ["-9223372036854775"],
    ["-9223372036854776"], ["100", "BOGUS"], ["100", "NX", "XX"], ["100", "NX", "GT"],
    ["100", "NX", "LT"], ["100", "GT", "LT"], ["100", "XX", "NX"], ["100", "LT", "GT"],
    ["100", "XX", "GT", "LT"], ["abc", "BOGUS"], ["abc", "NX", "XX"], ["100", "nx", "bogus"],
    ["100", "xx", "gt"], ["100", "Xx", "Lt"], ["100", "NX", "NX"],
]


@pytest.mark.parametrize("command", ["EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT"])
def test_expire_argument_errors(duo, command):
    """Parsing happens before the key lookup: the same on a missing and on a present key."""
    for args in EXPIRE_ARGUMENTS:
        duo(command, "missing", *args)
        duo("SET", "k", "v")
        duo(command, "k", *args)
        duo("EXISTS", "k")
        duo("TTL", "k")


def test_expire_huge_values(duo):
    duo("SET", "k", "v")
    duo("PEXPIREAT", "k", "9223372036854775807")
    duo("PEXPIRETIME", "k")
    duo("EXPIRETIME", "k")
    duo("EXPIREAT", "k", "9223372036854775")
    duo("PEXPIRETIME", "k")
    duo("PEXPIRE", "k", "9223372036854775807")
    duo("PEXPIRE", "k", "9223372036854775806")
    duo("EXPIRE", "k", "9223372036854775")
    duo("PEXPIRETIME", "k")


PAST_DEADLINES = [
    ("EXPIRE", "0"), ("EXPIRE", "-1"), ("PEXPIRE", "0"), ("PEXPIRE", "-1000"), ("EXPIREAT", "1"),
    ("EXPIREAT", "0"), ("EXPIREAT", "-5"), ("PEXPIREAT", "1000"), ("EXPIRE", "-9223372036854775"),
    ("PEXPIRE", "-9223372036854775808"), ("PEXPIREAT", "-9223372036854775808"),
]


def test_expire_in_the_past_deletes(duo):
    for command, value in PAST_DEADLINES:
        duo("SET", "k", "v")
        duo(command, "k", value)
        duo("EXISTS", "k")
        duo(command, "missing", value)
        duo("SET", "t", "v", "EX", "100")
        duo(command, "t", value, "XX")
        duo("EXISTS", "t")


def test_expire_sets_ttl(duo):
    duo("SET", "k", "v")
    duo("EXPIRE", "k", "100")
    assert_ttl_close(duo, "k", 100_000)
    duo("PEXPIRE", "k", "50000")
    assert_ttl_close(duo, "k", 50_000)
    duo("EXPIREAT", "k", FAR)
    duo("EXPIRETIME", "k")
    duo("PEXPIRETIME", "k")
    duo("PEXPIREAT", "k", FAR * 1000 + 123)
    duo("PEXPIRETIME", "k")
    duo("EXPIRE", "missing", "100")
    duo("TTL", "missing")


OPTION_STEPS = [
    # (deadline offset in seconds from FAR, option) applied in order to a key that starts without TTL
    (100, "GT"), (100, "XX"), (100, "LT"), (200, "NX"), (100, "NX"), (50, "XX"), (80, "GT"),
    (90, "LT"), (40, "LT"), (40, "GT"), (40, "LT"), (60, "GT"), (60, "gt"), (10, "lt"), (500, "xx"),
]


@pytest.mark.parametrize("command,scale", [("EXPIREAT", 1), ("PEXPIREAT", 1000)])
def test_expire_options_sequence(duo, command, scale):
    duo("SET", "k", "v")
    for offset, option in OPTION_STEPS:
        duo(command, "k", (FAR + offset) * scale, option)
        duo("PEXPIRETIME", "k")
    duo("PERSIST", "k")
    duo(command, "k", FAR * scale, "XX")
    duo(command, "k", FAR * scale, "GT")
    duo(command, "k", FAR * scale, "LT")
    duo("EXPIRETIME", "k")
    duo(command, "missing", FAR * scale, "NX")
    duo(command, "missing", FAR * scale, "LT")


def test_expire_relative_options(duo):
    """Relative deadlines far enough apart that the few ms between the two servers cannot matter."""
    duo("SET", "k", "v")
    duo("EXPIRE", "k", "1000", "XX")
    duo("EXPIRE", "k", "1000", "GT")
    duo("EXPIRE", "k", "1000", "NX")
    duo("TTL", "k")
    duo("EXPIRE", "k", "500", "GT")
    duo("EXPIRE", "k", "2000", "LT")
    duo("EXPIRE", "k", "3000", "GT")
    duo("TTL", "k")
    duo("PEXPIRE", "k", "100000", "LT")
    duo("TTL", "k")
    duo("EXPIRE", "k", "-1", "LT")
    duo("EXISTS", "k")
    duo("SET", "k", "v")
    duo("EXPIRE", "k", "-1", "GT")
    duo("EXPIRE", "k", "-1", "XX")
    duo("EXISTS", "k")
    duo("EXPIRE", "k", "-1", "LT")
    duo("EXISTS", "k")


def test_ttl_family(duo):
    for command in ("TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"):
        duo(command, "missing")
        duo("SET", "p", "v")
        duo(command, "p")
    duo("SET", "k", "v", "PXAT", str(FAR * 1000 + 499))
    duo("EXPIRETIME", "k")
    duo("PEXPIRETIME", "k")
    duo("SET", "k", "v", "PXAT", str(FAR * 1000 + 500))
    duo("EXPIRETIME", "k")
    duo("SET", "k", "v", "PXAT", str(FAR * 1000 + 501))
    duo("EXPIRETIME", "k")


@pytest.mark.parametrize("ms,seconds", [(2400, 2), (2600, 3), (900, 1), (400, 0), (100_400, 100)])
def test_ttl_rounds_to_nearest_second(duo, ms, seconds):
    """TTL is (ms + 500) / 1000: compare with the exact expected value, not just with each other."""
    duo("SET", "k", "v", "PX", ms)
    ours, real = duo.both("TTL", "k")
    assert ours == real == seconds


def test_persist(duo):
    duo("PERSIST", "missing")
    duo("SET", "k", "v")
    duo("PERSIST", "k")
    duo("EXPIRE", "k", "100")
    duo("PERSIST", "k")
    duo("TTL", "k")
    duo("PERSIST", "k")


# -- RENAME / RENAMENX ---------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["RENAME", "RENAMENX"])
def test_rename(duo, command):
    duo(command, "missing", "x")
    duo(command, "missing", "missing")
    duo("SET", "a", "1")
    duo(command, "a", "a")
    duo(command, "a", "b")
    duo("MGET", "a", "b")
    duo("SET", "c", "3")
    duo(command, "b", "c")
    duo("MGET", "b", "c")
    duo("SET", "t", "v", "EX", "100")
    duo("SET", "u", "w", "EX", "500")
    duo(command, "t", "fresh")
    assert_ttl_close(duo, "fresh", 100_000)
    duo(command, "fresh", "u")
    duo("TTL", "u")
    duo("SET", "p", "persistent")
    duo("SET", "q", "timed", "EX", "100")
    duo(command, "p", "q")
    duo("TTL", "q")
    duo("GET", "q")


def test_rename_across_shards(duo):
    names = [f"key{i}" for i in range(20)]
    for i, name in enumerate(names):
        duo("SET", name, i, "EX", 1000 + i)
    for src, dst in zip(names, names[1:] + ["last"]):
        duo("RENAME", src, dst + ":new")
        duo("GET", dst + ":new")
        duo("TTL", dst + ":new")
        duo("RENAMENX", dst + ":new", names[0])
        duo("EXISTS", src)
    duo("DBSIZE")
    duo("OBJECT", "ENCODING", "last:new")


# -- MOVE / COPY ---------------------------------------------------------------------------------------------

def test_move_db_errors(duo):
    duo("SET", "k", "v")
    for db in ("16", "-1", "abc", "1.0", "2147483647", "2147483648", "-2147483648", "-2147483649",
               "9223372036854775808", "0", "", "+1", "01"):
        duo("MOVE", "k", db)
        duo("MOVE", "missing", db)
        duo("COPY", "k", "k2", "DB", db)
        duo("COPY", "k", "k", "DB", db)
        duo("COPY", "k", "k2", "DB", db, "BOGUS")
        duo("COPY", "k", "k2", "BOGUS", "DB", db)


def test_move(duo):
    duo("MOVE", "missing", "1")
    duo("SET", "k", "v", "EX", "100")
    duo("MOVE", "k", "1")
    duo("EXISTS", "k")
    duo("SELECT", "1")
    duo("GET", "k")
    assert_ttl_close(duo, "k", 100_000)
    duo("SET", "clash", "in-1")
    duo("SELECT", "0")
    duo("SET", "clash", "in-0")
    duo("MOVE", "clash", "1")
    duo("GET", "clash")
    duo("SET", "n", "12")
    duo("MOVE", "n", "15")
    duo("SELECT", "15")
    duo("OBJECT", "ENCODING", "n")
    duo("OBJECT", "REFCOUNT", "n")
    duo("MOVE", "n", "0")
    duo("SELECT", "0")
    duo("GET", "n")


COPY_OPTIONS = [
    [], ["REPLACE"], ["replace", "REPLACE"], ["DB", "0"], ["DB", "1"], ["DB", "1", "REPLACE"],
    ["REPLACE", "DB", "2"], ["DB", "1", "DB", "2"], ["DB"], ["BOGUS"], ["REPLACE", "x"],
    ["DB", "x"], ["DB", "1", "x"],
]


def test_copy_options(duo):
    for options in COPY_OPTIONS:
        duo("FLUSHALL")
        _copy_with_options(duo, options)


def _copy_with_options(duo, options):
    duo("SET", "src", "value", "EX", "100")
    duo("SET", "dst", "old")
    duo("COPY", "src", "dst", *options)
    duo("COPY", "src", "fresh", *options)
    duo("COPY", "missing", "dst", *options)
    duo("COPY", "src", "src", *options)
    for db in ("0", "1", "2"):
        duo("SELECT", db)
        duo("MGET", "src", "dst", "fresh")
        duo("TTL", "dst")
        duo("TTL", "fresh")
    duo("SELECT", "0")


def test_copy_across_shards_and_encodings(duo):
    values = ["5", "12345", "-3", "text", "x" * 50, "9223372036854775807"]
    for i, value in enumerate(values):
        duo("SET", f"src{i}", value)
        duo("COPY", f"src{i}", f"dst{i}")
        duo("OBJECT", "ENCODING", f"dst{i}")
        duo("OBJECT", "REFCOUNT", f"dst{i}")
        duo("OBJECT", "REFCOUNT", f"src{i}")
        duo("COPY", f"src{i}", f"dst{i}", "DB", "3")
        duo("SELECT", "3")
        duo("OBJECT", "REFCOUNT", f"dst{i}")
        duo("SELECT", "0")
    duo("APPEND", "raw", "abc")
    duo("COPY", "raw", "rawcopy")
    duo("OBJECT", "ENCODING", "rawcopy")
    duo("INCRBYFLOAT", "float", "1.5")
    duo("COPY", "float", "floatcopy")
    duo("OBJECT", "ENCODING", "floatcopy")
    duo("APPEND", "rawcopy", "d")
    duo("MGET", "raw", "rawcopy")
    duo("INCR", "dst0")
    duo("OBJECT", "REFCOUNT", "dst0")
    duo("MGET", "src0", "dst0")


def test_copy_of_a_container_is_independent(duo):
    kind = make_wrong_type(duo, "c")
    duo("COPY", "c", "c2")
    duo("TYPE", "c2")
    if kind == "list":
        duo("LPUSH", "c2", "z")
        duo("LRANGE", "c", "0", "-1")
        duo("LRANGE", "c2", "0", "-1")
    else:
        duo("SADD", "c2", "z")
        duo("SCARD", "c")
        duo("SCARD", "c2")
        duo("SISMEMBER", "c", "z")
    duo("RENAME", "c2", "c3")
    duo("TYPE", "c3")
    duo("MOVE", "c3", "1")
    duo("SELECT", "1")
    duo("TYPE", "c3")
    duo("SELECT", "0")


# -- KEYS / SCAN / RANDOMKEY -----------------------------------------------------------------------------------

KEY_NAMES = [
    "hello", "hallo", "hxllo", "hllo", "heeeello", "h*llo", "h?llo", "h[a]llo", "a", "b", "c", "d",
    "ab", "abc", "a-b", "\\", "x\\y", "[", "]", "^", "-", "key:1", "key:2", "key:10", "KEY:3", "",
    "é", "tab\there", "a]b", "a^b",
]

PATTERNS = [
    "*", "h?llo", "h*llo", "h[ae]llo", "h[^e]llo", "h[a-b]llo", "h[b-a]llo", "[a-c]", "[^a]",
    "[!a]", "h\\*llo", "h\\?llo", "*\\\\*", "\\\\", "[", "[a", "a[", "[]", "[^]", "[a-]", "[-a]",
    "[\\]]", "[\\^]", "*o", "?", "??", "???", "\\?", "key:*", "key:?", "KEY:*", "key:[0-9]",
    "key:[0-9]*", "*[", "**", "*a*", "a*b*c", "[abc", "[a-", "h[a-e]llo", "\\", "", "?*", "*?",
    "h[\\a]llo", "x\\\\y", "[]]", "a]b", "a[]]b", "a[\\]]b", "[^-]", "[é]", "é", "[a-cé]",
]


@pytest.fixture
def named_keys(duo):
    for i, name in enumerate(KEY_NAMES):
        duo("SET", name, i)
    return duo


def test_keys_patterns(named_keys):
    for pattern in PATTERNS:
        named_keys.unordered("KEYS", pattern)


def scan_all(wire, *options, limit: int = 10_000) -> list:
    """Follow SCAN cursors until 0; the concatenated pages."""
    found: list = []
    cursor = b"0"
    for _ in range(limit):
        raw, (cursor, page) = wire.call("SCAN", cursor, *options)
        found.extend(page)
        if cursor == b"0":
            return found
    raise AssertionError(f"SCAN {options} did not finish")


def assert_same_scan(duo: Duo, *options) -> list:
    ours, real = scan_all(duo.ours, *options), scan_all(duo.real, *options)
    assert len(set(ours)) == len(ours), f"SCAN {options} returned duplicates without changes"
    assert sorted(ours) == sorted(real), f"SCAN {options}"
    return ours


SCAN_OPTIONS = [
    [], ["COUNT", "1"], ["COUNT", "3"], ["COUNT", "1000"], ["MATCH", "key:*"], ["MATCH", "h?llo"],
    ["MATCH", "*", "COUNT", "2"], ["MATCH", "nothing*"], ["TYPE", "string"], ["TYPE", "STRING"],
    ["TYPE", "list"], ["TYPE", "bogus"], ["match", "[a-c]", "type", "string", "count", "5"],
    ["MATCH", "a*", "MATCH", "h*"], ["COUNT", "5", "COUNT", "1"], ["MATCH", "**"], ["MATCH", ""],
    ["MATCH", "[^a]"], ["MATCH", "h\\*llo"],
]


def test_scan_full_iteration(named_keys):
    for options in SCAN_OPTIONS:
        assert_same_scan(named_keys, *options)


def test_scan_type_filter(named_keys):
    """With a non-string key among the strings, TYPE (any case) picks out exactly the right kind."""
    kind = make_wrong_type(named_keys, "container")
    for options in ([], ["TYPE", "string"], ["TYPE", kind], ["TYPE", kind.upper()],
                    ["MATCH", "c*", "TYPE", kind], ["MATCH", "c*", "TYPE", "string"],
                    ["TYPE", "hash"], ["TYPE", "zset"], ["TYPE", "none"]):
        assert_same_scan(named_keys, *options)
    named_keys.unordered("KEYS", "c*")


def test_scan_many_keys(duo):
    duo("MSET", *[x for i in range(500) for x in (f"k{i}", i)])
    assert len(assert_same_scan(duo)) == 500
    assert len(assert_same_scan(duo, "COUNT", "7")) == 500
    assert len(assert_same_scan(duo, "MATCH", "k1*", "COUNT", "50")) == 111
    duo("SELECT", "2")
    assert assert_same_scan(duo) == []
    duo("SELECT", "0")


def test_scan_empty_db(duo):
    duo("SCAN", "0")
    duo("SCAN", "0", "MATCH", "*", "COUNT", "100", "TYPE", "string")


def test_scan_option_errors(duo):
    duo("SET", "k", "v")
    for options in (
        ["COUNT", "0"], ["COUNT", "-1"], ["COUNT", "abc"], ["COUNT"], ["MATCH"], ["TYPE"],
        ["BOGUS"], ["COUNT", "1", "BOGUS"], ["MATCH", "*", "COUNT"],
        ["COUNT", "9223372036854775808"], ["count", "1.5"], ["COUNT", "0", "BOGUS"],
    ):
        duo.error("SCAN", "0", *options)


def test_scan_invalid_cursor(duo):
    duo("SET", "k", "v")
    for cursor in ("abc", " 0", "0 ", "1.5", "18446744073709551616", "0x10", "-", "+",
                   "99999999999999999999999", "-18446744073709551616"):
        duo.error("SCAN", cursor)
        duo.error("SCAN", cursor, "COUNT", "0")


def test_scan_cursor_zero_spellings(duo):
    """strtoul reads these as cursor 0: a new full iteration."""
    duo("SET", "k", "v")
    for cursor in ("", "+0", "-0", "00"):
        duo("SCAN", cursor)


def test_scan_odd_valid_cursors(duo):
    """Cursors Redis accepts; the page depends on the implementation, so only check it is one."""
    duo("SET", "k", "v")
    for cursor in ("18446744073709551615", "-1", "+7", "12345", "-18446744073709551615"):
        for reply in duo.both("SCAN", cursor):
            assert not isinstance(reply, Err) and len(reply) == 2, (cursor, reply)
            next_cursor, page = reply
            assert next_cursor.isdigit() and isinstance(page, list), (cursor, reply)


def test_randomkey(duo):
    duo("RANDOMKEY")
    duo("SET", "only", "v")
    duo("RANDOMKEY")
    keys = {f"r{i}".encode() for i in range(20)}
    duo("MSET", *[x for k in keys for x in (k, "v")])
    keys.add(b"only")
    seen = set()
    for _ in range(60):
        ours, real = duo.both("RANDOMKEY")
        assert ours in keys and real in keys
        seen.add(ours)
    assert len(seen) > 5, "RANDOMKEY keeps returning the same few keys"
    duo("FLUSHDB")
    duo("RANDOMKEY")
    duo("SET", "gone", "v", "PXAT", "1")
    duo("RANDOMKEY")


# -- OBJECT --------------------------------------------------------------------------------------------------

def test_object_subcommands(duo):
    for sub in ("ENCODING", "REFCOUNT", "IDLETIME", "FREQ", "encoding"):
        duo("OBJECT", sub, "missing")
    duo("SET", "k", "hello")
    duo("OBJECT", "IDLETIME", "k")
    duo("OBJECT", "FREQ", "k")
    duo("OBJECT", "REFCOUNT", "k")
    duo("OBJECT", "ENCODING", "k")


def test_object_freq_and_idletime_under_lfu(duo):
    """A fresh key's LFU counter is LFU_INIT_VAL; IDLETIME is refused while an LFU policy is set."""
    duo("SET", "k", "v")
    duo("CONFIG", "SET", "maxmemory-policy", "allkeys-lfu")
    try:
        duo("SET", "fresh", "v")
        duo("OBJECT", "FREQ", "fresh")
        duo("OBJECT", "FREQ", "missing")
        duo("OBJECT", "IDLETIME", "fresh")
        duo("OBJECT", "IDLETIME", "missing")
    finally:
        duo("CONFIG", "SET", "maxmemory-policy", "noeviction")
    duo("OBJECT", "FREQ", "k")
    duo("OBJECT", "IDLETIME", "k")


def test_error_texts_scrub_line_breaks(duo):
    duo("SET", "k", "v")
    duo("EXPIRE", "k", "10", "a\r\nb")
    duo("EXPIRE", "k", "10", "NX", "x\ny")
