"""The JSON Lines event log: one whole line per record, to a file rotated by size or to stdout."""

from __future__ import annotations

import json
import os
import sys
from enum import Enum
from pathlib import Path

import numpy as np

from edge.events import utc_now

TAIL_CHUNK = 65536  # bytes read at a time when looking for the last newline of an existing log


class EventLogError(RuntimeError):
    """A record could not be written; the message names the log (and nothing half-written stays)."""


def _json_default(value):
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
    """

    def __init__(self, path: str | Path | None, max_bytes: int = 10_000_000, backups: int = 5):
        if max_bytes < 0 or backups < 0:
            raise ValueError(f"event log max_bytes and backups must be >= 0, got {max_bytes} and {backups}")
        self.max_bytes, self.backups = max_bytes, backups
        self.path = None if path is None or str(path) == "-" else Path(path)
        self._fd: int | None = None
        self._size = 0
        if self.path is not None:
            self._open()

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # O_APPEND: every os.write lands at the end, one line per call.
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._size = os.fstat(self._fd).st_size
            cut, torn = self._torn_tail() if self._size else (0, b"")
        except OSError as error:
            self._fd = None
            raise ValueError(f"cannot write events to {self.path}: {error.strerror or error}") from error
        if torn:
            self._repair(cut, torn)

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
        self.write({"event": "log_repaired", "time": utc_now(), "torn_bytes": len(torn), "torn_line": torn.decode("utf-8", "replace")})

    def write(self, record: dict) -> None:
        line = json.dumps(record, separators=(",", ":"), default=_json_default) + "\n"
        if self.path is None:
            self._write_stdout(line)
            return
        if self._fd is None:
            raise EventLogError(f"event log {self.path} is closed")
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
        os.close(self._fd)
        self._fd = None
        try:
            for n in range(self.backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{n}")
                if older.exists():
                    older.replace(self.path.with_name(f"{self.path.name}.{n + 1}"))
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        except OSError as error:  # e.g. the log was moved away: keep logging rather than lose events
            sys.stderr.write(f"warning: could not rotate {self.path}: {error}\n")
        finally:  # even when interrupted (a second Ctrl-C), reopen so the stop record has somewhere to go
            self._open()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
