"""The RDB codec against a real redis-server 7.0, in both directions.

1. A real server holds a dataset covering every type in its small encodings (listpack, intset)
   and its large ones (hashtable, skiplist, multi-node and compressed quicklists, plain quicklist
   nodes), LZF strings, integer strings, expiries, a function library and several databases.
   It SAVEs; `load` decodes its dump.rdb, and the result must equal what redis-py reads back and
   digest to the server's DEBUG DIGEST.
2. `dump` re-encodes that dataset; a fresh redis-server started on the file must hold the same
   dataset: the same DEBUG DIGEST, the same functions, and spot-checked values and TTLs.
"""

from __future__ import annotations

import math
import os
import random
import tempfile
import time
from collections import deque

import pytest

from keyspace.digest import dataset_digest
from persistence import rdb
from persistence.rdb import dump, load_file, write_file
from tests.servers import REDIS_SERVER, start_redis

redis = pytest.importorskip("redis")

pytestmark = [
    pytest.mark.differential,
    pytest.mark.timeout(120),
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not found on PATH"),
]

DATABASES = (0, 1, 9, 15)
LIBRARY = "#!lua name=rdblib\nredis.register_function('rdbf', function() return 42 end)"
SCORES = (0.0, -0.0, 1.0, -1.5, 1 / 3, 2.5e-5, 1e300, -1e-300, 123456789012345678.0,
          math.inf, -math.inf)


class ZSetLike:
    """A decoded sorted set, shaped like the keyspace's (`scores`)."""

    def __init__(self, scores: dict[bytes, float]) -> None:
        self.scores = scores

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ZSetLike) and self.scores == other.scores

    def __repr__(self) -> str:
        return f"ZSetLike({self.scores!r})"


def make_zset(pairs: list[tuple[bytes, float]]) -> ZSetLike:
    return ZSetLike(dict(pairs))


def _element(rng: random.Random) -> bytes:
    kind = rng.randrange(6)
    if kind == 0:
        return b"%d" % rng.choice([0, 1, -1, 127, -128, 128, 32767, -32768, 32768,
                                    2**31 - 1, -2**31, 2**31, 2**63 - 1, -2**63,
                                    rng.randint(-10**6, 10**6)])
    if kind == 1:
        return rng.randbytes(rng.randint(0, 12))
    if kind == 2:
        return b"ab" * rng.randint(11, 60)  # long and repetitive: LZF
    if kind == 3:
        return b"x" * rng.randint(65, 90)  # beyond the listpack value limit
    return b"e%d" % rng.randrange(10**6)


def _populate(port: int) -> None:
    rng = random.Random(20240607)
    far = int(time.time() * 1000) + 3_600_000
    for db in DATABASES:
        client = redis.Redis(port=port, db=db, protocol=2)
        pipe = client.pipeline(transaction=False)
        for index in range(40):
            key = b"k%d:" % index + _element(rng)
            large = index % 4 == 0
            kind = index % 5
            if kind == 0:
                pipe.set(key, _element(rng) if not large else b"v" * 5000 + rng.randbytes(300))
            elif kind == 1:
                count = 3000 if large else 5
                pipe.rpush(key, *[_element(rng) for _ in range(count)])
            elif kind == 2:
                if index % 3 == 0:
                    pipe.sadd(key, *[b"%d" % rng.randint(-2**63, 2**63 - 1) for _ in range(6)])
                else:
                    pipe.sadd(key, *{_element(rng) for _ in range(300 if large else 6)})
            elif kind == 3:
                pipe.hset(key, mapping={_element(rng): _element(rng) for _ in range(300 if large else 5)})
            else:
                pipe.zadd(key, {_element(rng): rng.choice(SCORES) for _ in range(300 if large else 5)})
            if index % 3 == 1:
                pipe.pexpireat(key, far + index)
        pipe.execute()
        client.close()
    client = redis.Redis(port=port, protocol=2)
    client.set(b"int-key-1", b"-2147483648")
    client.set(b"12345", b"integer key")
    client.execute_command("DEBUG", "QUICKLIST-PACKED-THRESHOLD", "100")
    client.rpush(b"plain-nodes", b"small", b"P" * 150, b"ab" * 300, b"tail")
    client.execute_command("DEBUG", "QUICKLIST-PACKED-THRESHOLD", str(1 << 30))
    client.function_load(LIBRARY)
    client.close()


def _read_value(client, key: bytes) -> object:
    kind = client.type(key)
    if kind == b"string":
        return client.get(key)
    if kind == b"list":
        return deque(client.lrange(key, 0, -1))
    if kind == b"set":
        return client.smembers(key)
    if kind == b"hash":
        return client.hgetall(key)
    if kind == b"zset":
        return ZSetLike(dict(client.zrange(key, 0, -1, withscores=True)))
    raise AssertionError(f"unexpected type {kind!r} of {key!r}")


