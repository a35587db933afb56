"""Master-replica replication with real processes: Shardis to Shardis, and both ways with a real
redis-server 7.0 (REDIS-FACTS §6). Datasets are compared with DEBUG DIGEST, which Shardis computes
exactly as Redis does.

Waiting is by polling INFO/ROLE with a deadline, never by sleeping for synchronisation.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
import redis

from tests.integration.test_strings import wait_until
from tests.servers import REDIS_SERVER, start_redis, start_shardis

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

needs_redis = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed "
                                 "(CI installs it: apt-get install redis-server)")


@pytest.fixture
def servers():
    started = []

    def start(kind="shardis", *extra, shards=2):
        server = start_shardis(*extra, shards=shards) if kind == "shardis" else \
            start_redis("--repl-diskless-sync-delay", "0", *extra)
        started.append(server)
        return server
    yield start
    for server in reversed(started):
        if server.proc.poll() is None:
            server.stop()


def client(server, **kwargs) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=20, **kwargs)


def info(server_client, section="replication") -> dict:
    return server_client.info(section)


def link_up(replica: redis.Redis) -> bool:
    return info(replica).get("master_link_status") == "up"


def digest(c: redis.Redis) -> bytes:
    return c.execute_command("DEBUG", "DIGEST")


def caught_up(master: redis.Redis, replica: redis.Redis) -> bool:
    return link_up(replica) and digest(master) == digest(replica)


def fill(c: redis.Redis, prefix: str = "") -> None:
    """One key of every type, in two databases, with a TTL."""
    c.set(prefix + "str", "v")
    c.set(prefix + "int", 12345)
    c.rpush(prefix + "list", *range(300))
    c.hset(prefix + "hash", mapping={f"f{i}": i for i in range(200)})
    c.hset(prefix + "smallhash", "a", "b")
    c.zadd(prefix + "zset", {f"m{i}": i / 3 for i in range(200)})
    c.sadd(prefix + "set", *range(100))
    c.sadd(prefix + "strset", "a", "b")
    c.set(prefix + "ttl", "v", px=600_000)
    c.execute_command("SELECT", 3)
    c.set(prefix + "db3", "three")
    c.execute_command("SELECT", 0)


def follow(replica_client: redis.Redis, master) -> None:
    assert replica_client.execute_command("REPLICAOF", "127.0.0.1", master.port) == b"OK"


def test_shardis_replica_of_shardis_full_sync_stream_and_wait(servers):
    m, r = servers(shards=4), servers(shards=2)
    master, replica = client(m), client(r)
    fill(master)
    follow(replica, m)
    wait_until(lambda: caught_up(master, replica), what="the full sync")
    # The stream: SELECT, a transaction, relative TTLs made absolute, a multi-shard command.
    master.execute_command("SELECT", 5)
    pipe = master.pipeline(transaction=True)
    pipe.incr("counter").lpush("jobs", "a", "b").expire("jobs", 1000).mset({"x": 1, "y{t}": 2})
    pipe.execute()
    for i in range(500):
        master.set(f"k{i}", i)
    master.execute_command("SELECT", 0)
    assert master.execute_command("WAIT", 1, 5000) == 1
    wait_until(lambda: caught_up(master, replica), what="the stream")
    replica.execute_command("SELECT", 5)
    assert replica.get("k499") == b"499" and 0 < replica.ttl("jobs") <= 1000
    with pytest.raises(redis.ReadOnlyError, match="You can't write against a read only replica."):
        replica.set("x", "1")
    role = master.execute_command("ROLE")
    assert role[0] == b"master" and role[2][0][0] == b"127.0.0.1"
    assert replica.execute_command("ROLE")[:4] == [b"slave", b"127.0.0.1", m.port, b"connected"]
    minfo, rinfo = info(master), info(replica)
    assert minfo["connected_slaves"] == 1 and minfo["slave0"]["state"] == "online"
    assert rinfo["role"] == "slave" and rinfo["master_replid"] == minfo["master_replid"]
    wait_until(lambda: info(replica)["slave_repl_offset"] == info(master)["master_repl_offset"],
               what="equal offsets")
    assert info(master, "stats")["sync_full"] == 1


def test_link_cut_resumes_with_continue(servers):
    m, r = servers(), servers()
    master, replica = client(m), client(r)
    fill(master)
    follow(replica, m)
    wait_until(lambda: caught_up(master, replica), what="the full sync")
    assert master.execute_command("CLIENT", "KILL", "TYPE", "replica") == 1
    for i in range(200):
        master.set(f"during-cut-{i}", i)
    wait_until(lambda: info(master, "stats")["sync_partial_ok"] == 1, what="a PSYNC continuation")
    wait_until(lambda: caught_up(master, replica), what="the replica to catch up")
    assert info(master, "stats")["sync_full"] == 1
    assert replica.get("during-cut-199") == b"199"


def test_replica_restart_full_syncs(servers):
    m = servers()
    master = client(m)
    fill(master)
    r = servers("shardis", "--replicaof", "127.0.0.1", str(m.port))
    replica = client(r)
    wait_until(lambda: caught_up(master, replica), what="the first sync")
    r.stop()
    master.set("while-down", "1")
    r2 = servers("shardis", "--replicaof", "127.0.0.1", str(m.port))
    replica2 = client(r2)
    wait_until(lambda: caught_up(master, replica2), what="the sync after the restart")
    assert replica2.get("while-down") == b"1"


def test_promotion_keeps_history_for_the_other_replica(servers):
    m, r1, r2 = servers(), servers(), servers()
    master, one, two = client(m), client(r1), client(r2)
    fill(master)
    follow(one, m)
    follow(two, m)
    wait_until(lambda: caught_up(master, one) and caught_up(master, two), what="both syncs")
    old_id = info(master)["master_replid"]
    assert master.execute_command("WAIT", 2, 5000) == 2
    m.stop()
    assert one.execute_command("REPLICAOF", "NO", "ONE") == b"OK"
    promoted = info(one)
    assert promoted["role"] == "master" and promoted["master_replid2"] == old_id
    one.set("after-failover", "1")
    follow(two, r1)
    wait_until(lambda: caught_up(one, two), what="the other replica to follow")
    assert info(one, "stats")["sync_partial_ok"] == 1     # continued, no full sync
    assert info(one, "stats")["sync_full"] == 0
    assert two.get("after-failover") == b"1"


def test_writes_acknowledged_by_wait_survive_a_master_crash(servers):
    m, r = servers(shards=4), servers()
    master, replica = client(m), client(r)
    follow(replica, m)
    wait_until(lambda: link_up(replica), what="the link")
    pipe = master.pipeline(transaction=False)
    for i in range(2000):
        pipe.set(f"acked-{i}", i)
    pipe.execute()
    assert master.execute_command("WAIT", 1, 1000) == 1
    m.proc.kill()
    m.proc.wait(10)
    replica.execute_command("REPLICAOF", "NO", "ONE")
    assert replica.dbsize() == 2000
    assert replica.mget([f"acked-{i}" for i in range(0, 2000, 97)]) == \
        [str(i).encode() for i in range(0, 2000, 97)]


def test_chained_replicas(servers):
    a, b, c = servers(), servers(), servers()
    top, middle, bottom = client(a), client(b), client(c)
    fill(top)
    follow(middle, a)
    wait_until(lambda: caught_up(top, middle), what="the middle replica")
    follow(bottom, b)
    wait_until(lambda: caught_up(top, bottom), what="the bottom replica")
    top.execute_command("SELECT", 7)
    top.set("deep", "1")
    wait_until(lambda: caught_up(top, bottom), what="the stream down the chain")
    # The bytes are proxied, so the offsets agree (a PING may be in flight: poll).
    wait_until(lambda: info(bottom)["master_repl_offset"] == info(top)["master_repl_offset"],
               what="equal offsets down the chain")


def test_replica_serve_stale_data_no_and_wait_on_a_replica(servers):
    m, r = servers(), servers()
    master, replica = client(m), client(r)
    follow(replica, m)
    wait_until(lambda: link_up(replica), what="the link")
    with pytest.raises(redis.ResponseError, match="WAIT cannot be used with replica instances"):
        replica.execute_command("WAIT", 1, 0)
    replica.config_set("replica-serve-stale-data", "no")
    m.stop()
    wait_until(lambda: not link_up(replica), what="the link to drop")
    # (redis-py keeps the message, not the MASTERDOWN code; test_replies_match_redis has codes)
    with pytest.raises(redis.ResponseError, match="Link with MASTER is down and "
                                                  "replica-serve-stale-data is set to 'no'."):
        replica.get("x")
    with pytest.raises(redis.exceptions.MasterDownError):
        replica.ping()      # PING has no `stale` flag: Sentinel accepts -MASTERDOWN as alive
    assert info(replica)["role"] == "slave"     # INFO has it


def test_min_replicas_to_write(servers):
    m = servers()
    master = client(m)
    master.config_set("min-replicas-to-write", "1")
    with pytest.raises(redis.ResponseError, match="Not enough good replicas to write."):
        master.set("x", "1")
    assert master.get("x") is None
    r = servers()
    follow(client(r), m)
    wait_until(lambda: info(master).get("min_slaves_good_slaves") == 1, what="a good replica")
    assert master.set("x", "1") is True


def test_a_replica_that_stops_reading_is_dropped(servers):
    m = servers()
    master = client(m)
    master.config_set("client-output-buffer-limit", "replica 256kb 0 0")
    with socket.create_connection(("127.0.0.1", m.port)) as fake:
        fake.sendall(b"*3\r\n$5\r\nPSYNC\r\n$1\r\n?\r\n$2\r\n-1\r\n")
        fake.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        wait_until(lambda: info(master)["connected_slaves"] == 1, what="the fake replica")
        value = "x" * 10_000
        deadline = time.monotonic() + 30
        while info(master)["connected_slaves"] and time.monotonic() < deadline:
            pipe = master.pipeline(transaction=False)
            for i in range(100):
                pipe.set(f"big{i}", value)
            pipe.execute()
        assert info(master)["connected_slaves"] == 0
    assert master.ping() is True


def run_under_load(master_server, master: redis.Redis) -> None:
    """Pipelines and transactions of every type from another client until 1000+ increments."""
    stop = threading.Event()
    errors: list = []

    def load() -> None:
        try:
            c = client(master_server)
            for i in range(20_000):
                if stop.is_set():
                    break
                pipe = c.pipeline(transaction=i % 5 == 0)
                pipe.set(f"k{i % 500}", i).incr("cnt").lpush("ll", i).expire("ll", 100)
                pipe.hincrby("hh", f"f{i % 13}", 1).zincrby("zz", 1, f"m{i % 17}")
                pipe.sadd(f"s{i % 3}", i % 50).delete(f"k{(i + 250) % 500}")
                pipe.execute()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
    writer = threading.Thread(target=load)
    writer.start()
    wait_until(lambda: int(master.get("cnt") or 0) > 1000 or not writer.is_alive(),
               timeout=30, what="the load")
    stop.set()
    writer.join(30)
    assert not errors


@needs_redis
def test_real_redis_replica_of_a_shardis_master_under_load(servers):
    m, rr = servers(shards=4), servers("redis")
    master, replica = client(m), client(rr)
    fill(master)
    follow(replica, m)
    wait_until(lambda: caught_up(master, replica), what="the real replica's full sync")
    master.execute_command("SELECT", 2)
    pipe = master.pipeline(transaction=True)
    pipe.incr("c").lpush("l2", "x").zadd("zz", {"a": 1}).pexpire("l2", 100_000)
    pipe.execute()
    run_under_load(m, master)
    assert master.execute_command("WAIT", 1, 5000) == 1
    wait_until(lambda: caught_up(master, replica), what="the stream")


@needs_redis
def test_shardis_replica_of_a_real_redis_master_under_load(servers):
    rm, s = servers("redis"), servers(shards=4)
    master, replica = client(rm), client(s)
    fill(master)
    follow(replica, rm)
    wait_until(lambda: caught_up(master, replica), what="the full sync from Redis")
    run_under_load(rm, master)
    assert master.execute_command("WAIT", 1, 5000) == 1
    wait_until(lambda: caught_up(master, replica), what="the replica under load")


@needs_redis
@pytest.mark.parametrize("command", [
    ("WAIT", "x", "0"), ("WAIT", "1", "-1"), ("WAIT", "1", "x"), ("REPLICAOF", "h", "70000"),
    ("REPLICAOF", "h", "x"), ("REPLCONF", "bogus", "1"), ("REPLCONF", "listening-port"),
    ("REPLCONF", "listening-port", "x"), ("REPLICAOF", "NO", "ONE"), ("ROLE",), ("WAIT", "0", "0"),
    ("WAIT", "1_0", "0"), ("WAIT", " 1", "0"), ("WAIT", "0", "+5"), ("REPLICAOF", "h", "+80"),
    ("REPLCONF", "listening-port", "6_379"),
])
def test_replies_match_redis(servers, command):
    ours, real = client(servers()), client(servers("redis"))

    def reply(c):
        try:
            return c.execute_command(*command)
        except redis.ResponseError as exc:
            return f"error: {exc}"
    assert reply(ours) == reply(real)


def test_a_replica_hides_expired_keys_but_leaves_their_deletion_to_the_master(servers):
    m, r = servers(), servers()
    master, replica = client(m), client(r)
    follow(replica, m)
    wait_until(lambda: link_up(replica), what="the link")
    master.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
    master.set("short", "v", px=50)
    master.set("counter", "1")
    wait_until(lambda: replica.get("counter") == b"1", what="the writes to arrive")
    wait_until(lambda: replica.get("short") is None, what="the key to expire on the replica")
    assert replica.exists("short") == 0
    assert replica.dbsize() == 2          # hidden, not deleted: DBSIZE counts it, as on Redis
    assert master.get("short") is None    # the master's lazy expiry sends a DEL
    wait_until(lambda: replica.dbsize() == 1, what="the master's DEL")


@pytest.mark.parametrize("diskless", ["yes", "no"])
def test_both_rdb_transfer_forms(servers, diskless):
    """`$EOF:<mark>` for a replica that sent `capa eof` when repl-diskless-sync is on, else `$len`."""
    m = servers("shardis", "--repl-diskless-sync", diskless)
    master = client(m)
    fill(master)
    with socket.create_connection(("127.0.0.1", m.port), timeout=10) as raw:
        raw.sendall(b"*5\r\n$8\r\nREPLCONF\r\n$4\r\ncapa\r\n$3\r\neof\r\n$4\r\ncapa\r\n$6\r\npsync2\r\n"
                    b"*3\r\n$5\r\nPSYNC\r\n$1\r\n?\r\n$2\r\n-1\r\n")
        data = b""
        while data.count(b"\r\n") < 3:
            data += raw.recv(65536)
    ok, fullresync, bulk = data.split(b"\r\n")[:3]
    assert ok == b"+OK" and fullresync.startswith(b"+FULLRESYNC ")
    if diskless == "yes":
        assert bulk.startswith(b"$EOF:") and len(bulk) == 45
    else:
        assert bulk[1:].isdigit()
    r = servers()
    replica = client(r)
    follow(replica, m)
    wait_until(lambda: caught_up(master, replica), what="a Shardis replica's sync")


def test_legacy_sync_and_masterauth(servers):
    m = servers("shardis", "--requirepass", "s3cret")
    master = client(m, password="s3cret")
    fill(master)
    with socket.create_connection(("127.0.0.1", m.port), timeout=10) as raw:
        raw.sendall(b"*2\r\n$4\r\nAUTH\r\n$6\r\ns3cret\r\n*1\r\n$4\r\nSYNC\r\n")
        data = b""
        while not data.startswith(b"+OK\r\n$") or data.count(b"\r\n") < 2:
            data += raw.recv(65536)
    assert b"FULLRESYNC" not in data       # SYNC: the RDB with no +FULLRESYNC line before it
    assert data[5:].split(b"\r\n")[0][1:].isdigit()
    r = servers("shardis", "--masterauth", "s3cret")
    replica = client(r)
    follow(replica, m)
    wait_until(lambda: link_up(replica), what="an authenticated link")
    wait_until(lambda: digest(master) == digest(replica), what="the sync")


@pytest.mark.parametrize("diskless", ["yes", "no"])
def test_writes_during_the_full_sync_reach_the_replica(servers, diskless):
    """Stream bytes buffered while the RDB is made follow it; with `$EOF:` they wait for the
    replica's first ACK, since a replica looks for the end mark only at the end of what it read."""
    m, r = servers("shardis", "--repl-diskless-sync", diskless), servers()
    master, replica = client(m), client(r)
    pipe = master.pipeline(transaction=False)
    for i in range(100_000):
        pipe.set(f"bulk:{i}", "v" * 16)
    pipe.execute()
    follow(replica, m)
    for i in range(300):
        master.set(f"during:{i}", i)
    wait_until(lambda: caught_up(master, replica), timeout=30, what="the sync and the writes")
    assert replica.get("during:299") == b"299"


def test_the_master_client_is_listed_and_can_be_killed(servers):
    m, r = servers(), servers()
    master, replica = client(m), client(r)
    follow(replica, m)
    wait_until(lambda: link_up(replica), what="the link")
    listed = replica.execute_command("CLIENT", "LIST", "TYPE", "master")
    assert listed.count(b"flags=M") == 1 and f"addr=127.0.0.1:{m.port}".encode() in listed
    assert replica.execute_command("CLIENT", "KILL", "TYPE", "master") == 1
    master.set("after-kill", "1")
    wait_until(lambda: info(master, "stats")["sync_partial_ok"] == 1, what="a continuation")
    wait_until(lambda: replica.get("after-kill") == b"1", what="the stream after the kill")
