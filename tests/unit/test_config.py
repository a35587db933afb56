"""Unit tests for config: parsing, loading, CONFIG GET/SET/REWRITE.

Where Redis defines the answer, the expected value was taken from a real redis-server 7.0.15
(tests/differential/test_config_diff.py re-checks many of them against the live server).
"""

from __future__ import annotations

import fnmatch
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import config
from config import Config, ConfigApplyError, ConfigError, ConfigSetError, load

DEFAULT_CONF = Path(config.__file__).with_name("default.conf")


def set_error(cfg: Config, *args: str) -> str:
    with pytest.raises(ConfigSetError) as caught:
        cfg.config_set([a.encode() for a in args])
    return caught.value.message


def config_set(cfg: Config, *args: str) -> None:
    cfg.config_set([a.encode() for a in args])


def write_conf(tmp_path: Path, text: str, name: str = "shardis.conf") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --------------------------------------------------------------------------------------------------
# Low-level parsers
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("line, expected", [
    ("port 6379", ["port", "6379"]),
    ("  save   900\t1  ", ["save", "900", "1"]),
    ('requirepass "a b"', ["requirepass", "a b"]),
    ('x "\\n\\r\\t\\b\\a\\"\\\\\\x41\\q"', ["x", "\n\r\t\b\a\"\\Aq"]),
    ("x '\\'' 'a\\nb'", ["x", "'", "a\\nb"]),
    ('x "" \'\'', ["x", "", ""]),
    ('x foo"bar baz"', ["x", "foobar baz"]),
    ('x "\\x4"', ["x", "x4"]),
    ("", []),
    ("   ", []),
])
def test_split_args_follows_sdssplitargs(line, expected):
    assert config.split_args(line) == expected


@pytest.mark.parametrize("line", ['x "abc', "x 'abc", 'x "a"b', "x 'a'b", 'x "a\\"'])
def test_split_args_rejects_unbalanced_or_badly_closed_quotes(line):
    assert config.split_args(line) is None


def test_split_args_hex_escape_makes_raw_bytes():
    [value] = config.split_args('"\\xff\\x00z"')
    assert value.encode("utf-8", "surrogateescape") == b"\xff\x00z"


@given(st.binary())
def test_quote_arg_round_trips_through_split_args(raw):
    text = raw.decode("utf-8", "surrogateescape")
    assert config.split_args(config.quote_arg(text)) == [text]


def test_quote_arg_escapes_like_sdscatrepr():
    assert config.quote_arg('a"b\\c\n\x01') == '"a\\"b\\\\c\\n\\x01"'


@pytest.mark.parametrize("text, expected", [
    ("0", 0), ("1", 1), ("01", 1), ("1b", 1), ("1B", 1), ("1k", 1000), ("1K", 1000), ("1kb", 1024),
    ("1Kb", 1024), ("2m", 2_000_000), ("2mb", 2 * 1024**2), ("1g", 10**9), ("1GB", 1024**3),
    ("", 0), ("mb", 0), ("99999999999999999999999", 2**64 - 1),
    ("99999999999999999999999kb", 2**64 - 1024), ("20000000000gb", (20000000000 * 1024**3) % 2**64),
])
def test_parse_memory_matches_memtoull(text, expected):
    assert config.parse_memory(text) == expected


@pytest.mark.parametrize("text", ["-1", " 1", "+1", "1.5mb", "1kib", "0x10", "1e3", "1 kb", "1\u212a"])
def test_parse_memory_rejects(text):
    assert config.parse_memory(text) is None


