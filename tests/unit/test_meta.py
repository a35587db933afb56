"""COMMAND family replies, and the check that every registered spec agrees with Redis 7.0's metadata."""

from __future__ import annotations

import importlib
import json
import pkgutil

import pytest

import commands
from commands import meta, registry
from commands.registry import Route, command, container
from protocol.errors import CommandError
from protocol.replies import SetReply, encode
from tools import extract_redis_meta


def _noop(*_args):
    return None


@pytest.fixture
def clean_registry():
    """An empty command table for the test, the real one restored afterwards."""
    saved = dict(registry.COMMANDS)
    registry.COMMANDS.clear()
    try:
        yield registry
    finally:
        registry.COMMANDS.clear()
        registry.COMMANDS.update(saved)


def _register_basics() -> None:
    """A handful of commands registered exactly as Redis 7.0 declares them."""
    command("GET", arity=2, flags="readonly fast", keys=(1, 1, 1), group="string")(_noop)
    command("SET", arity=-3, flags="write denyoom", keys=(1, 1, 1), group="string")(_noop)
    command("LMOVE", arity=5, flags="write denyoom", keys=(1, 2, 1), group="list")(_noop)
    command("MSET", arity=-3, flags="write denyoom", keys=(1, -1, 2), group="string")(_noop)
    command("BITFIELD", arity=-2, flags="write denyoom", keys=(1, 1, 1), group="bitmap")(_noop)
    command("PING", arity=-1, flags="fast", group="connection", route=Route.LOCAL)(_noop)
    command("SPUBLISH", arity=3, flags="pubsub loading stale fast", keys=(1, 1, 1),
            group="pubsub")(_noop)
    container("CONFIG", arity=-2, group="server")
    command("CONFIG|GET", arity=-3, flags="admin noscript loading stale", group="server",
            route=Route.LOCAL)(_noop)
    command("CONFIG|SET", arity=-4, flags="admin noscript loading stale", group="server",
            route=Route.LOCAL)(_noop)
    container("OBJECT", arity=-2, group="generic")
    command("OBJECT|ENCODING", arity=3, flags="readonly", keys=(2, 2, 1), group="generic")(_noop)


def _cmd(*args: str):
    return meta.command_reply([a.encode() for a in args])


def _error(*args: str) -> str:
    with pytest.raises(CommandError) as info:
        _cmd(*args)
    return info.value.message


# --------------------------------------------------------------------------- the data file

def test_data_file_describes_redis_7_0_15():
    names = meta.redis_command_names()
    assert meta.REDIS_VERSION == "7.0.15"
    assert sum("|" not in n for n in names) == 240
    assert "get" in names and "config|get" in names and "xinfo|stream" in names
    for name in names:
        for sub in meta.redis_meta(name)["subcommands"]:
            assert sub.startswith(name + "|") and meta.redis_meta(sub) is not None


def test_data_file_flags_follow_the_order_redis_prints():
    order = meta._FLAG_ORDER
    for name in meta.redis_command_names():
        flags = meta.redis_meta(name)["flags"]
        assert flags == sorted(flags, key=order.index), name
        for ks in meta.redis_meta(name)["key_specs"]:
            assert ks["flags"] == sorted(ks["flags"], key=meta._KEY_FLAG_ORDER.index), name


def test_data_file_keeps_docs_key_order():
    docs = meta.redis_meta("set")["docs"]
    assert list(docs) == ["summary", "since", "group", "complexity", "history", "arguments"]
    assert list(docs["arguments"][2]) == ["name", "type", "since", "flags", "arguments"]


# --------------------------------------------------------------------------- keeping decorators honest

def _import_all_command_modules() -> None:
    for info in pkgutil.iter_modules(commands.__path__):
        if info.name not in ("meta", "registry"):
            importlib.import_module(f"commands.{info.name}")


def test_every_registered_spec_matches_redis():
    """Arity, flags, key triple and group of every registered (sub)command equal Redis 7.0's."""
    _import_all_command_modules()
    problems = []
    for spec in registry.all_specs():
        for each in [spec, *spec.subcommands.values()]:
            rec = meta.redis_meta(each.fullname)
            if rec is None:
                continue  # A Shardis-only command has no Redis metadata to agree with.
            problems += meta.spec_mismatches(each)
    assert not problems, "registered specs disagree with Redis 7.0:\n" + "\n".join(problems)


