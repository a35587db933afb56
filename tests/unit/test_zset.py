"""The sorted-set value (keyspace/zset.py) and the parsing and handlers of commands/sorted_sets.py,
without sockets: ranks and ranges against a naive model, Redis 7.0's encoding rules, signed zero,
Redis's two float parsers, dirty counting, blocking hand-off and key positions."""

from __future__ import annotations

import math
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands import sorted_sets as zs
from commands.blocking import Block
from keyspace.db import Store, type_name
from keyspace.digest import value_digest
from keyspace.encoding import object_encoding
from keyspace.zset import MAX_LEX, MIN_LEX, LexBound, ZSet
from protocol.errors import CommandError
from protocol.replies import NULL_ARRAY, encode

pytestmark = pytest.mark.timeout(60)


def _zset(pairs: dict, config: dict | None = None) -> ZSet:
    z = ZSet()
    for member, score in pairs.items():
        z.insert(member, score, config or {})
    return z


def _db(**config):
    store = Store(16)
    store.config = dict(config)
    return store.dbs[0]


def _run(db, *args):
    argv = [a if isinstance(a, bytes) else str(a).encode() for a in args]
    return zs.__dict__[argv[0].decode().lower()](db, argv)


def _error(db, *args) -> str:
    with pytest.raises(CommandError) as info:
        _run(db, *args)
    return info.value.message


# -- the value --------------------------------------------------------------------------------------

def test_order_is_by_score_then_member_bytes():
    z = _zset({b"b": 1.0, b"a": 1.0, b"": 1.0, b"ab": 1.0, b"c": -1.0, b"\xff": 1.0, b"z": math.inf})
    assert list(z) == [b"c", b"", b"a", b"ab", b"b", b"\xff", b"z"]
    assert [z.rank(m) for m in z] == list(range(7))
    assert z.rank(b"nope") is None
    assert next(iter(z.items())) == (b"c", -1.0)


def test_update_discard_pop_and_remove_span_keep_both_views_in_step():
    z = _zset({bytes([c]): float(c % 5) for c in range(97, 117)})
    z.update(b"a", z.scores[b"a"], 100.0)
    assert z.entry(-1) == (100.0, b"a") and z.rank(b"a") == len(z) - 1
    assert z.discard(b"b") and not z.discard(b"b")
    popped = z.pop(2, highest=False) + z.pop(1, highest=True)
    assert popped[-1] == (b"a", 100.0)
    assert z.remove_span(3, 6) == 3 and z.remove_span(5, 5) == 0
    assert sorted(z.scores.items(), key=lambda i: (i[1], i[0])) == list(z.items())
    assert len(z.index) == len(z.scores) == 13
    assert z.pop(100, highest=True) and not z.scores and not z.index


def test_score_span_bounds():
    z = _zset({b"a": -math.inf, b"b": -1.0, b"c": -0.0, b"d": 0.0, b"e": 1.0, b"f": 1.0, b"g": math.inf})

    def members(lo, lo_ex, hi, hi_ex):
        start, stop = z.score_span(lo, lo_ex, hi, hi_ex)
        return [m.decode() for _, m in z.slice(start, stop)]

    assert members(-math.inf, False, math.inf, False) == list("abcdefg")
    assert members(-math.inf, True, math.inf, True) == list("bcdef")
    assert members(0.0, False, 0.0, False) == ["c", "d"]        # -0.0 == 0.0
    assert members(-0.0, True, 1.0, False) == ["e", "f"]
    assert members(1.0, False, 1.0, True) == []
    assert members(math.inf, True, math.inf, False) == []
    assert members(math.inf, False, math.inf, False) == ["g"]
    assert members(-math.inf, False, -math.inf, True) == []
    assert members(2.0, False, -2.0, False) == []               # reversed: empty, never negative


def test_lex_span_with_equal_scores_is_a_binary_search():
    z = _zset({m: 0.0 for m in [b"", b"a", b"aa", b"ab", b"b", b"c"]})

    def members(lo, hi):
        start, stop = z.lex_span(lo, hi)
        return [m for _, m in z.slice(start, stop)]

    assert members(MIN_LEX, MAX_LEX) == [b"", b"a", b"aa", b"ab", b"b", b"c"]
    assert members(MAX_LEX, MIN_LEX) == [] and members(MIN_LEX, MIN_LEX) == []
    assert members(LexBound(0, b"a", False), LexBound(0, b"b", True)) == [b"a", b"aa", b"ab"]
    assert members(LexBound(0, b"a", True), LexBound(0, b"b", False)) == [b"aa", b"ab", b"b"]
    assert members(LexBound(0, b"", False), LexBound(0, b"", False)) == [b""]
    assert members(LexBound(0, b"aa", True), LexBound(0, b"aa", False)) == []
    assert members(LexBound(0, b"b", False), LexBound(0, b"a", False)) == []


