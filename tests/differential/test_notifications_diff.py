"""Keyspace notifications against a real redis-server 7.0, event for event.

Both servers get the same `notify-keyspace-events` flags and the same commands; on each, a
subscriber to `__key*__:*` collects what the commands emitted. After each command the commanding
connection publishes a marker on a matching channel, so the events of that command are exactly the
messages before the marker: no waiting, and the lists (channel, payload, order) must be identical.

Keys carry the hash tag {t} so multi-key commands stay on one shard and the shards=4 runs check the
same thing as shards=1; `test_cross_shard_event_order` checks keys on different shards.
"""

from __future__ import annotations

import pytest

from tests.differential.test_pubsub_diff import Conn
from tests.differential.test_strings_diff import Err

pytestmark = [pytest.mark.differential, pytest.mark.timeout(60)]

MARKER = b"__keyevent@0__:__marker__"


class Side:
    """One server: a connection that runs commands and a subscriber to every notification."""

    def __init__(self, port: int, protocol: int) -> None:
        self.cmd = Conn(port, protocol)
        self.sub = Conn(port, protocol)
        self.sub.send("PSUBSCRIBE", "__key*__:*")
        self.sub.frame()

    def events(self, until=None) -> list[tuple[bytes, bytes]]:
        """Messages up to the marker (or, with `until`, up to and including the first message for
        which `until(channel, payload)` holds; no marker is sent then)."""
        if until is None:
            self.cmd.call("PUBLISH", MARKER, "end")
        out = []
        while True:
            value = self.sub.frame()[1]
            channel, payload = value[2], value[3]
            if until is None and channel == MARKER:
                return out
            out.append((channel, payload))
            if until is not None and until(channel, payload):
                return out

    def close(self) -> None:
        self.cmd.close()
        self.sub.close()


class Notifications:
    """Shardis and redis-server side by side; `run` compares replies and the events emitted."""

    def __init__(self, pair) -> None:
        ours, real = pair
        kwargs = ours.connection_pool.connection_kwargs
        protocol = int(kwargs.get("protocol") or 2)
        self.ours = Side(kwargs["port"], protocol)
        self.real = Side(real.connection_pool.connection_kwargs["port"], protocol)
        self.restore: list[tuple] = [("CONFIG", "SET", "notify-keyspace-events", "")]

    def both(self, *args) -> tuple[object, object]:
        return self.ours.cmd.call(*args)[1], self.real.cmd.call(*args)[1]

    def flags(self, flags: str) -> None:
        assert self.both("CONFIG", "SET", "notify-keyspace-events", flags) == ("OK", "OK")

    def run(self, *args, exact: bool = True) -> list[tuple[bytes, bytes]]:
        """Run on both; the replies and the events must match. Replies whose content is random
        (SPOP) or in hash order (SMEMBERS) are compared loosely when `exact` is False."""
        ours_raw, ours_value = self.ours.cmd.call(*args)
        real_raw, real_value = self.real.cmd.call(*args)
        if exact:
            assert ours_raw == real_raw, f"{args!r}: reply shardis {ours_raw!r} != redis {real_raw!r}"
        else:
            assert type(ours_value) is type(real_value), (args, ours_value, real_value)
        ours, real = self.ours.events(), self.real.events()
        assert ours == real, f"{args!r}: events\n  shardis {ours!r}\n  redis   {real!r}"
        return ours

    def script(self, text: str) -> None:
        """One command per line (words split on spaces, '' is the empty string); # comments."""
        for line in text.strip().splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            words = ["" if w == "''" else w for w in line.split()]
            self.run(*words, exact=words[0].upper() not in _LOOSE_REPLIES)

    def close(self) -> None:
        try:
            for args in self.restore:
                self.both(*args)
        finally:
            self.ours.close()
            self.real.close()


_LOOSE_REPLIES = {"SPOP", "SRANDMEMBER", "RANDOMKEY", "HRANDFIELD", "ZRANDMEMBER", "SMEMBERS",
                  "SINTER", "SUNION", "SDIFF", "SSCAN"}


@pytest.fixture
def ks(pair):
    n = Notifications(pair)
    yield n
    n.close()


