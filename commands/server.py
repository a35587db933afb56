"""Server commands (Redis group "server"): COMMAND, CONFIG, INFO, DEBUG, FLUSH*, SWAPDB, TIME ...

LOCAL handlers take `(client, argv)`; ALL handlers take `(db, argv)` with `db` a view over every
shard (global mode), so FLUSHALL and SWAPDB are atomic across shards.
"""

from __future__ import annotations

import os
import platform
import re
import resource
import threading
import time

from commands import meta
from commands.args import try_int
from commands.generic import db_index
from commands.registry import Route, command, container
from keyspace.digest import dataset_digest, digest_value_replies
from keyspace.encoding import is_shared_integer, object_encoding
from protocol.errors import NO_SUCH_KEY, SYNTAX_ERROR, CommandError
from protocol.replies import OK, Verbatim

__all__ = ["info_text"]


# -- COMMAND -------------------------------------------------------------------------------------------

@command("COMMAND", arity=-1, flags="loading stale", group="server", route=Route.LOCAL)
def command_(client, argv):
    """COMMAND [COUNT|INFO|DOCS|LIST|GETKEYS|GETKEYSANDFLAGS|HELP ...] -- generated from the table."""
    return meta.command_reply(argv)


# Each subcommand is registered (same handler) so that INFO commandstats counts `command|docs`,
# which redis-cli calls on connect, apart from `command`, as Redis does.
for _sub, _arity in (("COUNT", 2), ("DOCS", -2), ("GETKEYS", -4), ("GETKEYSANDFLAGS", -4),
                     ("HELP", 2), ("INFO", -2), ("LIST", -2)):
    command(f"COMMAND|{_sub}", arity=_arity, flags="loading stale", group="server",
            route=Route.LOCAL)(command_)


# -- CONFIG --------------------------------------------------------------------------------------------

container("CONFIG", arity=-2, group="server")


def _config_call(fn, *args):
    try:
        return fn(*args)
    except Exception as exc:  # config raises ConfigSetError, which must not import protocol
        message = getattr(exc, "message", None)
        if message is None:
            raise
        raise CommandError(message) from None


@command("CONFIG|GET", arity=-3, flags="admin noscript loading stale", group="server",
         route=Route.LOCAL)
def config_get(client, argv):
    """CONFIG GET parameter [parameter ...] -- glob patterns; a map in RESP3."""
    return _config_call(client.server.config.config_get, argv[2:])


@command("CONFIG|SET", arity=-4, flags="admin noscript loading stale", group="server",
         route=Route.LOCAL)
def config_set(client, argv):
    """CONFIG SET parameter value [parameter value ...] -- all or nothing."""
    _config_call(client.server.config.config_set, argv[2:])
    return OK


@command("CONFIG|RESETSTAT", arity=2, flags="admin noscript loading stale", group="server",
         route=Route.LOCAL)
def config_resetstat(client, argv):
    """CONFIG RESETSTAT"""
    client.server.reset_stats(client)
    return OK


@command("CONFIG|REWRITE", arity=2, flags="admin noscript loading stale", group="server",
         route=Route.LOCAL)
def config_rewrite(client, argv):
    """CONFIG REWRITE"""
    _config_call(client.server.config.rewrite)
    return OK


@command("CONFIG|HELP", arity=2, flags="loading stale", group="server", route=Route.LOCAL)
def config_help(client, argv):
    """CONFIG HELP"""
    return ["CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
            "HELP",
            "    Prints this help."]


# -- dataset-wide commands (global mode) ----------------------------------------------------------------

@command("DBSIZE", arity=1, flags="readonly fast", group="server", route=Route.ALL)
def dbsize(db, argv):
    """DBSIZE"""
    return len(db)


def _flush_mode(argv) -> None:
    """Redis's getFlushCommandFlags: nothing, or exactly one of ASYNC and SYNC."""
    if len(argv) > 2 or (len(argv) == 2 and argv[1].lower() not in (b"sync", b"async")):
        raise CommandError(SYNTAX_ERROR)


@command("FLUSHDB", arity=-1, flags="write", group="server", route=Route.ALL)
def flushdb(db, argv):
    """FLUSHDB [ASYNC|SYNC]"""
    _flush_mode(argv)
    db.store.dirty += len(db)
    db.flush()
    return OK


