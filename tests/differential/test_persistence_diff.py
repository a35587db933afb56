"""Persistence interop with a real redis-server 7.0, both ways (issue 5).

- A real redis-server started on a Shardis data directory (the AOF directory after a rewrite and
  more writes; or a dump.rdb from SAVE) holds the same data set: same DEBUG DIGEST, same read-back.
- Shardis started on a real Redis 7.0 data directory (an AOF directory whose base has an RDB
  preamble, written by BGREWRITEAOF on the real server, plus more writes; a RESP base; a dump.rdb)
  holds the same data set. Shardis then keeps appending to that directory, and the real server
  loads the result again.

Every server is started by the test on its own temporary directory and stopped by pid.
"""

from __future__ import annotations

import shutil
import time

import pytest

from tests.integration.test_persistence import (
    AOF_ON,
    DBS,
    Servers,
    aof_dir,
    client,
    digest,
    manifest_base_seq,
    more_writes,
    populate,
    present_kinds,
    read_dataset,
    rewrite,
)
from tests.servers import REDIS_SERVER

pytestmark = [
    pytest.mark.differential,
    pytest.mark.timeout(90),
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed"),
]


@pytest.fixture
def servers():
    launcher = Servers()
    yield launcher
    launcher.cleanup()


def _stop(server) -> None:
    assert server.stop() == 0, f"{server.name} did not shut down cleanly"


def _assert_same(expected_digest, expected, server) -> None:
    assert read_dataset(server) == expected
    assert digest(server) == expected_digest


# -- Shardis writes, Redis reads ----------------------------------------------------------------------

@pytest.mark.parametrize("preamble, shards", [("yes", 4), ("no", 1)],
                         ids=["rdb-preamble-shards4", "resp-base-shards1"])
def test_redis_loads_a_shardis_aof_directory(servers, tmp_path, preamble, shards):
    kinds = present_kinds()
    server = servers.shardis(tmp_path, *AOF_ON, "--aof-use-rdb-preamble", preamble, "--save", "",
                             shards=shards)
    populate(server, kinds)
    c = client(server)
    rewrite(c, tmp_path)
    c.close()
    more_writes(server, kinds)
    expected, expected_digest = read_dataset(server), digest(server)
    assert set(expected) >= set(DBS)
    _stop(server)
    real = servers.redis(tmp_path, *AOF_ON)
    _assert_same(expected_digest, expected, real)


def test_redis_loads_a_shardis_dump(servers, tmp_path):
    server = servers.shardis(tmp_path, "--appendonly", "no", "--save", "", shards=4)
    populate(server, present_kinds())
    c = client(server)
    assert c.save() is True
    c.close()
    expected, expected_digest = read_dataset(server), digest(server)
    _stop(server)
    real = servers.redis(tmp_path, "--appendonly", "no")
    _assert_same(expected_digest, expected, real)


# -- Redis writes, Shardis reads ----------------------------------------------------------------------

@pytest.mark.parametrize("preamble, shards", [("yes", 4), ("no", 1)],
                         ids=["rdb-preamble-shards4", "resp-base-shards1"])
def test_shardis_loads_a_redis_aof_directory_and_redis_loads_it_back(servers, tmp_path, preamble,
                                                                      shards):
    """Redis: writes, BGREWRITEAOF, more writes. Shardis loads that, appends, and Redis loads
    the directory Shardis left behind."""
    kinds = present_kinds()
    real = servers.redis(tmp_path, *AOF_ON, "--aof-use-rdb-preamble", preamble)
    populate(real, kinds)
    c = client(real)
    rewrite(c, tmp_path)
    c.close()
    suffix = ".base.rdb" if preamble == "yes" else ".base.aof"
    assert any(p.name.endswith(suffix) for p in aof_dir(tmp_path).iterdir())
    more_writes(real, kinds)
    expected, expected_digest = read_dataset(real), digest(real)
    _stop(real)

    server = servers.shardis(tmp_path, *AOF_ON, "--save", "", shards=shards)
    _assert_same(expected_digest, expected, server)
    populate(server, ["string"], tag="from-shardis", dbs=(0, 4))
    expected, expected_digest = read_dataset(server), digest(server)
    _stop(server)

    real = servers.redis(tmp_path, *AOF_ON)
    _assert_same(expected_digest, expected, real)


@pytest.mark.parametrize("shards", [1, 4], ids=["shards1", "shards4"])
def test_shardis_loads_a_redis_dump(servers, tmp_path, shards):
    real = servers.redis(tmp_path, "--appendonly", "no")
    populate(real, present_kinds())
    c = client(real)
    assert c.save() is True
    c.close()
    expected, expected_digest = read_dataset(real), digest(real)
    _stop(real)
    server = servers.shardis(tmp_path, "--appendonly", "no", "--save", "", shards=shards)
    _assert_same(expected_digest, expected, server)


def test_shardis_and_redis_digest_the_same_populated_data(servers, tmp_path):
    """The control: the same writes through both servers give the same digest and read-back,
    so the comparisons above compare data, not the data sets' construction."""
    kinds = present_kinds()
    (tmp_path / "ours").mkdir()
    (tmp_path / "real").mkdir()
    ours = servers.shardis(tmp_path / "ours", "--appendonly", "no", "--save", "", shards=4)
    real = servers.redis(tmp_path / "real", "--appendonly", "no")
    for server in (ours, real):
        populate(server, kinds)
        more_writes(server, kinds)
    expected = read_dataset(real)
    actual = read_dataset(ours)
    for data in (expected, actual):  # PEXPIRETIME of `abs` keys is exact; the rest are booleans
        for keys in data.values():
            for key, (kind, value, ttl) in list(keys.items()):
                keys[key] = (kind, value, ttl if b"abs" in key else ttl is True)
    assert actual == expected
    assert digest(ours) == digest(real)


def test_redis_dump_then_shardis_aof_rewrite_round_trip(servers, tmp_path):
    """dump.rdb from Redis -> Shardis (appendonly no) -> CONFIG SET appendonly yes (a base from
    a snapshot) -> Redis loads that AOF directory."""
    real = servers.redis(tmp_path, "--appendonly", "no")
    populate(real, present_kinds(), dbs=(0, 2))
    c = client(real)
    assert c.save() is True
    c.close()
    expected, expected_digest = read_dataset(real), digest(real)
    _stop(real)
    server = servers.shardis(tmp_path, "--appendonly", "no", "--save", "", shards=4)
    c = client(server)
    assert c.config_set("appendonly", "yes") is True
    deadline = time.monotonic() + 30
    while manifest_base_seq(tmp_path) == 0 or c.info("persistence")["aof_rewrite_in_progress"]:
        assert time.monotonic() < deadline, "the AOF was not created"
        time.sleep(0.01)  # polling interval
    c.close()
    _stop(server)
    shutil.move(str(tmp_path / "dump.rdb"), str(tmp_path / "dump.rdb.old"))
    real = servers.redis(tmp_path, *AOF_ON)
    _assert_same(expected_digest, expected, real)
