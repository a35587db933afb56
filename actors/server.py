"""Bootstrap: command line, logging, actors in dependency order, the listener, and shutdown.

`Server` is the loop-side state every connection shares (clients, config, stats, the dispatcher).
Handlers of LOCAL commands reach it as `client.server`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import socket
import sys
import time

import config as config_pkg
import commands  # noqa: F401  (registers every command family)
from actors.blocking import DONE
from actors.connection import ConnectionActor
from actors.durability import Durability
from actors.loading import start_loading
from actors.shard import TICK, ExecStats, GlobalOp, ShardActor
from keyspace.db import Store
from keyspace.routing import ShardMap
from keyspace.view import ShardedStore
from protocol.replies import encode

__all__ = ["Server", "main"]

log = logging.getLogger("shardis")


class Dispatcher:
    """Batches commands per shard for one loop tick, then sends one message per shard."""

    def __init__(self, loop, shard_refs) -> None:
        self.loop = loop
        self.refs = shard_refs
        self.pending: list[list] = [[] for _ in shard_refs]
        self.scheduled = False
        self.unbatched = False  # dispatch unbatched: one message per entry (docs/concurrency.md)

    def submit(self, shard: int, entry) -> None:
        self.pending[shard].append(entry)
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self.flush)

    def schedule(self) -> None:
        """Make sure a flush runs this tick (the connection fast path appends to `pending`)."""
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self.flush)

    def submit_global(self, op) -> None:
        """Queue `op` to every shard at the same point of the order (see actors/shard.py)."""
        for batch in self.pending:
            batch.append(op)
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self.scheduled = False
        pending = self.pending
        for i, batch in enumerate(pending):
            if batch:
                pending[i] = []
                if self.unbatched:
                    for entry in batch:
                        self.refs[i].tell([entry])
                    continue
                self.refs[i].tell(batch)


class _InlineRef:
    """dispatch inline: stands in for the shard's ref and runs each batch on the loop thread."""

    def __init__(self, actor) -> None:
        self.tell = actor.on_receive


def _deliver(touched: dict) -> None:
    """Runs on the loop: a shard filled `count` reply slots of each of these connections."""
    for conn, count in touched.items():
        conn.inflight -= count
        conn.flush()
        if conn.backlog and not conn.inflight:
            conn.resume()


def _deliver_pubsub(pushes: dict, touched: dict) -> None:
    """Runs on the loop: the broker's fan-out (one write per subscriber) and its replies."""
    for conn, frames in pushes.items():
        conn.push(frames)
    if touched:
        for conn, count in touched.items():
            conn.broker_inflight -= count
        _deliver(touched)


