"""The AOF file layer: Redis 7.0's multi-part AOF directory, its writer side and its loader.

No threads, sockets or asyncio here: the persistence actor (actors/persistence.py) and the startup
loader (actors/loading.py) drive these classes. The layout is Redis's own, so a real redis-server
loads a directory we wrote and we load one it wrote (REDIS-FACTS §4):

    <dir>/<appenddirname>/<appendfilename>.manifest       file ... seq N type b|h|i lines
    <dir>/<appenddirname>/<appendfilename>.<seq>.base.rdb  (or .base.aof: RESP commands)
    <dir>/<appenddirname>/<appendfilename>.<seq>.incr.aof  RESP commands, appended to

Public interface:

- `AofDir(dir, appendfilename, appenddirname)`: `exists()`, `adopt_legacy()`, `files_to_load()`,
  `create_empty(base_bytes, is_rdb)`, `open_last_incr()` (startup), `open_new_incr()` (rewrite
  start), `open_temp_incr()` (CONFIG SET appendonly yes), `temp_base_path()`,
  `install_base(tmp_base_path, is_rdb, keep_incr_from=..., temp_incr=...)` (rewrite done),
  `delete_history()`, `total_size()`, `base_size()`, `manifest`. Every manifest change is written
  to a temp file, fsynced, renamed over the manifest, and the directory fsynced.
- `AofWriter`: the open incr file: `write(data)` (all or nothing), `fsync()`, `size`, `close()`.
- `encode_command(argv)`, `select_command(db)`, `timestamp_annotation(unix_seconds)`.
- `parse_commands(data, filename=..., last_file=..., truncated_ok=...) -> (commands, ScanResult)`,
  `scan(data, on_command, ...) -> ScanResult`: the RESP loader of `loadSingleAppendOnlyFile`.
- `load_file(path, ...)`, `load_all(aofdir, truncated_ok=, on_rdb=, on_command=, progress=)`:
  the startup load; truncates the last file when Redis would.
- `AofError` (and `ManifestError`): the message names the file and the byte offset.

Loader rules (Redis 7.0 `loadSingleAppendOnlyFile`, with the deviations marked *):

- A file starting with `REDIS` begins with an RDB (a `.base.rdb`, or an old RDB-preamble AOF):
  it goes to `on_rdb(data) -> int | None`, which returns the RDB's length (None: the whole file),
  and the RESP tail, if any, is read after it.
- Lines starting with `#` are annotations (`#TS:<unix>`) and are skipped.
- Every record is `*<argc>\\r\\n` then argc times `$<len>\\r\\n<bytes>\\r\\n`, argc >= 1. *Stricter
  than Redis: every CRLF is checked (Redis skips the two bytes after a bulk unread and reads
  lengths with atoi), so a damaged separator is a format error rather than a silent misparse.
- Commands between MULTI and EXEC are handed over only when EXEC is read; MULTI and EXEC
  themselves are not handed over. A nested MULTI or an EXEC without MULTI is a format error (Redis
  would crash on them).
- The file ending inside a record is a short read. In the last file with truncated_ok, loading
  stops at the last complete command and the file is cut there (`valid_up_to`), with Redis's
  warnings; otherwise it is an error. The file ending inside MULTI (no EXEC) is handled as a short
  read that reverts to before the MULTI ("Revert incomplete MULTI/EXEC transaction").
  *Redis cuts a short read *inside* a transaction after the last queued command, which leaves an
  open MULTI that swallows the writes appended later; we cut before the MULTI. *A partial
  annotation line at the end is a short read too (Redis keeps it, and the next record appended
  would become part of the annotation). *A short read in the RESP tail after an RDB preamble cuts
  back to the end of the RDB (Redis's valid_up_to starts at 0 and would cut the RDB away too).
- Any other malformation is an error naming the file and offset. A byte flipped inside a value
  cannot be detected by anyone: the AOF has no checksum.

Speed: RESP is parsed by hiredis in 4 KiB chunks and every parsed batch is verified by re-encoding
it and comparing with the file bytes, which also gives exact offsets. Annotations, errors and the
tail fall back to an exact Python parser for one record at a time.
"""

