"""The AOF file layer (persistence/aof.py, persistence/manifest.py), without a server.

Manifest rules and texts follow Redis 7.0's aofLoadManifestFromFile; the directory tests check the
files on disk and the manifest after every step of a start, a rewrite and an upgrade; the loader
tests cut and damage files at every offset and compare with what the file's known record
boundaries say must happen.
"""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import persistence.aof as aof_module
from persistence.aof import (
    AofDir,
    AofError,
    AofWriter,
    encode_command,
    load_all,
    load_file,
    parse_commands,
    scan,
    select_command,
    timestamp_annotation,
)
from persistence.manifest import Manifest, ManifestError, quote_name, split_args

MANIFEST = "appendonly.aof.manifest"


def cmd(*args) -> list[bytes]:
    return [a if isinstance(a, bytes) else str(a).encode() for a in args]


def resp(*commands) -> bytes:
    return b"".join(encode_command(c) for c in commands)


def manifest_text(aofdir: AofDir) -> str:
    with open(aofdir.manifest_path) as f:
        return f.read()


def listing(aofdir: AofDir) -> list[str]:
    return sorted(os.listdir(aofdir.path))


# -- manifest --------------------------------------------------------------------------------

REDIS_EXAMPLE = (
    "file appendonly.aof.2.base.rdb seq 2 type b\n"
    "file appendonly.aof.1.incr.aof seq 1 type h\n"
    "file appendonly.aof.2.incr.aof seq 2 type h\n"
    "file appendonly.aof.3.incr.aof seq 3 type h\n"
    "file appendonly.aof.4.incr.aof seq 4 type i\n"
    "file appendonly.aof.5.incr.aof seq 5 type i\n"
)


def test_manifest_parse_and_render_round_trip():
    m = Manifest.parse(REDIS_EXAMPLE)
    assert m.base.name == "appendonly.aof.2.base.rdb" and m.base.seq == 2
    assert [i.seq for i in m.history] == [1, 2, 3]
    assert [i.name for i in m.incr] == ["appendonly.aof.4.incr.aof", "appendonly.aof.5.incr.aof"]
    assert (m.curr_base_seq, m.curr_incr_seq) == (2, 5)
    assert m.render() == REDIS_EXAMPLE
    assert Manifest.parse(m.render()) == m


def test_manifest_render_orders_base_history_incr():
    text = ("file appendonly.aof.1.incr.aof seq 1 type i\n"
            "file old seq 7 type h\n"
            "file appendonly.aof.3.base.aof seq 3 type b\n")
    m = Manifest.parse(text)
    assert m.render() == ("file appendonly.aof.3.base.aof seq 3 type b\n"
                          "file old seq 7 type h\n"
                          "file appendonly.aof.1.incr.aof seq 1 type i\n")


def test_manifest_comments_unknown_keys_and_case():
    m = Manifest.parse("# a comment\n"
                       "FILE a.aof SEQ 1 TYPE b extra value\n"
                       "  file   b.aof seq 2 type incr  \r\n")
    assert m.base.name == "a.aof" and m.incr[0].name == "b.aof" and m.incr[0].type == "i"
    assert m.render() == "file a.aof seq 1 type b\nfile b.aof seq 2 type i\n"


def test_manifest_comment_only_is_empty_not_an_error():
    m = Manifest.parse("# nothing here\n")
    assert m.is_empty() and m.render() == ""


@pytest.mark.parametrize("name", ["with space.aof", 'quo"te', "tab\there",
                                  "new\nline", "bell\a\b", "caf\u00e9", "\x01\x7f\xff"])
def test_manifest_quotes_names_that_need_it_and_reads_them_back(name):
    m = Manifest(base=None)
    m.incr.append(aof_module.AofInfo(name, 1, "i"))
    text = m.render()
    assert "\n" not in text[:-1]
    assert Manifest.parse(text).incr[0].name == name


def test_quote_name_matches_sdscatrepr():
    assert quote_name("appendonly.aof.1.base.rdb") == "appendonly.aof.1.base.rdb"
    assert quote_name("a b") == '"a b"'
    assert quote_name('x"y\\z\n\x01') == '"x\\"y\\\\z\\n\\x01"'


def test_split_args_follows_sdssplitargs():
    assert split_args(b"a  b\tc") == [b"a", b"b", b"c"]
    assert split_args(b'"a b" \'c d\'') == [b"a b", b"c d"]
    assert split_args(b'"\\x41\\n\\t\\r\\a\\b\\q\\\\"') == [b"A\n\t\r\a\bq\\"]
    assert split_args(b"'it\\'s'") == [b"it's"]
    assert split_args(b"'a\\nb'") == [b"a\\nb"]
    assert split_args(b'"abc') is None
    assert split_args(b"'abc") is None
    assert split_args(b'"a"b') is None
    assert split_args(b"'a'b") is None
    assert split_args(b'x"y z"') == [b"xy z"]
    assert split_args(b"") == []


GOOD = "file appendonly.aof.1.base.rdb seq 1 type b\n"


