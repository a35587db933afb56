"""The list value (keyspace/lists.py), the list handlers run on a bare Keyspace, and parse_timeout.

The range, trim, remove and position helpers are checked against plain reference models of
t_list.c's rules with hypothesis; the handlers against the blocking contract (Block, no_block,
signal_ready) without any server.
"""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands import lists as list_commands
from commands.blocking import Block, parse_timeout
from commands.generic import copy_value
from keyspace.db import Store, type_name
from keyspace.digest import value_digest
from keyspace.encoding import object_encoding
from keyspace.lists import list_range, pop_many, positions, remove, trim, wrap_int64
from protocol.errors import WRONGTYPE, CommandError
from protocol.replies import NULL_ARRAY

pytestmark = pytest.mark.timeout(60)

ELEMENTS = st.lists(st.sampled_from([b"a", b"b", b"c"]), max_size=25)
INDEX = st.integers(min_value=-30, max_value=30)


# -- reference models, written from the Redis docs' wording ---------------------------------------

def _model_bounds(n: int, start: int, end: int):
    start = start + n if start < 0 else start
    end = end + n if end < 0 else end
    start = max(start, 0)
    end = min(end, n - 1)
    return (start, end) if start <= end and start < n else None


def _model_range(items: list, start: int, end: int) -> list:
    bounds = _model_bounds(len(items), start, end)
    return [] if bounds is None else items[bounds[0]:bounds[1] + 1]


def _model_remove(items: list, element: bytes, count: int) -> tuple[list, int]:
    order = list(range(len(items)))
    if count < 0:
        order.reverse()
    limit = abs(count) if count else len(items)
    drop = [i for i in order if items[i] == element][:limit]
    return [x for i, x in enumerate(items) if i not in set(drop)], len(drop)


def _model_positions(items: list, element: bytes, rank: int, count, maxlen: int):
    indexes = list(range(len(items)))
    if rank < 0:
        indexes.reverse()
    if maxlen:
        indexes = indexes[:maxlen]
    hits = [i for i in indexes if items[i] == element][abs(rank) - 1:]
    if count is None:
        return hits[0] if hits else None
    return hits if count == 0 else hits[:count]


# -- keyspace/lists.py ----------------------------------------------------------------------------

@given(ELEMENTS, INDEX, INDEX)
def test_list_range_matches_model(items, start, end):
    assert list_range(deque(items), start, end) == _model_range(items, start, end)


@given(ELEMENTS, INDEX, INDEX)
def test_trim_matches_model(items, start, end):
    value = deque(items)
    removed = trim(value, start, end)
    assert list(value) == _model_range(items, start, end)
    assert removed == len(items) - len(value)


@given(ELEMENTS, st.sampled_from([b"a", b"b", b"z"]), st.integers(min_value=-5, max_value=5))
def test_remove_matches_model(items, element, count):
    value = deque(items)
    removed = remove(value, element, count)
    assert (list(value), removed) == _model_remove(items, element, count)


@settings(max_examples=300)
@given(ELEMENTS, st.sampled_from([b"a", b"z"]),
       st.integers(min_value=-6, max_value=6).filter(bool),
       st.one_of(st.none(), st.integers(min_value=0, max_value=4)),
       st.integers(min_value=0, max_value=8))
def test_positions_match_model(items, element, rank, count, maxlen):
    assert positions(deque(items), element, rank, count, maxlen) == _model_positions(
        items, element, rank, count, maxlen)


def test_positions_rank_llong_min_behaves_like_c():
    """-LLONG_MIN overflows back to LLONG_MIN in C: every match counts, COUNT never stops."""
    value = deque([b"x", b"a", b"x", b"x"])
    assert positions(value, b"x", -(2**63), None, 0) == 3
    assert positions(value, b"x", -(2**63), 1, 0) == [3, 2, 0]
    assert positions(value, b"x", 2**63 - 1, 0, 0) == []


def test_wrap_int64():
    assert wrap_int64(2**63) == -(2**63)
    assert wrap_int64(-(2**63) - 1) == 2**63 - 1
    assert wrap_int64(5) == 5


@given(ELEMENTS, st.integers(min_value=1, max_value=30), st.booleans())
def test_pop_many(items, count, left):
    value = deque(items)
    popped = pop_many(value, count, left)
    expected = items[:count] if left else items[::-1][:count]
    assert popped == expected
    assert list(value) == (items[count:] if left else items[:max(len(items) - count, 0)])


