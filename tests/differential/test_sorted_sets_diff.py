"""The sorted-set command group against a real redis-server 7.0, reply for reply, RESP2 and RESP3.

Replies are compared byte for byte over raw sockets (`Duo`, from test_strings_diff.py) with the
`pair` fixture's shard counts 1 and 4, so score formatting (%.17g bulk strings in RESP2, doubles in
RESP3), the WITHSCORES shapes and every error text are checked exactly. Keys named by `_spread`
live on different shards when there are 4, so multi-key commands really cross shards.

Only two things are compared loosely, because Redis leaves them random: ZRANDMEMBER picks and the
order in which ZSCAN walks a skiplist (hash) set. Blocking scenarios run on each server in turn and
their transcripts are compared; a waiter is known to be parked once CLIENT LIST shows its command.
"""

from __future__ import annotations

import functools
import operator
import random
import time

import pytest

from keyspace.routing import ShardMap
from tests.differential.test_strings_diff import Duo, Err, Wire, _encode_command, _frame

pytestmark = [pytest.mark.differential, pytest.mark.timeout(120)]


A, B, C, D = ShardMap(4).sample_keys("zset", 4)


@pytest.fixture
def duo(pair):
    d = Duo(pair)
    yield d
    d.close()


def _zadd(duo: Duo, key: str, pairs: dict) -> None:
    duo("DEL", key)
    args = []
    for member, score in pairs.items():
        args += [str(score), member]
    if args:
        duo("ZADD", key, *args)


SMALL = {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}
BIG = {f"m{i:03d}": i % 17 for i in range(150)}           # skiplist: > 128 members
LEX = {m: 0 for m in ["", "a", "aa", "ab", "b", "ba", "c", "\x00", "\xff", "zz"]}


# -- arity, types, errors -----------------------------------------------------------------------

WRONG_ARITY = [
    ("ZADD",), ("ZADD", "k"), ("ZADD", "k", "1"), ("ZINCRBY", "k", "1"), ("ZINCRBY", "k", "1", "m", "x"),
    ("ZCARD",), ("ZCARD", "a", "b"), ("ZSCORE", "k"), ("ZMSCORE", "k"), ("ZRANK", "k"),
    ("ZRANK", "k", "m", "withscore"), ("ZREVRANK", "k"), ("ZCOUNT", "k", "0"), ("ZLEXCOUNT", "k", "-"),
    ("ZRANGE", "k", "0"), ("ZREVRANGE", "k", "0"), ("ZRANGEBYSCORE", "k", "0"),
    ("ZREVRANGEBYSCORE", "k", "0"), ("ZRANGEBYLEX", "k", "-"), ("ZREVRANGEBYLEX", "k", "+"),
    ("ZRANGESTORE", "d", "k", "0"), ("ZREM", "k"), ("ZREMRANGEBYRANK", "k", "0"),
    ("ZREMRANGEBYSCORE", "k", "0", "1", "2"), ("ZREMRANGEBYLEX", "k", "-"), ("ZPOPMIN",),
    ("ZPOPMAX",), ("BZPOPMIN", "k"), ("BZPOPMAX", "k"), ("ZMPOP", "1", "k"), ("BZMPOP", "0", "1", "k"),
    ("ZRANDMEMBER",), ("ZSCAN", "k"), ("ZUNION", "1"), ("ZINTER", "1"), ("ZDIFF", "1"),
    ("ZINTERCARD", "1"), ("ZUNIONSTORE", "d", "1"), ("ZINTERSTORE", "d", "1"), ("ZDIFFSTORE", "d", "1"),
    ("zadd", "k"), ("zRangeByScore", "k"),
]


@pytest.mark.parametrize("args", WRONG_ARITY, ids=lambda a: " ".join(a))
def test_wrong_arity(duo, args):
    duo.error(*args)


WRONG_TYPE = [
    ("ZADD", "s", "1", "m"), ("ZINCRBY", "s", "1", "m"), ("ZCARD", "s"), ("ZSCORE", "s", "m"),
    ("ZMSCORE", "s", "m"), ("ZRANK", "s", "m"), ("ZREVRANK", "s", "m"), ("ZCOUNT", "s", "0", "1"),
    ("ZLEXCOUNT", "s", "-", "+"), ("ZRANGE", "s", "0", "-1"), ("ZREVRANGE", "s", "0", "-1"),
    ("ZRANGEBYSCORE", "s", "0", "1"), ("ZREVRANGEBYSCORE", "s", "1", "0"),
    ("ZRANGEBYLEX", "s", "-", "+"), ("ZREVRANGEBYLEX", "s", "+", "-"), ("ZRANGESTORE", "d", "s", "0", "1"),
    ("ZREM", "s", "m"), ("ZREMRANGEBYRANK", "s", "0", "1"), ("ZREMRANGEBYSCORE", "s", "0", "1"),
    ("ZREMRANGEBYLEX", "s", "-", "+"), ("ZPOPMIN", "s"), ("ZPOPMAX", "s", "2"), ("BZPOPMIN", "s", "0"),
    ("BZPOPMAX", "nokey", "s", "0"), ("ZMPOP", "2", "nokey", "s", "MIN"), ("BZMPOP", "0", "1", "s", "MAX"),
    ("ZRANDMEMBER", "s"), ("ZRANDMEMBER", "s", "2"), ("ZSCAN", "s", "0"), ("ZUNION", "2", "z", "s"),
    ("ZINTER", "2", "s", "z"), ("ZDIFF", "1", "s"), ("ZINTERCARD", "1", "s"),
    ("ZUNIONSTORE", "d", "1", "s"), ("ZUNION", "2", "z", "s", "WEIGHTS", "x"),
]


@pytest.mark.parametrize("args", WRONG_TYPE, ids=lambda a: " ".join(a))
def test_wrong_type(duo, args):
    duo("SET", "s", "string")
    duo("ZADD", "z", "1", "m")
    duo.error(*args)
    duo("GET", "s")