@pytest.mark.parametrize("text, reason", [
    ("", "Found an empty AOF manifest"),
    ("file a seq 1 type b", "The AOF manifest file contains too long line"),
    (GOOD + "file b seq 1 type i", "The AOF manifest file contains too long line"),
    ("file " + "x" * 1100 + " seq 1 type b\n", "The AOF manifest file contains too long line"),
    (GOOD + "\n", "Invalid AOF manifest file format"),
    (GOOD + "   \t\n", "Invalid AOF manifest file format"),
    ("file a seq 1 type\n", "Invalid AOF manifest file format"),
    ("file a seq 1\n", "Invalid AOF manifest file format"),
    ("file a seq 1 type b x\n", "Invalid AOF manifest file format"),
    ('file "a seq 1 type b\n', "Invalid AOF manifest file format"),
    ('file "a"x seq 1 type b\n', "Invalid AOF manifest file format"),
    ("file a seq 0 type b\n", "Invalid AOF manifest file format"),
    ("file a seq abc type b\n", "Invalid AOF manifest file format"),
    ("file a seq 1 type ''\n", "Invalid AOF manifest file format"),
    ("name a seq 1 type b\n", "Invalid AOF manifest file format"),
    ("file a/b seq 1 type b\n", "File can't be a path, just a filename"),
    ("file a\\\\b seq 1 type b\n", "File can't be a path, just a filename"),
    ("file ../a seq 1 type b\n", "File can't be a path, just a filename"),
    (GOOD + "file c seq 2 type b\n", "Found duplicate base file information"),
    ("file a seq 2 type i\nfile b seq 2 type i\n", "Found a non-monotonic sequence number"),
    ("file a seq 3 type i\nfile b seq 2 type i\n", "Found a non-monotonic sequence number"),
    ("file a seq -1 type i\n", "Found a non-monotonic sequence number"),
    ("file a seq 1 type x\n", "Unknown AOF file type"),
])
def test_manifest_errors_carry_redis_reason(text, reason):
    with pytest.raises(ManifestError) as info:
        Manifest.parse(text)
    assert info.value.reason == reason
    assert str(info.value).startswith(reason)


def test_manifest_error_names_the_line():
    with pytest.raises(ManifestError) as info:
        Manifest.parse(GOOD + "file c seq 1 type q\n", filename=MANIFEST)
    err = info.value
    assert err.line_number == 2 and err.line == "file c seq 1 type q"
    assert MANIFEST in str(err) and "at line 2" in str(err)


def test_manifest_line_length_limit_is_fgets_1024():
    pad = "file " + "n" * (1025 - len("file  seq 1 type b\n")) + " seq 1 type b\n"
    assert len(pad) == 1025
    with pytest.raises(ManifestError, match="too long line"):
        Manifest.parse(pad)
    assert Manifest.parse(pad.replace("nn", "n", 1)).base.seq == 1  # 1024 bytes with the newline: accepted


def test_manifest_seq_is_atoll():
    assert Manifest.parse("file a seq 12abc type b\n").base.seq == 12
    assert Manifest.parse("file a seq +3 type b\n").base.seq == 3
    assert Manifest.parse("file a seq -3 type b\n").base.seq == -3


def test_manifest_names_next_files_and_moves_history():
    m = Manifest.parse("file appendonly.aof.1.base.rdb seq 1 type b\n"
                       "file appendonly.aof.1.incr.aof seq 1 type i\n"
                       "file appendonly.aof.2.incr.aof seq 2 type i\n")
    assert m.new_incr().name == "appendonly.aof.3.incr.aof"
    assert m.new_base(is_rdb=False).name == "appendonly.aof.2.base.aof"
    assert m.history[0].name == "appendonly.aof.1.base.rdb" and m.history[0].type == "h"
    moved = m.mark_incr_history(None)
    assert [i.seq for i in moved] == [1, 2]
    assert [i.name for i in m.incr] == ["appendonly.aof.3.incr.aof"]
    assert [i.name for i in m.history] == ["appendonly.aof.2.incr.aof", "appendonly.aof.1.incr.aof",
                                           "appendonly.aof.1.base.rdb"] or \
        {i.name for i in m.history} == {"appendonly.aof.1.incr.aof", "appendonly.aof.2.incr.aof",
                                        "appendonly.aof.1.base.rdb"}
    assert Manifest(appendfilename="x.aof").new_base(is_rdb=True).name == "x.aof.1.base.rdb"


# -- the directory ---------------------------------------------------------------------------

@pytest.fixture
def aofdir(tmp_path) -> AofDir:
    return AofDir(str(tmp_path))


def test_empty_dir_does_not_exist(aofdir):
    assert not aofdir.exists()
    assert aofdir.files_to_load() == []
    assert aofdir.total_size() == 0 and aofdir.base_size() == 0


def test_create_empty_then_open_last_incr(aofdir):
    aofdir.create_empty(b"", is_rdb=False)
    assert listing(aofdir) == ["appendonly.aof.1.base.aof", "appendonly.aof.1.incr.aof", MANIFEST]
    assert manifest_text(aofdir) == ("file appendonly.aof.1.base.aof seq 1 type b\n"
                                     "file appendonly.aof.1.incr.aof seq 1 type i\n")
    assert aofdir.exists()
    with aofdir.open_last_incr() as w:
        assert w.name == "appendonly.aof.1.incr.aof" and w.seq == 1
        w.write(b"abc")
        w.fsync()
        assert w.size == 3
    with aofdir.open_last_incr() as w:  # reopened for appending, not truncated
        assert w.size == 3
    assert listing(aofdir) == ["appendonly.aof.1.base.aof", "appendonly.aof.1.incr.aof", MANIFEST]
    assert AofDir(aofdir.dir).files_to_load() == [
        (aofdir.file_path("appendonly.aof.1.base.aof"), "base"),
        (aofdir.file_path("appendonly.aof.1.incr.aof"), "incr")]