def _read_back(port: int) -> dict[tuple[int, bytes], tuple[object, int | None]]:
    items = {}
    for db in DATABASES:
        client = redis.Redis(port=port, db=db, protocol=2)
        for key in client.scan_iter(count=1000):
            expire = client.execute_command("PEXPIRETIME", key)
            items[(db, key)] = (_read_value(client, key), expire if expire > 0 else None)
        client.close()
    return items


def _digest(port: int) -> str:
    client = redis.Redis(port=port, protocol=2)
    try:
        reply = client.execute_command("DEBUG", "DIGEST")
    finally:
        client.close()
    return reply.decode() if isinstance(reply, bytes) else reply


@pytest.fixture(scope="module")
def saved():
    """(dump.rdb path, the dataset read back with redis-py, DEBUG DIGEST, functions)."""
    workdir = tempfile.mkdtemp(prefix="rdb-diff-")
    server = start_redis("--rdbcompression", "yes", "--list-compress-depth", "1", workdir=workdir)
    try:
        _populate(server.port)
        client = redis.Redis(port=server.port, protocol=2)
        encodings = {client.object("encoding", key) for key in client.scan_iter(count=1000)}
        assert {b"listpack", b"intset", b"hashtable", b"skiplist", b"quicklist",
                b"embstr", b"int", b"raw"} <= encodings
        client.save()
        functions = client.function_list(withcode=True)
        client.close()
        yield os.path.join(workdir, "dump.rdb"), _read_back(server.port), _digest(server.port), functions
    finally:
        server.stop()


def _decode(path: str) -> tuple[dict, list[bytes], dict]:
    items: dict[tuple[int, bytes], tuple[object, int | None]] = {}
    functions: list[bytes] = []
    aux: dict[bytes, bytes] = {}

    def on_key(db: int, key: bytes, value: object, expire: int | None) -> None:
        assert (db, key) not in items
        items[(db, key)] = (value, expire)

    load_file(path, on_key=on_key, make_zset=make_zset, on_function=functions.append,
              on_aux=aux.__setitem__)
    return items, functions, aux


def test_decode_a_real_dump(saved, monkeypatch):
    path, expected, digest, _functions = saved
    kinds: set[int] = set()
    lzf_strings = []
    original_value, original_lzf = rdb._Loader.value, rdb.lzf_decompress

    def value(self, kind, *args):
        kinds.add(kind)
        return original_value(self, kind, *args)

    def lzf(data, length):
        lzf_strings.append(length)
        return original_lzf(data, length)

    monkeypatch.setattr(rdb._Loader, "value", value)
    monkeypatch.setattr(rdb, "lzf_decompress", lzf)
    items, functions, aux = _decode(path)
    # What 7.0 writes: plain set/hash/zset2, intset, listpack hash and zset, quicklist 2.
    assert {rdb.T_SET, rdb.T_HASH, rdb.T_ZSET_2, rdb.T_SET_INTSET, rdb.T_HASH_LISTPACK,
            rdb.T_ZSET_LISTPACK, rdb.T_LIST_QUICKLIST_2} <= kinds
    assert len(lzf_strings) > 20
    assert items == expected
    assert dataset_digest((db, key, value, expire) for (db, key), (value, expire) in items.items()) == digest
    assert functions == [LIBRARY.encode()]
    assert aux[b"redis-ver"] == b"7.0.15"


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "lzf"])
def test_real_server_loads_our_dump(saved, compress):
    path, expected, digest, functions = saved
    items, codes, _aux = _decode(path)
    by_db: dict[int, list] = {}
    for (db, key), (value, expire) in items.items():
        by_db.setdefault(db, []).append((key, value, expire))
    workdir = tempfile.mkdtemp(prefix="rdb-ours-")
    write_file(os.path.join(workdir, "ours.rdb"), sorted(by_db.items()), functions=codes,
               compress=compress)
    server = start_redis("--dbfilename", "ours.rdb", workdir=workdir)
    try:
        assert _digest(server.port) == digest
        client = redis.Redis(port=server.port, protocol=2)
        assert client.function_list(withcode=True) == functions
        assert client.fcall("rdbf", 0) == 42
        assert client.get(b"int-key-1") == b"-2147483648"
        assert client.lrange(b"plain-nodes", 0, -1) == [b"small", b"P" * 150, b"ab" * 300, b"tail"]
        client.close()
        assert _read_back(server.port) == expected
    finally:
        server.stop()


def test_real_server_loads_an_empty_dump_and_multiple_dbs():
    workdir = tempfile.mkdtemp(prefix="rdb-small-")
    data = dump([(0, []), (3, [(b"a", b"1", None)]), (5, [(b"z", set(), None)]),
                 (7, [(b"l", deque([b"x"]), None)])])
    with open(os.path.join(workdir, "dump.rdb"), "wb") as file:
        file.write(data)
    server = start_redis(workdir=workdir)
    try:
        client = redis.Redis(port=server.port, protocol=2)
        info = client.info("keyspace")
        assert set(info) == {"db3", "db7"}
        assert redis.Redis(port=server.port, db=3).get(b"a") == b"1"
        assert redis.Redis(port=server.port, db=7).lrange(b"l", 0, -1) == [b"x"]
        client.close()
    finally:
        server.stop()
