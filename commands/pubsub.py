"""Pub/Sub commands (Redis group "pubsub"). They run on the loop with the connection, which keeps
its own subscriptions and talks to the broker actor (actors/pubsub.py)."""

from __future__ import annotations

from commands.args import glob_match
from commands.registry import Route, command, container
from protocol.errors import CommandError
from protocol.replies import DEFERRED

__all__: list[str] = []

_SUB_FLAGS = "pubsub noscript loading stale"


@command("SUBSCRIBE", arity=-2, flags=_SUB_FLAGS, group="pubsub", route=Route.LOCAL)
def subscribe(client, argv):
    """SUBSCRIBE channel [channel ...] -- one confirmation per channel, with the running count."""
    return client.subscribe("channels", b"subscribe", argv[1:])


@command("PSUBSCRIBE", arity=-2, flags=_SUB_FLAGS, group="pubsub", route=Route.LOCAL)
def psubscribe(client, argv):
    """PSUBSCRIBE pattern [pattern ...]"""
    return client.subscribe("patterns", b"psubscribe", argv[1:])


@command("SSUBSCRIBE", arity=-2, flags=_SUB_FLAGS, keys=(1, -1, 1), group="pubsub",
         route=Route.LOCAL)
def ssubscribe(client, argv):
    """SSUBSCRIBE shardchannel [shardchannel ...]"""
    return client.subscribe("shard", b"ssubscribe", argv[1:])


@command("UNSUBSCRIBE", arity=-1, flags=_SUB_FLAGS, group="pubsub", route=Route.LOCAL)
def unsubscribe(client, argv):
    """UNSUBSCRIBE [channel ...] -- no argument: every channel."""
    return client.unsubscribe("channels", b"unsubscribe", argv[1:] or None)


@command("PUNSUBSCRIBE", arity=-1, flags=_SUB_FLAGS, group="pubsub", route=Route.LOCAL)
def punsubscribe(client, argv):
    """PUNSUBSCRIBE [pattern ...]"""
    return client.unsubscribe("patterns", b"punsubscribe", argv[1:] or None)


@command("SUNSUBSCRIBE", arity=-1, flags=_SUB_FLAGS, keys=(1, -1, 1), group="pubsub",
         route=Route.LOCAL)
def sunsubscribe(client, argv):
    """SUNSUBSCRIBE [shardchannel ...]"""
    return client.unsubscribe("shard", b"sunsubscribe", argv[1:] or None)


@command("PUBLISH", arity=3, flags="pubsub loading stale fast", group="pubsub", route=Route.LOCAL)
def publish(client, argv):
    """PUBLISH channel message -- the number of clients that received it."""
    client.publish(argv[1], argv[2], sharded=False)
    return DEFERRED


@command("SPUBLISH", arity=3, flags="pubsub loading stale fast", keys=(1, 1, 1), group="pubsub",
         route=Route.LOCAL)
def spublish(client, argv):
    """SPUBLISH shardchannel message"""
    client.publish(argv[1], argv[2], sharded=True)
    return DEFERRED


# -- PUBSUB introspection: answered by the broker, which owns the subscriptions ---------------------

container("PUBSUB", arity=-2, group="pubsub")


def _channels(kind: str, pattern: bytes | None):
    def fn(subs):
        names = list(subs[kind])
        if pattern is not None:
            names = [n for n in names if glob_match(pattern, n)]
        return names
    return fn


def _at_most_one_pattern(argv) -> None:
    """Redis's addReplySubcommandSyntaxError for PUBSUB CHANNELS/SHARDCHANNELS a b ..."""
    if len(argv) > 3:
        raise CommandError(
            "ERR unknown subcommand or wrong number of arguments for "
            f"'{argv[1].decode('utf-8', 'replace')}'. Try {argv[0].decode('utf-8', 'replace').upper()} HELP.")


def _numsub(kind: str, names: list[bytes]):
    def fn(subs):
        out = []
        for name in names:
            out.append(name)
            out.append(len(subs[kind].get(name, ())))
        return out
    return fn


@command("PUBSUB|CHANNELS", arity=-2, flags="pubsub loading stale", group="pubsub",
         route=Route.LOCAL)
def pubsub_channels(client, argv):
    """PUBSUB CHANNELS [pattern]"""
    _at_most_one_pattern(argv)
    client.broker_query(_channels("channels", argv[2] if len(argv) > 2 else None))
    return DEFERRED


@command("PUBSUB|SHARDCHANNELS", arity=-2, flags="pubsub loading stale", group="pubsub",
         route=Route.LOCAL)
def pubsub_shardchannels(client, argv):
    """PUBSUB SHARDCHANNELS [pattern]"""
    _at_most_one_pattern(argv)
    client.broker_query(_channels("shard", argv[2] if len(argv) > 2 else None))
    return DEFERRED


@command("PUBSUB|NUMSUB", arity=-2, flags="pubsub loading stale", group="pubsub",
         route=Route.LOCAL)
def pubsub_numsub(client, argv):
    """PUBSUB NUMSUB [channel ...] -- a flat list of channel, count (an array in RESP3 too)."""
    client.broker_query(_numsub("channels", argv[2:]))
    return DEFERRED


@command("PUBSUB|SHARDNUMSUB", arity=-2, flags="pubsub loading stale", group="pubsub",
         route=Route.LOCAL)
def pubsub_shardnumsub(client, argv):
    """PUBSUB SHARDNUMSUB [shardchannel ...]"""
    client.broker_query(_numsub("shard", argv[2:]))
    return DEFERRED


@command("PUBSUB|NUMPAT", arity=2, flags="pubsub loading stale", group="pubsub",
         route=Route.LOCAL)
def pubsub_numpat(client, argv):
    """PUBSUB NUMPAT -- the number of patterns subscribed to (by anyone)."""
    client.broker_query(lambda subs: len(subs["patterns"]))
    return DEFERRED


@command("PUBSUB|HELP", arity=2, flags="loading stale", group="pubsub", route=Route.LOCAL)
def pubsub_help(client, argv):
    """PUBSUB HELP"""
    return [
        "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CHANNELS [<pattern>]",
        "    Return the currently active channels matching a <pattern> (default: '*').",
        "NUMPAT",
        "    Return number of subscriptions to patterns.",
        "NUMSUB [<channel> ...]",
        "    Return the number of subscribers for the specified channels, excluding",
        "    pattern subscriptions(default: no channels).",
        "SHARDCHANNELS [<pattern>]",
        "    Return the currently active shard level channels matching a <pattern> (default: '*').",
        "SHARDNUMSUB [<shardchannel> ...]",
        "    Return the number of subscribers for the specified shard level channel(s)",
        "HELP",
        "    Prints this help.",
    ]