def test_create_empty_with_rdb_base_bytes(aofdir):
    aofdir.create_empty(b"REDIS0010-fake", is_rdb=True)
    assert manifest_text(aofdir).startswith("file appendonly.aof.1.base.rdb seq 1 type b\n")
    with open(aofdir.file_path("appendonly.aof.1.base.rdb"), "rb") as f:
        assert f.read() == b"REDIS0010-fake"
    assert aofdir.base_size() == 14 and aofdir.total_size() == 14


def test_rewrite_sequence_files_and_manifest_after_each_step(aofdir):
    aofdir.create_empty(b"", is_rdb=False)
    w1 = aofdir.open_last_incr()
    w1.write(resp(cmd("SET", "a", 1)))

    # 1. A rewrite starts: a new incr, the manifest lists both.
    path2, w2 = aofdir.open_new_incr()
    assert os.path.basename(path2) == "appendonly.aof.2.incr.aof" and w2.seq == 2
    assert manifest_text(aofdir) == ("file appendonly.aof.1.base.aof seq 1 type b\n"
                                     "file appendonly.aof.1.incr.aof seq 1 type i\n"
                                     "file appendonly.aof.2.incr.aof seq 2 type i\n")
    w1.fsync()
    w1.close()
    w2.write(resp(cmd("SET", "b", 2)))

    # 2. The snapshot is written to a temp base, then installed.
    tmp = aofdir.temp_base_path()
    with open(tmp, "wb") as f:
        f.write(resp(cmd("SET", "a", 1)))
    deleted = aofdir.install_base(tmp, is_rdb=False, keep_incr_from=w2.seq)
    assert sorted(deleted) == ["appendonly.aof.1.base.aof", "appendonly.aof.1.incr.aof"]
    assert listing(aofdir) == ["appendonly.aof.2.base.aof", "appendonly.aof.2.incr.aof", MANIFEST]
    assert manifest_text(aofdir) == ("file appendonly.aof.2.base.aof seq 2 type b\n"
                                     "file appendonly.aof.2.incr.aof seq 2 type i\n")
    assert not os.path.exists(tmp)

    # 3. The writer kept appending to incr 2 through the swap; everything loads in order.
    w2.write(resp(cmd("SET", "c", 3)))
    w2.close()
    seen = []
    result = load_all(AofDir(aofdir.dir), truncated_ok=False, on_rdb=None, on_command=seen.append)
    assert seen == [cmd("SET", "a", 1), cmd("SET", "b", 2), cmd("SET", "c", 3)]
    assert result.commands == 3 and not result.truncated

    # 4. A second rewrite, with an RDB base this time.
    _, w3 = aofdir.open_new_incr()
    w3.close()
    tmp = aofdir.temp_base_path()
    with open(tmp, "wb") as f:
        f.write(b"REDIS0010")
    aofdir.install_base(tmp, is_rdb=True)
    assert manifest_text(aofdir) == ("file appendonly.aof.3.base.rdb seq 3 type b\n"
                                     "file appendonly.aof.3.incr.aof seq 3 type i\n")
    assert listing(aofdir) == ["appendonly.aof.3.base.rdb", "appendonly.aof.3.incr.aof", MANIFEST]


def test_install_base_keeps_incr_opened_after_rewrite_start(aofdir):
    aofdir.create_empty()
    aofdir.open_last_incr().close()
    _, w2 = aofdir.open_new_incr()   # the rewrite's incr
    w2.close()
    _, w3 = aofdir.open_new_incr()   # opened later, before the rewrite finished
    w3.close()
    tmp = aofdir.temp_base_path()
    open(tmp, "wb").close()
    aofdir.install_base(tmp, is_rdb=False, keep_incr_from=2)
    assert manifest_text(aofdir) == ("file appendonly.aof.2.base.aof seq 2 type b\n"
                                     "file appendonly.aof.2.incr.aof seq 2 type i\n"
                                     "file appendonly.aof.3.incr.aof seq 3 type i\n")


def test_install_base_history_kept_until_delete_history(aofdir):
    aofdir.create_empty()
    aofdir.open_last_incr().close()
    aofdir.open_new_incr()[1].close()
    tmp = aofdir.temp_base_path()
    open(tmp, "wb").close()
    assert aofdir.install_base(tmp, is_rdb=False, delete_history=False) == []
    text = manifest_text(aofdir)
    assert text.splitlines()[0] == "file appendonly.aof.2.base.aof seq 2 type b"
    assert "file appendonly.aof.1.base.aof seq 1 type h" in text
    assert "file appendonly.aof.1.incr.aof seq 1 type h" in text
    assert text.splitlines()[-1] == "file appendonly.aof.2.incr.aof seq 2 type i"
    assert "appendonly.aof.1.incr.aof" in listing(aofdir)
    assert [p for p, _ in AofDir(aofdir.dir).files_to_load()] == [
        aofdir.file_path("appendonly.aof.2.base.aof"), aofdir.file_path("appendonly.aof.2.incr.aof")]
    assert sorted(aofdir.delete_history()) == ["appendonly.aof.1.base.aof",
                                               "appendonly.aof.1.incr.aof"]
    assert listing(aofdir) == ["appendonly.aof.2.base.aof", "appendonly.aof.2.incr.aof", MANIFEST]
    assert "type h" not in manifest_text(aofdir)


