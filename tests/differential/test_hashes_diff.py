"""The hash command group against a real redis-server 7.0, reply for reply over raw sockets.

Replies are compared byte for byte through `Duo` (see test_strings_diff.py). A listpack hash keeps
insertion order on both sides, so HGETALL, HKEYS, HVALS and HSCAN of small hashes are compared
exactly; a hashtable's order is Redis's hash order, so those are compared as multisets (with the
reply type and length still exact). HRANDFIELD is random: sizes, distinctness, membership, values
and, for listpack hashes, the in-order sampling Redis uses are compared instead.

Encoding thresholds are exercised with small `hash-max-listpack-entries/value` set on both servers
and restored afterwards.
"""

from __future__ import annotations

import random

import pytest

from tests.differential.test_strings_diff import Duo, Err, duo  # noqa: F401

pytestmark = [pytest.mark.differential, pytest.mark.timeout(60)]


# -- helpers -------------------------------------------------------------------------------------

def _pairs(reply) -> list[tuple]:
    """HGETALL's reply as (field, value) pairs, from a RESP3 map or a RESP2 flat array."""
    if isinstance(reply, dict):
        return list(reply.items())
    return list(zip(reply[::2], reply[1::2]))


def same_unordered(duo: Duo, *args):
    """Same reply type and length on both sides; same elements (or field/value pairs) in any order."""
    ours_raw, ours = duo.ours.call(*args)
    real_raw, real = duo.real.call(*args)
    assert ours_raw.split(b"\r\n", 1)[0] == real_raw.split(b"\r\n", 1)[0], (args, ours_raw, real_raw)
    if args[0].upper() == "HGETALL":
        assert sorted(_pairs(ours)) == sorted(_pairs(real)), (args, ours, real)
    elif isinstance(real, list):
        assert sorted(ours) == sorted(real), (args, ours, real)
    else:
        assert ours_raw == real_raw, (args, ours_raw, real_raw)
    return ours


def read_all(duo: Duo, key: str) -> None:
    """Every whole-hash read: exact for a listpack, unordered for a hashtable."""
    encoding = duo("OBJECT", "ENCODING", key)
    for name in ("HGETALL", "HKEYS", "HVALS"):
        if encoding == b"hashtable":
            same_unordered(duo, name, key)
        else:
            duo(name, key)
    duo("HLEN", key)


@pytest.fixture
def small_listpacks(duo):
    """hash-max-listpack-entries 4 and -value 8 on both servers for the test."""
    duo("CONFIG", "SET", "hash-max-listpack-entries", "4")
    duo("CONFIG", "SET", "hash-max-listpack-value", "8")
    yield duo
    duo("CONFIG", "SET", "hash-max-listpack-entries", "512")
    duo("CONFIG", "SET", "hash-max-listpack-value", "64")


WRONG_ARITY = [
    ("HSET", "h"), ("HSET", "h", "f"), ("HMSET", "h", "f"), ("HSETNX", "h", "f"), ("HGET", "h"),
    ("HMGET", "h"), ("HDEL", "h"), ("HLEN",), ("HSTRLEN", "h"), ("HEXISTS", "h"),
    ("HINCRBY", "h", "f"), ("HINCRBYFLOAT", "h", "f"), ("HKEYS",), ("HVALS",), ("HGETALL",),
    ("HRANDFIELD",), ("HSCAN", "h"), ("HSET", "h", "f", "v", "g"), ("HMSET", "h", "f", "v", "g"),
    ("hset", "h", "a", "1", "b"), ("HgetAll", "a", "b"),
]


def test_wrong_arity(duo):
    for args in WRONG_ARITY:
        duo.error(*args)
    duo("EXISTS", "h")