def test_errors_are_checked_before_the_type(duo):
    duo("SET", "s", "x")
    for args in [("ZADD", "s", "nx", "xx", "1", "m"), ("ZADD", "s", "abc", "m"), ("ZADD", "s", "1"),
                 ("ZINCRBY", "s", "abc", "m"), ("ZCOUNT", "s", "x", "1"), ("ZLEXCOUNT", "s", "x", "+"),
                 ("ZRANGE", "s", "a", "b"), ("ZRANGEBYSCORE", "s", "x", "1"), ("ZPOPMIN", "s", "-1"),
                 ("ZREMRANGEBYRANK", "s", "x", "1"), ("ZSCAN", "s", "x"), ("ZRANDMEMBER", "s", "x"),
                 ("ZMPOP", "0", "s", "MIN"), ("BZPOPMIN", "s", "-1")]:
        duo.error(*args)
    # ...but a missing key answers before the options are looked at
    duo("ZSCAN", "nokey", "0", "BOGUS")


# -- ZADD / ZINCRBY -----------------------------------------------------------------------------

ZADD_OPTION_CASES = [
    [], ["NX"], ["XX"], ["CH"], ["GT"], ["LT"], ["INCR"], ["nx", "ch"], ["xx", "ch"], ["xx", "gt"],
    ["xx", "lt"], ["gt", "ch"], ["lt", "ch"], ["gt", "incr"], ["lt", "incr"], ["nx", "incr"],
    ["xx", "incr"], ["xx", "gt", "ch", "incr"], ["CH", "CH"], ["Nx", "nX"],
    # incompatible
    ["NX", "XX"], ["GT", "LT"], ["NX", "GT"], ["NX", "LT"], ["XX", "NX", "GT"],
]


@pytest.mark.parametrize("options", ZADD_OPTION_CASES, ids=lambda o: " ".join(o) or "none")
def test_zadd_options(duo, options):
    """Each option set on a missing key, a listpack and a skiplist, with one and two pairs."""
    for pairs in (["5", "m"], ["5", "m", "0", "new"]):
        for key, start in (("missing", None), (A, SMALL), (B, BIG)):
            duo("DEL", key)
            if start:
                _zadd(duo, key, start)
                duo("ZADD", key, "3", "m")
            duo("ZADD", key, *options, *pairs)
            duo("ZRANGE", key, "0", "-1", "WITHSCORES")
            duo("OBJECT", "ENCODING", key)


@pytest.mark.parametrize("score", [
    "1", "-1", "1.5", "0", "-0", "+0", "1e10", "1E-5", ".5", "5.", "0x10", "0X1p4", "0x.8", "-0x1.8p1",
    "inf", "-inf", "+inf", "INF", "Infinity", "-infinity", "1e308", "1.7976931348623157e308", "1e-310",
    "4.9e-324", "123456789012345678", "0.1", "3.0000000000000004",
    # errors
    "nan", "NaN", "-nan", "1e400", "-1e400", "1e-400", "0x1p5000", "0x1p-5000", "abc", "a", "",
    " 1", "1 ", "1_0", "1e", "0x", "--1", "1.2.3", "inf1", "infinit", "nan(1)", "1\x00",
])
def test_zadd_score_parsing(duo, score):
    duo("ZADD", A, score, "m")
    duo("ZSCORE", A, "m")
    duo("ZINCRBY", B, score, "m")
    duo("ZADD", C, "INCR", score, "m")
    duo("ZUNION", "1", A, "WEIGHTS", score, "WITHSCORES")


def test_zadd_syntax_and_pairs(duo):
    for args in [("k", "1", "a", "2"), ("k", "NX", "1"), ("k", "NX", "XX", "1"), ("k", "INCR", "1", "a", "2", "b"),
                 ("k", "1", "a", "x", "b"), ("k", "XX", "GT"), ("k", "1", "nx"), ("k", "2", "xx", "3", "gt")]:
        duo("ZADD", *args)
    duo("ZRANGE", "k", "0", "-1", "WITHSCORES")
    duo("ZADD", "dups", *["1", "a"] * 200)         # duplicates: one member, still a listpack
    duo("ZCARD", "dups")
    duo("OBJECT", "ENCODING", "dups")
    duo("ZADD", "dups", "3", "a", "2", "a", "1", "a")
    duo("ZSCORE", "dups", "a")


def test_zincrby_and_incr(duo):
    for args in [("1.5", "m"), ("0.1", "m"), ("0.2", "m"), ("-3", "m"), ("1e308", "m"), ("1e308", "m"),
                 ("-inf", "m"), ("inf", "m"), ("1", "nx"), ("nx", "m"), ("incr", "5"), ("abc", "m")]:
        duo("ZINCRBY", A, *args)
    duo("ZRANGE", A, "0", "-1", "WITHSCORES")
    duo("ZADD", B, "INCR", "1", "m")
    duo("ZADD", B, "NX", "INCR", "1", "m")        # nil: exists
    duo("ZADD", B, "XX", "INCR", "1", "zz")       # nil: missing
    duo("ZADD", B, "GT", "INCR", "-1", "m")       # nil: not greater
    duo("ZADD", B, "LT", "INCR", "-1", "m")
    duo("ZADD", "nokey", "XX", "INCR", "1", "m")
    duo("EXISTS", "nokey")


def test_nan_results(duo):
    duo("ZADD", A, "inf", "p", "-inf", "n")
    duo.error("ZINCRBY", A, "-inf", "p")
    duo.error("ZINCRBY", A, "inf", "n")
    duo.error("ZADD", A, "INCR", "-inf", "p")
    duo("ZADD", A, "XX", "INCR", "inf", "p")
    duo("ZADD", A, "NX", "INCR", "-inf", "p")     # NX wins before the sum
    duo("ZRANGE", A, "0", "-1", "WITHSCORES")
    # set operations turn inf + -inf (and 0 * inf) into 0 instead of failing
    duo("ZADD", B, "inf", "p", "inf", "n")
    duo("ZUNION", "2", A, B, "WITHSCORES")
    duo("ZINTER", "2", A, B, "WITHSCORES")
    duo("ZUNION", "2", A, B, "WEIGHTS", "0", "1", "WITHSCORES")
    duo("ZINTER", "2", A, B, "WEIGHTS", "0", "0", "AGGREGATE", "MIN", "WITHSCORES")
    duo("ZUNIONSTORE", C, "2", A, B, "AGGREGATE", "MAX")
    duo("ZRANGE", C, "0", "-1", "WITHSCORES")


