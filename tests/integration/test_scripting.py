"""Scripts on a 4-shard Shardis under concurrency: atomicity with undeclared keys, BUSY and kills.

A script runs in global mode (every shard parked), so it is atomic with respect to every other
client even when it touches keys it did not declare, on any shard. The workloads are the ones
real applications run: a job queue in the style of BullMQ/Sidekiq, a reliable-queue move
(RPOPLPUSH between lists chosen inside the script), and a fixed-window rate limiter. Each runs
from many concurrent clients and checks invariants that a non-atomic script would break.

Waiting is by polling with a deadline, never by sleeping for synchronisation.
"""

from __future__ import annotations

import threading

import pytest
import redis

from tests.conftest import make_client, shardis_server
from tests.integration.test_strings import wait_until
from tests.servers import start_shardis

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture
def r4():
    client = make_client(shardis_server(4), 2)
    client.flushall()
    client.script_flush()
    client.function_flush()
    yield client
    client.function_flush()
    client.close()


def _run_threads(count: int, body) -> None:
    errors: list[BaseException] = []

    def guarded(i):
        try:
            body(i)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(t.is_alive() for t in threads), "a worker thread hung"
    assert not errors, errors[0]


def _client():
    """A connected client: its handshake must not land while a script runs, where it would
    wait for the script (or busy-reply-threshold) as on Redis, which serves no one meanwhile."""
    client = make_client(shardis_server(4), 2)
    client.ping()
    return client


# -- a job queue ------------------------------------------------------------------------------------

ENQUEUE = """
local id = redis.call('incr', 'jq:next-id')
redis.call('hset', 'jq:job:' .. id, 'payload', ARGV[1], 'state', 'waiting')
redis.call('lpush', KEYS[1], id)
return id
"""
TAKE = """
local id = redis.call('rpoplpush', KEYS[1], KEYS[2])
if not id then return false end
redis.call('hset', 'jq:job:' .. id, 'state', 'active')
redis.call('hincrby', 'jq:job:' .. id, 'attempts', 1)
return id
"""
COMPLETE = """
if redis.call('lrem', KEYS[1], 1, ARGV[1]) == 0 then
  return redis.error_reply('NOTACTIVE job ' .. ARGV[1] .. ' is not active')
end
redis.call('hset', 'jq:job:' .. ARGV[1], 'state', 'done')
redis.call('sadd', KEYS[2], ARGV[1])
return redis.call('incr', 'jq:stats:done')
"""


def test_job_queue_processes_every_job_exactly_once(r4):
    """Producers and workers race through EVALSHA; job hashes and counters are undeclared keys."""
    producers, per_producer, workers = 4, 60, 6
    total = producers * per_producer
    shas = {name: r4.script_load(code) for name, code in
            (("enqueue", ENQUEUE), ("take", TAKE), ("complete", COMPLETE))}

    def produce(i):
        client = _client()
        for n in range(per_producer):
            client.evalsha(shas["enqueue"], 1, "jq:wait", f"p{i}-{n}")

    def work(_):
        client = _client()
        while int(client.get("jq:stats:done") or 0) < total:
            job = client.evalsha(shas["take"], 2, "jq:wait", "jq:active")
            if job is not None:
                client.evalsha(shas["complete"], 2, "jq:active", "jq:done", job)

    _run_threads(producers + workers,
                 lambda i: produce(i) if i < producers else work(i))
    assert int(r4.get("jq:stats:done")) == total
    assert r4.scard("jq:done") == total
    assert r4.llen("jq:wait") == 0 and r4.llen("jq:active") == 0
    payloads = set()
    for job in range(1, total + 1):
        fields = r4.hgetall(f"jq:job:{job}")
        assert fields[b"state"] == b"done" and fields[b"attempts"] == b"1", (job, fields)
        payloads.add(fields[b"payload"])
    assert len(payloads) == total


# -- a reliable-queue move between undeclared lists on different shards ---------------------------------

