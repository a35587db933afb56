"""Turns the bytes a client sends into commands, accepting exactly what Redis 7.0 accepts.

Redis's rules (networking.c `processInputBuffer`, `processMultibulkBuffer`, `processInlineBuffer`):

* a command whose first byte is `*` is a multibulk request, anything else is an inline line;
* `*<n>` with n <= 0 is skipped; header lines end at the first `\\r` and Redis skips the byte after it
  unchecked, as it skips the two bytes after every bulk payload;
* Redis looks for line ends with `strchr`, so a NUL byte before the line end hides the line end:
  the client then waits until 64 KiB pile up and gets a "too big" error;
* every protocol error is the last reply: the connection closes after it.

Two parsers share the work:

* **hiredis** (C) parses multibulk requests. It is the hot path: feed, `gets()` until False, and a
  few C-speed checks per batch. hiredis is more lenient than Redis (it accepts RESP3 reply types such
  as `+`, `~`, `|` inside and between requests, and allocates a list of the announced size up front),
  so every batch it returns is checked against the bytes it was fed (`_drain_hiredis`), chunks that
  announce 100,000 or more elements are never given to it (`_HUGE_AGGREGATE`), and the command it
  is still waiting for is checked header by header with Redis's rules (the "shadow" `_Multibulk`),
  so that a `$2000000000` header is refused at once rather than after the payload.
* **the Redis-exact parser** in Python (`_parse_slow`) handles inline commands and any bytes hiredis
  disagreed on. It hands the stream back to hiredis at the next command that starts with `*`.

Both keep the raw bytes of the command in progress, so that whatever hiredis got wrong can be
re-parsed exactly. That costs a second copy of a command while it is arriving.
"""

from __future__ import annotations

import re
from itertools import chain

import hiredis

from config import split_args_bytes as split_inline_args  # Redis's sdssplitargs
from protocol.errors import ProtocolError

__all__ = ["RequestReader", "split_inline_args"]

INLINE_MAX_SIZE = 64 * 1024          # PROTO_INLINE_MAX_SIZE
INT_MAX = 2**31 - 1
LLONG_MAX = 2**63 - 1
UNAUTH_MAX_ARGS = 10
UNAUTH_MAX_BULK = 16384

E_TOO_BIG_INLINE = "ERR Protocol error: too big inline request"
E_UNBALANCED_QUOTES = "ERR Protocol error: unbalanced quotes in request"
E_TOO_BIG_MBULK = "ERR Protocol error: too big mbulk count string"
E_INVALID_MBULK = "ERR Protocol error: invalid multibulk length"
E_UNAUTH_MBULK = "ERR Protocol error: unauthenticated multibulk length"
E_TOO_BIG_BULK = "ERR Protocol error: too big bulk count string"
E_INVALID_BULK = "ERR Protocol error: invalid bulk length"
E_UNAUTH_BULK = "ERR Protocol error: unauthenticated bulk length"

_STAR, _DOLLAR, _CR, _LF = 0x2A, 0x24, 0x0D, 0x0A

# Aggregate headers announcing 6+ digits of elements. hiredis allocates the whole list at once and
# freeing a mostly empty 2e9-slot list stalls the process for seconds (a 99,999-slot one: ~0.2 ms),
# so chunks holding such a header go to the Python parser, which grows argv as elements arrive.
_HUGE_ARRAY = re.compile(rb"\*[0-9]{6}")
_HUGE_AGGREGATE = re.compile(rb"[*~%>|][0-9]{6}")
_CANONICAL_BULK_HEADER = re.compile(rb"\$(0|[1-9][0-9]{0,17})\r\n")  # the common case, no NUL possible
_AGGREGATE_TAIL = frozenset(b"*~%>|0123456789")
# Inline lines with none of these can be split with bytes.split(): same separators as sdssplitargs.
_INLINE_SPECIAL = re.compile(rb"[\"'\x00\x0b\x0c]")

# Canonical encoding sizes: `*<argc>\r\n` and `$<len>\r\n<payload>\r\n`.
_TABLE = 4096
_HEADER_COST = [3 + len(str(n)) for n in range(_TABLE)]
_ARG_COST = [n + 5 + len(str(n)) for n in range(_TABLE)]
_LIST_ONLY = {list}
_BYTES_ONLY = {bytes}

