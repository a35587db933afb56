"""Pub/Sub fan-out: messages per second delivered to 1, 10 and 100 subscribers, Shardis side by side
with redis-server in the same run.

    python -m bench.pubsub [--subscribers 1,10,100] [--seconds 3] [--payload 16] [--publishers 1]

Publishers are raw sockets sending pipelined PUBLISH batches and reading the replies; subscribers are
raw sockets read by one thread through `selectors`. Every message frame on the wire has the same
size (one channel, one payload size), so the reader counts bytes instead of parsing RESP: the
client costs little and what is measured is the server. Each point publishes for `--seconds`, then
waits until every subscriber has received every message it was counted for (PUBLISH's reply), so
"delivered per second" = messages received by all subscribers / time from the first PUBLISH to the
last delivery.
"""

from __future__ import annotations

import argparse
import json
import selectors
import shutil
import socket
import sys
import threading
import time
from dataclasses import asdict, dataclass

from bench.servers import HOST, Server, default_shardis_cmd, raise_nofile_limit, redis_spec, shardis_spec

__all__ = ["PubSubPoint", "main", "measure_point"]

_CHANNEL = b"bench:fanout"


def _command(*parts: bytes) -> bytes:
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


def _message_frame(payload: bytes) -> bytes:
    """The exact RESP2 frame a subscriber receives for one message."""
    return (b"*3\r\n$7\r\nmessage\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n"
            % (len(_CHANNEL), _CHANNEL, len(payload), payload))


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("server closed the connection")
        data += chunk
    return data


@dataclass
class PubSubPoint:
    """One measurement: a server, a subscriber count, and what came out."""

    server: str
    subscribers: int
    published: int
    delivered: int
    seconds: float

    @property
    def delivered_per_second(self) -> float:
        return self.delivered / self.seconds if self.seconds else 0.0

    @property
    def published_per_second(self) -> float:
        return self.published / self.seconds if self.seconds else 0.0


class _Subscribers:
    """N subscriber sockets, drained by one thread that counts received bytes per socket."""

    def __init__(self, port: int, count: int) -> None:
        self.socks = []
        confirm = b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%s\r\n:1\r\n" % (len(_CHANNEL), _CHANNEL)
        for _ in range(count):
            sock = socket.create_connection((HOST, port), timeout=30)
            sock.sendall(_command(b"SUBSCRIBE", _CHANNEL))
            got = _read_exactly(sock, len(confirm))
            if got != confirm:
                raise RuntimeError(f"unexpected SUBSCRIBE reply {got!r}")
            sock.setblocking(False)
            self.socks.append(sock)
        self.received = [0] * count
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        selector = selectors.DefaultSelector()
        for index, sock in enumerate(self.socks):
            selector.register(sock, selectors.EVENT_READ, index)
        received = self.received
        while not self.stop.is_set():
            for key, _ in selector.select(0.05):
                try:
                    data = key.fileobj.recv(1 << 20)
                except BlockingIOError:
                    continue
                if not data:
                    selector.unregister(key.fileobj)
                    continue
                received[key.data] += len(data)
        selector.close()

    def total_bytes(self) -> int:
        return sum(self.received)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        for sock in self.socks:
            sock.close()


def _publisher(port: int, payload: bytes, batch: int, until: float, out: list, index: int,
               reply: bytes) -> None:
    """Pipelined PUBLISH batches until `until`; records (messages, receivers counted)."""
    sock = socket.create_connection((HOST, port), timeout=60)
    request = _command(b"PUBLISH", _CHANNEL, payload) * batch
    replies = reply * batch
    published = 0
    while time.perf_counter() < until:
        sock.sendall(request)
        got = _read_exactly(sock, len(replies))
        if got != replies:
            raise RuntimeError(f"unexpected PUBLISH replies {got[:40]!r}")
        published += batch
    sock.close()
    out[index] = published


