"""Error types and Redis 7.0's exact error texts.

A `CommandError` carries the whole reply text, prefix included ("ERR ...", "WRONGTYPE ..."), because
redis-py maps the prefix to an exception class and our differential tests compare strings.
"""

from __future__ import annotations

__all__ = [
    "CommandError", "ProtocolError",
    "SYNTAX_ERROR", "WRONGTYPE", "NOT_AN_INTEGER", "NOT_A_FLOAT", "OUT_OF_RANGE", "NO_SUCH_KEY",
    "OVERFLOW", "INVALID_EXPIRE", "DB_INDEX_OUT_OF_RANGE", "NOAUTH", "LOADING",
    "wrong_arity", "unknown_command", "unknown_subcommand",
]


class CommandError(Exception):
    """A command failed; the connection stays open and the client gets `-<message>`."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ProtocolError(Exception):
    """The request stream is malformed; the client gets `-ERR Protocol error: ...` and is closed."""


SYNTAX_ERROR = "ERR syntax error"
WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
NOT_AN_INTEGER = "ERR value is not an integer or out of range"
NOT_A_FLOAT = "ERR value is not a valid float"
OUT_OF_RANGE = "ERR index out of range"
NO_SUCH_KEY = "ERR no such key"
OVERFLOW = "ERR increment or decrement would overflow"
INVALID_EXPIRE = "ERR invalid expire time in '%s' command"
DB_INDEX_OUT_OF_RANGE = "ERR DB index is out of range"
NOAUTH = "NOAUTH Authentication required."
LOADING = "LOADING Redis is loading the dataset in memory"


def _scrub(text: str) -> str:
    """Redis replaces CR/LF in echoed user text with spaces, otherwise the reply breaks the protocol."""
    return text.replace("\r", " ").replace("\n", " ")


def _text(arg: bytes | str) -> str:
    return arg.decode("utf-8", "replace") if isinstance(arg, bytes) else arg


def wrong_arity(name: bytes | str) -> CommandError:
    return CommandError(f"ERR wrong number of arguments for '{_scrub(_text(name).lower())}' command")


def unknown_command(name: bytes, args: list[bytes]) -> CommandError:
    """Mirrors networking.c: the name is cut at 128 chars and each arg echoed up to a 128-char total."""
    shown = ""
    for arg in args:
        if len(shown) >= 128:
            break
        remaining = 128 - len(shown)
        shown += "'" + _text(arg)[:remaining] + "' "
    return CommandError(
        f"ERR unknown command '{_scrub(_text(name)[:128])}', with args beginning with: {_scrub(shown)}"
    )


def unknown_subcommand(sub: bytes, command: str) -> CommandError:
    return CommandError(
        f"ERR unknown subcommand '{_scrub(_text(sub)[:128])}'. Try {command.upper()} HELP."
    )
