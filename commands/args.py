"""Argument parsing shared by every command family, with Redis's strict number rules."""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from config import stringmatch as glob_match  # Redis's stringmatchlen, one copy for all
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
    """Redis's string2d (strtod): no surrounding space, no NaN; "inf" is allowed but a decimal that
    overflows to infinity, or a non-zero one that underflows to zero, is refused (ERANGE)."""
    if not raw or b"_" in raw:
        raise CommandError(error)
    text = raw.decode("latin-1")
    if text != text.strip():
        raise CommandError(error)
    if text.lower().lstrip("+-").startswith("0x"):
        exact = _parse_hex_float(text)
        if exact is None:
            raise CommandError(error)
        try:
            value = float(exact)
        except OverflowError:
            raise CommandError(error) from None
        if value == 0 and exact != 0:
            raise CommandError(error)
        return value
    try:
        value = float(text)
    except ValueError:
        raise CommandError(error) from None
    if value != value:
        raise CommandError(error)
    if math.isinf(value) and not text.lower().lstrip("+-").startswith("inf"):
        raise CommandError(error)
    if value == 0 and _NONZERO_MANTISSA.match(text):
        raise CommandError(error)
    return value


_NONZERO_MANTISSA = re.compile(r"[+-]?[0.]*[1-9]")


# -- long double (x87 80-bit) emulation for INCRBYFLOAT/HINCRBYFLOAT --------------------------------
# Redis does this arithmetic in `long double` and prints "%.17Lf" with trailing zeros trimmed. A
# Python float (53-bit mantissa) would print 10.6 as 10.59999999999999964, so values are kept as exact
# Fractions rounded to a 64-bit mantissa, which is what the hardware does.

_LD_MAX = Fraction(2) ** 16384
# strtold rounds anything at or below half the smallest subnormal (2**-16445) to zero and flags ERANGE,
# which Redis's string2ld rejects.
_LD_UNDERFLOW = Fraction(1, 2**16446)
_MAX_LONG_DOUBLE_CHARS = 5 * 1024
_HEX_FLOAT = re.compile(r"([+-]?)0[xX]([0-9a-fA-F]*)(?:\.([0-9a-fA-F]*))?(?:[pP]([+-]?[0-9]+))?")


def _round_ld(x: Fraction) -> Fraction:
    if x == 0:
        return x
    num, den = abs(x.numerator), x.denominator
    exp = num.bit_length() - den.bit_length()
    if (num << max(-exp, 0)) < (den << max(exp, 0)):
        exp -= 1  # now 2**exp <= |x| < 2**(exp+1): exactly 64 significant bits below
    shift = 63 - exp
    scaled = x * (Fraction(2) ** shift)
    mantissa = round(scaled)  # round half to even, as the FPU does
    return Fraction(mantissa) / (Fraction(2) ** shift)


def _parse_hex_float(text: str) -> Fraction | None:
    """C99 hex float ("0x1.8p3") as an exact Fraction; float.fromhex would round to 53 bits."""
    match = _HEX_FLOAT.fullmatch(text)
    if match is None:
        return None
    sign, whole, fraction, exponent = match.groups()
    fraction = fraction or ""
    if not whole and not fraction:
        return None
    value = Fraction(int(whole + fraction, 16), 16 ** len(fraction))
    if exponent is not None and value:
        power = int(exponent)
        magnitude = value.numerator.bit_length() - value.denominator.bit_length() + power
        if magnitude > 16400:  # past the long double range: overflow, without computing 2**power
            return None
        if magnitude < -16500:  # underflows to zero
            value = _LD_UNDERFLOW / 2
        else:
            value *= Fraction(2) ** power
    return -value if sign == "-" else value


def parse_long_double(raw: bytes) -> Fraction | float:
    """strtold as Redis's string2ld uses it: an exact Fraction (or +-inf as float).

    Raises NOT_A_FLOAT for what Redis rejects: empty or 5 KB+ input, surrounding space, NaN,
    overflow past the long double range and non-zero values that underflow to zero.
    """
    if not raw or len(raw) >= _MAX_LONG_DOUBLE_CHARS or b"_" in raw:
        raise CommandError(NOT_A_FLOAT)
    text = raw.decode("latin-1")
    if text != text.strip():
        raise CommandError(NOT_A_FLOAT)
    if text.lower().lstrip("+-").startswith("0x"):
        exact = _parse_hex_float(text)
        if exact is None:
            raise CommandError(NOT_A_FLOAT)
    else:
        try:
            dec = Decimal(text)
        except InvalidOperation:
            raise CommandError(NOT_A_FLOAT) from None
        if dec.is_nan():
            raise CommandError(NOT_A_FLOAT)
        if dec.is_infinite():
            return float(dec)
        # Bound the exponent before converting exactly: 1e999999999 must not build a huge int.
        if dec.is_zero():
            exact = Fraction(0)
        elif dec.adjusted() > 4933:
            raise CommandError(NOT_A_FLOAT)
        elif dec.adjusted() < -4960:
            exact = _LD_UNDERFLOW / 2
        else:
            exact = Fraction(dec)
    if exact != 0 and abs(exact) <= _LD_UNDERFLOW:
        raise CommandError(NOT_A_FLOAT)
    value = _round_ld(exact)
    if abs(value) >= _LD_MAX:
        raise CommandError(NOT_A_FLOAT)
    return value


def add_long_double(a: Fraction | float, b: Fraction | float) -> Fraction | float:
    if isinstance(a, float) or isinstance(b, float):
        return float(a) + float(b)
    result = _round_ld(a + b)
    return math.inf if abs(result) >= _LD_MAX else result


def _decimal_digits(number: int) -> str:
    """str(number) for a non-negative int of any size (str() refuses more than 4300 digits)."""
    if number < 10**4000:
        return str(number)
    high, low = divmod(number, 10**4000)
    return _decimal_digits(high) + str(low).rjust(4000, "0")


def format_long_double(value: Fraction) -> bytes:
    """ld2string(LD_STR_HUMAN): "%.17Lf" with trailing zeros (and a bare dot) removed."""
    scaled = value * 10**17
    rounded = round(scaled)  # printf rounds the exact binary value half to even
    negative = rounded < 0 or (rounded == 0 and value < 0)
    digits = _decimal_digits(abs(rounded)).rjust(18, "0")
    text = digits[:-17] + "." + digits[-17:]
    text = text.rstrip("0").rstrip(".")
    if negative and text != "0":
        text = "-" + text
    return text.encode()
