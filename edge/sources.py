"""Frames from a live camera (picamera2, USB) or a video file. Images and folders are stills (edge.stills).

Every source has `open()`, `read() -> Frame | None`, `close()`, `live`, `fps`, `description` and
`scale_to_main`, and works as a context manager. Files end with `None`; a live source whose read
fails raises `SourceError`, which `ReopeningSource` turns into close, back off, reopen.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from edge.paths import is_utf8, printable

SOURCE_FORMS = "picamera2, usb:N (e.g. usb:0), a video file, an image file or a folder of images"
PICAMERA2_HINT = (
    "install it with `sudo apt install python3-picamera2` and create the venv with "
    "`python3 -m venv --system-site-packages .venv` so the venv can see it"
)


# Frames a container's count may be off by (rounding of duration x rate) before a short file counts as cut off.
EARLY_END_SLACK = 2


class SourceError(RuntimeError):
    """A live source failed (camera missing, unplugged, or returned no frame)."""


@dataclass(frozen=True)
class Frame:
    index: int
    timestamp: float  # seconds: media time for files, time.monotonic() for live sources
    gray: np.ndarray  # (H, W) uint8: what detection and classification see
    color: np.ndarray | None  # BGR (H, W, 3) for annotation, or None
    name: str | None = None
    after_gap: bool = False  # the first frame after a camera outage (tracks from before it are over)


class Source(Protocol):
    live: bool
    fps: float | None
    description: str
    scale_to_main: float

    def open(self) -> None: ...
    def read(self) -> Frame | None: ...
    def close(self) -> None: ...


class _Base:
    """Context-manager plumbing and defaults shared by every source."""

    live = False
    fps: float | None = None
    description = "source"
    # Boxes found in `gray` times this = boxes in `color` (only picamera2 differs from 1).
    scale_to_main = 1.0

    def open(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _check_positive(value: float, flag: str) -> None:
    if value <= 0:
        raise ValueError(f"{flag} must be positive, got {value}")


def _split(bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A decoded BGR (or already grey) image -> (gray, color)."""
    if bgr.ndim == 2:
        return bgr, cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), bgr


class VideoSource(_Base):
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
        gray, color = _split(image)
        return Frame(index, timestamp, gray, color)

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
        self._close_fd()


class UsbCameraSource(_Base):
    """A V4L2 (USB) camera through cv2.VideoCapture; timestamps are time.monotonic()."""

    live = True

    def __init__(self, index: int = 0, frame_width: int = 640, frame_height: int = 480, fps: float = 30):
        if index < 0:
            raise ValueError(f"--source usb:N needs N >= 0, got {index}")
        _check_positive(frame_width, "--frame-width")
        _check_positive(frame_height, "--frame-height")
        _check_positive(fps, "--fps")
        self.index, self.frame_width, self.frame_height, self.requested_fps = index, frame_width, frame_height, fps
        self.fps = float(fps)
        self.description = f"USB camera {index} (/dev/video{index})"
        self._capture: cv2.VideoCapture | None = None
        self._frames = 0

    def open(self) -> None:
        if self._capture is not None:
            return
        backend = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
        capture = cv2.VideoCapture(self.index, backend)
        if not capture.isOpened():
            capture.release()
            raise SourceError(
                f"cannot open USB camera {self.index} (/dev/video{self.index}): is it plugged in, "
                "and is the user in the `video` group? (`v4l2-ctl --list-devices` lists cameras)"
            )
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.frame_width)
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.frame_height)
        capture.set(cv2.CAP_PROP_FPS, self.requested_fps)
        # A one-frame driver queue keeps latency low when processing is slower than the camera.
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        actual = capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(actual) if actual and actual > 0 else float(self.requested_fps)
        self._capture, self._frames = capture, 0

    def read(self) -> Frame:
        if self._capture is None:
            raise SourceError(f"{self.description} is not open")
        ok, image = self._capture.read()
        if not ok or image is None:
            raise SourceError(f"{self.description} returned no frame (unplugged?)")
        index = self._frames
        self._frames += 1
        gray, color = _split(image)
        return Frame(index, time.monotonic(), gray, color)

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


