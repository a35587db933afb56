"""Connection actors: one asyncio Protocol per client, all living on the event-loop thread.

A connection parses requests, looks each command up in the table, checks arity and auth, and routes
it: LOCAL commands run right here; keyed commands go to the shard that owns their keys; commands
whose keys span shards, or that need the whole dataset, go to every shard as a global op.

Replies keep request order through a FIFO of one-element "slots": a slot is queued when the command
is dispatched and filled by whoever runs it (a shard thread fills it from its side, then wakes the
loop). `flush` writes the filled prefix with a single `transport.write`. `inflight` counts slots a
shard still owes us; a LOCAL command waits until it is zero, which makes it a barrier: it observes
every earlier command of this connection, as on a single-threaded Redis.
"""

from __future__ import annotations

import logging
import time
from collections import deque

from actors.execution import execute_one
from actors.shard import GlobalOp, note_source
from actors.transaction import ExecEntry, WatchToken, run_queued, unwatch_all, watch_key
from commands.lua import RUNNING as SCRIPT
from commands.registry import COMMANDS, Route, lookup
from protocol.errors import LOADING, NOAUTH, CommandError, ProtocolError, unknown_command, wrong_arity
from protocol.reader import RequestReader
from protocol.replies import DEFERRED, Frames, Push, encode_error

__all__ = ["ConnectionActor"]

log = logging.getLogger("shardis.connection")

_ROUTE_KEYS, _ROUTE_ALL, _ROUTE_LOCAL = Route.KEYS, Route.ALL, Route.LOCAL
_RUN_INSIDE_MULTI = frozenset({"exec", "discard", "multi", "watch", "quit", "reset"})
"""Commands that run at once inside MULTI; everything else is queued (Redis's processCommand)."""
_QUEUED = b"+QUEUED\r\n"
_SUBSCRIBED_OK = frozenset({"subscribe", "psubscribe", "ssubscribe", "unsubscribe",
                            "punsubscribe", "sunsubscribe", "ping", "quit", "reset"})
"""What a RESP2 client may run while subscribed."""
_ORDERED_BY_FIFO = frozenset({"multi", "exec", "discard"})
"""LOCAL commands that need no barrier: MULTI and DISCARD only touch the queue, and EXEC's work
enters the same shard FIFOs (or global op) behind every earlier command of the connection."""
_BROKER_COMMANDS = frozenset({"publish", "spublish", "pubsub|channels", "pubsub|numsub",
                              "pubsub|numpat", "pubsub|shardchannels", "pubsub|shardnumsub"})
"""Answered by the broker actor: behind earlier broker work they need no barrier (FIFO inbox)."""
_EXECABORT = "EXECABORT Transaction discarded because of previous errors."