def test_wrong_type(duo):
    duo("SET", "str", "x")
    duo("SADD", "set", "a")
    for key in ("str", "set"):
        for args in [("HSET", key, "f", "v"), ("HMSET", key, "f", "v"), ("HSETNX", key, "f", "v"),
                     ("HGET", key, "f"), ("HMGET", key, "f"), ("HDEL", key, "f"), ("HLEN", key),
                     ("HSTRLEN", key, "f"), ("HEXISTS", key, "f"), ("HINCRBY", key, "f", 1),
                     ("HINCRBYFLOAT", key, "f", 1), ("HKEYS", key), ("HVALS", key),
                     ("HGETALL", key), ("HRANDFIELD", key), ("HRANDFIELD", key, 0),
                     ("HRANDFIELD", key, 2, "WITHVALUES"), ("HSCAN", key, 0)]:
            duo.error(*args)
    # argument errors come before the type check
    for args in [("HINCRBY", "str", "f", "x"), ("HINCRBYFLOAT", "str", "f", "x"),
                 ("HINCRBYFLOAT", "str", "f", "inf"), ("HRANDFIELD", "str", "x"),
                 ("HRANDFIELD", "str", 1, "BOGUS"), ("HSCAN", "str", "x"),
                 ("HSET", "str", "f", "v", "g")]:
        duo.error(*args)
    duo("HSCAN", "nothere", 0, "BOGUS")  # a missing key replies before options are parsed


def test_hset_hget_family(duo):
    duo("HSET", "h", "a", "1", "b", "2", "a", "3")
    duo("HSET", "h", "a", "4")
    duo("HMSET", "h", "c", "", "", "empty-field", b"\x00\r\n", b"\xff")
    duo("HSETNX", "h", "a", "9")
    duo("HSETNX", "h", "d", "9")
    duo("HSETNX", "new", "f", "v")
    for field in ("a", "b", "c", "", b"\x00\r\n", "zz"):
        duo("HGET", "h", field)
        duo("HEXISTS", "h", field)
        duo("HSTRLEN", "h", field)
    duo("HGET", "missing", "a")
    duo("HEXISTS", "missing", "a")
    duo("HSTRLEN", "missing", "a")
    duo("HMGET", "h", "a", "zz", "b", "a", "")
    duo("HMGET", "missing", "a", "b")
    duo("HLEN", "missing")
    read_all(duo, "h")
    duo("HDEL", "h", "a", "a", "zz")
    duo("HDEL", "missing", "a")
    read_all(duo, "h")
    duo("HDEL", "h", "b", "c", "", b"\x00\r\n", "d", "zz")
    duo("EXISTS", "h")
    duo("HGETALL", "h")
    duo("HKEYS", "h")
    duo("HVALS", "h")


def test_insertion_order(duo):
    """A listpack overwrites in place, appends new fields and closes gaps, like a dict."""
    duo("HSET", "h", "z", 1, "y", 2, "x", 3, "w", 4)
    duo("HSET", "h", "y", 20)
    duo("HDEL", "h", "z")
    duo("HSET", "h", "z", 5, "v", 6)
    duo("HINCRBY", "h", "x", 1)
    duo("HINCRBYFLOAT", "h", "w", "0.5")
    duo("HSETNX", "h", "u", 7)
    read_all(duo, "h")
    duo("HSCAN", "h", 0)


