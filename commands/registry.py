"""The command table: one `@command` decorator per handler, and nothing else to touch.

A `CommandSpec` merges what Redis keeps in `src/commands/*.json` (arity, flags, key positions, group)
with how Shardis runs the command (`route`). The connection actor reads the spec to check arity, find
the keys and pick a route; the shard actor reads it to call the handler; COMMAND INFO/DOCS/LIST are
generated from it.

Routes:
- `KEYS`  the handler runs in the shard that owns the keys, as `handler(db, argv)`. When the keys span
          shards it runs in global mode, on a view over every shard (same signature).
- `ALL`   a keyless command that needs the whole dataset (DBSIZE, KEYS, SCAN, FLUSHDB): global mode,
          `handler(db, argv)` with `db` a view over every shard.
- `LOCAL` runs on the event loop with the connection: `handler(client, argv)` (PING, CLIENT, CONFIG).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

from protocol.errors import unknown_subcommand

__all__ = ["Route", "CommandSpec", "command", "container", "COMMANDS", "lookup", "all_specs"]


class Route(enum.Enum):
    KEYS = "keys"
    ALL = "all"
    LOCAL = "local"


# Flags as Redis 7.0 spells them in COMMAND INFO.
KNOWN_FLAGS = frozenset(
    "write readonly denyoom module admin pubsub noscript blocking loading stale skip_monitor "
    "skip_slowlog asking fast no_auth may_replicate sentinel only_sentinel no_mandatory_keys "
    "protected no_async_loading no_multi movablekeys allow_busy".split()
)


class CommandSpec:
    """Everything the server knows about one command or subcommand."""

    __slots__ = (
        "name", "fullname", "arity", "flags", "first_key", "last_key", "key_step", "group",
        "handler", "route", "getkeys", "subcommands", "parent", "is_write", "single_key",
        "no_auth", "allowed_in_pubsub", "needs_global", "blocking", "fast_keyed", "may_write",
        "is_script", "written_keys",
    )

    def __init__(self, name: str, *, arity: int, flags: str, keys: tuple[int, int, int], group: str,
                 handler: Callable | None, route: Route, getkeys: Callable | None,
                 parent: CommandSpec | None = None, needs_global: Callable | None = None) -> None:
        if arity == 0:
            raise ValueError(f"{name}: arity 0 is meaningless")
        self.name = name.lower()
        self.parent = parent
        self.fullname = f"{parent.name}|{self.name}" if parent else self.name
        self.arity = arity
        self.flags = frozenset(flags.split())
        unknown = self.flags - KNOWN_FLAGS
        if unknown:
            raise ValueError(f"{name}: unknown flags {sorted(unknown)}")
        if "write" in self.flags and "readonly" in self.flags:
            raise ValueError(f"{name}: write and readonly exclude each other")
        self.first_key, self.last_key, self.key_step = keys
        self.group = group
        self.handler = handler
        self.route = route
        self.getkeys = getkeys
        self.subcommands: dict[bytes, CommandSpec] = {}
        self.is_write = "write" in self.flags
        self.is_script = group == "scripting" and route is Route.KEYS
        """EVAL/FCALL & co.: they write through the commands they call (effects are recorded)."""
        self.may_write = self.is_write or self.is_script
        # The hot path: exactly one key at argv[1] (GET, SET, INCR, LPUSH ...).
        self.single_key = keys == (1, 1, 1) and getkeys is None
        self.no_auth = "no_auth" in self.flags
        self.blocking = "blocking" in self.flags
        self.allowed_in_pubsub = False
        self.needs_global = needs_global
        """Optional `argv -> bool`: this call touches keys beyond its key positions (SORT BY/GET
        patterns), so it must run in global mode whatever shards its keys map to."""
        if needs_global is not None:
            self.single_key = False
        self.fast_keyed = (route is Route.KEYS and not self.blocking and needs_global is None
                           and "no_multi" not in self.flags)
        """The connection's fast path may dispatch it straight to a shard batch."""
        self.written_keys: tuple[int, ...] | Callable | None = None
        """The key arguments a write may modify (commands/meta.py's written_keys): fixed argv
        positions, a function argv -> positions, or None for every key position."""

    def __repr__(self) -> str:
        return f"<CommandSpec {self.fullname}>"

    def key_positions(self, argv: list[bytes]) -> list[int]:
        """Indexes of the key arguments in `argv`, as COMMAND GETKEYS reports them."""
        if self.getkeys is not None:
            return self.getkeys(argv)
        if self.first_key == 0:
            return []
        last = self.last_key if self.last_key >= 0 else len(argv) + self.last_key
        return list(range(self.first_key, last + 1, self.key_step))

    def written_positions(self, argv: list[bytes]):
        """Indexes of the key arguments this write may have modified (`written_keys`)."""
        written = self.written_keys
        if type(written) is tuple:
            return written
        if written is None:
            return self.key_positions(argv)
        return written(argv)

    def check_arity(self, argc: int) -> bool:
        a = self.arity
        return argc == a if a > 0 else argc >= -a


