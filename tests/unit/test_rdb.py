"""The RDB codec (persistence/rdb.py), CRC-64 and LZF, without a server.

Round trips go through `dump` and `load`. The encodings `dump` never writes (listpack, intset,
ziplist, zipmap, quicklists, old scores) are built here by small independent encoders that
follow listpack.c / ziplist.c / zipmap.c / intset.c, and one dump written by a real
redis-server 7.0.15 is decoded from its bytes.
"""

from __future__ import annotations

import math
import os
import random
import stat
import struct
from collections import deque

import pytest

from persistence import rdb
from persistence.crc64 import CHECK_VALUE, _crc_bytewise, crc64, crc64_combine
from persistence.lzf import LzfError, compress, decompress
from persistence.rdb import (
    RdbError,
    dump,
    is_rdb,
    load,
    load_file,
    parse_prefix,
    write_file,
)

FAR_MS = 4102444800000  # 2100-01-01


class ZSetLike:
    """The encoder's view of a sorted set: anything with `scores`."""

    def __init__(self, scores: dict[bytes, float]) -> None:
        self.scores = scores

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ZSetLike) and _same_scores(self.scores, other.scores)

    def __repr__(self) -> str:
        return f"ZSetLike({self.scores!r})"


def _same_scores(a: dict[bytes, float], b: dict[bytes, float]) -> bool:
    return a.keys() == b.keys() and all(
        a[m] == b[m] and math.copysign(1, a[m]) == math.copysign(1, b[m]) for m in a)


def make_zset(pairs: list[tuple[bytes, float]]) -> ZSetLike:
    return ZSetLike(dict(pairs))


def decode(data: bytes, **kwargs) -> dict[tuple[int, bytes], tuple[object, int | None]]:
    out: dict[tuple[int, bytes], tuple[object, int | None]] = {}

    def on_key(db: int, key: bytes, value: object, expire: int | None) -> None:
        assert (db, key) not in out
        out[(db, key)] = (value, expire)

    load(data, on_key=on_key, make_zset=make_zset, **kwargs)
    return out


def roundtrip(dbs: dict[int, dict[bytes, object]], expires: dict[tuple[int, bytes], int] | None = None):
    expires = expires or {}
    data = dump([(db, [(k, v, expires.get((db, k))) for k, v in keys.items()])
                 for db, keys in dbs.items()])
    return data, decode(data)


def expected(dbs, expires=None):
    expires = expires or {}
    return {(db, k): (v, expires.get((db, k))) for db, keys in dbs.items() for k, v in keys.items()}


# ---- small independent encoders for what dump() does not write -------------------------------

def rdb_len(n: int) -> bytes:
    if n < 64:
        return bytes([n])
    if n < 16384:
        return bytes([0x40 | (n >> 8), n & 0xFF])
    return b"\x80" + n.to_bytes(4, "big")


def rdb_str(s: bytes) -> bytes:
    return rdb_len(len(s)) + s


def rdb_file(body: bytes, version: int = 10, checksum: bool = True) -> bytes:
    data = b"REDIS%04d" % version + body + b"\xff"
    if version >= 5:
        data += (crc64(data) if checksum else 0).to_bytes(8, "little")
    return data


