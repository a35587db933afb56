"""Connection commands against a real Shardis process, through redis-py (RESP2 and RESP3) and raw sockets.

What the differential tests cannot compare because the values are Shardis's own: client ids and
addresses, CLIENT SETINFO (a Redis 7.2 command), killing and pausing other connections, and the
security settings (requirepass, maxclients), which need a server of their own.
"""

from __future__ import annotations

import socket
import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.conftest import make_client, shardis_server
from tests.servers import start_shardis

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def _raw(port: int, payload: bytes, *, expect_close: bool = False, timeout: float = 10) -> bytes:
    """Send `payload` on a new connection and read to EOF. Unless the payload itself makes the server
    close, a QUIT follows it (allowed even unauthenticated) and its +OK is cut off."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload if expect_close else payload + b"QUIT\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    if not expect_close:
        assert data.endswith(b"+OK\r\n")
        data = data[:-5]
    return data


def _port(r: redis.Redis) -> int:
    return r.connection_pool.connection_kwargs["port"]


def _info(r: redis.Redis) -> dict:
    return r.client_info()


# -- identity ------------------------------------------------------------------------------------------

def test_client_id_info_and_list(r):
    own = r.client_id()
    other = make_client(shardis_server(1), 2)
    try:
        other_id = other.client_id()
        assert other_id > own
        info = _info(r)
        assert info["id"] == own and info["db"] == 0 and info["cmd"] == "client|info"
        assert int(info["resp"]) == (3 if r.connection_pool.connection_kwargs.get("protocol") == 3 else 2)
        assert info["laddr"].endswith(f":{_port(r)}")
        listed = {int(c["id"]) for c in r.client_list()}
        assert {own, other_id} <= listed
        assert [int(c["id"]) for c in r.client_list(client_id=[other_id])] == [other_id]
        assert other_id in {int(c["id"]) for c in r.client_list(_type="normal")}
    finally:
        other.close()


def test_setname_getname_and_setinfo(r):
    assert r.client_getname() is None
    assert r.client_setname("worker-1") is True
    assert r.client_getname() == (b"worker-1" if isinstance(r.client_getname(), bytes) else "worker-1")
    assert r.execute_command("CLIENT SETINFO", "LIB-NAME", "shardis-tests") in (b"OK", "OK", True)
    assert r.execute_command("CLIENT SETINFO", "lib-ver", "1.2") in (b"OK", "OK", True)
    info = _info(r)
    assert (info["name"], info["lib-name"], info["lib-ver"]) == ("worker-1", "shardis-tests", "1.2")
    with pytest.raises(redis.ResponseError, match="^Unrecognized option 'nope'$"):
        r.execute_command("CLIENT SETINFO", "nope", "x")
    with pytest.raises(redis.ResponseError, match="cannot contain spaces, newlines or special characters"):
        r.execute_command("CLIENT SETINFO", "lib-name", "a b")
    r.client_setname("")
    assert r.client_getname() is None


def test_no_evict_flag(r):
    r.execute_command("CLIENT NO-EVICT", "on")
    assert _info(r)["flags"] == "e"
    r.execute_command("CLIENT NO-EVICT", "off")
    assert _info(r)["flags"] == "N"


def test_select_isolates_databases(r):
    r.set("k", "db0")
    r.select(7)
    assert r.get("k") is None
    r.set("k", "db7")
    assert _info(r)["db"] == 7
    r.select(0)
    assert r.get("k") in (b"db0", "db0")


def test_ping_and_echo(r):
    assert r.ping() is True
    assert r.echo("hello") == b"hello"
    assert _raw(_port(r), b"PING x\r\nPING\r\nECHO \"\"\r\n") == b"$1\r\nx\r\n+PONG\r\n$0\r\n\r\n"


def test_quit_closes_the_connection(r):
    data = _raw(_port(r), b"PING\r\nQUIT\r\nPING\r\n", expect_close=True)
    assert data == b"+PONG\r\n+OK\r\n"


def test_reset_restores_a_fresh_connection(r):
    data = _raw(_port(r), b"HELLO 3 SETNAME n\r\nSELECT 4\r\nCLIENT REPLY OFF\r\nRESET\r\nCLIENT INFO\r\n")
    line = data.split(b"+RESET\r\n", 1)[1]
    assert b" name= " in line and b" db=0 " in line and b" resp=2" in line


def test_hello_switches_the_reply_protocol(r):
    data = _raw(_port(r), b"HELLO 3\r\nGET missing\r\nHELLO 2\r\nGET missing\r\n")
    assert data.startswith(b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n")
    assert b"$5\r\nproto\r\n:3\r\n" in data and b"$5\r\nproto\r\n:2\r\n" in data
    assert b"*0\r\n_\r\n*14\r\n" in data and data.endswith(b"*0\r\n$-1\r\n")


def test_client_reply_off_and_on(r):
    data = _raw(_port(r), b"CLIENT REPLY OFF\r\nSET k 1\r\nGET k\r\nCLIENT REPLY ON\r\nGET k\r\n")
    assert data == b"+OK\r\n$1\r\n1\r\n"


# -- CLIENT KILL -----------------------------------------------------------------------------------------

def _connect_with_id(port: int) -> tuple[socket.socket, int, str]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"CLIENT INFO\r\n")
    data = b""
    while not data.endswith(b"\n\r\n"):
        data += sock.recv(65536)
    fields = dict(item.split("=", 1) for item in data.split(b"\r\n")[1].decode().split())
    return sock, int(fields["id"]), fields["addr"]


def test_client_kill_by_id_closes_the_victim(r):
    victim, victim_id, _ = _connect_with_id(_port(r))
    with victim:
        assert r.client_kill_filter(_id=victim_id) == 1
        assert victim.recv(100) == b""
    assert r.client_kill_filter(_id=victim_id) == 0


def test_client_kill_old_form(r):
    victim, _, addr = _connect_with_id(_port(r))
    with victim:
        assert r.client_kill(addr) is True
        assert victim.recv(100) == b""
    with pytest.raises(redis.ResponseError, match="^No such client$"):
        r.client_kill(addr)


@pytest.mark.parametrize("how", ["CLIENT KILL {addr}", "CLIENT KILL ADDR {addr} SKIPME no",
                                 "CLIENT KILL ID {id} SKIPME no"])
def test_client_kill_self_replies_then_closes(r, how):
    sock, own_id, addr = _connect_with_id(_port(r))
    with sock:
        sock.sendall(how.format(addr=addr, id=own_id).encode() + b"\r\nPING\r\n")
        data = b""
        while chunk := sock.recv(100):
            data += chunk
    assert data in (b"+OK\r\n", b":1\r\n")


def test_client_kill_skips_the_caller_by_default(r):
    sock, own_id, addr = _connect_with_id(_port(r))
    with sock:
        sock.sendall(f"CLIENT KILL ADDR {addr}\r\nCLIENT KILL ID {own_id}\r\nPING\r\n".encode())
        data = b""
        while not data.endswith(b"+PONG\r\n"):
            data += sock.recv(100)
    assert data == b":0\r\n:0\r\n+PONG\r\n"


# -- CLIENT PAUSE ----------------------------------------------------------------------------------------

def test_pause_write_holds_writes_until_unpause(r):
    port = _port(r)
    r.set("k", "before")
    r.execute_command("CLIENT PAUSE", 20000, "WRITE")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as writer:
            writer.sendall(b"SET k during\r\n")
            assert r.get("k") in (b"before", "before")          # reads go on
            writer.settimeout(0.2)
            with pytest.raises(TimeoutError):
                writer.recv(100)                                  # the write waits
            writer.settimeout(10)
            r.execute_command("CLIENT UNPAUSE")
            assert writer.recv(100) == b"+OK\r\n"
    finally:
        r.execute_command("CLIENT UNPAUSE")
    assert r.get("k") in (b"during", "during")


def test_pause_all_delays_reads_until_it_expires(r):
    port = _port(r)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as reader:
        started = time.monotonic()
        r.execute_command("CLIENT PAUSE", 300, "ALL")
        reader.sendall(b"PING\r\n")
        assert reader.recv(100) == b"+PONG\r\n"
        assert time.monotonic() - started >= 0.25


@pytest.fixture
def own_shardis():
    server = start_shardis(shards=1)
    yield server
    server.proc.kill()  # a failed pause test may have left it paused for good
    server.proc.wait(10)


def test_a_pause_after_unpause_ends_on_time(own_shardis):
    with socket.create_connection(("127.0.0.1", own_shardis.port), timeout=3) as sock:
        sock.settimeout(1.5)
        sock.sendall(b"CLIENT PAUSE 100000 ALL\r\nCLIENT UNPAUSE\r\nCLIENT PAUSE 10 ALL\r\nPING\r\n")
        data = b""
        while not data.endswith(b"+PONG\r\n"):
            data += sock.recv(100)
        assert data == b"+OK\r\n+OK\r\n+OK\r\n+PONG\r\n"


# -- security -----------------------------------------------------------------------------------------------

def _wait_until(check, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the server never got there"
        time.sleep(0.02)  # polling interval, not synchronisation


@pytest.fixture(scope="module")
def secured():
    server = start_shardis("--requirepass", "secret", shards=1)
    # Readiness saw NOAUTH, which a server still loading its AOF also answers: wait for the data.
    _wait_until(lambda: _raw(server.port, b"AUTH secret\r\nPING\r\n") == b"+OK\r\n+PONG\r\n")
    yield server
    assert server.stop() == 0


NOAUTH = b"-NOAUTH Authentication required.\r\n"
WRONGPASS = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"


def test_requirepass_refuses_commands_before_auth(secured):
    data = _raw(secured.port, b"PING\r\nGET a\r\nCLIENT ID\r\nFOO\r\nGET\r\nAUTH wrong\r\nAUTH default wrong\r\n"
                              b"HELLO 3\r\nAUTH secret\r\nPING\r\nRESET\r\nPING\r\n")
    assert data == (NOAUTH * 3 + b"-ERR unknown command 'FOO', with args beginning with: \r\n"
                    b"-ERR wrong number of arguments for 'get' command\r\n" + WRONGPASS * 2 +
                    b"-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO "
                    b"AUTH <user> <pass> option can be used to authenticate the client and select the RESP "
                    b"protocol version at the same time\r\n+OK\r\n+PONG\r\n+RESET\r\n" + NOAUTH)


def test_hello_auth(secured):
    data = _raw(secured.port, b"HELLO 3 AUTH default wrong\r\nHELLO 3 AUTH default secret SETNAME app\r\n"
                              b"CLIENT GETNAME\r\n")
    assert data.startswith(WRONGPASS + b"%7\r\n")
    assert data.endswith(b"$3\r\napp\r\n")


@pytest.mark.parametrize("payload,error", [
    (b"*11\r\n$4\r\nPING\r\n", b"unauthenticated multibulk length"),
    (b"*2\r\n$4\r\nECHO\r\n$16385\r\n", b"unauthenticated bulk length"),
])
def test_unauthenticated_limits(secured, payload, error):
    assert _raw(secured.port, payload, expect_close=True) == b"-ERR Protocol error: " + error + b"\r\n"


def test_limits_lift_after_auth(secured):
    big = b"x" * 20000
    data = _raw(secured.port, b"AUTH secret\r\n*2\r\n$4\r\nECHO\r\n$20000\r\n" + big + b"\r\n"
                              b"*11\r\n$4\r\nMGET\r\n" + b"$1\r\nk\r\n" * 10)
    assert data == b"+OK\r\n$20000\r\n" + big + b"\r\n*10\r\n" + b"$-1\r\n" * 10


def test_redis_py_with_password(secured):
    for protocol in (2, 3):
        client = redis.Redis(host="127.0.0.1", port=secured.port, password="secret", protocol=protocol)
        assert client.ping() is True
        client.close()
    no_retry = Retry(NoBackoff(), 0)
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=secured.port, password="nope", retry=no_retry).ping()


def test_maxclients_refuses_extra_clients():
    server = start_shardis("--maxclients", "2", shards=1)
    try:
        first = socket.create_connection(("127.0.0.1", server.port), timeout=10)

        def alone() -> bool:  # the readiness probe's connection may still be counted
            first.sendall(b"INFO clients\r\n")
            info = b""
            while not info.endswith(b"\r\n\r\n"):
                info += first.recv(65536)
            return b"connected_clients:1\r\n" in info
        _wait_until(alone)
        second = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        second.sendall(b"PING\r\n")
        assert second.recv(100) == b"+PONG\r\n"
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as third:
            refusal = b""
            while chunk := third.recv(100):  # sending nothing: the server closes right after its reply
                refusal += chunk
        assert refusal == b"-ERR max number of clients reached\r\n"
        first.sendall(b"INFO stats\r\n")
        stats = b""
        while not stats.endswith(b"\r\n\r\n"):
            stats += first.recv(65536)
        assert b"rejected_connections:1\r\n" in stats
        first.close()
        second.close()
    finally:
        assert server.stop() == 0


def test_a_large_reply_reaches_a_slow_reader_in_full():
    """Past the transport's high-water mark the loop calls pause_writing/resume_writing on the
    protocol: a connection must have them (it logged an AttributeError for each otherwise)."""
    server = shardis_server(1)
    value = b"x" * 8_000_000
    make_client(server, 2).set("big-reply", value)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        raw.sendall(b"*2\r\n$3\r\nGET\r\n$9\r\nbig-reply\r\n")
        expected = b"$%d\r\n" % len(value) + value + b"\r\n"
        received = bytearray()
        while len(received) < len(expected):
            chunk = raw.recv(65536)
            assert chunk, "connection closed early"
            received += chunk
    assert bytes(received) == expected
    assert "_writing" not in server.log()
