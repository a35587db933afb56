"""The sorted-set value: a member -> score dict plus an ordered index, with Redis 7.0's encoding rules.

`ZSet.scores` answers ZSCORE/ZMSCORE and membership in O(1); `ZSet.index`, a sortedcontainers
`SortedList` of `(score, member)` tuples, gives ranks, rank slices and score/lex range bounds in
O(log n), which is what Redis's skiplist provides. Members with equal scores sort by their bytes
(memcmp, shorter first on a tie), exactly as Python compares `bytes`.

Encoding (OBJECT ENCODING), verified against redis-server 7.0.15:

* A new sorted set is a `listpack`. Adding a *new* member converts it to a `skiplist` when the set
  would exceed `zset-max-listpack-entries` or the member is longer than `zset-max-listpack-value`
  (the limits in force at that moment). Updating a score never converts.
* The conversion sticks: removing members never converts back (an emptied set is deleted).
* Results built at once (ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE, ZRANGESTORE, RDB loading) are a
  listpack exactly when the whole result fits both limits (`from_pairs`).
* Signed zero: a listpack stores scores as text through d2string, which prints -0.0 as "0", so a
  listpack never holds -0.0 (ZADD k -0 m then ZSCORE replies "0"); a skiplist stores the double and
  keeps -0.0 (ZSCORE replies "-0"). We store what Redis would read back, so replies and DEBUG DIGEST
  match: scores written while `listpack` is True are normalised to +0.0, a skiplist keeps -0.0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

from sortedcontainers import SortedList

from keyspace.db import register_type
from keyspace.encoding import register_encoding

__all__ = ["MAX_LEX", "MIN_LEX", "LexBound", "ZSet", "listpack_limits"]

_DEFAULT_ENTRIES = 128
_DEFAULT_VALUE = 64


def listpack_limits(config: dict) -> tuple[int, int]:
    """(max members, max bytes per member) of a listpack sorted set, from the live config."""
    return (config.get("zset-max-listpack-entries", _DEFAULT_ENTRIES),
            config.get("zset-max-listpack-value", _DEFAULT_VALUE))


class LexBound:
    """One end of a lex range: `-` (below everything), `+` (above everything) or `[x` / `(x`."""

    __slots__ = ("exclusive", "kind", "value")

    def __init__(self, kind: int, value: bytes = b"", exclusive: bool = True) -> None:
        self.kind = kind            # -1: the "-" sentinel, +1: the "+" sentinel, 0: a value
        self.value = value
        self.exclusive = exclusive

    def __repr__(self) -> str:
        if self.kind:
            return "LexBound(-)" if self.kind < 0 else "LexBound(+)"
        return f"LexBound({'(' if self.exclusive else '['}{self.value!r})"

    def cmp(self, other: LexBound) -> int:
        """Redis's sdscmplex between two bounds (used to spot ranges that are always empty)."""
        if self.kind == other.kind and self.kind:
            return 0
        if self.kind < 0 or other.kind > 0:
            return -1
        if self.kind > 0 or other.kind < 0:
            return 1
        return (self.value > other.value) - (self.value < other.value)


MIN_LEX = LexBound(-1)
MAX_LEX = LexBound(1)


def _gte_min(member: bytes, bound: LexBound) -> bool:
    if bound.kind:
        return bound.kind < 0
    return member > bound.value if bound.exclusive else member >= bound.value


def _lte_max(member: bytes, bound: LexBound) -> bool:
    if bound.kind:
        return bound.kind > 0
    return member < bound.value if bound.exclusive else member <= bound.value


def _lex_range_empty(lo: LexBound, hi: LexBound) -> bool:
    cmp = lo.cmp(hi)
    return cmp > 0 or (cmp == 0 and (lo.exclusive or hi.exclusive))


