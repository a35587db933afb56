"""The keyspace side of WATCH and of the clock (keyspace/db.py): when a key counts as expired,
the expiry clock that stands still during a transaction, the stale-at-WATCH rules of Redis 7.0
(signalModifiedKey, touchAllWatchedKeysInDb) and the exemption of key arguments a write command
did not modify. The differential tests check the same rules end to end against redis-server."""

from __future__ import annotations

import pytest

import commands  # noqa: F401 - registers every command
from actors.transaction import WatchToken, unwatch_all, watch_key
from commands.registry import lookup
from keyspace.db import Store, frozen_expiry, touch_written


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock():
    return Clock(1_000_000)


@pytest.fixture
def store(clock):
    return Store(2, clock=clock)


def watched(store: Store, key: bytes, db_index: int = 0) -> WatchToken:
    token = WatchToken()
    watch_key(store, db_index, key, token)
    return token


def touch(store: Store, *keys: bytes) -> None:
    """The touch after a write command naming `keys` (actors/execution.py's after_write)."""
    argv = [b"CMD", *keys]
    touch_written(store, 0, argv, range(1, len(argv)), lambda key: store)


def test_a_key_expires_once_the_clock_is_past_its_deadline(store, clock):
    db = store.dbs[0]
    db.set(b"k", b"v")
    db.expire_at(b"k", clock.now)
    assert not db.is_expired(b"k") and db.get(b"k") == b"v"     # Redis: now > when
    assert list(db.keys()) == [b"k"]
    assert db.active_expire(float("inf")) == 0
    clock.now += 1
    assert db.is_expired(b"k") and b"k" in db.data              # is_expired deletes nothing
    assert db.get(b"k") is None and b"k" not in db.data


def test_expiry_stands_still_inside_frozen_expiry_but_the_command_clock_does_not(store, clock):
    db = store.dbs[0]
    db.set(b"k", b"v")
    db.expire_at(b"k", clock.now + 1)
    with frozen_expiry([store]):
        clock.now += 10
        assert store.clock() == clock.now                       # deadlines, TTLs: live time
        assert db.get(b"k") == b"v" and db.active_expire(float("inf")) == 0
        with frozen_expiry([store]):                            # nested: the outer time wins
            assert db.get(b"k") == b"v"
        assert db.get(b"k") == b"v"
    assert db.get(b"k") is None


def test_a_key_watched_while_stale_is_not_modified_by_its_deletion(store, clock):
    db = store.dbs[0]
    db.set(b"k", b"v")
    db.expire_at(b"k", clock.now - 1)
    token = watched(store, b"k")
    assert token.stale == {(0, b"k")}
    assert db.get(b"k") is None                                 # the lazy deletion signals it
    assert not token.dirty and not token.stale                  # ... now it counts as missing
    db.set(b"k", b"new")
    touch(store, b"k")
    assert token.dirty


def test_a_key_watched_while_stale_and_overwritten_is_modified(store, clock):
    db = store.dbs[0]
    db.set(b"k", b"v")
    db.expire_at(b"k", clock.now - 1)
    token = watched(store, b"k")
    db.set(b"k", b"new")
    touch(store, b"k")
    assert token.dirty


def test_watching_again_keeps_the_first_view_and_unwatch_forgets_it(store, clock):
    db = store.dbs[0]
    token = watched(store, b"k")
    db.set(b"k", b"v")
    db.expire_at(b"k", clock.now - 1)
    watch_key(store, 0, b"k", token)
    assert not token.stale
    unwatch_all(token)
    assert not token.keys and not store.watched


def test_flush_of_a_stale_watched_key_is_no_change(store, clock):
    db = store.dbs[0]
    db.set(b"stale", b"v")
    db.expire_at(b"stale", clock.now - 1)
    db.set(b"live", b"v")
    stale, live, missing = watched(store, b"stale"), watched(store, b"live"), watched(store, b"x")
    db.flush()
    assert (stale.dirty, live.dirty, missing.dirty) == (False, True, False)
    assert not stale.stale


