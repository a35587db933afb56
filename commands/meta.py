"""The COMMAND family (COMMAND, INFO, DOCS, COUNT, LIST, GETKEYS, GETKEYSANDFLAGS, HELP).

Why a data file: cluster clients (redis-py's RedisCluster), redis-cli hints and GUI tools read these
replies, and they must match Redis 7.0.15 byte for byte. What describes *behaviour* (arity, flags, key
positions) comes from our own `CommandSpec`, so the replies tell the truth about Shardis; what is
documentation (ACL categories, tips, key specs, DOCS) comes from `redis_meta.json`, which
`tools/extract_redis_meta.py` dumped from a real redis-server 7.0.15.

Everything reflects the registry at call time: only registered commands and subcommands appear.

The JSON keeps plain values; the Redis reply types are restored here, following `addReplyCommand*`
in Redis's server.c: command flags, ACL categories, key-spec and argument flags are simple strings in
a set; tips, history and key specs are sets; every other string is a bulk string.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

from commands import registry
from commands.args import glob_match
from commands.registry import CommandSpec
from protocol.errors import SYNTAX_ERROR, CommandError, unknown_subcommand, wrong_arity
from protocol.replies import SetReply

__all__ = [
    "REDIS_VERSION", "redis_meta", "redis_command_names", "command_info_entry", "command_docs_entry",
    "command_reply", "keys_and_flags", "spec_mismatches", "implemented_names", "unimplemented_in",
    "glob_match", "written_keys",
]

_META_PATH = Path(__file__).with_name("redis_meta.json")

# Command flags in the order COMMAND INFO prints them (server.c addReplyFlagsForCommand).
# may_replicate, sentinel, only_sentinel and protected exist but Redis hides them on purpose.
_FLAG_ORDER = (
    "write", "readonly", "denyoom", "module", "admin", "pubsub", "noscript", "blocking", "loading",
    "stale", "skip_monitor", "skip_slowlog", "asking", "fast", "no_auth", "no_mandatory_keys",
    "no_async_loading", "no_multi", "movablekeys", "allow_busy",
)

# Key-spec flags in the order Redis prints them (addReplyFlagsForKeyArgs).
_KEY_FLAG_ORDER = (
    "RO", "RW", "OW", "RM", "access", "update", "insert", "delete", "not_key", "incomplete",
    "variable_flags",
)

_HELP = (
    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "GETKEYSANDFLAGS <full-command>",
    "    Return the keys and the access flags from a full Redis command.",
    "HELP",
    "    Prints this help.",
)

INVALID_COMMAND = "ERR Invalid command specified"
NO_KEY_ARGUMENTS = "ERR The command has no key arguments"
INVALID_NUMBER_OF_ARGUMENTS = "ERR Invalid number of arguments specified for command"
INVALID_ARGUMENTS = "ERR Invalid arguments specified for command"


# --------------------------------------------------------------------------- the data file

@functools.cache
def _load() -> tuple[str, dict]:
    data = json.loads(_META_PATH.read_text(encoding="utf-8"))
    return data["redis_version"], data["commands"]


def redis_meta(fullname: str) -> dict | None:
    """Redis 7.0's record for `fullname` ("get", "config|get"), or None if Redis has no such command."""
    return _load()[1].get(fullname)


def redis_command_names() -> list[str]:
    """Every full command name Redis 7.0 knows, containers and subcommands included, sorted."""
    return list(_load()[1])


REDIS_VERSION = _load()[0]


# --------------------------------------------------------------------------- reply-type restoration

def _key_spec_value(key: str, value):
    if key == "flags":
        return SetReply(value)
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, dict):
        return {k.encode(): _key_spec_value(k, v) for k, v in value.items()}
    return value


def _docs_value(key: str, value):
    if key in ("flags", "doc_flags"):
        return SetReply(value)
    if key == "history":
        return SetReply([[since.encode(), change.encode()] for since, change in value])
    if key == "arguments":
        return [{k.encode(): _docs_value(k, v) for k, v in arg.items()} for arg in value]
    if isinstance(value, str):
        return value.encode()
    return value


@functools.cache
def _static_info(fullname: str) -> tuple[SetReply, SetReply, SetReply]:
    """ACL categories, tips and key specs: the parts of COMMAND INFO that never change."""
    rec = redis_meta(fullname)
    if rec is None:
        return SetReply(), SetReply(), SetReply()
    return (
        SetReply(rec["acl"]),
        SetReply(tip.encode() for tip in rec["tips"]),
        SetReply({k.encode(): _key_spec_value(k, v) for k, v in ks.items()} for ks in rec["key_specs"]),
    )


