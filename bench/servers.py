"""Start, probe and stop the servers under test: Shardis and the real redis-server reference.

Both run as child processes on free loopback ports, each in its own temporary directory, so their
persistence files never mix. Readiness is a polled PING, never a fixed sleep. CPU time and RSS come
from /proc, because they must cover every thread of the server (the shard actors included) and
nothing of the benchmark client.
"""

from __future__ import annotations

import os
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

__all__ = [
    "HOST",
    "PERSISTENCE_FLAGS",
    "REPO_ROOT",
    "Server",
    "ServerError",
    "ServerSpec",
    "default_shardis_cmd",
    "free_port",
    "is_redis_stand_in",
    "ping",
    "proc_cpu_seconds",
    "proc_rss_bytes",
    "proc_stat_cpu_seconds",
    "proc_thread_times",
    "raise_nofile_limit",
    "redis_spec",
    "shard_counters",
    "shardis_spec",
    "split_cpus",
]

HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parent.parent

# The same persistence settings are given to both servers. RDB snapshots stay off in every mode
# ("save ''") so that a background save never lands in the middle of a measurement.
PERSISTENCE_FLAGS: dict[str, list[str]] = {
    "off": ["--save", "", "--appendonly", "no"],
    "everysec": ["--save", "", "--appendonly", "yes", "--appendfsync", "everysec"],
    "always": ["--save", "", "--appendonly", "yes", "--appendfsync", "always"],
}

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_CPUCLOCK_SCHED = 2  # Linux: a process-wide CPU clock id is (~pid << 3) | CPUCLOCK_SCHED
_PING_CMD = b"*1\r\n$4\r\nPING\r\n"


class ServerError(RuntimeError):
    """A server did not start, did not answer PING, or died."""


def default_shardis_cmd() -> str:
    """Shardis run by the interpreter that runs the harness, so the venv is the same."""
    return f"{shlex.quote(sys.executable)} -m actors"


def free_port() -> int:
    """A loopback port the kernel says is free right now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def is_redis_stand_in(argv: list[str]) -> bool:
    """True when --shardis-cmd names redis-server: used to develop the harness before Shardis runs."""
    return Path(argv[0]).name.startswith("redis-server")


def ping(port: int, timeout: float = 0.5) -> bool:
    """One PING round trip; False on any refusal, error reply (LOADING) or timeout."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(_PING_CMD)
            reply = b""
            while not reply.endswith(b"\r\n") and len(reply) < 256:
                chunk = sock.recv(256)
                if not chunk:
                    return False
                reply += chunk
            return reply.startswith(b"+PONG")
    except OSError:
        return False


def proc_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of the whole process, all threads, exited ones included, in seconds.

    Read from the process's CPU-time clock (Linux's clock_getcpuclockid(pid), in nanoseconds): the same
    total as utime + stime in /proc/<pid>/stat, which is the fallback, but without its 10 ms tick,
    which would blur a 0.1 s benchmark run by 10%.
    """
    try:
        return time.clock_gettime(((~pid) << 3) | _CPUCLOCK_SCHED)
    except OSError:
        return proc_stat_cpu_seconds(pid)


def proc_stat_cpu_seconds(pid: int) -> float:
    """utime + stime from /proc/<pid>/stat (whole process), in seconds, at clock-tick resolution."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()  # fields[0] is field 3 (state)
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def proc_thread_times(pid: int) -> dict[int, tuple[int, int, int]]:
    """Per thread of `pid`: (ns on a CPU, ns runnable but waiting for one, times it was scheduled in).

    From /proc/<pid>/task/<tid>/schedstat (nanosecond resolution). The loop thread is the one whose
    tid is the pid; the rest are the shard, broker and persistence actors (or Redis's bio threads).
    A thread that exits meanwhile is simply missing; {} when the kernel has no schedstat.
    """
    times: dict[int, tuple[int, int, int]] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return times
    for tid in tids:
        try:
            run_ns, wait_ns, slices = Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[:3]
        except (OSError, ValueError):
            continue
        times[int(tid)] = (int(run_ns), int(wait_ns), int(slices))
    return times


