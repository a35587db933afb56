"""Persistence acceptance (issue 5) against real Shardis processes: data survives a restart.

Every test starts its own Shardis on a temporary directory with `--appendonly yes` given explicitly,
writes through redis-py, restarts on the same directory and compares DEBUG DIGEST and a full
read-back (type, value, TTL) of every database. Waits are polled with deadlines: loading is over
when a non-`loading` command stops answering -LOADING; a rewrite is over when the manifest names a
newer base (and INFO no longer says it is in progress).

Races between the write stream and a barrier (a rewrite, CONFIG SET appendonly) are set up
deterministically with `SameTick` (commands of several connections in one shard batch, in a
chosen order) rather than with load and luck.

The helpers at the top (`Servers`, `populate`, `read_dataset`, ...) are shared with
tests/differential/test_persistence_diff.py and tests/integration/test_crash.py.
"""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import hiredis
import pytest
import redis

from commands.registry import COMMANDS
from tests.servers import (
    REDIS_SERVER,
    ServerProcess,
    free_port,
    start_redis,
    start_shardis,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

AOF_ON = ("--appendonly", "yes")
DBS = (0, 3, 15)
FAR_MS = 4_000_000_000_000   # an absolute deadline in 2096: never reached during a test
REL_SECONDS = 5000           # relative TTLs: long enough never to expire during a test
KINDS = ("string", "list", "set", "hash", "zset")
_KIND_COMMAND = {"string": "set", "list": "rpush", "set": "sadd", "hash": "hset", "zset": "zadd"}


# -- helpers shared by the persistence test files ---------------------------------------------------

def has(*names: str) -> bool:
    """Every named command is registered in Shardis (the command table is read at test time)."""
    return all(name.lower().encode() in COMMANDS for name in names)


def present_kinds() -> list[str]:
    return [kind for kind in KINDS if has(_KIND_COMMAND[kind])]


def skip_unless_kind(kind: str) -> None:
    if not has(_KIND_COMMAND[kind]):
        pytest.skip(f"{kind} type not supported yet: {_KIND_COMMAND[kind].upper()} is not in "
                    f"commands.registry.COMMANDS")


def client(server, db: int = 0, timeout: float = 10.0) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=server.port, db=db, socket_timeout=timeout)


def wait_loaded(server, timeout: float = 30.0) -> None:
    """Poll a command without the `loading` flag until it stops answering -LOADING."""
    c = client(server)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                c.exists("__probe__")
                return
            except redis.exceptions.BusyLoadingError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"still loading after {timeout}s") from None
                time.sleep(0.01)  # polling interval
    finally:
        c.close()


def read_log(server) -> str:
    return Path(server.log_path).read_text(errors="replace")


def aof_dir(workdir) -> Path:
    return Path(workdir) / "appendonlydir"


def manifest_base_seq(workdir) -> int:
    """The seq of the base file the manifest names (0 when there is no manifest yet)."""
    path = aof_dir(workdir) / "appendonly.aof.manifest"
    if not path.exists():
        return 0
    for line in path.read_text().splitlines():
        match = re.search(r"seq (\d+) type b", line)
        if match:
            return int(match.group(1))
    return 0


def incr_files(workdir) -> list[Path]:
    manifest = aof_dir(workdir) / "appendonly.aof.manifest"
    names = re.findall(r"file (\S+) seq \d+ type i", manifest.read_text())
    return [aof_dir(workdir) / name for name in names]


def wait_rewrite(c: redis.Redis, workdir, before_seq: int, timeout: float = 30.0) -> None:
    """A rewrite started after `before_seq` is installed: the manifest names a newer base and
    INFO persistence says no rewrite is in progress or scheduled."""
    deadline = time.monotonic() + timeout
    while True:
        info = c.info("persistence")
        if (manifest_base_seq(workdir) > before_seq and not info.get("aof_rewrite_in_progress")
                and not info.get("aof_rewrite_scheduled")):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"rewrite not installed after {timeout}s: base seq "
                               f"{manifest_base_seq(workdir)}, info {info}")
        time.sleep(0.01)  # polling interval


def rewrite(c: redis.Redis, workdir) -> None:
    before = manifest_base_seq(workdir)
    c.execute_command("BGREWRITEAOF")
    wait_rewrite(c, workdir, before)