from __future__ import annotations

import mmap
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Self

import hiredis

from persistence.manifest import BASE, AofError, AofInfo, Manifest, ManifestError

__all__ = [
    "AofDir",
    "AofError",
    "AofInfo",
    "AofWriter",
    "FileLoad",
    "LoadResult",
    "Manifest",
    "ManifestError",
    "ScanResult",
    "encode_command",
    "fsync_dir",
    "load_all",
    "load_file",
    "parse_commands",
    "scan",
    "select_command",
    "timestamp_annotation",
]

CHUNK = 4096                 # hiredis compacts its buffer after each 1 KiB consumed: keep feeds small
FIRST_FEED = 128             # first feed after a (re)start of the fast parser
PROGRESS_EVERY = 1 << 20     # bytes between progress callbacks
_FIX_HINT = "make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>"


# -- encoding -----------------------------------------------------------------------------------

def encode_command(argv) -> bytes:
    """One command as the RESP multibulk the AOF stores (catAppendOnlyGenericCommand)."""
    return hiredis.pack_command(tuple(argv))


def select_command(db: int) -> bytes:
    """The SELECT record feedAppendOnlyFile writes when the target db changes."""
    digits = b"%d" % db
    return b"*2\r\n$6\r\nSELECT\r\n$%d\r\n%s\r\n" % (len(digits), digits)


def timestamp_annotation(unix_seconds: int) -> bytes:
    """The `aof-timestamp-enabled` annotation line; loaders skip lines starting with '#'."""
    return b"#TS:%d\r\n" % unix_seconds


