"""Failover under a real redis-sentinel: one Shardis master, two Shardis replicas, one Sentinel.

The master is SIGKILLed while a writer thread keeps writing through redis-py's Sentinel client.
Sentinel must notice, promote a replica with its failover transaction (MULTI, SLAVEOF NO ONE,
CONFIG REWRITE, CLIENT KILL TYPE normal, CLIENT KILL TYPE pubsub, EXEC), point the other replica at
it, and the writer must get through again. Writes are asynchronous, so only what the replication
guarantees is asserted: every write acknowledged before a `WAIT 2` fence survives, and so does every
write the new master acknowledged. Waiting is polling with a deadline, never sleeping.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time

import pytest
import redis
from redis.sentinel import Sentinel

from tests.servers import ServerProcess, free_port, start_shardis

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

REDIS_SENTINEL = shutil.which("redis-sentinel")
SERVICE = "mymaster"


def _poll(predicate, timeout: float, what: str, logs=()):
    """Poll until `predicate()` is truthy; on timeout fail with the logs that tell why."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except (redis.ConnectionError, redis.TimeoutError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {name}:\n{text()}" for name, text in logs)
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{tails}")
        time.sleep(0.05)  # polling interval, not synchronisation


def _start_node(*extra: str) -> ServerProcess:
    """A Shardis started from a config file of its own, so that CONFIG REWRITE has one to rewrite."""
    workdir = tempfile.mkdtemp(prefix="shardis-sentinel-")
    config_file = os.path.join(workdir, "shardis.conf")
    with open(config_file, "w") as f:
        f.write('appendonly no\nsave ""\n')
    return start_shardis(*extra, shards=2, workdir=workdir, config_file=config_file)


class _Sentinel:
    """A redis-sentinel process monitoring `SERVICE` alone (quorum 1), with its log file."""

    def __init__(self, master_port: int) -> None:
        self.port = free_port()
        self.workdir = tempfile.mkdtemp(prefix="sentinel-test-")
        self.log_path = os.path.join(self.workdir, "sentinel.log")
        config = os.path.join(self.workdir, "sentinel.conf")
        with open(config, "w") as f:
            f.write(f"port {self.port}\nbind 127.0.0.1\ndir {self.workdir}\n"
                    f"logfile {self.log_path}\nloglevel verbose\n"
                    f"sentinel monitor {SERVICE} 127.0.0.1 {master_port} 1\n"
                    f"sentinel down-after-milliseconds {SERVICE} 2000\n"
                    f"sentinel failover-timeout {SERVICE} 10000\n"
                    f"sentinel parallel-syncs {SERVICE} 1\n")
        self.proc = subprocess.Popen([REDIS_SENTINEL, config], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT, cwd=self.workdir)
        self.client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5,
                                  decode_responses=True)

    def log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-6000:]
        except OSError:
            return "(no log)"

    def master_port(self) -> int:
        return int(self.client.execute_command("SENTINEL", "get-master-addr-by-name", SERVICE)[1])

    def replicas(self) -> list[dict]:
        return self.client.execute_command("SENTINEL", "replicas", SERVICE)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class _Writer(threading.Thread):
    """SET w:<n> n in sequence through the Sentinel-managed master; retries n until it is acked."""

    def __init__(self, master: redis.Redis) -> None:
        super().__init__(daemon=True)
        self.master = master
        self.acked: list[int] = []
        self.errors: list[str] = []
        self.done = threading.Event()

    def run(self) -> None:
        seq = 0
        while not self.done.is_set():
            seq += 1
            while not self.done.is_set():
                try:
                    self.master.set(f"w:{seq}", seq)
                except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError) as exc:
                    self.errors.append(type(exc).__name__)  # the master is down or not promoted yet
                    self.done.wait(0.05)                   # back off, then retry the same write
                    continue
                self.acked.append(seq)
                break
            self.done.wait(0.002)  # pace the load: the failover, not the throughput, is tested


def _replication(port: int) -> dict:
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5).info("replication")


def _follows(port: int, master_port: int) -> bool:
    found = _replication(port)
    return (found["role"] == "slave" and found["master_port"] == master_port
            and found["master_link_status"] == "up")


def _healthy_replicas(sentinel: _Sentinel) -> bool:
    found = sentinel.replicas()
    return len(found) == 2 and all(
        r["flags"] == "slave" and r["role-reported"] == "slave" and r["master-link-status"] == "ok"
        for r in found)