class Servers:
    """Starts Shardis and redis-server processes for one test; whatever still runs at the end is
    stopped (SIGTERM, then SIGKILL after a bound), so a hung server never outlives its test."""

    def __init__(self) -> None:
        self.started: list[ServerProcess] = []

    def shardis(self, workdir, *args: str, shards: int = 1, wait: bool = True) -> ServerProcess:
        server = start_shardis(*args, shards=shards, workdir=str(workdir))
        self.started.append(server)
        if wait:
            wait_loaded(server)
        return server

    def redis(self, workdir, *args: str, wait: bool = True) -> ServerProcess:
        if REDIS_SERVER is None:
            pytest.skip("redis-server is not installed")
        server = start_redis(*args, workdir=str(workdir))
        self.started.append(server)
        if wait:
            wait_loaded(server)
        return server

    def restart(self, server: ServerProcess, *args: str, shards: int = 1) -> ServerProcess:
        """Clean stop (exit 0 asserted), then a new Shardis on the same directory."""
        code = server.stop()
        assert code == 0, f"shutdown exit {code}:\n{read_log(server)[-3000:]}"
        return self.shardis(server.workdir, *args, shards=shards)

    @staticmethod
    def kill(server: ServerProcess) -> None:
        """SIGKILL by pid and reap."""
        if server.proc.poll() is None:
            os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait(10)

    def cleanup(self) -> None:
        for server in self.started:
            if server.proc.poll() is None:
                server.proc.send_signal(signal.SIGTERM)
                try:
                    server.proc.wait(10)
                except subprocess.TimeoutExpired:
                    server.proc.kill()
                    server.proc.wait(10)
            if not server._log.closed:
                server._log.close()


@pytest.fixture
def servers():
    launcher = Servers()
    yield launcher
    launcher.cleanup()


def refuse_to_start(workdir, *args: str, timeout: float = 30.0) -> tuple[int, str]:
    """Run Shardis on `workdir` expecting it to exit by itself: (exit code, output)."""
    argv = [sys.executable, "-m", "actors", "--port", str(free_port()), "--bind", "127.0.0.1",
            "--dir", str(workdir), *args]
    done = subprocess.run(argv, capture_output=True, timeout=timeout, cwd=str(workdir),
                          check=False)
    return done.returncode, (done.stdout + done.stderr).decode(errors="replace")


# -- the data set ------------------------------------------------------------------------------------

def _write_string(c: redis.Redis, tag: str) -> None:
    c.set(f"{tag}:plain", "hello")
    c.set(f"{tag}:int", 12345)
    c.set(f"{tag}:neg", -7)
    c.set(f"{tag}:big", "abc" * 3000)                       # LZF-compressible in an RDB
    c.set(b"\x00bin\r\n*1\r\n" + tag.encode(), b"\xff\x00\r\n$3\r\n")  # RESP-looking bytes
    c.set(f"{tag}:rel", "v", ex=REL_SECONDS)
    c.set(f"{tag}:abs", "v", pxat=FAR_MS)
    c.append(f"{tag}:plain", " world")
    c.incr(f"{tag}:counter")
    c.incrby(f"{tag}:counter", 41)
    c.set(f"{tag}:gone", "x")
    c.delete(f"{tag}:gone")
    if has("incrbyfloat"):
        c.incrbyfloat(f"{tag}:float", "2.5")
    if has("setrange"):
        c.setrange(f"{tag}:range", 5, "xyz")
    if has("mset"):
        c.mset({f"{tag}:m1": "1", f"{tag}:m2": "two", f"{tag}:m3": "3.0"})
    if has("pexpireat"):
        c.set(f"{tag}:abs2", 1)
        c.pexpireat(f"{tag}:abs2", FAR_MS + 1)
    if has("rename"):
        c.set(f"{tag}:old", "renamed")
        c.rename(f"{tag}:old", f"{tag}:new")


def _write_list(c: redis.Redis, tag: str) -> None:
    c.rpush(f"{tag}:list", *range(10), "a", "b")
    c.rpush(f"{tag}:biglist", *[f"e{i}" for i in range(1000)])   # several quicklist nodes
    c.rpush(f"{tag}:biglist", "x" * 10000)                      # a plain (large) element
    c.lpush(f"{tag}:biglist", -1, 2**40)
    c.lpop(f"{tag}:list")
    c.rpop(f"{tag}:list")
    for name, args in (("lset", (f"{tag}:list", 2, "set")),
                       ("linsert", (f"{tag}:list", "BEFORE", "a", "ins")),
                       ("lrem", (f"{tag}:biglist", 0, "e7")),
                       ("ltrim", (f"{tag}:biglist", 0, 900))):
        if has(name):
            c.execute_command(name.upper(), *args)
    c.rpush(f"{tag}:list-rel", 1, 2)
    c.expire(f"{tag}:list-rel", REL_SECONDS)
    c.rpush(f"{tag}:list-abs", 1, 2)
    c.pexpireat(f"{tag}:list-abs", FAR_MS)