def fsync_dir(path: str) -> None:
    """Make a rename or a new file in `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_fdatasync = getattr(os, "fdatasync", os.fsync)


class AofWriter:
    """An incr file open for appending. `write` puts all of the data in the file or raises.

    On a failed write whatever part was written is cut off again (as flushAppendOnlyFile does), so
    the file never ends in half a record; if even that fails, the unwritten rest is kept and
    written first next time, which completes the record instead.
    """

    def __init__(self, path: str, *, truncate: bool = False, seq: int | None = None) -> None:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | (os.O_TRUNC if truncate else 0)
        self.path = path
        self.name = os.path.basename(path)
        self.seq = seq
        self.fd = os.open(path, flags, 0o644)
        self.size = os.fstat(self.fd).st_size
        self._pending = b""

    def write(self, data: bytes) -> None:
        if self._pending:
            self._write_through(self._pending)
            self._pending = b""
        self._write_through(data)

    def _write_through(self, data: bytes) -> None:
        view = memoryview(data)
        written = 0
        try:
            while written < len(view):
                written += os.write(self.fd, view[written:])
        except OSError:
            if written:
                try:
                    os.ftruncate(self.fd, self.size)
                except OSError:
                    self.size += written
                    self._pending = bytes(view[written:])
            raise
        self.size += written

    def fsync(self) -> None:
        _fdatasync(self.fd)

    def flush(self) -> None:
        """Writes go straight to the kernel; present so the writer can stand in for a file."""

    def fileno(self) -> int:
        return self.fd

    @property
    def closed(self) -> bool:
        return self.fd < 0

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- the directory ------------------------------------------------------------------------------

class AofDir:
    """One `appenddirname` directory under `dir`, and its manifest (loaded on first use)."""

    def __init__(self, dir: str, appendfilename: str = "appendonly.aof",
                 appenddirname: str = "appendonlydir") -> None:
        self.dir = dir
        self.appendfilename = appendfilename
        self.appenddirname = appenddirname
        self.path = os.path.join(dir, appenddirname)
        self.manifest_name = appendfilename + ".manifest"
        self.manifest_path = os.path.join(self.path, self.manifest_name)
        self.legacy_path = os.path.join(dir, appendfilename)
        self._manifest: Manifest | None = None

    def __repr__(self) -> str:
        return f"AofDir({self.path!r})"

    # -- reading the manifest ---------------------------------------------------------------------

    @property
    def manifest(self) -> Manifest:
        """The manifest on disk; an empty one when the dir or the file is missing (aofLoadManifestFromDisk)."""
        if self._manifest is None:
            self._manifest = self._read_manifest()
        return self._manifest

    def reload(self) -> Manifest:
        self._manifest = None
        return self.manifest

    def _read_manifest(self) -> Manifest:
        if not os.path.isdir(self.path) or not os.path.exists(self.manifest_path):
            return Manifest(self.appendfilename)
        try:
            with open(self.manifest_path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise ManifestError(f"Fatal error: can't open the AOF manifest file "
                                f"{self.manifest_path} for reading: {exc.strerror}",
                                filename=self.manifest_name) from exc
        return Manifest.parse(data, self.appendfilename, filename=self.manifest_name)

    def exists(self) -> bool:
        """True when the manifest lists a base or an incr file, i.e. there is an AOF to load."""
        return not self.manifest.is_empty()

    def file_path(self, name: str) -> str:
        return os.path.join(self.path, name)

    def files_to_load(self) -> list[tuple[str, str]]:
        """(path, "base" | "incr") in load order: the base, then every incr by seq."""
        m = self.manifest
        files = [(self.file_path(m.base.name), "base")] if m.base else []
        files += [(self.file_path(info.name), "incr") for info in m.incr]
        return files

    def _size(self, name: str) -> int:
        try:
            return os.stat(self.file_path(name)).st_size
        except FileNotFoundError:
            return 0

    def base_size(self) -> int:
        """Size of the base file (Redis's aof_rewrite_base_size after a restart)."""
        return self._size(self.manifest.base.name) if self.manifest.base else 0

    def total_size(self) -> int:
        """Base plus every incr, history excluded (getBaseAndIncrAppendOnlyFilesSize)."""
        m = self.manifest
        return self.base_size() + sum(self._size(info.name) for info in m.incr)

    # -- writing the manifest ----------------------------------------------------------------------

    def _persist(self, manifest: Manifest) -> None:
        """Write the manifest atomically: temp file, fsync, rename, fsync the dir (writeAofManifestFile)."""
        os.makedirs(self.path, exist_ok=True)
        tmp = os.path.join(self.path, "temp-" + self.manifest_name)
        data = manifest.render().encode("ascii")
        fd = os.open(tmp, os.O_WRONLY | os.O_TRUNC | os.O_CREAT, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.manifest_path)
        fsync_dir(self.path)

    # -- legacy adoption and first start -------------------------------------------------------------

    def adopt_legacy(self) -> bool:
        """Redis 7's aofUpgradePrepare: move a pre-7 `dir/appendonly.aof` into the dir as base seq 1.

        Done when that file exists and the dir is missing, or the manifest lists nothing, or the
        manifest lists only that file as base with no incr and the file is not in the dir yet (an
        upgrade interrupted by a crash). Returns True when the file was adopted.
        """
        if not os.path.isfile(self.legacy_path):
            return False
        m = self.manifest
        name = self.appendfilename
        interrupted = (m.base is not None and not m.incr and m.base.name == name
                       and not os.path.isfile(self.file_path(name)))
        if os.path.isdir(self.path) and not m.is_empty() and not interrupted:
            return False
        os.makedirs(self.path, exist_ok=True)
        temp = m.copy()
        temp.base = AofInfo(name, 1, BASE)
        temp.curr_base_seq = 1
        self._persist(temp)
        self._manifest = temp
        os.rename(self.legacy_path, self.file_path(name))
        fsync_dir(self.path)
        fsync_dir(self.dir)
        return True

    def _install_file(self, data: bytes, name: str) -> None:
        tmp = os.path.join(self.path, f"temp-{name}")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.file_path(name))

    def create_empty(self, base_bytes: bytes = b"", is_rdb: bool = False) -> None:
        """First start with nothing to load: a base (the bytes the caller gives: an empty RDB for
        aof-use-rdb-preamble yes, else usually nothing) and an empty incr, then the manifest
        (aofOpenIfNeededOnServerStart)."""
        os.makedirs(self.path, exist_ok=True)
        temp = self.manifest.copy()
        base = temp.new_base(is_rdb)
        self._install_file(base_bytes, base.name)
        incr = temp.last_incr() or temp.new_incr()
        AofWriter(self.file_path(incr.name)).close()
        self._persist(temp)
        self._manifest = temp

    # -- opening incr files ----------------------------------------------------------------------

    def open_last_incr(self) -> AofWriter:
        """Startup: reopen the last incr for appending, or create the first one (getLastIncrAofName)."""
        temp = self.manifest.copy()
        created = temp.last_incr() is None
        info = temp.last_incr() or temp.new_incr()
        writer = AofWriter(self.file_path(info.name), seq=info.seq)
        if created:
            try:
                self._persist(temp)
            except OSError:
                writer.close()
                raise
            self._manifest = temp
        return writer

    def open_new_incr(self) -> tuple[str, AofWriter]:
        """Rewrite start: create the next incr and put it in the manifest (openNewIncrAofForAppend).

        The file is created first and the manifest only then points at it; if the manifest cannot
        be written the new file is removed and the live manifest is unchanged. The caller keeps
        appending to its old writer until this returns, then switches (fsync and close the old).
        """
        os.makedirs(self.path, exist_ok=True)
        temp = self.manifest.copy()
        info = temp.new_incr()
        path = self.file_path(info.name)
        writer = AofWriter(path, truncate=True, seq=info.seq)
        try:
            self._persist(temp)
        except OSError:
            writer.close()
            _unlink_quietly(path)
            raise
        self._manifest = temp
        return path, writer

    @property
    def temp_incr_path(self) -> str:
        return self.file_path(f"temp-{self.appendfilename}.incr")

    def open_temp_incr(self) -> tuple[str, AofWriter]:
        """CONFIG SET appendonly yes: writes go to `temp-<name>.incr` until the first rewrite is
        installed (install_base(..., temp_incr=True) renames it into the next incr)."""
        os.makedirs(self.path, exist_ok=True)
        return self.temp_incr_path, AofWriter(self.temp_incr_path, truncate=True)

    def temp_base_path(self) -> str:
        """Where a rewrite should write the new base: inside the dir, so the rename is atomic."""
        os.makedirs(self.path, exist_ok=True)
        return self.file_path(f"temp-rewriteaof-bg-{os.getpid()}.aof")

    # -- rewrite done ----------------------------------------------------------------------------

    def install_base(self, tmp_base_path: str, is_rdb: bool, *, keep_incr_from: int | None = None,
                     temp_incr: bool = False, delete_history: bool = True) -> list[str]:
        """A rewrite finished: its base replaces the old one (backgroundRewriteDoneHandler).

        - The new base gets the next base seq; the old base becomes history.
        - Incr files with seq < keep_incr_from were closed before the rewrite's snapshot and are
          covered by it: they become history. The incr opened when the rewrite started (and any
          later one) stays, as the first incr after the new base. keep_incr_from=None keeps just the
          last incr, as Redis does with appendonly on; pass last seq + 1 to keep none (a rewrite with
          appendonly off).
        - temp_incr=True: the `temp-<name>.incr` of a CONFIG SET appendonly yes becomes the next incr.
        - The manifest is swapped atomically; then history files are deleted and the manifest
          written again without them (unless delete_history=False: call delete_history() later).

        Returns the history file names deleted. On failure the old manifest stays in force.
        """
        temp = self.manifest.copy()
        base = temp.new_base(is_rdb)
        base_path = self.file_path(base.name)
        with open(tmp_base_path, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp_base_path, base_path)
        new_incr_path = None
        try:
            if temp_incr:
                info = temp.new_incr()
                new_incr_path = self.file_path(info.name)
                os.replace(self.temp_incr_path, new_incr_path)
                keep_incr_from = info.seq
            temp.mark_incr_history(keep_incr_from)
            self._persist(temp)
        except OSError:
            _unlink_quietly(base_path)
            if new_incr_path:
                _unlink_quietly(new_incr_path)
            raise
        self._manifest = temp
        return self.delete_history() if delete_history else []

    def delete_history(self) -> list[str]:
        """Remove the history files and drop them from the manifest (aofDelHistoryFiles)."""
        m = self.manifest
        if not m.history:
            return []
        names = [info.name for info in m.history]
        for name in names:
            _unlink_quietly(self.file_path(name))
        temp = m.copy()
        temp.history = []
        self._persist(temp)
        self._manifest = temp
        return names


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# -- the RESP loader ----------------------------------------------------------------------------

