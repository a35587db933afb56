"""Key -> slot -> shard, as Redis Cluster hashes keys (CRC16/XMODEM mod 16384, honouring {hash tags}).

`binascii.crc_hqx` is CRC-CCITT with polynomial 0x1021, which with initial value 0 is exactly the
XMODEM variant Redis uses (`crc16("123456789") == 0x31C3`), computed in C.
"""

from __future__ import annotations

from binascii import crc_hqx

__all__ = ["SLOTS", "key_slot", "ShardMap"]

SLOTS = 16384


def key_slot(key: bytes) -> int:
    """The cluster slot of `key`: only the text between the first `{` and the next `}` is hashed, if non-empty."""
    start = key.find(b"{")
    if start != -1:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            key = key[start + 1:end]
    return crc_hqx(key, 0) & 0x3FFF


class ShardMap:
    """Maps slots to `count` shards in contiguous ranges, as a cluster would assign them to nodes."""

    __slots__ = ("count", "_table")

    def __init__(self, count: int) -> None:
        self.count = count
        self._table = [slot * count // SLOTS for slot in range(SLOTS)]

    def shard_of(self, key: bytes) -> int:
        if self.count == 1:
            return 0
        return self._table[key_slot(key)]

    def sample_keys(self, prefix: str, count: int) -> list[str]:
        """`count` key names `<prefix><n>` owned by `count` different shards, in shard order (for
        tests and benchmarks that need commands to cross shards)."""
        found: dict[int, str] = {}
        i = 0
        while len(found) < count:
            name = f"{prefix}{i}"
            found.setdefault(self.shard_of(name.encode()), name)
            i += 1
        return [found[s] for s in sorted(found)]