_ESCAPES = {ord("n"): 0x0A, ord("r"): 0x0D, ord("t"): 0x09, ord("b"): 0x08, ord("a"): 0x07}


def _announces_huge_aggregate(data: bytes | bytearray) -> bool:
    if _HUGE_ARRAY.search(data) is not None:
        return True
    if _contains_any(data, b"~%>|"):
        return _HUGE_AGGREGATE.search(data) is not None
    return False


def _contains_any(data: bytes | bytearray, chars: bytes) -> bool:
    """`any(c in data for c in chars)`, fast: `bytes.__contains__` costs ~150 ns a call on 3.11."""
    if len(data) <= 4096:
        return len(data.translate(None, chars)) != len(data)
    return any(data.find(char) >= 0 for char in chars)


def _may_hide_resp3(buf: bytearray) -> bool:
    """Could hiredis have read RESP3 frames as a request? Only if one of these bytes is present.

    The batch type checks catch every RESP3 frame hiredis turns into something other than bytes
    elements in plain lists; these are the rest: `+` simple strings, `(` big numbers and `=` verbatim
    strings become bytes elements, `~` sets and `|` attributes become plain lists of requests.
    """
    return _contains_any(buf, b"+(=~|")


class _ParseError(Exception):
    """Internal: a protocol error found by the Python parser (text = the reply)."""


def _string2ll(digits: bytes | bytearray) -> int | None:
    """Redis util.c `string2ll`: no sign but '-', no leading zeros, no spaces, fits a long long."""
    size = len(digits)
    if size == 0 or size >= 21:
        return None
    if digits == b"0":
        return 0
    negative = digits[0] == 0x2D
    body = digits[1:] if negative else digits
    if not body or not 0x31 <= body[0] <= 0x39 or not body.isdigit():
        return None
    value = int(body)
    if negative:
        return -value if value <= LLONG_MAX + 1 else None
    return value if value <= LLONG_MAX else None


def _find_line_end(buf: bytearray, pos: int, char: bytes) -> int:
    """`strchr(buf + pos, char)`: -1 when absent or when a NUL byte comes first."""
    end = buf.find(char, pos)
    if end >= 0 and buf.find(b"\x00", pos, end) >= 0:
        return -1
    return end


def _expected_dollar(byte: int) -> str:
    shown = " " if byte in (_CR, _LF) else chr(byte)
    return f"ERR Protocol error: expected '$', got '{shown}'"


class _Multibulk:
    """Redis's per-client multibulk state (`multibulklen`, `bulklen`, `argv`) for one request.

    `step` consumes what it can from `buf` starting at `pos`. With `argv` None it only validates
    (the shadow of the command hiredis is still reading) and skips payloads without copying them.
    """

    __slots__ = ("argv", "bulk_len", "left", "pos", "start")

    def __init__(self, start: int, collect: bool) -> None:
        self.start = start          # where the request began in the buffer, -1 once compacted away
        self.pos = start            # next unread byte: Redis's qb_pos
        self.left = 0               # elements still to read; 0 before the `*` line is read
        self.bulk_len = -1          # announced length of the element being read, -1 = header next
        self.argv: list[bytes] | None = [] if collect else None

    def step(self, buf: bytearray, reader: RequestReader) -> bool | None:
        """True: request complete (argv filled); None: empty request (`*0`, `*-1`); False: need more."""
        n = len(buf)
        pos = self.pos
        if self.left == 0:
            end = _find_line_end(buf, pos, b"\r")
            if end < 0:
                if n - pos > INLINE_MAX_SIZE:
                    raise _ParseError(E_TOO_BIG_MBULK)
                return False
            if end + 2 > n:
                return False
            count = _string2ll(buf[pos + 1:end])
            if count is None or count > INT_MAX:
                raise _ParseError(E_INVALID_MBULK)
            if count > UNAUTH_MAX_ARGS and not reader.authenticated:
                raise _ParseError(E_UNAUTH_MBULK)
            self.pos = pos = end + 2
            if count <= 0:
                return None
            self.left = count
        argv = self.argv
        max_bulk_len = reader.max_bulk_len
        bulk_limit = max_bulk_len if reader.authenticated else min(max_bulk_len, UNAUTH_MAX_BULK)
        match_header = _CANONICAL_BULK_HEADER.match
        left = self.left
        bulk_len = self.bulk_len
        while left:
            if bulk_len == -1:
                header = match_header(buf, pos)
                if header is not None and (bulk_len := int(header[1])) <= bulk_limit:
                    pos = header.end()
                else:
                    end = _find_line_end(buf, pos, b"\r")
                    if end < 0:
                        if n - pos > INLINE_MAX_SIZE:
                            raise _ParseError(E_TOO_BIG_BULK)
                        bulk_len = -1
                        break
                    if end + 2 > n:
                        bulk_len = -1
                        break
                    if buf[pos] != _DOLLAR:
                        raise _ParseError(_expected_dollar(buf[pos]))
                    length = _string2ll(buf[pos + 1:end])
                    if length is None or length < 0 or length > max_bulk_len:
                        raise _ParseError(E_INVALID_BULK)
                    if length > UNAUTH_MAX_BULK and not reader.authenticated:
                        raise _ParseError(E_UNAUTH_BULK)
                    pos = end + 2
                    bulk_len = length
            if n - pos < bulk_len + 2:
                break
            if argv is not None:
                argv.append(bytes(buf[pos:pos + bulk_len]))
            pos += bulk_len + 2
            bulk_len = -1
            left -= 1
        self.pos = pos
        self.left = left
        self.bulk_len = bulk_len
        return left == 0