def _write_set(c: redis.Redis, tag: str) -> None:
    c.sadd(f"{tag}:intset", *range(20), -5, 2**40)
    c.sadd(f"{tag}:strset", "a", "b", "c", "d")
    c.sadd(f"{tag}:bigset", *[f"m{i}" for i in range(1000)])
    c.srem(f"{tag}:strset", "b")
    if has("smove"):
        c.smove(f"{tag}:strset", f"{tag}:moved", "c")
    c.sadd(f"{tag}:set-rel", "x")
    c.expire(f"{tag}:set-rel", REL_SECONDS)
    c.sadd(f"{tag}:set-abs", "x")
    c.pexpireat(f"{tag}:set-abs", FAR_MS)


def _write_hash(c: redis.Redis, tag: str) -> None:
    c.hset(f"{tag}:hash", mapping={"f1": "v1", "f2": 2, "f3": "three"})
    c.hset(f"{tag}:bighash", mapping={f"f{i}": f"v{i}" for i in range(600)})
    c.hdel(f"{tag}:hash", "f3")
    if has("hincrby"):
        c.hincrby(f"{tag}:hash", "n", 5)
    if has("hincrbyfloat"):
        c.hincrbyfloat(f"{tag}:hash", "x", "1.25")
    if has("hsetnx"):
        c.hsetnx(f"{tag}:hash", "f1", "not-set")
    c.hset(f"{tag}:hash-rel", "f", "v")
    c.expire(f"{tag}:hash-rel", REL_SECONDS)
    c.hset(f"{tag}:hash-abs", "f", "v")
    c.pexpireat(f"{tag}:hash-abs", FAR_MS)


def _write_zset(c: redis.Redis, tag: str) -> None:
    c.zadd(f"{tag}:zset", {"a": 1, "b": 2.5, "c": -3, "inf": float("inf"), "ninf": float("-inf")})
    c.zadd(f"{tag}:bigzset", {f"m{i}": i / 7 for i in range(300)})
    if has("zincrby"):
        c.zincrby(f"{tag}:zset", 0.1, "a")
    if has("zrem"):
        c.zrem(f"{tag}:zset", "b")
    c.zadd(f"{tag}:zset-rel", {"m": 1})
    c.expire(f"{tag}:zset-rel", REL_SECONDS)
    c.zadd(f"{tag}:zset-abs", {"m": 1})
    c.pexpireat(f"{tag}:zset-abs", FAR_MS)


WRITERS = {"string": _write_string, "list": _write_list, "set": _write_set, "hash": _write_hash,
           "zset": _write_zset}


def populate(server, kinds, tag: str = "k", dbs=DBS) -> None:
    """Write every kind in `kinds` into each database of `dbs` through redis-py (pipelined, in
    order: the writes are the same as one by one, with far fewer round trips)."""
    for db in dbs:
        c = client(server, db)
        try:
            pipe = c.pipeline(transaction=False)
            for kind in kinds:
                WRITERS[kind](pipe, f"{tag}{db}:{kind}")
            pipe.execute()
        finally:
            c.close()


def _queue_value(pipe, key: bytes, kind: bytes) -> None:
    if kind == b"string":
        pipe.get(key)
    elif kind == b"list":
        pipe.lrange(key, 0, -1)
    elif kind == b"set":
        pipe.smembers(key)
    elif kind == b"hash":
        pipe.hgetall(key)
    elif kind == b"zset":
        pipe.zrange(key, 0, -1, withscores=True)
    else:
        pipe.echo(b"unsupported " + kind)


def _normal(kind: bytes, value):
    if kind == b"set":
        return sorted(value)
    if kind == b"hash":
        return sorted(value.items())
    return value


def read_dataset(server) -> dict:
    """{db: {key: (type, value, ttl)}} for every non-empty database. `ttl` is the exact
    PEXPIRETIME for keys whose name contains 'abs' (absolute deadlines must survive exactly),
    else only whether the key has a TTL (relative TTLs are checked by the TTL tests)."""
    c = client(server)
    try:
        dbs = sorted(int(name[2:]) for name in c.info("keyspace"))
    finally:
        c.close()
    exact = has("pexpiretime")
    out: dict = {}
    for db in dbs:
        c = client(server, db)
        try:
            keys = c.keys("*")
            pipe = c.pipeline(transaction=False)
            for key in keys:
                pipe.type(key)
                pipe.pttl(key)
            meta = pipe.execute()
            kinds, pttls = meta[0::2], meta[1::2]
            pipe = c.pipeline(transaction=False)
            for key, kind in zip(keys, kinds):
                _queue_value(pipe, key, kind)
                if exact:
                    pipe.execute_command("PEXPIRETIME", key)
                else:
                    pipe.pttl(key)
            values = pipe.execute()
            out[db] = {
                key: (kind, _normal(kind, value),
                      deadline if b"abs" in key and pttl > 0 and exact else pttl > 0)
                for key, kind, pttl, value, deadline
                in zip(keys, kinds, pttls, values[0::2], values[1::2])}
        finally:
            c.close()
    return out


