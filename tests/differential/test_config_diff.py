"""config.Config against a real redis-server 7.0: CONFIG GET, CONFIG SET replies and CONFIG REWRITE.

Each test starts its own redis-server on a free loopback port and a Config loaded with the same
arguments, sends both the same commands and compares the replies byte for byte. No Shardis server
is involved. Options whose values differ on purpose are left out of the comparisons: port and dir
(each side has its own), shards (Shardis-only), enable-debug-command (Shardis defaults to yes) and
bind (Shardis defaults to redis.conf's "127.0.0.1 -::1", as a shipped Redis does, not the compiled "* -::*") and
appendonly (on by default in Shardis).

"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import hiredis
import pytest

import config

pytestmark = [
    pytest.mark.differential,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed"),
]

DIFFERENT_ON_PURPOSE = {b"port", b"dir", b"shards", b"enable-debug-command", b"bind", b"appendonly"}


class RealRedis:
    """A redis-server process and a minimal RESP client that keeps error texts intact."""

    def __init__(self, workdir: Path, *args: str) -> None:
        self.port = _free_port()
        self.process = subprocess.Popen(
            ["redis-server", *args, "--port", str(self.port), "--dir", str(workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.close()
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)
        self.reader = hiredis.Reader()

    def call(self, *args: bytes | str) -> object:
        encoded = [a.encode() if isinstance(a, str) else a for a in args]
        self.sock.sendall(b"*%d\r\n" % len(encoded)
                          + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in encoded))
        while (reply := self.reader.gets()) is False:
            self.reader.feed(self.sock.recv(65536))
        return reply

    def config_get(self, *patterns: bytes) -> dict[bytes, bytes]:
        flat = self.call(b"CONFIG", b"GET", *patterns)
        assert isinstance(flat, list)
        return dict(zip(flat[::2], flat[1::2]))

    def close(self) -> None:
        if getattr(self, "sock", None):
            self.sock.close()
        self.process.terminate()
        self.process.wait(10)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_pair(workdir: Path):
    real = RealRedis(workdir)
    return real, config.load(["--port", str(real.port), "--dir", str(workdir)])


@pytest.fixture
def pair(tmp_path):
    """(real redis-server, our Config) started with the same options, for tests that change them."""
    real, ours = _start_pair(tmp_path)
    yield real, ours
    real.close()


@pytest.fixture(scope="module")
def unchanged_pair(tmp_path_factory):
    """Like `pair`, shared by the read-only tests."""
    real, ours = _start_pair(tmp_path_factory.mktemp("redis"))
    yield real, ours
    real.close()


def _comparable(values: dict[bytes, bytes]) -> dict[bytes, bytes]:
    return {k: v for k, v in values.items() if k.lower() not in DIFFERENT_ON_PURPOSE}


def _our_set(ours: config.Config, args: list[bytes]) -> object:
    try:
        ours.config_set(args)
    except config.ConfigSetError as exc:
        return exc.message
    return b"OK"


def _real_set(real: RealRedis, args: list[bytes]) -> object:
    reply = real.call(b"CONFIG", b"SET", *args)
    return str(reply) if isinstance(reply, hiredis.ReplyError) else reply


GET_PATTERNS = [
    [b"*"], [b"PORT"], [b"Port", b"p?rt"], [b"p?rt", b"PORT"], [b"*max*"], [b"[a-c]*"],
    [b"*ziplist*"], [b"slave*"], [b"*SLAVE*"], [b"rdb-key-save-delay"], [b"*delay*"],
    [b"maxmemory-[^p]*"], [b"por\\t"], [b"por\\t*"], [b"[c-a]ctive-expire*"], [b"nonexistent"],
    [b"hash-max-ziplist-entries", b"hash-max-listpack-entries"], [b"lua-time-limit"], [b"*[", b"?"],
    [b"save", b"appendonly"], [b"client-output-buffer-limit"], [b"notify-keyspace-events"],
    [b"watchdog-period", b"WATCHDOG-*"], [b"[^a-z]*"], [b"\\*"], [b"*-*-*-*-*"],
]


@pytest.mark.parametrize("patterns", GET_PATTERNS, ids=lambda p: b" ".join(p).decode())
def test_config_get_matches_redis(unchanged_pair, patterns):
    real, ours = unchanged_pair
    assert _comparable(ours.config_get(patterns)) == _comparable(real.config_get(*patterns))


def test_config_get_without_pattern_is_an_arity_error(unchanged_pair):
    real, ours = unchanged_pair
    with pytest.raises(config.ConfigSetError) as caught:
        ours.config_get([])
    assert caught.value.message == str(real.call(b"CONFIG", b"GET"))


# Commands run in this order on both sides; replies and the final state must match.
SET_SEQUENCE: list[list[bytes]] = [[w.encode() for w in case] for case in [
    ["foo", "bar"], ["port"], ["a", "b", "c"], ["PORT", "1", "port", "2"], ["port", "1", "port", "2", "foo", "x"],
    ["databases", "3"], ["databases", "3", "foo", "bar"], ["foo", "bar", "databases", "3"], ["dir", "/tmp"],
    ["dbfilename", "x.rdb"], ["daemonize", "no"], ["unixsocket", ""], ["replicaof", "no one"],
    ["slaveof", "no one"], ["io-threads", "2"], ["cluster-enabled", "no"], ["enable-debug-command", "yes"],
    ["maxmemory", ""], ["maxmemory", "mb"], ["maxmemory", "1k"], ["maxmemory", "1Kb"], ["maxmemory", "1B"],
    ["maxmemory", "1g"], ["maxmemory", "1GB"], ["maxmemory", "-1"], ["maxmemory", " 1"], ["maxmemory", "+1"],
    ["maxmemory", "01"], ["maxmemory", "99999999999999999999999"], ["maxmemory", "18446744073709551616"],
    ["maxmemory", "1.5mb"], ["maxmemory", "99999999999999999999999kb"], ["maxmemory", "100mb"],
    ["hz", "0"], ["hz", "-1"], ["hz", "1000000"], ["hz", "abc"], ["hz", "20"], ["timeout", "01"],
    ["timeout", "+1"], ["timeout", "1 "], ["timeout", "-0"], ["timeout", "2147483648"], ["timeout", "7"],
    ["maxclients", "0"], ["maxclients", "4294967296"], ["maxclients", "-1"], ["maxclients", "5000"],
    ["slowlog-log-slower-than", "-2"], ["slowlog-log-slower-than", "-1"], ["slowlog-max-len", "-1"],
    ["slowlog-max-len", "9223372036854775808"], ["slowlog-max-len", "9223372036854775807"],
    ["busy-reply-threshold", "-1"], ["lua-time-limit", "-1"], ["LUA-TIME-LIMIT", "x"],
    ["lua-time-limit", "1", "busy-reply-threshold", "2"], ["proto-max-bulk-len", "1000"],
    ["proto-max-bulk-len", "2mb"], ["proto-max-bulk-len", "18446744073709551615"],
    ["client-query-buffer-limit", "1"], ["client-query-buffer-limit", "2gb"],
    ["protected-mode", "YES"], ["protected-mode", "1"], ["protected-mode", "no"],
    ["appendfsync", "ALWAYS"], ["appendfsync", "sometimes"], ["loglevel", "foo"], ["loglevel", "debug verbose"],
    ["loglevel", "WARNING"], ["maxmemory-policy", "foo"], ["maxmemory-policy", "allkeys-LRU"],
    ["list-max-listpack-size", "-6"], ["list-max-ziplist-size", "5"], ["hash-max-ziplist-entries", "100"],
    ["hash-max-listpack-value", "1kb"], ["zset-max-ziplist-value", "-1"], ["set-max-intset-entries", "-1"],
    ["active-expire-effort", "11"], ["active-expire-effort", "0"], ["active-expire-effort", "5"],
    ["repl-timeout", "0"], ["maxmemory-clients", "10%"], ["maxmemory-clients", "101%"], ["maxmemory-clients", "-1"],
    ["maxmemory-clients", "%"], ["maxmemory-clients", "1mb"], ["auto-aof-rewrite-min-size", "1gb"],
    ["notify-keyspace-events", "KEA"], ["notify-keyspace-events", "Ex"], ["notify-keyspace-events", "Kgs$lhzxetdn"],
    ["notify-keyspace-events", "An"], ["notify-keyspace-events", "nE"], ["notify-keyspace-events", "ku"],
    ["notify-keyspace-events", "K K"], ["notify-keyspace-events", "AKEm"],
    ["client-output-buffer-limit", "normal 1 2 3"], ["client-output-buffer-limit", "replica 1mb 2mb 3"],
    ["client-output-buffer-limit", "pubsub 1 2"], ["client-output-buffer-limit", "master 1 2 3"],
    ["client-output-buffer-limit", "normal 1x 2 3"], ["client-output-buffer-limit", "normal 1 2 -3"],
    ["client-output-buffer-limit", "normal  1 2 3"], ["client-output-buffer-limit", "NORMAL 5 6 +7"],
    ["client-output-buffer-limit", ""], ["client-output-buffer-limit", "normal 0 0 "],
    ["client-output-buffer-limit", "pubsub 64mb 16mb 90 normal 1 2 3"],
    ["save", "100 2"], ["save", "100 2 50"], ["save", "0 1"], ["save", "10 -1"], ["save", "10 x"],
    ["save", "10  20"], ["save", " 10 20"], ["save", "10 +5"], ["save", ""], ["save", "900 1 300 10"],
    ["bind", "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17"], ["requirepass", "a b"], ["requirepass", ""],
    ["masterauth", "x\"y"], ["masteruser", ""], ["replica-announce-ip", "abc"], ["slave-announce-ip", ""],
    ["oom-score-adj", "relative"], ["oom-score-adj-values", "1 2"], ["oom-score-adj-values", "1 2 x"],
    ["oom-score-adj-values", "1 2 3000"], ["oom-score-adj-values", "0 200 800"],
    ["latency-tracking-info-percentiles", "101"], ["latency-tracking-info-percentiles", "x"],
    ["latency-tracking-info-percentiles", ""], ["latency-tracking-info-percentiles", "50 99.9 99.99"],
    ["latency-tracking-info-percentiles", "50  99"], ["shutdown-on-sigint", "save now"],
    ["shutdown-on-sigint", "NOW force"], ["shutdown-on-sigint", "nosave save"], ["shutdown-on-sigint", "foo"],
    ["shutdown-on-sigint", ""], ["shutdown-on-sigterm", "default now"], ["propagation-error-behavior", "PANIC"],
    ["proc-title-template", "{foo}"], ["proc-title-template", "{title}"], ["proc-title-template", "{{x} {port}"],
    ["cluster-announce-hostname", "a_b"], ["cluster-announce-hostname", "ok-name.example"],
    ["activedefrag", "yes"], ["activedefrag", "no"], ["unixsocketperm", "777"],
    ["hz", "15", "maxmemory", "bad", "timeout", "9"], ["hz", "15", "timeout", "9", "save", ""],
    ["tracking-table-max-keys", "0"], ["repl-backlog-size", "0"], ["repl-backlog-size", "16mb"],
    ["lfu-log-factor", "2147483648"], ["slave-priority", "7"], ["min-slaves-to-write", "1"],
    ["stream-node-max-bytes", "8kb"], ["hll-sparse-max-bytes", "x"], ["rdb-key-save-delay", "5"],
]]


def test_config_set_replies_and_state_match_redis(pair):
    real, ours = pair
    mismatches = []
    for args in SET_SEQUENCE:
        expected, got = _real_set(real, args), _our_set(ours, args)
        if expected != got:
            mismatches.append((args, expected, got))
    assert mismatches == []
    assert _comparable(ours.config_get([b"*"])) == _comparable(real.config_get(b"*"))


def test_config_rewrite_matches_redis(tmp_path):
    """Both rewrite the same file after the same CONFIG SETs; lines must match (appended ones in any order)."""
    original = "\n".join([
        "# leading comment", "daemonize no", 'save ""', "slave-read-only no", "hash-max-ziplist-entries 100",
        "lua-time-limit 3000", "maxmemory 100mb", "   # indented comment", "MaxMemory-Policy allkeys-lru",
        "client-output-buffer-limit pubsub 64mb 16mb 90", "save 900 1", "save 300 10",
        'dbfilename "my dump.rdb"', "logfile ''", "notify-keyspace-events KEA", "bind 127.0.0.1",
        "slave-priority 50", "Port 6390", "min-slaves-to-write 0", "",
    ])
    real_dir, our_dir = tmp_path / "real", tmp_path / "ours"
    real_dir.mkdir()
    our_dir.mkdir()
    (real_dir / "redis.conf").write_text(original)
    (our_dir / "redis.conf").write_text(original)
    real = RealRedis(real_dir, str(real_dir / "redis.conf"))
    try:
        ours = config.load([str(our_dir / "redis.conf"), "--port", str(real.port), "--dir", str(real_dir)])
        # Lines neither side would have accepted at startup: unknown, unparsable, deprecated, directives.
        for path in (real_dir / "redis.conf", our_dir / "redis.conf"):
            with path.open("a") as file:
                file.write('foo bar\ninclude /nonexistent.conf\nunbalanced "quote\nlist-max-ziplist-entries 5\n'
                           "port 1\nhz 5\n# Generated by CONFIG REWRITE\nmaxclients 10000\n\n\n")
        for args in (["maxmemory", "200mb"], ["hz", "20"], ["loglevel", "verbose"],
                     ["maxmemory-policy", "noeviction"], ["client-output-buffer-limit", "normal 1mb 0 0"],
                     ["notify-keyspace-events", ""], ["slave-priority", "100"], ["timeout", "5"]):
            encoded = [a.encode() for a in args]
            assert _our_set(ours, encoded) == _real_set(real, encoded) == b"OK"
        assert real.call(b"CONFIG", b"REWRITE") == b"OK"
        ours.rewrite()
        real_lines = (real_dir / "redis.conf").read_text().split("\n")
        our_lines = (our_dir / "redis.conf").read_text().split("\n")
    finally:
        real.close()

    def split(lines: list[str]) -> tuple[list[str], set[str]]:
        lines = [f"port {real.port}" if line.startswith("port ") else line for line in lines]
        cut = lines.index("# Generated by CONFIG REWRITE")
        appended = {line for line in lines[cut:] if not line.startswith("user default ")}
        return lines[:cut], appended

    assert split(our_lines) == split(real_lines)