@functools.cache
def _static_docs(fullname: str, group: str) -> dict:
    rec = redis_meta(fullname)
    if rec is None:
        return {b"group": group.encode()}
    return {k.encode(): _docs_value(k, v) for k, v in rec["docs"].items()}


# COMMAND is registered as one command whose handler is `command_reply`, so every subcommand Redis
# lists for it is implemented here even though none is registered on its own.
_SELF_SERVED = frozenset({"command"})


@functools.cache
def _self_served_subcommands(parent: CommandSpec) -> tuple[CommandSpec, ...]:
    subs = []
    for fullname in redis_meta(parent.fullname)["subcommands"]:
        rec = redis_meta(fullname)
        subs.append(CommandSpec(
            fullname.split("|", 1)[1], arity=rec["arity"], flags=" ".join(rec["flags"]),
            keys=(rec["first"], rec["last"], rec["step"]), group=rec["docs"]["group"],
            handler=None, route=registry.Route.LOCAL, getkeys=None, parent=parent))
    return tuple(subs)


def _is_container(spec: CommandSpec) -> bool:
    """Redis replies for a container even when Shardis implements none of its subcommands yet."""
    if spec.subcommands:
        return True
    rec = redis_meta(spec.fullname)
    return rec is not None and bool(rec["subcommands"])


def _ordered_subcommands(spec: CommandSpec) -> list[CommandSpec]:
    """Implemented subcommands, in the order the data file lists Redis's (sorted), extras last."""
    if not spec.subcommands and spec.fullname in _SELF_SERVED:
        return list(_self_served_subcommands(spec))
    rec = redis_meta(spec.fullname)
    known = rec["subcommands"] if rec else []
    by_fullname = {sub.fullname: sub for sub in spec.subcommands.values()}
    ordered = [by_fullname.pop(name) for name in known if name in by_fullname]
    return ordered + list(by_fullname.values())


def implemented_names() -> set[str]:
    """Full names of every command and subcommand Shardis serves right now."""
    return {s.fullname for top in _top_level() for s in _list_names(top)}


# --------------------------------------------------------------------------- INFO and DOCS entries

def _flags_reply(spec: CommandSpec) -> SetReply:
    return SetReply(flag for flag in _FLAG_ORDER if flag in spec.flags)


def command_info_entry(spec: CommandSpec) -> list:
    """The 10-element COMMAND INFO entry for `spec`, as Redis 7.0 builds it (addReplyCommandInfo)."""
    acl, tips, key_specs = _static_info(spec.fullname)
    if _is_container(spec):
        subcommands: list = [command_info_entry(sub) for sub in _ordered_subcommands(spec)]
    else:
        subcommands = SetReply()
    return [
        spec.fullname.encode(), spec.arity, _flags_reply(spec),
        spec.first_key, spec.last_key, spec.key_step,
        acl, tips, key_specs, subcommands,
    ]


def command_docs_entry(spec: CommandSpec) -> dict:
    """The COMMAND DOCS map for `spec`, subcommand docs nested as Redis nests them."""
    docs = _static_docs(spec.fullname, spec.group)
    if not _is_container(spec):
        return docs
    docs = dict(docs)
    docs[b"subcommands"] = {sub.fullname.encode(): command_docs_entry(sub)
                            for sub in _ordered_subcommands(spec)}
    return docs


# --------------------------------------------------------------------------- lookups

def _lookup_by_name(name: bytes) -> CommandSpec | None:
    """Redis's lookupCommandBySds: "get" or "config|get", strict about the number of parts."""
    parts = name.split(b"|")
    if len(parts) > 2:
        return None
    base = registry.COMMANDS.get(parts[0]) or registry.COMMANDS.get(parts[0].lower())
    if base is None or len(parts) == 1:
        return base
    return _find_subcommand(base, parts[1])


def _find_subcommand(base: CommandSpec, name: bytes) -> CommandSpec | None:
    wanted = base.name + "|" + name.decode("utf-8", "replace").lower()
    for sub in _ordered_subcommands(base):
        if sub.fullname == wanted:
            return sub
    return None


def _lookup_argv(argv: list[bytes]) -> CommandSpec | None:
    """Redis's lookupCommand for a full argv: a container's second word names the subcommand."""
    if not argv:
        return None
    base = registry.COMMANDS.get(argv[0]) or registry.COMMANDS.get(argv[0].lower())
    if base is None or len(argv) == 1 or not _is_container(base):
        return base
    return _find_subcommand(base, argv[1])