def test_lex_span_with_mixed_scores_walks_like_a_listpack():
    """Ranks: d(1) a(2) aa(2) c(3) b(4). Redis finds the first member >= min from the head and
    stops at the first one > max (or, reversed, from the tail)."""
    z = _zset({b"d": 1.0, b"a": 2.0, b"aa": 2.0, b"c": 3.0, b"b": 4.0})
    assert z.lex_span(LexBound(0, b"b", False), MAX_LEX) == (0, 5)
    assert z.lex_span(MIN_LEX, LexBound(0, b"c", True)) == (0, 0)     # first member d > max
    assert z.lex_span(LexBound(0, b"a", False), LexBound(0, b"c", False)) == (0, 0)  # d > max
    b_to_d = LexBound(0, b"b", False), LexBound(0, b"d", False)
    assert z.lex_span(*b_to_d) == (0, 5)
    assert z.lex_span(*b_to_d, reverse=True) == (3, 5)                  # c, b: stops at aa < min
    assert z.lex_span(LexBound(0, b"e", False), MAX_LEX) == (0, 0)    # last member b < min


# -- encoding ---------------------------------------------------------------------------------------

def test_listpack_converts_on_the_member_that_does_not_fit_and_stays_converted():
    config = {"zset-max-listpack-entries": 3, "zset-max-listpack-value": 4}
    z = _zset({b"a": 1.0, b"b": 2.0, b"c": 3.0}, config)
    assert object_encoding(z, config) == "listpack" and type_name(z) == "zset"
    z.update(b"a", 1.0, 9.0)                              # updates never convert
    assert z.listpack
    z.insert(b"d", 4.0, config)
    assert object_encoding(z, config) == "skiplist"
    z.pop(3, highest=False)
    assert not z.listpack                                 # sticky
    long_member = _zset({b"abcd": 1.0}, config)
    assert long_member.listpack
    long_member.insert(b"abcde", 1.0, config)
    assert not long_member.listpack
    assert not _zset({b"a": 1.0}, {"zset-max-listpack-entries": 0}).listpack


def test_defaults_are_redis_defaults():
    z = _zset({b"m%d" % i: float(i) for i in range(128)})
    assert z.listpack
    z.insert(b"one-more", 0.0, {})
    assert not z.listpack
    assert _zset({b"x" * 64: 1.0}).listpack and not _zset({b"x" * 65: 1.0}).listpack


def test_from_pairs_encodes_by_the_whole_result():
    config = {"zset-max-listpack-entries": 2, "zset-max-listpack-value": 3}
    assert ZSet.from_pairs([(b"a", 1.0), (b"b", 2.0)], config).listpack
    assert not ZSet.from_pairs([(b"a", 1.0), (b"b", 2.0), (b"c", 3.0)], config).listpack
    assert not ZSet.from_pairs([(b"abcd", 1.0)], config).listpack
    assert ZSet.from_pairs([(b"x" * 64, 1.0)]).listpack                # Redis's defaults
    assert not ZSet.from_pairs([(b"m%d" % i, 1.0) for i in range(129)]).listpack
    z = ZSet.from_pairs([(b"a", 5.0), (b"a", 1.0), (b"b", 0.5)], config)
    assert list(z.items()) == [(b"b", 0.5), (b"a", 1.0)]


def test_negative_zero_is_kept_only_by_a_skiplist():
    listpack = _zset({b"m": -0.0})
    assert math.copysign(1, listpack.scores[b"m"]) == 1
    skiplist = ZSet(listpack=False)
    skiplist.insert(b"m", -0.0, {})
    assert math.copysign(1, skiplist.scores[b"m"]) == -1
    listpack.update(b"m", 0.0, -0.0)
    assert math.copysign(1, listpack.scores[b"m"]) == 1
    assert math.copysign(1, ZSet.from_pairs([(b"m", -0.0)], {}).scores[b"m"]) == 1
    assert math.copysign(1, ZSet.from_pairs([(b"m", -0.0)], {"zset-max-listpack-entries": 0})
                         .scores[b"m"]) == -1
    assert value_digest(skiplist) != value_digest(listpack)


