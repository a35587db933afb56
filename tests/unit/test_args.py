"""commands.args: Redis's number parsing, long double arithmetic and glob matching, without a server.

Expected values were taken from redis-server 7.0.15 (INCRBYFLOAT replies, KEYS results).
"""

from __future__ import annotations

import math

import pytest

from commands.args import (
    LLONG_MAX, LLONG_MIN, add_long_double, format_long_double, glob_match, parse_float, parse_int,
    parse_long_double, try_int,
)
from protocol.errors import NOT_A_FLOAT, NOT_AN_INTEGER, CommandError

pytestmark = [pytest.mark.timeout(60)]


# -- integers (string2ll) ---------------------------------------------------------------------------

@pytest.mark.parametrize("raw,expected", [
    (b"0", 0), (b"-1", -1), (b"42", 42), (b"9223372036854775807", LLONG_MAX),
    (b"-9223372036854775808", LLONG_MIN),
])
def test_try_int_accepts_canonical_decimals(raw, expected):
    assert try_int(raw) == expected


@pytest.mark.parametrize("raw", [
    b"", b"+1", b"01", b"-0", b" 1", b"1 ", b"1_000", b"1.0", b"0x10", b"-", b"9223372036854775808",
    b"-9223372036854775809", b"123456789012345678901", b"\xd9\xa1", b"1\x00",
])
def test_try_int_rejects_the_rest(raw):
    assert try_int(raw) is None


def test_parse_int_error_texts():
    with pytest.raises(CommandError) as exc:
        parse_int(b"x")
    assert exc.value.message == NOT_AN_INTEGER
    with pytest.raises(CommandError) as exc:
        parse_int(b"x", "ERR invalid DB index")
    assert exc.value.message == "ERR invalid DB index"


# -- doubles (strtod) --------------------------------------------------------------------------------

@pytest.mark.parametrize("raw,expected", [
    (b"1.5", 1.5), (b"-0", -0.0), (b"inf", math.inf), (b"-inf", -math.inf), (b"infinity", math.inf),
    (b"1e3", 1000.0), (b"0x10", 16.0), (b"-0x1.8p1", -3.0), (b".5", 0.5), (b"+.5", 0.5),
    (b"1e-310", 1e-310), (b"0e-500", 0.0), (b"0.000", 0.0),
])
def test_parse_float(raw, expected):
    assert parse_float(raw) == expected


@pytest.mark.parametrize("raw", [
    b"", b"nan", b" 1", b"1 ", b"1_0", b"abc", b"1e", b"0x", b"0x10 ", b"1\xa0", b"1e999", b"-1e999",
    b"1e-400", b"0x1p-1080", b"0x1p99999", b"nan(1)", b"infinit",
])
def test_parse_float_rejects(raw):
    with pytest.raises(CommandError) as exc:
        parse_float(raw)
    assert exc.value.message == NOT_A_FLOAT


# -- long double (INCRBYFLOAT) -----------------------------------------------------------------------

def incrbyfloat(stored: bytes, increment: bytes) -> bytes:
    return format_long_double(add_long_double(parse_long_double(stored), parse_long_double(increment)))


@pytest.mark.parametrize("stored,increment,expected", [
    (b"10.5", b"0.1", b"10.6"), (b"1.1", b"2.2", b"3.3"), (b"0.1", b"0.2", b"0.3"),
    (b"3.0", b"0.0000000000000000001", b"3"), (b"5.0e3", b"2.0e2", b"5200"), (b"-0.0", b"0", b"0"),
    (b"1", b"0x1.8p1", b"4"), (b"17179869184", b"1.5", b"17179869185.5"), (b"100", b"-0.001", b"99.999"),
    # precision only a 64-bit mantissa has (a double would print 1 and 0.33333333333333331)
    (b"1", b"1e-17", b"1.00000000000000001"), (b"0.3333333333333333333333", b"0", b"0.33333333333333333"),
    (b"9007199254740993", b"0", b"9007199254740993"),
    # hex digits beyond a double's 53 bits still count
    (b"0", b"0x1.fffffffffffffffffp0", b"2"),
])
def test_incrbyfloat_arithmetic(stored, increment, expected):
    assert incrbyfloat(stored, increment) == expected


