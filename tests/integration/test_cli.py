"""Shardis as an operator and the stock Redis tools see it.

- the command line: --help, --version, unknown options and bad values, a config file plus flags;
- signals: SIGTERM and SIGINT stop the server cleanly (exit 0) with Redis-style log lines;
- `make run` and the `shardis-server` console script;
- redis-cli, non-interactive and interactive (driven through a pseudo-terminal: its command hints
  come from COMMAND DOCS), and redis-benchmark at -P 1 and -P 16 against 4 shards.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

import pytest

import config
from tests.conftest import shardis_server
from tests.servers import REPO, ServerProcess, free_port, start_shardis

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

REDIS_CLI = shutil.which("redis-cli")
REDIS_BENCHMARK = shutil.which("redis-benchmark")


def _shardis(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """Run `python -m actors ARGS` to completion (for the options that exit at once)."""
    return subprocess.run([sys.executable, "-m", "actors", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=tempfile.gettempdir(), check=False)


# -- the command line -----------------------------------------------------------------------------------

@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help(flag):
    done = _shardis(flag)
    assert done.returncode == 0
    assert done.stdout.startswith("Usage: shardis-server [CONFIG_FILE] [--option value")
    assert "--port 7777" in done.stdout


@pytest.mark.parametrize("flag", ["--version", "-v"])
def test_version(flag):
    done = _shardis(flag)
    assert done.returncode == 0
    assert f"v={config.VERSION}" in done.stdout and "redis_version=7.0.15" in done.stdout


@pytest.mark.parametrize("args,named", [
    (["--nosuch", "1"], "'nosuch'"),
    (["--port", "abc"], "'port'"),
    (["--port", "70000"], "'port'"),
    (["--port"], "'port'"),
    (["--shards", "0"], "'shards'"),
    (["--maxclients", "-1"], "'maxclients'"),
    (["--protected-mode", "maybe"], "'protected-mode'"),
    (["--loglevel", "loud"], "'loglevel'"),
    (["/nonexistent/shardis.conf"], "'/nonexistent/shardis.conf'"),
])
def test_bad_command_line_stops_with_one_line(args, named):
    done = _shardis(*args, "--port", str(free_port()))  # a config file must come first
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], done.stderr
    assert done.stdout == ""


def test_bad_config_file_directive_names_it(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("port 1234\nno-such-directive yes\n")
    done = _shardis(str(conf))
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no-such-directive" in lines[0], done.stderr


def _serve_from(args: list[str], port: int, workdir: str) -> ServerProcess:
    server = ServerProcess(args, port, workdir, "shardis")
    server.wait_ready()
    return server


def test_config_file_sets_the_port_and_flags_override(tmp_path):
    port = free_port()
    conf = tmp_path / "shardis.conf"
    conf.write_text(f"port {port}\nbind 127.0.0.1\ndatabases 4\nhz 15\n")
    server = _serve_from([sys.executable, "-m", "actors", str(conf), "--hz", "30", "--dir", str(tmp_path)],
                         port, str(tmp_path))
    try:
        import redis
        client = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)
        assert client.config_get("databases") == {"databases": "4"}
        assert client.config_get("hz") == {"hz": "30"}
        client.close()
    finally:
        assert server.stop() == 0


# -- signals and log lines ----------------------------------------------------------------------------------

@pytest.mark.parametrize("sig,name", [(signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT")])
def test_signal_stops_cleanly(sig, name):
    server = start_shardis(shards=3)
    server.proc.send_signal(sig)
    assert server.proc.wait(30) == 0
    assert server.stop() == 0
    log = Path(server.log_path).read_text()
    pid = server.proc.pid
    assert re.search(rf"^{pid}:M .* Shardis {re.escape(config.VERSION)} \(redis_version 7\.0\.15\) "
                     rf"starting, pid={pid}", log, re.MULTILINE)
    assert f"port={server.port}" in log and "shards=3" in log
    assert "Ready to accept connections" in log
    assert f"Received {name} scheduling shutdown" in log
    assert log.rstrip().endswith("Shardis is now ready to exit, bye bye...")


# -- make run and the console script -----------------------------------------------------------------------

def _wait_closed(proc: subprocess.Popen, timeout: float = 15) -> int:
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def test_console_script_serves():
    script = REPO / ".venv" / "bin" / "shardis-server"
    if not script.exists():
        pytest.skip("the shardis-server console script is not installed (make creates it)")
    workdir = tempfile.mkdtemp(prefix="shardis-script-")
    port = free_port()
    server = _serve_from([str(script), "--port", str(port), "--bind", "127.0.0.1", "--dir", workdir],
                         port, workdir)
    assert server.stop() == 0


def _wait_for_pong(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"exited with {proc.returncode}"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16) == b"+PONG\r\n":
                    return
        except OSError:
            pass
        time.sleep(0.05)  # polling interval, not synchronisation
    raise AssertionError(f"nothing answered PING on port {port}")


def test_make_run_serves_on_the_configured_port():
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    if subprocess.run(["make", "-q", ".venv/.installed"], cwd=REPO, check=False).returncode != 0:
        pytest.skip("make run would (re)install the venv first")
    workdir = tempfile.mkdtemp(prefix="shardis-make-")
    port = free_port()
    args = ["make", "--no-print-directory", "run", f"ARGS=--port {port} --bind 127.0.0.1 --dir {workdir}"]
    with open(os.path.join(workdir, "make.log"), "wb") as log:
        proc = subprocess.Popen(args, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            _wait_for_pong(port, proc)
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(b"SHUTDOWN\r\n")
                assert sock.recv(100) == b""
            code = _wait_closed(proc)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)    # make and the server it started, by group id
                proc.wait(10)
    assert code == 0, Path(workdir, "make.log").read_text()


# -- redis-cli -----------------------------------------------------------------------------------------------

needs_cli = pytest.mark.skipif(REDIS_CLI is None, reason="redis-cli is not installed")


def _cli(port: int, *args: str) -> str:
    done = subprocess.run([REDIS_CLI, "-p", str(port), *args], capture_output=True, text=True, timeout=20,
                          check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@needs_cli
def test_redis_cli_commands():
    port = shardis_server(1).port
    assert _cli(port, "SET", "cli:k", "hello world") == "OK\n"
    assert _cli(port, "GET", "cli:k") == "hello world\n"
    assert _cli(port, "--no-raw", "INCR", "cli:n").startswith("(integer) ")
    assert _cli(port, "-n", "2", "SET", "cli:in2", "x") == "OK\n"
    assert _cli(port, "-n", "2", "EXISTS", "cli:in2") == "1\n"
    assert "redis_version:7.0.15" in _cli(port, "INFO", "server")
    assert _cli(port, "-3", "--no-raw", "CONFIG", "GET", "hz") == '1# "hz" => "10"\n'
    assert _cli(port, "NOSUCH", "arg").startswith("ERR unknown command 'NOSUCH'")
    assert _cli(port, "DEL", "cli:k", "cli:n") == "2\n"


class _Terminal:
    """redis-cli on a pseudo-terminal 200 columns wide, so linenoise draws hints."""

    def __init__(self, port: int) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 200, 0, 0))
        env = dict(os.environ, TERM="xterm", HOME=tempfile.mkdtemp(prefix="redis-cli-home-"))
        self.proc = subprocess.Popen([REDIS_CLI, "-p", str(port)], stdin=slave, stdout=slave, stderr=slave,
                                     env=env, close_fds=True, start_new_session=True)
        os.close(slave)
        self.seen = b""

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def expect(self, wanted: bytes, timeout: float = 10) -> bytes:
        deadline = time.monotonic() + timeout
        while wanted not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{wanted!r} not shown; screen so far: {self.seen[-500:]!r}")
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    self.seen += os.read(self.master, 4096)
                except OSError:  # the child closed the terminal
                    break
        shown, self.seen = self.seen, self.seen[self.seen.index(wanted) + len(wanted):]
        return shown

    def wait(self) -> int:
        return self.proc.wait(10)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        os.close(self.master)


@needs_cli
def test_redis_cli_interactive_hints():
    port = shardis_server(1).port
    terminal = _Terminal(port)
    prompt = f"127.0.0.1:{port}> ".encode()
    # Keys are typed only once a prompt is shown: linenoise enters raw mode with TCSAFLUSH, which
    # throws away whatever was typed before.
    try:
        terminal.expect(prompt)
        terminal.type(b"set ")
        terminal.expect(b"key value [NX|XX] [GET] [EX seconds|PX milliseconds")
        terminal.type(b"\x15")                                  # Ctrl-U: clear the line
        terminal.type(b"client no-evict ")
        terminal.expect(b"ON|OFF")
        terminal.type(b"\x15ECHO interactive\r")
        terminal.expect(b'"interactive"\r\n')
        terminal.expect(prompt)
        terminal.type(b"\x04")                                  # Ctrl-D on an empty line: exit
        assert terminal.wait() == 0
    finally:
        terminal.kill()


# -- redis-benchmark -------------------------------------------------------------------------------------------

@pytest.mark.skipif(REDIS_BENCHMARK is None, reason="redis-benchmark is not installed")
@pytest.mark.parametrize("pipeline", ["1", "16"])
def test_redis_benchmark(pipeline):
    port = shardis_server(4).port
    done = subprocess.run(
        [REDIS_BENCHMARK, "-p", str(port), "-t", "ping_inline,ping_mbulk,set,get,incr,mset", "-n", "20000",
         "-q", "-P", pipeline],
        capture_output=True, text=True, timeout=60, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Error" not in output and "error" not in output
    finals = re.findall(r"(PING_INLINE|PING_MBULK|SET|GET|INCR|MSET \(10 keys\)): ([0-9.]+) requests per second",
                        output)
    assert [name for name, _ in finals] == ["PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "MSET (10 keys)"]
    assert all(float(rate) > 0 for _, rate in finals)