MOVE = """
local source = KEYS[1]
local target = 'rq:target:' .. ARGV[1]
local item = redis.call('rpoplpush', source, target)
if not item then return 0 end
redis.call('hincrby', 'rq:ledger', target, 1)
redis.call('hincrby', 'rq:ledger', source, -1)
return 1
"""


def test_reliable_queue_moves_conserve_items(r4):
    """Movers pop from declared sources into targets named inside the script (other shards)."""
    sources = [f"rq:source:{i}" for i in range(4)]
    per_source = 150
    for source in sources:
        r4.rpush(source, *[f"{source}/{n}" for n in range(per_source)])
        r4.hset("rq:ledger", source, per_source)
    sha = r4.script_load(MOVE)

    def mover(i):
        client = _client()
        source = sources[i % len(sources)]
        while client.evalsha(sha, 1, source, str(i % 5)) == 1:
            pass

    _run_threads(12, mover)
    targets = [f"rq:target:{i}" for i in range(5)]
    items = []
    for key in sources + targets:
        items += r4.lrange(key, 0, -1)
    assert len(items) == len(set(items)) == 4 * per_source
    assert all(r4.llen(source) == 0 for source in sources)
    ledger = {k.decode(): int(v) for k, v in r4.hgetall("rq:ledger").items()}
    for key in sources + targets:
        assert ledger.get(key, 0) == r4.llen(key), key


# -- a fixed-window rate limiter -------------------------------------------------------------------------

LIMITER = """
local current = redis.call('incr', KEYS[1])
if current == 1 then redis.call('expire', KEYS[1], ARGV[2]) end
if current > tonumber(ARGV[1]) then return 0 end
return 1
"""


def test_fixed_window_rate_limiter_admits_exactly_the_limit(r4):
    limit, clients, requests = 123, 8, 40
    sha = r4.script_load(LIMITER)
    admitted = [0] * clients

    def client_body(i):
        client = _client()
        for _ in range(requests):
            admitted[i] += client.evalsha(sha, 1, "rl:window", limit, 60)

    _run_threads(clients, client_body)
    assert sum(admitted) == limit
    assert int(r4.get("rl:window")) == clients * requests
    assert 0 < r4.ttl("rl:window") <= 60


# -- long-running scripts: SCRIPT KILL, FUNCTION KILL, BUSY ------------------------------------------------

def _start(client, *command):
    result: dict = {}

    def body():
        try:
            result["value"] = client.execute_command(*command)
        except redis.ResponseError as exc:
            result["error"] = str(exc)
    thread = threading.Thread(target=body)
    thread.start()
    return thread, result


def _as_dict(value):
    return value if isinstance(value, dict) else dict(zip(value[::2], value[1::2]))


def _function_stats(admin) -> dict:
    stats = _as_dict(admin.execute_command("FUNCTION", "STATS"))
    if stats[b"running_script"] is not None:
        stats[b"running_script"] = _as_dict(stats[b"running_script"])
    return stats


def _busy(admin, what: str) -> bool:
    """True once FUNCTION STATS shows the script running (an EVAL makes it reply BUSY)."""
    try:
        stats = _function_stats(admin)
    except redis.ResponseError as exc:
        return what == "eval" and str(exc).startswith("BUSY")
    return what == "function" and stats[b"running_script"] is not None


def _ensure_stopped(admin, thread) -> None:
    """Whatever the test asserted, leave no script spinning on the shared server."""
    for kill in (("SCRIPT", "KILL"), ("FUNCTION", "KILL")):
        try:
            admin.execute_command(*kill)
        except redis.ResponseError:
            pass
    thread.join(10)


def test_script_kill_stops_a_looping_script(r4):
    admin = _client()
    thread, result = _start(_client(), "EVAL", "while true do end", "0")
    try:
        wait_until(lambda: _busy(admin, "eval"), what="the script to start")
        with pytest.raises(redis.ResponseError, match="BUSY .*You can only call SCRIPT KILL"):
            admin.execute_command("FUNCTION", "KILL")
        assert admin.execute_command("SCRIPT", "KILL") == b"OK"
        thread.join(10)
    finally:
        _ensure_stopped(admin, thread)
    assert "Script killed by user with SCRIPT KILL..." in result["error"]
    with pytest.raises(redis.ResponseError, match="NOTBUSY No scripts in execution right now."):
        admin.execute_command("SCRIPT", "KILL")
    assert r4.ping()


