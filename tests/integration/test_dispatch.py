"""The `dispatch` option (docs/concurrency.md): every design gives the same answers.

`batched` (the default) sends one message per shard per loop tick, `unbatched` one message per
command, and `inline` runs the one shard's batches on the event-loop thread. Each is started as
its own server and driven through strings, a list (with a client blocked and then served),
transactions (a single-shard EXEC, one that runs on the loop thread, a WATCH that aborts) and a
pipeline. INFO actors shows that the messages really are what the design says.
"""

from __future__ import annotations

import threading
import time

import pytest
import redis

from keyspace.routing import ShardMap
from tests.servers import start_shardis

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

DESIGNS = [("batched", 4), ("unbatched", 1), ("unbatched", 4), ("inline", 1)]


@pytest.fixture(scope="module", params=DESIGNS, ids=[f"{d}-shards{s}" for d, s in DESIGNS])
def server(request):
    dispatch, shards = request.param
    process = start_shardis("--dispatch", dispatch, "--appendonly", "no", "--save", "",
                            shards=shards)
    process.dispatch, process.shards = dispatch, shards
    yield process
    assert process.stop() == 0, process.log()


@pytest.fixture
def r(server):
    client = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=20)
    client.flushall()
    yield client
    client.close()


def _shard_counters(client: redis.Redis) -> dict[int, tuple[int, int]]:
    """shard index -> (messages, commands) from INFO actors."""
    info = client.info("actors")
    return {int(name[5:]): (fields["messages"], fields["commands"])
            for name, fields in info.items() if name.startswith("shard")}


def test_config_get_reports_the_design(r, server):
    assert r.config_get("dispatch") == {"dispatch": server.dispatch}


def test_strings_on_every_shard(r, server):
    keys = ShardMap(server.shards).sample_keys("s", server.shards)
    for i, key in enumerate(keys):
        assert r.set(key, f"v{i}")
        assert r.incrby(f"{{{key}}}:n", i + 1) == i + 1
    assert r.mget(keys) == [f"v{i}".encode() for i in range(len(keys))]
    assert r.mset({key: "x" for key in keys})  # spans every shard: a global op
    assert r.mget(keys) == [b"x"] * len(keys)
    assert r.dbsize() == 2 * len(keys)


def test_list_commands_and_a_blocked_client_served_by_a_push(r, server):
    assert r.rpush("list", "a", "b", "c") == 3
    assert r.lrange("list", 0, -1) == [b"a", b"b", b"c"]
    assert r.lpop("list") == b"a"
    popped: list = []
    waiter = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=20)
    thread = threading.Thread(target=lambda: popped.append(waiter.blpop(["queue"], timeout=10)))
    thread.start()
    deadline = time.monotonic() + 10
    while r.info("clients")["blocked_clients"] != 1:
        assert time.monotonic() < deadline, "BLPOP never blocked"
        time.sleep(0.005)  # polling interval
    assert r.rpush("queue", "job") == 1
    thread.join(10)
    waiter.close()
    assert popped == [(b"queue", b"job")]
    assert r.llen("queue") == 0


def test_transactions(r):
    tx = r.pipeline(transaction=True)
    tx.set("{t}a", 1).incr("{t}a").get("{t}a")
    assert tx.execute() == [True, 2, b"2"]  # one shard: an ExecEntry in that shard's batch
    tx = r.pipeline(transaction=True)
    tx.set("{t}b", "x").execute_command("SELECT", "1").set("{t}b", "y").dbsize()
    tx.execute_command("SELECT", "0").get("{t}b")
    assert tx.execute() == [True, True, True, 1, True, b"x"]  # SELECT inside: runs on the loop
    other = redis.Redis(host="127.0.0.1", port=r.connection_pool.connection_kwargs["port"])
    with r.pipeline(transaction=True) as tx:
        tx.watch("{t}a")
        other.set("{t}a", "changed")
        tx.multi()
        tx.set("{t}a", "mine")
        with pytest.raises(redis.WatchError):
            tx.execute()
    other.close()
    assert r.get("{t}a") == b"changed"


def test_pipeline_replies_stay_in_order(r):
    pipe = r.pipeline(transaction=False)
    for i in range(500):
        pipe.set(f"p{i}", i)
        pipe.incr(f"p{i}")
        pipe.get(f"p{i}")
    replies = pipe.execute()
    assert replies == [item for i in range(500) for item in (True, i + 1, str(i + 1).encode())]


def test_messages_per_command_follow_the_design(r, server):
    """A pipeline of 300 commands to one shard: one message each when unbatched, a few otherwise."""
    key = ShardMap(server.shards).sample_keys("m", 1)[0]
    before = _shard_counters(r)
    pipe = r.pipeline(transaction=False)
    for i in range(300):
        pipe.set(key, i)
    pipe.execute()
    after = _shard_counters(r)
    shard = ShardMap(server.shards).shard_of(key.encode())
    messages = after[shard][0] - before[shard][0]
    commands = after[shard][1] - before[shard][1]
    assert commands == 300
    if server.dispatch == "unbatched":
        assert messages >= 300
    else:
        assert messages < 100, messages  # a few reads of the socket, plus expiry ticks


def test_inline_needs_one_shard():
    with pytest.raises(RuntimeError) as failed:
        start_shardis("--dispatch", "inline", shards=2)
    assert "'dispatch inline'" in str(failed.value) and "'shards 1'" in str(failed.value)
