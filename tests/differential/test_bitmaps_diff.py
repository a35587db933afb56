"""The bitmap command group (GETBIT, SETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD, BITFIELD_RO) against
a real redis-server 7.0, reply for reply over raw sockets (see `Duo` in test_strings_diff.py).

Ranges and bitfield operations are also drawn at random (seeded) so that the index arithmetic is
compared on many more cases than one would write by hand.
"""

from __future__ import annotations

import random

import pytest

from tests.differential.test_strings_diff import Duo, make_wrong_type

pytestmark = [pytest.mark.differential, pytest.mark.timeout(60)]


@pytest.fixture
def duo(pair):
    d = Duo(pair)
    yield d
    d.close()

PATTERNS = [b"", b"\x00", b"\xff", b"foobar", b"\x00\x00\xff\xf0", b"\xff\xff\xff\x0f\x00",
            b"\x80" + b"\x00" * 20 + b"\x01", b"\xff" * 40, b"\x00" * 33, b"123", b"a\r\nb"]


# -- GETBIT / SETBIT --------------------------------------------------------------------------

def test_getbit_setbit(duo):
    duo("GETBIT", "missing", 0)
    duo("GETBIT", "missing", 4294967295)
    for offset, bit in [(7, 1), (0, 1), (7, 0), (100, 1), (100, 1), (3, 0), (65, 1)]:
        duo("SETBIT", "k", offset, bit)
        duo("GET", "k")
    for offset in (0, 7, 8, 65, 100, 101, 1000, 4294967295):
        duo("GETBIT", "k", offset)
    duo("SETBIT", "new", 0, 0)
    duo("GET", "new")
    duo("STRLEN", "new")


@pytest.mark.parametrize("initial", ["12", "foobar", "x" * 60, "-5"])
def test_setbit_makes_raw_strings(duo, initial):
    duo("SET", "k", initial)
    duo("OBJECT", "ENCODING", "k")
    duo("SETBIT", "k", 1, 0)  # may leave the bits unchanged: still unshared, hence raw
    duo("OBJECT", "ENCODING", "k")
    duo("GET", "k")
    duo("SETBIT", "k", 2, 1)
    duo("GET", "k")
    duo("OBJECT", "ENCODING", "k")
    duo("GETBIT", "k", 2)


def test_setbit_keeps_ttl(duo):
    duo("SET", "k", "a", "EX", 1000)
    duo("SETBIT", "k", 30, 1)
    ours, real = duo.both("TTL", "k")
    assert 990 < ours <= 1000 and 990 < real <= 1000


def test_bit_commands_on_integer_strings(duo):
    duo("SET", "n", 1234)
    duo("GETBIT", "n", 2)
    duo("GETBIT", "n", 31)
    duo("BITCOUNT", "n")
    duo("BITPOS", "n", 1)
    duo("BITFIELD", "n", "GET", "u16", 8)


@pytest.mark.parametrize("args", [
    ("SETBIT", "k", -1, 1), ("SETBIT", "k", "x", 1), ("SETBIT", "k", "1.0", 1),
    ("SETBIT", "k", " 1", 1), ("SETBIT", "k", "+1", 1), ("SETBIT", "k", "01", 1),
    ("SETBIT", "k", 4294967296, 1), ("SETBIT", "k", "99999999999999999999", 1),
    ("SETBIT", "k", 1, 2), ("SETBIT", "k", 1, -1), ("SETBIT", "k", 1, "x"), ("SETBIT", "k", 1, ""),
    ("SETBIT", "k", "x", "x"), ("GETBIT", "k", -1), ("GETBIT", "k", 4294967296), ("GETBIT", "k", "a"),
    ("SETBIT", "k"), ("SETBIT", "k", 1), ("SETBIT", "k", 1, 1, 1), ("GETBIT", "k"),
    ("GETBIT", "k", 1, 2), ("BITCOUNT",), ("BITPOS", "k"), ("BITOP", "and", "d"),
    ("BITFIELD",), ("BITFIELD_RO",),
])
def test_errors(duo, args):
    duo.error(*args)
    duo("EXISTS", "k")