def _top_level() -> list[CommandSpec]:
    return registry.all_specs()


# --------------------------------------------------------------------------- GETKEYS
#
# Redis 7.0 (db.c getKeysFromCommandWithSpecs) finds keys from the key specs when the command has
# real ones and none of them is variable_flags; if a spec cannot be applied (incomplete, unknown, out
# of range) it falls back to the command's native key finder, and without one there are no keys.
# Shardis mirrors that: the specs come from the data file, and the native finder is our own
# `spec.key_positions` (the command's `getkeys`).

def _has_keys(spec: CommandSpec) -> bool:
    """Redis's doesCommandHaveKeys: a getkeys function, or a key spec not marked not_key."""
    if spec.getkeys is not None:
        return True
    rec = redis_meta(spec.fullname)
    if rec is None:
        return spec.first_key != 0
    return any("not_key" not in ks["flags"] for ks in rec["key_specs"])


_INTEGER = re.compile(rb"-?(0|[1-9][0-9]*)")


def _string2ll(arg: bytes) -> int | None:
    """Redis's string2ll: no sign but '-', no spaces, no leading zeros, fits in 64 bits."""
    if not _INTEGER.fullmatch(arg):
        return None
    value = int(arg)
    return value if -(1 << 63) <= value < (1 << 63) else None


