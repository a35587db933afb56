"""String commands on Shardis alone: behaviour that a byte-for-byte comparison with Redis cannot show.

Expiry that happens without any access (the active cycle), atomicity under concurrent clients, large
values. Waiting is done by polling with a deadline, never by sleeping a fixed time.
"""

from __future__ import annotations

import threading
import time

import pytest

from tests.conftest import make_client, shardis_server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture(params=[3, 2], ids=["resp3", "resp2"])
def r4(request):
    """A client of a 4-shard Shardis, flushed before the test."""
    client = make_client(shardis_server(4), request.param)
    client.flushall()
    yield client
    client.close()


def wait_until(predicate, timeout: float = 5.0, what: str = "condition"):
    """Poll `predicate` until it returns a truthy value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)  # polling interval


def test_active_expiry_deletes_untouched_keys(r):
    pipe = r.pipeline(transaction=False)
    for db in (0, 3):
        pipe.execute_command("SELECT", db)
        for i in range(100):
            pipe.execute_command("SET", f"k{i}", "v", "PX", "50")
        pipe.execute_command("SET", "stays", "v")
    pipe.execute_command("SELECT", "0")
    pipe.execute_command("DBSIZE")
    assert pipe.execute()[-1] == 101
    # DBSIZE never expires anything itself, so only the active cycle can bring it down.
    wait_until(lambda: r.dbsize() == 1, what="active expiry in db 0")
    r.execute_command("SELECT", "3")
    wait_until(lambda: r.dbsize() == 1, what="active expiry in db 3")
    assert r.get("stays") == b"v"


def test_active_expiry_across_shards(r4):
    r4.mset({f"key:{i}": i for i in range(200)})
    for i in range(0, 200, 2):
        r4.pexpire(f"key:{i}", 40)
    wait_until(lambda: r4.dbsize() == 100, what="active expiry on every shard")
    assert r4.exists(*[f"key:{i}" for i in range(1, 200, 2)]) == 100


def test_expiring_options_reach_the_active_cycle(r):
    """Every way of setting a TTL on a string leads to deletion without access."""
    r.execute_command("SET", "set-px", "v", "PX", "40")
    r.execute_command("SET", "set-pxat", "v", "PXAT", int(time.time() * 1000) + 40)
    r.execute_command("PSETEX", "psetex", "40", "v")
    r.execute_command("SET", "getex", "v")
    r.execute_command("GETEX", "getex", "PX", "40")
    r.execute_command("SET", "keepttl", "v", "PX", "40")
    r.execute_command("SET", "keepttl", "w", "KEEPTTL")
    r.execute_command("SET", "incr", "1", "PX", "40")
    r.execute_command("INCR", "incr")
    r.execute_command("SET", "append", "a", "PX", "40")
    r.execute_command("APPEND", "append", "b")
    r.execute_command("SET", "persisted", "v", "PX", "40")
    r.execute_command("GETEX", "persisted", "PERSIST")
    r.execute_command("SET", "plain", "v", "PX", "40")
    r.execute_command("SET", "plain", "w")  # a plain SET drops the TTL
    wait_until(lambda: r.dbsize() == 2, what="expiry of every timed key")
    assert sorted(r.keys("*")) == [b"persisted", b"plain"]


def test_lazy_expiry_with_active_cycle_off(r):
    r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
    try:
        r.execute_command("SET", "gone", "v", "PXAT", "1")
        r.execute_command("SET", "live", "v")
        assert r.dbsize() == 2          # still stored: nothing touched it
        assert r.keys("*") == [b"live"]  # KEYS skips it without deleting
        assert r.dbsize() == 2
        assert r.get("gone") is None     # a read deletes it
        assert r.dbsize() == 1
    finally:
        r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "1")


def test_ttl_counts_down(r):
    r.execute_command("SET", "k", "v", "EX", "100")
    first = r.pttl("k")
    assert 99_000 < first <= 100_000
    wait_until(lambda: r.pttl("k") < first, what="PTTL to decrease")
    assert r.ttl("k") == 100


def _hammer(client_factory, threads: int, rounds: int, command: tuple) -> None:
    errors: list = []

    def work():
        client = client_factory()
        try:
            for _ in range(rounds):
                client.execute_command(*command)
        except Exception as exc:  # reported below, in the test thread
            errors.append(exc)
        finally:
            client.close()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(30)
    assert not errors, errors


@pytest.mark.parametrize("shards", [1, 4])
def test_concurrent_increments_are_not_lost(shards):
    server = shardis_server(shards)
    client = make_client(server, 2)
    client.flushall()
    factory = lambda: make_client(server, 2)  # noqa: E731
    _hammer(factory, 8, 200, ("INCR", "counter"))
    _hammer(factory, 4, 100, ("INCRBYFLOAT", "float", "0.5"))
    _hammer(factory, 4, 100, ("APPEND", "log", "x"))
    assert client.get("counter") == b"1600"
    assert client.get("float") == b"200"
    assert client.strlen("log") == 400
    client.close()


def test_mset_is_atomic_across_shards(r4):
    """A reader never sees half of an MSET whose keys live on different shards."""
    keys = [f"atomic:{i}" for i in range(16)]
    r4.mset({k: 0 for k in keys})
    stop = threading.Event()
    torn: list = []

    def read():
        client = make_client(shardis_server(4), 2)
        try:
            while not stop.is_set():
                values = client.mget(keys)
                if len(set(values)) != 1:
                    torn.append(values)
                    return
        finally:
            client.close()

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(1, 300):
            r4.mset({k: i for k in keys})
    finally:
        stop.set()
        reader.join(30)
    assert not torn, f"MGET saw a partial MSET: {torn[0]}"
    assert r4.mget(keys) == [b"299"] * 16


def test_large_values(r):
    big = bytes(range(256)) * 20_000  # 5 MB
    assert r.set("big", big)
    assert r.get("big") == big
    assert r.strlen("big") == len(big)
    assert r.append("big", b"tail") == len(big) + 4
    assert r.getrange("big", -4, -1) == b"tail"
    assert r.setrange("big", 10_000_000, b"!") == 10_000_001
    assert r.getrange("big", 9_999_999, -1) == b"\x00!"
    assert r.execute_command("OBJECT", "ENCODING", "big") == b"raw"
