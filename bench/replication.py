"""`python -m bench replication`: full-sync time and replication lag, Shardis side by side with Redis.

For each server kind (Shardis master + Shardis replica, then Redis master + Redis replica, all
with `--save '' --appendonly no` and `--repl-diskless-sync-delay 0`), in the same run (issue 9):

- **Full sync**: N string keys with 16-byte values (bench.memory's pipelined writer) go into the
  master; a fresh replica gets `REPLICAOF 127.0.0.1 <master>`, and the time runs from that command
  until the replica reports `master_link_status:up` and its DBSIZE equals the master's.
- **Lag under a SET load**: `redis-benchmark -t set -P 16 -c 50 -n 200000` against the master while
  a sampler reads `master_repl_offset` on the master and then `slave_repl_offset` on the replica every
  50 ms; the lag of a sample is the difference in bytes (the master is read first, so a sample can
  only under-state the lag by what arrives between the two reads). Reported: median, p99 and max lag,
  the time from the end of the load until the replica's offset equals the master's, and the master's
  throughput while it fed a replica. Offsets are counted differently inside the two servers (a
  Shardis master counts a write once its record has left the shards for the replication stream), so
  a probe thread also times what a client sees, every 50 ms: a SET on the master, then GET on the
  replica every millisecond until it shows the new value ("write-to-replica-read").

Servers run on loopback in temporary directories, are polled for readiness and stopped by pid.
Every wait has a deadline (`--timeout`), so a stuck replica fails the run instead of hanging it.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import sys
import threading
import time
from contextlib import ExitStack

import hiredis

from bench.conns import resp_command
from bench.memory import DATASETS, dbsize, load
from bench.report import (
    describe_machine,
    fmt,
    markdown_table,
    new_results_dir,
    write_results,
)
from bench.runner import BenchResult, find_benchmark, run_benchmark
from bench.servers import (
    HOST,
    Server,
    ServerError,
    ServerSpec,
    default_shardis_cmd,
    redis_spec,
    shardis_spec,
)

__all__ = ["add_arguments", "main", "measure_pair", "run"]

_REPL_FLAGS = ["--repl-diskless-sync-delay", "0"]
_SAMPLE_S = 0.05   # the lag sampler's period (the 50 ms)
_PROBE_KEY = "replication-bench:probe"
_PROBE_POLL_S = 0.001
_POLL_S = 0.01     # the full-sync and catch-up pollers' period: the resolution of those times


class Connection:
    """One persistent RESP connection for the probes (INFO every 50 ms must not reconnect)."""

    def __init__(self, port: int, timeout: float = 30.0) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = hiredis.Reader()

    def call(self, *parts: str) -> object:
        self.sock.sendall(resp_command(*parts))
        while (reply := self.reader.gets()) is False:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError(f"connection closed waiting for {parts[0]}")
            self.reader.feed(chunk)
        if isinstance(reply, Exception):
            raise ServerError(f"{' '.join(parts)}: {reply}")
        return reply

    def info(self, section: str = "replication") -> dict[str, str]:
        text = self.call("INFO", section).decode(errors="replace")  # type: ignore[union-attr]
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    def close(self) -> None:
        self.sock.close()


def _until(predicate, timeout: float, what: str, period: float = _POLL_S) -> float:
    """Poll `predicate` every `period` until true; the seconds it took. Raises after `timeout`."""
    started = time.perf_counter()
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise ServerError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(period)  # polling interval: the resolution of the measured time
    return time.perf_counter() - started


def _percentile(values: list[int] | list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))])


def measure_full_sync(master: Server, replica: Server, keys: int, timeout: float) -> dict[str, object]:
    """Load `keys` keys into the master, then time REPLICAOF until the replica is linked and equal."""
    filled = load(master.port, DATASETS["strings"], keys, timeout)
    master_keys = dbsize(master.port)
    if master_keys != keys:
        raise ServerError(f"{master.label}: DBSIZE {master_keys} after loading {keys} keys "
                          f"({filled['errors']} errors, first: {filled['first_error']})")
    probe = Connection(replica.port, timeout)
    try:
        started = time.perf_counter()
        probe.call("REPLICAOF", HOST, str(master.port))

        def synced() -> bool:
            if probe.info().get("master_link_status") != "up":
                return False
            return probe.call("DBSIZE") == master_keys
        _until(synced, timeout, f"{replica.label} replica to finish the full sync")
        sync_s = time.perf_counter() - started
    finally:
        probe.close()
    return {"keys": keys, "load_s": filled["load_s"], "full_sync_s": sync_s}


class _VisibilityProbe(threading.Thread):
    """Every 50 ms (or when the previous probe is seen): SET a probe key on the master, then the
    ms from its +OK until a GET on the replica returns the new value. Its own connections, so the
    offset sampler keeps its period."""

    def __init__(self, master_port: int, replica_port: int, timeout: float) -> None:
        super().__init__(name="visibility-probe", daemon=True)
        self.on_master = Connection(master_port)
        self.on_replica = Connection(replica_port)
        self.timeout = timeout
        self.delays_ms: list[float] = []
        self.error: str | None = None
        self.done = threading.Event()

    def run(self) -> None:
        seq = 0
        next_probe = time.monotonic()
        try:
            while not self.done.is_set():
                seq += 1
                value = str(seq).encode()
                self.on_master.call("SET", _PROBE_KEY, value.decode())
                acked = time.perf_counter()
                deadline = time.monotonic() + self.timeout
                while self.on_replica.call("GET", _PROBE_KEY) != value:
                    if time.monotonic() > deadline:
                        raise ServerError(f"probe write {seq} not on the replica after {self.timeout:g}s")
                    time.sleep(_PROBE_POLL_S)  # polling interval: the resolution of the figure
                self.delays_ms.append((time.perf_counter() - acked) * 1000)
                next_probe = max(next_probe + _SAMPLE_S, time.monotonic())
                self.done.wait(max(0.0, next_probe - time.monotonic()))  # the probe period
        except (OSError, ServerError) as exc:
            self.error = str(exc)

    def finish(self) -> None:
        """Stop after the probe in flight (it is counted: it was written during the load)."""
        self.done.set()
        if self.is_alive():
            self.join(self.timeout)
        self.on_master.close()
        self.on_replica.close()


def measure_lag(master: Server, replica: Server, args) -> dict[str, object]:
    """redis-benchmark SET against the master while sampling the offsets of master and replica."""
    binary = find_benchmark(args.redis_benchmark)
    outcome: list[BenchResult] = []
    load_thread = threading.Thread(
        target=lambda: outcome.append(run_benchmark(
            master, "set", binary=binary, requests=args.requests, clients=args.clients,
            pipeline=args.pipeline, timeout=args.timeout)),
        name="set-load", daemon=True)
    on_master = Connection(master.port)
    on_replica = Connection(replica.port)
    lags: list[int] = []
    probe = _VisibilityProbe(master.port, replica.port, args.timeout)
    try:
        def offsets() -> tuple[int, int]:
            ours = int(on_master.info()["master_repl_offset"])
            theirs = int(on_replica.info()["slave_repl_offset"])
            return ours, theirs

        load_thread.start()
        probe.start()
        next_sample = time.monotonic()
        while load_thread.is_alive():
            ours, theirs = offsets()
            lags.append(ours - theirs)
            next_sample = max(next_sample + _SAMPLE_S, time.monotonic())
            time.sleep(max(0.0, next_sample - time.monotonic()))  # the sampling period
        load_thread.join()
        load_end = time.perf_counter()
        probe.finish()
        visible_ms = probe.delays_ms

        def caught_up() -> bool:
            ours, theirs = offsets()
            return ours == theirs
        _until(caught_up, args.timeout, f"{replica.label} replica to catch up after the load")
        catch_up_s = time.perf_counter() - load_end
        equal = dbsize(master.port) == dbsize(replica.port)
    finally:
        probe.finish()
        on_master.close()
        on_replica.close()
    bench = outcome[0] if outcome else BenchResult(master.label, "set", args.pipeline, args.clients,
                                                    args.requests)
    return {
        "rps": bench.rps, "p99_ms": bench.p99_ms, "bench_error": bench.error,
        "samples": len(lags),
        "lag_median": statistics.median(lags) if lags else None,
        "lag_p99": _percentile(lags, 0.99),
        "lag_max": max(lags) if lags else None,
        "catch_up_s": catch_up_s,
        "visible_ms_median": statistics.median(visible_ms) if visible_ms else None,
        "visible_ms_p99": _percentile(visible_ms, 0.99),
        "visible_ms_max": max(visible_ms) if visible_ms else None,
        "visible_samples": len(visible_ms),
        "probe_error": probe.error,
        "dbsize_equal": equal,
    }


def measure_pair(spec: ServerSpec, args) -> dict[str, object]:
    """A fresh master and replica of one kind: full sync, then lag under load."""
    result: dict[str, object] = {"server": spec.label}
    with ExitStack() as stack:
        master = stack.enter_context(Server(spec, ready_timeout=args.timeout))
        replica = stack.enter_context(Server(spec, ready_timeout=args.timeout))
        result["argv"] = master.argv
        print(f"{spec.label}: loading {args.keys:,} keys into the master, then a full sync ...",
              file=sys.stderr, flush=True)
        result.update(measure_full_sync(master, replica, args.keys, args.timeout))
        print(f"{spec.label}: full sync {result['full_sync_s']:.2f} s; SET load "
              f"-P {args.pipeline} -c {args.clients} -n {args.requests} ...", file=sys.stderr, flush=True)
        result.update(measure_lag(master, replica, args))
    return result


def _ratio(a: object, b: object) -> str:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b:
        return f"{a / b:.2f}×"
    return "—"


def _table(results: list[dict[str, object]]) -> str:
    by_server = {r["server"]: r for r in results}
    shardis, redis = by_server.get("shardis", {}), by_server.get("redis", {})

    def seconds(v: object) -> str:
        return f"{v:.2f}" if isinstance(v, (int, float)) else "—"

    def milliseconds(v: object) -> str:
        return f"{v:.2f}" if isinstance(v, (int, float)) else "—"

    def count(v: object) -> str:
        return f"{v:,.0f}" if isinstance(v, (int, float)) else "—"

    rows = []
    for label, key, show in [
        ("keys loaded into the master", "keys", count),
        ("load time s (pipelined SET)", "load_s", seconds),
        ("full sync s (REPLICAOF → link up, DBSIZE equal)", "full_sync_s", seconds),
        ("master SET req/s while feeding a replica", "rps", lambda v: fmt(v, "rps")),
        ("master SET p99 ms", "p99_ms", lambda v: fmt(v, "ms")),
        ("lag median bytes", "lag_median", count),
        ("lag p99 bytes", "lag_p99", count),
        ("lag max bytes", "lag_max", count),
        ("catch-up after the load s", "catch_up_s", seconds),
        ("write-to-replica-read median ms", "visible_ms_median", milliseconds),
        ("write-to-replica-read p99 ms", "visible_ms_p99", milliseconds),
        ("write-to-replica-read max ms", "visible_ms_max", milliseconds),
        ("lag samples (every 50 ms)", "samples", count),
        ("write-to-replica-read probes", "visible_samples", count),
    ]:
        rows.append([label, show(shardis.get(key)), show(redis.get(key)),
                     _ratio(shardis.get(key), redis.get(key))])
    return markdown_table(["metric", "Shardis", "Redis", "Shardis/Redis"], rows)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shardis-cmd", default=default_shardis_cmd(), help="command that starts Shardis")
    parser.add_argument("--shardis-arg", action="append", default=[], metavar="ARG",
                        help="extra argument for Shardis, repeatable")
    parser.add_argument("--shards", type=int, default=None, help="Shardis shard count (default: its own)")
    parser.add_argument("--redis-server", default=shutil.which("redis-server"), help="reference server binary")
    parser.add_argument("--redis-benchmark", default=None, help="redis-benchmark binary (default: from PATH)")
    parser.add_argument("--no-redis", action="store_true", help="measure Shardis alone")
    parser.add_argument("--keys", type=int, default=None, help="keys for the full sync (default 1000000)")
    parser.add_argument("-n", "--requests", type=int, default=None, help="SET requests of the load (default 200000)")
    parser.add_argument("-c", "--clients", type=int, default=50)
    parser.add_argument("-P", "--pipeline", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds allowed for each step")
    parser.add_argument("--quick", action="store_true", help="100k keys and 20k requests: a smoke run")
    parser.add_argument("--out", default=None, help="results directory (default bench/results/<timestamp>)")


def run(args: argparse.Namespace) -> int:
    args.keys = args.keys or (100_000 if args.quick else 1_000_000)
    args.requests = args.requests or (20_000 if args.quick else 200_000)
    specs = [shardis_spec(args.shardis_cmd, "off", args.shards, [*_REPL_FLAGS, *args.shardis_arg])]
    notes = []
    if args.no_redis or not args.redis_server:
        notes.append("Redis reference skipped: Shardis measured alone, no ratios.")
    else:
        specs.append(redis_spec(args.redis_server, "off", _REPL_FLAGS))
    results = []
    try:
        for spec in specs:
            results.append(measure_pair(spec, args))
    except ServerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for res in results:
        if res.get("bench_error"):
            notes.append(f"{res['server']}: the SET load failed: {res['bench_error']}")
        if res.get("probe_error"):
            notes.append(f"{res['server']}: the visibility probe failed: {res['probe_error']}")
        if not res.get("dbsize_equal"):
            notes.append(f"{res['server']}: DBSIZE of master and replica differ after the catch-up")
    notes += [
        ("Both kinds run with `--save '' --appendonly no --repl-diskless-sync-delay 0` (Redis's default "
         "delay of 5 s would otherwise dominate its full sync); the RDB goes over the socket (diskless "
         "sync), Redis's replica writes it to disk before loading it (repl-diskless-load disabled)."),
        (f"Lag: master_repl_offset (master) minus slave_repl_offset (replica), sampled every "
         f"{_SAMPLE_S * 1000:.0f} ms during `redis-benchmark -t set -P {args.pipeline} -c {args.clients} "
         f"-n {args.requests}`; the master is read first. Catch-up: from the end of the load until both "
         f"offsets are equal, polled every {_POLL_S * 1000:.0f} ms."),
        ("Offsets are not counted at the same point in both servers: Redis counts a write when it "
         "executes; Shardis when its record reaches the loop from the replication actor, and its "
         "replica counts bytes whose commands reached the shards. Write-to-replica-read is the "
         "comparable figure: every 50 ms a probe thread SETs a key on the master, then from its +OK "
         "GETs it on the replica every 1 ms until the new value shows."),
    ]
    data = {"mode": "replication", "args": vars(args), "machine": describe_machine(args.redis_server),
            "results": results}
    write_results(new_results_dir(args.out), "Shardis vs Redis: replication", _table(results), data, notes)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench replication", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