def test_mismatches_are_reported(clean_registry):
    command("GET", arity=3, flags="readonly", keys=(1, 1, 1), group="string")(_noop)
    command("SET", arity=-3, flags="write denyoom", keys=(1, 2, 1), group="strings")(_noop)
    command("PING", arity=-1, flags="fast", group="connection", route=Route.LOCAL)(_noop)
    command("NOTREDIS", arity=1, group="server", route=Route.LOCAL)(_noop)
    get, notredis, ping, set_ = registry.all_specs()
    assert meta.spec_mismatches(get) == [
        "get: arity 3, Redis has 2",
        "get: flags ['readonly'], Redis has ['readonly', 'fast']",
    ]
    assert meta.spec_mismatches(set_) == [
        "set: keys (1, 2, 1), Redis has (1, 1, 1)",
        "set: group 'strings', Redis has 'string'",
    ]
    assert meta.spec_mismatches(ping) == []
    assert meta.spec_mismatches(notredis) == ["notredis: not a Redis 7.0 command"]


def test_unimplemented_in_lists_what_is_missing(clean_registry):
    _register_basics()
    missing = meta.unimplemented_in("string")
    assert "get" not in missing and "set" not in missing and "append" in missing
    assert "config|get" not in meta.unimplemented_in("server")
    assert "config|rewrite" in meta.unimplemented_in("server")
    assert set(meta.unimplemented_in()) >= set(missing)


# --------------------------------------------------------------------------- COMMAND INFO

GET_INFO_RESP2 = (
    b"*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n*3\r\n+@read\r\n"
    b"+@string\r\n+@fast\r\n*0\r\n*1\r\n*6\r\n$5\r\nflags\r\n*2\r\n+RO\r\n+access\r\n"
    b"$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n"
    b":1\r\n$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n*6\r\n$7\r\nlastkey\r\n"
    b":0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n*0\r\n"
)
GET_INFO_RESP3 = (
    b"*10\r\n$3\r\nget\r\n:2\r\n~2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n~3\r\n+@read\r\n"
    b"+@string\r\n+@fast\r\n~0\r\n~1\r\n%3\r\n$5\r\nflags\r\n~2\r\n+RO\r\n+access\r\n"
    b"$12\r\nbegin_search\r\n%2\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n%1\r\n$5\r\nindex\r\n"
    b":1\r\n$9\r\nfind_keys\r\n%2\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n%3\r\n$7\r\nlastkey\r\n"
    b":0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n~0\r\n"
)


def test_info_entry_is_byte_identical_to_redis_for_get(clean_registry):
    """Bytes captured from redis-server 7.0.15 (`COMMAND INFO get`, outer array header removed)."""
    _register_basics()
    entry = meta.command_info_entry(registry.COMMANDS[b"get"])
    assert encode(entry, 2) == GET_INFO_RESP2
    assert encode(entry, 3) == GET_INFO_RESP3


def test_info_entry_takes_behaviour_from_our_spec(clean_registry):
    command("GET", arity=-2, flags="write fast readonly".replace("readonly", "denyoom"),
            keys=(1, -1, 1), group="string")(_noop)
    name, arity, flags, first, last, step, acl, tips, key_specs, subs = meta.command_info_entry(
        registry.COMMANDS[b"get"])
    assert (name, arity, list(flags), first, last, step) == (
        b"get", -2, ["write", "denyoom", "fast"], 1, -1, 1)
    assert isinstance(flags, SetReply) and isinstance(acl, SetReply) and isinstance(subs, SetReply)
    assert list(acl) == ["@read", "@string", "@fast"]  # documentation still comes from Redis


def test_hidden_flags_are_not_printed(clean_registry):
    command("SETEX", arity=4, flags="write denyoom may_replicate protected", keys=(1, 1, 1),
            group="string")(_noop)
    assert list(meta.command_info_entry(registry.COMMANDS[b"setex"])[2]) == ["write", "denyoom"]


