"""Start and stop real server processes for tests: Shardis (python -m actors) and redis-server.

Readiness is polled with PING over a raw socket; nothing sleeps for synchronisation. Servers are
stopped by pid with SIGTERM and their exit is checked, so a shutdown bug fails the test run.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["free_port", "ServerProcess", "start_shardis", "start_redis", "REPO", "REDIS_SERVER"]

REPO = Path(__file__).resolve().parent.parent
REDIS_SERVER = shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            return s.recv(64).startswith((b"+PONG", b"-NOAUTH"))  # -LOADING: not ready yet
    except OSError:
        return False


class ServerProcess:
    """A server subprocess with its port, working dir and log file."""

    def __init__(self, args: list[str], port: int, workdir: str, name: str) -> None:
        self.port = port
        self.workdir = workdir
        self.name = name
        self.log_path = os.path.join(workdir, f"{name}.log")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT,
                                     cwd=workdir)

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")
            if _ping(self.port):
                return
            time.sleep(0.02)  # polling interval, not synchronisation
        raise TimeoutError(f"{self.name} not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        self._log.flush()
        return Path(self.log_path).read_text(errors="replace")[-4000:]

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM by pid, wait, return the exit code (kill if it does not stop)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                self._log.close()
                raise RuntimeError(f"{self.name} ignored SIGTERM:\n{self.log()}")
        self._log.close()
        return self.proc.returncode


def start_shardis(*extra: str, shards: int = 1, workdir: str | None = None,
                  config_file: str | None = None) -> ServerProcess:
    """`config_file` goes first on the command line (CONFIG REWRITE needs a file to rewrite)."""
    port = free_port()
    workdir = workdir or tempfile.mkdtemp(prefix="shardis-test-")
    args = [sys.executable, "-m", "actors", *([config_file] if config_file else []),
            "--port", str(port), "--bind", "127.0.0.1",
            "--shards", str(shards), "--dir", workdir, *extra]
    server = ServerProcess(args, port, workdir, "shardis")
    server.wait_ready()
    return server


def start_redis(*extra: str, workdir: str | None = None) -> ServerProcess:
    if REDIS_SERVER is None:
        raise RuntimeError("redis-server is not installed")
    port = free_port()
    workdir = workdir or tempfile.mkdtemp(prefix="redis-test-")
    args = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", workdir, "--enable-debug-command", "yes", *extra]
    server = ServerProcess(args, port, workdir, "redis")
    server.wait_ready()
    return server
