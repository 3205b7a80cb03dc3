"""Video files: `VideoSource` reads a file as fast as it decodes, `PlaybackSource` paces it at its own frame rate (--realtime), over and over with --loop."""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from edge.paths import is_utf8, printable
from edge.sources.frame import Frame, Source, SourceBase, split_colour

# Frames a container's count may be off by (rounding of duration x rate) before a short file counts as cut off.
EARLY_END_SLACK = 2


class VideoSource(SourceBase):
    """A video file through cv2.VideoCapture; timestamps are frame index / fps."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.description = f"video {printable(self.path)}"
        self._capture: cv2.VideoCapture | None = None
        self._index = 0
        self._fd: int | None = None  # the file, open here, when its name is not UTF-8 (see edge.paths)
        self.expected_frames = 0  # what the container says it holds (0 = it does not say)
        self.ended_early = ""  # why the file ended before that, when it did

    def open(self) -> None:
        if self._capture is not None:
            return
        if not self.path.is_file():
            raise FileNotFoundError(f"video {printable(self.path)} not found")
        name = str(self.path)
        if not is_utf8(self.path):
            self._fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            name = f"/proc/self/fd/{self._fd}"
        capture = cv2.VideoCapture(name)
        if not capture.isOpened():
            capture.release()
            self._close_fd()
            raise ValueError(f"cannot open video {printable(self.path)} (unsupported format or codec, or a damaged file?)")
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and fps > 0 and np.isfinite(fps) else None
        count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
        self.expected_frames = int(count) if count and count > 0 and np.isfinite(count) else 0
        self._capture, self._index = capture, 0

    def _close_fd(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def read(self) -> Frame | None:
        if self._capture is None:
            raise RuntimeError(f"{self.description} is not open")
        ok, image = self._capture.read()
        if not ok or image is None:
            # End of file. Short of what the container promised: the file was cut off or is damaged.
            if self.expected_frames and self._index < self.expected_frames - EARLY_END_SLACK:
                self.ended_early = (
                    f"{printable(self.path)} ended early, at frame {self._index} of the {self.expected_frames} "
                    "its header promises: the file is truncated or damaged"
                )
            return None
        index = self._index
        self._index += 1
        if self.fps:
            timestamp = index / self.fps
        else:
            timestamp = self._capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        gray, color = split_colour(image)
        return Frame(index, timestamp, gray, color)

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
        self._close_fd()


CATCH_UP_S = 1.0  # --realtime: a frame this late (the process was stopped, say) means skip to the one due now
MAX_SKIP_S = 60.0  # ... reading through at most this much of the file at once


class PlaybackSource(SourceBase):
    """A video file played the way a camera delivers frames, for the live view and demos: `realtime` never
    hands a frame out before its time in the file (a pipeline a little slow falls behind; one more than
    CATCH_UP_S behind, as after SIGSTOP/SIGCONT, skips to the frame due now, as a camera would;
    `last_wait_ms` says how long the last frame was held back, so it is not counted as capture time),
    `loop` starts the file again at its end. Indices and timestamps keep counting up across the starts, and
    a start again is no gap: a face where the clip ends and begins keeps its track, as on a camera."""

    def __init__(self, inner: Source, realtime: bool, loop: bool, stop_event: threading.Event | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.inner, self.realtime, self.loop = inner, realtime, loop
        self.stop_event = stop_event if stop_event is not None else threading.Event()
        self._clock = clock
        self._started: float | None = None
        self._offset = self._last = 0.0
        self._next_index = 0
        self.last_wait_ms = 0.0

    fps = property(lambda self: self.inner.fps)
    description = property(lambda self: self.inner.description)
    scale_to_main = property(lambda self: self.inner.scale_to_main)

    def open(self) -> None:
        self.inner.open()

    def close(self) -> None:
        self.inner.close()

    def read(self) -> Frame | None:
        self.last_wait_ms = 0.0
        frame = self._next()
        if frame is None or not self.realtime:
            return frame
        now = self._clock()
        if self._started is None:
            self._started = now - frame.timestamp
        wait = self._started + frame.timestamp - now
        if wait > 0:
            self.stop_event.wait(wait)
            self.last_wait_ms = (self._clock() - now) * 1000.0
        elif -wait > CATCH_UP_S:  # stopped (SIGSTOP, a suspended laptop) or far behind: skip to now, as a camera would
            frame = self._skip_to(now - self._started, frame)
            self._started = self._clock() - frame.timestamp  # paced from here on
        return frame

    def _skip_to(self, due: float, frame: Frame) -> Frame:
        """The first frame due at `due` (file seconds) or later, the ones before it dropped; marked after_gap
        (the scene jumps, so tracks end). At most MAX_SKIP_S of the file is read through, so a decoder slower
        than the file's rate still hands frames out."""
        limit = frame.timestamp + MAX_SKIP_S
        while frame.timestamp + 1.0 / (self.inner.fps or 30.0) <= due and frame.timestamp < limit:
            following = self._next()
            if following is None:
                break
            frame = following
        return dataclasses.replace(frame, after_gap=True)

    def _next(self) -> Frame | None:
        frame = self.inner.read()
        if frame is None and self.loop and self._next_index and not self.stop_event.is_set():
            self.inner.close()
            self.inner.open()
            self._offset = self._last + 1.0 / (self.inner.fps or 30.0)
            frame = self.inner.read()
        if frame is None:
            return None
        frame = dataclasses.replace(frame, index=self._next_index, timestamp=frame.timestamp + self._offset)
        self._next_index += 1
        self._last = frame.timestamp
        return frame
