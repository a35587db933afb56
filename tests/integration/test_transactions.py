"""MULTI/EXEC/WATCH under concurrency and in the write stream, against real Shardis processes.

- Transfers: threads of redis-py clients move amounts between counters spread over the shards with
  WATCH/GET/MULTI/SET/EXEC (half through `pipeline()`, half through `Redis.transaction()`),
  retrying on WatchError. The total is conserved (a lost update would change it), and every
  successful EXEC applied exactly once (each transfer also INCRs a version counter next to each of
  its two counters: the versions add up to twice the successful EXECs). Meanwhile readers (MGET
  across shards, and MULTI/GET.../EXEC) must never see a transfer half done. Run with 1, 4 and 16
  shards, each on its own server.
- The write stream: with `appendfsync always`, a transaction's effects are in the INCR file,
  wrapped in MULTI ... EXEC, by the time EXEC's reply arrives; a restart (with another shard count)
  loads them.

Everything is bounded: thread joins and socket operations have timeouts.
"""

from __future__ import annotations

import random
import threading
from pathlib import Path

import pytest
import redis

from keyspace.routing import ShardMap
from tests.servers import start_shardis

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

WRITERS = 16
TRANSFERS = 150
COUNTERS_PER_SHARD = 4
START_BALANCE = 1000


def _counters() -> list[str]:
    """Counter keys, COUNTERS_PER_SHARD on each shard of 4 (so some transfers stay on one shard,
    most cross shards). `{name}` is a hash tag: the version key `{name}:v` lives with it."""
    shard_map = ShardMap(4)
    per_shard: dict[int, list[str]] = {s: [] for s in range(4)}
    i = 0
    while any(len(v) < COUNTERS_PER_SHARD for v in per_shard.values()):
        key = f"{{acct{i}}}"
        bucket = per_shard[shard_map.shard_of(key.encode())]
        if len(bucket) < COUNTERS_PER_SHARD:
            bucket.append(key)
        i += 1
    return [key for s in range(4) for key in per_shard[s]]


COUNTERS = _counters()
TOTAL = START_BALANCE * len(COUNTERS)


def _version(key: str) -> str:
    return key + ":v"


def _client(server) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=20)


