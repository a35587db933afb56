"""Scripting commands (Redis group "scripting"): EVAL and friends, SCRIPT, FCALL, FUNCTION.

The runtime is commands/lua.py. Every script call declares `needs_global`, so it runs in global
mode: all shards parked and `db` a view over all of them. That makes a script atomic and lets it
touch keys it did not declare, on any shard (a queue moving items between undeclared keys, as
BullMQ and Sidekiq do). Commands that change the script cache or the function libraries are
`ALL`-routed for the same reason: they never run concurrently with a script. SCRIPT KILL, FUNCTION
KILL and FUNCTION STATS run on the loop (`LOCAL`), so they can answer while a script is busy.
"""

from __future__ import annotations

from commands import lua
from commands.args import try_int
from commands.registry import Route, command, container
from protocol.errors import CommandError
from protocol.replies import OK

__all__: list[str] = []


def _script_keys(argv: list[bytes]) -> list[int]:
    """KEYS of EVAL/FCALL (numkeys at argv[2]); none when numkeys is unusable (the handler errs)."""
    numkeys = try_int(argv[2]) if len(argv) > 2 else None
    if numkeys is None or numkeys < 1 or numkeys > len(argv) - 3:
        return []
    return list(range(3, 3 + numkeys))


def _always(argv: list[bytes]) -> bool:
    return True


_SCRIPT_FLAGS = "noscript stale skip_monitor no_mandatory_keys movablekeys may_replicate"
_SCRIPT_RO_FLAGS = "readonly " + _SCRIPT_FLAGS


@command("EVAL", arity=-3, flags=_SCRIPT_FLAGS, group="scripting", getkeys=_script_keys,
         needs_global=_always)
def eval_(db, argv):
    """EVAL script numkeys [key ...] [arg ...]"""
    return lua.run_eval(db, argv, by_sha=False, ro=False)


@command("EVALSHA", arity=-3, flags=_SCRIPT_FLAGS, group="scripting", getkeys=_script_keys,
         needs_global=_always)
def evalsha(db, argv):
    """EVALSHA sha1 numkeys [key ...] [arg ...]"""
    return lua.run_eval(db, argv, by_sha=True, ro=False)


@command("EVAL_RO", arity=-3, flags=_SCRIPT_RO_FLAGS, group="scripting", getkeys=_script_keys,
         needs_global=_always)
def eval_ro(db, argv):
    """EVAL_RO script numkeys [key ...] [arg ...] -- write commands are refused."""
    return lua.run_eval(db, argv, by_sha=False, ro=True)


@command("EVALSHA_RO", arity=-3, flags=_SCRIPT_RO_FLAGS, group="scripting",
         getkeys=_script_keys, needs_global=_always)
def evalsha_ro(db, argv):
    """EVALSHA_RO sha1 numkeys [key ...] [arg ...]"""
    return lua.run_eval(db, argv, by_sha=True, ro=True)


@command("FCALL", arity=-3, flags=_SCRIPT_FLAGS, group="scripting", getkeys=_script_keys,
         needs_global=_always)
def fcall(db, argv):
    """FCALL function numkeys [key ...] [arg ...]"""
    return lua.run_function(db, argv, ro=False)


@command("FCALL_RO", arity=-3, flags=_SCRIPT_RO_FLAGS, group="scripting", getkeys=_script_keys,
         needs_global=_always)
def fcall_ro(db, argv):
    """FCALL_RO function numkeys [key ...] [arg ...]"""
    return lua.run_function(db, argv, ro=True)


# -- SCRIPT ------------------------------------------------------------------------------------------

container("SCRIPT", arity=-2, group="scripting")


@command("SCRIPT|LOAD", arity=3, flags="noscript stale", group="scripting", route=Route.ALL)
def script_load(db, argv):
    """SCRIPT LOAD script -- compile and cache it; the reply is its sha1."""
    return lua.script_load(argv[2])


@command("SCRIPT|EXISTS", arity=-3, flags="noscript", group="scripting", route=Route.ALL)
def script_exists(db, argv):
    """SCRIPT EXISTS sha1 [sha1 ...]"""
    return lua.script_exists(argv[2:])


@command("SCRIPT|FLUSH", arity=-2, flags="noscript", group="scripting", route=Route.ALL)
def script_flush(db, argv):
    """SCRIPT FLUSH [ASYNC|SYNC]"""
    if len(argv) > 3 or (len(argv) == 3 and argv[2].lower() not in (b"sync", b"async")):
        raise CommandError("ERR SCRIPT FLUSH only support SYNC|ASYNC option")
    lua.script_flush()
    return OK


@command("SCRIPT|KILL", arity=2, flags="noscript allow_busy", group="scripting",
         route=Route.LOCAL)
def script_kill(client, argv):
    """SCRIPT KILL -- stop the running EVAL script, unless it has written."""
    error = lua.RUNNING.request_kill(from_eval=True)
    if error is not None:
        raise CommandError(error)
    return OK


