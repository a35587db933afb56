"""Global mode: one database seen across every shard, while all shards are parked at a barrier.

`ShardedKeyspace` offers the same interface as `Keyspace`, routing each key to the part that owns
it, so a multi-key command (MSET, RENAME, DEL k1 k2 ...) has one handler whatever the shard count.
`ShardedStore` does the same for the Store-level operations handlers use (other databases, SWAPDB,
counters). Counters are charged to the first shard; INFO sums them over all shards.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from keyspace.db import Keyspace, Store
from keyspace.routing import ShardMap

__all__ = ["ShardedKeyspace", "ShardedStore"]


class ShardedStore:
    """The Store interface over every shard's Store."""

    def __init__(self, stores: list[Store], shard_map: ShardMap) -> None:
        self.parts = stores
        self.shard_map = shard_map
        self.clock = stores[0].clock
        self.dbs = [ShardedKeyspace(i, self) for i in range(len(stores[0].dbs))]

    def __getattr__(self, name: str):
        # Counters (dirty, expired_keys, keyspace_hits ...) are read from and charged to shard 0.
        return getattr(self.parts[0], name)

    def __setattr__(self, name: str, value) -> None:
        if name in ("parts", "shard_map", "clock", "dbs"):
            object.__setattr__(self, name, value)
        else:
            setattr(self.parts[0], name, value)

    def swap(self, a: int, b: int) -> None:
        for store in self.parts:
            store.swap(a, b)


class ShardedKeyspace:
    """The Keyspace interface for database `index` over every shard."""

    def __init__(self, index: int, store: ShardedStore) -> None:
        self.index = index
        self.store = store
        self._shard_of = store.shard_map.shard_of

    @property
    def parts(self) -> list[Keyspace]:
        return [s.dbs[self.index] for s in self.store.parts]

    def part(self, key: bytes) -> Keyspace:
        return self.store.parts[self._shard_of(key)].dbs[self.index]

    # Per-key operations go to the owning part.
    def get(self, key):
        return self.part(key).get(key)

    def read(self, key, cls):
        return self.part(key).read(key, cls)

    def typed(self, key, cls):
        return self.part(key).typed(key, cls)

    def exists(self, key):
        return self.part(key).exists(key)

    def set(self, key, value, keep_ttl=False):
        self.part(key).set(key, value, keep_ttl)

    def delete(self, key):
        return self.part(key).delete(key)

    def pop(self, key):
        return self.part(key).pop(key)

    def ttl(self, key):
        return self.part(key).ttl(key)

    def expire_at(self, key, when_ms):
        self.part(key).expire_at(key, when_ms)

    def persist(self, key):
        return self.part(key).persist(key)

    def propagate(self, *argv):
        first = self.store.parts[0]
        if first.records is not None:
            first.also.append((self.index, list(argv)))

    def notify(self, event_class, event, key):
        # One list for the whole command keeps Redis's order across shards: the coordinator
        # publishes every part's events, so the first part's list serves them all.
        self.store.parts[0].dbs[self.index].notify(event_class, event, key)

    def signal_ready(self, key):
        self.part(key).signal_ready(key)

    def signal_modified(self, key):
        self.part(key).signal_modified(key)

    def unmodified(self, key):
        # Changes are counted on the first part (see ShardedStore): the exemption lasts as long.
        store = self.part(key).store
        if store.watched:
            store.skip_signal(self.index, key, self.store.parts[0])

    def unmodified_except(self, keys, changed):
        for key in keys:
            if key != changed:
                self.unmodified(key)

    def is_expired(self, key):
        return self.part(key).is_expired(key)

    # Whole-database operations span the parts.
    def __len__(self) -> int:
        return sum(len(p) for p in self.parts)

    def keys(self) -> Iterator[bytes]:
        for p in self.parts:
            yield from p.keys()

    def random_key(self):
        parts = [p for p in self.parts if len(p)]
        while parts:
            p = random.choices(parts, weights=[len(x) for x in parts])[0]
            key = p.random_key()
            if key is not None:
                return key
            parts.remove(p)
        return None

    def flush(self) -> None:
        for p in self.parts:
            p.flush()

    @property
    def data(self):
        raise AttributeError("a sharded view has no single dict; iterate keys() instead")

    @property
    def expires(self) -> dict:
        merged: dict = {}
        for p in self.parts:
            merged.update(p.expires)
        return merged

    @property
    def scan_cache(self) -> dict:
        return self.store.parts[0].dbs[self.index].scan_cache