def test_offset_limit_follows_proto_max_bulk_len(duo):
    for side in (duo.ours, duo.real):
        assert side.call("CONFIG", "SET", "proto-max-bulk-len", "1mb")[1] == "OK"
    try:
        duo.error("SETBIT", "k", 8 * 1024 * 1024, 1)
        duo.error("GETBIT", "k", 8 * 1024 * 1024)
        duo.error("BITFIELD", "k", "SET", "u8", "#1048576", 1)
        duo("SETBIT", "k", 8 * 1024 * 1024 - 1, 1)
        duo("STRLEN", "k")
        duo("BITFIELD", "k", "SET", "i64", 8 * 1024 * 1024 - 1, -1)  # may pass the limit by 8 bytes
        duo("STRLEN", "k")
        duo("BITCOUNT", "k")
    finally:
        for side in (duo.ours, duo.real):
            side.call("CONFIG", "SET", "proto-max-bulk-len", "512mb")


def test_wrong_type(duo):
    make_wrong_type(duo, "l")
    for args in [("GETBIT", "l", 0), ("SETBIT", "l", 0, 1), ("BITCOUNT", "l"), ("BITCOUNT", "l", 0),
                 ("BITCOUNT", "l", 0, 1, "bit"), ("BITPOS", "l", 1), ("BITPOS", "l", 0, 1, 2),
                 ("BITOP", "AND", "d", "l"), ("BITOP", "OR", "d", "missing", "l"),
                 ("BITOP", "NOT", "l", "l"), ("BITFIELD", "l"), ("BITFIELD", "l", "GET", "u8", 0),
                 ("BITFIELD", "l", "SET", "u8", 0, 1), ("BITFIELD_RO", "l", "GET", "u8", 0)]:
        duo.error(*args)
    # Argument errors come before the type check.
    duo.error("SETBIT", "l", 0, 2)
    duo.error("BITPOS", "l", 2)
    duo.error("BITFIELD", "l", "SET", "u8", 0, "x")
    duo.error("BITFIELD_RO", "l", "SET", "u8", 0, 1)
    duo("TYPE", "l")
    duo("EXISTS", "d")


# -- BITCOUNT / BITPOS -------------------------------------------------------------------------

def test_bitcount_arguments(duo):
    duo("SET", "k", "foobar")
    for args in [(), (0, 0), (1, 1), (1, 2, "BIT"), (1, 2, "byte"), (5, 30, "bit"), (-1, -2),
                 (-1, -2, "bad"), (-100, -200, "bit"), (0, -1, "BIT"), (-100, 100), (3, 2),
                 (0, 0, "bad"), (0,), (0, 1, 2, 3), ("x", 1), (1, "x"), ("x", 1, "bit"),
                 (1, "x", "bad"), ("9223372036854775807", "-9223372036854775808"),
                 ("-9223372036854775808", "9223372036854775807", "bit")]:
        duo("BITCOUNT", "k", *args)
    # A missing key answers 0 before its range is even parsed.
    for args in [(), (0,), (0, "x"), (0, 1, "bad"), (0, 1, 2, 3)]:
        duo("BITCOUNT", "missing", *args)
    duo("SET", "empty", "")
    duo("BITCOUNT", "empty")
    duo("BITCOUNT", "empty", 0, -1, "bit")


def test_bitpos_arguments(duo):
    duo("SET", "k", "foobar")
    for args in [(1,), (0,), (2,), (-1,), ("x",), (1, "x"), (1, 0, "x"), (1, "x", 1, "bad"),
                 (1, 0, "x", "bad"), (1, 0, -1, "bad"), (0, 0, 1, "bit", 5), (1, -100, -200),
                 (0, -100, -200), (1, 2), (0, 2, -1), (1, 7, 15, "bit"), (0, 7, 15, "BIT"),
                 (1, 0, 0, "byte"), (1, 100), (0, 100), (0, 3, 2)]:
        duo("BITPOS", "k", *args)
    for args in [(1,), (0,), (1, 0, "x"), (0, 0, 1, "bad"), (0, 0, 1, 2, 3)]:
        duo("BITPOS", "missing", *args)
    duo.error("BITPOS", "missing", "x")
    duo.error("BITPOS", "missing", 3)
    duo("SET", "ones", b"\xff\xff\xff")
    for args in [(0,), (0, 1), (0, 1, -1), (0, 3, "bit"), (0, 3, -1, "bit"), (0, 0, 100, "bit"),
                 (1, 24, "bit")]:
        duo("BITPOS", "ones", *args)
    duo("SET", "empty", "")
    for args in [(0,), (1,), (0, 0), (0, 0, "bit"), (0, 0, -1, "bit")]:
        duo("BITPOS", "empty", *args)


