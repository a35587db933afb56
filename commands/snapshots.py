"""Persistence commands (Redis group "server"): SAVE, BGSAVE, BGREWRITEAOF.

They run on the loop; the work happens in actors/durability.py: a snapshot at a barrier of every
shard, encoded on a background thread.
"""

from __future__ import annotations

from commands.registry import Route, command
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
    if len(argv) == 2 and durability.rewrite_in_progress:
        durability.save_scheduled = True
        return "Background saving scheduled"
    error = durability.bgsave()
    if error is not None:
        raise CommandError(error)
    return "Background saving started"


@command("BGREWRITEAOF", arity=1, flags="admin noscript no_async_loading", group="server",
         route=Route.LOCAL)
def bgrewriteaof(client, argv):
    """BGREWRITEAOF"""
    text = client.server.durability.rewrite()
    if text.startswith("ERR"):
        raise CommandError(text)
    return text
