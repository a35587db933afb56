"""The command table: one module per Redis group, one decorated pure function per command. Imports keyspace and protocol.

Importing this package registers every family, in a fixed order.
"""

from commands import (  # noqa: F401
    bitmaps, connection, generic, hashes, lists, pubsub, replication, scripting, server, sets,
    snapshots, sort, sorted_sets, strings, transactions,
)

__all__ = ["bitmaps", "connection", "generic", "hashes", "lists", "pubsub", "replication", "scripting", "server", "sets", "snapshots", "sort",
           "sorted_sets", "strings", "transactions"]