def test_install_base_with_aof_off_keeps_no_incr(aofdir):
    aofdir.create_empty()
    aofdir.open_last_incr().close()
    tmp = aofdir.temp_base_path()
    open(tmp, "wb").close()
    aofdir.install_base(tmp, is_rdb=False, keep_incr_from=aofdir.manifest.curr_incr_seq + 1)
    assert manifest_text(aofdir) == "file appendonly.aof.2.base.aof seq 2 type b\n"
    with aofdir.open_last_incr() as w:  # turning the AOF on later continues the incr seqs
        assert w.name == "appendonly.aof.2.incr.aof"


def test_install_base_temp_incr_of_config_set_appendonly(aofdir):
    path, w = aofdir.open_temp_incr()
    assert os.path.basename(path) == "temp-appendonly.aof.incr"
    w.write(resp(cmd("SET", "x", 1)))
    w.close()
    tmp = aofdir.temp_base_path()
    open(tmp, "wb").close()
    aofdir.install_base(tmp, is_rdb=True, temp_incr=True)
    assert listing(aofdir) == ["appendonly.aof.1.base.rdb", "appendonly.aof.1.incr.aof", MANIFEST]
    assert manifest_text(aofdir) == ("file appendonly.aof.1.base.rdb seq 1 type b\n"
                                     "file appendonly.aof.1.incr.aof seq 1 type i\n")


def test_install_base_failure_leaves_manifest(aofdir):
    aofdir.create_empty()
    aofdir.open_last_incr().close()
    before = manifest_text(aofdir)
    with pytest.raises(FileNotFoundError):
        aofdir.install_base(os.path.join(aofdir.path, "missing"), is_rdb=False)
    assert manifest_text(aofdir) == before and aofdir.manifest.curr_base_seq == 1
    tmp = aofdir.temp_base_path()
    open(tmp, "wb").close()
    with pytest.raises(FileNotFoundError):  # temp_incr asked for but absent
        aofdir.install_base(tmp, is_rdb=False, temp_incr=True)
    assert manifest_text(aofdir) == before
    assert listing(aofdir) == ["appendonly.aof.1.base.aof", "appendonly.aof.1.incr.aof", MANIFEST]


def test_manifest_writes_leave_no_temp_files(aofdir):
    aofdir.create_empty()
    for _ in range(3):
        aofdir.open_new_incr()[1].close()
    assert not [n for n in listing(aofdir) if n.startswith("temp-")]
    assert [i.seq for i in AofDir(aofdir.dir).manifest.incr] == [1, 2, 3, 4]


def test_open_last_incr_after_base_only_creates_incr_1(aofdir):
    os.makedirs(aofdir.path)
    with open(aofdir.manifest_path, "w") as f:
        f.write("file appendonly.aof.4.base.aof seq 4 type b\n")
    open(aofdir.file_path("appendonly.aof.4.base.aof"), "wb").close()
    with aofdir.open_last_incr() as w:
        assert w.name == "appendonly.aof.1.incr.aof"
    assert manifest_text(aofdir) == ("file appendonly.aof.4.base.aof seq 4 type b\n"
                                     "file appendonly.aof.1.incr.aof seq 1 type i\n")


def test_bad_manifest_on_disk_raises(aofdir):
    os.makedirs(aofdir.path)
    open(aofdir.manifest_path, "w").close()
    with pytest.raises(ManifestError, match="Found an empty AOF manifest"):
        aofdir.exists()


def test_custom_names(tmp_path):
    d = AofDir(str(tmp_path), appendfilename="my.aof", appenddirname="aofs")
    d.create_empty()
    assert sorted(os.listdir(tmp_path / "aofs")) == ["my.aof.1.base.aof", "my.aof.1.incr.aof",
                                                     "my.aof.manifest"]


# -- legacy adoption -------------------------------------------------------------------------

def write_legacy(aofdir: AofDir, data: bytes) -> None:
    with open(aofdir.legacy_path, "wb") as f:
        f.write(data)


def test_adopt_legacy_without_dir(aofdir):
    data = resp(cmd("SET", "k", "v"))
    write_legacy(aofdir, data)
    assert aofdir.adopt_legacy()
    assert not os.path.exists(aofdir.legacy_path)
    assert listing(aofdir) == ["appendonly.aof", MANIFEST]
    assert manifest_text(aofdir) == "file appendonly.aof seq 1 type b\n"
    with aofdir.open_last_incr() as w:
        assert w.name == "appendonly.aof.1.incr.aof"
    assert manifest_text(aofdir) == ("file appendonly.aof seq 1 type b\n"
                                     "file appendonly.aof.1.incr.aof seq 1 type i\n")
    seen = []
    load_all(AofDir(aofdir.dir), truncated_ok=False, on_rdb=None, on_command=seen.append)
    assert seen == [cmd("SET", "k", "v")]
    assert not aofdir.adopt_legacy()  # nothing left to adopt


