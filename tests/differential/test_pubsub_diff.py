"""Pub/Sub against a real redis-server 7.0, frame for frame.

Each scenario opens the same connections on Shardis and on redis-server (`Twins`), sends the same
commands and compares the exact bytes of every frame: confirmations with their counts, `message`,
`pmessage` and `smessage` frames (push frames in RESP3), PUBLISH receiver counts, PUBSUB replies
and error texts. Where Redis's order is its hash table's order (UNSUBSCRIBE without arguments,
PUBSUB CHANNELS, several patterns matching one channel) frames are compared as multisets.

Absence of a message is checked without waiting: the publisher then sends a sentinel message on a
channel the subscriber also listens to, and that sentinel must be the subscriber's next frame (one
publisher's messages reach a subscriber in publish order).
"""

from __future__ import annotations

import pytest

from tests.differential.test_strings_diff import Err, Wire, _encode_command, _frame

pytestmark = [pytest.mark.differential, pytest.mark.timeout(60)]


class Conn(Wire):
    """A raw connection that can also read frames it did not ask for (messages)."""

    def send(self, *args) -> None:
        self.sock.sendall(_encode_command(args))

    def frame(self) -> tuple[bytes, object]:
        while True:
            got = _frame(self.buf, 0) if self.buf else None
            if got is not None:
                value, end = got
                raw, self.buf = self.buf[:end], self.buf[end:]
                return raw, value
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk

    def frames(self, n: int) -> list[tuple[bytes, object]]:
        return [self.frame() for _ in range(n)]


class Twin:
    """One connection to each server, driven in lockstep."""

    def __init__(self, ours_port: int, real_port: int, protocol: int) -> None:
        self.protocol = protocol
        self.ours = Conn(ours_port, protocol)
        self.real = Conn(real_port, protocol)

    def send(self, *args) -> None:
        self.ours.send(*args)
        self.real.send(*args)

    def expect(self, n: int = 1, what: str = "") -> list:
        """The next `n` frames of both sides, byte for byte identical; their parsed values."""
        ours = self.ours.frames(n)
        real = self.real.frames(n)
        assert [raw for raw, _ in ours] == [raw for raw, _ in real], (
            f"{what}: shardis {[raw for raw, _ in ours]!r} != redis {[raw for raw, _ in real]!r}")
        return [value for _, value in ours]

    def expect_unordered(self, n: int, what: str = "") -> list:
        """The next `n` frames of both sides as multisets (Redis's order is its dict order)."""
        ours = sorted(raw for raw, _ in self.ours.frames(n))
        real = sorted(raw for raw, _ in self.real.frames(n))
        assert ours == real, f"{what}: shardis {ours!r} != redis {real!r}"
        return ours

    def expect_unsubscribe_all(self, command: str, n: int, left: int = 0) -> list[bytes]:
        """UNSUBSCRIBE-style confirmations without arguments: Redis walks its dict, so the names come
        in hash order while the counts still fall by one per frame. Names compare as sets."""
        names = []
        for side in (self.ours, self.real):
            frames = [value for _, value in side.frames(n)]
            assert [f[0] for f in frames] == [command.lower().encode()] * n, frames
            assert [f[2] for f in frames] == list(range(left + n - 1, left - 1, -1)), frames
            names.append(sorted(f[1] for f in frames))
        assert names[0] == names[1], f"{command}: shardis {names[0]!r} != redis {names[1]!r}"
        return names[0]

    def call(self, *args, frames: int = 1) -> list | object:
        """Send, compare the reply frames; a single frame's value, else the list of values."""
        self.send(*args)
        values = self.expect(frames, repr(args))
        return values[0] if frames == 1 else values

    def close(self) -> None:
        self.ours.close()
        self.real.close()


