"""One logical database of one shard: a dict of keys plus an expiry index.

A shard owns one `Store` (its 16 databases and per-shard counters). Nothing here is thread-safe or
needs to be: exactly one shard thread touches a Store, except in global mode, when every shard is
parked at a barrier and the coordinator touches them all (see actors/shard.py).

Expiry is lazy on access (`get` deletes a key whose deadline has passed) and active: `active_expire`
pops due keys from a min-heap of (deadline, key). Redis samples random keys with a TTL instead,
because its dict has no order; a heap finds every due key in O(log n) without sampling, so expired
keys never linger. Stale heap entries (TTL changed or removed) are skipped by comparing deadlines.
Expiry checks read `Store.expire_clock`, which stands still while a transaction runs
(`frozen_expiry`). A key expires once the clock is past its deadline, as in Redis's keyIsExpired.

WATCH (signalModifiedKey, touchAllWatchedKeysInDb of Redis 7.0): `Store.watched` maps (db, key) to
the WATCH tokens of actors/transaction.py; a token has `dirty` (EXEC will fail) and `stale`, the
(db, key) pairs that were already logically expired when WATCH ran: deleting such a key is no
logical change.
"""

from __future__ import annotations

import heapq
import random
import time
from collections import deque
from itertools import islice
from collections.abc import Callable, Iterator

from protocol.errors import WRONGTYPE, CommandError

__all__ = ["Keyspace", "Store", "RawString", "type_name", "register_type", "now_ms",
           "scan_snapshot", "frozen_expiry", "touch_written", "delete_if_empty",
           "delete_destination"]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class RawString(bytes):
    """A string Redis would hold with the `raw` encoding: the result of APPEND or SETRANGE."""

    __slots__ = ()


_TYPE_NAMES: dict[type, str] = {bytes: "string", deque: "list", set: "set", dict: "hash"}


def type_name(value: object) -> str:
    """The TYPE reply for a stored value."""
    name = _TYPE_NAMES.get(type(value))
    if name is not None:
        return name
    for base in type(value).__mro__:
        name = _TYPE_NAMES.get(base)
        if name is not None:
            return name
    return getattr(value, "type_name", "none")


def delete_if_empty(db, key: bytes, members) -> None:
    """Redis keeps no empty aggregate: a command that emptied one deletes it, with a `del` event.
    `db` is a Keyspace or a sharded view."""
    if not members:
        db.delete(key)
        db.notify("g", b"del", key)


def delete_destination(db, key: bytes) -> None:
    """A STORE command whose result is empty deletes its destination (a change only if it was
    there)."""
    if db.delete(key):
        db.notify("g", b"del", key)
        db.store.dirty += 1


def register_type(cls: type, name: str) -> None:
    """Value types defined elsewhere (the sorted set) declare their TYPE name here."""
    _TYPE_NAMES[cls] = name