@pytest.mark.parametrize("pattern, string, nocase, expected", [
    (b"*", b"anything", False, True),
    (b"*", b"", False, False),  # Redis 7.0: PSUBSCRIBE * does not get PUBLISH "" either
    (b"", b"", False, True),
    (b"a*", b"", False, False),
    (b"h?llo", b"hello", False, True),
    (b"h?llo", b"hllo", False, False),
    (b"h*llo", b"heeeello", False, True),
    (b"h[ae]llo", b"hallo", False, True),
    (b"h[ae]llo", b"hillo", False, False),
    (b"h[^e]llo", b"hallo", False, True),
    (b"h[^e]llo", b"hello", False, False),
    (b"h[a-b]llo", b"hbllo", False, True),
    (b"h[b-a]llo", b"hbllo", False, True),
    (b"h[a-b]llo", b"hcllo", False, False),
    (b"h\\*llo", b"h*llo", False, True),
    (b"h\\*llo", b"hello", False, False),
    (b"h[\\]]llo", b"h]llo", False, True),
    (b"a[bc", b"ab", False, True),
    (b"PORT", b"port", False, False),
    (b"PORT", b"port", True, True),
    (b"[P]ORT", b"port", True, True),
    (b"[O-Q]ort", b"port", True, True),
    (b"*a*a*a*a*b", b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", False, False),
    (b"a*", b"abc", False, True),
    (b"*c", b"abc", False, True),
    (b"a**", b"a", False, True),
    (b"foo\\", b"foo\\", False, True),
])
def test_stringmatch_is_redis_glob(pattern, string, nocase, expected):
    assert config.stringmatch(pattern, string, nocase) is expected


@given(st.text("ab*?", max_size=8), st.text("ab", min_size=1, max_size=10))
def test_stringmatch_agrees_with_fnmatch_on_star_and_question_mark(pattern, string):
    assert config.stringmatch(pattern.encode(), string.encode()) is fnmatch.fnmatchcase(string, pattern)


# --------------------------------------------------------------------------------------------------
# The table and default.conf
# --------------------------------------------------------------------------------------------------

def test_default_conf_lists_every_option_exactly_once():
    names = [line.split()[0] for line in DEFAULT_CONF.read_text().splitlines()
             if line and not line.startswith("#")]
    assert sorted(names) == sorted(config.OPTIONS)
    assert len(names) == len(set(names))


def test_default_conf_is_generated_from_the_table():
    assert DEFAULT_CONF.read_text() == config.render_default_conf()


def test_every_option_has_a_one_line_comment_right_above_it():
    lines = DEFAULT_CONF.read_text().splitlines()
    for index, line in enumerate(lines):
        if line and not line.startswith("#"):
            assert lines[index - 1].startswith("# "), line


def test_loading_default_conf_gives_the_defaults():
    loaded, defaults = load([str(DEFAULT_CONF)]), Config()
    assert loaded.values == defaults.values
    assert loaded.config_file == str(DEFAULT_CONF.resolve())


def test_table_entries_are_complete():
    for option in config.OPTIONS.values():
        assert option.description and "\n" not in option.description
        assert option.name == option.name.lower()
    assert config.OPTIONS["shards"].shardis and not config.OPTIONS["port"].shardis


def test_required_redis_defaults():
    cfg = Config()
    assert cfg["port"] == 6379 and cfg["databases"] == 16 and cfg["shards"] == 1
    assert cfg["save"] == [(3600, 1), (300, 100), (60, 10000)]
    assert cfg.get_string("save") == "3600 1 300 100 60 10000"
    assert cfg["appendonly"] is True and cfg["appendfsync"] == "everysec"  # Shardis: AOF on by default
    assert cfg["proto-max-bulk-len"] == 512 * 1024**2
    assert cfg["client-query-buffer-limit"] == 1024**3
    assert cfg.get_string("client-output-buffer-limit") == (
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60")
    assert cfg["client-output-buffer-limit"]["pubsub"] == (32 * 1024**2, 8 * 1024**2, 60)
    assert cfg.get_string("bind") == "127.0.0.1 -::1" and cfg["bind"] == ["127.0.0.1", "-::1"]
    assert cfg["replicaof"] is None and cfg.get_string("replicaof") == ""
    assert cfg["enable-debug-command"] == "yes"  # Shardis's deliberate deviation
    assert cfg["dir"] == os.path.realpath(os.getcwd())
    assert cfg.config_file is None


def test_mutability_matches_redis_for_the_options_asked_for():
    immutable = {"databases", "shards", "daemonize", "io-threads", "cluster-enabled", "unixsocket",
                 "pidfile", "logfile", "tcp-backlog", "appendfilename", "appenddirname", "replicaof",
                 "supervised", "always-show-logo", "set-proc-title", "syslog-enabled", "rdbchecksum",
                 "enable-debug-command"}
    mutable = {"port", "bind", "maxclients", "requirepass", "protected-mode", "appendonly", "save",
               "appendfsync", "hz", "maxmemory", "notify-keyspace-events", "client-output-buffer-limit",
               "busy-reply-threshold", "crash-log-enabled", "timeout", "loglevel"}
    assert all(not config.OPTIONS[name].mutable for name in immutable)
    assert all(config.OPTIONS[name].mutable for name in mutable)
    assert config.OPTIONS["dir"].protected and config.OPTIONS["dbfilename"].protected


def test_redis_7_0_has_no_set_max_listpack_entries():
    assert config.lookup_option("set-max-listpack-entries") is None
    assert config.lookup_option("set-max-intset-entries") is not None


def test_import_config_loads_only_the_standard_library():
    def top_level_modules(statement: str) -> set[str]:
        code = f"import sys; {statement}; print(' '.join({{m.split('.')[0] for m in sys.modules}}))"
        return set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                  cwd=Path(config.__file__).parent.parent).stdout.split())

    added = top_level_modules("import config") - top_level_modules("pass")
    assert "config" in added
    assert {m for m in added if m not in sys.stdlib_module_names} == {"config"}


