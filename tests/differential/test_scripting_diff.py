"""EVAL, EVALSHA, SCRIPT, FCALL and FUNCTION against a real redis-server 7.0, reply for reply (issue 8).

Replies are compared byte for byte through `Duo` (see test_strings_diff.py) over the `pair` fixture
(shards 1/4 x RESP2/RESP3): the Lua<->RESP conversion rules both ways (RESP3 through
redis.setresp(3): maps, sets, doubles, big numbers, verbatim strings), error formats
(`ERR user_script:1: ...`, `... script: <sha>, on @user_script:1.`), the sandbox, the cjson,
cmsgpack, struct and bit libraries, shebang flags, EVAL_RO, the script cache, functions, and
FUNCTION DUMP/RESTORE payloads crossing between the two servers. redis-py's `register_script`
drives both servers too.

Only deterministic replies are compared byte for byte; FUNCTION LIST (whose order is Redis's hash
order) is compared as sets. Known divergences are listed in `test_known_divergences`.
"""

from __future__ import annotations

import pytest
import redis

from keyspace.routing import ShardMap
from tests.differential.test_strings_diff import Duo, Err

pytestmark = [pytest.mark.differential, pytest.mark.timeout(60)]


A, B, C, D = ShardMap(4).sample_keys("skey", 4)


@pytest.fixture
def duo(pair):
    d = Duo(pair)
    d("SCRIPT", "FLUSH")
    d("FUNCTION", "FLUSH")
    yield d
    d("FUNCTION", "FLUSH")
    d.close()


def _eval_all(duo: Duo, cases: list[str]) -> None:
    for code in cases:
        duo("EVAL", code, "0")


# -- Lua -> reply -------------------------------------------------------------------------------------

LUA_TO_REPLY = [
    "return 1", "return 'str'", "return 3.99", "return -3.99", "return 0.5",
    "return 9007199254740993", "return 2^63", "return -2^63", "return 1e20", "return 0/0",
    "return 1/0", "return -1/0", "return nil", "return true", "return false",
    "return {1, 2, 3, 'a', {4, 5, {6}}}", "return {1, nil, 3}", "return {nil, 2}",
    "return {[1]=1, [2]=2, [4]=4}", "return {a=1}", "return {}",
    "return {1.9, -1.9, 'a', true, false, {ok='x'}, {err='E y'}}",
    "return {ok='fine'}", "return {ok='a\\r\\nb'}", "return {ok=''}", "return {ok=1}",
    "return {err='MY boom'}", "return {err='boom'}", "return {err='-X y'}", "return {err='X\\r\\ny'}",
    "return {err=1}", "return {ok='x', err='y'}",
    "return {1, 2, {err='x'}, 4}", "return {1, {ok='x'}, {err='ERR y'}}",
    "return redis.status_reply('FINE')", "return redis.error_reply('MY boom')",
    "return redis.error_reply('boom')", "return redis.error_reply('-X y')",
    "return redis.error_reply()", "return redis.error_reply(1)", "return redis.status_reply(1)",
    "return {double=3.14}", "return {double='3.14'}", "return {double=100}", "return {double=1/3}",
    "return {double=1/0}", "return {double=-1/0}",
    "return {map={a=1}}", "return {map={}}", "return {map={x={y={z=1}}}}",
    "return {map={a={ok='s'}, b={err='E e'}}}", "return {map={[1]='one'}}",
    "return {set={a=true}}", "return {set={}}", "return {set={1, 2}}",
    "return {big_number='1234567890123456789012345'}", "return {big_number=12}",
    "return {verbatim_string={format='txt', string='hello'}}",
    "return {verbatim_string={format='mkd', string='# title'}}",
    "return {verbatim_string={format='txt'}}",
    "return {double=1, map={a=1}}", "return {true, false, nil}",
    "redis.setresp(3) return true", "redis.setresp(3) return false",
    "redis.setresp(3) return {true, false}", "redis.setresp(3) return {map={t=true}}",
    "return function() end", "return coroutine.create(function() end)", "return cjson.null",
    "return '3.5'",
]


def test_lua_values_become_replies(duo):
    """luaReplyToRedisReply: numbers truncate, false is nil, tables stop at the first hole, ok/err
    tables are status/error replies, and RESP3 types downgrade for a RESP2 caller."""
    _eval_all(duo, LUA_TO_REPLY)


def test_keys_and_argv(duo):
    duo("EVAL", "return {KEYS, ARGV}", "2", "k1", "k2", "a1", "a2")
    duo("EVAL", "return #ARGV", "0", "a", "b", "c")
    duo("EVAL", "return KEYS[1] .. ARGV[1]", "1", "k", "a")
    duo("EVAL", "KEYS[1] = 'x' return KEYS[1]", "1", "k")
    duo("EVAL", "return {#KEYS, #ARGV}", "0")


# -- command reply -> Lua -----------------------------------------------------------------------------

