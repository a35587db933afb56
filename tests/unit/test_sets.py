"""keyspace.sets (the set value and its encoding rules) and commands.sets on an in-process Keyspace:
conversions, copies, reply order, SPOP/SDIFF re-encoding, SSCAN snapshots and dirty counts."""

from __future__ import annotations

import copy
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commands import sets as cmd
from keyspace.db import Store, type_name
from keyspace.digest import value_digest
from keyspace.encoding import object_encoding
from keyspace.sets import (
    HashtableSet,
    SetValue,
    is_intset_member,
    ordered,
    set_from_members,
)
from protocol.errors import CommandError
from protocol.replies import SetReply

pytestmark = [pytest.mark.timeout(60)]


@pytest.fixture
def db():
    store = Store(16)
    store.config = {"set-max-intset-entries": 4}
    return store.dbs[0]


def run(db, *args):
    argv = [a if isinstance(a, bytes) else str(a).encode() for a in args]
    handler = {
        "SADD": cmd.sadd, "SREM": cmd.srem, "SPOP": cmd.spop, "SMOVE": cmd.smove,
        "SMEMBERS": cmd.smembers, "SSCAN": cmd.sscan, "SDIFF": cmd.sdiff,
        "SDIFFSTORE": cmd.sdiffstore, "SUNIONSTORE": cmd.sunionstore, "SINTER": cmd.sinter,
        "SINTERSTORE": cmd.sinterstore, "SRANDMEMBER": cmd.srandmember, "SCARD": cmd.scard,
    }[argv[0].decode().upper()]
    return handler(db, argv)


# -- the value type ------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [
    (b"0", True), (b"1", True), (b"-1", True), (b"9223372036854775807", True),
    (b"-9223372036854775808", True), (b"9223372036854775808", False),
    (b"-9223372036854775809", False), (b"99999999999999999999", False), (b"01", False),
    (b"-0", False), (b"+1", False), (b" 1", False), (b"1 ", False), (b"", False), (b"-", False),
    (b"1.0", False), (b"0x1", False), (b"\xd9\xa1", False), (b"12a", False),
])
def test_is_intset_member(raw, expected):
    assert is_intset_member(raw) is expected


@given(st.integers(-(2**63), 2**63 - 1))
def test_every_int64_is_an_intset_member(number):
    assert is_intset_member(b"%d" % number)


@given(st.binary(max_size=22))
def test_intset_member_means_canonical_int64(raw):
    try:
        number = int(raw)
        canonical = b"%d" % number == raw and -(2**63) <= number < 2**63
    except ValueError:
        canonical = False
    assert is_intset_member(raw) is canonical


def test_add_members_converts_like_redis():
    value = SetValue()
    assert value.add_members([b"1", b"2"], 3) == 2 and not value.hashtable
    assert value.add_members([b"2"], 3) == 0 and not value.hashtable
    assert value.add_members([b"3"], 3) == 1 and not value.hashtable
    assert value.add_members([b"3", b"2"], 3) == 0 and not value.hashtable  # nothing new: no change
    assert value.add_members([b"4"], 3) == 1 and value.hashtable            # past the limit
    value.difference_update([b"4", b"3"])
    assert value.hashtable                                                 # sticky
    other = SetValue()
    other.add_members([b"1", b"x", b"x"], 100)
    assert other.hashtable and len(other) == 2
    single = SetValue()
    assert single.add_member(b"7", 10) and not single.hashtable
    assert not single.add_member(b"7", 10)
    assert single.add_member(b"y", 10) and single.hashtable


def test_copy_and_pickle_keep_type_and_encoding():
    value = SetValue([b"1", b"2"])
    value.add_members([b"x"], 512)
    value.discard(b"x")
    for twin in (value.copy(), pickle.loads(pickle.dumps(value)), copy.deepcopy(value),
                 copy.copy(value)):
        assert type(twin) is HashtableSet and twin == value and twin.hashtable
        assert twin is not value
    twin = value.copy()
    twin.add(b"3")
    assert b"3" not in value


def test_set_from_members_and_encodings():
    config = {"set-max-intset-entries": 3}
    assert object_encoding(set_from_members([b"1", b"2", b"3"], config), config) == "intset"
    assert object_encoding(set_from_members([b"1", b"2", b"3", b"4"], config), config) == "hashtable"
    assert object_encoding(set_from_members([b"1", b"a"], config), config) == "hashtable"
    assert object_encoding({b"1", b"2"}, config) == "intset"   # a plain set is judged by content
    assert object_encoding({b"1", b"b"}, config) == "hashtable"
    assert object_encoding({b"1", b"2", b"3", b"4"}, config) == "hashtable"
    assert type_name(SetValue()) == "set"