def digest(server) -> bytes:
    c = client(server)
    try:
        return c.execute_command("DEBUG", "DIGEST")
    finally:
        c.close()


def assert_same(before_digest, before, after_digest, after) -> None:
    assert after.keys() == before.keys(), "databases differ"
    for db in before:
        assert after[db] == before[db], f"db {db} differs"
    assert after_digest == before_digest


def more_writes(server, kinds) -> None:
    """Writes after a rewrite: new keys, changes to old ones, a flushed database, SWAPDB."""
    populate(server, kinds, tag="after", dbs=(0, 3))
    c = client(server, 3)
    try:
        c.delete("k3:string:plain", "k3:string:int")
        c.set("k3:string:counter", "overwritten")
        c.expire("k3:string:big", REL_SECONDS)
        c.persist("k3:string:rel")
        c.execute_command("SELECT", 7)
    finally:
        c.close()
    c = client(server, 7)
    try:
        c.set("doomed", "1")
        c.flushdb()
        c.set("survivor", "1")
        if has("swapdb"):
            c.swapdb(7, 8)
    finally:
        c.close()


# -- 1. restart --------------------------------------------------------------------------------------

def _kind_of(key: bytes) -> str:
    """populate() names keys `<tag><db>:<kind>:...`."""
    parts = key.split(b":")
    return parts[1].decode() if len(parts) > 2 and parts[1].decode() in KINDS else "other"


def _only(dataset: dict, kind: str) -> dict:
    return {db: {k: v for k, v in keys.items() if _kind_of(k) == kind} for db, keys in dataset.items()}


def _restart_run(tmp_path_factory, kinds, first_args, restart_args, shards, save=False):
    """Start, populate, (SAVE,) restart: (before, before digest, after, after digest)."""
    launcher = Servers()
    try:
        server = launcher.shardis(tmp_path_factory.mktemp("restart"), *first_args, shards=shards)
        populate(server, kinds)
        if save:
            c = client(server)
            assert c.save() is True
            c.close()
        before, before_digest = read_dataset(server), digest(server)
        server = launcher.restart(server, *restart_args, shards=shards)
        return before, before_digest, read_dataset(server), digest(server)
    finally:
        launcher.cleanup()


@pytest.fixture(scope="module", params=[1, 4], ids=["shards1", "shards4"])
def aof_restart(request, tmp_path_factory):
    """Every registered type, with TTLs, in DBS, through an AOF-only restart (no rewrite)."""
    return _restart_run(tmp_path_factory, present_kinds(), AOF_ON, AOF_ON, request.param)


@pytest.fixture(scope="module")
def rdb_restart(tmp_path_factory):
    """Every registered type through SAVE and a restart that loads dump.rdb (appendonly no)."""
    args = ("--appendonly", "no", "--save", "")
    return _restart_run(tmp_path_factory, present_kinds(), args, args, 4, save=True)


@pytest.mark.parametrize("kind", KINDS)
def test_restart_keeps_every_type(aof_restart, kind):
    """Each type, with TTLs, in several databases: identical after a restart (AOF replay)."""
    skip_unless_kind(kind)
    before, _, after, _ = aof_restart
    assert all(_only(before, kind)[db] for db in DBS), "the data set is missing"
    assert _only(after, kind) == _only(before, kind)


def test_restart_keeps_the_digest(aof_restart):
    before, before_digest, after, after_digest = aof_restart
    assert set(before) == set(DBS)
    assert_same(before_digest, before, after_digest, after)


@pytest.mark.parametrize("kind", KINDS)
def test_rdb_round_trip_keeps_every_type(rdb_restart, kind):
    """Each type through SAVE and a restart from dump.rdb."""
    skip_unless_kind(kind)
    before, before_digest, after, after_digest = rdb_restart
    assert all(_only(before, kind)[db] for db in DBS), "the data set is missing"
    assert _only(after, kind) == _only(before, kind)
    assert after_digest == before_digest


@pytest.mark.parametrize("preamble, shards", [("yes", 4), ("no", 1)],
                         ids=["rdb-preamble-shards4", "resp-base-shards1"])