class ConnectionActor:
    """One client connection (an asyncio Protocol)."""

    is_master = False       # the pseudo-client applying a master's stream (actors/replication.py)
    replica_link = None     # set once a replica's connection sent PSYNC/SYNC
    repl_listening_port = 0             # what a replica told us with REPLCONF, before PSYNC
    repl_ip: str | None = None
    repl_capa: frozenset = frozenset()

    def __init__(self, server) -> None:
        # Collaborators
        self.server = server
        self.transport = None
        # Per-connection state, as CLIENT LIST reports it
        self.id = server.next_client_id()
        self.name: bytes = b""
        self.db = 0
        self.proto = 2
        self.authenticated = not server.config["requirepass"]
        self.addr = self.laddr = "?:0"
        self.fd = -1
        self.created = time.time()
        self.last_interaction = self.created
        self.last_command = "NULL"
        self.lib_name = self.lib_ver = b""
        self.no_evict = False
        self.reply_on = True
        self.skip_next_reply = False    # CLIENT REPLY SKIP: drop the reply of the next command
        self.skip_this_reply = False    # the LOCAL command now running sends no reply
        # Request/reply pipeline
        cfg = server.config
        self.reader = RequestReader(max_bulk_len=cfg["proto-max-bulk-len"],
                                    query_buffer_limit=cfg["client-query-buffer-limit"])
        self.reader.authenticated = self.authenticated
        self.replies: deque = deque()
        self.inflight = 0
        self.backlog: deque = deque()
        self.closing = False
        self.closed = False
        self.waiters: set = set()           # blocked commands of ours (actors/blocking.py)
        # MULTI state
        self.multi: list | None = None      # queued (spec, argv) while inside MULTI
        self.multi_error = False            # a command was refused while queueing: EXECABORT
        self.watch_token: WatchToken | None = None
        # Pub/Sub state: name -> None, insertion-ordered (the broker has the reverse index)
        self.subscriptions: dict[str, dict[bytes, None]] = {
            "channels": {}, "patterns": {}, "shard": {}}
        self.subscribed = False
        self.output_soft_since = 0.0          # over the soft output limit since (monotonic)
        self.broker_inflight = 0                 # of `inflight`: slots the broker owes us

    # -- asyncio Protocol ----------------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        sock_obj = transport.get_extra_info("socket")
        if peer:
            self.addr = f"{peer[0]}:{peer[1]}"
        if sock:
            self.laddr = f"{sock[0]}:{sock[1]}"
        if sock_obj is not None:
            self.fd = sock_obj.fileno()
        refusal = self.server.admit(self, peer[0] if peer else None)
        if refusal:
            transport.write(encode_error(refusal))
            transport.close()
            self.closed = True
            return
        self.server.clients[self.id] = self

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.server.clients.pop(self.id, None)
        for waiter in self.waiters:
            waiter.cancel()
        self.waiters.clear()
        self.unwatch()
        if self.subscribed:
            self.server.broker.submit(("drop", self))
        if self.replica_link is not None:
            self.server.replication.replica_gone(self.replica_link)

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        reader = self.reader
        reader.feed(data)
        self.last_interaction = time.time()
        while True:
            failed = False
            try:
                commands = reader.commands()
            except ProtocolError as exc:
                # Commands parsed before the bad bytes run first; the error reply follows them.
                # The reader stays failed and would raise again: stop reading.
                commands = [exc]
                failed = True
            if not commands:
                break
            if self.backlog:
                self.backlog.extend(commands)
                self.resume()
            else:
                self._run(commands, 0)
            if self.closing or failed:
                break
        if reader.query_buffer_exceeded():
            log.warning("Closing client that reached max query buffer length: id=%d addr=%s",
                        self.id, self.addr)
            self.close()
            return
        self.flush()

    def eof_received(self):
        return False

    def pause_writing(self) -> None:
        """Flow control from the transport: the output limits (client-output-buffer-limit) are
        what bound a slow reader here, so there is nothing to pause."""

    def resume_writing(self) -> None:
        pass

    # -- command execution ---------------------------------------------------------------------------

    def _run(self, commands: list, start: int) -> None:
        """Dispatch commands in order; stop (saving the rest in the backlog) at a barrier."""
        server = self.server
        table_get = COMMANDS.get
        dispatcher = server.dispatcher
        shard_of = server.shard_map.shard_of
        single_shard = server.shard_map.count == 1
        pending = dispatcher.pending
        if not dispatcher.scheduled:
            dispatcher.schedule()
        replies_append = self.replies.append
        db, proto = self.db, self.proto
        # The fast path: a plain connection sending keyed commands (GET, SET, LPUSH ...) goes
        # straight into the shard batches; everything else takes the checks below.
        plain = (self.authenticated and not self.subscribed and self.multi is None
                 and self.reply_on and not self.skip_next_reply and not server.loading
                 and not server.paused and not SCRIPT.running
                 and (self.is_master or not server.replication.checks_commands))
        i = start
        n = len(commands)
        while i < n:
            argv = commands[i]
            i += 1
            if plain:
                spec = table_get(argv[0]) if type(argv) is list else None
                if spec is not None and spec.fast_keyed:
                    arity = spec.arity
                    if (len(argv) == arity if arity > 0 else len(argv) >= -arity):
                        if single_shard:
                            target = pending[0]
                        elif spec.single_key:
                            target = pending[shard_of(argv[1])]
                        else:
                            target = None
                        if target is not None:
                            slot = [None]
                            replies_append(slot)
                            self.inflight += 1
                            target.append((spec, argv, db, proto, self, slot))
                            self.last_command = spec.fullname
                            continue
            if type(argv) is ProtocolError:
                if self.inflight:
                    self.backlog.extendleft(reversed(commands[i - 1:]))
                    return
                self._protocol_error(argv)
                return
            spec = table_get(argv[0])
            if spec is None or spec.subcommands:
                try:
                    spec = lookup(argv)
                except CommandError as exc:
                    self.last_command = "NULL"
                    self._reject(exc.message)
                    continue
                if spec is None:
                    self.last_command = "NULL"
                    self._reject(unknown_command(argv[0], argv[1:]).message)
                    continue
            # Redis sets the client's last command at lookup: refused and queued commands count.
            self.last_command = spec.fullname
            arity = spec.arity
            if (arity > 0 and len(argv) != arity) or len(argv) < -arity:
                self._reject(wrong_arity(spec.fullname).message, spec)
                continue
            if not self.authenticated and not spec.no_auth:
                self._reject(NOAUTH, spec)
                continue
            if server.replication.checks_commands:
                refusal = server.replication.refusal(spec, self)
                if refusal is not None:
                    self._reject(refusal, spec)
                    continue
            if server.loading and "loading" not in spec.flags:
                self._reject(LOADING, spec)
                continue
            if SCRIPT.running and "allow_busy" not in spec.flags:
                busy = SCRIPT.busy_error(server.config["busy-reply-threshold"])
                if busy is not None:
                    self._reject(busy, spec)
                    continue
                # Redis would not read us while the script runs: wait, then answer or say BUSY.
                self.backlog.extendleft(reversed(commands[i - 1:]))
                server.loop.call_later(0.002, self.resume)
                return
            if self.subscribed and self.proto == 2 and spec.fullname not in _SUBSCRIBED_OK:
                self._reject(f"ERR Can't execute '{spec.fullname}': only (P|S)SUBSCRIBE / "
                             "(P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                             spec)
                continue
            if self.multi is not None and spec.fullname not in _RUN_INSIDE_MULTI:
                if "no_multi" in spec.flags:
                    self._reject("ERR Command not allowed inside a transaction", spec)
                    continue
                self.multi.append((spec, argv))
                if self.reply_on and not self._skip():
                    self.replies.append([_QUEUED])
                continue
            if server.paused and server.pause_blocks(spec):
                self.backlog.extendleft(reversed(commands[i - 1:]))
                server.wait_unpause(self)
                return
            route = spec.route
            if route is _ROUTE_KEYS:
                slot = [None]
                if self.reply_on and not self._skip():
                    self.replies.append(slot)
                self.inflight += 1
                if spec.blocking:
                    # Nothing after a blocking command may run before it completes.
                    if i < n:
                        self.backlog.extend(commands[i:])
                    i = n
                if single_shard:
                    dispatcher.submit(0, (spec, argv, self.db, self.proto, self, slot))
                    continue
                if spec.single_key:
                    dispatcher.submit(shard_of(argv[1]),
                                      (spec, argv, self.db, self.proto, self, slot))
                    continue
                positions = spec.key_positions(argv)
                shards = {shard_of(argv[p]) for p in positions}
                if spec.needs_global is not None and spec.needs_global(argv):
                    shards = ()  # touches keys beyond its key positions: global mode
                if len(shards) == 1:
                    dispatcher.submit(shards.pop(), (spec, argv, self.db, self.proto, self, slot))
                else:
                    dispatcher.submit_global(GlobalOp(spec, argv, self.db, self.proto, self, slot,
                                                      server.shard_map.count))
            elif route is _ROUTE_ALL:
                slot = [None]
                if self.reply_on and not self._skip():
                    self.replies.append(slot)
                self.inflight += 1
                if single_shard:
                    dispatcher.submit(0, (spec, argv, self.db, self.proto, self, slot))
                else:
                    dispatcher.submit_global(GlobalOp(spec, argv, self.db, self.proto, self, slot,
                                                      server.shard_map.count))
            else:
                if self.inflight and spec.fullname not in _ORDERED_BY_FIFO and not (
                        spec.fullname in _BROKER_COMMANDS
                        and self.inflight == self.broker_inflight):
                    # Barrier: run once every earlier command of ours has completed. Broker
                    # commands need only the shards' work done: the broker's inbox keeps order.
                    self.backlog.extendleft(reversed(commands[i - 1:]))
                    return
                # Decided before the handler runs: CLIENT REPLY SKIP silences itself and the
                # next command, and CLIENT REPLY ON may cancel a skip pending for itself.
                self.skip_this_reply = self._skip()
                data = execute_one(spec, self, argv, None, server.local_stats)
                if data is not None and self.reply_on and not self.skip_this_reply:
                    self.replies.append([data])
                self.skip_this_reply = False
                if self.closing:
                    return
                # A LOCAL command may change what the fast path assumes (SELECT, HELLO, MULTI ...).
                db, proto = self.db, self.proto
                plain = (self.authenticated and not self.subscribed and self.multi is None
                         and self.reply_on and not self.skip_next_reply and not server.loading
                         and not server.paused
                         and (self.is_master or not server.replication.checks_commands))

    def _skip(self) -> bool:
        if self.skip_next_reply:
            self.skip_next_reply = False
            return True
        return False

    def resume(self) -> None:
        """Continue with commands held back by a barrier or a pause."""
        if not self.backlog or self.inflight or self.closed:
            return
        commands = list(self.backlog)
        self.backlog.clear()
        self._run(commands, 0)
        self.flush()

    def _reject(self, message: str, spec=None) -> None:
        """A command refused before running: counted as rejected, as Redis's INFO does (per
        command too, when it was found: INFO commandstats rejected_calls).

        Inside MULTI it also dooms the transaction (EXEC will reply EXECABORT). A refused EXEC
        discards the transaction and every WATCH, inside MULTI or not (Redis's execCommandAbort)."""
        if spec is not None and spec.fullname == "exec":
            self.multi = None
            self.multi_error = False
            self.unwatch()
            message = ("EXECABORT Transaction discarded because of: "
                       + message.removeprefix("ERR "))
        elif self.multi is not None:
            self.multi_error = True
        self.server.count_rejection(message, spec)
        if self.reply_on and not self._skip():
            self.replies.append([encode_error(message)])

    def _protocol_error(self, exc: ProtocolError) -> None:
        message = str(exc)
        log.debug("Protocol error (%s) from client: id=%d addr=%s", message, self.id, self.addr)
        self.server.count_rejection(message)
        self.replies.append([encode_error(message)])
        self.closing = True
        self.flush()

    # -- MULTI/EXEC/WATCH (actors/transaction.py) -----------------------------------------------------

    def exec_transaction(self):
        """EXEC: dispatch the queued commands as one atomic unit; the reply comes back later."""
        queued, self.multi = self.multi, None
        if self.multi_error:
            self.multi_error = False
            self.unwatch()
            raise CommandError(_EXECABORT)
        token, self.watch_token = self.watch_token or WatchToken(), None
        server = self.server
        shard_of = server.shard_map.shard_of
        on_loop = False
        shards: set[int] = set()
        for spec, argv in queued:
            if spec.route is not _ROUTE_KEYS or (
                    spec.needs_global is not None and spec.needs_global(argv)):
                on_loop = True
                break
            for pos in spec.key_positions(argv):
                shards.add(shard_of(argv[pos]))
        for _db, key in token.keys:
            shards.add(shard_of(key))
        slot = [None]
        if self.reply_on and not self._skip():
            self.replies.append(slot)
        self.inflight += 1
        if not on_loop and len(shards) <= 1:
            server.dispatcher.submit(shards.pop() if shards else 0,
                                     ExecEntry(queued, self.db, self.proto, self, slot, token))
            return DEFERRED

        def run(view) -> None:
            note_source(view.parts, self)
            owner = view.dbs[0].part
            data = run_queued(self, queued, self.db, self.proto, view.dbs.__getitem__,
                              lambda key: owner(key).store, view.parts, server.local_stats,
                              server.local_stats, token, slot)
            server.finish_on_loop(view.parts, self, slot, data)
        server.dispatcher.submit_global(GlobalOp(None, None, self.db, self.proto, self, slot,
                                                 server.shard_map.count, run=run, on_loop=True))
        return DEFERRED

    def watch(self, keys: list[bytes]) -> None:
        token = self.watch_token
        if token is None:
            token = self.watch_token = WatchToken()
        server = self.server
        for key in keys:
            watch_key(server.stores[server.shard_map.shard_of(key)], self.db, key, token)

    def unwatch(self) -> None:
        if self.watch_token is not None:
            unwatch_all(self.watch_token)
            self.watch_token = None

    # -- Pub/Sub (actors/pubsub.py) ------------------------------------------------------------------

    @property
    def kind(self) -> str:
        """The client type CLIENT LIST/KILL filter on."""
        if self.replica_link is not None:
            return "replica"
        return "pubsub" if self.subscribed else "normal"

    def _subscription_count(self, which: str) -> int:
        subs = self.subscriptions
        if which == "shard":
            return len(subs["shard"])
        return len(subs["channels"]) + len(subs["patterns"])

    def _update_subscribed(self) -> None:
        subs = self.subscriptions
        self.subscribed = bool(subs["channels"] or subs["patterns"] or subs["shard"])

    def subscribe(self, which: str, reply: bytes, names: list[bytes]) -> Frames:
        table = self.subscriptions[which]
        frames = []
        added = []
        for name in names:
            if name not in table:
                table[name] = None
                added.append(name)
            frames.append(Push([reply, name, self._subscription_count(which)]))
        if added:
            self.server.broker.submit(("sub", self, which, added))
        self._update_subscribed()
        return Frames(frames)

    def unsubscribe(self, which: str, reply: bytes, names: list[bytes] | None) -> Frames:
        table = self.subscriptions[which]
        if names is None:
            names = list(table)
            if not names:
                return Frames([Push([reply, None, self._subscription_count(which)])])
        frames = []
        removed = []
        for name in names:
            if name in table:
                del table[name]
                removed.append(name)
            frames.append(Push([reply, name, self._subscription_count(which)]))
        if removed:
            self.server.broker.submit(("unsub", self, which, removed))
        self._update_subscribed()
        return Frames(frames)

    def deferred_slot(self) -> list:
        """A reply slot for an answer that comes later (PUBLISH, SAVE): the command stays in flight."""
        slot = [None]
        if self.reply_on and not self._skip():
            self.replies.append(slot)
        self.inflight += 1
        return slot

    def fill_deferred(self, slot: list, data: bytes) -> None:
        """On the loop: answer a deferred command (see deferred_slot)."""
        slot[0] = data
        self.inflight -= 1
        self.flush()
        if self.backlog and not self.inflight:
            self.resume()

    def publish(self, channel: bytes, message: bytes, sharded: bool) -> None:
        self.broker_inflight += 1
        self.server.broker.submit(("pub", self, self.deferred_slot(), channel, message, sharded))

    def broker_query(self, fn) -> None:
        self.broker_inflight += 1
        self.server.broker.submit(("query", self, self.deferred_slot(), fn, self.proto))

    def push(self, frames: list[bytes]) -> None:
        """Messages from the broker: after any reply still owed, then check the buffer limits."""
        if self.closed:
            return
        data = frames[0] if len(frames) == 1 else b"".join(frames)
        if self.replies:
            self.replies.append([data])
            self.flush()
        else:
            self.transport.write(data)
        self._check_output_limit()

    def _check_output_limit(self) -> None:
        """client-output-buffer-limit pubsub for a subscriber: past it, it is dropped."""
        if self.over_output_limit("pubsub", self.transport.get_write_buffer_size()):
            self.server.broker.submit(("drop", self))
            self.abort_now()

    def over_output_limit(self, kind: str, size: int) -> bool:
        """client-output-buffer-limit <kind>: over the hard limit, or over the soft one for its
        seconds, means the client must go (logged as Redis logs it)."""
        hard, soft, seconds = self.server.config["client-output-buffer-limit"][kind]
        now = time.monotonic()
        over_soft = soft and size > soft
        if over_soft and not self.output_soft_since:
            self.output_soft_since = now
        elif not over_soft:
            self.output_soft_since = 0.0
        if (hard and size > hard) or (over_soft and now - self.output_soft_since >= seconds):
            log.warning("Client id=%d addr=%s scheduled to be closed ASAP for overcoming of "
                        "output buffer limits.", self.id, self.addr)
            return True
        return False

    def abort_now(self) -> None:
        """Drop the connection at once, discarding what it has not read."""
        self.closed = True
        self.server.clients.pop(self.id, None)
        if self.transport is not None:
            self.transport.abort()

    # -- replies -------------------------------------------------------------------------------------

    def flush(self) -> None:
        """Write every filled reply at the head of the FIFO, in one write."""
        replies = self.replies
        if replies and replies[0][0] is not None and not self.closed:
            if len(replies) == 1:
                data = replies.popleft()[0]
            else:
                out = []
                while replies and replies[0][0] is not None:
                    out.append(replies.popleft()[0])
                data = b"".join(out)
            self.transport.write(data)
        if self.closing and not self.inflight and not replies:
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.server.clients.pop(self.id, None)
            if self.transport is not None:
                self.transport.close()

    def close_after_reply(self) -> None:
        self.closing = True

    def suppress_reply(self) -> None:
        """The reply of the LOCAL command now running is not sent (SHUTDOWN, CLIENT REPLY SKIP)."""
        self.skip_this_reply = True

    def reset_state(self) -> None:
        """RESET: the state of a fresh connection, keeping id, address and library info."""
        self.db = 0
        self.proto = 2
        self.name = b""
        self.reply_on = True
        self.skip_next_reply = False
        self.multi = None
        self.multi_error = False
        self.unwatch()
        if self.subscribed:
            for table in self.subscriptions.values():
                table.clear()
            self.subscribed = False
            self.server.broker.submit(("drop", self))
        self.authenticated = not self.server.config["requirepass"]
        self.reader.authenticated = self.authenticated
