"""Bitmap commands (Redis group "bitmap"): bit-level access to string values.

Bits are numbered from the most significant bit of the first byte, as Redis does. Every scan works
on whole Python integers (`int.from_bytes`, `int.bit_count`, `int.bit_length`), so a 512 MB bitmap
costs a few C-speed passes rather than a Python loop per bit. Strings are immutable `bytes`, so a
write builds a new value; it is stored as a `RawString` because Redis unshares (and thus converts
to `raw`) every string a bit command writes.

The argument checks follow Redis 7.0.15 step by step, because the order decides which error a
client sees: e.g. BITCOUNT and BITPOS look the key up before they parse their range, so a missing
key answers 0 even when the range is malformed.
"""

from __future__ import annotations

from commands.args import parse_int, try_int
from commands.registry import command
from keyspace.db import RawString, delete_destination
from protocol.errors import SYNTAX_ERROR, CommandError

__all__ = ["first_bit", "get_bitfield", "popcount", "set_bitfield"]

_BIT_OFFSET_ERR = "ERR bit offset is not an integer or out of range"
_BIT_VALUE_ERR = "ERR bit is not an integer or out of range"
_BITFIELD_TYPE_ERR = ("ERR Invalid bitfield type. Use something like i16 u8. "
                      "Note that u64 is not supported but i64 is.")
_BIT_ARG_ERR = "ERR The bit argument must be 1 or 0."
_U64 = (1 << 64) - 1


# -- low-level helpers on bytes ------------------------------------------------------------------

def popcount(value: bytes, first_bit: int, last_bit: int) -> int:
    """Set bits of `value` between bit positions `first_bit` and `last_bit` (inclusive, in range)."""
    lo, hi = first_bit >> 3, last_bit >> 3
    count = int.from_bytes(memoryview(value)[lo:hi + 1], "big").bit_count()
    # Take back the bits of the edge bytes that lie outside the range.
    count -= (value[lo] >> (8 - (first_bit & 7))).bit_count()
    count -= (value[hi] & ((1 << (7 - (last_bit & 7))) - 1)).bit_count()
    return count


_SCAN_BITS = 1 << 19  # BITPOS scans 64 KB at a time, so an early hit in a huge string is cheap


def first_bit(value: bytes, bit: int, first: int, last: int) -> int:
    """Position of the first `bit` between bit positions `first` and `last` (inclusive), or -1."""
    while first <= last:
        end = min(last, first + _SCAN_BITS - 1)
        found = _first_bit_in(value, bit, first, end)
        if found >= 0:
            return found
        first = end + 1
    return -1


def _first_bit_in(value: bytes, bit: int, first: int, last: int) -> int:
    lo, hi = first >> 3, last >> 3
    width = last - first + 1
    number = int.from_bytes(memoryview(value)[lo:hi + 1], "big") >> (7 - (last & 7))
    mask = (1 << width) - 1
    number = number & mask if bit else ~number & mask
    if not number:
        return -1
    return first + width - number.bit_length()


def get_bitfield(value: bytes | bytearray, offset: int, bits: int, signed: bool) -> int:
    """The integer stored in `bits` bits at bit `offset`; bits past the end read as zero."""
    last = offset + bits - 1
    lo, hi = offset >> 3, last >> 3
    chunk = bytes(memoryview(value)[lo:hi + 1])
    number = int.from_bytes(chunk, "big") << (8 * (hi + 1 - lo - len(chunk)))
    number = (number >> (7 - (last & 7))) & ((1 << bits) - 1)
    if signed and number >> (bits - 1):
        number -= 1 << bits
    return number


def set_bitfield(buf: bytearray, offset: int, bits: int, number: int) -> None:
    """Store the low `bits` bits of `number` at bit `offset`; `buf` must be long enough."""
    last = offset + bits - 1
    lo, hi = offset >> 3, last >> 3
    shift = 7 - (last & 7)
    span = (hi - lo + 1) * 8
    field_mask = ((1 << bits) - 1) << shift
    current = int.from_bytes(buf[lo:hi + 1], "big")
    current = (current & ~field_mask & ((1 << span) - 1)) | ((number << shift) & field_mask)
    buf[lo:hi + 1] = current.to_bytes(hi - lo + 1, "big")


# -- argument parsing ---------------------------------------------------------------------------