@dataclass
class ScanResult:
    """What one scan of RESP records found.

    `valid_up_to` is the end of the last command that counts (outside an open MULTI); when
    `short_read` is set the data ended inside a record (or inside MULTI, `reverted_multi`) and a
    caller allowed to truncate cuts the file there.
    """

    commands: int = 0
    end: int = 0
    valid_up_to: int = 0
    short_read: bool = False
    reverted_multi: bool = False
    annotations: int = 0


class _FormatError(Exception):
    def __init__(self, offset: int, detail: str) -> None:
        super().__init__(detail)
        self.offset = offset
        self.detail = detail


_ANNOTATION, _COMMAND, _SHORT = 0, 1, 2


def _show(buf, i: int) -> str:
    return repr(bytes(buf[i:i + 1]))[1:]


def _read_length(buf, p: int, size: int) -> tuple[int, int] | None:
    """Digits then CRLF at p: (value, next offset), None when the data ends first."""
    start = p
    limit = min(size, p + 19)
    while p < limit and 48 <= buf[p] <= 57:
        p += 1
    if p >= size:
        return None
    if p == start:
        raise _FormatError(p, f"expected a digit, got {_show(buf, p)}")
    if buf[p] != 13:
        raise _FormatError(p, f"expected CR after the length, got {_show(buf, p)}")
    if p + 1 >= size:
        return None
    if buf[p + 1] != 10:
        raise _FormatError(p + 1, f"expected LF after CR, got {_show(buf, p + 1)}")
    return int(buf[start:p]), p + 2