class Server:
    """State shared by every connection on the loop thread."""

    def __init__(self, cfg, loop) -> None:
        self.config = cfg
        self.loop = loop
        self.run_id = secrets.token_hex(20)
        self.version = config_pkg.VERSION
        self.loop_kind = type(loop).__module__.split(".")[0]
        self.executable = os.path.abspath(sys.argv[0])
        self.peak_memory = 0
        self.start_time = time.time()
        self.lastsave = int(time.time())
        self.clients: dict[int, ConnectionActor] = {}
        self._next_id = 0
        self.local_stats = ExecStats()
        self.rejected: dict[str, int] = {}
        self.rejected_calls: dict = {}      # spec -> refusals before running (commandstats)
        self.total_connections = 0
        self.rejected_connections = 0
        self.paused = False
        self.pause_until = 0.0
        self.pause_mode = "all"
        self._paused_clients: list = []
        self.active_expire_enabled = True
        self.shutdown_requested = asyncio.Event()
        self.loading = False
        self.exit_code = 0
        self.deliver = _deliver
        self.durability = Durability(self)
        self.listeners: list = []
        # Shards
        n = cfg["shards"]
        self.shard_map = ShardMap(n)
        self.stores = [Store(cfg["databases"]) for _ in range(n)]
        for store in self.stores:
            store.config = cfg.values
        budget = 0.25 / max(cfg["hz"], 1)
        self.shard_actors: list[ShardActor] = []   # each actor appends itself (refs hide actors)
        self.shard_refs = [ShardActor.start(i, self.stores[i], loop, _deliver, budget,
                                            self.shard_actors) for i in range(n)]
        view = ShardedStore(self.stores, self.shard_map)
        for actor in self.shard_actors:
            actor.view_factory = lambda: view
            actor.on_blocked = self.on_blocked
            actor.retry_global = self.retry_global
        self.dispatcher = Dispatcher(loop, self.shard_refs)
        self.dispatcher.unbatched = cfg["dispatch"] == "unbatched"
        if cfg["dispatch"] == "inline":  # the one shard's batches run right here, with no hop
            actor = self.shard_actors[0]
            actor.on_loop_thread, actor.call_soon = True, loop.call_soon
            self.dispatcher.refs = [_InlineRef(actor)]
        from actors.pubsub import BrokerActor, BrokerDispatcher
        brokers: list = []
        self.broker_ref = BrokerActor.start(loop, _deliver_pubsub, brokers)
        self.broker_actor = brokers[0]
        self.broker = BrokerDispatcher(loop, self.broker_ref)
        for actor in self.shard_actors:
            actor.broker = self.broker_ref
        self._expire_timer = None
        from actors.replication import Replication
        self.replication = Replication(self)
        self._watch_config(cfg)

    # -- run-time configuration changes ------------------------------------------------------------

    def _watch_config(self, cfg) -> None:
        """Apply CONFIG SET to live state; a callback raising ConfigApplyError vetoes the change."""
        def reader_limit(attr):
            def apply(name, value):
                for conn in self.clients.values():
                    setattr(conn.reader, attr, value)
            return apply
        cfg.on_change("proto-max-bulk-len", reader_limit("max_bulk_len"))
        cfg.on_change("client-query-buffer-limit", reader_limit("query_buffer_limit"))
        cfg.on_change("loglevel", lambda name, value: logging.getLogger().setLevel(
            _LEVELS.get(str(value), logging.INFO)))
        cfg.on_change("port", lambda name, value: self._rebind(value, cfg["bind"]))
        cfg.on_change("appendonly", lambda name, value: self.durability.set_appendonly(value))
        cfg.on_change("appendfsync", lambda name, value: self.durability.set_appendfsync(value))
        cfg.on_change("bind", lambda name, value: self._rebind(cfg["port"], value))

    def _rebind(self, port: int, binds: list[str]) -> None:
        """CONFIG SET port/bind: open the new listening sockets first, so failure changes nothing."""
        sockets = []
        try:
            for entry in binds:
                optional = entry.startswith("-")
                host = {"*": "0.0.0.0", "::*": "::"}.get(entry.lstrip("-"), entry.lstrip("-"))
                family = socket.AF_INET6 if ":" in host else socket.AF_INET
                sock = socket.socket(family, socket.SOCK_STREAM)
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    if family == socket.AF_INET6:
                        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    sock.bind((host, port))
                    sock.listen(self.config["tcp-backlog"])
                except OSError:
                    sock.close()
                    if optional:
                        continue
                    raise
                sockets.append(sock)
        except OSError as exc:
            for sock in sockets:
                sock.close()
            raise config_pkg.ConfigApplyError("Unable to listen on this port") from exc
        old, self.listeners = self.listeners, []
        for srv in old:
            srv.close()

        async def adopt():
            for sock in sockets:
                srv = await self.loop.create_server(lambda: ConnectionActor(self), sock=sock)
                self.listeners.append(srv)
        self.loop.create_task(adopt())
        log.info("Listening again on port %d (%s)", port, " ".join(binds))

    # -- clients -----------------------------------------------------------------------------------

    def next_client_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def admit(self, conn, peer_host) -> str | None:
        """Why a new connection is refused (maxclients, protected mode), or None."""
        self.total_connections += 1
        if len(self.clients) >= self.config["maxclients"]:
            self.rejected_connections += 1
            return "ERR max number of clients reached"
        if (self.config["protected-mode"] and not self.config["requirepass"]
                and peer_host not in (None, "127.0.0.1", "::1", "localhost")
                and not str(peer_host).startswith("127.")):
            self.rejected_connections += 1
            return ("DENIED Redis is running in protected mode because protected mode is enabled "
                    "and no password is set for the default user. In this mode connections are "
                    "only accepted from the loopback interface. If you want to connect from "
                    "external computers to Redis you may adopt one of the following solutions: "
                    "1) Just disable protected mode sending the command 'CONFIG SET protected-mode "
                    "no' from the loopback interface by connecting to Redis from the same host the "
                    "server is running, however MAKE SURE Redis is not publicly accessible from "
                    "internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) "
                    "Alternatively you can just disable the protected mode by editing the Redis "
                    "configuration file, and setting the protected mode option to 'no', and then "
                    "restarting the server. 3) If you started the server manually just for testing, "
                    "restart it with the '--protected-mode no' option. 4) Set up an authentication "
                    "password for the default user. NOTE: You only need to do one of the above "
                    "things in order for the server to start accepting connections from the outside.")
        return None

    def reset_stats(self, conn=None) -> None:
        """CONFIG RESETSTAT. Shard counters are reset from their own thread via a global op;
        `conn` (the caller) counts it as in flight, so its next LOCAL command (INFO) waits for it."""
        self.local_stats.__init__()
        self.rejected.clear()
        self.rejected_calls.clear()
        self.total_connections = self.rejected_connections = 0
        self.peak_memory = 0

        def reset(view) -> None:
            for store in view.parts:
                store.expired_keys = store.keyspace_hits = store.keyspace_misses = 0
            for actor in self.shard_actors:
                actor.stats.__init__()
            if conn is not None:
                self.loop.call_soon_threadsafe(_deliver, {conn: 1})
        if conn is not None:
            conn.inflight += 1
        self.run_global(reset)

    def count_rejection(self, message: str, spec=None) -> None:
        if spec is not None:
            self.rejected_calls[spec] = self.rejected_calls.get(spec, 0) + 1
        prefix = message.split(" ", 1)[0]
        self.rejected[prefix] = self.rejected.get(prefix, 0) + 1

    # -- CLIENT PAUSE ---------------------------------------------------------------------------------

    def pause(self, millis: int, mode: str) -> None:
        """Redis keeps the later deadline and the stronger mode (ALL over WRITE) of all pauses."""
        until = time.monotonic() + millis / 1000
        if self.paused:
            self.pause_until = max(self.pause_until, until)
            if mode == "all":
                self.pause_mode = "all"
        else:
            self.paused = True
            self.pause_until = until
            self.pause_mode = mode
        self.loop.call_later(millis / 1000 + 0.001, self._check_unpause)

    def unpause(self) -> None:
        self.paused = False
        self.pause_until = 0.0
        waiting, self._paused_clients = self._paused_clients, []
        for conn in waiting:
            conn.resume()

    def _check_unpause(self) -> None:
        if self.paused and time.monotonic() >= self.pause_until:
            self.unpause()

    def pause_blocks(self, spec) -> bool:
        if self.pause_mode == "all":
            return not spec.fullname.startswith("client")
        return spec.is_write or "may_replicate" in spec.flags

    def wait_unpause(self, conn) -> None:
        self._paused_clients.append(conn)

    # -- blocked clients (actors/blocking.py) ----------------------------------------------------

    def on_blocked(self, waiter) -> None:
        """A shard parked `waiter`: remember it on its connection and arm its timeout."""
        if waiter.state == DONE:
            return
        waiter.conn.waiters.add(waiter)
        if waiter.timeout > 0:
            waiter.timer = self.loop.call_later(waiter.timeout, self.expire_waiter, waiter)

    def expire_waiter(self, waiter) -> None:
        conn = waiter.conn
        conn.waiters.discard(waiter)
        if waiter.expire() and not conn.closed:
            waiter.slot[0] = encode(waiter.timeout_reply, waiter.proto)
            conn.inflight -= 1
            conn.flush()
            if conn.backlog and not conn.inflight:
                conn.resume()

    def finish_on_loop(self, parts, conn, slot, data: bytes) -> None:
        """End of loop-run global work (EXEC): records go to the AOF before the shards resume,
        and under appendfsync always the reply waits for the fsync."""
        records = parts[0].records
        ref = self.durability.actor_ref
        if records and ref is not None:
            parts[0].records = []
            if self.config["appendfsync"] == "always":
                ref.tell((records, [(slot, data)], {conn: 1}))
                return
            ref.tell((records, None, None))
        slot[0] = data
        _deliver({conn: 1})

    def retry_global(self, waiter) -> None:
        """Re-run a waiter whose keys span shards, with every shard parked."""
        self.dispatcher.submit_global(GlobalOp(waiter.spec, waiter.argv, waiter.db_index,
                                               waiter.proto, waiter.conn, waiter.slot,
                                               self.shard_map.count, waiter=waiter))

    def blocked_clients(self) -> int:
        return sum(1 for c in self.clients.values()
                   if any(w.state != DONE for w in c.waiters))

    # -- global work -----------------------------------------------------------------------------------

    def run_global(self, fn) -> None:
        """Run fn(sharded_store) with every shard parked (fire and forget)."""
        self.dispatcher.submit_global(GlobalOp(None, None, 0, 2, None, None,
                                               self.shard_map.count, run=fn))

    def _schedule_expire(self) -> None:
        hz = max(1, min(500, self.config["hz"]))
        # A replica does not expire keys itself: its master's DELs do (REDIS-FACTS §6.1).
        if self.active_expire_enabled and self.replication.role == "master":
            for i in range(self.shard_map.count):
                self.dispatcher.submit(i, TICK)
        self._expire_timer = self.loop.call_later(1 / hz, self._schedule_expire)

    def used_memory(self) -> int:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            return 0

    # -- lifecycle --------------------------------------------------------------------------------------

    async def serve(self) -> None:
        cfg = self.config
        port = cfg["port"]
        for entry in cfg["bind"]:
            optional = entry.startswith("-")
            host = {"*": "0.0.0.0", "::*": "::"}.get(entry.lstrip("-"), entry.lstrip("-"))
            try:
                srv = await self.loop.create_server(
                    lambda: ConnectionActor(self), host, port, reuse_address=True,
                    backlog=cfg["tcp-backlog"])
            except OSError as exc:
                if optional:
                    log.info("Skipping optional address %s:%d: %s", host, port, exc)
                    continue
                raise
            self.listeners.append(srv)
            for sock in srv.sockets:
                if sock.family in (socket.AF_INET, socket.AF_INET6):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not self.listeners:
            raise OSError(f"no address to listen on (bind {' '.join(cfg['bind'])})")
        self.loading = True
        start_loading(self, self._loaded)
        await self.shutdown_requested.wait()

    def _loaded(self, error) -> None:
        """The dataset is in the stores (or could not be loaded): start serving for real."""
        if error is not None:
            log.error("Fatal error loading the dataset: %s", error)
            self.exit_code = 1
            self.request_shutdown("Can't load the dataset")
            return
        self.loading = False
        try:
            self.durability.start_at_boot()
        except OSError as exc:
            log.error("Can't open the append-only file: %s", exc)
            self.exit_code = 1
            self.request_shutdown("Can't open the AOF")
            return
        self._schedule_expire()
        log.info("Ready to accept connections tcp")
        if self.config["replicaof"]:
            self.replication.replicaof(*self.config["replicaof"])

    def request_shutdown(self, reason: str) -> None:
        if not self.shutdown_requested.is_set():
            log.warning("%s, preparing to shut down...", reason)
            self.shutdown_requested.set()

    def stop(self) -> None:
        from commands.lua import RUNNING as script
        script.abort()  # a looping script would otherwise keep every shard parked
        for srv in self.listeners:
            srv.close()
        if self._expire_timer is not None:
            self._expire_timer.cancel()
        for conn in list(self.clients.values()):
            conn.close()
        for ref in reversed(self.shard_refs):
            try:
                ref.stop(timeout=10)
            except Exception:  # noqa: BLE001 - shutting down regardless
                log.exception("shard did not stop cleanly")
        try:
            self.broker_ref.stop(timeout=10)
        except Exception:  # noqa: BLE001 - shutting down regardless
            log.exception("the pub/sub broker did not stop cleanly")
        self.durability.stop()      # its last records may still go on to the replication actor
        self.replication.stop()


