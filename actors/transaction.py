"""MULTI/EXEC/WATCH: running a queued transaction atomically, on one shard or with all parked.

Planning happens on the loop (`plan`): if every key of the transaction, watched keys included,
lives on one shard and no command needs the connection or the whole dataset, the transaction is a
single `ExecEntry` in that shard's batch, and so atomic for free. Otherwise it runs in global mode
*on the loop thread*: every shard parks at a barrier, the loop runs the commands over the sharded
view (LOCAL commands such as SELECT or CLIENT KILL need the loop), then releases the shards.

WATCH registers a `WatchToken` under (db, key) in the Store that owns the key; any real
modification of the key (a write that changed the dataset, an expiry, FLUSHDB, SWAPDB) marks the
token dirty. A key already expired when WATCH runs is remembered as stale: its deletion is no
modification, and EXEC does not count it as expired (Redis 7.0's watchedKey.expired). The check
at EXEC runs in the same critical section as the commands.

While the queued commands run, keys expire as of the start of EXEC (`frozen_expiry`): a key cannot
vanish halfway through a transaction. LOCAL commands answered later (PUBLISH, PUBSUB ...) keep
their place in EXEC's array: the reply is cut around their slots (`_place_later_replies`).
"""

from __future__ import annotations

import threading

from actors.execution import after_write, execute_one
from commands.blocking import Block
from commands.registry import Route
from commands.transactions import IN_EXEC
from keyspace.db import frozen_expiry
from protocol.replies import NULL_ARRAY, encode, encode_error

__all__ = ["WatchToken", "ExecEntry", "run_queued", "unwatch_all", "watch_key"]


class WatchToken:
    """One client's WATCH session: the keys it watches and whether one of them was modified."""

    __slots__ = ("dirty", "keys", "stale")

    def __init__(self) -> None:
        self.dirty = False
        self.keys: dict[tuple[int, bytes], object] = {}   # (db, key) -> owning Store
        self.stale: set[tuple[int, bytes]] = set()
        """Watched keys that were already logically expired at WATCH (keyspace/db.py)."""


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
    """Called on the loop. A key watched twice keeps what the first WATCH saw, as in Redis."""
    if (db_index, key) in token.keys:
        return
    if store.dbs[db_index].is_expired(key):
        token.stale.add((db_index, key))
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
    token.stale.clear()


def run_queued(conn, commands, db_index: int, proto: int, dbs_of, owner, stores, stats,
               local_stats, token: WatchToken, exec_slot: list | None = None) -> bytes:
    """Run a queued transaction; returns the encoded EXEC reply (the part of it that goes into
    `exec_slot`, EXEC's reply slot, when LOCAL commands answer later: see _place_later_replies).

    `dbs_of(index)` gives the Keyspace (or view) for a database, `owner(key)` the Store owning a
    key, `stores` every Store involved. Must be called with those stores quiescent.
    """
    with frozen_expiry(stores):
        return _run_queued(conn, commands, db_index, proto, dbs_of, owner, stores, stats,
                           local_stats, token, exec_slot)


def _run_queued(conn, commands, db_index, proto, dbs_of, owner, stores, stats, local_stats,
                token, exec_slot) -> bytes:
    if not token.dirty:
        # Redis's isWatchedKeyExpired: a watched key that expired since WATCH counts as modified
        # (one already expired at WATCH does not); nothing is deleted here.
        for (index, key), store in token.keys.items():
            if store.dbs[index].is_expired(key) and (index, key) not in token.stale:
                token.dirty = True
                break
    dirty = token.dirty
    unwatch_all(token)
    if dirty:
        return encode(NULL_ARRAY, proto)
    for store in stores:
        store.no_block = True
    records = stores[0].records
    mark = len(records) if records is not None else 0
    parts: list = []    # encoded replies, and the reply slots of LOCAL commands answered later
    later = False
    try:
        for spec, argv in commands:
            if spec.route is Route.LOCAL:
                replies = conn.replies
                last = replies[-1] if replies else None
                IN_EXEC.active = True
                try:
                    data = execute_one(spec, conn, argv, None, local_stats)
                finally:
                    IN_EXEC.active = False
                db_index = conn.db
                if data is None and replies and replies[-1] is not last:
                    # Answered later (PUBLISH goes through the broker): the slot it queued after
                    # everything else belongs here, inside EXEC's array.
                    slots = []
                    while replies and replies[-1] is not last:
                        slots.append(replies.pop())
                    parts.extend(reversed(slots))
                    later = True
                    continue
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
    if later:
        return _place_later_replies(conn, exec_slot, parts)
    return b"*%d\r\n" % len(parts) + b"".join(parts)


def _place_later_replies(conn, exec_slot: list | None, parts: list) -> bytes:
    """EXEC's array holds replies that come later (slots): cut the array at each of them and queue
    the pieces right after EXEC's slot, so the connection writes them in order as they fill.
    Returns the first piece, for EXEC's own slot. On the loop thread (LOCAL commands ran)."""
    pieces: list[list] = []
    run = [b"*%d\r\n" % len(parts)]
    for part in parts:
        if type(part) is bytes:
            run.append(part)
        else:
            pieces.append([b"".join(run)])
            pieces.append(part)
            run = []
    if run:
        pieces.append([b"".join(run)])
    replies = conn.replies
    for position, slot in enumerate(replies):
        if slot is exec_slot:
            for offset, piece in enumerate(pieces[1:], 1):
                replies.insert(position + offset, piece)
            break
    # Not found: EXEC's reply is not sent (CLIENT REPLY), so neither are the pieces.
    return pieces[0][0]
