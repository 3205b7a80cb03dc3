"""Time for records and stages: `utc_now` (the records time stamp) and `StageTimer` (where a frame spends its time)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime


def utc_now() -> str:
    """ISO-8601 UTC wall-clock time with milliseconds, e.g. 2024-05-01T12:00:00.123Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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
