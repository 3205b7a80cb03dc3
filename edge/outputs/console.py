"""What a person at the terminal reads while the events go to a file (`--log FILE`): one line per photo,
as Ultralytics prints ("image 1/4 bus.jpg: 2 faces happy 0.99, neutral 0.57, 171 ms"), and for a video
one progress line redrawn in place. With `--log -` the JSON records are the output and this stays quiet."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO


def faces_text(faces: list[dict]) -> str:
    """'2 faces happy 0.99, neutral 0.57', '1 face sad 0.80' or 'no faces'."""
    if not faces:
        return "no faces"
    labels = ", ".join(f"{face['label']} {face['score']:.2f}" for face in faces)
    return f"{len(faces)} face{'s' if len(faces) != 1 else ''} {labels}"


def image_line(number: int, total: int, record: dict, ms: float) -> str:
    """One photo's line: its place in the run, its name, what was found and how long it took."""
    where = f"image {number}/{total} {record['image']}"
    if record.get("event") == "error":
        return f"{where}: not read ({record['error']})"
    return f"{where}: {faces_text(record['faces'])}, {ms:.0f} ms"


class VideoProgress:
    """A video's progress on one line, redrawn at most every `interval` seconds, ended by `close`:
    'frame 120/300 (40%), 2 faces, 157.3 FPS'. Only on a terminal: a service's journal gets none of it."""

    def __init__(self, stream: TextIO, total: int = 0, interval: float = 0.5, clock: Callable[[], float] = time.monotonic):
        self.stream, self.total, self.interval, self.clock = stream, total, interval, clock
        self.started = self.shown = None
        self.last = (0, 0)
        self.written = False

    def text(self, frames: int, faces: int, seconds: float) -> str:
        count = f"frame {frames}/{self.total} ({frames / self.total:.0%})" if self.total else f"frame {frames}"
        rate = f", {frames / seconds:.1f} FPS" if seconds > 0 else ""
        return f"{count}, {faces} face{'s' if faces != 1 else ''}{rate}"

    def update(self, frames: int, faces: int) -> None:
        now = self.clock()
        if self.started is None:
            self.started = now
        self.last = (frames, faces)
        if self.shown is None or now - self.shown >= self.interval:
            self._draw(now)

    def _draw(self, now: float) -> None:
        self.shown = now
        self.stream.write("\r" + self.text(*self.last, now - self.started).ljust(48))
        self.stream.flush()
        self.written = True

    def close(self) -> None:
        """The last counts drawn once more, and the line ended."""
        if self.started is not None:
            self._draw(self.clock())
            self.stream.write("\n")
            self.stream.flush()
            self.started = None
