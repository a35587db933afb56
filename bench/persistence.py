"""`python -m bench persistence`: the cost of durability, Shardis side by side with redis-server.

Three measurements, each taken on both servers in the same run with the same flags (issue 5):

- **SET throughput** under `appendonly yes` with `appendfsync always`, `everysec` and `no`:
  `redis-benchmark -t set -P 16 -c 50 -n 200000`, one fresh server per policy.
- **Load time** of a 1M-key data set: the time from the process start to the first PING answered
  PONG (not -LOADING), from a RESP AOF (1M SETs in the INCR file), from dump.rdb, and from an AOF
  whose base is an RDB preamble (after BGREWRITEAOF).
- **The longest client pause during BGREWRITEAOF** of those 1M keys: a client sends PING after
  PING on its own connection and records the largest gap between two replies, during the rewrite
  and, as the baseline, for a second before it. A second client does the same with GET of an
  existing key, because a Shardis PING never waits for a shard and so never sees a barrier.

The data set is written by bench.memory's pipelined writer (exactly N distinct string keys of 16
bytes). Servers run on loopback in temporary directories that are removed at the end; server
processes are stopped by pid. The lead wires this module into `python -m bench` with
`add_arguments(parser)` and `run(args)`; `main(argv)` runs it standalone:
`python -m bench.persistence [--quick] [--keys N] ...`.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Self

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
from bench.runner import find_benchmark, run_benchmark
from bench.servers import (
    HOST,
    Server,
    ServerError,
    ServerSpec,
    default_shardis_cmd,
    free_port,
    is_redis_stand_in,
    ping,
    shardis_spec,
)

__all__ = [
    "POLICIES",
    "DirServer",
    "add_arguments",
    "main",
    "measure_loading_and_rewrite",
    "measure_set_throughput",
    "run",
]

POLICIES = ("always", "everysec", "no")
_POLL = 0.01  # seconds between readiness polls: the resolution of the load-time numbers


def _aof_flags(policy: str, preamble: str = "yes") -> list[str]:
    return ["--save", "", "--appendonly", "yes", "--appendfsync", policy,
            "--aof-use-rdb-preamble", preamble]


def _specs(args, extra_shardis: list[str], extra_redis: list[str]) -> list[ServerSpec]:
    """Shardis first, then redis-server (unless --no-redis); both with the given flags."""
    shardis = shardis_spec(args.shardis_cmd, None, args.shards, extra=extra_shardis)
    if not is_redis_stand_in(shlex.split(args.shardis_cmd)):
        shardis.needs_dir_flag = True
    specs = [shardis]
    if args.redis_server and not args.no_redis:
        specs.append(ServerSpec("redis", [args.redis_server], list(extra_redis)))
    return specs


# -- SET throughput ------------------------------------------------------------------------------------

def measure_set_throughput(args) -> list[dict[str, object]]:
    """One fresh server per (policy, server): redis-benchmark -t set."""
    binary = find_benchmark(args.redis_benchmark)
    results = []
    for policy in args.policies:
        flags = _aof_flags(policy)
        for spec in _specs(args, flags, flags):
            with Server(spec, ready_timeout=args.timeout) as server:
                result = run_benchmark(server, "set", binary=binary, requests=args.requests,
                                       clients=args.clients, pipeline=args.pipeline,
                                       timeout=args.timeout)
                aof = _aof_bytes(Path(server.workdir))
            row = {"policy": policy, **result.to_dict(), "aof_bytes": aof}
            results.append(row)
            print(f"  set appendfsync={policy:8s} {spec.label:8s} "
                  f"{fmt(result.rps, 'rps') if result.ok else result.error} req/s", flush=True)
    return results


def _aof_bytes(workdir: Path) -> int:
    directory = workdir / "appendonlydir"
    return sum(p.stat().st_size for p in directory.iterdir()) if directory.exists() else 0


# -- a server on a directory we keep --------------------------------------------------------------

class DirServer(Server):
    """A Server on a given directory that outlives it (the next server loads what it left), with
    the time from the process start to the first PONG as `ready_after`."""

    def __init__(self, spec: ServerSpec, workdir: str, ready_timeout: float) -> None:
        super().__init__(spec, ready_timeout=ready_timeout)
        self.fixed_dir = workdir
        self.ready_after = 0.0
        self.saw_loading = False

    def start(self) -> None:
        self.workdir = self.fixed_dir
        self.port = free_port()
        self._log = open(os.path.join(self.workdir, f"{self.label}.log"), "ab")  # noqa: SIM115 - closed in stop()
        started = time.perf_counter()
        self.proc = subprocess.Popen(self.argv, cwd=self.workdir, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **self.spec.env})
        deadline = time.monotonic() + self.ready_timeout
        while not ping(self.port):
            if self.proc.poll() is not None:
                raise ServerError(f"{self.label} exited with {self.proc.returncode}: "
                                  f"{self.log_tail()}")
            if time.monotonic() > deadline:
                self._terminate()
                raise ServerError(f"{self.label} not ready after {self.ready_timeout}s")
            self.saw_loading = self.saw_loading or _answers_loading(self.port)
            time.sleep(_POLL)  # polling interval: the resolution of ready_after
        self.ready_after = time.perf_counter() - started

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = Path(self.workdir, f"{self.label}.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _cleanup_dir(self) -> None:
        """The directory is the caller's."""


