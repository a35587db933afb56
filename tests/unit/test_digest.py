"""DEBUG DIGEST / DIGEST-VALUE against vectors observed on a real redis-server 7.0.15.

Each vector was produced by running the commands in the comment on a fresh server and
reading ``DEBUG DIGEST`` / ``DEBUG DIGEST-VALUE``; expire times only need to be present.
"""

from __future__ import annotations

from collections import deque

import pytest

from keyspace.digest import (
    EMPTY_DIGEST_HEX,
    dataset_digest,
    digest_value_replies,
    format_score,
    value_digest,
)

SOME_EXPIRE_MS = 4102444800000


class FakeZSet:
    """Stands in for the keyspace's sorted set: the digest only reads ``scores``."""

    def __init__(self, scores: dict[bytes, float]) -> None:
        self.scores = scores


class StoredBytes(bytes):
    """A bytes subclass, as the keyspace may use for strings."""


QUEUE = deque([b"a", b"b", b"1", b"c", b""])  # RPUSH queue a b 1 c ""
TAGS = {b"x", b"y", b"7", b""}  # SADD tags x y 7 ""
INTS = {b"1", b"2", b"300", b"-5"}  # SADD ints 1 2 300 -5 (intset encoded)
USER = {b"name": b"ann", b"age": b"42", b"": b"empty"}  # HSET user name ann age 42 "" empty
BOARD = FakeZSet(  # ZADD board 1 a 0.1 b -2.5 c inf d -inf e 1e300 f 2.5e-5 g 3 10 123456789012345678 h
    {
        b"a": 1.0,
        b"b": 0.1,
        b"c": -2.5,
        b"d": float("inf"),
        b"e": float("-inf"),
        b"f": 1e300,
        b"g": 2.5e-5,
        b"10": 3.0,
        b"h": 123456789012345678.0,
    }
)


def test_empty_dataset_is_forty_zeros() -> None:
    assert dataset_digest([]) == EMPTY_DIGEST_HEX == "0" * 40


def test_one_string() -> None:
    # SET greeting hello
    assert dataset_digest([(0, b"greeting", b"hello", None)]) == (
        "554b4594ef711f95bca6808165968a99c232c10c"
    )
    assert value_digest(b"hello").hex() == "36b23a1456b2dce2c3ed252c456761301dba8060"


def test_strings_with_expire_and_int_encoding() -> None:
    # SET greeting hello; SET counter 12345 (int encoded); SET session tok PXAT ..; SET cache x PX ..
    items = [
        (0, b"greeting", b"hello", None),
        (0, b"counter", b"12345", None),
        (0, b"session", b"tok", SOME_EXPIRE_MS),
        (0, b"cache", StoredBytes(b"x"), 1),
    ]
    assert dataset_digest(items) == "084c168772192f500c18acd725aa615d575df3b5"
    assert digest_value_replies(
        [b"12345", b"tok", b"x"], [None, SOME_EXPIRE_MS, 123]
    ) == [
        "e1cf90774e995ae03de66e8109dc5cb9d9c2dc83",
        "8cb81b2906c08222aa254e4da545734e36e8f52d",
        "0745672cb1bf060476eedeb8a28f5ffe1ff5a2be",
    ]


def test_expire_marker_changes_value_digest_but_not_its_time() -> None:
    assert value_digest(b"tok", 1) == value_digest(b"tok", SOME_EXPIRE_MS)
    assert value_digest(b"tok", 1) != value_digest(b"tok")


def test_list() -> None:
    assert dataset_digest([(0, b"queue", QUEUE, None)]) == (
        "b892de476164b61a7d8e0bee53fb19f32a80a058"
    )
    assert value_digest(QUEUE).hex() == "2508888710c9125900e796dea0b3b091c5b52f0b"


def test_list_order_matters() -> None:
    assert value_digest(deque([b"a", b"b"])) != value_digest(deque([b"b", b"a"]))


def test_set() -> None:
    assert dataset_digest([(0, b"tags", TAGS, None)]) == (
        "447f6d6c3232d02a826029c682bebb4d9b1e0d11"
    )
    assert value_digest(TAGS).hex() == "7c966fa96d181867e952a24b96cbd3e0094bd60d"


def test_integer_set_digests_string_forms() -> None:
    assert dataset_digest([(0, b"ints", INTS, None)]) == (
        "cbd387d569b5e61b1b80abf51f6670ee4254a2fe"
    )
    assert value_digest(INTS).hex() == "cbfe694af6390a40905c82de4bd861a009e598a0"


def test_hash() -> None:
    assert dataset_digest([(0, b"user", USER, None)]) == (
        "589e4ea34583e835b7389fc079f2a3dce54c07e4"
    )
    assert value_digest(USER).hex() == "c9366c9a7c45715b78be29d3f4283005c9cf3b46"


def test_hash_pairs_are_not_interchangeable() -> None:
    assert value_digest({b"a": b"b"}) != value_digest({b"b": b"a"})


def test_zset_with_fractional_negative_infinite_and_huge_scores() -> None:
    assert dataset_digest([(0, b"board", BOARD, None)]) == (
        "093a900b6112742ee8519b57773ae96dd07155ac"
    )
    assert value_digest(BOARD).hex() == "979a3cee3a7737aa9dd1754ad7f12e79d5fe4d3f"


def test_zset_negative_zero() -> None:
    # Redis keeps -0 only in skiplist encoding ("-0"); listpack stores it as integer 0.
    assert value_digest(FakeZSet({b"m": -0.0, b"n": 0.5})).hex() == (
        "6ae13b3e796094fa75f93058a5f5cdedfd38b4aa"
    )
    assert value_digest(FakeZSet({b"m": 0.0, b"n": 0.5})).hex() == (
        "a61cf7b037f75d5e170d1f8c523ff4b13c5a08c8"
    )


@pytest.mark.parametrize(
    ("score", "text"),
    [
        (1.0, b"1"),
        (0.1, b"0.10000000000000001"),
        (2.5e-5, b"2.5000000000000001e-05"),
        (1e300, b"1.0000000000000001e+300"),
        (float("inf"), b"inf"),
        (float("-inf"), b"-inf"),
        (-0.0, b"-0"),
        (123456789012345678.0, b"1.2345678901234568e+17"),
    ],
)
def test_score_text_is_c_percent_17g(score: float, text: bytes) -> None:
    assert format_score(score) == text


def test_several_databases() -> None:
    # db0: SET k v; db3: SET k v; db15: RPUSH k v w, SET t z PX ..
    items = [
        (15, b"t", b"z", SOME_EXPIRE_MS),
        (3, b"k", b"v", None),
        (15, b"k", deque([b"v", b"w"]), None),
        (0, b"k", b"v", None),
    ]
    assert dataset_digest(items) == "ad5ae6bbd4ac113d985e41963f19fb8132e12d67"
    assert dataset_digest(reversed(items)) == "ad5ae6bbd4ac113d985e41963f19fb8132e12d67"


def test_same_data_in_another_database_differs() -> None:
    assert dataset_digest([(0, b"k", b"v", None)]) != dataset_digest([(1, b"k", b"v", None)])


def test_digest_value_missing_key_is_zeros() -> None:
    assert digest_value_replies([None, b"hello"]) == [
        EMPTY_DIGEST_HEX,
        "36b23a1456b2dce2c3ed252c456761301dba8060",
    ]
    assert digest_value_replies([]) == []


def test_unknown_value_type_is_rejected() -> None:
    with pytest.raises(TypeError):
        value_digest(1.5)