def test_adopt_legacy_when_manifest_missing_or_lists_nothing(aofdir):
    write_legacy(aofdir, b"")
    os.makedirs(aofdir.path)
    assert aofdir.adopt_legacy()
    aofdir2 = AofDir(os.path.join(aofdir.dir, "second"))
    os.makedirs(aofdir2.path)
    write_legacy(aofdir2, b"")
    with open(aofdir2.manifest_path, "w") as f:
        f.write("# only a comment\n")
    assert aofdir2.adopt_legacy()
    assert manifest_text(aofdir2) == "file appendonly.aof seq 1 type b\n"


def test_adopt_legacy_finishes_an_interrupted_upgrade(aofdir):
    write_legacy(aofdir, b"x")
    os.makedirs(aofdir.path)
    with open(aofdir.manifest_path, "w") as f:
        f.write("file appendonly.aof seq 1 type b\n")
    assert aofdir.adopt_legacy()
    assert listing(aofdir) == ["appendonly.aof", MANIFEST]


def test_adopt_legacy_leaves_a_real_multipart_dir_alone(aofdir):
    aofdir.create_empty()
    write_legacy(aofdir, b"x")
    before = manifest_text(aofdir)
    assert not AofDir(aofdir.dir).adopt_legacy()
    assert os.path.exists(aofdir.legacy_path) and manifest_text(aofdir) == before


def test_adopt_legacy_without_legacy_file(aofdir):
    assert not aofdir.adopt_legacy()
    assert not os.path.exists(aofdir.path)


def test_legacy_rdb_preamble_with_resp_tail(aofdir):
    rdb = b"REDIS0010" + b"\x00" * 20 + b"\xff" + b"12345678"
    tail = resp(cmd("SET", "after", "preamble"))
    write_legacy(aofdir, rdb + tail)
    assert aofdir.adopt_legacy()
    got_rdb, seen = [], []

    def on_rdb(data):
        got_rdb.append(data)
        return len(rdb)

    result = load_all(aofdir, truncated_ok=False, on_rdb=on_rdb, on_command=seen.append)
    assert got_rdb == [rdb + tail]
    assert seen == [cmd("SET", "after", "preamble")]
    assert result.files[0].rdb_bytes == len(rdb)


def test_rdb_loader_errors_name_the_file(aofdir):
    write_legacy(aofdir, b"REDIS0010garbage")
    aofdir.adopt_legacy()

    def bad(_data):
        raise ValueError("bad RDB opcode at offset 9")

    with pytest.raises(AofError, match="RDB preamble of the AOF file appendonly.aof"):
        load_all(aofdir, truncated_ok=True, on_rdb=bad, on_command=print)
    with pytest.raises(AofError, match="no RDB loader"):
        load_all(aofdir, truncated_ok=True, on_rdb=None, on_command=print)
    with pytest.raises(AofError, match="length of 99 bytes"):
        load_all(aofdir, truncated_ok=True, on_rdb=lambda d: 99, on_command=print)


# -- the loader: normal files ----------------------------------------------------------------

def test_loader_commands_annotations_select_multi():
    data = (timestamp_annotation(1700000000) + select_command(3) + resp(cmd("SET", "a", 1))
            + resp(cmd("MULTI"), cmd("INCR", "a"), cmd("DEL", "b"), cmd("exec"))
            + b"# any annotation\n" + resp(cmd("multi"), cmd("EXEC")))
    commands, result = parse_commands(data)
    assert commands == [cmd("SELECT", 3), cmd("SET", "a", 1), cmd("INCR", "a"), cmd("DEL", "b")]
    assert result.commands == 4 and result.annotations == 2
    assert result.valid_up_to == len(data) and not result.short_read


def test_encoders():
    assert select_command(0) == b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n"
    assert select_command(15) == b"*2\r\n$6\r\nSELECT\r\n$2\r\n15\r\n"
    assert timestamp_annotation(1628217470) == b"#TS:1628217470\r\n"
    assert encode_command([b"SET", b"k", b"v"]) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"


def test_binary_values_with_resp_lookalikes_and_big_values():
    values = [b"", b"\r\n", b"*1\r\n$1\r\nx\r\n", b"#TS:1\r\n", b"\x00\xff" * 3000,
              bytes(range(256)) * 100, b"$-1\r\n"]
    commands = [cmd("SET", b"k%d" % i, v) for i, v in enumerate(values)]
    data = b"".join(encode_command(c) for c in commands)
    assert parse_commands(data)[0] == commands


def test_leading_zero_lengths_are_read_by_the_exact_parser():
    data = b"*03\r\n$03\r\nSET\r\n$1\r\nk\r\n$001\r\nv\r\n" + resp(cmd("GET", "k"))
    assert parse_commands(data)[0] == [cmd("SET", "k", "v"), cmd("GET", "k")]


def test_empty_data():
    assert parse_commands(b"") == ([], aof_module.ScanResult())


# -- the loader: truncation ------------------------------------------------------------------