class Twins:
    """Opens `Twin` connections for a test and closes them all at the end."""

    def __init__(self, pair) -> None:
        ours, real = pair
        kwargs = ours.connection_pool.connection_kwargs
        self.protocol = int(kwargs.get("protocol") or 2)
        self.ours_port = kwargs["port"]
        self.real_port = real.connection_pool.connection_kwargs["port"]
        self.opened: list[Twin] = []

    def open(self, protocol: int | None = None) -> Twin:
        twin = Twin(self.ours_port, self.real_port, protocol or self.protocol)
        self.opened.append(twin)
        return twin

    def open_only(self, protocol: int) -> Twin:
        """For protocol-specific scenarios: run them once, under the matching `pair` parameter."""
        if protocol != self.protocol:
            pytest.skip(f"RESP{protocol} scenario")
        return self.open()

    def close(self) -> None:
        for twin in self.opened:
            twin.close()


@pytest.fixture
def twins(pair):
    t = Twins(pair)
    yield t
    t.close()


SUBSCRIBED_ERROR = ("ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / "
                    "QUIT / RESET are allowed in this context")


def _sentinel(pub: Twin, *subs: Twin, channel: str = "sentinel") -> None:
    """Each of `subs` (listening to `channel`) receives the sentinel next: nothing else was pending."""
    assert pub.call("PUBLISH", channel, "end") == len(subs)
    for sub in subs:
        sub.expect(1, "the sentinel must be the next frame")


# -- confirmations and counts ---------------------------------------------------------------------

def test_subscribe_confirmations_and_counts(twins):
    sub = twins.open()
    sub.call("SUBSCRIBE", "a", "b", "a", frames=3)
    sub.call("SUBSCRIBE", "c", frames=1)
    sub.call("PSUBSCRIBE", "p*", "q?", "p*", frames=3)   # counts include the channels
    sub.call("SSUBSCRIBE", "s1", "s2", "s1", frames=3)   # shard channels count on their own
    sub.call("SUBSCRIBE", "", frames=1)                  # the empty channel name is a channel
    sub.call("PSUBSCRIBE", "", frames=1)
    sub.call("UNSUBSCRIBE", "a", "zz", "a", "", frames=4)
    sub.call("PUNSUBSCRIBE", "q?", "nope", frames=2)
    sub.call("SUNSUBSCRIBE", "s2", "s9", frames=2)
    sub.call("UNSUBSCRIBE", "b", "c", frames=2)
    sub.call("PUNSUBSCRIBE", "p*", "", frames=2)
    sub.call("SUNSUBSCRIBE", "s1", frames=1)


def test_unsubscribe_without_subscriptions(twins):
    sub = twins.open()
    for command in ("UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE"):
        sub.call(command)                     # [unsubscribe, nil, 0]
    sub.call("UNSUBSCRIBE", "never", "seen", frames=2)
    sub.call("GET", "k")                      # never entered subscribed mode


def test_unsubscribe_all_reports_every_name(twins):
    """No argument: one frame per name with a falling count; Redis's frame order is its dict order."""
    sub = twins.open()
    channels = [f"chan:{i}" for i in range(12)]
    patterns = [f"pat:{i}:*" for i in range(7)]
    shards = [f"shard:{i}" for i in range(5)]
    sub.call("SUBSCRIBE", *channels, frames=len(channels))
    sub.call("PSUBSCRIBE", *patterns, frames=len(patterns))
    sub.call("SSUBSCRIBE", *shards, frames=len(shards))
    for command, names, left in (("PUNSUBSCRIBE", patterns, len(channels)),
                                 ("UNSUBSCRIBE", channels, 0), ("SUNSUBSCRIBE", shards, 0)):
        sub.send(command)
        got = sub.expect_unsubscribe_all(command, len(names), left)
        assert got == sorted(n.encode() for n in names)
    sub.call("UNSUBSCRIBE")                   # nothing left: [unsubscribe, nil, 0]
    sub.call("PING")


def test_unsubscribe_all_then_messages_stop(twins):
    sub, pub = twins.open(), twins.open()
    sub.call("SUBSCRIBE", "a", "b", frames=2)
    sub.call("PSUBSCRIBE", "a*", frames=1)
    sub.send("UNSUBSCRIBE")
    sub.expect_unsubscribe_all("UNSUBSCRIBE", 2, left=1)
    assert pub.call("PUBLISH", "a", "x") == 1          # only the pattern is left
    sub.call("SUBSCRIBE", "sentinel")
    sub.expect(1, "pmessage")
    assert pub.call("PUBLISH", "b", "x") == 0
    _sentinel(pub, sub)