def test_copy_and_pickle_keep_encoding_and_are_independent():
    z = ZSet(listpack=False)
    z.insert(b"a", 1.0, {})
    for twin in (z.copy(), pickle.loads(pickle.dumps(z))):
        assert isinstance(twin, ZSet) and not twin.listpack and twin == z
        twin.insert(b"b", 2.0, {})
        assert b"b" not in z and list(z) == [b"a"]
    assert value_digest(z) == value_digest(z.copy())


# -- the parsers ------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [
    (b"1", 1.0), (b"-1.5", -1.5), (b".5", 0.5), (b"5.", 5.0), (b"1e3", 1000.0), (b"0x10", 16.0),
    (b"-0x1.8p1", -3.0), (b"0x.8", 0.5), (b"inf", math.inf), (b"-Infinity", -math.inf), (b"+inf", math.inf),
    (b"1e-310", 1e-310), (b"0", 0.0), (b"0e500", 0.0),
])
def test_parse_score_accepts_what_string2d_accepts(raw, expected):
    assert zs.parse_score(raw) == expected


@pytest.mark.parametrize("raw", [
    b"", b" 1", b"1 ", b"\t1", b"1\x00", b"nan", b"-nan", b"nan(1)", b"1e400", b"-1e400", b"1e-400",
    b"0x1p5000", b"0x1p-5000", b"abc", b"a", b"1_0", b"1e", b"0x", b"--1", b"inf1", b"infinit", b"(1",
])
def test_parse_score_rejects_what_string2d_rejects(raw):
    with pytest.raises(CommandError, match="^ERR value is not a valid float$"):
        zs.parse_score(raw)


@pytest.mark.parametrize("raw, expected", [
    (b"1", (1.0, False)), (b"(1", (1.0, True)), (b"", (0.0, False)), (b"(", (0.0, True)),
    (b" 2", (2.0, False)), (b"1e400", (math.inf, False)), (b"(-1e400", (-math.inf, True)),
    (b"1e-400", (0.0, False)), (b"3\x00junk", (3.0, False)), (b"0x10", (16.0, False)),
])
def test_parse_score_bound_is_plain_strtod(raw, expected):
    assert zs.parse_score_bound(raw) == expected


@pytest.mark.parametrize("raw", [b"1 ", b" ", b"nan", b"(nan", b"((1", b"[1", b"x", b"-", b"+"])
def test_parse_score_bound_errors(raw):
    with pytest.raises(CommandError, match="^ERR min or max is not a float$"):
        zs.parse_score_bound(raw)


def test_parse_lex_bound():
    assert zs.parse_lex_bound(b"-") is MIN_LEX and zs.parse_lex_bound(b"+\x00x") is MAX_LEX
    bound = zs.parse_lex_bound(b"(a\x00b")
    assert (bound.kind, bound.value, bound.exclusive) == (0, b"a\x00b", True)
    assert zs.parse_lex_bound(b"[").value == b""
    for raw in (b"", b"a", b"+a", b"-a", b"\x00", b"{a"):
        with pytest.raises(CommandError, match="^ERR min or max not valid string range item$"):
            zs.parse_lex_bound(raw)


# -- handlers on a keyspace -------------------------------------------------------------------------

def test_zadd_counts_dirty_and_wakes_waiters_only_when_it_creates_the_key():
    db = _db()
    db.store.blocked[(0, b"k")] = object()
    assert _run(db, "ZADD", "k", "1", "a", "2", "b") == 2
    assert db.store.dirty == 2 and db.store.ready == [(0, b"k")]
    db.store.ready.clear()
    assert _run(db, "ZADD", "k", "CH", "5", "a", "2", "b", "1", "new") == 2
    assert db.store.dirty == 4 and db.store.ready == []             # as Redis 7.0's dbAdd
    assert _run(db, "ZADD", "k", "INCR", "1", "a") == 6.0
    assert _run(db, "ZADD", "k", "NX", "INCR", "1", "a") is None
    assert _run(db, "ZADD", "nokey", "XX", "1", "a") == 0 and db.get(b"nokey") is None
    _run(db, "ZADD", "k", "inf", "p")
    assert _error(db, "ZINCRBY", "k", "-inf", "p") == "ERR resulting score is not a number (NaN)"


