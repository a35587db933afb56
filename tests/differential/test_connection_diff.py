"""Connection commands against a real redis-server 7.0, byte for byte over raw sockets.

AUTH, CLIENT (ID INFO LIST KILL SETNAME GETNAME NO-EVICT REPLY PAUSE UNPAUSE HELP), ECHO, HELLO, PING,
QUIT, RESET and SELECT, with their error cases, in RESP2 and RESP3, with 1 and 4 shards (the `pair`
fixture). The helpers live in test_protocol_diff.py. CLIENT SETINFO is Redis 7.2's and is covered by
tests/integration/test_connection.py instead.
"""

from __future__ import annotations

import hiredis
import pytest

from tests.differential.test_protocol_diff import (
    Wire,
    assert_same,
    exchange,
    open_wires,
    ports_and_protocol,
)

pytestmark = [pytest.mark.differential, pytest.mark.timeout(60)]


def _lines(*commands: str) -> bytes:
    return b"".join(c.encode("latin-1") + b"\r\n" for c in commands)


CASES = {
    "auth": ["AUTH x", "AUTH default x", 'AUTH default ""', "AUTH nobody x", "AUTH a b c", "AUTH"],
    "hello-versions": ["HELLO", "HELLO 2", "HELLO 3", "HELLO 1", "HELLO 4", "HELLO -1", "HELLO x",
                       "HELLO 2.0", 'HELLO " 3"', "HELLO 03", "HELLO 99999999999999999999", "HELLO 2"],
    "hello-options": ["HELLO 3 FOO", "HELLO 3 AUTH default", "HELLO 3 AUTH default x", "HELLO 3 AUTH foo x",
                      "HELLO 3 auth a", 'HELLO 3 SETNAME "a b"', "HELLO 3 SETNAME", "HELLO 3 SETNAME foo AUTH",
                      "HELLO 2 SETNAME x SETNAME y", "CLIENT GETNAME", "hello 3 setname n auth default z",
                      "CLIENT GETNAME", 'HELLO 3 AUTH default wrong SETNAME "a b"', "HELLO 2"],
    "hello-auth-failure-keeps-state": ["HELLO 3 AUTH nobody x SETNAME n", "CLIENT GETNAME", "GET k"],
    "ping-echo": ["PING", "PING msg", 'PING ""', "PING a b", "ECHO", "ECHO a b", 'ECHO ""', "ECHO x",
                  "ping", "PiNg x"],
    "select": ["SELECT 0", "SELECT 15", "SELECT 16", "SELECT -1", "SELECT x", "SELECT 1.5", "SELECT 01",
               'SELECT " 1"', "SELECT", "SELECT 1 2", "SELECT 3", "SET k v", "SELECT 0", "GET k",
               "SELECT 3", "GET k", "DBSIZE"],
    "quit-closes": ["SET k 1", "QUIT", "PING"],
    "reset": ["SELECT 3", "CLIENT SETNAME n", "SET k 1", "HELLO 3", "RESET", "CLIENT GETNAME", "GET k",
              "SELECT 3", "GET k", "CLIENT REPLY OFF", "RESET", "PING"],
    "setname-getname": ["CLIENT GETNAME", 'CLIENT SETNAME "a b"', 'CLIENT SETNAME "a\\nb"',
                        'CLIENT SETNAME "\\x7f"', 'CLIENT SETNAME "\\xff"', 'CLIENT SETNAME "\\x01"',
                        "CLIENT SETNAME name-1", "CLIENT GETNAME", 'CLIENT SETNAME ""', "CLIENT GETNAME",
                        "CLIENT SETNAME a b", "CLIENT GETNAME x"],
    "no-evict": ["CLIENT NO-EVICT on", "CLIENT NO-EVICT OFF", "CLIENT NO-EVICT maybe", "CLIENT NO-EVICT",
                 "CLIENT NO-EVICT on x"],
    "reply-on-off": ["CLIENT REPLY foo", "CLIENT REPLY", "CLIENT REPLY on x", "CLIENT REPLY OFF", "PING a",
                     "FOO", "GET", "SET k 1", "GET k", "DBSIZE", "CLIENT REPLY ON", "GET k",
                     "CLIENT REPLY ON", "DBSIZE"],
    "reply-skip-then-on": ["CLIENT REPLY SKIP", "CLIENT REPLY ON", "PING x"],
    "reply-off-skip-on": ["CLIENT REPLY OFF", "CLIENT REPLY SKIP", "CLIENT REPLY ON", "PING x"],
    "pause-errors": ["CLIENT PAUSE", "CLIENT PAUSE x", "CLIENT PAUSE -1", "CLIENT PAUSE 10 foo",
                     "CLIENT PAUSE x foo", "CLIENT PAUSE 10 WRITE extra", "client pause 1 a b",
                     "CLIENT UNPAUSE x", "CLIENT UNPAUSE"],
    "pause-write-lets-reads-through": ["SET k 1", "CLIENT PAUSE 2000 WRITE", "GET k", "PING", "CLIENT UNPAUSE",
                                       "SET k 2", "GET k"],
    "kill-errors": ["CLIENT KILL", "CLIENT KILL 1.2.3.4:5", "CLIENT KILL ID x", "CLIENT KILL ID 0",
                    "CLIENT KILL ID -3", "CLIENT KILL ID 1.5", "CLIENT KILL ID 99999999999999999999",
                    "CLIENT KILL ID 999999", "CLIENT KILL TYPE foo", "CLIENT KILL TYPE foo x",
                    "CLIENT KILL TYPE normal x", "CLIENT KILL ID 5 x", "CLIENT KILL SKIPME yes ID",
                    "CLIENT KILL USER bob", "CLIENT KILL SKIPME maybe", "CLIENT KILL FOO bar",
                    "CLIENT KILL MAXAGE 10", "CLIENT KILL ADDR 1.2.3.4:5", "CLIENT KILL LADDR 1.2.3.4:5 SKIPME no",
                    "CLIENT KILL TYPE master", "CLIENT KILL TYPE replica", "CLIENT KILL TYPE slave",
                    "CLIENT KILL TYPE pubsub", "CLIENT KILL USER default TYPE pubsub SKIPME yes",
                    "CLIENT KILL ID 999 TYPE normal"],
    "list-errors": ["CLIENT LIST TYPE foo", "CLIENT LIST ID x", "CLIENT LIST ID 0 -1", "CLIENT LIST ID 99999",
                    "CLIENT LIST foo", "CLIENT LIST TYPE master", "CLIENT LIST TYPE replica", "CLIENT LIST ID",
                    "CLIENT LIST TYPE normal x", "CLIENT INFO x", "CLIENT ID x"],
    "help": ["CLIENT HELP", "CLIENT help x", "CONFIG HELP", "COMMAND HELP"],
}


