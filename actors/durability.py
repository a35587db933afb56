"""Durability on the loop side: the AOF life cycle, rewrites, RDB saves and their INFO fields.

Everything that must happen at an exact point of the write stream runs as a global op (every shard
parked): switching the AOF on or off, cutting the stream for a rewrite (the persistence actor
rotates to a new INCR file in stream order), and taking snapshots. Encoding snapshots runs on a
background thread (actors/snapshot.py) so shards keep serving.
"""

from __future__ import annotations

import logging
import os
import time

from actors.persistence import FSYNC, PersistenceActor
from actors.snapshot import elapsed_ms, run_in_background, take_snapshot
from commands.lua import libraries_code
from keyspace.db import now_ms

__all__ = ["Durability"]

log = logging.getLogger("shardis.durability")


class Durability:
    """The server's persistence state: the AOF actor, rewrite and save progress, counters."""

    def __init__(self, server) -> None:
        self.server = server
        self.actor_ref = None
        self.actor = None
        self.aofdir = None
        # AOF rewrite state (INFO persistence)
        self.rewrite_in_progress = False
        self.rewrite_scheduled = False
        self.save_scheduled = False
        self.rewrite_started = 0.0
        self.last_rewrite_secs = -1
        self.last_rewrite_status = "ok"
        self.rewrites = 0
        self.base_size = 0
        # RDB state
        self.bgsave_in_progress = False
        self.bgsave_started = 0.0
        self.last_bgsave_secs = -1
        self.last_bgsave_status = "ok"
        self.rdb_saves = 0
        self.last_pause_ms = 0.0
        self._dirty_at_save = 0
        self._timer = None
        self._functions: list[bytes] = []   # function libraries of the last snapshot
        self._retired: list = []            # stop futures of actors switched off at run time

    # -- the AOF -----------------------------------------------------------------------------------

    @property
    def aof_on(self) -> bool:
        return self.actor_ref is not None

    def _open_aofdir(self):
        from persistence import aof
        cfg = self.server.config
        return aof.AofDir(os.getcwd(), cfg["appendfilename"], cfg["appenddirname"])

    def start_at_boot(self) -> None:
        """After loading: append to the last INCR file of the AOF (creating the layout if needed)."""
        cfg = self.server.config
        if cfg["appendonly"]:
            aofdir = self._open_aofdir()
            if not aofdir.exists():
                aofdir.create_empty(*self._empty_base())
            self._attach(aofdir, aofdir.open_last_incr())
            self.base_size = aofdir.base_size()
        self._timer = self.server.loop.call_later(1.0, self._cron)

    def _empty_base(self) -> tuple[bytes, bool]:
        if self.server.config["aof-use-rdb-preamble"]:
            from persistence import rdb
            return rdb.dump([]), True
        return b"", False

    def _attach(self, aofdir, writer) -> None:
        """Start the persistence actor on `writer` and point every shard's stream at it."""
        server = self.server
        policy = server.config["appendfsync"]
        box: list = []
        self.aofdir = aofdir
        self.actor_ref = PersistenceActor.start(writer, server.loop, server.deliver, policy, box)
        self.actor = box[0]
        server.replication.route_stream()

    def stop(self) -> None:
        """Shutdown: the shards are stopped, so every record is queued; flush, fsync, close."""
        if self._timer is not None:
            self._timer.cancel()
        for future in self._retired:  # an AOF switched off just before: let it finish flushing
            try:
                future.get(timeout=30)
            except Exception:  # noqa: BLE001 - shutting down regardless
                log.exception("a retired persistence actor did not stop cleanly")
        if self.actor_ref is not None:
            try:
                self.actor_ref.stop(timeout=30)
                log.info("Append-only file flushed and synced.")
            except Exception:  # noqa: BLE001 - shutting down regardless
                log.exception("the persistence actor did not stop cleanly")

    def _cron(self) -> None:
        """Once a second: everysec fsync, automatic rewrite by growth, `save` points."""
        server = self.server
        cfg = server.config
        if self.actor_ref is not None and cfg["appendfsync"] == "everysec":
            self.actor_ref.tell(FSYNC)
        if (self.actor_ref is not None and not self.rewrite_in_progress
                and cfg["auto-aof-rewrite-percentage"] > 0):
            size = self.actor.sink_size() + self.base_size
            base = max(self.base_size, 1)
            if size > cfg["auto-aof-rewrite-min-size"] and \
                    (size - base) * 100 / base >= cfg["auto-aof-rewrite-percentage"]:
                log.info("Starting automatic rewriting of AOF on %d%% growth",
                         (size - base) * 100 // base)
                self.rewrite()
        if self.rewrite_scheduled and not self.bgsave_in_progress and not self.rewrite_in_progress:
            self.rewrite_scheduled = False
            self.rewrite()
        if self.save_scheduled and not self.bgsave_in_progress and not self.rewrite_in_progress:
            self.save_scheduled = False
            self.bgsave()
        if not self.bgsave_in_progress and not self.rewrite_in_progress:
            dirty = sum(s.dirty for s in server.stores) - self._dirty_at_save
            elapsed = time.time() - server.lastsave
            for seconds, changes in cfg["save"] or ():
                if dirty >= changes and elapsed > seconds:
                    log.info("%d changes in %d seconds. Saving...", changes, seconds)
                    self.bgsave()
                    break
        self._timer = server.loop.call_later(1.0, self._cron)

    # -- snapshots ---------------------------------------------------------------------------------

    def _snapshot_then(self, at_barrier, encode, done, name: str) -> None:
        """Global op: snapshot (and `at_barrier(view)`), then `encode(snapshot)` on a thread, then
        `done(result, error)` on the loop."""
        server = self.server
        snapshot_functions: list = self._functions

        def barrier(view) -> None:
            started = time.perf_counter()
            snapshot = take_snapshot(view.parts, now_ms())
            snapshot_functions[:] = libraries_code()  # function libraries at the same point
            if at_barrier is not None:
                at_barrier(view)
            self.last_pause_ms = elapsed_ms(started)
            run_in_background(name, lambda: encode(snapshot), done, server.loop)
        server.run_global(barrier)

    def bgsave(self, reply=None) -> str | None:
        """Start an RDB save; returns an error text, or None when it started."""
        if self.bgsave_in_progress:
            return "ERR Background save already in progress"
        if self.rewrite_in_progress:
            return ("ERR Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE "
                    "SCHEDULE in order to schedule a BGSAVE whenever possible.")
        server = self.server
        path = os.path.join(os.getcwd(), server.config["dbfilename"])
        self.bgsave_in_progress = True
        self.bgsave_started = time.time()
        dirty_now = sum(s.dirty for s in server.stores)

        def encode(snapshot):
            from persistence import rdb
            return rdb.write_file(path, snapshot, functions=list(self._functions))

        def done(size, error) -> None:
            self.bgsave_in_progress = False
            self.last_bgsave_secs = int(time.time() - self.bgsave_started)
            if error is None:
                self.last_bgsave_status = "ok"
                self.rdb_saves += 1
                self._dirty_at_save = dirty_now
                server.lastsave = int(time.time())
                log.info("DB saved on disk (%d bytes)", size)
            else:
                self.last_bgsave_status = "err"
                log.error("Background saving error: %s", error)
            if reply is not None:
                reply(error)
        self._snapshot_then(None, encode, done, "bgsave")
        return None

    # -- AOF rewrite ---------------------------------------------------------------------------------

    def rewrite(self) -> str:
        """BGREWRITEAOF (and the automatic one): the reply text."""
        if self.rewrite_in_progress:
            return "ERR Background append only file rewriting already in progress"
        if self.bgsave_in_progress:
            self.rewrite_scheduled = True
            return "Background append only file rewriting scheduled"
        self._start_rewrite(enable=False)
        return "Background append only file rewriting started"

    def _start_rewrite(self, enable: bool) -> None:
        """Cut the stream at a barrier: later records go to a new INCR (or, when the AOF is being
        switched on, to a temp INCR); the snapshot becomes the new base."""
        server = self.server
        cfg = server.config
        self.rewrite_in_progress = True
        self.rewrite_started = time.time()
        aofdir = self.aofdir or self._open_aofdir()
        preamble = cfg["aof-use-rdb-preamble"]
        state: dict = {}

        def at_barrier(view) -> None:
            if enable:
                path, writer = aofdir.open_temp_incr()
                state["temp_incr"] = True
                # Attach here, with every shard parked: records start exactly at the snapshot.
                self._attach(aofdir, writer)
            elif self.actor_ref is not None:
                self.actor_ref.tell(lambda actor: actor.rotate(aofdir.open_new_incr()[1]))

        def encode(snapshot):
            tmp = aofdir.temp_base_path()
            if preamble:
                from persistence import rdb
                data = rdb.dump(snapshot, functions=list(self._functions))
            else:
                from persistence.rewrite import rewrite_commands
                data = rewrite_commands(snapshot, list(self._functions))
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            return tmp, len(data)

        def done(result, error) -> None:
            self.rewrite_in_progress = False
            self.last_rewrite_secs = int(time.time() - self.rewrite_started)
            if error is not None:
                self.last_rewrite_status = "err"
                log.error("Background AOF rewrite failed: %s", error)
                return
            tmp, size = result

            def install(actor) -> None:
                keep = None if self.actor_ref is not None else \
                    ((aofdir.manifest.last_incr().seq + 1) if aofdir.manifest.last_incr() else None)
                aofdir.install_base(tmp, preamble, keep_incr_from=actor.sink_seq() if keep is None
                                    else keep, temp_incr=state.get("temp_incr", False))
                if state.get("temp_incr"):
                    actor.reopen_temp_as_incr(aofdir)
            try:
                if self.actor_ref is not None:
                    self.actor_ref.ask(install, timeout=60)
                else:
                    aofdir.install_base(tmp, preamble)
            except Exception as exc:  # noqa: BLE001 - reported in INFO and the log
                self.last_rewrite_status = "err"
                log.error("Can't install the rewritten AOF: %s", exc)
                return
            self.base_size = size
            self.rewrites += 1
            self.last_rewrite_status = "ok"
            log.info("Background AOF rewrite finished successfully (%d bytes base)", size)
        self._snapshot_then(at_barrier, encode, done, "aof-rewrite")

    # -- CONFIG SET appendonly / appendfsync -------------------------------------------------------------

    def set_appendonly(self, on: bool) -> None:
        if on and self.actor_ref is None and not self.rewrite_in_progress:
            self._start_rewrite(enable=True)
        elif not on and self.actor_ref is not None:
            ref = self.actor_ref
            server = self.server

            def at_barrier(view) -> None:
                if server.replication.streaming:
                    # Records still queued here go on to the replication actor: let them reach
                    # it before the shards start telling it directly.
                    ref.ask(lambda actor: None, timeout=60)
                self.actor_ref = self.actor = None
                server.replication.route_stream()
                # Every record is already queued ahead of this stop: it flushes them, then ends.
                self._retired.append(ref.stop(block=False))
            server.run_global(at_barrier)

    def set_appendfsync(self, policy: str) -> None:
        server = self.server
        if self.actor_ref is None:
            return
        actor_ref = self.actor_ref

        def at_barrier(view) -> None:
            for actor in server.shard_actors:
                actor.hold_replies = policy == "always"
            actor_ref.tell(lambda actor: setattr(actor, "policy", policy))
        server.run_global(at_barrier)

    # -- INFO ------------------------------------------------------------------------------------------

    def info_fields(self) -> list[str]:
        server = self.server
        now = time.time()
        actor = self.actor
        lines = [
            "loading:%d" % int(server.loading),
            "rdb_changes_since_last_save:%d" % (sum(s.dirty for s in server.stores)
                                                - self._dirty_at_save),
            "rdb_bgsave_in_progress:%d" % int(self.bgsave_in_progress),
            "rdb_last_save_time:%d" % server.lastsave,
            "rdb_last_bgsave_status:%s" % self.last_bgsave_status,
            "rdb_last_bgsave_time_sec:%d" % self.last_bgsave_secs,
            "rdb_current_bgsave_time_sec:%d" % (int(now - self.bgsave_started)
                                                if self.bgsave_in_progress else -1),
            "rdb_saves:%d" % self.rdb_saves,
            "aof_enabled:%d" % int(bool(server.config["appendonly"])),
            "aof_rewrite_in_progress:%d" % int(self.rewrite_in_progress),
            "aof_rewrite_scheduled:%d" % int(self.rewrite_scheduled),
            "aof_last_rewrite_time_sec:%d" % self.last_rewrite_secs,
            "aof_current_rewrite_time_sec:%d" % (int(now - self.rewrite_started)
                                                 if self.rewrite_in_progress else -1),
            "aof_last_bgrewrite_status:%s" % self.last_rewrite_status,
            "aof_rewrites:%d" % self.rewrites,
            "aof_last_write_status:%s" % ("ok" if actor is None or actor.write_ok else "err"),
            "shardis_last_snapshot_pause_ms:%.3f" % self.last_pause_ms,
        ]
        if actor is not None:
            size = actor.sink_size() + self.base_size
            lines += ["aof_current_size:%d" % size, "aof_base_size:%d" % self.base_size,
                      "aof_pending_rewrite:%d" % int(self.rewrite_scheduled),
                      "aof_buffer_length:0", "aof_pending_bio_fsync:0", "aof_delayed_fsync:0"]
        return lines