def test_container_lists_only_registered_subcommands(clean_registry):
    _register_basics()
    entry = meta.command_info_entry(registry.COMMANDS[b"config"])
    assert entry[:9] == [b"config", -2, [], 0, 0, 0, ["@slow"], [], []]
    assert type(entry[9]) is list
    assert [sub[0] for sub in entry[9]] == [b"config|get", b"config|set"]
    assert entry[9][1][8] == [] and list(entry[9][1][7]) == [
        b"request_policy:all_nodes", b"response_policy:all_succeeded"]


def test_container_without_registered_subcommands_still_replies_as_container(clean_registry):
    container("CLIENT", arity=-2, group="connection")
    entry = meta.command_info_entry(registry.COMMANDS[b"client"])
    assert type(entry[9]) is list and entry[9] == []
    assert encode(entry, 3).endswith(b"*0\r\n")
    assert meta.command_docs_entry(registry.COMMANDS[b"client"])[b"subcommands"] == {}


def test_command_info_by_name(clean_registry):
    _register_basics()
    reply = _cmd("COMMAND", "INFO", "GET", "nosuch", "get|x", "config|get", "CONFIG|nosuch",
                 "config|get|x", "", "object|encoding", "config|rewrite")
    assert [None if e is None else e[0] for e in reply] == [
        b"get", None, None, b"config|get", None, None, None, b"object|encoding", None]
    assert reply[7][3:6] == [2, 2, 1]


def test_command_and_command_info_list_everything(clean_registry):
    _register_basics()
    names = [e[0] for e in _cmd("COMMAND")]
    assert names == [b"bitfield", b"config", b"get", b"lmove", b"mset", b"object", b"ping",
                     b"set", b"spublish"]
    assert _cmd("COMMAND", "INFO") == _cmd("COMMAND")
    assert _cmd("COMMAND", "COUNT") == 9


# --------------------------------------------------------------------------- COMMAND DOCS

def test_docs_reply(clean_registry):
    _register_basics()
    reply = _cmd("COMMAND", "DOCS", "get", "nosuch", "CONFIG|GET")
    assert list(reply) == [b"get", b"config|get"]
    assert reply[b"get"] == {
        b"summary": b"Get the value of a key", b"since": b"1.0.0", b"group": b"string",
        b"complexity": b"O(1)",
        b"arguments": [{b"name": b"key", b"type": b"key", b"key_spec_index": 0}],
    }
    assert list(reply[b"config|get"]) == [b"summary", b"since", b"group", b"complexity",
                                          b"history", b"arguments"]
    history = reply[b"config|get"][b"history"]
    assert isinstance(history, SetReply) and history[0][0] == b"7.0.0"


def test_docs_types_follow_redis(clean_registry):
    _register_basics()
    docs = _cmd("COMMAND", "DOCS", "set")[b"set"]
    condition = docs[b"arguments"][2]
    assert condition[b"flags"] == ["optional"] and isinstance(condition[b"flags"], SetReply)
    assert condition[b"arguments"][0] == {b"name": b"nx", b"type": b"pure-token", b"token": b"NX"}
    assert encode({b"x": docs[b"arguments"][2][b"flags"]}, 3) == b"%1\r\n$1\r\nx\r\n~1\r\n+optional\r\n"


def test_docs_nest_registered_subcommands(clean_registry):
    _register_basics()
    docs = _cmd("COMMAND", "DOCS", "config")[b"config"]
    assert list(docs) == [b"summary", b"since", b"group", b"complexity", b"subcommands"]
    assert list(docs[b"subcommands"]) == [b"config|get", b"config|set"]
    assert set(_cmd("COMMAND", "DOCS")) == {e[0] for e in _cmd("COMMAND")}


def test_docs_of_a_shardis_only_command(clean_registry):
    command("SHARDISONLY", arity=1, group="server", route=Route.LOCAL)(_noop)
    assert _cmd("COMMAND", "DOCS", "shardisonly") == {b"shardisonly": {b"group": b"server"}}
    assert meta.command_info_entry(registry.COMMANDS[b"shardisonly"])[6:9] == [[], [], []]


# --------------------------------------------------------------------------- COMMAND LIST