# --------------------------------------------------------------------------------------------------
# Typed access
# --------------------------------------------------------------------------------------------------

def test_values_is_a_plain_dict_of_typed_values():
    cfg = Config()
    assert type(cfg.values) is dict
    assert cfg.values["maxmemory"] == 0 and cfg.values["protected-mode"] is True
    assert cfg["hash-max-listpack-value"] == 64 and cfg["loglevel"] == "notice"


def test_aliases_resolve_through_getitem_and_get_string():
    cfg = load(["--hash-max-ziplist-entries", "100", "--lua-time-limit", "300"])
    assert cfg["hash-max-ziplist-entries"] == cfg["hash-max-listpack-entries"] == 100
    assert cfg.get_string("lua-time-limit") == "300"
    assert "lua-time-limit" not in cfg.values


def test_unknown_names_raise_key_error():
    with pytest.raises(KeyError):
        Config()["no-such-option"]
    with pytest.raises(KeyError):
        Config().get_string("no-such-option")


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------

def test_config_file_syntax(tmp_path):
    path = write_conf(tmp_path, "\n".join([
        "# a comment",
        "",
        "   PORT 7000   ",
        "\trequirepass \"pass word\"\r",
        "maxmemory 2mb",
        "slaveof 127.0.0.1 6380",
        "notify-keyspace-events Ex",
        "list-max-ziplist-entries 5",
        "client-output-buffer-limit pubsub 64mb 16mb 90",
        "client-output-buffer-limit replica 1gb 512mb 30",
    ]))
    cfg = load([str(path)])
    assert cfg["port"] == 7000 and cfg["requirepass"] == "pass word" and cfg["maxmemory"] == 2 * 1024**2
    assert cfg["replicaof"] == ("127.0.0.1", 6380) and cfg.get_string("slaveof") == "127.0.0.1 6380"
    assert cfg.get_string("notify-keyspace-events") == "xE"
    assert cfg.get_string("client-output-buffer-limit") == (
        "normal 0 0 0 slave 1073741824 536870912 30 pubsub 67108864 16777216 90")
    assert cfg.config_file == str(path)


def test_flags_override_the_file(tmp_path):
    path = write_conf(tmp_path, "port 7000\nloglevel debug\n")
    cfg = load([str(path), "--port", "7001", "--maxmemory", "1gb"])
    assert (cfg["port"], cfg["loglevel"], cfg["maxmemory"]) == (7001, "debug", 1024**3)


def test_config_file_path_is_made_absolute(tmp_path, monkeypatch):
    write_conf(tmp_path, "port 7000\n")
    monkeypatch.chdir(tmp_path)
    assert load(["shardis.conf"]).config_file == str(tmp_path / "shardis.conf")


@pytest.mark.parametrize("argv, option, expected", [
    (["--save", "60", "1", "--save", "70", "2"], "save", [(60, 1), (70, 2)]),
    (["--save", "--appendonly", "yes"], "save", []),
    (["--appendonly", "yes", "--save"], "save", []),
    (["--save", ""], "save", []),
    (["--bind", "127.0.0.1", "-::1"], "bind", ["127.0.0.1", "-::1"]),
    (["--requirepass", "--secret"], "requirepass", "--secret"),
    (["--port 7002"], "port", 7002),
    (["--bind 127.0.0.1 ::1"], "bind", ["127.0.0.1", "::1"]),
    (["--save", "60", "1", "--save 70 2"], "save", [(60, 1), (70, 2)]),
    (["--PORT", "7003"], "port", 7003),
    (["--replicaof", "localhost", "6390"], "replicaof", ("localhost", 6390)),
    (["--replicaof", "NO", "One"], "replicaof", None),
    (["--hz", "0"], "hz", 1),
    (["--hz", "100000"], "hz", 500),
    (["--shards", "64"], "shards", 64),
    (["--daemonize", "NO"], "daemonize", False),
    (["--oom-score-adj", "relative"], "oom-score-adj", "yes"),
    (["--shutdown-on-sigterm", "now", "save"], "shutdown-on-sigterm", ("save", "now")),
    (["--notify-keyspace-events", "KEA"], "notify-keyspace-events", "g$lshzxetdKE"),
    (["--unixsocketperm", "700"], "unixsocketperm", 0o700),
    (["--maxmemory-clients", "10%"], "maxmemory-clients", -10),
])
def test_command_line_flags(argv, option, expected):
    assert load(argv)[option] == expected


