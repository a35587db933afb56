"""Redis 7.0 RDB files (format version 10): an encoder a real redis-server loads, a decoder for all it writes.

Layout (REDIS-FACTS §5; Redis src/rdb.c, rdb.h):
    "REDIS0010", AUX fields (0xFA key value), functions (0xF5 code), then per non-empty database
    SELECTDB (0xFE n) and RESIZEDB (0xFB size expires) followed by its keys, then EOF (0xFF) and
    the CRC-64/Jones of everything before it, little-endian. A key is [0xFC expire-ms] [0xF8 idle]
    [0xF9 freq] type key value.

The encoder writes only the plain types a 7.0 server converts on load to its compact encodings:
0 string, 1 list, 2 set, 4 hash and 5 zset (binary scores). Strings that are canonical 32-bit
integers use the integer encoding, as Redis does; LZF compression is optional (`compress=True`).

The decoder reads every encoding 7.0 writes (integer and LZF strings, intset, listpack hashes and
zsets, quicklist 2 lists with plain and packed nodes, the plain types) and the older ziplist,
zipmap and quicklist types of dumps from Redis < 7. Values are delivered as the keyspace holds
them: bytes, deque, set, dict, and sorted sets through the caller's `make_zset(pairs)`. Empty
collections are skipped, as Redis skips them. Streams and module values are refused.

Keys reach `on_key` while the file is being read; a load that raises must be thrown away by the
caller, because the checksum is only known to be right (or wrong) at the end.
"""

from __future__ import annotations

import itertools
import math
import os
import struct
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from persistence.crc64 import crc64
from persistence.lzf import LzfError
from persistence.lzf import compress as lzf_compress
from persistence.lzf import decompress as lzf_decompress

__all__ = [
    "PROGRESS_EVERY",
    "RDB_VERSION",
    "RdbError",
    "dump",
    "is_rdb",
    "load",
    "load_file",
    "parse_prefix",
    "write_file",
]

RDB_VERSION = 10
"""The format version Redis 7.0 writes and the newest it loads."""

REDIS_VERSION = b"7.0.15"
PROGRESS_EVERY = 100_000
"""`load` calls progress(bytes_done, keys_done) after every this many keys."""

# Value types (rdb.h).
T_STRING, T_LIST, T_SET, T_ZSET, T_HASH, T_ZSET_2 = 0, 1, 2, 3, 4, 5
T_MODULE, T_MODULE_2 = 6, 7
T_HASH_ZIPMAP, T_LIST_ZIPLIST, T_SET_INTSET, T_ZSET_ZIPLIST, T_HASH_ZIPLIST = 9, 10, 11, 12, 13
T_LIST_QUICKLIST, T_STREAM_LISTPACKS, T_HASH_LISTPACK, T_ZSET_LISTPACK = 14, 15, 16, 17
T_LIST_QUICKLIST_2, T_STREAM_LISTPACKS_2 = 18, 19

# Opcodes.
OP_FUNCTION2 = 0xF5
OP_FUNCTION_PRE_GA = 0xF6
OP_MODULE_AUX = 0xF7
OP_IDLE = 0xF8
OP_FREQ = 0xF9
OP_AUX = 0xFA
OP_RESIZEDB = 0xFB
OP_EXPIRETIME_MS = 0xFC
OP_EXPIRETIME = 0xFD
OP_SELECTDB = 0xFE
OP_EOF = 0xFF

_QUICKLIST_PLAIN, _QUICKLIST_PACKED = 1, 2
_LZF_MIN_LENGTH = 20
"""Redis compresses only strings longer than this (rdbSaveRawString)."""


