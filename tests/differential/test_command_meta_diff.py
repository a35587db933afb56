"""COMMAND INFO / DOCS / LIST / GETKEYS from `commands.meta`, compared byte for byte with redis-server 7.0.

Two populations are checked:
- every command Shardis registers, as registered (this keeps the decorators and handlers honest);
- every Redis 7.0 command and subcommand, registered from the data file into a scratch table (this
  proves that meta.py restores Redis's reply types, simple vs bulk strings, sets vs arrays, for all
  of Redis, not just for what Shardis implements today).

Redis lists subcommands in hash-table order, which changes from one server start to the next, so the
subcommand entries of a container are compared as a collection; everything else is compared in order.
"""

from __future__ import annotations

import importlib
import pkgutil
import shutil
import socket
import subprocess
import time

import pytest

import commands
from commands import meta, registry
from commands.registry import Route, command, container
from protocol.errors import CommandError
from protocol.replies import encode, encode_error

pytestmark = pytest.mark.differential

REDIS_SERVER = shutil.which("redis-server")


# --------------------------------------------------------------------------- a raw RESP client

def _skip(buf: bytes, pos: int) -> int:
    """The offset just past the RESP element that starts at `pos`."""
    end = buf.index(b"\r\n", pos)
    kind, head = buf[pos:pos + 1], buf[pos + 1:end]
    pos = end + 2
    if kind in b"+-:_#,(":
        return pos
    size = int(head)
    if kind in b"$=!":
        return pos if size < 0 else pos + size + 2
    if size < 0:
        return pos
    count = size * 2 if kind == b"%" else size
    for _ in range(count):
        pos = _skip(buf, pos)
    return pos


def _children(buf: bytes) -> tuple[bytes, list[bytes]]:
    """Split one aggregate into its header line and the raw bytes of each child (maps: k, v, k, v)."""
    end = buf.index(b"\r\n") + 2
    header, pos, out = buf[:end], end, []
    while pos < len(buf):
        nxt = _skip(buf, pos)
        out.append(buf[pos:nxt])
        pos = nxt
    return header, out