def test_restart_after_rewrite_and_more_writes(servers, tmp_path, preamble, shards):
    """BGREWRITEAOF (base from a snapshot), then more writes into the new INCR, then a restart;
    then the restarted server appends to the same INCR and a second restart finds that too."""
    kinds = present_kinds()
    args = (*AOF_ON, "--aof-use-rdb-preamble", preamble)
    server = servers.shardis(tmp_path, *args, shards=shards)
    populate(server, kinds, dbs=(0, 3))
    c = client(server)
    rewrite(c, tmp_path)
    c.close()
    suffix = ".base.rdb" if preamble == "yes" else ".base.aof"
    bases = [p.name for p in aof_dir(tmp_path).iterdir() if ".base." in p.name]
    assert len(bases) == 1 and bases[0].endswith(suffix), bases
    more_writes(server, kinds)
    before, before_digest = read_dataset(server), digest(server)
    server = servers.restart(server, *args, shards=shards)
    assert_same(before_digest, before, digest(server), read_dataset(server))
    if preamble == "no":
        return
    populate(server, ["string"], tag="third", dbs=(1,))
    before, before_digest = read_dataset(server), digest(server)
    server = servers.restart(server, *args, shards=shards)
    assert_same(before_digest, before, digest(server), read_dataset(server))


def test_automatic_rewrite_on_growth(servers, tmp_path):
    """auto-aof-rewrite-percentage/min-size: the once-a-second check rewrites a grown AOF."""
    server = servers.shardis(tmp_path, *AOF_ON, "--auto-aof-rewrite-min-size", "64kb",
                             "--auto-aof-rewrite-percentage", "100", shards=4)
    c = client(server)
    pipe = c.pipeline(transaction=False)
    for i in range(2000):
        pipe.set(f"key:{i}", "x" * 100)  # ~250 KB of AOF
    pipe.execute()
    deadline = time.monotonic() + 15
    while manifest_base_seq(tmp_path) < 2 or c.info("persistence")["aof_rewrite_in_progress"]:
        assert time.monotonic() < deadline, "no automatic rewrite"
        time.sleep(0.02)  # polling interval
    c.close()
    assert "Starting automatic rewriting of AOF" in read_log(server)
    before, before_digest = read_dataset(server), digest(server)
    server = servers.restart(server, *AOF_ON, shards=4)
    assert_same(before_digest, before, digest(server), read_dataset(server))


def test_config_set_appendonly_yes_at_run_time(servers, tmp_path):
    """A server started without the AOF turns it on: the base is written from a snapshot and later
    writes go to the INCR; a restart with appendonly yes finds everything."""
    server = servers.shardis(tmp_path, "--appendonly", "no", "--save", "", shards=4)
    populate(server, present_kinds(), dbs=(0, 2))
    c = client(server)
    assert c.config_set("appendonly", "yes") is True
    deadline = time.monotonic() + 30
    while manifest_base_seq(tmp_path) == 0 or c.info("persistence")["aof_rewrite_in_progress"]:
        assert time.monotonic() < deadline, "the AOF was not created"
        time.sleep(0.01)  # polling interval
    c.close()
    populate(server, ["string"], tag="later", dbs=(0, 9))
    before, before_digest = read_dataset(server), digest(server)
    server = servers.restart(server, *AOF_ON, "--save", "", shards=4)
    assert_same(before_digest, before, digest(server), read_dataset(server))


def test_config_set_appendfsync_then_appendonly_no(servers, tmp_path):
    """Writes under every appendfsync policy set at run time are logged; after CONFIG SET
    appendonly no nothing more is, and a restart with the AOF finds exactly the logged writes."""
    server = servers.shardis(tmp_path, *AOF_ON, "--appendfsync", "no", "--save", "", shards=4)
    c = client(server)
    for policy in ("always", "everysec", "no", "always"):
        assert c.config_set("appendfsync", policy) is True
        assert c.config_get("appendfsync") == {"appendfsync": policy}
        for i in range(20):
            c.set(f"{policy}:{i}", i)
    before, before_digest = read_dataset(server), digest(server)
    assert c.config_set("appendonly", "no") is True
    c.set("not-logged", "1")
    c.close()
    # The stopped persistence actor writes what it was sent before the switch; wait for it (a
    # shutdown right after the switch can lose it: the actor is a daemon thread nobody joins).
    deadline = time.monotonic() + 10
    while b"always:19" not in b"".join(p.read_bytes() for p in incr_files(tmp_path)):
        assert time.monotonic() < deadline, "the writes before CONFIG SET appendonly no are lost"
        time.sleep(0.01)  # polling interval
    server = servers.restart(server, *AOF_ON, "--save", "", shards=4)
    assert_same(before_digest, before, digest(server), read_dataset(server))