@command("FLUSHALL", arity=-1, flags="write", group="server", route=Route.ALL)
def flushall(db, argv):
    """FLUSHALL [ASYNC|SYNC]"""
    _flush_mode(argv)
    removed = sum(len(d) for d in db.store.dbs)
    for d in db.store.dbs:
        d.flush()
    db.store.dirty += removed + 1
    return OK


@command("SWAPDB", arity=3, flags="write fast", group="server", route=Route.ALL)
def swapdb(db, argv):
    """SWAPDB index1 index2"""
    a = db_index(db, argv[1], "ERR invalid first DB index")
    b = db_index(db, argv[2], "ERR invalid second DB index")
    if a != b:
        db.store.swap(a, b)
        db.store.dirty += 1
    return OK


# -- DEBUG ------------------------------------------------------------------------------------------------

_DEBUG_HELP = [
    "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DIGEST",
    "    Output a hex signature representing the current DB content.",
    "DIGEST-VALUE <key> [<key> ...]",
    "    Output a hex signature of the values of all the specified keys.",
    "OBJECT <key>",
    "    Show low level info about `key` and associated value.",
    "SET-ACTIVE-EXPIRE <0|1>",
    "    Setting it to 0 disables expiring keys in background when they are not",
    "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
    "    default.",
    "SLEEP <seconds>",
    "    Stop the server for <seconds>. Decimals allowed.",
    "HELP",
    "    Prints this help.",
]


def _all_items(store):
    for d in store.dbs:
        expires = d.expires
        for key in list(d.keys()):
            yield d.index, key, d.get(key), expires.get(key)


_STRTOD_PREFIX = re.compile(rb"\s*[+-]?(?:inf(?:inity)?|nan|(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)",
                            re.IGNORECASE)
_ATOI_PREFIX = re.compile(rb"\s*[+-]?\d+")


def _strtod(raw: bytes) -> float:
    """C strtod(s, NULL) as DEBUG SLEEP uses it: the longest numeric prefix, 0 when there is none."""
    match = _STRTOD_PREFIX.match(raw)
    return float(match.group()) if match else 0.0


def _atoi(raw: bytes) -> int:
    """C atoi as DEBUG SET-ACTIVE-EXPIRE uses it: the leading integer, 0 when there is none."""
    match = _ATOI_PREFIX.match(raw)
    return int(match.group()) if match else 0


def _rdb_len_size(n: int) -> int:
    """Bytes of an RDB length prefix (rdbSaveLen)."""
    return 1 if n < 1 << 6 else 2 if n < 1 << 14 else 5 if n <= 0xFFFFFFFF else 9


def _rdb_int_size(n: int) -> int:
    """Bytes of an integer-encoded RDB string (rdbEncodeInteger), 0 when it needs the string form."""
    if -(1 << 7) <= n < 1 << 7:
        return 2
    if -(1 << 15) <= n < 1 << 15:
        return 3
    if -(1 << 31) <= n < 1 << 31:
        return 5
    return 0


def _serialized_length(value, encoding: str) -> int:
    """DEBUG OBJECT serializedlength for strings: what rdbSaveStringObject writes without LZF.

    Redis tries LZF on strings longer than 20 bytes; Shardis reports those uncompressed.
    """
    if not isinstance(value, bytes):
        return len(value) + 1
    if encoding == "int" or len(value) <= 11:
        number = try_int(value)
        if number is not None and (size := _rdb_int_size(number)):
            return size
    return _rdb_len_size(len(value)) + len(value)


