"""Run redis-benchmark once per test against one server and turn its --csv output into numbers.

One invocation per test (rather than all tests in one) lets the server's CPU time, read from /proc
before and after, be charged to that test alone. LRANGE tests are the exception to redis-benchmark's
`-t`: `-t lrange_100` first runs an LPUSH warm-up whose CPU would be charged to LRANGE, so the harness
fills `mylist` in a separate, unmeasured call and then times the very same command, `LRANGE mylist 0 99`.
"""

from __future__ import annotations

import csv
import io
import resource
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass

from bench.servers import HOST, Server, shard_counters

__all__ = [
    "DEFAULT_TESTS",
    "BenchResult",
    "expand_tests",
    "find_benchmark",
    "parse_csv",
    "run_benchmark",
]

# redis-benchmark 7.0's default tests, in the order it runs them (later ones use earlier ones' keys).
DEFAULT_TESTS = (
    "ping_inline", "ping_mbulk", "set", "get", "incr", "lpush", "rpush", "lpop", "rpop", "sadd",
    "hset", "spop", "zadd", "zpopmin", "lrange_100", "lrange_300", "lrange_500", "lrange_600", "mset",
)
_ALIASES = {"ping": ("ping_inline", "ping_mbulk"), "lrange": ("lrange_100", "lrange_300", "lrange_500", "lrange_600")}
_LRANGE_FILL = 700  # elements pushed before each LRANGE run: the longest range reads 600


@dataclass
class BenchResult:
    """One redis-benchmark invocation against one server. Latencies are in ms, CPU per request in µs."""

    server: str
    test: str
    pipeline: int
    clients: int
    requests: int
    rps: float | None = None
    avg_ms: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    server_cpu_s: float | None = None
    cpu_us_per_req: float | None = None
    client_cpu_s: float | None = None
    wall_s: float | None = None
    # Where the server's CPU went (docs/concurrency.md), per request: the event-loop (main) thread,
    # every other thread (shard actors; Redis's bio threads), and how often a thread of the server
    # was scheduled in (each cross-thread hop that finds its receiver asleep costs one).
    loop_us_per_req: float | None = None
    threads_us_per_req: float | None = None
    slices_per_req: float | None = None
    runq_us_per_req: float | None = None
    # Shardis only (INFO actors): commands the shards ran per message they received.
    cmds_per_msg: float | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.rps is not None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def find_benchmark(path: str | None = None) -> str:
    found = path or shutil.which("redis-benchmark")
    if not found:
        raise SystemExit("redis-benchmark not found: install redis-tools (apt-get install redis-tools)")
    return found


def expand_tests(spec: str | None) -> list[str]:
    """Comma list of redis-benchmark test names (aliases `ping`, `lrange`) to canonical names, default order."""
    if not spec:
        return list(DEFAULT_TESTS)
    wanted: set[str] = set()
    for name in (part.strip().lower() for part in spec.split(",") if part.strip()):
        if name in _ALIASES:
            wanted.update(_ALIASES[name])
        elif name in DEFAULT_TESTS:
            wanted.add(name)
        else:
            raise SystemExit(f"unknown test {name!r}; known: {', '.join(DEFAULT_TESTS)}, ping, lrange")
    return [test for test in DEFAULT_TESTS if test in wanted]


def parse_csv(text: str) -> list[dict[str, object]]:
    """Rows of redis-benchmark 7.0 --csv: test, rps, then avg/min/p50/p95/p99/max latency in ms."""
    rows: list[dict[str, object]] = []
    for record in csv.reader(io.StringIO(text)):
        if len(record) < 2 or record[0] == "test":
            continue
        try:
            numbers = [float(value) for value in record[1:]]
        except ValueError:
            continue  # a stray non-CSV line
        row: dict[str, object] = {"name": record[0], "rps": numbers[0]}
        for key, value in zip(("avg_ms", "min_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms"), numbers[1:]):
            row[key] = value
        rows.append(row)
    return rows


def _base_argv(binary: str, port: int, clients: int, requests: int, pipeline: int,
               keyspace: int | None = None) -> list[str]:
    argv = [
        binary, "-h", HOST, "-p", str(port), "-c", str(clients), "-n", str(requests),
        "-P", str(pipeline), "--csv", "--precision", "3",
    ]
    return argv + ["-r", str(keyspace)] if keyspace else argv


def run_benchmark(
    server: Server,
    test: str,
    *,
    binary: str,
    requests: int,
    clients: int,
    pipeline: int,
    timeout: float,
    keyspace: int | None = None,
) -> BenchResult:
    """Run one test; failures (timeout, error reply, dead server) are recorded, not raised.

    `keyspace` is redis-benchmark's -r: random keys out of that many instead of one fixed key
    (without it every SET/GET of a run hits the same key, hence the same shard)."""
    result = BenchResult(server.label, test, pipeline, clients, requests)
    argv = _base_argv(binary, server.port, clients, requests, pipeline, keyspace)
    if test.startswith("lrange_"):
        fill = _base_argv(binary, server.port, 10, _LRANGE_FILL, 10) + ["-t", "lpush"]
        try:
            subprocess.run(fill, capture_output=True, timeout=timeout, check=True)
        except (subprocess.SubprocessError, OSError) as error:
            result.error = f"LRANGE fill failed: {error}"
            return result
        argv += ["LRANGE", "mylist", "0", str(int(test.split("_")[1]) - 1)]
    else:
        argv += ["-t", test]

    if not server.alive():
        result.error = "server is not running"
        return result
    counters_before = shard_counters(server.port)
    threads_before = server.thread_times()
    cpu_before = server.cpu_seconds()
    client_before = _children_cpu()
    started = time.perf_counter()
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        result.error = f"timeout after {timeout:g}s"
        return result
    result.wall_s = time.perf_counter() - started
    result.client_cpu_s = _children_cpu() - client_before
    if not server.alive():
        result.error = f"server died: {server.log_tail(5)}"
        return result
    result.server_cpu_s = server.cpu_seconds() - cpu_before
    _thread_costs(result, server.pid, threads_before, server.thread_times(), requests)
    counters_after = shard_counters(server.port)
    if counters_before and counters_after and counters_after[0] > counters_before[0]:
        result.cmds_per_msg = ((counters_after[1] - counters_before[1])
                               / (counters_after[0] - counters_before[0]))

    rows = parse_csv(done.stdout)
    if done.returncode != 0 or not rows:
        message = (done.stderr.strip() or done.stdout.strip()).splitlines()
        result.error = f"redis-benchmark exit {done.returncode}: {message[-1] if message else 'no output'}"
        return result
    row = rows[-1]
    for key in ("rps", "avg_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms"):
        setattr(result, key, row.get(key))
    result.cpu_us_per_req = result.server_cpu_s / requests * 1e6
    return result


def _thread_costs(result: BenchResult, pid: int, before: dict, after: dict, requests: int) -> None:
    """Fill the per-thread fields from two schedstat snapshots (threads started meanwhile count from 0)."""
    if pid not in before or pid not in after:
        return
    delta = {tid: [a - b for a, b in zip(now, before.get(tid, (0, 0, 0)))] for tid, now in after.items()}
    loop = delta.pop(pid)
    result.loop_us_per_req = loop[0] / 1e3 / requests
    result.threads_us_per_req = sum(d[0] for d in delta.values()) / 1e3 / requests
    result.slices_per_req = (loop[2] + sum(d[2] for d in delta.values())) / requests
    result.runq_us_per_req = (loop[1] + sum(d[1] for d in delta.values())) / 1e3 / requests


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
