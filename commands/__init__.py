"""The command table: one module per Redis group, one decorated pure function per command. Imports keyspace and protocol.

Importing this package registers every family, in a fixed order.
"""

from commands import connection, generic, server, strings  # noqa: F401

__all__ = ["connection", "generic", "server", "strings"]
