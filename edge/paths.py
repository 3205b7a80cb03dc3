"""File names as the OS gives them, for OpenCV and for records.

OpenCV takes file names as UTF-8 only: a name that is not (bytes from another system, which Python
hands over surrogate-escaped) crashes it with SIGSEGV. Images are therefore read as bytes
(edge.stills), a video through /proc/self/fd, and other OpenCV files are checked here first.
"""

from __future__ import annotations

import os
from pathlib import Path


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