REPLY_TO_LUA = [
    "redis.call('rpush','L','a','b') return redis.call('lrange','L',0,-1)",
    "return redis.call('exists','nokey')",
    "return {redis.call('mget','L','nokey','x')}",
    "return redis.call('type','L')", "return type(redis.call('type','L'))",
    "return redis.call('type','L').ok",
    "redis.call('set','n','10') return redis.call('incrbyfloat','n','1.5')",
    "return redis.call('hgetall','nohash')", "redis.setresp(3) return redis.call('hgetall','nohash')",
    "redis.call('hset','h','a','1') redis.setresp(3) return redis.call('hgetall', 'h')",
    "redis.call('hset','h','a','1') redis.setresp(3) return type(redis.call('hgetall', 'h').map)",
    "redis.call('zadd','zz',1,'a',2.5,'b') return redis.call('zrange','zz',0,-1,'withscores')",
    "redis.call('zadd','zz',1,'a',2.5,'b') redis.setresp(3) "
    "return redis.call('zrange','zz',0,-1,'withscores')",
    "redis.call('zadd','zz',1,'a',2.5,'b') redis.setresp(3) "
    "local r = redis.call('zrange','zz',0,-1,'withscores') return {type(r[1]), r[1][2].double}",
    "redis.call('zadd','z',1.5,'m') redis.setresp(3) return redis.call('zscore','z','m')",
    "redis.call('zadd','z',1.5,'m') return redis.call('zscore','z','m')",
    "redis.setresp(3) return redis.call('zscore','zz','nomember')",
    "return redis.call('zscore','zz','nomember')",
    "redis.setresp(3) return {redis.call('sismember','nos','x'), redis.call('exists','x')}",
    "return redis.call('lpop', 'nolist', 2)", "return type(redis.call('lpop', 'nolist', 2))",
    "redis.setresp(3) return type(redis.call('lpop', 'nolist', 2))",
    "redis.setresp(3) return redis.call('get', 'nokey')",
    "return type(redis.call('get', 'nokey'))", "redis.setresp(3) return type(redis.call('get', 'nokey'))",
    "redis.call('sadd','S','x','y','z') local r = redis.call('smembers','S') table.sort(r) return r",
    "redis.call('sadd','S','x') redis.setresp(3) local n = 0 "
    "for k, v in pairs(redis.call('smembers','S').set) do n = n + 1 end return n",
    "return redis.pcall('lpush','S','x')", "local r = redis.pcall('lpush','S','x') return r.err",
    "return {pcall(redis.call, 'incr', 'L')}",
    "local ok, e = pcall(redis.call, 'incr', 'L') return {tostring(ok), type(e), e}",
    "return redis.call('ping')", "return redis.call('ping', 'hi')", "return redis.call('echo', 'x')",
    "return redis.call('time')[1] ~= nil",
    "redis.call('select', 5) redis.call('set','in5','1') return redis.call('dbsize')",
    "return redis.call('get', 'in5')",
    "return redis.call('set', 'numk', 3.0) and redis.call('get', 'numk')",
    "return redis.call('set', 'numk', 1/3) and redis.call('get', 'numk')",
    "return redis.call('set', 'numk', 2^53) and redis.call('get', 'numk')",
    "return redis.call('set', 'numk', 1e100) and redis.call('get', 'numk')",
    "return redis.call('set', 'numk', -1.5) and redis.call('get', 'numk')",
    "return redis.call('set', 'numk', 1/0) and redis.call('get', 'numk')",
    "return redis.call('set', 'numk', 0/0) and redis.call('get', 'numk')",
    "return redis.call('lpush', 'ml', unpack({'a', 'b', 'c'}))",
    "return redis.call('object', 'help')[1]", "return redis.call('CLIENT', 'HELP')[1]",
    "return redis.call('keys', 'nomatch*')",
]


def test_command_replies_become_lua_values(duo):
    """redisProtocolToLuaType in RESP2 and, after redis.setresp(3), RESP3."""
    _eval_all(duo, REPLY_TO_LUA)


def test_scripts_touch_keys_on_every_shard(duo):
    """Declared and undeclared keys on four different shards, read and written atomically."""
    script = ("for i, k in ipairs(KEYS) do redis.call('set', k, i) end "
              "redis.call('rpush', ARGV[1], 'x') "
              "return {redis.call('mget', unpack(KEYS)), redis.call('lrange', ARGV[1], 0, -1)}")
    duo("EVAL", script, "3", A, B, C, D)
    duo("EVAL", f"return redis.call('rpoplpush', '{A}:list', '{D}:list')", "0")
    duo("EVAL", f"redis.call('rpush', '{B}:l', 1, 2, 3) "
                f"return {{redis.call('lmove', '{B}:l', '{C}:l', 'LEFT', 'RIGHT'), "
                f"redis.call('lrange', '{C}:l', 0, -1)}}", "0")
    duo("MGET", A, B, C, D)