COMMANDS: dict[bytes, CommandSpec] = {}
"""Top-level commands by lower-case name, also by upper-case name for a lookup without `.lower()`."""


def _register(spec: CommandSpec) -> None:
    if spec.parent is None:
        key = spec.name.encode()
        if key in COMMANDS:
            raise ValueError(f"duplicate command {spec.name}")
        COMMANDS[key] = spec
        COMMANDS[key.upper()] = spec
    else:
        key = spec.name.encode()
        if key in spec.parent.subcommands:
            raise ValueError(f"duplicate subcommand {spec.fullname}")
        spec.parent.subcommands[key] = spec


def container(name: str, *, arity: int = -2, flags: str = "", group: str) -> CommandSpec:
    """Declare a command made of subcommands (CONFIG, CLIENT, OBJECT ...)."""
    spec = CommandSpec(name, arity=arity, flags=flags, keys=(0, 0, 0), group=group, handler=None,
                       route=Route.LOCAL, getkeys=None)
    _register(spec)
    return spec


def command(name: str, *, arity: int, flags: str = "", keys: tuple[int, int, int] = (0, 0, 0),
            group: str, route: Route | None = None, getkeys: Callable | None = None,
            needs_global: Callable | None = None) -> Callable:
    """Register the decorated function as the handler of `name` ("GET", or "CONFIG|GET").

    `keys` is Redis's (first, last, step) triple; last=-1 means "to the end". `route` defaults to
    KEYS for commands with keys and must be named for keyless ones.
    """
    def decorate(handler: Callable) -> Callable:
        parent = None
        short = name
        if "|" in name:
            parent_name, short = name.split("|", 1)
            parent = COMMANDS[parent_name.lower().encode()]
        has_keys = keys[0] != 0 or getkeys is not None
        chosen = route or (Route.KEYS if has_keys else None)
        if chosen is None:
            raise ValueError(f"{name}: a keyless command must name its route")
        spec = CommandSpec(short, arity=arity, flags=flags, keys=keys, group=group, handler=handler,
                           route=chosen, getkeys=getkeys, parent=parent, needs_global=needs_global)
        # Imported here: commands.meta reads the registry, and its key specs describe this spec.
        from commands.meta import written_keys
        spec.written_keys = written_keys(spec)
        _register(spec)
        handler.spec = spec  # type: ignore[attr-defined]
        return handler
    return decorate


def lookup(argv: list[bytes]) -> CommandSpec | None:
    """Find the spec for `argv`, descending into subcommands; None for an unknown command.

    Raises CommandError for an unknown subcommand, as Redis does.
    """
    spec = COMMANDS.get(argv[0])
    if spec is None:
        spec = COMMANDS.get(argv[0].lower())
        if spec is None:
            return None
    if spec.subcommands and len(argv) >= 2:
        sub = spec.subcommands.get(argv[1].lower())
        if sub is None:
            raise unknown_subcommand(argv[1], spec.name)
        return sub
    return spec


def all_specs() -> list[CommandSpec]:
    """Every top-level command once, in name order."""
    seen: dict[str, CommandSpec] = {}
    for spec in COMMANDS.values():
        seen[spec.name] = spec
    return [seen[k] for k in sorted(seen)]


