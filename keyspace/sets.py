"""The set value: a Python `set` of bytes that remembers which encoding Redis 7.0 would use.

Redis 7.0 keeps a set as an `intset` while every member is a canonical 64-bit integer and the set
has never grown past `set-max-intset-entries`; otherwise it converts it to a `hashtable`, for good:
removing members never converts back. The only ways back to an intset are building a new set (the
*STORE commands, SPOP with a count close to the cardinality, loading a dataset), which
`set_from_members` models.

The encoding matters beyond OBJECT ENCODING: an intset is sorted, so Redis replies with its members
in ascending numeric order (SMEMBERS, SSCAN, SUNION of small integer sets ...). `ordered` gives that
order.
"""

from __future__ import annotations

from collections.abc import Iterable

from keyspace.encoding import register_encoding

__all__ = ["HashtableSet", "SetValue", "intset_limit", "is_intset_member", "ordered", "set_from_members"]

_INTSET_HARD_LIMIT = 1 << 30
"""Redis caps intsets at 1G entries whatever the config says (intset internals)."""


def is_intset_member(raw: bytes) -> bool:
    """Redis's string2ll on a member: canonical decimal within int64 ("01", "-0", "+1" are not)."""
    n = len(raw)
    if n == 0 or n > 20:
        return False
    if raw[0] == 45:  # '-'
        if n == 1 or raw[1] == 48 or not raw[1:].isdigit():
            return False
        return n < 20 or raw <= b"-9223372036854775808"
    if not raw.isdigit():
        return False
    if raw[0] == 48:  # '0' only on its own
        return n == 1
    return n < 19 or (n == 19 and raw <= b"9223372036854775807")


def intset_limit(config: dict) -> int:
    """The largest intset size allowed by `set-max-intset-entries` (and the 1G hard cap)."""
    return min(config.get("set-max-intset-entries", 512), _INTSET_HARD_LIMIT)


class SetValue(set):
    """A Redis set, intset-encoded; `HashtableSet` is the same value once converted.

    The encoding is the class, so a new set costs no Python-level __init__ and a conversion is
    a class change (`to_hashtable`): nothing is stored per value but the optional SSCAN cache.
    """

    __slots__ = ("scan_cache",)
    hashtable = False
    """True once Redis would have converted the set to a hashtable (see `HashtableSet`)."""

    def to_hashtable(self) -> None:
        self.__class__ = HashtableSet

    def reencode(self, limit: int) -> None:
        """Take the encoding a set rebuilt from these members would have (SPOP's third case)."""
        as_intset = len(self) <= limit and all(map(is_intset_member, self))
        self.__class__ = SetValue if as_intset else HashtableSet

    def copy(self) -> SetValue:
        """COPY keeps the encoding, as Redis's setTypeDup does."""
        return type(self)(self)

    def __reduce__(self):
        return (type(self), (list(self),))

    def add_members(self, members: list[bytes], limit: int) -> int:
        """SADD semantics: add, then convert as Redis would. Returns how many were new.

        Conversion needs a check only when something was added: an intset never holds a
        non-integer, so a non-integer argument that is already a member is impossible.
        """
        before = len(self)
        self.update(members)
        added = len(self) - before
        if added and not self.hashtable and (
                len(self) > limit or not all(map(is_intset_member, members))):
            self.__class__ = HashtableSet
        return added

    def add_member(self, member: bytes, limit: int) -> bool:
        """Add one member (SMOVE's destination); True if it was new."""
        if member in self:
            return False
        self.add(member)
        if not self.hashtable and (len(self) > limit or not is_intset_member(member)):
            self.__class__ = HashtableSet
        return True


class HashtableSet(SetValue):
    """A Redis set that Redis would hold as a hashtable: sticky, whatever is removed later."""

    __slots__ = ()
    hashtable = True


def set_from_members(members: Iterable[bytes], config: dict) -> SetValue:
    """A fresh set built by adding `members`: an intset iff all are integers and few enough.

    This is what Redis gets when it creates a set and adds members one by one (setTypeCreate +
    setTypeAdd), and what loading a dataset produces.
    """
    value = SetValue(members)
    if len(value) > intset_limit(config) or not all(map(is_intset_member, value)):
        value.__class__ = HashtableSet
    return value


def ordered(value: set, members: Iterable[bytes] | None = None) -> list[bytes]:
    """Members in the order Redis would iterate them: ascending integers for an intset.

    `members` (default: all of `value`) is a subset to order the same way.
    """
    items = list(value if members is None else members)
    if not _is_hashtable(value):
        items.sort(key=int)
    return items


def _is_hashtable(value: set) -> bool:
    flag = getattr(value, "hashtable", None)
    if flag is None:  # a plain set (made outside this module): judge by content
        return _plain_encoding(value, {}) == "hashtable"
    return flag


def _plain_encoding(value: set, config: dict) -> str:
    if len(value) > intset_limit(config) or not all(map(is_intset_member, value)):
        return "hashtable"
    return "intset"


def _encoding(value: SetValue, config: dict) -> str:
    return "hashtable" if value.hashtable else "intset"


register_encoding(SetValue, _encoding)
register_encoding(HashtableSet, _encoding)
register_encoding(set, _plain_encoding)