class Store:
    """Everything one shard owns: its databases and the counters INFO reports."""

    def __init__(self, databases: int, clock: Callable[[], int] = now_ms) -> None:
        self.clock = clock
        """Unix ms for what commands compute (EXPIRE's base, TTL): always the live time."""
        self.expire_clock = clock
        """Unix ms for deciding whether a key has expired: `clock`, except during an EXEC, when it
        stands still at the start of the transaction (Redis's fixed_time_expire)."""
        self.dbs = [Keyspace(i, self) for i in range(databases)]
        self.dirty = 0               # writes since the last save, as Redis's server.dirty
        self.expired_keys = 0
        self.expired_stale_perc = 0.0
        self.keyspace_hits = 0
        self.keyspace_misses = 0
        self.active_expire_enabled = True   # DEBUG SET-ACTIVE-EXPIRE
        self.hide_expired = False
        """A replica's store: expired keys look missing to clients but are never deleted here
        (the master's DELs do that), and stay visible to the master's own commands."""
        self.serving_master = False
        """While hide_expired: the command now running comes from the master (actors/shard.py)."""
        # Blocking commands (BLPOP, BZPOPMIN ...): the shard actor owns the waiter queues.
        self.blocked: dict[tuple[int, bytes], object] = {}
        """(db index, key) -> the queue of clients blocked on that key, FIFO."""
        self.ready: list[tuple[int, bytes]] = []
        """Keys with waiters that received data during the current command (signal_ready)."""
        self.no_block = False
        """True while running MULTI/EXEC or a script: blocking commands must not block."""
        self.events: list = []
        """Keyspace notifications of the current batch: (db, event, key), published by the shard."""
        self.serving_key: bytes | None = None
        """While a woken blocked client is re-run: the key that received data (serve from it)."""
        # The write stream (ARCHITECTURE §4). `records` is None while nothing consumes it.
        self.records: list | None = None
        """(db index, argv) write records of the current batch, in execution order."""
        self.also: list = []
        """Records a handler emitted for the command now running, replacing its argv (Redis's
        rewriteClientCommandVector/alsoPropagate): relative TTLs made absolute, SPOP as SREM ..."""
        self.watched: dict[tuple[int, bytes], set] = {}
        """(db index, key) -> WATCH tokens of the clients watching it (commands/transactions.py)."""
        self.config: dict = {}
        """The server's typed option values (Config.values), read by handlers that obey limits."""
        self.expired_hook: Callable[[Keyspace, bytes], None] | None = None
        """Called after a key expires (propagation as DEL, notifications). Set by the shard actor."""
        self.unsignalled: tuple | None = None
        """On the Store that counts the changes of the write command now running: (its dirty
        count, {(db, key): n}), key arguments the command did not modify, which the touch after
        it must skip n times (`skip_signal`, `touch_written`)."""

    def take_unsignalled(self) -> dict | None:
        """The exemptions the write command that just ran declared (`skip_signal`), forgotten
        here: they never outlive the touch after that command. None if it declared none, or if
        they were counted before a later change (they belong to another command)."""
        skip = self.unsignalled
        if skip is None:
            return None
        self.unsignalled = None
        return skip[1] if skip[0] == self.dirty else None

    def signal(self, db_index: int, key: bytes) -> None:
        """The key was modified: every client watching it will see its EXEC fail
        (signalModifiedKey). A key that was already expired when it was watched and is gone now
        was deleted, not changed: the watch carries on (and counts it as missing from now on)."""
        tokens = self.watched.get((db_index, key))
        if tokens:
            for token in list(tokens):
                stale = token.stale
                if stale and (db_index, key) in stale and key not in self.dbs[db_index].data:
                    stale.discard((db_index, key))
                    continue
                token.dirty = True

    def skip_signal(self, db_index: int, key: bytes, counter: Store) -> None:
        """The write command now running did not modify (db_index, key) although it is one of its
        written key arguments (SMOVE's destination that had the member, the keys LMPOP did not
        pop from ...): the touch after it (`touch_written`) must not signal it. Once per key
        argument: COPY k k DB 1 names (db, k) twice.

        Call it after the command counted its change in `counter.dirty` (the Store whose `dirty`
        the caller of the handler compares); the exemption ends with the touch after the command,
        and is void if counted before a later change."""
        if (db_index, key) not in self.watched:
            return
        skip = counter.unsignalled
        if skip is not None and skip[0] == counter.dirty:
            pairs = skip[1]
            pairs[(db_index, key)] = pairs.get((db_index, key), 0) + 1
        else:
            counter.unsignalled = (counter.dirty, {(db_index, key): 1})

    def touch_all_watched_in_db(self, emptied: Keyspace, replaced_with: Keyspace | None) -> None:
        """FLUSHDB (`replaced_with` None) or one side of SWAPDB: signal the watched keys of
        `emptied` whose value changes, as Redis's touchAllWatchedKeysInDb decides it: a stale
        watched key deleted, or replaced by another stale key, is no change; a missing one
        replaced by a stale key becomes a stale watched key."""
        index = emptied.index
        for (db_index, key), tokens in list(self.watched.items()):
            if db_index != index:
                continue
            in_emptied = key in emptied.data
            in_replacement = replaced_with is not None and key in replaced_with.data
            if not in_emptied and not in_replacement:
                continue
            for token in list(tokens):
                stale = token.stale
                if stale and (db_index, key) in stale:
                    if not in_replacement:
                        stale.discard((db_index, key))      # the stale key is deleted
                        continue
                    if replaced_with.is_expired(key):
                        continue                            # stale it was, stale it stays
                elif not in_emptied and replaced_with.is_expired(key):
                    token.stale.add((db_index, key))        # missing, now stale: no change
                    continue
                token.dirty = True

    def swap(self, a: int, b: int) -> None:
        """SWAPDB: exchange the contents of two databases; the Keyspace objects keep their index."""
        da, db_ = self.dbs[a], self.dbs[b]
        if self.watched:
            self.touch_all_watched_in_db(da, db_)
            self.touch_all_watched_in_db(db_, da)
        da.data, db_.data = db_.data, da.data
        da.expires, db_.expires = db_.expires, da.expires
        da._heap, db_._heap = db_._heap, da._heap
        da.scan_cache.clear()
        db_.scan_cache.clear()


