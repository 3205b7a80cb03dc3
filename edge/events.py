"""JSON Lines events with size rotation, per-interval stats (with Pi health), and clean shutdown on signals."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path

import numpy as np

from edge.track import TrackEvent

THERMAL_PATH = Path("/sys/class/thermal/thermal_zone0/temp")
# `vcgencmd get_throttled` bits, from the Raspberry Pi documentation.
THROTTLED_BITS = {
    0: "under_voltage",
    1: "arm_frequency_capped",
    2: "throttled",
    3: "soft_temperature_limit",
    16: "under_voltage_occurred",
    17: "arm_frequency_capped_occurred",
    18: "throttled_occurred",
    19: "soft_temperature_limit_occurred",
}


def utc_now() -> str:
    """ISO-8601 UTC wall-clock time with milliseconds, e.g. 2024-05-01T12:00:00.123Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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


def cpu_temp_c(path: Path = THERMAL_PATH) -> float | None:
    """SoC temperature in degrees C, None where the thermal zone is not there."""
    try:
        return round(int(path.read_text().strip()) / 1000.0, 1)
    except (OSError, ValueError):
        return None


def decode_throttled(value: int) -> dict:
    """`vcgencmd get_throttled` value -> {"raw": "0x50000", "under_voltage": False, ...}."""
    decoded: dict = {"raw": hex(value)}
    decoded.update({name: bool(value >> bit & 1) for bit, name in THROTTLED_BITS.items()})
    return decoded


def parse_throttled(text: str) -> int:
    """'throttled=0x50005' -> 0x50005; ValueError names the text otherwise."""
    _, sep, number = text.strip().partition("=")
    try:
        if not sep:
            raise ValueError
        return int(number, 16)
    except ValueError:
        raise ValueError(f"unexpected `vcgencmd get_throttled` output {text!r}") from None


_vcgencmd_available = True  # flipped once vcgencmd is missing or fails: not worth a fork every interval


def read_throttled() -> dict | None:
    """Decoded throttling state on a Raspberry Pi, None where vcgencmd is not available."""
    global _vcgencmd_available
    if not _vcgencmd_available:
        return None
    try:
        result = subprocess.run(["vcgencmd", "get_throttled"], capture_output=True, text=True, timeout=2, check=True)
        return decode_throttled(parse_throttled(result.stdout))
    except (OSError, subprocess.SubprocessError, ValueError):
        _vcgencmd_available = False
        return None


def pi_health() -> dict:
    return {"cpu_temp_c": cpu_temp_c(), "throttled": read_throttled()}


def install_stop_handlers(stop_event: threading.Event) -> Callable[[], None]:
    """SIGINT and SIGTERM set stop_event so the frame loop can finish cleanly.

    A second SIGINT while stopping raises KeyboardInterrupt, so a stuck shutdown can still be
    broken with Ctrl-C. Call from the main thread; returns a function restoring the old handlers.
    """

    def handler(signum, frame) -> None:
        if signum == signal.SIGINT and stop_event.is_set():
            raise KeyboardInterrupt
        stop_event.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)

    return restore