@pytest.mark.parametrize("seed", [1, 2])
def test_bitcount_bitpos_random_ranges(duo, seed):
    rng = random.Random(seed)
    for index, pattern in enumerate(PATTERNS):
        key = f"p{index}"
        duo("SET", key, pattern)
        bits = max(len(pattern) * 8, 8)
        for _ in range(25):
            mode = rng.choice(["bit", "byte", "BIT", None])
            span = bits if mode and mode.lower() == "bit" else max(len(pattern), 1)
            start = rng.randint(-span - 3, span + 3)
            end = rng.randint(-span - 3, span + 3)
            extra = (mode,) if mode else ()
            duo("BITCOUNT", key, start, end, *extra)
            bit = rng.randint(0, 1)
            duo("BITPOS", key, bit, start, end, *extra)
            if mode is None:
                duo("BITPOS", key, bit, start)


def test_large_bitmap(duo):
    """A 1 MB bitmap: the scans must stay fast (whole-int arithmetic, not per-bit loops)."""
    rng = random.Random(7)
    blob = bytes(rng.getrandbits(8) for _ in range(1 << 20))
    duo("SET", "big", blob)
    duo("SET", "zeros", bytes(1 << 20))
    duo("SET", "ones", b"\xff" * (1 << 20))
    for _ in range(20):
        duo("BITCOUNT", "big", rng.randint(0, 1 << 20), -rng.randint(1, 1 << 20))
        duo("BITCOUNT", "big", rng.randint(0, 1 << 23), rng.randint(0, 1 << 23), "BIT")
    for args in [("zeros", 1), ("zeros", 0, 1000), ("ones", 0), ("ones", 0, 5, -1),
                 ("ones", 0, 9, -1, "BIT"), ("ones", 1, 1 << 19), ("zeros", 1, 17, -3, "BIT")]:
        duo("BITPOS", *args)
    duo("BITOP", "XOR", "x", "big", "ones")
    duo("BITCOUNT", "x")
    duo("BITOP", "NOT", "x", "x")
    duo("BITOP", "AND", "x", "x", "big")
    duo("BITCOUNT", "x")
    duo("SETBIT", "big", (1 << 23) + 5, 1)
    duo("BITCOUNT", "big")
    duo("STRLEN", "big")


# -- BITOP -------------------------------------------------------------------------------------

def test_bitop(duo):
    duo("SET", "{t}a", b"\xff\x0f\x33")
    duo("SET", "{t}b", b"\x0f")
    duo("SET", "{t}c", b"\xaa\x55\xaa\x55\x01")
    for op in ["AND", "or", "Xor"]:
        duo("BITOP", op, "{t}d", "{t}a", "{t}b", "{t}c")
        duo("GET", "{t}d")
        duo("OBJECT", "ENCODING", "{t}d")
        duo("BITOP", op, "{t}d", "{t}a", "{t}missing")
        duo("GET", "{t}d")
        duo("BITOP", op, "{t}d", "{t}a")
        duo("GET", "{t}d")
    duo("BITOP", "NOT", "{t}d", "{t}c")
    duo("GET", "{t}d")
    duo("BITOP", "NOT", "{t}a", "{t}a")
    duo("GET", "{t}a")
    duo("SET", "{t}n", "12")
    duo("BITOP", "AND", "{t}d", "{t}n")
    duo("OBJECT", "ENCODING", "{t}d")
    duo("BITOP", "AND", "{t}d", "{t}n", "{t}n")
    duo("GET", "{t}d")


def test_bitop_across_shards(duo):
    """Keys without a common hash tag: a global-mode call when Shardis runs several shards."""
    for i, value in enumerate([b"\x01\x02", b"\xf0", b"\x10\x20\x30"]):
        duo("SET", f"src{i}", value)
    duo("BITOP", "OR", "dst", "src0", "src1", "src2")
    duo("GET", "dst")
    duo("BITOP", "XOR", "src0", "src0", "src2")
    duo("GET", "src0")


