"""The string command group against a real redis-server 7.0, reply for reply.

Every command is sent over a raw socket to Shardis and to redis-server and the two replies are
compared byte for byte (type, length prefixes and error texts included), which is stricter than
comparing what redis-py parses. The `pair` fixture supplies the servers, the protocol (RESP2/RESP3)
and the shard count (1/4) and flushes both; `Duo` opens the raw connections. Only replies that
depend on the clock (TTLs) are compared with a tolerance.

`Duo`, `Wire` and `make_wrong_type` are also used by test_generic_diff.py.
"""

from __future__ import annotations

import random
import socket

import pytest

pytestmark = [pytest.mark.differential, pytest.mark.timeout(60)]


# -- a byte-exact RESP client -------------------------------------------------------------------

class Err(str):
    """An error reply in a parsed value (the text without the leading '-')."""


def _line_end(buf: bytes, pos: int) -> int | None:
    end = buf.find(b"\r\n", pos)
    return None if end < 0 else end


def _frame(buf: bytes, pos: int):
    """(value, next position) of the RESP2/RESP3 frame at `pos`, or None if incomplete."""
    end = _line_end(buf, pos)
    if end is None:
        return None
    kind, head = buf[pos:pos + 1], buf[pos + 1:end]
    after = end + 2
    if kind in (b"$", b"=", b"!"):
        size = int(head)
        if size < 0:
            return None, after
        if len(buf) < after + size + 2:
            return None
        body = buf[after:after + size]
        if kind == b"!":
            body = Err(body.decode())
        return body, after + size + 2
    if kind in (b"*", b"~", b">", b"%"):
        count = int(head)
        if count < 0:
            return None, after
        if kind == b"%":
            count *= 2
        items = []
        for _ in range(count):
            got = _frame(buf, after)
            if got is None:
                return None
            item, after = got
            items.append(item)
        if kind == b"%":
            return dict(zip(items[::2], items[1::2])), after
        return items, after
    if kind == b"+":
        return head.decode(), after
    if kind == b"-":
        return Err(head.decode()), after
    if kind in (b":", b"("):
        return int(head), after
    if kind == b",":
        return float(head), after
    if kind == b"_":
        return None, after
    if kind == b"#":
        return head == b"t", after
    raise AssertionError(f"unknown RESP type {kind!r} in {buf!r}")


def _encode_command(args) -> bytes:
    parts = [a if isinstance(a, bytes) else str(a).encode() for a in args]
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


