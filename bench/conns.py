"""The connections probe: hold many idle TCP connections, measure RSS per connection, then time a few active ones.

Plain asyncio streams speak RESP here (not redis-py) so that ten thousand clients cost the harness
little and the only thing measured is the server. Every connection first answers one PING, so the
server has really accepted it and set up its per-client state before RSS is read.

The active connections are paced (a fixed rate each, open loop): a Python client driven flat out
would measure its own event loop, since 100 coroutines take turns on it. For a closed-loop view the
probe also runs redis-benchmark with as many clients as there are active connections, while the
idle ones are still held.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import time

from bench.runner import parse_csv
from bench.servers import HOST, Server

__all__ = ["ConnsConfig", "measure_connections", "resp_command"]

_PING = b"*1\r\n$4\r\nPING\r\n"
_CONNECT_BATCH = 256  # below the listen backlog of both servers (Redis: 511)
_IO_TIMEOUT = 10.0


def resp_command(*parts: str | bytes) -> bytes:
    """One command as a RESP multibulk array."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class ConnsConfig:
    """How many connections, how many of them active, their request rate, and the bounds of the active phase."""

    def __init__(
        self, connections: int, active_fraction: float, ops: int, rate: float, duration: float, benchmark: str | None
    ) -> None:
        self.connections = connections
        self.active = max(1, round(connections * active_fraction))
        self.ops = ops
        self.rate = rate
        self.duration = duration
        self.benchmark = benchmark


async def _connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), _IO_TIMEOUT)
    try:
        writer.write(_PING)
        reply = await asyncio.wait_for(reader.readuntil(b"\r\n"), _IO_TIMEOUT)
    except BaseException:
        writer.close()
        raise
    if reply != b"+PONG\r\n":
        writer.close()
        raise ConnectionError(reply.decode(errors="replace").strip())
    return reader, writer


async def _open_idle(port: int, count: int, deadline: float) -> tuple[list, list[str]]:
    conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    errors: list[str] = []
    while len(conns) + len(errors) < count and time.monotonic() < deadline:
        batch = min(_CONNECT_BATCH, count - len(conns) - len(errors))
        for outcome in await asyncio.gather(*(_connect(port) for _ in range(batch)), return_exceptions=True):
            if isinstance(outcome, BaseException):
                errors.append(f"{type(outcome).__name__}: {outcome}")
            else:
                conns.append(outcome)
        if len(errors) > count // 10 + 10:
            break  # the server refuses; more attempts only take time
    return conns, errors


async def _active_client(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    index: int,
    config: ConnsConfig,
    latencies: list[float],
) -> str | None:
    """Alternate PING and SET at `config.rate` per second, recording each round trip; returns an error or None."""
    set_cmd = resp_command("SET", f"conns:{index}", "v" * 16)
    interval = 1.0 / config.rate
    start = time.perf_counter() + interval * index / config.active  # spread the clients over one interval
    for i in range(config.ops):
        delay = start + i * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing, not synchronisation
        command, expected = (_PING, b"+PONG\r\n") if i % 2 == 0 else (set_cmd, b"+OK\r\n")
        started = time.perf_counter()
        writer.write(command)
        reply = await reader.readuntil(b"\r\n")
        latencies.append(time.perf_counter() - started)
        if reply != expected:
            return reply.decode(errors="replace").strip()
    return None


async def _close(conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]) -> None:
    for _reader, writer in conns:
        writer.close()
    await asyncio.wait_for(asyncio.gather(*(w.wait_closed() for _r, w in conns), return_exceptions=True), 30)


async def _measure(server: Server, config: ConnsConfig) -> dict[str, object]:
    rss_before = server.rss_bytes()
    started = time.monotonic()
    conns, connect_errors = await _open_idle(server.port, config.connections, started + config.duration * 4)
    connect_s = time.monotonic() - started
    rss_idle = server.rss_bytes()

    step = max(1, len(conns) // config.active)
    active = conns[::step][: config.active]
    latencies: list[float] = []
    active_errors: list[str] = []
    active_started = time.perf_counter()
    try:
        async with asyncio.timeout(config.duration):
            outcomes = await asyncio.gather(
                *(_active_client(r, w, i, config, latencies) for i, (r, w) in enumerate(active)),
                return_exceptions=True,
            )
        active_errors = [str(o) for o in outcomes if o is not None]
    except TimeoutError:
        active_errors.append(f"active phase stopped at the {config.duration:g}s bound")
    active_s = time.perf_counter() - active_started
    rss_active = server.rss_bytes()
    # redis-benchmark's clients take the places of the active ones, so the total stays at N (a server
    # whose maxclients is N, as Redis's default 10000, would refuse more).
    await _close(active)
    closed_loop = await asyncio.to_thread(_closed_loop, server, config) if config.benchmark else None
    active_ids = {id(writer) for _reader, writer in active}
    await _close([conn for conn in conns if id(conn[1]) not in active_ids])

    ordered = sorted(latencies)

    def pct(q: float) -> float | None:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3 if ordered else None

    held = len(conns)
    return {
        "server": server.label,
        "connections_wanted": config.connections,
        "connections_held": held,
        "connect_errors": len(connect_errors),
        "first_connect_error": connect_errors[0] if connect_errors else None,
        "connect_s": connect_s,
        "rss_before": rss_before,
        "rss_idle": rss_idle,
        "rss_active": rss_active,
        "bytes_per_conn": (rss_idle - rss_before) / held if held else None,
        "active_conns": len(active),
        "requests": len(latencies),
        "active_s": active_s,
        "active_rps": len(latencies) / active_s if active_s > 0 else None,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": ordered[-1] * 1e3 if ordered else None,
        "mean_ms": statistics.fmean(ordered) * 1e3 if ordered else None,
        "active_errors": active_errors[:5],
        "benchmark": closed_loop,
        "alive_after": server.alive(),
    }


def _closed_loop(server: Server, config: ConnsConfig) -> dict[str, object]:
    """redis-benchmark SET with one client per active connection, next to the idle ones."""
    argv = [str(config.benchmark), "-h", HOST, "-p", str(server.port), "-c", str(config.active),
            "-n", str(max(10000, config.active * 100)), "-t", "set", "--csv", "--precision", "3"]
    error = ""
    for _attempt in range(3):  # the server may not have seen the active connections' FIN yet
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=config.duration, check=False)
        except subprocess.TimeoutExpired:
            return {"error": f"timeout after {config.duration:g}s"}
        rows = parse_csv(done.stdout)
        if rows and done.returncode == 0:
            return rows[-1]
        error = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
        if "max number of clients" not in error:
            break
    return {"error": error}


def measure_connections(server: Server, config: ConnsConfig) -> dict[str, object]:
    """Run the probe against one running server (uvloop for the client when available)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(_measure(server, config))
    return uvloop.run(_measure(server, config))
