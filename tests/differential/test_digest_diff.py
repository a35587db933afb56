"""keyspace.digest against DEBUG DIGEST / DIGEST-VALUE of a real redis-server 7.0.

Random datasets (all five types, both small and large encodings, expiries, several
databases) are written to the server, read back with redis-py, and digested locally.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
from collections import deque
from collections.abc import Iterator

import pytest

from keyspace.digest import EMPTY_DIGEST_HEX, dataset_digest, digest_value_replies

redis = pytest.importorskip("redis")

pytestmark = [
    pytest.mark.differential,
    pytest.mark.timeout(60),
    pytest.mark.skipif(
        shutil.which("redis-server") is None, reason="redis-server not found on PATH"
    ),
]

DATABASES = (0, 1, 7, 15)
FAR_EXPIRE_MS = 3_600_000
SCORE_POOL = (
    0.0,
    -0.0,
    1.0,
    -1.0,
    3.0,
    0.1,
    -2.5,
    1 / 3,
    2.5e-5,
    1e-300,
    1e300,
    -1.7976931348623157e308,
    123456789012345678.0,
    2.0**53 + 2,
    float("inf"),
    float("-inf"),
)


class ReadZSet:
    """A sorted set as read back from Redis, shaped like the keyspace's (``scores``)."""

    def __init__(self, scores: dict[bytes, float]) -> None:
        self.scores = scores


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    """A throwaway redis-server with DEBUG enabled; stopped by pid afterwards."""
    port = _free_port()
    process = subprocess.Popen(
        [
            shutil.which("redis-server") or "redis-server",
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--enable-debug-command", "local",
            "--loglevel", "notice",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        # Wait for the server's own readiness line rather than polling with sleeps.
        for line in process.stdout:
            if "Ready to accept connections" in line:
                break
        else:
            pytest.fail(f"redis-server exited early with code {process.wait()}")
        process.stdout.close()
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture()
def clients(server: int) -> Iterator[dict[int, "redis.Redis"]]:
    by_db = {db: redis.Redis(port=server, db=db, protocol=2) for db in DATABASES}
    by_db[0].flushall()
    yield by_db
    for client in by_db.values():
        client.close()


def _random_bytes(rng: random.Random) -> bytes:
    kind = rng.randrange(5)
    if kind == 0:
        return str(rng.randint(-10**12, 10**12)).encode()  # int-encoded in Redis
    if kind == 1:
        return b""
    if kind == 2:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 12)))
    if kind == 3:
        return b"x" * rng.randint(60, 80)  # beyond listpack value limits
    return rng.choice([b"a", b"b", b"c", b"foo", b"bar", b"0", b"-1", b"007"]) + str(
        rng.randrange(1000)
    ).encode()


def _members(rng: random.Random, small: bool) -> list[bytes]:
    count = rng.randint(1, 6) if small else rng.randint(130, 200)
    return list({_random_bytes(rng) for _ in range(count)}) or [b"only"]


def _populate(rng: random.Random, clients: dict[int, "redis.Redis"], keys_per_db: int) -> None:
    for db, client in clients.items():
        if rng.random() < 0.2:
            continue  # an empty database must not be mixed in
        pipe = client.pipeline(transaction=False)
        for index in range(keys_per_db):
            key = b"k%d:" % index + _random_bytes(rng)
            small = rng.random() < 0.75
            kind = rng.randrange(6)
            if kind == 0:
                pipe.set(key, _random_bytes(rng))
            elif kind == 1:
                pipe.rpush(key, *[_random_bytes(rng) for _ in range(4 if small else 150)])
            elif kind == 2:
                pipe.sadd(key, *_members(rng, small))
            elif kind == 3:
                integers = {str(rng.randint(-500, 500)).encode() for _ in range(5)}
                pipe.sadd(key, *integers)  # intset encoding
            elif kind == 4:
                pipe.hset(key, mapping={m: _random_bytes(rng) for m in _members(rng, small)})
            else:
                scores = {m: rng.choice(SCORE_POOL) for m in _members(rng, small)}
                pipe.zadd(key, {m: repr(s) for m, s in scores.items()})
            if rng.random() < 0.3:
                pipe.pexpire(key, FAR_EXPIRE_MS)
        pipe.execute()


def _read_value(client: "redis.Redis", key: bytes) -> object:
    kind = client.type(key)
    if kind == b"string":
        return client.get(key)
    if kind == b"list":
        return deque(client.lrange(key, 0, -1))
    if kind == b"set":
        return set(client.smembers(key))
    if kind == b"hash":
        return dict(client.hgetall(key))
    if kind == b"zset":
        return ReadZSet(dict(client.zrange(key, 0, -1, withscores=True)))
    raise AssertionError(f"unexpected type {kind!r}")


def _read_back(clients: dict[int, "redis.Redis"]) -> list[tuple[int, bytes, object, int | None]]:
    items: list[tuple[int, bytes, object, int | None]] = []
    for db, client in clients.items():
        for key in client.scan_iter(count=500):
            ttl = client.pttl(key)
            items.append((db, key, _read_value(client, key), ttl if ttl > 0 else None))
    return items


def _server_digest(client: "redis.Redis") -> str:
    reply = client.execute_command("DEBUG", "DIGEST")
    return reply.decode() if isinstance(reply, bytes) else reply


@pytest.mark.parametrize("seed", range(6))
def test_random_dataset_digest_matches(seed: int, clients: dict[int, "redis.Redis"]) -> None:
    _populate(random.Random(seed), clients, keys_per_db=25)
    items = _read_back(clients)
    assert items, "the generator should have written something"
    assert dataset_digest(items) == _server_digest(clients[0])
    assert dataset_digest(reversed(items)) == _server_digest(clients[0])


@pytest.mark.parametrize("seed", range(3))
def test_random_digest_values_match(seed: int, clients: dict[int, "redis.Redis"]) -> None:
    _populate(random.Random(1000 + seed), clients, keys_per_db=20)
    items = _read_back(clients)
    for db, client in clients.items():
        mine = [(key, value, expire) for item_db, key, value, expire in items if item_db == db]
        keys = [key for key, _, _ in mine] + [b"no-such-key"]
        expected = digest_value_replies(
            [value for _, value, _ in mine] + [None], [expire for _, _, expire in mine] + [None]
        )
        replies = client.execute_command("DEBUG", "DIGEST-VALUE", *keys)
        assert [r.decode() if isinstance(r, bytes) else r for r in replies] == expected
        assert expected[-1] == EMPTY_DIGEST_HEX


def test_empty_server_digest(clients: dict[int, "redis.Redis"]) -> None:
    assert dataset_digest([]) == _server_digest(clients[0]) == EMPTY_DIGEST_HEX


def test_integer_encoded_string_digests_like_its_text(clients: dict[int, "redis.Redis"]) -> None:
    clients[0].set(b"n", b"-9223372036854775808")
    clients[0].set(b"raw", b"12.50")
    assert clients[0].object("encoding", b"n") == b"int"
    items = _read_back(clients)
    assert dataset_digest(items) == _server_digest(clients[0])
