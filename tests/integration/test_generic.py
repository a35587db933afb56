"""Generic keyspace commands on Shardis alone: expiry without access, SCAN under concurrent changes,
RANDOMKEY over expired keys and over every shard. Waiting is by polling with a deadline.
"""

from __future__ import annotations

import pytest

from tests.conftest import make_client, shardis_server
from tests.integration.test_strings import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture(params=[3, 2], ids=["resp3", "resp2"])
def r4(request):
    """A client of a 4-shard Shardis, flushed before the test."""
    client = make_client(shardis_server(4), request.param)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def no_active_expiry(r):
    """Turn the active expiry cycle off for one test, so expired keys stay until touched."""
    r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
    yield r
    r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "1")


def test_ttl_follows_renames_moves_and_copies(r):
    """The deadline travels with the value, and the active cycle finds it under the new name."""
    for name in ("renamed", "renamenx", "moved", "copied"):
        r.execute_command("SET", name, "v", "PX", "60")
    r.execute_command("RENAME", "renamed", "renamed:new")
    r.execute_command("RENAMENX", "renamenx", "renamenx:new")
    r.execute_command("MOVE", "moved", "5")
    r.execute_command("COPY", "copied", "copied:new", "DB", "6")
    r.execute_command("SET", "keep", "v")
    wait_until(lambda: r.dbsize() == 1, what="expiry in db 0")
    for db in (5, 6):
        r.execute_command("SELECT", db)
        wait_until(lambda: r.dbsize() == 0, what=f"expiry in db {db}")


def test_persist_and_plain_set_cancel_active_expiry(r):
    r.execute_command("SET", "persisted", "v", "PX", "30")
    r.execute_command("PERSIST", "persisted")
    r.execute_command("SET", "overwritten", "v", "PX", "30")
    r.execute_command("SET", "overwritten", "w")
    r.execute_command("SET", "marker", "v", "PX", "60")  # expires after the other two deadlines
    wait_until(lambda: r.exists("marker") == 0 and r.dbsize() == 2, what="marker expiry")
    assert r.mget("persisted", "overwritten") == [b"v", b"w"]


def test_expire_options_on_live_keys(r):
    r.set("k", "v")
    assert r.execute_command("PEXPIRE", "k", "100000", "NX") == 1
    assert r.execute_command("PEXPIRE", "k", "50", "GT") == 0
    assert r.execute_command("PEXPIRE", "k", "50", "LT") == 1
    wait_until(lambda: r.dbsize() == 0, what="LT-shortened key to expire")


def test_keys_and_scan_skip_expired_keys(no_active_expiry):
    r = no_active_expiry
    r.execute_command("SET", "dead", "v", "PXAT", "1")
    r.set("alive", "v")
    assert r.keys("*") == [b"alive"]
    cursor, page = r.scan(0, count=100)
    assert cursor == 0 and page == [b"alive"]
    assert r.dbsize() == 2  # neither deleted it


def test_randomkey_finds_the_live_key_among_many_expired(no_active_expiry):
    r = no_active_expiry
    pipe = r.pipeline(transaction=False)
    for i in range(500):
        pipe.execute_command("SET", f"dead{i}", "v", "PXAT", "1")
    pipe.execute()
    r.set("alive", "v")
    assert r.randomkey() == b"alive"
    assert r.dbsize() < 501  # the expired keys it met were deleted on the way


def test_randomkey_nil_when_everything_expired(no_active_expiry):
    r = no_active_expiry
    for i in range(150):
        r.execute_command("SET", f"dead{i}", "v", "PXAT", "1")
    assert r.randomkey() is None
    assert r.dbsize() == 0


def test_randomkey_reaches_every_shard(r4):
    keys = {f"rk{i}".encode() for i in range(16)}
    r4.mset({k: 1 for k in keys})
    seen: set = set()
    pipe = r4.pipeline(transaction=False)
    for _ in range(600):
        pipe.randomkey()
    seen.update(pipe.execute())
    assert seen == keys


@pytest.mark.parametrize("shards", [1, 4])
def test_scan_returns_keys_present_throughout(shards):
    """Keys that exist for the whole iteration are returned, whatever else is added or removed."""
    client = make_client(shardis_server(shards), 2)
    client.flushall()
    stable = {f"stable:{i}".encode() for i in range(300)}
    client.mset({k: 1 for k in stable})
    client.mset({f"doomed:{i}": 1 for i in range(300)})
    found: list = []
    cursor, step = 0, 0
    while True:
        cursor, page = client.scan(cursor, count=20)
        found.extend(page)
        # change the keyspace between pages
        client.delete(*[f"doomed:{i}" for i in range(step * 10, step * 10 + 10)])
        client.mset({f"new:{step}:{i}": 1 for i in range(10)})
        step += 1
        if cursor == 0:
            break
        assert step < 1000, "SCAN did not terminate"
    assert stable <= set(found)
    assert not any(k.startswith(b"doomed:") and int(k[7:]) < 10 for k in found[20:]), \
        "a key deleted before the scan reached it was returned"
    client.close()


def test_scan_count_bounds_pages(r4):
    r4.mset({f"k{i}": 1 for i in range(100)})
    cursor, pages = 0, 0
    total = set()
    while True:
        cursor, page = r4.scan(cursor, count=7)
        assert len(page) <= 7
        total.update(page)
        pages += 1
        if cursor == 0:
            break
    assert len(total) == 100 and pages >= 100 // 7


def test_object_idletime_and_refcount(r):
    r.set("k", "hello")
    assert r.execute_command("OBJECT", "IDLETIME", "k") == 0
    r.set("n", "42")
    assert r.execute_command("OBJECT", "REFCOUNT", "n") == 2147483647
    r.execute_command("COPY", "n", "n2")
    assert r.execute_command("OBJECT", "REFCOUNT", "n2") == 1
    assert r.execute_command("OBJECT", "ENCODING", "n2") == b"int"