class RawRedis:
    """One connection to redis-server that returns each reply's raw bytes."""

    def __init__(self, port: int, proto: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        if proto == 3:
            self.call(b"HELLO", b"3")

    def call(self, *args: bytes) -> bytes:
        self.sock.sendall(b"*%d\r\n" % len(args)
                          + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
        while True:
            try:
                end = _skip(self.buf, 0)
            except (ValueError, IndexError):
                end = -1
            if 0 < end <= len(self.buf):
                reply, self.buf = self.buf[:end], self.buf[end:]
                return reply
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("redis-server closed the connection")
            self.buf += chunk

    def close(self) -> None:
        self.sock.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory):
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed: differential tests need Redis 7.0")
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis-meta")
    proc = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--daemonize", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("redis-server did not start")
                time.sleep(0.02)
        probe = RawRedis(port, 2)
        version = probe.call(b"INFO", b"server")
        probe.close()
        if b"redis_version:7.0." not in version:
            pytest.skip("the installed redis-server is not 7.0.x")
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def conns(redis_port):
    pair = {2: RawRedis(redis_port, 2), 3: RawRedis(redis_port, 3)}
    yield pair
    for conn in pair.values():
        conn.close()


# --------------------------------------------------------------------------- registries under test

def _real_registry() -> list[registry.CommandSpec]:
    for info in pkgutil.iter_modules(commands.__path__):
        if info.name not in ("meta", "registry"):
            importlib.import_module(f"commands.{info.name}")
    return [each for spec in registry.all_specs() for each in [spec, *spec.subcommands.values()]]


REGISTERED = [spec.fullname for spec in _real_registry()]


def _noop(*_args):
    return None


@pytest.fixture
def all_of_redis():
    """Swap in a command table holding every Redis 7.0 command, declared as Redis declares it."""
    saved = dict(registry.COMMANDS)
    registry.COMMANDS.clear()
    try:
        for name in meta.redis_command_names():
            rec = meta.redis_meta(name)
            flags = " ".join(rec["flags"])
            group = rec["docs"]["group"]
            if rec["subcommands"]:
                container(name.upper(), arity=rec["arity"], flags=flags, group=group)
            else:
                keys = (rec["first"], rec["last"], rec["step"])
                command(name.upper(), arity=rec["arity"], flags=flags, keys=keys, group=group,
                        route=None if keys[0] else Route.LOCAL)(_noop)
        yield registry
    finally:
        registry.COMMANDS.clear()
        registry.COMMANDS.update(saved)


@pytest.fixture
def real_registry():
    _real_registry()
    return registry


# --------------------------------------------------------------------------- comparisons

def _name_of(entry: bytes) -> bytes:
    """The command name inside a raw INFO entry (its first child, a bulk string)."""
    _, children = _children(entry)
    return children[0].split(b"\r\n")[1]


def _assert_info_equal(ours: bytes, theirs: bytes, implemented: set[bytes]) -> None:
    our_head, our_items = _children(ours)
    their_head, their_items = _children(theirs)
    assert our_head == their_head == b"*10\r\n"
    assert our_items[:9] == their_items[:9]
    if our_items[9] == their_items[9]:
        return
    our_sub_head, our_subs = _children(our_items[9])
    their_sub_head, their_subs = _children(their_items[9])
    assert our_sub_head[:1] == their_sub_head[:1]
    wanted = [e for e in their_subs if _name_of(e) in implemented]
    assert sorted(e for e in our_subs if _known(_name_of(e))) == sorted(wanted)


def _known(fullname: bytes) -> bool:
    """Shardis may serve subcommands Redis 7.0 lacks (CLIENT SETINFO); Redis has nothing to compare."""
    return meta.redis_meta(fullname.decode()) is not None


def _pairs(buf: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    head, items = _children(buf)
    return head, list(zip(items[::2], items[1::2]))


def _assert_docs_equal(ours: bytes, theirs: bytes, implemented: set[bytes], proto: int) -> None:
    """`ours`/`theirs` are one-entry DOCS replies: {name: docs}."""
    our_head, [(our_name, our_docs)] = _pairs(ours)
    their_head, [(their_name, their_docs)] = _pairs(theirs)
    assert (our_head, our_name) == (their_head, their_name)
    if our_docs == their_docs:
        return
    our_head, our_fields = _pairs(our_docs)
    their_head, their_fields = _pairs(their_docs)
    assert our_head == their_head
    subcommands = b"$11\r\nsubcommands\r\n"
    assert [f for f in our_fields if f[0] != subcommands] == [
        f for f in their_fields if f[0] != subcommands]
    [our_subs] = [v for k, v in our_fields if k == subcommands]
    [their_subs] = [v for k, v in their_fields if k == subcommands]
    _, our_sub_pairs = _pairs(our_subs)
    _, their_sub_pairs = _pairs(their_subs)
    wanted = [p for p in their_sub_pairs if p[0].split(b"\r\n")[1] in implemented]
    assert sorted(p for p in our_sub_pairs if _known(p[0].split(b"\r\n")[1])) == sorted(wanted)
    assert _pairs(our_subs)[0][:1] == (b"%" if proto == 3 else b"*")


def _strip_outer(reply: bytes) -> bytes:
    """COMMAND INFO <one name> is a one-element array: drop its header."""
    assert reply.startswith(b"*1\r\n")
    return reply[4:]


def _implemented() -> set[bytes]:
    return {name.encode() for name in meta.implemented_names()}


def _ours(*args: bytes, proto: int) -> bytes:
    try:
        return encode(meta.command_reply([b"COMMAND", *args]), proto)
    except CommandError as exc:
        return encode_error(exc.message)


# --------------------------------------------------------------------------- registered Shardis commands

@pytest.mark.parametrize("proto", [2, 3])
@pytest.mark.parametrize("name", REGISTERED)
def test_registered_command_info_matches_redis(conns, real_registry, name, proto):
    if meta.redis_meta(name) is None:
        pytest.skip(f"{name} is a Shardis-only command")
    theirs = _strip_outer(conns[proto].call(b"COMMAND", b"INFO", name.encode()))
    spec = meta._lookup_by_name(name.encode())
    _assert_info_equal(encode(meta.command_info_entry(spec), proto), theirs, _implemented())


@pytest.mark.parametrize("proto", [2, 3])
@pytest.mark.parametrize("name", REGISTERED)
def test_registered_command_docs_matches_redis(conns, real_registry, name, proto):
    if meta.redis_meta(name) is None:
        pytest.skip(f"{name} is a Shardis-only command")
    theirs = conns[proto].call(b"COMMAND", b"DOCS", name.encode())
    ours = _ours(b"DOCS", name.encode(), proto=proto)
    _assert_docs_equal(ours, theirs, _implemented(), proto)


def _sample_argvs(name: str, arity: int) -> list[list[bytes]]:
    """Argument lists of a legal length, with distinct words and with numbers (for numkeys)."""
    words = name.split("|")
    lengths = [arity] if arity > 0 else [-arity, -arity + 1, -arity + 2]
    argvs = []
    for length in lengths:
        extra = length - len(words)
        if extra < 0:
            continue
        argvs.append([w.encode() for w in words] + [b"a%d" % i for i in range(extra)])
        argvs.append([w.encode() for w in words] + [b"1"] * extra)
    return argvs


@pytest.mark.parametrize("name", REGISTERED)
def test_registered_command_getkeysandflags_matches_redis(conns, real_registry, name):
    rec = meta.redis_meta(name)
    if rec is None:
        pytest.skip(f"{name} is a Shardis-only command")
    for argv in _sample_argvs(name, rec["arity"]):
        for sub in (b"GETKEYS", b"GETKEYSANDFLAGS"):
            for proto in (2, 3):
                theirs = conns[proto].call(b"COMMAND", sub, *argv)
                assert _ours(sub, *argv, proto=proto) == theirs, (sub, argv, proto)


# --------------------------------------------------------------------------- all of Redis 7.0

ALL_REDIS = meta.redis_command_names()


@pytest.mark.parametrize("proto", [2, 3])
def test_info_and_docs_match_redis_for_every_redis_command(conns, all_of_redis, proto):
    implemented = _implemented()
    assert len(implemented) == len(ALL_REDIS)
    for name in ALL_REDIS:
        theirs = _strip_outer(conns[proto].call(b"COMMAND", b"INFO", name.encode()))
        spec = meta._lookup_by_name(name.encode())
        _assert_info_equal(encode(meta.command_info_entry(spec), proto), theirs, implemented)
        theirs = conns[proto].call(b"COMMAND", b"DOCS", name.encode())
        _assert_docs_equal(_ours(b"DOCS", name.encode(), proto=proto), theirs, implemented, proto)


def test_count_and_list_match_redis(conns, all_of_redis):
    conn = conns[2]
    assert _ours(b"COUNT", proto=2) == conn.call(b"COMMAND", b"COUNT")
    for args in ([], [b"FILTERBY", b"ACLCAT", b"read"], [b"filterby", b"aclcat", b"DANGEROUS"],
                 [b"FILTERBY", b"ACLCAT", b"@read"], [b"FILTERBY", b"PATTERN", b"x*"],
                 [b"FILTERBY", b"PATTERN", b"*|[a-d]*"], [b"FILTERBY", b"PATTERN", b"CLIENT?*"],
                 [b"FILTERBY", b"MODULE", b"x"]):
        ours = _children(_ours(b"LIST", *args, proto=2))
        theirs = _children(conn.call(b"COMMAND", b"LIST", *args))
        assert ours[0] == theirs[0] and sorted(ours[1]) == sorted(theirs[1]), args
    entries = _children(_ours(proto=2))[1]
    assert sorted(map(_name_of, entries)) == sorted(map(_name_of, _children(conn.call(b"COMMAND"))[1]))


@pytest.mark.parametrize("args", [
    [b"HELP"], [b"help", b"x"], [b"COUNT", b"x"], [b"nosuch"], [b"LIST", b"x"],
    [b"LIST", b"FILTERBY", b"foo", b"x"], [b"INFO", b"get", b"nosuch", b"config|get|x", b""],
    [b"DOCS", b"nosuch"], [b"GETKEYS"], [b"GETKEYS", b"get"], [b"GETKEYS", b"nosuch", b"k"],
    [b"GETKEYS", b"config", b"nosuch"], [b"GETKEYS", b"config", b"get"], [b"GETKEYS", b"get", b"a", b"b"],
    [b"GETKEYS", b"ping", b"a", b"b"], [b"GETKEYS", b"spublish", b"c", b"m"],
    [b"GETKEYS", b"get|x", b"k"], [b"GETKEYSANDFLAGS", b"mset", b"a", b"1", b"b", b"2"],
    [b"GETKEYSANDFLAGS", b"object", b"encoding", b"k"], [b"GETKEYS", b"xinfo", b"stream"],
    [b"GETKEYSANDFLAGS", b"set", b"k", b"v", b"px", b"1", b"get"],
    [b"GETKEYSANDFLAGS", b"set", b"k", b"get"],
    [b"GETKEYSANDFLAGS", b"bitfield", b"k", b"get", b"u8", b"0", b"overflow", b"sat"],
    [b"GETKEYSANDFLAGS", b"bitfield", b"k", b"incrby", b"u8", b"0", b"1"],
    [b"GETKEYSANDFLAGS", b"lmove", b"a", b"b", b"left", b"right"],
    [b"GETKEYSANDFLAGS", b"rename", b"a", b"b"],
    [b"GETKEYSANDFLAGS", b"getex", b"k", b"persist"],
])
@pytest.mark.parametrize("proto", [2, 3])
def test_replies_match_redis(conns, all_of_redis, args, proto):
    assert _ours(*args, proto=proto) == conns[proto].call(b"COMMAND", *args)


def _positions_from(*spec_positions):
    """A stand-in key finder: the positions Redis's native getkeys would return for this argv."""
    return lambda argv: [p for p in spec_positions if p < len(argv)]


@pytest.mark.parametrize("argv, positions", [
    ([b"sort", b"k", b"by", b"x", b"store", b"d"], (1, 5)),
    ([b"migrate", b"h", b"p", b"", b"0", b"5", b"keys", b"a", b"b"], (7, 8)),
    ([b"georadius", b"k", b"1", b"2", b"3", b"m", b"store", b"d", b"storedist", b"e"], (1, 7, 9)),
    ([b"xreadgroup", b"group", b"g", b"c", b"streams", b"a", b"b", b"0", b"0"], (5, 6)),
    ([b"zunionstore", b"d", b"2", b"a", b"b"], (1, 3, 4)),
])
def test_movable_key_flags_match_redis(conns, all_of_redis, argv, positions):
    """Key flags for commands whose keys a getkeys function finds, given that function's positions."""
    spec = registry.COMMANDS[argv[0]]
    saved = spec.getkeys
    spec.getkeys = _positions_from(*positions)
    try:
        for proto in (2, 3):
            theirs = conns[proto].call(b"COMMAND", b"GETKEYSANDFLAGS", *argv)
            assert _ours(b"GETKEYSANDFLAGS", *argv, proto=proto) == theirs
    finally:
        spec.getkeys = saved


def test_fixed_key_commands_getkeysandflags_match_redis(conns, all_of_redis):
    """Every Redis command whose keys sit at fixed positions, with argument lists of legal length."""
    checked = 0
    for name in ALL_REDIS:
        rec = meta.redis_meta(name)
        if "movablekeys" in rec["flags"] or rec["subcommands"] or name in ("sort", "migrate"):
            continue
        for argv in _sample_argvs(name, rec["arity"]):
            for sub in (b"GETKEYS", b"GETKEYSANDFLAGS"):
                theirs = conns[2].call(b"COMMAND", sub, *argv)
                assert _ours(sub, *argv, proto=2) == theirs, (sub, argv)
                checked += 1
    assert checked > 500