# -- errors --------------------------------------------------------------------------------------------

ERRORS = [
    "return y", "x = 1", "error('boom')", "error('x', 0)", "error(12)", "error(nil)", "error(true)",
    "error({err='MY boom'})", "error({err=1})", "local function g() error('deep') end g()",
    "local function g()\n error('deep') end\ng()", "\n\nreturn nosuch",
    "return redis.call('nosuch')", "return redis.call()", "return redis.call('get')",
    "return redis.call('incr','s') and nil", "redis.call('set','s','x') return redis.call('incr','s')",
    "redis.call('set','s','x')\nlocal a = 1\nreturn redis.call('incr','s')",
    "return redis.pcall('incr','s')", "return redis.pcall()", "return redis.pcall('get', {})",
    "return redis.call('get', {})", "return redis.call('get', nil)", "return redis.call('get', true)",
    "return 1 +", "return redis.call('select', 99)", "return redis.call('select', 'x')",
    "return redis.call('config', 'nosub')", "return redis.call('config')",
    "return redis.call('ping', 'a', 'b')",
    "return redis.setresp(4)", "return redis.setresp()", "redis.setresp('3') return 1",
    "return redis.sha1hex()", "return redis.log(1)", "return redis.log('a', 'b')",
    "return redis.log(9, 'b')", "return redis.set_repl(99)", "return redis.set_repl()",
    "return redis.acl_check_cmd('nosuch')", "return math.random(0)", "return math.random(1,2,3)",
    "return cjson.decode('[')", "return {pcall(cjson.decode, '[')}",
    "local ok, e = pcall(function() return cjson.decode('[') end) return e",
    "return assert(false, 'assert msg')", "return assert(nil)", "return error()",
    "error('with level 2', 2)", "local function f() error('lvl2', 2) end f()",
    "local ok, e = pcall(error, {err='X y'}) return {tostring(ok), type(e), e}",
    "local ok, e = pcall(error, {foo='X y'}) return {tostring(ok), type(e)}",
    "local ok, e = pcall(error, 'msg') return {tostring(ok), type(e), e}",
    "return {pcall()}", "local ok, e = pcall(redis.call, 'nosuch') return e",
    "return {xpcall(function() error({err='T'}) end, function(e) return type(e) end)}",
]

NOT_ALLOWED_IN_SCRIPTS = [
    ("exec",), ("multi",), ("watch", "x"), ("subscribe", "x"), ("auth", "x"), ("client", "id"),
    ("config", "get", "maxmemory"), ("blpop", "x", "0"), ("brpoplpush", "a", "b", "0"),
    ("script", "load", "return 1"), ("function", "list"), ("fcall", "x", "0"),
    ("eval", "return 1", "0"), ("debug", "sleep", "0"), ("shutdown",), ("hello",), ("quit",),
]


def test_error_formats(duo):
    """`ERR user_script:1: ...`, `... script: <sha>, on @user_script:<line>.` and pcall's rules."""
    _eval_all(duo, ERRORS)


def test_commands_refused_in_scripts(duo):
    for argv in NOT_ALLOWED_IN_SCRIPTS:
        args = ", ".join(f"'{a}'" for a in argv)
        duo("EVAL", f"return redis.call({args})", "0")