def test_bitop_empty_result_deletes_destination(duo):
    duo("SET", "d", "old", "EX", 100)
    duo("BITOP", "AND", "d", "nosuch1", "nosuch2")
    duo("EXISTS", "d")
    duo("SET", "empty", "")
    duo("SET", "d", "old")
    duo("BITOP", "OR", "d", "empty")
    duo("EXISTS", "d")
    duo("BITOP", "NOT", "d", "empty")
    duo("EXISTS", "d")
    duo("SET", "src", "x")
    duo("SET", "d", "old", "EX", 100)
    duo("BITOP", "OR", "d", "src")
    duo("TTL", "d")  # the destination is replaced: no TTL


@pytest.mark.parametrize("args", [
    ("BITOP", "NOT", "d", "a", "b"), ("BITOP", "NOT", "d"), ("BITOP", "nand", "d", "a"),
    ("BITOP", "", "d", "a"), ("BITOP", "and", "d"), ("BITOP", "an", "d", "a"),
])
def test_bitop_errors(duo, args):
    duo.error(*args)


# -- BITFIELD ----------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ("get",), ("get", "u8"), ("foo",), ("get", "u64", 0), ("get", "i65", 0), ("get", "i0", 0),
    ("get", "x8", 0), ("get", "U8", 0), ("get", "u+8", 0), ("get", "u08", 0), ("get", "", 0),
    ("get", "i", 0), ("get", "i8", "#"), ("get", "i8", "##1"), ("get", "i8", "#-1"),
    ("get", "i8", -1), ("get", "i8", "x"), ("overflow", "foo", "get", "i8", 0), ("overflow",),
    ("set", "i8", 0, "x"), ("set", "i8", 0), ("incrby", "i8", 0, "x"), ("incrby", "u8", 0, "1.5"),
    ("get", "u8", 0, "set", "u8", "x", 1), ("get", "i8", 0, "set"), ("set", "u8", 0, 1, "get"),
    ("get", "i8", "#536870912"), ("set", "u8", "#536870912", 1), ("get", "i8", "4294967296"),
])
def test_bitfield_errors(duo, args):
    duo.error("BITFIELD", "k", *args)
    duo("EXISTS", "k")


def test_bitfield_ro(duo):
    duo("SET", "k", "hello")
    duo("BITFIELD_RO", "k", "GET", "u8", 0, "GET", "i4", "#3", "GET", "u63", 1)
    duo("BITFIELD_RO", "missing", "GET", "i64", 0)
    duo("BITFIELD_RO", "k")
    duo("BITFIELD_RO", "k", "OVERFLOW", "FAIL")
    for args in [("SET", "u8", 0, 1), ("INCRBY", "u8", 0, 1), ("GET", "u8", 0, "SET", "u8", 0, 1),
                 ("GET", "u64", 0), ("SET", "u8", 0)]:
        duo.error("BITFIELD_RO", "k", *args)
    duo("GET", "k")
    duo.error("BITFIELD_RO", "missing", "SET", "u8", 0, 1)
    duo("EXISTS", "missing")


def test_bitfield_basics(duo):
    duo("BITFIELD", "missing")
    duo("BITFIELD", "missing", "OVERFLOW", "sat")
    duo("BITFIELD", "missing", "GET", "u8", 0)
    duo("EXISTS", "missing")
    duo("BITFIELD", "k", "SET", "i8", 0, 300, "GET", "i8", 0, "GET", "u4", 4)
    duo("GET", "k")
    duo("OBJECT", "ENCODING", "k")
    duo("BITFIELD", "k", "INCRBY", "u2", 100, 1, "OVERFLOW", "SAT", "INCRBY", "u2", 102, 1)
    duo("GET", "k")
    duo("BITFIELD", "k", "OVERFLOW", "FAIL", "INCRBY", "u2", 100, 1, "INCRBY", "u2", 100, 3,
        "GET", "u2", 100)
    duo("BITFIELD", "k", "OVERFLOW", "SAT", "INCRBY", "i8", 200, -200, "INCRBY", "i8", 200, -100)
    duo("BITFIELD", "k", "SET", "i64", 0, "-9223372036854775808", "INCRBY", "i64", 0, -1,
        "OVERFLOW", "SAT", "INCRBY", "i64", 0, -1, "OVERFLOW", "FAIL", "INCRBY", "i64", 0, -1,
        "INCRBY", "i64", 0, "9223372036854775807")
    duo("BITFIELD", "k", "SET", "u63", 0, "9223372036854775807", "INCRBY", "u63", 0, 1)
    duo("BITFIELD", "k", "SET", "u8", 0, -1, "OVERFLOW", "SAT", "SET", "u8", 8, -1,
        "SET", "i8", 16, 1000, "SET", "i8", 24, -1000, "OVERFLOW", "FAIL", "SET", "u8", 0, 256,
        "SET", "i3", 3, 3, "SET", "i3", 3, 4)
    duo("GET", "k")
    duo("BITFIELD", "k", "GET", "i8", "#4611686018427387904", "GET", "i64", "#1152921504606846976",
        "GET", "u8", "#2305843009213693952", "GET", "i8", "#536870911", "get", "u1", "#7")
    duo("BITFIELD", "k", "set", "u8", "#3", 7, "incrby", "i16", "#2", 1000, "get", "u8", "#3")
    duo("GET", "k")


