"""SORT and SORT_RO (Redis group "generic"), following Redis 7.0.15's sortCommandGeneric.

SORT reads a list, set or sorted set and may look up other keys through BY and GET patterns
(`weight_*`, `hash_*->field`). Those keys can live on any shard, so a call with such a pattern
runs in global mode (`needs_global`); without one it runs on the shard of its key (and of the
STORE destination).

Details that decide the output, all checked against the real server:
- Numeric sorting parses each weight like C's strtod on a NUL-terminated string: leading
  whitespace, hex floats, `inf` are accepted, and the empty string is 0; NaN, trailing garbage and
  results out of the double range (overflow, or inexact underflow) are
  "One or more scores can't be converted into double". Equal weights order by the element bytes.
- ALPHA compares with strcoll in the C/C.UTF-8 locale, i.e. bytes up to the first NUL, except when
  storing (binary comparison). Elements whose BY key is missing sort first; ties keep their input
  order, as glibc's merge-sort qsort does.
- `BY` a pattern without `*` skips sorting: lists and sorted sets keep their order (reversed by
  DESC), sets their iteration order, which for an intset is ascending; with STORE a set is sorted
  ALPHA instead so the stored result is deterministic.
"""

from __future__ import annotations

import math
import re
from collections import deque
from decimal import Decimal
from fractions import Fraction
from functools import cmp_to_key
from itertools import islice

from commands.args import parse_int, try_int
from commands.registry import command
from keyspace.sets import ordered as set_order
from protocol.errors import SYNTAX_ERROR, WRONGTYPE, CommandError
from keyspace.db import delete_destination

__all__ = ["sort_keys", "sort_needs_global", "strtod_weight"]

_NOT_DOUBLE = "ERR One or more scores can't be converted into double"
_DBL_MIN = 2.2250738585072014e-308

# What glibc's strtod consumes, as a full match of the string up to its first NUL.
_STRTOD = re.compile(
    rb"[ \t\n\v\f\r]*[+-]?(?:"
    rb"(?P<inf>inf(?:inity)?)"
    rb"|(?P<nan>nan(?:\([0-9A-Za-z_]*\))?)"
    rb"|(?P<hex>0x(?:[0-9a-f]+\.?[0-9a-f]*|\.[0-9a-f]+)(?:p[+-]?[0-9]+)?)"
    rb"|(?P<dec>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?)"
    rb")", re.IGNORECASE)


def strtod_weight(raw: bytes) -> float | None:
    """A SORT weight as Redis 7.0 reads it (strtod + its checks); None means "not a double"."""
    if len(raw) <= 20:
        number = try_int(raw)
        if number is not None:  # integer-encoded values are cast, never parsed
            return float(number)
    text = raw.split(b"\0", 1)[0]
    if not text:
        return 0.0  # strtod converts nothing and stops at the terminator: accepted as 0
    match = _STRTOD.fullmatch(text)
    if match is None or match["nan"]:
        return None
    negative = text.lstrip(b" \t\n\v\f\r")[:1] == b"-"
    if match["inf"]:
        return -math.inf if negative else math.inf
    try:
        if match["hex"]:
            value = float.fromhex(match["hex"].decode())
        else:
            value = float(match["dec"])
    except OverflowError:
        return None
    if math.isinf(value):
        return None  # ERANGE on overflow
    if abs(value) < _DBL_MIN:
        # ERANGE when the result is subnormal or zero and inexact.
        if value == 0.0 and _has_nonzero_digit(match["hex"] or match["dec"]):
            return None
        if value != 0.0 and _exact_value(match) != Fraction(value):
            return None
    return -value if negative else value


def _has_nonzero_digit(number: bytes) -> bool:
    mantissa = re.split(rb"[eEpP]", number[2:] if number[:2].lower() == b"0x" else number)[0]
    return any(c not in b"0." for c in mantissa)


def _exact_value(match: re.Match) -> Fraction:
    """The unrounded magnitude a strtod match denotes (only needed near the underflow edge)."""
    if match["dec"]:
        return Fraction(Decimal(match["dec"].decode()))
    text = match["hex"][2:].decode().lower()
    mantissa, _, exponent = text.partition("p")
    whole, _, fraction = mantissa.partition(".")
    digits = int((whole + fraction) or "0", 16)
    return Fraction(digits) * Fraction(2) ** (int(exponent or "0") - 4 * len(fraction))


