"""Replication commands (REDIS-FACTS §6): REPLICAOF/SLAVEOF, ROLE, REPLCONF, PSYNC/SYNC and WAIT.

They run on the loop; the state and the protocol live in actors/replication.py (`server.replication`).
"""

from __future__ import annotations

from commands.args import parse_int, try_int
from commands.registry import Route, command
from protocol.errors import CommandError
from protocol.replies import DEFERRED

__all__: list[str] = []

_WAIT_ON_REPLICA = ("ERR WAIT cannot be used with replica instances. Please also note that since "
                    "Redis 4.0 if a replica is configured to be writable (which is not the "
                    "default) writes to replicas are just local and are not propagated.")


def _replicaof(client, argv):
    replication = client.server.replication
    if argv[1].lower() == b"no" and argv[2].lower() == b"one":
        return replication.replicaof(None)
    if client.replica_link is not None:
        raise CommandError("ERR Command is not valid when client is a replica.")
    port = try_int(argv[2])
    if port is None or not 0 <= port <= 65535:
        raise CommandError("ERR Invalid master port")
    return replication.replicaof(argv[1].decode("utf-8", "replace"), port)


@command("REPLICAOF", arity=3, flags="admin noscript stale no_async_loading", group="server",
         route=Route.LOCAL)
def replicaof(client, argv):
    """REPLICAOF host port | NO ONE -- follow a master, or become one."""
    return _replicaof(client, argv)


@command("SLAVEOF", arity=3, flags="admin noscript stale no_async_loading", group="server",
         route=Route.LOCAL)
def slaveof(client, argv):
    """SLAVEOF host port | NO ONE -- the old name Sentinel still sends."""
    return _replicaof(client, argv)


@command("ROLE", arity=1, flags="noscript loading stale fast", group="server", route=Route.LOCAL)
def role(client, argv):
    """ROLE -- master with its replicas, or replica with its master and link state."""
    reply = client.server.replication.role_reply()
    if reply[0] == "master":
        return [b"master", reply[1], [[ip.encode(), port.encode(), off.encode()]
                                      for ip, port, off in reply[2]]]
    return [b"slave", reply[1].encode(), reply[2], reply[3].encode(), reply[4]]


@command("REPLCONF", arity=-1, flags="admin noscript loading stale allow_busy", group="server",
         route=Route.LOCAL)
def replconf(client, argv):
    """REPLCONF option value ... -- what a replica tells its master (ACK has no reply)."""
    result = client.server.replication.replconf(client, argv)
    if result is None:
        client.suppress_reply()
        return DEFERRED
    return result


@command("PSYNC", arity=-3, flags="admin noscript no_async_loading no_multi", group="server",
         route=Route.LOCAL)
def psync(client, argv):
    """PSYNC replid offset -- continue from the backlog, or a full resync."""
    client.server.replication.sync(client, argv)
    return DEFERRED


@command("SYNC", arity=1, flags="admin noscript no_async_loading no_multi", group="server",
         route=Route.LOCAL)
def sync(client, argv):
    """SYNC -- the legacy full synchronisation."""
    client.server.replication.sync(client, argv)
    return DEFERRED


@command("WAIT", arity=3, flags="noscript", group="generic", route=Route.LOCAL)
def wait(client, argv):
    """WAIT numreplicas timeout -- block until replicas acknowledged this client's writes."""
    replication = client.server.replication
    if replication.role == "slave":
        raise CommandError(_WAIT_ON_REPLICA)
    numreplicas = parse_int(argv[1])
    timeout = parse_int(argv[2], "ERR timeout is not an integer or out of range")
    if timeout < 0:
        raise CommandError("ERR timeout is negative")
    slot = client.deferred_slot()
    replication.wait(client, numreplicas, timeout, slot)
    return DEFERRED
