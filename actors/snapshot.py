"""Point-in-time snapshots of the whole dataset, for SAVE/BGSAVE and AOF rewrites.

A snapshot is taken in global mode: every shard is parked, so the copy is consistent and it sits
at an exact point of the write stream. Only the cheap part happens there: the key dicts are copied
(C speed) and mutable values (lists, sets, hashes, sorted sets) are copied, since shards keep
mutating them once released; strings are immutable and shared. Encoding the snapshot (RDB or RESP)
then runs on a background thread while the shards serve traffic again. The pause a client sees is
the copy, which `snapshot_pause_ms` reports (INFO persistence: shardis_last_snapshot_pause_ms).
"""

from __future__ import annotations

import logging
import os
import threading
import time

__all__ = ["take_snapshot", "run_in_background"]

log = logging.getLogger("shardis.snapshot")


def take_snapshot(stores, now_ms: int) -> list[tuple[int, list[tuple[bytes, object, int | None]]]]:
    """(db index, [(key, value, expire ms)]) for every non-empty database; expired keys skipped."""
    out = []
    for index in range(len(stores[0].dbs)):
        items: list = []
        for store in stores:
            db = store.dbs[index]
            if not db.data:
                continue
            data = db.data.copy()
            expires = db.expires.copy()
            for key, value in data.items():
                if type(value) is not bytes and not isinstance(value, bytes):
                    data[key] = value.copy()
            if expires:
                get = expires.get
                items.extend((k, v, get(k)) for k, v in data.items()
                             if get(k) is None or get(k) > now_ms)
            else:
                items.extend((k, v, None) for k, v in data.items())
        if items:
            out.append((index, items))
    return out


def run_in_background(name: str, work, done, loop) -> threading.Thread:
    """Run `work()` on a thread, then `done(result, error)` on the loop."""
    def body() -> None:
        result, error = None, None
        try:
            result = work()
        except Exception as exc:  # noqa: BLE001 - reported to the loop, logged there
            error = exc
        loop.call_soon_threadsafe(done, result, error)
    thread = threading.Thread(target=body, name=name, daemon=True)
    thread.start()
    return thread


def write_atomically(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