def _shards(request) -> int:
    return request.node.callspec.params["pair"][0]


# -- one class at a time ------------------------------------------------------------------------------

def test_generic_events(ks):
    ks.flags("KEg")
    ks.script("""
        SET {t}a 1
        SET {t}b 1
        DEL {t}a {t}b {t}nokey
        DEL {t}nokey
        SET {t}a 1
        UNLINK {t}a {t}nokey
        SET {t}a 1
        EXPIRE {t}a 100
        EXPIRE {t}a 100 NX
        EXPIRE {t}a 200 XX
        EXPIRE {t}a 10 GT
        PEXPIRE {t}a 100000
        EXPIREAT {t}a 99999999999
        PEXPIREAT {t}a 99999999999999
        PERSIST {t}a
        PERSIST {t}a
        EXPIRE {t}a 0
        SET {t}a 1
        EXPIRE {t}a -1
        SET {t}a 1
        PEXPIREAT {t}a 1
        SET {t}a 1
        EXPIREAT {t}a 1
        EXPIRE {t}nokey 10
        SET {t}a 1
        RENAME {t}a {t}b
        RENAME {t}b {t}b
        SET {t}a 1 EX 100
        RENAME {t}a {t}b
        RENAMENX {t}b {t}c
        SET {t}a 1
        RENAMENX {t}a {t}c
        COPY {t}c {t}d
        COPY {t}c {t}d
        COPY {t}c {t}d REPLACE
        COPY {t}c {t}d DB 1
        MOVE {t}d 2
        MOVE {t}d 2
        SET {t}g 1 EX 100
        GETEX {t}g EX 100
        GETEX {t}g PERSIST
        GETEX {t}g PERSIST
        GETEX {t}g
        GETEX {t}g PXAT 1
        SET {t}g 1
        GETDEL {t}g
        GETDEL {t}g
        SET {t}s v PX 100000
        SETEX {t}s 100 v
        PSETEX {t}s 100000 v
        SET {t}s v KEEPTTL
    """)


def test_string_events(ks):
    ks.flags("KE$")
    ks.script("""
        SET {t}a 1
        SET {t}a 2
        SET {t}a 3 EX 100
        SET {t}a 4 KEEPTTL
        SET {t}a 5 NX
        SET {t}a 6 XX GET
        SET {t}b 1 NX PX 100000
        SET {t}nx 1 XX
        SET {t}nx 1 XX GET
        SETNX {t}c 1
        SETNX {t}c 1
        SETEX {t}d 100 v
        PSETEX {t}e 100000 v
        GETSET {t}a x
        GETSET {t}new x
        MSET {t}m1 1 {t}m2 2 {t}m1 3
        MSETNX {t}m3 1 {t}m4 2
        MSETNX {t}m3 1 {t}m5 2
        APPEND {t}ap x
        APPEND {t}ap y
        APPEND {t}ap ''
        SETRANGE {t}sr 0 ''
        SETRANGE {t}sr 2 ab
        SETRANGE {t}sr 0 ''
        SETRANGE {t}sr 1 x
        SET {t}empty ''
        SETRANGE {t}empty 0 ''
        SETRANGE {t}empty 0 x
        INCR {t}i
        INCRBY {t}i 3
        DECR {t}i
        DECRBY {t}i 2
        INCRBY {t}i 9223372036854775807
        INCRBYFLOAT {t}i 1.5
        INCRBYFLOAT {t}f 1.5
        INCRBYFLOAT {t}f x
        INCR {t}ap
        GET {t}a
        MGET {t}a {t}nokey
        STRLEN {t}a
        GETRANGE {t}a 0 1
        LCS {t}a {t}ap
        GETDEL {t}a
    """)


