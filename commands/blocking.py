"""The contract between blocking commands (BLPOP, BLMOVE, BZPOPMIN ...) and the shard actors.

A blocking handler first tries to serve the client at once. When every key is empty it raises
`Block`: the shard then parks the client on those keys (FIFO per key) with its reply slot still
unfilled. When a later command pushes to one of the keys (`Keyspace.signal_ready`), the shard runs
the same handler again for the first waiter; if it still cannot serve, it raises Block again and
keeps its place. On timeout the loop answers with `timeout_reply`. Inside MULTI or a script
(`store.no_block`) handlers must return `timeout_reply` instead of raising.
"""

from __future__ import annotations

from commands.args import parse_float
from protocol.errors import CommandError

__all__ = ["Block", "parse_timeout", "block_or_reply"]


class Block(Exception):
    """Raised by a handler that must wait for `keys` (in its own database) to become non-empty."""

    def __init__(self, keys: list[bytes], timeout: float, timeout_reply) -> None:
        super().__init__("block")
        self.keys = keys
        self.timeout = timeout          # seconds; 0 means forever
        self.timeout_reply = timeout_reply


def parse_timeout(raw: bytes) -> float:
    """Blocking timeouts as Redis 7.0 reads them: float seconds, >= 0, no NaN/inf."""
    value = parse_float(raw, "ERR timeout is not a float or out of range")
    if value in (float("inf"), float("-inf")):
        raise CommandError("ERR timeout is not a float or out of range")
    if value < 0:
        raise CommandError("ERR timeout is negative")
    return value


def block_or_reply(db, keys: list[bytes], timeout: float, timeout_reply):
    """Raise Block, or return the timeout reply at once when blocking is not allowed."""
    if db.store.no_block:
        return timeout_reply
    raise Block(keys, timeout, timeout_reply)