def listpack(items: list[bytes | int]) -> bytes:
    body = b""
    for item in items:
        if isinstance(item, int):
            if 0 <= item <= 127:
                enc = bytes([item])
            elif -4096 <= item <= 4095:
                u = item & 0x1FFF
                enc = bytes([0xC0 | (u >> 8), u & 0xFF])
            elif -(1 << 15) <= item < 1 << 15:
                enc = b"\xf1" + item.to_bytes(2, "little", signed=True)
            elif -(1 << 23) <= item < 1 << 23:
                enc = b"\xf2" + item.to_bytes(3, "little", signed=True)
            elif -(1 << 31) <= item < 1 << 31:
                enc = b"\xf3" + item.to_bytes(4, "little", signed=True)
            else:
                enc = b"\xf4" + item.to_bytes(8, "little", signed=True)
        else:
            n = len(item)
            if n < 64:
                enc = bytes([0x80 | n]) + item
            elif n < 4096:
                enc = bytes([0xE0 | (n >> 8), n & 0xFF]) + item
            else:
                enc = b"\xf0" + n.to_bytes(4, "little") + item
        size = len(enc)
        groups = []
        while True:
            groups.append(size & 127)
            size >>= 7
            if not size:
                break
        backlen = bytes([groups[-1]] + [g | 128 for g in reversed(groups[:-1])])
        body += enc + backlen
    total = 6 + len(body) + 1
    return total.to_bytes(4, "little") + min(len(items), 65535).to_bytes(2, "little") + body + b"\xff"


def ziplist(items: list[bytes | int]) -> bytes:
    body = b""
    prev = 0
    tail = 10
    for item in items:
        head = bytes([prev]) if prev < 254 else b"\xfe" + prev.to_bytes(4, "little")
        if isinstance(item, int):
            if 0 <= item <= 12:
                enc = bytes([0xF1 + item])
            elif -128 <= item <= 127:
                enc = b"\xfe" + item.to_bytes(1, "little", signed=True)
            elif -(1 << 15) <= item < 1 << 15:
                enc = b"\xc0" + item.to_bytes(2, "little", signed=True)
            elif -(1 << 23) <= item < 1 << 23:
                enc = b"\xf0" + item.to_bytes(3, "little", signed=True)
            elif -(1 << 31) <= item < 1 << 31:
                enc = b"\xd0" + item.to_bytes(4, "little", signed=True)
            else:
                enc = b"\xe0" + item.to_bytes(8, "little", signed=True)
        else:
            n = len(item)
            if n < 64:
                enc = bytes([n]) + item
            elif n < 16384:
                enc = bytes([0x40 | (n >> 8), n & 0xFF]) + item
            else:
                enc = b"\x80" + n.to_bytes(4, "big") + item
        entry = head + enc
        tail = 10 + len(body)
        body += entry
        prev = len(entry)
    total = 10 + len(body) + 1
    return (total.to_bytes(4, "little") + tail.to_bytes(4, "little")
            + min(len(items), 65535).to_bytes(2, "little") + body + b"\xff")


def zipmap(pairs: list[tuple[bytes, bytes]]) -> bytes:
    def zlen(n: int) -> bytes:
        return bytes([n]) if n < 254 else b"\xfe" + n.to_bytes(4, "little")

    body = bytes([min(len(pairs), 254)])
    for field, value in pairs:
        body += zlen(len(field)) + field + zlen(len(value)) + b"\x02" + value + b"??"
    return body + b"\xff"


def intset(values: list[int], width: int) -> bytes:
    code = {2: "h", 4: "i", 8: "q"}[width]
    return struct.pack(f"<II{len(values)}{code}", width, len(values), *sorted(values))


def one_key(kind: int, key: bytes, payload: bytes, version: int = 10) -> dict:
    return decode(rdb_file(bytes([kind]) + rdb_str(key) + payload, version))


# ---- CRC-64 and LZF --------------------------------------------------------------------------

def test_crc64_check_value():
    assert crc64(b"123456789") == CHECK_VALUE == 0xE9C6D914C4B8D9CA
    assert crc64(b"") == 0


@pytest.mark.parametrize("size", [1, 1000, 32 * 1024 - 1, 32 * 1024, 70_001, 300_000])
def test_crc64_lanes_match_the_table_loop(size):
    data = random.Random(size).randbytes(size)
    assert crc64(data) == _crc_bytewise(data, 0)
    assert crc64(memoryview(data), 0xDEADBEEF) == _crc_bytewise(data, 0xDEADBEEF)


