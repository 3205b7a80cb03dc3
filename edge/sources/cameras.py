"""Live cameras: a USB webcam through OpenCV and the Raspberry Pi camera through picamera2 (imported only when used: it exists only on a Pi)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import cv2
import numpy as np

from edge.quiet import OPENCV_CAMERA_NOTICES, notices_filtered
from edge.sources.frame import Frame, SourceBase, SourceError, check_positive, quietly, split_colour

PICAMERA2_HINT = (
    "install it with `sudo apt install python3-picamera2` and create the venv with "
    "`python3 -m venv --system-site-packages .venv` so the venv can see it"
)


class UsbCameraSource(SourceBase):
    """A V4L2 (USB) camera through cv2.VideoCapture; timestamps are time.monotonic()."""

    live = True

    def __init__(self, index: int = 0, frame_width: int = 640, frame_height: int = 480, fps: float = 30):
        if index < 0:
            raise ValueError(f"--source usb:N needs N >= 0, got {index}")
        check_positive(frame_width, "--frame-width")
        check_positive(frame_height, "--frame-height")
        check_positive(fps, "--fps")
        self.index, self.frame_width, self.frame_height, self.requested_fps = index, frame_width, frame_height, fps
        self.fps = float(fps)
        self.description = f"USB camera {index} (/dev/video{index})"
        self._capture: cv2.VideoCapture | None = None
        self._frames = 0

    def open(self) -> None:
        if self._capture is not None:
            return
        backend = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
        with notices_filtered(OPENCV_CAMERA_NOTICES):
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
        gray, color = split_colour(image)
        return Frame(index, time.monotonic(), gray, color)

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


class Picamera2Source(SourceBase):
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
            check_positive(value, flag)
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
                quietly(camera.close)
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
            quietly(self._camera.stop)
            quietly(self._camera.close)
            self._camera = None
