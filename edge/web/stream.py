"""The annotated stream: the frame loop hands a frame over only while someone watches; one encoder thread draws and encodes it once for every viewer."""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import cv2
import numpy as np

JPEG_QUALITY = 80


# Draws a frame's faces: (frame, faces) -> (annotated frame, what the page lists).
Annotate = Callable[[np.ndarray, Sequence], tuple[np.ndarray, list]]


class FrameHub:
    """The latest annotated JPEG for every viewer. The loop asks `wants_frame` (a comparison, no work) and
    `offer`s a frame only while someone watches and one is due; the encoder thread annotates, shrinks and
    encodes it once. Viewers wait in `next_jpeg` for a newer one than they sent last: a slow one skips."""

    def __init__(self, annotate: Annotate, max_fps: float, max_width: int):
        self.annotate, self.interval, self.max_width = annotate, 1.0 / max_fps, max_width
        self._changed = threading.Condition()
        self._pending: tuple[np.ndarray, Sequence] | None = None
        self._jpeg: bytes | None = None
        self._jpeg_number = 0
        self._next_due = 0.0
        self.viewers = 0
        self.closed = False
        self.encoded = 0
        self.last_frame_at: float | None = None
        self._fps_window: collections.deque[float] = collections.deque(maxlen=64)
        self._encoder = threading.Thread(target=self._encode_loop, name="fer-edge-live-view-encoder", daemon=True)
        self._encoder.start()

    def frame_seen(self, now: float) -> None:
        """Every frame the loop processes (for /healthz and the live FPS): two stores and an append."""
        self.last_frame_at = now
        self._fps_window.append(now)

    def wants_frame(self, now: float) -> bool:
        return self.viewers > 0 and now >= self._next_due

    def offer(self, image: np.ndarray, faces: Sequence, now: float) -> None:
        """The frame to stream next (a reference, not a copy: the loop does not change it afterwards)."""
        with self._changed:
            self._pending = (image, faces)
            self._next_due = now + self.interval
            self._changed.notify_all()

    def fps(self) -> float:
        times = list(self._fps_window)
        return round((len(times) - 1) / (times[-1] - times[0]), 2) if len(times) > 1 and times[-1] > times[0] else 0.0

    @contextmanager
    def viewer(self) -> Iterator[None]:
        with self._changed:
            self.viewers += 1
        try:
            yield
        finally:
            with self._changed:
                self.viewers -= 1
                if not self.viewers:
                    self._jpeg = None  # nobody watches: nothing kept

    def next_jpeg(self, after: int, timeout: float) -> tuple[int, bytes | None]:
        """A JPEG newer than number `after` (waits up to timeout): (its number, bytes), or (after, None)."""
        with self._changed:
            self._changed.wait_for(lambda: self._jpeg_number > after and self._jpeg is not None or self.closed, timeout)
            if self._jpeg is None or self._jpeg_number <= after:
                return after, None
            return self._jpeg_number, self._jpeg

    def _encode_loop(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._pending is not None or self.closed)
                if self.closed:
                    return
                (image, faces), self._pending = self._pending, None
            jpeg = self.encode(image, faces)
            with self._changed:
                if self.viewers:
                    self._jpeg, self._jpeg_number = jpeg, self._jpeg_number + 1
                    self.encoded += 1
                    self._changed.notify_all()

    def encode(self, image: np.ndarray, faces: Sequence) -> bytes:
        canvas, _ = self.annotate(image, faces)
        height, width = canvas.shape[:2]
        if self.max_width and width > self.max_width:
            canvas = cv2.resize(canvas, (self.max_width, round(height * self.max_width / width)), interpolation=cv2.INTER_AREA)
        ok, data = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise RuntimeError("live view: OpenCV could not encode a JPEG")
        return data.tobytes()

    def close(self) -> None:
        with self._changed:
            self.closed = True
            self._pending = self._jpeg = None
            self._changed.notify_all()
        self._encoder.join(timeout=5)