def test_format_long_double_beyond_str_digit_limit():
    """1e4931 prints 4932 digits: more than int->str allows by default (4300)."""
    text = incrbyfloat(b"1", b"1e4931")
    assert len(text) == 4932
    assert text.startswith(b"1000000000000000000006018949387963891")
    assert text.endswith(b"188662272")  # the 1 added is below the 64-bit mantissa


@pytest.mark.parametrize("raw", [
    b"", b" 1", b"1 ", b"0x10 ", b"1_0", b"nan", b"abc", b"1e", b"0x", b"0x1p", b"1,5", b"1\x00",
    b"1e4933", b"-1.2e4932", b"0x1p99999", b"-0x1p99999", b"1e999999999", b"1" * 5120,
    b"1e-5000", b"1e-4951", b"0x1p-16446", b"1e-999999999",
])
def test_parse_long_double_rejects(raw):
    with pytest.raises(CommandError) as exc:
        parse_long_double(raw)
    assert exc.value.message == NOT_A_FLOAT


@pytest.mark.parametrize("raw", [b"0e-999999999", b"0x0p99999999", b"1e-4940", b"0x1p-16445",
                                 b"1.1e4932", b"infinity", b"-INF", b"+.5e+1", b"5."])
def test_parse_long_double_accepts(raw):
    parse_long_double(raw)


def test_infinite_sums_stay_floats():
    assert add_long_double(parse_long_double(b"1"), parse_long_double(b"inf")) == math.inf
    big = parse_long_double(b"1.1e4932")
    assert add_long_double(big, big) == math.inf


# -- glob patterns (stringmatchlen) -------------------------------------------------------------------

@pytest.mark.parametrize("pattern,text,expected", [
    (b"*", b"anything", True), (b"h?llo", b"hello", True), (b"h?llo", b"hllo", False),
    (b"h*llo", b"heeeello", True), (b"h*llo", b"hllo", True), (b"h[ae]llo", b"hallo", True),
    (b"h[ae]llo", b"hillo", False), (b"h[^e]llo", b"hallo", True), (b"h[^e]llo", b"hello", False),
    (b"h[a-b]llo", b"hbllo", True), (b"h[b-a]llo", b"hallo", True), (b"h\\*llo", b"h*llo", True),
    (b"h\\*llo", b"hello", False), (b"[", b"[", False), (b"[^", b"x", True), (b"[a", b"a", True),
    (b"a[", b"a", False), (b"[\\]]", b"]", True), (b"[a-]", b"]", True), (b"\\", b"\\", True),
    (b"a*", b"a", True), (b"*a*", b"a", True), (b"a*b*c", b"aXbYc", True), (b"a*b*c", b"acb", False),
    # an empty text matches only an empty pattern, as in Redis (KEYS/SCAN special-case "*" first)
    (b"", b"", True), (b"*", b"", False), (b"**", b"", False), (b"?", b"", False), (b"", b"a", False),
])
def test_glob_match(pattern, text, expected):
    assert glob_match(pattern, text) is expected


def test_glob_match_nocase():
    assert glob_match(b"H[A-C]LLO", b"hbllo", nocase=True)
    assert not glob_match(b"H[A-C]LLO", b"hbllo")


def test_glob_match_nocase_folds_range_ends_after_ordering_them():
    """Redis swaps a reversed range first, then lowercases both ends: [Z-a] becomes z..a, empty."""
    assert not glob_match(b"[Z-a]", b"b", nocase=True)
    assert glob_match(b"[Z-a]", b"_")
    assert glob_match(b"[a-c]", b"B", nocase=True)


def test_glob_match_many_stars_stay_fast():
    """Recursion would be exponential here (and overflow the stack for thousands of stars)."""
    assert not glob_match(b"*a" * 30 + b"b", b"a" * 200)
    assert glob_match(b"a*" * 3000 + b"a", b"a" * 6000)
    assert not glob_match(b"a*" * 3000 + b"b", b"a" * 6000)
