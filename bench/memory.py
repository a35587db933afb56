"""The memory probe: load a known data set into a fresh server and read its RSS.

Keys are written by a pipelined raw-RESP writer (chunks of commands, then their replies), which is
fast and loads exactly the stated number of distinct keys, unlike redis-benchmark's random keys.
Every data set starts on a freshly started pair of servers, so one set's garbage never counts
against the next.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from bench.conns import resp_command
from bench.servers import HOST, Server

__all__ = ["DATASETS", "Dataset", "dbsize", "load", "measure_memory"]

_CHUNK = 5000
_ELEMENTS = 10


@dataclass(frozen=True)
class Dataset:
    """`keys` keys named `<name>:<i>`, each written by one `verb` command with `arguments(i)`."""

    name: str
    verb: str
    arguments: Callable[[int], list[str]]
    elements: int = 1

    def command(self, i: int) -> bytes:
        return resp_command(self.verb, f"{self.name}:{i:08d}", *self.arguments(i))


def _sixteen(tag: str, i: int, j: int) -> str:
    """A distinct 16-byte, non-numeric string (so Redis cannot store it as an integer)."""
    return f"{tag}{i:012d}-{j:02d}"


def _string_value(i: int) -> list[str]:
    return [f"v{i:015d}"]


def _hash_fields(i: int) -> list[str]:
    return [x for j in range(_ELEMENTS) for x in (f"f{j}", _sixteen("v", i, j))]


def _elements(i: int) -> list[str]:
    return [_sixteen("e", i, j) for j in range(_ELEMENTS)]


def _scored_members(i: int) -> list[str]:
    return [x for j in range(_ELEMENTS) for x in (str(j), _sixteen("z", i, j))]


# Strings: SET with a 16-byte value. Aggregates: 10 fields/elements/members of 16 bytes per key.
DATASETS: dict[str, Dataset] = {
    "strings": Dataset("strings", "SET", _string_value),
    "hashes": Dataset("hashes", "HSET", _hash_fields, _ELEMENTS),
    "lists": Dataset("lists", "RPUSH", _elements, _ELEMENTS),
    "sets": Dataset("sets", "SADD", _elements, _ELEMENTS),
    "zsets": Dataset("zsets", "ZADD", _scored_members, _ELEMENTS),
}


def _chunks(dataset: Dataset, keys: int) -> Iterator[tuple[bytes, int]]:
    for start in range(0, keys, _CHUNK):
        stop = min(keys, start + _CHUNK)
        yield b"".join(dataset.command(i) for i in range(start, stop)), stop - start


def load(port: int, dataset: Dataset, keys: int, timeout: float) -> dict[str, object]:
    """Pipeline the data set in chunks; every reply is one line (+OK, :n or -error). Bounded by `timeout`."""
    deadline = time.monotonic() + timeout
    replies = errors = 0
    first_error: str | None = None
    started = time.perf_counter()
    with socket.create_connection((HOST, port), timeout=30) as sock:
        for payload, count in _chunks(dataset, keys):
            if time.monotonic() > deadline:
                first_error = first_error or f"stopped at the {timeout:g}s bound"
                break
            sock.sendall(payload)
            pending = b""
            seen = 0
            while seen < count:
                data = sock.recv(1 << 16)
                if not data:
                    raise ConnectionError("server closed the connection while loading")
                pending += data
                lines = pending.split(b"\r\n")
                pending = lines.pop()
                seen += len(lines)
                for line in lines:
                    if line.startswith(b"-"):
                        errors += 1
                        first_error = first_error or line.decode(errors="replace")
            replies += seen
    return {"replies": replies, "errors": errors, "first_error": first_error, "load_s": time.perf_counter() - started}


def dbsize(port: int) -> int:
    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.sendall(resp_command("DBSIZE"))
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = sock.recv(256)
            if not chunk:
                break
            data += chunk
    return int(data[1:].strip()) if data.startswith(b":") else -1


def measure_memory(server: Server, dataset: Dataset, keys: int, timeout: float) -> dict[str, object]:
    """RSS before and after loading `keys` keys of `dataset` into a freshly started server."""
    rss_before = server.rss_bytes()
    outcome = load(server.port, dataset, keys, timeout)
    rss_after = server.rss_bytes()
    return {
        "server": server.label,
        "dataset": dataset.name,
        "keys": keys,
        "elements_per_key": dataset.elements,
        "dbsize": dbsize(server.port),
        "rss_before": rss_before,
        "rss_after": rss_after,
        "rss_growth": rss_after - rss_before,
        "bytes_per_key": (rss_after - rss_before) / keys if keys else None,
        **outcome,
    }
