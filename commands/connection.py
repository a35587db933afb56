"""Connection commands (Redis group "connection"): they run on the event loop with the client.

Handlers here take `(client, argv)`; `client` is the connection actor (see actors/connection.py)
and `client.server` the loop-side server state.
"""

from __future__ import annotations

import time

from commands.args import parse_int
from commands.registry import Route, command, container
from protocol.errors import SYNTAX_ERROR, CommandError
from protocol.replies import OK, Verbatim

__all__ = ["authenticate", "client_line"]

_WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."


def authenticate(client, username: bytes, password: bytes) -> None:
    """The default user is the only user: it has `requirepass` as password, or none (nopass)."""
    required = client.server.config["requirepass"]
    if username != b"default" or (required and password.decode("utf-8", "replace") != required):
        raise CommandError(_WRONGPASS)
    client.authenticated = True
    client.reader.authenticated = True


@command("AUTH", arity=-2, flags="noscript loading stale fast no_auth allow_busy",
         group="connection", route=Route.LOCAL)
def auth(client, argv):
    """AUTH [username] password"""
    if len(argv) > 3:
        raise CommandError(SYNTAX_ERROR)
    if len(argv) == 2:
        if not client.server.config["requirepass"]:
            raise CommandError(
                "ERR AUTH <password> called without any password configured for the default user. "
                "Are you sure your configuration is correct?")
        authenticate(client, b"default", argv[1])
    else:
        authenticate(client, argv[1], argv[2])
    return OK


def _check_name(name: bytes, what: str = "Client names") -> None:
    if any(c < 33 or c > 126 for c in name):
        raise CommandError(f"ERR {what} cannot contain spaces, newlines or special characters.")


@command("HELLO", arity=-1, flags="noscript loading stale fast no_auth allow_busy",
         group="connection", route=Route.LOCAL)
def hello(client, argv):
    """HELLO [protover [AUTH username password] [SETNAME clientname]]"""
    version = 0
    j = 1
    if len(argv) >= 2:
        version = parse_int(argv[1], "ERR Protocol version is not an integer or out of range")
        if version < 2 or version > 3:
            raise CommandError("NOPROTO unsupported protocol version")
        j = 2
    credentials = None
    name = None
    while j < len(argv):
        more = len(argv) - 1 - j
        opt = argv[j].lower()
        if opt == b"auth" and more >= 2:
            credentials = (argv[j + 1], argv[j + 2])
            j += 2
        elif opt == b"setname" and more:
            name = argv[j + 1]
            _check_name(name)
            j += 1
        else:
            raise CommandError(f"ERR Syntax error in HELLO option '{argv[j].decode('utf-8', 'replace')}'")
        j += 1
    if credentials is not None:
        authenticate(client, *credentials)
    if not client.authenticated:
        raise CommandError(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
            "HELLO AUTH <user> <pass> option can be used to authenticate the client and "
            "select the RESP protocol version at the same time")
    if name is not None:
        client.name = name
    if version:
        client.proto = version
    return {b"server": b"redis", b"version": b"7.0.15", b"proto": client.proto, b"id": client.id,
            b"mode": b"standalone", b"role": b"master", b"modules": []}


@command("PING", arity=-1, flags="fast", group="connection", route=Route.LOCAL)
def ping(client, argv):
    """PING [message]"""
    if len(argv) > 2:
        raise CommandError("ERR wrong number of arguments for 'ping' command")
    if client.subscribed and client.proto == 2:  # a RESP2 subscriber reads only arrays
        return [b"pong", argv[1] if len(argv) == 2 else b""]
    return "PONG" if len(argv) == 1 else argv[1]


@command("ECHO", arity=2, flags="loading stale fast", group="connection", route=Route.LOCAL)
def echo(client, argv):
    """ECHO message"""
    return argv[1]


@command("SELECT", arity=2, flags="loading stale fast", group="connection", route=Route.LOCAL)
def select(client, argv):
    """SELECT index"""
    index = parse_int(argv[1])
    if not 0 <= index < client.server.config["databases"]:
        raise CommandError("ERR DB index is out of range")
    client.db = index
    return OK


@command("QUIT", arity=-1, flags="noscript loading stale fast no_auth allow_busy",
         group="connection", route=Route.LOCAL)
def quit_(client, argv):
    """QUIT -- replies OK, then closes the connection."""
    client.close_after_reply()
    return OK


@command("RESET", arity=1, flags="noscript loading stale fast no_auth allow_busy",
         group="connection", route=Route.LOCAL)
def reset(client, argv):
    """RESET -- back to a fresh connection's state (db 0, RESP2, no name, re-authenticate)."""
    client.reset_state()
    return "RESET"


# -- CLIENT --------------------------------------------------------------------------------------

container("CLIENT", arity=-2, flags="sentinel", group="connection")