def test_numkeys_errors(duo):
    duo("EVAL", "return 1", "-1")
    duo("EVAL", "return 1", "2", "a")
    duo("EVAL", "return 1", "x")
    duo("EVAL", "return 1", "99999999999999999999")
    duo("EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "0")
    duo("EVALSHA", "fff", "0")
    duo("FCALL", "nosuch", "0")


# -- the sandbox -------------------------------------------------------------------------------------

SANDBOX = [
    "return os", "return io", "return loadfile", "return dofile", "return print", "return require",
    "return module", "return package", "return debug", "return setfenv", "return getfenv",
    "return newproxy", "return _G.x", "_G.x = 1", "_G['KEYS'] = 1", "KEYS = {}",
    "string.upper = nil", "redis.call = nil", "math.pi = 3", "cjson.x = 1", "table.x = 1",
    "getmetatable('').__index = nil", "getmetatable('').x = 1", "return ('abc'):upper()",
    "return type(getmetatable(''))", "return getmetatable(_G)", "return type(getmetatable(_G))",
    "return rawget(_G, 'redis') ~= nil", "return rawget(string, 'upper') ~= nil",
    "rawset(_G,'x',1)", "rawset(string, 'x', 1)", "setmetatable(_G, nil)", "setmetatable(string, {})",
    "return setmetatable({}, nil) ~= nil",
    "local t = setmetatable({}, {__metatable = 'locked'}) return getmetatable(t)",
    "local t = setmetatable({}, {__metatable = 'locked'}) setmetatable(t, {})",
    "return next({})", "return next(_G) ~= nil", "return select('#', next({}))",
    "local n = 0 for k,v in pairs(_G) do n = n + 1 end return n",
    "local r = {} for k,v in pairs(_G) do r[#r+1] = k .. '=' .. type(v) end table.sort(r) return r",
    "return type(redis.call)", "return type(cjson.encode)", "return type(math.random)",
    "return loadstring(string.dump(function() return 1 end))",
    "local f = loadstring('x = 1') return f()", "local f = loadstring('return y') return f()",
    "return loadstring('return ...')(5)", "local f, e = loadstring('return 1 +') return e",
    "local n = 0 local f = load(function() n = n + 1 if n == 1 then return 'return 7' end end) "
    "return f()",
    "return coroutine.wrap(function() coroutine.yield(1) end)()",
    "local co = coroutine.create(function(a) local b = coroutine.yield(a + 1) return b * 2 end) "
    "local _, x = coroutine.resume(co, 1) local _, y = coroutine.resume(co, 10) "
    "return {x, y, coroutine.status(co)}",
    "local co = coroutine.create(function() cjson.decode('[') end) return {coroutine.resume(co)}",
    "return _VERSION", "return gcinfo() > 0", "return collectgarbage('count') > 0",
    "return {unpack({1, 2, 3})}", "return select(2, 'a', 'b', 'c')",
    "return string.format('%5.2f|%d|%s', 3.14159, 42, 'z')", "return tostring(0.1)",
    "return tonumber('0x10')", "local t = {3, 1, 2} table.sort(t) return t",
    "return {string.find('hello', 'l+')}", "return #string.dump(function() end) > 0",
]

LIBRARY_TABLES = ["redis", "string", "math", "table", "cjson", "cmsgpack", "bit", "struct",
                  "coroutine"]


def test_sandbox(duo):
    """No os/io/loadfile/dofile, read-only globals and libraries, Redis's error texts."""
    _eval_all(duo, SANDBOX)
    for lib in LIBRARY_TABLES:
        duo("EVAL", f"local r = {{}} for k,v in pairs({lib}) do r[#r+1] = k .. '=' .. type(v) end "
                    "table.sort(r) return r", "0")
    duo("EVAL", "return {redis.REDIS_VERSION, redis.REDIS_VERSION_NUM, redis.REPL_ALL, "
                "redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_NONE, "
                "redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING}", "0")


def test_redis_helpers(duo):
    _eval_all(duo, [
        "return redis.sha1hex('abc')", "return redis.sha1hex(1)", "return redis.sha1hex(nil)",
        "return redis.sha1hex('')", "return redis.log(redis.LOG_WARNING, 'from a test', 1)",
        "return redis.set_repl(redis.REPL_ALL)", "return redis.replicate_commands()",
        "return redis.breakpoint()", "return redis.debug('x')",
        "return redis.acl_check_cmd('get', 'x')",
        "math.randomseed(42) return {math.random(1000), math.random(1, 10), "
        "tostring(math.random())}",
        "math.randomseed(7) local t = {} for i = 1, 20 do t[i] = math.random(100) end return t",
    ])


# -- cjson, cmsgpack, struct, bit ---------------------------------------------------------------------

LIBRARIES = [
    "return cjson.encode({1,2,{a=1}})", "return cjson.encode({1,2,nil,4})",
    "return cjson.encode({[1]=1,[5]=5})", "return cjson.encode({[1]=1,[20]=5})",
    "return cjson.encode({a='x/y\"\\\\\\n\\1\\127é'})", "return cjson.encode(0.1)",
    "return cjson.encode(1/3)", "return cjson.encode(1e300)", "return cjson.encode(0/0)",
    "return cjson.encode(function() end)", "return cjson.encode({[true]=1})", "return cjson.encode({})",
    "return cjson.encode({a={}, b={1,{c=cjson.null}}})", "return cjson.encode({[1.5]=1})",
    "return cjson.encode({[1]=1, a=2})", "return cjson.encode(123456789012345678)",
    "return cjson.encode('\\0')", "return cjson.encode()", "return cjson.encode(true, false)",
    "return cjson.encode({z=1,y=2,x=3,w=4,v=5,u=6,aa=7,bb=8,cc=9,dd=10,ee=11})",
    "return cjson.encode({a={b={c={1,2,3}}}, d='x', e=1.5, f=false})",
    "return cjson.encode(cjson.decode('{\"a\":[1,2,{\"b\":null}],\"c\":\"\\\\u00e9\"}'))",
    "return cjson.decode('[1,2,3]')", "return cjson.decode(' [] ')", "return cjson.decode('1e2')",
    "return cjson.decode('0.5')", "return tostring(cjson.decode('123456789012345678'))",
    "return cjson.decode('\"abc\"')", "return type(cjson.decode('true'))",
    "return cjson.encode(cjson.decode('[]'))", "return cjson.decode('0x10')",
    "return cjson.decode('01')", "return cjson.decode('NaN')", "return cjson.decode('-')",
    "return cjson.decode('[1,]')", "return cjson.decode('{1:2}')", "return cjson.decode('\"\\\\x\"')",
    "return cjson.decode('')", "return cjson.decode('1 2')", "return cjson.decode('{\"a\":1')",
    "return cjson.decode('nul')", "return cjson.decode('[1,2')", "return cjson.decode('\"abc')",
    "return cjson.decode('[\"\\\\u12\"]')", "return cjson.decode('[\"a\\tb\"]')",
    "return cjson.decode('{\"a\":{\"b\":[true,false]}}').a.b",
    "local t = cjson.decode('{\"a\":[1,2,{\"b\":null}],\"c\":\"\\\\u00e9\\\\ud83d\\\\ude00\"}') "
    "return {t.a[1], t.a[3].b == cjson.null, t.c, type(t.a[3].b)}",
    "return cmsgpack.pack({1,2,3}, 'a', {x=1}, true, nil, 1.5, -1, 300, 0.1)",
    "return cmsgpack.pack(0, 127, 128, 255, 256, 65535, 65536, 2^32, -32, -33, -128, -129, "
    "-32768, -32769, -2^31, -2^31-1, 2^53, 1e300)",
    "return cmsgpack.pack(string.rep('x', 31), string.rep('y', 32), string.rep('z', 300))",
    "return cmsgpack.pack({a={b={c={}}}})",
    "return {cmsgpack.unpack(cmsgpack.pack({1,2,3}, 'a', {x=1}, true, 1.5, -1, 300))}",
    "local t = cmsgpack.unpack(cmsgpack.pack({x=1, y={1, 2}})) return {t.x, t.y}",
    "return cmsgpack.pack()", "return cmsgpack.unpack('')",
    "return {cmsgpack.unpack_one(cmsgpack.pack(1,2,3))}",
    "return {cmsgpack.unpack_limit(cmsgpack.pack(1,2,3), 2)}",
    "return {cmsgpack.unpack_one(cmsgpack.pack(1,2,3), 2)}",
    "return cmsgpack.unpack(string.char(0xc1))", "return cmsgpack.unpack(string.char(0x92, 1))",
    "return struct.pack('>I2', 258)", "return {struct.unpack('<i4', struct.pack('<i4', -2))}",
    "return struct.size('>iHd')", "return struct.pack('z')", "return {struct.unpack('s', 'ab\\0cd')}",
    "return struct.pack('c3', 'abcdef')", "return {struct.unpack('>d', struct.pack('>d', 1.5))}",
    "return struct.pack('<bBhHlLi3I5', -1, 255, -2, 65535, -3, 7, -4, 5)",
    "return {struct.unpack('<bBhHlLi3I5', struct.pack('<bBhHlLi3I5', -1, 255, -2, 65535, -3, 7, "
    "-4, 5))}",
    "return struct.pack('!4 b i', 1, 2)", "return struct.pack('>s', 'abc')",
    "return {struct.unpack('B', '')}", "return {struct.unpack('>I2', 'abcd', 3)}",
    "return struct.pack('i', 'x')", "return {struct.unpack('Bc0', struct.pack('B', 3) .. 'xyz')}",
    "return bit.tohex(255)", "return bit.tohex(-1, -4)",
    "return {bit.band(0xff, 0x0f), bit.bor(1,2,4), bit.bxor(3), bit.bnot(0), bit.lshift(1, 31), "
    "bit.rshift(-1, 28), bit.arshift(-256, 4), bit.rol(1, 33), bit.ror(1,1), "
    "bit.bswap(0x12345678), bit.tobit(2^32+5), bit.tobit(1.5), bit.tobit(2.5), bit.tobit(-1.5)}",
    "return bit.band()", "return bit.band('x')", "return bit.band('12')",
]


def test_bundled_libraries(duo):
    """cjson (numbers, escapes, key order, sparse arrays, decode errors), cmsgpack, struct, bit."""
    _eval_all(duo, LIBRARIES)


# -- shebang flags, EVAL_RO, the script cache --------------------------------------------------------

SHEBANGS = [
    "#!lua flags=no-writes\nreturn redis.call('set','a','b')",
    "#!lua flags=no-writes\nreturn redis.call('get','a')",
    "#!lua\nreturn redis.call('set','a','b')", "#!lua flags=bad\nreturn 1", "#!lua name=x\nreturn 1",
    "#!js\nreturn 1", "#!luax\nreturn 1", "#! lua\nreturn 1",
    "#!lua flags=no-writes,allow-oom,allow-stale,no-cluster,allow-cross-slot-keys\nreturn 1",
    "#!lua flags=\nreturn 1", "#!lua  flags=no-writes   \nreturn 1", "#!lua",
    "#!lua\nreturn error('line2')", '#!lua "flags=no-writes"\nreturn 1',
    "#!lua flags=no-writes,\nreturn 1",
]


def test_shebang_flags(duo):
    _eval_all(duo, SHEBANGS)
    duo("EVAL_RO", "return redis.call('set','a','b')", "0")
    duo("EVAL_RO", "return redis.pcall('set','a','b')", "0")
    duo("EVAL_RO", "#!lua\nreturn 1", "0")
    duo("EVAL_RO", "#!lua flags=no-writes\nreturn redis.call('get', 'a')", "0")
    duo("EVAL_RO", "return redis.call('get', 'a')", "0")


def test_script_cache(duo):
    sha = duo("SCRIPT", "LOAD", "return 'loaded'")
    duo("EVALSHA", sha, "0")
    duo("EVALSHA", sha.upper(), "0")
    duo("EVALSHA_RO", sha, "0")
    duo("SCRIPT", "EXISTS", sha, sha.upper(), "ffffffffffffffffffffffffffffffffffffffff")
    duo("EVAL", "return 'cached by eval'", "0")
    duo("EVALSHA", "1f2a7ee7b4d05e9b5a1e2d9a0c2e7f3cc3a5c8a8", "0")
    duo("SCRIPT", "LOAD", "#!lua flags=bad\nreturn 1")
    duo("SCRIPT", "LOAD", "return +")
    ro = duo("SCRIPT", "LOAD", "#!lua flags=no-writes\nreturn 1")
    duo("EVALSHA_RO", ro, "0")
    duo("SCRIPT", "FLUSH", "foo")
    duo("SCRIPT", "FLUSH", "ASYNC")
    duo("SCRIPT", "EXISTS", sha)
    duo("EVALSHA", sha, "0")
    duo("SCRIPT", "LOAD", "return 1")
    duo("SCRIPT", "FLUSH", "SYNC")
    duo("SCRIPT", "HELP")
    duo("SCRIPT", "KILL")
    duo("SCRIPT", "NOSUCH")


def test_eval_in_multi_and_watch(duo):
    duo("MULTI")
    duo("EVAL", "return redis.call('incr', KEYS[1])", "1", "mk")
    duo("EVAL", "return redis.call('incr', 'mk2')", "0")
    duo("EVAL", "return redis.call('nosuch')", "0")
    duo("EVAL", "return 1", "x")
    duo("EXEC")
    duo("MULTI")
    duo("EVAL", "return 1", "-1")
    duo("EXEC")
    for key, script in (("wk", "return redis.call('set', 'wk', 'v')"),
                        ("wk2", "return redis.call('get', 'wk2')"),
                        ("wk3", "redis.call('set', 'wk3', 'v') return redis.call('del', 'wk3')")):
        duo("WATCH", key)
        duo("EVAL", script, "0")
        duo("MULTI")
        duo("PING")
        duo("EXEC")


def test_register_script(pair):
    """redis-py's Script object: EVALSHA, falling back to SCRIPT LOAD after NOSCRIPT."""
    results = []
    for client in pair:
        client.script_flush()
        incr_by = client.register_script(
            "local v = redis.call('incrby', KEYS[1], ARGV[1]) return {v, KEYS[1], ARGV[1]}")
        first = incr_by(keys=["counter"], args=[5])
        client.script_flush()
        second = incr_by(keys=["counter"], args=[7])
        pipe = client.pipeline()
        incr_by(keys=["counter"], args=[1], client=pipe)
        results.append((first, second, pipe.execute(), client.get("counter")))
    assert results[0] == results[1]


# -- functions -----------------------------------------------------------------------------------------

MYLIB = """#!lua name=mylib
local function f(keys, args) return redis.call('set', keys[1], args[1]) end
redis.register_function('myset', f)
redis.register_function{function_name='myget', callback=function(keys, args)
  return redis.call('get', keys[1]) end, flags={'no-writes'}, description='get it'}"""

PROBE = """#!lua name=probe
redis.register_function('glob', function() x = 1 end)
redis.register_function('glob2', function() return y end)
redis.register_function('errf', function() error('boom') end)
redis.register_function('err2', function() return redis.call('incr', 'probe:s') end)
redis.register_function('nested', function() local function g() error('deep') end g() end)
redis.register_function('rf', function() redis.register_function('zz', function() end) end)
redis.register_function('ks', function(keys, args) return {#keys, #args, keys[1], args[2]} end)
redis.register_function('ks2', function(keys, args) return KEYS end)
redis.register_function{function_name='flagged', callback=function() return 1 end,
  flags={'no-writes', 'allow-oom', 'allow-stale', 'no-cluster', 'allow-cross-slot-keys'}}
redis.register_function{function_name='FlagCase', callback=function() return 1 end,
  flags={'NO-WRITES'}}
redis.register_function('env', function(keys, args)
  local r = {}
  for k,v in pairs(_G) do r[#r+1] = k .. '=' .. type(v) end
  table.sort(r)
  return r
end)"""

BAD_LIBRARIES = [
    "#!lua name=lib2\nreturn 1", "#!lua\nredis.register_function('a', function() end)",
    "return 1", "#!js name=x\nfoo", "#!lua name=x foo=bar\n", "#!lua name=x name=y\n",
    "#!lua name=bad-name\n", "#!lua name=x", "#!lua name=x\nerror('bad')",
    "#!lua name=x\nredis.call('ping')", "#!lua name=x\nlocal a =",
    "#!lua name=x\nredis.register_function('dup', function() end)\n"
    "redis.register_function('dup', function() end)",
    "#!lua name=x\nredis.register_function{function_name='ff', callback=function() end, "
    "flags={'bad-flag'}}",
    "#!lua name=x\nredis.register_function()", "#!lua name=x\nredis.register_function('a')",
    "#!lua name=x\nredis.register_function{function_name='a'}",
    "#!lua name=x\nredis.register_function{callback=function() end}",
    "#!lua name=x\nredis.register_function{function_name='a', callback=function() end, foo=1}",
    "#!lua name=x\nredis.register_function('a-b', function() end)",
    "#!lua name=x\nredis.register_function{function_name='a', callback='x'}",
    "#!lua name=x\nredis.register_function{function_name='a', callback=function() end, "
    "flags='no-writes'}",
    "#!lua name=x\nredis.register_function('one', 'two')",
    "#!lua name=x\nredis.register_function({}, 'two')", "#!lua name=x\nx = 1",
    "#!lua name=x\nreturn KEYS",
    "#!lua name=x\nlocal v = redis.REDIS_VERSION\nredis.log(redis.LOG_WARNING, 'hello')\n"
    "redis.register_function('x_v', function() return v end)\nreturn redis.setresp",
]


def _libraries(value) -> dict:
    """FUNCTION LIST as {name: (engine, {function: (description, sorted flags)}, code)}, for either
    protocol's parse, so Redis's hash order does not matter."""
    out = {}
    for entry in value:
        fields = entry if isinstance(entry, dict) else dict(zip(entry[::2], entry[1::2]))
        functions = {}
        for fn in fields[b"functions"]:
            f = fn if isinstance(fn, dict) else dict(zip(fn[::2], fn[1::2]))
            functions[f[b"name"]] = (f[b"description"], sorted(f[b"flags"]))
        out[fields[b"library_name"]] = (fields[b"engine"], functions, fields.get(b"library_code"))
    return out


def test_function_list_bytes(duo):
    """With one function per library the order is fixed: the bytes must be Redis's."""
    duo("FUNCTION", "LOAD", "#!lua name=one\nredis.register_function{function_name='f', "
                            "callback=function() return 1 end, flags={'no-writes'}, "
                            "description='d'}")
    duo("FUNCTION", "LIST")
    duo("FUNCTION", "LIST", "WITHCODE")
    duo("FUNCTION", "LOAD", "#!lua name=two\nredis.register_function('g', function() end)")
    duo("FUNCTION", "LIST", "LIBRARYNAME", "two", "WITHCODE")
    duo("FUNCTION", "STATS")


def test_function_load_and_fcall(duo):
    duo("FUNCTION", "LOAD", MYLIB)
    for args in (("WITHCODE",), ("LIBRARYNAME", "my*"), ("LIBRARYNAME", "MY*"), ()):
        ours, real = duo.both("FUNCTION", "LIST", *args)
        assert _libraries(ours) == _libraries(real)
    duo("FUNCTION", "LIST", "LIBRARYNAME", "nomatch*")
    duo("FUNCTION", "LIST", "LIBRARYNAME")
    duo("FUNCTION", "LIST", "foo")
    for call in (("FCALL", "myset", "1", "k", "v"), ("FCALL", "myget", "1", "k"),
                 ("FCALL", "MYGET", "1", "k"), ("FCALL_RO", "myset", "1", "k", "v"),
                 ("FCALL_RO", "myget", "1", "k"), ("FCALL", "myset", "x"),
                 ("FCALL", "myset", "5"), ("FCALL", "myset", "-1"), ("FCALL", "nosuch", "0")):
        duo(*call)
    duo("FUNCTION", "LOAD", "#!lua name=mylib\nreturn 1")
    duo("FUNCTION", "LOAD", "#!lua name=lib2\nredis.register_function('MySet', function() end)")
    duo("FUNCTION", "LOAD", "FOO", "BAR")
    duo("FUNCTION", "LOAD", "REPLACE", "foo", "#!lua name=z\nredis.register_function('z', "
                                               "function() end)")


def test_function_load_errors(duo):
    for code in BAD_LIBRARIES:
        duo("FUNCTION", "LOAD", code)
    duo("FUNCTION", "LIST")


def test_function_runtime(duo):
    duo("FUNCTION", "LOAD", PROBE)
    duo("SET", "probe:s", "abc")
    for name in ("glob", "glob2", "errf", "err2", "nested", "rf", "ks2", "env"):
        duo("FCALL", name, "0")
    duo("FCALL", "ks", "2", "k1", "k2", "a1", "a2", "a3")
    duo("FCALL_RO", "flagged", "0")
    duo("FCALL_RO", "FlagCase", "0")
    ours, real = duo.both("FUNCTION", "LIST", "LIBRARYNAME", "probe")
    assert _libraries(ours) == _libraries(real)
    duo("FUNCTION", "STATS")


def test_function_replace_delete_flush(duo):
    duo("FUNCTION", "LOAD", "REPLACE", "#!lua name=rl\nredis.register_function('rlf', "
                                       "function() return 1 end)")
    duo("FUNCTION", "LOAD", "REPLACE", "#!lua name=rl\nredis.register_function('rlf', "
                                       "function() return 2 end)")
    duo("FCALL", "rlf", "0")
    duo("FUNCTION", "LOAD", "#!lua name=RL\nredis.register_function('other', function() end)")
    duo("FUNCTION", "DELETE", "nosuch")
    duo("FUNCTION", "DELETE", "RL")
    duo("FUNCTION", "DELETE", "rl")
    duo("FCALL", "rlf", "0")
    duo("FUNCTION", "FLUSH", "foo")
    duo("FUNCTION", "FLUSH", "ASYNC")
    duo("FUNCTION", "STATS")
    duo("FUNCTION", "HELP")
    duo("FUNCTION", "KILL")


def test_function_dump_and_restore_cross_servers(duo):
    """A payload dumped by either server restores into the other (Redis compresses with LZF)."""
    code = "#!lua name=dumplib\n" + "\n".join(
        f"redis.register_function('f{i}', function() return {i} end) -- padding padding"
        for i in range(5))
    duo.real.call("FUNCTION", "LOAD", code)
    duo.real.call("FUNCTION", "LOAD", "#!lua name=small\nredis.register_function('sm', "
                                      "function() return 'x' end)")
    _, payload = duo.real.call("FUNCTION", "DUMP")
    assert duo.ours.call("FUNCTION", "RESTORE", payload)[1] == "OK"
    assert duo.ours.call("FCALL", "f3", "0")[1] == 3
    assert isinstance(duo.ours.call("FUNCTION", "RESTORE", payload)[1], Err)
    assert duo.ours.call("FUNCTION", "RESTORE", payload, "REPLACE")[1] == "OK"
    _, ours_payload = duo.ours.call("FUNCTION", "DUMP")
    duo.real.call("FUNCTION", "FLUSH")
    assert duo.real.call("FUNCTION", "RESTORE", ours_payload)[1] == "OK"
    assert duo.real.call("FCALL", "f4", "0")[1] == 4
    ours, real = duo.both("FUNCTION", "RESTORE", ours_payload)   # which library is named first
    assert ours.startswith("ERR Library ") and real.startswith("ERR Library ")  # is hash order
    duo("FUNCTION", "RESTORE", ours_payload[:-1] + bytes([ours_payload[-1] ^ 1]))
    duo("FUNCTION", "RESTORE", "garbage")
    duo("FUNCTION", "RESTORE", "garbage", "FOO")
    duo("FUNCTION", "RESTORE", "garbage", "FLUSH", "x")
    duo("FUNCTION", "RESTORE", ours_payload, "FLUSH")
    ours, real = duo.both("FUNCTION", "LIST")
    assert _libraries(ours) == _libraries(real)


def test_known_divergences(duo):
    """Where Shardis answers differently on purpose, pinned so a change is noticed.

    - Redis 7.0.15 crashes on `error({})` (and any error table without a string `err`); Shardis
      replies with an error instead.
    - A bad argument to a sandboxed builtin (pairs, rawget, type ...) called in tail position
      (`return pairs()`) loses the caller's line: those builtins are Lua functions here, C in Redis.
    """
    ours = duo.ours.call("EVAL", "error({})", "0")[1]
    assert isinstance(ours, Err) and ours.startswith("ERR ")
    ours = duo.ours.call("EVAL", "local t = pairs() return t", "0")[1]
    real = duo.real.call("EVAL", "local t = pairs() return t", "0")[1]
    assert ours == real


def test_redis_py_function_helpers(pair):
    """redis-py's function_load/fcall helpers behave alike on both servers."""
    outcomes = []
    for client in pair:
        client.function_flush()
        name = client.function_load("#!lua name=pylib\nredis.register_function('hello', "
                                    "function(keys, args) return 'hello ' .. args[1] end)")
        value = client.fcall("hello", 0, "world")
        with pytest.raises(redis.ResponseError) as info:
            client.function_load("#!lua name=pylib\nredis.register_function('hello', "
                                 "function() end)")
        outcomes.append((name, value, str(info.value)))
        client.function_flush()
    assert outcomes[0] == outcomes[1]