def test_encoding_thresholds(small_listpacks):
    duo = small_listpacks
    duo("HSET", "h", "a", 1, "b", 2, "c", 3, "d", 4)
    duo("OBJECT", "ENCODING", "h")
    duo("HSET", "h", "a", 5)                # no new field
    duo("OBJECT", "ENCODING", "h")
    duo("HSET", "h", "e", 5)                # five fields
    duo("OBJECT", "ENCODING", "h")
    duo("HDEL", "h", "a", "b", "c", "d")
    duo("OBJECT", "ENCODING", "h")          # sticky
    duo("HSET", "dup", "a", 1, "a", 2, "a", 3, "a", 4, "a", 5)  # many arguments, one field
    duo("OBJECT", "ENCODING", "dup")
    cases = [
        ("HSET", "k", "f", "123456789"),         # value 9 bytes > 8
        ("HSET", "k", "123456789", "v"),         # field too long
        ("HSET", "k", "f", "12345678"),          # exactly 8: fine
        ("HMSET", "k", "f", "v", "g", "123456789"),
        ("HSETNX", "k", "f", "123456789"),
        ("HSETNX", "k", "123456789", "v"),
        ("HINCRBY", "k", "123456789", 1),       # a long field written by HINCRBY
        ("HINCRBY", "k", "f", 123456789),        # a long value written by HINCRBY
        ("HINCRBYFLOAT", "k", "f", "1.5"),
        ("HINCRBYFLOAT", "k", "f", "1.00000000000"),  # a long argument, short result
        ("HINCRBYFLOAT", "k", "f", "1e10"),      # a long result
    ]
    for args in cases:
        duo("DEL", "k")
        duo("HSET", "k", "f", "1")
        duo(*args)
        duo("OBJECT", "ENCODING", "k")
        read_all(duo, "k")
    duo("DEL", "k")
    duo("HSET", "k", "f", "1")
    duo("HSETNX", "k", "f", "123456789")     # an existing field: nothing written, no conversion
    duo("OBJECT", "ENCODING", "k")
    duo("HSET", "k", "f", "123456789")
    duo("HDEL", "k", "f")                    # emptied: deleted, so the next write starts over
    duo("HSET", "k", "f", "1")
    duo("OBJECT", "ENCODING", "k")
    duo("HSET", "k2", "a", "123456789")
    duo("COPY", "k2", "k3")
    duo("OBJECT", "ENCODING", "k3")
    duo("CONFIG", "SET", "hash-max-listpack-entries", "512")
    duo("CONFIG", "SET", "hash-max-listpack-value", "64")
    duo("HSET", "big", *[x for i in range(512) for x in (f"f{i}", i)])
    duo("OBJECT", "ENCODING", "big")
    duo("HSET", "big", "one-more", 1)
    duo("OBJECT", "ENCODING", "big")
    duo("HSET", "long", "f", "x" * 64)
    duo("OBJECT", "ENCODING", "long")
    duo("HSET", "long", "g", "x" * 65)
    duo("OBJECT", "ENCODING", "long")


# -- HINCRBY / HINCRBYFLOAT -----------------------------------------------------------------------------

def test_hincrby(duo):
    duo("HINCRBY", "h", "n", 5)
    duo("HINCRBY", "h", "n", -7)
    duo("HINCRBY", "h", "n", 0)
    duo("HSET", "h", "big", 9223372036854775807, "small", -9223372036854775808)
    for args in [("big", 1), ("small", -1), ("big", -9223372036854775808), ("small", 9223372036854775807),
                 ("big", 0)]:
        duo("HINCRBY", "h", *args)
    duo("HSET", "h", "s", "abc", "f", "1.5", "sp", " 1", "lz", "01", "e", "", "neg0", "-0")
    for field in ("s", "f", "sp", "lz", "e", "neg0"):
        duo.error("HINCRBY", "h", field, 1)
    for incr in ("x", "1.5", "", " 1", "9223372036854775808", "+1", "01"):
        duo.error("HINCRBY", "h", "n", incr)
    duo("HGETALL", "h")


FLOATS = ["1", "-1", "0.1", "10.5", "3.0e3", "-5.0E-3", "1e308", "-1e308", "0x10", "0x1p-2",
          "1.23456789012345678901", "5", "0", "-0", ".5", "5.", "1e-20", "17179869184",
          "1.7976931348623157e308", "4.9e-324", "1e4000", "-1e4000", "+2"]