def measure_point(label: str, port: int, subscribers: int, seconds: float, payload_size: int,
                  publishers: int = 1, batch: int = 200) -> PubSubPoint:
    """Publish for `seconds` to `subscribers` raw-socket subscribers; count what they receive."""
    payload = b"m" * payload_size
    frame_size = len(_message_frame(payload))
    reply = b":%d\r\n" % subscribers
    subs = _Subscribers(port, subscribers)
    try:
        counts = [0] * publishers
        started = time.perf_counter()
        until = started + seconds
        threads = [threading.Thread(target=_publisher,
                                    args=(port, payload, batch, until, counts, i, reply))
                   for i in range(publishers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        published = sum(counts)
        expected = published * subscribers * frame_size
        deadline = time.perf_counter() + 120
        while subs.total_bytes() < expected and time.perf_counter() < deadline:
            time.sleep(0.001)  # polling the reader thread's byte count, not synchronisation
        elapsed = time.perf_counter() - started
        delivered = subs.total_bytes() // frame_size
    finally:
        subs.close()
    return PubSubPoint(label, subscribers, published, delivered, elapsed)


def _table(points: list[PubSubPoint]) -> str:
    by_key = {(p.server, p.subscribers): p for p in points}
    servers = list(dict.fromkeys(p.server for p in points))
    counts = sorted({p.subscribers for p in points})
    head = "| subscribers | " + " | ".join(f"{s} delivered/s | {s} published/s" for s in servers)
    if len(servers) == 2:
        head += f" | {servers[1]} / {servers[0]}"
    lines = [head + " |", "|" + "---|" * (head.count("|"))]
    for n in counts:
        row = [f"| {n}"]
        for s in servers:
            p = by_key.get((s, n))
            row.append(f"{p.delivered_per_second:,.0f} | {p.published_per_second:,.0f}" if p else "- | -")
        if len(servers) == 2 and all((s, n) in by_key for s in servers):
            a, b = (by_key[(s, n)].delivered_per_second for s in servers)
            row.append(f"{b / a:.2f}" if a else "-")
        lines.append(" | ".join(row) + " |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.pubsub", description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", default="1,10,100", help="comma-separated subscriber counts")
    parser.add_argument("--seconds", type=float, default=3.0, help="publishing time per point")
    parser.add_argument("--payload", type=int, default=16, help="message size in bytes")
    parser.add_argument("--publishers", type=int, default=1, help="publisher connections")
    parser.add_argument("--batch", type=int, default=200, help="PUBLISH commands per pipelined batch")
    parser.add_argument("--shards", type=int, default=None, help="Shardis --shards")
    parser.add_argument("--shardis-cmd", default=default_shardis_cmd(), help="how to start Shardis")
    parser.add_argument("--redis-server", default=shutil.which("redis-server") or "redis-server")
    parser.add_argument("--only", choices=("shardis", "redis"), help="measure one server only")
    parser.add_argument("--json", help="also write the points to this JSON file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    counts = [int(n) for n in args.subscribers.split(",") if n]
    raise_nofile_limit(4 * max(counts) + 256)
    specs = []
    if args.only != "shardis":
        specs.append(redis_spec(args.redis_server, "off"))
    if args.only != "redis":
        specs.append(shardis_spec(args.shardis_cmd, None, shards=args.shards))
    points: list[PubSubPoint] = []
    for spec in specs:
        with Server(spec) as server:
            for n in counts:
                point = measure_point(spec.label, server.port, n, args.seconds, args.payload,
                                      args.publishers, args.batch)
                points.append(point)
                print(f"{spec.label:8} {n:4} subscribers: {point.delivered_per_second:12,.0f} "
                      f"delivered/s  {point.published_per_second:10,.0f} published/s "
                      f"({point.published} messages in {point.seconds:.2f}s)", file=sys.stderr)
    print(_table(points))
    if args.json:
        with open(args.json, "w") as f:
            json.dump([asdict(p) | {"delivered_per_second": p.delivered_per_second,
                                    "published_per_second": p.published_per_second}
                       for p in points], f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
