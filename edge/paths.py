"""File names as the OS gives them, for OpenCV and for records.

OpenCV takes file names as UTF-8 only: a name that is not (bytes from another system, which Python
hands over surrogate-escaped) crashes it with SIGSEGV. Images are therefore read as bytes
(edge.sources.images), a video through /proc/self/fd, and other OpenCV files are checked here first.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

# The package's shipped files (models, clips, detector weights): the one place this is computed.
ASSETS = Path(__file__).resolve().parent / "assets"


def printable(path: str | Path) -> str:
    """The name with bytes that are not UTF-8 written as \\xNN: valid text in a record or a message."""
    return os.fsencode(str(path)).decode("utf-8", "backslashreplace")


def is_utf8(path: str | Path) -> bool:
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def opencv_name(path: str | Path, what: str) -> str:
    """The name to hand OpenCV; ValueError (naming `what`, e.g. --save-video) for one it would crash on."""
    if not is_utf8(path):
        raise ValueError(f"{what} {printable(path)}: OpenCV cannot take a file name that is not UTF-8; rename it")
    return str(path)


def refuse_pipe(path: str | Path, flag: str) -> None:
    """ValueError naming `flag` when `path` is a FIFO (named pipe) or a socket: opening one blocks until
    another process opens the other end, and a stop signal cannot end that wait."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # not there (yet): the caller creates or reports it
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        kind = "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket"
        raise ValueError(f"{flag} {printable(path)}: {kind}, not a file (opening it would wait for another process "
                         "for ever); give a regular file" + (" (--log - writes to stdout)" if flag == "--log" else ""))


def read_secret_file(path: str | Path, setting: str) -> str:
    """A credentials or token file's text, or an error naming `setting` and the file: unreadable, not UTF-8,
    NUL bytes (a binary file given by mistake)."""
    path = Path(path)
    refuse_pipe(path, setting)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ValueError(f"{setting} {path}: cannot read it ({error.strerror or error})") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"{setting} {path}: not a text file (byte {error.start} is not UTF-8)") from None
    if "\0" in text:
        raise ValueError(f"{setting} {path}: not a text file (it holds NUL bytes)")
    return text


def warn_if_others_can_read(path: str | Path) -> None:
    if Path(path).stat().st_mode & 0o077:
        sys.stderr.write(f"warning: {path} can be read by other users; chmod 600 it\n")