def boundaries(records: list[bytes]) -> list[int]:
    ends, pos = [], 0
    for r in records:
        pos += len(r)
        ends.append(pos)
    return ends


def test_truncated_tail_at_every_offset_of_the_last_command():
    head = select_command(0) + resp(cmd("SET", "a", "1"), cmd("SET", "b", "2"))
    last = encode_command(cmd("SET", "key", "value"))
    full = head + last
    for cut in range(len(head) + 1, len(full)):
        data = full[:cut]
        commands, result = parse_commands(data, truncated_ok=True, filename="f.aof")
        assert commands == [cmd("SELECT", 0), cmd("SET", "a", 1), cmd("SET", "b", 2)], cut
        assert result.short_read and result.valid_up_to == len(head), cut
        with pytest.raises(AofError) as info:
            parse_commands(data, truncated_ok=False, filename="f.aof")
        assert info.value.kind == "truncated" and info.value.offset == len(head)
        assert "Unexpected end of file reading the append only file f.aof at offset" in str(info.value)
        assert "aof-load-truncated" in str(info.value)
        with pytest.raises(AofError, match="not the last file") as info:
            parse_commands(data, truncated_ok=True, last_file=False, filename="f.aof")
        assert info.value.offset == len(head)
    assert parse_commands(full, truncated_ok=False)[1].valid_up_to == len(full)


def expected_after_cut(records, cut):
    """Reference: what must load from records[...] cut at `cut` (commands, valid_up_to, short)."""
    applied, queue, in_multi, committed, pos = [], [], False, 0, 0
    for kind, argv, raw in records:
        if pos + len(raw) > cut:
            return applied, committed, pos < cut or in_multi
        pos += len(raw)
        if kind == "ann":
            continue
        name = argv[0].upper()
        if name == b"MULTI":
            in_multi, queue = True, []
        elif name == b"EXEC":
            applied += queue
            in_multi, committed = False, pos
        elif in_multi:
            queue.append(argv)
        else:
            applied.append(argv)
            committed = pos
    return applied, committed, in_multi


def record_file(rng: random.Random, n: int):
    records = []
    for i in range(n):
        r = rng.random()
        if r < 0.1:
            records.append(("ann", None, timestamp_annotation(1700000000 + i)))
        elif r < 0.2:
            for argv in (cmd("MULTI"), cmd("SET", f"m{i}", i), cmd("INCR", "n"), cmd("EXEC")):
                records.append(("cmd", argv, encode_command(argv)))
        else:
            argv = cmd("SET", f"key{i}", bytes(rng.randrange(256) for _ in range(rng.randrange(12))))
            records.append(("cmd", argv, encode_command(argv)))
    return records


def test_cut_at_every_offset_matches_the_reference():
    records = record_file(random.Random(5), 40)
    full = b"".join(raw for _, _, raw in records)
    for cut in range(len(full) + 1):
        want, valid, short = expected_after_cut(records, cut)
        commands, result = parse_commands(full[:cut], truncated_ok=True)
        assert commands == want, cut
        assert result.short_read == short, cut
        if short:
            assert result.valid_up_to == valid, cut


def test_incomplete_multi_at_end_reverts_to_before_multi(tmp_path):
    head = resp(cmd("SET", "a", 1))
    data = head + resp(cmd("MULTI"), cmd("SET", "b", 2), cmd("SET", "c", 3))
    commands, result = parse_commands(data, truncated_ok=True)
    assert commands == [cmd("SET", "a", 1)]
    assert result.reverted_multi and result.short_read and result.valid_up_to == len(head)
    with pytest.raises(AofError, match="inside an incomplete MULTI/EXEC") as info:
        parse_commands(data, truncated_ok=False)
    assert info.value.offset == len(head)
    # A short read inside the transaction also goes back to before the MULTI (Redis would stop
    # after "SET b 2" and leave the MULTI open for later appends to fall into).
    commands, result = parse_commands(data[:-3], truncated_ok=True)
    assert commands == [cmd("SET", "a", 1)] and result.valid_up_to == len(head)
    assert not result.reverted_multi

    path = tmp_path / "appendonly.aof.1.incr.aof"
    path.write_bytes(data)
    warnings: list[str] = []
    info = load_file(str(path), truncated_ok=True, on_command=lambda c: None, warnings=warnings)
    assert info.truncated_to == len(head) and path.stat().st_size == len(head)
    assert warnings[0] == "Revert incomplete MULTI/EXEC transaction in AOF file appendonly.aof.1.incr.aof"
    assert f"Truncating the AOF appendonly.aof.1.incr.aof at offset {len(head)}" in warnings[2]


def test_partial_annotation_at_end_is_a_short_read():
    data = resp(cmd("SET", "a", 1))
    commands, result = parse_commands(data + b"#TS:17000", truncated_ok=True)
    assert commands == [cmd("SET", "a", 1)] and result.short_read and result.valid_up_to == len(data)
    commands, result = parse_commands(data + b"#TS:17000\r\n")
    assert not result.short_read