@command("DEBUG", arity=-2, flags="admin noscript loading stale", group="server", route=Route.ALL)
def debug(db, argv):
    """DEBUG DIGEST|DIGEST-VALUE|OBJECT|SLEEP|SET-ACTIVE-EXPIRE|HELP -- runs with every shard parked."""
    sub = argv[1].lower()
    n = len(argv)
    if sub == b"help" and n == 2:
        return list(_DEBUG_HELP)
    if sub == b"digest" and n == 2:
        return dataset_digest(_all_items(db.store))
    if sub == b"digest-value" and n >= 2:
        values = [db.get(k) for k in argv[2:]]
        expires = [db.ttl(k) if v is not None else None for k, v in zip(argv[2:], values)]
        return list(digest_value_replies(values, expires))
    if sub == b"object" and n == 3:
        value = db.get(argv[2])
        if value is None:
            raise CommandError(NO_SUCH_KEY)
        encoding = object_encoding(value, db.store.config)
        refcount = 2147483647 if is_shared_integer(value) else 1
        return (f"Value at:0x{id(value):x} refcount:{refcount} encoding:{encoding} "
                f"serializedlength:{_serialized_length(value, encoding)} "
                f"lru:{int(time.time()) & 0xFFFFFF} lru_seconds_idle:0")
    if sub == b"sleep" and n == 3:
        seconds = _strtod(argv[2])
        if 0 < seconds < float("inf"):  # nanosleep refuses what does not fit a timespec
            time.sleep(seconds)
        return OK
    if sub == b"set-active-expire" and n == 3:
        enabled = bool(_atoi(argv[2]))
        for store in getattr(db.store, "parts", [db.store]):
            store.active_expire_enabled = enabled
        return OK
    raise CommandError(f"ERR unknown subcommand or wrong number of arguments for "
                       f"'{argv[1].decode('utf-8', 'replace')[:128]}'. Try DEBUG HELP.")


# -- misc ------------------------------------------------------------------------------------------------

