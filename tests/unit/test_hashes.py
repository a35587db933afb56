"""keyspace.hashes (the hash value and its encoding rules) and commands.hashes on an in-process
Keyspace: conversions, copies, listpack order, HRANDFIELD sampling, HSCAN snapshots, the
WITHVALUES reply shape and dirty counts."""

from __future__ import annotations

import copy
import pickle

import pytest

from commands import hashes as cmd
from commands.hashes import PairsReply
from keyspace.db import Store, type_name
from keyspace.digest import value_digest
from keyspace.encoding import object_encoding
from keyspace.hashes import HashtableHash, HashValue, hash_from_items
from protocol.errors import CommandError
from protocol.replies import encode

pytestmark = [pytest.mark.timeout(60)]


@pytest.fixture
def db():
    store = Store(16)
    store.config = {"hash-max-listpack-entries": 4, "hash-max-listpack-value": 8}
    return store.dbs[0]


def run(db, *args):
    argv = [a if isinstance(a, bytes) else str(a).encode() for a in args]
    name = argv[0].decode().lower()
    return getattr(cmd, name)(db, argv)


# -- the value type ------------------------------------------------------------------------------------

def test_put_converts_like_redis():
    config = {"hash-max-listpack-entries": 2, "hash-max-listpack-value": 3}
    value = HashValue()
    assert value.put(b"a", b"1", config) and not value.hashtable
    assert not value.put(b"a", b"123", config) and not value.hashtable     # 3 bytes: fine
    assert value.put(b"b", b"2", config) and not value.hashtable
    assert value.put(b"c", b"3", config) and value.hashtable                # 3 fields > 2
    long_value = HashValue()
    long_value.put(b"a", b"1234", config)
    assert long_value.hashtable
    long_field = HashValue()
    long_field.put(b"abcd", b"1", config)
    assert long_field.hashtable


def test_hash_from_items_and_encodings():
    config = {"hash-max-listpack-entries": 2, "hash-max-listpack-value": 3}
    assert object_encoding(hash_from_items([(b"a", b"1")], config), config) == "listpack"
    assert object_encoding(hash_from_items([(b"a", b"1234")], config), config) == "hashtable"
    assert object_encoding(hash_from_items([(b"a", b"1"), (b"b", b"2"), (b"c", b"3")], config),
                           config) == "hashtable"
    assert object_encoding({b"a": b"1"}, config) == "listpack"  # a plain dict is judged by content
    assert object_encoding({b"abcd": b"1"}, config) == "hashtable"
    assert type_name(HashValue()) == "hash"


def test_copy_and_pickle_keep_type_order_and_encoding():
    value = HashValue([(b"b", b"1"), (b"a", b"2")])
    value.to_hashtable()
    for twin in (value.copy(), pickle.loads(pickle.dumps(value)), copy.deepcopy(value),
                 copy.copy(value)):
        assert type(twin) is HashtableHash and list(twin.items()) == list(value.items())
        assert twin is not value
    twin = value.copy()
    twin[b"c"] = b"3"
    assert b"c" not in value


def test_digest_is_that_of_the_fields():
    plain = {b"a": b"1", b"b": b""}
    assert value_digest(hash_from_items(plain.items(), {})) == value_digest(plain)


@pytest.mark.parametrize("proto, expected", [
    (2, b"*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n"),
    (3, b"*2\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n"),
])
def test_pairs_reply_shape(proto, expected):
    assert encode(PairsReply([(b"a", b"1"), (b"b", b"2")]), proto) == expected
    assert encode(PairsReply(), proto) == b"*0\r\n"
    assert encode([PairsReply([(b"a", 1.5)])], proto).startswith(b"*1\r\n")


# -- handlers on a Keyspace ----------------------------------------------------------------------------

def test_hset_counts_and_encoding(db):
    assert run(db, "HSET", "h", "a", 1, "b", 2, "a", 3) == 2
    assert db.store.dirty == 3                       # every pair counts, as in Redis
    assert run(db, "HMSET", "h", "c", 3) == "OK"
    assert not db.get(b"h").hashtable
    run(db, "HSET", "h", "d", 4, "e", 5)
    assert db.get(b"h").hashtable
    with pytest.raises(CommandError, match="^ERR wrong number of arguments for 'hset' command$"):
        run(db, "HSET", "h", "a")
    with pytest.raises(CommandError, match="'hmset'"):
        run(db, "HMSET", "h", "a", 1, "b")


def test_insertion_order_is_listpack_order(db):
    run(db, "HSET", "h", "z", 1, "y", 2, "x", 3)
    run(db, "HSET", "h", "y", 20)
    run(db, "HDEL", "h", "z")
    run(db, "HSET", "h", "z", 9)
    assert run(db, "HKEYS", "h") == [b"y", b"x", b"z"]
    assert run(db, "HVALS", "h") == [b"20", b"3", b"9"]
    assert run(db, "HGETALL", "h") == {b"y": b"20", b"x": b"3", b"z": b"9"}
    assert run(db, "HSCAN", "h", 5, "COUNT", 1) == [b"0", [b"y", b"20", b"x", b"3", b"z", b"9"]]