def _bit_offset(db, raw: bytes, hash_bits: int = 0) -> int:
    """Redis's getBitOffsetFromArgument: `#n` means n*bits (BITFIELD); limited by proto-max-bulk-len."""
    use_hash = hash_bits and len(raw) > 1 and raw[:1] == b"#"
    offset = try_int(raw[1:] if use_hash else raw)
    if offset is None:
        raise CommandError(_BIT_OFFSET_ERR)
    if use_hash:
        offset = (offset * hash_bits) & _U64  # C multiplies in 64 bits and wraps
        if offset >> 63:
            offset -= 1 << 64
    limit = db.store.config.get("proto-max-bulk-len", 512 * 1024 * 1024)
    if offset < 0 or (offset >> 3) >= limit:
        raise CommandError(_BIT_OFFSET_ERR)
    return offset


def _bitfield_type(raw: bytes) -> tuple[bool, int]:
    """`i1`..`i64` or `u1`..`u63` -> (signed, bits). The digits end at a NUL, as C's strlen does."""
    kind = raw[:1]
    if kind not in (b"i", b"u"):
        raise CommandError(_BITFIELD_TYPE_ERR)
    bits = try_int(raw[1:].split(b"\0", 1)[0])
    signed = kind == b"i"
    if bits is None or bits < 1 or bits > (64 if signed else 63):
        raise CommandError(_BITFIELD_TYPE_ERR)
    return signed, bits


def _range_mode(raw: bytes) -> bool:
    """BIT -> True, BYTE -> False."""
    word = raw.lower()
    if word == b"bit":
        return True
    if word == b"byte":
        return False
    raise CommandError(SYNTAX_ERROR)


def _writable_string(db, key: bytes, min_bytes: int) -> tuple[bytearray, bool]:
    """Redis's lookupStringForBitCommand: the key's bytes, created or zero-padded to `min_bytes`.

    Returns the buffer and whether it was created or grown (which counts as a change).
    """
    old = db.typed(key, bytes)
    if old is None:
        return bytearray(min_bytes), True
    buf = bytearray(old)
    if len(buf) < min_bytes:
        buf.extend(bytes(min_bytes - len(buf)))
        return buf, True
    return buf, False


# -- GETBIT / SETBIT ---------------------------------------------------------------------------

@command("GETBIT", arity=3, flags="readonly fast", keys=(1, 1, 1), group="bitmap")
def getbit(db, argv):
    """GETBIT key offset -- bits past the end (and of missing keys) are 0."""
    offset = _bit_offset(db, argv[2])
    value = db.read(argv[1], bytes)
    if value is None:
        return 0
    byte = offset >> 3
    if byte >= len(value):
        return 0
    return (value[byte] >> (7 - (offset & 7))) & 1


@command("SETBIT", arity=4, flags="write denyoom", keys=(1, 1, 1), group="bitmap")
def setbit(db, argv):
    """SETBIT key offset 0|1 -- the previous bit; grows the string with zero bytes as needed."""
    offset = _bit_offset(db, argv[2])
    on = parse_int(argv[3], _BIT_VALUE_ERR)
    if on & ~1:
        raise CommandError(_BIT_VALUE_ERR)
    key = argv[1]
    byte = offset >> 3
    shift = 7 - (offset & 7)
    old = db.typed(key, bytes)
    if old is not None and byte < len(old):
        previous = (old[byte] >> shift) & 1
        if previous == on:
            if type(old) is not RawString:  # Redis unshares the value: OBJECT ENCODING says raw
                db.set(key, RawString(old), keep_ttl=True)
            return previous
        buf = bytearray(old)
    else:
        previous = 0
        buf = bytearray(old) if old is not None else bytearray()
        buf.extend(bytes(byte + 1 - len(buf)))
    if on:
        buf[byte] |= 1 << shift
    else:
        buf[byte] &= ~(1 << shift) & 0xFF
    db.set(key, RawString(buf), keep_ttl=True)
    if old is None:
        db.notify("n", b"new", key)
    db.notify("$", b"setbit", key)
    db.store.dirty += 1
    return previous


# -- BITCOUNT / BITPOS ---------------------------------------------------------------------------