def test_list_events(ks):
    ks.flags("KEl")
    ks.script("""
        LPUSH {t}l a b
        RPUSH {t}l c
        LPUSHX {t}l d
        RPUSHX {t}l e
        LPUSHX {t}nol d
        LINSERT {t}l BEFORE a x
        LINSERT {t}l AFTER zz x
        LINSERT {t}nol AFTER zz x
        LSET {t}l 0 y
        LSET {t}nol 0 y
        LTRIM {t}l 0 -1
        LTRIM {t}l 1 -1
        LTRIM {t}nol 1 -1
        LREM {t}l 0 zz
        LREM {t}l 1 x
        LPOP {t}l
        RPOP {t}l 2
        LPOP {t}l 0
        LLEN {t}l
        LRANGE {t}l 0 -1
        LINDEX {t}l 0
        LPOS {t}l a
        LPOP {t}l 5
        LPOP {t}l
        RPUSH {t}l a b c
        LTRIM {t}l 5 10
        RPUSH {t}l a b c
        LREM {t}l 0 a
        LREM {t}l 0 b
        LREM {t}l 0 c
        RPUSH {t}s a b
        LMOVE {t}s {t}d LEFT RIGHT
        LMOVE {t}s {t}d LEFT RIGHT
        LMOVE {t}s {t}d LEFT RIGHT
        RPOPLPUSH {t}d {t}d
        RPOPLPUSH {t}d {t}e
        RPUSH {t}one x
        RPOPLPUSH {t}one {t}one
        LMOVE {t}one {t}one LEFT RIGHT
        LMPOP 2 {t}nol {t}e LEFT
        RPUSH {t}l2 a b c
        LMPOP 2 {t}nol {t}l2 RIGHT COUNT 2
        LMPOP 2 {t}nol {t}l2 RIGHT COUNT 5
        RPUSH {t}b1 a
        BLPOP {t}b1 0
        RPUSH {t}b1 a b
        BRPOP {t}b1 0
        BLMOVE {t}b1 {t}b2 LEFT LEFT 0
        BRPOPLPUSH {t}b2 {t}b2 0
        BLMPOP 0 1 {t}b2 LEFT
        BLPOP {t}nol 0.01
    """)


def test_list_events_of_a_blocked_client_served_by_a_push(ks):
    """The pop of a woken BLPOP/BLMOVE is notified right after the push that served it."""
    ks.flags("KEA")
    for side in (ks.ours, ks.real):
        side.blocked = Conn(side.cmd.sock.getpeername()[1], 2)
        side.blocked.send("BLPOP", "{t}q", "0")
    for side in (ks.ours, ks.real):
        _wait_blocked(side, b"blpop")
    ks.run("RPUSH", "{t}q", "a", "b")
    for side in (ks.ours, ks.real):
        assert side.blocked.frame()[1] == [b"{t}q", b"a"]
        side.blocked.send("BLMOVE", "{t}q2", "{t}q3", "RIGHT", "LEFT", "0")
        _wait_blocked(side, b"blmove")
    ks.run("LPUSH", "{t}q2", "x")
    for side in (ks.ours, ks.real):
        assert side.blocked.frame()[1] == b"x"
        side.blocked.close()


def _wait_blocked(side: Side, command: bytes) -> None:
    """Poll CLIENT LIST until the blocking command has reached the server (its cmd= shows it).

    Redis lists it once it has blocked; Shardis once it was dispatched, and the shard runs it before
    any later push to the same key. (Shardis does not show flags=b yet, so that cannot be used.)
    """
    for _ in range(2000):
        listing = side.cmd.call("CLIENT", "LIST")[1]
        if b"cmd=" + command + b" " in listing:
            return
    raise AssertionError(f"{command!r} never reached the server")


