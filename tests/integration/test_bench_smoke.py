"""The benchmark harness runs end to end (a tiny run): `python -m bench run` starts both servers,
drives redis-benchmark, and writes its table. Speed itself is never asserted in tests."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.servers import REPO

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.mark.skipif(shutil.which("redis-benchmark") is None or shutil.which("redis-server") is None,
                    reason="redis-benchmark/redis-server not installed (CI installs redis-tools)")
def test_bench_run_writes_a_table(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bench", "run", "-t", "get", "-P", "1", "-n", "2000", "--rounds", "1",
         "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=100)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "| GET | 1 | 50 |" in result.stdout
    assert (tmp_path / "results.md").exists()


@pytest.mark.skipif(shutil.which("redis-benchmark") is None or shutil.which("redis-server") is None,
                    reason="redis-benchmark/redis-server not installed (CI installs redis-tools)")
def test_bench_replication_writes_a_table(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bench", "replication", "--keys", "2000", "-n", "2000", "-c", "5",
         "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=100, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "| full sync s (REPLICAOF → link up, DBSIZE equal) |" in result.stdout
    assert "| keys loaded into the master | 2,000 | 2,000 | 1.00× |" in result.stdout
    assert "differ" not in result.stdout  # master and replica ended with the same DBSIZE
    assert (tmp_path / "results.md").exists()
