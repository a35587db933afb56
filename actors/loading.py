"""Loading the dataset at startup (AOF, or dump.rdb when the AOF is off), with progress in the log.

Loading runs on its own thread while the loop already accepts connections, which get `-LOADING`
until it is done (commands flagged `loading`, such as PING or INFO, still run). The shard actors are
idle meanwhile, so the loader writes straight into their Stores through the same sharded view the
global mode uses, and every command of the AOF goes through its normal handler.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time

from commands.lua import load_library
from commands.registry import lookup
from keyspace.zset import ZSet
from protocol.errors import CommandError

__all__ = ["Loader", "LoadError"]

log = logging.getLogger("shardis.loading")


class LoadError(Exception):
    """The dataset cannot be loaded; the server must not start (the message says why and where)."""


class _Progress:
    """Logs percent done, keys loaded and the rate, at most once a second."""

    def __init__(self, what: str, total_bytes: int) -> None:
        self.what = what
        self.total = max(total_bytes, 1)
        self.started = time.monotonic()
        self.last = self.started

    def __call__(self, done_bytes: int, keys: int) -> None:
        now = time.monotonic()
        if now - self.last < 1.0:
            return
        self.last = now
        rate = keys / max(now - self.started, 1e-9)
        log.info("Loading %s: %.1f%% done, %d keys loaded, %.0f keys/sec", self.what,
                 100.0 * done_bytes / self.total, keys, rate)


class Loader:
    """Replays an AOF or an RDB into the stores of a sharded view."""

    def __init__(self, view, config) -> None:
        self.view = view
        self.config = config
        self.db_index = 0
        self.commands = 0
        self.keys_loaded = 0
        self.keys_expired = 0
        self.warnings: list[str] = []
        self.now = int(time.time() * 1000)

    # -- AOF -------------------------------------------------------------------------------------

    def run_command(self, argv: list[bytes]) -> None:
        name = argv[0].lower()
        if name in (b"multi", b"exec"):
            return
        if name == b"select":
            self.db_index = int(argv[1])
            return
        try:
            spec = lookup(argv)
        except CommandError:
            spec = None
        if spec is None or spec.handler is None or not spec.check_arity(len(argv)):
            raise LoadError(f"Unknown command '{argv[0].decode('utf-8', 'replace')[:128]}' "
                            f"reading the append only file")
        self.commands += 1
        try:
            spec.handler(self.view.dbs[self.db_index], argv)
        except CommandError as exc:
            log.debug("AOF command %s failed while loading: %s", spec.fullname, exc.message)

    # -- RDB ---------------------------------------------------------------------------------------

    def put_key(self, db_index: int, key: bytes, value, expire_ms: int | None) -> None:
        if expire_ms is not None and expire_ms <= self.now:
            self.keys_expired += 1  # a master drops keys that expired while on disk
            return
        db = self.view.dbs[db_index]
        db.set(key, value)
        if expire_ms is not None:
            db.expire_at(key, expire_ms)
        self.keys_loaded += 1

    def load_rdb_bytes(self, data, what: str, on_aux=None) -> int:
        """Load an RDB image (a dump.rdb, an AOF base, a master's full sync); returns its length
        (an RDB-preamble AOF continues with commands after it)."""
        from persistence import rdb
        progress = _Progress(what, len(data))
        return rdb.load(data, on_key=self.put_key, progress=progress, on_aux=on_aux,
                        on_function=lambda code: load_library(code, replace=True),
                        make_zset=lambda pairs: ZSet.from_pairs(pairs, self.config.values))


def load_dataset(server) -> None:
    """Load what the configuration says, into `server.stores`; raises LoadError."""
    cfg = server.config
    from keyspace.view import ShardedStore
    view = ShardedStore(server.stores, server.shard_map)
    loader = Loader(view, cfg)
    started = time.monotonic()
    directory = os.getcwd()
    if cfg["appendonly"]:
        from persistence import aof
        aofdir = aof.AofDir(directory, cfg["appendfilename"], cfg["appenddirname"])
        try:
            if aofdir.adopt_legacy():
                log.info("Upgraded the legacy AOF %s into %s", cfg["appendfilename"],
                         cfg["appenddirname"])
            if not aofdir.exists():
                log.info("No AOF found in %s: starting with an empty dataset", directory)
                return
            total = aofdir.total_size()
            progress = _Progress("AOF", total)
            result = aof.load_all(aofdir, truncated_ok=cfg["aof-load-truncated"],
                                  on_rdb=lambda data: loader.load_rdb_bytes(data, "AOF base"),
                                  on_command=loader.run_command,
                                  progress=lambda done, n: progress(done, loader.commands))
        except aof.AofError as exc:
            raise LoadError(str(exc)) from None
        for warning in getattr(result, "warnings", []) or []:
            log.warning("%s", warning)
        log.info("DB loaded from append only file: %.3f seconds (%d commands, %d keys from the base)",
                 time.monotonic() - started, loader.commands, loader.keys_loaded)
        return
    path = os.path.join(directory, cfg["dbfilename"])
    if os.path.exists(path):
        from persistence import rdb
        with open(path, "rb") as f:
            data = f.read()
        try:
            loader.load_rdb_bytes(data, "RDB")
        except rdb.RdbError as exc:
            raise LoadError(f"Short read or OOM loading DB. Unrecoverable error, aborting now. "
                            f"({path}: {exc})") from None
        log.info("DB loaded from disk: %.3f seconds (%d keys)", time.monotonic() - started,
                 loader.keys_loaded)


def start_loading(server, done) -> threading.Thread:
    """Load in a thread; `done(error_or_None)` is then called on the loop."""
    def work() -> None:
        error = None
        gc.disable()  # millions of new objects: collections would only rescan them
        try:
            load_dataset(server)
        except LoadError as exc:
            error = exc
        except Exception as exc:  # noqa: BLE001 - a loader bug must still stop startup cleanly
            log.exception("loading failed")
            error = exc
        finally:
            gc.enable()
        server.loop.call_soon_threadsafe(done, error)
    thread = threading.Thread(target=work, name="loader", daemon=True)
    thread.start()
    return thread
