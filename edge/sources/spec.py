"""The `--source` text to a source: picamera2, usb:N or a video file (images and folders run as stills)."""

from __future__ import annotations

from pathlib import Path

from edge.sources.cameras import Picamera2Source, UsbCameraSource
from edge.sources.frame import Source
from edge.sources.video import VideoSource

SOURCE_FORMS = "picamera2, usb:N (e.g. usb:0), a video file, an image file or a folder of images"


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
        return VideoSource(path)  # images and folders run as stills (edge.sources.images); OpenCV's decoders try the rest

    raise ValueError(f"--source {spec!r} is not a camera, file or folder; expected {SOURCE_FORMS}")