def test_set_events(ks):
    ks.flags("KEs")
    ks.script("""
        SADD {t}s a b
        SADD {t}s a
        SADD {t}s 1 2 3
        SREM {t}s zz
        SREM {t}s a
        SREM {t}s b 1 2 3 zz
        SADD {t}s a b c
        SPOP {t}s 0
        SPOP {t}s
        SPOP {t}s 1
        SPOP {t}s 5
        SPOP {t}s
        SADD {t}s a b c
        SPOP {t}s 3
        SADD {t}s a b c d e f g h
        SPOP {t}s 2
        SPOP {t}s 5
        DEL {t}s
        SADD {t}s a b c
        SMOVE {t}s {t}t a
        SMOVE {t}s {t}t a
        SMOVE {t}s {t}t zz
        SMOVE {t}s {t}s b
        SMOVE {t}s {t}t b
        SMOVE {t}s {t}t c
        SADD {t}t a
        SMOVE {t}t {t}t a
        SMOVE {t}nos {t}t a
        SADD {t}u x
        SINTERSTORE {t}d {t}t {t}u
        SUNIONSTORE {t}d {t}t {t}u
        SUNIONSTORE {t}d {t}t {t}u
        SDIFFSTORE {t}d {t}t {t}t
        SDIFFSTORE {t}d {t}t {t}t
        SINTERSTORE {t}nod {t}nos {t}nos
        SADD {t}d x
        SUNIONSTORE {t}d {t}nos
        SADD {t}u a
        SINTERSTORE {t}d {t}t {t}u
        SDIFFSTORE {t}d {t}t {t}u
        SADD {t}d x
        SINTERSTORE {t}d {t}t {t}nos
        SISMEMBER {t}t a
        SMEMBERS {t}t
        SCARD {t}t
        SRANDMEMBER {t}t
        SINTER {t}t {t}u
        SINTERCARD 2 {t}t {t}u
        SMISMEMBER {t}t a
        SSCAN {t}t 0
    """)


def test_hash_events(ks):
    ks.flags("KEh")
    ks.script("""
        HSET {t}h a 1 b 2
        HSET {t}h a 1
        HMSET {t}h c 3
        HSETNX {t}h a 1
        HSETNX {t}h d 4
        HSETNX {t}h2 d 4
        HDEL {t}h zz
        HDEL {t}h a b
        HDEL {t}h c d zz
        HDEL {t}h c
        HINCRBY {t}h a 1
        HINCRBY {t}h a 1
        HINCRBY {t}h a x
        HINCRBY {t}h a 9223372036854775807
        HINCRBYFLOAT {t}h b 1.5
        HINCRBYFLOAT {t}h3 b 1.5
        HINCRBYFLOAT {t}h3 b x
        HDEL {t}h a b
        HGET {t}h2 d
        HMGET {t}h2 d
        HEXISTS {t}h2 d
        HLEN {t}h2
        HSTRLEN {t}h2 d
        HKEYS {t}h2
        HVALS {t}h2
        HGETALL {t}h2
        HRANDFIELD {t}h2
        HSCAN {t}h2 0
    """)


def test_new_key_events(ks):
    """'n' is not part of A: it has to be asked for. Every key creation emits `new`, overwrites not."""
    ks.flags("KEn")
    ks.script("""
        SET {t}a 1
        SET {t}a 2
        SETNX {t}a 1
        SET {t}b 1 GET
        MSET {t}c 1 {t}a 3 {t}c 2
        MSETNX {t}d 1 {t}e 1
        GETSET {t}f 1
        APPEND {t}g x
        SETRANGE {t}h 1 x
        SETRANGE {t}h2 1 ''
        INCR {t}i
        INCRBYFLOAT {t}j 1
        LPUSH {t}l a
        LPUSH {t}l b
        RPUSHX {t}nol a
        LMOVE {t}l {t}l2 LEFT LEFT
        SADD {t}s a
        SADD {t}s b
        SMOVE {t}s {t}s2 a
        SUNIONSTORE {t}s3 {t}s
        SUNIONSTORE {t}s3 {t}s
        HSET {t}hh a 1
        HSETNX {t}hh2 a 1
        HINCRBY {t}hh3 a 1
        HINCRBYFLOAT {t}hh4 a 1
        RENAME {t}a {t}ra
        SET {t}a 1
        RENAME {t}a {t}ra
        COPY {t}ra {t}ca
        COPY {t}ra {t}ca REPLACE
        MOVE {t}ca 1
        DEL {t}ra
    """)