# -- key positions and routing ---------------------------------------------------------------

_SKIP = {b"limit": 2, b"get": 1, b"by": 1}


def sort_keys(argv: list[bytes]) -> list[int]:
    """Redis's sortGetKeys: the sorted key and the last STORE destination.

    Option arguments are skipped by a fixed table (LIMIT 2, GET 1, BY 1); STORE's argument is not
    skipped, exactly as Redis scans.
    """
    positions = [1]
    store = None
    i = 2
    argc = len(argv)
    while i < argc:
        word = argv[i].lower()
        skip = _SKIP.get(word)
        if skip is not None:
            i += skip
        elif word == b"store" and i + 1 < argc:
            store = i + 1
        i += 1
    if store is not None:
        positions.append(store)
    return positions


def sort_needs_global(argv: list[bytes]) -> bool:
    """True when a BY or GET pattern may read keys other than the sorted one (it has a `*`)."""
    return any(b"*" in arg for arg in argv[2:])


# -- pattern lookups -------------------------------------------------------------------------

def _lookup_pattern(db, pattern: bytes, element: bytes):
    """Redis's lookupKeyByPattern: `#` is the element itself; the first `*` is replaced by the
    element; `key->field` reads a hash field. Missing keys and wrong types give None."""
    if pattern == b"#":
        return element
    star = pattern.find(b"*")
    if star < 0:
        return None
    arrow = pattern.find(b"->", star + 1)
    field = None
    if arrow >= 0 and arrow + 2 < len(pattern):
        field = pattern[arrow + 2:]
        key = pattern[:star] + element + pattern[star + 1:arrow]
    else:
        key = pattern[:star] + element + pattern[star + 1:]
    value = db.get(key)
    store = db.store
    if value is None:
        store.keyspace_misses += 1
        return None
    store.keyspace_hits += 1
    if field is not None:
        found = value.get(field) if isinstance(value, dict) else None
    elif isinstance(value, bytes):
        found = value
    else:
        return None
    return found if found is None or type(found) is bytes else bytes(found)


# -- the sort itself -------------------------------------------------------------------------

def _collate_key(value: bytes) -> bytes:
    """strcoll in the C.UTF-8 locale: byte order of the C string (up to the first NUL)."""
    nul = value.find(b"\0")
    return value if nul < 0 else value[:nul]


def _natural_slice(value, is_zset: bool, start: int, end: int, desc: bool) -> list[bytes]:
    """Ranks start..end without sorting (BY nosort): lists and sorted sets in their own order,
    reversed by DESC; sets in Redis's iteration order (DESC is ignored, nothing is compared)."""
    if isinstance(value, set):
        return set_order(value)[start:end + 1]
    if is_zset:
        index = getattr(value, "index", None)
        if index is None:  # any value with `scores` will do: order it as the skiplist does
            pairs = sorted((score, member) for member, score in value.scores.items())
            members = [m for _s, m in (reversed(pairs) if desc else pairs)]
            return members[start:end + 1]
        size = len(index)
        if desc:
            return [m for _s, m in index.islice(size - 1 - end, size - start, reverse=True)]
        return [m for _s, m in index.islice(start, end + 1)]
    return list(islice(reversed(value) if desc else value, start, end + 1))


def _parse_options(argv: list[bytes], readonly: bool):
    desc = alpha = dontsort = False
    limit_start, limit_count = 0, -1
    sortby = store = None
    gets: list[bytes] = []
    j = 2
    argc = len(argv)
    while j < argc:
        left = argc - j - 1
        word = argv[j].lower()
        if word == b"asc":
            desc = False
        elif word == b"desc":
            desc = True
        elif word == b"alpha":
            alpha = True
        elif word == b"limit" and left >= 2:
            limit_start = parse_int(argv[j + 1])
            limit_count = parse_int(argv[j + 2])
            j += 2
        elif word == b"store" and left >= 1 and not readonly:
            store = argv[j + 1]
            j += 1
        elif word == b"by" and left >= 1:
            sortby = argv[j + 1]
            if b"*" not in sortby.split(b"\0", 1)[0]:
                dontsort = True
            j += 1
        elif word == b"get" and left >= 1:
            gets.append(argv[j + 1])
            j += 1
        else:
            raise CommandError(SYNTAX_ERROR)
        j += 1
    return desc, alpha, dontsort, limit_start, limit_count, sortby, store, gets