class Keyspace:
    """Keys of one database in one shard. Values are bytes, deque, set, dict or a ZSet."""

    __slots__ = ("index", "store", "data", "expires", "_heap", "scan_cache")

    def __init__(self, index: int, store: Store) -> None:
        self.index = index
        self.store = store
        self.data: dict[bytes, object] = {}
        self.expires: dict[bytes, int] = {}
        self._heap: list[tuple[int, bytes]] = []
        self.scan_cache: dict[int, list[bytes]] = {}

    # -- lookups -------------------------------------------------------------------------------

    def get(self, key: bytes):
        """The live value of `key`, or None. Deletes the key first if it has expired."""
        value = self.data.get(key)
        if value is not None and self.expires:
            when = self.expires.get(key)
            if when is not None and when < self.store.expire_clock():
                store = self.store
                if store.hide_expired:  # a replica: its master's DEL will remove the key
                    return value if store.serving_master else None
                self._expire(key)
                return None
        return value

    def is_expired(self, key: bytes) -> bool:
        """Whether `key` is present but past its deadline (Redis's keyIsExpired): nothing is
        deleted."""
        when = self.expires.get(key) if self.expires else None
        return when is not None and when < self.store.expire_clock()

    def read(self, key: bytes, cls: type):
        """The value of `key` if it is of type `cls`, None if missing; WRONGTYPE otherwise. Counts hits."""
        value = self.get(key)
        if value is None:
            self.store.keyspace_misses += 1
            self.notify("m", b"keymiss", key)
            return None
        self.store.keyspace_hits += 1
        if not isinstance(value, cls):
            raise CommandError(WRONGTYPE)
        return value

    def typed(self, key: bytes, cls: type):
        """Like `read` without counting hits: for write paths (LPUSH, SADD ...)."""
        value = self.get(key)
        if value is not None and not isinstance(value, cls):
            raise CommandError(WRONGTYPE)
        return value

    def propagate(self, *argv: bytes) -> None:
        """Write `argv` to the AOF/replication stream instead of the command as received.

        Call it once per effect; several calls are wrapped in MULTI/EXEC. A write command that
        changes the dataset and calls nothing is propagated verbatim.
        """
        if self.store.records is not None:
            self.store.also.append((self.index, list(argv)))

    def notify(self, event_class: str, event: bytes, key: bytes) -> None:
        """Keyspace notification (Redis's notifyKeyspaceEvent). `event_class` is one of the
        notify-keyspace-events letters: g $ l s h z x e t d m n. Costs one dict lookup when off."""
        flags = self.store.config.get("notify-keyspace-events")
        if flags and event_class in flags and ("K" in flags or "E" in flags):
            self.store.events.append((self.index, event, key))

    def signal_ready(self, key: bytes) -> None:
        """A push made `key` servable: wake clients blocked on it (Redis's signalKeyAsReady).

        Every command that adds elements to a list or sorted set calls this; it costs one dict
        lookup when nobody is blocked.
        """
        blocked = self.store.blocked
        if blocked and (self.index, key) in blocked:
            self.store.ready.append((self.index, key))

    def signal_modified(self, key: bytes) -> None:
        """The command modified `key` where the generic touch after a write does not see it (a
        destination in another database, a change that left the dataset as it was): signal it
        now (Redis's signalModifiedKey)."""
        if self.store.watched:
            self.store.signal(self.index, key)

    def unmodified(self, key: bytes) -> None:
        """The write command now running did not modify its key argument `key` (see
        Store.skip_signal). Call it after counting the change in `store.dirty`."""
        store = self.store
        if store.watched:
            store.skip_signal(self.index, key, store)

    def unmodified_except(self, keys: list[bytes], changed: bytes) -> None:
        """The write command now running names `keys` (one entry per key argument) but modified
        only `changed` (LMPOP, BLPOP, ZMPOP ... pop from one key): see `unmodified`."""
        if self.store.watched:
            for key in keys:
                if key != changed:
                    self.store.skip_signal(self.index, key, self.store)

    def exists(self, key: bytes) -> bool:
        return self.get(key) is not None

    def __len__(self) -> int:
        return len(self.data)

    def keys(self) -> Iterator[bytes]:
        """Live keys (expired ones are skipped, not deleted, as KEYS does)."""
        if not self.expires:
            yield from list(self.data)
            return
        now = self.store.expire_clock()
        expires = self.expires
        for key in list(self.data):
            when = expires.get(key)
            if when is None or when >= now:
                yield key

    def random_key(self) -> bytes | None:
        """A random live key; gives up after 100 expired picks like Redis's dbRandomKey."""
        for _ in range(100):
            if not self.data:
                return None
            key = _random_dict_key(self.data)
            if self.get(key) is not None:
                return key
        return None

    # -- writes --------------------------------------------------------------------------------

    def set(self, key: bytes, value, keep_ttl: bool = False) -> None:
        """Store `value`, dropping any TTL unless `keep_ttl` (Redis's setKey)."""
        self.data[key] = value
        if not keep_ttl and self.expires:
            self.expires.pop(key, None)

    def delete(self, key: bytes) -> bool:
        """Remove `key` if live; True if something was deleted."""
        if self.get(key) is None:
            return False
        del self.data[key]
        if self.expires:
            self.expires.pop(key, None)
        return True

    def pop(self, key: bytes):
        """Remove and return the live value of `key` (None if missing), with its TTL."""
        value = self.get(key)
        if value is None:
            return None
        del self.data[key]
        if self.expires:
            self.expires.pop(key, None)
        return value

    def flush(self) -> None:
        if self.store.watched:
            self.store.touch_all_watched_in_db(self, None)
        self.data = {}
        self.expires = {}
        self._heap = []
        self.scan_cache.clear()

    # -- expiry --------------------------------------------------------------------------------

    def ttl(self, key: bytes) -> int | None:
        """Absolute deadline in unix ms, or None for a persistent key. The key must be live."""
        return self.expires.get(key) if self.expires else None

    def expire_at(self, key: bytes, when_ms: int) -> None:
        """Set an absolute deadline on an existing key."""
        self.expires[key] = when_ms
        heap = self._heap
        heapq.heappush(heap, (when_ms, key))
        if len(heap) > 1024 and len(heap) > 3 * len(self.expires):
            self._heap = [(w, k) for k, w in self.expires.items()]
            heapq.heapify(self._heap)

    def persist(self, key: bytes) -> bool:
        return self.expires.pop(key, None) is not None if self.expires else False

    def _expire(self, key: bytes) -> None:
        del self.data[key]
        del self.expires[key]
        self.store.expired_keys += 1
        self.notify("x", b"expired", key)
        records = self.store.records
        if records is not None:
            records.append((self.index, [b"DEL", key]))
        if self.store.watched:
            self.store.signal(self.index, key)
        hook = self.store.expired_hook
        if hook is not None:
            hook(self, key)

    def active_expire(self, deadline: float) -> int:
        """Delete keys whose TTL has passed, until `deadline` (perf_counter seconds). Returns the count."""
        heap = self._heap
        if not heap:
            return 0
        now = self.store.expire_clock()
        expires = self.expires
        done = 0
        while heap and heap[0][0] < now:
            when, key = heapq.heappop(heap)
            if expires.get(key) == when:
                self._expire(key)
                done += 1
                if not done & 63 and time.perf_counter() > deadline:
                    break
        return done


