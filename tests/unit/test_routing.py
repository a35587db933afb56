"""Key -> slot -> shard routing, as Redis Cluster hashes keys."""

from keyspace.routing import ShardMap, key_slot


def test_crc16_xmodem_and_hash_tags():
    assert key_slot(b"123456789") == 0x31C3  # the CRC16/XMODEM check value
    assert key_slot(b"foo") == 12182          # CLUSTER KEYSLOT foo on redis-server
    assert key_slot(b"{user1000}.following") == key_slot(b"user1000")
    assert key_slot(b"foo{}{bar}") != key_slot(b"bar")


def test_sample_keys_land_on_distinct_shards_in_order():
    shard_map = ShardMap(4)
    keys = shard_map.sample_keys("k", 4)
    assert [shard_map.shard_of(k.encode()) for k in keys] == [0, 1, 2, 3]
    assert ShardMap(1).sample_keys("k", 1) == ["k0"]