_SCRIPT_HELP = [
    "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DEBUG (YES|SYNC|NO)",
    "    Set the debug mode for subsequent scripts executed.",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
    "HELP",
    "    Prints this help.",
]


@command("SCRIPT|HELP", arity=2, flags="loading stale", group="scripting", route=Route.LOCAL)
def script_help(client, argv):
    """SCRIPT HELP"""
    return list(_SCRIPT_HELP)


# -- FUNCTION ----------------------------------------------------------------------------------------

container("FUNCTION", arity=-2, group="scripting")


@command("FUNCTION|LOAD", arity=-3, flags="write denyoom noscript", group="scripting",
         route=Route.ALL)
def function_load(db, argv):
    """FUNCTION LOAD [REPLACE] code -- the library name. Propagated as received."""
    replace = False
    i = 2
    while i < len(argv) - 1:
        if argv[i].lower() == b"replace":
            replace = True
            i += 1
            continue
        raise CommandError(f"ERR Unknown option given: {argv[i].decode('utf-8', 'replace')}")
    if i != len(argv) - 1:
        raise CommandError("ERR Function code is missing")
    name = lua.function_load(argv[i], replace)
    db.store.dirty += 1
    return name


@command("FUNCTION|DELETE", arity=3, flags="write noscript", group="scripting", route=Route.ALL)
def function_delete(db, argv):
    """FUNCTION DELETE library-name"""
    lua.function_delete(argv[2])
    db.store.dirty += 1
    return OK


@command("FUNCTION|FLUSH", arity=-2, flags="write noscript", group="scripting", route=Route.ALL)
def function_flush(db, argv):
    """FUNCTION FLUSH [ASYNC|SYNC]"""
    if len(argv) > 3 or (len(argv) == 3 and argv[2].lower() not in (b"sync", b"async")):
        raise CommandError("ERR FUNCTION FLUSH only supports SYNC|ASYNC option")
    lua.function_flush()
    db.store.dirty += 1
    return OK


@command("FUNCTION|LIST", arity=-2, flags="noscript", group="scripting", route=Route.ALL)
def function_list(db, argv):
    """FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE]"""
    with_code = False
    pattern = None
    i = 2
    while i < len(argv):
        arg = argv[i].lower()
        if not with_code and arg == b"withcode":
            with_code = True
        elif pattern is None and arg == b"libraryname":
            if i >= len(argv) - 1:
                raise CommandError("ERR library name argument was not given")
            i += 1
            pattern = argv[i]
        else:
            raise CommandError(f"ERR Unknown argument {argv[i].decode('utf-8', 'replace')}")
        i += 1
    return lua.function_list(pattern, with_code)


@command("FUNCTION|DUMP", arity=2, flags="noscript", group="scripting", route=Route.ALL)
def function_dump(db, argv):
    """FUNCTION DUMP -- every library as a RESTORE payload."""
    return lua.function_dump()


@command("FUNCTION|RESTORE", arity=-3, flags="write denyoom noscript", group="scripting",
         route=Route.ALL)
def function_restore(db, argv):
    """FUNCTION RESTORE payload [FLUSH|APPEND|REPLACE]"""
    if len(argv) > 4:
        raise CommandError("ERR unknown subcommand or wrong number of arguments for "
                           f"'{argv[1].decode('utf-8', 'replace')[:128]}'. Try FUNCTION HELP.")
    policy = b"APPEND"
    if len(argv) == 4:
        policy = argv[3].upper()
        if policy not in (b"APPEND", b"REPLACE", b"FLUSH"):
            raise CommandError("ERR Wrong restore policy given, value should be either FLUSH, "
                               "APPEND or REPLACE.")
    lua.function_restore(argv[2], policy)
    db.store.dirty += 1
    return OK


@command("FUNCTION|KILL", arity=2, flags="noscript allow_busy", group="scripting",
         route=Route.LOCAL)
def function_kill(client, argv):
    """FUNCTION KILL -- stop the running function, unless it has written."""
    error = lua.RUNNING.request_kill(from_eval=False)
    if error is not None:
        raise CommandError(error)
    return OK


@command("FUNCTION|STATS", arity=2, flags="noscript allow_busy", group="scripting",
         route=Route.LOCAL)
def function_stats(client, argv):
    """FUNCTION STATS -- the running function, if any, and per-engine counts."""
    if lua.RUNNING.running and lua.RUNNING.is_eval:
        raise CommandError(lua._BUSY_EVAL)
    return lua.function_stats()


_FUNCTION_HELP = [
    "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, can be restored using "
    "FUNCTION RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is possible to give a restore "
    "policy to",
    "    control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace "
    "the old",
    "      libraries with the new libraries (notice that even on this option there is a chance of "
    "failure",
    "      in case of functions name collision with another library).",
    "HELP",
    "    Prints this help.",
]


@command("FUNCTION|HELP", arity=2, flags="loading stale", group="scripting", route=Route.LOCAL)
def function_help(client, argv):
    """FUNCTION HELP"""
    return list(_FUNCTION_HELP)
