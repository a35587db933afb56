"""Replication (ARCHITECTURE §5, REDIS-FACTS §6): the replication actor, the backlog, the replicas
of a master and the link of a replica to its master.

The write stream is one ordered sequence: shards hand their records to the head of the stream (the
persistence actor when the AOF is on, else the replication actor); the persistence actor passes
them on. The replication actor turns records into RESP (with its own SELECTs) and hands the bytes
to the loop, where `Replication.feed` appends them to the backlog, counts `master_repl_offset` and
writes them to every replica. So the stream offset is defined on the loop, in the order the bytes
arrive there, and a `StreamMark` sent down the stream at a barrier tells the loop exactly which
offset a snapshot (full sync) or a client's last write (WAIT) corresponds to.

A replica does not feed its own records to its replicas: like Redis, it proxies the master's
stream byte for byte, so that offsets agree along a chain and after a failover. Its own records
(the master's commands applied through the shards) still reach its AOF.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import secrets
import time
from collections import deque

import hiredis
import pykka

from actors.connection import ConnectionActor
from actors.persistence import StreamMark, encode_records, release_replies
from actors.snapshot import run_in_background, take_snapshot
from commands.args import parse_int, try_int
from commands.lua import function_flush, libraries_code
from keyspace.db import now_ms
from protocol.errors import CommandError

__all__ = ["Replication", "ReplicationActor", "ReplicaLink", "MasterLink", "MasterClient"]

log = logging.getLogger("shardis.replication")

PING = b"*1\r\n$4\r\nPING\r\n"
GETACK = b"*3\r\n$8\r\nREPLCONF\r\n$6\r\nGETACK\r\n$1\r\n*\r\n"
NO_REPLID = "0" * 40


def new_replid() -> str:
    return secrets.token_hex(20)


class ReplicationActor(pykka.ThreadingActor):
    """Encodes the records of the write stream for the replicas, off the shards' threads."""

    use_daemon_thread = True

    @staticmethod
    def _create_actor_inbox():
        return queue.SimpleQueue()

    def __init__(self, loop, feed, deliver) -> None:
        super().__init__()
        self.loop = loop
        self.feed = feed            # loop-side: feed(epoch, data)
        self.deliver = deliver
        self.db_state = [-1]        # the db the replication stream last SELECTed
        self.epoch = 0              # which role period the records belong to (see Replication)

    def on_receive(self, message):
        if type(message) is tuple:
            records = message[0]
            if records:
                self.loop.call_soon_threadsafe(self.feed, self.epoch,
                                               encode_records(records, self.db_state))
            if message[1] is not None or message[2]:
                release_replies([message], self.loop, self.deliver)
        elif type(message) is StreamMark:
            if message.on_actor is not None:
                message.on_actor(self)
            if message.on_loop is not None:
                self.loop.call_soon_threadsafe(message.on_loop)


class Backlog:
    """The last `size` bytes of the stream, for PSYNC continuation (repl-backlog-size)."""

    def __init__(self, size: int, first_offset: int) -> None:
        self.size = size
        self.first = first_offset       # the stream offset of the first byte held
        self.histlen = 0
        self._chunks: deque[bytes] = deque()

    def append(self, data: bytes) -> None:
        self._chunks.append(data)
        self.histlen += len(data)
        excess = self.histlen - self.size
        while excess > 0:
            head = self._chunks[0]
            if len(head) <= excess:
                self._chunks.popleft()
                cut = len(head)
            else:
                self._chunks[0] = head[excess:]
                cut = excess
            self.histlen -= cut
            self.first += cut
            excess -= cut

    def resize(self, size: int) -> None:
        self.size = size
        self.append(b"")

    def holds(self, offset: int) -> bool:
        """Can a replica continue from stream offset `offset` (the next byte it needs)?"""
        return self.first <= offset <= self.first + self.histlen

    def read_from(self, offset: int) -> bytes:
        return b"".join(self._chunks)[offset - self.first:]


class ReplicaLink:
    """A replica as its master sees it: the connection that sent PSYNC/SYNC, and its progress."""

    def __init__(self, conn, listening_port: int, capa: set[str]) -> None:
        self.conn = conn
        self.ip = conn.addr.rsplit(":", 1)[0]
        self.port = listening_port
        self.capa = capa
        self.state = "wait_bgsave"      # wait_bgsave, send_bulk, online
        self.ack_offset = 0
        self.ack_time = time.time()
        self.buffering = False          # between the sync point and the end of the RDB
        self.online_on_ack = False      # diskless RDB sent: stream once the replica ACKs
        self.pending: list[bytes] = []
        self.pending_size = 0

    def go_online(self) -> None:
        """The RDB is out: send what was buffered meanwhile, then stream directly."""
        pending, self.pending, self.pending_size = self.pending, [], 0
        self.online_on_ack = False
        self.buffering = False
        self.state = "online"
        if pending:
            _write_raw(self.conn, b"".join(pending))

    def send(self, data: bytes) -> None:
        if self.state == "online":
            self.conn.transport.write(data)
        elif self.buffering:
            self.pending.append(data)
            self.pending_size += len(data)

    def output_size(self) -> int:
        if self.conn.transport is None:
            return 0
        return self.conn.transport.get_write_buffer_size() + self.pending_size