def _apply_key_specs(key_specs: list[dict], argv: list[bytes],
                     partial: bool) -> list[tuple[int, list[str]]] | None:
    """Redis's getKeysUsingKeySpecs: (position, flags) of every key, or None when a spec cannot be
    applied. With `partial` such specs are skipped instead and the others still count."""
    argc = len(argv)
    found: list[tuple[int, list[str]]] = []
    for ks in key_specs:
        if "not_key" in ks["flags"]:
            continue
        begin, find = ks["begin_search"], ks["find_keys"]
        if begin["type"] == "index":
            first = begin["spec"]["index"]
        elif begin["type"] == "keyword":
            keyword = begin["spec"]["keyword"].encode().lower()
            startfrom = begin["spec"]["startfrom"]
            start = startfrom if startfrom > 0 else argc + startfrom
            end = argc - 1 if startfrom > 0 else 1
            first = 0
            i = start
            while i != end:
                if i >= argc or i < 1:
                    break
                if argv[i].lower() == keyword:
                    first = i + 1
                    break
                i = i + 1 if start <= end else i - 1
            if not first:
                continue  # an absent keyword means no keys from this spec, not an error
        elif partial:
            continue
        else:
            return None
        if find["type"] == "range":
            rng = find["spec"]
            step = rng["keystep"]
            if rng["lastkey"] >= 0:
                last = first + rng["lastkey"]
            elif not rng["limit"]:
                last = argc + rng["lastkey"]
            else:
                last = first + ((argc - first) // rng["limit"] + rng["lastkey"])
        elif find["type"] == "keynum":
            knum = find["spec"]
            step = knum["keystep"]
            idx = first + knum["keynumidx"]
            numkeys = _string2ll(argv[idx]) if idx < argc else None
            if numkeys is None or numkeys < 0:
                if partial:
                    continue
                return None
            first += knum["firstkey"]
            last = first + numkeys - 1
        elif partial:
            continue
        else:
            return None
        if last >= argc or last < first or first >= argc:
            if partial:
                continue
            return None
        flags = [f for f in ks["flags"] if f != "incomplete"]
        found.extend((pos, flags) for pos in range(first, last + 1, step))
        if "incomplete" in ks["flags"] and not partial:
            return None
    return found


def _set_key_flags(argv: list[bytes]) -> list[str]:
    """SET's flags vary: GET makes it read the old value (setGetKeys looks from argv[3] on)."""
    if any(arg.lower() == b"get" for arg in argv[3:]):
        return ["RW", "access", "update"]
    return ["OW", "update"]


def _bitfield_key_flags(argv: list[bytes]) -> list[str]:
    """BITFIELD is read-only when every operation is a well-formed GET or OVERFLOW (bitfieldGetKeys)."""
    i = 2
    while i < len(argv):
        remaining = len(argv) - i - 1
        op = argv[i].lower()
        if op == b"get" and remaining >= 2:
            i += 3
        elif op == b"overflow" and remaining >= 1:
            i += 2
        else:
            return ["RW", "access", "update"]
    return ["RO", "access"]


_VARIABLE_KEY_FLAGS = {"set": _set_key_flags, "bitfield": _bitfield_key_flags}


def _native_key_flags(fullname: str, key_specs: list[dict], argv: list[bytes],
                      positions: list[int]) -> list[list[str]]:
    """Flags for keys found by the command's own key finder, as Redis's native finders give them."""
    variable = _VARIABLE_KEY_FLAGS.get(fullname)
    if variable is not None:
        return [variable(argv)] * len(positions)
    placed: dict[int, list[str]] = {}
    for pos, flags in _apply_key_specs(key_specs, argv, partial=True) or ():
        placed.setdefault(pos, flags)
    # A key no spec can place (SORT ... STORE dst) gets the flags of the last real spec.
    real = [ks["flags"] for ks in key_specs if "not_key" not in ks["flags"]]
    fallback = real[-1] if real else []
    return [placed.get(pos, fallback) for pos in positions]


def keys_and_flags(spec: CommandSpec, argv: list[bytes]) -> list[tuple[int, list[str]]]:
    """(position, key-spec flags) of each key in `argv`, as COMMAND GETKEYSANDFLAGS finds them.

    `argv` must already satisfy the command's arity. An empty list means "no keys found".
    """
    rec = redis_meta(spec.fullname)
    key_specs = rec["key_specs"] if rec else []
    has_real_spec = any("not_key" not in ks["flags"] for ks in key_specs)
    variable = any("variable_flags" in ks["flags"] for ks in key_specs)
    if has_real_spec and not variable:
        found = _apply_key_specs(key_specs, argv, partial=False)
        if found is not None:
            return found
    if not (spec.getkeys is not None or variable or rec is None):
        return []
    try:
        positions = spec.key_positions(argv)
    except (CommandError, ValueError, IndexError):
        return []
    if any(pos < 1 or pos >= len(argv) for pos in positions):
        return []
    flags = _native_key_flags(spec.fullname, key_specs, argv, positions)
    return list(zip(positions, flags))


def written_keys(spec: CommandSpec):
    """The key arguments a write command may modify: the ones the touch of WATCHed keys after it
    ran (actors/execution.py's after_write) signals. Redis signals only what a command changes,
    never a key its key specs call read-only (RO: SINTERSTORE's sources, SORT's sorted key ...);
    keys a command only sometimes changes are declared by its handler (`db.unmodified`).

    Computed once per spec (CommandSpec.written_keys): a tuple of argv positions when they are
    fixed (GET, SET, SMOVE, SINTERSTORE's destination ...), a function argv -> positions when
    they move (SORT ... STORE, ZUNIONSTORE), or None for every key position (MSET, DEL, LMPOP).
    A script writes through the commands it calls, each touching its own keys: ()."""
    if spec.is_script:
        return ()
    rec = redis_meta(spec.fullname)
    real = [ks for ks in rec["key_specs"] if "not_key" not in ks["flags"]] if rec else []
    read_only = [ks for ks in real if "RO" in ks["flags"]]
    if not read_only:
        if spec.getkeys is None and (spec.first_key == 0 or spec.last_key >= 0):
            if spec.first_key == 0:
                return ()
            return tuple(range(spec.first_key, spec.last_key + 1, spec.key_step))
        return None
    writers = [ks for ks in real if "RO" not in ks["flags"]]
    fixed = [ks["begin_search"]["spec"]["index"] for ks in writers
             if ks["begin_search"]["type"] == "index" and ks["find_keys"]["type"] == "range"
             and ks["find_keys"]["spec"]["lastkey"] == 0]
    if len(fixed) == len(writers):
        return tuple(fixed)

    def positions(argv: list[bytes]) -> list[int]:
        skipped = {pos for pos, _ in _apply_key_specs(read_only, argv, partial=True) or ()}
        return [pos for pos in spec.key_positions(argv) if pos not in skipped]
    return positions


def _getkeys(argv: list[bytes], with_flags: bool) -> list:
    inner = argv[2:]
    spec = _lookup_argv(inner)
    if spec is None:
        raise CommandError(INVALID_COMMAND)
    if not _has_keys(spec):
        raise CommandError(NO_KEY_ARGUMENTS)
    argc = len(inner)
    if (spec.arity > 0 and spec.arity != argc) or argc < -spec.arity:
        raise CommandError(INVALID_NUMBER_OF_ARGUMENTS)
    found = keys_and_flags(spec, inner)
    if not found:
        if "no_mandatory_keys" in spec.flags:
            return []
        raise CommandError(INVALID_ARGUMENTS)
    if not with_flags:
        return [inner[pos] for pos, _ in found]
    return [[inner[pos], SetReply(flags)] for pos, flags in found]


# --------------------------------------------------------------------------- LIST

def _list_names(spec: CommandSpec) -> list[CommandSpec]:
    """A command followed by its subcommands, as COMMAND LIST walks them."""
    out = [spec]
    for sub in _ordered_subcommands(spec):
        out.extend(_list_names(sub))
    return out


def _list_filter(kind: bytes, arg: bytes):
    """The predicate for COMMAND LIST FILTERBY <kind> <arg>, or None for an unknown kind."""
    if kind == b"module":
        return lambda spec: False  # Shardis loads no modules.
    if kind == b"aclcat":
        category = "@" + arg.decode("utf-8", "replace").lower()
        return lambda spec: category in (redis_meta(spec.fullname) or {}).get("acl", ())
    if kind == b"pattern":
        return lambda spec: glob_match(arg, spec.fullname.encode(), nocase=True)
    return None


def _command_list(argv: list[bytes]) -> list[bytes]:
    keep = None
    i = 2
    while i < len(argv):
        if argv[i].lower() != b"filterby" or len(argv) - 1 - i != 2:
            raise CommandError(SYNTAX_ERROR)
        keep = _list_filter(argv[i + 1].lower(), argv[i + 2])
        if keep is None:
            raise CommandError(SYNTAX_ERROR)
        i += 3
    specs = [s for top in _top_level() for s in _list_names(top)]
    return [s.fullname.encode() for s in specs if keep is None or keep(s)]


# --------------------------------------------------------------------------- the COMMAND command

def command_reply(argv: list[bytes]):
    """The reply to a whole COMMAND invocation, `argv` starting with b"COMMAND"."""
    if len(argv) == 1:
        return [command_info_entry(spec) for spec in _top_level()]
    sub = argv[1].lower()
    rec = redis_meta("command|" + sub.decode("utf-8", "replace"))
    if rec is None:
        raise unknown_subcommand(argv[1], "command")
    arity = rec["arity"]
    if (arity > 0 and len(argv) != arity) or len(argv) < -arity:
        raise wrong_arity("command|" + sub.decode())
    if sub == b"count":
        return len(_top_level())
    if sub == b"info":
        if len(argv) == 2:
            return [command_info_entry(spec) for spec in _top_level()]
        entries = []
        for name in argv[2:]:
            spec = _lookup_by_name(name)
            entries.append(None if spec is None else command_info_entry(spec))
        return entries
    if sub == b"docs":
        specs = _top_level() if len(argv) == 2 else [_lookup_by_name(name) for name in argv[2:]]
        return {spec.fullname.encode(): command_docs_entry(spec) for spec in specs if spec is not None}
    if sub == b"list":
        return _command_list(argv)
    if sub == b"getkeys":
        return _getkeys(argv, with_flags=False)
    if sub == b"getkeysandflags":
        return _getkeys(argv, with_flags=True)
    return list(_HELP)


# --------------------------------------------------------------------------- consistency helpers

def spec_mismatches(spec: CommandSpec) -> list[str]:
    """How `spec` disagrees with Redis 7.0 on arity, flags, key triple and group ([] if it agrees).

    Hidden flags (may_replicate, protected ...) cannot be checked: Redis does not print them.
    """
    rec = redis_meta(spec.fullname)
    if rec is None:
        return [f"{spec.fullname}: not a Redis 7.0 command"]
    problems = []
    if spec.arity != rec["arity"]:
        problems.append(f"{spec.fullname}: arity {spec.arity}, Redis has {rec['arity']}")
    ours = list(_flags_reply(spec))
    if ours != rec["flags"]:
        problems.append(f"{spec.fullname}: flags {ours}, Redis has {rec['flags']}")
    keys = (spec.first_key, spec.last_key, spec.key_step)
    theirs = (rec["first"], rec["last"], rec["step"])
    if keys != theirs:
        problems.append(f"{spec.fullname}: keys {keys}, Redis has {theirs}")
    if spec.group != rec["docs"]["group"]:
        problems.append(f"{spec.fullname}: group {spec.group!r}, Redis has {rec['docs']['group']!r}")
    return problems


def unimplemented_in(group: str | None = None) -> list[str]:
    """Redis 7.0 commands and subcommands not served by Shardis, optionally of one DOCS group
    ("string", "sorted-set", "server" ...): the to-do list, derived rather than kept by hand."""
    served = implemented_names()
    return [name for name, rec in _load()[1].items()
            if name not in served and (group is None or rec["docs"]["group"] == group)]