def test_list(clean_registry):
    _register_basics()
    assert _cmd("COMMAND", "LIST") == [
        b"bitfield", b"config", b"config|get", b"config|set", b"get", b"lmove", b"mset", b"object",
        b"object|encoding", b"ping", b"set", b"spublish"]
    assert _cmd("COMMAND", "LIST", "filterby", "ACLCAT", "READ") == [b"get", b"object|encoding"]
    assert _cmd("COMMAND", "LIST", "FILTERBY", "aclcat", "@read") == []
    assert _cmd("COMMAND", "LIST", "FILTERBY", "aclcat", "nosuchcat") == []
    assert _cmd("COMMAND", "LIST", "FILTERBY", "PATTERN", "CONFIG*") == [
        b"config", b"config|get", b"config|set"]
    assert _cmd("COMMAND", "LIST", "FILTERBY", "PATTERN", "*|*") == [
        b"config|get", b"config|set", b"object|encoding"]
    assert _cmd("COMMAND", "LIST", "FILTERBY", "MODULE", "x") == []


@pytest.mark.parametrize("args", [
    ("foo",), ("FILTERBY",), ("FILTERBY", "aclcat"), ("FILTERBY", "foo", "x"),
    ("FILTERBY", "aclcat", "read", "x"),
])
def test_list_syntax_errors(clean_registry, args):
    assert _error("COMMAND", "LIST", *args) == "ERR syntax error"


@pytest.mark.parametrize("pattern, string, nocase, expected", [
    (b"*", b"", False, False),  # stringmatchlen never matches an empty string
    (b"*", b"x", False, True),
    (b"", b"", False, True),
    (b"", b"a", False, False),
    (b"a*", b"abc", False, True),
    (b"A*", b"abc", False, False),
    (b"A*", b"abc", True, True),
    (b"a?c", b"abc", False, True),
    (b"a?c", b"ac", False, False),
    (b"a[bx]c", b"abc", False, True),
    (b"a[^bx]c", b"abc", False, False),
    (b"a[a-c]c", b"abc", False, True),
    (b"a[c-a]c", b"abc", False, True),
    (b"a[A-C]c", b"abc", True, True),
    (b"a\\*c", b"a*c", False, True),
    (b"a\\*c", b"abc", False, False),
    (b"a[\\]]c", b"a]c", False, True),
    (b"a[b", b"ab", False, True),
    (b"*a*b*c*", b"xaybzc", False, True),
    (b"*a*b*c*d", b"xaybzc", False, False),
    (b"config*", b"config|get", False, True),
    (b"h*llo**", b"hello", False, True),
])
def test_glob_match(pattern, string, nocase, expected):
    assert meta.glob_match(pattern, string, nocase) is expected


# --------------------------------------------------------------------------- GETKEYS

def test_getkeys(clean_registry):
    _register_basics()
    assert _cmd("COMMAND", "GETKEYS", "get", "k") == [b"k"]
    assert _cmd("COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2") == [b"a", b"b"]
    assert _cmd("COMMAND", "GETKEYS", "object", "ENCODING", "k") == [b"k"]


def test_getkeysandflags_uses_redis_key_specs(clean_registry):
    _register_basics()
    assert _cmd("COMMAND", "GETKEYSANDFLAGS", "lmove", "a", "b", "left", "right") == [
        [b"a", ["RW", "access", "delete"]], [b"b", ["RW", "insert"]]]
    reply = _cmd("COMMAND", "GETKEYSANDFLAGS", "get", "k")
    assert isinstance(reply[0][1], SetReply)
    assert encode(reply, 2) == b"*1\r\n*2\r\n$1\r\nk\r\n*2\r\n+RO\r\n+access\r\n"
    assert encode(reply, 3) == b"*1\r\n*2\r\n$1\r\nk\r\n~2\r\n+RO\r\n+access\r\n"


@pytest.mark.parametrize("args, flags", [
    (("set", "k", "v"), ["OW", "update"]),
    (("set", "k", "v", "GET"), ["RW", "access", "update"]),
    (("set", "k", "get"), ["OW", "update"]),
    (("bitfield", "k", "get", "u8", "0"), ["RO", "access"]),
    (("bitfield", "k", "overflow", "wrap", "get", "u8", "0"), ["RO", "access"]),
    (("bitfield", "k", "get", "u8"), ["RW", "access", "update"]),
    (("bitfield", "k", "set", "u8", "0", "1"), ["RW", "access", "update"]),
])
def test_getkeysandflags_variable_flags(clean_registry, args, flags):
    """SET and BITFIELD declare variable_flags: Redis works the flags out from the arguments."""
    _register_basics()
    assert _cmd("COMMAND", "GETKEYSANDFLAGS", *args) == [[b"k", flags]]


