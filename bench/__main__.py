"""`python -m bench [run|study|conns|memory] ...`: measure Shardis side by side with a real redis-server.

See docs/bench.md. Without a subcommand, `run` is assumed.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
from collections.abc import Callable
from contextlib import ExitStack
from typing import TypeVar

from bench.conns import ConnsConfig, measure_connections
from bench.memory import DATASETS, measure_memory
from bench.report import (
    conns_table,
    cost_table,
    describe_machine,
    memory_table,
    new_results_dir,
    plot_cost,
    plot_run,
    plot_study,
    summarize,
    summary_table,
    write_results,
)
from bench.runner import BenchResult, expand_tests, find_benchmark, run_benchmark
from bench.servers import (
    Server,
    ServerError,
    ServerSpec,
    default_shardis_cmd,
    is_redis_stand_in,
    raise_nofile_limit,
    redis_spec,
    shardis_spec,
    split_cpus,
)

__all__ = ["build_parser", "main"]

T = TypeVar("T")

SUBCOMMANDS = ("run", "study", "conns", "memory", "persistence", "replication")
_NO_PLOTS = "matplotlib is not installed, so no plots were drawn (install the extra: pip install -e '.[bench]')"


def _ints(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected a comma list of positive integers, got {text!r}")
    return values


def _positive(text: str) -> int:
    return _ints(text)[0]


def _common(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("servers")
    g.add_argument("--shardis-cmd", default=default_shardis_cmd(),
                   help="command that starts Shardis; the harness appends --port/--bind (default: %(default)s). "
                        "A command naming redis-server is a stand-in: --shards is not passed to it.")
    g.add_argument("--shardis-arg", action="append", default=[], metavar="ARG",
                   help="extra argument for Shardis, repeatable: --shardis-arg=--dispatch --shardis-arg=inline")
    g.add_argument("--redis-server", default=shutil.which("redis-server"), help="reference server binary")
    g.add_argument("--no-redis", action="store_true", help="measure Shardis alone")
    g.add_argument("--persistence", choices=("off", "everysec", "always"), default=None,
                   help="persistence for both servers (default off: --save '' --appendonly no).")
    g.add_argument("--out", default=None, help="results directory (default bench/results/<timestamp>)")
    g.add_argument("--timeout", type=float, default=None, help="seconds allowed for each benchmark run or load")
    g.add_argument("--quick", action="store_true", help="a smoke run that finishes in well under a minute")
    g.add_argument("--pin", action="store_true",
                   help="pin the servers to the first CPU and the harness and redis-benchmark to the others")


def _benchmark_args(parser: argparse.ArgumentParser, tests: str, pipelines: str, clients: str, requests: int) -> None:
    parser.add_argument("-t", "--tests", default=None, help=f"redis-benchmark tests (default: {tests})")
    parser.add_argument("-P", "--pipelines", type=_ints, default=None, help=f"pipeline depths (default {pipelines})")
    parser.add_argument("-c", "--clients", type=_ints, default=None, help=f"parallel clients (default {clients})")
    parser.add_argument("-n", "--requests", type=_positive, default=None, help=f"requests per run (default {requests})")
    parser.add_argument("--rounds", type=_positive, default=None, help="alternating A/B rounds (default 3)")
    parser.add_argument("-r", "--keyspace", type=_positive, default=None,
                        help="redis-benchmark -r: random keys out of this many (study default 10000, "
                             "so keys spread over the shards; run default: one fixed key, as redis-benchmark)")
    parser.add_argument("--redis-benchmark", default=None, help="redis-benchmark binary (default: from PATH)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="redis-benchmark tests, Shardis and Redis alternately")
    _common(run)
    _benchmark_args(run, "all redis-benchmark default tests", "1,16", "50", 100000)
    run.add_argument("--shards", type=_positive, default=None, help="Shardis shard count (default: its own)")

    study = sub.add_parser("study", help="the concurrency study: sweep shards, pipeline depth and clients")
    _common(study)
    _benchmark_args(study, "set,get", "1,4,16,64", "1,50,500", 100000)
    study.add_argument("--shard-counts", type=_ints, default=None, help="Shardis shard counts (default 1,2,4,8,16)")
    study.add_argument("--design", action="append", default=[], metavar="LABEL=ARGS",
                       help="a Shardis design to compare, e.g. 'inline=--dispatch inline'; repeatable")

    conns = sub.add_parser("conns", help="many idle connections: RSS per connection, p99 of the active 1%%")
    _common(conns)
    conns.add_argument("--connections", type=_positive, default=None, help="connections per server (default 10000)")
    conns.add_argument("--active-fraction", type=float, default=0.01, help="share of them that send requests")
    conns.add_argument("--ops", type=_positive, default=None, help="requests per active connection (default 500)")
    conns.add_argument("--rate", type=float, default=100.0, help="requests per second of each active connection")
    conns.add_argument("--redis-benchmark", default=None, help="redis-benchmark binary (default: from PATH)")
    conns.add_argument("--shards", type=_positive, default=None)

    persistence = sub.add_parser(
        "persistence", help="fsync-policy SET throughput, 1M-key load times, BGREWRITEAOF pause")
    import bench.persistence as persistence_bench
    persistence_bench.add_arguments(persistence)
    replication = sub.add_parser(
        "replication", help="full-sync time of 1M keys and replica lag under a SET load")
    import bench.replication as replication_bench
    replication_bench.add_arguments(replication)
    memory = sub.add_parser("memory", help="RSS for 1M string keys and for hash/list/set/zset keys")
    _common(memory)
    memory.add_argument("--keys", type=_positive, default=None, help="string keys (default 1000000)")
    memory.add_argument("--aggregate-keys", type=_positive, default=None,
                        help="keys of each aggregate type, 10 elements each (default 100000)")
    memory.add_argument("--datasets", default=",".join(DATASETS), help="comma list of %(default)s")
    memory.add_argument("--shards", type=_positive, default=None)
    return parser


def _default(value: T | None, quick: bool, quick_value: T, normal: T) -> T:
    """The user's value, else the --quick or the normal default."""
    return value if value is not None else (quick_value if quick else normal)