def test_load_all_truncates_only_the_last_file(tmp_path):
    d = AofDir(str(tmp_path))
    d.create_empty(resp(cmd("SET", "base", 1)), is_rdb=False)
    with d.open_last_incr() as w:
        w.write(resp(cmd("SET", "one", 1)))
    _, w = d.open_new_incr()
    full = resp(cmd("SET", "two", 2), cmd("SET", "three", 3))
    w.write(full[:-4])
    w.close()
    last_path = d.file_path("appendonly.aof.2.incr.aof")

    first = len(resp(cmd("SET", "two", 2)))
    with pytest.raises(AofError, match=f"appendonly.aof.2.incr.aof at offset {first}"):
        load_all(AofDir(str(tmp_path)), truncated_ok=False, on_rdb=None, on_command=lambda c: None)
    assert os.path.getsize(last_path) == len(full) - 4

    seen, progress = [], []
    result = load_all(AofDir(str(tmp_path)), truncated_ok=True, on_rdb=None,
                      on_command=seen.append, progress=lambda done, total: progress.append((done, total)))
    assert seen == [cmd("SET", "base", 1), cmd("SET", "one", 1), cmd("SET", "two", 2)]
    assert result.truncated and result.files[-1].truncated_to == first
    assert os.path.getsize(last_path) == first
    assert any("short read while loading the AOF file appendonly.aof.2.incr.aof" in w
               for w in result.warnings)
    assert progress[-1][0] == progress[-1][1] == result.total_size
    assert [p[0] for p in progress] == sorted(p[0] for p in progress)
    assert [f.name for f in result.files] == ["appendonly.aof.1.base.aof",
                                              "appendonly.aof.1.incr.aof",
                                              "appendonly.aof.2.incr.aof"]
    assert result.base_size == len(resp(cmd("SET", "base", 1)))

    # Now the damaged file is not the last one any more: a fatal error, and nothing is cut.
    with open(d.file_path("appendonly.aof.1.incr.aof"), "ab") as f:
        f.write(b"*3\r\n$3\r\nSET")
    with pytest.raises(AofError, match="appendonly.aof.1.incr.aof at offset .*not the last file"):
        load_all(AofDir(str(tmp_path)), truncated_ok=True, on_rdb=None, on_command=lambda c: None)
    assert os.path.getsize(d.file_path("appendonly.aof.1.incr.aof")) == len(resp(cmd("SET", "one", 1))) + 11


def test_load_all_missing_and_empty_files(tmp_path):
    d = AofDir(str(tmp_path))
    d.create_empty()
    result = load_all(d, truncated_ok=True, on_rdb=None, on_command=lambda c: None)
    assert result.empty and result.commands == 0
    os.unlink(d.file_path("appendonly.aof.1.incr.aof"))
    with pytest.raises(AofError, match="Unable to obtain the AOF file appendonly.aof.1.incr.aof length"):
        load_all(AofDir(str(tmp_path)), truncated_ok=True, on_rdb=None, on_command=lambda c: None)
    assert load_all(AofDir(str(tmp_path / "nothing")), truncated_ok=True, on_rdb=None,
                    on_command=lambda c: None).empty


# -- the loader: corruption ------------------------------------------------------------------

@pytest.mark.parametrize("data, offset, detail", [
    (b"x", 0, "expected '*'"),
    (b"\r\n", 0, "expected '*'"),
    (b"*0\r\n", 0, "invalid multibulk length 0"),
    (b"*-1\r\n", 1, "expected a digit"),
    (b"*1\r\n$-1\r\n", 5, "expected a digit"),
    (b"*1x\r\n", 2, "expected CR"),
    (b"*1\rx", 3, "expected LF"),
    (b"*1\n$1\r\nx\r\n", 2, "expected CR"),
    (b"*2\r\n$1\r\na\r\n:1\r\n", 11, "expected '$'"),
    (b"*1\r\n+OK\r\n", 4, "expected '$'"),
    (b"*1\r\n$1\r\nabc\r\n", 9, "not followed by CRLF"),
    (b"*1\r\n$3\r\nabc\rX", 12, "not followed by CRLF"),
    (b"~1\r\n$1\r\na\r\n", 0, "expected '*'"),
    (b">1\r\n$1\r\na\r\n", 0, "expected '*'"),
    (b"$3\r\nSET\r\n", 0, "expected '*'"),
    (b"*1\r\n$1\r\na\r\n*1\r\n$4\r\nEXEC\r\n", 11, "EXEC without MULTI"),
    (b"*1\r\n$5\r\nMULTI\r\n*1\r\n$5\r\nmulti\r\n", 15, "MULTI calls can not be nested"),
    (b"*1\r\n$1\r\na\r\n" + b"*1\r\n$12345678901234567890\r\n", 35, "expected CR"),
])
def test_format_errors_name_file_and_offset(data, offset, detail):
    for prefix in (b"", resp(cmd("SET", "k", "v")) * 200):  # the exact parser, then hiredis first
        with pytest.raises(AofError) as info:
            parse_commands(prefix + data, filename="appendonly.aof.3.incr.aof", truncated_ok=True)
        err = info.value
        assert err.kind == "format" and err.offset == len(prefix) + offset, (prefix[:1], str(err))
        assert detail in str(err)
        assert str(err).startswith("Bad file format reading the append only file "
                                   f"appendonly.aof.3.incr.aof at offset {len(prefix) + offset}")


