"""The AOF file layer against a real redis-server 7.0: each side reads the other's directory.

- Redis writes (appendonly yes, RESP base, timestamp annotations, MULTI/EXEC, several dbs), rewrites
  and writes again; AofDir/load_all must understand its manifest and replay the same data.
- We build a directory (base + incr files, a rewrite installed by install_base); Redis must load it
  and hold the same data, and leave our manifest as it is.
- A legacy single appendonly.aof adopted by Redis and by adopt_legacy ends in the same layout.
- Truncated, corrupted and malformed-manifest directories: both sides recover or refuse alike, and
  cut the file at the same offset.

Each test starts its own redis-server on a free loopback port in a temp dir and stops it by pid.
No Shardis server is involved.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import pytest
import redis

from persistence.aof import (
    AofDir,
    AofError,
    encode_command,
    load_all,
    select_command,
    timestamp_annotation,
)
from persistence.manifest import ManifestError
from tests.servers import REDIS_SERVER, ServerProcess, free_port

pytestmark = [
    pytest.mark.differential,
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed"),
]

AOF_ON = ("--appendonly", "yes", "--aof-use-rdb-preamble", "no")


def redis_args(workdir: Path, port: int, *extra: str) -> list[str]:
    return [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--dir", str(workdir), *extra]


def start(workdir: Path, *extra: str) -> ServerProcess:
    port = free_port()
    server = ServerProcess(redis_args(workdir, port, *extra), port, str(workdir), "redis")
    server.wait_ready(20)
    return server


def must_refuse(workdir: Path, *extra: str) -> str:
    """Run redis-server expecting it to refuse to start; return its log."""
    proc = subprocess.run(redis_args(workdir, free_port(), *extra), capture_output=True,
                          timeout=20, cwd=workdir, check=False)
    assert proc.returncode != 0, proc.stdout.decode(errors="replace")[-2000:]
    return proc.stdout.decode(errors="replace")


def client(server: ServerProcess, db: int = 0) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=server.port, db=db, socket_timeout=10)


def stop(server: ServerProcess) -> None:
    assert server.stop() == 0, log_of(server)


def log_of(server: ServerProcess) -> str:
    return Path(server.log_path).read_text(errors="replace")


def wait_rewrite_done(c: redis.Redis) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        info = c.info("persistence")
        if not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]:
            assert info["aof_last_bgrewrite_status"] == "ok"
            return
        time.sleep(0.02)  # polling interval, bounded by the deadline
    raise TimeoutError("BGREWRITEAOF did not finish")


def dataset(server: ServerProcess, dbs=(0, 1, 2)) -> dict[int, dict[bytes, bytes]]:
    out = {}
    for db in dbs:
        c = client(server, db)
        keys = sorted(c.keys("*"))
        if keys:
            out[db] = dict(zip(keys, c.mget(keys)))
        c.close()
    return out


def replay(aofdir: AofDir, *, truncated_ok: bool = False, on_rdb=None):
    """Load with load_all into a model of string keys per db; returns (data, LoadResult)."""
    dbs: dict[int, dict[bytes, bytes]] = defaultdict(dict)
    current = [0]

    def on_command(argv: list[bytes]) -> None:
        name, args = argv[0].upper(), argv[1:]
        db = dbs[current[0]]
        if name == b"SELECT":
            current[0] = int(args[0])
        elif name == b"SET":
            db[args[0]] = args[1]
        elif name == b"MSET":
            db.update(zip(args[0::2], args[1::2]))
        elif name in (b"DEL", b"UNLINK"):
            for key in args:
                db.pop(key, None)
        elif name == b"INCR":
            db[args[0]] = b"%d" % (int(db.get(args[0], b"0")) + 1)
        elif name == b"INCRBY":
            db[args[0]] = b"%d" % (int(db.get(args[0], b"0")) + int(args[1]))
        elif name == b"APPEND":
            db[args[0]] = db.get(args[0], b"") + args[1]
        elif name in (b"PEXPIREAT", b"PERSIST"):
            pass
        else:
            raise AssertionError(f"unexpected command in the AOF: {argv!r}")

    result = load_all(aofdir, truncated_ok=truncated_ok, on_rdb=on_rdb, on_command=on_command)
    return {db: dict(sorted(keys.items())) for db, keys in dbs.items() if keys}, result


def write_workload(server: ServerProcess, tag: str) -> None:
    c0, c1 = client(server, 0), client(server, 1)
    for i in range(50):
        c0.set(f"{tag}:s{i}", f"v{i}")
    c0.mset({f"{tag}:m{i}": f"mv{i}" for i in range(5)})
    c0.set(f"{tag}:ttl", "x", ex=1000)
    c0.incr(f"{tag}:counter")
    c0.incrby(f"{tag}:counter", 41)
    c0.append(f"{tag}:s1", "+appended")
    c0.delete(f"{tag}:s2", f"{tag}:s3")
    c1.set(f"{tag}:in-db1", b"bin\r\n\x00\xff")
    pipe = c1.pipeline(transaction=True)
    pipe.set(f"{tag}:tx1", "a").incr(f"{tag}:tx-counter").delete(f"{tag}:in-db1")
    pipe.execute()
    c0.close()
    c1.close()


# -- Redis writes, we read ---------------------------------------------------------------------

def test_real_redis_directory_replays_to_the_same_data(tmp_path):
    server = start(tmp_path, *AOF_ON, "--aof-timestamp-enabled", "yes")
    try:
        write_workload(server, "before")
        c = client(server)
        assert c.bgrewriteaof()
        wait_rewrite_done(c)
        write_workload(server, "after")
        c.close()
        expected = dataset(server)
    finally:
        stop(server)
    aofdir = AofDir(str(tmp_path))
    m = aofdir.manifest
    assert m.base.name == "appendonly.aof.2.base.aof" and m.base.seq == 2
    assert [(i.name, i.seq) for i in m.incr] == [("appendonly.aof.2.incr.aof", 2)]
    assert not m.history
    with open(aofdir.manifest_path) as f:
        assert f.read() == m.render()
    got, result = replay(aofdir)
    assert got == expected
    assert not result.truncated and result.commands > 100
    assert result.files[0].annotations >= 1  # the rewritten base starts with a #TS line
    assert result.total_size == aofdir.total_size()


def test_real_redis_rdb_preamble_base_goes_to_on_rdb(tmp_path):
    server = start(tmp_path, "--appendonly", "yes", "--aof-use-rdb-preamble", "yes")
    try:
        write_workload(server, "snap")
        c = client(server)
        c.bgrewriteaof()
        wait_rewrite_done(c)
        c.set("later", "1")
        c.close()
    finally:
        stop(server)
    aofdir = AofDir(str(tmp_path))
    assert aofdir.manifest.base.name == "appendonly.aof.2.base.rdb"
    blobs = []
    got, result = replay(aofdir, on_rdb=lambda data: blobs.append(data))
    assert len(blobs) == 1 and blobs[0][:9] == b"REDIS0010"
    assert len(blobs[0]) == aofdir.base_size() == result.files[0].rdb_bytes
    assert got == {0: {b"later": b"1"}}


# -- we write, Redis reads ---------------------------------------------------------------------

def test_real_redis_loads_a_directory_we_built(tmp_path):
    aofdir = AofDir(str(tmp_path))
    aofdir.create_empty(select_command(0) + encode_command([b"SET", b"base", b"0"]), is_rdb=False)
    with aofdir.open_last_incr() as w:
        w.write(timestamp_annotation(int(time.time())) + select_command(1)
                + encode_command([b"SET", b"one", b"1"])
                + encode_command([b"MULTI"]) + encode_command([b"SET", b"tx", b"\r\n\x00"])
                + encode_command([b"INCR", b"n"]) + encode_command([b"EXEC"]))
    # A rewrite: new incr, writes keep going into it, then a new base is installed.
    _, w2 = aofdir.open_new_incr()
    w2.write(select_command(0) + encode_command([b"SET", b"during", b"rewrite"]))
    tmp = aofdir.temp_base_path()
    with open(tmp, "wb") as f:
        f.write(select_command(0) + encode_command([b"SET", b"base", b"0"])
                + select_command(1) + encode_command([b"SET", b"one", b"1"])
                + encode_command([b"SET", b"tx", b"\r\n\x00"]) + encode_command([b"SET", b"n", b"1"]))
    aofdir.install_base(tmp, is_rdb=False, keep_incr_from=w2.seq)
    w2.write(select_command(0) + encode_command([b"SET", b"after", b"swap"])
             + encode_command([b"DEL", b"base"]))
    w2.close()
    manifest_before = Path(aofdir.manifest_path).read_text()
    assert manifest_before == ("file appendonly.aof.2.base.aof seq 2 type b\n"
                               "file appendonly.aof.2.incr.aof seq 2 type i\n")
    ours, _ = replay(AofDir(str(tmp_path)))

    server = start(tmp_path, *AOF_ON)
    try:
        theirs = dataset(server)
        assert client(server).dbsize() == 2 and client(server, 1).dbsize() == 3
    finally:
        stop(server)
    assert theirs == ours == {0: {b"after": b"swap", b"during": b"rewrite"},
                              1: {b"n": b"1", b"one": b"1", b"tx": b"\r\n\x00"}}
    assert Path(aofdir.manifest_path).read_text() == manifest_before
    assert "Truncating" not in log_of(server)


def test_real_redis_continues_our_incr_seqs(tmp_path):
    """Redis appends to our last incr and names its next files after our seqs."""
    aofdir = AofDir(str(tmp_path))
    aofdir.create_empty(b"", is_rdb=False)
    with aofdir.open_last_incr() as w:
        w.write(encode_command([b"SET", b"k", b"v"]))
    server = start(tmp_path, *AOF_ON)
    try:
        c = client(server)
        c.set("k2", "v2")
        c.bgrewriteaof()
        wait_rewrite_done(c)
        c.set("k3", "v3")
        c.close()
    finally:
        stop(server)
    fresh = AofDir(str(tmp_path))
    assert fresh.manifest.base.name == "appendonly.aof.2.base.aof"
    assert [i.name for i in fresh.manifest.incr] == ["appendonly.aof.2.incr.aof"]
    assert replay(fresh)[0] == {0: {b"k": b"v", b"k2": b"v2", b"k3": b"v3"}}


# -- legacy adoption ---------------------------------------------------------------------------

def test_legacy_adoption_matches_redis(tmp_path):
    legacy = (select_command(0) + encode_command([b"SET", b"old", b"style"])
              + select_command(2) + encode_command([b"SET", b"x", b"y"]))
    theirs_dir, ours_dir = tmp_path / "theirs", tmp_path / "ours"
    for d in (theirs_dir, ours_dir):
        d.mkdir()
        (d / "appendonly.aof").write_bytes(legacy)

    server = start(theirs_dir, *AOF_ON)
    try:
        theirs = dataset(server)
    finally:
        stop(server)

    aofdir = AofDir(str(ours_dir))
    assert aofdir.adopt_legacy()
    ours, _ = replay(aofdir)
    aofdir.open_last_incr().close()  # what the server does next on start

    def layout(d: Path):
        sub = d / "appendonlydir"
        return (sorted(p.name for p in d.iterdir() if p.name != "redis.log"),
                sorted(p.name for p in sub.iterdir()),
                (sub / "appendonly.aof.manifest").read_text(),
                (sub / "appendonly.aof").read_bytes())

    assert layout(ours_dir) == layout(theirs_dir)
    assert layout(ours_dir)[2] == ("file appendonly.aof seq 1 type b\n"
                                   "file appendonly.aof.1.incr.aof seq 1 type i\n")
    assert ours == theirs == {0: {b"old": b"style"}, 2: {b"x": b"y"}}


# -- truncation and corruption -----------------------------------------------------------------

def build_incr_dir(root: Path, incr: bytes, *, extra_last: bytes | None = None) -> Path:
    """A directory with an empty base, `incr` as incr 1, and optionally another incr after it."""
    aofdir = AofDir(str(root))
    aofdir.create_empty(b"", is_rdb=False)
    with aofdir.open_last_incr() as w:
        w.write(incr)
    if extra_last is not None:
        _, w = aofdir.open_new_incr()
        w.write(extra_last)
        w.close()
    return root


RECORDS = [select_command(0), encode_command([b"SET", b"a", b"1"]),
           encode_command([b"SET", b"bb", b"22"]), encode_command([b"APPEND", b"a", b"xyz"]),
           encode_command([b"SET", b"last", b"value-of-the-last-command"])]
STREAM = b"".join(RECORDS)
LAST = len(STREAM) - len(RECORDS[-1])


@pytest.mark.parametrize("cut", [LAST + 1, LAST + 3, LAST + 4, LAST + 9, LAST + 17, LAST + 21,
                                 len(STREAM) - 2, len(STREAM) - 1,
                                 len(RECORDS[0]) + len(RECORDS[1]) - 1])
def test_truncated_last_file_is_cut_where_redis_cuts_it(tmp_path, cut):
    theirs_dir = build_incr_dir(tmp_path / "theirs", STREAM[:cut])
    ours_dir = build_incr_dir(tmp_path / "ours", STREAM[:cut])
    incr = "appendonlydir/appendonly.aof.1.incr.aof"

    server = start(theirs_dir, *AOF_ON, "--aof-load-truncated", "yes")
    try:
        theirs = dataset(server)
    finally:
        stop(server)
    assert "Truncating the AOF appendonly.aof.1.incr.aof" in log_of(server)

    ours, result = replay(AofDir(str(ours_dir)), truncated_ok=True)
    assert result.truncated
    assert (ours_dir / incr).stat().st_size == (theirs_dir / incr).stat().st_size
    assert ours == theirs


def test_incomplete_multi_at_the_end_is_reverted_like_redis(tmp_path):
    stream = STREAM + encode_command([b"MULTI"]) + encode_command([b"SET", b"t", b"x"])
    theirs_dir = build_incr_dir(tmp_path / "theirs", stream)
    ours_dir = build_incr_dir(tmp_path / "ours", stream)
    server = start(theirs_dir, *AOF_ON, "--aof-load-truncated", "yes")
    try:
        theirs = dataset(server)
    finally:
        stop(server)
    assert "Revert incomplete MULTI/EXEC transaction" in log_of(server)
    ours, result = replay(AofDir(str(ours_dir)), truncated_ok=True)
    incr = "appendonlydir/appendonly.aof.1.incr.aof"
    assert (ours_dir / incr).stat().st_size == (theirs_dir / incr).stat().st_size == len(STREAM)
    assert ours == theirs and result.files[-1].reverted_multi


def test_truncation_without_permission_refuses_like_redis(tmp_path):
    root = build_incr_dir(tmp_path, STREAM[:-5])
    log = must_refuse(root, *AOF_ON, "--aof-load-truncated", "no")
    assert "Unexpected end of file reading the append only file appendonly.aof.1.incr.aof" in log
    with pytest.raises(AofError) as info:
        replay(AofDir(str(root)), truncated_ok=False)
    assert info.value.kind == "truncated" and info.value.offset == LAST
    assert "appendonly.aof.1.incr.aof" in str(info.value)


def test_truncated_file_that_is_not_the_last_refuses_like_redis(tmp_path):
    theirs = build_incr_dir(tmp_path / "theirs", STREAM[:-5], extra_last=STREAM)
    ours = build_incr_dir(tmp_path / "ours", STREAM[:-5], extra_last=STREAM)
    log = must_refuse(theirs, *AOF_ON, "--aof-load-truncated", "yes")
    assert "the truncated file is not the last file" in log
    with pytest.raises(AofError, match="appendonly.aof.1.incr.aof at offset .*not the last file"):
        replay(AofDir(str(ours)), truncated_ok=True)
    # Redis cuts the file before it gives up (a second start then loads it); we leave it alone.
    incr = "appendonlydir/appendonly.aof.1.incr.aof"
    assert (theirs / incr).stat().st_size == LAST
    assert (ours / incr).stat().st_size == len(STREAM) - 5


@pytest.mark.parametrize("offset, byte", [(LAST, b"x"), (LAST + 4, b"x"),
                                          (len(RECORDS[0]), b"+"), (LAST + 13, b"%")])
def test_corruption_refuses_like_redis(tmp_path, offset, byte):
    damaged = STREAM[:offset] + byte + STREAM[offset + 1:]
    root = build_incr_dir(tmp_path, damaged)
    log = must_refuse(root, *AOF_ON, "--aof-load-truncated", "yes")
    assert "Bad file format reading the append only file appendonly.aof.1.incr.aof" in log
    with pytest.raises(AofError) as info:
        replay(AofDir(str(root)), truncated_ok=True)
    assert info.value.kind == "format" and info.value.offset == offset
    assert str(info.value).startswith("Bad file format reading the append only file "
                                      f"appendonly.aof.1.incr.aof at offset {offset}")


# -- manifests ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, reason", [
    ("", "Found an empty AOF manifest"),
    ("file appendonly.aof.1.incr.aof seq 1 type i", "The AOF manifest file contains too long line"),
    ("file appendonly.aof.1.incr.aof seq 1 type i\n\n", "Invalid AOF manifest file format"),
    ("file appendonly.aof.1.incr.aof seq 1\n", "Invalid AOF manifest file format"),
    ('file "appendonly.aof.1.incr.aof seq 1 type i\n', "Invalid AOF manifest file format"),
    ("file dir/appendonly.aof.1.incr.aof seq 1 type i\n", "File can't be a path, just a filename"),
    ("file a seq 1 type b\nfile b seq 2 type b\n", "Found duplicate base file information"),
    ("file a seq 2 type i\nfile b seq 1 type i\n", "Found a non-monotonic sequence number"),
    ("file a seq 1 type z\n", "Unknown AOF file type"),
])
def test_bad_manifest_refused_with_redis_reason(tmp_path, text, reason):
    (tmp_path / "appendonlydir").mkdir()
    (tmp_path / "appendonlydir" / "appendonly.aof.manifest").write_text(text)
    log = must_refuse(tmp_path, *AOF_ON)
    assert reason in log
    with pytest.raises(ManifestError) as info:
        AofDir(str(tmp_path)).exists()
    assert info.value.reason == reason


def test_quoted_names_and_comments_are_read_like_redis(tmp_path):
    sub = tmp_path / "appendonlydir"
    sub.mkdir()
    (sub / "my base.aof").write_bytes(encode_command([b"SET", b"q", b"1"]))
    (sub / "appendonly.aof.1.incr.aof").write_bytes(encode_command([b"SET", b"r", b"2"]))
    (sub / "appendonly.aof.manifest").write_text(
        "# written by hand\n"
        'file "my base.aof" seq 1 type b\n'
        "FILE appendonly.aof.1.incr.aof SEQ 1 TYPE i future-key future-value\n")
    ours, _ = replay(AofDir(str(tmp_path)))
    server = start(tmp_path, *AOF_ON)
    try:
        theirs = dataset(server)
    finally:
        stop(server)
    assert ours == theirs == {0: {b"q": b"1", b"r": b"2"}}


def test_short_read_after_an_rdb_preamble_keeps_the_rdb(tmp_path):
    """A deliberate difference: Redis cuts such a file to 0 bytes (its valid_up_to starts at 0),
    losing the whole snapshot on the next start; we cut back to the end of the RDB."""
    server = start(tmp_path, "--appendonly", "yes", "--aof-use-rdb-preamble", "yes")
    try:
        client(server).set("a", "1")
        c = client(server)
        c.bgrewriteaof()
        wait_rewrite_done(c)
        c.close()
    finally:
        stop(server)
    sub = tmp_path / "appendonlydir"
    base = sub / "appendonly.aof.2.base.rdb"
    rdb_length = base.stat().st_size
    with open(base, "ab") as f:
        f.write(b"*3\r\n$3\r\nSET")
    (sub / "appendonly.aof.2.incr.aof").unlink()
    (sub / "appendonly.aof.manifest").write_text("file appendonly.aof.2.base.rdb seq 2 type b\n")
    ours_dir = tmp_path / "ours"
    shutil.copytree(sub, ours_dir / "appendonlydir")

    server = start(tmp_path, *AOF_ON)
    try:
        assert client(server).get("a") == b"1"
    finally:
        stop(server)
    assert "Truncating the AOF appendonly.aof.2.base.rdb at offset 0" in log_of(server)
    assert base.stat().st_size == 0

    _, result = replay(AofDir(str(ours_dir)), truncated_ok=True, on_rdb=lambda data: rdb_length)
    assert result.files[0].truncated_to == rdb_length
    assert (ours_dir / "appendonlydir" / "appendonly.aof.2.base.rdb").stat().st_size == rdb_length