def test_save_lines_in_a_file_accumulate_and_save_empty_resets(tmp_path):
    assert load([str(write_conf(tmp_path, "save 900 1\nsave 300 10\n"))])["save"] == [(900, 1), (300, 10)]
    assert load([str(write_conf(tmp_path, 'save 900 1\nsave ""\nsave 10 1\n'))])["save"] == [(10, 1)]
    assert load([str(write_conf(tmp_path, "save 900 1\n")), "--save", "60", "5"])["save"] == [(900, 1), (60, 5)]
    assert load([str(write_conf(tmp_path, "save 900 1\n")), "--save", ""])["save"] == []


def test_dir_is_resolved_like_chdir(tmp_path, monkeypatch):
    (tmp_path / "a" / "b").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert load(["--dir", "a"])["dir"] == str(tmp_path.resolve() / "a")
    path = write_conf(tmp_path, "dir a\ndir b\n")
    assert load([str(path)])["dir"] == str(tmp_path.resolve() / "a" / "b")


@pytest.mark.parametrize("argv, message", [
    (["--foo", "1"], "unknown option 'foo' (command line)"),
    (["--port", "abc"],
     "bad value for 'port' (command line): 'abc' - argument couldn't be parsed into an integer"),
    (["--port", "65536"],
     "bad value for 'port' (command line): '65536' - argument must be between 0 and 65535 inclusive"),
    (["--port", "1", "2"], "wrong number of arguments for 'port' (command line)"),
    (["--port"], "wrong number of arguments for 'port' (command line)"),
    (["--shards", "65"],
     "bad value for 'shards' (command line): '65' - argument must be between 1 and 64 inclusive"),
    (["--shards", "0"],
     "bad value for 'shards' (command line): '0' - argument must be between 1 and 64 inclusive"),
    (["--daemonize", "yes"], "bad value for 'daemonize' (command line): 'yes' - Shardis supports only 'no'"),
    (["--cluster-enabled", "yes"],
     "bad value for 'cluster-enabled' (command line): 'yes' - Shardis supports only 'no'"),
    (["--maxmemory", "lots"],
     "bad value for 'maxmemory' (command line): 'lots' - argument must be a memory value"),
    (["--save", "1", "2", "3"], "bad value for 'save' (command line): '1 2 3' - Invalid save parameters"),
    (["--dir", "/nonexistent/x"],
     "bad value for 'dir' (command line): '/nonexistent/x' - No such file or directory"),
    (["--dir", "/etc/hostname"], "bad value for 'dir' (command line): '/etc/hostname' - Not a directory"),
    (["--include", "x.conf"], "'include' is not supported by Shardis (command line)"),
    (["--rename-command", "FLUSHALL", ""], "'rename-command' is not supported by Shardis (command line)"),
    (["--port", "7000", "extra", "--", "x"], "unexpected argument '--' (command line)"),
    (["-x"], "unexpected argument '-x' (command line)"),
    (["-"], "reading the configuration from standard input ('-') is not supported"),
    (["--bind", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16", "17"],
     "bad value for 'bind' (command line): '1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17' - "
     "Too many bind addresses specified."),
])
def test_command_line_errors(argv, message):
    with pytest.raises(ConfigError) as caught:
        load(argv)
    assert str(caught.value) == message


@pytest.mark.parametrize("text, message", [
    ("port 7000\n\nfoo bar\n", "unknown option 'foo' in {path} line 3"),
    ("# c\nport abc\n", "bad value for 'port' in {path} line 2: 'abc' - argument couldn't be parsed into an integer"),
    ("port 6379 # trailing comment\n", "wrong number of arguments for 'port' in {path} line 1"),
    ('requirepass "oops\n', "unbalanced quotes in {path} line 1"),
    ("include other.conf\n", "'include' is not supported by Shardis in {path} line 1"),
    ("appendfsync sometimes\n", "bad value for 'appendfsync' in {path} line 1: 'sometimes' - "
                                "argument(s) must be one of the following: everysec, always, no"),
])
def test_config_file_errors_name_the_file_and_line(tmp_path, text, message):
    path = write_conf(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load([str(path)])
    assert str(caught.value) == message.format(path=path)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load([str(tmp_path / "nope.conf")])
    assert str(caught.value) == f"can't open config file '{tmp_path / 'nope.conf'}': No such file or directory"


def test_help_and_version():
    assert config.help_or_version(["--help"]) == config.USAGE == config.help_or_version(["-h"])
    assert config.help_or_version(["-v"]) == config.version_text() == config.help_or_version(["--version"])
    assert config.help_or_version(["--port", "1"]) is None and config.help_or_version([]) is None
    assert "shardis-server [CONFIG_FILE] [--option value" in config.USAGE
    assert "--help" in config.USAGE and "--version" in config.USAGE
    assert config.VERSION in config.version_text() and config.REDIS_VERSION == "7.0.15"


# --------------------------------------------------------------------------------------------------
# CONFIG GET
# --------------------------------------------------------------------------------------------------

def test_config_get_exact_name_keeps_the_spelling_asked_for():
    assert Config().config_get([b"PORT"]) == {b"PORT": b"6379"}


def test_config_get_several_patterns_deduplicate_case_insensitively():
    assert Config().config_get([b"PORT", b"p?rt", b"port"]) == {b"PORT": b"6379"}
    assert Config().config_get([b"p?rt", b"PORT"]) == {b"port": b"6379"}
    assert Config().config_get([b"P?RT"]) == {b"port": b"6379"}  # globs ignore case, answer Redis's name


def test_config_get_globs_include_aliases():
    got = Config().config_get([b"hash-max-*-entries"])
    assert got == {b"hash-max-listpack-entries": b"512", b"hash-max-ziplist-entries": b"512"}
    assert set(Config().config_get([b"*slave*"])) == {
        b"slaveof", b"slave-announce-ip", b"slave-priority", b"slave-read-only", b"slave-lazy-flush",
        b"slave-serve-stale-data", b"slave-announce-port", b"slave-ignore-maxmemory", b"min-slaves-to-write",
        b"min-slaves-max-lag", b"repl-ping-slave-period", b"cluster-slave-validity-factor",
        b"cluster-slave-no-failover"}


def test_config_get_hidden_options_need_the_exact_name():
    assert Config().config_get([b"*key-load*"]) == {}
    assert Config().config_get([b"key-load-delay"]) == {b"key-load-delay": b"0"}


def test_config_get_star_lists_every_visible_name():
    visible = {name for name, option in
               ((n, config.lookup_option(n)) for o in config.OPTIONS.values() for n in (o.name, *o.aliases))
               if not option.hidden}
    assert {k.decode() for k in Config().config_get([b"*"])} == visible


def test_config_get_unknown_or_escaped_names_match_nothing():
    assert Config().config_get([b"nope", b"por\\t"]) == {}
    assert Config().config_get([b"por\\t*"]) == {b"port": b"6379"}


def test_config_get_without_patterns_is_an_arity_error():
    with pytest.raises(ConfigSetError) as caught:
        Config().config_get([])
    assert caught.value.message == "ERR wrong number of arguments for 'config|get' command"


def test_config_get_values_are_canonical_strings():
    cfg = load(["--maxmemory", "1gb", "--appendonly", "YES", "--notify-keyspace-events", "KEA",
                "--maxmemory-clients", "5%", "--unixsocketperm", "0755", "--latency-tracking-info-percentiles",
                "50", "99.900"])
    assert cfg.config_get([b"maxmemory", b"appendonly", b"notify-keyspace-events", b"maxmemory-clients",
                           b"unixsocketperm", b"latency-tracking-info-percentiles"]) == {
        b"maxmemory": b"1073741824", b"appendonly": b"yes", b"notify-keyspace-events": b"AKE",
        b"maxmemory-clients": b"5%", b"unixsocketperm": b"755", b"latency-tracking-info-percentiles": b"50 99.9"}


def test_non_utf8_values_round_trip_byte_exact():
    cfg = Config()
    cfg.config_set([b"requirepass", b"\xff\xfe secret"])
    assert cfg.config_get([b"requirepass"]) == {b"requirepass": b"\xff\xfe secret"}


# --------------------------------------------------------------------------------------------------
# CONFIG SET
# --------------------------------------------------------------------------------------------------

def test_config_set_changes_typed_values():
    cfg = Config()
    config_set(cfg, "maxmemory", "100mb", "maxmemory-policy", "ALLKEYS-LRU", "appendonly", "yes",
               "save", "60 1000", "client-output-buffer-limit", "normal 1mb 512kb 10")
    assert cfg["maxmemory"] == 100 * 1024**2 and cfg["maxmemory-policy"] == "allkeys-lru"
    assert cfg["appendonly"] is True and cfg["save"] == [(60, 1000)]
    assert cfg["client-output-buffer-limit"]["normal"] == (1024**2, 512 * 1024, 10)
    assert cfg["client-output-buffer-limit"]["slave"] == (256 * 1024**2, 64 * 1024**2, 60)


def test_config_set_is_all_or_nothing():
    cfg = Config()
    assert set_error(cfg, "maxmemory", "10mb", "hz", "abc", "timeout", "9") == (
        "ERR CONFIG SET failed (possibly related to argument 'hz') - argument couldn't be parsed into an integer")
    assert (cfg["maxmemory"], cfg["hz"], cfg["timeout"]) == (0, 10, 0)


@pytest.mark.parametrize("args, message", [
    (["foo", "bar"], "ERR Unknown option or number of arguments for CONFIG SET - 'foo'"),
    (["port"], "ERR wrong number of arguments for 'config|set' command"),
    ([], "ERR wrong number of arguments for 'config|set' command"),
    (["a", "b", "c"], "ERR syntax error"),
    (["databases", "3"], "ERR CONFIG SET failed (possibly related to argument 'databases') - can't set immutable config"),
    (["SHARDS", "3"], "ERR CONFIG SET failed (possibly related to argument 'SHARDS') - can't set immutable config"),
    (["dir", "/tmp"], "ERR CONFIG SET failed (possibly related to argument 'dir') - can't set protected config"),
    (["port", "1", "PORT", "2"], "ERR CONFIG SET failed (possibly related to argument 'PORT') - duplicate parameter"),
    (["port", "1", "port", "2", "foo", "x"],
     "ERR CONFIG SET failed (possibly related to argument 'port') - duplicate parameter"),
    (["databases", "3", "foo", "bar"],
     "ERR CONFIG SET failed (possibly related to argument 'databases') - can't set immutable config"),
    (["foo", "bar", "databases", "3"], "ERR Unknown option or number of arguments for CONFIG SET - 'foo'"),
    (["fo\r\no", "bar"], "ERR Unknown option or number of arguments for CONFIG SET - 'fo  o'"),
    (["PORT", "abc"],
     "ERR CONFIG SET failed (possibly related to argument 'port') - argument couldn't be parsed into an integer"),
    (["LUA-TIME-LIMIT", "-1"], "ERR CONFIG SET failed (possibly related to argument 'lua-time-limit') - "
                               "argument must be between 0 and 9223372036854775807 inclusive"),
    (["maxclients", "0"], "ERR CONFIG SET failed (possibly related to argument 'maxclients') - "
                          "argument must be between 1 and 4294967295 inclusive"),
    (["maxmemory", "1.5mb"],
     "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value"),
    (["proto-max-bulk-len", "1000"], "ERR CONFIG SET failed (possibly related to argument 'proto-max-bulk-len')"
                                     " - argument must be between 1048576 and 9223372036854775807 inclusive"),
    (["maxmemory-clients", "101%"], "ERR CONFIG SET failed (possibly related to argument 'maxmemory-clients') - "
                                    "percentage argument must be less or equal to 100"),
    (["maxmemory-clients", "-1"], "ERR CONFIG SET failed (possibly related to argument 'maxmemory-clients') - "
                                  "argument must be a memory or percent value"),
    (["protected-mode", "1"],
     "ERR CONFIG SET failed (possibly related to argument 'protected-mode') - argument must be 'yes' or 'no'"),
    (["appendfsync", "foo"], "ERR CONFIG SET failed (possibly related to argument 'appendfsync') - "
                             "argument(s) must be one of the following: everysec, always, no"),
    (["save", "100 2 50"], "ERR CONFIG SET failed (possibly related to argument 'save') - Invalid save parameters"),
    (["save", "0 1"], "ERR CONFIG SET failed (possibly related to argument 'save') - Invalid save parameters"),
    (["notify-keyspace-events", "ku"], "ERR CONFIG SET failed (possibly related to argument "
                                       "'notify-keyspace-events') - Invalid event class character. "
                                       "Use 'Ag$lshzxeKEtmdn'."),
    (["client-output-buffer-limit", "pubsub 1 2"], "ERR CONFIG SET failed (possibly related to argument "
     "'client-output-buffer-limit') - Wrong number of arguments in buffer limit configuration."),
    (["client-output-buffer-limit", "master 1 2 3"], "ERR CONFIG SET failed (possibly related to argument "
     "'client-output-buffer-limit') - Invalid client class specified in buffer limit configuration."),
    (["client-output-buffer-limit", "normal 1 2 -3"], "ERR CONFIG SET failed (possibly related to argument "
     "'client-output-buffer-limit') - Error in hard, soft or soft_seconds setting in buffer limit configuration."),
    (["shutdown-on-sigint", "nosave save"], "ERR CONFIG SET failed (possibly related to argument "
     "'shutdown-on-sigint') - shutdown options SAVE and NOSAVE can't be used simultaneously"),
    (["unixsocketperm", "777"],
     "ERR CONFIG SET failed (possibly related to argument 'unixsocketperm') - can't set immutable config"),
    (["tls-port", "6380"], "ERR CONFIG SET failed (possibly related to argument 'tls-port') - "
                           "Unable to update TLS configuration. Check server logs."),
])
def test_config_set_error_texts(args, message):
    assert set_error(Config(), *args) == message


def test_config_set_protected_options_need_enable_protected_configs(tmp_path):
    allowed = load(["--enable-protected-configs", "yes"])
    config_set(allowed, "dir", str(tmp_path), "dbfilename", "x.rdb")
    assert allowed["dir"] == str(tmp_path.resolve()) and allowed["dbfilename"] == "x.rdb"
    assert set_error(allowed, "dbfilename", "a/b") == (
        "ERR CONFIG SET failed (possibly related to argument 'dbfilename') - dbfilename can't be a path, just a filename")
    assert set_error(allowed, "dir", str(tmp_path / "missing")) == (
        "ERR CONFIG SET failed (possibly related to argument 'dir') - No such file or directory")

    local_only = load(["--enable-protected-configs", "local"])
    assert "protected config" in set_error(local_only, "dir", str(tmp_path))
    local_only.config_set([b"dir", str(tmp_path).encode()], client_is_local=True)
    assert local_only["dir"] == str(tmp_path.resolve())


def test_config_set_while_loading_refuses_deny_loading_options():
    cfg = Config()
    with pytest.raises(ConfigSetError) as caught:
        cfg.config_set([b"appendonly", b"yes"], loading=True)
    assert caught.value.message == "LOADING Redis is loading the dataset in memory"
    cfg.config_set([b"hz", b"20"], loading=True)
    assert cfg["hz"] == 20


def test_alias_and_name_in_one_command_are_not_duplicates():
    cfg = Config()
    config_set(cfg, "lua-time-limit", "1", "busy-reply-threshold", "2")
    assert cfg["busy-reply-threshold"] == 2


def test_config_set_normalises_like_redis():
    cfg = Config()
    config_set(cfg, "hz", "0")
    assert cfg["hz"] == 1
    config_set(cfg, "hz", "1000000")
    assert cfg["hz"] == 500
    config_set(cfg, "notify-keyspace-events", "Kgs$lhzxetdn")
    assert cfg.get_string("notify-keyspace-events") == "AK" and "n" in cfg["notify-keyspace-events"]
    config_set(cfg, "oom-score-adj", "relative")
    assert cfg.get_string("oom-score-adj") == "yes"
    config_set(cfg, "shutdown-on-sigint", "NOW force")
    assert cfg.get_string("shutdown-on-sigint") == "now force"
    config_set(cfg, "save", "")
    assert cfg["save"] == [] and cfg.get_string("save") == ""
    config_set(cfg, "bind", "")
    assert cfg["bind"] == [] and cfg.get_string("bind") == ""


# --------------------------------------------------------------------------------------------------
# Change callbacks
# --------------------------------------------------------------------------------------------------

def test_on_change_gets_canonical_name_and_typed_value_only_when_changed():
    cfg = Config()
    calls = []
    cfg.on_change("lua-time-limit", lambda name, value: calls.append((name, value)))
    cfg.on_change("maxmemory", lambda name, value: calls.append((name, value)))
    config_set(cfg, "lua-time-limit", "10", "maxmemory", "1kb", "hz", "5")
    config_set(cfg, "busy-reply-threshold", "10")
    assert calls == [("busy-reply-threshold", 10), ("maxmemory", 1024)]


def test_a_vetoing_callback_rolls_everything_back():
    cfg = Config()
    calls = []
    cfg.on_change("hz", lambda name, value: calls.append((name, value)))

    def refuse(name, value):
        raise ConfigApplyError("Unable to listen on this port. Check server logs.")

    cfg.on_change("port", refuse)
    assert set_error(cfg, "hz", "50", "PORT", "7000", "maxmemory", "1mb") == (
        "ERR CONFIG SET failed (possibly related to argument 'port') - "
        "Unable to listen on this port. Check server logs.")
    assert (cfg["hz"], cfg["port"], cfg["maxmemory"]) == (10, 6379, 0)
    assert calls == [("hz", 50), ("hz", 10)]  # applied, then undone


def test_other_exceptions_from_callbacks_propagate_after_rollback():
    class CommandError(Exception):
        pass

    cfg = Config()

    def refuse(name, value):
        raise CommandError("ERR nope")

    cfg.on_change("timeout", refuse)
    with pytest.raises(CommandError):
        config_set(cfg, "maxmemory", "1mb", "timeout", "5")
    assert (cfg["maxmemory"], cfg["timeout"]) == (0, 0)


def test_on_change_rejects_unknown_names():
    with pytest.raises(KeyError):
        Config().on_change("nope", lambda name, value: None)


# --------------------------------------------------------------------------------------------------
# CONFIG REWRITE
# --------------------------------------------------------------------------------------------------

def test_rewrite_without_a_config_file():
    with pytest.raises(ConfigSetError) as caught:
        Config().rewrite()
    assert caught.value.message == "ERR The server is running without a config file"


def test_rewrite_round_trip(tmp_path):
    path = write_conf(tmp_path, "# my settings\nport 7000\nsave 900 1\nmaxmemory 1mb\n")
    cfg = load([str(path), "--dir", str(tmp_path)])
    config_set(cfg, "maxmemory", "2gb", "hz", "25", "requirepass", 'se"cret', "notify-keyspace-events", "Ex",
               "client-output-buffer-limit", "pubsub 1mb 1000 5", "save", "60 10 30 100")
    cfg.rewrite()
    reloaded = load([str(path)])
    assert reloaded.values == cfg.values


def test_rewrite_keeps_the_file_shape(tmp_path):
    path = write_conf(tmp_path, "\n".join([
        "# header", "   # indented", "Port 7000", "slave-read-only no", "maxmemory 1mb", "save 900 1",
        "save 300 10", "port 7001", "requirepass x", "", "", "",
        "bind 127.0.0.1", "",
    ]))
    cfg = load([str(path), "--dir", str(tmp_path)])
    config_set(cfg, "maxmemory", "0", "save", "60 5", "requirepass", "", "bind", "127.0.0.1 -::1", "timeout", "30")
    path.write_text(path.read_text() + "foo bar\ninclude x.conf\n")
    cfg.rewrite()
    assert path.read_text().split("\n") == [
        "# header", "# indented", "port 7001", "replica-read-only no", "maxmemory 0", "save 60 5", "",
        "# ??? foo bar", "include x.conf", "",
        "# Generated by CONFIG REWRITE", "timeout 30", f'dir "{tmp_path.resolve()}"',
        "latency-tracking-info-percentiles 50 99 99.9", "",
    ]


def test_rewrite_is_stable(tmp_path):
    path = write_conf(tmp_path, "port 7000\n")
    cfg = load([str(path)])
    config_set(cfg, "hz", "30")
    cfg.rewrite()
    first = path.read_text()
    cfg.rewrite()
    second = path.read_text()
    cfg.rewrite()
    # Like Redis, the second rewrite keeps the old file's final newline as a blank last line.
    assert path.read_text() == second == first + "\n"
    assert first.count("# Generated by CONFIG REWRITE") == 1


def test_rewrite_writes_memory_sizes_and_empty_save_like_redis(tmp_path):
    path = write_conf(tmp_path, "")
    cfg = load([str(path), "--dir", str(tmp_path)])
    config_set(cfg, "maxmemory", "3gb", "repl-backlog-size", "1025", "auto-aof-rewrite-min-size", "2048",
               "save", "", "client-output-buffer-limit", "replica 1gb 1mb 0")
    cfg.rewrite()
    lines = path.read_text().splitlines()
    assert lines[0] == "# Generated by CONFIG REWRITE"
    for expected in ("maxmemory 3gb", "repl-backlog-size 1025", "auto-aof-rewrite-min-size 2kb", 'save ""',
                     "client-output-buffer-limit replica 1gb 1mb 0"):
        assert expected in lines
    assert not any(line.startswith("client-output-buffer-limit normal") for line in lines)


def test_rewrite_creates_a_missing_file(tmp_path):
    path = write_conf(tmp_path, "port 7000\n")
    cfg = load([str(path)])
    path.unlink()
    cfg.rewrite()
    assert path.read_text().splitlines()[:2] == ["# Generated by CONFIG REWRITE", "port 7000"]


def test_rewrite_reports_os_errors(tmp_path):
    path = write_conf(tmp_path, "port 7000\n")
    cfg = load([str(path)])
    path.unlink()
    path.mkdir()  # reading a directory fails with EISDIR
    with pytest.raises(ConfigSetError) as caught:
        cfg.rewrite()
    assert caught.value.message == "ERR Rewriting config file: Is a directory"
