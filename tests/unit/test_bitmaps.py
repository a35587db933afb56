"""commands.bitmaps: the whole-integer bit helpers against per-bit reference code, and the handlers
on an in-process Keyspace (stored types, TTLs, dirty counts)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands import bitmaps
from commands.bitmaps import first_bit, get_bitfield, popcount, set_bitfield
from keyspace.db import RawString, Store
from protocol.errors import CommandError

pytestmark = [pytest.mark.timeout(60)]


def _bit(value: bytes, pos: int) -> int:
    return (value[pos >> 3] >> (7 - (pos & 7))) & 1 if pos >> 3 < len(value) else 0


def _ref_get(value: bytes, offset: int, bits: int, signed: bool) -> int:
    number = 0
    for pos in range(offset, offset + bits):
        number = number << 1 | _bit(value, pos)
    if signed and number >> (bits - 1):
        number -= 1 << bits
    return number


def _bit_range(draw, size: int) -> tuple[int, int]:
    first = draw(st.integers(0, size * 8 - 1))
    last = draw(st.integers(first, size * 8 - 1))
    return first, last


@st.composite
def value_and_range(draw):
    value = draw(st.binary(min_size=1, max_size=40))
    return (value, *_bit_range(draw, len(value)))


@settings(max_examples=300, deadline=None)
@given(value_and_range())
def test_popcount_matches_per_bit_count(case):
    value, first, last = case
    assert popcount(value, first, last) == sum(_bit(value, p) for p in range(first, last + 1))


@settings(max_examples=300, deadline=None)
@given(value_and_range(), st.integers(0, 1))
def test_first_bit_matches_per_bit_scan(case, bit):
    value, first, last = case
    expected = next((p for p in range(first, last + 1) if _bit(value, p) == bit), -1)
    assert first_bit(value, bit, first, last) == expected


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=12), st.integers(0, 120), st.integers(1, 64), st.booleans())
def test_get_bitfield_reads_zeros_past_the_end(value, offset, bits, signed):
    assert get_bitfield(value, offset, bits, signed) == _ref_get(value, offset, bits, signed)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=17, max_size=17), st.integers(0, 64), st.integers(1, 64),
       st.integers(-(1 << 64), 1 << 64))
def test_set_bitfield_touches_only_its_bits(value, offset, bits, number):
    buf = bytearray(value)
    set_bitfield(buf, offset, bits, number)
    result = bytes(buf)
    assert get_bitfield(result, offset, bits, False) == number % (1 << bits)
    for pos in list(range(offset)) + list(range(offset + bits, len(value) * 8)):
        assert _bit(result, pos) == _bit(value, pos)


@pytest.mark.parametrize("value, signed, bits, mode, expected", [
    (255, False, 8, bitmaps._WRAP, (False, 255)),
    (256, False, 8, bitmaps._WRAP, (True, 0)),
    (256, False, 8, bitmaps._SAT, (True, 255)),
    (-1, False, 8, bitmaps._WRAP, (True, 255)),
    (-1, False, 8, bitmaps._SAT, (True, 0)),
    (128, True, 8, bitmaps._WRAP, (True, -128)),
    (128, True, 8, bitmaps._SAT, (True, 127)),
    (-129, True, 8, bitmaps._WRAP, (True, 127)),
    (-129, True, 8, bitmaps._SAT, (True, -128)),
    (-(1 << 63) - 1, True, 64, bitmaps._WRAP, (True, (1 << 63) - 1)),
    (1 << 63, True, 64, bitmaps._SAT, (True, (1 << 63) - 1)),
    (9, True, 4, bitmaps._FAIL, (True, -7)),
    (-8, True, 4, bitmaps._FAIL, (False, -8)),
])
def test_overflow_rules(value, signed, bits, mode, expected):
    assert bitmaps._overflow(value, signed, bits, mode) == expected


# -- handlers on a Keyspace ---------------------------------------------------------------------

@pytest.fixture
def db():
    store = Store(1, clock=lambda: 1_000_000)
    store.config = {"proto-max-bulk-len": 1024}
    return store.dbs[0]


def test_setbit_stores_raw_string_and_keeps_ttl(db):
    db.set(b"k", b"a")
    db.expire_at(b"k", 2_000_000)
    assert bitmaps.setbit(db, [b"SETBIT", b"k", b"15", b"1"]) == 0
    value = db.get(b"k")
    assert type(value) is RawString and value == b"a\x01"
    assert db.ttl(b"k") == 2_000_000
    assert db.store.dirty == 1
    assert bitmaps.setbit(db, [b"SETBIT", b"k", b"15", b"1"]) == 1
    assert db.store.dirty == 1  # no change, no write counted


def test_offset_limit_uses_config(db):
    with pytest.raises(CommandError, match="bit offset is not an integer"):
        bitmaps.getbit(db, [b"GETBIT", b"k", b"8192"])
    assert bitmaps.getbit(db, [b"GETBIT", b"k", b"8191"]) == 0
    assert bitmaps._bit_offset(db, b"#2", 8) == 16
    with pytest.raises(CommandError):
        bitmaps._bit_offset(db, b"#2", 0)  # '#' only means something to BITFIELD


def test_bitop_and_bitfield_store_raw_strings(db):
    db.set(b"a", b"\x0f\xf0")
    assert bitmaps.bitop(db, [b"BITOP", b"NOT", b"d", b"a"]) == 2
    assert type(db.get(b"d")) is RawString and db.get(b"d") == b"\xf0\x0f"
    assert bitmaps.bitfield(db, [b"BITFIELD", b"n", b"OVERFLOW", b"FAIL", b"SET", b"u2", b"9",
                                 b"7"]) == [None]
    assert db.get(b"n") == b"\x00\x00" and type(db.get(b"n")) is RawString