def shard_counters(port: int, timeout: float = 2.0) -> tuple[int, int] | None:
    """(messages, commands) summed over Shardis's shard actors, from INFO actors; None for a server
    without that section (Redis)."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(b"*2\r\n$4\r\nINFO\r\n$6\r\nactors\r\n")
            data = b""
            while b"\r\n" not in data or len(data) < _bulk_end(data):
                chunk = sock.recv(65536)
                if not chunk:
                    return None
                data += chunk
    except OSError:
        return None
    messages = commands = 0
    found = False
    for line in data.decode(errors="replace").splitlines():
        if line.startswith("shard") and "messages=" in line:
            fields = dict(item.split("=", 1) for item in line.split(":", 1)[1].split(","))
            messages += int(fields["messages"])
            commands += int(fields["commands"])
            found = True
    return (messages, commands) if found else None


def _bulk_end(data: bytes) -> int:
    """Bytes a complete `$<n>` bulk reply (or a one-line reply) occupies, once its header arrived."""
    header, _, _ = data.partition(b"\r\n")
    if header.startswith(b"$") and header[1:].isdigit():
        return len(header) + 2 + int(header[1:]) + 2
    return len(header) + 2


def proc_rss_bytes(pid: int) -> int:
    """Resident set size from /proc/<pid>/status (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise ServerError(f"no VmRSS for pid {pid}")


def split_cpus() -> tuple[set[int], set[int]] | None:
    """(server CPUs, client CPUs) for --pin: the server on the first allowed CPU, everything else on the rest."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return None
    return {allowed[0]}, set(allowed[1:])


def raise_nofile_limit(wanted: int) -> int:
    """Raise the soft open-files limit towards `wanted` (capped by the hard limit); returns the new soft limit.

    Children started afterwards inherit it, which the servers need to accept thousands of clients.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


@dataclass
class ServerSpec:
    """How to start one server: its label in reports, its program and the arguments after --port/--bind/--dir."""

    label: str
    base_argv: list[str]
    extra_argv: list[str] = field(default_factory=list)
    needs_dir_flag: bool = True
    env: dict[str, str] = field(default_factory=dict)

    def argv(self, port: int, workdir: str) -> list[str]:
        argv = [*self.base_argv, "--port", str(port), "--bind", HOST]
        if self.needs_dir_flag:
            argv += ["--dir", workdir]
        return argv + self.extra_argv


def redis_spec(binary: str, persistence: str, extra: list[str] | None = None) -> ServerSpec:
    """The reference redis-server with the given persistence mode."""
    return ServerSpec("redis", [binary], [*PERSISTENCE_FLAGS[persistence], *(extra or [])])


def shardis_spec(
    cmd: str,
    persistence: str | None,
    shards: int | None = None,
    extra: list[str] | None = None,
    label: str = "shardis",
) -> ServerSpec:
    """Shardis (or a redis-server stand-in named by `cmd`), with the same persistence flags as the
    Redis it is compared with ("off" unless asked: Shardis's own default is appendonly yes).
    --shards is dropped for a redis-server stand-in."""
    base = shlex.split(cmd)
    stand_in = is_redis_stand_in(base)
    argv: list[str] = []
    if shards is not None and not stand_in:
        argv += ["--shards", str(shards)]
    argv += PERSISTENCE_FLAGS[persistence or "off"]
    argv += list(extra or [])  # last, so the user's arguments win
    env = {} if stand_in else {"PYTHONPATH": _pythonpath()}
    return ServerSpec(label, base, argv, needs_dir_flag=True, env=env)


def _pythonpath() -> str:
    """The repository root first, so `-m actors` imports this checkout even without an install."""
    existing = os.environ.get("PYTHONPATH")
    return f"{REPO_ROOT}{os.pathsep}{existing}" if existing else str(REPO_ROOT)


class Server:
    """One running server process; use as a context manager so it is always stopped."""

    def __init__(
        self,
        spec: ServerSpec,
        cpus: set[int] | None = None,
        ready_timeout: float = 30.0,
        stop_timeout: float = 15.0,
    ) -> None:
        self.spec = spec
        self.cpus = cpus
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.port = 0
        self.workdir = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: object = None

    @property
    def label(self) -> str:
        return self.spec.label

    @property
    def pid(self) -> int:
        assert self.proc is not None, "server not started"
        return self.proc.pid

    @property
    def argv(self) -> list[str]:
        return self.spec.argv(self.port, self.workdir)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start on a free port and wait for PING; tries another port if this one was taken meanwhile."""
        self.workdir = tempfile.mkdtemp(prefix=f"shardis-bench-{self.label}-")
        last_error = ""
        for _attempt in range(3):
            self.port = free_port()
            self._log = open(os.path.join(self.workdir, "server.log"), "ab")  # noqa: SIM115 - closed in stop()
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.spec.env},
                preexec_fn=self._pin if self.cpus else None,  # noqa: PLW1509 - the harness has no threads yet
            )
            try:
                self._wait_ready()
                return
            except ServerError as error:
                last_error = str(error)
                self._terminate()
                if "already in use" not in last_error.lower():
                    break  # only a port race is worth another try
        self._cleanup_dir()
        raise ServerError(last_error)

    def _pin(self) -> None:
        """In the child before exec: restrict the server (and every thread it starts) to `cpus`."""
        os.sched_setaffinity(0, self.cpus or set())

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        delay = 0.005
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise ServerError(f"{self.label} exited with {self.proc.returncode}: {self.log_tail()}")
            if ping(self.port):
                return
            time.sleep(delay)  # back-off between polls, not a guess at start-up time
            delay = min(delay * 2, 0.1)
        raise ServerError(f"{self.label} did not answer PING within {self.ready_timeout}s: {self.log_tail()}")

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = Path(self.workdir, "server.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def cpu_seconds(self) -> float:
        return proc_cpu_seconds(self.pid)

    def rss_bytes(self) -> int:
        return proc_rss_bytes(self.pid)

    def thread_times(self) -> dict[int, tuple[int, int, int]]:
        return proc_thread_times(self.pid)

    def stop(self) -> None:
        """SIGTERM by pid, wait, then SIGKILL; removes the temporary directory."""
        self._terminate()
        self._cleanup_dir()

    def _terminate(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                print(f"note: {self.spec.label} (pid {proc.pid}) ignored SIGTERM; killing it", file=sys.stderr)
                proc.kill()
                proc.wait(timeout=self.stop_timeout)
        if self._log is not None:
            self._log.close()  # type: ignore[attr-defined]
            self._log = None

    def _cleanup_dir(self) -> None:
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