def _reference(args: argparse.Namespace, notes: list[str], extra: list[str] | None = None) -> ServerSpec | None:
    if args.no_redis:
        notes.append("Redis reference skipped (--no-redis).")
        return None
    if not args.redis_server:
        notes.append("redis-server is not installed: Shardis measured alone, no ratios.")
        return None
    return redis_spec(args.redis_server, args.persistence or "off", extra)


def _pinning(args: argparse.Namespace, notes: list[str]) -> set[int] | None:
    """With --pin: move the harness (and so redis-benchmark) off the CPU the servers get; returns that CPU set."""
    if not args.pin:
        return None
    layout = split_cpus()
    if layout is None:
        notes.append("--pin ignored: only one CPU is available.")
        return None
    server_cpus, client_cpus = layout
    os.sched_setaffinity(0, client_cpus)
    notes.append(f"Pinned: servers on CPUs {sorted(server_cpus)}, "
                 f"redis-benchmark and the harness on {sorted(client_cpus)}.")
    return server_cpus


def _shardis_notes(args: argparse.Namespace, notes: list[str]) -> None:
    if is_redis_stand_in(shlex.split(args.shardis_cmd)):
        notes.append(f"'Shardis' is a redis-server stand-in ({args.shardis_cmd}); --shards is not passed to it.")
    notes.append(f"Persistence: {args.persistence or 'off'} on both servers.")


