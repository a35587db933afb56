"""Argument parsing shared by every command family, with Redis's strict number rules."""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from protocol.errors import NOT_A_FLOAT, NOT_AN_INTEGER, CommandError

__all__ = [
    "LLONG_MAX", "LLONG_MIN", "parse_int", "try_int", "parse_float", "parse_long_double",
    "format_long_double", "add_long_double", "glob_match",
]

LLONG_MAX = 2**63 - 1
LLONG_MIN = -(2**63)


def try_int(raw: bytes) -> int | None:
    """Redis's string2ll: canonical decimal only ("+1", "01", " 1", "-0" are not integers)."""
    if not raw or len(raw) > 20:
        return None
    try:
        value = int(raw)
    except ValueError:
        return None
    if b"%d" % value != raw or not LLONG_MIN <= value <= LLONG_MAX:
        return None
    return value


def parse_int(raw: bytes, error: str = NOT_AN_INTEGER) -> int:
    value = try_int(raw)
    if value is None:
        raise CommandError(error)
    return value


def parse_float(raw: bytes, error: str = NOT_A_FLOAT) -> float:
    """Redis's strtod-based parsing: no surrounding space, no NaN, `inf` allowed."""
    try:
        if not raw or raw[:1].isspace() or raw[-1:].isspace() or b"_" in raw:
            raise ValueError
        value = float(raw)
    except ValueError:
        try:
            value = float.fromhex(raw.decode())
        except (ValueError, UnicodeDecodeError):
            raise CommandError(error) from None
    if value != value:
        raise CommandError(error)
    return value


# -- long double (x87 80-bit) emulation for INCRBYFLOAT/HINCRBYFLOAT --------------------------------
# Redis does this arithmetic in `long double` and prints "%.17Lf" with trailing zeros trimmed. A
# Python float (53-bit mantissa) would print 10.6 as 10.59999999999999964, so values are kept as exact
# Fractions rounded to a 64-bit mantissa, which is what the hardware does.

_LD_MAX = Fraction(2) ** 16384


def _round_ld(x: Fraction) -> Fraction:
    if x == 0:
        return x
    exp = abs(x.numerator).bit_length() - abs(x.denominator).bit_length()
    shift = 63 - exp
    scaled = x * (Fraction(2) ** shift)
    mantissa = round(scaled)  # round half to even, as the FPU does
    return Fraction(mantissa) / (Fraction(2) ** shift)


def parse_long_double(raw: bytes) -> Fraction | float:
    """strtold: returns an exact Fraction (or +-inf as float). Raises NOT_A_FLOAT like Redis."""
    if not raw or len(raw) > 5 * 1024 or raw[:1].isspace() or b"_" in raw:
        raise CommandError(NOT_A_FLOAT)
    text = raw.decode("latin-1")
    try:
        if text.lower().lstrip("+-").startswith("0x"):
            value = float.fromhex(text)
            if math.isinf(value):
                return value
            return Fraction(value)
        dec = Decimal(text)
    except (InvalidOperation, ValueError):
        raise CommandError(NOT_A_FLOAT) from None
    if dec.is_nan() or text != text.strip():
        raise CommandError(NOT_A_FLOAT)
    if dec.is_infinite():
        return float(dec)
    value = _round_ld(Fraction(dec))
    if abs(value) >= _LD_MAX:
        raise CommandError(NOT_A_FLOAT)
    return value


def add_long_double(a: Fraction | float, b: Fraction | float) -> Fraction | float:
    if isinstance(a, float) or isinstance(b, float):
        return float(a) + float(b)
    result = _round_ld(a + b)
    return math.inf if abs(result) >= _LD_MAX else result


def format_long_double(value: Fraction) -> bytes:
    """ld2string(LD_STR_HUMAN): "%.17Lf" with trailing zeros (and a bare dot) removed."""
    scaled = value * 10**17
    rounded = round(scaled)  # printf rounds the exact binary value half to even
    negative = rounded < 0 or (rounded == 0 and value < 0)
    digits = str(abs(rounded)).rjust(18, "0")
    text = digits[:-17] + "." + digits[-17:]
    text = text.rstrip("0").rstrip(".")
    if negative and text != "0":
        text = "-" + text
    return text.encode()


def glob_match(pattern: bytes, text: bytes, nocase: bool = False) -> bool:
    """Redis's stringmatchlen: `*`, `?`, `[...]` with ranges and `^`, and `\\` escapes."""
    if nocase:
        pattern, text = pattern.lower(), text.lower()
    return _match(pattern, 0, text, 0)


def _match(p: bytes, pi: int, s: bytes, si: int) -> bool:
    plen, slen = len(p), len(s)
    while pi < plen:
        c = p[pi]
        if c == 42:  # '*'
            while pi + 1 < plen and p[pi + 1] == 42:
                pi += 1
            if pi + 1 == plen:
                return True
            for start in range(si, slen + 1):
                if _match(p, pi + 1, s, start):
                    return True
            return False
        if si >= slen:
            return False
        if c == 63:  # '?'
            si += 1
        elif c == 91:  # '['
            pi += 1
            negate = pi < plen and p[pi] == 94
            if negate:
                pi += 1
            matched = False
            while True:
                if pi >= plen:
                    pi -= 1  # Redis treats a missing ']' as the end of the pattern
                    break
                if p[pi] == 92 and pi + 2 < plen + 1 and pi + 1 < plen:  # escape
                    pi += 1
                    if p[pi] == s[si]:
                        matched = True
                elif p[pi] == 93:  # ']'
                    break
                elif pi + 2 < plen and p[pi + 1] == 45:  # range a-z
                    lo, hi = p[pi], p[pi + 2]
                    if lo > hi:
                        lo, hi = hi, lo
                    pi += 2
                    if lo <= s[si] <= hi:
                        matched = True
                elif p[pi] == s[si]:
                    matched = True
                pi += 1
            if negate:
                matched = not matched
            if not matched:
                return False
            si += 1
        elif c == 92 and pi + 1 < plen:  # '\' escape
            pi += 1
            if p[pi] != s[si]:
                return False
            si += 1
        else:
            if c != s[si]:
                return False
            si += 1
        pi += 1
    return si == slen
