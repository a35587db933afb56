"""The persistence actor: the single, ordered write stream, appended to the AOF (ARCHITECTURE §4).

Shards send one message per batch: `(records, fills, touched)`, where records are `(db, argv)` in
execution order. The actor turns them into RESP, inserting SELECT whenever the database changes,
and appends them to the current INCR file of the multi-part AOF (persistence/aof.py).

- `appendfsync always`: shards hold the batch's replies (`fills`); the actor writes, fsyncs, then
  fills the reply slots and wakes the loop. Messages waiting in the inbox are drained first, so one
  fsync covers every batch that arrived meanwhile (group commit).
- `everysec`: write now; the loop sends FSYNC once a second and the actor fsyncs then.
- `no`: write only; the OS flushes.

A failed write or fsync does not kill the actor (a pykka tell that raises stops it for good): the
error is logged, `aof_last_write_status` becomes `err`, and the server refuses writes with MISCONF
until a write succeeds again, as Redis does.
"""

from __future__ import annotations

import logging
import os
import queue
import time
import traceback

import hiredis
import pykka

__all__ = ["PersistenceActor", "FSYNC", "StreamMark", "encode_records", "release_replies"]

log = logging.getLogger("shardis.persistence")

FSYNC = "fsync"


class StreamMark:
    """A control message that travels the write stream in order: it reaches the replication actor
    (`on_actor(actor)`) and then the loop (`on_loop()`) after every record sent before it.

    Full syncs and WAIT use it to learn the exact stream offset of a point in execution order."""

    __slots__ = ("on_actor", "on_loop")

    def __init__(self, on_actor=None, on_loop=None) -> None:
        self.on_actor = on_actor
        self.on_loop = on_loop


def release_replies(group, loop, deliver) -> None:
    """Fill the reply slots a batch held back (appendfsync always) and wake the loop."""
    for _records, fills, touched in group:
        if fills is not None:
            for slot, data in fills:
                slot[0] = data
        if touched:
            loop.call_soon_threadsafe(deliver, touched)


def encode_records(records, state) -> bytes:
    """RESP for a list of (db, argv) records; `state` is a one-element list holding the last db."""
    out = []
    pack = hiredis.pack_command
    current = state[0]
    for db_index, argv in records:
        if db_index != current:
            out.append(b"*2\r\n$6\r\nSELECT\r\n$%d\r\n%d\r\n" % (len(str(db_index)), db_index))
            current = db_index
        out.append(pack(tuple(argv)))
    state[0] = current
    return b"".join(out)


class PersistenceActor(pykka.ThreadingActor):
    """Owns the open AOF file; every write record of the server passes through here in order."""

    use_daemon_thread = True

    @staticmethod
    def _create_actor_inbox():
        return queue.SimpleQueue()

    def __init__(self, sink, loop, deliver, policy: str, directory: list) -> None:
        super().__init__()
        directory.append(self)
        # Collaborators
        self.sink = sink            # the open INCR file: persistence.aof.AofWriter
        self.downstream = None      # the replication actor's ref while replicas are fed
        self.loop = loop
        self.deliver = deliver
        # State
        self.policy = policy
        self.db_state = [-1]        # the db the stream last SELECTed; -1 forces a SELECT first
        self.dirty_since_fsync = False
        self.write_ok = True
        self.last_error = ""
        # Observability
        self.messages = 0
        self.records = 0
        self.bytes = 0
        self.fsyncs = 0
        self.busy = 0.0

    def on_receive(self, message):
        started = time.perf_counter()
        try:
            if message == FSYNC:
                self._fsync()
            elif type(message) is tuple:
                self._append([message])
            elif type(message) is StreamMark:
                self._pass_mark(message)
            elif callable(message):
                message(self)  # control work (rotate for a rewrite, policy change) in stream order
        except Exception:
            log.error("persistence actor error:\n%s", traceback.format_exc())
        finally:
            self.busy += time.perf_counter() - started

    def _pass_mark(self, mark: StreamMark) -> None:
        """Everything before the mark has been handed on: pass it down the stream."""
        if self.downstream is not None:
            self.downstream.tell(mark)
        elif mark.on_loop is not None:
            self.loop.call_soon_threadsafe(mark.on_loop)

    def _drain(self, group: list):
        """Group commit: take every batch already waiting, so one fsync covers them all.

        Stops at the first other message and returns its envelope, to be handled right after this
        group: control messages (a rotation for a rewrite) must keep their place in the stream.
        """
        inbox = self.actor_inbox
        while True:
            try:
                envelope = inbox.get_nowait()
            except queue.Empty:
                return None
            if type(envelope.message) is tuple:
                group.append(envelope.message)
            else:
                return envelope

    def _append(self, group: list) -> None:
        pending = self._drain(group) if self.policy == "always" else None
        self._write_group(group)
        if pending is not None:
            # pykka's own loop would have handled it next; do what it does, in order.
            try:
                response = self._handle_receive(pending.message)
                if pending.reply_to is not None:
                    pending.reply_to.set(response)
            except Exception as exc:  # noqa: BLE001 - hand the failure to the asker, as pykka does
                if pending.reply_to is not None:
                    pending.reply_to.set_exception()
                else:
                    log.error("persistence control message failed: %s", exc)

    def _write_group(self, group: list) -> None:
        parts = []
        for records, _fills, _touched in group:
            parts.append(encode_records(records, self.db_state))
            self.records += len(records)
        data = b"".join(parts)
        self.messages += len(group)
        try:
            self.sink.write(data)
            self.bytes += len(data)
            if self.policy == "always":
                self.sink.fsync()
                self.fsyncs += 1
            else:
                self.dirty_since_fsync = True
            self._ok()
        except OSError as exc:
            self._failed(exc)
        downstream = self.downstream
        if downstream is not None:
            if len(group) == 1:
                downstream.tell((group[0][0], None, None))
            else:
                downstream.tell(([r for records, _f, _t in group for r in records], None, None))
        release_replies(group, self.loop, self.deliver)

    def _fsync(self) -> None:
        if not self.dirty_since_fsync:
            return
        try:
            self.sink.fsync()
            self.fsyncs += 1
            self.dirty_since_fsync = False
            self._ok()
        except OSError as exc:
            self._failed(exc)

    def _ok(self) -> None:
        if not self.write_ok:
            log.warning("AOF write error looks solved, Shardis can write again.")
        self.write_ok = True

    def _failed(self, exc: OSError) -> None:
        if self.write_ok:
            log.error("Error writing to the AOF file: %s", exc)
        self.write_ok = False
        self.last_error = str(exc)

    # -- control work, run in stream order (messages that are callables) --------------------------

    def rotate(self, writer) -> None:
        """A rewrite cut the stream here: later records go to `writer`, a new INCR file."""
        old, self.sink = self.sink, writer
        self.db_state = [-1]  # a new file starts with SELECT
        try:
            old.fsync()
            old.close()
        except OSError as exc:
            self._failed(exc)

    def reopen_temp_as_incr(self, aofdir) -> None:
        """The temp INCR was renamed into the manifest's last INCR; our descriptor still points at
        it (a rename keeps the inode), only its sequence number changed."""
        last = aofdir.manifest.last_incr()
        if last is not None:
            self.sink.seq = last.seq

    def sink_size(self) -> int:
        return self.sink.size

    def sink_seq(self) -> int:
        return self.sink.seq

    def on_stop(self) -> None:
        try:
            self.sink.fsync()
            self.sink.close()
        except OSError as exc:
            log.error("Error closing the AOF file: %s", exc)


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