def test_negative_zero(duo):
    """A listpack stores -0 as "0"; a skiplist keeps -0.0 (and so does its digest)."""
    duo("CONFIG", "SET", "zset-max-listpack-entries", "2")
    try:
        for key, members in ((A, ["x"]), (B, ["x", "y", "z"])):
            duo("ZADD", key, *functools.reduce(operator.iadd, (["1", m] for m in members), []))
            duo("ZADD", key, "-0", "m")
            duo("OBJECT", "ENCODING", key)
            duo("ZSCORE", key, "m")
            duo("ZRANGE", key, "0", "-1", "WITHSCORES")
            duo("ZSCAN", key, "0", "MATCH", "m")
            duo("DEBUG", "DIGEST-VALUE", key)
            duo("ZINCRBY", key, "0", "m")
            duo("ZINCRBY", key, "-0", "m")
            duo("ZADD", key, "INCR", "-0", "m")
            duo("ZSCORE", key, "m")
            duo("ZPOPMIN", key)
        duo("ZADD", "fresh", "INCR", "-0", "m")      # replies -0, stores 0
        duo("ZSCORE", "fresh", "m")
        duo("ZUNIONSTORE", C, "1", B, "WEIGHTS", "-0")
        duo("OBJECT", "ENCODING", C)
        duo("ZRANGE", C, "0", "-1", "WITHSCORES")
        duo("ZUNION", "1", B, "WEIGHTS", "-0", "WITHSCORES")
        duo("DEBUG", "DIGEST")
    finally:
        duo("CONFIG", "SET", "zset-max-listpack-entries", "128")
    duo("ZUNIONSTORE", D, "1", B, "WEIGHTS", "-0")
    duo("OBJECT", "ENCODING", D)
    duo("ZRANGE", D, "0", "-1", "WITHSCORES")


# -- reads ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("data", [SMALL, BIG], ids=["listpack", "skiplist"])
def test_score_rank_card(duo, data):
    _zadd(duo, A, data)
    duo("ZCARD", A)
    duo("ZCARD", "nokey")
    for member in list(data)[:5] + ["nope", ""]:
        duo("ZSCORE", A, member)
        duo("ZRANK", A, member)
        duo("ZREVRANK", A, member)
    duo("ZMSCORE", A, *list(data)[:4], "nope")
    duo("ZMSCORE", "nokey", "a", "b")
    duo("ZSCORE", "nokey", "a")
    duo("ZRANK", "nokey", "a")


RANKS = [("0", "-1"), ("0", "0"), ("1", "3"), ("-3", "-1"), ("-100", "100"), ("3", "1"), ("5", "10"),
         ("-1", "-2"), ("149", "149"), ("150", "200"), ("-200", "-150"), ("0", "-151"), ("abc", "1"),
         ("1", "1.5"), ("9223372036854775807", "-9223372036854775808")]


@pytest.mark.parametrize("data", [SMALL, BIG], ids=["listpack", "skiplist"])
def test_rank_ranges(duo, data):
    _zadd(duo, A, data)
    for start, stop in RANKS:
        duo("ZRANGE", A, start, stop)
        duo("ZRANGE", A, start, stop, "WITHSCORES")
        duo("ZRANGE", A, start, stop, "REV", "WITHSCORES")
        duo("ZREVRANGE", A, start, stop, "WITHSCORES")
        duo("ZRANGESTORE", B, A, start, stop)
        duo("ZRANGE", B, "0", "-1", "WITHSCORES")
        duo("OBJECT", "ENCODING", B)


SCORE_BOUNDS = [
    ("-inf", "+inf"), ("-inf", "inf"), ("1", "3"), ("(1", "3"), ("1", "(3"), ("(1", "(3"), ("(1", "(2"),
    ("(2", "(2"), ("2", "2"), ("3", "1"), ("0", "0"), ("", ""), ("(", "4"), (" 2", "4"), ("0x2", "0x3"),
    ("1e400", "inf"), ("-1e400", "1e-400"), ("(-inf", "(inf"), ("(inf", "+inf"), ("-inf", "(-inf"),
    ("2\x00junk", "4"), ("(1.5", "4.5"), ("16", "(16"), ("5", "16"),
    # errors
    ("2 ", "4"), (" ", "4"), ("nan", "1"), ("(nan", "1"), ("((1", "2"), ("[1", "2"), ("1", "abc"),
    ("1", "(x"), ("-", "+"),
]


@pytest.mark.parametrize("data", [SMALL, BIG], ids=["listpack", "skiplist"])
def test_score_ranges(duo, data):
    _zadd(duo, A, data)
    for lo, hi in SCORE_BOUNDS:
        duo("ZRANGEBYSCORE", A, lo, hi)
        duo("ZRANGEBYSCORE", A, lo, hi, "WITHSCORES", "LIMIT", "1", "3")
        duo("ZREVRANGEBYSCORE", A, hi, lo, "WITHSCORES")
        duo("ZRANGE", A, hi, lo, "BYSCORE", "REV", "LIMIT", "2", "-1")
        duo("ZCOUNT", A, lo, hi)
        duo("ZRANGESTORE", B, A, lo, hi, "BYSCORE")
        duo("ZRANGE", B, "0", "-1", "WITHSCORES")
    duo("ZCOUNT", "nokey", "0", "1")
    duo.error("ZCOUNT", "nokey", "x", "1")


LEX_BOUNDS = [
    ("-", "+"), ("+", "-"), ("-", "-"), ("+", "+"), ("[a", "[b"), ("(a", "(b"), ("[a", "(b"), ("(a", "[b"),
    ("[", "+"), ("(", "+"), ("-", "["), ("[b", "[a"), ("[aa", "[aa"), ("(aa", "[aa"), ("[\x00", "[\x00"),
    ("[\xff", "+"), ("-", "(\x00"), ("+\x00", "-\x00zz"),
    # errors
    ("a", "b"), ("", "+"), ("-", ""), ("+a", "+"), ("-", "-a"), ("{a", "+"), ("\x00", "+"),
]