def test_crc64_combine():
    a, b = os.urandom(5000), os.urandom(40_000)
    assert crc64_combine(crc64(a), crc64(b), len(b)) == crc64(a + b)
    assert crc64(b, crc64(a)) == crc64(a + b)


def test_lzf_known_vectors():
    # A literal run "abc" (control 2) and a back reference of 9 bytes at distance 3 (111 00000,
    # extra length 0, offset 2) that overlaps its own output.
    assert decompress(b"\x02abc\xe0\x00\x02", 12) == b"abcabcabcabc"
    # A short back reference: length 1+2, distance 1: "aaaa".
    assert decompress(b"\x00a\x20\x00", 4) == b"aaaa"
    # "ab" * 30 as redis-server 7.0.15 compressed it in a dump (rdbcompression yes).
    assert decompress(bytes.fromhex("02616261e02e01016162"), 60) == b"ab" * 30


@pytest.mark.parametrize("bad, size, message", [
    (b"\x05ab", 6, "overruns"),
    (b"\x00a\x20\x05", 4, "before the start"),
    (b"\x00a\xe0", 20, "ends inside"),
    (b"\x02abc", 4, "expected 4"),
    (b"\x02abc\xe0\x00\x02", 8, "exceeds"),
])
def test_lzf_rejects_malformed(bad, size, message):
    with pytest.raises(LzfError, match=message):
        decompress(bad, size)


@pytest.mark.parametrize("data", [
    b"", b"a", b"abcabcabcabcabcabc", b"x" * 10_000, bytes(range(256)) * 20,
    random.Random(7).randbytes(3000), b"hello world " * 500 + random.Random(8).randbytes(100),
])
def test_lzf_compress_roundtrip(data):
    assert decompress(compress(data), len(data)) == data


# ---- round trips -----------------------------------------------------------------------------

def test_roundtrip_every_type_with_expiries_and_several_dbs():
    dbs = {
        0: {
            b"str": b"hello",
            b"list": deque([b"a", b"", b"1", b"b" * 100]),
            b"set": {b"x", b"y", b"7", b""},
            b"hash": {b"f": b"v", b"n": b"42", b"": b"empty"},
            b"zset": ZSetLike({b"a": 1.5, b"b": -2.0, b"c": math.inf, b"d": -math.inf,
                               b"e": -0.0, b"f": 5e-324, b"g": 1.7976931348623157e308}),
        },
        3: {b"other": b"db3"},
        15: {b"last": deque([b"x"])},
    }
    expires = {(0, b"str"): FAR_MS, (0, b"zset"): 1, (15, b"last"): FAR_MS + 1}
    data, got = roundtrip(dbs, expires)
    assert got == expected(dbs, expires)
    assert data.startswith(b"REDIS0010")
    assert int.from_bytes(data[-8:], "little") == crc64(data[:-8])


def test_dump_skips_empty_dbs_and_empty_collections():
    dbs = {0: {}, 1: {b"l": deque(), b"s": set(), b"h": {}, b"z": ZSetLike({}), b"k": b""},
           2: {b"only-empty": set()}}
    data, got = roundtrip(dbs, {(1, b"s"): FAR_MS})
    assert got == {(1, b"k"): (b"", None)}
    assert b"\xfe\x00" not in data and b"\xfe\x02" not in data
    # RESIZEDB counts only the key written: db 1 has one key and no expiry.
    assert b"\xfe\x01\xfb\x01\x00" in data