class RequestReader:
    """Incremental request parser for one client connection.

    Usage: `feed(data)` every chunk read from the socket, then call `commands()` repeatedly, running
    each returned batch, until it returns `[]`.

    Errors: when a protocol error follows good commands, `commands()` returns the good commands and
    keeps the offending bytes; the next call parses them again and raises `ProtocolError` whose text
    is the whole reply ("ERR Protocol error: ..."). Parsing them again, rather than remembering the
    error, lets the commands just returned take effect first, as in Redis where each command runs
    before the next is parsed: an AUTH lifts the unauthenticated limits, a CONFIG SET changes
    `max_bulk_len`. After raising, the reader stays failed: the caller must send the error and close.
    """

    authenticated: bool = True

    def __init__(self, *, max_bulk_len: int = 512 * 1024 * 1024, query_buffer_limit: int = 1024**3) -> None:
        self.max_bulk_len = max_bulk_len
        self.query_buffer_limit = query_buffer_limit
        self.authenticated = True
        self._hiredis: hiredis.Reader | None = None
        self._hbuf = bytearray()        # bytes fed to hiredis since the last verified command boundary
        self._shadow: _Multibulk | None = None  # Redis's view of the command hiredis is still reading
        self._sbuf = bytearray()        # bytes for the Python parser (inline, or what hiredis got wrong)
        self._spos = 0
        self._request: _Multibulk | None = None  # multibulk request in progress in the Python parser
        self._python_until = 0          # _sbuf offsets below this were already seen by hiredis
        self._error: ProtocolError | None = None

    # ---------------------------------------------------------------- public interface

    def feed(self, data: bytes) -> None:
        """Buffer bytes read from the client. Parsing happens in `commands()`."""
        if not data or self._error is not None:
            return
        if self._sbuf or self._request is not None:
            self._sbuf += data
            return
        hbuf = self._hbuf
        if not hbuf and data[0] != _STAR:
            self._sbuf += data
            return
        if _announces_huge_aggregate(data) or (
            hbuf and hbuf[-1] in _AGGREGATE_TAIL and _announces_huge_aggregate(bytes(hbuf[-6:]) + data[:6])
        ):
            self._sbuf = hbuf + data
            self._python_until = len(self._sbuf)
            self._drop_hiredis()
            return
        if self._hiredis is None:
            self._hiredis = hiredis.Reader()
        self._hiredis.feed(data)
        hbuf += data

    def commands(self) -> list[list[bytes]]:
        """Complete commands buffered so far, in order; see the class docstring for errors."""
        if self._error is not None:
            raise self._error
        out: list[list[bytes]] = []
        while True:
            if self._hbuf:
                self._drain_hiredis(out)
            if len(self._sbuf) > self._spos and self._parse_slow(out):
                continue
            return out

    def buffered(self) -> int:
        """Bytes not yet parsed into complete arguments: Redis's query buffer length.

        Arguments already read of an unfinished request do not count, as in Redis (they sit in argv).
        Accurate after `commands()`.
        """
        shadow_pos = self._shadow.pos if self._shadow is not None else 0
        return len(self._hbuf) - shadow_pos + len(self._sbuf) - self._spos

    def query_buffer_exceeded(self) -> bool:
        """True once `client-query-buffer-limit` is passed: Redis then closes without a reply."""
        return self.buffered() > self.query_buffer_limit

    # ---------------------------------------------------------------- hiredis path

    def _drop_hiredis(self) -> None:
        self._hiredis = None
        self._hbuf = bytearray()
        self._shadow = None

    def _demote(self) -> None:
        """Give every byte hiredis holds to the Python parser, which must parse all of them itself."""
        self._sbuf = self._hbuf
        self._spos = 0
        self._python_until = len(self._sbuf)
        self._request = None
        self._drop_hiredis()

    def _drain_hiredis(self, out: list[list[bytes]]) -> None:
        hiredis_reader = self._hiredis
        gets = hiredis_reader.gets
        batch: list = []
        try:
            reply = gets()
            while reply is not False:
                batch.append(reply)
                reply = gets()
        except Exception:  # noqa: BLE001 - ProtocolError, MemoryError (absurd sizes), TypeError (list map keys)
            self._demote()
            return
        hbuf = self._hbuf
        consumed = -1
        if batch:
            if set(map(type, batch)) != _LIST_ONLY or not set(map(type, chain.from_iterable(batch))) <= _BYTES_ONLY:
                self._demote()
                return
            if not self.authenticated or self.max_bulk_len < len(hbuf) or _may_hide_resp3(hbuf):
                consumed = self._walk(batch)
                if consumed is None:
                    self._demote()
                    return
        if consumed < 0 and not hiredis_reader.has_data():
            # Everything fed was read, but hiredis may be inside a request (between two elements).
            # An empty request is a harmless probe: at a request boundary hiredis returns it as is.
            hiredis_reader.feed(b"*0\r\n")
            try:
                at_boundary = gets() == []
            except Exception:  # noqa: BLE001 - same as above: any failure means "not at a boundary"
                at_boundary = False
            if at_boundary:
                hbuf.clear()
                self._shadow = None
                self._extend(out, batch)
                return
            consumed = self._account(batch)
            if consumed is not None:  # the probe is now inside the request: Python takes it over
                del hbuf[:consumed]
                self._extend(out, batch)
            self._demote()
            return
        if consumed < 0:
            consumed = self._account(batch)
            if consumed is None:
                self._demote()
                return
        self._extend(out, batch)
        if consumed:
            del hbuf[:consumed]
            self._shadow = None
        if hbuf:
            self._check_pending()
        else:
            self._shadow = None

    @staticmethod
    def _extend(out: list[list[bytes]], batch: list) -> None:
        if [] in batch:  # `*0` requests are read and ignored
            batch = [command for command in batch if command]
        out.extend(batch)

    def _account(self, batch: list) -> int | None:
        """Bytes the batch took in `_hbuf`, for requests already known to be plain `*`/`$` frames."""
        try:
            return sum(map(_HEADER_COST.__getitem__, map(len, batch))) + sum(
                map(_ARG_COST.__getitem__, map(len, chain.from_iterable(batch)))
            )
        except IndexError:
            return self._walk(batch)

    def _walk(self, batch: list) -> int | None:
        """Exact check of the batch against `_hbuf`: every request starts with `*`, every element with
        `$`, within the current limits. Returns the bytes the batch took, or None.

        A request made only of `*` and `$` headers is exactly its canonical encoding (hiredis, like
        Redis, refuses leading zeros and `+` signs in lengths), so positions follow from the lengths.
        """
        hbuf = self._hbuf
        authenticated = self.authenticated
        max_bulk_len = self.max_bulk_len
        pos = 0
        try:
            for command in batch:
                if hbuf[pos] != _STAR or (len(command) > UNAUTH_MAX_ARGS and not authenticated):
                    return None
                pos += 3 + len(str(len(command)))
                for arg in command:
                    if hbuf[pos] != _DOLLAR:
                        return None
                    size = len(arg)
                    if size > max_bulk_len or (size > UNAUTH_MAX_BULK and not authenticated):
                        return None
                    pos += 5 + size + len(str(size))
        except IndexError:
            return None
        return pos if pos <= len(hbuf) else None

    def _check_pending(self) -> None:
        """Validate the request hiredis is still reading, as Redis would read it so far.

        Redis refuses a bad header as soon as it arrives, not after the payload; hiredis only refuses
        what it can parse, and waits on headers Redis refuses for size. Any disagreement hands the
        bytes to the Python parser, which reports the error or reads the request itself.
        """
        shadow = self._shadow
        if shadow is None:
            if self._hbuf[0] != _STAR:  # hiredis is reading a RESP3 frame where Redis sees an inline line
                self._demote()
                return
            shadow = self._shadow = _Multibulk(0, collect=False)
        try:
            state = shadow.step(self._hbuf, self)
        except _ParseError:
            state = True
        if state is not False:
            self._demote()

    # ---------------------------------------------------------------- Python path

    def _parse_slow(self, out: list[list[bytes]]) -> bool:
        """Parse `_sbuf` like Redis. True when the rest was handed to hiredis (drain it next)."""
        buf = self._sbuf
        pos = self._spos
        try:
            while pos < len(buf):
                request = self._request
                if request is None:
                    if buf[pos] == _STAR:
                        if pos >= self._python_until and self._hand_to_hiredis(pos):
                            return True
                        request = self._request = _Multibulk(pos, collect=True)
                    else:
                        pos = self._spos = self._parse_inline(buf, pos, out)
                        if pos < 0:
                            pos = self._spos = -pos - 1
                            break
                        continue
                state = request.step(buf, self)
                pos = self._spos = request.pos
                if state is False:
                    break
                self._request = None
                if state:
                    out.append(request.argv)
        except _ParseError as error:
            request = self._request
            start = self._spos if request is None else request.start
            self._request = None
            if out and start >= 0:
                self._spos = start  # parse it again next call, after the commands before it ran
                return False
            self._sbuf = bytearray()
            self._spos = 0
            self._error = ProtocolError(str(error))
            if out:
                return False
            raise self._error from None
        self._compact()
        return False

    def _compact(self) -> None:
        pos = self._spos
        if pos == 0:
            return
        del self._sbuf[:pos]
        self._spos = 0
        self._python_until = max(0, self._python_until - pos)
        request = self._request
        if request is not None:
            request.pos -= pos
            request.start = request.start - pos if request.start >= pos else -1

    def _hand_to_hiredis(self, pos: int) -> bool:
        """Give hiredis the rest of the buffer from the request starting at `pos`."""
        buf = self._sbuf
        rest = buf[pos:]
        if _announces_huge_aggregate(rest):
            self._python_until = len(buf)
            return False
        if self._hiredis is None:
            self._hiredis = hiredis.Reader()
        self._hiredis.feed(rest)
        self._hbuf = rest
        self._shadow = None
        self._sbuf = bytearray()
        self._spos = 0
        self._python_until = 0
        return True

    def _parse_inline(self, buf: bytearray, pos: int, out: list[list[bytes]]) -> int:
        """Read inline lines at `pos`; returns the new position, or -(pos+1) when a line is incomplete.

        Consecutive plain lines (no quotes, NUL, VT or FF) are split in one go, which keeps pipelined
        inline PINGs cheap; other lines go through `split_inline_args` one at a time.
        """
        last = buf.rfind(b"\n", pos)
        if last >= 0:
            special = _INLINE_SPECIAL.search(buf, pos, last + 1)
            if special is not None:
                last = buf.rfind(b"\n", pos, special.start())
            star = buf.find(b"\n*", pos, last + 1)
            if star >= 0:
                last = star
            if last >= pos:
                for line in bytes(buf[pos:last + 1]).split(b"\n"):
                    args = line.split()
                    if args:
                        out.append(args)
                return last + 1
        end = _find_line_end(buf, pos, b"\n")
        if end < 0:
            if len(buf) - pos > INLINE_MAX_SIZE:
                raise _ParseError(E_TOO_BIG_INLINE)
            return -(pos + 1)
        stop = end - 1 if end > pos and buf[end - 1] == _CR else end
        args = split_inline_args(bytes(buf[pos:stop]))
        if args is None:
            raise _ParseError(E_UNBALANCED_QUOTES)
        if args:
            out.append(args)
        return end + 1