def _parse_item(buf, pos: int, size: int):
    """One annotation or command at pos, parsed exactly: (kind, argv, end); raises _FormatError."""
    first = buf[pos]
    if first == 35:  # '#'
        nl = buf.find(b"\n", pos)
        return (_SHORT, None, pos) if nl < 0 else (_ANNOTATION, None, nl + 1)
    if first != 42:  # '*'
        raise _FormatError(pos, f"expected '*', got {_show(buf, pos)}")
    header = _read_length(buf, pos + 1, size)
    if header is None:
        return _SHORT, None, pos
    argc, p = header
    if argc < 1:
        raise _FormatError(pos, f"invalid multibulk length {argc}")
    argv = []
    for _ in range(argc):
        if p >= size:
            return _SHORT, None, pos
        if buf[p] != 36:  # '$'
            raise _FormatError(p, f"expected '$', got {_show(buf, p)}")
        bulk = _read_length(buf, p + 1, size)
        if bulk is None:
            return _SHORT, None, pos
        length, q = bulk
        end = q + length
        for i, expected in ((end, 13), (end + 1, 10)):
            if i >= size:
                return _SHORT, None, pos
            if buf[i] != expected:
                raise _FormatError(i, f"bulk string of {length} bytes at offset {p} is not "
                                      f"followed by CRLF (got {_show(buf, i)})")
        argv.append(bytes(buf[q:end]))
        p = end + 2
    return _COMMAND, argv, p