@pytest.mark.parametrize("value, encoding", [
    (b"0", b"\xc0\x00"), (b"127", b"\xc0\x7f"), (b"-128", b"\xc0\x80"),
    (b"128", b"\xc1\x80\x00"), (b"-129", b"\xc1\x7f\xff"), (b"32767", b"\xc1\xff\x7f"),
    (b"-32768", b"\xc1\x00\x80"), (b"32768", b"\xc2\x00\x80\x00\x00"),
    (b"2147483647", b"\xc2\xff\xff\xff\x7f"), (b"-2147483648", b"\xc2\x00\x00\x00\x80"),
    (b"2147483648", b"\x0a2147483648"), (b"-2147483649", b"\x0b-2147483649"),
    (b"007", b"\x03007"), (b"-0", b"\x02-0"), (b"+1", b"\x02+1"), (b" 1", b"\x02 1"),
    (b"1.5", b"\x031.5"), (b"99999999999", b"\x0b99999999999"), (b"-", b"\x01-"),
])
def test_integer_string_encodings_at_the_boundaries(value, encoding):
    data, got = roundtrip({0: {b"k": value}})
    assert got == {(0, b"k"): (value, None)}
    assert b"\x00\x01k" + encoding + b"\xff" in data


def test_integer_encoded_keys_and_members():
    dbs = {0: {b"12": b"v", b"-5": deque([b"1", b"300", b"70000"]), b"7": {b"1", b"-1"},
               b"8": {b"1": b"2"}, b"9": ZSetLike({b"100": 1.0})}}
    assert roundtrip(dbs)[1] == expected(dbs)


def test_big_values_use_every_length_encoding():
    dbs = {0: {
        b"s63": b"a" * 63, b"s64": b"b" * 64, b"s16383": b"c" * 16383, b"s16384": b"d" * 16384,
        b"big": os.urandom(1 << 20),
        b"list": deque(b"%d" % i for i in range(100_000)),
        b"set": {b"m%d" % i for i in range(20_000)},
        b"hash": {b"f%d" % i: b"v" * (i % 50) for i in range(20_000)},
        b"zset": ZSetLike({b"z%d" % i: i / 7 for i in range(20_000)}),
    }}
    assert roundtrip(dbs)[1] == expected(dbs)


def test_binary_keys_and_values():
    keys = {bytes([b]) * 3 + b"\x00\xff": bytes([255 - b]) * 70 for b in range(256)}
    keys[b""] = b"empty key"
    keys[b"\r\n\x00"] = b""
    dbs = {0: keys, 1: {b"\x00": {b"\x00": b"\xff", b"\xfe": b""}}}
    assert roundtrip(dbs)[1] == expected(dbs)


def test_value_subclasses_are_encoded_as_their_base_type():
    class Stored(bytes):
        pass

    class Queue(deque):
        pass

    dbs = {0: {b"s": Stored(b"raw"), b"n": Stored(b"12"), b"l": Queue([b"a"])}}
    got = roundtrip(dbs)[1]
    assert got == {(0, b"s"): (b"raw", None), (0, b"n"): (b"12", None), (0, b"l"): (deque([b"a"]), None)}


def test_unknown_value_type_is_refused_by_the_encoder():
    with pytest.raises(TypeError, match="cannot encode a list value"):
        dump([(0, [(b"k", [b"a"], None)])])


def test_lzf_compressed_dump_roundtrip():
    dbs = {0: {b"long": b"abc" * 1000, b"random": os.urandom(500), b"key" * 20: b"short",
               b"l": deque([b"x" * 100, b"y"]), b"h": {b"f" * 30: b"v" * 30}}}
    data = dump([(0, [(k, v, None) for k, v in dbs[0].items()])], compress=True)
    assert b"\xc3" in data and len(data) < 3000
    assert decode(data) == expected(dbs)


def test_aux_fields_and_functions():
    seen_aux: dict[bytes, bytes] = {}
    functions: list[bytes] = []
    code = b"#!lua name=lib\nredis.register_function('f', function() return 1 end)"
    data = dump([(0, [(b"k", b"v", None)])], aux={b"repl-id": b"ab" * 20, b"used-mem": b"1234"},
                functions=[code], ctime=1700000000)
    load(data, on_key=lambda *a: None, on_aux=seen_aux.__setitem__, on_function=functions.append)
    assert seen_aux == {b"redis-ver": b"7.0.15", b"redis-bits": b"64", b"ctime": b"1700000000",
                        b"used-mem": b"1234", b"aof-base": b"0", b"repl-id": b"ab" * 20}
    assert functions == [code]


