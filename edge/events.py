"""Event records (what the log says) and the counts behind stats and the stop summary."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

from edge.host import pi_health
from edge.track import TrackEvent


def utc_now() -> str:
    """ISO-8601 UTC wall-clock time with milliseconds, e.g. 2024-05-01T12:00:00.123Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def track_event_record(event: TrackEvent, labels: Sequence[str], time_text: str | None = None) -> dict:
    """A track event as a JSON-ready dict; `time_text` overrides the wall clock (for tests)."""
    return {
        "event": event.type.value,
        "time": time_text if time_text is not None else utc_now(),
        "t": round(float(event.timestamp), 3),
        "frame": int(event.frame_index),
        "track": int(event.track_id),
        "box": event.box.as_list(),
        "label": labels[event.label_index],
        "score": round(float(event.score), 4),
        "scores": {name: round(float(s), 4) for name, s in zip(labels, event.scores, strict=True)},
    }


def image_record(name: str, boxes: Sequence, scores, labels: Sequence[str]) -> dict:
    """The faces of one image (image and folder sources), unsmoothed: an image has no history."""
    faces = []
    for box, row in zip(boxes, scores, strict=True):
        best = int(row.argmax())
        faces.append({"box": box.as_list(), "label": labels[best], "score": round(float(row[best]), 4)})
    return {"event": "image", "time": utc_now(), "image": name, "faces": faces}


class StageTimer:
    """Milliseconds spent per named stage: `with timer.stage("detect"): ...`."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter):
        self._clock = clock
        self.total_ms: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = self._clock()
        try:
            yield
        finally:
            self.add(name, (self._clock() - start) * 1000.0)

    def add(self, name: str, ms: float) -> None:
        self.total_ms[name] = self.total_ms.get(name, 0.0) + ms
        self.counts[name] = self.counts.get(name, 0) + 1

    def averages(self) -> dict[str, float]:
        return {name: self.total_ms[name] / self.counts[name] for name in self.total_ms}

    def reset(self) -> None:
        self.total_ms.clear()
        self.counts.clear()


class StatsWindow:
    """Counts over one reporting interval; `record(now)` turns them into a stats event and starts again.

    camera_fps counts frames read from the source, processing_fps frames that went through the
    pipeline; the difference is what was dropped to keep up with a live camera.
    """

    def __init__(
        self,
        interval_s: float,
        start: float | None = None,
        system_info: Callable[[], dict] | None = None,
    ):
        if interval_s <= 0:
            raise ValueError(f"--stats-interval must be positive, got {interval_s}")
        self.interval_s = interval_s
        self.timer = StageTimer()
        self._system_info = system_info if system_info is not None else pi_health
        self._reset(time.monotonic() if start is None else start)

    def _reset(self, now: float) -> None:
        self.start = now
        self.frames_read = 0
        self.frames = 0
        self.faces = 0
        self.dropped = 0
        self.timer.reset()

    def frame_read(self, count: int = 1) -> None:
        self.frames_read += count

    def frame_processed(self, faces: int) -> None:
        self.frames += 1
        self.faces += faces

    def frame_dropped(self, count: int = 1) -> None:
        self.dropped += count

    def due(self, now: float) -> bool:
        return now - self.start >= self.interval_s

    def record(self, now: float) -> dict:
        elapsed = now - self.start

        def rate(count: int) -> float:
            return round(count / elapsed, 2) if elapsed > 0 else 0.0

        record = {
            "event": "stats",
            "time": utc_now(),
            "interval_s": round(elapsed, 3),
            "frames_read": self.frames_read,
            "frames": self.frames,
            "faces": self.faces,
            "dropped": self.dropped,
            "camera_fps": rate(self.frames_read),
            "processing_fps": rate(self.frames),
            "stage_ms": {name: round(ms, 2) for name, ms in self.timer.averages().items()},
            **self._system_info(),
        }
        self._reset(now)
        return record