def test_hincrbyfloat(duo):
    rng = random.Random(7)
    for _ in range(60):
        duo("HINCRBYFLOAT", "h", rng.choice(["a", "b"]), rng.choice(FLOATS))
    read_all(duo, "h")
    duo("HSET", "h", "s", "abc", "sp", " 1", "e", "", "inf", "inf", "nan", "nan", "hex", "0x10",
        "exp", "5.0e3", "huge", "1e400", "int", "42")
    for field in ("s", "sp", "e", "nan"):
        duo.error("HINCRBYFLOAT", "h", field, 1)
    duo.error("HINCRBYFLOAT", "h", "inf", 1)   # increment would produce NaN or Infinity
    for field in ("hex", "exp", "huge", "int"):
        duo("HINCRBYFLOAT", "h", field, "1")
    for incr in ("x", "", " 1", "1 ", "nan", "inf", "-inf", "1e5000", "1_0", "0x"):
        duo.error("HINCRBYFLOAT", "h", "a", incr)
    duo("HSET", "h", "max", "1e4932")
    duo.error("HINCRBYFLOAT", "h", "max", "1e4932")
    read_all(duo, "h")


# -- HRANDFIELD -----------------------------------------------------------------------------------------

def test_hrandfield_errors_and_empty(duo):
    duo("HSET", "h", "a", 1, "b", 2, "c", 3)
    for args in [("h", "x"), ("h", "1.5"), ("h", 1, "WITHVALUE"), ("h", 1, "WITHVALUES", "x"),
                 ("missing", 1, "WITHVALUES", "x"), ("missing", "x"),
                 ("h", -9223372036854775808), ("h", -9223372036854775808, "WITHVALUES"),
                 ("h", 9223372036854775808), ("h", -4611686018427387904, "WITHVALUES"),
                 ("h", 4611686018427387904, "WITHVALUES"), ("h", 9223372036854775807, "WITHVALUES")]:
        duo.error("HRANDFIELD", *args)
    duo("HRANDFIELD", "missing")
    duo("HRANDFIELD", "missing", 0)
    duo("HRANDFIELD", "missing", 5)
    duo("HRANDFIELD", "missing", -5, "WITHVALUES")
    duo("HRANDFIELD", "h", 0)
    duo("HRANDFIELD", "h", 0, "withvalues")
    duo("HRANDFIELD", "h", 3)                              # count >= size: all, in order
    duo("HRANDFIELD", "h", 3, "WITHVALUES")
    duo("HRANDFIELD", "h", 9223372036854775807)
    duo("HRANDFIELD", "h", 4611686018427387903, "WITHVALUES")


def _fields_of(got: list, with_values: bool, protocol: int) -> list:
    if not with_values:
        return got
    return [pair[0] for pair in got] if protocol == 3 else got[::2]


def _check_sample(got, count: int, with_values: bool, fields: list[bytes], values: dict,
                  distinct: bool, protocol: int) -> None:
    if with_values:
        if protocol == 3:
            assert all(isinstance(p, list) and len(p) == 2 for p in got), got
            pairs = [tuple(p) for p in got]
        else:
            pairs = list(zip(got[::2], got[1::2]))
        assert all(values[f] == v for f, v in pairs), got
        picked = [f for f, _ in pairs]
    else:
        picked = got
    assert len(picked) == count, (count, got)
    assert set(picked) <= set(fields)
    if distinct:
        assert len(set(picked)) == count


