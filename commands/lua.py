"""The Lua runtime behind EVAL and FUNCTION: sandbox, the `redis` API, reply conversion, libraries.

Redis 7.0 runs two Lua 5.1 interpreters: one for EVAL scripts and one for function libraries. We do
the same with two `lupa.lua51` runtimes (`Engine`). Everything a script can reach is built by the
Lua bootstrap below from locals of the bootstrap chunk, so user code never sees Python objects or the
`debug` library:

- **Sandbox.** Globals and library tables are read-only proxies (writes raise "Attempt to modify a
  readonly table", unknown globals raise "Script attempted to access nonexistent global variable").
  Redis's Lua is patched to make tables read-only in the VM; stock Lua needs proxies, so `pairs`,
  `next`, `rawget`, `rawset`, `getmetatable` and `setmetatable` see through them. Raw writes that
  slip past (table.insert on a proxy) are wiped after every run.
- **Errors** follow Redis: a script error is a table `{err=..., source=..., line=...}` built by the
  error handler, and becomes `-<err> script: <name>, on <source>:<line>.`.
- **Kill.** A count hook polls `RUNNING.kill_requested` every 100000 instructions (as Redis's
  `luaMaskCountHook`); after a kill it fires on every line, so `pcall` cannot swallow it.
- **cjson, cmsgpack, struct, bit** are not part of stock Lua: cjson.encode is written in Lua (so
  numbers format with C's `%.14g` and keys come out in `next` order, as Redis's C module does); the
  decoders, struct, bit and math.random (Redis's rand48) are Python called through small wrappers.

Scripts run in global mode (every shard parked, see actors/shard.py), one at a time; the engine lock
only guards against misuse. The script cache and the function libraries are server-wide: they live
here, in module-level state.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import struct
import threading
import time
from collections.abc import Callable

import lupa.lua51 as lua51

from commands.args import parse_int
from commands.registry import Route, lookup
from keyspace.db import frozen_expiry, touch_written
from protocol import replies as _replies
from protocol.errors import CommandError
from protocol.replies import DEFERRED, NULL_ARRAY, ErrorReply, SetReply, Verbatim, format_double

if hasattr(_replies, "BigNumber"):
    BigNumber = _replies.BigNumber
else:
    class BigNumber(bytes):
        """A RESP3 big number `(123`: a bulk string in RESP2 (Redis's addReplyBigNum)."""

        __slots__ = ()

if hasattr(_replies, "FormattedVerbatim"):
    FormattedVerbatim = _replies.FormattedVerbatim
else:
    class FormattedVerbatim(bytes):
        """RESP3 verbatim text with its 3-letter format, held as b"fmt:text"; RESP2: bulk "text"."""

        __slots__ = ()


def _register_reply_types() -> None:
    """Give BigNumber and FormattedVerbatim their encodings, unless protocol/replies.py has them
    (the same stop-gap commands/hashes.py uses for PairsReply)."""
    for proto, tables in ((2, False), (3, True)):
        table = _replies._TABLES[proto]
        if BigNumber not in table:
            if tables:
                table[BigNumber] = lambda value, out: out.append(b"(" + bytes(value) + b"\r\n")
            else:
                table[BigNumber] = lambda value, out: out.append(
                    b"$%d\r\n%s\r\n" % (len(value), bytes(value)))
        if FormattedVerbatim not in table:
            if tables:
                table[FormattedVerbatim] = lambda value, out: out.append(
                    b"=%d\r\n%s\r\n" % (len(value), bytes(value)))
            else:
                table[FormattedVerbatim] = lambda value, out: out.append(
                    b"$%d\r\n%s\r\n" % (len(value) - 4, bytes(value)[4:]))


_register_reply_types()

__all__ = [
    "ScriptState", "RUNNING", "ScriptHost", "HOST", "Engine", "Script", "Library", "FunctionInfo",
    "run_eval", "script_load", "script_exists", "script_flush", "function_load", "load_library",
    "libraries_code", "function_delete", "function_flush", "function_list", "function_dump",
    "function_restore", "function_stats", "run_function", "crc64",
    "FLAG_NO_WRITES", "FLAG_ALLOW_OOM", "FLAG_ALLOW_STALE", "FLAG_NO_CLUSTER", "FLAG_ALLOW_CROSS_SLOT",
]

log = logging.getLogger("shardis.script")

REDIS_VERSION = "7.0.15"
REDIS_VERSION_NUM = 0x07000F

# Script flags, in the order Redis lists them (scripts_flags_def).
FLAG_NO_WRITES, FLAG_ALLOW_OOM, FLAG_ALLOW_STALE, FLAG_NO_CLUSTER, FLAG_ALLOW_CROSS_SLOT = (
    1 << i for i in range(5))
_FLAG_NAMES = [(FLAG_NO_WRITES, b"no-writes"), (FLAG_ALLOW_OOM, b"allow-oom"),
               (FLAG_ALLOW_STALE, b"allow-stale"), (FLAG_NO_CLUSTER, b"no-cluster"),
               (FLAG_ALLOW_CROSS_SLOT, b"allow-cross-slot-keys")]
_FLAG_BY_NAME = {name: bit for bit, name in _FLAG_NAMES}
_EVAL_COMPAT = 1 << 8
"""A script without shebang: flags do not apply (Redis's SCRIPT_FLAG_EVAL_COMPAT_MODE)."""

_REPL_AOF, _REPL_REPLICA = 1, 2
_HOOK_COUNT = 100000
_LOAD_TIMEOUT = 0.5   # seconds FUNCTION LOAD may run the library body (Redis: 500 ms)

_BUSY_EVAL = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
_BUSY_FUNCTION = ("BUSY Redis is busy running a script. You can only call FUNCTION KILL or "
                  "SHUTDOWN NOSAVE.")
_NOTBUSY = "NOTBUSY No scripts in execution right now."
_UNKILLABLE = ("UNKILLABLE Sorry the script already executed write commands against the dataset. "
               "You can either wait the script termination or kill the server in a hard way using "
               "the SHUTDOWN NOSAVE command.")
_NOT_ALLOWED = "This Redis command is not allowed from script"
_NOSCRIPT = "NOSCRIPT No matching script. Please use EVAL."
_RO_WITH_WRITE_FLAG = "ERR Can not execute a script with write flag using *_ro command."
_NAME_RULE = ("Library names can only contain letters, numbers, or underscores(_) and must be at "
              "least one character long")
_VALID_NAME = re.compile(rb"[A-Za-z0-9_]+\Z")


# -- the running script: what the loop needs for BUSY and SCRIPT/FUNCTION KILL ------------------------

class ScriptState:
    """The script running now, if any. Written by the thread running it, read by the event loop.

    The loop replies `busy_error(threshold)` to commands without `allow_busy` while it is not None,
    and SCRIPT KILL / FUNCTION KILL call `request_kill`. The Lua hook polls `kill_requested`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.running = False
        self.started = 0.0          # time.monotonic() at the start
        self.name = b""             # the sha1 of an EVAL script, or the function's name
        self.is_eval = True
        self.argv: list[bytes] = []
        self.wrote = False          # a write command was called: the script can no longer be killed
        self.kill_requested = False

    def begin(self, name: bytes, is_eval: bool, argv: list[bytes]) -> None:
        with self._lock:
            self.running = True
            self.started = time.monotonic()
            self.name = name
            self.is_eval = is_eval
            self.argv = argv
            self.wrote = False
            self.kill_requested = False

    def end(self) -> None:
        with self._lock:
            self.running = False
            self.kill_requested = False
            self.wrote = False
            self.argv = []

    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000) if self.running else 0

    def busy_error(self, threshold_ms: int) -> str | None:
        """The -BUSY text once a script has run for `threshold_ms` (busy-reply-threshold), else None."""
        if not self.running or (time.monotonic() - self.started) * 1000 < threshold_ms:
            return None
        return _BUSY_EVAL if self.is_eval else _BUSY_FUNCTION

    def request_kill(self, from_eval: bool) -> str | None:
        """SCRIPT KILL (`from_eval`) or FUNCTION KILL: None when the kill is accepted, else the error."""
        with self._lock:
            if not self.running:
                return _NOTBUSY
            if self.wrote:
                return _UNKILLABLE
            if from_eval and not self.is_eval:
                return _BUSY_FUNCTION
            if not from_eval and self.is_eval:
                return _BUSY_EVAL
            self.kill_requested = True
            return None

    def abort(self) -> None:
        """Stop the running script even if it has written (SHUTDOWN NOSAVE, server stop)."""
        with self._lock:
            if self.running:
                self.kill_requested = True

    def mark_write(self) -> bool:
        """A write command is about to run; False if a kill got there first (the script must stop)."""
        with self._lock:
            if self.kill_requested:
                return False
            self.wrote = True
            return True


RUNNING = ScriptState()


class ScriptHost:
    """Server services a script may need that a shard cannot reach: set by the server at startup.

    - `server`: handed to LOCAL handlers called from scripts (INFO, LASTSAVE read it).
    - `publish(channel, message, sharded) -> int`: deliver a PUBLISH/SPUBLISH, return receivers.
    - `broker_query(fn, proto)`: answer a PUBSUB introspection query synchronously.
    Left unset, those commands reply "This Redis command is not allowed from script".
    """

    def __init__(self) -> None:
        self.server = None
        self.publish: Callable[[bytes, bytes, bool], int] | None = None
        self.broker_query: Callable | None = None


HOST = ScriptHost()


class _ScriptClient:
    """What a LOCAL handler sees when a script calls it: the script's db and protocol."""

    def __init__(self, db_index: int, proto: int) -> None:
        self.db = db_index
        self.proto = proto
        self.server = HOST.server
        self.deferred = None
        self.id = 0
        self.name = b""
        self.subscribed = False
        self.multi = None
        self.reply_on = True

    def publish(self, channel: bytes, message: bytes, sharded: bool) -> None:
        if HOST.publish is None:
            raise CommandError("ERR " + _NOT_ALLOWED)
        self.deferred = HOST.publish(channel, message, sharded)

    def broker_query(self, fn) -> None:
        if HOST.broker_query is None:
            raise CommandError("ERR " + _NOT_ALLOWED)
        self.deferred = HOST.broker_query(fn, self.proto)


# -- the Lua side ------------------------------------------------------------------------------------

_BOOT = r'''
local py, kind = ...
local type, tostring, tonumber, select = type, tostring, tonumber, select
local error, pcall, xpcall = error, pcall, xpcall
local next, pairs, ipairs, unpack, rawget, rawset = next, pairs, ipairs, unpack, rawget, rawset
local setmetatable, getmetatable, setfenv, loadstring = setmetatable, getmetatable, setfenv, loadstring
local sformat, sbyte, sgsub = string.format, string.byte, string.gsub
local tconcat = table.concat
local floor, huge = math.floor, math.huge
local co_create, co_resume = coroutine.create, coroutine.resume
local dbg = debug
local INTERNAL = dbg.getinfo(1, 'S').source
local HOOK_COUNT = py.hook_count
local py_check, py_unwrap = py.check, py.unwrap

local function pack(...) return {n = select('#', ...), ...} end
local NULL = newproxy(false)   -- cjson.null

-- Python functions are userdata to Lua; user code must see them as functions, as Redis's C ones.
local pyfunc = setmetatable({}, {__mode = 'k'})
local function fn(f) pyfunc[f] = true return f end
local function sb_type(...)
  if select('#', ...) == 0 then error("bad argument #1 to 'type' (value expected)", 2) end
  local t = type((...))
  if t == 'userdata' and pyfunc[(...)] then return 'function' end
  return t
end
local function sb_tostring(...)
  if select('#', ...) == 0 then error("bad argument #1 to 'tostring' (value expected)", 2) end
  local v = ...
  if type(v) == 'userdata' and pyfunc[v] then return 'function: builtin' .. string.sub(tostring(v), 10) end
  return tostring(v)
end

-- Errors raised by Python functions arrive as userdata; turn them into what Redis's C functions
-- raise. `level` is the stack level of the raising function as seen by the caller of convert.
local function convert(e, level, thread)
  if type(e) == 'string' then
    -- A position inside this bootstrap stands where Redis has a C function: it has no position.
    local stripped = string.gsub(e, '^shardis:%d+: ', '', 1)
    return stripped
  end
  if type(e) ~= 'userdata' then return e end
  local kind, payload = py_unwrap(e)
  if kind == 0 then return e end
  if kind == 2 then   -- luaL_error: prefixed with the position of the calling Lua function
    local i
    if thread then i = dbg.getinfo(thread, 1, 'Sl') else i = dbg.getinfo(level + 2, 'Sl') end
    if i and i.currentline and i.currentline > 0 and i.source ~= INTERNAL then
      return i.short_src .. ':' .. i.currentline .. ': ' .. payload
    end
    return payload
  end
  if kind == 1 then return {err = payload} end
  return payload
end

-- read-only proxies ------------------------------------------------------------------------------
local real_of = setmetatable({}, {__mode = 'k'})
local shown_mt = setmetatable({}, {__mode = 'k'})
local proxies = {}
local function ro_newindex() error("Attempt to modify a readonly table", 2) end
local function missing_global(_, k)
  error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
end
local function readonly(t, strict)
  if strict then setmetatable(t, {__index = missing_global}) end
  local proxy = setmetatable({}, {__index = t, __newindex = ro_newindex})
  real_of[proxy] = t
  proxies[#proxies + 1] = proxy
  return proxy
end
local function copy(t) local c = {} for k, v in next, t do c[k] = v end return c end

local function argerror(i, fname, msg) error(sformat("bad argument #%d to '%s' (%s)", i, fname, msg), 3) end
local function typeerror(i, fname, expected, n, v)
  error(sformat("bad argument #%d to '%s' (%s expected, got %s)", i, fname, expected,
                i > n and "no value" or type(v)), 3)
end

-- sandboxed builtins -----------------------------------------------------------------------------
local function sb_next(...)
  local t = ...
  if type(t) ~= 'table' then typeerror(1, 'next', 'table', select('#', ...), t) end
  local k = select(2, ...)
  return next(real_of[t] or t, k)
end
local function sb_pairs(...)
  local t = ...
  if type(t) ~= 'table' then typeerror(1, 'pairs', 'table', select('#', ...), t) end
  return next, real_of[t] or t, nil
end
local function sb_rawget(...)
  local t, k = ...
  if type(t) ~= 'table' then typeerror(1, 'rawget', 'table', select('#', ...), t) end
  return rawget(real_of[t] or t, k)
end
local function sb_rawset(...)
  local t, k, v = ...
  if type(t) ~= 'table' then typeerror(1, 'rawset', 'table', select('#', ...), t) end
  if real_of[t] then error("Attempt to modify a readonly table", 0) end
  if select('#', ...) < 2 then argerror(2, 'rawset', 'value expected') end
  if select('#', ...) < 3 then argerror(3, 'rawset', 'value expected') end
  return rawset(t, k, v)
end
local string_mt
local function sb_getmetatable(...)
  if select('#', ...) == 0 then argerror(1, 'getmetatable', 'value expected') end
  local t = ...
  if real_of[t] then return shown_mt[t] end
  if type(t) == 'string' then return string_mt end
  if type(t) == 'userdata' and (pyfunc[t] or t ~= NULL) then return nil end   -- lupa's internals
  return getmetatable(t)
end
local function sb_setmetatable(...)
  local t, mt = ...
  if type(t) ~= 'table' then typeerror(1, 'setmetatable', 'table', select('#', ...), t) end
  if real_of[t] then error("Attempt to modify a readonly table", 0) end
  if mt ~= nil and type(mt) ~= 'table' then argerror(2, 'setmetatable', 'nil or table expected') end
  if not pcall(setmetatable, t, mt) then error("cannot change a protected metatable", 2) end
  return t
end
local function convert_here(e) local r = convert(e, 2) return r end
-- Redis 7's pcall: an error table with an `err` field is returned as its message.
local function sb_pcall(...)
  local n = select('#', ...)
  if n == 0 then return false, 'attempt to call a boolean value' end   -- as Redis's own pcall
  local f = ...
  local args = pack(select(2, ...))
  local r = pack(xpcall(function() return f(unpack(args, 1, args.n)) end, convert_here))
  if not r[1] and type(r[2]) == 'table' then
    local m = r[2].err
    if type(m) == 'string' or type(m) == 'number' then r[2] = m end
  end
  return unpack(r, 1, r.n)
end
local function sb_xpcall(f, handler)
  return xpcall(f, function(e) local r = convert(e, 2) return handler(r) end)
end

local hook
local function sb_co_create(f)
  local co = co_create(f)
  dbg.sethook(co, hook, '', HOOK_COUNT)
  return co
end
local function sb_co_resume(co, ...)
  local r = pack(co_resume(co, ...))
  if not r[1] and type(co) == 'thread' then r[2] = convert(r[2], 0, co) end
  return unpack(r, 1, r.n)
end
local function sb_co_wrap(f)
  local co = sb_co_create(f)
  return function(...)
    local r = pack(sb_co_resume(co, ...))
    if not r[1] then
      if type(r[2]) == 'string' then error(r[2], 2) end
      error(r[2], 0)
    end
    return unpack(r, 2, r.n)
  end
end

-- error handling ---------------------------------------------------------------------------------
local function err_handler(err)
  err = convert(err, 2)
  local level = 2
  local i = dbg.getinfo(level, 'nSl')
  if i and i.what == 'C' then level = 3; i = dbg.getinfo(level, 'nSl') end
  while i and i.source == INTERNAL do level = level + 1; i = dbg.getinfo(level, 'nSl') end
  if i and i.what == 'C' then level = level + 1; i = dbg.getinfo(level, 'nSl') end
  if type(err) ~= 'table' then err = {err = 'ERR ' .. tostring(err)} end
  if i then err.source = i.source; err.line = i.currentline end
  return err
end
local function err_info(e)
  if type(e) == 'string' or type(e) == 'number' then return 'ERR ' .. tostring(e), nil, nil end
  if type(e) ~= 'table' then return nil, nil, nil end
  local m, s, l = e.err, e.source, e.line
  if type(m) ~= 'string' and type(m) ~= 'number' then m = nil else m = tostring(m) end
  if type(s) ~= 'string' and type(s) ~= 'number' then s = nil else s = tostring(s) end
  if type(l) ~= 'string' and type(l) ~= 'number' then l = nil else l = tostring(l) end
  return m, s, l
end

local KILLED = 'ERR Script killed by user with SCRIPT KILL...'
local LOAD_TIMEOUT = 'ERR FUNCTION LOAD timeout'
hook = function()
  local where = dbg.getinfo(2, 'S')
  if where and where.source == INTERNAL then return end   -- only ever stop user code
  local verdict = py_check()
  if verdict ~= 0 then
    dbg.sethook(hook, 'l')
    error({err = verdict == 1 and KILLED or LOAD_TIMEOUT})
  end
end

-- redis.error_reply / status_reply (they return tables, never raise) ------------------------------
local BAD_REPLY_ARGS = 'ERR wrong number or type of arguments'
local function trim_crlf(s) return (sgsub(sgsub(s, '^[\r\n]+', ''), '[\r\n]+$', '')) end
local function redis_error_reply(...)
  local s = ...
  if select('#', ...) ~= 1 or type(s) ~= 'string' then return {err = BAD_REPLY_ARGS} end
  if string.sub(s, 1, 1) == '-' then s = string.sub(s, 2) end
  local sp = string.find(s, ' ', 1, true)
  if not sp then return {err = 'ERR ' .. trim_crlf(s)} end
  return {err = string.sub(s, 1, sp - 1) .. ' ' .. trim_crlf(string.sub(s, sp + 1))}
end
local function redis_status_reply(...)
  local s = ...
  if select('#', ...) ~= 1 or type(s) ~= 'string' then return {err = BAD_REPLY_ARGS} end
  return {ok = s}
end

-- cjson.encode, written in Lua so numbers and key order come out as Redis's C module's ------------
local ESC = {['"'] = '\\"', ['\\'] = '\\\\', ['/'] = '\\/', ['\b'] = '\\b', ['\f'] = '\\f',
             ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t', ['\127'] = '\\u007f'}
for c = 0, 31 do
  local ch = string.char(c)
  if not ESC[ch] then ESC[ch] = sformat('\\u%04x', c) end
end
local function json_string(s) return '"' .. sgsub(s, '[%z\1-\31"\\/\127]', ESC) .. '"' end

local function new_cjson()
  local cfg = {sparse_convert = false, sparse_ratio = 2, sparse_safe = 10, encode_depth = 1000,
               decode_depth = 1000, precision = 14, encode_invalid = false, decode_invalid = true,
               keep_buffer = true}
  local function number(v)
    if v ~= v or v == huge or v == -huge then
      if cfg.encode_invalid == false then error("Cannot serialise number: must not be NaN or Inf", 0) end
      if cfg.encode_invalid == 'null' then return 'null' end
      if v ~= v then return 'nan' end
      return v > 0 and 'Infinity' or '-Infinity'
    end
    return sformat('%.' .. cfg.precision .. 'g', v)
  end
  local function array_length(t)
    local max, items = 0, 0
    for k in next, t do
      if type(k) == 'number' and k >= 1 and floor(k) == k then
        if k > max then max = k end
        items = items + 1
      else
        return -1
      end
    end
    if cfg.sparse_ratio > 0 and max > items * cfg.sparse_ratio and max > cfg.sparse_safe then
      if not cfg.sparse_convert then error("Cannot serialise table: excessively sparse array", 0) end
      return -1
    end
    return max
  end
  local encode_value
  encode_value = function(v, depth, buf)
    local t = type(v)
    if t == 'string' then buf[#buf + 1] = json_string(v)
    elseif t == 'number' then buf[#buf + 1] = number(v)
    elseif t == 'boolean' then buf[#buf + 1] = v and 'true' or 'false'
    elseif t == 'nil' or v == NULL then buf[#buf + 1] = 'null'
    elseif t == 'table' then
      depth = depth + 1
      if depth > cfg.encode_depth then error("Cannot serialise, excessive nesting (" .. depth .. ")", 0) end
      local len = array_length(v)
      if len > 0 then
        buf[#buf + 1] = '['
        for i = 1, len do
          if i > 1 then buf[#buf + 1] = ',' end
          encode_value(rawget(v, i), depth, buf)
        end
        buf[#buf + 1] = ']'
      else
        buf[#buf + 1] = '{'
        local first = true
        for k, x in next, v do
          if not first then buf[#buf + 1] = ',' end
          first = false
          local kt = type(k)
          if kt == 'string' then buf[#buf + 1] = json_string(k)
          elseif kt == 'number' then buf[#buf + 1] = '"' .. number(k) .. '"'
          else error("Cannot serialise " .. kt .. ": table key must be a number or string", 0) end
          buf[#buf + 1] = ':'
          encode_value(x, depth, buf)
        end
        buf[#buf + 1] = '}'
      end
    else
      error("Cannot serialise " .. t .. ": type not supported", 0)
    end
  end
  local function encode(v)
    local buf = {}
    local ok, err = pcall(encode_value, v, 0, buf)
    if not ok then return false, err end
    return true, tconcat(buf)
  end
  local function option(name, lo, hi, ...)
    local v = ...
    if select('#', ...) > 0 and v ~= nil then
      local x = tonumber(v)
      if x == nil or x < lo or x > hi then
        argerror(1, name, sformat('expected integer between %d and %d', lo, hi))
      end
      return x
    end
  end
  local M = {}
  M.encode = fn(py.json_encoder(encode))
  M.decode = fn(py.json_decoder(function() return cfg.decode_depth, cfg.decode_invalid end))
  M.encode_max_depth = function(...)
    local x = option('encode_max_depth', 1, 2147483647, ...) if x then cfg.encode_depth = x end
    return cfg.encode_depth
  end
  M.decode_max_depth = function(...)
    local x = option('decode_max_depth', 1, 2147483647, ...) if x then cfg.decode_depth = x end
    return cfg.decode_depth
  end
  M.encode_number_precision = function(...)
    local x = option('encode_number_precision', 1, 14, ...) if x then cfg.precision = x end
    return cfg.precision
  end
  M.encode_sparse_array = function(convert_, ratio, safe)
    if convert_ ~= nil then cfg.sparse_convert = convert_ and true or false end
    if ratio ~= nil then cfg.sparse_ratio = tonumber(ratio) or cfg.sparse_ratio end
    if safe ~= nil then cfg.sparse_safe = tonumber(safe) or cfg.sparse_safe end
    return cfg.sparse_convert, cfg.sparse_ratio, cfg.sparse_safe
  end
  M.encode_invalid_numbers = function(v)
    if v ~= nil then cfg.encode_invalid = (v == 'null') and 'null' or (v and true or false) end
    return cfg.encode_invalid
  end
  M.decode_invalid_numbers = function(v)
    if v ~= nil then cfg.decode_invalid = v and true or false end
    return cfg.decode_invalid
  end
  M.encode_keep_buffer = function(v)
    if v ~= nil then cfg.keep_buffer = v and true or false end
    return cfg.keep_buffer
  end
  M.null = NULL
  M._NAME = 'cjson'
  M._VERSION = '2.1.0'
  return M
end
local cjson_lib = new_cjson()
cjson_lib.new = function() local m = new_cjson() m.new = cjson_lib.new return readonly(m) end

local cmsgpack_lib = {
  pack = fn(py.lib('cmsgpack', 'pack')), unpack = fn(py.lib('cmsgpack', 'unpack')),
  unpack_one = fn(py.lib('cmsgpack', 'unpack_one')),
  unpack_limit = fn(py.lib('cmsgpack', 'unpack_limit')),
  _NAME = 'cmsgpack', _VERSION = 'lua-cmsgpack 0.4.0',
  _COPYRIGHT = 'Copyright (C) 2012, Salvatore Sanfilippo',
  _DESCRIPTION = 'MessagePack C implementation for Lua',
}
local struct_lib = {pack = fn(py.lib('struct', 'pack')), unpack = fn(py.lib('struct', 'unpack')),
                    size = fn(py.lib('struct', 'size'))}
local bit_lib = {}
for _, name in ipairs({'tobit', 'tohex', 'bnot', 'band', 'bor', 'bxor', 'lshift', 'rshift',
                       'arshift', 'rol', 'ror', 'bswap'}) do
  bit_lib[name] = fn(py.lib('bit', name))
end

-- the environments -------------------------------------------------------------------------------
local mathlib = copy(math)
mathlib.random, mathlib.randomseed = fn(py.lib('math', 'random')), fn(py.lib('math', 'randomseed'))
local corolib = copy(coroutine)
corolib.create, corolib.wrap, corolib.resume = sb_co_create, sb_co_wrap, sb_co_resume

local function redis_api(for_eval)
  local r = {
    call = fn(py.call), pcall = fn(py.pcall), sha1hex = fn(py.sha1hex),
    error_reply = redis_error_reply, status_reply = redis_status_reply,
    log = fn(py.log), setresp = fn(py.setresp), set_repl = fn(py.set_repl),
    acl_check_cmd = fn(py.acl_check_cmd),
    LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
    REPL_NONE = 0, REPL_AOF = 1, REPL_SLAVE = 2, REPL_REPLICA = 2, REPL_ALL = 3,
    REDIS_VERSION = py.version, REDIS_VERSION_NUM = py.version_num,
  }
  if for_eval then
    r.replicate_commands = function() return true end
    r.breakpoint = function() return false end
    r.debug = function() end
  end
  return r
end

local ENV = {
  _VERSION = _VERSION, assert = assert, collectgarbage = collectgarbage, error = error,
  gcinfo = gcinfo, ipairs = ipairs, select = select, tonumber = tonumber, tostring = sb_tostring,
  type = sb_type, unpack = unpack, rawequal = rawequal,
  next = sb_next, pairs = sb_pairs, rawget = sb_rawget, rawset = sb_rawset,
  getmetatable = sb_getmetatable, setmetatable = sb_setmetatable, pcall = sb_pcall,
  xpcall = sb_xpcall,
  string = readonly(copy(string)), table = readonly(copy(table)), math = readonly(mathlib),
  coroutine = readonly(corolib), cjson = readonly(cjson_lib), cmsgpack = readonly(cmsgpack_lib),
  struct = readonly(struct_lib), bit = readonly(bit_lib),
  redis = readonly(redis_api(kind == 'eval')),
}
local GLOBALS = readonly(ENV, true)   -- what user code sees as its globals
ENV._G = GLOBALS
shown_mt[GLOBALS] = readonly({__index = missing_global})
string_mt = readonly({__index = ENV.string})
getmetatable('').__index = ENV.string
if kind == 'eval' then
  ENV.__redis__err__handler = err_handler
  ENV.KEYS, ENV.ARGV = {}, {}
end

-- FUNCTION LOAD sees only redis.register_function, redis.log and the constants. -----------------
local LOAD_ENV
if kind == 'function' then
  local function register_function(...)
    local n = select('#', ...)
    if n < 1 or n > 2 then error({err = 'ERR wrong number of arguments to redis.register_function'}) end
    local name, callback, flags, desc
    if n == 2 then
      name, callback = ...
      if type(name) ~= 'string' and type(name) ~= 'number' then
        error({err = 'ERR first argument to redis.register_function must be a string'})
      end
      if type(callback) ~= 'function' then
        error({err = 'ERR second argument to redis.register_function must be a function'})
      end
      flags = 0
    else
      local t = ...
      if type(t) ~= 'table' then
        error({err = 'ERR calling redis.register_function with a single argument is only applicable '
                  .. 'to Lua table (representing named arguments).'})
      end
      flags = 0
      for k, v in next, t do
        if type(k) ~= 'string' and type(k) ~= 'number' then
          error({err = 'ERR named argument key given to redis.register_function is not a string'})
        end
        local key = string.lower(tostring(k))
        if key == 'function_name' then
          if type(v) ~= 'string' and type(v) ~= 'number' then
            error({err = 'ERR function_name argument given to redis.register_function must be a string'})
          end
          name = v
        elseif key == 'description' then
          if type(v) ~= 'string' and type(v) ~= 'number' then
            error({err = 'ERR description argument given to redis.register_function must be a string'})
          end
          desc = v
        elseif key == 'callback' then
          if type(v) ~= 'function' then
            error({err = 'ERR callback argument given to redis.register_function must be a function'})
          end
          callback = v
        elseif key == 'flags' then
          if type(v) ~= 'table' then
            error({err = 'ERR flags argument to redis.register_function must be a table '
                      .. 'representing function flags'})
          end
          local j = 1
          while true do
            local f = v[j]
            if f == nil then break end
            if type(f) ~= 'string' and type(f) ~= 'number' then error({err = 'ERR unknown flag given'}) end
            local bit = py.flag(tostring(f))
            if bit == 0 then error({err = 'ERR unknown flag given'}) end
            if flags % (2 * bit) < bit then flags = flags + bit end
            j = j + 1
          end
        else
          error({err = 'ERR unknown argument given to redis.register_function'})
        end
      end
      if name == nil then error({err = 'ERR redis.register_function must get a function name argument'}) end
      if callback == nil then error({err = 'ERR redis.register_function must get a callback argument'}) end
    end
    local problem = py.register(tostring(name), callback, flags, desc ~= nil and tostring(desc) or nil)
    if problem then error({err = 'ERR ' .. problem}) end
  end
  local load_redis = readonly({register_function = register_function, log = fn(py.log),
    LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
    REDIS_VERSION = py.version, REDIS_VERSION_NUM = py.version_num}, true)
  LOAD_ENV = {redis = load_redis}
  setmetatable(LOAD_ENV, {__index = missing_global})
end
-- Function libraries keep one environment whose backing table is swapped between load and run.
local FENV_MT = {__index = ENV, __newindex = ro_newindex}
local FENV = setmetatable({}, FENV_MT)
real_of[FENV] = ENV
shown_mt[FENV] = shown_mt[GLOBALS]
proxies[#proxies + 1] = FENV
local USER_ENV = kind == 'eval' and GLOBALS or FENV

local function sb_loadstring(...)
  local s, name = ...
  if type(s) == 'number' then s = tostring(s) end
  if type(s) ~= 'string' then typeerror(1, 'loadstring', 'string', select('#', ...), s) end
  if sbyte(s, 1) == 27 then return nil, 'binary chunks are not allowed' end
  local f, e = loadstring(s, name or s)
  if f then setfenv(f, USER_ENV) end
  return f, e
end
local function sb_load(...)
  local fn, name = ...
  if type(fn) ~= 'function' then typeerror(1, 'load', 'function', select('#', ...), fn) end
  local parts = {}
  while true do
    local p = fn()
    if p == nil or p == '' then break end
    if type(p) ~= 'string' then return nil, 'reader function must return a string' end
    parts[#parts + 1] = p
  end
  return sb_loadstring(tconcat(parts), name or '=(load)')
end
ENV.loadstring, ENV.load = sb_loadstring, sb_load

-- what Python calls ------------------------------------------------------------------------------
local api = {}

function api.compile(code, chunkname)
  local f, e = loadstring(code, chunkname)
  if not f then return nil, e end
  setfenv(f, USER_ENV)
  return f, nil
end

local function wipe()
  for i = 1, #proxies do
    local p = proxies[i]
    if next(p) ~= nil then for k in next, p do rawset(p, k, nil) end end
  end
end

local function finish(r)
  dbg.sethook()
  wipe()
  if r[1] then return true, r[2] end
  local m, s, l = err_info(r[2])
  return false, m, s, l
end

function api.run_eval(f, nkeys, ...)
  local n = select('#', ...)
  local keys, args = {}, {}
  local all = {...}
  for i = 1, nkeys do keys[i] = all[i] end
  for i = nkeys + 1, n do args[i - nkeys] = all[i] end
  ENV.KEYS, ENV.ARGV = keys, args
  dbg.sethook(hook, '', HOOK_COUNT)
  return finish(pack(xpcall(f, err_handler)))
end

function api.run_function(f, nkeys, ...)
  local n = select('#', ...)
  local keys, args = {}, {}
  local all = {...}
  for i = 1, nkeys do keys[i] = all[i] end
  for i = nkeys + 1, n do args[i - nkeys] = all[i] end
  dbg.sethook(hook, '', HOOK_COUNT)
  return finish(pack(xpcall(function() return f(keys, args) end, err_handler)))
end

function api.load_library(code)
  local f, e = loadstring(code, '@user_function')
  if not f then return false, 'Error compiling function: ' .. e end
  setfenv(f, FENV)
  FENV_MT.__index = LOAD_ENV
  real_of[FENV] = LOAD_ENV
  dbg.sethook(hook, '', HOOK_COUNT)
  local r = pack(xpcall(f, function(err)
    err = convert(err, 2)
    if type(err) ~= 'table' then return {err = 'ERR ' .. tostring(err)} end
    return err
  end))
  dbg.sethook()
  FENV_MT.__index = ENV
  real_of[FENV] = ENV
  wipe()
  if r[1] then return true, nil end
  local m = err_info(r[2])
  return false, 'Error registering functions: ' .. tostring(m)
end

-- Lua -> reply: classify a table the way luaReplyToRedisReply does ------------------------------
function api.classify(t)
  local v = rawget(t, 'err')
  if type(v) == 'string' then return 1, v end
  v = rawget(t, 'ok')
  if type(v) == 'string' then return 2, v end
  v = rawget(t, 'double')
  if type(v) == 'number' then return 3, sformat('%.17g', v) end
  v = rawget(t, 'big_number')
  if type(v) == 'string' then return 4, v end
  v = rawget(t, 'verbatim_string')
  if type(v) == 'table' then
    local f, s = rawget(v, 'format'), rawget(v, 'string')
    if type(f) == 'string' and type(s) == 'string' then return 5, f, s end
  end
  v = rawget(t, 'map')
  if type(v) == 'table' then
    local flat, n = {}, 0
    for k, x in next, v do flat[n + 1] = k; flat[n + 2] = x; n = n + 2 end
    return 6, n, flat
  end
  v = rawget(t, 'set')
  if type(v) == 'table' then
    local ks, n = {}, 0
    for k in next, v do n = n + 1; ks[n] = k end
    return 7, n, ks
  end
  local n = 0
  while rawget(t, n + 1) ~= nil do n = n + 1 end
  return 8, n, t
end
function api.slice(t, i, j) return unpack(t, i, j) end

-- reply -> Lua helpers ---------------------------------------------------------------------------
function api.mk_ok(s) return {ok = s} end
function api.mk_err(s) return {err = s} end
function api.mk_double(d) return {double = tonumber(d)} end
function api.mk_big(s) return {big_number = s} end
function api.mk_verbatim(f, s) return {verbatim_string = {format = f, string = s}} end
function api.mk_map(flat, n)
  local m = {}
  for i = 1, n, 2 do
    local k = flat[i]
    if k ~= nil then m[k] = flat[i + 1] end
  end
  return {map = m}
end
function api.mk_set(items, n)
  local s = {}
  for i = 1, n do
    local k = items[i]
    if k ~= nil then s[k] = true end
  end
  return {set = s}
end
api.null = NULL
return api
'''


# -- Python helpers the Lua side calls ----------------------------------------------------------------

class _Rand48:
    """Redis's redisLrand48/redisSrand48 (the classic 48-bit LCG), so math.random matches Redis."""

    _A, _C, _MASK = 0x5DEECE66D, 0xB, (1 << 48) - 1

    def __init__(self) -> None:
        self.x = 0x1234ABCD330E

    def seed(self, value: int) -> None:
        self.x = ((value & 0xFFFFFFFF) << 16) | 0x330E

    def next(self) -> int:
        self.x = (self._A * self.x + self._C) & self._MASK
        return self.x >> 17


_RAND = _Rand48()
"""One generator for both interpreters, surviving SCRIPT FLUSH: Redis's state is a C global."""


def _lua_tonumber_text(value) -> float | None:
    """What lua_tonumber gives for a Python-side Lua value (numbers, numeric strings)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, bytes):
        text = value.strip()
        try:
            if text[:2].lower() == b"0x" or text[:3].lower() in (b"-0x", b"+0x"):
                return float(int(text, 16))
            return float(text)
        except ValueError:
            return None
    return None


def _luatype(value) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, bytes):
        return "string"
    return lua51.lua_type(value) or "userdata"


# bit (LuaBitOp) ----------------------------------------------------------------------------------

def _bit_arg(fname: str, nargs: int, args: tuple, i: int) -> int:
    """barg(): the 32 low bits of the number rounded the way LuaBitOp's 2^52+2^51 trick rounds."""
    value = args[i - 1] if i <= nargs else None
    number = _lua_tonumber_text(value)
    if number is None:
        got = "no value" if i > nargs else _luatype(value)
        raise _LuaArgError(f"bad argument #{i} to '{fname}' (number expected, got {got})")
    biased = number + 6755399441055744.0
    return struct.unpack("<Q", struct.pack("<d", biased))[0] & 0xFFFFFFFF


def _signed32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


class _LuaArgError(Exception):
    """A library function's luaL_error text; the Lua wrapper raises it at the caller's position."""


def _bit_op(fname: str, nargs: int, *args):
    try:
        arg = lambda i: _bit_arg(fname, nargs, args, i)  # noqa: E731
        if fname == "tobit":
            return True, _signed32(arg(1))
        if fname == "bnot":
            return True, _signed32(~arg(1))
        if fname == "bswap":
            b = arg(1)
            return True, _signed32(int.from_bytes(b.to_bytes(4, "little"), "big"))
        if fname == "tohex":
            b = arg(1)
            n = 8 if nargs < 2 else _signed32(arg(2))
            digits = "0123456789abcdef"
            if n < 0:
                n = -n
                digits = digits.upper()
            n = min(n, 8)
            out = []
            for _ in range(n):
                out.append(digits[b & 15])
                b >>= 4
            return True, "".join(reversed(out)).encode()
        if fname in ("band", "bor", "bxor"):
            b = arg(1)
            for i in range(nargs, 1, -1):
                x = arg(i)
                b = b & x if fname == "band" else b | x if fname == "bor" else b ^ x
            return True, _signed32(b)
        b, n = arg(1), arg(2) & 31
        if fname == "lshift":
            return True, _signed32(b << n)
        if fname == "rshift":
            return True, _signed32(b >> n)
        if fname == "arshift":
            return True, _signed32(_signed32(b) >> n)
        if fname == "rol":
            return True, _signed32((b << n) | (b >> (32 - n)))
        if fname == "ror":
            return True, _signed32((b >> n) | (b << (32 - n)))
        return False, f"unknown bit operation {fname}"
    except _LuaArgError as exc:
        return False, str(exc)


# struct (Roberto Ierusalimschy's struct library, as bundled with Redis) ----------------------------

_STRUCT_SIZES = {"b": 1, "B": 1, "h": 2, "H": 2, "l": 8, "L": 8, "T": 8, "f": 4, "d": 8, "x": 1}
_MAXINTSIZE = 32
_MAXALIGN = 8


class _StructFormat:
    """Walks a struct format string as struct.c does (optsize, gettoalign, controloptions)."""

    def __init__(self, fname: str, fmt: bytes) -> None:
        self.fname = fname
        self.fmt = fmt.decode("latin-1")
        self.pos = 0
        self.little = True
        self.align = 1

    def _getnum(self, default: int) -> int:
        fmt = self.fmt
        if self.pos >= len(fmt) or not "0" <= fmt[self.pos] <= "9":
            return default
        value = 0
        while self.pos < len(fmt) and "0" <= fmt[self.pos] <= "9":
            value = value * 10 + int(fmt[self.pos])
            if value > 0x7FFFFFFF:
                raise _LuaArgError("integral size overflow")
            self.pos += 1
        return value

    def items(self):
        while self.pos < len(self.fmt):
            opt = self.fmt[self.pos]
            self.pos += 1
            if opt in _STRUCT_SIZES:
                size = _STRUCT_SIZES[opt]
            elif opt == "c":
                size = self._getnum(1)
            elif opt in "iI":
                size = self._getnum(4)
                if size > _MAXINTSIZE:
                    raise _LuaArgError(f"integral size {size} is larger than limit of {_MAXINTSIZE}")
            else:
                size = 0
            yield opt, size

    def toalign(self, length: int, opt: str, size: int) -> int:
        if size == 0 or opt == "c":
            return 0
        size = min(size, self.align)
        return (size - (length & (size - 1))) & (size - 1)

    def control(self, opt: str) -> None:
        if opt == " ":
            return
        if opt == ">":
            self.little = False
        elif opt == "<":
            self.little = True
        elif opt == "!":
            a = self._getnum(_MAXALIGN)
            if a & (a - 1):
                raise _LuaArgError(f"alignment {a} is not a power of 2")
            self.align = a
        else:
            raise _LuaArgError(f"bad argument #1 to '{self.fname}' (invalid format option '{opt}')")


def _struct_number(fname: str, args: tuple, nargs: int, index: int) -> float:
    value = args[index - 1] if index <= nargs else None
    number = _lua_tonumber_text(value)
    if number is None:
        got = "no value" if index > nargs else _luatype(value)
        raise _LuaArgError(f"bad argument #{index} to '{fname}' (number expected, got {got})")
    return number


def _struct_string(fname: str, args: tuple, nargs: int, index: int) -> bytes:
    value = args[index - 1] if index <= nargs else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _number_text(value)
    if not isinstance(value, bytes):
        got = "no value" if index > nargs else _luatype(value)
        raise _LuaArgError(f"bad argument #{index} to '{fname}' (string expected, got {got})")
    return value


def _number_text(value) -> bytes:
    """lua_tolstring of a number: "%.14g"."""
    if isinstance(value, int):
        return b"%d" % value if abs(value) < 10 ** 14 else (b"%.14g" % value)
    if value != value:
        return b"nan" if math.copysign(1, value) > 0 else b"-nan"
    if math.isinf(value):
        return b"inf" if value > 0 else b"-inf"
    return b"%.14g" % value


def _struct_op(fname: str, nargs: int, *args):
    try:
        fmt_raw = _struct_string(fname, args, nargs, 1)
        fmt = _StructFormat(fname, fmt_raw)
        if fname == "pack":
            return True, _struct_pack(fmt, args, nargs)
        if fname == "unpack":
            return (True, *_struct_unpack(fmt, args, nargs))
        return True, _struct_size(fmt)
    except _LuaArgError as exc:
        return False, str(exc)


def _struct_pack(fmt: _StructFormat, args: tuple, nargs: int) -> bytes:
    out = bytearray()
    arg = 2
    for opt, size in fmt.items():
        pad = fmt.toalign(len(out), opt, size)
        out += b"\0" * pad
        if opt in "bBhHlLTiI":
            n = _struct_number("pack", args, nargs, arg)
            arg += 1
            if n != n or math.isinf(n):
                value = 0x8000000000000000
            elif n < 0:
                value = int(n) & 0xFFFFFFFFFFFFFFFF
            else:
                value = int(n) & 0xFFFFFFFFFFFFFFFF if n < 2 ** 64 else 0
            raw = value.to_bytes(8, "little") + b"\0" * max(0, size - 8)
            raw = raw[:size]
            out += raw if fmt.little else raw[::-1]
        elif opt == "x":
            out += b"\0"
        elif opt == "f":
            n = _struct_number("pack", args, nargs, arg)
            arg += 1
            try:
                out += struct.pack("<f" if fmt.little else ">f", n)
            except OverflowError:
                out += struct.pack("<f" if fmt.little else ">f", math.copysign(math.inf, n))
        elif opt == "d":
            n = _struct_number("pack", args, nargs, arg)
            arg += 1
            out += struct.pack("<d" if fmt.little else ">d", n)
        elif opt in "cs":
            s = _struct_string("pack", args, nargs, arg)
            arg += 1
            if size == 0:
                size = len(s)
            if len(s) < size:
                raise _LuaArgError(f"bad argument #{arg} to 'pack' (string too short)")
            out += s[:size]
            if opt == "s":
                out += b"\0"
        else:
            fmt.control(opt)
    return bytes(out)


def _struct_unpack(fmt: _StructFormat, args: tuple, nargs: int) -> list:
    data = _struct_string("unpack", args, nargs, 2)
    start = args[2] if nargs >= 3 and args[2] is not None else 1
    start_num = _lua_tonumber_text(start)
    if start_num is None:
        raise _LuaArgError(f"bad argument #3 to 'unpack' (number expected, got {_luatype(start)})")
    pos = int(start_num) - 1
    if pos < 0 or pos > len(data):
        raise _LuaArgError("bad argument #3 to 'unpack' (offset must be 1 or greater)")
    results: list = []
    for opt, size in fmt.items():
        pos += fmt.toalign(pos, opt, size)
        if size > len(data) or pos > len(data) - size:
            raise _LuaArgError("bad argument #2 to 'unpack' (data string too short)")
        if opt in "bBhHlLTiI":
            raw = data[pos:pos + size]
            value = int.from_bytes(raw if not fmt.little else raw[::-1], "big") if size else 0
            value &= 0xFFFFFFFFFFFFFFFF
            if opt.islower() and size:
                bits = min(size * 8, 64)
                if value & (1 << (bits - 1)):
                    value -= 1 << 64 if size >= 8 else 1 << bits
            results.append(float(value) if abs(value) >= 2 ** 53 else value)
        elif opt == "f":
            results.append(struct.unpack("<f" if fmt.little else ">f", data[pos:pos + 4])[0])
        elif opt == "d":
            results.append(struct.unpack("<d" if fmt.little else ">d", data[pos:pos + 8])[0])
        elif opt == "c":
            if size == 0:
                if not results or not isinstance(results[-1], (int, float)):
                    raise _LuaArgError("format 'c0' needs a previous size")
                size = int(results.pop())
                if size > len(data) or pos > len(data) - size:
                    raise _LuaArgError("bad argument #2 to 'unpack' (data string too short)")
            results.append(data[pos:pos + size])
        elif opt == "s":
            end = data.find(b"\0", pos)
            if end < 0:
                raise _LuaArgError("unfinished string in data")
            size = end - pos + 1
            results.append(data[pos:end])
        elif opt == "x":
            pass
        else:
            fmt.control(opt)
        pos += size
    results.append(pos + 1)
    return results


def _struct_size(fmt: _StructFormat) -> int:
    pos = 0
    for opt, size in fmt.items():
        pos += fmt.toalign(pos, opt, size)
        if opt == "s":
            raise _LuaArgError("bad argument #1 to 'size' (options 's' have variable size)")
        if opt == "c" and size == 0:
            raise _LuaArgError("bad argument #1 to 'size' (option 'c0' has variable length)")
        if not (opt.isascii() and opt.isalnum()):
            fmt.control(opt)
        pos += size
    return pos


# cjson.decode (lua-cjson 2.1's tokenizer and parser, error texts included) --------------------------

_STRTOD = re.compile(
    rb"[+-]?(?:0[xX](?:[0-9a-fA-F]+(?:\.[0-9a-fA-F]*)?|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?"
    rb"|(?:inf(?:inity)?|nan(?:\([0-9A-Za-z_]*\))?)"
    rb"|(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)", re.IGNORECASE)
_ESCAPES = {ord('"'): b'"', ord("\\"): b"\\", ord("/"): b"/", ord("b"): b"\b", ord("f"): b"\f",
            ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t"}
_T_NAMES = {"{": "T_OBJ_BEGIN", "}": "T_OBJ_END", "[": "T_ARR_BEGIN", "]": "T_ARR_END",
            "str": "T_STRING", "num": "T_NUMBER", "bool": "T_BOOLEAN", "null": "T_NULL",
            ":": "T_COLON", ",": "T_COMMA", "end": "T_END"}


def _c_strtod(text: bytes) -> tuple[float, int] | None:
    match = _STRTOD.match(text)
    if match is None:
        return None
    token = match.group(0)
    body = token.lstrip(b"+-")
    negative = token.startswith(b"-")
    low = body.lower()
    if low.startswith(b"0x"):
        hexpart = low[2:].decode()
        if "p" not in hexpart:
            hexpart += "p0"
        value = float.fromhex("0x" + hexpart)
    elif low.startswith(b"inf"):
        value = math.inf
    elif low.startswith(b"nan"):
        value = math.nan
    else:
        value = float(body)
    return (-value if negative else value), match.end()


class _JsonError(Exception):
    pass


class _JsonDecoder:
    def __init__(self, data: bytes, max_depth: int, invalid_numbers: bool, make_table, null) -> None:
        nul = data.find(b"\0")
        self.original = data
        self.data = data if nul < 0 else data[:nul]
        self.pos = 0
        self.depth = 0
        self.max_depth = max_depth
        self.invalid_numbers = invalid_numbers
        self.make_table = make_table
        self.null = null

    def _invalid_number(self) -> bool:
        d, p = self.data, self.pos
        if d[p:p + 1] == b"+":
            return True
        if d[p:p + 1] == b"-":
            p += 1
        if d[p:p + 1] == b"0":
            nxt = d[p + 1:p + 2]
            return nxt.lower() == b"x" or (nxt != b"" and 0x30 <= nxt[0] <= 0x39)
        if d[p:p + 1] and d[p] <= ord("9"):
            return False
        return d[p:p + 3].lower() in (b"inf", b"nan")

    def token(self):
        """(type, value, index) where type is a _T_NAMES key or "error"."""
        d = self.data
        while self.pos < len(d) and d[self.pos] in b" \t\n\r":
            self.pos += 1
        index = self.pos
        if self.pos >= len(d):
            return "end", None, index
        ch = chr(d[self.pos])
        is_digit = 0x30 <= d[self.pos] <= 0x39
        if ch in "{}[]:,":
            self.pos += 1
            return ch, None, index
        if ch == '"':
            return self._string(index)
        if ch == "-" or is_digit:
            if not self.invalid_numbers and self._invalid_number():
                return "error", "invalid number", index
            return self._number(index)
        rest = d[self.pos:]
        if rest.startswith(b"true"):
            self.pos += 4
            return "bool", True, index
        if rest.startswith(b"false"):
            self.pos += 5
            return "bool", False, index
        if rest.startswith(b"null"):
            self.pos += 4
            return "null", None, index
        if ch in "iInN" and self.invalid_numbers and self._invalid_number():
            return self._number(index)
        return "error", "invalid token", index

    def _number(self, index: int):
        parsed = _c_strtod(self.data[self.pos:])
        if parsed is None:
            return "error", "invalid number", index
        value, length = parsed
        self.pos += length
        return "num", value, index

    def _string(self, index: int):
        d = self.data
        self.pos += 1
        out = bytearray()
        while True:
            if self.pos >= len(d):
                return "error", "unexpected end of string", self.pos
            ch = d[self.pos]
            if ch == 0x22:
                break
            if ch == 0x5C:
                esc = d[self.pos + 1] if self.pos + 1 < len(d) else 0
                if esc == ord("u"):
                    if not self._unicode_escape(out):
                        return "error", "invalid unicode escape code", self.pos
                    continue
                if esc not in _ESCAPES:
                    return "error", "invalid escape code", self.pos
                out += _ESCAPES[esc]
                self.pos += 2
                continue
            out.append(ch)
            self.pos += 1
        self.pos += 1
        return "str", bytes(out), index

    def _hex4(self, at: int) -> int:
        chunk = self.data[at:at + 4]
        if len(chunk) < 4 or not all(c in b"0123456789abcdefABCDEF" for c in chunk):
            return -1
        return int(chunk, 16)

    def _unicode_escape(self, out: bytearray) -> bool:
        code = self._hex4(self.pos + 2)
        if code < 0:
            return False
        length = 6
        if code & 0xF800 == 0xD800:
            if code & 0x400:
                return False
            if self.data[self.pos + 6:self.pos + 8] != b"\\u":
                return False
            low = self._hex4(self.pos + 8)
            if low < 0 or low & 0xFC00 != 0xDC00:
                return False
            code = (((code & 0x3FF) << 10) | (low & 0x3FF)) + 0x10000
            length = 12
        out += chr(code).encode("utf-8", "surrogatepass")
        self.pos += length
        return True

    def fail(self, expected: str, tok) -> None:
        kind, value, index = tok
        found = value if kind == "error" else _T_NAMES[kind]
        raise _JsonError(f"Expected {expected} but found {found} at character {index + 1}")

    def descend(self) -> None:
        self.depth += 1
        if self.depth > self.max_depth:
            raise _JsonError(f"Found too many nested data structures ({self.depth}) at character "
                             f"{self.pos}")

    def value(self, tok):
        kind, value, _ = tok
        if kind in ("str", "num", "bool"):
            return value
        if kind == "null":
            return self.null
        if kind == "{":
            return self.object()
        if kind == "[":
            return self.array()
        self.fail("value", tok)

    def object(self):
        self.descend()
        items: dict = {}
        tok = self.token()
        if tok[0] != "}":
            while True:
                if tok[0] != "str":
                    self.fail("object key string", tok)
                key = tok[1]
                tok = self.token()
                if tok[0] != ":":
                    self.fail("colon", tok)
                items[key] = self.value(self.token())
                tok = self.token()
                if tok[0] == "}":
                    break
                if tok[0] != ",":
                    self.fail("comma or object end", tok)
                tok = self.token()
        self.depth -= 1
        return self.make_table(items)

    def array(self):
        self.descend()
        items: list = []
        tok = self.token()
        if tok[0] != "]":
            while True:
                items.append(self.value(tok))
                tok = self.token()
                if tok[0] == "]":
                    break
                if tok[0] != ",":
                    self.fail("comma or array end", tok)
                tok = self.token()
        self.depth -= 1
        return self.make_table(items)

    def decode(self):
        if len(self.original) >= 2 and (not self.original[0] or not self.original[1]):
            raise _JsonError("JSON parser does not support UTF-16 or UTF-32")
        result = self.value(self.token())
        tok = self.token()
        if tok[0] != "end":
            self.fail("the end", tok)
        return result


# cmsgpack (lua-cmsgpack 0.4 as bundled with Redis) ---------------------------------------------------

_MP_MAX_NESTING = 16


class _MsgpackError(Exception):
    pass


def _mp_encode(engine: Engine, value, out: bytearray, level: int) -> None:
    if value is None:
        out.append(0xC0)
    elif value is True:
        out.append(0xC3)
    elif value is False:
        out.append(0xC2)
    elif isinstance(value, bytes):
        n = len(value)
        if n < 32:
            out.append(0xA0 | n)
        elif n <= 0xFF:
            out += b"\xd9" + struct.pack(">B", n)
        elif n <= 0xFFFF:
            out += b"\xda" + struct.pack(">H", n)
        else:
            out += b"\xdb" + struct.pack(">I", n)
        out += value
    elif isinstance(value, (int, float)):
        if isinstance(value, int) or (not math.isinf(value) and value == value
                                      and -2 ** 63 <= value < 2 ** 63 and int(value) == value):
            _mp_integer(int(value), out)
        else:
            try:
                single = struct.unpack(">f", struct.pack(">f", value))[0]
            except OverflowError:
                single = None
            if single == value:
                out += b"\xca" + struct.pack(">f", value)
            else:
                out += b"\xcb" + struct.pack(">d", value)
    elif lua51.lua_type(value) == "table" and level < _MP_MAX_NESTING:
        items = list(value.items())
        count = len(items)
        biggest = 0
        is_array = True
        for key, _ in items:
            n = _lua_tonumber_text(key)
            if n is None or n <= 0 or n != int(n) or n >= 2 ** 31:
                is_array = False
                break
            biggest = max(biggest, int(n))
        if is_array and biggest == count:
            if count < 16:
                out.append(0x90 | count)
            elif count <= 0xFFFF:
                out += b"\xdc" + struct.pack(">H", count)
            else:
                out += b"\xdd" + struct.pack(">I", count)
            for i in range(1, count + 1):
                _mp_encode(engine, value[i], out, level + 1)
        else:
            if count < 16:
                out.append(0x80 | count)
            elif count <= 0xFFFF:
                out += b"\xde" + struct.pack(">H", count)
            else:
                out += b"\xdf" + struct.pack(">I", count)
            for key, item in items:
                _mp_encode(engine, key, out, level + 1)
                _mp_encode(engine, item, out, level + 1)
    else:
        out.append(0xC0)


def _mp_integer(n: int, out: bytearray) -> None:
    if n >= 0:
        if n <= 127:
            out.append(n)
        elif n <= 0xFF:
            out += b"\xcc" + struct.pack(">B", n)
        elif n <= 0xFFFF:
            out += b"\xcd" + struct.pack(">H", n)
        elif n <= 0xFFFFFFFF:
            out += b"\xce" + struct.pack(">I", n)
        else:
            out += b"\xcf" + struct.pack(">Q", n)
    elif n >= -32:
        out.append(n & 0xFF)
    elif n >= -128:
        out += b"\xd0" + struct.pack(">b", n)
    elif n >= -32768:
        out += b"\xd1" + struct.pack(">h", n)
    elif n >= -2 ** 31:
        out += b"\xd2" + struct.pack(">i", n)
    else:
        out += b"\xd3" + struct.pack(">q", n)


class _MpReader:
    def __init__(self, engine: Engine, data: bytes, pos: int) -> None:
        self.engine = engine
        self.data = data
        self.pos = pos

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise _MsgpackError("Missing bytes in input.")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def _num(self, fmt: str, n: int):
        return struct.unpack(fmt, self.take(n))[0]

    def value(self):
        b = self.take(1)[0]
        if b <= 0x7F:
            return b
        if b >= 0xE0:
            return b - 0x100
        if 0xA0 <= b <= 0xBF:
            return self.take(b & 0x1F)
        if 0x90 <= b <= 0x9F:
            return self.array(b & 0x0F)
        if 0x80 <= b <= 0x8F:
            return self.map(b & 0x0F)
        simple = {0xC0: None, 0xC2: False, 0xC3: True}
        if b in simple:
            return simple[b]
        ints = {0xCC: (">B", 1), 0xCD: (">H", 2), 0xCE: (">I", 4), 0xCF: (">Q", 8),
                0xD0: (">b", 1), 0xD1: (">h", 2), 0xD2: (">i", 4), 0xD3: (">q", 8),
                0xCA: (">f", 4), 0xCB: (">d", 8)}
        if b in ints:
            value = self._num(*ints[b])
            if isinstance(value, int) and abs(value) >= 2 ** 53:
                return float(value)
            return value
        if b in (0xD9, 0xC4):
            return self.take(self._num(">B", 1))
        if b in (0xDA, 0xC5):
            return self.take(self._num(">H", 2))
        if b in (0xDB, 0xC6):
            return self.take(self._num(">I", 4))
        if b == 0xDC:
            return self.array(self._num(">H", 2))
        if b == 0xDD:
            return self.array(self._num(">I", 4))
        if b == 0xDE:
            return self.map(self._num(">H", 2))
        if b == 0xDF:
            return self.map(self._num(">I", 4))
        raise _MsgpackError("Bad data format in input.")

    def array(self, n: int):
        return self.engine.table([self.value() for _ in range(n)])

    def map(self, n: int):
        items: dict = {}
        for _ in range(n):
            key = self.value()
            items[key] = self.value()
        return self.engine.table(items)


def _mp_op(engine: Engine, fname: str, nargs: int, *args):
    try:
        if fname == "pack":
            if nargs == 0:
                return False, "bad argument #0 to 'pack' (MessagePack pack needs input.)"
            out = bytearray()
            for value in args[:nargs]:
                _mp_encode(engine, value, out, 0)
            return True, bytes(out)
        data = args[0] if nargs >= 1 else None
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            data = _number_text(data)
        if not isinstance(data, bytes):
            got = "no value" if nargs < 1 else _luatype(data)
            return False, f"bad argument #1 to '{fname}' (string expected, got {got})"
        limit = offset = 0
        if fname == "unpack_one":
            limit = 1
            offset = _mp_int_arg(fname, args, nargs, 2, optional=True)
        elif fname == "unpack_limit":
            limit = _mp_int_arg(fname, args, nargs, 2, optional=False)
            offset = _mp_int_arg(fname, args, nargs, 3, optional=True)
        decode_all = not limit and not offset
        if offset < 0 or limit < 0:
            return False, (f"Invalid request to unpack with offset of {offset} and limit of "
                           f"{len(data)}.")
        if offset > len(data):
            return False, f"Start offset {offset} greater than input length {len(data)}."
        if decode_all:
            limit = 1 << 31
        reader = _MpReader(engine, data, offset)
        values = []
        while reader.pos < len(data) and len(values) < limit:
            values.append(reader.value())
        if decode_all:
            return (True, *values)
        return (True, -1 if reader.pos >= len(data) else reader.pos, *values)
    except (_MsgpackError, _LuaArgError) as exc:
        return False, str(exc)


def _mp_int_arg(fname: str, args: tuple, nargs: int, index: int, optional: bool) -> int:
    value = args[index - 1] if index <= nargs else None
    if value is None and optional:
        return 0
    number = _lua_tonumber_text(value)
    if number is None:
        got = "no value" if index > nargs else _luatype(value)
        raise _LuaArgError(f"bad argument #{index} to '{fname}' (number expected, got {got})")
    return int(number)


# -- conversions ---------------------------------------------------------------------------------------

_LLONG_MIN = -(1 << 63)
_MAX_REPLY_DEPTH = 200
"""Nesting beyond this in a script's reply (a table containing itself) becomes an error element."""


def _to_long_long(value: float) -> int:
    """(long long) of a double as x86-64 converts it: out of range and NaN give LLONG_MIN."""
    if value != value or not -9.223372036854775808e18 <= value < 9.223372036854775808e18:
        return _LLONG_MIN
    return int(value)


def _error_text(message: str) -> str:
    """luaPushErrorBuff on "-<message>": a leading code word is kept, else "ERR" is added."""
    if " " not in message:
        return "ERR " + message.strip("\r\n")
    code, rest = message.split(" ", 1)
    return code + " " + rest.strip("\r\n")


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


class _RunContext:
    """One script invocation: its database, protocol, replication flags and permissions."""

    __slots__ = ("db", "store", "resp", "repl", "read_only", "name", "is_eval", "client")

    def __init__(self, db, name: bytes, is_eval: bool, read_only: bool) -> None:
        self.db = db
        self.store = db.store
        self.resp = 2
        self.repl = _REPL_AOF | _REPL_REPLICA
        self.read_only = read_only
        self.name = name
        self.is_eval = is_eval
        self.client = None


class Script:
    """A cached EVAL script: body, shebang flags and the compiled Lua function."""

    __slots__ = ("sha", "body", "flags", "function")

    def __init__(self, sha: bytes, body: bytes, flags: int, function) -> None:
        self.sha, self.body, self.flags, self.function = sha, body, flags, function


class FunctionInfo:
    __slots__ = ("name", "callback", "flags", "description", "library")

    def __init__(self, name: bytes, callback, flags: int, description: bytes | None,
                 library: Library) -> None:
        self.name, self.callback, self.flags = name, callback, flags
        self.description, self.library = description, library


class Library:
    __slots__ = ("name", "code", "functions")

    def __init__(self, name: bytes, code: bytes) -> None:
        self.name = name
        self.code = code
        self.functions: dict[bytes, FunctionInfo] = {}
        """By lower-case name: function names are case-insensitive, library names are not."""


class _LuaRaise(Exception):
    """Raised by a Python function called from Lua; the Lua side turns it into the error Redis's C
    function would raise (see `convert` in the bootstrap)."""

    TABLE, WHERE, VALUE = 1, 2, 3   # {err=payload}; luaL_error text; the payload itself

    def __init__(self, kind: int, payload) -> None:
        super().__init__(payload)
        self.kind = kind
        self.payload = payload.encode() if isinstance(payload, str) else payload


def _unwrap(error) -> tuple:
    if isinstance(error, _LuaRaise):
        return error.kind, error.payload
    if isinstance(error, AttributeError):   # indexing a Python-backed function (_deny_attributes)
        return _LuaRaise.WHERE, b"attempt to index a function value"
    if isinstance(error, BaseException):
        log.error("internal error in a scripting function", exc_info=error)
        return _LuaRaise.VALUE, b"internal error"
    return 0, None


def _redis_error(text: str | bytes) -> _LuaRaise:
    return _LuaRaise(_LuaRaise.TABLE, text.encode() if isinstance(text, str) else text)


def _command_argv(args: tuple) -> list[bytes] | bytes:
    """luaArgsToRedisArgv: the argv, or the error text. Numbers are formatted with %.17g."""
    if not args:
        return b"ERR Please specify at least one argument for this redis lib call"
    argv = []
    for arg in args:
        t = type(arg)
        if t is bytes:
            argv.append(arg)
        elif t is int:
            argv.append(b"%.17g" % arg)
        elif t is float:
            if arg != arg:
                argv.append(b"-nan" if math.copysign(1.0, arg) < 0 else b"nan")
            else:
                argv.append(b"%.17g" % arg)
        else:
            return b"ERR Lua redis lib command arguments must be strings or integers"
    return argv


class Engine:
    """One Lua interpreter (EVAL's or FUNCTION's) with its sandbox and Python bridges."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.ctx: _RunContext | None = None
        self.rand = _RAND
        self.loading: Library | None = None
        self.load_started = 0.0
        self.runtime = lua51.LuaRuntime(encoding=None, register_eval=False, register_builtins=False,
                                        unpack_returned_tuples=True, attribute_filter=_deny_attributes)
        self.runtime.execute("python = nil")
        self.table = self.runtime.table_from
        bridge = self.table({
            b"call": self._redis_call, b"pcall": self._redis_pcall, b"sha1hex": _redis_sha1hex,
            b"log": _redis_log, b"setresp": self._redis_setresp, b"set_repl": self._redis_set_repl,
            b"acl_check_cmd": _redis_acl_check_cmd, b"check": self._check, b"unwrap": _unwrap,
            b"flag": _flag_bit, b"register": self._register, b"lib": self._lib,
            b"json_encoder": self._json_encoder, b"json_decoder": self._json_decoder,
            b"hook_count": _HOOK_COUNT, b"version": REDIS_VERSION.encode(),
            b"version_num": REDIS_VERSION_NUM,
        })
        boot = self.runtime.eval("function(code) return loadstring(code, '=shardis') end")
        api = boot(_BOOT.encode())(bridge, kind.encode())
        self.api = api
        self._classify = api.classify
        self._slice = api.slice
        self._mk_ok, self._mk_err, self._mk_double = api.mk_ok, api.mk_err, api.mk_double
        self._mk_map, self._mk_set = api.mk_map, api.mk_set
        self._mk_big, self._mk_verbatim = api.mk_big, api.mk_verbatim
        self.null = api.null

    # -- bridges called from Lua ------------------------------------------------------------------

    def _check(self) -> int:
        if RUNNING.kill_requested:
            return 1
        if self.loading is not None and time.monotonic() - self.load_started > _LOAD_TIMEOUT:
            return 2
        return 0

    def _redis_setresp(self, *args) -> None:
        if len(args) != 1:
            raise _redis_error("ERR redis.setresp() requires one argument.")
        resp = _lua_tonumber_text(args[0]) or 0
        if resp not in (2, 3):
            raise _redis_error("ERR RESP version must be 2 or 3.")
        if self.ctx is None:
            raise _redis_error("ERR redis.setresp can only be called inside a script invocation")
        self.ctx.resp = int(resp)

    def _redis_set_repl(self, *args) -> None:
        if self.ctx is None:
            raise _redis_error("ERR redis.set_repl can only be called inside a script invocation")
        if len(args) != 1:
            raise _redis_error("ERR redis.set_repl() requires two arguments.")
        flags = int(_lua_tonumber_text(args[0]) or 0)
        if flags & ~(_REPL_AOF | _REPL_REPLICA):
            raise _redis_error("ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, "
                               "REPL_ALL or REPL_NONE.")
        self.ctx.repl = flags

    def _lib(self, module: bytes, name: bytes):
        """A cmsgpack/struct/bit/math function: errors are luaL_error texts."""
        fname = name.decode()
        if module == b"cmsgpack":
            impl = lambda *a: _mp_op(self, *a)  # noqa: E731
        elif module == b"struct":
            impl = _struct_op
        elif module == b"bit":
            impl = _bit_op
        else:
            impl = self._math_op

        def call(*args):
            result = impl(fname, len(args), *args)
            if not result[0]:
                raise _LuaRaise(_LuaRaise.WHERE, result[1])
            return result[1] if len(result) == 2 else result[1:]
        return call

    def _math_op(self, fname: str, nargs: int, *args):
        """math.random/randomseed with Redis's rand48, so seeded sequences match Redis's."""
        try:
            if fname == "randomseed":
                self.rand.seed(_check_int(fname, args, nargs, 1))
                return (True,)
            r = (self.rand.next() % 2147483647) / 2147483647
            if nargs == 0:
                return True, r
            if nargs == 1:
                upper = _check_int(fname, args, nargs, 1)
                if upper < 1:
                    raise _LuaArgError("bad argument #1 to 'random' (interval is empty)")
                return True, math.floor(r * upper) + 1
            if nargs == 2:
                lower = _check_int(fname, args, nargs, 1)
                upper = _check_int(fname, args, nargs, 2)
                if lower > upper:
                    raise _LuaArgError("bad argument #2 to 'random' (interval is empty)")
                return True, math.floor(r * (upper - lower + 1)) + lower
            return False, "wrong number of arguments"
        except _LuaArgError as exc:
            return False, str(exc)

    def _json_encoder(self, encode):
        def call(*args):
            if len(args) != 1:
                raise _LuaRaise(_LuaRaise.WHERE, "bad argument #1 to 'encode' (expected 1 argument)")
            ok, result = encode(args[0])
            if ok:
                return result
            if isinstance(result, bytes):
                raise _LuaRaise(_LuaRaise.WHERE, result)
            raise _LuaRaise(_LuaRaise.VALUE, result)   # e.g. the kill error, caught in the encoder
        return call

    def _json_decoder(self, settings):
        def call(*args):
            if len(args) != 1:
                raise _LuaRaise(_LuaRaise.WHERE, "bad argument #1 to 'decode' (expected 1 argument)")
            data = args[0]
            if isinstance(data, (int, float)) and not isinstance(data, bool):
                data = _number_text(data)
            if not isinstance(data, bytes):
                raise _LuaRaise(_LuaRaise.WHERE, "bad argument #1 to 'decode' (string expected, got "
                                                 f"{_luatype(data)})")
            max_depth, invalid_numbers = settings()
            decoder = _JsonDecoder(data, int(max_depth), bool(invalid_numbers), self.table,
                                   self.null)
            try:
                return decoder.decode()
            except _JsonError as exc:
                raise _LuaRaise(_LuaRaise.WHERE, str(exc)) from None
        return call

    def _register(self, name: bytes, callback, flags, description):
        library = self.loading
        if library is None:
            return b"redis.register_function can only be called on FUNCTION LOAD command"
        if not _VALID_NAME.match(name):
            return _NAME_RULE.encode()
        if name.lower() in library.functions:
            return b"Function already exists in the library"
        library.functions[name.lower()] = FunctionInfo(name, callback, int(flags), description,
                                                       library)
        return None

    def _redis_call(self, *args):
        kind, value = self._command(args)
        if kind == 0:
            return value
        if kind == 1:
            return self._mk_ok(value)
        raise _LuaRaise(_LuaRaise.TABLE, value)

    def _redis_pcall(self, *args):
        kind, value = self._command(args)
        if kind == 0:
            return value
        if kind == 1:
            return self._mk_ok(value)
        return self._mk_err(value)

    def _command(self, args: tuple):
        """Run a command for redis.call/pcall: (0, Lua value), (1, status) or (2, error text)."""
        ctx = self.ctx
        if ctx is None:
            return 2, b"ERR redis.call/pcall can only be called inside a script invocation"
        argv = _command_argv(args)
        if type(argv) is bytes:
            return 2, argv
        try:
            spec = lookup(argv)
        except CommandError:
            spec = None
        if spec is None:
            return 2, b"ERR Unknown Redis command called from script"
        if not spec.check_arity(len(argv)):
            return 2, b"ERR Wrong number of args calling Redis command from script"
        if "noscript" in spec.flags or spec.handler is None:
            return 2, ("ERR " + _NOT_ALLOWED).encode()
        if spec.is_write:
            if ctx.read_only:
                return 2, b"ERR Write commands are not allowed from read-only scripts."
            if not RUNNING.mark_write():
                return 2, b"ERR Script killed by user with SCRIPT KILL..."
        try:
            if spec.route is Route.LOCAL:
                reply = self._local(ctx, spec, argv)
            else:
                reply = self._keyed(ctx, spec, argv)
        except CommandError as exc:
            return 2, _error_text(exc.message).encode()
        except Exception:  # a handler bug: keep the script and the server alive
            log.exception("internal error running %s from a script", spec.fullname)
            return 2, b"ERR internal error"
        if type(reply) is str:
            return 1, reply.encode()
        if type(reply) is ErrorReply:
            return 2, _error_text(str(reply)).encode()
        return 0, self._to_lua(reply, ctx.resp == 3, 0)

    def _keyed(self, ctx: _RunContext, spec, argv: list[bytes]):
        db = ctx.db
        store = ctx.store
        before = store.dirty
        also = store.also
        mark = len(also)
        try:
            return spec.handler(db, argv)
        finally:
            if store.dirty != before:
                self._after_write(ctx, spec, argv, also, mark)

    def _after_write(self, ctx: _RunContext, spec, argv: list[bytes], also: list, mark: int) -> None:
        """The command changed the dataset: queue its effect for the write stream, touch WATCHes."""
        db = ctx.db
        store = ctx.store
        if store.records is None or not ctx.repl:
            del also[mark:]
        elif len(also) == mark:
            db.propagate(*argv)
        part = getattr(db, "part", None)
        touch_written(store, db.index, argv, spec.written_positions(argv),
                      (lambda key: part(key).store) if part is not None else (lambda key: store))

    def _local(self, ctx: _RunContext, spec, argv: list[bytes]):
        """Connection commands a script may call: the common ones are answered here, the rest by
        their handler with a stand-in client (see ScriptHost for what needs the server)."""
        name = spec.fullname
        if name == "select":
            index = parse_int(argv[1])
            if not 0 <= index < len(ctx.store.dbs):
                raise CommandError("ERR DB index is out of range")
            ctx.db = ctx.store.dbs[index]
            return "OK"
        if name == "ping":
            if len(argv) > 2:
                raise CommandError("ERR wrong number of arguments for 'ping' command")
            return "PONG" if len(argv) == 1 else argv[1]
        if name == "echo":
            return argv[1]
        if name == "time":
            now = time.time_ns() // 1000
            return [b"%d" % (now // 1_000_000), b"%d" % (now % 1_000_000)]
        client = _ScriptClient(ctx.db.index, ctx.resp)
        try:
            reply = spec.handler(client, argv)
        except AttributeError:  # the handler needs the server, which was not attached (HOST)
            raise CommandError("ERR " + _NOT_ALLOWED) from None
        if reply is DEFERRED:
            return client.deferred
        return reply

    # -- conversions ------------------------------------------------------------------------------

    def _to_lua(self, value, resp3: bool, depth: int):
        """A handler's reply as the Lua value Redis's reply parser would build (RESP2 or RESP3)."""
        t = type(value)
        if t is bytes or t is int:
            return value
        if value is None or value is NULL_ARRAY:
            return None if resp3 else False
        if t is bool:
            return value if resp3 else int(value)
        if t is str:
            return self._mk_ok(value.encode())
        if t is ErrorReply:
            return self._mk_err(_error_text(str(value)).encode())
        if t is float:
            return self._mk_double(format_double(value)) if resp3 else format_double(value)
        if t is list or t is tuple:
            return self.table([self._to_lua(v, resp3, depth + 1) for v in value])
        if t is dict:
            flat = []
            for k, v in value.items():
                flat.append(self._to_lua(k, resp3, depth + 1))
                flat.append(self._to_lua(v, resp3, depth + 1))
            if resp3:
                return self._mk_map(self.table(flat), len(flat))
            return self.table(flat)
        if t is SetReply:
            items = [self._to_lua(v, resp3, depth + 1) for v in value]
            return self._mk_set(self.table(items), len(items)) if resp3 else self.table(items)
        if t is Verbatim:
            return self._mk_verbatim(b"txt", bytes(value)) if resp3 else bytes(value)
        # Anything else (PairsReply, subclasses, types added later): what Redis does for every
        # reply, encode it as the script's protocol and parse that back into Lua values.
        data = _replies.encode(value, 3 if resp3 else 2)
        parsed, _ = self._parse_resp(data, 0)
        return parsed

    def _parse_resp(self, data: bytes, pos: int):
        """One RESP value at `pos` as redisProtocolToLuaType builds it; returns (value, next pos)."""
        kind = data[pos:pos + 1]
        end = data.index(b"\r\n", pos)
        line = data[pos + 1:end]
        pos = end + 2
        if kind == b"$":
            n = int(line)
            if n < 0:
                return False, pos
            return data[pos:pos + n], pos + n + 2
        if kind == b":":
            return int(line), pos
        if kind == b"+":
            return self._mk_ok(line), pos
        if kind == b"-":
            return self._mk_err(_error_text(line.decode("utf-8", "replace")).encode()), pos
        if kind in (b"*", b"~", b"%", b">"):
            n = int(line)
            if n < 0:
                return False, pos
            count = 2 * n if kind == b"%" else n
            items = []
            for _ in range(count):
                item, pos = self._parse_resp(data, pos)
                items.append(item)
            if kind == b"%":
                return self._mk_map(self.table(items), len(items)), pos
            if kind == b"~":
                return self._mk_set(self.table(items), len(items)), pos
            return self.table(items), pos
        if kind == b"_":
            return None, pos
        if kind == b"#":
            return line == b"t", pos
        if kind == b",":
            return self._mk_double(line), pos
        if kind == b"(":
            return self._mk_big(line), pos
        if kind == b"=":
            n = int(line)
            text = data[pos:pos + n]
            return self._mk_verbatim(text[:3], text[4:]), pos + n + 2
        if kind == b"|":   # attributes are dropped, the value that follows is kept
            for _ in range(2 * int(line)):
                _, pos = self._parse_resp(data, pos)
            return self._parse_resp(data, pos)
        raise ValueError(f"unexpected RESP type {kind!r}")

    def _items(self, table, n: int) -> list:
        out: list = []
        for start in range(1, n + 1, 4000):
            chunk = self._slice(table, start, min(n, start + 3999))
            if type(chunk) is tuple:
                out.extend(chunk)
            else:
                out.append(chunk)
        return out

    def to_reply(self, value, resp3: bool, depth: int = 0):
        """A script's return value as a reply value (luaReplyToRedisReply)."""
        t = type(value)
        if t is bytes:
            return value
        if t is int:
            return value
        if t is bool:
            if resp3:
                return value
            return 1 if value else None
        if t is float:
            return _to_long_long(value)
        if value is None or lua51.lua_type(value) != "table":
            return None
        if depth > _MAX_REPLY_DEPTH:
            return ErrorReply("ERR reached lua stack limit")
        kind, *rest = self._classify(value)
        if kind == 1:
            return ErrorReply(_text(rest[0]))
        if kind == 2:
            return _text(rest[0]).replace("\r", " ").replace("\n", " ")
        if kind == 3:
            return float(rest[0])
        if kind == 4:
            return BigNumber(rest[0].replace(b"\r", b" ").replace(b"\n", b" "))
        if kind == 5:
            fmt, text = rest
            return _verbatim(fmt, text)
        if kind == 6:
            n, flat = rest
            items = self._items(flat, n)
            pairs = [(self.to_reply(items[i], resp3, depth + 1),
                      self.to_reply(items[i + 1], resp3, depth + 1)) for i in range(0, n, 2)]
            return _PairMap(pairs)
        if kind == 7:
            n, keys = rest
            return SetReply(self.to_reply(v, resp3, depth + 1) for v in self._items(keys, n))
        n, table = rest
        return [self.to_reply(v, resp3, depth + 1) for v in self._items(table, n)]


class _PairMap(dict):
    """A map reply built from Lua pairs: keys need not be hashable (a table key becomes a list)."""

    def __init__(self, pairs: list) -> None:
        super().__init__()
        self._pairs = pairs

    def items(self):  # type: ignore[override]
        return self._pairs

    def __len__(self) -> int:
        return len(self._pairs)


def _verbatim(fmt: bytes, text: bytes):
    """addReplyVerbatim: the format is cut or padded to 3 bytes."""
    if fmt == b"txt":
        return Verbatim(text)
    return FormattedVerbatim(fmt[:3].ljust(3, b"\0") + b":" + text)


def _deny_attributes(obj, name, is_setting):
    raise AttributeError("access to Python attributes is not allowed from Lua")


def _sha1hex(data: bytes) -> bytes:
    return hashlib.sha1(data).hexdigest().encode()


def _redis_sha1hex(*args) -> bytes:
    if len(args) != 1:
        raise _redis_error("ERR wrong number of arguments")
    value = args[0]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = _number_text(value)
    return _sha1hex(value if isinstance(value, bytes) else b"")


_LOG_LEVELS = {0: logging.DEBUG, 1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING}


def _redis_log(*args) -> None:
    if len(args) < 2:
        raise _redis_error("ERR redis.log() requires two arguments or more.")
    level = _lua_tonumber_text(args[0])
    if level is None:
        raise _redis_error("ERR First argument must be a number (log level).")
    if not 0 <= level <= 3:
        raise _redis_error("ERR Invalid debug level.")
    parts = []
    for value in args[1:]:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = _number_text(value)
        if isinstance(value, bytes):
            parts.append(value)
    log.log(_LOG_LEVELS[int(level)], "%s", b" ".join(parts).decode("utf-8", "replace"))


def _redis_acl_check_cmd(*args) -> bool:
    argv = _command_argv(args)
    if type(argv) is bytes:
        raise _redis_error(argv)
    try:
        known = lookup(argv) is not None
    except CommandError:
        known = False
    if not known:
        raise _redis_error("ERR Invalid command passed to redis.acl_check_cmd()")
    return True


def _check_int(fname: str, args: tuple, nargs: int, index: int) -> int:
    """luaL_checkint: a number (or numeric string) truncated toward zero."""
    value = args[index - 1] if index <= nargs else None
    number = _lua_tonumber_text(value)
    if number is None:
        got = "no value" if index > nargs else _luatype(value)
        raise _LuaArgError(f"bad argument #{index} to '{fname}' (number expected, got {got})")
    if number != number or math.isinf(number):
        return -(1 << 31)
    return int(number)


def _flag_bit(name: bytes) -> int:
    return _FLAG_BY_NAME.get(name.lower(), 0)


# -- the script cache and EVAL -------------------------------------------------------------------------

_lock = threading.RLock()
_engines: dict[str, Engine] = {}
_scripts: dict[bytes, Script] = {}
_libraries: dict[bytes, Library] = {}
_functions: dict[bytes, FunctionInfo] = {}


def _engine(kind: str) -> Engine:
    engine = _engines.get(kind)
    if engine is None:
        engine = _engines[kind] = Engine(kind)
    return engine


def _split_args(line: bytes) -> list[bytes] | None:
    """sdssplitargs: whitespace-separated words with "double" and 'single' quoted parts."""
    out: list[bytes] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i:i + 1].isspace():
            i += 1
        if i >= n:
            return out
        word = bytearray()
        in_dq = in_sq = False
        while True:
            if in_dq:
                if i >= n:
                    return None
                c = line[i:i + 1]
                if c == b"\\" and i + 1 < n:
                    nxt = line[i + 1:i + 2]
                    word += {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b",
                             b"a": b"\a"}.get(nxt, nxt)
                    i += 1
                elif c == b'"':
                    if i + 1 < n and not line[i + 1:i + 2].isspace():
                        return None
                    in_dq = False
                    i += 1
                    break
                else:
                    word += c
            elif in_sq:
                if i >= n:
                    return None
                c = line[i:i + 1]
                if c == b"\\" and line[i + 1:i + 2] == b"'":
                    word += b"'"
                    i += 1
                elif c == b"'":
                    if i + 1 < n and not line[i + 1:i + 2].isspace():
                        return None
                    in_sq = False
                    i += 1
                    break
                else:
                    word += c
            else:
                if i >= n:
                    break
                c = line[i:i + 1]
                if c.isspace():
                    break
                if c == b'"':
                    in_dq = True
                elif c == b"'":
                    in_sq = True
                else:
                    word += c
            i += 1
        out.append(bytes(word))


def _shebang_flags(body: bytes) -> tuple[int, int]:
    """(flags, offset of the code) for an EVAL body; raises CommandError like evalExtractShebangFlags."""
    if not body.startswith(b"#!"):
        return _EVAL_COMPAT, 0
    end = body.find(b"\n")
    if end < 0:
        raise CommandError("ERR Invalid script shebang")
    parts = _split_args(body[:end])
    if not parts:
        raise CommandError("ERR Invalid engine in script shebang")
    if parts[0] != b"#!lua":
        raise CommandError(f"ERR Unexpected engine in script shebang: {_text(parts[0])}")
    flags = 0
    for part in parts[1:]:
        if not part.startswith(b"flags="):
            raise CommandError(f"ERR Unknown lua shebang option: {_text(part)}")
        for name in part[6:].split(b","):
            if not part[6:]:
                break
            bit = _FLAG_BY_NAME.get(name)
            if bit is None:
                raise CommandError(f"ERR Unexpected flag in script shebang: {_text(name)}")
            flags |= bit
    return flags, end


def _compile_script(body: bytes) -> Script:
    sha = _sha1hex(body)
    script = _scripts.get(sha)
    if script is not None:
        return script
    flags, offset = _shebang_flags(body)
    engine = _engine("eval")
    function, error = engine.api.compile(body[offset:], b"@user_script")
    if function is None:
        raise CommandError("ERR Error compiling script (new function): " + _text(error))
    script = _scripts[sha] = Script(sha, body, flags, function)
    return script


def _numkeys(argv: list[bytes], bad_number: str | None = None) -> int:
    if bad_number is None:
        numkeys = parse_int(argv[2])
    else:
        try:
            numkeys = parse_int(argv[2])
        except CommandError:
            raise CommandError(bad_number) from None
    if numkeys > len(argv) - 3:
        raise CommandError("ERR Number of keys can't be greater than number of args")
    if numkeys < 0:
        raise CommandError("ERR Number of keys can't be negative")
    return numkeys


def _prepare(flags: int, ro: bool) -> bool:
    """scriptPrepareForRun's checks; returns whether the run is read-only."""
    if not flags & _EVAL_COMPAT and not flags & FLAG_NO_WRITES and ro:
        raise CommandError(_RO_WITH_WRITE_FLAG)
    return ro or (not flags & _EVAL_COMPAT and bool(flags & FLAG_NO_WRITES))


def _run(engine: Engine, runner, function, db, argv: list[bytes], numkeys: int, name: bytes,
         is_eval: bool, read_only: bool):
    ctx = _RunContext(db, name, is_eval, read_only)
    store = db.store
    saved_no_block = store.no_block
    store.no_block = True
    engine.ctx = ctx
    RUNNING.begin(name, is_eval, argv)
    # Keys expire as of the start of the script (Redis 7.0's scriptTimeSnapshot), as during EXEC.
    parts = getattr(store, "parts", None)
    try:
        with frozen_expiry(parts if parts is not None else [store]):
            result = runner(function, numkeys, *argv[3:])
        if result[0]:
            reply = engine.to_reply(result[1], ctx.resp == 3)
            if type(reply) is ErrorReply:
                raise CommandError(str(reply))
            return reply
        message, source, line = result[1], result[2], result[3]
        text = _text(message) if message is not None else "ERR unknown error"
        if source is not None and line is not None:
            text += f" script: {_text(name)}, on {_text(source)}:{_text(line)}."
        raise CommandError(text)
    finally:
        RUNNING.end()
        engine.ctx = None
        store.no_block = saved_no_block


def run_eval(db, argv: list[bytes], by_sha: bool, ro: bool):
    """EVAL/EVALSHA/EVAL_RO/EVALSHA_RO in global mode: `db` is the caller's database (or a view)."""
    numkeys = _numkeys(argv)
    with _lock:
        if by_sha:
            script = _scripts.get(argv[1].lower())
            if script is None:
                raise CommandError(_NOSCRIPT)
        else:
            script = _compile_script(argv[1])
        read_only = _prepare(script.flags, ro)
        engine = _engine("eval")
        return _run(engine, engine.api.run_eval, script.function, db, argv, numkeys, script.sha,
                    True, read_only)


def script_load(body: bytes) -> bytes:
    with _lock:
        return _compile_script(body).sha


def script_exists(shas: list[bytes]) -> list[int]:
    with _lock:
        return [int(sha.lower() in _scripts) for sha in shas]


def script_flush() -> None:
    """SCRIPT FLUSH: forget every script and start a fresh interpreter (as scriptingReset)."""
    with _lock:
        _scripts.clear()
        _engines.pop("eval", None)


# -- functions -------------------------------------------------------------------------------------------

def _library_metadata(code: bytes) -> tuple[bytes, bytes, int]:
    """(engine, name, offset of the code) from the "#!lua name=..." line (functionExtractLibMetaData)."""
    if not code.startswith(b"#!"):
        raise CommandError("ERR Missing library metadata")
    end = code.find(b"\n")
    if end < 0:
        raise CommandError("ERR Invalid library metadata")
    parts = _split_args(code[:end])
    if not parts:
        raise CommandError("ERR Invalid library metadata")
    engine = parts[0][2:]
    name = None
    for part in parts[1:]:
        if part[:5].lower() == b"name=":
            if name is not None:
                raise CommandError("ERR Invalid metadata value, name argument was given multiple "
                                   "times")
            name = part[5:]
            continue
        raise CommandError(f"ERR Invalid metadata value given: {_text(part)}")
    if name is None:
        raise CommandError("ERR Library name was not given")
    return engine, name, end


def _create_library(code: bytes, replace: bool, libraries: dict, functions: dict,
                    engine: Engine) -> Library:
    """Compile and register a library into `libraries`/`functions` (functionsCreateWithLibraryCtx)."""
    engine_name, name, offset = _library_metadata(code)
    if not _VALID_NAME.match(name):
        raise CommandError("ERR " + _NAME_RULE)
    if engine_name.upper() != b"LUA":
        raise CommandError(f"ERR Engine '{_text(engine_name)}' not found")
    old = libraries.get(name)
    if old is not None and not replace:
        raise CommandError(f"ERR Library '{_text(name)}' already exists")
    library = Library(name, code)
    engine.loading = library
    engine.load_started = time.monotonic()
    try:
        ok, error = engine.api.load_library(code[offset:])
    finally:
        engine.loading = None
    if not ok:
        raise CommandError("ERR " + _text(error))
    if not library.functions:
        raise CommandError("ERR No functions registered")
    for fname, info in library.functions.items():
        existing = functions.get(fname)
        if existing is not None and existing.library is not old:
            raise CommandError(f"ERR Function {_text(info.name)} already exists")
    if old is not None:
        _unlink(old, libraries, functions)
    libraries[name] = library
    functions.update(library.functions)
    return library


def _unlink(library: Library, libraries: dict, functions: dict) -> None:
    libraries.pop(library.name, None)
    for fname in library.functions:
        if functions.get(fname) is not None and functions[fname].library is library:
            del functions[fname]


def function_load(code: bytes, replace: bool) -> bytes:
    """FUNCTION LOAD: the library name; raises CommandError with Redis's text."""
    with _lock:
        return _create_library(code, replace, _libraries, _functions, _engine("function")).name


def load_library(code: bytes, replace: bool = False) -> bytes:
    """For RDB/AOF loading: register a library's code; returns its name (raises CommandError)."""
    return function_load(code, replace)


def libraries_code() -> list[bytes]:
    """Every library's code, for RDB saving and AOF rewriting (each becomes FUNCTION LOAD)."""
    with _lock:
        return [lib.code for lib in _libraries.values()]


def function_delete(name: bytes) -> None:
    with _lock:
        library = _libraries.get(name)
        if library is None:
            raise CommandError("ERR Library not found")
        _unlink(library, _libraries, _functions)


def function_flush() -> None:
    with _lock:
        _libraries.clear()
        _functions.clear()
        _engines.pop("function", None)


def function_list(pattern: bytes | None, with_code: bool) -> list:
    from commands.args import glob_match
    with _lock:
        out = []
        for library in _libraries.values():
            if pattern is not None and not glob_match(pattern, library.name, nocase=True):
                continue
            functions = []
            for info in library.functions.values():
                functions.append({
                    b"name": info.name,
                    b"description": info.description,
                    b"flags": SetReply(name.decode() for bit, name in _FLAG_NAMES
                                       if info.flags & bit),
                })
            entry = {b"library_name": library.name, b"engine": b"LUA", b"functions": functions}
            if with_code:
                entry[b"library_code"] = library.code
            out.append(entry)
        return out


def function_stats() -> dict:
    """FUNCTION STATS (the caller checks that no EVAL script is running)."""
    running = None
    if RUNNING.running and not RUNNING.is_eval:
        running = {b"name": RUNNING.name, b"command": list(RUNNING.argv),
                   b"duration_ms": RUNNING.elapsed_ms()}
    return {b"running_script": running,
            b"engines": {b"LUA": {b"libraries_count": len(_libraries),
                                  b"functions_count": len(_functions)}}}


def run_function(db, argv: list[bytes], ro: bool):
    """FCALL/FCALL_RO in global mode."""
    with _lock:
        info = _functions.get(argv[1].lower())
        if info is None:
            raise CommandError("ERR Function not found")
        numkeys = _numkeys(argv, "ERR Bad number of keys provided")
        read_only = _prepare(info.flags, ro)
        engine = _engine("function")
        return _run(engine, engine.api.run_function, info.callback, db, argv, numkeys, info.name,
                    False, read_only)


# FUNCTION DUMP / RESTORE: RDB_OPCODE_FUNCTION2 records, then the RDB version and a CRC64 ------------

_OPCODE_FUNCTION = 0xF6   # pre-GA format (7.0 RCs)
_OPCODE_FUNCTION2 = 0xF5
_RDB_VERSION = 10
_CRC_TABLE: list[int] = []


def _crc_table() -> list[int]:
    if not _CRC_TABLE:
        poly = 0x95AC9329AC4BC9B5
        for i in range(256):
            crc = i
            for _ in range(8):
                crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
            _CRC_TABLE.append(crc)
    return _CRC_TABLE


def crc64(data: bytes, crc: int = 0) -> int:
    """Redis's CRC-64 (Jones polynomial, reflected): crc64(b"123456789") == 0xe9c6d914c4b8d9ca."""
    table = _crc_table()
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


def _rdb_length(n: int) -> bytes:
    if n < 1 << 6:
        return bytes([n])
    if n < 1 << 14:
        return bytes([0x40 | (n >> 8), n & 0xFF])
    if n <= 0xFFFFFFFF:
        return b"\x80" + n.to_bytes(4, "big")
    return b"\x81" + n.to_bytes(8, "big")


class _PayloadError(Exception):
    pass


class _RdbReader:
    def __init__(self, data: bytes, end: int) -> None:
        self.data = data
        self.pos = 0
        self.end = end

    def take(self, n: int) -> bytes:
        if self.pos + n > self.end:
            raise _PayloadError
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def length(self) -> tuple[int, bool]:
        first = self.take(1)[0]
        kind = first >> 6
        if kind == 0:
            return first & 0x3F, False
        if kind == 1:
            return ((first & 0x3F) << 8) | self.take(1)[0], False
        if kind == 3:
            return first & 0x3F, True
        if first == 0x80:
            return int.from_bytes(self.take(4), "big"), False
        if first == 0x81:
            return int.from_bytes(self.take(8), "big"), False
        raise _PayloadError

    def string(self) -> bytes:
        n, encoded = self.length()
        if not encoded:
            return self.take(n)
        if n == 0:
            return b"%d" % struct.unpack("<b", self.take(1))[0]
        if n == 1:
            return b"%d" % struct.unpack("<h", self.take(2))[0]
        if n == 2:
            return b"%d" % struct.unpack("<i", self.take(4))[0]
        if n == 3:
            clen, _ = self.length()
            ulen, _ = self.length()
            return _lzf_decompress(self.take(clen), ulen)
        raise _PayloadError


def _lzf_decompress(data: bytes, expected: int) -> bytes:
    out = bytearray()
    i = 0
    while i < len(data):
        ctrl = data[i]
        i += 1
        if ctrl < 32:
            out += data[i:i + ctrl + 1]
            i += ctrl + 1
        else:
            length = ctrl >> 5
            if length == 7:
                length += data[i]
                i += 1
            ref = len(out) - ((ctrl & 0x1F) << 8) - data[i] - 1
            i += 1
            if ref < 0:
                raise _PayloadError
            for _ in range(length + 2):
                out.append(out[ref])
                ref += 1
    if len(out) != expected:
        raise _PayloadError
    return bytes(out)


def function_dump() -> bytes:
    with _lock:
        body = bytearray()
        for library in _libraries.values():
            body.append(_OPCODE_FUNCTION2)
            body += _rdb_length(len(library.code)) + library.code
        body += _RDB_VERSION.to_bytes(2, "little")
        body += crc64(bytes(body)).to_bytes(8, "little")
        return bytes(body)


def function_restore(payload: bytes, policy: bytes) -> None:
    """FUNCTION RESTORE with policy b"APPEND", b"REPLACE" or b"FLUSH" (functionRestoreCommand)."""
    if len(payload) < 10:
        raise CommandError("ERR DUMP payload version or checksum are wrong")
    version = int.from_bytes(payload[-10:-8], "little")
    if version > _RDB_VERSION or crc64(payload[:-8]) != int.from_bytes(payload[-8:], "little"):
        raise CommandError("ERR DUMP payload version or checksum are wrong")
    with _lock:
        engine = _engine("function")
        libraries: dict[bytes, Library] = {}
        functions: dict[bytes, FunctionInfo] = {}
        reader = _RdbReader(payload, len(payload) - 10)
        try:
            while reader.pos < reader.end:
                opcode = reader.take(1)[0]
                if opcode == _OPCODE_FUNCTION:
                    raise CommandError("ERR Pre-GA function format not supported")
                if opcode != _OPCODE_FUNCTION2:
                    raise CommandError("ERR given type is not a function")
                code = reader.string()
                _create_library(code, False, libraries, functions, engine)
        except _PayloadError:
            raise CommandError("ERR failed loading the given functions payload") from None
        if policy == b"FLUSH":
            _libraries.clear()
            _functions.clear()
            _libraries.update(libraries)
            _functions.update(functions)
            return
        replace = policy == b"REPLACE"
        for name in libraries:
            if name in _libraries and not replace:
                raise CommandError(f"ERR Library {_text(name)} already exists")
        remaining = {fname for name, lib in _libraries.items() if name not in libraries
                     for fname in lib.functions}
        for fname, info in functions.items():
            if fname in remaining:
                raise CommandError(f"ERR Function {_text(info.name)} already exists")
        for name, library in libraries.items():
            old = _libraries.get(name)
            if old is not None:
                _unlink(old, _libraries, _functions)
            _libraries[name] = library
            _functions.update(library.functions)