class _Stream:
    """MULTI/EXEC bookkeeping shared by the fast and the exact parser."""

    __slots__ = ("commands", "committed", "emit", "in_multi", "next_progress", "queued")

    def __init__(self, emit, start: int) -> None:
        self.emit = emit
        self.in_multi = False
        self.queued: list = []
        self.committed = start
        self.commands = 0
        self.next_progress = start + PROGRESS_EVERY

    def special(self, argv, start: int, end: int) -> None:
        """MULTI or EXEC (argv[0] already known to be one of them, any case)."""
        if argv[0].upper() == b"MULTI":
            if self.in_multi:
                raise _FormatError(start, "MULTI calls can not be nested")
            self.in_multi = True
            self.queued = []
        else:
            if not self.in_multi:
                raise _FormatError(start, "EXEC without MULTI")
            emit = self.emit
            for queued in self.queued:
                emit(queued)
            self.commands += len(self.queued)
            self.queued = []
            self.in_multi = False
            self.committed = end

    def one(self, argv, start: int, end: int) -> None:
        name = argv[0]
        if (len(name) == 5 or len(name) == 4) and name.upper() in (b"MULTI", b"EXEC"):
            self.special(argv, start, end)
        elif self.in_multi:
            self.queued.append(argv)
        else:
            self.emit(argv)
            self.commands += 1
            self.committed = end


def _verified_prefix(batch: list, buf, pos: int) -> tuple[int, list[int]]:
    """How many commands of batch re-encode to exactly the bytes at pos, and their lengths."""
    pack = hiredis.pack_command
    lengths = []
    for argv in batch:
        if type(argv) is not list or not argv:
            break
        try:
            encoded = pack(tuple(argv))
        except TypeError:
            break
        if buf[pos:pos + len(encoded)] != encoded:
            break
        lengths.append(len(encoded))
        pos += len(encoded)
    return len(lengths), lengths


def scan(data, on_command: Callable[[list], None], *, filename: str = "<aof>",
         last_file: bool = True, truncated_ok: bool = False, start: int = 0,
         progress: Callable[[int], None] | None = None) -> ScanResult:
    """Read RESP records from data[start:] (bytes or mmap), handing commands to on_command.

    Returns a ScanResult; a short read is reported there (`short_read`, `valid_up_to`) when
    last_file and truncated_ok, otherwise raised as AofError, like every format error.
    progress(offset) is called about every MiB.
    """
    size = len(data)
    stream = _Stream(on_command, start)
    result = ScanResult()
    pos = start
    try:
        while True:
            pos = _fast(data, pos, size, stream, progress)
            if pos >= size:
                break
            kind, argv, end = _parse_item(data, pos, size)
            if kind == _SHORT:
                result.short_read = True
                break
            if kind == _ANNOTATION:
                result.annotations += 1
            else:
                stream.one(argv, pos, end)
            pos = end
    except _FormatError as exc:
        raise AofError(f"Bad file format reading the append only file {filename} at offset "
                       f"{exc.offset} ({exc.detail}): {_FIX_HINT}",
                       filename=filename, offset=exc.offset, kind="format") from None
    if stream.in_multi and not result.short_read:
        result.short_read = result.reverted_multi = True
    result.commands = stream.commands
    result.end = size if not result.short_read else pos
    result.valid_up_to = stream.committed
    if result.short_read and not (last_file and truncated_ok):
        offset = stream.committed
        if not last_file:
            reason = "the truncated file is not the last file"
        else:
            reason = ("You can: 1) Make a backup of your AOF file, then use ./redis-check-aof --fix "
                      "<filename.manifest>. 2) Alternatively you can set the 'aof-load-truncated' "
                      "configuration option to yes and restart the server.")
        inside = " inside an incomplete MULTI/EXEC transaction" if result.reverted_multi else ""
        raise AofError(f"Unexpected end of file{inside} reading the append only file {filename} "
                       f"at offset {offset}: {reason}", filename=filename, offset=offset,
                       kind="truncated")
    return result


