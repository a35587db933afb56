"""Fixtures: a real Shardis process per shard count, a real redis-server, and clients of both.

`ours` and `real` are session-scoped servers; clients are made per test with a clean keyspace.
Differential tests take `pair`, parametrised over RESP2/RESP3 and shards 1/4, and compare replies.
"""

from __future__ import annotations

import pytest
import redis

from tests.servers import REDIS_SERVER, start_redis, start_shardis

_servers: dict = {}


def _shardis(shards: int):
    key = ("shardis", shards)
    if key not in _servers:
        _servers[key] = start_shardis(shards=shards)
    return _servers[key]


@pytest.fixture(scope="session", autouse=True)
def _stop_servers():
    yield
    failures = []
    for key, server in list(_servers.items()):
        code = server.stop()
        if key[0] == "shardis" and code != 0:
            failures.append(f"{key}: exit {code}\n{server.log()}")
    _servers.clear()
    assert not failures, "servers did not shut down cleanly:\n" + "\n".join(failures)


def shardis_server(shards: int = 1):
    return _shardis(shards)


def redis_server():
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (CI installs it: apt-get install redis-server)")
    key = ("redis", 0)
    if key not in _servers:
        _servers[key] = start_redis()
    return _servers[key]


def make_client(server, protocol: int, **kwargs) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=server.port, protocol=protocol,
                       socket_timeout=20, **kwargs)


@pytest.fixture(params=[3, 2], ids=["resp3", "resp2"])
def r(request):
    """A client of Shardis (1 shard), flushed before the test."""
    client = make_client(_shardis(1), request.param)
    client.flushall()
    yield client
    client.close()


@pytest.fixture(params=[(1, 2), (1, 3), (4, 2), (4, 3)],
                ids=["shards1-resp2", "shards1-resp3", "shards4-resp2", "shards4-resp3"])
def pair(request):
    """(ours, real): raw-reply clients of Shardis and of redis-server, both flushed."""
    shards, protocol = request.param
    real_server = redis_server()
    ours = make_client(_shardis(shards), protocol)
    real = make_client(real_server, protocol)
    for c in (ours, real):
        c.flushall()
    yield ours, real
    ours.close()
    real.close()