def test_progress_reports_bytes_and_keys(monkeypatch):
    monkeypatch.setattr(rdb, "PROGRESS_EVERY", 10)
    data = dump([(0, [(b"k%d" % i, b"v", None) for i in range(25)])])
    calls: list[tuple[int, int]] = []
    load(data, on_key=lambda *a: None, progress=lambda done, keys: calls.append((done, keys)))
    assert [keys for _, keys in calls] == [10, 20, 25]
    assert calls[0][0] < calls[1][0] < calls[2][0] == len(data)


def test_write_file_and_load_file(tmp_path):
    path = tmp_path / "dump.rdb"
    path.write_bytes(b"old contents")
    size = write_file(path, [(0, [(b"k", b"v", FAR_MS)])])
    assert path.stat().st_size == size
    assert sorted(os.listdir(tmp_path)) == ["dump.rdb"]  # replaced; no temp file left behind
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    got = {}
    assert load_file(path, on_key=lambda db, k, v, e: got.update({k: (v, e)})) == size
    assert got == {b"k": (b"v", FAR_MS)}
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(RdbError, match=rf"dump\.rdb: .*checksum is missing .* at offset {size - 8}$"):
        load_file(path, on_key=lambda *a: None)


def test_is_rdb_and_parse_prefix_of_an_aof_with_preamble():
    data = dump([(0, [(b"k", b"v", None)])])
    tail = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n"
    assert is_rdb(data + tail) and is_rdb(memoryview(data)[:5])
    assert not is_rdb(tail) and not is_rdb(b"")
    assert parse_prefix(data + tail) == len(data)
    assert load(data + tail, on_key=lambda *a: None) == len(data)


# ---- corruption ------------------------------------------------------------------------------

def _sample_dump() -> bytes:
    return dump([
        (0, [(b"s", b"value", FAR_MS), (b"n", b"1234", None), (b"l", deque([b"a", b"bb"]), None),
             (b"h", {b"f": b"v"}, None), (b"z", ZSetLike({b"m": 2.5}), FAR_MS)]),
        (2, [(b"set", {b"1", b"x"}, None)]),
    ], ctime=1700000000)


def test_every_flipped_byte_is_detected():
    data = _sample_dump()
    for offset in range(len(data)):
        corrupt = bytearray(data)
        corrupt[offset] ^= 0x5A
        with pytest.raises(RdbError) as info:
            decode(bytes(corrupt))
        assert info.value.offset is not None and "at offset" in str(info.value), offset


def test_flipped_byte_in_a_payload_names_the_checksum_offset():
    data = bytearray(_sample_dump())
    where = data.index(b"value")
    data[where] ^= 1
    with pytest.raises(RdbError, match=rf"wrong RDB checksum.* at offset {len(data) - 8}$"):
        decode(bytes(data))


def test_every_truncation_is_detected():
    data = _sample_dump()
    for cut in range(len(data)):
        with pytest.raises(RdbError) as info:
            decode(data[:cut])
        assert info.value.offset is not None, cut
        assert info.value.offset <= cut


def test_zero_checksum_skips_verification():
    data = bytearray(_sample_dump())
    data[-8:] = bytes(8)
    data[data.index(b"value")] ^= 1
    assert decode(bytes(data))[(0, b"s")] == (b"walue", FAR_MS)


def test_checksum_verification_can_be_turned_off():
    data = bytearray(_sample_dump())
    data[data.index(b"value")] ^= 1
    assert decode(bytes(data), verify_checksum=False)[(0, b"s")][0] == b"walue"