class RdbError(Exception):
    """A malformed, truncated or unsupported RDB file. The message names the byte offset."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        if offset is not None:
            message = f"{message} at offset {offset}"
        super().__init__(message)
        self.offset = offset


class _Truncated(Exception):
    """Raised inside the decoder when a read runs past the end; turned into an RdbError."""


# --------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------

_SMALL_LENGTHS = [bytes((n,)) for n in range(64)] + [bytes((0x40 | (n >> 8), n & 0xFF))
                                                     for n in range(64, 16384)]
"""The length prefix of every length below 16384, precomputed: most strings are short."""

_INT_MIN, _INT_MAX = -(1 << 31), (1 << 31) - 1
_temp_names = itertools.count()


def _length(n: int) -> bytes:
    if n < 16384:
        return _SMALL_LENGTHS[n]
    if n <= 0xFFFFFFFF:
        return b"\x80" + n.to_bytes(4, "big")
    return b"\x81" + n.to_bytes(8, "big")


def _int_encoding(value: bytes) -> bytes | None:
    """The integer encoding of a string that is a canonical decimal fitting in 32 bits, else None."""
    if not 0 < len(value) <= 11:
        return None
    digits = value[1:] if value[:1] == b"-" else value
    if not digits.isdigit() or (digits[:1] == b"0" and value != b"0"):
        return None
    number = int(value)
    if -128 <= number <= 127:
        return b"\xc0" + number.to_bytes(1, "little", signed=True)
    if -32768 <= number <= 32767:
        return b"\xc1" + number.to_bytes(2, "little", signed=True)
    if _INT_MIN <= number <= _INT_MAX:
        return b"\xc2" + number.to_bytes(4, "little", signed=True)
    return None


class _Encoder:
    """Appends RDB-encoded strings and values to a bytearray."""

    def __init__(self, compress: bool) -> None:
        self.compress = compress

    def string(self, out: bytearray, value: bytes) -> None:
        size = len(value)
        if size <= 11:
            encoded = _int_encoding(value)
            if encoded is not None:
                out += encoded
                return
        elif self.compress and size > _LZF_MIN_LENGTH:
            packed = lzf_compress(bytes(value))
            if len(packed) < size - 4:
                out += b"\xc3" + _length(len(packed)) + _length(size) + packed
                return
        out += _length(size)
        out += value

    def value(self, out: bytearray, key: bytes, value: object) -> bool:
        """Append type, key and value; False (nothing written) for an empty collection."""
        string = self.string
        if isinstance(value, (bytes, bytearray)):
            out.append(T_STRING)
            string(out, key)
            string(out, value)
            return True
        if isinstance(value, deque):
            if not value:
                return False
            out.append(T_LIST)
            string(out, key)
            out += _length(len(value))
            for element in value:
                string(out, element)
            return True
        if isinstance(value, (set, frozenset)):
            if not value:
                return False
            out.append(T_SET)
            string(out, key)
            out += _length(len(value))
            for member in value:
                string(out, member)
            return True
        if isinstance(value, dict):
            if not value:
                return False
            out.append(T_HASH)
            string(out, key)
            out += _length(len(value))
            for field, field_value in value.items():
                string(out, field)
                string(out, field_value)
            return True
        scores = getattr(value, "scores", None)
        if scores is not None and hasattr(scores, "items"):
            if not scores:
                return False
            out.append(T_ZSET_2)
            string(out, key)
            out += _length(len(scores))
            pack = struct.Struct("<d").pack
            for member, score in scores.items():
                string(out, member)
                out += pack(score)
            return True
        raise TypeError(f"cannot encode a {type(value).__name__} value (key {key!r}) in an RDB file")


def _encode_db(encoder: _Encoder, items: Iterable[tuple[bytes, object, int | None]],
               ) -> tuple[bytearray, int, int]:
    """The keys of one database: (encoded body, key count, count with an expiry)."""
    body = bytearray()
    keys = expires = 0
    encode_value = encoder.value
    small = _SMALL_LENGTHS
    expire_ms = struct.Struct("<q").pack
    fast = not encoder.compress
    for key, value, expire in items:
        if expire is not None:
            mark = len(body)
            body += b"\xfc" + expire_ms(expire)
        # Fast path: short strings that cannot be integers ('-', '.', '/' and digits start
        # the ones that might), the bulk of most datasets.
        key_length = len(key)
        if (fast and type(value) is bytes and 0 < key_length < 64 and 0 < len(value) < 64
                and (key_length > 11 or not 44 < key[0] < 58)
                and (len(value) > 11 or not 44 < value[0] < 58)):
            body.append(T_STRING)
            body += small[key_length]
            body += key
            body += small[len(value)]
            body += value
        elif not encode_value(body, key, value):
            if expire is not None:
                del body[mark:]
            continue
        keys += 1
        if expire is not None:
            expires += 1
    return body, keys, expires


def dump(dbs: Iterable[tuple[int, Iterable[tuple[bytes, object, int | None]]]], *,
         aux: dict[bytes, bytes] | None = None, functions: Iterable[bytes] = (),
         compress: bool = False, ctime: int | None = None) -> bytes:
    """An RDB file holding dbs, given as (db index, iterable of (key, value, expire ms or None)).

    `aux` adds or overrides AUX fields (the defaults are redis-ver, redis-bits, ctime, used-mem and
    aof-base). `functions` are FUNCTION LOAD library codes. Empty databases and empty collections
    are left out, as Redis leaves them out.
    """
    encoder = _Encoder(compress)
    out = bytearray(b"REDIS%04d" % RDB_VERSION)
    fields: dict[bytes, bytes] = {
        b"redis-ver": REDIS_VERSION,
        b"redis-bits": b"64",
        b"ctime": b"%d" % (int(time.time()) if ctime is None else ctime),
        b"used-mem": b"0",
        b"aof-base": b"0",
    }
    fields.update(aux or {})
    for name, field_value in fields.items():
        out.append(OP_AUX)
        encoder.string(out, name)
        encoder.string(out, field_value)
    for code in functions:
        out.append(OP_FUNCTION2)
        encoder.string(out, code)
    for index, items in dbs:
        body, keys, expires = _encode_db(encoder, items)
        if not keys:
            continue
        out.append(OP_SELECTDB)
        out += _length(index)
        out.append(OP_RESIZEDB)
        out += _length(keys)
        out += _length(expires)
        out += body
        del body
    out.append(OP_EOF)
    out += crc64(out).to_bytes(8, "little")
    return bytes(out)


def write_file(path: str | os.PathLike, dbs: Iterable[tuple[int, Iterable[tuple[bytes, object, int | None]]]],
               **kwargs: Any) -> int:
    """dump() to path atomically and durably: temp file, fsync, rename, fsync the directory.

    The temp file is named like Redis's (temp-<pid>-<n>.rdb) in the same directory and gets the
    usual umask permissions. Returns the number of bytes written.
    """
    data = dump(dbs, **kwargs)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    temp_path = os.path.join(directory, f"temp-{os.getpid()}-{next(_temp_names)}.rdb")
    fd = os.open(temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp_path, path)
    except BaseException:
        try:
            os.unlink(temp_path)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return len(data)


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------

_I16 = struct.Struct("<h").unpack_from
_I32 = struct.Struct("<i").unpack_from
_I64 = struct.Struct("<q").unpack_from
_U16 = struct.Struct("<H").unpack_from
_U32 = struct.Struct("<I").unpack_from
_U32_BE = struct.Struct(">I").unpack_from
_U64_BE = struct.Struct(">Q").unpack_from
_DOUBLE = struct.Struct("<d").unpack_from


def _read_length(data: bytes, pos: int) -> tuple[int, int]:
    """(length, next position) for a length that may not be a special string encoding."""
    first = data[pos]
    kind = first >> 6
    if kind == 0:
        return first, pos + 1
    if kind == 1:
        return ((first & 0x3F) << 8) | data[pos + 1], pos + 2
    if first == 0x80:
        if pos + 5 > len(data):
            raise _Truncated
        return _U32_BE(data, pos + 1)[0], pos + 5
    if first == 0x81:
        if pos + 9 > len(data):
            raise _Truncated
        return _U64_BE(data, pos + 1)[0], pos + 9
    raise RdbError(f"unknown length encoding 0x{first:02x}", pos)


def _read_string(data: bytes, pos: int) -> tuple[bytes, int]:
    """(string, next position), undoing the integer and LZF encodings."""
    first = data[pos]
    if first < 0x40:
        end = pos + 1 + first
        if end > len(data):
            raise _Truncated
        return data[pos + 1:end], end
    if first >= 0xC0:
        kind = first & 0x3F
        if kind == 0:
            return b"%d" % (data[pos + 1] - 256 if data[pos + 1] > 127 else data[pos + 1]), pos + 2
        if kind == 1:
            if pos + 3 > len(data):
                raise _Truncated
            return b"%d" % _I16(data, pos + 1)[0], pos + 3
        if kind == 2:
            if pos + 5 > len(data):
                raise _Truncated
            return b"%d" % _I32(data, pos + 1)[0], pos + 5
        if kind == 3:
            packed_length, cursor = _read_length(data, pos + 1)
            length, cursor = _read_length(data, cursor)
            end = cursor + packed_length
            if end > len(data):
                raise _Truncated
            try:
                return lzf_decompress(memoryview(data)[cursor:end], length), end
            except LzfError as exc:
                raise RdbError(f"bad LZF string ({exc})", pos) from None
        raise RdbError(f"unknown string encoding {kind}", pos)
    length, start = _read_length(data, pos)
    end = start + length
    if end > len(data):
        raise _Truncated
    return data[start:end], end


def _read_old_double(data: bytes, pos: int) -> tuple[float, int]:
    """The ZSET (type 3) score: a length byte and ASCII, 253/254/255 meaning nan/+inf/-inf."""
    size = data[pos]
    if size == 253:
        return float("nan"), pos + 1
    if size == 254:
        return float("inf"), pos + 1
    if size == 255:
        return float("-inf"), pos + 1
    end = pos + 1 + size
    if end > len(data):
        raise _Truncated
    try:
        return float(data[pos + 1:end]), end
    except ValueError:
        raise RdbError("bad zset score", pos) from None


def _as_bytes(item: bytes | int) -> bytes:
    return b"%d" % item if isinstance(item, int) else item


def _listpack(blob: bytes, offset: int) -> list[bytes | int]:
    """The entries of a listpack (listpack.c): strings as bytes, integers as int."""
    size = len(blob)
    if size < 7 or _U32(blob, 0)[0] != size or blob[-1] != 0xFF:
        raise RdbError("corrupt listpack header", offset)
    entries: list[bytes | int] = []
    append = entries.append
    pos = 6
    try:
        while True:
            first = blob[pos]
            if first < 0x80:
                append(first)
                pos += 2  # 1-byte entry + 1-byte backlen
                continue
            if first < 0xC0:
                length = first & 0x3F
                append(blob[pos + 1:pos + 1 + length])
                entry = 1 + length
            elif first < 0xE0:
                value = ((first & 0x1F) << 8) | blob[pos + 1]
                append(value - 8192 if value >= 4096 else value)
                entry = 2
            elif first < 0xF0:
                length = ((first & 0x0F) << 8) | blob[pos + 1]
                append(blob[pos + 2:pos + 2 + length])
                entry = 2 + length
            elif first == 0xF0:
                length = _U32(blob, pos + 1)[0]
                append(blob[pos + 5:pos + 5 + length])
                entry = 5 + length
            elif first == 0xF1:
                append(_I16(blob, pos + 1)[0])
                entry = 3
            elif first == 0xF2:
                append(int.from_bytes(blob[pos + 1:pos + 4], "little", signed=True))
                entry = 4
            elif first == 0xF3:
                append(_I32(blob, pos + 1)[0])
                entry = 5
            elif first == 0xF4:
                append(_I64(blob, pos + 1)[0])
                entry = 9
            elif first == 0xFF:
                if pos != size - 1:
                    raise RdbError("listpack terminator before its end", offset)
                return entries
            else:
                raise RdbError(f"bad listpack entry encoding 0x{first:02x}", offset)
            if entry <= 127:
                pos += entry + 1
            elif entry < 16383:
                pos += entry + 2
            elif entry < 2097151:
                pos += entry + 3
            elif entry < 268435455:
                pos += entry + 4
            else:
                pos += entry + 5
            if pos >= size:
                raise RdbError("listpack entry overruns the listpack", offset)
    except (IndexError, struct.error):
        raise RdbError("listpack entry overruns the listpack", offset) from None


def _ziplist(blob: bytes, offset: int) -> list[bytes | int]:
    """The entries of a ziplist (ziplist.c, Redis < 7): strings as bytes, integers as int."""
    size = len(blob)
    if size < 11 or _U32(blob, 0)[0] != size or blob[-1] != 0xFF:
        raise RdbError("corrupt ziplist header", offset)
    entries: list[bytes | int] = []
    append = entries.append
    pos = 10
    try:
        while blob[pos] != 0xFF:
            pos += 1 if blob[pos] < 254 else 5  # previous entry length
            encoding = blob[pos]
            kind = encoding >> 6
            if kind == 0:
                length = encoding & 0x3F
                append(blob[pos + 1:pos + 1 + length])
                pos += 1 + length
            elif kind == 1:
                length = ((encoding & 0x3F) << 8) | blob[pos + 1]
                append(blob[pos + 2:pos + 2 + length])
                pos += 2 + length
            elif kind == 2:
                length = _U32_BE(blob, pos + 1)[0]
                append(blob[pos + 5:pos + 5 + length])
                pos += 5 + length
            elif encoding == 0xC0:
                append(_I16(blob, pos + 1)[0])
                pos += 3
            elif encoding == 0xD0:
                append(_I32(blob, pos + 1)[0])
                pos += 5
            elif encoding == 0xE0:
                append(_I64(blob, pos + 1)[0])
                pos += 9
            elif encoding == 0xF0:
                append(int.from_bytes(blob[pos + 1:pos + 4], "little", signed=True))
                pos += 4
            elif encoding == 0xFE:
                append(int.from_bytes(blob[pos + 1:pos + 2], "little", signed=True))
                pos += 2
            elif 0xF1 <= encoding <= 0xFD:
                append((encoding & 0x0F) - 1)
                pos += 1
            else:
                raise RdbError(f"bad ziplist entry encoding 0x{encoding:02x}", offset)
            if pos >= size:
                raise RdbError("ziplist entry overruns the ziplist", offset)
    except (IndexError, struct.error):
        raise RdbError("ziplist entry overruns the ziplist", offset) from None
    if pos != size - 1:
        raise RdbError("ziplist terminator before its end", offset)
    return entries


def _zipmap(blob: bytes, offset: int) -> dict[bytes, bytes]:
    """A zipmap (zipmap.c, Redis < 2.6 hashes): field/value pairs with free space after values."""
    result: dict[bytes, bytes] = {}
    pos = 1  # skip the count byte, which saturates at 254

    def read_len(at: int) -> tuple[int, int]:
        first = blob[at]
        if first < 254:
            return first, at + 1
        if first == 254:
            return _U32(blob, at + 1)[0], at + 5
        raise RdbError("corrupt zipmap length", offset)

    try:
        while blob[pos] != 0xFF:
            length, pos = read_len(pos)
            field = blob[pos:pos + length]
            pos += length
            length, pos = read_len(pos)
            free = blob[pos]
            result[field] = blob[pos + 1:pos + 1 + length]
            pos += 1 + length + free
    except (IndexError, struct.error):
        raise RdbError("zipmap entry overruns the zipmap", offset) from None
    return result


def _intset(blob: bytes, offset: int) -> set[bytes]:
    """An intset (intset.c): u32 width, u32 count, then sorted little-endian integers."""
    if len(blob) < 8:
        raise RdbError("corrupt intset header", offset)
    width, count = _U32(blob, 0)[0], _U32(blob, 4)[0]
    if width not in (2, 4, 8) or len(blob) != 8 + width * count:
        raise RdbError("corrupt intset header", offset)
    code = {2: "h", 4: "i", 8: "q"}[width]
    members = {b"%d" % number for number in struct.unpack_from(f"<{count}{code}", blob, 8)}
    if len(members) != count:
        raise RdbError("intset with duplicate members", offset)
    return members


def _pairs(entries: list[bytes | int], offset: int, what: str) -> list[tuple[bytes | int, bytes | int]]:
    if len(entries) % 2:
        raise RdbError(f"{what} with an odd number of entries", offset)
    return list(zip(entries[0::2], entries[1::2]))


def _score(item: bytes | int, offset: int) -> float:
    if isinstance(item, int):
        return float(item)
    try:
        return float(item)
    except ValueError:
        raise RdbError("bad zset score", offset) from None


class _Loader:
    """Decodes one value at a time; the state is the data and the position."""

    def __init__(self, data: bytes, make_zset: Callable[[list[tuple[bytes, float]]], object]) -> None:
        self.data = data
        self.make_zset = make_zset

    def strings(self, pos: int, count: int) -> tuple[list[bytes], int]:
        data = self.data
        read = _read_string
        items = []
        append = items.append
        for _ in range(count):
            item, pos = read(data, pos)
            append(item)
        return items, pos

    def blob(self, pos: int) -> tuple[bytes, int]:
        return _read_string(self.data, pos)

    def value(self, kind: int, pos: int, key: bytes, type_at: int) -> tuple[object, int]:
        """(value or None when empty, next position) for a value of the given type.

        type_at is the offset of the type byte, which errors about the type itself name.
        """
        data = self.data
        start = pos
        if kind == T_STRING:
            return _read_string(data, pos)
        if kind == T_LIST:
            count, pos = _read_length(data, pos)
            items, pos = self.strings(pos, count)
            return (deque(items) if items else None), pos
        if kind == T_SET:
            count, pos = _read_length(data, pos)
            items, pos = self.strings(pos, count)
            members = set(items)
            if len(members) != count:
                raise RdbError("duplicate set member", start)
            return (members or None), pos
        if kind == T_HASH:
            count, pos = _read_length(data, pos)
            items, pos = self.strings(pos, 2 * count)
            fields = dict(zip(items[0::2], items[1::2]))
            if len(fields) != count:
                raise RdbError("duplicate hash field", start)
            return (fields or None), pos
        if kind in (T_ZSET, T_ZSET_2):
            count, pos = _read_length(data, pos)
            pairs = []
            for _ in range(count):
                member, pos = _read_string(data, pos)
                if kind == T_ZSET_2:
                    if pos + 8 > len(data):
                        raise _Truncated
                    score = _DOUBLE(data, pos)[0]
                    pos += 8
                else:
                    score, pos = _read_old_double(data, pos)
                if math.isnan(score):
                    raise RdbError("zset with a NaN score", start)
                pairs.append((member, score))
            return self.zset(pairs, start), pos
        if kind == T_SET_INTSET:
            blob, pos = self.blob(pos)
            members = _intset(blob, start)
            return (members or None), pos
        if kind in (T_HASH_LISTPACK, T_HASH_ZIPLIST):
            blob, pos = self.blob(pos)
            entries = (_listpack if kind == T_HASH_LISTPACK else _ziplist)(blob, start)
            pairs = _pairs(entries, start, "hash")
            fields = {_as_bytes(f): _as_bytes(v) for f, v in pairs}
            if len(fields) != len(pairs):
                raise RdbError("duplicate hash field", start)
            return (fields or None), pos
        if kind in (T_ZSET_LISTPACK, T_ZSET_ZIPLIST):
            blob, pos = self.blob(pos)
            entries = (_listpack if kind == T_ZSET_LISTPACK else _ziplist)(blob, start)
            pairs = [(_as_bytes(m), _score(s, start)) for m, s in _pairs(entries, start, "zset")]
            return self.zset(pairs, start), pos
        if kind == T_HASH_ZIPMAP:
            blob, pos = self.blob(pos)
            return (_zipmap(blob, start) or None), pos
        if kind == T_LIST_ZIPLIST:
            blob, pos = self.blob(pos)
            items = [_as_bytes(e) for e in _ziplist(blob, start)]
            return (deque(items) if items else None), pos
        if kind in (T_LIST_QUICKLIST, T_LIST_QUICKLIST_2):
            nodes, pos = _read_length(data, pos)
            items = deque()
            for _ in range(nodes):
                container = _QUICKLIST_PACKED
                if kind == T_LIST_QUICKLIST_2:
                    container_at = pos
                    container, pos = _read_length(data, pos)
                    if container not in (_QUICKLIST_PLAIN, _QUICKLIST_PACKED):
                        raise RdbError(f"quicklist node with unknown container {container}", container_at)
                node_at = pos
                blob, pos = self.blob(pos)
                if container == _QUICKLIST_PLAIN:
                    items.append(blob)
                elif kind == T_LIST_QUICKLIST_2:
                    items.extend(map(_as_bytes, _listpack(blob, node_at)))
                else:
                    items.extend(map(_as_bytes, _ziplist(blob, node_at)))
            return (items or None), pos
        if kind in (T_STREAM_LISTPACKS, T_STREAM_LISTPACKS_2, 21):
            raise RdbError(f"stream values are not supported (key {key!r})", type_at)
        if kind in (T_MODULE, T_MODULE_2):
            raise RdbError(f"module values are not supported (key {key!r})", type_at)
        raise RdbError(f"unknown value type {kind} (key {key!r})", type_at)

    def zset(self, pairs: list[tuple[bytes, float]], start: int) -> object | None:
        if not pairs:
            return None
        if len({member for member, _ in pairs}) != len(pairs):
            raise RdbError("duplicate zset member", start)
        return self.make_zset(pairs)


def _default_make_zset(pairs: list[tuple[bytes, float]]) -> object:
    """The keyspace's sorted set, imported late so that the codec stands alone."""
    from keyspace.zset import ZSet

    from_pairs = getattr(ZSet, "from_pairs", None)
    if from_pairs is not None:
        return from_pairs(pairs)
    return ZSet(pairs)