def _progress(done: int, total: int, record: BenchResult, round_no: int) -> None:
    if record.ok:
        text = f"{record.rps:,.0f} req/s, p99 {record.p99_ms:.3f} ms, {record.cpu_us_per_req:.2f} µs CPU/req"
    else:
        text = f"FAILED: {record.error}"
    print(f"[{done}/{total}] {record.server:7} {record.test.upper():11} P={record.pipeline:<3} "
          f"c={record.clients:<3} round {round_no}: {text}", file=sys.stderr, flush=True)


def _benchmarker(binary: str, requests: int, timeout: float,
                 keyspace: int | None = None) -> Callable[[Server, str, int, int], BenchResult]:
    def bench(server: Server, test: str, pipeline: int, clients: int) -> BenchResult:
        return run_benchmark(server, test, binary=binary, requests=requests, clients=clients, pipeline=pipeline,
                             timeout=timeout, keyspace=keyspace)

    return bench


def _alternate(
    servers: list[Server],
    plan: list[tuple[str, int, int]],
    rounds: int,
    bench: Callable[[Server, str, int, int], BenchResult],
    tags: dict[str, object],
    counter: list[int],
) -> list[dict[str, object]]:
    """For each (test, pipeline, clients): rounds of A and B, adjacent in time so each round gives a fair ratio.

    The order flips every round (A B, B A, A B, ...), so neither server always runs first.
    """
    records = []
    for test, pipeline, clients in plan:
        for round_no in range(1, rounds + 1):
            for server in servers if round_no % 2 else servers[::-1]:
                result = bench(server, test, pipeline, clients)
                counter[0] += 1
                _progress(counter[0], counter[1], result, round_no)
                records.append(result.to_dict() | {"round": round_no} | tags)
    return records


def cmd_run(args: argparse.Namespace) -> int:
    tests = expand_tests(args.tests or ("set,get" if args.quick else None))
    pipelines = _default(args.pipelines, args.quick, [1, 16], [1, 16])
    clients = _default(args.clients, args.quick, [50], [50])
    requests = _default(args.requests, args.quick, 20000, 100000)
    rounds = _default(args.rounds, args.quick, 3, 3)
    timeout = _default(args.timeout, args.quick, 60.0, 600.0)
    binary = find_benchmark(args.redis_benchmark)
    notes: list[str] = []
    shardis = shardis_spec(args.shardis_cmd, args.persistence, args.shards, args.shardis_arg)
    redis = _reference(args, notes)
    _shardis_notes(args, notes)
    cpus = _pinning(args, notes)
    plan = [(t, p, c) for t in tests for p in pipelines for c in clients]
    raise_nofile_limit(max(clients) * 2 + 1024)
    servers: list[Server] = []
    with ExitStack() as stack:
        for spec in filter(None, (shardis, redis)):
            servers.append(stack.enter_context(Server(spec, cpus)))
        counter = [0, len(plan) * rounds * len(servers)]
        bench = _benchmarker(binary, requests, timeout, args.keyspace)
        tags = {"design": "default", "shards": args.shards}
        records = _alternate(servers, plan, rounds, bench, tags, counter)
        argv = {s.label: s.argv for s in servers}
    rows = summarize(records)
    outdir = new_results_dir(args.out)
    plots = plot_run(rows, outdir)
    notes.append(f"{rounds} rounds of Shardis and Redis (order flipped each round), {requests} requests per run; "
                 "medians over rounds; ratio = median of per-round Shardis/Redis; CPU = server user+system time "
                 "per request.")
    notes.append(f"Plots: {', '.join(plots)}" if plots else _NO_PLOTS)
    data = {"mode": "run", "args": vars(args), "machine": describe_machine(args.redis_server), "argv": argv,
            "records": records, "summary": rows}
    write_results(outdir, "Shardis vs Redis: redis-benchmark", summary_table(rows), data, notes)
    return 0