def test_hdel_deletes_emptied_hash(db):
    run(db, "HSET", "h", "a", 1, "b", 2)
    assert run(db, "HDEL", "h", "a", "a", "c") == 1
    assert run(db, "HDEL", "h", "b", "a") == 1
    assert db.get(b"h") is None
    assert run(db, "HDEL", "h", "b") == 0


def test_hsetnx_does_not_convert_existing_field(db):
    run(db, "HSET", "h", "f", 1)
    assert run(db, "HSETNX", "h", "f", "x" * 20) == 0 and not db.get(b"h").hashtable
    assert run(db, "HSETNX", "h", "g", "x" * 20) == 1 and db.get(b"h").hashtable


def test_hincrby_and_float(db):
    assert run(db, "HINCRBY", "h", "n", 5) == 5
    assert run(db, "HINCRBY", "h", "n", -7) == -2
    run(db, "HSET", "h", "max", 2**63 - 1, "s", "abc")
    with pytest.raises(CommandError, match="^ERR increment or decrement would overflow$"):
        run(db, "HINCRBY", "h", "max", 1)
    with pytest.raises(CommandError, match="^ERR hash value is not an integer$"):
        run(db, "HINCRBY", "h", "s", 1)
    assert run(db, "HINCRBYFLOAT", "h", "f", "10.5") == b"10.5"
    assert run(db, "HINCRBYFLOAT", "h", "f", "0.1") == b"10.6"
    with pytest.raises(CommandError, match="^ERR hash value is not a float$"):
        run(db, "HINCRBYFLOAT", "h", "s", "1")
    with pytest.raises(CommandError, match="^ERR value is NaN or Infinity$"):
        run(db, "HINCRBYFLOAT", "h", "f", "inf")
    run(db, "HSET", "h", "i", "inf")
    with pytest.raises(CommandError, match="^ERR increment would produce NaN or Infinity$"):
        run(db, "HINCRBYFLOAT", "h", "i", "1")
    assert db.get(b"h").hashtable                    # five fields > 4
    db.set(b"str", b"x")
    with pytest.raises(CommandError, match="^ERR value is not a valid float$"):
        run(db, "HINCRBYFLOAT", "str", "f", "x")     # the increment is checked before the type
    with pytest.raises(CommandError, match="WRONGTYPE"):
        run(db, "HINCRBYFLOAT", "str", "f", "1")


def test_failed_increment_creates_nothing(db):
    with pytest.raises(CommandError):
        run(db, "HINCRBY", "new", "f", "x")
    with pytest.raises(CommandError):
        run(db, "HINCRBYFLOAT", "new", "f", "inf")
    assert db.get(b"new") is None


def test_plain_dict_values_are_adopted(db):
    db.set(b"p", {b"a": b"1"})
    db.expire_at(b"p", db.store.clock() + 100_000)
    assert run(db, "HSET", "p", "b", 2) == 1
    assert type(db.get(b"p")) is HashValue and db.ttl(b"p") is not None
    assert run(db, "HGETALL", "p") == {b"a": b"1", b"b": b"2"}


def test_hrandfield_sampling(db):
    db.store.config["hash-max-listpack-entries"] = 512
    fields = [b"f%d" % i for i in range(30)]
    run(db, "HSET", "h", *[x for f in fields for x in (f, b"v" + f)])
    for count in (2, 5, 10):                        # count * 3 <= size: in-place, in order
        got = run(db, "HRANDFIELD", "h", count)
        assert got == sorted(got, key=fields.index) and len(set(got)) == count
    orders = {tuple(run(db, "HRANDFIELD", "h", 20)) for _ in range(20)}
    assert any(list(o) != sorted(o, key=fields.index) for o in orders)  # through a dict: shuffled
    pairs = run(db, "HRANDFIELD", "h", -50, "WITHVALUES")
    assert isinstance(pairs, PairsReply) and len(pairs) == 50
    assert all(v == b"v" + f for f, v in pairs)
    assert run(db, "HRANDFIELD", "h", 30) == fields
    assert run(db, "HRANDFIELD", "h", 0, "WITHVALUES") == []
    assert run(db, "HRANDFIELD", "h") in fields
    with pytest.raises(CommandError, match="^ERR value is out of range$"):
        run(db, "HRANDFIELD", "h", 2**62, "WITHVALUES")
    with pytest.raises(CommandError, match="^ERR syntax error$"):
        run(db, "HRANDFIELD", "h", 1, "WITHVALUES", "x")


def test_hscan_snapshot_semantics(db):
    fields = [b"f%d" % i for i in range(40)]
    run(db, "HSET", "h", *[x for f in fields for x in (f, b"v")])
    assert db.get(b"h").hashtable
    cursor, seen, step = b"0", {}, 0
    while True:
        cursor, batch = run(db, "HSCAN", "h", cursor, "COUNT", 6)
        assert len(batch) <= 12
        seen.update(zip(batch[::2], batch[1::2]))
        run(db, "HDEL", "h", b"f%d" % (39 - step))
        run(db, "HSET", "h", b"f%d" % step, b"changed")
        step += 1
        if cursor == b"0":
            break
    survivors = set(fields) & set(db.get(b"h"))
    assert survivors <= set(seen)
    assert all(v in (b"v", b"changed") for v in seen.values())
