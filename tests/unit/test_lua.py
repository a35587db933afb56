"""The Lua runtime (commands/lua.py) driven directly over Stores, without a server.

What a differential test cannot see: the write stream a script leaves in `store.also`, WATCH
invalidation, the no_block flag, scripts over a sharded view, the busy/kill interface the event
loop uses, the function registry API the persistence layer uses, and the FUNCTION DUMP format.
Replies that Redis defines are covered byte for byte by tests/differential/test_scripting_diff.py.
"""

from __future__ import annotations

import threading
import time

import pytest

import commands  # noqa: F401  (registers every command family)
import commands.scripting  # noqa: F401
from commands import lua
from keyspace.db import Store
from keyspace.routing import ShardMap
from keyspace.view import ShardedStore
from protocol.errors import CommandError
from protocol.replies import SetReply, encode

pytestmark = pytest.mark.timeout(30)


def _store(records: bool = True) -> Store:
    store = Store(16)
    store.config = {"databases": 16, "proto-max-bulk-len": 512 * 1024 * 1024}
    store.records = [] if records else None
    return store


@pytest.fixture(autouse=True)
def _fresh_state():
    lua.script_flush()
    lua.function_flush()
    yield
    lua.script_flush()
    lua.function_flush()


@pytest.fixture
def db():
    return _store().dbs[0]


def run(db, script: str, *keys_and_args: str, numkeys: int = 0, ro: bool = False):
    argv = [b"EVAL", script.encode(), str(numkeys).encode(), *[a.encode() for a in keys_and_args]]
    return lua.run_eval(db, argv, by_sha=False, ro=ro)


def error_of(db, script: str, **kwargs) -> str:
    with pytest.raises(CommandError) as info:
        run(db, script, **kwargs)
    return info.value.message


# -- conversions and errors ---------------------------------------------------------------------------

def test_basic_conversions(db):
    assert run(db, "return {1, 'a', {2}, 3.7, -3.7, true, false}") == [1, b"a", [2], 3, -3, 1, None]
    assert run(db, "return {1, nil, 3}") == [1]
    assert run(db, "return 1e30") == -(1 << 63)
    assert run(db, "return {ok='fine'}") == "fine"
    assert run(db, "return {double=1.5}") == 1.5
    assert run(db, "redis.setresp(3) return {true, false}") == [True, False]
    assert isinstance(run(db, "return {set={a=true}}"), SetReply)
    assert encode(run(db, "return {map={a=1}}"), 3) == b"%1\r\n$1\r\na\r\n:1\r\n"
    assert encode(run(db, "return {map={a=1}}"), 2) == b"*2\r\n$1\r\na\r\n:1\r\n"


def test_rich_replies_encode_for_each_protocol(db):
    big = run(db, "return {big_number='12345678901234567890'}")
    assert encode(big, 3) == b"(12345678901234567890\r\n"
    assert encode(big, 2) == b"$20\r\n12345678901234567890\r\n"
    mkd = run(db, "return {verbatim_string={format='mkd', string='# hi'}}")
    assert encode(mkd, 3) == b"=8\r\nmkd:# hi\r\n"
    assert encode(mkd, 2) == b"$4\r\n# hi\r\n"


def test_a_table_containing_itself_does_not_crash(db):
    reply = run(db, "local t = {} t[1] = t return t")
    depth = 0
    while isinstance(reply, list):
        reply = reply[0]
        depth += 1
    assert depth > 100 and str(reply) == "ERR reached lua stack limit"


def test_error_texts(db):
    sha = lua._sha1hex(b"error('boom')").decode()
    assert error_of(db, "error('boom')") == f"ERR user_script:1: boom script: {sha}, on @user_script:1."
    message = error_of(db, "\nreturn redis.call('nosuch')")
    assert message.startswith("ERR Unknown Redis command called from script script: ")
    assert message.endswith(", on @user_script:2.")
    assert error_of(db, "return {err='MY boom'}") == "MY boom"
    assert error_of(db, "error({})").startswith("ERR ")   # Redis 7.0.15 crashes here
    assert error_of(db, "return +").startswith("ERR Error compiling script (new function): "
                                               "user_script:1: ")