# -- messages ---------------------------------------------------------------------------------------

def test_publish_counts_and_message_frames(twins):
    chan, pat, both, shard, pub = (twins.open() for _ in range(5))
    chan.call("SUBSCRIBE", "news", "sentinel", frames=2)
    pat.call("PSUBSCRIBE", "n*", "ne?s", frames=2)
    both.call("SUBSCRIBE", "news", frames=1)
    both.call("PSUBSCRIBE", "*", frames=1)
    shard.call("SSUBSCRIBE", "news", frames=1)
    assert pub.call("PUBLISH", "news", "hello") == 5    # 2 channel + 3 pattern subscriptions
    chan.expect(1, "message")
    pat.expect_unordered(2, "two matching patterns, two pmessages")
    both.expect_unordered(2, "message and pmessage")
    assert pub.call("PUBLISH", "nope", "x") == 2        # n* and *
    pat.expect(1)
    both.expect(1)
    assert pub.call("PUBLISH", "other", b"\x00\r\n\xff") == 1
    both.expect(1, "binary payload")
    assert pub.call("PUBLISH", "", "") == 0             # stringmatchlen: * does not match ""
    assert pub.call("SPUBLISH", "news", "sharded") == 1  # shard channels only
    shard.expect(1, "smessage")
    assert pub.call("SPUBLISH", "nobody", "x") == 0
    assert pub.call("PUBLISH", "news", "x" * 100_000) == 5
    chan.expect(1, "large message")
    pat.expect_unordered(2)
    both.expect_unordered(2)
    _sentinel(pub, chan, both)   # both listens to * as well


def test_shard_channels_do_not_see_publish(twins):
    sub, pub = twins.open(), twins.open()
    sub.call("SSUBSCRIBE", "s", frames=1)
    sub.call("SUBSCRIBE", "sentinel", frames=1)
    assert pub.call("PUBLISH", "s", "plain") == 0      # PUBLISH does not reach shard channels
    assert pub.call("SPUBLISH", "sentinel", "x") == 0  # nor SPUBLISH plain channels
    _sentinel(pub, sub)
    assert pub.call("SPUBLISH", "s", "x") == 1
    sub.expect(1)


def test_messages_keep_publish_order(twins):
    sub, pub = twins.open(), twins.open()
    sub.call("SUBSCRIBE", "c", frames=1)
    sub.call("PSUBSCRIBE", "c*", frames=1)
    for i in range(200):
        pub.send("PUBLISH", "c" if i % 2 == 0 else "cx", str(i))
    assert pub.expect(200, "PUBLISH counts") == [2 if i % 2 == 0 else 1 for i in range(200)]
    # "c" reaches the channel subscription, then the pattern one (Redis's order); "cx" the pattern.
    frames = sub.expect(300, "300 messages in publish order")
    assert [value[-1] for value in frames][:3] == [b"0", b"0", b"1"]


PATTERNS = [
    "h?llo", "h*llo", "h[ae]llo", "h[^e]llo", "h[a-b]llo", "h[b-a]llo", "h\\*llo", "h\\?llo",
    "*", "?", "[", "h[", "\\", "a*b*c", "news.*", "news.[a-z]*", "[!x]", "h[\\]]llo", "*[0-9]",
    "x[^a-c-]y", "x[a\\-c]y", "**", "h*l*o", "[a-", "\\[", "*\\", "h[^]llo",
]
CHANNELS = [
    "hello", "hallo", "hbllo", "hxllo", "hllo", "heeello", "h*llo", "h?llo", "news.tech", "news.",
    "news.9", "a1b2c3", "abc", "ac", "[", "\\", "h]llo", "x-y", "xdy", "xby", "9", "", "x", "!",
    "h[llo", "[a-", "hel\\lo", "h^llo",
]