class frozen_expiry:
    """`with frozen_expiry(stores):` keys expire as of the moment the block starts, until it ends
    (Redis 7.0 caches the time once for the outermost command: a whole EXEC). Commands still
    compute deadlines and TTLs from the live `clock`, as Redis's do. Nests (the outer time wins)."""

    __slots__ = ("saved", "stores")

    def __init__(self, stores) -> None:
        self.stores = stores
        self.saved: list = []

    def __enter__(self) -> frozen_expiry:
        stores = self.stores
        now = stores[0].expire_clock()

        def frozen() -> int:
            return now
        self.saved = [store.expire_clock for store in stores]
        for store in stores:
            store.expire_clock = frozen
        return self

    def __exit__(self, *exc) -> None:
        for store, clock in zip(self.stores, self.saved):
            store.expire_clock = clock


def touch_written(counter, db_index: int, argv: list[bytes], positions, owner) -> None:
    """The touch after a write command that changed the dataset (Redis's signalModifiedKey for
    what it wrote): signal the key at each of `positions` in `argv` (the written key arguments,
    CommandSpec.written_positions), skipping those the command declared unmodified, once per
    declaration. `counter` is the Store that counted the command's changes, `owner(key)` the
    Store that owns a key."""
    skip = counter.take_unsignalled() if counter.unsignalled is not None else None
    for pos in positions:
        key = argv[pos]
        if skip:
            left = skip.get((db_index, key))
            if left:
                skip[(db_index, key)] = left - 1
                continue
        store = owner(key)
        if store.watched:
            store.signal(db_index, key)