def test_sandbox_hides_python_and_the_debug_library(db):
    assert "nonexistent global variable 'debug'" in error_of(db, "return debug")
    assert "nonexistent global variable 'python'" in error_of(db, "return python")
    assert run(db, "return getmetatable(redis.call)") is None
    assert run(db, "return type(redis.call)") == b"function"
    assert error_of(db, "return redis.call.__class__").startswith(
        "ERR user_script:1: attempt to index a function value")
    assert "Attempt to modify a readonly table" in error_of(db, "table.insert = nil")


def test_raw_writes_on_protected_tables_do_not_leak_between_scripts(db):
    run(db, "table.insert(_G, 'smuggled')")
    assert run(db, "return rawget(_G, 1)") is None
    assert run(db, "return #string") == 0


# -- effects: write stream, WATCH, databases, blocking --------------------------------------------------

def test_each_write_is_queued_for_the_write_stream(db):
    run(db, "redis.call('set', 'a', '1') redis.call('get', 'a') redis.call('incr', 'a') "
            "redis.call('del', 'missing')")
    assert db.store.also == [(0, [b"set", b"a", b"1"]), (0, [b"incr", b"a"])]


def test_select_inside_a_script_writes_to_that_database(db):
    assert run(db, "redis.call('select', 3) redis.call('set', 'k', 'v') return 1") == 1
    assert db.store.dbs[3].get(b"k") == b"v" and db.get(b"k") is None
    assert db.store.also == [(3, [b"set", b"k", b"v"])]


def test_set_repl_none_and_an_unconsumed_stream_propagate_nothing(db):
    run(db, "redis.set_repl(redis.REPL_NONE) redis.call('set', 'a', '1')")
    assert db.store.also == []
    quiet = _store(records=False).dbs[0]
    run(quiet, "redis.call('set', 'a', '1')")
    assert quiet.store.also == [] and quiet.get(b"a") == b"1"


def test_handler_rewrites_are_kept(db):
    run(db, "redis.call('set', 'k', 'v', 'EX', 100)")
    assert len(db.store.also) == 1 and db.store.also[0][1][0].lower() == b"set"


def test_script_writes_invalidate_watches(db):
    from actors.transaction import WatchToken
    token = WatchToken()
    db.store.watched[(0, b"w")] = {token}
    run(db, "return redis.call('get', 'w')")
    assert not token.dirty
    run(db, "return redis.call('set', 'w', 'x')")
    assert token.dirty


def test_blocking_commands_are_refused_and_no_block_is_restored(db):
    assert "not allowed from script" in error_of(db, "return redis.call('blpop', 'q', 0)")
    db.store.no_block = False
    run(db, "return redis.call('lpush', 'q', 'x')")
    assert db.store.no_block is False
    db.store.no_block = True
    run(db, "return 1")
    assert db.store.no_block is True


def test_read_only_scripts_refuse_writes(db):
    assert error_of(db, "return redis.call('set', 'a', 'b')", ro=True).startswith(
        "ERR Write commands are not allowed from read-only scripts. script: ")
    assert error_of(db, "#!lua\nreturn 1", ro=True) == (
        "ERR Can not execute a script with write flag using *_ro command.")
    assert run(db, "#!lua flags=no-writes\nreturn redis.call('get', 'a')", ro=True) is None


def test_scripts_over_a_sharded_view_reach_every_shard():
    stores = [_store() for _ in range(4)]
    shard_map = ShardMap(4)
    view = ShardedStore(stores, shard_map)
    keys = [f"key:{i}" for i in range(40)]
    script = "for i, k in ipairs(KEYS) do redis.call('set', k, i) end return #KEYS"
    assert run(view.dbs[0], script, *keys, numkeys=len(keys)) == 40
    for i, key in enumerate(keys, 1):
        owner = stores[shard_map.shard_of(key.encode())]
        assert owner.dbs[0].get(key.encode()) == str(i).encode()
    assert {shard_map.shard_of(k.encode()) for k in keys} == {0, 1, 2, 3}
    assert len(stores[0].also) == 40


# -- SCRIPT and the cache -----------------------------------------------------------------------------