def _answers_loading(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5) as sock:
            sock.sendall(resp_command("GET", "k"))
            return sock.recv(64).startswith(b"-LOADING")
    except OSError:
        return False


def _command(port: int, *parts: str, timeout: float = 600) -> object:
    """One command on a fresh connection; its decoded reply (an error reply as its text)."""
    reader = hiredis.Reader()
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(resp_command(*parts))
        while (reply := reader.gets()) is False:
            chunk = sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError(f"connection closed waiting for {parts[0]}")
            reader.feed(chunk)
    if isinstance(reply, Exception):
        return str(reply)
    return reply.decode(errors="replace") if isinstance(reply, bytes) else reply


def _info(port: int, section: str) -> dict[str, str]:
    text = str(_command(port, "INFO", section))
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line and
                not line.startswith("#"))


# -- the rewrite pause -----------------------------------------------------------------------------

class Pinger:
    """One command after another on one connection (PING by default); the largest gap between two
    consecutive replies. In Shardis PING runs on the event loop and never waits for a shard, so a
    GET of an existing key is measured too: it sees the pause of a shard barrier."""

    def __init__(self, port: int, *command: str) -> None:
        self.payload = resp_command(*(command or ("PING",)))
        self.sock = socket.create_connection((HOST, port), timeout=120)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.stop_flag = threading.Event()
        self.max_gap = 0.0
        self.pings = 0
        self.thread = threading.Thread(target=self._run, name="pinger", daemon=True)

    def _run(self) -> None:
        last = time.perf_counter()
        while not self.stop_flag.is_set():
            self.sock.sendall(self.payload)
            data = b""
            while not _complete(data):
                chunk = self.sock.recv(256)
                if not chunk:
                    return
                data += chunk
            now = time.perf_counter()
            self.max_gap = max(self.max_gap, now - last)
            self.pings += 1
            last = now

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_flag.set()
        self.thread.join(130)
        self.sock.close()


def _complete(data: bytes) -> bool:
    """A whole simple reply or bulk string (what PING and GET answer)."""
    if not data.endswith(b"\r\n"):
        return False
    if data.startswith(b"$"):
        size = int(data[1:data.index(b"\r\n")])
        return size < 0 or len(data) >= data.index(b"\r\n") + 2 + size + 2
    return True


def _rewrite_done(port: int, workdir: Path, before_rewrites: int, before_base: str) -> bool:
    info = _info(port, "persistence")
    if info.get("aof_rewrite_in_progress") != "0" or info.get("aof_rewrite_scheduled", "0") != "0":
        return False
    if int(info.get("aof_rewrites", "0") or 0) > before_rewrites:
        return True
    return _base_name(workdir) != before_base  # a server whose INFO does not count rewrites


def _base_name(workdir: Path) -> str:
    manifest = workdir / "appendonlydir" / "appendonly.aof.manifest"
    if not manifest.exists():
        return ""
    match = re.search(r"file (\S+) seq \d+ type b", manifest.read_text())
    return match.group(1) if match else ""


PROBE_KEY = "strings:00000000"
"""A key of the data set (bench.memory names them <dataset>:<i:08d>): the GET probe's target."""


def measure_rewrite_pause(server: Server, timeout: float) -> dict[str, object]:
    """Baseline max gaps for ~1 s, then BGREWRITEAOF with the probes running until it is
    installed. Two probes run at once: PING and GET of an existing key."""
    workdir = Path(server.workdir)
    with Pinger(server.port) as ping_base, Pinger(server.port, "GET", PROBE_KEY) as get_base:
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            time.sleep(0.05)  # the probes measure meanwhile
    info = _info(server.port, "persistence")
    before_rewrites = int(info.get("aof_rewrites", "0") or 0)
    before_base = _base_name(workdir)
    with Pinger(server.port) as ping_probe, Pinger(server.port, "GET", PROBE_KEY) as get_probe:
        started = time.perf_counter()
        reply = _command(server.port, "BGREWRITEAOF")
        deadline = time.monotonic() + timeout
        while not _rewrite_done(server.port, workdir, before_rewrites, before_base):
            if time.monotonic() > deadline:
                raise ServerError(f"{server.label}: BGREWRITEAOF not done after {timeout}s")
            time.sleep(0.05)  # polling interval
        rewrite_s = time.perf_counter() - started
    info = _info(server.port, "persistence")
    return {
        "bgrewriteaof_reply": reply,
        "rewrite_s": rewrite_s,
        "max_gap_ms": ping_probe.max_gap * 1000,
        "get_max_gap_ms": get_probe.max_gap * 1000,
        "pings": ping_probe.pings,
        "gets": get_probe.pings,
        "baseline_max_gap_ms": ping_base.max_gap * 1000,
        "baseline_get_max_gap_ms": get_base.max_gap * 1000,
        "snapshot_pause_ms": _float(info.get("shardis_last_snapshot_pause_ms")),
        "base_file": _base_name(workdir),
    }


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