@pytest.mark.parametrize("data, message", [
    (b"", "wrong signature"), (b"RUBBISH00", "wrong signature"),
    (b"REDIS00x9\xff", "bad RDB version"), (b"REDIS0011\xff" + bytes(8), "version 11"),
    (b"REDIS0000\xff", "version 0"),
])
def test_bad_headers(data, message):
    with pytest.raises(RdbError, match=message):
        decode(data)


@pytest.mark.parametrize("body, message", [
    (b"\x0f\x01k\x00", r"stream values are not supported \(key b'k'\) at offset 9"),
    (b"\x13\x01k\x00", "stream values are not supported"),
    (b"\x07\x01k\x00", "module values are not supported"),
    (b"\xf7\x00", "module auxiliary data is not supported at offset 9"),
    (b"\xf6\x00", "pre-release function format"),
    (b"\x08\x01k", "unknown value type 8"),
    (b"\x00\x01k\xc4", "unknown string encoding 4"),
    (b"\x00\x01k\xc3\x05\x03\x02abc", "bad LZF string"),
    (b"\x02\x01k\x02\x01a\x01a", "duplicate set member"),
    (b"\x04\x01k\x02\x01a\x01x\x01a\x01y", "duplicate hash field"),
    (b"\x05\x01k\x01\x01a" + struct.pack("<d", math.nan), "NaN score"),
    (b"\x03\x01k\x01\x01a\xfd", "NaN score"),
    (b"\x03\x01k\x01\x01a\x03abc", "bad zset score"),
    (b"\x12\x01k\x01\x03\x01x", "unknown container 3"),
    (b"\x10" + rdb_str(b"k") + rdb_str(b"\x07\x00\x00\x00\x00\x00\xfe"), "corrupt listpack"),
    (b"\x10" + rdb_str(b"k") + rdb_str(listpack([b"a"])), "odd number"),
    (b"\x0b" + rdb_str(b"k") + rdb_str(struct.pack("<IIh", 3, 1, 5)), "corrupt intset"),
])
def test_malformed_or_unsupported_content(body, message):
    with pytest.raises(RdbError, match=message):
        decode(rdb_file(body))


def test_an_index_error_in_a_callback_is_not_reported_as_truncation():
    data = dump([(0, [(b"k", b"v", None)])])

    def on_key(*args):
        raise IndexError("bug in the caller")

    with pytest.raises(IndexError, match="bug in the caller"):
        load(data, on_key=on_key)


# ---- encodings written by Redis but not by dump() --------------------------------------------

# SAVE on redis-server 7.0.15 after: FUNCTION LOAD "#!lua name=lib ..." ; SET str hello ;
# SET int -300 ; SET lzf <"ab" * 30> ; RPUSH list a 1 -70000 <"x" * 20> ; SADD intset 1 -2 40000 ;
# HSET hash f v n 5000 ; ZADD zset 1.5 a -2 b 10 c ; PEXPIREAT str 4102444800000 ; SELECT 2 ;
# SET k v. It holds AUX int strings, FUNCTION2, LZF, HASH_LISTPACK, an LZF-compressed
# QUICKLIST_2 node, SET_INTSET and ZSET_LISTPACK.
REAL_DUMP = bytes.fromhex(
    "524544495330303130fa0972656469732d76657206372e302e3135fa0a72656469732d62697473c040fa0563"
    "74696d65c2b407056bfa08757365642d6d656dc200be1100fa08616f662d62617365c000f5404423216c7561"
    "206e616d653d6c69620a72656469732e72656769737465725f66756e6374696f6e282766272c2066756e6374"
    "696f6e28292072657475726e203120656e6429fe00fb0701fc00d8c32cbb0300000003737472056865"
    "6c6c6f10046861736814140000000400816602817602816e02f1881303ff00036c7a66c30a3c02616261e02e"
    "010161620b06696e74736574140400000003000000feffffff01000000409c000012046c6973740102c31927"
    "112700000004008161020101f290eefe049478e00a000115ff0003696e74c1d4fe11047a7365741a1a000000"
    "0600816202dffe0281610283312e35048163020a01fffe02fb010000016b0176ff32d918258bf113ff")