def test_a_script_that_wrote_is_unkillable(r4):
    """After a write the script must run to its end; it stops by itself after ~4 s of TIME.

    The 4 s leave room for a loaded CI machine to answer the poll while the script runs; a
    script that ended before any poll saw it fails with that said, not with a bare timeout.
    """
    admin = _client()
    script = ("redis.call('set', 'written', '1') "
              "local function now() local t = redis.call('time') "
              "return tonumber(t[1]) + tonumber(t[2]) / 1e6 end "
              "local stop = now() + 4 while now() < stop do end return 'finished'")
    thread, result = _start(_client(), "EVAL", script, "0")

    def script_seen_running() -> bool:
        assert not result, f"the script ended before a poll saw it running: {result}"
        return _busy(admin, "eval")
    try:
        wait_until(script_seen_running, timeout=15, what="the script to start")
        with pytest.raises(redis.ResponseError, match="UNKILLABLE Sorry the script already "
                                                      "executed write commands against the dataset."):
            admin.execute_command("SCRIPT", "KILL")
    finally:
        thread.join(20)
    assert result == {"value": b"finished"}
    assert r4.get("written") == b"1"


def test_function_kill_and_stats(r4):
    admin = _client()
    r4.function_load("#!lua name=spinner\nredis.register_function('spin', "
                     "function() while true do end end)")
    thread, result = _start(_client(), "FCALL", "spin", "0")
    try:
        wait_until(lambda: _busy(admin, "function"), what="the function to start")
        running = _function_stats(admin)[b"running_script"]
        assert running[b"name"] == b"spin"
        assert running[b"command"] == [b"FCALL", b"spin", b"0"]
        with pytest.raises(redis.ResponseError, match="BUSY .*You can only call FUNCTION KILL"):
            admin.execute_command("SCRIPT", "KILL")
        assert admin.execute_command("FUNCTION", "KILL") == b"OK"
        thread.join(10)
    finally:
        _ensure_stopped(admin, thread)
    assert result["error"].startswith("Script killed by user with SCRIPT KILL... script: spin")


def test_other_clients_get_busy_while_a_script_runs(r4):
    admin = _client()
    r4.config_set("busy-reply-threshold", 10)
    try:
        thread, result = _start(_client(), "EVAL", "while true do end", "0")
        wait_until(lambda: _busy(admin, "eval"), what="the script to start")
        with pytest.raises(redis.ResponseError,
                           match="BUSY Redis is busy running a script. You can only call "
                                 "SCRIPT KILL or SHUTDOWN NOSAVE."):
            admin.ping()
    finally:
        _ensure_stopped(admin, thread)
        r4.config_set("busy-reply-threshold", 5000)


# -- persistence ---------------------------------------------------------------------------------------

def _restart(server):
    assert server.stop() == 0
    return start_shardis(shards=4, workdir=server.workdir)


def test_functions_survive_a_restart(tmp_path):
    server = start_shardis(shards=4, workdir=str(tmp_path))
    try:
        client = make_client(server, 2)
        client.function_load("#!lua name=kept\nredis.register_function('kept', "
                             "function() return 'still here' end)")
        client.close()
        server = _restart(server)
        client = make_client(server, 2)
        assert client.fcall("kept", 0) == b"still here"
        client.close()
    finally:
        server.stop()


def test_script_effects_survive_a_restart(tmp_path):
    server = start_shardis(shards=4, workdir=str(tmp_path))
    try:
        client = make_client(server, 2)
        client.eval("for i = 1, 20 do redis.call('rpush', 'list:' .. (i % 4), i) end "
                    "redis.call('set', 'plain', 'v')", 0)
        client.close()
        server = _restart(server)
        client = make_client(server, 2)
        assert client.get("plain") == b"v"
        assert sum(client.llen(f"list:{i}") for i in range(4)) == 20
        client.close()
    finally:
        server.stop()