@pytest.mark.parametrize("data", [LEX, {f"m{i:03d}": 0 for i in range(150)}], ids=["listpack", "skiplist"])
def test_lex_ranges(duo, data):
    _zadd(duo, A, data)
    bounds = LEX_BOUNDS + [("[m010", "(m020"), ("(m149", "+"), ("-", "[m000")]
    for lo, hi in bounds:
        duo("ZRANGEBYLEX", A, lo, hi)
        duo("ZRANGEBYLEX", A, lo, hi, "LIMIT", "1", "2")
        duo("ZREVRANGEBYLEX", A, hi, lo)
        duo("ZREVRANGEBYLEX", A, hi, lo, "LIMIT", "0", "3")
        duo("ZRANGE", A, lo, hi, "BYLEX", "LIMIT", "1", "-1")
        duo("ZRANGE", A, hi, lo, "BYLEX", "REV")
        duo("ZLEXCOUNT", A, lo, hi)
        duo("ZRANGESTORE", B, A, lo, hi, "BYLEX")
        duo("ZRANGE", B, "0", "-1", "WITHSCORES")
        duo("COPY", A, C, "REPLACE")
        duo("ZREMRANGEBYLEX", C, lo, hi)
        duo("ZRANGE", C, "0", "-1")


def test_lex_ranges_with_mixed_scores_on_a_listpack(duo):
    """Undefined by the docs, but a listpack answers deterministically: Redis walks it in order."""
    _zadd(duo, A, {"d": 1, "a": 2, "c": 3, "b": 4, "e": 0, "aa": 2})
    for lo, hi in [("-", "+"), ("[b", "[d"), ("(a", "+"), ("-", "(c"), ("[c", "[c"), ("[b", "[a")]:
        duo("ZRANGEBYLEX", A, lo, hi)
        duo("ZREVRANGEBYLEX", A, hi, lo)
        duo("ZLEXCOUNT", A, lo, hi)
    duo("ZREMRANGEBYLEX", A, "[b", "[d")
    duo("ZRANGE", A, "0", "-1", "WITHSCORES")


@pytest.mark.parametrize("options", [
    [], ["WITHSCORES"], ["REV"], ["REV", "WITHSCORES"], ["BYSCORE"], ["BYSCORE", "REV"], ["BYLEX"],
    ["BYSCORE", "LIMIT", "1", "2"], ["BYSCORE", "LIMIT", "0", "-1"], ["BYSCORE", "LIMIT", "-1", "2"],
    ["BYSCORE", "LIMIT", "5", "1"], ["BYSCORE", "LIMIT", "4", "1"], ["BYSCORE", "LIMIT", "1", "0"],
    ["BYSCORE", "LIMIT", "1"], ["BYSCORE", "LIMIT", "a", "1"], ["BYSCORE", "LIMIT", "1", "1.5"],
    ["LIMIT", "0", "1"], ["LIMIT", "0", "-1"], ["LIMIT", "3", "-1", "REV"], ["BYLEX", "WITHSCORES"],
    ["BYLEX", "BYSCORE"], ["BYSCORE", "BYLEX"], ["REV", "REV"], ["WITHSCORES", "WITHSCORES"],
    ["BOGUS"], ["withscores", "limit", "0", "2", "byscore"], ["LIMIT", "0", "1", "LIMIT", "1", "1", "BYSCORE"],
], ids=lambda o: " ".join(o) or "none")
def test_zrange_options(duo, options):
    _zadd(duo, A, SMALL)
    duo("ZRANGE", A, "0", "-1", *options)
    duo("ZRANGE", A, "1", "4", *options)
    duo("ZRANGE", A, "(1", "[d", *options)
    duo("ZRANGE", "nokey", "0", "-1", *options)
    store_options = [o for o in options if o.upper() != "WITHSCORES"]
    duo("ZRANGESTORE", B, A, "0", "-1", *options)
    duo("ZRANGESTORE", B, A, "1", "4", *store_options)
    duo("ZRANGE", B, "0", "-1", "WITHSCORES")


def test_legacy_range_commands_reject_modern_options(duo):
    _zadd(duo, A, SMALL)
    for args in [("ZRANGEBYSCORE", A, "1", "5", "REV"), ("ZRANGEBYSCORE", A, "1", "5", "BYSCORE"),
                 ("ZRANGEBYSCORE", A, "1", "5", "BYLEX"), ("ZREVRANGE", A, "0", "1", "LIMIT", "0", "1"),
                 ("ZREVRANGE", A, "0", "1", "BYSCORE"), ("ZRANGEBYLEX", A, "-", "+", "WITHSCORES"),
                 ("ZREVRANGEBYLEX", A, "+", "-", "REV"), ("ZREVRANGEBYSCORE", A, "5", "1", "REV"),
                 ("ZRANGEBYSCORE", A, "1", "5", "WITHSCORES", "LIMIT", "1", "2", "WITHSCORES"),
                 ("ZRANGEBYSCORE", A, "1", "5", "LIMIT", "0"), ("ZRANGESTORE", B, A, "0", "1", "WITHSCORES")]:
        duo(*args)


def test_store_results(duo):
    """ZRANGESTORE writes over any type, drops the TTL, deletes the destination on empty results."""
    _zadd(duo, A, SMALL)
    duo("SET", B, "string")
    duo("ZRANGESTORE", B, A, "0", "1")
    duo("TYPE", B)
    duo("EXPIRE", B, "100")
    duo("ZRANGESTORE", B, A, "0", "2")
    duo("TTL", B)
    duo("ZRANGESTORE", B, A, "5", "0")
    duo("EXISTS", B)
    duo("ZRANGESTORE", B, "nokey", "0", "-1")
    duo("ZRANGESTORE", A, A, "1", "2")        # source and destination the same key
    duo("ZRANGE", A, "0", "-1", "WITHSCORES")
    duo("SET", C, "x")
    duo("ZUNIONSTORE", C, "1", A)
    duo("TYPE", C)
    duo("ZINTERSTORE", C, "2", A, "nokey")
    duo("EXISTS", C)
    duo("ZADD", A, "5", "e")
    duo("EXPIRE", A, "100")
    duo("ZADD", A, "6", "f")
    duo("TTL", A)


# -- removal -------------------------------------------------------------------------------------