def _client_flags(client) -> str:
    """The `flags=` letters of CLIENT LIST, in Redis's order, for the states Shardis has."""
    flags = ""
    if client.replica_link is not None:
        flags += "S"
    if client.is_master:
        flags += "M"
    if client.kind == "pubsub":
        flags += "P"
    if client.multi is not None:
        flags += "x"
    if client.closing:
        flags += "c"
    if client.no_evict:
        flags += "e"
    return flags or "N"


def client_line(client) -> str:
    """One CLIENT LIST line, with the fields of Redis 7.0 (plus 7.2's lib-name/lib-ver)."""
    now = time.time()
    flags = _client_flags(client)
    subs = client.subscriptions
    multi = -1 if client.multi is None else len(client.multi)
    return (f"id={client.id} addr={client.addr} laddr={client.laddr} fd={client.fd} "
            f"name={client.name.decode('utf-8', 'replace')} age={int(now - client.created)} "
            f"idle={int(now - client.last_interaction)} flags={flags} db={client.db} "
            f"sub={len(subs['channels'])} psub={len(subs['patterns'])} ssub={len(subs['shard'])} "
            f"multi={multi} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=1024 rbp=0 obl=0 "
            f"oll=0 omem=0 tot-mem=0 events=r cmd={client.last_command} user=default redir=-1 "
            f"resp={client.proto} lib-name={client.lib_name.decode('utf-8', 'replace')} "
            f"lib-ver={client.lib_ver.decode('utf-8', 'replace')}")


_CLIENT_TYPES = ("normal", "master", "replica", "slave", "pubsub")


def _client_type(raw: bytes) -> str:
    kind = raw.decode("utf-8", "replace").lower()
    if kind not in _CLIENT_TYPES:
        raise CommandError(f"ERR Unknown client type '{raw.decode('utf-8', 'replace')}'")
    return "replica" if kind == "slave" else kind


@command("CLIENT|ID", arity=2, flags="noscript loading stale", group="connection",
         route=Route.LOCAL)
def client_id(client, argv):
    """CLIENT ID"""
    return client.id


@command("CLIENT|INFO", arity=2, flags="noscript loading stale", group="connection",
         route=Route.LOCAL)
def client_info(client, argv):
    """CLIENT INFO"""
    return Verbatim((client_line(client) + "\n").encode())


@command("CLIENT|LIST", arity=-2, flags="admin noscript loading stale", group="connection",
         route=Route.LOCAL)
def client_list(client, argv):
    """CLIENT LIST [TYPE normal|master|replica|pubsub] [ID id [id ...]]"""
    clients = list(client.server.clients.values())
    if len(argv) > 2:
        opt = argv[2].lower()
        if opt == b"type" and len(argv) == 4:
            kind = _client_type(argv[3])
            clients = [c for c in clients if c.kind == kind]
        elif opt == b"id" and len(argv) >= 4:
            ids = [parse_int(raw, "ERR Invalid client ID") for raw in argv[3:]]
            clients = [client.server.clients[i] for i in ids if i in client.server.clients]
        else:
            raise CommandError(SYNTAX_ERROR)
    return Verbatim("".join(client_line(c) + "\n" for c in clients).encode())


@command("CLIENT|SETNAME", arity=3, flags="noscript loading stale", group="connection",
         route=Route.LOCAL)
def client_setname(client, argv):
    """CLIENT SETNAME name -- an empty name clears it."""
    _check_name(argv[2])
    client.name = argv[2]
    return OK


@command("CLIENT|GETNAME", arity=2, flags="noscript loading stale", group="connection",
         route=Route.LOCAL)
def client_getname(client, argv):
    """CLIENT GETNAME"""
    return client.name or None


@command("CLIENT|SETINFO", arity=4, flags="noscript loading stale", group="connection",
         route=Route.LOCAL)
def client_setinfo(client, argv):
    """CLIENT SETINFO LIB-NAME|LIB-VER value (Redis 7.2's command; clients send it on connect)."""
    attr = argv[2].lower()
    if attr not in (b"lib-name", b"lib-ver"):
        raise CommandError(f"ERR Unrecognized option '{argv[2].decode('utf-8', 'replace')}'")
    _check_name(argv[3], attr.decode())
    if attr == b"lib-name":
        client.lib_name = argv[3]
    else:
        client.lib_ver = argv[3]
    return OK


@command("CLIENT|KILL", arity=-3, flags="admin noscript loading stale", group="connection",
         route=Route.LOCAL)