def test_ordered():
    value = set_from_members([b"10", b"-5", b"2", b"9223372036854775807"], {})
    assert ordered(value) == [b"-5", b"2", b"10", b"9223372036854775807"]
    assert ordered(value, {b"10", b"2"}) == [b"2", b"10"]
    mixed = set_from_members([b"10", b"a"], {})
    assert sorted(ordered(mixed)) == [b"10", b"a"]
    assert ordered({b"3", b"1"}) == [b"1", b"3"]


def test_digest_is_that_of_the_members():
    plain = {b"a", b"1", b"22"}
    assert value_digest(set_from_members(plain, {})) == value_digest(plain)


# -- handlers on a Keyspace ----------------------------------------------------------------------------

def test_sadd_srem_and_dirty(db):
    assert run(db, "SADD", "s", 1, 2, 2) == 2
    assert db.store.dirty == 2
    assert run(db, "SREM", "s", 1, 9) == 1
    assert db.store.dirty == 3
    assert run(db, "SREM", "s", 2) == 1
    assert db.get(b"s") is None                          # emptied: deleted
    db.set(b"str", b"x")
    with pytest.raises(CommandError, match="WRONGTYPE"):
        run(db, "SADD", "str", 1)


def test_plain_set_values_are_adopted(db):
    db.set(b"p", {b"1", b"2"})
    db.expire_at(b"p", db.store.clock() + 100_000)
    assert run(db, "SADD", "p", 3) == 1
    assert type(db.get(b"p")) is SetValue and not db.get(b"p").hashtable
    assert db.ttl(b"p") is not None                     # the TTL survives the swap
    assert run(db, "SMEMBERS", "p") == [b"1", b"2", b"3"]


def test_spop_case_three_re_encodes(db):
    run(db, "SADD", "t", "a", *range(1, 11))
    run(db, "SREM", "t", "a")
    assert db.get(b"t").hashtable
    popped = run(db, "SPOP", "t", 9)
    assert isinstance(popped, SetReply) and len(popped) == 9
    left = db.get(b"t")
    assert len(left) == 1 and not left.hashtable          # rebuilt as an intset
    assert set(popped) | left == {b"%d" % i for i in range(1, 11)}


def test_spop_case_two_keeps_encoding(db):
    run(db, "SADD", "t", "a", *range(1, 11))
    run(db, "SREM", "t", "a")
    run(db, "SPOP", "t", 2)
    assert db.get(b"t").hashtable and len(db.get(b"t")) == 8


def test_spop_whole_set_order_and_dirty(db):
    run(db, "SADD", "s", 3, 1, 2)
    before = db.store.dirty
    assert run(db, "SPOP", "s", 10) == [b"1", b"2", b"3"]
    assert db.get(b"s") is None and db.store.dirty == before + 3


def test_spop_and_srandmember_on_large_sets(db):
    members = {b"m%d" % i for i in range(6000)}
    db.set(b"big", set_from_members(members, {}))
    seen = {run(db, "SRANDMEMBER", "big") for _ in range(50)}
    assert seen <= members and len(seen) > 1
    popped = {run(db, "SPOP", "big") for _ in range(100)}
    assert len(popped) == 100 and popped <= members
    assert len(db.get(b"big")) == 5900


def test_srandmember_cases(db):
    db.store.config["set-max-intset-entries"] = 512
    run(db, "SADD", "s", *range(1, 31))
    assert run(db, "SRANDMEMBER", "s", 30) == [b"%d" % i for i in range(1, 31)]  # an intset, in order
    draws = run(db, "SRANDMEMBER", "s", -100)
    assert len(draws) == 100 and len(set(draws)) < 100
    sample = run(db, "SRANDMEMBER", "s", 12)
    assert len(set(sample)) == 12
    assert run(db, "SRANDMEMBER", "missing", 3) == [] and run(db, "SRANDMEMBER", "s", 0) == []
    with pytest.raises(CommandError, match="must between"):
        run(db, "SRANDMEMBER", "s", -(2**63))