@pytest.mark.parametrize("data", [SMALL, BIG], ids=["listpack", "skiplist"])
def test_removal(duo, data):
    _zadd(duo, A, data)
    duo("ZREM", A, "a", "nope", "a", "m001")
    duo("ZREM", "nokey", "a")
    for args in [("ZREMRANGEBYRANK", "0", "1"), ("ZREMRANGEBYRANK", "-2", "-1"), ("ZREMRANGEBYRANK", "5", "1"),
                 ("ZREMRANGEBYRANK", "x", "1"), ("ZREMRANGEBYSCORE", "(3", "4"), ("ZREMRANGEBYSCORE", "x", "1"),
                 ("ZREMRANGEBYSCORE", "10", "(12"), ("ZREMRANGEBYLEX", "x", "+"),
                 ("ZREMRANGEBYRANK", "100", "1000")]:
        duo(args[0], A, *args[1:])
        duo("ZCARD", A)
    duo("ZRANGE", A, "0", "-1", "WITHSCORES")
    duo("OBJECT", "ENCODING", A)
    duo("ZREMRANGEBYSCORE", A, "-inf", "+inf")
    duo("EXISTS", A)
    duo("ZREMRANGEBYRANK", "nokey", "0", "-1")
    _zadd(duo, A, {"a": 1, "b": 2})
    duo("ZREM", A, "a", "b", "c")
    duo("EXISTS", A)


def test_skiplist_stays_skiplist_when_it_shrinks(duo):
    _zadd(duo, A, BIG)
    duo("OBJECT", "ENCODING", A)
    duo("ZREMRANGEBYRANK", A, "0", "-3")
    duo("OBJECT", "ENCODING", A)
    duo("COPY", A, B)
    duo("OBJECT", "ENCODING", B)
    duo("ZUNIONSTORE", C, "1", A)                 # a fresh result fits: listpack again
    duo("OBJECT", "ENCODING", C)
    duo("ZADD", D, "1", "x" * 64)
    duo("OBJECT", "ENCODING", D)
    duo("ZADD", D, "1", "y" * 65)
    duo("OBJECT", "ENCODING", D)
    duo("ZREM", D, "y" * 65)
    duo("OBJECT", "ENCODING", D)


def test_encoding_follows_the_live_config(duo):
    duo("CONFIG", "SET", "zset-max-listpack-entries", "3")
    duo("CONFIG", "SET", "zset-max-listpack-value", "4")
    try:
        duo("ZADD", A, "1", "a", "2", "b", "3", "c")
        duo("OBJECT", "ENCODING", A)
        duo("ZADD", A, "4", "a")                    # updates never convert
        duo("OBJECT", "ENCODING", A)
        duo("ZADD", A, "4", "d")
        duo("OBJECT", "ENCODING", A)
        duo("ZADD", B, "1", "abcd")
        duo("OBJECT", "ENCODING", B)
        duo("ZADD", B, "1", "abcde")
        duo("OBJECT", "ENCODING", B)
        duo("ZRANGESTORE", C, A, "0", "2")
        duo("OBJECT", "ENCODING", C)
        duo("ZRANGESTORE", C, A, "0", "3")
        duo("OBJECT", "ENCODING", C)
        duo("ZUNIONSTORE", C, "1", B)
        duo("OBJECT", "ENCODING", C)
        duo("ZDIFFSTORE", C, "2", A, B)
        duo("OBJECT", "ENCODING", C)
        duo("CONFIG", "SET", "zset-max-listpack-entries", "0")
        duo("ZADD", D, "1", "a")
        duo("OBJECT", "ENCODING", D)
    finally:
        duo("CONFIG", "SET", "zset-max-listpack-entries", "128")
        duo("CONFIG", "SET", "zset-max-listpack-value", "64")


# -- popping -------------------------------------------------------------------------------------

@pytest.mark.parametrize("data", [SMALL, BIG], ids=["listpack", "skiplist"])
def test_pops(duo, data):
    _zadd(duo, A, data)
    for args in [("ZPOPMIN", A), ("ZPOPMAX", A), ("ZPOPMIN", A, "2"), ("ZPOPMAX", A, "3"), ("ZPOPMIN", A, "0"),
                 ("ZPOPMIN", A, "-1"), ("ZPOPMIN", A, "abc"), ("ZPOPMIN", A, "1", "2"), ("ZPOPMIN", "nokey"),
                 ("ZPOPMAX", "nokey", "3"), ("ZPOPMIN", "nokey", "-1"), ("ZPOPMIN", A, "1")]:
        duo(*args)
    duo("ZPOPMAX", A, "1000")
    duo("EXISTS", A)


def test_zmpop(duo):
    _zadd(duo, B, SMALL)
    for args in [("0", B, "MIN"), ("-1", B, "MIN"), ("abc", B, "MIN"), ("5", B, "MIN"), ("1", B, "foo"),
                 ("1", B, "MIN", "COUNT", "0"), ("1", B, "MIN", "COUNT", "-1"), ("1", B, "MIN", "COUNT", "x"),
                 ("1", B, "MIN", "COUNT"), ("1", B, "MIN", "COUNT", "1", "COUNT", "1"), ("1", B, "MIN", "x"),
                 ("2", A, "nokey", "MIN"), ("2", A, B, "max"), ("3", A, C, B, "MIN", "count", "2"),
                 ("1", B, "MAX", "COUNT", "100"), ("1", B, "MIN")]:
        duo("ZMPOP", *args)
    duo("EXISTS", B)
    duo("SET", C, "x")
    duo("ZADD", D, "1", "d")
    duo("ZMPOP", "2", C, D, "MIN")                # the first existing key decides the type error
    duo("ZMPOP", "2", D, C, "MIN")


def test_blocking_pops_served_at_once(duo):
    _zadd(duo, B, SMALL)
    _zadd(duo, D, BIG)
    duo("BZPOPMIN", A, B, "0")
    duo("BZPOPMAX", A, B, D, "0")
    duo("BZPOPMAX", D, "0.5")
    duo("BZMPOP", "0", "3", A, C, B, "MIN", "COUNT", "2")
    duo("BZMPOP", "1", "2", B, D, "MAX")
    duo("EXISTS", B)
    _zadd(duo, B, SMALL)
    duo("BZMPOP", "0", "1", B, "MAX", "COUNT", "100")
    duo("EXISTS", B)
    for args in [("BZPOPMIN", A, "abc"), ("BZPOPMIN", A, "-1"), ("BZPOPMIN", A, "inf"), ("BZPOPMIN", A, "nan"),
                 ("BZMPOP", "abc", "1", A, "MIN"), ("BZMPOP", "0", "1", A, "foo"), ("BZMPOP", "-1", "1", A, "MIN"),
                 ("BZMPOP", "-1", "0", A, "MIN"), ("BZMPOP", "0", "1", A, "MIN", "COUNT", "0"),
                 ("BZMPOP", "0", "2", A, "MIN")]:
        duo.error(*args)