def test_encoding_type_digest_and_copy():
    value = deque([b"a", b"1"])
    assert object_encoding(value, {"list-max-listpack-size": -2}) == "quicklist"
    assert object_encoding(deque([b"x"] * 10_000), {}) == "quicklist"
    assert type_name(value) == "list"
    twin = copy_value(value)
    assert type(twin) is deque and twin == value and twin is not value
    assert value_digest(value) == value_digest(deque([b"a", b"1"]))
    assert value_digest(value) != value_digest(deque([b"1", b"a"]))


# -- handlers on a bare Keyspace ------------------------------------------------------------------

@pytest.fixture
def db():
    store = Store(16)
    return store.dbs[0]


def run(db, *args):
    from commands.registry import lookup
    argv = [a if isinstance(a, bytes) else str(a).encode() for a in args]
    return lookup(argv).handler(db, argv)


def test_push_pop_and_empty_lists_are_deleted(db):
    assert run(db, "RPUSH", "k", "a", "b", "c") == 3
    assert run(db, "LPUSH", "k", "x", "y") == 5
    assert list(db.get(b"k")) == [b"y", b"x", b"a", b"b", b"c"]
    assert run(db, "LPOP", "k", "10") == [b"y", b"x", b"a", b"b", b"c"]
    assert db.get(b"k") is None
    assert run(db, "LPOP", "k", "1") is NULL_ARRAY
    assert run(db, "RPOP", "k") is None
    assert db.store.dirty == 10


def test_wrongtype_is_raised_before_any_change(db):
    db.set(b"s", b"string")
    run(db, "RPUSH", "src", "a")
    with pytest.raises(CommandError) as err:
        run(db, "LMOVE", "src", "s", "LEFT", "RIGHT")
    assert err.value.message == WRONGTYPE
    assert list(db.get(b"src")) == [b"a"]


def test_lmove_same_key_rotates(db):
    run(db, "RPUSH", "k", "a", "b", "c")
    assert run(db, "LMOVE", "k", "k", "LEFT", "RIGHT") == b"a"
    assert list(db.get(b"k")) == [b"b", b"c", b"a"]
    run(db, "RPUSH", "one", "x")
    assert run(db, "RPOPLPUSH", "one", "one") == b"x"
    assert list(db.get(b"one")) == [b"x"]


def test_pushes_signal_blocked_keys(db):
    db.store.blocked[(0, b"dst")] = deque()
    db.store.blocked[(0, b"k")] = deque()
    run(db, "RPUSH", "src", "a")
    assert db.store.ready == []
    run(db, "LMOVE", "src", "dst", "LEFT", "LEFT")
    run(db, "LPUSH", "k", "v")
    assert db.store.ready == [(0, b"dst"), (0, b"k")]


def test_blocking_commands_block_only_when_every_key_is_empty(db):
    with pytest.raises(Block) as blocked:
        run(db, "BLPOP", "a", "b", "a", "1.5")
    assert blocked.value.keys == [b"a", b"b"]
    assert blocked.value.timeout == 1.5
    assert blocked.value.timeout_reply is NULL_ARRAY
    with pytest.raises(Block) as blocked:
        run(db, "BLMOVE", "a", "b", "LEFT", "RIGHT", "0")
    assert (blocked.value.keys, blocked.value.timeout) == ([b"a"], 0.0)
    assert blocked.value.timeout_reply is NULL_ARRAY
    run(db, "RPUSH", "b", "1", "2", "3")
    assert run(db, "BLMPOP", "0", "2", "a", "b", "RIGHT", "COUNT", "2") == [b"b", [b"3", b"2"]]
    assert run(db, "BRPOP", "a", "b", "0") == [b"b", b"1"]
    assert db.get(b"b") is None


def test_blocking_commands_inside_multi_reply_at_once(db):
    db.store.no_block = True
    assert run(db, "BLPOP", "a", "0") is NULL_ARRAY
    assert run(db, "BLMPOP", "0", "1", "a", "LEFT") is NULL_ARRAY
    # BLMOVE and BRPOPLPUSH reply a null bulk here, though a null array on a real timeout.
    assert run(db, "BLMOVE", "a", "b", "LEFT", "LEFT", "0") is None
    assert run(db, "BRPOPLPUSH", "a", "b", "0") is None