def client_kill(client, argv):
    """CLIENT KILL ip:port | CLIENT KILL [ID id] [TYPE type] [USER name] [ADDR a] [LADDR a] [SKIPME yes|no]

    Options are checked left to right, as Redis does, so the first bad one names the error; a
    trailing option without its value is a syntax error only once the options before it passed.
    """
    clients = client.server.clients
    if len(argv) == 3:
        # The old form may kill the caller itself: SKIPME does not apply.
        target = argv[2].decode("utf-8", "replace")
        victims = [c for c in clients.values() if c.addr == target]
        if not victims:
            raise CommandError("ERR No such client")
        _kill(client, victims)
        return OK
    tests = []
    skip_me = True
    i = 2
    while i < len(argv):
        opt = argv[i].lower()
        if i + 1 >= len(argv):
            raise CommandError(SYNTAX_ERROR)
        raw = argv[i + 1]
        text = raw.decode("utf-8", "replace")
        if opt == b"id":
            wanted = parse_int(raw, "ERR client-id should be greater than 0")
            if wanted <= 0:
                raise CommandError("ERR client-id should be greater than 0")
            tests.append(lambda c, w=wanted: c.id == w)
        elif opt == b"type":
            kind = _client_type(raw)
            tests.append(lambda c, k=kind: c.kind == k)
        elif opt == b"addr":
            tests.append(lambda c, a=text: c.addr == a)
        elif opt == b"laddr":
            tests.append(lambda c, a=text: c.laddr == a)
        elif opt == b"user":
            if raw != b"default":
                raise CommandError(f"ERR No such user '{text}'")
        elif opt == b"skipme":
            if raw.lower() not in (b"yes", b"no"):
                raise CommandError(SYNTAX_ERROR)
            skip_me = raw.lower() == b"yes"
        else:
            raise CommandError(SYNTAX_ERROR)
        i += 2
    victims = [c for c in list(clients.values())
               if all(t(c) for t in tests) and not (skip_me and c is client)]
    _kill(client, victims)
    return len(victims)


def _kill(client, victims) -> None:
    for victim in victims:
        if victim is client:
            client.close_after_reply()
        else:
            victim.close()


@command("CLIENT|REPLY", arity=3, flags="noscript loading stale", group="connection",
         route=Route.LOCAL)
def client_reply(client, argv):
    """CLIENT REPLY ON|OFF|SKIP -- only ON answers; OFF and SKIP are silent, as in Redis.

    OFF silences itself through `reply_on`; SKIP silences itself (`suppress_reply`) and sets
    `skip_next_reply`, which the connection turns into "skip this reply" when the next command
    starts; ON cancels a skip still pending for itself (`skip_this_reply`).
    """
    mode = argv[2].lower()
    if mode == b"on":
        client.reply_on = True
        client.skip_this_reply = False
        return OK
    if mode == b"off":
        client.reply_on = False
    elif mode == b"skip":
        if client.reply_on:
            client.suppress_reply()
            client.skip_next_reply = True
    else:
        raise CommandError(SYNTAX_ERROR)
    return OK


@command("CLIENT|NO-EVICT", arity=3, flags="admin noscript loading stale", group="connection",
         route=Route.LOCAL)
def client_no_evict(client, argv):
    """CLIENT NO-EVICT ON|OFF"""
    mode = argv[2].lower()
    if mode not in (b"on", b"off"):
        raise CommandError(SYNTAX_ERROR)
    client.no_evict = mode == b"on"
    return OK


@command("CLIENT|PAUSE", arity=-3, flags="admin noscript loading stale", group="connection",
         route=Route.LOCAL)
def client_pause(client, argv):
    """CLIENT PAUSE timeout [WRITE|ALL] -- the mode is checked before the timeout, as in Redis."""
    if len(argv) > 4:
        raise _subcommand_syntax_error(argv)
    mode = "all"
    if len(argv) == 4:
        raw = argv[3].lower()
        if raw not in (b"write", b"all"):
            raise CommandError("ERR CLIENT PAUSE mode must be WRITE or ALL")
        mode = raw.decode()
    timeout = parse_int(argv[2], "ERR timeout is not an integer or out of range")
    if timeout < 0:
        raise CommandError("ERR timeout is negative")
    client.server.pause(timeout, mode)
    return OK


def _subcommand_syntax_error(argv) -> CommandError:
    """Redis's addReplySubcommandSyntaxError: the subcommand as typed, the command upper-cased."""
    return CommandError(
        f"ERR unknown subcommand or wrong number of arguments for "
        f"'{argv[1].decode('utf-8', 'replace')[:128]}'. Try {argv[0].decode('utf-8', 'replace').upper()} HELP.")


@command("CLIENT|UNPAUSE", arity=2, flags="admin noscript loading stale", group="connection",
         route=Route.LOCAL)
def client_unpause(client, argv):
    """CLIENT UNPAUSE"""
    client.server.unpause()
    return OK


_CLIENT_HELP = [
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CACHING (YES|NO)",
    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Control server assisted client side caching.",
    "TRACKINGINFO",
    "    Report tracking status for the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "HELP",
    "    Prints this help.",
]


@command("CLIENT|HELP", arity=2, flags="loading stale", group="connection", route=Route.LOCAL)
def client_help(client, argv):
    """CLIENT HELP"""
    return list(_CLIENT_HELP)




