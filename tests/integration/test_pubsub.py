"""Pub/Sub end to end, run side by side on Shardis and on a real redis-server 7.0.

Every scenario runs on both servers (the `target` parameter), so a test that passes on Redis and
fails on Shardis points at a Shardis bug, never at the test. redis-py 8 is used in RESP2 and RESP3
for the client API; the load tests (ordering, slow subscriber) use raw sockets and hiredis so that
the test client is not the bottleneck.
"""

from __future__ import annotations

import socket
import threading
import time

import hiredis
import pytest
import redis

from tests.conftest import make_client, redis_server, shardis_server
from tests.servers import start_redis, start_shardis

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


def _server(target: str, shards: int = 1):
    return shardis_server(shards) if target == "shardis" else redis_server()


@pytest.fixture(params=[("shardis", 3), ("shardis", 2), ("redis", 3), ("redis", 2)],
                ids=["shardis-resp3", "shardis-resp2", "redis-resp3", "redis-resp2"])
def client(request):
    target, protocol = request.param
    c = make_client(_server(target), protocol)
    c.flushall()
    yield c
    c.close()


def _is_shardis(c: redis.Redis) -> bool:
    return c.connection_pool.connection_kwargs["port"] != redis_server().port


def _message(p, timeout: float = 10.0):
    """The next message of a redis-py PubSub, waiting at most `timeout` (a bounded wait, not a sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = p.get_message(timeout=deadline - time.monotonic())
        if message is not None:
            return message
    raise AssertionError("no message within the timeout")


def _as_text(message: dict) -> dict:
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in message.items()}


# -- redis-py's PubSub API --------------------------------------------------------------------------

def test_subscribe_publish_unsubscribe(client):
    p = client.pubsub()
    p.subscribe("news", "sport")
    assert _as_text(_message(p)) == {"type": "subscribe", "pattern": None, "channel": "news", "data": 1}
    assert _as_text(_message(p)) == {"type": "subscribe", "pattern": None, "channel": "sport", "data": 2}
    p.psubscribe("n*")
    assert _as_text(_message(p))["data"] == 3
    assert client.publish("news", "hello") == 2
    assert _as_text(_message(p)) == {"type": "message", "pattern": None, "channel": "news",
                                     "data": "hello"}
    assert _as_text(_message(p)) == {"type": "pmessage", "pattern": "n*", "channel": "news",
                                     "data": "hello"}
    assert client.publish("nothing", "x") == 1
    assert _as_text(_message(p))["channel"] == "nothing"
    p.unsubscribe("news")
    assert _as_text(_message(p)) == {"type": "unsubscribe", "pattern": None, "channel": "news",
                                     "data": 2}
    p.punsubscribe()
    assert _as_text(_message(p))["data"] == 1
    assert client.publish("news", "gone") == 0
    assert client.publish("sport", "x") == 1
    assert _as_text(_message(p))["data"] == "x"
    p.close()


def test_sharded_pubsub(client):
    p = client.pubsub()
    p.ssubscribe("orders")
    assert _as_text(p.get_sharded_message(timeout=10)) == {
        "type": "ssubscribe", "pattern": None, "channel": "orders", "data": 1}
    assert client.spublish("orders", "o1") == 1
    assert client.publish("orders", "plain") == 0
    assert _as_text(p.get_sharded_message(timeout=10)) == {
        "type": "smessage", "pattern": None, "channel": "orders", "data": "o1"}
    assert client.pubsub_shardchannels() == [b"orders"]
    assert client.pubsub_shardnumsub("orders", "none") == [(b"orders", 1), (b"none", 0)]
    p.sunsubscribe("orders")
    assert _as_text(p.get_sharded_message(timeout=10))["type"] == "sunsubscribe"
    assert client.pubsub_shardchannels() == []
    p.close()


def test_pubsub_introspection(client):
    subs = [client.pubsub() for _ in range(3)]
    subs[0].subscribe("a", "b")
    subs[1].subscribe("a")
    subs[2].psubscribe("x*", "y*")
    subs[1].psubscribe("x*")
    for s, n in zip(subs, (2, 2, 2)):
        for _ in range(n):
            _message(s)
    assert sorted(client.pubsub_channels()) == [b"a", b"b"]
    assert client.pubsub_channels("b*") == [b"b"]
    assert client.pubsub_numsub("a", "b", "c") == [(b"a", 2), (b"b", 1), (b"c", 0)]
    assert client.pubsub_numpat() == 2
    for s in subs:
        s.close()


def test_handlers_run_in_a_thread(client):
    received = []
    done = threading.Event()

    def handler(message):
        received.append(message["data"])
        if len(received) == 20:
            done.set()

    p = client.pubsub(ignore_subscribe_messages=True)
    p.subscribe(jobs=handler)
    worker = p.run_in_thread(sleep_time=0.01, daemon=True)
    try:
        publisher = make_client(_server("shardis" if _is_shardis(client) else "redis"), 2)
        # The handler thread subscribes first; publish until the subscription counts it.
        for _ in range(1000):
            if publisher.pubsub_numsub("jobs")[0][1] == 1:
                break
        for i in range(20):
            assert publisher.publish("jobs", str(i)) == 1
        assert done.wait(10)
        assert received == [str(i).encode() for i in range(20)]
        publisher.close()
    finally:
        worker.stop()
        worker.join(5)
        p.close()


def test_keyspace_notifications_through_redis_py(client):
    client.config_set("notify-keyspace-events", "KEA")
    try:
        p = client.pubsub()
        p.psubscribe("__key*@0__:*")
        _message(p)
        client.set("k", "v")
        client.expire("k", 100)
        client.delete("k")
        got = [_as_text(_message(p)) for _ in range(6)]
        assert [(m["channel"], m["data"]) for m in got] == [
            ("__keyspace@0__:k", "set"), ("__keyevent@0__:set", "k"),
            ("__keyspace@0__:k", "expire"), ("__keyevent@0__:expire", "k"),
            ("__keyspace@0__:k", "del"), ("__keyevent@0__:del", "k")]
        p.close()
    finally:
        client.config_set("notify-keyspace-events", "")


def test_publish_follows_the_write_before_it():
    """PUBLISH after SET on one connection: whoever gets the message already sees the write."""
    for server in (shardis_server(4), redis_server()):
        writer = make_client(server, 2)
        reader = make_client(server, 2)
        p = make_client(server, 3).pubsub()
        p.subscribe("ready")
        _message(p)
        pipe = writer.pipeline(transaction=False)
        keys = [f"key:{i}" for i in range(200)]   # spread over the shards
        for i, key in enumerate(keys):
            pipe.set(key, i)
            pipe.publish("ready", key)
        pipe.execute()
        for i, key in enumerate(keys):
            message = _message(p)
            assert message["data"] == key.encode()
            assert reader.get(key) == str(i).encode()
        for c in (writer, reader):
            c.flushall()
            c.close()
        p.close()


# -- ordering under load -----------------------------------------------------------------------------

def _command(*args) -> bytes:
    parts = [a if isinstance(a, bytes) else str(a).encode() for a in args]
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


def _raw(port: int) -> tuple[socket.socket, hiredis.Reader]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    return sock, hiredis.Reader()


def _reply(sock: socket.socket, reader: hiredis.Reader):
    while True:
        value = reader.gets()
        if value is not False:
            return value
        data = sock.recv(1 << 20)
        if not data:
            raise ConnectionError("closed")
        reader.feed(data)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["shardis", "redis"])
def test_many_publishers_many_subscribers_keep_order(target):
    """4 publishers x 25k messages (100k), pipelined; 3 subscribers (channel, pattern, both: 4
    receivers). Each subscriber must see every message once per subscription, and each
    publisher's messages in order."""
    port = _server(target).port
    publishers, per_publisher = 4, 25_000
    subscriptions = [("SUBSCRIBE", "order"), ("PSUBSCRIBE", "ord*"), ("BOTH",)]
    subs = []
    for kind in subscriptions:
        sock, reader = _raw(port)
        if kind[0] == "BOTH":
            sock.sendall(_command("SUBSCRIBE", "order") + _command("PSUBSCRIBE", "o*"))
            _reply(sock, reader)
            _reply(sock, reader)
        else:
            sock.sendall(_command(*kind))
            _reply(sock, reader)
        subs.append((sock, reader, 2 if kind[0] == "BOTH" else 1))
    failures: list = []
    received = [0] * len(subs)

    def subscriber(index: int) -> None:
        sock, reader, copies = subs[index]
        last = [[-1] * publishers for _ in range(copies)]
        expected = publishers * per_publisher * copies
        n = 0
        while n < expected:
            value = _reply(sock, reader)
            copy = 0 if value[0] == b"message" else copies - 1
            who, seq = map(int, value[-1].split(b":"))
            if seq != last[copy][who] + 1:
                failures.append((index, who, seq, last[copy][who]))
                return
            last[copy][who] = seq
            n += 1
        received[index] = n

    def publisher(who: int) -> None:
        sock, reader = _raw(port)
        batch = 500
        for start in range(0, per_publisher, batch):
            sock.sendall(b"".join(_command("PUBLISH", "order", b"%d:%d" % (who, seq))
                                  for seq in range(start, start + batch)))
            for _ in range(batch):
                count = _reply(sock, reader)
                if count != 4:
                    failures.append(("receivers", who, count))
        sock.close()

    threads = [threading.Thread(target=subscriber, args=(i,)) for i in range(len(subs))]
    threads += [threading.Thread(target=publisher, args=(w,)) for w in range(publishers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(80)
    assert not any(t.is_alive() for t in threads), "timed out"
    assert not failures, failures[:5]
    assert received == [publishers * per_publisher * copies for _, _, copies in subs]
    for sock, _, _ in subs:
        sock.close()


# -- slow subscribers ----------------------------------------------------------------------------------

def _memory_kb(pid: int) -> dict[str, int]:
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(value.split()[0])
    return fields


@pytest.fixture(params=["shardis", "redis"])
def fresh(request):
    """A server of its own: the test changes limits and reads the process's peak RSS (VmHWM)."""
    server = start_shardis() if request.param == "shardis" else start_redis()
    yield server
    assert server.stop() == 0, server.log()


def _slow_subscriber(port: int, channel: str) -> socket.socket:
    """A subscriber with a tiny receive buffer that reads its confirmation and then nothing."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", port))
    sock.sendall(_command("SUBSCRIBE", channel))
    reader = hiredis.Reader()
    _reply(sock, reader)
    return sock


def _drained_until_closed(sock: socket.socket) -> int:
    """Read what the server had sent until it closed the connection; the bytes read."""
    total = 0
    try:
        while True:
            data = sock.recv(1 << 20)
            if not data:
                return total
            total += len(data)
    except ConnectionResetError:
        return total


@pytest.mark.slow
def test_slow_subscriber_hits_the_hard_limit(fresh):
    pub, reader = _raw(fresh.port)
    pub.sendall(_command("CONFIG", "SET", "client-output-buffer-limit", "pubsub 1mb 512kb 1"))
    assert _reply(pub, reader) == b"OK"
    slow = _slow_subscriber(fresh.port, "firehose")
    before = _memory_kb(fresh.proc.pid)
    payload = b"x" * 50_000
    counts = []
    for _ in range(20):                              # 1000 x 50 kB = 50 MB, pipelined
        pub.sendall(_command("PUBLISH", "firehose", payload) * 50)
        counts += [_reply(pub, reader) for _ in range(50)]
    after = _memory_kb(fresh.proc.pid)
    assert counts[0] == 1 and counts[-1] == 0, "the subscriber was never cut off"
    delivered_to = counts.index(0)
    assert delivered_to < 400, f"cut off only after {delivered_to} x 50 kB"
    growth_mb = (after["VmHWM"] - before["VmHWM"]) / 1024
    assert growth_mb < 25, f"peak RSS grew by {growth_mb:.1f} MB while 50 MB were published"
    pub.sendall(_command("PUBSUB", "NUMSUB", "firehose"))
    assert _reply(pub, reader) == [b"firehose", 0]
    assert _drained_until_closed(slow) < 20 * 1024 * 1024
    pub.sendall(_command("CLIENT", "LIST"))
    assert b"sub=1" not in _reply(pub, reader)
    pub.close()


@pytest.mark.slow
def test_slow_subscriber_hits_the_soft_limit_after_its_seconds(fresh):
    """No hard limit, soft 256 kB for 1 s: cut off only once it stayed over for a second."""
    pub, reader = _raw(fresh.port)
    pub.sendall(_command("CONFIG", "SET", "client-output-buffer-limit", "pubsub 0 256kb 1"))
    assert _reply(pub, reader) == b"OK"
    slow = _slow_subscriber(fresh.port, "drip")
    big = b"y" * 100_000
    pub.sendall(_command("PUBLISH", "drip", big) * 100)  # 10 MB: far over the soft limit
    assert [_reply(pub, reader) for _ in range(100)] == [1] * 100, "cut off before its seconds"
    over_since = time.monotonic()
    deadline = over_since + 20
    while time.monotonic() < deadline:             # keep writing so the limit is checked
        pub.sendall(_command("PUBLISH", "drip", "tick"))
        if _reply(pub, reader) == 0:
            break
    else:
        raise AssertionError("never cut off by the soft limit")
    assert time.monotonic() - over_since >= 0.9
    _drained_until_closed(slow)
    pub.close()


# -- clients, CLIENT LIST/KILL, INFO --------------------------------------------------------------------

def test_client_list_shows_subscription_counts(client):
    p = client.pubsub()
    p.subscribe("a", "b")
    p.psubscribe("c*")
    p.ssubscribe("s")
    for _ in range(3):
        _message(p)
    p.get_sharded_message(timeout=10)
    # A RESP2 subscriber cannot run CLIENT SETNAME: find its line by the counts.
    lines = client.execute_command("CLIENT", "LIST").decode().splitlines()
    assert any(" sub=2 psub=1 ssub=1 " in line and "flags=P" in line for line in lines), lines
    p.close()


def test_client_kill_type_pubsub(client):
    subs = [client.pubsub() for _ in range(2)]
    subs[0].subscribe("k1")
    subs[1].psubscribe("k*")
    for s in subs:
        _message(s)
    assert client.execute_command("CLIENT", "KILL", "TYPE", "pubsub") >= 2  # (and any leftovers)
    assert client.execute_command("CLIENT", "KILL", "TYPE", "pubsub") == 0
    for s in subs:
        sock = s.connection._sock
        assert sock.recv(1) == b""                # closed by the server
    assert client.pubsub_numsub("k1") == [(b"k1", 0)]
    assert client.pubsub_numpat() == 0
    assert client.ping()                        # the killer is a normal client and survives
    for s in subs:
        s.reset()


def test_disconnected_subscribers_are_forgotten(client):
    p = client.pubsub()
    p.subscribe("bye")
    p.psubscribe("by*")
    _message(p)
    _message(p)
    assert client.publish("bye", "x") == 2
    p.close()
    for _ in range(10_000):                     # the server notices the close asynchronously
        if client.publish("bye", "x") == 0:
            break
    assert client.publish("bye", "x") == 0
    assert client.pubsub_numsub("bye") == [(b"bye", 0)]
    assert client.pubsub_numpat() == 0


def test_info_counts_channels_and_patterns(client):
    subs = [client.pubsub() for _ in range(2)]
    subs[0].subscribe("i1", "i2")
    subs[1].subscribe("i2", "i3")
    subs[1].psubscribe("p1", "p2")
    subs[0].psubscribe("p2")
    subs[0].ssubscribe("s1")
    for s, n in zip(subs, (3, 4)):
        for _ in range(n):
            _message(s)
    subs[0].get_sharded_message(timeout=10)
    # Subscribers of earlier tests may still be closing: poll until they are gone (bounded).
    for _ in range(1000):
        stats = client.info("stats")
        counts = (stats["pubsub_channels"], stats["pubsub_patterns"], stats["pubsubshard_channels"])
        if counts == (3, 2, 1):
            break
    assert counts == (3, 2, 1)
    for s in subs:
        s.close()