@pytest.mark.slow
@pytest.mark.skipif(REDIS_SENTINEL is None, reason="redis-sentinel is not installed "
                    "(CI installs it: apt-get install redis-sentinel)")
def test_sentinel_fails_over_to_a_replica_and_writes_continue():
    started: list[ServerProcess] = []
    sentinel = None
    writer = None
    try:
        master = _start_node()
        started.append(master)
        for _ in range(2):
            started.append(_start_node("--replicaof", "127.0.0.1", str(master.port)))
        replicas = started[1:]
        logs = [(s.name + str(s.port), s.log) for s in started]
        for replica in replicas:
            _poll(lambda port=replica.port: _replication(port)["master_link_status"] == "up", 15,
                  f"replica {replica.port} linked", logs)

        sentinel = _Sentinel(master.port)
        logs.append(("sentinel", sentinel.log))
        _poll(lambda: _healthy_replicas(sentinel), 15, "sentinel to see both replicas", logs)

        watcher = Sentinel([("127.0.0.1", sentinel.port)], socket_timeout=0.5)
        writer = _Writer(watcher.master_for(SERVICE, socket_timeout=0.5,
                                            socket_connect_timeout=0.5))
        writer.start()
        _poll(lambda: len(writer.acked) >= 50, 10, "writes to the first master", logs)

        # Fence: every write acknowledged before this SET is in both replicas once WAIT says 2.
        fenced = list(writer.acked)
        direct = redis.Redis(host="127.0.0.1", port=master.port, socket_timeout=10)
        direct.set("fence", 1)
        assert direct.wait(2, 5000) == 2
        master.proc.kill()
        master.proc.wait(5)

        new_port = _poll(lambda: sentinel.master_port() != master.port and sentinel.master_port(),
                         30, "sentinel to switch the master", logs)
        switched = len(writer.acked)
        promoted = next(s for s in replicas if s.port == new_port)
        follower = next(s for s in replicas if s.port != new_port)
        assert _replication(promoted.port)["role"] == "master"
        _poll(lambda: _follows(follower.port, new_port), 20,
              "the other replica to follow the new master", logs)
        _poll(lambda: len(writer.acked) >= switched + 50, 15,
              "writes through the Sentinel client to the new master", logs)
        writer.done.set()
        writer.join(10)
        assert not writer.is_alive()
        assert sentinel.master_port() == new_port, "a second failover happened\n" + sentinel.log()

        new_master = redis.Redis(host="127.0.0.1", port=promoted.port, socket_timeout=10)
        role = new_master.execute_command("ROLE")
        assert role[0] == b"master"
        assert [int(port) for _ip, port, _off in role[2]] == [follower.port]
        with pytest.raises(redis.ReadOnlyError):
            redis.Redis(host="127.0.0.1", port=follower.port, socket_timeout=5).set("x", 1)

        must_survive = fenced + writer.acked[switched:]
        values = new_master.mget([f"w:{n}" for n in must_survive])
        missing = [n for n, v in zip(must_survive, values) if v != str(n).encode()]
        assert not missing, f"acknowledged writes lost: {missing[:20]}"
        assert new_master.get("fence") == b"1"
        window = writer.acked[len(fenced):switched]
        window_values = new_master.mget([f"w:{n}" for n in window]) if window else []
        print(f"failover: {len(writer.acked)} writes acked, {len(writer.errors)} retried errors, "
              f"{sum(v is None for v in window_values)} of {len(window)} acked in the async "
              f"window were lost")

        # The follower converges on the new master's exact dataset.
        follower_client = redis.Redis(host="127.0.0.1", port=follower.port, socket_timeout=10)
        _poll(lambda: _replication(follower.port)["slave_repl_offset"]
              == _replication(promoted.port)["master_repl_offset"], 15, "the follower to catch up",
              logs)
        assert follower_client.execute_command("DEBUG", "DIGEST") == \
            new_master.execute_command("DEBUG", "DIGEST")

        # Sentinel's CONFIG REWRITE persisted both new roles in the config files.
        def config_text(server: ServerProcess) -> str:
            with open(os.path.join(server.workdir, "shardis.conf")) as f:
                return f.read()
        assert "replicaof" not in config_text(promoted)
        assert f"replicaof 127.0.0.1 {new_port}" in config_text(follower)
    finally:
        if writer is not None:
            writer.done.set()
            writer.join(5)
        if sentinel is not None:
            sentinel.stop()
            shutil.rmtree(sentinel.workdir, ignore_errors=True)
        for server in started:
            server.stop()  # also closes the log of the killed master
            shutil.rmtree(server.workdir, ignore_errors=True)
