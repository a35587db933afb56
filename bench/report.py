"""Summaries, Markdown tables, JSON and PNG plots of benchmark records.

A record is one redis-benchmark run as a dict (see runner.BenchResult) plus where it belongs:
`round`, `design` and `shards`. A Redis run carries the design and shard count of the Shardis run
it alternated with, so each pair of adjacent runs gives one ratio, and the reported ratio is the
median of those per-round ratios (robust to drift that hits both servers alike).
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = [
    "RESULTS_DIR",
    "conns_table",
    "cost_table",
    "describe_machine",
    "fmt",
    "markdown_table",
    "memory_table",
    "new_results_dir",
    "plot_cost",
    "plot_run",
    "plot_study",
    "summarize",
    "summary_table",
    "try_pyplot",
    "write_results",
]

RESULTS_DIR = Path(__file__).resolve().parent / "results"
_GROUP = ("design", "shards", "test", "pipeline", "clients")
_METRICS = ("rps", "p50_ms", "p99_ms", "cpu_us_per_req", "loop_us_per_req", "threads_us_per_req",
            "slices_per_req", "runq_us_per_req", "cmds_per_msg")


def new_results_dir(base: str | None = None) -> Path:
    """bench/results/<timestamp>/ (or `base`), never reusing an existing directory."""
    if base:
        path = Path(base)
        path.mkdir(parents=True, exist_ok=True)
        return path
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for suffix in [""] + [f"-{n}" for n in range(1, 100)]:
        path = RESULTS_DIR / f"{stamp}{suffix}"
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    raise RuntimeError("could not create a results directory")


def describe_machine(redis_binary: str | None) -> dict[str, object]:
    """What the numbers depend on, stored with them."""
    info: dict[str, object] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if redis_binary:
        try:
            out = subprocess.run([redis_binary, "--version"], capture_output=True, text=True, timeout=10, check=False)
            info["redis_server"] = out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return info


def _median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(present) if present else None


def summarize(records: Sequence[dict[str, object]], a: str = "shardis", b: str = "redis") -> list[dict[str, object]]:
    """One row per (design, shards, test, pipeline, clients): medians for each server and the median ratio a/b."""
    groups: dict[tuple[object, ...], list[dict[str, object]]] = {}
    for record in records:
        groups.setdefault(tuple(record.get(k) for k in _GROUP), []).append(record)
    rows = []
    for key, members in groups.items():
        row: dict[str, object] = dict(zip(_GROUP, key))
        for server in (a, b):
            ok = [m for m in members if m["server"] == server and m.get("error") is None]
            row[server] = {metric: _median(m.get(metric) for m in ok) for metric in _METRICS} | {"runs": len(ok)}
        by_round: dict[object, dict[str, float]] = {}
        for m in members:
            if m.get("error") is None and m.get("rps"):
                by_round.setdefault(m["round"], {})[str(m["server"])] = float(m["rps"])  # type: ignore[arg-type]
        row["ratio"] = _median(r[a] / r[b] for r in by_round.values() if a in r and b in r)
        row["errors"] = sorted({str(m["error"]) for m in members if m.get("error")})
        rows.append(row)
    return rows


def fmt(value: object, kind: str = "") -> str:
    """Table cell text: thousands for req/s, two decimals and × for ratios, — for missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if kind in ("rps", "int"):
        return f"{value:,.0f}"
    if kind == "ratio":
        return f"{value:.2f}×"
    if kind == "ms":
        return f"{value:.3f}"
    if kind == "us":
        return f"{value:.2f}"
    if kind == "bytes":
        return f"{value / 2**20:,.1f} MiB"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def summary_table(rows: Sequence[dict[str, object]], with_design: bool = False) -> str:
    """The per-test table: req/s of each, the median ratio, p50/p99 and CPU per request (Shardis / Redis)."""
    headers = ["test", "P", "c", "Shardis req/s", "Redis req/s", "Shardis/Redis",
               "p50 ms S / R", "p99 ms S / R", "CPU µs/req S / R"]
    if with_design:
        headers = ["design", "shards", *headers]
    body = []
    for row in rows:
        s, r = row["shardis"], row["redis"]
        cells = [
            row["test"].upper(), row["pipeline"], row["clients"], fmt(s["rps"], "rps"), fmt(r["rps"], "rps"),
            fmt(row["ratio"], "ratio"), f"{fmt(s['p50_ms'], 'ms')} / {fmt(r['p50_ms'], 'ms')}",
            f"{fmt(s['p99_ms'], 'ms')} / {fmt(r['p99_ms'], 'ms')}",
            f"{fmt(s['cpu_us_per_req'], 'us')} / {fmt(r['cpu_us_per_req'], 'us')}",
        ]
        if with_design:
            cells = [row["design"], fmt(row["shards"]), *cells]
        body.append(cells)
    table = markdown_table(headers, body)
    errors = [f"- {row['test']} P={row['pipeline']} c={row['clients']}: {e}" for row in rows for e in row["errors"]]
    if errors:
        table += "\n\nFailed runs:\n" + "\n".join(errors)
    return table


