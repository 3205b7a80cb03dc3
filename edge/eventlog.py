"""The JSON Lines event log: one whole line per record, to a file rotated by size or to stdout."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path

import numpy as np


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


class EventLog:
    """One JSON object per line to a file (rotated by size) or to stdout (path None or "-").

    Each line goes out in a single write and is flushed, so a kill never leaves half a line.
    Rotation works like logging.handlers.RotatingFileHandler: file -> file.1 -> ... -> file.N,
    before a write that would pass max_bytes; max_bytes or backups of 0 turns rotation off.
    """

    def __init__(self, path: str | Path | None, max_bytes: int = 10_000_000, backups: int = 5):
        if max_bytes < 0 or backups < 0:
            raise ValueError(f"event log max_bytes and backups must be >= 0, got {max_bytes} and {backups}")
        self.max_bytes, self.backups = max_bytes, backups
        self.path = None if path is None or str(path) == "-" else Path(path)
        self._file = None
        self._size = 0
        if self.path is not None:
            self._open()

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Unbuffered binary append: one os-level write per line, appended atomically.
            self._file = open(self.path, "ab", buffering=0)
        except OSError as error:
            raise ValueError(f"cannot write events to {self.path}: {error.strerror or error}") from error
        self._size = self._file.tell()

    def write(self, record: dict) -> None:
        line = json.dumps(record, separators=(",", ":"), default=_json_default) + "\n"
        if self.path is None:
            sys.stdout.write(line)
            sys.stdout.flush()
            return
        if self._file is None:
            raise RuntimeError(f"event log {self.path} is closed")
        data = line.encode("utf-8")
        if self.max_bytes and self.backups and self._size and self._size + len(data) > self.max_bytes:
            self._rotate()
        written = self._file.write(data)
        while written is not None and written < len(data):  # a short write is rare but legal
            written += self._file.write(data[written:])
        self._size += len(data)

    def _rotate(self) -> None:
        self._file.close()
        try:
            for n in range(self.backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{n}")
                if older.exists():
                    older.replace(self.path.with_name(f"{self.path.name}.{n + 1}"))
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        except OSError as error:  # e.g. the log was moved away: keep logging rather than lose events
            sys.stderr.write(f"warning: could not rotate {self.path}: {error}\n")
        self._open()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