def test_expired_events_lazy(ks):
    """With active expiry off, a key past its deadline expires when a command touches it."""
    ks.restore.append(("DEBUG", "SET-ACTIVE-EXPIRE", "1"))
    assert ks.both("DEBUG", "SET-ACTIVE-EXPIRE", "0") == ("OK", "OK")
    ks.flags("KEx")
    ks.script("""
        SET {t}a 1 PXAT 1
        GET {t}a
        GET {t}a
        SET {t}b 1 PXAT 1
        EXISTS {t}b
        SET {t}c 1 PXAT 1
        TTL {t}c
        SET {t}d 1 PXAT 1
        SET {t}d 2
        RPUSH {t}l a
        PEXPIREAT {t}l 99999999999999
        SET {t}e 1 PXAT 1
        DEL {t}e
        SET {t}f 1 PXAT 1
        RPUSH {t}f a
    """)


def test_expired_events_all_classes(ks):
    """The same lazy expiries with every class on: `expired` comes before the command's own events."""
    ks.restore.append(("DEBUG", "SET-ACTIVE-EXPIRE", "1"))
    assert ks.both("DEBUG", "SET-ACTIVE-EXPIRE", "0") == ("OK", "OK")
    ks.flags("KEAn")
    ks.script("""
        SET {t}d 1 PXAT 1
        SET {t}d 2
        SET {t}f 1 PXAT 1
        RPUSH {t}f a
        SET {t}g 1 PXAT 1
        SADD {t}g a
        SET {t}h 1 PXAT 1
        HSET {t}h a 1
        SET {t}i 1 PXAT 1
        INCR {t}i
        SET {t}j 1 PXAT 1
        APPEND {t}j x
        SET {t}k 1 PXAT 1
        SET {t}k2 1
        RENAME {t}k2 {t}k
    """)


def test_expired_event_from_active_expiry(ks):
    """Active expiry deletes the key by itself: wait for its `expired` event, no marker needed."""
    ks.flags("KEA")
    for side in (ks.ours, ks.real):
        side.cmd.call("SET", "{t}k", "v", "PX", "1")

    def done(channel: bytes, payload: bytes) -> bool:
        return channel == b"__keyevent@0__:expired"

    ours, real = ks.ours.events(until=done), ks.real.events(until=done)
    assert ours == real


def test_keymiss_events(ks):
    ks.flags("KEm")
    ks.script("""
        GET {t}nokey
        SET {t}a 1
        GET {t}a
        MGET {t}a {t}nokey
        LRANGE {t}nol 0 -1
        SMEMBERS {t}nos
        HGET {t}noh a
        GETDEL {t}nokey
        EXISTS {t}nokey {t}a
        TYPE {t}nokey
        TTL {t}nokey
        TOUCH {t}nokey
        LCS {t}nokey {t}a
        COPY {t}nokey {t}b
        OBJECT ENCODING {t}nokey
        EXPIRE {t}nokey 10
        SET {t}nokey 1 GET
        SETBIT {t}nobits 1 1
        ZSCORE {t}noz a
    """)


READ_LOOKUPS = [
    ("GET", "{t}k"), ("MGET", "{t}k", "{t}nokey", "{t}l"), ("EXISTS", "{t}k", "{t}nokey"),
    ("TYPE", "{t}nokey"), ("TYPE", "{t}l"), ("TTL", "{t}nokey"), ("PTTL", "{t}k"),
    ("EXPIRETIME", "{t}nokey"), ("TOUCH", "{t}k", "{t}nokey"), ("LCS", "{t}k", "{t}nokey"),
    ("COPY", "{t}nokey", "{t}x"), ("COPY", "{t}k", "{t}k2"), ("STRLEN", "{t}nokey"),
    ("LRANGE", "{t}l", "0", "-1"), ("RENAME", "{t}k2", "{t}k3"), ("EXPIRE", "{t}nokey", "1"),
    ("PERSIST", "{t}nokey"), ("GETSET", "{t}nokey2", "v"), ("OBJECT", "ENCODING", "{t}k"),
    ("OBJECT", "ENCODING", "{t}nokey"), ("OBJECT", "REFCOUNT", "{t}nokey"),
    ("OBJECT", "IDLETIME", "{t}l"),
]


