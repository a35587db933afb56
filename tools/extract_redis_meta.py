"""Dump a live redis-server's COMMAND and COMMAND DOCS replies into `commands/redis_meta.json`.

Why: COMMAND INFO/DOCS must match Redis 7.0 byte for byte, and most of what they say (ACL categories,
tips, key specs, docs) is data, not behaviour. Reading it from the real server once is more reliable
than transcribing Redis's `src/commands/*.json` by hand.

The script speaks RESP3 over a raw socket, because redis-py post-processes COMMAND replies. RESP3 keeps
maps as maps, so the key order of every map survives into the JSON.

Usage: python tools/extract_redis_meta.py PORT [OUTPUT]
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

__all__ = ["RespReader", "fetch", "extract", "dump", "main"]

DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "commands" / "redis_meta.json"


class RespReader:
    """A minimal blocking RESP3 reader: maps become dicts, sets and arrays lists, strings str."""

    def __init__(self, sock: socket.socket) -> None:
        self._file = sock.makefile("rb")

    def _line(self) -> bytes:
        line = self._file.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError("connection closed mid-reply")
        return line[:-2]

    def read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind in (b"+",):
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            data = self._file.read(size + 2)
            return data[:-2].decode()
        if kind in (b"*", b"~", b">"):
            size = int(rest)
            return None if size < 0 else [self.read() for _ in range(size)]
        if kind == b"%":
            size = int(rest)
            out = {}
            for _ in range(size):
                key = self.read()
                out[key] = self.read()
            return out
        if kind == b"_":
            return None
        if kind == b"#":
            return rest == b"t"
        if kind == b",":
            return float(rest)
        raise ValueError(f"unexpected RESP type byte {kind!r}")


def _send(sock: socket.socket, *args: str) -> None:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    sock.sendall(b"".join(parts))


def fetch(port: int, host: str = "127.0.0.1") -> tuple[str, list, dict]:
    """Return (redis_version, COMMAND reply, COMMAND DOCS reply) from a running server."""
    with socket.create_connection((host, port), timeout=30) as sock:
        reader = RespReader(sock)
        _send(sock, "HELLO", "3")
        hello = reader.read()
        _send(sock, "COMMAND")
        info = reader.read()
        _send(sock, "COMMAND", "DOCS")
        docs = reader.read()
    return hello["version"], info, docs


def _info_record(entry: list) -> dict:
    name, arity, flags, first, last, step, acl, tips, key_specs, subcommands = entry
    return {
        "arity": arity, "flags": flags, "first": first, "last": last, "step": step,
        "acl": acl, "tips": tips, "key_specs": key_specs,
        "subcommands": sorted(sub[0] for sub in subcommands),
    }


def extract(info: list, docs: dict) -> dict:
    """Merge INFO and DOCS into one record per full command name ("get", "config|get").

    Subcommand docs are moved out of their parent's "subcommands" map into their own record; the
    parent keeps only the ordered list of names. Redis lists subcommands in hash-table order, which
    changes from one server start to the next, so names are sorted to keep the file stable.
    """
    records: dict[str, dict] = {}

    def add(entry: list, doc: dict) -> None:
        record = _info_record(entry)
        doc = dict(doc)
        sub_docs = doc.pop("subcommands", None) or {}
        record["docs"] = doc
        records[entry[0]] = record
        for sub in entry[9]:
            add(sub, sub_docs[sub[0]])

    for entry in info:
        add(entry, docs[entry[0]])
    return {name: records[name] for name in sorted(records)}


def dump(version: str, records: dict) -> str:
    """One command per line: compact, yet a change to one command is a one-line diff."""
    lines = [json.dumps(name) + ":" + json.dumps(rec, separators=(",", ":"), ensure_ascii=False)
             for name, rec in records.items()]
    return ('{"redis_version":' + json.dumps(version) + ',\n"commands":{\n' + ",\n".join(lines)
            + "\n}}\n")


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    port = int(argv[1])
    output = Path(argv[2]) if len(argv) == 3 else DEFAULT_OUTPUT
    version, info, docs = fetch(port)
    records = extract(info, docs)
    output.write_text(dump(version, records), encoding="utf-8")
    print(f"wrote {len(records)} commands and subcommands of Redis {version} to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