class Outcome:
    """What the threads report; errors are collected instead of lost in a thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.successes = 0
        self.aborts = 0
        self.reads = 0
        self.torn_reads: list = []
        self.errors: list[BaseException] = []


def _transfer_with_pipeline(client: redis.Redis, src: str, dst: str, amount: int,
                            outcome: Outcome) -> None:
    while True:
        with client.pipeline() as pipe:
            pipe.watch(src, dst)
            a, b = int(pipe.get(src)), int(pipe.get(dst))
            pipe.multi()
            pipe.set(src, a - amount)
            pipe.set(dst, b + amount)
            pipe.incr(_version(src))
            pipe.incr(_version(dst))
            try:
                pipe.execute()
            except redis.WatchError:
                with outcome.lock:
                    outcome.aborts += 1
                continue
        with outcome.lock:
            outcome.successes += 1
        return


def _transfer_with_transaction(client: redis.Redis, src: str, dst: str, amount: int,
                               outcome: Outcome) -> None:
    attempts = []

    def body(pipe) -> None:
        attempts.append(1)
        a, b = int(pipe.get(src)), int(pipe.get(dst))
        pipe.multi()
        pipe.set(src, a - amount)
        pipe.set(dst, b + amount)
        pipe.incr(_version(src))
        pipe.incr(_version(dst))

    client.transaction(body, src, dst)
    with outcome.lock:
        outcome.successes += 1
        outcome.aborts += len(attempts) - 1


def _writer(server, index: int, outcome: Outcome) -> None:
    try:
        client = _client(server)
        rng = random.Random(index)
        transfer = _transfer_with_pipeline if index % 2 else _transfer_with_transaction
        for _ in range(TRANSFERS):
            src, dst = rng.sample(COUNTERS, 2)
            transfer(client, src, dst, rng.randint(1, 50), outcome)
        client.close()
    except BaseException as exc:  # noqa: BLE001 - reported by the test
        with outcome.lock:
            outcome.errors.append(exc)


def _reader(server, use_multi: bool, done: threading.Event, outcome: Outcome) -> None:
    try:
        client = _client(server)
        while not done.is_set():
            if use_multi:
                with client.pipeline(transaction=True) as pipe:
                    for key in COUNTERS:
                        pipe.get(key)
                    values = pipe.execute()
            else:
                values = client.mget(COUNTERS)
            total = sum(int(v) for v in values)
            with outcome.lock:
                outcome.reads += 1
                if total != TOTAL and len(outcome.torn_reads) < 5:
                    outcome.torn_reads.append((use_multi, values))
        client.close()
    except BaseException as exc:  # noqa: BLE001 - reported by the test
        with outcome.lock:
            outcome.errors.append(exc)


@pytest.mark.slow
@pytest.mark.parametrize("shards", [1, 4, 16])
def test_concurrent_transfers_conserve_the_total_and_readers_never_see_half(shards):
    server = start_shardis(shards=shards)
    try:
        setup = _client(server)
        setup.mset({key: START_BALANCE for key in COUNTERS})
        outcome = Outcome()
        done = threading.Event()
        readers = [threading.Thread(target=_reader, args=(server, use_multi, done, outcome),
                                    daemon=True) for use_multi in (False, True)]
        writers = [threading.Thread(target=_writer, args=(server, i, outcome), daemon=True)
                   for i in range(WRITERS)]
        for thread in readers + writers:
            thread.start()
        for thread in writers:
            thread.join(60)
        done.set()
        for thread in readers:
            thread.join(20)
        assert not any(t.is_alive() for t in readers + writers), "threads did not finish"
        assert not outcome.errors, outcome.errors[:3]

        assert outcome.successes == WRITERS * TRANSFERS
        values = setup.mget(COUNTERS)
        assert sum(int(v) for v in values) == TOTAL, values
        versions = setup.mget([_version(k) for k in COUNTERS])
        assert sum(int(v or 0) for v in versions) == 2 * outcome.successes
        assert outcome.reads > 0
        assert not outcome.torn_reads, f"readers saw a transfer half done: {outcome.torn_reads}"
        setup.close()
    finally:
        code = server.stop()
    assert code == 0, server.log()


# -- the write stream ------------------------------------------------------------------------------------

def _incr_commands(workdir: str) -> list[list[bytes]]:
    """Every command of the INCR files under workdir/appendonlydir, in order (RESP arrays of bulk
    strings, which is all an AOF holds)."""
    files = sorted(Path(workdir, "appendonlydir").glob("*.incr.aof"),
                   key=lambda p: int(p.name.split(".")[-3]))
    data = b"".join(p.read_bytes() for p in files)
    commands, pos = [], 0
    while pos < len(data):
        assert data[pos:pos + 1] == b"*", data[pos:pos + 40]
        end = data.index(b"\r\n", pos)
        count, pos = int(data[pos + 1:end]), end + 2
        argv = []
        for _ in range(count):
            end = data.index(b"\r\n", pos)
            size = int(data[pos + 1:end])
            argv.append(data[end + 2:end + 2 + size])
            pos = end + 2 + size + 2
        commands.append(argv)
    return commands


def _without_selects(commands):
    return [argv for argv in commands if argv[0].upper() != b"SELECT"]


def test_transactions_enter_the_aof_wrapped_in_multi_exec_and_survive_a_restart(tmp_path):
    a, b, c, d = ShardMap(4).sample_keys("k", 4)
    same1, same2 = "{t}1", "{t}2"
    workdir = str(tmp_path)
    server = start_shardis("--appendonly", "yes", "--appendfsync", "always", shards=4,
                           workdir=workdir)
    try:
        client = _client(server)
        with client.pipeline() as pipe:   # keys on four shards: the loop runs it, shards parked
            assert pipe.set(a, "1").set(b, "2").incr(c).rpush(d, "x", "y").execute() == \
                [True, True, 1, 2]
        # appendfsync always: the effects are on disk before the reply
        assert _without_selects(_incr_commands(workdir)) == [
            [b"MULTI"], [b"SET", a.encode(), b"1"], [b"SET", b.encode(), b"2"],
            [b"INCRBY", c.encode(), b"1"], [b"RPUSH", d.encode(), b"x", b"y"], [b"EXEC"]]

        with client.pipeline() as pipe:   # one shard: one entry in its batch
            pipe.set(same1, "s1").get(same1).set(same2, "s2").execute()
        with client.pipeline() as pipe:   # one effect: not wrapped
            pipe.get(a).set(a, "single").get(b).execute()
        with client.pipeline() as pipe:   # reads only: nothing
            pipe.get(a).mget(a, b, c).execute()
        with client.pipeline() as pipe:   # a runtime error: the other effects, wrapped
            results = pipe.set(b, "B").incr(d).set(c, "C").execute(raise_on_error=False)
            assert isinstance(results[1], redis.ResponseError)
        with client.pipeline() as pipe:   # aborted by WATCH: nothing
            pipe.watch(a)
            client.set(same1, "intruder-other-key")
            _client(server).set(a, "intruder")
            pipe.multi()
            pipe.set(a, "aborted").set(b, "aborted")
            with pytest.raises(redis.WatchError):
                pipe.execute()
        with client.pipeline() as pipe:   # EXECABORT: nothing
            pipe.set(a, "execabort").execute_command("NOSUCHCOMMAND")
            with pytest.raises(redis.ResponseError):
                pipe.execute()
        assert _without_selects(_incr_commands(workdir))[6:] == [
            [b"MULTI"], [b"SET", b"{t}1", b"s1"], [b"SET", b"{t}2", b"s2"], [b"EXEC"],
            [b"SET", a.encode(), b"single"],
            [b"MULTI"], [b"SET", b.encode(), b"B"], [b"SET", c.encode(), b"C"], [b"EXEC"],
            [b"SET", b"{t}1", b"intruder-other-key"], [b"SET", a.encode(), b"intruder"]]
        expected = {a: b"intruder", b: b"B", c: b"C", same1: b"intruder-other-key",
                    same2: b"s2"}
        assert dict(zip(expected, client.mget(list(expected)))) == expected
        assert client.lrange(d, 0, -1) == [b"x", b"y"]
        client.close()
    finally:
        code = server.stop()
    assert code == 0, server.log()

    server = start_shardis("--appendonly", "yes", shards=16, workdir=workdir)
    try:
        client = _client(server)
        assert dict(zip(expected, client.mget(list(expected)))) == expected
        assert client.lrange(d, 0, -1) == [b"x", b"y"]
        assert client.dbsize() == len(expected) + 1
        client.close()
    finally:
        code = server.stop()
    assert code == 0, server.log()