def test_sdiff_algorithm_two_keeps_hashtable(db):
    run(db, "SADD", "big", 1, 2, 3, 4, 5, 6)
    for key, member in (("a", 1), ("b", 2), ("c", 3)):
        run(db, "SADD", key, member)
    assert run(db, "SDIFFSTORE", "d", "big", "a", "b", "c") == 3
    assert db.get(b"d").hashtable                     # 6*4/2 > 6+3: algorithm 2
    assert run(db, "SDIFFSTORE", "d", "big", "a") == 5
    assert db.get(b"d").hashtable                     # 5 members > 4
    run(db, "SADD", "small", 1, 2, 3)
    assert run(db, "SDIFFSTORE", "d", "small", "a") == 2
    assert not db.get(b"d").hashtable
    assert run(db, "SDIFF", "small", "a") == [b"2", b"3"]


def test_store_replaces_and_deletes(db):
    run(db, "SADD", "a", 1, 2)
    db.set(b"dst", b"string")
    db.expire_at(b"dst", db.store.clock() + 100_000)
    assert run(db, "SUNIONSTORE", "dst", "a") == 2
    assert isinstance(db.get(b"dst"), SetValue) and db.ttl(b"dst") is None
    before = db.store.dirty
    assert run(db, "SINTERSTORE", "dst", "a", "missing") == 0
    assert db.get(b"dst") is None and db.store.dirty == before + 1
    assert run(db, "SINTERSTORE", "dst", "a", "missing") == 0
    assert db.store.dirty == before + 1                 # nothing deleted the second time


def test_sinter_orders_by_the_smallest_set(db):
    run(db, "SADD", "ints", 5, 3, 1, 4)
    run(db, "SADD", "mixed", "x", 1, 3, 5, 4, 9)
    assert run(db, "SINTER", "mixed", "ints") == [b"1", b"3", b"4", b"5"]


def test_smove_dirty(db):
    run(db, "SADD", "a", 1, 2)
    run(db, "SADD", "b", 1)
    before = db.store.dirty
    assert run(db, "SMOVE", "a", "b", 1) == 1 and db.store.dirty == before + 1   # already there
    assert run(db, "SMOVE", "a", "b", 2) == 1 and db.store.dirty == before + 3
    assert db.get(b"a") is None


def test_sscan_snapshot_semantics(db):
    members = [b"m%d" % i for i in range(50)]
    run(db, "SADD", "s", *members)
    cursor, seen, step = b"0", [], 0
    while True:
        cursor, batch = run(db, "SSCAN", "s", cursor, "COUNT", 7)
        assert len(batch) <= 7
        seen.extend(batch)
        run(db, "SREM", "s", b"m%d" % (49 - step))       # removed ones are never returned later
        run(db, "SADD", "s", b"new%d" % step)
        step += 1
        if cursor == b"0":
            break
    assert len(seen) == len(set(seen))
    survivors = set(members) & db.get(b"s")
    assert survivors <= set(seen)
    assert not any(m.startswith(b"new") for m in seen)   # added after the snapshot
    assert run(db, "SSCAN", "s", 0, "MATCH", "m1*", "COUNT", 1000)[1] == sorted(
        [m for m in db.get(b"s") if m.startswith(b"m1")], key=list(db.get(b"s")).index)


def test_sscan_intset_whole_and_sorted(db):
    run(db, "SADD", "s", 3, 1, 2)
    assert run(db, "SSCAN", "s", 77, "COUNT", 1) == [b"0", [b"1", b"2", b"3"]]


def test_sintercard_getkeys():
    keys = cmd.sintercard.spec.key_positions
    assert keys([b"sintercard", b"2", b"a", b"b", b"LIMIT", b"1"]) == [2, 3]
    assert keys([b"sintercard", b"3", b"a", b"b"]) == []
    assert keys([b"sintercard", b"x", b"a"]) == []
    assert keys([b"sintercard", b"0", b"a"]) == []


def test_parse_range_long_messages():
    with pytest.raises(CommandError, match="^ERR value is not an integer or out of range$"):
        cmd.parse_range_long(b"x", 0, 5)
    with pytest.raises(CommandError, match="^ERR value is out of range, value must between 0 and 5$"):
        cmd.parse_range_long(b"6", 0, 5)
    with pytest.raises(CommandError, match="^ERR custom$"):
        cmd.parse_range_long(b"x", 0, 5, "ERR custom")
    with pytest.raises(CommandError, match="must be positive"):
        cmd.parse_positive_long(b"-1")
    assert cmd.parse_positive_long(b"0") == 0