def test_blocking_pops_inside_multi(duo):
    _zadd(duo, B, SMALL)
    duo("MULTI")
    for args in [("BZPOPMIN", A, "0"), ("BZPOPMAX", A, C, "0"), ("BZMPOP", "0", "1", A, "MIN"),
                 ("BZPOPMIN", A, B, "0"), ("BZMPOP", "0", "2", A, B, "MAX", "COUNT", "2")]:
        duo(*args)
    duo("EXEC")


def test_blocking_pop_timeouts(duo):
    duo("BZPOPMIN", A, "0.01")
    duo("BZPOPMAX", A, B, "0.01")
    duo("BZMPOP", "0.01", "2", A, B, "MIN")
    duo("PING")


# -- blocking: parked clients ---------------------------------------------------------------------

class Client(Wire):
    """A raw connection that can send a command now and read its reply later."""

    def send(self, *args) -> None:
        self.sock.sendall(_encode_command(args))

    def read(self) -> bytes:
        while True:
            got = _frame(self.buf, 0) if self.buf else None
            if got is not None:
                raw, self.buf = self.buf[:got[1]], self.buf[got[1]:]
                return raw
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk

    def raw(self, *args) -> bytes:
        return self.call(*args)[0]


def _blocked_command(ctl: Client, cid: int) -> str:
    _, listing = ctl.call("CLIENT", "LIST", "ID", cid)
    text = listing.decode() if isinstance(listing, bytes) else str(listing)
    for field in text.removeprefix("txt:").split():
        if field.startswith("cmd="):
            return field[4:]
    return ""


def _both(pair, scenario) -> list:
    """Run `scenario(open_client)` on Shardis and on redis-server; the transcripts must be equal."""
    ours, real = pair
    kwargs = ours.connection_pool.connection_kwargs
    protocol = int(kwargs.get("protocol") or 2)
    transcripts = []
    for port in (kwargs["port"], real.connection_pool.connection_kwargs["port"]):
        opened: list[Client] = []

        def open_client(port=port, opened=opened) -> tuple[Client, int]:
            c = Client(port, protocol)
            opened.append(c)
            return c, c.call("CLIENT", "ID")[1]
        try:
            transcripts.append(scenario(open_client))
        finally:
            for c in opened:
                c.close()
    assert transcripts[0] == transcripts[1], f"shardis {transcripts[0]!r}\nredis   {transcripts[1]!r}"
    return transcripts[0]


def _parked(open_client, ctl: Client, *args) -> Client:
    """A new client that sent `args` and is now waiting (CLIENT LIST shows the command)."""
    c, cid = open_client()
    c.send(*args)
    deadline = time.monotonic() + 10
    while _blocked_command(ctl, cid) != args[0].lower():
        assert time.monotonic() < deadline, f"{args} did not block"
        time.sleep(0.002)  # polling interval, not synchronisation
    return c


@pytest.mark.parametrize("push", [
    ["ZADD", A, "1", "x", "2", "y"], ["ZINCRBY", A, "5", "x"], ["ZADD", A, "INCR", "3", "x"],
    ["ZUNIONSTORE", A, "1", B], ["ZRANGESTORE", A, B, "0", "0"], ["ZINTERSTORE", A, "2", B, B],
    ["ZDIFFSTORE", A, "1", B],
], ids=["zadd", "zincrby", "zadd-incr", "zunionstore", "zrangestore", "zinterstore", "zdiffstore"])
@pytest.mark.parametrize("waiter", [
    ["BZPOPMIN", C, A, "0"], ["BZPOPMAX", A, "0"], ["BZMPOP", "0", "2", C, A, "MAX", "COUNT", "5"],
], ids=["bzpopmin", "bzpopmax", "bzmpop"])
def test_every_add_wakes_every_waiter(pair, push, waiter):
    def scenario(open_client):
        ctl, _ = open_client()
        out = [ctl.raw("ZADD", B, "7", "b1", "8", "b2")]
        w = _parked(open_client, ctl, *waiter)
        out.append(ctl.raw(*push))
        out.append(w.read())
        out += [ctl.raw("ZRANGE", k, "0", "-1", "WITHSCORES") for k in (A, B)]
        return out
    _both(pair, scenario)


def test_only_creating_the_key_wakes_a_waiter(pair):
    """Redis 7.0 signals a key as ready in dbAdd only: overwriting a string with a store result, or
    adding to that now existing sorted set, leaves the waiter blocked until the key is re-created."""
    def scenario(open_client):
        ctl, _ = open_client()
        w = _parked(open_client, ctl, "BZPOPMIN", A, "0")
        out = [ctl.raw("SET", A, "x"), ctl.raw("ZADD", B, "1", "m"), ctl.raw("ZUNIONSTORE", A, "1", B),
               ctl.raw("ZADD", A, "2", "n")]
        out += [ctl.raw("DEL", A), ctl.raw("ZADD", A, "3", "o")]
        out.append(w.read())                                # "o": it was still waiting
        return out
    _both(pair, scenario)


def test_fifo_order_and_partial_service(pair):
    def scenario(open_client):
        ctl, _ = open_client()
        waiters = [_parked(open_client, ctl, "BZPOPMIN", A, "0") for _ in range(3)]
        out = [ctl.raw("ZADD", A, "3", "c", "1", "a")]
        out += [waiters[0].read(), waiters[1].read()]
        out.append(ctl.raw("ZADD", A, "0", "z"))
        out.append(waiters[2].read())
        out.append(ctl.raw("EXISTS", A))
        return out
    _both(pair, scenario)


def test_multi_exec_wakes_after_exec(pair):
    def scenario(open_client):
        ctl, _ = open_client()
        w = _parked(open_client, ctl, "BZPOPMAX", A, "0")
        out = [ctl.raw("MULTI"), ctl.raw("ZADD", A, "1", "x"), ctl.raw("ZADD", A, "2", "y"),
               ctl.raw("ZPOPMIN", A), ctl.raw("EXEC")]
        out.append(w.read())
        out.append(ctl.raw("ZRANGE", A, "0", "-1"))
        return out
    _both(pair, scenario)