@command("BITCOUNT", arity=-2, flags="readonly", keys=(1, 1, 1), group="bitmap")
def bitcount(db, argv):
    """BITCOUNT key [start end [BYTE|BIT]] -- negative indexes count from the end."""
    value = db.read(argv[1], bytes)
    if value is None:
        return 0
    argc = len(argv)
    length = len(value)
    if argc == 2:
        return popcount(value, 0, length * 8 - 1) if length else 0
    if argc not in (4, 5):
        raise CommandError(SYNTAX_ERROR)
    start = parse_int(argv[2])
    end = parse_int(argv[3])
    if start < 0 and end < 0 and start > end:
        return 0
    in_bits = _range_mode(argv[4]) if argc == 5 else False
    total = length * 8 if in_bits else length
    start, end = _clamp(start, end, total)
    if start > end:
        return 0
    if in_bits:
        return popcount(value, start, end)
    return popcount(value, start * 8, end * 8 + 7)


def _clamp(start: int, end: int, total: int) -> tuple[int, int]:
    """Redis's index normalisation for BITCOUNT/BITPOS ranges (end may come out as -1)."""
    if start < 0:
        start += total
    if end < 0:
        end += total
    start = max(start, 0)
    end = max(end, 0)
    if end >= total:
        end = total - 1
    return start, end


@command("BITPOS", arity=-3, flags="readonly", keys=(1, 1, 1), group="bitmap")
def bitpos(db, argv):
    """BITPOS key bit [start [end [BYTE|BIT]]]

    Without an explicit end a search for 0 treats the string as padded with zero bytes on the
    right, so an all-ones string answers its length in bits; with an end it answers -1.
    """
    bit = parse_int(argv[2])
    if bit not in (0, 1):
        raise CommandError(_BIT_ARG_ERR)
    value = db.read(argv[1], bytes)
    if value is None:
        return -1 if bit else 0
    argc = len(argv)
    length = len(value)
    in_bits = False
    end_given = False
    if argc == 3:
        start, end = 0, length - 1
    elif argc in (4, 5, 6):
        start = parse_int(argv[3])
        if argc == 6:
            in_bits = _range_mode(argv[5])
        if argc >= 5:
            end = parse_int(argv[4])
            end_given = True
        else:
            end = length * 8 + 7 if in_bits else length - 1
        start, end = _clamp(start, end, length * 8 if in_bits else length)
    else:
        raise CommandError(SYNTAX_ERROR)
    if start > end:
        return -1
    if in_bits:
        first, last = start, end
    else:
        first, last = start * 8, end * 8 + 7
    pos = first_bit(value, bit, first, last)
    if pos == -1 and bit == 0 and not end_given:
        return last + 1
    return pos


# -- BITOP -------------------------------------------------------------------------------------

_BITOPS = {b"and": "and", b"or": "or", b"xor": "xor", b"not": "not"}


@command("BITOP", arity=-4, flags="write denyoom", keys=(2, -1, 1), group="bitmap")
def bitop(db, argv):
    """BITOP AND|OR|XOR|NOT destkey key [key ...] -- the length of the stored result.

    Shorter inputs (and missing keys) count as zero-padded to the longest one; an empty result
    deletes the destination.
    """
    op = _BITOPS.get(argv[1].lower())
    if op is None:
        raise CommandError(SYNTAX_ERROR)
    if op == "not" and len(argv) != 4:
        raise CommandError("ERR BITOP NOT must be called with a single source key.")
    sources = []
    for key in argv[3:]:
        value = db.read(key, bytes)
        sources.append(value if value is not None else b"")
    maxlen = max(len(v) for v in sources)
    dest = argv[2]
    if not maxlen:
        delete_destination(db, dest)
        return 0
    numbers = [int.from_bytes(v, "big") << (8 * (maxlen - len(v))) for v in sources]
    result = numbers[0]
    if op == "and":
        for n in numbers[1:]:
            result &= n
    elif op == "or":
        for n in numbers[1:]:
            result |= n
    elif op == "xor":
        for n in numbers[1:]:
            result ^= n
    else:
        result ^= (1 << (8 * maxlen)) - 1
    created = db.get(dest) is None
    db.set(dest, RawString(result.to_bytes(maxlen, "big")))
    if created:
        db.notify("n", b"new", dest)
    db.notify("$", b"set", dest)
    db.store.dirty += 1
    return maxlen


# -- BITFIELD ----------------------------------------------------------------------------------

_GET, _SET, _INCRBY = 0, 1, 2
_WRAP, _SAT, _FAIL = 0, 1, 2
_OVERFLOW_TYPES = {b"wrap": _WRAP, b"sat": _SAT, b"fail": _FAIL}
_OPCODES = {b"get": (_GET, 2), b"set": (_SET, 3), b"incrby": (_INCRBY, 3)}


