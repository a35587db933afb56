"""Running one command: the handler call, reply encoding, error replies and per-command stats.

Used by shards (batches), by the loop (LOCAL commands) and by transactions; kept apart so that
none of them has to import the others.
"""

from __future__ import annotations

import logging
import time
import traceback

from commands.blocking import Block
from keyspace.db import touch_written
from protocol.errors import CommandError
from protocol.replies import DEFERRED, encode, encode_error

__all__ = ["ExecStats", "execute_one", "after_write", "error_reply"]

log = logging.getLogger("shardis.exec")

_OK_BYTES = b"+OK\r\n"


class ExecStats:
    """Per-executor counters, summed by INFO. Only the owning thread writes them."""

    __slots__ = ("commands", "errors", "messages", "entries", "busy")

    def __init__(self) -> None:
        self.commands: dict = {}    # spec -> [calls, usec, failed]
        self.errors: dict = {}      # error prefix -> count
        self.messages = 0
        self.entries = 0
        self.busy = 0.0


def error_reply(exc: Exception, spec, stats: ExecStats) -> bytes:
    """The reply for a handler that raised: Redis's text for a CommandError; for anything else (a
    bug) a logged traceback and a generic error, so the server keeps serving."""
    if isinstance(exc, CommandError):
        message = exc.message
    else:
        log.error("internal error running %s:\n%s", spec.fullname,
                  "".join(traceback.format_exception(exc)))
        message = "ERR internal error"
    prefix = message.split(" ", 1)[0]
    stats.errors[prefix] = stats.errors.get(prefix, 0) + 1
    return encode_error(message)


def execute_one(spec, db, argv, proto, stats: ExecStats) -> bytes:
    """Run one command and return its encoded reply; errors become error replies.

    `db` is a Keyspace (or a sharded view) for KEYS/ALL commands and the connection for LOCAL ones.
    """
    start = time.perf_counter()
    try:
        reply = spec.handler(db, argv)
        failed = False
        if proto is None:  # a LOCAL command may switch the protocol (HELLO): encode for the new one
            proto = db.proto
        if reply is DEFERRED:
            data = None
        elif reply == "OK" and type(reply) is str:
            data = _OK_BYTES
        elif type(reply) is bytes:
            data = b"$%d\r\n%s\r\n" % (len(reply), reply)
        else:
            data = encode(reply, proto)
    except Block:
        raise  # the shard parks the client (actors/blocking.py)
    except Exception as exc:  # noqa: BLE001 - every failure becomes an error reply
        failed = True
        data = error_reply(exc, spec, stats)
    usec = (time.perf_counter() - start) * 1e6
    counters = stats.commands.get(spec)
    if counters is None:
        stats.commands[spec] = [1, usec, int(failed)]
    else:
        counters[0] += 1
        counters[1] += usec
        counters[2] += failed
    return data


def after_write(spec, argv, db_index: int, counters, records: list | None, owner,
                touch: bool) -> None:
    """A write command changed the dataset: append its write records and touch WATCHed keys.

    `counters` is the Store whose `also` list the handler used (db.propagate); `records` receives
    the deterministic records (ARCHITECTURE §4): the handler's rewrites if it made any (wrapped in
    MULTI/EXEC when there are several), else the command as received. With `touch`, WATCHed keys
    the command wrote are marked modified (`touch_written`): never its read-only key arguments
    (SINTERSTORE's sources), nor those its handler declared unmodified; `owner(key)` gives the
    Store that owns a key.
    """
    also = counters.also
    if records is not None:
        if not also:
            if not spec.is_script:  # a script's own argv is never replayed, only its effects
                records.append((db_index, argv))
        elif len(also) == 1:
            records.append(also[0])
        else:
            records.append((also[0][0], [b"MULTI"]))
            records.extend(also)
            records.append((also[-1][0], [b"EXEC"]))
    if also:
        also.clear()
    if not touch:
        return
    written = spec.written_keys
    if type(written) is not tuple:
        written = spec.key_positions(argv) if written is None else written(argv)
    touch_written(counters, db_index, argv, written, owner)