def test_waiter_times_out_and_connection_keeps_working(pair):
    def scenario(open_client):
        c, _ = open_client()
        out = []
        for args in (("BZPOPMIN", A, B, "0.01"), ("BZMPOP", "0.01", "2", A, B, "MIN")):
            c.send(*args)
            out.append(c.read())
        out.append(c.raw("PING"))
        return out
    _both(pair, scenario)


# -- ZRANDMEMBER ---------------------------------------------------------------------------------

def test_zrandmember_deterministic_cases(duo):
    _zadd(duo, A, SMALL)
    _zadd(duo, B, BIG)
    _zadd(duo, C, {"only": 7})
    for args in [(A, "0"), (A, "5"), (A, "10", "WITHSCORES"), (B, "150"), (B, "1000", "WITHSCORES"),
                 (C,), (C, "1"), (C, "-3", "WITHSCORES"), (C, "2", "withscores"), ("nokey",), ("nokey", "5"),
                 ("nokey", "-5", "WITHSCORES"), (A, "abc"), (A, "1", "foo"), (A, "1", "WITHSCORES", "x"),
                 ("nokey", "5", "foo"), (A, "-9223372036854775808"), (A, "9223372036854775807", "WITHSCORES"),
                 (A, "4611686018427387904", "WITHSCORES"), (A, "-4611686018427387904", "WITHSCORES"),
                 (A, "1.5")]:
        duo("ZRANDMEMBER", *args)


@pytest.mark.parametrize("data", [SMALL, BIG], ids=["listpack", "skiplist"])
def test_zrandmember_picks(duo, data):
    """Random picks: only sizes, membership and distinctness can be compared."""
    _zadd(duo, A, data)
    for count in (1, 3, len(data) - 1, -1, -7, -3 * len(data)):
        for withscores in (False, True):
            args = ["ZRANDMEMBER", A, str(count)] + (["WITHSCORES"] if withscores else [])
            ours, real = duo.both(*args)
            assert len(ours) == len(real), (args, ours, real)
            flat = []
            for item in ours:
                flat += item if isinstance(item, list) else [item]
            members = flat[::2] if withscores else flat
            assert all(m.decode("latin-1") in data for m in members), (args, ours)
            if withscores:
                assert all(float(s) == data[m.decode("latin-1")] for m, s in zip(flat[::2], flat[1::2]))
            if count > 0:
                assert len(set(members)) == len(members), (args, ours)
    single, _ = duo.both("ZRANDMEMBER", A)
    assert single.decode("latin-1") in data


# -- ZSCAN ---------------------------------------------------------------------------------------

def test_zscan_listpack_is_returned_whole(duo):
    _zadd(duo, A, {**SMALL, "inf": "inf", "neg": "-2.5", "tiny": "1e-300"})
    for args in [("0",), ("0", "COUNT", "1"), ("123",), ("0", "MATCH", "*"), ("0", "MATCH", "[a-c]"),
                 ("0", "MATCH", "n*", "COUNT", "100"), ("abc",), ("-1",), ("0", "COUNT", "0"), ("0", "TYPE", "zset"),
                 ("0", "BOGUS"), ("0", "MATCH"), ("0", "COUNT", "x")]:
        duo("ZSCAN", A, *args)
    duo("ZSCAN", "nokey", "0", "BOGUS")
    duo("ZSCAN", "nokey", "abc")


@pytest.mark.parametrize("count", ["1", "10", "1000"])
def test_zscan_skiplist_visits_every_member(duo, count):
    _zadd(duo, A, BIG)
    results = []
    for side in (duo.ours, duo.real):
        cursor, seen = b"0", []
        for _ in range(1000):
            _, (cursor, batch) = side.call("ZSCAN", A, cursor, "MATCH", "m1*", "COUNT", count)
            seen += list(zip(batch[::2], batch[1::2]))
            if cursor == b"0":
                break
        results.append(sorted(set(seen)))
    assert results[0] == results[1]
    assert len(results[0]) == 50


# -- ZUNION / ZINTER / ZDIFF ---------------------------------------------------------------------

SETOP_OPTIONS = [
    [], ["WITHSCORES"], ["WEIGHTS", "2", "3"], ["WEIGHTS", "1", "-1", "WITHSCORES"], ["AGGREGATE", "MIN"],
    ["AGGREGATE", "max", "WITHSCORES"], ["aggregate", "sum", "weights", "0.5", "inf", "withscores"],
    ["WEIGHTS", "1"], ["WEIGHTS", "1", "x"], ["WEIGHTS", "1", "nan"], ["WEIGHTS", "1", "2", "3"],
    ["AGGREGATE"], ["AGGREGATE", "AVG"], ["WITHSCORES", "WITHSCORES"], ["LIMIT", "1"], ["BOGUS"],
    ["WEIGHTS", "-0", "0", "WITHSCORES"], ["WEIGHTS", "1e308", "1e308", "WITHSCORES"],
]


@pytest.mark.parametrize("options", SETOP_OPTIONS, ids=lambda o: " ".join(o) or "none")
def test_set_operations(duo, options):
    _zadd(duo, A, {"a": 1, "b": 2, "c": "inf", "d": "-inf", "e": 0.1})
    _zadd(duo, B, {"b": 10, "c": "-inf", "d": "-inf", "e": 0.2, "f": 5})
    duo("DEL", C)
    duo("SADD", C, "a", "b", "z")
    store_options = [o for o in options if o.upper() != "WITHSCORES"]
    for keys in ([A, B], [B, A], [A, C], [C, B], [A, "nokey"], [A, A], [A, B, C]):
        padded = list(options)
        if options[:1] == ["WEIGHTS"] and len(keys) == 3:
            padded = ["WEIGHTS", *options[1:3], "4", *options[3:]]
        n = str(len(keys))
        duo("ZUNION", n, *keys, *padded)
        duo("ZINTER", n, *keys, *padded)
        duo("ZDIFF", n, *keys, *padded)
        duo("ZINTERCARD", n, *keys, *padded)
        for name in ("ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"):
            duo(name, D, n, *keys, *store_options)
            duo("ZRANGE", D, "0", "-1", "WITHSCORES")
            duo("OBJECT", "ENCODING", D)