def test_emptied_sets_are_deleted():
    db = _db()
    _run(db, "ZADD", "k", "1", "a", "2", "b")
    assert _run(db, "ZPOPMIN", "k", "5") == [(b"a", 1.0), (b"b", 2.0)]
    assert db.get(b"k") is None
    _run(db, "ZADD", "k", "1", "a")
    assert _run(db, "ZREM", "k", "a", "a") == 1 and db.get(b"k") is None
    _run(db, "ZADD", "k", "1", "a")
    assert _run(db, "ZREMRANGEBYSCORE", "k", "-inf", "inf") == 1 and db.get(b"k") is None


def test_withscores_shapes_per_protocol():
    db = _db()
    _run(db, "ZADD", "k", "1.5", "a", "-0", "b")
    reply = _run(db, "ZRANGE", "k", "0", "-1", "WITHSCORES")
    assert encode(reply, 2) == b"*4\r\n$1\r\nb\r\n$1\r\n0\r\n$1\r\na\r\n$3\r\n1.5\r\n"
    assert encode(reply, 3) == b"*2\r\n*2\r\n$1\r\nb\r\n,0\r\n*2\r\n$1\r\na\r\n,1.5\r\n"
    assert encode(_run(db, "ZPOPMAX", "k"), 3) == b"*2\r\n$1\r\na\r\n,1.5\r\n"


def test_blocking_pops_block_or_time_out():
    db = _db()
    with pytest.raises(Block) as info:
        _run(db, "BZPOPMIN", "a", "b", "1.5")
    assert info.value.keys == [b"a", b"b"] and info.value.timeout == 1.5
    assert info.value.timeout_reply is NULL_ARRAY
    with pytest.raises(Block) as info:
        _run(db, "BZMPOP", "0", "2", "a", "b", "MAX", "COUNT", "3")
    assert info.value.keys == [b"a", b"b"] and info.value.timeout == 0
    db.store.no_block = True
    assert _run(db, "BZPOPMAX", "a", "0") is NULL_ARRAY
    _run(db, "ZADD", "b", "1", "x", "2", "y")
    assert _run(db, "BZMPOP", "0", "2", "a", "b", "MAX", "COUNT", "3") == [b"b", [[b"y", 2.0], [b"x", 1.0]]]


@pytest.mark.parametrize("argv, positions", [
    ([b"ZUNIONSTORE", b"d", b"2", b"a", b"b"], [1, 3, 4]),
    ([b"ZUNIONSTORE", b"d", b"3", b"a", b"b"], []),
    ([b"ZUNIONSTORE", b"d", b"x", b"a"], []),
    ([b"ZINTER", b"2", b"a", b"b", b"WEIGHTS", b"1", b"2"], [2, 3]),
    ([b"ZINTERCARD", b"0", b"a"], []),
    ([b"ZMPOP", b"1", b"a", b"MIN"], [2]),
    ([b"BZMPOP", b"0", b"2", b"a", b"b", b"MIN"], [3, 4]),
    ([b"BZMPOP", b"0", b"-1", b"a", b"MIN"], []),
])
def test_key_positions(argv, positions):
    from commands.registry import lookup
    assert lookup(argv).key_positions(argv) == positions


# -- against a naive model --------------------------------------------------------------------------

_scores = st.sampled_from([-math.inf, -2.5, -1.0, -0.0, 0.0, 0.5, 1.0, 3.0, math.inf])
_members = st.binary(min_size=0, max_size=3)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "del", "pop"]), _members, _scores), max_size=60),
       _scores, st.booleans(), _scores, st.booleans())
def test_model(ops, lo, lo_ex, hi, hi_ex):
    z = ZSet(listpack=False)
    model: dict[bytes, float] = {}
    for op, member, score in ops:
        if op == "add":
            if member in model:
                z.update(member, model[member], score)
            else:
                z.insert(member, score, {})
            model[member] = score
        elif op == "del":
            assert z.discard(member) == (member in model)
            model.pop(member, None)
        elif model:
            expected = min(model.items(), key=lambda i: (i[1], i[0]))
            assert z.pop(1, highest=False) == [expected]
            del model[expected[0]]
    ordered = sorted(model.items(), key=lambda i: (i[1], i[0]))
    assert list(z.items()) == ordered
    assert all(z.rank(m) == i for i, (m, _) in enumerate(ordered))
    start, stop = z.score_span(lo, lo_ex, hi, hi_ex)
    in_range = [m for m, s in ordered
                if (s > lo if lo_ex else s >= lo) and (s < hi if hi_ex else s <= hi)]
    assert [m for _, m in z.slice(start, stop)] == in_range