def test_read_lookups_count_hits_and_misses(ks):
    """A miss counted in INFO is a lookup that emits `keymiss` in Redis: both must agree."""
    ks.run("SET", "{t}k", "v")
    ks.run("RPUSH", "{t}l", "a")
    for args in READ_LOOKUPS:
        ks.both("CONFIG", "RESETSTAT")
        ks.run(*args)
        ours, real = (_hits_and_misses(info) for info in ks.both("INFO", "stats"))
        assert ours == real, (args, ours, real)


def _hits_and_misses(info: bytes) -> list[bytes]:
    return [line for line in info.split(b"\r\n")
            if line.startswith((b"keyspace_hits:", b"keyspace_misses:"))]


@pytest.mark.xfail(strict=True, reason="Shardis has no maxmemory eviction, so no `evicted` events")
def test_evicted_events(ks):
    ks.flags("KEe")
    ks.restore += [("CONFIG", "SET", "maxmemory", "0"),
                   ("CONFIG", "SET", "maxmemory-policy", "noeviction")]
    ks.run("SET", "{t}a", "1")
    ks.run("SET", "{t}b", "1")
    ks.both("CONFIG", "SET", "maxmemory-policy", "allkeys-random")
    ks.both("CONFIG", "SET", "maxmemory", "1")
    ks.ours.cmd.call("SET", "{t}c", "1")
    ks.real.cmd.call("SET", "{t}c", "1")
    ours, real = sorted(ks.ours.events()), sorted(ks.real.events())
    assert ours == real


def test_zset_events(ks):
    ks.flags("KEzgn")
    ks.script("""
        ZADD {t}z 1 a 2 b
        ZADD {t}z 1 a
        ZADD {t}z 5 a
        ZADD {t}z NX 1 a
        ZADD {t}z XX 1 nn
        ZADD {t}z INCR 1 a
        ZADD {t}z2 XX 1 a
        ZADD {t}z3 GT 1 a
        ZINCRBY {t}z 1 b
        ZINCRBY {t}z4 1 b
        ZREM {t}z zz
        ZREM {t}z a
        ZREM {t}z b
        ZADD {t}z 1 a 2 b 3 c 4 d
        ZREMRANGEBYSCORE {t}z 10 20
        ZREMRANGEBYSCORE {t}z 1 1
        ZREMRANGEBYRANK {t}z 0 0
        ZREMRANGEBYLEX {t}z - +
        ZADD {t}z 1 a 2 b 3 c 4 d
        ZPOPMIN {t}z
        ZPOPMAX {t}z 2
        ZPOPMIN {t}z 0
        ZPOPMIN {t}z 5
        ZADD {t}z 1 a 2 b
        BZPOPMIN {t}z 0
        BZPOPMAX {t}z 0
        ZADD {t}z 1 a 2 b
        ZMPOP 1 {t}z MIN COUNT 1
        BZMPOP 0 1 {t}z MAX COUNT 5
        ZADD {t}z 1 a 2 b
        ZADD {t}y 1 a 3 c
        ZUNIONSTORE {t}d 2 {t}z {t}y
        ZUNIONSTORE {t}d 2 {t}z {t}y
        ZINTERSTORE {t}d 2 {t}z {t}y
        ZDIFFSTORE {t}d 2 {t}z {t}z
        ZDIFFSTORE {t}d 2 {t}z {t}z
        ZDIFFSTORE {t}d 2 {t}z {t}y
        ZRANGESTORE {t}d2 {t}z 0 -1
        ZRANGESTORE {t}d2 {t}z 5 6
        ZINTERSTORE {t}d 2 {t}z {t}nokey
    """)


def test_bitmap_events(ks):
    ks.flags("KE$gn")
    ks.script("""
        SETBIT {t}b 3 1
        SETBIT {t}b 3 1
        SETBIT {t}b 3 0
        SETBIT {t}b 100 0
        SETBIT {t}b2 100 0
        BITOP AND {t}d {t}b {t}b2
        BITOP AND {t}d {t}b {t}b2
        BITOP OR {t}d {t}nob {t}nob
        BITOP OR {t}d {t}nob {t}nob
        BITOP NOT {t}d {t}b
        BITFIELD {t}bf SET u8 0 1
        BITFIELD {t}bf GET u8 0
        BITFIELD {t}bf INCRBY u8 0 1
        BITFIELD {t}bf OVERFLOW FAIL INCRBY u8 0 300
        BITFIELD {t}bf3 OVERFLOW FAIL INCRBY u8 0 300
        BITFIELD {t}bf SET u8 0 2
        BITFIELD {t}bf SET u8 0 2
        BITFIELD {t}bf INCRBY u8 0 0
        BITFIELD {t}bf4 SET u8 0 0
        BITFIELD {t}bf5 GET u8 0
        BITFIELD_RO {t}bf GET u8 0
        GETBIT {t}b 3
        BITCOUNT {t}b
        BITPOS {t}b 1
    """)