def test_pattern_matching(twins):
    """Receiver counts for every channel against patterns with ?, *, [...], [^...], ranges, escapes."""
    sub, pub = twins.open(), twins.open()
    sub.call("PSUBSCRIBE", *PATTERNS, frames=len(PATTERNS))
    for channel in CHANNELS:
        count = pub.call("PUBLISH", channel, "m")
        if count:
            sub.expect_unordered(count, f"pmessages for {channel!r}")


def test_pattern_matching_each_pattern_alone(twins):
    """Every (pattern, channel) pair: the same yes/no as Redis's stringmatchlen."""
    pub = twins.open()
    for pattern in PATTERNS:
        sub = twins.open()
        sub.call("PSUBSCRIBE", pattern)
        matched = [channel for channel in CHANNELS if pub.call("PUBLISH", channel, "m")]
        if matched:
            sub.expect(len(matched), f"pattern {pattern!r}")
        sub.close()


# -- RESP2 subscribed mode and RESP3 ---------------------------------------------------------------

ALLOWED_IN_RESP2 = [("SUBSCRIBE", "x"), ("PSUBSCRIBE", "y*"), ("SSUBSCRIBE", "z")]
REFUSED_IN_RESP2 = [
    ("GET", "k"), ("SET", "k", "v"), ("PUBLISH", "c", "m"), ("PUBSUB", "NUMPAT"),
    ("PUBSUB", "CHANNELS"), ("SELECT", "1"), ("HELLO", "3"), ("HELLO",), ("MULTI",), ("ECHO", "x"),
    ("CLIENT", "ID"), ("INFO",), ("CONFIG", "GET", "maxmemory"), ("DBSIZE",), ("SPUBLISH", "s", "m"),
]


def test_resp2_subscribed_mode_refuses_other_commands(twins):
    sub = twins.open_only(2)
    sub.call("SUBSCRIBE", "c", frames=1)
    for args in REFUSED_IN_RESP2:
        reply = sub.call(*args)
        name = args[0].lower() + (f"|{args[1].lower()}" if args[0] in ("PUBSUB", "CLIENT", "CONFIG")
                                   else "")
        assert reply == Err(SUBSCRIBED_ERROR.format(name)), reply
    for args in ALLOWED_IN_RESP2:
        sub.call(*args)
    sub.call("UNKNOWNCMD")                 # unknown commands fail as unknown first
    sub.call("GET")                        # arity is checked before the subscribed-mode rule
    sub.send("UNSUBSCRIBE")
    sub.expect_unsubscribe_all("UNSUBSCRIBE", 2, left=1)
    sub.call("PUNSUBSCRIBE")
    sub.call("GET", "k")                   # still subscribed to a shard channel
    sub.call("SUNSUBSCRIBE")
    sub.call("GET", "k")                   # back to normal


def test_resp2_shard_subscription_alone_enters_subscribed_mode(twins):
    sub = twins.open_only(2)
    sub.call("SSUBSCRIBE", "s")
    sub.call("GET", "k")
    sub.call("SUNSUBSCRIBE", "s")
    sub.call("GET", "k")


def test_resp2_ping_while_subscribed(twins):
    sub = twins.open_only(2)
    sub.call("SUBSCRIBE", "c")
    sub.call("PING")
    sub.call("PING", "hello")


def test_ping_while_subscribed_in_resp3(twins):
    sub = twins.open_only(3)
    sub.call("SUBSCRIBE", "c")
    sub.call("PING")
    sub.call("PING", "hello")


def test_reset_and_quit_leave_subscribed_mode(twins):
    sub = twins.open_only(2)
    sub.call("SUBSCRIBE", "c", "d", frames=2)
    sub.call("PSUBSCRIBE", "e*")
    sub.call("RESET")
    sub.call("GET", "k")
    pub = twins.open()
    assert pub.call("PUBLISH", "c", "m") == 0
    assert pub.call("PUBLISH", "eee", "m") == 0
    sub.call("SUBSCRIBE", "c")
    sub.call("QUIT")