def _fast(data, pos: int, size: int, stream: _Stream, progress) -> int:
    """Parse with hiredis from pos while every record is canonical; return where it stopped."""
    reader = hiredis.Reader()
    pack = hiredis.pack_command
    fed = pos
    one, emit, special = stream.one, stream.emit, (b"MULTI", b"EXEC")
    feed = min(FIRST_FEED, CHUNK)  # grows: a restart right before an annotation wastes little
    while fed < size:
        reader.feed(data[fed:fed + feed])
        fed += feed
        if feed < CHUNK:
            feed = min(feed * 2, CHUNK)
        batch = []
        broken = False
        try:
            while True:
                argv = reader.gets()
                if argv is False:
                    break
                batch.append(argv)
        except hiredis.ProtocolError:
            broken = True
        if not batch:
            if broken:
                return pos
            continue
        try:
            encoded = [pack(tuple(argv)) for argv in batch]
            blob = b"".join(encoded)
            whole = data[pos:pos + len(blob)] == blob and all(batch)
            lengths = [len(e) for e in encoded] if whole else None
        except TypeError:
            whole = False
        if not whole:
            count, lengths = _verified_prefix(batch, data, pos)
            batch = batch[:count]
            broken = True
        for argv, length in zip(batch, lengths):  # stream.one, inlined for the common case
            end = pos + length
            name = argv[0]
            if stream.in_multi or (len(name) == 5 or len(name) == 4) and name.upper() in special:
                one(argv, pos, end)
            else:
                emit(argv)
                stream.commands += 1
                stream.committed = end
            pos = end
        if broken:
            return pos
        if progress is not None and pos >= stream.next_progress:
            progress(pos)
            stream.next_progress = pos + PROGRESS_EVERY
    return pos


def parse_commands(data, *, filename: str = "<aof>", last_file: bool = True,
                   truncated_ok: bool = False, start: int = 0) -> tuple[list[list[bytes]], ScanResult]:
    """scan() into a list: (commands in apply order, result). For tests and small files."""
    commands: list[list[bytes]] = []
    result = scan(data, commands.append, filename=filename, last_file=last_file,
                  truncated_ok=truncated_ok, start=start)
    return commands, result


# -- loading files ------------------------------------------------------------------------------

@dataclass
class FileLoad:
    """One loaded file: its name and kind, size, commands replayed, RDB bytes, truncation."""

    name: str
    kind: str
    size: int
    commands: int = 0
    rdb_bytes: int = 0
    annotations: int = 0
    truncated_to: int | None = None
    reverted_multi: bool = False
    seconds: float = 0.0


@dataclass
class LoadResult:
    """What load_all did. `warnings` and `notices` hold Redis's log lines, for the caller to log."""

    files: list[FileLoad] = field(default_factory=list)
    commands: int = 0
    total_size: int = 0
    base_size: int = 0
    truncated: bool = False
    empty: bool = False
    warnings: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


def load_file(path: str, *, kind: str = "incr", last_file: bool = True, truncated_ok: bool = False,
              on_rdb: Callable[[bytes], int | None] | None = None,
              on_command: Callable[[list], None],
              progress: Callable[[int], None] | None = None,
              legacy_name: str | None = None,
              warnings: list[str] | None = None) -> FileLoad:
    """Load one AOF file (loadSingleAppendOnlyFile); truncate it when a short read is allowed.

    progress(bytes_done_in_this_file) is called about every MiB.
    """
    name = os.path.basename(path)
    warnings = warnings if warnings is not None else []
    started = time.monotonic()
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed by the with below, after the error mapping
    except OSError as exc:
        raise AofError(f"Fatal error: can't open the append log file {name} for reading: "
                       f"{exc.strerror}", filename=name, kind="open") from exc
    with f:
        size = os.fstat(f.fileno()).st_size
        info = FileLoad(name, kind, size)
        if size == 0:
            return info
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            start = 0
            if data[:5] == b"REDIS":
                start = _load_rdb(data, name, on_rdb, legacy=name == legacy_name)
                info.rdb_bytes = start
                if progress is not None:
                    progress(start)
            result = scan(data, on_command, filename=name, last_file=last_file,
                          truncated_ok=truncated_ok, start=start, progress=progress)
        finally:
            data.close()
    info.commands = result.commands
    info.annotations = result.annotations
    if result.short_read:
        info.truncated_to = result.valid_up_to
        info.reverted_multi = result.reverted_multi
        if result.reverted_multi:
            warnings.append(f"Revert incomplete MULTI/EXEC transaction in AOF file {name}")
        warnings.append(f"!!! Warning: short read while loading the AOF file {name}!!!")
        warnings.append(f"!!! Truncating the AOF {name} at offset {result.valid_up_to} !!!")
        try:
            os.truncate(path, result.valid_up_to)
        except OSError as exc:
            raise AofError(f"Error truncating the AOF file {name}: {exc.strerror}",
                           filename=name, offset=result.valid_up_to, kind="truncate") from exc
        warnings.append(f"AOF {name} loaded anyway because aof-load-truncated is enabled")
    if progress is not None:
        progress(size)
    info.seconds = time.monotonic() - started
    return info