def cost_table(rows: Sequence[dict[str, object]]) -> str:
    """Where the server CPU went, per request: the loop (main) thread, the other threads, how many
    times a server thread was scheduled in, and (Shardis) commands per shard message."""
    headers = ["design", "shards", "test", "P", "c", "loop thread µs/req S / R", "other threads µs/req S / R",
               "sched-ins/req S / R", "run-queue wait µs/req S / R", "commands/message"]
    body = []
    for row in rows:
        s, r = row["shardis"], row["redis"]
        body.append([
            row["design"], fmt(row["shards"]), row["test"].upper(), row["pipeline"], row["clients"],
            f"{fmt(s.get('loop_us_per_req'), 'us')} / {fmt(r.get('loop_us_per_req'), 'us')}",
            f"{fmt(s.get('threads_us_per_req'), 'us')} / {fmt(r.get('threads_us_per_req'), 'us')}",
            f"{fmt(s.get('slices_per_req'), 'us')} / {fmt(r.get('slices_per_req'), 'us')}",
            f"{fmt(s.get('runq_us_per_req'), 'us')} / {fmt(r.get('runq_us_per_req'), 'us')}",
            fmt(s.get("cmds_per_msg"), "us"),
        ])
    return markdown_table(headers, body)


def conns_table(results: Sequence[dict[str, object]]) -> str:
    """Connections probe: RSS per idle connection and the latency of the active ones, per server."""
    rows = [
        [r["server"], f"{r['connections_held']}/{r['connections_wanted']}",
         fmt(r["rss_idle"] - r["rss_before"], "bytes"), fmt(r["bytes_per_conn"], "int"), r["active_conns"],
         r["requests"], fmt(r["p50_ms"], "ms"), fmt(r["p99_ms"], "ms"), fmt(r["max_ms"], "ms"),
         f"{fmt((r['benchmark'] or {}).get('p50_ms'), 'ms')} / {fmt((r['benchmark'] or {}).get('p99_ms'), 'ms')}",
         r["connect_errors"] + len(r["active_errors"])]
        for r in results
    ]
    headers = ["server", "held", "RSS growth (idle)", "bytes/conn", "active", "requests", "p50 ms", "p99 ms",
               "max ms", "bench p50/p99 ms", "errors"]
    table = markdown_table(headers, rows)
    by = {r["server"]: r for r in results}
    if "shardis" in by and "redis" in by and by["redis"]["bytes_per_conn"] and by["shardis"]["bytes_per_conn"]:
        ratio = by["shardis"]["bytes_per_conn"] / by["redis"]["bytes_per_conn"]
        table += f"\n\nMemory per idle connection, Shardis/Redis: {fmt(ratio, 'ratio')}"
    return table