@pytest.mark.parametrize("name", list(CASES))
def test_connection_commands(pair, name):
    assert_same(pair, _lines(*CASES[name]))


SKIP_CASES = {
    "skip-next": ["CLIENT REPLY SKIP", "PING a", "PING b"],
    "skip-rejected": ["CLIENT REPLY SKIP", "FOO", "GET", "PING z"],
    "skip-shard-command": ["CLIENT REPLY SKIP", "SET k 1", "GET k"],
    "skip-twice": ["CLIENT REPLY SKIP", "CLIENT REPLY SKIP", "PING x", "PING y"],
    "skip-reset": ["CLIENT REPLY SKIP", "RESET", "PING"],
}


@pytest.mark.parametrize("name", list(SKIP_CASES))
def test_client_reply_skip(pair, name):
    assert_same(pair, _lines(*SKIP_CASES[name]))


def test_quit_replies_ok_then_closes(pair):
    ours, real = exchange(pair, b"QUIT\r\n", closes=True)
    assert ours == real == (b"+OK\r\n", True)


# -- CLIENT INFO / LIST ----------------------------------------------------------------------------

# 7.2 fields Shardis adds because it serves CLIENT SETINFO.
SHARDIS_EXTRA_FIELDS = {"lib-name", "lib-ver"}
# Fields whose values depend on the process, the socket or the allocator.
VOLATILE_FIELDS = {"id", "addr", "laddr", "fd", "age", "idle", "qbuf", "qbuf-free", "argv-mem", "multi-mem",
                   "rbs", "rbp", "obl", "oll", "omem", "tot-mem"}


def _client_fields(line: bytes) -> dict[str, str]:
    return dict(item.split("=", 1) for item in line.decode().split(" "))