@command("TIME", arity=1, flags="loading stale fast", group="server", route=Route.LOCAL)
def time_(client, argv):
    """TIME -- [unix seconds, microseconds] as bulk strings."""
    now = time.time_ns() // 1000
    return [b"%d" % (now // 1_000_000), b"%d" % (now % 1_000_000)]


@command("LASTSAVE", arity=1, flags="loading stale fast", group="server", route=Route.LOCAL)
def lastsave(client, argv):
    """LASTSAVE"""
    return client.server.lastsave


@command("SHUTDOWN", arity=-1, flags="admin noscript loading stale no_multi sentinel allow_busy",
         group="server", route=Route.LOCAL)
def shutdown(client, argv):
    """SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]"""
    flags = set()
    for raw in argv[1:]:
        opt = raw.lower()
        if opt not in (b"nosave", b"save", b"now", b"force", b"abort"):
            raise CommandError(SYNTAX_ERROR)
        flags.add(opt)
    if b"nosave" in flags and b"save" in flags:
        raise CommandError(SYNTAX_ERROR)
    if b"abort" in flags:
        if len(flags) > 1:
            raise CommandError(SYNTAX_ERROR)
        raise CommandError("ERR No shutdown in progress.")
    client.server.request_shutdown("User requested shutdown")
    client.close_after_reply()
    client.suppress_reply()
    return OK


# -- INFO -------------------------------------------------------------------------------------------------

_DEFAULT_SECTIONS = ["server", "clients", "memory", "persistence", "stats", "replication", "cpu",
                     "modules", "errorstats", "cluster", "keyspace"]
_ALL_SECTIONS = ["server", "clients", "memory", "persistence", "stats", "replication", "cpu",
                 "modules", "commandstats", "errorstats", "latencystats", "cluster", "keyspace",
                 "actors"]


def _human(n: float) -> str:
    for unit, size in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return f"{int(n)}B"


def _section_server(server) -> list[str]:
    cfg = server.config
    uptime = int(time.time() - server.start_time)
    uname = platform.uname()
    return [
        "redis_version:7.0.15", "shardis_version:" + server.version,
        "redis_git_sha1:00000000", "redis_git_dirty:0", "redis_build_id:0",
        "redis_mode:standalone", f"os:{uname.system} {uname.release} {uname.machine}",
        "arch_bits:64", "monotonic_clock:POSIX clock_gettime", "multiplexing_api:" + server.loop_kind,
        "atomicvar_api:python-gil", "gcc_version:0.0.0", f"process_id:{os.getpid()}",
        "process_supervised:no", f"run_id:{server.run_id}", f"tcp_port:{cfg['port']}",
        f"server_time_usec:{time.time_ns() // 1000}", f"uptime_in_seconds:{uptime}",
        f"uptime_in_days:{uptime // 86400}", f"hz:{cfg['hz']}", f"configured_hz:{cfg['hz']}",
        f"lru_clock:{int(time.time()) & 0xFFFFFF}", f"executable:{server.executable}",
        f"config_file:{server.config.config_file or ''}", "io_threads_active:0",
        f"shards:{server.shard_map.count}",
    ]


def _section_clients(server) -> list[str]:
    return [
        f"connected_clients:{len(server.clients)}", "cluster_connections:0",
        f"maxclients:{server.config['maxclients']}", "client_recent_max_input_buffer:0",
        "client_recent_max_output_buffer:0", f"blocked_clients:{server.blocked_clients()}",
        "tracking_clients:0",
        "clients_in_timeout_table:0",
    ]


def _rss() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


_STARTUP_MEMORY = _rss()
"""Resident memory once the command table is loaded, before any data: `used_memory_startup`."""


def _section_memory(server) -> list[str]:
    """Redis's fields. Shardis has no allocator statistics of its own: the allocator and RSS figures
    are all the process's resident memory, so the ratios between them are 1 and the gaps 0."""
    rss = server.used_memory()
    peak = max(server.peak_memory, rss)
    server.peak_memory = peak
    startup = min(_STARTUP_MEMORY, rss)
    dataset = rss - startup
    maxmemory = server.config["maxmemory"]
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return [
        f"used_memory:{rss}", f"used_memory_human:{_human(rss)}", f"used_memory_rss:{rss}",
        f"used_memory_rss_human:{_human(rss)}", f"used_memory_peak:{peak}",
        f"used_memory_peak_human:{_human(peak)}", f"used_memory_peak_perc:{100 * rss / peak:.2f}%",
        f"used_memory_overhead:{startup}", f"used_memory_startup:{startup}",
        f"used_memory_dataset:{dataset}",
        f"used_memory_dataset_perc:{100.0 if dataset else 0.0:.2f}%",
        f"allocator_allocated:{rss}", f"allocator_active:{rss}", f"allocator_resident:{rss}",
        f"total_system_memory:{total}", f"total_system_memory_human:{_human(total)}",
        "used_memory_lua:0", "used_memory_vm_eval:0", "used_memory_lua_human:0B",
        "used_memory_scripts_eval:0", "number_of_cached_scripts:0", "number_of_functions:0",
        "number_of_libraries:0", "used_memory_vm_functions:0", "used_memory_vm_total:0",
        "used_memory_vm_total_human:0B", "used_memory_functions:0", "used_memory_scripts:0",
        "used_memory_scripts_human:0B",
        f"maxmemory:{maxmemory}", f"maxmemory_human:{_human(maxmemory)}",
        f"maxmemory_policy:{server.config['maxmemory-policy']}",
        "allocator_frag_ratio:1.00", "allocator_frag_bytes:0", "allocator_rss_ratio:1.00",
        "allocator_rss_bytes:0", "rss_overhead_ratio:1.00", "rss_overhead_bytes:0",
        "mem_fragmentation_ratio:1.00", "mem_fragmentation_bytes:0", "mem_not_counted_for_evict:0",
        f"mem_replication_backlog:{server.replication.backlog_memory()}",
        "mem_total_replication_buffers:0", "mem_clients_slaves:0",
        "mem_clients_normal:0", "mem_cluster_links:0", "mem_aof_buffer:0",
        "mem_allocator:pymalloc", "active_defrag_running:0", "lazyfree_pending_objects:0",
        "lazyfreed_objects:0",
    ]


_PERSISTENCE_ORDER = (
    "loading async_loading current_cow_peak current_cow_size current_cow_size_age "
    "current_fork_perc current_save_keys_processed current_save_keys_total "
    "rdb_changes_since_last_save rdb_bgsave_in_progress rdb_last_save_time rdb_last_bgsave_status "
    "rdb_last_bgsave_time_sec rdb_current_bgsave_time_sec rdb_saves rdb_last_cow_size "
    "rdb_last_load_keys_expired rdb_last_load_keys_loaded aof_enabled aof_rewrite_in_progress "
    "aof_rewrite_scheduled aof_last_rewrite_time_sec aof_current_rewrite_time_sec "
    "aof_last_bgrewrite_status aof_rewrites aof_rewrites_consecutive_failures "
    "aof_last_write_status aof_last_cow_size module_fork_in_progress module_fork_last_cow_size "
    "aof_current_size aof_base_size aof_pending_rewrite aof_buffer_length aof_pending_bio_fsync "
    "aof_delayed_fsync shardis_last_snapshot_pause_ms").split()
_PERSISTENCE_DEFAULTS = {
    "async_loading": "0", "current_cow_peak": "0", "current_cow_size": "0",
    "current_cow_size_age": "0", "current_fork_perc": "0.00", "current_save_keys_processed": "0",
    "current_save_keys_total": "0", "rdb_last_cow_size": "0", "rdb_last_load_keys_expired": "0",
    "rdb_last_load_keys_loaded": "0", "aof_rewrites_consecutive_failures": "0",
    "aof_last_cow_size": "0", "module_fork_in_progress": "0", "module_fork_last_cow_size": "0",
}


def _section_persistence(server) -> list[str]:
    """Redis's field order; the values come from actors/durability.py (there is no fork, so the
    copy-on-write fields are 0)."""
    values = dict(_PERSISTENCE_DEFAULTS)
    for line in server.durability.info_fields():
        name, _, value = line.partition(":")
        values[name] = value
    return [f"{name}:{values[name]}" for name in _PERSISTENCE_ORDER if name in values]


def _all_exec_stats(server):
    return [server.local_stats] + [a.stats for a in server.shard_actors]


def _section_stats(server) -> list[str]:
    stats = _all_exec_stats(server)
    # As in Redis, a command refused before it ran (arity, NOAUTH ...) is an error reply but not
    # a processed command.
    processed = sum(c[0] for s in stats for c in list(s.commands.values()))
    errors = sum(sum(list(s.errors.values())) for s in stats) + sum(server.rejected.values())
    stores = server.stores
    return [
        f"total_connections_received:{server.total_connections}",
        f"total_commands_processed:{processed}", "instantaneous_ops_per_sec:0",
        "total_net_input_bytes:0", "total_net_output_bytes:0", "total_net_repl_input_bytes:0",
        "total_net_repl_output_bytes:0", "instantaneous_input_kbps:0.00",
        "instantaneous_output_kbps:0.00", "instantaneous_input_repl_kbps:0.00",
        "instantaneous_output_repl_kbps:0.00", f"rejected_connections:{server.rejected_connections}",
        f"sync_full:{server.replication.sync_full}",
        f"sync_partial_ok:{server.replication.sync_partial_ok}",
        f"sync_partial_err:{server.replication.sync_partial_err}",
        f"expired_keys:{sum(s.expired_keys for s in stores)}", "expired_stale_perc:0.00",
        "expired_time_cap_reached_count:0", "expire_cycle_cpu_milliseconds:0", "evicted_keys:0",
        "evicted_clients:0", "total_eviction_exceeded_time:0", "current_eviction_exceeded_time:0",
        f"keyspace_hits:{sum(s.keyspace_hits for s in stores)}",
        f"keyspace_misses:{sum(s.keyspace_misses for s in stores)}",
        f"pubsub_channels:{len(server.broker_actor.subs['channels'])}",
        f"pubsub_patterns:{len(server.broker_actor.subs['patterns'])}",
        f"pubsubshard_channels:{len(server.broker_actor.subs['shard'])}", "latest_fork_usec:0",
        "total_forks:0", "migrate_cached_sockets:0", "slave_expires_tracked_keys:0",
        "active_defrag_hits:0", "active_defrag_misses:0", "active_defrag_key_hits:0",
        "active_defrag_key_misses:0", "total_active_defrag_time:0", "current_active_defrag_time:0",
        "tracking_total_keys:0", "tracking_total_items:0", "tracking_total_prefixes:0",
        "unexpected_error_replies:0", f"total_error_replies:{errors}",
        "dump_payload_sanitizations:0", "total_reads_processed:0", "total_writes_processed:0",
        "io_threaded_reads_processed:0", "io_threaded_writes_processed:0",
        "reply_buffer_shrinks:0", "reply_buffer_expands:0",
    ]


def _section_replication(server) -> list[str]:
    return server.replication.info_fields()


def _section_cpu(server) -> list[str]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        main = resource.getrusage(resource.RUSAGE_THREAD) if threading.current_thread() is \
            threading.main_thread() else usage
    except (AttributeError, ValueError):
        main = usage
    return [
        f"used_cpu_sys:{usage.ru_stime:.6f}", f"used_cpu_user:{usage.ru_utime:.6f}",
        f"used_cpu_sys_children:{children.ru_stime:.6f}",
        f"used_cpu_user_children:{children.ru_utime:.6f}",
        f"used_cpu_sys_main_thread:{main.ru_stime:.6f}",
        f"used_cpu_user_main_thread:{main.ru_utime:.6f}",
    ]


def _section_commandstats(server) -> list[str]:
    """Calls, time and failures from every executor; `rejected_calls` from the connection actors
    once they count refusals per command (`server.rejected_calls`, spec -> count)."""
    merged: dict = {}
    for stats in _all_exec_stats(server):
        for spec, (calls, usec, failed) in list(stats.commands.items()):
            entry = merged.setdefault(spec.fullname, [0, 0.0, 0, 0])
            entry[0] += calls
            entry[1] += usec
            entry[2] += failed
    for spec, count in list(getattr(server, "rejected_calls", {}).items()):
        merged.setdefault(spec.fullname, [0, 0.0, 0, 0])[3] += count
    lines = []
    for name in sorted(merged):
        calls, usec, failed, rejected = merged[name]
        lines.append(f"cmdstat_{name}:calls={calls},usec={int(usec)},"
                     f"usec_per_call={usec / calls if calls else 0:.2f},rejected_calls={rejected},"
                     f"failed_calls={failed}")
    return lines


def _section_errorstats(server) -> list[str]:
    merged = dict(server.rejected)
    for stats in _all_exec_stats(server):
        for prefix, count in list(stats.errors.items()):
            merged[prefix] = merged.get(prefix, 0) + count
    return [f"errorstat_{p}:count={merged[p]}" for p in sorted(merged)]


def _section_keyspace(server) -> list[str]:
    lines = []
    for index in range(server.config["databases"]):
        keys = expires = 0
        for store in server.stores:
            d = store.dbs[index]
            keys += len(d.data)
            expires += len(d.expires)
        if keys:
            lines.append(f"db{index}:keys={keys},expires={expires},avg_ttl=0")
    return lines


def _section_actors(server) -> list[str]:
    lines = []
    for actor in server.shard_actors:
        s = actor.stats
        depth = actor.actor_inbox.qsize()
        commands = sum(c[0] for c in list(s.commands.values()))
        mean = s.entries / s.messages if s.messages else 0.0
        lines.append(f"shard{actor.index}:mailbox_depth={depth},messages={s.messages},"
                     f"commands={commands},mean_batch={mean:.2f},busy_sec={s.busy:.6f}")
    local = server.local_stats
    lines.append(f"connections:actors={len(server.clients)},"
                 f"local_commands={sum(c[0] for c in list(local.commands.values()))}")
    return lines


_SECTIONS = {
    "server": ("Server", _section_server), "clients": ("Clients", _section_clients),
    "memory": ("Memory", _section_memory), "persistence": ("Persistence", _section_persistence),
    "stats": ("Stats", _section_stats), "replication": ("Replication", _section_replication),
    "cpu": ("CPU", _section_cpu), "modules": ("Modules", lambda s: []),
    "commandstats": ("Commandstats", _section_commandstats),
    "errorstats": ("Errorstats", _section_errorstats),
    "latencystats": ("Latencystats", lambda s: []),
    "cluster": ("Cluster", lambda s: ["cluster_enabled:0"]),
    "keyspace": ("Keyspace", _section_keyspace), "actors": ("Actors", _section_actors),
}


def info_text(server, args: list[bytes]) -> str:
    """INFO [section ...]: default, all, everything, or named sections (unknown ones are empty).

    Sections come out in Redis's fixed order whatever the order asked, each once.
    """
    wanted: set[str] = set()
    names = [a.decode("utf-8", "replace").lower() for a in args] or ["default"]
    for name in names:
        if name == "default":
            wanted.update(_DEFAULT_SECTIONS)
        elif name in ("all", "everything"):
            wanted.update(_ALL_SECTIONS)
        elif name in _SECTIONS:
            wanted.add(name)
    blocks = []
    for name in _ALL_SECTIONS:
        if name in wanted:
            title, fn = _SECTIONS[name]
            blocks.append("\r\n".join([f"# {title}"] + fn(server)) + "\r\n")
    return "\r\n".join(blocks)


@command("INFO", arity=-1, flags="loading stale sentinel", group="server", route=Route.LOCAL)
def info(client, argv):
    """INFO [section [section ...]]"""
    return Verbatim(info_text(client.server, argv[1:]).encode())