def _sort_keys(argv):
    positions = [1]
    for i, arg in enumerate(argv):
        if arg.lower() == b"store" and i + 1 < len(argv):
            positions.append(i + 1)
    return positions


def test_getkeysandflags_for_keys_no_spec_can_place(clean_registry):
    """SORT's STORE key comes from its own key finder; Redis gives it the last spec's flags."""
    command("SORT", arity=-2, flags="write denyoom movablekeys", keys=(1, 1, 1), group="generic",
            getkeys=_sort_keys)(_noop)
    assert _cmd("COMMAND", "GETKEYSANDFLAGS", "sort", "k", "by", "x", "store", "d") == [
        [b"k", ["RO", "access"]], [b"d", ["OW", "update"]]]


def _numkeys_at_2(argv):
    return list(range(3, 3 + int(argv[2])))


def test_getkeys_errors(clean_registry):
    _register_basics()
    command("EVAL", arity=-3, flags="noscript stale skip_monitor no_mandatory_keys movablekeys",
            group="scripting", getkeys=_numkeys_at_2)(_noop)
    command("ZINTERCARD", arity=-3, flags="readonly movablekeys", group="sorted-set",
            getkeys=lambda argv: list(range(2, 2 + int(argv[1]))))(_noop)
    assert _error("COMMAND", "GETKEYS", "nosuch", "k") == "ERR Invalid command specified"
    assert _error("COMMAND", "GETKEYS", "config", "nosuch") == "ERR Invalid command specified"
    assert _error("COMMAND", "GETKEYS", "get|x", "k") == "ERR Invalid command specified"
    assert _error("COMMAND", "GETKEYS", "config", "get") == "ERR The command has no key arguments"
    assert _error("COMMAND", "GETKEYS", "ping", "a", "b") == "ERR The command has no key arguments"
    assert _error("COMMAND", "GETKEYS", "spublish", "c", "m") == "ERR The command has no key arguments"
    assert _error("COMMAND", "GETKEYS", "get", "a", "b") == (
        "ERR Invalid number of arguments specified for command")
    assert _error("COMMAND", "GETKEYS", "lmove", "a", "b") == (
        "ERR Invalid number of arguments specified for command")
    assert _error("COMMAND", "GETKEYS", "zintercard", "0", "a") == (
        "ERR Invalid arguments specified for command")
    assert _error("COMMAND", "GETKEYS", "zintercard", "x", "a") == (
        "ERR Invalid arguments specified for command")
    assert _error("COMMAND", "GETKEYS", "zintercard", "5", "a") == (
        "ERR Invalid arguments specified for command")
    assert _cmd("COMMAND", "GETKEYS", "eval", "s", "0") == []
    assert _cmd("COMMAND", "GETKEYS", "eval", "s", "1", "k") == [b"k"]


def test_getkeys_follows_redis_key_specs_before_our_positions(clean_registry):
    """PFMERGE's second spec starts at argv[2]: with one key Redis finds no keys at all."""
    command("PFMERGE", arity=-2, flags="write denyoom", keys=(1, -1, 1), group="hyperloglog")(_noop)
    assert _error("COMMAND", "GETKEYS", "pfmerge", "d") == "ERR Invalid arguments specified for command"
    assert _cmd("COMMAND", "GETKEYSANDFLAGS", "pfmerge", "d", "s") == [
        [b"d", ["RW", "access", "insert"]], [b"s", ["RO", "access"]]]


def test_keys_and_flags_of_a_shardis_only_command(clean_registry):
    command("SHARDISKEYS", arity=-2, flags="readonly", keys=(1, -1, 1), group="generic")(_noop)
    spec = registry.COMMANDS[b"shardiskeys"]
    assert meta.keys_and_flags(spec, [b"shardiskeys", b"a", b"b"]) == [(1, []), (2, [])]
    assert _cmd("COMMAND", "GETKEYS", "shardiskeys", "a", "b") == [b"a", b"b"]