@pytest.mark.parametrize("size", [5, 40, 600])
def test_hrandfield_counts(duo, size):
    fields = [f"f{i}".encode() for i in range(size)]
    values = {f: b"v" + f for f in fields}
    duo("HSET", "h", *[x for f in fields for x in (f, values[f])])
    encoding = duo("OBJECT", "ENCODING", "h")
    for with_values in (False, True):
        extra = ["WITHVALUES"] if with_values else []
        for count in (1, 2, size // 3, size // 2, size - 1):
            ours, real = duo.both("HRANDFIELD", "h", count, *extra)
            for got in (ours, real):
                _check_sample(got, count, with_values, fields, values, True, duo.protocol)
                if encoding == b"listpack" and count > 1 and count * 3 <= size:
                    # a listpack sampled in place keeps the hash's order
                    picked = _fields_of(got, with_values, duo.protocol)
                    assert picked == sorted(picked, key=fields.index), got
        for count in (-1, -3, -size, -2 * size):
            ours, real = duo.both("HRANDFIELD", "h", count, *extra)
            for got in (ours, real):
                _check_sample(got, -count, with_values, fields, values, False, duo.protocol)
        if encoding == b"listpack":
            duo("HRANDFIELD", "h", size, *extra)
            duo("HRANDFIELD", "h", size + 1, *extra)
        else:
            same_unordered(duo, "HRANDFIELD", "h", size + 1)
    for _ in range(5):
        ours, real = duo.both("HRANDFIELD", "h")
        assert ours in values and real in values


def test_hrandfield_resp3_shape(duo):
    duo("HSET", "h", "a", 1, "b", 2)
    for args in [(1, "WITHVALUES"), (-3, "WITHVALUES"), (2, "WITHVALUES"), (5, "WITHVALUES")]:
        ours, _ = duo.ours.call("HRANDFIELD", "h", *args)
        real, _ = duo.real.call("HRANDFIELD", "h", *args)
        # RESP3: *n of *2 pairs; RESP2: a flat *2n
        assert ours.split(b"\r\n")[:2][0] == real.split(b"\r\n")[:2][0]
        assert ours.count(b"*2\r\n") == real.count(b"*2\r\n")


# -- HSCAN ----------------------------------------------------------------------------------------------

def test_hscan_listpack_whole(duo):
    duo("HSET", "h", "b", 1, "a", 2, "c", 3, "ab", 4)
    duo("HSCAN", "h", 0)
    duo("HSCAN", "h", 0, "COUNT", 1)
    duo("HSCAN", "h", 999)
    duo("HSCAN", "h", 0, "MATCH", "a*")
    duo("HSCAN", "h", 0, "MATCH", "[bc]", "COUNT", 1)
    duo("HSCAN", "h", 0, "MATCH", "2")       # MATCH applies to fields only
    duo("HSCAN", "missing", 0)
    for args in [("0", "COUNT", 0), ("0", "COUNT", "x"), ("0", "MATCH"), ("0", "TYPE", "hash"),
                 ("0", "NOVALUES"), ("x",), ("18446744073709551616",)]:
        duo.error("HSCAN", "h", *args)
    duo("HSCAN", "h", "-1")


def _full_hscan(wire, key: str, *options) -> list[tuple[bytes, bytes]]:
    cursor, out, rounds = b"0", [], 0
    while True:
        _, (cursor, batch) = wire.call("HSCAN", key, cursor, *options)
        out.extend(zip(batch[::2], batch[1::2]))
        rounds += 1
        if cursor == b"0":
            return out
        assert rounds < 10_000


@pytest.mark.parametrize("options", [(), ("COUNT", 9), ("MATCH", "f1*"), ("MATCH", "*7", "COUNT", 50)])
def test_hscan_hashtable_iterates(duo, options):
    duo("HSET", "h", *[x for i in range(700) for x in (f"f{i}", f"v{i}")])
    ours = _full_hscan(duo.ours, "h", *options)
    real = _full_hscan(duo.real, "h", *options)
    assert set(ours) == set(real)
    assert len(ours) == len(set(ours))


def test_hscan_guarantee_under_changes(duo):
    fields = [f"f{i}" for i in range(300)]
    duo("HSET", "h", *[x for f in fields for x in (f, "v")])
    cursor, seen, rounds = b"0", {}, 0
    while True:
        _, (cursor, batch) = duo.ours.call("HSCAN", "h", cursor, "COUNT", 25)
        seen.update(zip(batch[::2], batch[1::2]))
        duo.ours.call("HDEL", "h", f"f{rounds * 11}")
        duo.ours.call("HSET", "h", f"f{rounds * 11 + 1}", "changed", f"new{rounds}", "n")
        rounds += 1
        if cursor == b"0":
            break
    _, now = duo.ours.call("HGETALL", "h")
    now = dict(_pairs(now))
    kept = {f.encode() for f in fields} & set(now)
    assert kept <= set(seen)
    assert all(now.get(f, v) == v or v == b"v" for f, v in seen.items())


# -- a seeded random sequence ----------------------------------------------------------------------------

KEYS = ["h1", "h2", "{t}a", "{t}b", "str", "set"]
FIELDS = ["a", "b", "c", "d", "e", "1", "", "long-field-name-x"]
VALUES = ["1", "-2", "0", "x", "", "1.5", "9223372036854775807", "value-long-enough"]


def _random_op(rng: random.Random) -> tuple[str, list]:
    def key():
        return rng.choice(KEYS)

    def field():
        return rng.choice(FIELDS)

    kind = rng.random()
    if kind < 0.28:
        pairs = [x for _ in range(rng.randint(1, 3)) for x in (field(), rng.choice(VALUES))]
        return "exact", [rng.choice(["HSET", "HMSET"]), key(), *pairs]
    if kind < 0.34:
        return "exact", ["HSETNX", key(), field(), rng.choice(VALUES)]
    if kind < 0.44:
        return "exact", ["HDEL", key(), *[field() for _ in range(rng.randint(1, 3))]]
    if kind < 0.52:
        return "exact", ["HINCRBY", key(), field(), rng.choice(["1", "-3", "100", "x",
                                                                 "9223372036854775807"])]
    if kind < 0.58:
        return "exact", ["HINCRBYFLOAT", key(), field(), rng.choice(["1.5", "-0.25", "1e3", "x"])]
    if kind < 0.70:
        name = rng.choice(["HGET", "HEXISTS", "HSTRLEN", "HLEN", "HMGET"])
        if name == "HLEN":
            return "exact", [name, key()]
        if name == "HMGET":
            return "exact", [name, key(), field(), field()]
        return "exact", [name, key(), field()]
    if kind < 0.82:
        return "whole", [rng.choice(["HGETALL", "HKEYS", "HVALS"]), key()]
    if kind < 0.86:
        return "exact", ["OBJECT", "ENCODING", key()]
    if kind < 0.92:
        return "random", ["HRANDFIELD", key(), rng.choice([1, 2, 4, -3, -9, 20]),
                          *rng.choice([[], ["WITHVALUES"]])]
    if kind < 0.95:
        return "whole", ["HSCAN", key(), 0]
    if kind < 0.98:
        return "exact", ["SET", "str", "x"]
    return "exact", ["SADD", "set", "m"]


def test_random_sequence(duo):
    duo("CONFIG", "SET", "hash-max-listpack-entries", "5")
    duo("CONFIG", "SET", "hash-max-listpack-value", "12")
    try:
        rng = random.Random(424242)
        for _ in range(1500):
            kind, args = _random_op(rng)
            if kind == "exact":
                duo(*args)
            elif kind == "whole":
                if duo.both("OBJECT", "ENCODING", args[1])[1] == b"hashtable":
                    if args[0] == "HSCAN":
                        assert sorted(_full_hscan(duo.ours, args[1])) == \
                            sorted(_full_hscan(duo.real, args[1]))
                    else:
                        same_unordered(duo, *args)
                else:
                    duo(*args)
            else:
                ours, real = duo.both(*args)
                if isinstance(real, Err) or not real:
                    assert ours == real, (args, ours, real)
                else:
                    assert len(ours) == len(real), (args, ours, real)
        for key in KEYS:
            if duo("TYPE", key) == "hash":
                read_all(duo, key)
    finally:
        duo("CONFIG", "SET", "hash-max-listpack-entries", "512")
        duo("CONFIG", "SET", "hash-max-listpack-value", "64")
