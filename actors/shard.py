"""Shard actors: each owns the keys of its slots in every database and runs batches of commands.

A shard receives one message per event-loop tick: a list of entries queued by all connections in
that tick (ARCHITECTURE §3). It runs them in order, writes each encoded reply into the connection's
reply slot, and wakes the loop once with the set of connections to flush. Nothing raises out of
`on_receive`: pykka would stop the actor for good after a failed `tell`.

Global mode: a `GlobalOp` is queued to every shard in the same position of the total order the loop
imposes. Each shard parks on it; the last to arrive runs the command over a `ShardedKeyspace` view,
then releases the others. Because only the loop thread enqueues, all shards meet global ops in the
same order and cannot deadlock.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import traceback
from collections import deque
from time import perf_counter

import pykka

from actors.blocking import DONE, Waiter
from actors.execution import ExecStats, after_write, error_reply, execute_one
from actors.transaction import ExecEntry, run_queued
from commands.blocking import Block
from keyspace.db import Store
from protocol.replies import encode

__all__ = ["ShardActor", "GlobalOp", "TICK", "execute_one", "ExecStats", "keyspace_publishes", "note_source"]


def keyspace_publishes(events, config) -> list:
    """Broker publish operations for (db, event, key) notifications (notify-keyspace-events K/E)."""
    flags = config.get("notify-keyspace-events") or ""
    ops = []
    for db_index, event, key in events:
        if "K" in flags:
            ops.append(("pub", None, None, b"__keyspace@%d__:%s" % (db_index, key), event, False))
        if "E" in flags:
            ops.append(("pub", None, None, b"__keyevent@%d__:%s" % (db_index, event), key, False))
    return ops

log = logging.getLogger("shardis.shard")

TICK = "tick"
_OK = b"+OK\r\n"
_INTERNAL_ERROR = b"-ERR internal error running the command (see the server log)\r\n"
"""Marker entry: run an active-expiry cycle."""


def note_source(stores, conn) -> None:
    """On a replica, tell the stores whether the command about to run is the master's own
    (which sees keys that have expired but are not deleted yet, as in Redis's expireIfNeeded)."""
    if stores[0].hide_expired:
        from_master = conn is not None and conn.is_master
        for store in stores:
            store.serving_master = from_master


class GlobalOp:
    """A command that needs every shard parked: multi-shard keys, or the whole dataset."""

    __slots__ = ("spec", "argv", "db_index", "proto", "conn", "slot", "_remaining", "_lock",
                 "_released", "run", "waiter", "on_loop")

    def __init__(self, spec, argv, db_index, proto, conn, slot, shard_count, run=None,
                 waiter=None, on_loop=False) -> None:
        self.spec, self.argv, self.db_index, self.proto = spec, argv, db_index, proto
        self.conn, self.slot = conn, slot
        self._remaining = shard_count
        self._lock = threading.Lock()
        self._released = threading.Event()
        self.run = run
        """Optional callable(shards) for server-internal global work (INFO, shutdown snapshots)."""
        self.waiter = waiter
        """Set when this op retries a blocked client whose keys span shards."""
        self.on_loop = on_loop
        """Run `run(view)` on the event-loop thread while every shard is parked (MULTI/EXEC)."""

    def arrive(self, shard: ShardActor) -> None:
        with self._lock:
            self._remaining -= 1
            last = self._remaining == 0
        if last and not self.on_loop:
            # Records of this batch so far precede the op in the stream (a rewrite cuts it here).
            shard.flush_replies()
            try:
                shard.run_global(self)
            finally:
                self._released.set()
            return
        shard.flush_replies()
        if last and shard.on_loop_thread:  # dispatch inline: we are the loop thread already
            self._run_on_loop(shard.view_factory())
        elif last:
            # Every shard is parked: let the loop thread run the work, then release us all.
            shard.loop.call_soon_threadsafe(self._run_on_loop, shard.view_factory())
        self._released.wait()
        if shard.store.ready:
            shard._serve_ready(shard.store)

    def _run_on_loop(self, view) -> None:
        try:
            self.run(view)
        except Exception:
            log.error("global task failed on the loop:\n%s", traceback.format_exc())
        finally:
            self._released.set()

    def release(self) -> None:
        self._released.set()


class ShardActor(pykka.ThreadingActor):
    """Owns one Store (16 databases) and runs the command batches routed to it."""

    use_daemon_thread = True

    @staticmethod
    def _create_actor_inbox():
        # queue.SimpleQueue is implemented in C: a tell costs ~0.8 µs instead of ~6 µs (REDIS-FACTS §2.2).
        return queue.SimpleQueue()

    def __init__(self, index: int, store: Store, loop, deliver, hz_budget: float,
                 directory: list) -> None:
        super().__init__()
        directory.append(self)  # INFO reads counters; the server needs the instances, not refs
        # Collaborators
        self.index = index
        self.store = store
        self.loop = loop
        self.deliver = deliver              # loop-side callback: deliver(set_of_connections)
        self.call_soon = loop.call_soon_threadsafe  # schedules deliver (dispatch inline: call_soon)
        self.on_loop_thread = False         # dispatch inline: batches run on the loop thread
        self.view_factory = None            # set by the server: () -> ShardedStore over all shards
        self.on_blocked = None              # loop-side: arm a waiter's timeout (set by the server)
        self.retry_global = None            # loop-side: re-run a multi-shard waiter as a global op
        self.persistence = None             # the persistence actor's ref, when the AOF is on
        self.hold_replies = False           # appendfsync always: replies wait for the fsync
        # Per-batch state
        self.touched: dict = {}             # connection -> reply slots filled in this batch
        self.fills: list = []               # (slot, reply) held back while hold_replies
        self.broker = None                  # the pub/sub broker's ref (keyspace notifications)
        self.broker_ops: list = []
        # Observability (INFO actors)
        self.stats = ExecStats()
        self.expire_budget = hz_budget      # seconds an active-expiry cycle may take

    # -- actor interface -------------------------------------------------------------------------

    def on_receive(self, message):
        started = last = perf_counter()
        stats = self.stats
        stats.messages += 1
        counters = stats.commands
        store = self.store
        dbs = store.dbs
        entry = None
        try:
            for entry in message:
                if type(entry) is tuple:
                    spec, argv, db_index, proto, conn, slot = entry
                    if store.hide_expired:
                        store.serving_master = conn.is_master
                    tracked = spec.may_write and (store.records is not None or store.watched)
                    if tracked:
                        before = store.dirty
                    # Inlined execute_one for the common case: one clock read per command.
                    try:
                        reply = spec.handler(dbs[db_index], argv)
                        kind = type(reply)
                        if kind is bytes:
                            data = b"$%d\r\n%s\r\n" % (len(reply), reply)
                        elif kind is str and reply == "OK":
                            data = _OK
                        elif kind is int:
                            data = b":%d\r\n" % reply
                        else:
                            data = encode(reply, proto)
                        now = perf_counter()
                        c = counters.get(spec)
                        if c is None:
                            counters[spec] = [1, (now - last) * 1e6, 0]
                        else:
                            c[0] += 1
                            c[1] += (now - last) * 1e6
                        last = now
                    except Block as block:
                        self._park(Waiter(spec, argv, db_index, proto, conn, slot, block, False),
                                   self._own_store)
                        last = perf_counter()
                        continue
                    except Exception as exc:  # noqa: BLE001 - errors and bugs become replies
                        data = error_reply(exc, spec, stats)
                        now = perf_counter()
                        c = counters.setdefault(spec, [0, 0.0, 0])
                        c[0] += 1
                        c[1] += (now - last) * 1e6
                        c[2] += 1
                        last = now
                    if tracked and store.dirty != before:
                        after_write(spec, argv, db_index, store, store.records, self._own_store,
                                    bool(store.watched))
                    if self.hold_replies:
                        self.fills.append((slot, data))
                    else:
                        slot[0] = data
                    touched = self.touched  # re-read: a global op may have flushed it
                    touched[conn] = touched.get(conn, 0) + 1
                    if store.ready:
                        self._serve_ready(store)
                elif entry == TICK:
                    self._active_expire()
                    last = perf_counter()
                elif type(entry) is ExecEntry:
                    self._run_exec(entry)
                    last = perf_counter()
                else:
                    entry.arrive(self)
                    last = perf_counter()
            stats.entries += len(message)
        except Exception:
            log.error("shard %d failed on a batch:\n%s", self.index, traceback.format_exc())
            self._recover(message, entry)
        finally:
            self.flush_replies()
            stats.busy += perf_counter() - started

    def _recover(self, message, failed) -> None:
        """A bug escaped the handling of one entry: answer it with an error and run the rest of
        the batch, so that no client waits forever for a reply."""
        if type(failed) is tuple:
            slot = failed[5]
            if slot[0] is None and not any(held is slot for held, _ in self.fills):
                self._fill(failed[4], slot, _INTERNAL_ERROR)
        position = next((i for i, e in enumerate(message) if e is failed), len(message))
        if position + 1 < len(message):
            self.on_receive(message[position + 1:])

    # -- helpers -----------------------------------------------------------------------------------

    def _fill(self, conn, slot, data: bytes) -> None:
        """Answer one command (held back until fsynced under appendfsync always)."""
        if self.hold_replies:
            self.fills.append((slot, data))
        else:
            slot[0] = data
        self.touched[conn] = self.touched.get(conn, 0) + 1

    def publish_events(self, stores) -> None:
        """Keyspace notifications of this batch go to the broker as publishes, in order."""
        for store in stores:
            if store.events:
                events, store.events = store.events, []
                self.broker_ops.extend(keyspace_publishes(events, store.config))

    def flush_replies(self) -> None:
        """Hand the batch's write records to the persistence actor and its replies to the loop.

        Under `appendfsync always` the replies travel with the records: the persistence actor
        fills the slots and wakes the loop only after the fsync (group commit per batch).
        """
        if self.store.events:
            self.publish_events([self.store])
        if self.broker_ops:
            ops, self.broker_ops = self.broker_ops, []
            self.broker.tell(ops)
        records = self.store.records
        if records:
            self.store.records = []
            if self.hold_replies:
                fills, self.fills = self.fills, []
                touched, self.touched = self.touched, {}
                self.persistence.tell((records, fills, touched))
                return
            self.persistence.tell((records, None, None))
        if self.fills:
            for slot, data in self.fills:
                slot[0] = data
            self.fills = []
        if self.touched:
            touched, self.touched = self.touched, {}
            self.call_soon(self.deliver, touched)

    def gather_records(self, parts) -> None:
        """Global mode: records (and notifications) other parked stores produced belong to this
        op, in order."""
        self.publish_events(parts)
        mine = self.store.records
        for part in parts:
            if part is not self.store and part.records:
                if mine is not None:
                    mine.extend(part.records)
                part.records = [] if part.records is not None else None

    def run_global(self, op: GlobalOp) -> None:
        """Run a global op while every other shard is parked (called on the last to arrive)."""
        view = self.view_factory()
        note_source(view.parts, op.conn)
        if op.run is not None:
            try:
                op.run(view)
            except Exception:
                log.error("global task failed:\n%s", traceback.format_exc())
            self.gather_records(view.parts)
            return
        waiter = op.waiter
        db = view.dbs[op.db_index]
        first = view.parts[0]
        before = first.dirty
        try:
            data = execute_one(op.spec, db, op.argv, op.proto, self.stats)
        except Block as block:
            if waiter is None:
                waiter = Waiter(op.spec, op.argv, op.db_index, op.proto, op.conn, op.slot, block,
                                True)
                self._park(waiter, lambda key: db.part(key).store)
            elif waiter.end_serve(False):
                self._answer_timeout(waiter)
            data = None
        self.gather_records(view.parts)
        if data is not None:
            if op.spec.may_write and first.dirty != before:
                after_write(op.spec, op.argv, op.db_index, first, self.store.records,
                            lambda key: db.part(key).store, True)
            if waiter is not None:
                waiter.end_serve(True)
            self._fill(op.conn, op.slot, data)
        for store in view.parts:
            if store.ready:
                self._serve_ready(store)
        self.gather_records(view.parts)
        self.flush_replies()

    def _own_store(self, key: bytes) -> Store:
        return self.store

    def _run_exec(self, entry: ExecEntry) -> None:
        """A whole MULTI/EXEC whose keys all live here: atomic because nothing else runs meanwhile."""
        store = self.store
        note_source([store], entry.conn)
        data = run_queued(entry.conn, entry.commands, entry.db_index, entry.proto,
                          store.dbs.__getitem__, self._own_store, [store], self.stats, None,
                          entry.token)
        self._fill(entry.conn, entry.slot, data)
        if store.ready:
            self._serve_ready(store)

    # -- blocked clients (see actors/blocking.py) ------------------------------------------------------

    def _park(self, waiter: Waiter, owner) -> None:
        """Queue `waiter` on each of its keys, in the store that owns the key; arm its timer."""
        for key in waiter.keys:
            owner(key).blocked.setdefault((waiter.db_index, key), deque()).append(waiter)
        self.loop.call_soon_threadsafe(self.on_blocked, waiter)

    def _serve_ready(self, store: Store) -> None:
        """Serve clients blocked on keys that received data, FIFO per key (Redis's
        handleClientsBlockedOnKeys). Serving may push elsewhere (BLMOVE), so loop until quiet."""
        dbs = store.dbs
        while store.ready:
            ready, store.ready = store.ready, []
            for item in dict.fromkeys(ready):
                queue_ = store.blocked.get(item)
                while queue_:
                    waiter = queue_[0]
                    if waiter.state == DONE:
                        queue_.popleft()
                        continue
                    if waiter.global_mode:
                        # Its keys span shards: only a global op may run it.
                        queue_.popleft()
                        if waiter.begin_serve():
                            self.loop.call_soon_threadsafe(self.retry_global, waiter)
                        continue
                    if not waiter.begin_serve():
                        break
                    before = store.dirty
                    store.serving_key = item[1]  # Redis serves a woken client from this key
                    try:
                        data = execute_one(waiter.spec, dbs[waiter.db_index], waiter.argv,
                                           waiter.proto, self.stats)
                    except Block:
                        if waiter.end_serve(False):
                            queue_.popleft()
                            self._answer_timeout(waiter)
                            continue
                        break  # the key is empty again: the rest keep waiting
                    finally:
                        store.serving_key = None
                    queue_.popleft()
                    waiter.end_serve(True)
                    if store.dirty != before:
                        after_write(waiter.spec, waiter.argv, waiter.db_index, store,
                                    self.store.records, lambda key: store, bool(store.watched))
                    self._fill(waiter.conn, waiter.slot, data)
                if not queue_:
                    store.blocked.pop(item, None)

    def _answer_timeout(self, waiter: Waiter) -> None:
        self._fill(waiter.conn, waiter.slot, encode(waiter.timeout_reply, waiter.proto))

    def _prune_waiters(self) -> None:
        """Drop finished waiters (timed out, disconnected) from the key queues."""
        blocked = self.store.blocked
        for item in list(blocked):
            queue_ = blocked[item]
            live = [w for w in queue_ if w.state != DONE]
            if not live:
                del blocked[item]
            elif len(live) != len(queue_):
                blocked[item] = deque(live)

    def _active_expire(self) -> None:
        if self.store.blocked:
            self._prune_waiters()
        if not self.store.active_expire_enabled:
            return
        deadline = time.perf_counter() + self.expire_budget
        for db in self.store.dbs:
            if db.expires:
                db.active_expire(deadline)