def test_script_cache(db):
    sha = lua.script_load(b"return 'x'")
    assert lua.script_exists([sha, sha.upper(), b"0" * 40]) == [1, 1, 0]
    assert lua.run_eval(db, [b"EVALSHA", sha.upper(), b"0"], by_sha=True, ro=False) == b"x"
    lua.script_flush()
    with pytest.raises(CommandError, match="NOSCRIPT No matching script. Please use EVAL."):
        lua.run_eval(db, [b"EVALSHA", sha, b"0"], by_sha=True, ro=False)


def test_script_flush_does_not_reseed_math_random(db):
    """Redis's rand48 state is a C global: SCRIPT FLUSH recreates Lua but the sequence goes on."""
    run(db, "math.randomseed(42)")
    assert run(db, "return math.random(1000)") == 745   # what Redis 7.0 answers for seed 42
    lua.script_flush()
    assert run(db, "return math.random(1, 10)") == 4


# -- busy / kill ----------------------------------------------------------------------------------------

def _spin_in_thread(target):
    result: dict = {}

    def body():
        try:
            result["value"] = target()
        except CommandError as exc:
            result["error"] = exc.message
    thread = threading.Thread(target=body)
    thread.start()
    deadline = time.monotonic() + 5
    while not lua.RUNNING.running:
        assert time.monotonic() < deadline, "the script never started"
        time.sleep(0.001)
    return thread, result


def test_script_kill_and_busy_interface(db):
    state = lua.RUNNING
    assert state.request_kill(from_eval=True) == "NOTBUSY No scripts in execution right now."
    assert state.busy_error(0) is None
    thread, result = _spin_in_thread(lambda: run(db, "while true do end"))
    assert state.busy_error(0).startswith("BUSY Redis is busy running a script. You can only call "
                                          "SCRIPT KILL")
    assert state.busy_error(10 ** 9) is None
    assert state.request_kill(from_eval=False).startswith("BUSY ")   # FUNCTION KILL on an EVAL
    assert state.request_kill(from_eval=True) is None
    thread.join(5)
    assert not thread.is_alive()
    assert result["error"].startswith("ERR Script killed by user with SCRIPT KILL... script: ")
    assert not state.running


def test_pcall_cannot_swallow_a_kill(db):
    thread, result = _spin_in_thread(
        lambda: run(db, "while true do pcall(function() while true do end end) end"))
    assert lua.RUNNING.request_kill(from_eval=True) is None
    thread.join(5)
    assert "Script killed by user" in result["error"]


def test_a_script_that_wrote_cannot_be_killed(db):
    thread, result = _spin_in_thread(lambda: run(
        db, "redis.call('set', 'w', '1') "
            "while redis.call('get', 'stop') == false do end return 'done'"))
    deadline = time.monotonic() + 5
    while not lua.RUNNING.wrote:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    assert lua.RUNNING.request_kill(from_eval=True).startswith("UNKILLABLE Sorry the script")
    db.set(b"stop", b"1")   # the script polls this key (a single dict store: atomic under the GIL)
    thread.join(5)
    assert result == {"value": b"done"}


def test_function_kill_and_stats(db):
    lua.function_load(b"#!lua name=spin\nredis.register_function('spin', "
                      b"function() while true do end end)", False)
    thread, result = _spin_in_thread(
        lambda: lua.run_function(db, [b"FCALL", b"spin", b"0"], ro=False))
    stats = lua.function_stats()
    assert stats[b"running_script"][b"name"] == b"spin"
    assert stats[b"running_script"][b"command"] == [b"FCALL", b"spin", b"0"]
    assert lua.RUNNING.busy_error(0).endswith("You can only call FUNCTION KILL or SHUTDOWN NOSAVE.")
    assert lua.RUNNING.request_kill(from_eval=True).startswith("BUSY ")
    assert lua.RUNNING.request_kill(from_eval=False) is None
    thread.join(5)
    assert result["error"].endswith("script: spin, on @user_function:2.")
    assert lua.function_stats()[b"running_script"] is None


def test_function_load_times_out(db):
    with pytest.raises(CommandError) as info:
        lua.function_load(b"#!lua name=slow\nwhile true do end", False)
    assert info.value.message == "ERR Error registering functions: ERR FUNCTION LOAD timeout"


# -- functions, persistence hooks, DUMP/RESTORE -----------------------------------------------------------

LIB = b"#!lua name=lib\nredis.register_function('Echo', function(keys, args) return args[1] end)"


