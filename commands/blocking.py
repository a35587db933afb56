"""The contract between blocking commands (BLPOP, BLMOVE, BZPOPMIN ...) and the shard actors.

A blocking handler first tries to serve the client at once. When every key is empty it raises
`Block`: the shard then parks the client on those keys (FIFO per key) with its reply slot still
unfilled. When a later command pushes to one of the keys (`Keyspace.signal_ready`), the shard runs
the same handler again for the first waiter; if it still cannot serve, it raises Block again and
keeps its place. On timeout the loop answers with `timeout_reply`. Inside MULTI or a script
(`store.no_block`) handlers must return `timeout_reply` instead of raising.
"""

from __future__ import annotations

import math
import time
from decimal import Decimal
from fractions import Fraction

from commands.args import LLONG_MAX, parse_long_double
from protocol.errors import CommandError

__all__ = ["Block", "parse_timeout", "block_or_reply"]


class Block(Exception):
    """Raised by a handler that must wait for `keys` (in its own database) to become non-empty."""

    def __init__(self, keys: list[bytes], timeout: float, timeout_reply) -> None:
        super().__init__("block")
        self.keys = keys
        self.timeout = timeout          # seconds; 0 means forever
        self.timeout_reply = timeout_reply


_TIMEOUT_NOT_FLOAT = "ERR timeout is not a float or out of range"
_TIMEOUT_NEGATIVE = "ERR timeout is negative"


def _long_double(x: Fraction) -> Fraction:
    """Round an exact value to the x87 80-bit format (64-bit mantissa, half to even)."""
    if not x:
        return x
    num, den = abs(x.numerator), x.denominator
    exp = num.bit_length() - den.bit_length()   # floor(log2|x|) or one more
    if (num << max(-exp, 0)) < (den << max(exp, 0)):
        exp -= 1
    scale = Fraction(2) ** (63 - exp)
    return round(x * scale) / scale


def parse_timeout(raw: bytes) -> float:
    """A blocking timeout in seconds as Redis 7.0 reads it (getTimeoutFromObjectOrReply); 0 = forever.

    Redis parses a long double, computes `(long long) ceill(ftval * 1000.0)` and then only rejects a
    negative result. The x87 conversion of anything out of range (inf, 1e300, 9.3e15 s) is LLONG_MIN,
    so those are "negative"; -0.0005 s rounds up to 0 ms and blocks forever, 0.0001 s is 1 ms; and a
    deadline past LLONG_MAX ms wraps in Redis and never fires, so it is forever here too.
    """
    try:
        value = parse_long_double(raw)
    except CommandError:
        raise CommandError(_TIMEOUT_NOT_FLOAT) from None
    if isinstance(value, float):            # +-inf
        raise CommandError(_TIMEOUT_NEGATIVE)
    if value and b"x" not in raw.lower():
        # parse_long_double may round to 63 bits; take the exact decimal and round it here once.
        value = Fraction(Decimal(raw.decode("latin-1")))
    ms = math.ceil(_long_double(_long_double(value) * 1000))
    if ms < 0 or ms > LLONG_MAX:
        raise CommandError(_TIMEOUT_NEGATIVE)
    if ms == 0 or ms > LLONG_MAX - time.time_ns() // 1_000_000:
        return 0.0
    return ms / 1000


def block_or_reply(db, keys: list[bytes], timeout: float, timeout_reply):
    """Raise Block, or return the timeout reply at once when blocking is not allowed."""
    if db.store.no_block:
        return timeout_reply
    raise Block(keys, timeout, timeout_reply)