class RawConn:
    """A raw RESP connection: send bytes, read a number of replies (leftovers are kept)."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = hiredis.Reader()
        self.pending: list = []

    def send(self, *commands: tuple) -> None:
        self.sock.sendall(b"".join(hiredis.pack_command(tuple(c)) for c in commands))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def replies(self, count: int, timeout: float | None = None) -> list:
        if timeout is not None:
            self.sock.settimeout(timeout)
        while len(self.pending) < count:
            data = self.sock.recv(1 << 20)
            if not data:
                raise ConnectionError("server closed the connection")
            self.reader.feed(data)
            while (reply := self.reader.gets()) is not False:
                self.pending.append(reply)
        out, self.pending = self.pending[:count], self.pending[count:]
        return out

    def close(self) -> None:
        self.sock.close()


class SameTick:
    """Puts commands of several connections into one shard batch, in a chosen order, without
    relying on timing (1 shard).

    Connection i sends `BLPOP gate:i 0`, then PING (a barrier that waits for the BLPOP), then its
    payload, which therefore waits in the connection's backlog. Once every BLPOP has reached the
    server, one MULTI/EXEC (a single batch entry) pushes every gate in order: the shard serves
    all the waiters in one batch, the loop resumes their backlogs one after the other in a single
    callback, and the dispatcher hands everything they dispatch to the shard as one message, in
    connection order.
    """

    def __init__(self, port: int, connections: int) -> None:
        self.port = port
        self.conns = [RawConn(port) for _ in range(connections)]

    def send(self, *payloads: bytes) -> None:
        for i, (conn, payload) in enumerate(zip(self.conns, payloads)):
            conn.send(("BLPOP", f"gate:{i}", "0"), ("PING",))
            conn.send_raw(payload)
        admin = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=10)
        try:
            deadline = time.monotonic() + 10
            # Every BLPOP has reached the loop (CLIENT LIST names it as the last command); the
            # shard runs it before the EXEC below, which comes later in its FIFO mailbox.
            while sum(c["cmd"] == "blpop" for c in admin.client_list()) < len(payloads):
                assert time.monotonic() < deadline, "the gate connections never blocked"
                time.sleep(0.005)  # polling interval
            pipe = admin.pipeline(transaction=True)
            for i in range(len(payloads)):
                pipe.rpush(f"gate:{i}", "open")
            pipe.execute()
        finally:
            admin.close()
        for conn in self.conns:  # the BLPOP reply and the PONG
            assert conn.replies(2)[1] == b"PONG"

    def close(self) -> None:
        for conn in self.conns:
            conn.close()


def _incrs(count: int) -> bytes:
    return b"".join(hiredis.pack_command(("INCR", f"c{j}")) for j in range(count))


def test_writes_batched_before_a_rewrite_barrier_are_applied_once(servers, tmp_path):
    """INCRs and BGREWRITEAOF in one shard batch, INCRs first: after a restart each INCR counts
    once. Two attempts, each ending in a restart."""
    server = servers.shardis(tmp_path, *AOF_ON, shards=1)
    keys = [f"c{j}" for j in range(100)]
    for _attempt in range(2):
        tick = SameTick(server.port, 2)
        before_seq = manifest_base_seq(tmp_path)
        tick.send(_incrs(100), hiredis.pack_command(("BGREWRITEAOF",)))
        tick.conns[0].replies(100)
        assert tick.conns[1].replies(1)[0].startswith(b"Background append only file")
        tick.close()
        c = client(server)
        wait_rewrite(c, tmp_path, before_seq)
        before = c.mget(keys)
        c.close()
        server = servers.restart(server, *AOF_ON, shards=1)
        c = client(server)
        after = c.mget(keys)
        c.close()
        assert after == before, f"counters {set(before)} came back as {set(after)}"


def test_config_set_appendonly_yes_with_writes_behind_it(servers, tmp_path):
    """The writes run on the shard right after the barrier; whether the loop attaches the actor
    first is a race between threads, so up to 8 switches are tried (the first one usually hangs)."""
    server = servers.shardis(tmp_path, "--appendonly", "no", "--save", "", shards=1)
    for attempt in range(8):
        tick = SameTick(server.port, 2)
        tick.send(hiredis.pack_command(("CONFIG", "SET", "appendonly", "yes")), _incrs(10))
        assert tick.conns[0].replies(1) == [b"OK"]
        try:
            tick.conns[1].replies(10, timeout=2)
        except TimeoutError:
            pytest.fail(f"attempt {attempt}: the writes behind CONFIG SET appendonly yes were "
                        f"never answered:\n{read_log(server)[-1500:]}")
        tick.close()
        c = client(server)
        deadline = time.monotonic() + 10
        while manifest_base_seq(tmp_path) == 0 or c.info("persistence")["aof_rewrite_in_progress"]:
            assert time.monotonic() < deadline, "the AOF was not created"
            time.sleep(0.01)  # polling interval
        c.config_set("appendonly", "no")
        c.close()
    assert "Traceback" not in read_log(server)


def test_config_set_appendonly_no_with_writes_queued_behind_a_busy_shard(servers, tmp_path):
    server = servers.shardis(tmp_path, *AOF_ON, "--save", "", shards=1)
    for _attempt in range(3):
        sleeper, writer, probe, admin = (RawConn(server.port) for _ in range(4))
        try:
            sleeper.send(("DEBUG", "SLEEP", "0.5"))      # the shard is busy
            writer.send_raw(_incrs(10))                  # queued behind it
            probe.send(("PING",))
            assert probe.replies(1) == [b"PONG"]         # the loop has dispatched the INCRs
            admin.send(("CONFIG", "SET", "appendonly", "no"))
            assert admin.replies(1) == [b"OK"]
            # The switch only means something if the shard was still asleep meanwhile.
            still_asleep = not select.select([sleeper.sock], [], [], 0)[0]
            try:
                assert len(writer.replies(10, timeout=2.5)) == 10
            except TimeoutError:
                pytest.fail("the INCRs queued behind the switch were never answered:\n"
                            + read_log(server)[-1500:])
        finally:
            for conn in (sleeper, writer, probe, admin):
                conn.close()
        if still_asleep:
            break
        c = client(server)   # too slow a machine: switch back on and try again
        c.config_set("appendonly", "yes")
        c.close()
    c = client(server)
    assert int(c.get("c0")) >= 1
    c.close()


# -- non-deterministic and relative writes must be logged as their effect ---------------------------

def test_random_and_blocking_writes_replay_exactly(servers, tmp_path):
    """SPOP (random members), pops served to blocked clients, float increments: the AOF holds
    their effects (SREM, LPOP/LMOVE, SET/HSET of the result), so a replay gives the same data."""
    server = servers.shardis(tmp_path, *AOF_ON, shards=4)
    c = client(server)
    c.sadd("s", *range(200))
    c.spop("s", 20)
    for _ in range(5):
        c.spop("s")
    members = c.smembers("s")
    c.incrbyfloat("f", "0.1")
    c.incrbyfloat("f", "1e-3")
    if has("hincrbyfloat"):
        c.hincrbyfloat("h", "x", "2.5")
    if has("blpop", "blmove"):
        waiters = [RawConn(server.port) for _ in range(2)]
        waiters[0].send(("BLPOP", "q", "0"))
        waiters[1].send(("BLMOVE", "q2", "dst", "LEFT", "RIGHT", "0"))
        deadline = time.monotonic() + 10
        while sum(x["cmd"] in ("blpop", "blmove") for x in c.client_list()) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.005)  # polling interval
        c.rpush("q", "a", "b")
        c.rpush("q2", "x", "y")
        assert waiters[0].replies(1) == [[b"q", b"a"]]
        assert waiters[1].replies(1) == [b"x"]
        for conn in waiters:
            conn.close()
    c.close()
    before, before_digest = read_dataset(server), digest(server)
    server = servers.restart(server, *AOF_ON, shards=4)
    c = client(server)
    assert c.smembers("s") == members
    c.close()
    assert_same(before_digest, before, digest(server), read_dataset(server))


TTL_FORMS = {
    # Relative forms must be logged as absolute deadlines (SET PXAT / PEXPIREAT); the absolute
    # forms are the control group.
    "set-ex": [("SET", "{k}", "v", "EX", "100")],
    "set-px": [("SET", "{k}", "v", "PX", "100000")],
    "setex": [("SETEX", "{k}", "100", "v")],
    "psetex": [("PSETEX", "{k}", "100000", "v")],
    "expire": [("SET", "{k}", "v"), ("EXPIRE", "{k}", "100")],
    "pexpire": [("SET", "{k}", "v"), ("PEXPIRE", "{k}", "100000")],
    "getex-ex": [("SET", "{k}", "v"), ("GETEX", "{k}", "EX", "100")],
    "rpush-expire": [("RPUSH", "{k}", "v"), ("EXPIRE", "{k}", "100")],
    "expireat": [("SET", "{k}", "v"), ("EXPIREAT", "{k}", "{at}")],
    "set-pxat": [("SET", "{k}", "v", "PXAT", "{pat}")],
}


@pytest.fixture(scope="module")
def ttl_restart(tmp_path_factory):
    """One server: every TTL form is set, time passes (polled on the server's own PTTL), restart;
    {form: (pttl just before the restart, pttl right after it)}."""
    workdir = tmp_path_factory.mktemp("ttl")
    launcher = Servers()
    try:
        server = launcher.shardis(workdir, *AOF_ON, shards=4)
        c = client(server)
        now = int(time.time())
        for form, commands in TTL_FORMS.items():
            if not all(has(cmd[0]) for cmd in commands):
                continue
            for cmd in commands:
                c.execute_command(*(part.format(k=f"ttl:{form}", at=now + 100,
                                                pat=(now + 100) * 1000) for part in cmd))
        # A measurable delay: wait (polling the server) until 1.2 s of every TTL have elapsed.
        deadline = time.monotonic() + 10
        while c.pttl("ttl:set-ex") > 98_800:
            assert time.monotonic() < deadline
            time.sleep(0.05)  # polling interval
        before = {form: c.pttl(f"ttl:{form}") for form in TTL_FORMS}
        c.close()
        server = launcher.restart(server, *AOF_ON, shards=4)
        c = client(server)
        after = {form: c.pttl(f"ttl:{form}") for form in TTL_FORMS}
        c.close()
        yield {form: (before[form], after[form]) for form in TTL_FORMS}
    finally:
        launcher.cleanup()


@pytest.mark.parametrize("form", list(TTL_FORMS))
def test_ttl_survives_restart_as_an_absolute_deadline(ttl_restart, form):
    """SET k v EX 100, 1.2 s pass, restart: the TTL kept decreasing, it was not re-armed."""
    commands = TTL_FORMS[form]
    if not all(has(cmd[0]) for cmd in commands):
        pytest.skip(f"{commands[-1][0]} is not registered")
    before, after = ttl_restart[form]
    assert before > 0, "the key has no TTL before the restart"
    assert 0 < after <= before, f"TTL went from {before} ms to {after} ms across the restart"


# -- INFO persistence, SAVE, LASTSAVE ----------------------------------------------------------------

def test_info_persistence_after_rewrite_and_save(servers, tmp_path):
    """aof_rewrites, rdb_saves, the last statuses, LASTSAVE and aof_enabled following CONFIG SET."""
    server = servers.shardis(tmp_path, *AOF_ON, "--save", "", shards=4)
    c = client(server)
    c.set("a", "1")
    info = c.info("persistence")
    assert info["aof_enabled"] == 1 and info["loading"] == 0
    rewrites, saves, lastsave = info["aof_rewrites"], info["rdb_saves"], c.lastsave()
    rewrite(c, tmp_path)
    assert c.save() is True
    info = c.info("persistence")
    assert info["aof_rewrites"] == rewrites + 1
    assert info["aof_last_bgrewrite_status"] == "ok"
    assert info["aof_rewrite_in_progress"] == 0
    assert info["rdb_saves"] == saves + 1
    assert info["rdb_last_bgsave_status"] == "ok"
    assert info["rdb_changes_since_last_save"] == 0
    assert info["aof_last_write_status"] == "ok"
    assert "aof_current_size" in info and "aof_base_size" in info
    assert c.lastsave() >= lastsave
    assert info["rdb_last_save_time"] == int(c.lastsave().timestamp())
    c.bgsave()
    deadline = time.monotonic() + 30
    while (info := c.info("persistence"))["rdb_saves"] < saves + 2:
        assert time.monotonic() < deadline, "BGSAVE did not finish"
        time.sleep(0.01)  # polling interval
    assert info["rdb_bgsave_in_progress"] == 0 and info["rdb_last_bgsave_status"] == "ok"
    assert c.config_set("appendonly", "no") is True
    assert c.info("persistence")["aof_enabled"] == 0
    c.close()


@pytest.mark.xfail(strict=True, reason=(
    "aof-timestamp-enabled is accepted but ignored: the persistence actor never writes "
    "'#TS:<unix>' annotations into the INCR file"))
def test_aof_timestamp_annotations(servers, tmp_path):
    server = servers.shardis(tmp_path, *AOF_ON, "--aof-timestamp-enabled", "yes", shards=1)
    c = client(server)
    c.set("a", "1")
    c.set("last", "1")
    c.close()
    deadline = time.monotonic() + 10
    while b"$4\r\nlast" not in (data := b"".join(p.read_bytes() for p in incr_files(tmp_path))):
        assert time.monotonic() < deadline, "the writes never reached the INCR file"
        time.sleep(0.01)  # polling interval
    assert re.search(rb"#TS:\d+\r\n", data)


@pytest.mark.xfail(strict=True, reason="DEBUG RELOAD is not implemented (DEBUG answers "
                   "'unknown subcommand'); the issue lists it with SAVE/BGSAVE/LASTSAVE")
def test_debug_reload_keeps_the_dataset(servers, tmp_path):
    server = servers.shardis(tmp_path, "--appendonly", "no", "--save", "", shards=4)
    populate(server, present_kinds(), dbs=(0,))
    before = digest(server)
    c = client(server)
    assert c.execute_command("DEBUG", "RELOAD") == b"OK"
    c.close()
    assert digest(server) == before
    assert (tmp_path / "dump.rdb").exists()