def test_function_registry(db):
    assert lua.function_load(LIB, False) == b"lib"
    assert lua.run_function(db, [b"FCALL", b"echo", b"0", b"hi"], ro=False) == b"hi"
    with pytest.raises(CommandError, match="ERR Library 'lib' already exists"):
        lua.function_load(LIB, False)
    assert lua.function_load(LIB, True) == b"lib"
    listing = lua.function_list(None, True)
    assert listing[0][b"library_code"] == LIB
    assert listing[0][b"functions"][0][b"name"] == b"Echo"
    assert lua.function_list(b"LI*", False) and not lua.function_list(b"other", False)
    lua.function_delete(b"lib")
    with pytest.raises(CommandError, match="ERR Library not found"):
        lua.function_delete(b"lib")


def test_libraries_code_and_load_library_round_trip(db):
    lua.function_load(LIB, False)
    lua.function_load(b"#!lua name=two\nredis.register_function('two', function() return 2 end)",
                      False)
    saved = lua.libraries_code()
    lua.function_flush()
    for code in saved:
        lua.load_library(code)
    assert lua.run_function(db, [b"FCALL", b"two", b"0"], ro=False) == 2
    assert sorted(lua.libraries_code()) == sorted(saved)


def test_dump_and_restore(db):
    lua.function_load(LIB, False)
    payload = lua.function_dump()
    assert payload[0] == 0xF5 and payload[-10:-8] == b"\x0a\x00"
    assert lua.crc64(payload[:-8]) == int.from_bytes(payload[-8:], "little")
    with pytest.raises(CommandError, match="ERR Library lib already exists"):
        lua.function_restore(payload, b"APPEND")
    lua.function_restore(payload, b"REPLACE")
    lua.function_flush()
    lua.function_restore(payload, b"APPEND")
    assert lua.run_function(db, [b"FCALL", b"echo", b"0", b"x"], ro=False) == b"x"
    with pytest.raises(CommandError, match="ERR DUMP payload version or checksum are wrong"):
        lua.function_restore(payload[:-1] + b"\x00", b"FLUSH")


def test_restore_reads_lzf_compressed_strings(db):
    """A payload as Redis writes it with rdbcompression: the code as an LZF string."""
    code = LIB + b" -- " + b"abcabcabc" * 8
    compressed = _lzf_literal_then_backref(code)
    body = b"\xf5" + b"\xc3" + lua._rdb_length(len(compressed)) + lua._rdb_length(len(code))
    body += compressed + b"\x0a\x00"
    lua.function_restore(body + lua.crc64(body).to_bytes(8, "little"), b"APPEND")
    assert lua.libraries_code() == [code]


def _lzf_literal_then_backref(data: bytes) -> bytes:
    """A tiny valid LZF stream: literals, with the final repetition as one back-reference."""
    tail = b"abcabcabc" * 7
    head = data[:len(data) - len(tail)]
    out = bytearray()
    for i in range(0, len(head), 32):
        chunk = head[i:i + 32]
        out.append(len(chunk) - 1)
        out += chunk
    distance = 9 - 1
    length = len(tail) - 2
    out.append((7 << 5) | (distance >> 8))
    out.append(length - 7)
    out.append(distance & 0xFF)
    return bytes(out)


def test_crc64_matches_redis():
    assert lua.crc64(b"123456789") == 0xE9C6D914C4B8D9CA


# -- the bundled libraries ------------------------------------------------------------------------------

def test_cjson_cmsgpack_struct_bit(db):
    assert run(db, "return cjson.encode({a={1,2,{b=cjson.null}}})") == b'{"a":[1,2,{"b":null}]}'
    assert run(db, "return cjson.decode('{\"a\":[1,2,null]}').a[3] == cjson.null") == 1
    assert run(db, "return cmsgpack.pack({1, 2, 3})") == b"\x93\x01\x02\x03"
    assert run(db, "return cmsgpack.unpack(cmsgpack.pack({x='y'})).x") == b"y"
    assert run(db, "return struct.pack('>I2', 258)") == b"\x01\x02"
    assert run(db, "return {struct.unpack('<i4', struct.pack('<i4', -2))}") == [-2, 5]
    assert run(db, "return {bit.band(0xff, 0x0f), bit.tohex(255), bit.tobit(2^32 + 5)}") == [
        15, b"000000ff", 5]