def _designs(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    designs = []
    for item in args.design:
        label, _, extra = item.partition("=")
        if not label:
            raise SystemExit(f"--design needs LABEL=ARGS, got {item!r}")
        designs.append((label, [*args.shardis_arg, *shlex.split(extra)]))
    return designs or [("default", list(args.shardis_arg))]


def cmd_study(args: argparse.Namespace) -> int:
    tests = expand_tests(args.tests or "set,get")
    pipelines = _default(args.pipelines, args.quick, [1, 16], [1, 4, 16, 64])
    clients = _default(args.clients, args.quick, [1, 50], [1, 50, 500])
    shard_counts = _default(args.shard_counts, args.quick, [1, 2], [1, 2, 4, 8, 16])
    requests = _default(args.requests, args.quick, 5000, 100000)
    rounds = _default(args.rounds, args.quick, 1, 3)
    timeout = _default(args.timeout, args.quick, 30.0, 600.0)
    binary = find_benchmark(args.redis_benchmark)
    notes: list[str] = []
    designs = _designs(args)
    redis_ref = _reference(args, notes)
    _shardis_notes(args, notes)
    cpus = _pinning(args, notes)
    plan = [(t, p, c) for t in tests for p in pipelines for c in clients]
    raise_nofile_limit(max(clients) * 2 + 1024)
    per_server = len(plan) * rounds * len(designs) * len(shard_counts)
    counter = [0, per_server * (2 if redis_ref else 1)]
    keyspace = args.keyspace or 10000
    bench = _benchmarker(binary, requests, timeout, keyspace)

    records: list[dict[str, object]] = []
    argv: dict[str, object] = {}
    with ExitStack() as stack:
        redis = stack.enter_context(Server(redis_ref, cpus)) if redis_ref else None
        for label, extra in designs:
            for shards in shard_counts:
                spec = shardis_spec(args.shardis_cmd, args.persistence, shards, extra)
                try:
                    with Server(spec, cpus) as shardis:
                        argv[f"{label}/{shards}"] = shardis.argv
                        servers = [shardis, redis] if redis else [shardis]
                        tags = {"design": label, "shards": shards}
                        records += _alternate(servers, plan, rounds, bench, tags, counter)
                except ServerError as error:
                    notes.append(f"design {label} with {shards} shards did not start: {error}")
        if redis:
            argv["redis"] = redis.argv
    rows = summarize(records)
    outdir = new_results_dir(args.out)
    plots = plot_study(rows, outdir) + plot_cost(rows, outdir)
    notes.append(f"{rounds} round(s) per point, {requests} requests per run on random keys out of {keyspace} "
                 "(redis-benchmark -r); Redis runs alternate with every Shardis configuration and its reference "
                 "line is the median over all of them.")
    notes.append(f"Plots: {', '.join(plots)}" if plots else _NO_PLOTS)
    data = {"mode": "study", "args": vars(args), "machine": describe_machine(args.redis_server), "argv": argv,
            "designs": designs, "records": records, "summary": rows}
    notes.append("The second table splits the server CPU per request by thread (from /proc/<pid>/task/*/schedstat) "
                 "and counts how often a server thread was scheduled in; commands/message is from INFO actors.")
    tables = summary_table(rows, with_design=True) + "\n\n## Where the CPU goes\n\n" + cost_table(rows)
    write_results(outdir, "Concurrency study", tables, data, notes)
    return 0


def cmd_conns(args: argparse.Namespace) -> int:
    connections = int(_default(args.connections, args.quick, 1000, 10000))
    ops = int(_default(args.ops, args.quick, 100, 500))
    duration = float(_default(args.timeout, args.quick, 20.0, 120.0))
    notes: list[str] = []
    limit = raise_nofile_limit(connections + 1024)
    if limit < connections + 256:
        notes.append(f"the open-files limit ({limit}) allows only {limit - 256} connections")
        connections = limit - 256
    benchmark = args.redis_benchmark or shutil.which("redis-benchmark")
    config = ConnsConfig(connections, args.active_fraction, ops, args.rate, duration, benchmark)
    # Redis's default maxclients (10000) would refuse the last few idle ones and redis-benchmark's clients.
    maxclients = ["--maxclients", str(connections + config.active + 64)]
    stand_in_extra = maxclients if is_redis_stand_in(shlex.split(args.shardis_cmd)) else []
    shardis = shardis_spec(args.shardis_cmd, args.persistence, args.shards, [*args.shardis_arg, *stand_in_extra])
    redis = _reference(args, notes, maxclients)
    _shardis_notes(args, notes)
    cpus = _pinning(args, notes)
    results = []
    with ExitStack() as stack:
        for spec in filter(None, (shardis, redis)):
            server = stack.enter_context(Server(spec, cpus))
            print(f"{server.label}: opening {connections} connections ...", file=sys.stderr, flush=True)
            results.append(measure_connections(server, config))
    table = conns_table(results)
    for r in results:
        benchmark_error = (r["benchmark"] or {}).get("error")
        for problem in filter(None, [r["first_connect_error"], *r["active_errors"], benchmark_error]):
            notes.append(f"{r['server']}: {problem}")
    notes.append(f"{config.active} active connections, each up to {ops} PING/SET round trips at {args.rate:g}/s "
                 f"(bounded by {duration:g}s), while the rest stay idle. RSS from /proc/<pid>/status VmRSS.")
    notes.append(f"'bench p50/p99': redis-benchmark SET with {config.active} clients while the idle connections are "
                 "held (a C client in closed loop: the server's latency under that load).")
    data = {"mode": "conns", "args": vars(args), "machine": describe_machine(args.redis_server), "results": results}
    write_results(new_results_dir(args.out), "Connections", table, data, notes)
    return 0


def cmd_memory(args: argparse.Namespace) -> int:
    string_keys = int(_default(args.keys, args.quick, 100000, 1000000))
    aggregate_keys = int(_default(args.aggregate_keys, args.quick, 10000, 100000))
    timeout = float(_default(args.timeout, args.quick, 60.0, 600.0))
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        raise SystemExit(f"unknown data sets {unknown}; known: {', '.join(DATASETS)}")
    notes: list[str] = []
    shardis = shardis_spec(args.shardis_cmd, args.persistence, args.shards, args.shardis_arg)
    redis = _reference(args, notes)
    _shardis_notes(args, notes)
    cpus = _pinning(args, notes)
    results = []
    for name in names:
        dataset = DATASETS[name]
        keys = string_keys if name == "strings" else aggregate_keys
        with ExitStack() as stack:  # a fresh pair of servers for every data set
            for spec in filter(None, (shardis, redis)):
                server = stack.enter_context(Server(spec, cpus))
                print(f"{server.label}: loading {keys} {name} ...", file=sys.stderr, flush=True)
                results.append(measure_memory(server, dataset, keys, timeout))
    table = memory_table(results, names)
    for res in results:
        if res["errors"] or res["first_error"]:
            first = str(res["first_error"])[:100]
            notes.append(f"{res['server']} {res['dataset']}: {res['errors']} errors (no ratio), first: {first}")
    notes.append("Each data set is loaded into a freshly started pair of servers; growth = RSS after loading minus "
                 "RSS right after start. Values, members and elements are 16 bytes; aggregates have 10 elements.")
    data = {"mode": "memory", "args": vars(args), "machine": describe_machine(args.redis_server), "results": results}
    write_results(new_results_dir(args.out), "Memory", table, data, notes)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help")):
        argv.insert(0, "run")
    args = build_parser().parse_args(argv)
    if args.command == "persistence":
        import bench.persistence as persistence_bench
        return persistence_bench.run(args)
    if args.command == "replication":
        import bench.replication as replication_bench
        return replication_bench.run(args)
    handler = {"run": cmd_run, "study": cmd_study, "conns": cmd_conns, "memory": cmd_memory}[args.command]
    try:
        return handler(args)
    except ServerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; servers stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