def _load_rdb(data, name: str, on_rdb, *, legacy: bool) -> int:
    what = f"the RDB preamble of the AOF file {name}" if legacy else f"the RDB base file {name}"
    if on_rdb is None:
        raise AofError(f"Error reading {what}, AOF loading aborted: no RDB loader",
                       filename=name, offset=0, kind="rdb")
    blob = data[:]
    try:
        consumed = on_rdb(blob)
    except Exception as exc:
        raise AofError(f"Error reading {what}, AOF loading aborted: {exc}", filename=name,
                       offset=getattr(exc, "offset", None), kind="rdb") from exc
    if consumed is None:
        return len(blob)
    if not 0 < consumed <= len(blob):
        raise AofError(f"Error reading {what}, AOF loading aborted: the RDB loader reported a "
                       f"length of {consumed} bytes for a file of {len(blob)}",
                       filename=name, kind="rdb")
    return consumed


def load_all(aofdir: AofDir, *, truncated_ok: bool,
             on_rdb: Callable[[bytes], int | None] | None,
             on_command: Callable[[list], None],
             progress: Callable[[int, int], None] | None = None) -> LoadResult:
    """Load the base then every incr (loadAppendOnlyFiles). progress(bytes_done, total_bytes).

    Every listed file must exist. Only the last file may be truncated (and is, when truncated_ok
    and it ends mid-record). Raises AofError naming the file (and offset) otherwise.
    """
    files = aofdir.files_to_load()
    result = LoadResult()
    if not files:
        result.empty = True
        return result
    sizes = []
    for path, _kind in files:
        try:
            sizes.append(os.stat(path).st_size)
        except OSError as exc:
            name = os.path.basename(path)
            raise AofError(f"Unable to obtain the AOF file {name} length. stat: {exc.strerror}",
                           filename=name, kind="missing") from exc
    result.total_size = sum(sizes)
    result.base_size = sizes[0] if files[0][1] == "base" else 0
    if result.total_size == 0:
        result.empty = True
        return result
    done_before = 0
    for index, ((path, kind), size) in enumerate(zip(files, sizes)):
        last = index == len(files) - 1
        file_progress = None if progress is None else _offset_progress(progress, done_before,
                                                                      result.total_size)
        info = load_file(path, kind=kind, last_file=last, truncated_ok=truncated_ok,
                         on_rdb=on_rdb, on_command=on_command, progress=file_progress,
                         legacy_name=aofdir.appendfilename, warnings=result.warnings)
        result.files.append(info)
        result.commands += info.commands
        if info.truncated_to is not None:
            result.truncated = True
        result.notices.append(f"DB loaded from {kind} file {info.name}: {info.seconds:.3f} seconds")
        done_before += size
    return result


def _offset_progress(progress: Callable[[int, int], None], before: int, total: int):
    """progress(done_in_file) for one file, reported as (done_in_all_files, total)."""
    return lambda done: progress(before + done, total)
