"""RequestReader: what Redis 7.0 accepts from a client, byte for byte.

Expected results were checked against a real redis-server 7.0.15 by raw socket (see the report of the
reader's author); `redis_model` below is an independent, line-by-line model of networking.c used for
property tests over random streams cut into random chunks.
"""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import ProtocolError
from protocol.reader import RequestReader, split_inline_args

INVALID_BULK = "ERR Protocol error: invalid bulk length"
INVALID_MBULK = "ERR Protocol error: invalid multibulk length"
UNBALANCED = "ERR Protocol error: unbalanced quotes in request"
TOO_BIG_INLINE = "ERR Protocol error: too big inline request"
TOO_BIG_MBULK = "ERR Protocol error: too big mbulk count string"
TOO_BIG_BULK = "ERR Protocol error: too big bulk count string"
UNAUTH_MBULK = "ERR Protocol error: unauthenticated multibulk length"
UNAUTH_BULK = "ERR Protocol error: unauthenticated bulk length"


def expected_dollar(char: str) -> str:
    return f"ERR Protocol error: expected '$', got '{char}'"


def encode(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def drain(reader: RequestReader) -> list[list[bytes]]:
    """What a connection does after each read: take batches until none is left."""
    got = []
    while batch := reader.commands():
        got.extend(batch)
    return got


def run(*chunks: bytes, reader: RequestReader | None = None) -> tuple[list[list[bytes]], str | None]:
    """Feed chunks one by one; return the commands and the protocol error text (None if none)."""
    reader = reader or RequestReader()
    got: list[list[bytes]] = []
    try:
        for chunk in chunks:
            reader.feed(chunk)
            while batch := reader.commands():
                got.extend(batch)
    except ProtocolError as error:
        return got, str(error)
    return got, None


def bytewise(data: bytes) -> list[bytes]:
    return [data[i:i + 1] for i in range(len(data))]


# ------------------------------------------------------------------ independent model of networking.c


def _string2ll(s: bytes) -> int | None:
    if not s or len(s) >= 21:
        return None
    if s == b"0":
        return 0
    neg = s[:1] == b"-"
    body = s[1:] if neg else s
    if not body or body[:1] not in b"123456789" or not all(c in b"0123456789" for c in body):
        return None
    value = -int(body) if neg else int(body)
    return value if -(2**63) <= value < 2**63 else None


def redis_model(stream: bytes, *, authenticated: bool = True, max_bulk_len: int = 512 * 1024 * 1024):
    """processInputBuffer on the whole stream at once. Returns (commands, error or None)."""
    buf = stream
    pos = 0
    commands: list[list[bytes]] = []

    def strchr(start: int, char: bytes) -> int:
        nul = buf.find(b"\x00", start)
        hit = buf.find(char, start)
        if hit < 0 or (0 <= nul < hit):
            return -1
        return hit

    while pos < len(buf):
        if buf[pos:pos + 1] == b"*":
            newline = strchr(pos, b"\r")
            if newline < 0:
                return commands, TOO_BIG_MBULK if len(buf) - pos > 65536 else None
            if newline > len(buf) - 2:
                return commands, None
            count = _string2ll(buf[pos + 1:newline])
            if count is None or count > 2**31 - 1:
                return commands, INVALID_MBULK
            if count > 10 and not authenticated:
                return commands, UNAUTH_MBULK
            cursor = newline + 2
            argv = []
            for _ in range(max(count, 0)):
                newline = strchr(cursor, b"\r")
                if newline < 0:
                    return commands, TOO_BIG_BULK if len(buf) - cursor > 65536 else None
                if newline > len(buf) - 2:
                    return commands, None
                if buf[cursor:cursor + 1] != b"$":
                    char = buf[cursor:cursor + 1].decode("latin-1")
                    return commands, expected_dollar(" " if char in "\r\n" else char)
                size = _string2ll(buf[cursor + 1:newline])
                if size is None or size < 0 or size > max_bulk_len:
                    return commands, INVALID_BULK
                if size > 16384 and not authenticated:
                    return commands, UNAUTH_BULK
                cursor = newline + 2
                if len(buf) - cursor < size + 2:
                    return commands, None
                argv.append(buf[cursor:cursor + size])
                cursor += size + 2
            pos = cursor
            if argv:
                commands.append(argv)
        else:
            newline = strchr(pos, b"\n")
            if newline < 0:
                return commands, TOO_BIG_INLINE if len(buf) - pos > 65536 else None
            end = newline - 1 if newline > pos and buf[newline - 1:newline] == b"\r" else newline
            argv = split_inline_args(buf[pos:end])
            if argv is None:
                return commands, UNBALANCED
            pos = newline + 1
            if argv:
                commands.append(argv)
    return commands, None


# ------------------------------------------------------------------ multibulk


def test_single_multibulk_command():
    assert run(encode(b"SET", b"key", b"value")) == ([[b"SET", b"key", b"value"]], None)


def test_pipelined_commands_come_out_in_order():
    stream = b"".join(encode(b"INCR", b"k%d" % i) for i in range(100))
    assert run(stream) == ([[b"INCR", b"k%d" % i] for i in range(100)], None)


def test_byte_by_byte_feeding():
    stream = encode(b"SET", b"a", b"1") + encode(b"GET", b"a") + encode(b"PING")
    assert run(*bytewise(stream)) == ([[b"SET", b"a", b"1"], [b"GET", b"a"], [b"PING"]], None)


def test_commands_return_only_complete_requests():
    reader = RequestReader()
    reader.feed(encode(b"GET", b"a") + b"*2\r\n$3\r\nGET\r\n$1\r")
    assert drain(reader) == [[b"GET", b"a"]]
    reader.feed(b"\nb\r\n")
    assert drain(reader) == [[b"GET", b"b"]]


def test_chunk_ending_between_elements_then_inline():
    """hiredis has read every byte but is inside a request: the rest must still be elements."""
    got, error = run(b"*2\r\n$3\r\nGET\r\n", b"$1\r\nk\r\n", b"PING\r\n")
    assert (got, error) == ([[b"GET", b"k"], [b"PING"]], None)


def test_chunk_ending_after_array_header():
    assert run(b"*1\r\n", b"$4\r\nPING\r\n") == ([[b"PING"]], None)


def test_binary_payload_with_crlf_and_nul():
    value = b"\r\n\x00*1\r\n$4\r\nPING\r\n\xff" * 10
    assert run(encode(b"SET", b"k", value)) == ([[b"SET", b"k", value]], None)
    assert run(*bytewise(encode(b"SET", b"k", value))) == ([[b"SET", b"k", value]], None)


def test_big_value_in_many_chunks():
    value = bytes(range(256)) * 8192  # 2 MiB
    stream = encode(b"SET", b"big", value) + encode(b"GET", b"big")
    chunks = [stream[i:i + 65536] for i in range(0, len(stream), 65536)]
    assert run(*chunks) == ([[b"SET", b"big", value], [b"GET", b"big"]], None)


def test_empty_argument():
    assert run(b"*1\r\n$0\r\n\r\n") == ([[b""]], None)


def test_zero_and_negative_counts_are_skipped():
    stream = b"*0\r\n*-1\r\n*-5\r\n" + encode(b"PING") + b"*0\r\n"
    assert run(stream) == ([[b"PING"]], None)
    assert run(*bytewise(stream)) == ([[b"PING"]], None)


def test_bytes_after_bulk_payload_are_not_checked():
    assert run(b"*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n") == ([[b"PING"], [b"PING"]], None)


def test_any_byte_after_cr_ends_a_header_line():
    assert run(b"*1\rX$4\rYPING\r\n" + encode(b"ECHO", b"x")) == ([[b"PING"], [b"ECHO", b"x"]], None)


def test_nul_before_header_cr_waits():
    assert run(b"*1\x00\r\n$4\r\nPING\r\n") == ([], None)
    assert run(b"*1\r\n$4\x00\r\nPING\r\n") == ([], None)


def test_nul_header_errors_once_64k_pile_up():
    assert run(b"*1\x00", b"a" * 70000) == ([], TOO_BIG_MBULK)
    assert run(b"*1\r\n$4\x00", b"a" * 70000) == ([], TOO_BIG_BULK)


# ------------------------------------------------------------------ multibulk errors


@pytest.mark.parametrize("stream, error", [
    (b"*x\r\n", INVALID_MBULK),
    (b"*\r\n", INVALID_MBULK),
    (b"*01\r\n", INVALID_MBULK),
    (b"*+1\r\n", INVALID_MBULK),
    (b"*-0\r\n", INVALID_MBULK),
    (b"* 1\r\n", INVALID_MBULK),
    (b"*2147483648\r\n", INVALID_MBULK),
    (b"*3000000000\r\n", INVALID_MBULK),
    (b"*99999999999999999999\r\n", INVALID_MBULK),
    (b"*1\r\n$-1\r\n", INVALID_BULK),
    (b"*1\r\n$-2\r\n", INVALID_BULK),
    (b"*1\r\n$04\r\nPING\r\n", INVALID_BULK),
    (b"*1\r\n$x\r\n", INVALID_BULK),
    (b"*1\r\n$\r\n", INVALID_BULK),
    (b"*1\r\n$536870913\r\n", INVALID_BULK),
    (b"*1\r\n$" + b"1" * 70000 + b"\r\n", INVALID_BULK),
    (b"*1\r\n:5\r\n", expected_dollar(":")),
    (b"*1\r\n+PING\r\n", expected_dollar("+")),
    (b"*1\r\n*1\r\n$1\r\na\r\n", expected_dollar("*")),
    (b"*1\r\n*-1\r\n", expected_dollar("*")),
    (b"*1\r\n-ERR x\r\n", expected_dollar("-")),
    (b"*1\r\n_\r\n", expected_dollar("_")),
    (b"*1\r\n#t\r\n", expected_dollar("#")),
    (b"*1\r\n,1.5\r\n", expected_dollar(",")),
    (b"*1\r\n(123\r\n", expected_dollar("(")),
    (b"*1\r\n=8\r\ntxt:PING\r\n", expected_dollar("=")),
    (b"*1\r\n~1\r\n$1\r\na\r\n", expected_dollar("~")),
    (b"*1\r\n%1\r\n$1\r\na\r\n$1\r\nb\r\n", expected_dollar("%")),
    (b"*1\r\n>1\r\n$1\r\na\r\n", expected_dollar(">")),
    (b"*1\r\n|1\r\n$1\r\na\r\n$1\r\nb\r\n$4\r\nPING\r\n", expected_dollar("|")),
    (b"*1\r\n!3\r\nERR\r\n", expected_dollar("!")),
    (b"*1\r\n\r\n", expected_dollar(" ")),
    (b"*1\r\n\n\r\n", expected_dollar(" ")),
    (b"*1\r\n\xe9\r\n", expected_dollar("\xe9")),
    (b"*2\r\n$4\r\nECHO\r\n$-1\r\n", INVALID_BULK),
])
def test_multibulk_errors(stream, error):
    assert run(stream) == ([], error)
    if len(stream) < 1000:  # fed slowly, a 70000-digit header is "too big" first, as in Redis
        assert run(*bytewise(stream)) == ([], error)


def test_bulk_length_is_refused_when_the_header_arrives():
    """Redis does not wait for two gigabytes before saying no."""
    assert run(b"*2\r\n$3\r\nSET\r\n$2000000000\r\n") == ([], INVALID_BULK)
    assert run(b"*2\r\n$3\r\nSET\r\n", b"$2000000000\r\n", b"x" * 100) == ([], INVALID_BULK)


def test_bulk_length_at_the_limit_is_accepted():
    reader = RequestReader()
    assert run(b"*1\r\n$536870912\r\n", b"abc", reader=reader) == ([], None)
    assert reader.buffered() == 3


def test_max_bulk_len_is_settable():
    reader = RequestReader(max_bulk_len=5)
    assert run(encode(b"ECHO", b"12345"), reader=reader) == ([[b"ECHO", b"12345"]], None)
    reader = RequestReader(max_bulk_len=5)
    assert run(encode(b"ECHO", b"123456"), reader=reader) == ([], INVALID_BULK)
    reader = RequestReader()
    reader.max_bulk_len = 1024 * 1024
    assert run(b"*1\r\n$1048577\r\n", reader=reader) == ([], INVALID_BULK)


def test_too_big_count_strings():
    assert run(b"*" + b"1" * 65535) == ([], None)
    assert run(b"*" + b"1" * 65536) == ([], TOO_BIG_MBULK)
    assert run(b"*1\r\n$" + b"1" * 65535) == ([], None)
    assert run(b"*1\r\n$" + b"1" * 65536) == ([], TOO_BIG_BULK)
    assert run(b"*1\r\n", b"$" + b"1" * 40000, b"1" * 40000) == ([], TOO_BIG_BULK)


def test_huge_announced_count_is_accepted_lazily():
    """Redis accepts up to INT_MAX elements and waits for them; nothing is allocated up front."""
    reader = RequestReader()
    assert run(b"*2000000000\r\n$4\r\nPING\r\n", reader=reader) == ([], None)
    reader = RequestReader()
    reader.feed(b"*100001\r\n")
    reader.feed(b"$1\r\na\r\n" * 100001)
    assert drain(reader) == [[b"a"] * 100001]
    reader = RequestReader()
    assert run(encode(b"X"), b"*1000", b"00\r\n" + b"$1\r\nb\r\n" * 100000, reader=reader) == (
        [[b"X"], [b"b"] * 100000], None,
    )


@pytest.mark.timeout(5)
def test_huge_announced_count_does_not_stall_when_dropped():
    for _ in range(3):
        reader = RequestReader()
        assert run(b"*2000000000\r\n$1\r\na\r\n:1\r\n", reader=reader) == ([], expected_dollar(":"))
        reader = RequestReader()
        assert run(encode(b"PING"), b"*19", b"99999999\r\n$1\r\na\r\n", reader=reader) == ([[b"PING"]], None)
        del reader


# ------------------------------------------------------------------ errors after good commands


def test_error_after_good_commands_is_raised_on_the_next_call():
    reader = RequestReader()
    reader.feed(encode(b"SET", b"a", b"1") + encode(b"GET", b"a") + b"*1\r\n$-1\r\n")
    assert reader.commands() == [[b"SET", b"a", b"1"], [b"GET", b"a"]]
    with pytest.raises(ProtocolError, match="invalid bulk length"):
        reader.commands()


def test_reader_stays_failed():
    reader = RequestReader()
    reader.feed(b"*x\r\n")
    with pytest.raises(ProtocolError):
        reader.commands()
    reader.feed(encode(b"PING"))
    with pytest.raises(ProtocolError, match="invalid multibulk length"):
        reader.commands()


def test_error_text_is_the_whole_reply():
    reader = RequestReader()
    reader.feed(b"*1\r\n:5\r\n")
    with pytest.raises(ProtocolError) as info:
        reader.commands()
    assert str(info.value) == "ERR Protocol error: expected '$', got ':'"


def test_inline_error_after_inline_commands():
    reader = RequestReader()
    reader.feed(b"PING\r\nECHO \"x\r\n")
    assert reader.commands() == [[b"PING"]]
    with pytest.raises(ProtocolError, match="unbalanced quotes"):
        reader.commands()


def test_error_after_hiredis_commands_in_a_later_request():
    stream = encode(b"A") + encode(b"B") + b"*2\r\n$1\r\nC\r\n+x\r\n" + encode(b"D")
    assert run(stream) == ([[b"A"], [b"B"]], expected_dollar("+"))
    assert run(*bytewise(stream)) == ([[b"A"], [b"B"]], expected_dollar("+"))


# ------------------------------------------------------------------ inline


def test_inline_commands():
    assert run(b"PING\r\n") == ([[b"PING"]], None)
    assert run(b"SET k v\n") == ([[b"SET", b"k", b"v"]], None)
    assert run(b"  SET   k\tv  \r\n") == ([[b"SET", b"k", b"v"]], None)


def test_pipelined_inline_pings():
    assert run(b"PING\r\n" * 1000) == ([[b"PING"]] * 1000, None)
    assert run(*bytewise(b"PING\r\n" * 20)) == ([[b"PING"]] * 20, None)


def test_empty_and_blank_lines_are_skipped():
    assert run(b"\r\n\n   \r\n\t\n" + b"PING\n\r\n") == ([[b"PING"]], None)


def test_incomplete_inline_line_waits():
    reader = RequestReader()
    assert run(b"SET k", reader=reader) == ([], None)
    assert run(b" v\r", reader=reader) == ([], None)
    assert run(b"\n", reader=reader) == ([[b"SET", b"k", b"v"]], None)


def test_only_the_last_cr_before_lf_is_dropped():
    assert run(b"ECHO a\r\r\n") == ([[b"ECHO", b"a"]], None)
    assert run(b"ECHO \"a\rb\"\r\n") == ([[b"ECHO", b"a\rb"]], None)


def test_vertical_tab_and_form_feed_do_not_end_an_argument():
    assert run(b"a\x0bb\r\n") == ([[b"a\x0bb"]], None)
    assert run(b"\x0b\x0cPING\x0b\r\n") == ([[b"PING\x0b"]], None)
    assert run(b"ECHO \x0ca\x0cb\r\n") == ([[b"ECHO", b"a\x0cb"]], None)


@pytest.mark.parametrize("line, args", [
    (b'ECHO "a\\x41\\n\\r\\t\\b\\a\\\\\\"\\q\\xZZ"', [b"ECHO", b'aA\n\r\t\x08\x07\\"qxZZ']),
    (b"ECHO 'a\\'b\\n'", [b"ECHO", b"a'b\\n"]),
    (b'ECHO ""', [b"ECHO", b""]),
    (b"ECHO ''", [b"ECHO", b""]),
    (b'ECHO "a"\x0b', [b"ECHO", b"a"]),
    (b'ECHO "\\x4"', [b"ECHO", b"x4"]),
    (b'ECHO "\\X41"', [b"ECHO", b"X41"]),
    (b'ECHO "\\xff\\x00"', [b"ECHO", b"\xff\x00"]),
    (b'ECHO a"b c" d', [b"ECHO", b"ab c", b"d"]),
    (b"ECHO a'b c'", [b"ECHO", b"ab c"]),
    (b'"SET" "k" "v"', [b"SET", b"k", b"v"]),
    (b"ECHO \xc3\xa9", [b"ECHO", b"\xc3\xa9"]),
])
def test_inline_quoting(line, args):
    assert split_inline_args(line) == args
    assert run(line + b"\r\n") == ([args], None)


@pytest.mark.parametrize("line", [
    b'ECHO "foo"bar', b'ECHO "foo', b'ECHO a"b c"d', b"ECHO 'a'b", b'ECHO "a\\"', b'ECHO x"',
    b'ECHO "a""b"', b"ECHO 'abc", b'"', b"'",
])
def test_unbalanced_quotes(line):
    assert split_inline_args(line) is None
    assert run(line + b"\r\nPING\r\n") == ([], UNBALANCED)


def test_too_big_inline_request():
    assert run(b"a" * 65536) == ([], None)
    assert run(b"a" * 65537) == ([], TOO_BIG_INLINE)
    assert run(b"ECHO " + b"a" * 40000, b"a" * 40000) == ([], TOO_BIG_INLINE)


def test_long_inline_line_arriving_whole_is_accepted():
    """Redis checks the 64 KiB limit only while no newline has arrived, per read."""
    assert run(b"ECHO " + b"a" * 30000, b"a" * 30000, b"a" * 10000 + b"\r\n") == (
        [[b"ECHO", b"a" * 70000]], None,
    )


def test_nul_in_inline_line_hides_the_newline():
    assert run(b"PI\x00NG\r\nPING\r\n") == ([], None)
    assert run(b"PI\x00NG\r\n", b"a" * 70000) == ([], TOO_BIG_INLINE)


def test_non_star_reply_types_are_inline_commands():
    """Redis reads any first byte but `*` as inline: hiredis must not read these as frames."""
    stream = b"$4\r\nPING\r\n+PING\r\n:5\r\n~1\r\n>1\r\n%1\r\n_\r\n"
    expected = [[b"$4"], [b"PING"], [b"+PING"], [b":5"], [b"~1"], [b">1"], [b"%1"], [b"_"]]
    assert run(stream) == (expected, None)
    assert run(encode(b"X") + stream) == ([[b"X"]] + expected, None)


def test_partial_resp3_frame_after_a_request_is_an_inline_line():
    assert run(b"*0\r\n~1\r\n") == ([[b"~1"]], None)
    assert run(encode(b"X") + b"$4\r\nPI") == ([[b"X"], [b"$4"]], None)
    assert run(encode(b"X"), b"$4\r\nPI") == ([[b"X"], [b"$4"]], None)
    assert run(encode(b"X") + b"+PI") == ([[b"X"]], None)


def test_resp3_frames_between_requests_are_inline_commands():
    for frame in [b"~1\r\n$4\r\nPING\r\n", b"|1\r\n$1\r\na\r\n$1\r\nb\r\n", b">1\r\n$1\r\na\r\n"]:
        got, error = run(encode(b"X") + frame + encode(b"Y"))
        assert error is None
        assert got == [[b"X"]] + [line.split() for line in frame.split(b"\r\n") if line] + [[b"Y"]]


# ------------------------------------------------------------------ mixed streams


def test_mixed_inline_and_multibulk_in_one_chunk():
    stream = b"PING\r\n" + encode(b"SET", b"k", b"v") + b"GET k\r\n" + encode(b"DEL", b"k") + b"QUIT\n"
    expected = [[b"PING"], [b"SET", b"k", b"v"], [b"GET", b"k"], [b"DEL", b"k"], [b"QUIT"]]
    assert run(stream) == (expected, None)
    assert run(*bytewise(stream)) == (expected, None)


def test_inline_right_after_multibulk_in_the_same_chunk():
    stream = encode(b"A") * 3 + b"B\r\n" + encode(b"C") * 3 + b"D\r\n"
    assert run(stream) == ([[b"A"]] * 3 + [[b"B"]] + [[b"C"]] * 3 + [[b"D"]], None)


def test_inline_line_starting_with_star_is_multibulk():
    assert run(b"PING\r\n*1\r\n$4\r\nECHO\r\nPING\r\n") == ([[b"PING"], [b"ECHO"], [b"PING"]], None)


# ------------------------------------------------------------------ authentication limits


def test_unauthenticated_limits():
    reader = RequestReader()
    reader.authenticated = False
    assert run(b"*10\r\n", reader=reader) == ([], None)
    for stream, error in [
        (b"*11\r\n", UNAUTH_MBULK),
        (b"*1\r\n$16385\r\n", UNAUTH_BULK),
        (encode(*[b"a"] * 11), UNAUTH_MBULK),
        (encode(b"SET", b"k", b"v" * 16385), UNAUTH_BULK),
        (b"*x\r\n", INVALID_MBULK),
        (b"*1\r\n$-5\r\n", INVALID_BULK),
    ]:
        reader = RequestReader()
        reader.authenticated = False
        assert run(stream, reader=reader) == ([], error), stream
    reader = RequestReader()
    reader.authenticated = False
    assert run(b"*1\r\n$16384\r\n", reader=reader) == ([], None)
    reader = RequestReader()
    reader.authenticated = False
    assert run(b"PING " + b"a " * 20 + b"\r\n", reader=reader) == ([[b"PING"] + [b"a"] * 20], None)
    reader = RequestReader()
    reader.authenticated = False
    assert run(b"*-1\r\n*0\r\n" + encode(b"PING"), reader=reader) == ([[b"PING"]], None)


def test_auth_in_a_pipeline_lifts_the_limits_for_what_follows():
    """Redis runs AUTH before it parses the next request; the reader waits for the verdict."""
    big = encode(*[b"PING"] * 11) + encode(b"SET", b"k", b"v" * 20000)
    reader = RequestReader()
    reader.authenticated = False
    reader.feed(encode(b"AUTH", b"pw") + big)
    assert reader.commands() == [[b"AUTH", b"pw"]]
    reader.authenticated = True
    assert drain(reader) == [[b"PING"] * 11, [b"SET", b"k", b"v" * 20000]]

    reader = RequestReader()
    reader.authenticated = False
    reader.feed(encode(b"AUTH", b"wrong") + big)
    assert reader.commands() == [[b"AUTH", b"wrong"]]
    with pytest.raises(ProtocolError, match="unauthenticated multibulk length"):
        reader.commands()


def test_auth_then_partial_big_bulk():
    reader = RequestReader()
    reader.authenticated = False
    reader.feed(encode(b"AUTH", b"pw") + b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$20000\r\n")
    assert reader.commands() == [[b"AUTH", b"pw"]]
    reader.authenticated = True
    assert drain(reader) == []
    reader.feed(b"v" * 20000 + b"\r\n")
    assert drain(reader) == [[b"SET", b"k", b"v" * 20000]]


# ------------------------------------------------------------------ query buffer


def test_buffered_counts_unparsed_bytes():
    reader = RequestReader()
    assert reader.buffered() == 0
    reader.feed(encode(b"PING"))
    drain(reader)
    assert reader.buffered() == 0
    reader.feed(b"*2\r\n$3\r\nSET\r\n$100\r\n" + b"x" * 40)
    drain(reader)
    assert reader.buffered() == 40
    reader.feed(b"x" * 62)
    assert drain(reader) == [[b"SET", b"x" * 100]]
    assert reader.buffered() == 0
    reader.feed(b"SET k")
    drain(reader)
    assert reader.buffered() == 5


def test_query_buffer_limit():
    reader = RequestReader(query_buffer_limit=1000)
    reader.feed(b"*1\r\n$5000\r\n" + b"x" * 900)
    drain(reader)
    assert not reader.query_buffer_exceeded()
    reader.feed(b"x" * 200)
    drain(reader)
    assert reader.query_buffer_exceeded()
    reader.query_buffer_limit = 2000
    assert not reader.query_buffer_exceeded()


def test_query_buffer_limit_on_the_inline_path():
    reader = RequestReader(query_buffer_limit=100)
    reader.feed(b"SET k " + b"v" * 200)
    drain(reader)
    assert reader.query_buffer_exceeded()


# ------------------------------------------------------------------ properties


_FRAGMENTS = [
    encode(b"SET", b"key", b"value"), encode(b"GET", b"k\r\n"), encode(b""), encode(b"A", b"*1\r\n"),
    encode(*[b"x"] * 12), b"*0\r\n", b"*-1\r\n", b"*-3\r\n", b"PING\r\n", b"PING\n", b"\r\n", b"  \n",
    b'ECHO "a b" \'c\'\r\n', b'ECHO "x\\x41"\n', b"ECHO \x0bv\r\n", b"*1\rX$1\rYa\r\n",
    b"*1\r\n$1\r\nbxx", b"$4\r\nPING\r\n", b"+OK\r\n", b"~1\r\n", b":1\r\n", b"|1\r\n", b"=3\r\n",
    b"(12\r\n", b">1\r\n", b"%1\r\n",
]
_BAD_FRAGMENTS = [
    b"*1\r\n:5\r\n", b"*1\r\n+x\r\n", b"*2\r\n$1\r\na\r\n=5\r\ntxt:b\r\n", b"*x\r\n", b"*1\r\n$-1\r\n",
    b'ECHO "a"b\r\n', b"*1\r\n$70000000000\r\n", b"*1\r\n*1\r\n$1\r\na\r\n", b"*2\r\n(12\r\n=5\r\ntxt:a\r\n",
    b"*12\r\n", b"*1\r\n$20000\r\n", b"PI\x00NG\r\n", b"*1\x00\r\n",
]


def _cut(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    return [stream[a:b] for a, b in pairwise(points)]


def test_every_fragment_pair_at_every_truncation_matches_the_model():
    """Exhaustive over pairs: the second fragment cut anywhere, fed with or apart from the first."""
    fragments = _FRAGMENTS + _BAD_FRAGMENTS
    for first in fragments:
        for second in fragments:
            for end in range(len(second) + 1):
                tail = second[:end]
                for authenticated in (True, False):
                    expected = redis_model(first + tail, authenticated=authenticated, max_bulk_len=2**31)
                    for chunks in ((first + tail,), (first, tail)):
                        reader = RequestReader(max_bulk_len=2**31)
                        reader.authenticated = authenticated
                        assert run(*chunks, reader=reader) == expected, (first, tail, authenticated)


@settings(max_examples=400, deadline=None)
@given(
    parts=st.lists(st.sampled_from(_FRAGMENTS + _BAD_FRAGMENTS), max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
    authenticated=st.booleans(),
    drop=st.integers(min_value=0, max_value=8),
)
def test_any_chunking_matches_the_model(parts, cuts, authenticated, drop):
    stream = b"".join(parts)
    stream = stream[:max(0, len(stream) - drop)]  # streams may end inside a request
    expected = redis_model(stream, authenticated=authenticated, max_bulk_len=2**31)
    reader = RequestReader(max_bulk_len=2**31)
    reader.authenticated = authenticated
    assert run(*_cut(stream, cuts), reader=reader) == expected


@settings(max_examples=300, deadline=None)
@given(
    stream=st.binary(max_size=200).map(lambda b: b.replace(b"\x00", b"")),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=6),
)
def test_random_bytes_match_the_model(stream, cuts):
    assert run(*_cut(stream, cuts)) == redis_model(stream)


_ALPHABET = st.sampled_from([b"*", b"$", b"1", b"2", b"0", b"-", b"\r", b"\n", b"\r\n", b"a", b" ", b'"',
                             b"'", b"\\", b"+", b"~", b":", b"x", b"\x00"])


@settings(max_examples=400, deadline=None)
@given(
    stream=st.lists(_ALPHABET, max_size=60).map(b"".join),
    cuts=st.lists(st.integers(min_value=0, max_value=100), max_size=6),
)
def test_protocol_shaped_noise_matches_the_model(stream, cuts):
    assert run(*_cut(stream, cuts)) == redis_model(stream)


@settings(max_examples=200, deadline=None)
@given(argvs=st.lists(st.lists(st.binary(max_size=40), min_size=1, max_size=5), max_size=20),
       cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=10))
def test_well_formed_requests_round_trip(argvs, cuts):
    stream = b"".join(encode(*argv) for argv in argvs)
    assert run(*_cut(stream, cuts)) == (argvs, None)