def test_decode_a_dump_written_by_redis_7_0_15():
    aux: dict[bytes, bytes] = {}
    functions: list[bytes] = []
    got = decode(REAL_DUMP, on_aux=aux.__setitem__, on_function=functions.append)
    assert got == {
        (0, b"str"): (b"hello", 4102444800000),
        (0, b"int"): (b"-300", None),
        (0, b"lzf"): (b"ab" * 30, None),
        (0, b"list"): (deque([b"a", b"1", b"-70000", b"x" * 20]), None),
        (0, b"intset"): ({b"1", b"-2", b"40000"}, None),
        (0, b"hash"): ({b"f": b"v", b"n": b"5000"}, None),
        (0, b"zset"): (ZSetLike({b"a": 1.5, b"b": -2.0, b"c": 10.0}), None),
        (2, b"k"): (b"v", None),
    }
    assert aux[b"redis-ver"] == b"7.0.15" and aux[b"redis-bits"] == b"64"
    assert functions and functions[0].startswith(b"#!lua name=lib\n")
    assert parse_prefix(REAL_DUMP + b"tail") == len(REAL_DUMP)


LISTPACK_INTS = [0, 127, 128, -1, 4095, -4096, 4096, -4097, 32767, -32768, 32768, -32769,
                 (1 << 23) - 1, -(1 << 23), 1 << 23, (1 << 31) - 1, -(1 << 31), 1 << 31, -(1 << 63),
                 (1 << 63) - 1]
LISTPACK_STRINGS = [b"", b"a", b"x" * 63, b"y" * 64, b"z" * 4095, b"w" * 4096, b"v" * 20000]


def test_hash_listpack_with_every_entry_encoding():
    items: list[bytes | int] = []
    for index, item in enumerate(LISTPACK_INTS + LISTPACK_STRINGS):
        items += [b"f%d" % index, item]
    got = one_key(16, b"h", rdb_str(listpack(items)))
    assert got == {(0, b"h"): ({b"f%d" % i: (b"%d" % v if isinstance(v, int) else v)
                                for i, v in enumerate(LISTPACK_INTS + LISTPACK_STRINGS)}, None)}


def test_zset_listpack_scores_as_ints_and_strings():
    items: list[bytes | int] = [b"a", 1, b"b", b"1.5", b"c", b"-inf", b"d", -70000, 12, b"inf"]
    got = one_key(17, b"z", rdb_str(listpack(items)))
    assert got == {(0, b"z"): (ZSetLike({b"a": 1.0, b"b": 1.5, b"c": -math.inf, b"d": -70000.0,
                                         b"12": math.inf}), None)}


def test_quicklist_2_with_plain_and_packed_nodes():
    payload = (rdb_len(3) + rdb_len(2) + rdb_str(listpack([b"a", 5, b"b"]))
               + rdb_len(1) + rdb_str(b"P" * 100) + rdb_len(2) + rdb_str(listpack([-3])))
    got = one_key(18, b"l", payload)
    assert got == {(0, b"l"): (deque([b"a", b"5", b"b", b"P" * 100, b"-3"]), None)}


@pytest.mark.parametrize("width, values", [(2, [1, -2, 32767, -32768]), (4, [70000, -1]),
                                           (8, [1 << 40, -(1 << 63), 0])])
def test_intset_widths(width, values):
    got = one_key(11, b"s", rdb_str(intset(values, width)))
    assert got == {(0, b"s"): ({b"%d" % v for v in values}, None)}


ZIPLIST_ITEMS: list[bytes | int] = [0, 12, 13, -1, 127, -128, 128, 32767, -32769, (1 << 23) - 1,
                                    1 << 23, -(1 << 31), 1 << 31, b"", b"abc", b"q" * 300,
                                    b"r" * 20000]