def _client_info(wire: Wire, *setup: str) -> dict[str, str]:
    if setup:
        wire.send(_lines(*setup))
        wire.until_sentinel()
    wire.send(b"*2\r\n$6\r\nCLIENT\r\n$4\r\nINFO\r\n")
    data = wire.until_sentinel()
    body = data.split(b"\r\n", 1)[1]
    if body.startswith(b"txt:"):
        body = body[4:]
    return _client_fields(body.split(b"\n", 1)[0])


@pytest.mark.parametrize("setup", [
    (), ("SELECT 5", "CLIENT SETNAME conn-a"), ("CLIENT NO-EVICT on",), ("HELLO 3",), ("HELLO 3", "RESET"),
    ("CLIENT NO-EVICT on", "RESET"),
], ids=lambda s: "+".join(s) or "fresh")
def test_client_info_fields(pair, setup):
    ours, real = open_wires(pair)
    try:
        our_fields, real_fields = _client_info(ours, *setup), _client_info(real, *setup)
    finally:
        ours.close()
        real.close()
    assert set(our_fields) == set(real_fields) | SHARDIS_EXTRA_FIELDS
    assert list(our_fields)[:len(real_fields)] == list(real_fields)
    for name in set(real_fields) - VOLATILE_FIELDS:
        assert our_fields[name] == real_fields[name], name


def _ids_listed(reply: bytes) -> list[int]:
    return [int(part.split(b" ", 1)[0]) for part in reply.split(b"id=")[1:]]


def test_client_list_filters(pair):
    """ID and TYPE pick the caller out; ids are each server's own, so they are asked first."""
    results = []
    for wire in open_wires(pair):
        wire.send(b"CLIENT ID\r\n")
        own = int(wire.until_sentinel()[1:-2])
        listed = []
        for command in (f"CLIENT LIST ID {own} {own} 0 -5", f"CLIENT LIST ID {own + 100000}",
                        "CLIENT LIST TYPE normal", "CLIENT LIST TYPE pubsub", "client list type NORMAL"):
            wire.send(_lines(command))
            listed.append([i == own for i in _ids_listed(wire.until_sentinel()) if i == own])
        wire.close()
        results.append(listed)
    assert results[0] == results[1] == [[True, True], [], [True], [], [True]]


# -- CLIENT KILL against a second connection ---------------------------------------------------------

def _kill_outcome(port: int, protocol: int, how: str) -> tuple[bytes, bool, bool]:
    """(killer's reply, victim closed, killer closed) for one way of killing."""
    killer, victim = Wire(port), Wire(port)
    try:
        if protocol == 3:
            killer.send(b"HELLO 3\r\n")
            killer.until_sentinel()
        victim.send(b"CLIENT ID\r\nCLIENT INFO\r\n")
        data = victim.until_sentinel()
        victim_id = int(data[1:data.index(b"\r\n")])
        victim_addr = data.split(b"addr=", 1)[1].split(b" ", 1)[0].decode()
        killer.send(b"CLIENT INFO\r\n")
        killer_addr = killer.until_sentinel().split(b"addr=", 1)[1].split(b" ", 1)[0].decode()
        command = how.format(victim_id=victim_id, victim_addr=victim_addr, killer_addr=killer_addr)
        killer.send(command.encode() + b"\r\n")
        reply = killer.until_sentinel()
        victim.send(b"PING\r\n")
        victim.until_sentinel()
        return reply, victim.closed, killer.closed
    finally:
        killer.close()
        victim.close()


@pytest.mark.parametrize("how", [
    "CLIENT KILL ID {victim_id}", "CLIENT KILL {victim_addr}", "CLIENT KILL ADDR {victim_addr}",
    "CLIENT KILL ID {victim_id} TYPE pubsub", "CLIENT KILL ID {victim_id} USER default SKIPME no",
    "CLIENT KILL {killer_addr}", "CLIENT KILL ADDR {killer_addr}", "CLIENT KILL ADDR {killer_addr} SKIPME no",
    "CLIENT KILL LADDR 127.0.0.1:1 ID {victim_id}",
])
def test_client_kill_another_connection(pair, how):
    our_port, real_port, protocol = ports_and_protocol(pair)
    assert _kill_outcome(our_port, protocol, how) == _kill_outcome(real_port, protocol, how)