# -- command line -----------------------------------------------------------------------------------------

_LEVELS = {"debug": logging.DEBUG, "verbose": logging.INFO, "notice": logging.INFO,
           "warning": logging.WARNING, "nothing": logging.CRITICAL + 1}


class _RedisStyleFormatter(logging.Formatter):
    """`pid:M 24 Nov 2026 02:50:17.123 * message`, the way redis-server logs."""

    _marks = {logging.DEBUG: ".", logging.INFO: "*", logging.WARNING: "#", logging.ERROR: "#",
              logging.CRITICAL: "#"}
    role = "M"
    """The role letter after the pid: M master, S replica (set by actors/replication.py)."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%d %b %Y %H:%M:%S", time.localtime(record.created))
        msecs = int(record.msecs)
        text = f"{os.getpid()}:{_RedisStyleFormatter.role} {stamp}.{msecs:03d} {self._marks.get(record.levelno, '*')} " \
               f"{record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def _setup_logging(cfg) -> None:
    handler: logging.Handler
    logfile = cfg["logfile"]
    handler = logging.FileHandler(logfile) if logfile else logging.StreamHandler(sys.stdout)
    handler.setFormatter(_RedisStyleFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS.get(str(cfg["loglevel"]), logging.INFO))
    logging.getLogger("pykka").setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    early = config_pkg.help_or_version(args)
    if early is not None:
        print(early)
        return 0
    try:
        cfg = config_pkg.load(args)
    except config_pkg.ConfigError as exc:
        print(f"shardis-server: {exc}", file=sys.stderr)
        return 1
    if cfg["dispatch"] == "inline" and cfg["shards"] != 1:
        print(f"shardis-server: 'dispatch inline' runs commands on the event-loop thread and needs "
              f"'shards 1', got 'shards {cfg['shards']}'", file=sys.stderr)
        return 1
    _setup_logging(cfg)
    directory = cfg["dir"]
    try:
        os.makedirs(directory, exist_ok=True)
        os.chdir(directory)
    except OSError as exc:
        print(f"shardis-server: can't chdir to '{directory}': {exc}", file=sys.stderr)
        return 1
    try:
        import uvloop
        loop = uvloop.new_event_loop()
        flavour = "uvloop"
    except ImportError:
        loop = asyncio.new_event_loop()
        flavour = "asyncio"
    asyncio.set_event_loop(loop)
    log.info("Shardis %s (redis_version %s) starting, pid=%d, python %s, %s",
             config_pkg.VERSION, config_pkg.REDIS_VERSION, os.getpid(),
             sys.version.split()[0], flavour)
    if cfg.config_file:
        log.info("Configuration loaded from %s", cfg.config_file)
    else:
        log.warning("No config file specified, using the default config. In order to specify a "
                    "config file use shardis-server /path/to/shardis.conf")
    server = Server(cfg, loop)
    for sig, name in ((signal.SIGTERM, "Received SIGTERM scheduling shutdown"),
                      (signal.SIGINT, "Received SIGINT scheduling shutdown")):
        loop.add_signal_handler(sig, server.request_shutdown, name)
    log.info("Server initialized: port=%d bind=%s shards=%d databases=%d",
             cfg["port"], cfg["bind"], cfg["shards"], cfg["databases"])
    code = 0
    try:
        loop.run_until_complete(server.serve())
        code = server.exit_code
    except OSError as exc:
        log.error("Failed listening on port %d (tcp): %s", cfg["port"], exc)
        code = 1
    finally:
        server.stop()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()
    if code == 0:
        log.warning("Shardis is now ready to exit, bye bye...")
    return code


if __name__ == "__main__":
    sys.exit(main())