@pytest.mark.parametrize("here, there, dirty, stale_after", [
    (None, "stale", False, True),      # missing, replaced by a stale key: now watched as stale
    ("stale", "stale", False, True),   # stale it was, stale it stays
    ("stale", None, False, False),     # the stale key is gone
    ("stale", "live", True, True),
    ("live", "stale", True, False),
    (None, "live", True, False),
    ("live", None, True, False),
    (None, None, False, False),
])
def test_swapdb_rules_for_a_watched_key(store, clock, here, there, dirty, stale_after):
    for index, state in ((0, here), (1, there)):
        if state is not None:
            store.dbs[index].set(b"k", b"v")
            if state == "stale":
                store.dbs[index].expire_at(b"k", clock.now - 1)
    token = watched(store, b"k")
    store.swap(0, 1)
    assert token.dirty is dirty
    assert ((0, b"k") in token.stale) is stale_after


def test_key_arguments_a_command_did_not_modify_are_skipped_once_each(store):
    db = store.dbs[0]
    token = watched(store, b"k")
    store.dirty += 1                    # the command counted its change...
    db.unmodified(b"k")
    db.unmodified(b"k")                 # ... and names k twice (COPY k k DB 1)
    touch(store, b"k", b"k")
    assert not token.dirty


def test_a_key_named_more_often_than_exempted_is_signalled(store):
    db = store.dbs[0]
    token = watched(store, b"k")
    store.dirty += 1
    db.unmodified(b"k")
    touch(store, b"k", b"k")            # BLPOP k k 0 exempting k once: the other one is real
    assert token.dirty


def test_the_exemption_is_void_once_counted_before_a_later_change(store):
    db = store.dbs[0]
    token = watched(store, b"k")
    store.dirty += 1
    db.unmodified(b"k")
    store.dirty += 1                    # the next write command
    touch(store, b"k")
    assert token.dirty


def test_the_exemption_ends_with_the_touch_after_its_command(store):
    """An exemption left unused (the key was a read-only argument of that command: no touch)
    must not spare the key from the next command's touch, whoever counts that one's change."""
    db = store.dbs[0]
    token = watched(store, b"k")
    store.dirty += 1
    db.unmodified(b"k")
    touch(store, b"j")                  # the command touched only its destination
    touch(store, b"k")                  # no change counted in between (another shard counted it)
    assert token.dirty


def test_unmodified_except_exempts_every_other_key_argument(store):
    db = store.dbs[0]
    tokens = {key: watched(store, key) for key in (b"a", b"b", b"c")}
    store.dirty += 1
    db.unmodified_except([b"a", b"b", b"c", b"a"], b"b")   # LMPOP 4 a b c a LEFT popped b
    touch(store, b"a", b"b", b"c", b"a")
    assert {key: token.dirty for key, token in tokens.items()} == {b"a": False, b"b": True,
                                                                  b"c": False}


def test_signal_modified_is_never_skipped_and_reaches_other_dbs(store):
    token_here, token_there = watched(store, b"k"), watched(store, b"k", db_index=1)
    store.dirty += 1
    store.dbs[0].unmodified(b"k")
    store.dbs[1].signal_modified(b"k")
    assert (token_here.dirty, token_there.dirty) == (False, True)
    store.dbs[0].signal_modified(b"k")
    assert token_here.dirty


@pytest.mark.parametrize("argv, written", [
    ([b"SET", b"k", b"v"], [1]),
    ([b"GET", b"k"], []),
    ([b"MSET", b"a", b"1", b"b", b"2"], [1, 3]),
    ([b"SMOVE", b"s", b"d", b"m"], [1, 2]),
    ([b"SINTERSTORE", b"d", b"a", b"b"], [1]),            # the sources are read-only key specs
    ([b"ZUNIONSTORE", b"d", b"2", b"a", b"b"], [1]),
    ([b"ZRANGESTORE", b"d", b"a", b"0", b"-1"], [1]),
    ([b"BITOP", b"AND", b"d", b"a", b"b"], [2]),
    ([b"COPY", b"a", b"d"], [2]),
    ([b"SORT", b"k", b"STORE", b"d"], [3]),
    ([b"SORT", b"k", b"STORE", b"k"], [3]),
    ([b"SORT", b"k", b"LIMIT", b"0", b"1"], []),
    ([b"LMPOP", b"2", b"a", b"b", b"LEFT"], [2, 3]),      # the handler exempts what it did not pop
    ([b"EVAL", b"return 1", b"1", b"k"], []),             # the script's own calls touch their keys
])
def test_the_touch_after_a_write_skips_read_only_key_arguments(argv, written):
    assert list(lookup(argv).written_positions(argv)) == written
