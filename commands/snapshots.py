"""Persistence commands (Redis group "server"): SAVE, BGSAVE, BGREWRITEAOF.

They run on the loop; the work happens in actors/durability.py: a snapshot at a barrier of every
shard, encoded on a background thread. Inside EXEC, BGSAVE and BGREWRITEAOF only schedule their
work, as Redis does (server.in_exec): it starts once the transaction is over.
"""

from __future__ import annotations

from commands.registry import Route, command
from commands.transactions import IN_EXEC
from protocol.errors import SYNTAX_ERROR, CommandError
from protocol.replies import DEFERRED, ErrorReply, encode

__all__: list[str] = []


@command("SAVE", arity=1, flags="admin noscript no_async_loading no_multi", group="server",
         route=Route.LOCAL)
def save(client, argv):
    """SAVE -- write dump.rdb; replies once it is on disk."""
    slot = client.deferred_slot()

    def reply(error) -> None:
        value = "OK" if error is None else ErrorReply("ERR " + str(error))
        client.fill_deferred(slot, encode(value, client.proto))
    error = client.server.durability.bgsave(reply)
    if error is not None:
        client.fill_deferred(slot, encode(ErrorReply(error), client.proto))
    return DEFERRED


@command("BGSAVE", arity=-1, flags="admin noscript no_async_loading", group="server",
         route=Route.LOCAL)
def bgsave(client, argv):
    """BGSAVE [SCHEDULE]"""
    if len(argv) > 2 or (len(argv) == 2 and argv[1].lower() != b"schedule"):
        raise CommandError(SYNTAX_ERROR)
    durability = client.server.durability
    if durability.bgsave_in_progress:
        raise CommandError("ERR Background save already in progress")
    if IN_EXEC.active or (len(argv) == 2 and durability.rewrite_in_progress):
        durability.save_scheduled = True
        if IN_EXEC.active:
            client.server.loop.call_soon(_start_scheduled, durability)
        return "Background saving scheduled"
    error = durability.bgsave()
    if error is not None:
        raise CommandError(error)
    return "Background saving started"


@command("BGREWRITEAOF", arity=1, flags="admin noscript no_async_loading", group="server",
         route=Route.LOCAL)
def bgrewriteaof(client, argv):
    """BGREWRITEAOF"""
    durability = client.server.durability
    if IN_EXEC.active and not durability.rewrite_in_progress:
        durability.rewrite_scheduled = True
        client.server.loop.call_soon(_start_scheduled, durability)
        return "Background append only file rewriting scheduled"
    text = durability.rewrite()
    if text.startswith("ERR"):
        raise CommandError(text)
    return text


def _start_scheduled(durability) -> None:
    """Right after the EXEC that scheduled them: start the scheduled rewrite, then the scheduled
    save, when nothing else runs (the once-a-second cron of actors/durability.py does the same,
    in the same order, for those still waiting)."""
    if durability.bgsave_in_progress or durability.rewrite_in_progress:
        return
    if durability.rewrite_scheduled:
        durability.rewrite_scheduled = False
        durability.rewrite()
    elif durability.save_scheduled:
        durability.save_scheduled = False
        durability.bgsave()
