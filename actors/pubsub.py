"""The pub/sub broker actor: it owns every subscription and fans messages out (ARCHITECTURE §6).

Connections keep their own subscription sets (they answer SUBSCRIBE at once, with counts) and tell
the broker what changed. PUBLISH, SPUBLISH and PUBSUB queries travel to the broker in one message
per loop tick (`BrokerDispatcher`). The broker resolves each publish to its receivers (channel
subscribers, then pattern subscribers), encodes the frame once per protocol version, and sends the
loop one batch per message it processed: `{connection: [frames...]}` plus the reply slots it filled.
So a subscriber gets one write per batch, not one wake-up per message, and one publisher's
messages reach every subscriber in publish order (one FIFO inbox, one thread).
"""

from __future__ import annotations

import logging
import queue
import time
import traceback

import pykka

from commands.args import glob_match
from protocol.replies import Push, encode

__all__ = ["BrokerActor", "BrokerDispatcher"]

log = logging.getLogger("shardis.pubsub")

_KINDS = ("channels", "patterns", "shard")


class BrokerActor(pykka.ThreadingActor):
    """Channel, pattern and shard-channel subscriptions; message fan-out."""

    use_daemon_thread = True

    @staticmethod
    def _create_actor_inbox():
        return queue.SimpleQueue()

    def __init__(self, loop, deliver, directory: list) -> None:
        super().__init__()
        directory.append(self)
        self.loop = loop
        self.deliver = deliver      # loop-side: deliver(pushes: {conn: [bytes]}, touched: {conn: n})
        self.subs: dict[str, dict[bytes, dict]] = {kind: {} for kind in _KINDS}
        """kind -> name -> {connection: None} (insertion-ordered, so delivery order is stable)."""
        self.messages = 0
        self.published = 0
        self.busy = 0.0

    def on_receive(self, message):
        started = time.perf_counter()
        pushes: dict = {}
        touched: dict = {}
        try:
            for op in message:
                kind = op[0]
                if kind == "pub":
                    self._publish(op, pushes, touched)
                elif kind == "sub":
                    _, conn, which, names = op
                    table = self.subs[which]
                    for name in names:
                        table.setdefault(name, {})[conn] = None
                elif kind == "unsub":
                    _, conn, which, names = op
                    self._remove(conn, which, names)
                elif kind == "drop":
                    for which in _KINDS:
                        self._remove(op[1], which, None)
                elif kind == "query":
                    _, conn, slot, fn, proto = op
                    slot[0] = encode(fn(self.subs), proto)
                    touched[conn] = touched.get(conn, 0) + 1
        except Exception:
            log.error("broker error:\n%s", traceback.format_exc())
        finally:
            self.messages += 1
            if pushes or touched:
                self.loop.call_soon_threadsafe(self.deliver, pushes, touched)
            self.busy += time.perf_counter() - started

    def _remove(self, conn, which: str, names) -> None:
        table = self.subs[which]
        for name in (list(table) if names is None else names):
            members = table.get(name)
            if members is not None:
                members.pop(conn, None)
                if not members:
                    del table[name]

    def _publish(self, op, pushes: dict, touched: dict) -> None:
        _, conn, slot, channel, payload, sharded = op
        self.published += 1
        frames: dict = {}

        def frame(kind: bytes, proto: int, *head: bytes) -> bytes:
            key = (kind, proto, head)
            data = frames.get(key)
            if data is None:
                data = frames[key] = encode(Push([kind, *head, channel, payload]), proto)
            return data

        # A publisher subscribed to its own channel gets the message in its reply slot, before
        # the count: Redis writes it to the client while PUBLISH runs, ahead of PUBLISH's reply.
        own: list[bytes] = []

        def deliver(sub, data: bytes) -> None:
            if sub is conn and slot is not None:
                own.append(data)
            else:
                pushes.setdefault(sub, []).append(data)

        receivers = 0
        if sharded:
            for sub in self.subs["shard"].get(channel, ()):
                deliver(sub, frame(b"smessage", sub.proto))
                receivers += 1
        else:
            for sub in self.subs["channels"].get(channel, ()):
                deliver(sub, frame(b"message", sub.proto))
                receivers += 1
            for pattern, members in self.subs["patterns"].items():
                if glob_match(pattern, channel):
                    for sub in members:
                        deliver(sub, frame(b"pmessage", sub.proto, pattern))
                        receivers += 1
        if slot is not None:
            slot[0] = b"".join(own) + b":%d\r\n" % receivers
            touched[conn] = touched.get(conn, 0) + 1


class BrokerDispatcher:
    """Collects broker operations of one loop tick into one message."""

    def __init__(self, loop, ref) -> None:
        self.loop = loop
        self.ref = ref
        self.pending: list = []

    def submit(self, op) -> None:
        if not self.pending:
            self.loop.call_soon(self.flush)
        self.pending.append(op)

    def flush(self) -> None:
        batch, self.pending = self.pending, []
        if batch:
            self.ref.tell(batch)