class Picamera2Source(_Base):
    """A Raspberry Pi camera through picamera2 (libcamera).

    Detection runs on the small `lores` YUV420 stream, whose Y plane is the grey image, so no colour
    conversion is paid per frame. Boxes found in `gray` are in lores coordinates; multiply by
    `scale_to_main` to draw them on `color` (the `main` stream, fetched only when want_color).
    """

    live = True

    def __init__(
        self,
        frame_width: int = 640,
        frame_height: int = 480,
        lores_width: int = 320,
        lores_height: int = 240,
        fps: float = 30,
        camera_num: int = 0,
        want_color: bool = False,
    ):
        for value, flag in (
            (frame_width, "--frame-width"),
            (frame_height, "--frame-height"),
            (lores_width, "--lores-width"),
            (lores_height, "--lores-height"),
            (fps, "--fps"),
        ):
            _check_positive(value, flag)
        if lores_width > frame_width or lores_height > frame_height:
            raise ValueError(
                f"--lores-width/--lores-height ({lores_width}x{lores_height}) must not exceed "
                f"--frame-width/--frame-height ({frame_width}x{frame_height})"
            )
        # One scale factor maps boxes to the main image, so both streams must share an aspect ratio.
        if abs(frame_width * lores_height - frame_height * lores_width) > 0.01 * frame_width * lores_height:
            raise ValueError(
                f"--lores-width/--lores-height ({lores_width}x{lores_height}) must keep the aspect ratio of "
                f"--frame-width/--frame-height ({frame_width}x{frame_height})"
            )
        self.main_size = (frame_width, frame_height)
        self.lores_size = (lores_width, lores_height)
        self.fps = float(fps)
        self.camera_num = camera_num
        self.want_color = want_color
        # Asked each frame when set: the live view wants colour only while someone watches.
        self.color_wanted: Callable[[], bool] | None = None
        self.scale_to_main = frame_width / lores_width
        self.description = (
            f"picamera2 camera {camera_num} ({frame_width}x{frame_height}, lores {lores_width}x{lores_height})"
        )
        self._camera = None
        self._frames = 0

    def open(self) -> None:
        if self._camera is not None:
            return
        try:
            from picamera2 import Picamera2
        except ImportError as error:
            raise SourceError(
                f"--source picamera2 needs the picamera2 package, which cannot be imported ({error}): {PICAMERA2_HINT}"
            ) from error
        camera = None
        try:
            camera = Picamera2(self.camera_num)
            config = camera.create_preview_configuration(
                main={"size": self.main_size, "format": "RGB888"},  # RGB888 is BGR in memory: what OpenCV draws on
                lores={"size": self.lores_size, "format": "YUV420"},
                controls={"FrameRate": self.fps},
            )
            camera.configure(config)
            camera.start()
        except Exception as error:  # picamera2 raises IndexError, RuntimeError, OSError... for a missing camera
            if camera is not None:
                _quietly(camera.close)
            raise SourceError(f"cannot start picamera2 camera {self.camera_num}: {error}") from error
        self._camera, self._frames = camera, 0

    def read(self) -> Frame:
        if self._camera is None:
            raise SourceError(f"{self.description} is not open")
        try:
            if self.want_color or (self.color_wanted is not None and self.color_wanted()):
                # Both streams from one request, so the colour image is the same moment as the grey one.
                (yuv, color), _ = self._camera.capture_arrays(["lores", "main"])
            else:
                yuv, color = self._camera.capture_array("lores"), None
        except Exception as error:  # libcamera errors surface as assorted exception types
            raise SourceError(f"{self.description} returned no frame: {error}") from error
        width, height = self.lores_size
        # YUV420 arrives as (height * 3 // 2, stride): the top rows are Y; columns past width are padding.
        gray = np.ascontiguousarray(yuv[:height, :width])
        if color is not None and color.ndim == 3 and color.shape[2] == 4:
            color = color[:, :, :3]
        index = self._frames
        self._frames += 1
        return Frame(index, time.monotonic(), gray, color)

    def close(self) -> None:
        if self._camera is not None:
            _quietly(self._camera.stop)
            _quietly(self._camera.close)
            self._camera = None


def _quietly(action: Callable[[], object]) -> None:
    """Run a cleanup step whose failure must not hide the error being reported or stop shutdown."""
    try:
        action()
    except Exception:  # cleanup of a device that may already be gone
        pass


def open_source(
    spec: str,
    frame_width: int = 640,
    frame_height: int = 480,
    fps: float = 30,
    lores_width: int = 320,
    lores_height: int = 240,
    want_color: bool = False,
) -> Source:
    """Build the source named by `--source` (not opened yet: use `with` or call open())."""
    text = spec.strip()
    if text.lower() == "picamera2":
        return Picamera2Source(frame_width, frame_height, lores_width, lores_height, fps, want_color=want_color)
    if text.lower().startswith("usb:"):
        number = text[4:]
        if not number.isdigit():
            raise ValueError(f"--source {spec!r}: usb:N needs a camera number N, e.g. usb:0")
        return UsbCameraSource(int(number), frame_width, frame_height, fps)
    path = Path(text)
    if path.is_file():
        return VideoSource(path)  # images and folders run as stills (edge.stills); OpenCV's decoders try the rest

    raise ValueError(f"--source {spec!r} is not a camera, file or folder; expected {SOURCE_FORMS}")


class ReopeningSource(_Base):
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
        _check_positive(max_backoff, "max_backoff")
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
            _quietly(self.inner.close)
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


class PlaybackSource(_Base):
    """A video file played the way a camera delivers frames, for the live view and demos: `realtime` never
    hands a frame out before its time in the file (a slow pipeline just falls behind; nothing is dropped),
    `loop` starts the file again at its end. Each start again is marked `after_gap` (the scene jumps, so
    tracks end), and indices and timestamps keep counting up across the starts."""

    def __init__(self, inner: Source, realtime: bool, loop: bool, stop_event: threading.Event | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.inner, self.realtime, self.loop = inner, realtime, loop
        self.stop_event = stop_event if stop_event is not None else threading.Event()
        self._clock = clock
        self._started: float | None = None
        self._offset = self._last = 0.0
        self._next_index = 0

    fps = property(lambda self: self.inner.fps)
    description = property(lambda self: self.inner.description)
    scale_to_main = property(lambda self: self.inner.scale_to_main)

    def open(self) -> None:
        self.inner.open()

    def close(self) -> None:
        self.inner.close()

    def read(self) -> Frame | None:
        frame, again = self.inner.read(), False
        if frame is None and self.loop and self._next_index and not self.stop_event.is_set():
            self.inner.close()
            self.inner.open()
            self._offset = self._last + 1.0 / (self.inner.fps or 30.0)
            frame, again = self.inner.read(), True
        if frame is None:
            return None
        frame = dataclasses.replace(frame, index=self._next_index, timestamp=frame.timestamp + self._offset,
                                    after_gap=frame.after_gap or again)
        self._next_index += 1
        self._last = frame.timestamp
        if self.realtime:
            now = self._clock()
            if self._started is None:
                self._started = now - frame.timestamp
            wait = self._started + frame.timestamp - now
            if wait > 0:
                self.stop_event.wait(wait)
        return frame