def test_woken_client_pops_from_the_key_being_served(db):
    run(db, "RPUSH", "a", "y")
    run(db, "RPUSH", "b", "x")
    db.store.serving_key = b"b"
    try:
        assert run(db, "BLPOP", "a", "b", "0") == [b"b", b"x"]
        run(db, "RPUSH", "b", "x2")
        assert run(db, "BLMPOP", "0", "2", "a", "b", "LEFT") == [b"b", [b"x2"]]
    finally:
        db.store.serving_key = None
    assert run(db, "BLPOP", "a", "b", "0") == [b"a", b"y"]


@pytest.mark.parametrize("argv, positions_", [
    ([b"LMPOP", b"2", b"a", b"b", b"LEFT"], [2, 3]),
    ([b"LMPOP", b"0", b"a", b"LEFT"], []),
    ([b"LMPOP", b"x", b"a", b"LEFT"], []),
    ([b"LMPOP", b"9", b"a", b"LEFT"], []),
    ([b"BLMPOP", b"0", b"1", b"a", b"LEFT"], [3]),
    ([b"BLMPOP", b"0", b"-1", b"a", b"LEFT"], []),
])
def test_mpop_key_positions(argv, positions_):
    from commands.registry import lookup
    assert lookup(argv).key_positions(argv) == positions_


# -- parse_timeout: what redis-server 7.0.15 replied on x86-64 -------------------------------------

NEGATIVE = "ERR timeout is negative"
NOT_FLOAT = "ERR timeout is not a float or out of range"


@pytest.mark.parametrize("raw, expected", [
    (b"0", 0.0), (b"-0", 0.0), (b"0.0", 0.0), (b"1", 1.0), (b"5.", 5.0), (b"0x10", 16.0),
    (b"1.5e-3", 0.002), (b"0.0009", 0.001), (b"0.001", 0.001), (b".5e-3", 0.001),
    (b"1e-4950", 0.001), (b"0x1p-16445", 0.001), (b"2e-4951", 0.001),
    # ceill() rounds small negatives up to 0 ms, i.e. forever; 0.001L is a hair below 1/1000.
    (b"-0.0005", 0.0), (b"-1e-300", 0.0), (b"-0.001", 0.0), (b"-0.00099999999999999999", 0.0),
    # a deadline past LLONG_MAX ms wraps in Redis and never fires
    (b"9223372036854775.807", 0.0), (b"9223372036854775807e-3", 0.0),
    (b"9223372036854", 9223372036854.0),
])
def test_parse_timeout_values(raw, expected):
    assert parse_timeout(raw) == expected


@pytest.mark.parametrize("raw, message", [
    # (long long) of an out-of-range long double is LLONG_MIN on x87: "negative"
    (b"inf", NEGATIVE), (b"-inf", NEGATIVE), (b"+inf", NEGATIVE), (b"infinity", NEGATIVE),
    (b"INF", NEGATIVE), (b"1e300", NEGATIVE), (b"9.3e15", NEGATIVE),
    (b"9223372036854775.808", NEGATIVE), (b"9223372036854776", NEGATIVE),
    (b"-1", NEGATIVE), (b"-0.0011", NEGATIVE), (b"-0.0010000000000000000001", NEGATIVE),
    (b"", NOT_FLOAT), (b"abc", NOT_FLOAT), (b"nan", NOT_FLOAT), (b"1 ", NOT_FLOAT),
    (b" 1", NOT_FLOAT), (b"1\x00", NOT_FLOAT), (b"1e-5000", NOT_FLOAT), (b"1e5000", NOT_FLOAT),
    (b"1.8e-4951", NOT_FLOAT), (b"0x1p-16446", NOT_FLOAT), (b"0x", NOT_FLOAT), (b"1e", NOT_FLOAT),
    (b"1_0", NOT_FLOAT), (b"1" * 5119, NOT_FLOAT), (b"5" + b"0" * 5119, NOT_FLOAT),
])
def test_parse_timeout_errors(raw, message):
    with pytest.raises(CommandError) as err:
        parse_timeout(raw)
    assert err.value.message == message


def test_list_range_from_either_end():
    """list_range walks from the nearer end; the result is the plain slice either way."""
    items = [str(i).encode() for i in range(1000)]
    value = deque(items)
    assert list_range(value, 990, -1) == items[990:]
    assert list_range(value, -600, 700) == items[400:701]
    assert list_range(value, 1, 3) == items[1:4]
