"""The multi-part AOF manifest of Redis 7.0 (`appendonly.aof.manifest`): parse, render, name new files.

The manifest lists the files of `appenddirname`, one per line, as `file <name> seq <n> type <t>`
where t is `b` (base), `h` (history: left over from a rewrite, to delete) or `i` (incr). Parsing
follows aof.c `aofLoadManifestFromFile` rule for rule, so a manifest Redis refuses we refuse too,
with Redis's message:

- lines are read as `fgets` reads them, at most 1024 bytes; a line with no newline in those bytes
  (even the last line of the file) is "The AOF manifest file contains too long line";
- lines starting with `#` are comments; a blank line is an error;
- fields are split by `sdssplitargs` (so names may be quoted, with `\\xHH` escapes), must come in
  key/value pairs, at least three pairs (unknown keys are skipped, for forward compatibility);
- at most one base, and incr seqs strictly increasing.

Rendering follows `getAofManifestAsString`: base, then history, then incr, names quoted with
`sdscatrepr` only when they need it. The manifest is pure data; writing it to disk atomically is
AofDir's job (persistence/aof.py).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field

from config import split_args_bytes as split_args  # Redis's sdssplitargs

__all__ = [
    "BASE",
    "HISTORY",
    "INCR",
    "MANIFEST_MAX_LINE",
    "AofError",
    "AofInfo",
    "Manifest",
    "ManifestError",
    "quote_name",
    "split_args",
]

BASE, HISTORY, INCR = "b", "h", "i"
MANIFEST_MAX_LINE = 1024

_EMPTY = "Found an empty AOF manifest"
_TOO_LONG = "The AOF manifest file contains too long line"
_INVALID = "Invalid AOF manifest file format"
_PATH = "File can't be a path, just a filename"
_DUP_BASE = "Found duplicate base file information"
_NON_MONOTONIC = "Found a non-monotonic sequence number"
_UNKNOWN_TYPE = "Unknown AOF file type"


class AofError(Exception):
    """The AOF cannot be used as it is; the message names the file and, for data, the byte offset.

    `filename` and `offset` (None when they do not apply) are kept for callers that log or test them.
    """

    def __init__(self, message: str, *, filename: str | None = None, offset: int | None = None,
                 kind: str = "error") -> None:
        super().__init__(message)
        self.filename = filename
        self.offset = offset
        self.kind = kind


class ManifestError(AofError):
    """The manifest breaks one of Redis's rules; `reason` is Redis's own text for the rule."""

    def __init__(self, reason: str, *, line_number: int | None = None, line: str | None = None,
                 filename: str | None = None) -> None:
        where = ""
        if line is not None:
            where = f" (reading the manifest file{' ' + filename if filename else ''}, " \
                    f"at line {line_number}: '{line}')"
        super().__init__(reason + where, filename=filename, kind="manifest")
        self.reason = reason
        self.line_number = line_number
        self.line = line


@dataclass
class AofInfo:
    """One manifest line: a file name inside the AOF dir, its sequence number and type."""

    name: str
    seq: int
    type: str

    def render(self) -> str:
        return f"file {quote_name(self.name)} seq {self.seq} type {self.type}\n"


@dataclass
class Manifest:
    """The parsed manifest, plus the sequence counters used to name the next base and incr files."""

    appendfilename: str = "appendonly.aof"
    base: AofInfo | None = None
    history: list[AofInfo] = field(default_factory=list)
    incr: list[AofInfo] = field(default_factory=list)
    curr_base_seq: int = 0
    curr_incr_seq: int = 0

    # -- parsing -------------------------------------------------------------------------------

    @classmethod
    def parse(cls, data: bytes | str, appendfilename: str = "appendonly.aof",
              filename: str | None = None) -> Manifest:
        """Parse manifest text as Redis 7.0 does; raises ManifestError with Redis's message."""
        if isinstance(data, str):
            data = os.fsencode(data)
        manifest = cls(appendfilename=appendfilename)
        maxseq = 0
        linenum = 0
        for raw in _fgets_lines(data, MANIFEST_MAX_LINE + 1):
            linenum += 1
            if raw[:1] == b"#":
                continue
            if b"\n" not in raw.split(b"\0", 1)[0]:
                raise ManifestError(_TOO_LONG, filename=filename)
            line = raw.split(b"\0", 1)[0].strip(b" \t\r\n")
            shown = line.decode("utf-8", "replace")
            fail = functools.partial(_line_error, line_number=linenum, line=shown, filename=filename)
            if not line:
                raise fail(_INVALID)
            argv = split_args(line)
            if argv is None or len(argv) < 6 or len(argv) % 2:
                raise fail(_INVALID)
            name: bytes | None = None
            seq = 0
            ftype = b""
            for key, value in zip(argv[0::2], argv[1::2]):
                key = key.lower()
                if key == b"file":
                    name = value
                    if b"/" in name or b"\\" in name:
                        raise fail(_PATH)
                elif key == b"seq":
                    seq = _atoll(value)
                elif key == b"type":
                    ftype = value[:1]
            if name is None or seq == 0 or ftype in (b"", b"\0"):
                raise fail(_INVALID)
            info = AofInfo(os.fsdecode(name), seq, ftype.decode("latin-1"))
            if info.type == BASE:
                if manifest.base is not None:
                    raise fail(_DUP_BASE)
                manifest.base = info
                manifest.curr_base_seq = seq
            elif info.type == HISTORY:
                manifest.history.append(info)
            elif info.type == INCR:
                if seq <= maxseq:
                    raise fail(_NON_MONOTONIC)
                manifest.incr.append(info)
                manifest.curr_incr_seq = seq
                maxseq = seq
            else:
                raise fail(_UNKNOWN_TYPE)
        if linenum == 0:
            raise ManifestError(_EMPTY, filename=filename)
        return manifest

    # -- rendering and editing ----------------------------------------------------------------------

    def render(self) -> str:
        """The manifest text: base first, then history, then incr (getAofManifestAsString)."""
        parts = [self.base.render()] if self.base else []
        parts += [info.render() for info in self.history]
        parts += [info.render() for info in self.incr]
        return "".join(parts)

    def copy(self) -> Manifest:
        """A deep copy to edit, so a failed disk update leaves the live manifest untouched."""
        def dup(info: AofInfo) -> AofInfo:
            return AofInfo(info.name, info.seq, info.type)
        return Manifest(self.appendfilename, dup(self.base) if self.base else None,
                        [dup(i) for i in self.history], [dup(i) for i in self.incr],
                        self.curr_base_seq, self.curr_incr_seq)

    def is_empty(self) -> bool:
        """True when there is nothing to load (no base, no incr), as Redis's AOF_NOT_EXIST."""
        return self.base is None and not self.incr

    def base_name(self, seq: int, is_rdb: bool) -> str:
        return f"{self.appendfilename}.{seq}.base.{'rdb' if is_rdb else 'aof'}"

    def incr_name(self, seq: int) -> str:
        return f"{self.appendfilename}.{seq}.incr.aof"

    def new_base(self, is_rdb: bool) -> AofInfo:
        """Name the next base; the current one (if any) becomes history (getNewBaseFileName...)."""
        if self.base is not None:
            self.base.type = HISTORY
            self.history.insert(0, self.base)
        self.curr_base_seq += 1
        self.base = AofInfo(self.base_name(self.curr_base_seq, is_rdb), self.curr_base_seq, BASE)
        return self.base

    def new_incr(self) -> AofInfo:
        """Append the next incr file (getNewIncrAofName)."""
        self.curr_incr_seq += 1
        info = AofInfo(self.incr_name(self.curr_incr_seq), self.curr_incr_seq, INCR)
        self.incr.append(info)
        return info

    def last_incr(self) -> AofInfo | None:
        return self.incr[-1] if self.incr else None

    def mark_incr_history(self, keep_from: int | None) -> list[AofInfo]:
        """Incr files with seq < keep_from become history (markRewrittenIncrAofAsHistory).

        None keeps only the last incr, the one the rewrite opened, as Redis does with AOF on.
        Returns the infos that moved.
        """
        if keep_from is None:
            keep_from = self.incr[-1].seq if self.incr else 0
        moved = [info for info in self.incr if info.seq < keep_from]
        self.incr = [info for info in self.incr if info.seq >= keep_from]
        for info in moved:  # newest first at the head, as Redis's listAddNodeHead walk leaves them
            info.type = HISTORY
            self.history.insert(0, info)
        return moved


