"""The list value: a `collections.deque` of bytes, and the list algorithms Redis 7.0 runs on it.

A deque gives O(1) pushes and pops at both ends (LPUSH, RPOP, LMOVE ...) and O(min(i, n-i)) access
by index (LINDEX, LSET), the same costs as Redis's quicklist. The functions here hold the index
arithmetic of t_list.c so that the command handlers stay thin and the rules can be unit tested
without a server.

OBJECT ENCODING: Redis 7.0 stores every list as a `quicklist` (of listpack nodes), whatever its
size and `list-max-listpack-size`; the `listpack` encoding for small lists only arrived in 7.2.
"""

from __future__ import annotations

from collections import deque
from itertools import islice

from keyspace.encoding import register_encoding

__all__ = ["list_range", "trim", "remove", "pop_many", "positions", "wrap_int64"]


def _list_encoding(value: deque, config: dict) -> str:
    return "quicklist"


register_encoding(deque, _list_encoding)


def wrap_int64(n: int) -> int:
    """Two's-complement wrap to a C `long`, for arithmetic Redis lets overflow (LPOS RANK)."""
    return (n + 2**63) % 2**64 - 2**63


def _clamp(length: int, start: int, end: int) -> tuple[int, int] | None:
    """Redis's range rule (LRANGE, LTRIM): negative counts from the end; None when empty."""
    if start < 0:
        start += length
    if end < 0:
        end += length
    if start < 0:
        start = 0
    if start > end or start >= length:
        return None
    if end >= length:
        end = length - 1
    return start, end


def list_range(value: deque, start: int, end: int) -> list[bytes]:
    """LRANGE: the elements from `start` to `end` inclusive, walking from the nearer end."""
    length = len(value)
    bounds = _clamp(length, start, end)
    if bounds is None:
        return []
    start, end = bounds
    if start == 0 and end == length - 1:
        return list(value)
    if start > length - 1 - end:
        out = list(islice(reversed(value), length - 1 - end, length - start))
        out.reverse()
        return out
    return list(islice(value, start, end + 1))


def trim(value: deque, start: int, end: int) -> int:
    """LTRIM in place; returns how many elements were removed."""
    length = len(value)
    bounds = _clamp(length, start, end)
    if bounds is None:
        value.clear()
        return length
    start, end = bounds
    left, right = start, length - 1 - end
    removed = left + right
    if removed <= length - removed:
        for _ in range(left):
            value.popleft()
        for _ in range(right):
            value.pop()
    else:
        kept = list(islice(value, start, end + 1))
        value.clear()
        value.extend(kept)
    return removed


def remove(value: deque, element: bytes, count: int) -> int:
    """LREM: drop up to |count| occurrences (all for 0), from the tail when count < 0."""
    if element not in value:
        return 0
    if count == 1:
        value.remove(element)
        return 1
    limit = abs(count) or len(value)
    removed = 0
    kept = []
    for item in (value if count >= 0 else reversed(value)):
        if removed < limit and item == element:
            removed += 1
        else:
            kept.append(item)
    if count < 0:
        kept.reverse()
    value.clear()
    value.extend(kept)
    return removed


def pop_many(value: deque, count: int, left: bool) -> list[bytes]:
    """Pop up to `count` elements from one end, in pop order (LPOP/RPOP/LMPOP with COUNT)."""
    if count >= len(value):
        items = list(value)
        if not left:
            items.reverse()
        value.clear()
        return items
    pop = value.popleft if left else value.pop
    return [pop() for _ in range(count)]


def positions(value: deque, element: bytes, rank: int, count: int | None,
              maxlen: int) -> int | None | list[int]:
    """LPOS after option parsing: `rank` != 0 (negative searches from the tail), `count` None when
    the option was not given (reply one index or None), `maxlen` 0 for no limit.

    Mirrors Redis's C arithmetic: RANK -9223372036854775808 negates to itself, so it matches from
    the first hit and COUNT never stops it.
    """
    from_tail = rank < 0
    if from_tail:
        rank = wrap_int64(-rank)
    found: list[int] = []
    if element in value:
        length = len(value)
        items = reversed(value) if from_tail else iter(value)
        if maxlen:
            items = islice(items, maxlen)
        matches = 0
        for index, item in enumerate(items):
            if item == element:
                matches += 1
                if matches >= rank:
                    where = length - 1 - index if from_tail else index
                    if count is None:
                        return where
                    found.append(where)
                    if count and wrap_int64(matches - rank + 1) >= count:
                        break
    return found if count is not None else None