def _parse_bitfield(db, argv: list[bytes]) -> tuple[list[tuple], int | None]:
    """The operations (opcode, signed, bits, offset, value, overflow) and the highest written bit."""
    ops = []
    highest = None
    overflow = _WRAP
    j = 2
    argc = len(argv)
    while j < argc:
        remaining = argc - j - 1
        name = argv[j].lower()
        if name == b"overflow" and remaining >= 1:
            overflow = _OVERFLOW_TYPES.get(argv[j + 1].lower())
            if overflow is None:
                raise CommandError("ERR Invalid OVERFLOW type specified")
            j += 2
            continue
        opcode, needed = _OPCODES.get(name, (None, 0))
        if opcode is None or remaining < needed:
            raise CommandError(SYNTAX_ERROR)
        signed, bits = _bitfield_type(argv[j + 1])
        offset = _bit_offset(db, argv[j + 2], bits)
        number = 0
        if opcode != _GET:
            top = offset + bits - 1
            if highest is None or top > highest:
                highest = top
            number = parse_int(argv[j + 3])
        ops.append((opcode, signed, bits, offset, number, overflow))
        j += needed + 1
    return ops, highest


def _overflow(value: int, signed: bool, bits: int, overflow: int) -> tuple[bool, int]:
    """Redis's check{Signed,Unsigned}BitfieldOverflow on an exact sum: (overflowed, value to store)."""
    if signed:
        top = (1 << (bits - 1)) - 1
        low = -top - 1
        if low <= value <= top:
            return False, value
        if overflow == _SAT:
            return True, top if value > top else low
        wrapped = (value + (1 << (bits - 1))) % (1 << bits) - (1 << (bits - 1))
        return True, wrapped
    top = (1 << bits) - 1
    if 0 <= value <= top:
        return False, value
    if overflow == _SAT:
        return True, top if value > top else 0
    return True, value % (1 << bits)


def _bitfield(db, argv, readonly_command: bool):
    ops, highest = _parse_bitfield(db, argv)
    key = argv[1]
    if highest is None:
        value = db.read(key, bytes)
        if value is None:
            value = b""
        return [get_bitfield(value, offset, bits, signed)
                for _op, signed, bits, offset, _n, _o in ops]
    if readonly_command:
        raise CommandError("ERR BITFIELD_RO only supports the GET subcommand")
    created = db.get(key) is None
    buf, grown = _writable_string(db, key, (highest >> 3) + 1)
    if created:  # stored below even if every write fails (OVERFLOW FAIL), as Redis's dbAdd does
        db.notify("n", b"new", key)
    changes = 0
    out = []
    for opcode, signed, bits, offset, number, overflow in ops:
        old = get_bitfield(buf, offset, bits, signed)
        if opcode == _GET:
            out.append(old)
            continue
        if opcode == _INCRBY:
            failed, new = _overflow(old + number, signed, bits, overflow)
            reply = new
        else:
            if not signed:
                number &= _U64  # C stores the int64 argument in a uint64
            failed, new = _overflow(number, signed, bits, overflow)
            reply = old
        if failed and overflow == _FAIL:
            out.append(None)
            continue
        out.append(reply)
        set_bitfield(buf, offset, bits, new)
        if grown or old != new:
            changes += 1
    db.set(key, RawString(buf), keep_ttl=True)
    if changes:
        db.notify("$", b"setbit", key)
    db.store.dirty += changes
    return out


@command("BITFIELD", arity=-2, flags="write denyoom", keys=(1, 1, 1), group="bitmap")
def bitfield(db, argv):
    """BITFIELD key [GET type offset] [SET type offset value] [INCRBY type offset increment]
    [OVERFLOW WRAP|SAT|FAIL] ...

    Every argument is checked before any operation runs. A write creates or pads the key even
    when every write then fails with OVERFLOW FAIL, as Redis does.
    """
    return _bitfield(db, argv, False)


@command("BITFIELD_RO", arity=-2, flags="readonly fast", keys=(1, 1, 1), group="bitmap")
def bitfield_ro(db, argv):
    """BITFIELD_RO key [GET type offset ...] -- BITFIELD restricted to GET."""
    return _bitfield(db, argv, True)