# --------------------------------------------------------------------------- COMMAND itself

def _register_flat_command() -> None:
    """COMMAND is one registered command whose handler is meta.command_reply."""
    command("COMMAND", arity=-1, flags="loading stale", group="server", route=Route.LOCAL)(
        lambda client, argv: meta.command_reply(argv))


def test_flat_command_lists_its_redis_subcommands(clean_registry):
    _register_flat_command()
    entry = meta.command_info_entry(registry.COMMANDS[b"command"])
    assert [sub[0] for sub in entry[9]] == [
        b"command|count", b"command|docs", b"command|getkeys", b"command|getkeysandflags",
        b"command|help", b"command|info", b"command|list"]
    assert entry[9][2][:6] == [b"command|getkeys", -4, ["loading", "stale"], 0, 0, 0]
    assert _cmd("COMMAND", "INFO", "command|docs")[0][1] == -2
    assert list(_cmd("COMMAND", "DOCS", "command")[b"command"][b"subcommands"])[0] == b"command|count"
    assert b"command|list" in _cmd("COMMAND", "LIST")
    assert "command|info" in meta.implemented_names()
    assert [n for n in meta.unimplemented_in("server") if n.startswith("command")] == []


def test_getkeys_looks_up_subcommands_of_flat_command(clean_registry):
    _register_flat_command()
    assert _error("COMMAND", "GETKEYS", "command", "nosuch") == "ERR Invalid command specified"
    assert _error("COMMAND", "GETKEYS", "command", "getkeys", "get", "k") == (
        "ERR The command has no key arguments")


# --------------------------------------------------------------------------- HELP and errors

def test_help():
    help_lines = _cmd("COMMAND", "HELP")
    assert len(help_lines) == 21 and all(type(line) is str for line in help_lines)
    assert help_lines[0] == "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    assert help_lines[-2:] == ["HELP", "    Prints this help."]


@pytest.mark.parametrize("args, message", [
    (("COMMAND", "COUNT", "x"), "ERR wrong number of arguments for 'command|count' command"),
    (("COMMAND", "HELP", "x"), "ERR wrong number of arguments for 'command|help' command"),
    (("COMMAND", "GETKEYS", "get"), "ERR wrong number of arguments for 'command|getkeys' command"),
    (("COMMAND", "getkeysandflags"),
     "ERR wrong number of arguments for 'command|getkeysandflags' command"),
    (("COMMAND", "foo"), "ERR unknown subcommand 'foo'. Try COMMAND HELP."),
    (("COMMAND", "count|x"), "ERR unknown subcommand 'count|x'. Try COMMAND HELP."),
])
def test_command_errors(args, message):
    assert _error(*args) == message


# --------------------------------------------------------------------------- the extractor

def test_extractor_moves_subcommand_docs_out_and_sorts():
    sub_b = ["box|b", -2, ["loading"], 0, 0, 0, ["@slow"], [], [], []]
    sub_a = ["box|a", 2, [], 0, 0, 0, ["@slow"], ["nondeterministic_output"], [], []]
    info = [["box", -2, [], 0, 0, 0, ["@slow"], [], [], [sub_b, sub_a]]]
    docs = {"box": {"summary": "A box", "group": "server",
                    "subcommands": {"box|b": {"summary": "B", "group": "server"},
                                    "box|a": {"summary": "A", "group": "server"}}}}
    records = extract_redis_meta.extract(info, docs)
    assert list(records) == ["box", "box|a", "box|b"]
    assert records["box"]["subcommands"] == ["box|a", "box|b"]
    assert records["box"]["docs"] == {"summary": "A box", "group": "server"}
    assert records["box|a"]["tips"] == ["nondeterministic_output"]
    assert records["box|b"]["docs"] == {"summary": "B", "group": "server"}
    text = extract_redis_meta.dump("7.0.15", records)
    assert json.loads(text) == {"redis_version": "7.0.15", "commands": records}
    assert text.count("\n") == 3 + len(records)  # header, "commands", one line each, closing