def test_sort_store_events(ks):
    ks.flags("KEAn")
    ks.script("""
        RPUSH {t}l 3 1 2
        SORT {t}l STORE {t}d
        SORT {t}l STORE {t}d
        SORT {t}nol STORE {t}d
        SORT {t}nol STORE {t}d
        SORT {t}l STORE {t}d2
        SORT {t}l STORE {t}l
        SORT {t}l ALPHA STORE {t}l
        SORT {t}l
    """)


# -- flags, channels, databases -------------------------------------------------------------------------

def test_keyspace_only_keyevent_only_and_neither(ks):
    sequence = """
        SET {t}a 1
        RPUSH {t}l x
        DEL {t}a {t}l
    """
    for flags in ("KA", "EA", "A", "K", "E", "Kl", "E$", "Kgl", "g$lshzxetd", "KEA"):
        ks.flags(flags)
        ks.script(sequence)


def test_config_get_shows_the_flags(ks):
    for flags in ("KEA", "AKE", "Elg", "K$", "KEAnm", "KEn", "g$lshzxetdKE", "", "Kx", "Et"):
        assert ks.both("CONFIG", "SET", "notify-keyspace-events", flags) == ("OK", "OK")
        ours, real = ks.both("CONFIG", "GET", "notify-keyspace-events")
        assert ours == real, (flags, ours, real)
    ours, real = ks.both("CONFIG", "SET", "notify-keyspace-events", "KEQ")
    assert isinstance(ours, Err) and isinstance(real, Err)


def test_events_name_the_database(ks):
    ks.flags("KEA")
    for side in (ks.ours, ks.real):
        assert side.cmd.call("SELECT", "3")[1] == "OK"
    ks.script("""
        SET {t}a 1
        RPUSH {t}l a
        MOVE {t}a 5
        COPY {t}l {t}l2 DB 0
        EXPIRE {t}l 0
    """)


def test_events_of_a_transaction_in_order(ks):
    ks.flags("KEAn")
    for side in (ks.ours, ks.real):
        side.cmd.call("MULTI")
        for args in (("SET", "{t}a", "1"), ("LPUSH", "{t}l", "x"), ("LPOP", "{t}l"),
                     ("HSET", "{t}h", "f", "v"), ("RENAME", "{t}a", "{t}b"), ("DEL", "{t}b", "{t}h")):
            assert side.cmd.call(*args)[1] == "QUEUED"
    ks.run("EXEC")


def test_every_class_together(ks):
    ks.flags("KEA")
    ks.script("""
        SET {t}s 1 EX 100
        INCR {t}s
        RPUSH {t}l a b
        LPOP {t}l 2
        SADD {t}set a
        SREM {t}set a
        HSET {t}h a 1
        HDEL {t}h a
        RENAME {t}s {t}s2
        PERSIST {t}s2
        FLUSHDB
        SET {t}x 1
        SWAPDB 0 1
        FLUSHALL
    """)


def test_cross_shard_event_order(ks, request):
    """Keys on different shards: Redis's order (new dst, rename_from, rename_to ...) still holds."""
    ks.flags("KEAn")
    ks.script("""
        MSET a 1 b 2 c 3 d 4 e 5
        DEL e d c b a
        SET a 1
        RENAME a b
        RPUSH l x y
        LMOVE l m LEFT RIGHT
        LMOVE l m LEFT RIGHT
        SADD s1 a
        SMOVE s1 s2 a
        SUNIONSTORE s3 s2
        COPY s3 s4
    """)