class _NullTransport:
    """Where the replies of the master client go: a replica never answers its master."""

    def write(self, data) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def get_extra_info(self, name, default=None):
        return default


class MasterClient(ConnectionActor):
    """The pseudo-client that applies the master's stream through the shards, replies dropped."""

    is_master = True

    def __init__(self, server, link) -> None:
        super().__init__(server)
        self.transport = _NullTransport()
        self.authenticated = True
        self.reader.authenticated = True
        self.link = link
        self.addr = f"{link.host}:{link.port}"

    @property
    def kind(self) -> str:
        return "master"

    def close(self) -> None:
        """CLIENT KILL of the master client (or shutdown) drops the link; the replica reconnects
        and asks to continue. Commands already received still run (nothing is lost)."""
        self.link.abort("Connection with master closed by request")

    def apply(self, commands: list) -> None:
        if self.backlog:
            self.backlog.extend(commands)
            self.resume()
        else:
            self._run(commands, 0)
            self.flush()

    @property
    def idle(self) -> bool:
        """Every command received so far has reached a shard (or run): none waits here."""
        return not self.backlog


class TaggedArgv(list):
    """An argv that carries the stream offset before it (REPLCONF GETACK answers with it)."""

    repl_offset = 0


class MasterLink(asyncio.Protocol):
    """A replica's connection to its master: handshake, RDB, then the command stream."""

    def __init__(self, replication, host: str, port: int) -> None:
        self.replication = replication
        self.server = replication.server
        self.host = host
        self.port = port
        self.state = "connect"          # connect, connecting, handshake, sync, connected
        self.transport = None
        self.buffer = bytearray()
        self.phase = ""
        self.expect_replies = 0
        self.bulk_left = 0
        self.eof_mark = b""
        self.rdb = bytearray()
        self.sync_started = 0.0
        self.sync_total = -1
        self.last_io = time.time()
        self.down_since = time.time()
        self.reader = None
        self.client: MasterClient | None = None
        self.held: list = []            # stream commands received while the RDB loads
        self.read_offset = 0            # bytes of whole commands received (slave_read_repl_offset)
        self.applied_offset = 0         # bytes of commands that reached the shards
        self.closed = False

    # -- connecting ------------------------------------------------------------------------------

    def start(self) -> None:
        if self.closed or self.state != "connect":
            return
        self.state = "connecting"
        self.server.loop.create_task(self._connect())

    async def _connect(self) -> None:
        try:
            await self.server.loop.create_connection(lambda: self, self.host, self.port)
        except OSError as exc:
            log.warning("Error condition on socket for SYNC: %s", exc)
            self.state = "connect"

    def connection_made(self, transport) -> None:
        if self.closed:
            transport.close()
            return
        self.transport = transport
        self.state = "handshake"
        self.last_io = time.time()
        log.info("MASTER <-> REPLICA sync started")
        self.phase = "pong"
        transport.write(PING)

    def connection_lost(self, exc) -> None:
        self.transport = None
        if self.state == "connected":
            log.warning("Connection with master lost.")
            self.down_since = time.time()
        if self.client is not None:
            self.replication.cache_master(self)
            self.server.clients.pop(self.client.id, None)
        self.client = None
        self.state = "connect"
        self.buffer.clear()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()
        if self.client is not None:
            self.server.clients.pop(self.client.id, None)
        self.client = None

    def abort(self, why: str) -> None:
        log.warning("%s", why)
        if self.transport is not None:
            self.transport.close()

    # -- reading ---------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self.last_io = time.time()
        if self.phase == "stream":
            self._stream(data)
            return
        self.buffer += data
        while not self.closed and self.transport is not None:
            if self.phase == "bulk":
                if not self._bulk():
                    return
                continue
            if self.phase == "loading":
                return  # the rest waits for the RDB to be loaded (see _loaded)
            if self.phase == "stream":
                if self.buffer:
                    rest = bytes(self.buffer)
                    self.buffer.clear()
                    self._stream(rest)
                return
            end = self.buffer.find(b"\n")
            if end < 0:
                return
            line = bytes(self.buffer[:end]).rstrip(b"\r")
            del self.buffer[:end + 1]
            self._line(line)

    def _line(self, line: bytes) -> None:
        text = line.decode("utf-8", "replace")
        cfg = self.server.config
        if self.phase == "pong":
            if text.startswith("-") and not text.startswith(("-NOAUTH", "-NOPERM",
                                                             "-ERR operation not permitted")):
                self.abort(f"Error reply to PING from master: '{text}'")
                return
            out = []
            self.expect_replies = 0
            if cfg["masterauth"]:
                auth = [b"AUTH"] + ([cfg["masteruser"].encode()] if cfg["masteruser"] else []) + \
                    [cfg["masterauth"].encode()]
                out.append(hiredis.pack_command(tuple(auth)))
                self.expect_replies += 1
                self.phase = "auth"
            else:
                self.phase = "replconf"
            port = cfg["replica-announce-port"] or cfg["port"]
            out.append(hiredis.pack_command((b"REPLCONF", b"listening-port", str(port).encode())))
            if cfg["replica-announce-ip"]:
                out.append(hiredis.pack_command((b"REPLCONF", b"ip-address",
                                                 cfg["replica-announce-ip"].encode())))
                self.expect_replies += 1
            out.append(hiredis.pack_command((b"REPLCONF", b"capa", b"eof", b"capa", b"psync2")))
            self.expect_replies += 2
            self.transport.write(b"".join(out))
        elif self.phase in ("auth", "replconf"):
            if self.phase == "auth":
                if text.startswith("-"):
                    self.abort(f"Unable to AUTH to MASTER: {text}")
                    return
                self.phase = "replconf"
            elif text.startswith("-"):
                log.info("(Non critical) Master does not understand REPLCONF: %s", text)
            self.expect_replies -= 1
            if self.expect_replies == 0:
                replid, offset = self.replication.psync_request()
                log.info("Trying a partial resynchronization (request %s:%s).", replid, offset)
                self.phase = "psync"
                self.transport.write(hiredis.pack_command((b"PSYNC", replid.encode(),
                                                           str(offset).encode())))
        elif self.phase == "psync":
            self._psync_reply(text)
        elif self.phase == "bulk-header":
            if not text:
                return  # a keep-alive newline while the master prepares the RDB
            if text.startswith("-"):
                self.abort(f"MASTER aborted replication with an error: {text[1:]}")
                return
            if not text.startswith("$"):
                self.abort(f"Bad protocol from MASTER, the first byte is not '$' (we received "
                           f"'{text[:32]}'), are you sure the host and port are right?")
                return
            self.rdb = bytearray()
            if text.startswith("$EOF:"):
                self.eof_mark = line[5:]
                self.bulk_left = -1
                self.sync_total = 0
                log.info("MASTER <-> REPLICA sync: receiving streamed RDB from master with EOF "
                         "to disk")
            else:
                self.bulk_left = self.sync_total = int(text[1:])
                log.info("MASTER <-> REPLICA sync: receiving %d bytes from master to disk",
                         self.bulk_left)
            self.phase = "bulk"

    def _psync_reply(self, text: str) -> None:
        replication = self.replication
        if text.startswith("+FULLRESYNC"):
            parts = text.split()
            replid, offset = parts[1], int(parts[2])
            log.info("Full resync from master: %s:%d", replid, offset)
            replication.full_sync_started(replid, offset)
            self.read_offset = self.applied_offset = offset
            self.state = "sync"
            self.sync_started = time.time()
            self.phase = "bulk-header"
        elif text.startswith("+CONTINUE"):
            parts = text.split()
            new_id = parts[1] if len(parts) > 1 else None
            log.info("Successful partial resynchronization with master.")
            replication.continued(new_id)
            self.read_offset = self.applied_offset = replication.offset
            self._start_stream(replication.cached_db)
            log.info("MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization.")
        elif text.startswith(("-NOMASTERLINK", "-LOADING")):
            self.abort(f"Master is currently unable to PSYNC but should be in the future: {text}")
        else:
            self.abort(f"Unexpected reply to PSYNC from master: {text}")

    def _bulk(self) -> bool:
        """Collect the RDB; True once it is complete (the loading has started)."""
        if self.bulk_left >= 0:
            take = min(self.bulk_left, len(self.buffer))
            self.rdb += self.buffer[:take]
            del self.buffer[:take]
            self.bulk_left -= take
            if self.bulk_left:
                return False
        else:
            self.rdb += self.buffer
            self.buffer.clear()
            self.sync_total = len(self.rdb)
            if len(self.rdb) < 40 or self.rdb[-40:] != self.eof_mark:
                return False
            del self.rdb[-40:]
        data = bytes(self.rdb)
        self.rdb = bytearray()
        log.info("MASTER <-> REPLICA sync: Flushing old data")
        self.phase = "loading"
        self.replication.load_rdb(data, self._loaded)
        return True

    def _loaded(self, error, stream_db: int) -> None:
        if error is not None:
            log.error("Failed trying to load the MASTER synchronization DB from socket: %s", error)
            self.abort("Dropping the link to retry the full sync")
            return
        log.info("MASTER <-> REPLICA sync: Finished with success")
        self._start_stream(stream_db)
        if self.buffer:
            rest = bytes(self.buffer)
            self.buffer.clear()
            self._stream(rest)

    def _start_stream(self, db: int) -> None:
        self.client = MasterClient(self.server, self)
        self.client.db = db
        self.server.clients[self.client.id] = self.client     # CLIENT LIST shows it, flags=M
        self.reader = hiredis.Reader(notEnoughData=None)
        self.phase = "stream"
        self.state = "connected"
        self.send_ack()

    def _stream(self, data: bytes) -> None:
        """Apply the master's commands, and proxy their bytes to our own replicas."""
        reader = self.reader
        reader.feed(data)
        commands = []
        raw = []
        pack = hiredis.pack_command
        start = self.read_offset
        while True:
            try:
                argv = reader.gets()
            except hiredis.ProtocolError as exc:
                self.abort(f"Protocol error from master: {exc}")
                return
            if argv is None:
                break
            if type(argv) is not list or not argv:
                continue  # a bare newline or a stray reply: Redis ignores it too
            # A master sends canonical multibulk, so re-encoding gives the bytes (and the offset).
            encoded = pack(tuple(argv))
            raw.append(encoded)
            if argv[0].lower() == b"replconf":
                argv = TaggedArgv(argv)
                argv.repl_offset = self.read_offset
            self.read_offset += len(encoded)
            commands.append(argv)
        if not commands:
            return
        self.replication.proxy(b"".join(raw), start)
        if self.client is not None:
            self.client.apply(commands)
            if self.client.idle:
                self.applied_offset = self.read_offset

    # -- acknowledging ---------------------------------------------------------------------------

    def send_ack(self, offset: int | None = None) -> None:
        if self.transport is None or self.state != "connected":
            return
        if offset is None:
            if self.client is not None and self.client.idle:
                self.applied_offset = self.read_offset
            offset = self.applied_offset
        else:
            self.applied_offset = max(self.applied_offset, offset)
        self.transport.write(hiredis.pack_command((b"REPLCONF", b"ACK", str(offset).encode())))