def test_bitfield_fail_still_creates_and_pads(duo):
    duo("BITFIELD", "new", "OVERFLOW", "FAIL", "SET", "u2", 20, 5)
    duo("GET", "new")
    duo("OBJECT", "ENCODING", "new")
    duo("SET", "emb", "ab")
    duo("BITFIELD", "emb", "OVERFLOW", "FAIL", "INCRBY", "u1", 40, 2)
    duo("GET", "emb")
    duo("OBJECT", "ENCODING", "emb")
    duo("SET", "same", "ab")
    duo("BITFIELD", "same", "SET", "u8", 0, 97)
    duo("OBJECT", "ENCODING", "same")


def test_bitfield_random(duo):
    rng = random.Random(11)
    duo("SET", "k", bytes(rng.getrandbits(8) for _ in range(16)))
    for _ in range(60):
        args = []
        for _ in range(rng.randint(1, 5)):
            signed = rng.random() < 0.5
            bits = rng.randint(1, 64 if signed else 63)
            kind = f"{'i' if signed else 'u'}{bits}"
            offset = f"#{rng.randint(0, 4)}" if rng.random() < 0.2 else rng.randint(0, 160)
            op = rng.choice(["GET", "SET", "INCRBY", "OVERFLOW"])
            if op == "OVERFLOW":
                args += ["OVERFLOW", rng.choice(["WRAP", "SAT", "FAIL", "wrap"])]
            elif op == "GET":
                args += ["GET", kind, offset]
            else:
                number = rng.choice([rng.randint(-(1 << 63), (1 << 63) - 1),
                                     rng.randint(-300, 300), (1 << (bits - 1)) - 1, -(1 << 63)])
                args += [op, kind, offset, number]
        duo("BITFIELD", "k", *args)
    duo("GET", "k")


# -- a seeded random sequence ------------------------------------------------------------------

def test_random_sequence(duo):
    """Mixed bitmap commands over a few keys (some spanning shards), compared step by step."""
    rng = random.Random(2024)
    keys = ["a", "b", "{x}c", "{x}d", "e"]
    for _ in range(400):
        key = rng.choice(keys)
        choice = rng.randrange(9)
        if choice == 0:
            duo("SETBIT", key, rng.randint(0, 300), rng.randint(0, 1))
        elif choice == 1:
            duo("GETBIT", key, rng.randint(0, 320))
        elif choice == 2:
            duo("BITCOUNT", key, rng.randint(-40, 40), rng.randint(-40, 40),
                rng.choice(["BIT", "BYTE"]))
        elif choice == 3:
            duo("BITPOS", key, rng.randint(0, 1), rng.randint(-40, 40))
        elif choice == 4:
            duo("BITOP", rng.choice(["AND", "OR", "XOR"]), key, *rng.sample(keys, rng.randint(1, 3)))
        elif choice == 5:
            duo("BITOP", "NOT", key, rng.choice(keys))
        elif choice == 6:
            duo("BITFIELD", key, "INCRBY", f"i{rng.randint(1, 16)}", rng.randint(0, 100),
                rng.randint(-50, 50), "GET", "u8", rng.randint(0, 100))
        elif choice == 7:
            duo("GET", key)
        else:
            if rng.random() < 0.3:
                duo("DEL", key)
            else:
                duo("SET", key, rng.choice(PATTERNS))
    for key in keys:
        duo("GET", key)
        if duo("EXISTS", key):
            duo("OBJECT", "ENCODING", key)
    duo("DEBUG", "DIGEST-VALUE", *keys)