def _line_error(reason: str, **where) -> ManifestError:
    return ManifestError(reason, **where)


# -- sds helpers ---------------------------------------------------------------------------------

def _fgets_lines(data: bytes, bufsize: int):
    """Split like repeated fgets(buf, bufsize): up to and including '\\n', at most bufsize-1 bytes."""
    pos, size, cap = 0, len(data), bufsize - 1
    while pos < size:
        nl = data.find(b"\n", pos, pos + cap)
        end = nl + 1 if nl >= 0 else min(pos + cap, size)
        yield data[pos:end]
        pos = end


_C_SPACE = b" \t\n\v\f\r"
_HEX = b"0123456789abcdefABCDEF"
_ESCAPES = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b", ord("a"): b"\a"}


def _atoll(value: bytes) -> int:
    """C atoll: leading spaces, a sign, then the longest run of digits; 0 when there are none."""
    s = value.lstrip(_C_SPACE)
    sign = 1
    if s[:1] in (b"+", b"-"):
        sign = -1 if s[:1] == b"-" else 1
        s = s[1:]
    digits = 0
    while digits < len(s) and 48 <= s[digits] <= 57:
        digits += 1
    if not digits:
        return 0
    return max(-(2 ** 63), min(2 ** 63 - 1, sign * int(s[:digits])))


def _needs_repr(name: bytes) -> bool:
    """sds.c `sdsneedsrepr`: quote when any byte is a quote, backslash, space or not printable."""
    return any(c in b'\\"' or c in _C_SPACE or c in b"\a\b" or not 0x20 <= c <= 0x7E for c in name)


def quote_name(name: str) -> str:
    """A file name as the manifest writes it: raw, or `sdscatrepr`-quoted when it needs to be."""
    raw = os.fsencode(name)
    if not _needs_repr(raw):
        return raw.decode("ascii")
    out = ['"']
    for c in raw:
        if c in b'\\"':
            out.append("\\" + chr(c))
        elif c == 0x0A:
            out.append("\\n")
        elif c == 0x0D:
            out.append("\\r")
        elif c == 0x09:
            out.append("\\t")
        elif c == 0x07:
            out.append("\\a")
        elif c == 0x08:
            out.append("\\b")
        elif 0x20 <= c <= 0x7E:
            out.append(chr(c))
        else:
            out.append(f"\\x{c:02x}")
    out.append('"')
    return "".join(out)