class ZSet:
    """A Redis sorted set. Mutate it only through its methods so that both views stay in step."""

    __slots__ = ("index", "listpack", "scan_cache", "scores")

    type_name = "zset"

    def __init__(self, listpack: bool = True) -> None:
        self.scores: dict[bytes, float] = {}
        self.index: SortedList = SortedList()
        self.listpack = listpack
        """True while Redis 7.0 would keep this set as a listpack (see the module docstring)."""
        self.scan_cache: dict | None = None
        """ZSCAN snapshots of a skiplist set, created on first use."""

    # -- construction ----------------------------------------------------------------------------

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[bytes, float]], config: dict | None = None) -> ZSet:
        """A set built at once (store commands, RDB load): a listpack iff the result fits the limits
        of `config` (Redis's defaults when None).

        Later pairs overwrite earlier ones for the same member.
        """
        scores = dict(pairs)
        max_entries, max_value = listpack_limits(config or {})
        listpack = len(scores) <= max_entries and all(len(m) <= max_value for m in scores)
        zset = cls(listpack)
        if listpack:
            for member, score in scores.items():
                if score == 0.0:
                    scores[member] = 0.0
        zset.scores = scores
        zset.index = SortedList((score, member) for member, score in scores.items())
        return zset

    def copy(self) -> ZSet:
        """COPY keeps the encoding, as Redis's zsetDup does."""
        other = ZSet(self.listpack)
        other.scores = dict(self.scores)
        other.index = SortedList(self.index)
        return other

    def __reduce__(self):
        return (_restore, (list(self.scores.items()), self.listpack))

    # -- reads -----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.scores)

    def __contains__(self, member: bytes) -> bool:
        return member in self.scores

    def __iter__(self) -> Iterator[bytes]:
        """Members in rank order (lowest score first)."""
        for _, member in self.index:
            yield member

    def __repr__(self) -> str:
        encoding = "listpack" if self.listpack else "skiplist"
        return f"ZSet({encoding}, {[(m, s) for s, m in self.index]!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ZSet):
            return NotImplemented
        return self.scores == other.scores

    __hash__ = None  # type: ignore[assignment]

    def items(self) -> Iterator[tuple[bytes, float]]:
        """(member, score) in rank order."""
        for score, member in self.index:
            yield member, score

    def score(self, member: bytes) -> float | None:
        return self.scores.get(member)

    def rank(self, member: bytes) -> int | None:
        """0-based rank by ascending score, or None if `member` is absent. O(log n)."""
        score = self.scores.get(member)
        if score is None:
            return None
        return self.index.bisect_left((score, member))

    def entry(self, position: int) -> tuple[float, bytes]:
        """The (score, member) at a rank (negative counts from the end)."""
        return self.index[position]

    def slice(self, start: int, stop: int) -> list[tuple[float, bytes]]:
        """(score, member) pairs of ranks start..stop-1."""
        if start >= stop:
            return []
        return list(self.index.islice(start, stop))

    def score_span(self, lo: float, lo_exclusive: bool, hi: float, hi_exclusive: bool
                   ) -> tuple[int, int]:
        """Rank positions [start, stop) of the members with lo <(=) score <(=) hi."""
        index = self.index
        if lo_exclusive:
            start = len(index) if lo == math.inf else index.bisect_left((math.nextafter(lo, math.inf),))
        else:
            start = index.bisect_left((lo,))
        if hi_exclusive:
            stop = 0 if hi == -math.inf else index.bisect_left((hi,))
        else:
            stop = len(index) if hi == math.inf else index.bisect_left((math.nextafter(hi, math.inf),))
        return start, max(start, stop)

    def lex_span(self, lo: LexBound, hi: LexBound, reverse: bool = False) -> tuple[int, int]:
        """Rank positions [start, stop) of the members in a lex range.

        When every score is equal (the only case Redis defines) this is a binary search. Otherwise
        Redis walks its listpack from one end; that walk is reproduced so that small sets with mixed
        scores answer as Redis does (a skiplist's answer then depends on its random levels).
        """
        index = self.index
        n = len(index)
        if not n or _lex_range_empty(lo, hi):
            return 0, 0
        first_score = index[0][0]
        if first_score == index[-1][0]:
            if lo.kind:
                start = 0 if lo.kind < 0 else n
            elif lo.exclusive:
                start = index.bisect_right((first_score, lo.value))
            else:
                start = index.bisect_left((first_score, lo.value))
            if hi.kind:
                stop = 0 if hi.kind < 0 else n
            elif hi.exclusive:
                stop = index.bisect_left((first_score, hi.value))
            else:
                stop = index.bisect_right((first_score, hi.value))
            return start, max(start, stop)
        return self._lex_walk(lo, hi, reverse)

    def _lex_walk(self, lo: LexBound, hi: LexBound, reverse: bool) -> tuple[int, int]:
        """zzlFirstInLexRange / zzlLastInLexRange and the emit loop, over an unsorted-by-member list."""
        members = [m for _, m in self.index]
        n = len(members)
        if not _gte_min(members[-1], lo) or not _lte_max(members[0], hi):
            return 0, 0
        if not reverse:
            i = 0
            while i < n and not _gte_min(members[i], lo):
                i += 1
            if i == n or not _lte_max(members[i], hi):
                return 0, 0
            j = i
            while j < n and _lte_max(members[j], hi):
                j += 1
            return i, j
        j = n - 1
        while j >= 0 and not _lte_max(members[j], hi):
            j -= 1
        if j < 0 or not _gte_min(members[j], lo):
            return 0, 0
        i = j
        while i >= 0 and _gte_min(members[i], lo):
            i -= 1
        return i + 1, j + 1

    # -- writes ----------------------------------------------------------------------------------

    def insert(self, member: bytes, score: float, config: dict) -> None:
        """Add a member that is not present, converting to a skiplist first when Redis would."""
        if self.listpack:
            max_entries, max_value = listpack_limits(config)
            if len(self.scores) + 1 > max_entries or len(member) > max_value:
                self.listpack = False
            elif score == 0.0:
                score = 0.0  # a listpack cannot hold -0.0
        self.scores[member] = score
        self.index.add((score, member))

    def update(self, member: bytes, old: float, new: float) -> None:
        """Change the score of a present member (whose current score is `old`)."""
        if self.listpack and new == 0.0:
            new = 0.0
        index = self.index
        index.remove((old, member))
        index.add((new, member))
        self.scores[member] = new

    def discard(self, member: bytes) -> bool:
        """Remove a member; True if it was present."""
        score = self.scores.pop(member, None)
        if score is None:
            return False
        self.index.remove((score, member))
        return True

    def pop(self, count: int, highest: bool) -> list[tuple[bytes, float]]:
        """Remove and return up to `count` (member, score), lowest (or highest) first."""
        index = self.index
        count = min(count, len(index))
        out = []
        scores = self.scores
        for _ in range(count):
            score, member = index.pop(-1 if highest else 0)
            del scores[member]
            out.append((member, score))
        return out

    def remove_span(self, start: int, stop: int) -> int:
        """Remove the members of ranks start..stop-1; returns how many."""
        if start >= stop:
            return 0
        index = self.index
        scores = self.scores
        for _, member in index.islice(start, stop):
            del scores[member]
        del index[start:stop]
        return stop - start


def _restore(pairs: list[tuple[bytes, float]], listpack: bool) -> ZSet:
    zset = ZSet(listpack)
    zset.scores = dict(pairs)
    zset.index = SortedList((score, member) for member, score in pairs)
    return zset


def _encoding(value: ZSet, config: dict) -> str:
    return "listpack" if value.listpack else "skiplist"


register_type(ZSet, "zset")
register_encoding(ZSet, _encoding)
