"""Benchmark harness: Shardis measured side by side with a real redis-server (see docs/bench.md).

Modules: `servers` (start, PING readiness, stop, CPU and RSS from /proc), `runner` (redis-benchmark
runs and CSV parsing), `report` (medians, Markdown, JSON, plots), `conns` and `memory` (the
connection and memory probes), `__main__` (the `python -m bench` command line).
"""

from __future__ import annotations

__all__: list[str] = []
