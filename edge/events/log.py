"""The JSON Lines event log: one whole line per record, to a file rotated by size or to stdout."""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import stat
import sys
from enum import Enum
from pathlib import Path

import numpy as np

from edge.paths import refuse_pipe
from edge.timing import utc_now

TAIL_CHUNK = 65536  # bytes read at a time when looking for the last newline of an existing log
TORN_KEPT = 1024  # bytes of a torn last line copied into its log_repaired record (its length is recorded whole)


class EventLogError(RuntimeError):
    """A record could not be written; the message names the log (and nothing half-written stays)."""


def json_default(value):
    """numpy scalars/arrays, enums and paths -> plain JSON types."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to the event log")


def finite(value):
    """`value` with every NaN or infinite float (also inside numpy values, lists and dicts) made None."""
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    if isinstance(value, (np.generic, np.ndarray)):
        return finite(json_default(value))
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_text(value) -> str:
    """One compact JSON text, never with NaN or Infinity: they are not JSON (jq, Home Assistant and the
    page's JSON.parse reject the whole line), so a non-finite number is written as null."""
    try:
        return json.dumps(value, separators=(",", ":"), default=json_default, allow_nan=False)
    except ValueError:
        return json.dumps(finite(value), separators=(",", ":"), default=json_default, allow_nan=False)


def why_not_created(error: OSError, folder: Path) -> str:
    """An OSError from creating a file, in words, with the real cause of an ENOSPC that still shows free
    space: no inode left."""
    why = error.strerror or str(error)
    if error.errno == errno.ENOSPC:
        try:
            info = os.statvfs(folder)
        except OSError:
            return why
        if info.f_files and info.f_favail == 0:
            return f"{why}: no free inodes left on its file system (df -i {folder}); delete some files"
    if error.errno in (errno.EMFILE, errno.ENFILE):
        return f"{why}: the runtime has no file descriptor left (raise LimitNOFILE)"
    return why


def torn_tail(fd: int) -> tuple[int, bytes]:
    """(offset, bytes) of a last line that lacks its newline (a crash mid-write), or (size, b"")."""
    size = os.fstat(fd).st_size
    end = size
    while end > 0:
        start = max(0, end - TAIL_CHUNK)
        chunk = os.pread(fd, end - start, start)
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            cut = start + newline + 1
            return cut, os.pread(fd, size - cut, cut)
        end = start
    return 0, os.pread(fd, size, 0)


class EventLog:
    """One JSON object per line to a file (rotated by size) or to stdout (path None or "-").

    A line is written whole or not at all: a short or failed write (disk full) is cut back to where
    the line began, and the error names the file. A torn last line left by a crash is cut off when
    the log is opened and kept, as text, in a `log_repaired` record, so the next line starts clean.
    Rotation works like logging.handlers.RotatingFileHandler: file -> file.1 -> ... -> file.N,
    before a write that would pass max_bytes; max_bytes or backups of 0 turns rotation off.

    Like logging.handlers.WatchedFileHandler, every write first checks that the path still names the
    open file: if the file was deleted (its folder too), moved away or replaced, the log is reopened at
    the path (the folder recreated) and a `log_reopened` record says so; a path that cannot be written
    any more (now a folder) is an EventLogError, as on a full disk. One writer per log: the open file is
    locked (flock), so a second runtime on the same log is refused rather than interleave its own seq.
    `stamp`, when set (SequencedLog does), is applied to every record, the log's own ones included.
    """

    def __init__(self, path: str | Path | None, max_bytes: int = 10_000_000, backups: int = 5):
        if max_bytes < 0 or backups < 0:
            raise ValueError(f"event log max_bytes and backups must be >= 0, got {max_bytes} and {backups}")
        self.max_bytes, self.backups = max_bytes, backups
        self.path = None if path is None or str(path) == "-" else Path(path)
        self._fd: int | None = None
        self._size = 0
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the open file
        self._notes: list[dict] = []  # the log's own records, written before the next record
        self._lost = ""  # why the open file was let go and could not be reopened yet
        self._closed = False
        self._rotation_failed = ""  # why the last rotation could not make a new file ("" when none failed)
        self.stamp = None  # callable(record) applied to each record before it is written
        if self.path is not None:
            self._open()

    def _open(self) -> None:
        refuse_pipe(self.path, "--log")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # O_APPEND: every os.write lands at the end, one line per call.
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._lock()
            info = os.fstat(self._fd)
            self._size, self._identity = info.st_size, (info.st_dev, info.st_ino)
            cut, torn = self._torn_tail() if self._size else (0, b"")
        except OSError as error:
            self._close_fd()
            raise ValueError(f"cannot write events to {self.path}: {why_not_created(error, self.path.parent)}") from error
        except ValueError:
            self._close_fd()
            raise
        if torn:
            self._repair(cut, torn)

    def _lock(self) -> None:
        """Refuse a second writer: two runtimes on one log would interleave lines and sequence numbers."""
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(
                f"{self.path}: another runtime is writing this event log (it holds its lock); "
                "give each runtime its own --log"
            ) from None

    def _close_fd(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            finally:
                self._fd = None

    def _torn_tail(self) -> tuple[int, bytes]:
        reader = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            return torn_tail(reader)
        finally:
            os.close(reader)

    def _repair(self, cut: int, torn: bytes) -> None:
        try:
            os.ftruncate(self._fd, cut)
        except OSError as error:
            raise ValueError(f"{self.path}: its last line is torn and cannot be cut off ({error.strerror})") from error
        self._size = cut
        # Written with the next record (so it gets the same device/run/seq stamp as every record), or at close.
        self._notes.append({
            "event": "log_repaired", "time": utc_now(), "torn_bytes": len(torn),
            "torn_line": torn[:TORN_KEPT].decode("utf-8", "replace"), "torn_line_truncated": len(torn) > TORN_KEPT,
        })

    def _moved_away(self) -> str:
        """Why the path no longer names the open file, or "" when it still does."""
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            return "the file was deleted or moved away" if self.path.parent.is_dir() else "its folder was deleted"
        except OSError as error:
            return f"the path cannot be checked ({error.strerror or error})"
        if (info.st_dev, info.st_ino) == self._identity:
            return ""
        return "the path now names a folder" if stat.S_ISDIR(info.st_mode) else "the path now names another file"

    def _reopen_if_moved(self) -> None:
        reason = self._lost or self._moved_away()
        if not reason:
            return
        self._close_fd()
        self._lost = reason  # the next record tries again (a stop record after the failure, say)
        try:
            self._open()
        except ValueError as error:
            raise EventLogError(f"{self.path}: cannot write the event log: {reason} and it cannot be reopened ({error})") from None
        self._lost = ""
        self._notes.append({
            "event": "log_reopened", "time": utc_now(), "reason": reason,
            "note": "records written before this one went with the old file",
        })

    def write(self, record: dict) -> None:
        if self.path is not None:
            if self._closed:
                raise EventLogError(f"event log {self.path} is closed")
            self._reopen_if_moved()
        while self._notes:
            self._write_one(self._notes[0])
            self._notes.pop(0)  # only once written: a note that failed is tried again with the next record
        self._write_one(record)

    def _write_one(self, record: dict) -> None:
        if self.stamp is not None and "seq" not in record:
            self.stamp(record)
        line = json_text(record) + "\n"
        if self.path is None:
            self._write_stdout(line)
            return
        data = line.encode("utf-8")
        if self.max_bytes and self.backups and self._size and self._size + len(data) > self.max_bytes:
            self._rotate()
        self._append(data)

    def _append(self, data: bytes) -> None:
        start = os.fstat(self._fd).st_size
        written = 0
        try:
            while written < len(data):  # a short write (nearly full disk) is legal: try the rest
                count = os.write(self._fd, data[written:])
                if count == 0:
                    raise OSError(0, "nothing written")
                written += count
        except OSError as error:
            if written:
                try:  # whole line or nothing: cut the part that did fit
                    os.ftruncate(self._fd, start)
                except OSError:
                    pass
            raise EventLogError(f"{self.path}: cannot write the event log: {error.strerror or error} (record not written)") from error
        self._size = start + written

    def _write_stdout(self, line: str) -> None:
        try:
            sys.stdout.write(line)
            sys.stdout.flush()
        except BrokenPipeError:
            # The reader went away (`edge run | head`): point stdout at /dev/null so the stop record and
            # Python's own flush at exit do not fail again, and say once why the run ends.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
            raise EventLogError("event log on stdout: the reader closed the pipe") from None
        except OSError as error:
            raise EventLogError(f"event log on stdout: {error.strerror or error}") from error

    def _rotate(self) -> None:
        """file -> file.1 -> ... The new file is made first (under a hidden name), so a log that cannot get
        one (no file descriptor left, no inode left) moves nothing and writes on in the live file, said once."""
        fresh = self.path.with_name(f".{self.path.name}.rotating")
        try:
            fd = self._create(fresh)
        except OSError as error:
            self._not_rotated(why_not_created(error, self.path.parent))
            return
        placed = False
        try:
            for n in range(self.backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{n}")
                if older.exists():
                    older.replace(self.path.with_name(f"{self.path.name}.{n + 1}"))
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))
            os.replace(fresh, self.path)
            placed = True
        except OSError as error:  # e.g. the log was moved away: keep logging rather than lose events
            sys.stderr.write(f"warning: could not rotate {self.path}: {error}\n")
        finally:  # even when interrupted (a second Ctrl-C), leave the path naming a file the next record can go to
            placed = placed or self._place(fresh)
            self._adopt(fd) if placed else os.close(fd)

    def _create(self, path: Path) -> int:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise
        return fd

    def _place(self, fresh: Path) -> bool:
        """After an interrupted rotation: the new file takes the path if the old one already left it."""
        try:
            if self.path.exists():
                fresh.unlink()
                return False
            os.replace(fresh, self.path)
            return True
        except OSError:
            return False

    def _adopt(self, fd: int) -> None:
        self._close_fd()
        info = os.fstat(fd)
        self._fd, self._size, self._identity = fd, info.st_size, (info.st_dev, info.st_ino)
        self._rotation_failed = ""

    def _not_rotated(self, why: str) -> None:
        if not self._rotation_failed:  # said once, until a rotation works again
            sys.stderr.write(f"warning: {self.path}: cannot rotate the event log ({why}); writing on in {self.path} past "
                             "log_max_bytes until it can\n")
        self._rotation_failed = why

    def close(self) -> None:
        if self._fd is not None and self._notes:  # a repaired log closed before any record: keep the note
            try:
                self.write_notes()
            except EventLogError:
                pass
        self._closed = True
        self._close_fd()

    def write_notes(self) -> None:
        """Write the log's own pending records (log_repaired) now."""
        while self._notes:
            self._write_one(self._notes.pop(0))

    def __del__(self) -> None:  # an EventLog dropped without close() must not keep its lock
        fd, self._fd = getattr(self, "_fd", None), None
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