def _ratio(a: dict[str, object], b: dict[str, object], field: str) -> str:
    """a/b of one field; none when either load had errors, since the data would then differ."""
    if a.get("errors") or b.get("errors") or not a.get(field) or not b.get(field):
        return "—"
    return fmt(a[field] / b[field], "ratio")


def memory_table(results: Sequence[dict[str, object]], datasets: Sequence[str]) -> str:
    """Memory probe: RSS after loading and RSS growth of each server per data set, with Shardis/Redis ratios."""
    rows = []
    for name in datasets:
        by = {r["server"]: r for r in results if r["dataset"] == name}
        s, r = by.get("shardis", {}), by.get("redis", {})
        first = s or r
        rows.append([
            name, f"{first['keys']:,} × {first['elements_per_key']}",
            fmt(s.get("rss_after"), "bytes"), fmt(r.get("rss_after"), "bytes"), _ratio(s, r, "rss_after"),
            fmt(s.get("rss_growth"), "bytes"), fmt(r.get("rss_growth"), "bytes"), _ratio(s, r, "rss_growth"),
            f"{fmt(s.get('bytes_per_key'), 'int')} / {fmt(r.get('bytes_per_key'), 'int')}",
            f"{fmt(s.get('dbsize'))} / {fmt(r.get('dbsize'))}",
        ])
    headers = ["data set", "keys × elements", "Shardis RSS", "Redis RSS", "RSS ratio", "Shardis growth",
               "Redis growth", "growth ratio", "bytes/key S / R", "DBSIZE S / R"]
    return markdown_table(headers, rows)


