"""The rotated JSON Lines event log read as a queue: each whole line once, oldest first, across rotation.

EventLog rotates file -> file.1 -> ... -> file.N by renaming, so a file keeps its inode while its name
changes: a position is (inode, byte offset after the last line taken), plus that line's id to check it.
An open file can still be read after it is renamed or even rotated out.
"""

from __future__ import annotations

import glob
import json
import os
import stat as stat_module
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 16
MARK = 256  # bytes before our place kept to recognise the same file content (a truncation, its copy)


@dataclass(frozen=True)
class Position:
    inode: int
    offset: int  # just after the last line taken
    key: tuple | None = None  # (device, run, seq) of that line, when it has one

    def to_json(self) -> dict:
        return {"inode": self.inode, "offset": self.offset, "key": list(self.key) if self.key else None}

    @classmethod
    def from_json(cls, data) -> Position:
        """Checked as data (a cursor file can hold anything): ValueError says what is wrong."""
        if not isinstance(data, dict) or set(data) - {"inode", "offset", "key"}:
            raise ValueError("expected an object with inode, offset and key")
        inode, offset, key = data.get("inode"), data.get("offset"), data.get("key")
        for name, value in (("inode", inode), ("offset", offset)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a whole number >= 0, got {value!r:.40}")
        if key is not None:
            valid = (
                isinstance(key, list) and len(key) == 3 and isinstance(key[0], str) and isinstance(key[1], str)
                and isinstance(key[2], int) and not isinstance(key[2], bool) and key[2] >= 1
            )
            if not valid:
                raise ValueError(f"key must be null or [device, run, seq >= 1], got {key!r:.80}")
        return cls(inode, offset, tuple(key) if key is not None else None)


def log_files(path: Path) -> list[Path]:
    """The log and its rotated backups, oldest first: file.N ... file.1, file."""
    backups = []
    for name in glob.glob(glob.escape(str(path)) + ".*"):
        suffix = name[len(str(path)) + 1:]
        if suffix.isdigit():
            backups.append((int(suffix), Path(name)))
    files = [p for _, p in sorted(backups, reverse=True)]
    return files + [path] if path.exists() else files


def _list_inodes(path: Path) -> list[tuple[Path, int]]:
    """(file, inode), oldest first, names and inodes from one pass over the directory (readdir gives both),
    not a name listing followed by a stat of each name, which a rotation in between makes disagree."""
    backups, live = [], []
    try:
        with os.scandir(path.parent) as entries:
            for entry in entries:
                suffix = entry.name[len(path.name) + 1:] if entry.name.startswith(path.name + ".") else None
                if entry.name == path.name:
                    live.append((path, entry.inode()))
                elif suffix is not None and suffix.isdigit():
                    backups.append((int(suffix), Path(entry.path), entry.inode()))
    except FileNotFoundError:
        return []
    return [(file, inode) for _, file, inode in sorted(backups, reverse=True)] + live


def _inodes(path: Path) -> list[tuple[Path, int]]:
    """(file, inode), oldest first, from two identical listings in a row: a listing taken while the
    writer renames its files one by one can miss a file or see one twice."""
    previous = _list_inodes(path)
    for _ in range(20):
        current = _list_inodes(path)
        if current == previous and _distinct(current):
            break
        previous = current
    return previous


def _distinct(files: list[tuple[Path, int]]) -> bool:
    return len({inode for _, inode in files}) == len(files)


def line_key(line: bytes) -> tuple | None:
    from edge.events.records import record_key

    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record_key(record) if isinstance(record, dict) else None


class LogTail:
    """`read()` returns (line without its newline, position after it), or None when nothing new is there.

    A line is only returned once its newline is written. What a rotated file holds after its last newline
    (a line cut short by a crash) is returned too, as it is, when moving on: the caller counts it as
    unreadable rather than lose it silently.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._fd: int | None = None
        self._inode = 0
        self._offset = 0  # file offset just after the last line handed out (= _buffer[_pos])
        self._buffer = b""
        self._pos = 0  # where the next line starts in _buffer (no copy per line)
        self._mark = b""  # the file's last bytes before _offset, as read: gone or changed means it was truncated
        self.resumed: str = ""  # how start() found its place, for the report
        self.truncations = 0  # times the live file was cut to a smaller size under us (logrotate copytruncate)

    def start(self, position: Position | None) -> None:
        """Continue after `position` (checked against its line's id), else from the oldest file."""
        files = _inodes(self.path)
        if position is not None:
            for file, inode in files:
                if inode == position.inode and self._open(file, position.offset, position.key, inode):
                    self.resumed = "cursor"
                    return
                if inode == position.inode and position.key is None:  # no id to look for it by
                    self.resumed = f"cursor offset {position.offset} is not the end of a line in {file}: from the oldest file"
                    self._open(files[0][0], 0, None, files[0][1])
                    return
            if position.key is not None:  # the file was copied or its inode changed: look for the line
                for file, inode in files:
                    offset = _find_line(file, position.key)
                    if offset is not None and self._open(file, offset, None, inode):
                        self.resumed = "cursor (found by id)"
                        return
            self.resumed = "cursor not found: from the oldest file"
        else:
            self.resumed = "no cursor: from the oldest file"
        if files:
            self._open(files[0][0], 0, None, files[0][1])

    def _open(self, file: Path, offset: int, key: tuple | None, inode: int) -> bool:
        """Open `file` if it still is `inode` (a rotation may have given its name to the next file since
        it was listed) and, with `key`, the line before `offset` has that id."""
        try:
            fd = os.open(file, os.O_RDONLY)
        except FileNotFoundError:
            return False
        info = os.fstat(fd)
        if (
            info.st_ino != inode or not stat_module.S_ISREG(info.st_mode) or offset > info.st_size
            or (key is not None and _key_before(fd, offset) != key) or (key is None and not _line_ends_at(fd, offset))
        ):
            os.close(fd)
            return False
        self.close()
        self._fd, self._inode, self._offset, self._buffer, self._pos = fd, inode, offset, b"", 0
        self._mark = os.pread(fd, min(offset, MARK), offset - min(offset, MARK))
        os.lseek(fd, offset, os.SEEK_SET)
        return True

    def read(self) -> tuple[bytes, Position] | None:
        if self._fd is None:
            files = _inodes(self.path)
            if not files or not self._open(files[0][0], 0, None, files[0][1]):
                return None
        while (newline := self._buffer.find(b"\n", self._pos)) < 0:
            if self._fill():
                continue
            torn = self._move_on()
            if torn is None:
                return None
            if torn:  # a finished file ended without a newline (cut short by a crash): hand it out once
                return torn, Position(self._inode, 0)
        line, self._pos = self._buffer[self._pos:newline], newline + 1
        self._offset += len(line) + 1
        self._mark = self._buffer[max(0, self._pos - MARK):self._pos]
        return line, Position(self._inode, self._offset)

    def _fill(self) -> bool:
        if self._truncated():
            self._after_truncation()
        elif self._partial_changed():  # the writer cut a line it could not finish, and wrote on: from its start
            self._buffer, self._pos = b"", 0
            os.lseek(self._fd, self._offset, os.SEEK_SET)
        data = os.read(self._fd, CHUNK)
        if data:
            self._buffer, self._pos = self._buffer[self._pos:] + data, 0
        return bool(data)

    def _move_on(self) -> bytes | None:
        """At the end of our file: if the writer has rotated it, open the next newer file and return what
        was left after the old file's last newline; None when there is nowhere to go yet."""
        try:
            live = self.path.stat().st_ino
        except FileNotFoundError:
            live = None
        if live == self._inode:
            if os.fstat(self._fd).st_size < os.lseek(self._fd, 0, os.SEEK_CUR):
                # the writer cut a line it could not finish (disk full): read again from its start
                # (a cut below _offset, by someone else, is a truncation: _fill sees it)
                self._buffer, self._pos = b"", 0
                os.lseek(self._fd, self._offset, os.SEEK_SET)
            return None  # still the file being written: wait for more
        if self._fill():  # rotated after our last read: the writer closed it before renaming, so read on
            return b"" if b"\n" in self._buffer[self._pos:] else self._move_on()
        files = _inodes(self.path)
        inodes = [inode for _, inode in files]
        if not _distinct(files):
            return None  # a listing taken mid-rotation: its order cannot be trusted; look again next time
        if self._inode in inodes:
            index = inodes.index(self._inode) + 1
            if index >= len(files):
                return None  # the new live file is not there yet
        elif os.fstat(self._fd).st_nlink:
            return None  # still on disk under some name the listing missed: look again next time
        elif not files:
            return None  # the log is gone (its folder deleted, say): wait for the writer to reopen it
        else:
            index = 0  # ours was rotated out (deleted) while we read it: the oldest left comes next
        torn = self._buffer[self._pos:]
        if not self._open(files[index][0], 0, None, files[index][1]):
            return None  # renamed since the listing: list again next time
        return torn

    def _truncated(self) -> bool:
        """Cut under us (logrotate's copytruncate: copy the file, then truncate it, same inode): its size is
        below our place, or the bytes before our place are no longer the ones we read (it was cut and has
        grown again since). The writer itself only ever cuts a line it could not finish, after our place."""
        if not self._offset:
            return False
        if os.fstat(self._fd).st_size < self._offset:
            return True
        return os.pread(self._fd, len(self._mark), self._offset - len(self._mark)) != self._mark

    def _partial_changed(self) -> bool:
        """The start of a line we hold (read before its newline was written) is no longer in the file."""
        partial = self._buffer[self._pos:]
        if not partial:
            return False
        end = self._offset + len(partial)
        return os.pread(self._fd, min(len(partial), MARK), end - min(len(partial), MARK)) != partial[-MARK:]

    def _after_truncation(self) -> None:
        """Everything at least once, nothing from mid-line: finish the copy (the rotated file holding the
        same bytes at our place) if there is one, then the live file from its start; else the live file
        from its start. Lines both in the copy and read already are not read again."""
        self.truncations += 1
        offset, mark = self._offset, self._mark
        for file, inode in _inodes(self.path):
            if inode != self._inode and file != self.path and _holds(file, offset, mark) and self._open(file, offset, None, inode):
                return
        self._buffer, self._pos, self._offset, self._mark = b"", 0, 0, b""
        os.lseek(self._fd, 0, os.SEEK_SET)

    def backlog_bytes(self) -> int:
        """Bytes written but not yet read: the rest of our file plus every newer file."""
        files = _inodes(self.path)
        inodes = [inode for _, inode in files]
        total = len(self._buffer) - self._pos
        if self._fd is not None:
            total += max(0, os.fstat(self._fd).st_size - os.lseek(self._fd, 0, os.SEEK_CUR))
        start = inodes.index(self._inode) + 1 if self._inode in inodes else 0
        for file, _ in files[start:]:
            try:
                total += file.stat().st_size
            except FileNotFoundError:
                pass
        return total

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _holds(file: Path, offset: int, mark: bytes) -> bool:
    """`file` has `mark` just before `offset` (a copy of the file we were reading, up to our place)."""
    try:
        with open(file, "rb") as handle:
            handle.seek(offset - len(mark))
            return handle.read(len(mark)) == mark
    except (OSError, ValueError):
        return False


def _key_before(fd: int, offset: int) -> tuple | None:
    """The id of the whole line that ends just before `offset`."""
    if offset == 0:
        return None
    start = max(0, offset - CHUNK)
    data = os.pread(fd, offset - start, start)
    if not data.endswith(b"\n"):
        return None
    return line_key(data[:-1].rsplit(b"\n", 1)[-1])


def _line_ends_at(fd: int, offset: int) -> bool:
    """A position without an id is only trusted where a line ends (or at the start)."""
    return offset == 0 or os.pread(fd, 1, offset - 1) == b"\n"


def _find_line(file: Path, key: tuple) -> int | None:
    """Offset just after the line with this id in `file`, or None."""
    needle = f'"seq":{key[2]}'.encode()
    offset = 0
    try:
        with open(file, "rb") as handle:
            for line in handle:
                offset += len(line)
                if needle in line and line.endswith(b"\n") and line_key(line) == key:
                    return offset
    except FileNotFoundError:
        pass
    return None