def test_client_kill_by_laddr(pair):
    our_port, real_port, protocol = ports_and_protocol(pair)
    how = "CLIENT KILL LADDR 127.0.0.1:{port} ID {{victim_id}}"
    ours = _kill_outcome(our_port, protocol, how.format(port=our_port))
    real = _kill_outcome(real_port, protocol, how.format(port=real_port))
    assert ours == real == (b":1\r\n", True, False)


# -- HELP texts ------------------------------------------------------------------------------------------

def test_debug_help_lists_redis_entries(pair):
    """Shardis lists only the DEBUG subcommands it has, each exactly as Redis words it, in Redis's order."""
    replies = []
    for wire in open_wires(pair):
        wire.send(b"DEBUG HELP\r\n")
        replies.append(wire.until_sentinel().split(b"\r\n")[1:-1])
        wire.close()
    ours, real = replies
    assert ours[0] == real[0]
    entries = []
    for line in ours[1:]:
        if line.startswith(b"+    "):
            entries[-1].append(line)
        else:
            entries.append([line])
    position = 0
    for entry in entries:
        index = real.index(entry[0], position)
        assert real[index:index + len(entry)] == entry
        position = index + len(entry)


# -- CLIENT LIST as another connection sees one in a given state ----------------------------------------

def _replies(wire: Wire, payload: bytes, count: int) -> None:
    """Send `payload` and read exactly `count` replies (push frames included)."""
    reader = hiredis.Reader()
    wire.send(payload)
    got = 0
    while got < count:
        reply = reader.gets()
        if reply is False:
            chunk = wire.sock.recv(65536)
            assert chunk, "closed"
            reader.feed(chunk)
        else:
            got += 1


_STATE_FIELDS = ("flags", "db", "name", "sub", "psub", "ssub", "multi", "cmd", "resp")


def _state_seen_by_another(pair, payload: bytes, count: int) -> list[dict[str, str]]:
    states = []
    for subject, observer in zip(open_wires(pair), open_wires(pair)):
        try:
            subject.send(b"CLIENT ID\r\n")
            subject_id = int(subject.until_sentinel()[1:-2])
            _replies(subject, payload, count)
            observer.send(b"CLIENT LIST\r\n")
            listing = observer.until_sentinel()
        finally:
            subject.close()
            observer.close()
        lines = [line for line in listing.split(b"\n") if b"id=" in line]
        fields = [_client_fields(line[line.index(b"id="):]) for line in lines]
        (subject_fields,) = [f for f in fields if int(f["id"]) == subject_id]
        states.append({name: subject_fields[name] for name in _STATE_FIELDS})
    return states


STATES = {
    "fresh": (b"PING\r\n", 1),
    "select-setname": (b"SELECT 3\r\nCLIENT SETNAME worker\r\n", 2),
    "no-evict": (b"CLIENT NO-EVICT on\r\n", 1),
    "subscribed": (b"SUBSCRIBE a b\r\nPSUBSCRIBE p*\r\n", 3),
    "subscribed-resp3": (b"HELLO 3\r\nSUBSCRIBE a b\r\nSSUBSCRIBE s\r\n", 4),
    "unsubscribed": (b"HELLO 3\r\nSUBSCRIBE a\r\nUNSUBSCRIBE a\r\n", 3),
    "in-multi": (b"MULTI\r\n", 1),
    "after-exec": (b"MULTI\r\nSET k 1\r\nEXEC\r\n", 3),
}


@pytest.mark.parametrize("name", list(STATES))
def test_client_list_state_of_another_connection(pair, name):
    ours, real = _state_seen_by_another(pair, *STATES[name])
    assert ours == real


LAST_COMMAND = {
    "queued-in-multi": (b"MULTI\r\nSET a 1\r\nGET a\r\n", 3),
    "wrong-arity": (b"PING\r\nGET\r\n", 2),
    "unknown-command": (b"PING\r\nNOSUCH\r\n", 2),
    "unknown-subcommand": (b"PING\r\nCLIENT NOSUCH\r\n", 2),
}


@pytest.mark.parametrize("name", list(LAST_COMMAND))
def test_client_list_last_command_is_set_at_lookup(pair, name):
    ours, real = _state_seen_by_another(pair, *LAST_COMMAND[name])
    assert ours == real
