"""What cross-shard coordination costs: MULTI/EXEC throughput for transactions touching 1, 2 and 4
shards of a 4-shard Shardis, side by side with redis-server in the same run.

`python -m bench.transactions [--seconds 3] [--clients 8] [--depth 16]`. Each client pipelines
`depth` transactions of `MULTI; INCR k1 ... INCR kn; EXEC` over a raw socket and counts the EXEC
replies; the keys of a transaction map to n different shards (on Redis they are just n keys).
A single-shard transaction is one batch entry in Shardis; anything wider parks every shard.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time

import hiredis

from bench.servers import Server, redis_spec, shardis_spec, default_shardis_cmd
from keyspace.routing import ShardMap

__all__ = ["main"]


def _client(port: int, keys: list[bytes], depth: int, deadline: float, out: list) -> None:
    import socket
    tx = [hiredis.pack_command(("MULTI",))]
    tx += [hiredis.pack_command(("INCR", key)) for key in keys]
    tx.append(hiredis.pack_command(("EXEC",)))
    batch = b"".join(tx) * depth
    replies_per_batch = (len(keys) + 2) * depth
    done = 0
    with socket.create_connection(("127.0.0.1", port)) as sock:
        reader = hiredis.Reader()
        while time.monotonic() < deadline:
            sock.sendall(batch)
            got = 0
            while got < replies_per_batch:
                reader.feed(sock.recv(65536))
                while reader.gets() is not False:
                    got += 1
            done += depth
    out.append(done)


def measure(port: int, width: int, clients: int, depth: int, seconds: float) -> float:
    keys = [k.encode() for k in ShardMap(4).sample_keys("tx:", width)]
    out: list = []
    deadline = time.monotonic() + seconds
    threads = [threading.Thread(target=_client, args=(port, keys, depth, deadline, out))
               for _ in range(clients)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 30)
    return sum(out) / (time.monotonic() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.transactions", description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--depth", type=int, default=16)
    args = parser.parse_args(argv)
    rows = []
    with Server(shardis_spec(default_shardis_cmd(), "off", 4)) as shardis, \
            Server(redis_spec("redis-server", "off", [])) as redis:
        for width in (1, 2, 4):
            ours = measure(shardis.port, width, args.clients, args.depth, args.seconds)
            real = measure(redis.port, width, args.clients, args.depth, args.seconds)
            rows.append((width, ours, real))
    print("| shards touched | Shardis tx/s | redis-server tx/s | ratio |\n|---|---|---|---|")
    for width, ours, real in rows:
        print(f"| {width} | {ours:,.0f} | {real:,.0f} | {ours / real:.2f}× |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