class Wire:
    """One raw connection: `call` returns (exact reply bytes, parsed value)."""

    def __init__(self, port: int, protocol: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.buf = b""
        if protocol == 3:
            raw, value = self.call("HELLO", "3")
            assert isinstance(value, dict), raw

    def call(self, *args) -> tuple[bytes, object]:
        self.sock.sendall(_encode_command(args))
        while True:
            got = _frame(self.buf, 0) if self.buf else None
            if got is not None:
                value, end = got
                raw, self.buf = self.buf[:end], self.buf[end:]
                return raw, value
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk

    def close(self) -> None:
        self.sock.close()


class Duo:
    """Shardis and redis-server side by side; `__call__` sends a command to both and compares."""

    def __init__(self, pair) -> None:
        ours, real = pair
        kwargs = ours.connection_pool.connection_kwargs
        self.protocol = int(kwargs.get("protocol") or 2)
        self.ours = Wire(kwargs["port"], self.protocol)
        self.real = Wire(real.connection_pool.connection_kwargs["port"], self.protocol)

    def both(self, *args) -> tuple[object, object]:
        """Both parsed replies, uncompared (for clock-dependent replies)."""
        return self.ours.call(*args)[1], self.real.call(*args)[1]

    def __call__(self, *args):
        """Send to both, assert identical reply bytes, return the parsed reply."""
        ours_raw, ours_value = self.ours.call(*args)
        real_raw, _ = self.real.call(*args)
        assert ours_raw == real_raw, f"{args!r}: shardis {ours_raw!r} != redis {real_raw!r}"
        return ours_value

    def error(self, *args) -> str:
        """Like `__call__`, and the reply must be an error; returns its text."""
        value = self(*args)
        assert isinstance(value, Err), f"{args!r}: expected an error, got {value!r}"
        return value

    def unordered(self, *args):
        """For replies whose order Redis leaves unspecified (KEYS): compare as sorted lists."""
        ours, real = self.both(*args)
        assert isinstance(ours, list) and isinstance(real, list), (args, ours, real)
        assert sorted(ours) == sorted(real), f"{args!r}: shardis {ours!r} != redis {real!r}"
        return ours

    def close(self) -> None:
        self.ours.close()
        self.real.close()


@pytest.fixture
def duo(pair):
    d = Duo(pair)
    yield d
    d.close()


def _supported(duo: Duo, *probe) -> bool:
    value = duo.ours.call(*probe)[1]
    duo.ours.call("DEL", probe[1])
    return not isinstance(value, Err)


def make_wrong_type(duo: Duo, key: str) -> str:
    """Create a non-string value at `key` on both servers (a list, else a set); its TYPE name.

    Skips the test while Shardis has neither LPUSH nor SADD.
    """
    if _supported(duo, "LPUSH", "__probe__", "x"):
        duo("LPUSH", key, "a", "b")
        return "list"
    if _supported(duo, "SADD", "__probe__", "x"):
        duo("SADD", key, "a", "b")
        return "set"
    pytest.skip("Shardis has neither LPUSH nor SADD yet, so no wrong-type value can be created")


def assert_ttl_close(duo: Duo, key: str, ms: int, tolerance_ms: int = 2000) -> None:
    """PTTL on both sides is within `tolerance_ms` of `ms`."""
    ours, real = duo.both("PTTL", key)
    assert abs(ours - ms) <= tolerance_ms and abs(real - ms) <= tolerance_ms, (key, ours, real)


# -- GET / SET and its options ------------------------------------------------------------------

def test_get_set_basic(duo):
    duo("GET", "missing")
    duo("SET", "k", "v")
    duo("GET", "k")
    duo("SET", "k", "")
    duo("GET", "k")
    duo("SET", "k", b"\x00\xff\r\n binary")
    duo("GET", "k")
    duo("SET", "k", "x" * 100_000)
    duo("GET", "k")
    duo("STRLEN", "k")


WRONG_ARITY = [
    ("GET",), ("GET", "a", "b"), ("SET", "k"), ("SETNX", "k"), ("SETNX", "k", "v", "x"),
    ("SETEX", "k", "10"), ("PSETEX", "k", "10"), ("GETSET", "k"), ("GETDEL",), ("GETDEL", "a", "b"),
    ("GETEX",), ("MGET",), ("MSET",), ("MSET", "k"), ("MSET", "a", "1", "b"), ("MSETNX", "a"),
    ("MSETNX", "a", "1", "b"), ("APPEND", "k"), ("STRLEN",), ("SETRANGE", "k", "0"),
    ("GETRANGE", "k", "0"), ("SUBSTR", "k", "0"), ("INCR",), ("INCR", "a", "b"), ("DECR",),
    ("INCRBY", "k"), ("DECRBY", "k"), ("INCRBYFLOAT", "k"), ("INCRBYFLOAT", "k", "1", "2"),
    ("LCS", "a"), ("set",), ("gEt",),
]


def test_wrong_arity(duo):
    for args in WRONG_ARITY:
        duo.error(*args)


SET_OPTION_CASES = [
    ["NX"], ["XX"], ["GET"], ["NX", "GET"], ["XX", "GET"], ["GET", "NX"], ["nx"], ["Xx"],
    ["EX", "100"], ["PX", "100000"], ["EXAT", "4102444800"], ["PXAT", "4102444800000"],
    ["KEEPTTL"], ["NX", "EX", "100"], ["XX", "PX", "100000"], ["GET", "KEEPTTL"],
    ["EX", "100", "EX", "200"], ["PX", "1", "PX", "100000"], ["XX", "XX"], ["NX", "NX"],
    ["GET", "GET"], ["KEEPTTL", "KEEPTTL"], ["EX", "100", "NX", "GET"],
    # syntax errors
    ["NX", "XX"], ["XX", "NX"], ["EX"], ["PX"], ["EXAT"], ["PXAT"], ["EX", "10", "PX", "10"],
    ["EX", "10", "KEEPTTL"], ["KEEPTTL", "EX", "10"], ["PERSIST"], ["EXAT", "1", "PXAT", "1"],
    ["BOGUS"], ["EX", "10", "BOGUS"], ["NX", "EX"], ["GET", "PX"],
    # expire-value errors
    ["EX", "0"], ["EX", "-1"], ["PX", "0"], ["PX", "-5"], ["EXAT", "0"], ["PXAT", "-1"],
    ["EX", "abc"], ["EX", "1.5"], ["EX", " 1"], ["EX", "+1"], ["EX", "01"],
    ["EX", "9223372036854775807"], ["EX", "9223372036854775"], ["EX", "9223372036854776"],
    ["PX", "9223372036854775807"], ["EX", "99999999999999999999"], ["EXAT", "9223372036854776"],
    ["NX", "EX", "0"], ["EX", "0", "NX"], ["GET", "EX", "abc"],
]


def test_set_options(duo):
    """Each option list on a missing key, a plain key and a key with a TTL."""
    for options in SET_OPTION_CASES:
        duo("DEL", "k1", "k2", "k3")
        _set_with_options(duo, options)


def _set_with_options(duo, options):
    duo("SET", "k1", "v", *options)
    duo("GET", "k1")
    duo("SET", "k2", "old")
    duo("SET", "k2", "new", *options)
    duo("GET", "k2")
    duo("TTL", "k2")
    duo("SET", "k3", "old", "EX", "1000")
    duo("SET", "k3", "new", *options)
    duo("GET", "k3")
    duo("TTL", "k3")


def test_set_expiry_applies(duo):
    duo("SET", "ex", "v", "EX", "100")
    assert_ttl_close(duo, "ex", 100_000)
    duo("SET", "px", "v", "PX", "50000")
    assert_ttl_close(duo, "px", 50_000)
    duo("SET", "exat", "v", "EXAT", "4102444800")
    duo("EXPIRETIME", "exat")
    duo("PEXPIRETIME", "exat")
    duo("SET", "pxat", "v", "PXAT", "4102444800123")
    duo("PEXPIRETIME", "pxat")
    duo("EXPIRETIME", "pxat")
    duo("SET", "huge", "v", "PXAT", "9223372036854775807")
    duo("PEXPIRETIME", "huge")
    duo("SET", "huge2", "v", "EXAT", "9223372036854775")
    duo("PEXPIRETIME", "huge2")
    # KEEPTTL keeps it, a plain SET drops it
    duo("SET", "ex", "w", "KEEPTTL")
    assert_ttl_close(duo, "ex", 100_000)
    duo("SET", "ex", "w")
    duo("TTL", "ex")


def test_set_past_exat_pxat(duo):
    """A deadline in the past is accepted and the key is gone at once."""
    duo("SET", "a", "v", "EXAT", "1")
    duo("GET", "a")
    duo("EXISTS", "a")
    duo("SET", "b", "v", "PXAT", "1000")
    duo("TTL", "b")
    duo("SET", "c", "old")
    duo("SET", "c", "new", "PXAT", "1", "GET")
    duo("GET", "c")
    duo("DBSIZE")


def test_set_get_wrongtype(duo):
    make_wrong_type(duo, "list")
    duo("SET", "list", "v", "GET")
    duo("SET", "list", "v", "NX", "GET")
    duo("SET", "list", "v", "EX", "0", "GET")
    duo("TYPE", "list")
    duo("SET", "list", "v")
    duo("TYPE", "list")


def test_setnx_setex_psetex(duo):
    duo("SETNX", "k", "1")
    duo("SETNX", "k", "2")
    duo("GET", "k")
    duo("SETEX", "e", "100", "v")
    assert_ttl_close(duo, "e", 100_000)
    duo("PSETEX", "p", "100000", "v")
    assert_ttl_close(duo, "p", 100_000)
    for bad in ("0", "-1", "abc", "1.5", "9223372036854775807", "99999999999999999999"):
        duo("SETEX", "e", bad, "v")
        duo("PSETEX", "p", bad, "v")
    duo("SETEX", "e", "9223372036854775", "v")
    duo("SETEX", "e", "9223372036854776", "v")
    duo("GET", "e")


def test_getset_getdel(duo):
    duo("GETSET", "k", "1")
    duo("GETSET", "k", "2")
    duo("SET", "t", "v", "EX", "100")
    duo("GETSET", "t", "w")
    duo("TTL", "t")
    duo("GETDEL", "k")
    duo("GETDEL", "k")
    duo("EXISTS", "k")


def test_getset_getdel_wrongtype(duo):
    make_wrong_type(duo, "l")
    duo("GETSET", "l", "v")
    duo("GETDEL", "l")
    duo("GET", "l")
    duo("STRLEN", "l")
    duo("APPEND", "l", "x")
    duo("GETRANGE", "l", "0", "1")
    duo("SETRANGE", "l", "0", "x")
    duo("SETRANGE", "l", "0", "")
    duo("INCR", "l")
    duo("INCRBY", "l", "x")
    duo("INCRBYFLOAT", "l", "1")
    duo("GETEX", "l", "PERSIST")
    duo("MGET", "l", "missing")
    duo("LCS", "l", "missing")
    duo("LCS", "missing", "l", "LEN")


GETEX_CASES = [
    [], ["PERSIST"], ["EX", "100"], ["PX", "100000"], ["EXAT", "4102444800"],
    ["PXAT", "4102444800000"], ["persist"], ["EX", "100", "EX", "200"],
    ["EX", "0"], ["EX", "-1"], ["PX", "abc"], ["EXAT", "0"], ["EX", "9223372036854775807"],
    ["PERSIST", "EX", "10"], ["EX", "10", "PERSIST"], ["EX", "10", "PX", "10"], ["KEEPTTL"],
    ["NX"], ["XX"], ["GET"], ["EX"], ["PERSIST", "PERSIST"], ["BOGUS"],
]


def test_getex_options(duo):
    for options in GETEX_CASES:
        duo("GETEX", "missing", *options)
        duo("SET", "plain", "v")
        duo("GETEX", "plain", *options)
        duo("SET", "timed", "v", "EX", "1000")
        duo("GETEX", "timed", *options)
        duo("TTL", "plain")
        duo("TTL", "timed")


def test_getex_effects(duo):
    duo("SET", "k", "v")
    duo("GETEX", "k", "PX", "100000")
    assert_ttl_close(duo, "k", 100_000)
    duo("GETEX", "k", "PERSIST")
    duo("TTL", "k")
    duo("GETEX", "k", "EXAT", "4102444800")
    duo("EXPIRETIME", "k")
    duo("GETEX", "k", "PXAT", "1")
    duo("GET", "k")
    duo("SET", "k", "v")
    duo("GETEX", "k", "EXAT", "1")
    duo("EXISTS", "k")


# -- MGET / MSET / MSETNX across shards ------------------------------------------------------------

def test_mset_mget_many_keys(duo):
    keys = [f"key:{i}" for i in range(40)]  # spread over every shard when there are 4
    args = [x for i, k in enumerate(keys) for x in (k, f"v{i}")]
    duo("MSET", *args)
    duo("MGET", *keys, "missing", keys[0])
    duo("MSET", keys[0], "a", keys[0], "b")
    duo("GET", keys[0])
    duo("MSETNX", "new1", "x", keys[5], "y")
    duo("MGET", "new1", keys[5])
    duo("MSETNX", "new1", "x", "new2", "y", "new3", "z")
    duo("MGET", "new1", "new2", "new3")
    duo("MSETNX", "same", "1", "same", "2")
    duo("GET", "same")
    duo("SET", "t", "v", "EX", "100")
    duo("MSET", "t", "w")
    duo("TTL", "t")
    duo("DBSIZE")


def test_mget_non_string_is_nil(duo):
    make_wrong_type(duo, "l")
    duo("SET", "s", "v")
    duo("MGET", "s", "l", "nokey")
    duo("MSETNX", "l", "x")
    duo("MSET", "l", "x")
    duo("TYPE", "l")


# -- APPEND / STRLEN / SETRANGE / GETRANGE -------------------------------------------------------------

def test_append_strlen(duo):
    duo("APPEND", "k", "hello")
    duo("APPEND", "k", " world")
    duo("GET", "k")
    duo("STRLEN", "k")
    duo("APPEND", "k", "")
    duo("STRLEN", "missing")
    duo("APPEND", "empty", "")
    duo("EXISTS", "empty")
    duo("STRLEN", "empty")
    duo("SET", "n", "123")
    duo("APPEND", "n", "456")
    duo("GET", "n")
    duo("INCR", "n")
    duo("SET", "t", "a", "EX", "100")
    duo("APPEND", "t", "b")
    assert_ttl_close(duo, "t", 100_000)
    duo("SET", "i", "-12")
    duo("STRLEN", "i")


def test_setrange(duo):
    duo("SETRANGE", "k", "0", "hello")
    duo("SETRANGE", "k", "6", "world")
    duo("GET", "k")
    duo("SETRANGE", "k", "2", "LL")
    duo("GET", "k")
    duo("SETRANGE", "pad", "5", "x")
    duo("GET", "pad")
    duo("SETRANGE", "none", "10", "")
    duo("EXISTS", "none")
    duo("SETRANGE", "k", "100", "")
    duo("GET", "k")
    duo("SETRANGE", "k", "0", "")
    duo("SETRANGE", "k", "-1", "x")
    duo("SETRANGE", "k", "abc", "x")
    duo("SETRANGE", "k", "1.5", "x")
    duo("SETRANGE", "k", "9223372036854775808", "x")
    duo("SETRANGE", "k", "536870911", "xx")
    duo("SETRANGE", "k", "536870912", "x")
    duo("SETRANGE", "k", "9223372036854775807", "x")
    duo("SETRANGE", "new", "536870912", "x")
    duo("SETRANGE", "new", "536870912", "")
    duo("EXISTS", "new")
    duo("SET", "n", "12345")
    duo("SETRANGE", "n", "1", "0")
    duo("GET", "n")
    duo("SET", "t", "abc", "EX", "100")
    duo("SETRANGE", "t", "1", "X")
    assert_ttl_close(duo, "t", 100_000)


GETRANGE_CASES = [
    (0, -1), (0, 0), (0, 3), (2, 5), (-3, -1), (-1, -1), (-100, -1), (-100, 2), (5, 2), (-1, -5),
    (0, 100), (100, 200), (3, -3), (-3, 3), (0, -100), (-5, -100), (4, 4), (9, 9), (10, 10),
    (-9223372036854775808, 9223372036854775807), (9223372036854775807, -9223372036854775808),
]


@pytest.mark.parametrize("command", ["GETRANGE", "SUBSTR"])
def test_getrange(duo, command):
    duo("SET", "k", "0123456789")
    duo("SET", "n", "-1234")
    duo("SET", "e", "")
    for start, end in GETRANGE_CASES:
        for key in ("k", "n", "e", "missing"):
            duo(command, key, start, end)
    for bad in (("a", "1"), ("1", "b"), ("1.0", "2"), ("9223372036854775808", "1")):
        duo(command, "k", *bad)
        duo(command, "missing", *bad)


# -- INCR family -------------------------------------------------------------------------------------

def test_incr_decr(duo):
    duo("INCR", "c")
    duo("INCR", "c")
    duo("DECR", "c")
    duo("DECR", "d")
    duo("INCRBY", "c", "100")
    duo("INCRBY", "c", "-250")
    duo("DECRBY", "c", "-7")
    duo("DECRBY", "c", "3")
    duo("GET", "c")
    duo("SET", "t", "5", "EX", "100")
    duo("INCR", "t")
    assert_ttl_close(duo, "t", 100_000)


NOT_INTEGERS = [
    "abc", "", " 1", "1 ", "+1", "01", "-0", "1.0", "1e3", "0x10", "9223372036854775808",
    "-9223372036854775809", "99999999999999999999999", "12a", "--1", "\x001",
]


def test_incr_not_an_integer(duo):
    for stored in NOT_INTEGERS:
        duo("SET", "k", stored)
        duo("INCR", "k")
        duo("DECR", "k")
        duo("INCRBY", "k", "1")
        duo("DECRBY", "k", "1")
        duo("GET", "k")


def test_incrby_increment_parsing(duo):
    for increment in NOT_INTEGERS + ["9223372036854775807", "-9223372036854775808", "0", "-7"]:
        duo("SET", "k", "10")
        duo("INCRBY", "k", increment)
        duo("DECRBY", "k", increment)
        duo("INCRBY", "missing", increment)
        duo("GET", "k")
        duo("DEL", "missing")


def test_incr_overflow(duo):
    duo("SET", "max", "9223372036854775807")
    duo("INCR", "max")
    duo("INCRBY", "max", "0")
    duo("DECRBY", "max", "-1")
    duo("DECR", "max")
    duo("SET", "min", "-9223372036854775808")
    duo("DECR", "min")
    duo("INCRBY", "min", "-1")
    duo("DECRBY", "min", "1")
    duo("INCR", "min")
    duo("DECRBY", "x", "-9223372036854775808")
    duo("DECRBY", "x", "9223372036854775807")
    duo("INCRBY", "x", "-9223372036854775808")
    duo("GET", "x")
    duo("SET", "y", "-1")
    duo("DECRBY", "y", "9223372036854775807")
    duo("DECR", "y")
    duo("GET", "y")


INCRBYFLOAT_CASES = [
    ("10.5", "0.1"), ("10.50", "0.1"), ("0", "0"), ("1", "-1"), ("5.0e3", "2.0e2"), ("3", "1e-3"),
    ("1e308", "1e308"), ("1e308", "1e10"), ("-0.0", "0"), ("0", "-0.0"), ("-0.0", "-0.0"),
    ("0x10", "1"), ("1", "0x10"), ("1", "0X1P4"), ("1", "0x1.8p1"), ("10", "1.1"), ("1.1", "2.2"),
    ("0.1", "0.2"), ("3.0", "0.0000000000000000001"), ("17179869184", "1.5"),
    ("1", "1e4931"), ("1e4931", "1e4931"), ("1", "1e4932"), ("1", "-1e4932"),
    ("1", "1e-4951"), ("1", "1e-5000"), ("1", "inf"), ("1", "-inf"), ("1", "+inf"), ("1", "nan"),
    ("1", "infinity"), ("inf", "1"), ("nan", "1"), ("1", "abc"), ("abc", "1"), ("1", ""),
    ("", "1"), ("1", " 1"), ("1", "1 "), ("1", "1e"), ("1", ".5"), ("1", "5."), ("1", "+.5e+1"),
    ("1", "1_0"), ("1", "0x10 "), ("1", "1,5"), ("123456789012345678", "1"),
    ("1.5", "-1.5"), ("-1.5", "1"), ("100", "-0.001"), ("1", "1" + "0" * 400),
    ("1", "0." + "0" * 300 + "1"), ("1", "-0x1p99999"), ("1", "0x1p99999"), ("1", "9" * 5119),
    ("1", "9" * 5120), ("1", "1e-4940"),
]


def test_incrbyfloat(duo):
    for stored, increment in INCRBYFLOAT_CASES:
        duo("SET", "k", stored)
        duo("INCRBYFLOAT", "k", increment)
        duo("GET", "k")
        duo("OBJECT", "ENCODING", "k")
        duo("INCRBYFLOAT", "missing", increment)
        duo("DEL", "missing")


def test_incrbyfloat_sequence(duo):
    for step in ("0.1", "0.1", "0.1", "-0.3", "1e-17", "3.14159", "-100", "1e15", "0.5"):
        duo("INCRBYFLOAT", "f", step)
    duo("SET", "t", "1", "EX", "100")
    duo("INCRBYFLOAT", "t", "1.5")
    assert_ttl_close(duo, "t", 100_000)
    duo("INCRBYFLOAT", "big", "1e300")
    duo("STRLEN", "big")
    duo("OBJECT", "ENCODING", "big")
    duo("INCRBYFLOAT", "int", "3")
    duo("OBJECT", "ENCODING", "int")
    duo("INCR", "int")
    duo("OBJECT", "ENCODING", "int")


# -- LCS -------------------------------------------------------------------------------------------

LCS_PAIRS = [
    ("ohmytext", "mynewtext"), ("", ""), ("abc", ""), ("", "abc"), ("abc", "abc"), ("abc", "def"),
    ("aaaa", "aa"), ("abcabcabc", "cbacba"), ("rororo", "ororor"), ("a", "a"),
    ("thisisatest", "testing123testing"), ("ABCBDAB", "BDCABA"), ("xyzzy", "zyzzyx"),
    ("GXTXAYB", "AGGTAB"), ("1234567890", "0987654321"), ("mississippi", "missouri"),
]

LCS_OPTIONS = [
    [], ["LEN"], ["IDX"], ["IDX", "WITHMATCHLEN"], ["IDX", "MINMATCHLEN", "2"],
    ["IDX", "MINMATCHLEN", "4", "WITHMATCHLEN"], ["WITHMATCHLEN", "IDX", "MINMATCHLEN", "0"],
    ["IDX", "MINMATCHLEN", "-5"], ["len"], ["idx", "withmatchlen"], ["MINMATCHLEN", "3"],
    ["WITHMATCHLEN"], ["LEN", "WITHMATCHLEN"], ["IDX", "IDX"],
]


def test_lcs(duo):
    for a, b in LCS_PAIRS:
        duo("DEL", "{x}a", "{x}b")
        if a:
            duo("SET", "{x}a", a)
        if b:
            duo("SET", "{x}b", b)
        for options in LCS_OPTIONS:
            duo("LCS", "{x}a", "{x}b", *options)
            duo("LCS", "{x}b", "{x}a", *options)


def test_lcs_long_strings(duo):
    """Long inputs: many ranges, and MINMATCHLEN filtering among them."""
    rng = random.Random(7)
    a = "".join(rng.choice("ACGT") for _ in range(1500))
    b = "".join(rng.choice("ACGT") for _ in range(1200))
    duo("MSET", "{x}a", a, "{x}b", b)
    for options in ([], ["LEN"], ["IDX", "MINMATCHLEN", "6", "WITHMATCHLEN"]):
        duo("LCS", "{x}a", "{x}b", *options)
    duo("LCS", "{x}b", "{x}a", "IDX")


def test_lcs_errors(duo):
    duo("SET", "a", "hello")
    duo("SET", "b", "yellow")
    for options in (
        ["LEN", "IDX"], ["IDX", "LEN"], ["MINMATCHLEN"], ["MINMATCHLEN", "x"],
        ["MINMATCHLEN", "1.5"], ["BOGUS"], ["IDX", "BOGUS"], ["MINMATCHLEN", "99999999999999999999"],
        ["LEN", "LEN", "IDX"],
    ):
        duo.error("LCS", "a", "b", *options)
        duo.error("LCS", "missing", "a", *options)


def test_lcs_keys_on_different_shards(duo):
    duo("MSET", "alpha", "ohmytext", "omega", "mynewtext")
    duo("LCS", "alpha", "omega")
    duo("LCS", "alpha", "omega", "IDX", "WITHMATCHLEN")
    duo("LCS", "alpha", "missing", "LEN")
    duo("SET", "n", "12345")
    duo("SET", "m", "2345")
    duo("LCS", "n", "m", "IDX")


# -- OBJECT ENCODING of strings ------------------------------------------------------------------------

ENCODING_VALUES = [
    "0", "1", "-1", "9999", "10000", "-9999", "123456789", "9223372036854775807",
    "-9223372036854775808", "9223372036854775808", "12345678901234567890", "01", "+1", "-0",
    " 1", "1.5", "", "a", "x" * 44, "x" * 45, "1" * 44, "1" * 45, "é" * 22, "é" * 23, "x" * 100,
]


def test_object_encoding_strings(duo):
    for value in ENCODING_VALUES:
        duo("DEL", "k", "m", "g", "n", "e", "a", "r")
        _encodings_of(duo, value)


def _encodings_of(duo, value):
    duo("SET", "k", value)
    duo("OBJECT", "ENCODING", "k")
    duo("OBJECT", "REFCOUNT", "k")
    duo("MSET", "m", value)
    duo("OBJECT", "ENCODING", "m")
    duo("GETSET", "g", value)
    duo("OBJECT", "ENCODING", "g")
    duo("SETNX", "n", value)
    duo("OBJECT", "ENCODING", "n")
    duo("SETEX", "e", "100", value)
    duo("OBJECT", "ENCODING", "e")
    duo("APPEND", "a", value)
    duo("OBJECT", "ENCODING", "a")
    duo("APPEND", "a", "")
    duo("OBJECT", "ENCODING", "a")
    duo("SETRANGE", "r", "0", value)
    duo("OBJECT", "ENCODING", "r")


def test_object_encoding_after_changes(duo):
    duo("SET", "k", "123")
    duo("SETRANGE", "k", "0", "9")
    duo("OBJECT", "ENCODING", "k")
    duo("INCR", "k")
    duo("OBJECT", "ENCODING", "k")
    duo("OBJECT", "REFCOUNT", "k")
    duo("SET", "s", "5")
    duo("OBJECT", "REFCOUNT", "s")
    duo("INCRBY", "s", "20000")
    duo("OBJECT", "REFCOUNT", "s")
    duo("OBJECT", "ENCODING", "s")
    duo("INCRBYFLOAT", "s", "0.5")
    duo("OBJECT", "ENCODING", "s")
    duo("OBJECT", "REFCOUNT", "s")
    duo("SET", "e", "x" * 44)
    duo("APPEND", "e", "y")
    duo("OBJECT", "ENCODING", "e")
    duo("SET", "x", "x" * 20)
    duo("GETEX", "x", "EX", "100")
    duo("OBJECT", "ENCODING", "x")
    duo("OBJECT", "ENCODING", "missing")
    duo("OBJECT", "REFCOUNT", "missing")


# -- a seeded random sequence ---------------------------------------------------------------------------

_KEYS = ["a", "b", "c", "{t}x", "{t}y", "n"]
_VALUES = ["", "0", "1", "-5", "42", "9223372036854775806", "3.5", "abc", "hello world", "x" * 50]


def _random_command(rng: random.Random) -> list:
    key = rng.choice(_KEYS)
    other = rng.choice(_KEYS)
    value = rng.choice(_VALUES)
    num = rng.choice(["0", "1", "-1", "3", "-100", "7", "abc", "9223372036854775807"])
    return rng.choice([
        ["GET", key], ["SET", key, value], ["SET", key, value, rng.choice(["NX", "XX", "GET"])],
        ["SET", key, value, "EX", "1000"], ["SET", key, value, "KEEPTTL", "GET"],
        ["SETNX", key, value], ["GETSET", key, value], ["GETDEL", key], ["APPEND", key, value],
        ["STRLEN", key], ["INCR", key], ["DECR", key], ["INCRBY", key, num], ["DECRBY", key, num],
        ["INCRBYFLOAT", key, rng.choice(["0.5", "-1.25", "1e3", "abc", "3"])],
        ["GETRANGE", key, num, rng.choice(["-1", "2", "-3", "100"])],
        ["SETRANGE", key, rng.choice(["0", "2", "10", "-1"]), value],
        ["MSET", key, value, other, value], ["MSETNX", key, value, other, "z"],
        ["MGET", key, other, "nokey"], ["EXISTS", key, other, key], ["DEL", key, other],
        ["TYPE", key], ["TTL", key], ["EXPIRE", key, "1000", rng.choice(["NX", "XX"])],
        # GT/LT compare deadlines: absolute ones, so the outcome does not depend on the clock
        ["EXPIREAT", key, rng.choice(["4102444800", "4102444900", "4102445000"]),
         rng.choice(["NX", "XX", "GT", "LT"])],
        ["EXPIRE", key, rng.choice(["500", "2000"])], ["PERSIST", key],
        ["RENAME", key, other], ["RENAMENX", key, other], ["COPY", key, other],
        ["COPY", key, other, "REPLACE"], ["GETEX", key, rng.choice(["PERSIST", "EX", "EX", "PX"]),
                                          "3000"][:rng.choice([3, 4])],
        ["LCS", key, other], ["OBJECT", "ENCODING", key], ["OBJECT", "REFCOUNT", key],
        ["KEYS", "*"], ["DBSIZE"], ["UNLINK", key], ["TOUCH", key, other],
    ])


@pytest.mark.parametrize("pair", [(4, 2), (4, 3)], ids=["shards4-resp2", "shards4-resp3"],
                         indirect=True)
def test_random_sequence(duo):
    rng = random.Random(20240607)
    for step in range(500):
        cmd = _random_command(rng)
        if cmd[0] == "KEYS":
            duo.unordered(*cmd)
        else:
            duo(*cmd)
    for key in _KEYS:
        duo("GET", key)
        duo("TTL", key)


def test_proto_max_bulk_len_limits(duo):
    """APPEND and SETRANGE refuse to grow a string past proto-max-bulk-len (1mb is the minimum)."""
    duo("CONFIG", "SET", "proto-max-bulk-len", "1mb")
    try:
        duo("SETRANGE", "big", "1048575", "ab")
        duo("SETRANGE", "big", "1048576", "")
        duo("EXISTS", "big")
        duo("SETRANGE", "big", "1048575", "a")
        duo("STRLEN", "big")
        duo("APPEND", "big", "b")
        duo("APPEND", "big", "")
        duo("SETRANGE", "big", "1048576", "")
        duo("SETRANGE", "big", "1048575", "z")
        duo("GETRANGE", "big", "-3", "-1")
        duo("SET", "small", "x" * 1000)
        duo("APPEND", "small", "y" * (1048576 - 1000))
        duo("APPEND", "small", "y")
        duo("STRLEN", "small")
    finally:
        duo("CONFIG", "SET", "proto-max-bulk-len", "512mb")