def test_flipping_any_byte_is_an_error_or_a_changed_value():
    commands = [cmd("SELECT", 0), cmd("SET", "alpha", "one"), cmd("MULTI"), cmd("SET", "b", "2"),
                cmd("EXEC"), cmd("DEL", "alpha")]
    full = timestamp_annotation(1) + b"".join(encode_command(c) for c in commands)
    structural = set()
    pos = len(timestamp_annotation(1))
    for c in commands:  # every header byte and every CRLF of every record, not the values
        header = len(b"*%d\r\n" % len(c))
        structural.update(range(pos, pos + header))
        pos += header
        for arg in c:
            header = len(b"$%d\r\n" % len(arg))
            structural.update(range(pos, pos + header))
            pos += header + len(arg)
            structural.update((pos, pos + 1))
            pos += 2
    assert pos == len(full)
    for i in range(len(full)):
        for flip in (0x01, 0x20, 0x80):
            damaged = bytearray(full)
            damaged[i] ^= flip
            try:
                got, result = parse_commands(bytes(damaged), truncated_ok=True, filename="f")
            except AofError as exc:
                assert exc.filename == "f" and 0 <= exc.offset <= len(full)
                continue
            if i in structural:
                # A damaged header or CRLF is always detected, except a length digit that grows so
                # far it runs past the end (that is a short read, exactly as in Redis).
                assert result.short_read, (i, flip)
            elif i >= len(timestamp_annotation(1)) and not (flip == 0x20 and chr(full[i]).isalpha()):
                # (a flipped letter case in MULTI or EXEC still reads as MULTI or EXEC)
                assert got != [c for c in commands if c[0] not in (b"MULTI", b"EXEC")], (i, flip)


# -- fast path against the exact parser ------------------------------------------------------

def slow_only(monkeypatch):
    monkeypatch.setattr(aof_module, "_fast", lambda data, pos, size, stream, progress: pos)


def test_exact_parser_alone_gives_the_same_results(monkeypatch):
    records = record_file(random.Random(9), 60)
    full = b"".join(raw for _, _, raw in records)
    fast = [parse_commands(full[:cut], truncated_ok=True) for cut in range(0, len(full) + 1, 7)]
    slow_only(monkeypatch)
    slow = [parse_commands(full[:cut], truncated_ok=True) for cut in range(0, len(full) + 1, 7)]
    assert fast == slow


argv_strategy = st.lists(st.binary(max_size=40), min_size=1, max_size=5)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(argv_strategy, st.just("ann"), st.just("multi")), max_size=40),
       st.integers(min_value=1, max_value=64))
def test_any_command_stream_round_trips(items, chunk):
    old = aof_module.CHUNK
    aof_module.CHUNK = chunk  # small chunks: records straddle many feeds
    try:
        data, want = b"", []
        for item in items:
            if item == "ann":
                data += timestamp_annotation(7)
            elif item == "multi":
                data += resp(cmd("MULTI"), cmd("SET", "t", 1), cmd("EXEC"))
                want.append(cmd("SET", "t", 1))
            else:
                if item[0].upper() in (b"MULTI", b"EXEC"):
                    item = [b"x" + item[0]] + item[1:]
                data += encode_command(item)
                want.append(item)
        commands, result = parse_commands(data)
        assert commands == want and result.end == len(data) and not result.short_read
    finally:
        aof_module.CHUNK = old


def test_large_file_crosses_many_chunks_and_reports_progress():
    commands = [cmd("SET", f"key:{i}", "v" * (i % 50)) for i in range(20000)]
    data = b"".join(encode_command(c) for c in commands)
    marks = []
    seen = []
    result = scan(data, seen.append, progress=marks.append)
    assert seen == commands and result.commands == 20000
    assert marks and marks == sorted(marks) and marks[-1] <= len(data)


# -- the writer ------------------------------------------------------------------------------

def test_writer_undoes_a_partial_write(tmp_path, monkeypatch):
    path = str(tmp_path / "f.aof")
    w = AofWriter(path)
    w.write(b"first")
    real_write = os.write
    calls = []

    def failing_write(fd, data):
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data)[:3])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(aof_module.os, "write", failing_write)
    with pytest.raises(OSError):
        w.write(b"second")
    monkeypatch.setattr(aof_module.os, "write", real_write)
    assert os.path.getsize(path) == 5 and w.size == 5
    w.write(b"third")
    w.close()
    with open(path, "rb") as f:
        assert f.read() == b"firstthird"
    assert w.closed


def test_writer_completes_the_record_when_it_cannot_undo(tmp_path, monkeypatch):
    path = str(tmp_path / "f.aof")
    w = AofWriter(path)
    real_write = os.write
    state = {"n": 0}

    def flaky(fd, data):
        state["n"] += 1
        if state["n"] == 1:
            return real_write(fd, bytes(data)[:2])
        if state["n"] == 2:
            raise OSError(5, "I/O error")
        return real_write(fd, data)

    def no_truncate(fd, size):
        raise OSError(5, "I/O error")

    monkeypatch.setattr(aof_module.os, "write", flaky)
    monkeypatch.setattr(aof_module.os, "ftruncate", no_truncate)
    with pytest.raises(OSError):
        w.write(b"ABCD")
    w.write(b"EF")
    w.close()
    with open(path, "rb") as f:
        assert f.read() == b"ABCDEF"
