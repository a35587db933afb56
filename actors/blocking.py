"""Clients blocked on keys (BLPOP, BLMOVE, BZPOPMIN ...): the waiter and its life cycle.

A waiter is created by the shard whose handler raised `Block`, and registered in the queue of each
key it waits for, in the shard that owns the key (FIFO per key). Three parties may finish it: a shard
serving it after a push, the loop when its timeout fires, and the loop when the client disconnects.
A small state machine under a lock makes exactly one of them win:

    WAITING --begin_serve--> SERVING --end_serve(served)--> DONE
       |                        `--end_serve(not served)--> WAITING (or DONE + timeout reply, if
       |                                                    the timer fired meanwhile)
       `--expire / cancel--> DONE

Waiters whose keys live on several shards are never re-run by one shard alone (the command may need
keys elsewhere, e.g. BLMOVE's destination): the shard marks them SERVING and hands them back to the
loop, which retries them as a global op.
"""

from __future__ import annotations

import threading

__all__ = ["Waiter", "WAITING", "SERVING", "DONE"]

WAITING, SERVING, DONE = 0, 1, 2


class Waiter:
    """One blocked command of one client."""

    __slots__ = ("spec", "argv", "db_index", "proto", "conn", "slot", "keys", "timeout",
                 "timeout_reply", "global_mode", "state", "timed_out", "timer", "_lock")

    def __init__(self, spec, argv, db_index, proto, conn, slot, block, global_mode: bool) -> None:
        self.spec, self.argv, self.db_index, self.proto = spec, argv, db_index, proto
        self.conn, self.slot = conn, slot
        self.keys = block.keys
        self.timeout = block.timeout
        self.timeout_reply = block.timeout_reply
        self.global_mode = global_mode
        self.state = WAITING
        self.timed_out = False
        self.timer = None
        self._lock = threading.Lock()

    def begin_serve(self) -> bool:
        with self._lock:
            if self.state != WAITING:
                return False
            self.state = SERVING
            return True

    def end_serve(self, served: bool) -> bool:
        """Finish a serving attempt; True when the caller must send the timeout reply instead."""
        with self._lock:
            if served or self.timed_out:
                self.state = DONE
                return not served
            self.state = WAITING
            return False

    def expire(self) -> bool:
        """The timeout fired (loop thread); True when the loop must send the timeout reply now."""
        with self._lock:
            if self.state == WAITING:
                self.state = DONE
                return True
            if self.state == SERVING:
                self.timed_out = True
            return False

    def cancel(self) -> None:
        """The client went away: nobody answers it any more."""
        with self._lock:
            if self.state == WAITING:
                self.state = DONE