def test_resp3_push_frames_mixed_with_replies(twins):
    sub, pub = twins.open_only(3), twins.open()
    sub.call("SUBSCRIBE", "c", frames=1)
    sub.call("SET", "k", "v")              # RESP3: normal commands work while subscribed
    sub.call("GET", "k")
    assert pub.call("PUBLISH", "c", "m1") == 1
    sub.call("GET", "k", frames=2)         # the push arrived first, then GET's reply
    sub.call("PSUBSCRIBE", "c*")
    assert pub.call("PUBLISH", "c", "m2") == 2
    sub.expect_unordered(2)
    sub.call("PUBSUB", "NUMSUB", "c")
    sub.call("UNSUBSCRIBE", "c")
    sub.call("PUNSUBSCRIBE", "c*")
    assert pub.call("PUBLISH", "c", "m3") == 0
    sub.call("PING")


def test_resp3_publish_to_own_channel(twins):
    sub = twins.open_only(3)
    sub.call("SUBSCRIBE", "c")
    sub.call("PUBLISH", "c", "self", frames=2)


def test_subscribe_inside_multi(twins):
    for protocol in (2, 3):
        sub = twins.open(protocol=protocol)
        sub.call("MULTI")
        sub.call("SUBSCRIBE", "x")
        sub.call("EXEC")
        sub.call("UNSUBSCRIBE")


# -- PUBSUB introspection ---------------------------------------------------------------------------

def test_pubsub_introspection(twins):
    a, b, q = twins.open(), twins.open(), twins.open()
    q.call("PUBSUB", "CHANNELS")
    q.call("PUBSUB", "NUMPAT")
    q.call("PUBSUB", "NUMSUB")
    q.call("PUBSUB", "NUMSUB", "x", "y", "x")
    q.call("PUBSUB", "SHARDCHANNELS")
    q.call("PUBSUB", "SHARDNUMSUB", "x")
    a.call("SUBSCRIBE", "news.a", "news.b", "other", frames=3)
    b.call("SUBSCRIBE", "news.a", frames=1)
    a.call("PSUBSCRIBE", "p1", "p2", frames=2)
    b.call("PSUBSCRIBE", "p1", frames=1)
    b.call("SSUBSCRIBE", "s.a", "s.b", frames=2)
    a.call("SSUBSCRIBE", "s.a", frames=1)
    for args in (("PUBSUB", "CHANNELS"), ("PUBSUB", "CHANNELS", "news.*"),
                 ("PUBSUB", "CHANNELS", "*[ab]"), ("PUBSUB", "SHARDCHANNELS"),
                 ("PUBSUB", "SHARDCHANNELS", "s.?")):
        q.send(*args)
        ours, real = q.ours.frame()[1], q.real.frame()[1]
        assert sorted(ours) == sorted(real), (args, ours, real)
    q.call("PUBSUB", "CHANNELS", "nomatch*")
    q.call("PUBSUB", "NUMSUB", "news.a", "news.b", "nobody", "p1")  # patterns are not channels
    q.call("PUBSUB", "NUMPAT")                                     # distinct patterns: 2
    q.call("PUBSUB", "SHARDNUMSUB", "s.a", "s.b", "news.a")
    q.call("pubsub", "numsub", "news.a")
    b.close()
    a.call("UNSUBSCRIBE", "news.a", frames=1)
    q.call("PUBSUB", "NUMSUB", "news.a", "news.b")                 # b's disconnect dropped it
    q.call("PUBSUB", "NUMPAT")
    q.call("PUBSUB", "SHARDNUMSUB", "s.a", "s.b")


def test_pubsub_help_and_errors(twins):
    q = twins.open()
    q.call("PUBSUB", "HELP")
    q.call("pubsub", "help")
    for args in (("PUBSUB",), ("PUBSUB", "FOO"), ("PUBSUB", "NUMPAT", "x"), ("PUBSUB", "HELP", "x"),
                 ("PUBLISH", "c"), ("PUBLISH", "c", "m", "x"), ("SPUBLISH", "c"), ("SUBSCRIBE",),
                 ("PSUBSCRIBE",), ("SSUBSCRIBE",)):
        assert isinstance(q.call(*args), Err), args


def test_pubsub_channels_with_extra_arguments(twins):
    q = twins.open()
    q.call("PUBSUB", "CHANNELS", "a", "b")
    q.call("PUBSUB", "SHARDCHANNELS", "a", "b")