def test_ziplist_known_vector_from_ziplist_c():
    # The example in ziplist.c: a ziplist holding the integers 2 and 5.
    blob = bytes.fromhex("0f0000000c0000000200" "00f3" "02f6" "ff")
    assert one_key(10, b"l", rdb_str(blob)) == {(0, b"l"): (deque([b"2", b"5"]), None)}


def test_list_ziplist_and_quicklist_1():
    expected_items = deque(b"%d" % v if isinstance(v, int) else v for v in ZIPLIST_ITEMS)
    assert one_key(10, b"l", rdb_str(ziplist(ZIPLIST_ITEMS)), version=7) == {
        (0, b"l"): (expected_items, None)}
    nodes = rdb_len(2) + rdb_str(ziplist(ZIPLIST_ITEMS[:5])) + rdb_str(ziplist(ZIPLIST_ITEMS[5:]))
    assert one_key(14, b"q", nodes, version=9) == {(0, b"q"): (expected_items, None)}


def test_hash_and_zset_ziplists():
    hash_items: list[bytes | int] = [b"a", 1, b"b", b"text", 7, b"x" * 300]
    assert one_key(13, b"h", rdb_str(ziplist(hash_items)), version=9) == {
        (0, b"h"): ({b"a": b"1", b"b": b"text", b"7": b"x" * 300}, None)}
    zset_items: list[bytes | int] = [b"a", 3, b"b", b"2.5", b"c", b"inf"]
    assert one_key(12, b"z", rdb_str(ziplist(zset_items)), version=9) == {
        (0, b"z"): (ZSetLike({b"a": 3.0, b"b": 2.5, b"c": math.inf}), None)}


def test_hash_zipmap():
    pairs = [(b"name", b"ann"), (b"", b"empty"), (b"long", b"L" * 300)]
    assert one_key(9, b"h", rdb_str(zipmap(pairs)), version=4) == {(0, b"h"): (dict(pairs), None)}


def test_old_zset_with_string_scores():
    payload = rdb_len(3) + rdb_str(b"a") + b"\x031.5" + rdb_str(b"b") + b"\xfe" + rdb_str(b"c") + b"\xff"
    assert one_key(3, b"z", payload) == {
        (0, b"z"): (ZSetLike({b"a": 1.5, b"b": math.inf, b"c": -math.inf}), None)}


def test_expiretime_seconds_idle_freq_and_resizedb():
    body = (b"\xfe\x05\xfb\x02\x01"
            + b"\xfd" + struct.pack("<i", 2_000_000_000) + b"\xf8" + rdb_len(1000) + b"\x00"
            + rdb_str(b"a") + rdb_str(b"1")
            + b"\xf9\x07\x00" + rdb_str(b"b") + rdb_str(b"2"))
    assert decode(rdb_file(body)) == {(5, b"a"): (b"1", 2_000_000_000_000), (5, b"b"): (b"2", None)}


def test_old_versions_without_checksum():
    body = b"\xfe\x00" + b"\x00" + rdb_str(b"k") + rdb_str(b"v")
    data = rdb_file(body, version=4)
    assert data.endswith(b"\xff")
    assert decode(data) == {(0, b"k"): (b"v", None)}
    assert parse_prefix(data + b"*1\r\n") == len(data)


def test_empty_collections_in_a_file_are_skipped_with_their_expiry():
    body = (b"\xfc" + struct.pack("<q", FAR_MS) + b"\x02" + rdb_str(b"empty") + rdb_len(0)
            + b"\x00" + rdb_str(b"k") + rdb_str(b"v")
            + b"\x12" + rdb_str(b"l") + rdb_len(1) + rdb_len(2) + rdb_str(listpack([])))
    assert decode(rdb_file(body)) == {(0, b"k"): (b"v", None)}
