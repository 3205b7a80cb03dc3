"""Keeps a live camera alive: a failed read closes it, backs off and reopens it, and reports the gap when frames return."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable

from edge.sources.frame import Frame, Source, SourceBase, SourceError, check_positive, quietly


class ReopeningSource(SourceBase):
    """Keeps a live source alive: on a failed read, close, back off (0.5 s doubling) and reopen, forever.

    Stops retrying when `stop()` is called or `stop_event` is set, and then reads None. Frame indices
    keep counting across reopens. `on_gap(seconds_without_frames, attempts, last_error)` is called
    when frames come back so the caller can log the outage. Non-live sources pass straight through.
    """

    def __init__(
        self,
        inner: Source,
        max_backoff: float = 30.0,
        sleep: Callable[[float], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_gap: Callable[[float, int, str], object] | None = None,
        stop_event: threading.Event | None = None,
        on_lost: Callable[[str], object] | None = None,
    ):
        check_positive(max_backoff, "max_backoff")
        self.inner = inner
        self.max_backoff = max_backoff
        self.stop_event = stop_event if stop_event is not None else threading.Event()
        # Default: wait on the stop event, so a SIGTERM during a 30 s back-off stops at once.
        self._sleep = sleep if sleep is not None else self.stop_event.wait
        self._clock = clock
        self._on_gap = on_gap
        self._on_lost = on_lost
        self._next_index = 0
        self._last_frame_at: float | None = None

    live = property(lambda self: self.inner.live)
    fps = property(lambda self: self.inner.fps)
    description = property(lambda self: self.inner.description)
    scale_to_main = property(lambda self: self.inner.scale_to_main)

    def open(self) -> None:
        # The first open is not retried: a wrong camera number should fail at start-up, not loop.
        self.inner.open()
        self._last_frame_at = self._clock()

    def stop(self) -> None:
        self.stop_event.set()

    def close(self) -> None:
        self.inner.close()

    def read(self) -> Frame | None:
        if not self.inner.live:
            return self.inner.read()
        frame, error = self._try_read()
        if frame is None:
            frame = self._recover(error)
            if frame is None:
                return None
        self._last_frame_at = self._clock()
        frame = dataclasses.replace(frame, index=self._next_index)
        self._next_index += 1
        return frame

    def _try_read(self) -> tuple[Frame | None, str]:
        try:
            frame = self.inner.read()
        except SourceError as error:
            return None, str(error)
        return frame, "" if frame is not None else f"{self.inner.description} ended"

    def _recover(self, error: str) -> Frame | None:
        lost_since = self._last_frame_at if self._last_frame_at is not None else self._clock()
        if self._on_lost is not None:  # logged when it starts: a camera that never returns is not silent
            self._on_lost(error)
        delay, attempts = min(0.5, self.max_backoff), 0
        while not self.stop_event.is_set():
            quietly(self.inner.close)
            self._sleep(delay)
            if self.stop_event.is_set():
                break
            attempts += 1
            delay = min(delay * 2, self.max_backoff)
            try:
                self.inner.open()
            except SourceError as reopen_error:
                error = str(reopen_error)
                continue
            frame, read_error = self._try_read()
            if frame is not None:
                if self._on_gap is not None:
                    self._on_gap(self._clock() - lost_since, attempts, error)
                return dataclasses.replace(frame, after_gap=True)
            error = read_error
        return None