def test_set_operation_argument_errors(duo):
    _zadd(duo, A, SMALL)
    for name in ("ZUNION", "ZINTER", "ZDIFF", "ZINTERCARD"):
        for args in [("0", A), ("-1", A), ("abc", A), ("2", A), ("9223372036854775807", A), ("1", A, "WEIGHTS")]:
            duo(name, *args)
    for name in ("ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"):
        for args in [("0", A), ("-1", A), ("x", A), ("3", A, B), ("1", A, "WITHSCORES")]:
            duo(name, D, *args)
    for args in [("1", A, "LIMIT", "-1"), ("1", A, "LIMIT", "x"), ("1", A, "LIMIT", "0"), ("1", A, "LIMIT", "2"),
                 ("1", A, "LIMIT"), ("1", A, "WITHSCORES"), ("1", A, "LIMIT", "1", "LIMIT", "3")]:
        duo("ZINTERCARD", *args)


def test_union_adds_infinities_smallest_input_first(duo):
    """Redis sorts inputs by size before adding; inf + -inf is 0, so the order shows."""
    _zadd(duo, A, {"m": "-inf", "x": 1, "y": 2})
    _zadd(duo, B, {"m": "inf"})
    duo("ZUNIONSTORE", C, "3", A, B, B)
    duo("ZSCORE", C, "m")
    duo("ZUNION", "3", A, B, B, "WITHSCORES")
    duo("ZUNION", "3", B, A, B, "WITHSCORES")
    duo("ZINTER", "3", A, B, B, "WITHSCORES")
    duo("ZUNION", "2", A, B, "WEIGHTS", "0.1", "0.2", "WITHSCORES")


# -- a seeded random sequence --------------------------------------------------------------------

_MEMBERS = ["a", "b", "c", "d", "e", "f", "g", "h", "", "x" * 70, "\x00", "é"]
_SCORES = ["0", "1", "-1", "2.5", "-0", "inf", "-inf", "1e-5", "3", "0.1", "0.2", "100", "(1", "abc"]
_KEYS = [A, B, C, D, "plainset", "string"]


def _random_command(rng: random.Random) -> list[str]:
    key = rng.choice(_KEYS[:4] * 3 + _KEYS[4:])
    other = rng.choice(_KEYS)
    member = rng.choice(_MEMBERS)
    score = rng.choice(_SCORES)
    lo, hi = sorted(rng.sample(["-inf", "0", "1", "(1", "2.5", "(3", "+inf", "-1"], 2))
    lex = rng.choice(["-", "+", "[a", "(c", "[e", "(", "["])
    lex2 = rng.choice(["-", "+", "[b", "(d", "[h"])
    start, stop = str(rng.randint(-8, 8)), str(rng.randint(-8, 8))
    choice = rng.randrange(30)
    if choice < 6:
        opts = rng.choice([[], [], ["NX"], ["XX"], ["GT"], ["LT", "CH"], ["CH"], ["INCR"], ["XX", "GT", "CH"]])
        pairs = [] if "INCR" in opts else functools.reduce(operator.iadd, ([rng.choice(_SCORES[:11]), rng.choice(_MEMBERS)]
                                                for _ in range(rng.randint(0, 3))), [])
        return ["ZADD", key, *opts, score, member, *pairs]
    table = [
        ["ZINCRBY", key, score, member], ["ZREM", key, member, rng.choice(_MEMBERS)],
        ["ZSCORE", key, member], ["ZMSCORE", key, member, "zz"], ["ZRANK", key, member],
        ["ZREVRANK", key, member], ["ZCARD", key], ["ZCOUNT", key, lo, hi], ["ZLEXCOUNT", key, lex, lex2],
        ["ZRANGE", key, start, stop, *rng.choice([[], ["WITHSCORES"], ["REV", "WITHSCORES"]])],
        ["ZRANGE", key, lo, hi, "BYSCORE", "LIMIT", str(rng.randint(-1, 3)), str(rng.randint(-1, 4))],
        ["ZRANGEBYLEX", key, lex, lex2], ["ZREVRANGEBYSCORE", key, hi, lo, "WITHSCORES"],
        ["ZREMRANGEBYSCORE", key, lo, hi], ["ZREMRANGEBYRANK", key, start, stop],
        ["ZREMRANGEBYLEX", key, lex, lex2], ["ZPOPMIN", key, *rng.choice([[], ["2"]])],
        ["ZPOPMAX", key, *rng.choice([[], ["1"], ["5"]])], ["ZMPOP", "2", key, other, rng.choice(["MIN", "MAX"])],
        ["ZUNIONSTORE", rng.choice(_KEYS[:4]), "2", key, other, "WEIGHTS", "2", "-1"],
        ["ZINTERSTORE", rng.choice(_KEYS[:4]), "2", key, other, "AGGREGATE", "MAX"],
        ["ZDIFFSTORE", rng.choice(_KEYS[:4]), "2", key, other],
        ["ZRANGESTORE", rng.choice(_KEYS[:4]), key, lo, hi, "BYSCORE"],
        ["ZUNION", "2", key, other, "WITHSCORES"], ["ZINTERCARD", "2", key, other],
        ["OBJECT", "ENCODING", key],
    ]
    return rng.choice(table)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_sequences(duo, seed):
    rng = random.Random(seed)
    duo("SADD", "plainset", "a", "c", "x")
    duo("SET", "string", "v")
    for _ in range(250):
        args = _random_command(rng)
        duo(*args)
    for key in _KEYS[:4]:
        duo("ZRANGE", key, "0", "-1", "WITHSCORES")
        duo("OBJECT", "ENCODING", key)
        duo("DEBUG", "DIGEST-VALUE", key)
    duo("DEBUG", "DIGEST")


def test_replies_are_not_errors_for_valid_input(duo):
    """Guard against a silently failing fixture: a normal session must produce no error at all."""
    _zadd(duo, A, SMALL)
    for args in [("ZRANGE", A, "0", "-1"), ("ZSCORE", A, "a"), ("ZCARD", A)]:
        value = duo(*args)
        assert not isinstance(value, Err)