def _raised_here(exc: BaseException) -> bool:
    """True when exc comes from a read in this module rather than from a caller's callback."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is None or tb.tb_frame.f_code.co_filename == __file__


def _header(data: bytes) -> int:
    """The format version; raises unless data starts with a supported RDB header."""
    if len(data) < 9 or data[:5] != b"REDIS":
        raise RdbError("wrong signature, not an RDB file", 0)
    digits = data[5:9]
    if not digits.isdigit():
        raise RdbError(f"bad RDB version {digits!r}", 5)
    version = int(digits)
    if not 1 <= version <= RDB_VERSION:
        raise RdbError(f"can't handle RDB format version {version}", 5)
    return version


def load(data: bytes | bytearray | memoryview, *,
         on_key: Callable[[int, bytes, object, int | None], None],
         make_zset: Callable[[list[tuple[bytes, float]]], object] | None = None,
         on_aux: Callable[[bytes, bytes], None] | None = None,
         on_function: Callable[[bytes], None] | None = None,
         progress: Callable[[int, int], None] | None = None,
         verify_checksum: bool = True) -> int:
    """Decode an RDB image, calling on_key(db, key, value, expire_ms or None) for each key.

    Returns the length of the RDB image: for an AOF with an RDB preamble the AOF tail starts
    there. Raises RdbError naming the byte offset on corruption, truncation, a bad checksum, or
    content this decoder does not support (streams, modules). Keys already delivered when it
    raises must be discarded. Expired keys are delivered too: dropping them is the caller's call.
    """
    if not isinstance(data, bytes):
        data = bytes(data)
    version = _header(data)
    loader = _Loader(data, make_zset or _default_make_zset)
    read_string = _read_string
    read_length = _read_length
    load_value = loader.value
    size = len(data)
    db = 0
    expire: int | None = None
    keys = 0
    next_progress = PROGRESS_EVERY
    pos = 9
    op_at = pos
    try:
        while True:
            op_at = pos
            op = data[pos]
            pos += 1
            if op == T_STRING:
                # Inline fast path for short raw strings: most keys of most datasets.
                first = data[pos]
                if first < 0x40:
                    pos += 1 + first
                    key = data[pos - first:pos]
                else:
                    key, pos = read_string(data, pos)
                first = data[pos]
                if first < 0x40:
                    pos += 1 + first
                    value = data[pos - first:pos]
                else:
                    value, pos = read_string(data, pos)
                if pos > size:
                    raise _Truncated
            elif op < OP_FUNCTION2:
                key, pos = read_string(data, pos)
                value, pos = load_value(op, pos, key, op_at)
                if value is None:  # an empty collection: Redis skips these too
                    expire = None
                    continue
            elif op == OP_EXPIRETIME_MS:
                if pos + 8 > size:
                    raise _Truncated
                expire = _I64(data, pos)[0]
                pos += 8
                continue
            elif op == OP_SELECTDB:
                db, pos = read_length(data, pos)
                continue
            elif op == OP_RESIZEDB:
                _, pos = read_length(data, pos)
                _, pos = read_length(data, pos)
                continue
            elif op == OP_AUX:
                name, pos = read_string(data, pos)
                aux_value, pos = read_string(data, pos)
                if on_aux is not None:
                    on_aux(name, aux_value)
                continue
            elif op == OP_EOF:
                break
            elif op == OP_EXPIRETIME:
                if pos + 4 > size:
                    raise _Truncated
                expire = _I32(data, pos)[0] * 1000
                pos += 4
                continue
            elif op == OP_IDLE:
                _, pos = read_length(data, pos)
                continue
            elif op == OP_FREQ:
                pos += 1
                continue
            elif op == OP_FUNCTION2:
                code, pos = read_string(data, pos)
                if on_function is not None:
                    on_function(code)
                continue
            elif op == OP_FUNCTION_PRE_GA:
                raise RdbError("pre-release function format not supported", op_at)
            elif op == OP_MODULE_AUX:
                raise RdbError("module auxiliary data is not supported", op_at)
            else:
                raise RdbError(f"unknown value type {op}", op_at)
            on_key(db, key, value, expire)
            expire = None
            keys += 1
            if keys == next_progress:
                next_progress += PROGRESS_EVERY
                if progress is not None:
                    progress(pos, keys)
    except (_Truncated, IndexError, struct.error) as exc:
        if not _raised_here(exc):
            raise  # from a callback, not a short read
        raise RdbError(f"unexpected end of file (file is {size} bytes; the item starting "
                       f"at offset {op_at} is cut short)", min(pos, size)) from None
    end = pos
    if version >= 5:
        if end + 8 > size:
            raise RdbError(f"unexpected end of file: the 8-byte checksum is missing "
                           f"(file is {size} bytes)", end)
        stored = int.from_bytes(data[end:end + 8], "little")
        if stored and verify_checksum:
            computed = crc64(memoryview(data)[:end])
            if computed != stored:
                raise RdbError(f"wrong RDB checksum: stored {stored:016x}, computed {computed:016x} "
                               f"over bytes 0..{end - 1}; checksum", end)
        end += 8
    if progress is not None:
        progress(end, keys)
    return end


def load_file(path: str | os.PathLike, **kwargs: Any) -> int:
    """load() the RDB file at path; returns its RDB length."""
    with open(path, "rb") as file:
        data = file.read()
    try:
        return load(data, **kwargs)
    except RdbError as exc:
        error = RdbError(f"{os.fspath(path)}: {exc}")
        error.offset = exc.offset
        raise error from None


def is_rdb(data_prefix: bytes | bytearray | memoryview) -> bool:
    """True when data starts like an RDB file (an AOF may start with an RDB preamble)."""
    return bytes(data_prefix[:5]) == b"REDIS"


def parse_prefix(data: bytes | bytearray | memoryview) -> int:
    """The byte length of the RDB image that data starts with (checked, values discarded)."""
    return load(data, on_key=lambda db, key, value, expire: None, make_zset=lambda pairs: pairs)
