"""Transaction commands (Redis group "transactions"): MULTI, EXEC, DISCARD, WATCH, UNWATCH.

They run on the loop with the connection, which owns the queue of a transaction; how a queued
transaction is executed atomically across shards is in actors/transaction.py.
"""

from __future__ import annotations

from commands.registry import Route, command
from protocol.errors import CommandError
from protocol.replies import OK

__all__ = ["IN_EXEC"]


class ExecState:
    """Whether EXEC is running a queued command right now (Redis's server.in_exec): BGSAVE and
    BGREWRITEAOF then only schedule their work. Set by actors/transaction.py around the LOCAL
    commands of a transaction, which run on the loop thread."""

    __slots__ = ("active",)

    def __init__(self) -> None:
        self.active = False


IN_EXEC = ExecState()


@command("MULTI", arity=1, flags="noscript loading stale fast allow_busy", group="transactions",
         route=Route.LOCAL)
def multi(client, argv):
    """MULTI -- start queueing commands."""
    if client.multi is not None:
        raise CommandError("ERR MULTI calls can not be nested")
    client.multi = []
    client.multi_error = False
    return OK


@command("EXEC", arity=1, flags="noscript loading stale skip_slowlog", group="transactions",
         route=Route.LOCAL)
def exec_(client, argv):
    """EXEC -- run the queue atomically; null if a watched key changed, EXECABORT after errors."""
    if client.multi is None:
        raise CommandError("ERR EXEC without MULTI")
    return client.exec_transaction()


@command("DISCARD", arity=1, flags="noscript loading stale fast allow_busy", group="transactions",
         route=Route.LOCAL)
def discard(client, argv):
    """DISCARD -- drop the queue and every WATCH."""
    if client.multi is None:
        raise CommandError("ERR DISCARD without MULTI")
    client.multi = None
    client.multi_error = False
    client.unwatch()
    return OK


@command("WATCH", arity=-2, flags="noscript loading stale fast allow_busy", keys=(1, -1, 1),
         group="transactions", route=Route.LOCAL)
def watch(client, argv):
    """WATCH key [key ...] -- EXEC fails if any of them is modified before it runs."""
    if client.multi is not None:
        raise CommandError("ERR WATCH inside MULTI is not allowed")
    client.watch(argv[1:])
    return OK


@command("UNWATCH", arity=1, flags="noscript loading stale fast allow_busy",
         group="transactions", route=Route.LOCAL)
def unwatch(client, argv):
    """UNWATCH"""
    client.unwatch()
    return OK
