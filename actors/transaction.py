"""MULTI/EXEC/WATCH: running a queued transaction atomically, on one shard or with all parked.

Planning happens on the loop (`plan`): if every key of the transaction, watched keys included,
lives on one shard and no command needs the connection or the whole dataset, the transaction is a
single `ExecEntry` in that shard's batch, and so atomic for free. Otherwise it runs in global mode
*on the loop thread*: every shard parks at a barrier, the loop runs the commands over the sharded
view (LOCAL commands such as SELECT or CLIENT KILL need the loop), then releases the shards.

WATCH registers a `WatchToken` under (db, key) in the Store that owns the key; any real
modification of the key (a write that changed the dataset, an expiry, FLUSHDB, SWAPDB) marks the
token dirty. The check at EXEC runs in the same critical section as the commands.
"""

from __future__ import annotations

import threading

from actors.execution import after_write, execute_one
from commands.blocking import Block
from commands.registry import Route
from protocol.replies import NULL_ARRAY, encode, encode_error

__all__ = ["WatchToken", "ExecEntry", "run_queued", "unwatch_all", "watch_key"]


class WatchToken:
    """One client's WATCH session: the keys it watches and whether one of them was modified."""

    __slots__ = ("dirty", "keys")

    def __init__(self) -> None:
        self.dirty = False
        self.keys: dict[tuple[int, bytes], object] = {}   # (db, key) -> owning Store


class ExecEntry:
    """A whole transaction for one shard's batch."""

    __slots__ = ("commands", "db_index", "proto", "conn", "slot", "token")

    def __init__(self, commands, db_index, proto, conn, slot, token) -> None:
        self.commands, self.db_index, self.proto = commands, db_index, proto
        self.conn, self.slot, self.token = conn, slot, token


WATCH_LOCK = threading.Lock()
"""Registering (loop thread) and unregistering (loop or shard thread) WATCH tokens must not
interleave: an unregister could otherwise drop the set a new WATCH was just added to."""


def watch_key(store, db_index: int, key: bytes, token: WatchToken) -> None:
    with WATCH_LOCK:
        store.watched.setdefault((db_index, key), set()).add(token)
    token.keys[(db_index, key)] = store


def unwatch_all(token: WatchToken) -> None:
    with WATCH_LOCK:
        _unwatch_locked(token)


def _unwatch_locked(token: WatchToken) -> None:
    for (db_index, key), store in token.keys.items():
        tokens = store.watched.get((db_index, key))
        if tokens is not None:
            tokens.discard(token)
            if not tokens:
                store.watched.pop((db_index, key), None)
    token.keys.clear()


def run_queued(conn, commands, db_index: int, proto: int, dbs_of, owner, stores, stats,
               local_stats, token: WatchToken) -> bytes:
    """Run a queued transaction; returns the encoded EXEC reply.

    `dbs_of(index)` gives the Keyspace (or view) for a database, `owner(key)` the Store owning a
    key, `stores` every Store involved. Must be called with those stores quiescent.
    """
    for (index, key) in list(token.keys):
        dbs_of(index).get(key)  # a watched key that expired meanwhile counts as modified
    dirty = token.dirty
    unwatch_all(token)
    if dirty:
        return encode(NULL_ARRAY, proto)
    for store in stores:
        store.no_block = True
    records = stores[0].records
    mark = len(records) if records is not None else 0
    parts = []
    try:
        for spec, argv in commands:
            if spec.route is Route.LOCAL:
                data = execute_one(spec, conn, argv, None, local_stats)
                db_index = conn.db
            else:
                db = dbs_of(db_index)
                before = stores[0].dirty if spec.may_write else 0
                try:
                    data = execute_one(spec, db, argv, conn.proto, stats)
                except Block:  # cannot happen with no_block set; be safe anyway
                    data = encode_error("ERR internal error")
                if spec.may_write and stores[0].dirty != before:
                    after_write(spec, argv, db_index, stores[0], stores[0].records, owner, True)
            parts.append(data if data is not None else b"")
    finally:
        for store in stores:
            store.no_block = False
    records = stores[0].records
    if records is not None:
        for store in stores[1:]:  # expirations in other parts during the transaction
            if store.records:
                records.extend(store.records)
                store.records = []
        if len(records) - mark > 1:  # several effects: replay them as one transaction
            inner = [r for r in records[mark:] if r[1] not in ([b"MULTI"], [b"EXEC"])]
            records[mark:] = [(inner[0][0], [b"MULTI"]), *inner, (inner[-1][0], [b"EXEC"])]
    return b"*%d\r\n" % len(parts) + b"".join(parts)