def write_results(outdir: Path, title: str, markdown: str, data: dict[str, object], notes: Sequence[str]) -> None:
    """results.md (the table and notes) and results.json (raw numbers) in `outdir`; the table also to stdout."""
    text = f"# {title}\n\n{markdown}\n"
    if notes:
        text += "\n" + "\n".join(f"- {note}" for note in notes) + "\n"
    (outdir / "results.md").write_text(text)
    (outdir / "results.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    print(text)
    print(f"results written to {outdir}")


def try_pyplot() -> object | None:
    """matplotlib.pyplot on the Agg backend, or None when the optional `bench` extra is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def _value(row: dict[str, object] | None, server: str, metric: str, divisor: float = 1.0) -> float:
    if row is None:
        return math.nan
    value = row[server][metric]  # type: ignore[index]
    return math.nan if value is None else float(value) / divisor


# (metric, axis label, divisor): throughput is drawn in thousands of requests per second.
_PANELS = (
    ("rps", "k requests/s", 1000.0),
    ("p99_ms", "p99 latency (ms)", 1.0),
    ("cpu_us_per_req", "server CPU per request (µs)", 1.0),
)


def plot_run(rows: Sequence[dict[str, object]], outdir: Path) -> list[str]:
    """One PNG per (pipeline, clients): bars of req/s, p99 and CPU/request per test, Shardis beside Redis."""
    plt = try_pyplot()
    if plt is None:
        return []
    written = []
    for pipeline, clients in dict.fromkeys((r["pipeline"], r["clients"]) for r in rows):
        subset = [r for r in rows if r["pipeline"] == pipeline and r["clients"] == clients]
        tests = [str(r["test"]).upper() for r in subset]
        fig, axes = plt.subplots(3, 1, figsize=(max(7, 0.6 * len(tests)), 11))  # type: ignore[attr-defined]
        width = 0.4
        for ax, (metric, label, div) in zip(axes, _PANELS):
            xs = range(len(tests))
            for offset, server, name in ((-width / 2, "shardis", "Shardis"), (width / 2, "redis", "Redis")):
                ys = [_value(r, server, metric, div) for r in subset]
                ax.bar([x + offset for x in xs], ys, width, label=name)
            ax.set_xticks(list(xs), tests, rotation=45, ha="right", fontsize=8)
            ax.set_ylabel(label)
            ax.grid(axis="y", alpha=0.3)
        axes[0].legend()
        fig.suptitle(f"redis-benchmark -P {pipeline} -c {clients} (medians)")
        fig.tight_layout()
        name = f"run-P{pipeline}-c{clients}.png"
        fig.savefig(outdir / name, dpi=110)
        plt.close(fig)  # type: ignore[attr-defined]
        written.append(name)
    return written


def _pick(values: Sequence[int], preferred: int) -> int:
    return preferred if preferred in values else sorted(values)[len(values) // 2]


_DIMENSIONS = (("shards", "shards"), ("pipeline", "pipeline depth"), ("clients", "clients"))
_SHORT = {"shards": "shards", "pipeline": "P", "clients": "c"}


def plot_study(rows: Sequence[dict[str, object]], outdir: Path) -> list[str]:
    """Per test, a 3×3 grid: req/s, p99 and CPU/request (rows) against shards, pipeline and clients (columns).

    Each column varies one dimension and holds the others at a base point (P=16, c=50, 4 shards when
    swept). The pipeline and clients columns draw one line per shard count, or one per design when
    several designs were compared. Redis is the dashed black reference line.
    """
    plt = try_pyplot()
    if plt is None:
        return []
    index = {tuple(r[k] for k in _GROUP): r for r in rows}
    designs = list(dict.fromkeys(r["design"] for r in rows))
    values = {dim: sorted({r[dim] for r in rows if r[dim] is not None}) for dim, _ in _DIMENSIONS}
    base = {dim: (_pick(xs, {"shards": 4, "pipeline": 16, "clients": 50}[dim]) if xs else None)
            for dim, xs in values.items()}

    def series(dim: str) -> list[tuple[str, dict[str, object]]]:
        if dim == "shards" or len(designs) > 1:
            return [(str(d) if dim == "shards" else f"{d} ({base['shards']} shards)", {"design": d}) for d in designs]
        return [(f"{s} shards", {"design": designs[0], "shards": s}) for s in values["shards"] or [None]]

    def point(test: object, coords: dict[str, object], server: str, metric: str, div: float) -> float:
        if server == "shardis":
            key = (coords["design"], coords["shards"], test, coords["pipeline"], coords["clients"])
            return _value(index.get(key), server, metric, div)
        same = [_value(r, server, metric, div) for r in rows
                if (r["test"], r["pipeline"], r["clients"]) == (test, coords["pipeline"], coords["clients"])]
        present = [v for v in same if not math.isnan(v)]
        return statistics.median(present) if present else math.nan  # Redis: over all configurations

    written = []
    for test in dict.fromkeys(r["test"] for r in rows):
        fig, axes = plt.subplots(3, 3, figsize=(15, 11))  # type: ignore[attr-defined]
        for row_i, (metric, label, div) in enumerate(_PANELS):
            for col, (dim, dim_label) in enumerate(_DIMENSIONS):
                ax, xs = axes[row_i][col], values[dim] or [1]
                for name, fixed in series(dim):
                    ys = [point(test, base | fixed | {dim: x}, "shardis", metric, div) for x in xs]
                    ax.plot(xs, ys, marker="o", label=name)
                ref = [point(test, base | {dim: x}, "redis", metric, div) for x in xs]
                ax.plot(xs, ref, color="black", linestyle="--", marker="x", label="Redis")
                held = ", ".join(f"{_SHORT[k]}={v}" for k, v in base.items() if k not in (dim, "shards"))
                ax.set_xscale("log", base=2)
                ax.set_xticks(xs, [str(x) for x in xs])
                ax.minorticks_off()
                ax.set_xlabel(f"{dim_label} ({held})")
                ax.set_ylabel(label)
                ax.set_ylim(bottom=0)
                ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=8)
        axes[0][1].legend(fontsize=8)
        fig.suptitle(f"Concurrency study: {str(test).upper()} (medians; Redis dashed)")
        fig.tight_layout()
        name = f"study-{test}.png"
        fig.savefig(outdir / name, dpi=110)
        plt.close(fig)  # type: ignore[attr-defined]
        written.append(name)
    return written


def plot_cost(rows: Sequence[dict[str, object]], outdir: Path) -> list[str]:
    """Per test, where the CPU of one request goes, for every (design, shards) and Redis.

    Columns are pipeline depths (1 and 16 when measured) at c=50 (or the middle client count).
    Top: stacked bars of loop-thread and other-thread CPU µs per request. Bottom: how many times a
    server thread was scheduled in per request, with the shards' commands per message above each bar.
    """
    plt = try_pyplot()
    if plt is None:
        return []
    clients_all = sorted({r["clients"] for r in rows})
    pipelines_all = sorted({r["pipeline"] for r in rows})
    if not clients_all or not pipelines_all:
        return []
    clients = _pick(clients_all, 50)
    pipelines = [p for p in (1, 16) if p in pipelines_all] or pipelines_all[:2]
    configs = list(dict.fromkeys((r["design"], r["shards"]) for r in rows))
    written = []
    for test in dict.fromkeys(r["test"] for r in rows):
        fig, axes = plt.subplots(2, len(pipelines), figsize=(max(7, 0.55 * len(configs)) * len(pipelines), 8),
                                 squeeze=False)  # type: ignore[attr-defined]
        for col, pipeline in enumerate(pipelines):
            at = {(r["design"], r["shards"]): r for r in rows
                  if (r["test"], r["pipeline"], r["clients"]) == (test, pipeline, clients)}
            redis_rows = list(at.values())
            labels = [f"{d}/{s}" for d, s in configs] + ["Redis"]

            def metric(row: dict[str, object] | None, server: str, name: str) -> float:
                return _value(row, server, name) if row is not None else math.nan

            def redis_metric(name: str, redis_rows: list = redis_rows) -> float:
                present = [v for v in (metric(r, "redis", name) for r in redis_rows) if not math.isnan(v)]
                return statistics.median(present) if present else math.nan

            loop = [metric(at.get(c), "shardis", "loop_us_per_req") for c in configs] + [redis_metric("loop_us_per_req")]
            other = [metric(at.get(c), "shardis", "threads_us_per_req") for c in configs] + \
                [redis_metric("threads_us_per_req")]
            slices = [metric(at.get(c), "shardis", "slices_per_req") for c in configs] + \
                [redis_metric("slices_per_req")]
            batch = [metric(at.get(c), "shardis", "cmds_per_msg") for c in configs] + [math.nan]
            xs = list(range(len(labels)))
            top, bottom = axes[0][col], axes[1][col]
            top.bar(xs, loop, label="event-loop (main) thread")
            top.bar(xs, other, bottom=[0 if math.isnan(v) else v for v in loop], label="other threads (shards)")
            top.set_ylabel("server CPU per request (µs)")
            top.set_title(f"{str(test).upper()} -P {pipeline} -c {clients}")
            top.legend(fontsize=8)
            bottom.bar(xs, slices, color="tab:gray")
            bottom.set_ylabel("threads scheduled in per request")
            for x, (height, size) in enumerate(zip(slices, batch)):
                if not math.isnan(size) and not math.isnan(height):
                    bottom.annotate(f"{size:.0f}" if size >= 10 else f"{size:.1f}", (x, height),
                                    ha="center", va="bottom", fontsize=7)
            bottom.set_xlabel("design/shards (number above a bar: commands per shard message)")
            for ax in (top, bottom):
                ax.set_xticks(xs, labels, rotation=45, ha="right", fontsize=8)
                ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        name = f"study-cpu-{test}.png"
        fig.savefig(outdir / name, dpi=110)
        plt.close(fig)  # type: ignore[attr-defined]
        written.append(name)
    return written