def _random_dict_key(data: dict) -> bytes:
    """A uniformly random key. Python dicts have no random access, so skip ahead in C (islice)."""
    return next(islice(iter(data), random.randrange(len(data)), None))


def scan_snapshot(cache: dict[int, list[bytes]], cursor: int, make: Callable[[], list[bytes]],
                  count: int) -> tuple[int, list[bytes]]:
    """Cursor-based iteration over a snapshot of names, as SCAN/SSCAN/HSCAN/ZSCAN need.

    Cursor 0 takes a fresh snapshot of the names; later cursors encode (position, snapshot id).
    Names present for the whole iteration are returned at least once (Redis's SCAN guarantee);
    callers drop names that vanished meanwhile. An unknown snapshot id restarts from a new snapshot
    at the same position. Up to 64 snapshots are kept per collection.
    """
    if cursor == 0:
        snap_id = (max(cache) % 1023 + 1) if cache else 1
        snapshot = make()
        cache[snap_id] = snapshot
        if len(cache) > 64:
            del cache[next(iter(cache))]
        pos = 0
    else:
        pos, snap_id = divmod(cursor, 1024)
        snapshot = cache.get(snap_id)
        if snapshot is None:
            snapshot = make()
            cache[snap_id] = snapshot
    end = pos + count
    batch = snapshot[pos:end]
    if end >= len(snapshot):
        cache.pop(snap_id, None)
        return 0, batch
    return end * 1024 + snap_id, batch
