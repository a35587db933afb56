"""A shard batch in which one entry fails outside its command handler (a bug) must still answer
every entry: the failed one with an error, the rest normally."""

from __future__ import annotations

import commands  # noqa: F401  (registers the command table)
from actors.shard import ShardActor
from commands.registry import COMMANDS
from keyspace.db import Store


class _Loop:
    def call_soon_threadsafe(self, fn, *args) -> None:
        fn(*args)


class _Conn:
    is_master = False


def test_an_entry_that_breaks_the_batch_is_answered_and_the_rest_still_run():
    shard = ShardActor(0, Store(16), _Loop(), lambda touched: None, 0.01, [])
    conn = _Conn()
    broken, after = [None], [None]
    bad_spec = object()             # no attributes: fails before its handler, as a bug would
    shard.on_receive([
        (bad_spec, [b"GET", b"k"], 0, 2, conn, broken),
        (COMMANDS[b"set"], [b"SET", b"k", b"v"], 0, 2, conn, after),
    ])
    assert broken[0].startswith(b"-ERR internal error")
    assert after[0] == b"+OK\r\n"
    assert shard.store.dbs[0].get(b"k") == b"v"