# -- load times ------------------------------------------------------------------------------------

def _files_size(workdir: Path, pattern: str) -> int:
    return sum(p.stat().st_size for p in workdir.glob(pattern))


def measure_loading_and_rewrite(args, spec_aof: ServerSpec, spec_rdb: ServerSpec,
                                label: str) -> dict[str, object]:
    """Fill N keys with the AOF on (appendfsync no), stop; time the RESP-AOF load; on that server
    BGREWRITEAOF with the pinger, SAVE, stop; time the dump.rdb load and the RDB-preamble AOF
    load. The directory is removed at the end."""
    workdir = tempfile.mkdtemp(prefix=f"shardis-bench-persistence-{label}-")
    out: dict[str, object] = {"server": label, "keys": args.keys}
    try:
        with DirServer(spec_aof, workdir, args.timeout) as server:
            filled = load(server.port, DATASETS["strings"], args.keys, args.timeout)
            out["fill"] = filled
            out["fill_dbsize"] = dbsize(server.port)
        out["aof_resp_bytes"] = _aof_bytes(Path(workdir))

        with DirServer(spec_aof, workdir, args.timeout) as server:
            out["aof_resp_load_s"] = server.ready_after
            out["aof_resp_saw_loading"] = server.saw_loading
            out["aof_resp_dbsize"] = dbsize(server.port)
            print(f"  {label}: RESP AOF ({out['aof_resp_bytes'] / 2**20:.0f} MiB) ready after "
                  f"{server.ready_after:.2f} s", flush=True)
            out["rewrite"] = measure_rewrite_pause(server, args.timeout)
            rw = out["rewrite"]
            print(f"  {label}: BGREWRITEAOF {rw['rewrite_s']:.2f} s, longest gap PING "
                  f"{rw['max_gap_ms']:.1f} ms / GET {rw['get_max_gap_ms']:.1f} ms (baseline "
                  f"{rw['baseline_max_gap_ms']:.1f} / {rw['baseline_get_max_gap_ms']:.1f} ms)",
                  flush=True)
            started = time.perf_counter()
            out["save_reply"] = _command(server.port, "SAVE")
            out["save_s"] = time.perf_counter() - started
        out["rdb_bytes"] = _files_size(Path(workdir), "dump.rdb")
        out["aof_preamble_bytes"] = _aof_bytes(Path(workdir))

        with DirServer(spec_rdb, workdir, args.timeout) as server:
            out["rdb_load_s"] = server.ready_after
            out["rdb_dbsize"] = dbsize(server.port)
            print(f"  {label}: dump.rdb ({out['rdb_bytes'] / 2**20:.0f} MiB) ready after "
                  f"{server.ready_after:.2f} s", flush=True)
        with DirServer(spec_aof, workdir, args.timeout) as server:
            out["aof_preamble_load_s"] = server.ready_after
            out["aof_preamble_dbsize"] = dbsize(server.port)
            print(f"  {label}: RDB-preamble AOF ready after {server.ready_after:.2f} s", flush=True)
    except (ServerError, OSError, ConnectionError) as error:
        out["error"] = str(error)
        print(f"  {label}: error: {error}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return out


# -- report ------------------------------------------------------------------------------------------

def _throughput_table(rows: list[dict[str, object]]) -> str:
    by = {(r["policy"], r["server"]): r for r in rows}
    table = []
    for policy in dict.fromkeys(r["policy"] for r in rows):
        s, r = by.get((policy, "shardis"), {}), by.get((policy, "redis"), {})
        ratio = (s["rps"] / r["rps"]) if s.get("rps") and r.get("rps") else None
        table.append([policy, fmt(s.get("rps"), "rps"), fmt(r.get("rps"), "rps"), fmt(ratio, "ratio"),
                      f"{fmt(s.get('p99_ms'), 'ms')} / {fmt(r.get('p99_ms'), 'ms')}"])
    return markdown_table(["appendfsync", "Shardis SET/s", "Redis SET/s", "Shardis/Redis",
                           "p99 ms S / R"], table)


def _loading_table(results: list[dict[str, object]]) -> str:
    def seconds(value: object) -> str:
        return f"{value:.2f}" if isinstance(value, float) else "—"

    def ms(value: object) -> str:
        return f"{value:.1f}" if isinstance(value, float) else "—"

    rows = []
    for res in results:
        rewrite = res.get("rewrite") or {}
        rows.append([
            res["server"], f"{res['keys']:,}",
            seconds(res.get("aof_resp_load_s")), seconds(res.get("rdb_load_s")),
            seconds(res.get("aof_preamble_load_s")), seconds(rewrite.get("rewrite_s")),
            f"{ms(rewrite.get('max_gap_ms'))} / {ms(rewrite.get('get_max_gap_ms'))}",
            f"{ms(rewrite.get('baseline_max_gap_ms'))} / {ms(rewrite.get('baseline_get_max_gap_ms'))}",
            ms(rewrite.get("snapshot_pause_ms")),
        ])
    return markdown_table(["server", "keys", "RESP AOF load s", "dump.rdb load s",
                           "RDB-preamble AOF load s", "BGREWRITEAOF s",
                           "longest gap ms PING / GET", "baseline gap ms PING / GET",
                           "snapshot pause ms"], rows)


# -- entry points ----------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shardis-cmd", default=default_shardis_cmd(), help="command that starts Shardis")
    parser.add_argument("--redis-server", default=shutil.which("redis-server"), help="reference server binary")
    parser.add_argument("--redis-benchmark", default=None, help="redis-benchmark binary (default: from PATH)")
    parser.add_argument("--no-redis", action="store_true", help="measure Shardis alone")
    parser.add_argument("--shards", type=int, default=None, help="Shardis shard count (default: its own)")
    parser.add_argument("--keys", type=int, default=None, help="keys for the load and rewrite tests (default 1000000)")
    parser.add_argument("-n", "--requests", type=int, default=None, help="SET requests per run (default 200000)")
    parser.add_argument("-c", "--clients", type=int, default=50)
    parser.add_argument("-P", "--pipeline", type=int, default=16)
    parser.add_argument("--policies", default=",".join(POLICIES), help="appendfsync policies (default %(default)s)")
    parser.add_argument("--only", choices=("throughput", "loading"), default=None, help="run one part only")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds allowed for each step")
    parser.add_argument("--quick", action="store_true", help="100k keys and 20k requests: a smoke run")
    parser.add_argument("--out", default=None, help="results directory (default bench/results/<timestamp>)")


def run(args: argparse.Namespace) -> int:
    args.keys = args.keys or (100_000 if args.quick else 1_000_000)
    args.requests = args.requests or (20_000 if args.quick else 200_000)
    args.policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    unknown = set(args.policies) - set(POLICIES)
    if unknown:
        raise SystemExit(f"unknown appendfsync policies: {sorted(unknown)}")
    data: dict[str, object] = {"machine": describe_machine(args.redis_server), "keys": args.keys,
                               "requests": args.requests, "clients": args.clients,
                               "pipeline": args.pipeline, "shards": args.shards}
    sections = []
    if args.only in (None, "throughput"):
        print(f"SET throughput: -t set -P {args.pipeline} -c {args.clients} -n {args.requests}", flush=True)
        throughput = measure_set_throughput(args)
        data["throughput"] = throughput
        sections.append("## SET throughput with appendonly yes\n\n" + _throughput_table(throughput))
    if args.only in (None, "loading"):
        print(f"Load time and rewrite pause with {args.keys:,} keys", flush=True)
        aof = _aof_flags("no")
        rdb = ["--save", "", "--appendonly", "no"]
        loading = []
        for spec_aof, spec_rdb in zip(_specs(args, aof, aof), _specs(args, rdb, rdb)):
            loading.append(measure_loading_and_rewrite(args, spec_aof, spec_rdb, spec_aof.label))
        data["loading"] = loading
        sections.append(f"## Load time and BGREWRITEAOF pause, {args.keys:,} string keys\n\n"
                        + _loading_table(loading))
    notes = [
        ("Load time: from the process start to the first PING answered PONG (not -LOADING), "
        f"polled every {_POLL * 1000:.0f} ms; it includes the interpreter start for Shardis."),
        ("Longest gap: one client sends PING after PING, another GET after GET of an existing key, "
         "during the whole BGREWRITEAOF; the baseline is the same clients for 1 s before it. In "
         "Shardis PING runs on the event loop and never waits for a shard; GET shows the pause of "
         "the snapshot barrier (every shard parked while the key dicts are copied)."),
        ("The load and rewrite data set is written with appendfsync no; the RESP AOF is then one "
        "SET per key in the INCR file."),
    ]
    outdir = new_results_dir(args.out)
    write_results(outdir, "Shardis vs Redis: persistence", "\n\n".join(sections), data, notes)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench persistence", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