class Replication:
    """The loop-side replication state of the server: role, ids, offset, backlog, replicas, WAITs."""

    def __init__(self, server) -> None:
        self.server = server
        self.role = "master"
        self.replid = new_replid()
        self.replid2 = NO_REPLID
        self.second_offset = -1
        self.offset = 0                 # master_repl_offset: every byte fed to the stream
        self.backlog: Backlog | None = None
        self.replicas: list[ReplicaLink] = []
        self.master: MasterLink | None = None
        self.master_host = ""
        self.master_port = 0
        self.cached_db = 0
        self.cached: tuple[str, int] | None = None   # (replid, offset) to ask PSYNC to continue
        self.streaming = False          # shards' records flow to the replication actor
        self.epoch = 0                  # records of the actor are fed only in the live epoch
        self.live_epoch: int | None = 0
        self.waits: list = []
        self._getack_scheduled = False
        self._ping_countdown = 0
        self.good_replicas = 0
        self.sync_full = self.sync_partial_ok = self.sync_partial_err = 0   # INFO stats
        self.actor_ref = ReplicationActor.start(server.loop, self.feed, server.deliver)
        self._timer = server.loop.call_later(1.0, self._cron)

    # -- the stream ------------------------------------------------------------------------------

    def route_stream(self) -> None:
        """Point the shards at the head of the stream; call with every shard parked.

        The head is the persistence actor when the AOF is on (it forwards to us while we stream),
        else the replication actor while replicas may be fed, else nothing (no records at all).
        """
        server = self.server
        durability = server.durability
        if durability.actor is not None:
            durability.actor.downstream = self.actor_ref if self.streaming else None
            head = durability.actor_ref
        else:
            head = self.actor_ref if self.streaming else None
        always = durability.actor is not None and server.config["appendfsync"] == "always"
        for actor in server.shard_actors:
            actor.persistence = head
            actor.hold_replies = always
        for store in server.stores:
            if head is None:
                store.records = None
            elif store.records is None:
                store.records = []

    def head_ref(self):
        durability = self.server.durability
        if durability.actor_ref is not None:
            return durability.actor_ref
        return self.actor_ref if self.streaming else None

    def mark(self, on_loop, on_actor=None) -> None:
        """Run `on_loop` once every record produced so far has been fed (at once if none flow)."""
        head = self.head_ref()
        if head is None:
            self.server.loop.call_soon(on_loop)
        else:
            head.tell(StreamMark(on_actor, on_loop))

    def feed(self, epoch: int, data: bytes) -> None:
        """Records of the replication actor, on the loop: this is where offsets are assigned."""
        if epoch == self.live_epoch and self.role == "master":
            self._append(data)

    def proxy(self, data: bytes, start_offset: int) -> None:
        """A replica passes its master's stream on unchanged (offsets stay the master's)."""
        if start_offset != self.offset:
            log.warning("Replication stream offset mismatch: %d != %d", start_offset, self.offset)
            self.offset = start_offset
            if self.backlog is not None:
                self.backlog = Backlog(self.backlog.size, start_offset + 1)
        self._append(data)

    def _append(self, data: bytes) -> None:
        if self.backlog is None:
            return  # no replica ever: Redis counts no offset either
        self.offset += len(data)
        self.backlog.append(data)
        for link in self.replicas:
            link.send(data)
        if self.replicas:
            self._check_output_limits()

    def backlog_memory(self) -> int:
        return self.backlog.histlen if self.backlog is not None else 0

    def _create_backlog(self) -> None:
        self.backlog = Backlog(self.server.config["repl-backlog-size"], self.offset + 1)

    # -- master side -------------------------------------------------------------------------------

    def sync(self, conn, argv: list[bytes]) -> None:
        """PSYNC replid offset / SYNC from a connection: it becomes a replica."""
        legacy = argv[0].lower() == b"sync"
        if self.role == "slave" and (self.master is None or self.master.state != "connected"):
            raise CommandError("NOMASTERLINK Can't SYNC while not connected with my master")
        listening_port = conn.repl_listening_port
        capa = conn.repl_capa
        link = ReplicaLink(conn, listening_port, capa)
        log.info("Replica %s:%d asks for synchronization", link.ip, listening_port)
        conn.suppress_reply()
        conn.reply_on = False
        conn.replica_link = link
        if not legacy:
            replid = argv[1].decode("utf-8", "replace")
            try:
                offset = int(argv[2])
            except ValueError:
                offset = -1
            if self._can_continue(replid, offset):
                ours = self.replid
                head = b"+CONTINUE %s\r\n" % ours.encode() if "psync2" in capa else b"+CONTINUE\r\n"
                data = self.backlog.read_from(offset)
                _write_raw(conn, head + data)
                link.state = "online"
                link.ack_time = time.time()
                self.replicas.append(link)
                self.sync_partial_ok += 1
                log.info("Partial resynchronization request from %s:%d accepted. Sending %d bytes "
                         "of backlog starting from offset %d.", link.ip, listening_port,
                         len(data), offset)
                return
            if replid != "?":
                self.sync_partial_err += 1
                log.info("Partial resynchronization not accepted: Replication ID mismatch or "
                         "offset out of range (Replica asked for '%s', my replication IDs are "
                         "'%s' and '%s')", replid, self.replid, self.replid2)
            else:
                log.info("Full resync requested by replica %s:%d", link.ip, listening_port)
        if self.backlog is None:
            if not self.replicas and self.role == "master":
                self.replid = new_replid()
                self.replid2, self.second_offset = NO_REPLID, -1
            self._create_backlog()
        self.replicas.append(link)
        self.sync_full += 1
        self._full_sync(link, legacy)

    def _can_continue(self, replid: str, offset: int) -> bool:
        if self.backlog is None or offset < 0:
            return False
        if replid != self.replid and not (replid == self.replid2 and offset <= self.second_offset):
            return False
        return self.backlog.holds(offset)

    def _full_sync(self, link: ReplicaLink, legacy: bool) -> None:
        server = self.server

        def start_at(offset: int, snapshot, functions, stream_db: int) -> None:
            if link.conn.closed:
                return
            link.buffering = True
            if not legacy:
                _write_raw(link.conn, b"+FULLRESYNC %s %d\r\n" % (self.replid.encode(), offset))
            log.info("Starting BGSAVE for SYNC with target: replicas sockets")

            def encode():
                from persistence import rdb
                aux = {b"repl-stream-db": b"%d" % stream_db, b"repl-id": self.replid.encode(),
                       b"repl-offset": b"%d" % offset}
                return rdb.dump(snapshot, aux=aux, functions=functions)

            def done(data, error) -> None:
                if link.conn.closed:
                    return
                if error is not None:
                    log.error("Can't produce the RDB for a replica: %s", error)
                    link.conn.close()
                    return
                link.state = "send_bulk"
                link.ack_time = time.time()
                if "eof" in link.capa and server.config["repl-diskless-sync"]:
                    # The diskless form: the length is not announced, a random mark ends it.
                    # A replica finds the mark only at the end of what it read, so the stream
                    # waits for its first ACK (Redis's repl_start_cmd_stream_on_ack).
                    mark = secrets.token_hex(20).encode()
                    _write_raw(link.conn, b"$EOF:" + mark + b"\r\n" + data + mark)
                    link.online_on_ack = True
                    return
                _write_raw(link.conn, b"$%d\r\n" % len(data) + data)
                link.go_online()
                log.info("Synchronization with replica %s:%d succeeded", link.ip, link.port)
            run_in_background("repl-rdb", encode, done, server.loop)

        if self.role == "master":
            def barrier(view) -> None:
                snapshot = take_snapshot(view.parts, now_ms())
                functions = libraries_code()
                if not self.streaming:
                    self.streaming = True
                    self.route_stream()

                def reset(actor) -> None:
                    actor.db_state = [-1]  # the new replica's stream starts with a SELECT
                self.mark(lambda: start_at(self.offset, snapshot, functions, 0), on_actor=reset)
            server.run_global(barrier)
            return

        # A replica serving a sub-replica: the stream is the master's, fed by the master link.
        def when_idle() -> None:
            master = self.master
            if link.conn.closed:
                return
            if master is None or master.client is None:
                link.conn.close()
                return
            if not master.client.idle:
                server.loop.call_later(0.002, when_idle)
                return
            offset, stream_db = self.offset, master.client.db
            link.buffering = True

            def barrier(view) -> None:
                snapshot = take_snapshot(view.parts, now_ms())
                functions = libraries_code()
                server.loop.call_soon_threadsafe(start_at, offset, snapshot, functions, stream_db)
            server.run_global(barrier)
        when_idle()

    def replconf(self, conn, argv: list[bytes]):
        """REPLCONF <option> <value> ...: None means no reply (ACK)."""
        if len(argv) % 2 == 0:
            raise CommandError("ERR syntax error")
        i = 1
        while i < len(argv):
            option = argv[i].lower()
            value = argv[i + 1]
            if option == b"listening-port":
                conn.repl_listening_port = parse_int(value)
            elif option == b"ip-address":
                conn.repl_ip = value.decode("utf-8", "replace")
            elif option == b"capa":
                conn.repl_capa = conn.repl_capa | {value.decode("utf-8", "replace").lower()}
            elif option == b"ack":
                link = conn.replica_link
                if link is not None:
                    offset = try_int(value)
                    if offset is None:
                        return None
                    if offset > link.ack_offset:
                        link.ack_offset = offset
                    link.ack_time = time.time()
                    if link.online_on_ack:
                        link.go_online()
                        log.info("Synchronization with replica %s:%d succeeded", link.ip,
                                 link.port)
                    self._check_waits()
                return None
            elif option == b"getack":
                if conn.is_master and self.master is not None:
                    self.master.send_ack(getattr(argv, "repl_offset", None))
                return None
            elif option in (b"rdb-only", b"rdb-filter-only"):
                pass
            else:
                raise CommandError("ERR Unrecognized REPLCONF option: "
                                     + argv[i].decode("utf-8", "replace"))
            i += 2
        return "OK"

    def replica_gone(self, link: ReplicaLink) -> None:
        if link in self.replicas:
            self.replicas.remove(link)
            log.info("Connection with replica %s:%d lost.", link.ip, link.port)

    def _check_output_limits(self) -> None:
        for link in list(self.replicas):
            if link.conn.over_output_limit("slave", link.output_size()):
                self.replicas.remove(link)
                link.conn.abort_now()

    def disconnect_replicas(self) -> None:
        for link in list(self.replicas):
            link.conn.close()
        self.replicas.clear()

    # -- WAIT ----------------------------------------------------------------------------------------

    def wait(self, conn, numreplicas: int, timeout_ms: int, slot: list) -> None:
        """WAIT: fill `slot` with the count of replicas that acknowledged conn's writes."""
        def at_offset() -> None:
            target = self.offset
            count = self._acked(target)
            if count >= numreplicas or conn.closed:
                conn.fill_deferred(slot, b":%d\r\n" % count)
                return
            entry = [target, numreplicas, conn, slot, None]
            if timeout_ms > 0:
                entry[4] = self.server.loop.call_later(timeout_ms / 1000, self._wait_timeout, entry)
            self.waits.append(entry)
            self._request_acks()
        self.mark(at_offset)

    def _acked(self, target: int) -> int:
        return sum(1 for link in self.replicas
                   if link.state == "online" and link.ack_offset >= target)

    def _request_acks(self) -> None:
        if self._getack_scheduled:
            return
        self._getack_scheduled = True

        def send() -> None:
            self._getack_scheduled = False
            if self.role == "master" and self.replicas:
                self._append(GETACK)
        self.server.loop.call_soon(send)

    def _wait_timeout(self, entry) -> None:
        if entry in self.waits:
            self.waits.remove(entry)
            target, _n, conn, slot, _timer = entry
            conn.fill_deferred(slot, b":%d\r\n" % self._acked(target))

    def _check_waits(self) -> None:
        for entry in list(self.waits):
            target, numreplicas, conn, slot, timer = entry
            count = self._acked(target)
            if count >= numreplicas:
                self.waits.remove(entry)
                if timer is not None:
                    timer.cancel()
                conn.fill_deferred(slot, b":%d\r\n" % count)

    # -- replica side --------------------------------------------------------------------------------

    def replicaof(self, host: str | None, port: int = 0) -> str:
        """REPLICAOF host port | NO ONE; the status reply text."""
        server = self.server
        if host is None:
            if self.role == "master":
                return "OK"
            self._stop_link()
            self._set_role("master")
            self.master_host, self.master_port = "", 0
            server.config.values["replicaof"] = None
            self._promote()
            log.info("MASTER MODE enabled (user request from '%s')", "client")
            return "OK"
        if self.role == "slave" and self.master_host == host and self.master_port == port:
            log.info("REPLICAOF would result into synchronization with the master we are "
                     "already connected with. No operation performed.")
            return "OK Already connected to specified master"
        was_master = self.role == "master"
        self._stop_link()
        if was_master:
            # Our own history, so that the new master can let us continue (PSYNC replid offset+1).
            self.cached_db = 0  # the new master's stream starts with a SELECT anyway
            self.cached = (self.replid, self.offset)
        self._set_role("slave")
        self.live_epoch = None
        self.epoch += 1
        self.master_host, self.master_port = host, port
        server.config.values["replicaof"] = (host, port)
        self.disconnect_replicas()
        self._fail_waits()
        log.info("Connecting to MASTER %s:%d", host, port)
        self.master = MasterLink(self, host, port)
        self.master.start()
        return "OK"

    def _set_role(self, role: str) -> None:
        from actors.server import _RedisStyleFormatter
        self.role = role
        for store in self.server.stores:
            store.hide_expired = role == "slave"
        _RedisStyleFormatter.role = "M" if role == "master" else "S"

    def _stop_link(self) -> None:
        if self.master is not None:
            if self.master.client is not None:
                self.cache_master(self.master)
            self.master.close()
            self.master = None

    def cache_master(self, link: MasterLink) -> None:
        """The link dropped: remember where we are, to ask the master to continue from there."""
        if link.client is not None:
            self.cached_db = link.client.db
        self.cached = (self.replid, self.offset)

    def psync_request(self) -> tuple[str, int]:
        if self.cached is not None and self.backlog is not None:
            return self.cached[0], self.cached[1] + 1
        return "?", -1

    def full_sync_started(self, replid: str, offset: int) -> None:
        self.replid = replid
        self.replid2, self.second_offset = NO_REPLID, -1
        self.offset = offset
        self.cached = None
        self.backlog = Backlog(self.server.config["repl-backlog-size"], offset + 1)
        self.disconnect_replicas()

    def continued(self, new_id: str | None) -> None:
        if new_id and new_id != self.replid:
            self.replid2, self.second_offset = self.replid, self.offset + 1
            self.replid = new_id
            self.disconnect_replicas()  # they must learn the new id
        self.cached = None

    def load_rdb(self, data: bytes, done) -> None:
        """Replace the dataset with the master's RDB (every shard parked; clients get -LOADING)."""
        server = self.server
        server.loading = True
        config = server.config
        stream_db = [0]     # the master's stream continues in this db (chained replicas)

        def barrier(view) -> None:
            from actors.loading import Loader
            error = None
            try:
                for store in view.parts:
                    for db in store.dbs:
                        db.flush()
                function_flush()
                loader = Loader(view, config)
                loader.now = -1  # a replica keeps keys that are expired: the master will DEL them

                def on_aux(name: bytes, value: bytes) -> None:
                    if name == b"repl-stream-db":
                        stream_db[0] = int(value)
                loader.load_rdb_bytes(data, "RDB from master", on_aux=on_aux)
                log.info("MASTER <-> REPLICA sync: Loading DB in memory: %d keys",
                         loader.keys_loaded)
            except Exception as exc:  # noqa: BLE001 - reported and the link retried
                error = exc
            server.loop.call_soon_threadsafe(finish, error)

        def finish(error) -> None:
            server.loading = False
            done(error, stream_db[0])
        server.run_global(barrier)

    def _promote(self) -> None:
        """REPLICAOF NO ONE: a new history (replid2 keeps the old one for PSYNC continuation)."""
        self.replid2, self.second_offset = self.replid, self.offset + 1
        self.replid = new_replid()
        self.cached = None
        if self.backlog is None:
            self._create_backlog()
        self.disconnect_replicas()
        self.epoch += 1
        epoch = self.epoch
        self.live_epoch = None

        def barrier(view) -> None:
            self.streaming = True
            self.route_stream()

            def start(actor) -> None:
                actor.epoch = epoch
                actor.db_state = [-1]
            self.mark(lambda: setattr(self, "live_epoch", epoch), on_actor=start)
        self.server.run_global(barrier)

    def _fail_waits(self) -> None:
        for entry in self.waits:
            if entry[4] is not None:
                entry[4].cancel()
            entry[2].fill_deferred(entry[3], b":0\r\n")
        self.waits.clear()

    # -- checks on commands ----------------------------------------------------------------------------

    @property
    def checks_commands(self) -> bool:
        """Whether the connection must ask `refusal` before running commands (slow path)."""
        return self.role == "slave" or self.server.config["min-replicas-to-write"] > 0

    def refusal(self, spec, conn) -> str | None:
        cfg = self.server.config
        if conn.is_master:
            return None
        if self.role == "slave":
            if (not cfg["replica-serve-stale-data"] and "stale" not in spec.flags
                    and (self.master is None or self.master.state != "connected")):
                return ("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set "
                        "to 'no'.")
            if cfg["replica-read-only"] and "write" in spec.flags:
                return "READONLY You can't write against a read only replica."
            return None
        if cfg["min-replicas-to-write"] > 0 and "write" in spec.flags and \
                self.good_replicas < cfg["min-replicas-to-write"]:
            return "NOREPLICAS Not enough good replicas to write."
        return None

    # -- cron ------------------------------------------------------------------------------------------

    def _cron(self) -> None:
        """Once a second: pings to replicas, ACKs to the master, reconnects, timeouts."""
        cfg = self.server.config
        now = time.time()
        try:
            if self.role == "master" and self.replicas:
                self._ping_countdown -= 1
                if self._ping_countdown <= 0:
                    self._ping_countdown = cfg["repl-ping-replica-period"]
                    self._append(PING)
            for link in list(self.replicas):
                if link.state == "online":
                    if now - link.ack_time > cfg["repl-timeout"]:
                        log.warning("Disconnecting timedout replica (streaming sync): %s:%d",
                                    link.ip, link.port)
                        link.conn.close()
                        self.replica_gone(link)
            lag = cfg["min-replicas-max-lag"]
            self.good_replicas = sum(1 for link in self.replicas if link.state == "online"
                                     and now - link.ack_time <= lag)
            master = self.master
            if master is not None:
                if master.state == "connect":
                    master.start()
                elif master.state == "connected":
                    master.send_ack()
                    if now - master.last_io > cfg["repl-timeout"]:
                        master.abort("MASTER timeout: no data nor PING received...")
        except Exception:  # noqa: BLE001 - the cron must keep running
            log.exception("replication cron failed")
        self._timer = self.server.loop.call_later(1.0, self._cron)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.master is not None:
            self.master.close()
        try:
            self.actor_ref.stop(timeout=10)
        except Exception:  # noqa: BLE001 - shutting down regardless
            log.exception("the replication actor did not stop cleanly")

    # -- INFO and ROLE ---------------------------------------------------------------------------------

    def info_fields(self) -> list[str]:
        cfg = self.server.config
        now = time.time()
        out = [f"role:{self.role}"]
        master = self.master
        if self.role == "slave":
            up = master is not None and master.state == "connected"
            out += [f"master_host:{self.master_host}", f"master_port:{self.master_port}",
                    f"master_link_status:{'up' if up else 'down'}",
                    f"master_last_io_seconds_ago:{int(now - master.last_io) if up else -1}",
                    f"master_sync_in_progress:{int(master is not None and master.state == 'sync')}",
                    f"slave_read_repl_offset:{master.read_offset if master else self.offset}",
                    f"slave_repl_offset:{self._slave_offset()}"]
            if master is not None and master.state == "sync":
                received = len(master.rdb)
                out += [f"master_sync_total_bytes:{master.sync_total}",
                        f"master_sync_read_bytes:{received}",
                        f"master_sync_left_bytes:{max(master.sync_total - received, 0)}",
                        f"master_sync_perc:"
                        f"{100.0 * received / master.sync_total if master.sync_total > 0 else 0:.2f}",
                        f"master_sync_last_io_seconds_ago:{int(now - master.last_io)}"]
            if not up:
                since = int(now - master.down_since) if master is not None else -1
                out.append(f"master_link_down_since_seconds:{since}")
            out += [f"slave_priority:{cfg['replica-priority']}",
                    f"slave_read_only:{int(cfg['replica-read-only'])}",
                    f"replica_announced:{int(cfg['replica-announced'])}"]
        out.append(f"connected_slaves:{len(self.replicas)}")
        if cfg["min-replicas-to-write"] > 0 and cfg["min-replicas-max-lag"] > 0:
            out.append(f"min_slaves_good_slaves:{self.good_replicas}")
        for i, link in enumerate(self.replicas):
            ip = link.conn.repl_ip or link.ip
            out.append(f"slave{i}:ip={ip},port={link.port},state={link.state},"
                       f"offset={link.ack_offset},lag={int(now - link.ack_time)}")
        backlog = self.backlog
        out += ["master_failover_state:no-failover", f"master_replid:{self.replid}",
                f"master_replid2:{self.replid2}", f"master_repl_offset:{self.offset}",
                f"second_repl_offset:{self.second_offset}",
                f"repl_backlog_active:{int(backlog is not None)}",
                f"repl_backlog_size:{cfg['repl-backlog-size']}",
                f"repl_backlog_first_byte_offset:{backlog.first if backlog else 0}",
                f"repl_backlog_histlen:{backlog.histlen if backlog else 0}"]
        return out

    def _slave_offset(self) -> int:
        master = self.master
        if master is None:
            return self.offset
        if master.client is not None and master.client.idle:
            master.applied_offset = master.read_offset
        return master.applied_offset

    def role_reply(self) -> list:
        if self.role == "master":
            return ["master", self.offset,
                    [[link.conn.repl_ip or link.ip, str(link.port),
                      str(link.ack_offset)] for link in self.replicas if link.state == "online"]]
        master = self.master
        state = master.state if master is not None else "none"
        return ["slave", self.master_host, self.master_port, state, self._slave_offset()]


def _write_raw(conn, data: bytes) -> None:
    """Bytes for a replica connection, after any reply it is still owed."""
    if conn.closed:
        return
    if conn.replies:
        conn.replies.append([data])
        conn.flush()
    else:
        conn.transport.write(data)