def _sort_generic(db, argv: list[bytes], readonly: bool):
    desc, alpha, dontsort, limit_start, limit_count, sortby, store, gets = _parse_options(
        argv, readonly)

    value = db.get(argv[1])
    if value is None:
        db.store.keyspace_misses += 1
        value = deque()
    else:
        db.store.keyspace_hits += 1
        if not isinstance(value, (deque, set)) and not hasattr(value, "scores"):
            raise CommandError(WRONGTYPE)

    if dontsort and isinstance(value, set) and store is not None:
        dontsort = False  # a stored result must not depend on the set's hash order
        alpha = True
        sortby = None

    is_zset = not isinstance(value, (deque, set))
    size = len(value.scores) if is_zset else len(value)
    start = min(max(limit_start, 0), size)
    count = min(max(limit_count, -1), size)
    end = size - 1 if count < 0 else start + count - 1
    if start >= size:
        start, end = size - 1, size - 2
    if end >= size:
        end = size - 1

    if dontsort:
        selected = _natural_slice(value, is_zset, start, end, desc) if end >= start else []
    else:
        # Sort even when the range is empty: a weight that is not a double is still an error.
        elements = list(value.scores) if is_zset else list(value)
        ordered = _sorted(db, elements, sortby, alpha, desc, store is not None)
        selected = ordered[start:end + 1] if end >= start else []

    if gets:
        out = [_lookup_pattern(db, pattern, element) for element in selected for pattern in gets]
    else:
        out = selected
    if store is None:
        return out

    existed = db.exists(store)
    if out:
        db.set(store, deque(b"" if item is None else item for item in out))
        if not existed:
            db.notify("n", b"new", store)
        db.notify("l", b"sortstore", store)
        db.store.dirty += len(out)
        if not existed:
            db.signal_ready(store)
    else:
        delete_destination(db, store)
    return len(out)


def _sorted(db, elements: list[bytes], sortby: bytes | None, alpha: bool, desc: bool,
            storing: bool) -> list[bytes]:
    if alpha:
        if sortby is None:
            key = (lambda e: e) if storing else _collate_key
            return sorted(elements, key=key, reverse=desc)
        weights = [_lookup_pattern(db, sortby, e) for e in elements]
        pairs = list(zip(weights, elements))
        compare = _compare_alpha_by(storing)
        pairs.sort(key=cmp_to_key(compare), reverse=desc)
        return [e for _w, e in pairs]
    scored = []
    failed = False
    for element in elements:
        if sortby is None:
            weight = strtod_weight(element)
        else:
            raw = _lookup_pattern(db, sortby, element)
            weight = 0.0 if raw is None else strtod_weight(raw)
        if weight is None:
            failed = True
            weight = 0.0
        scored.append((weight, element))
    if failed:
        raise CommandError(_NOT_DOUBLE)
    scored.sort(reverse=desc)
    return [e for _w, e in scored]


def _compare_alpha_by(storing: bool):
    def compare(a, b):
        wa, wb = a[0], b[0]
        if wa is None or wb is None:
            if wa is wb:
                return 0
            return -1 if wa is None else 1
        if not storing:
            wa, wb = _collate_key(wa), _collate_key(wb)
        return (wa > wb) - (wa < wb)
    return compare


@command("SORT", arity=-2, flags="write denyoom movablekeys", keys=(1, 1, 1), group="generic",
         getkeys=sort_keys, needs_global=sort_needs_global)
def sort(db, argv):
    """SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA]
    [STORE destination]"""
    return _sort_generic(db, argv, readonly=False)


@command("SORT_RO", arity=-2, flags="readonly movablekeys", keys=(1, 1, 1), group="generic",
         getkeys=lambda argv: [1], needs_global=sort_needs_global)
def sort_ro(db, argv):
    """SORT_RO key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA]"""
    return _sort_generic(db, argv, readonly=True)
