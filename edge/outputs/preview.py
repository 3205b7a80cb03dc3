"""Optional outputs a user asks for: a preview window, an annotated video, annotated images.

Nothing here runs unless asked (privacy default): the loop only calls it when `wanted`.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from edge.config import RunConfig
from edge.outputs.annotate import FaceAnnotation, draw_faces, to_bgr
from edge.paths import opencv_name
from edge.quiet import notices_filtered
from edge.vision.geometry import Box

# One face to draw: its box in the analysed grey image, its scores, its track id (video) or None.
Face = tuple[Box, Sequence[float], int | None]


def check_outputs(config: RunConfig) -> None:
    """Fail before the first frame when an asked-for output cannot work; ValueError names the flag."""
    if config.save_video:
        check_video_path(Path(config.save_video))
    if config.save_images:
        folder = Path(config.save_images)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ValueError(f"--save-images {folder}: cannot create the folder ({error.strerror or error})") from None
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ValueError(f"--save-images {folder}: the folder is not writable")
    if config.display:
        check_display()


# What OpenCV's FFmpeg says while it looks for an encoder (a hardware H.264 encoder that is not there, a tag
# it maps to another): our own note says what matters, once.
ENCODER_NOTICES = ("OpenCV: FFMPEG:", "h264_v4l2m2m", "cap_ffmpeg_impl", "VIDEOIO/FFMPEG")


def open_writer(path: str | Path, fps: float, size: tuple[int, int]) -> cv2.VideoWriter:
    """A writer for the suffix: .webm VP8 (browsers play it), .mp4 H.264 where this OpenCV can encode it,
    else MPEG-4 Part 2 (VLC and mpv play it, browsers do not: `playback_note` says so)."""
    with notices_filtered(ENCODER_NOTICES):
        return cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc_for(path)), float(fps), size)


def fourcc_for(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix == ".webm":
        return "VP80"
    return "avc1" if suffix == ".mp4" and h264_available() else "mp4v"


@functools.cache
def h264_available() -> bool:
    """Whether this OpenCV can write H.264 (pip's wheels cannot; a Pi 4's hardware encoder or apt's OpenCV may)."""
    with tempfile.TemporaryDirectory() as folder, notices_filtered(ENCODER_NOTICES):
        writer = cv2.VideoWriter(str(Path(folder) / "probe.mp4"), cv2.VideoWriter_fourcc(*"avc1"), 30.0, (64, 48))
        opened = writer.isOpened()
        writer.release()
    return opened


def playback_note(path: str | Path) -> str:
    """One line on where the saved video plays, when a browser will not play it; "" when it will."""
    if fourcc_for(path) != "mp4v":
        return ""
    return (f"{Path(path).name}: MPEG-4 Part 2 (this OpenCV has no H.264 encoder), for VLC or mpv; "
            f"for a browser: --save-video {Path(path).with_suffix('.webm').name} (VP8, slower to write)")


def check_video_path(path: Path) -> None:
    """Open a writer on a scratch file beside the target: proves the folder is writable and the codec known."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"--save-video {path}: cannot create its folder ({error.strerror or error})") from None
    opencv_name(path, "--save-video")
    probe = path.with_name(f".{path.stem}.probe{path.suffix}")
    writer = open_writer(opencv_name(probe, "--save-video"), 30.0, (64, 48))
    opened = writer.isOpened()
    writer.release()
    probe.unlink(missing_ok=True)
    if not opened:
        raise ValueError(f"--save-video {path}: cannot write a video there (folder not writable, or not .mp4, .webm or .avi)")


def check_display() -> None:
    message = "--display needs OpenCV with GUI support and a desktop session (apt python3-opencv on a Pi with a desktop)"
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise RuntimeError(message + "; DISPLAY is not set")
    try:
        cv2.namedWindow("fer-edge", cv2.WINDOW_AUTOSIZE)
    except cv2.error:
        raise RuntimeError(message) from None


class Outputs:
    def __init__(self, config: RunConfig, labels: tuple[str, ...], fps: float | None = None, scale_to_main: float = 1.0):
        self.config, self.labels = config, labels
        self.fps = fps or config.fps
        self.scale_to_main = scale_to_main  # picamera2: boxes live on the lores stream, drawing on the main one
        self.video: cv2.VideoWriter | None = None
        self.wanted = bool(config.display or config.save_video)

    def annotate(self, image: np.ndarray, faces: Sequence[Face]) -> tuple[np.ndarray, list[FaceAnnotation]]:
        """A BGR copy of `image` with every face drawn, and what was drawn."""
        canvas = to_bgr(image).copy()
        annotations = []
        for box, scores, track in faces:
            best = int(np.argmax(scores))
            annotations.append(
                FaceAnnotation(tuple(box.scale(self.scale_to_main)), track, self.labels[best], float(scores[best]), tuple(map(float, scores)))
            )
        draw_faces(canvas, annotations, self.labels, emoji=self.config.emoji)
        return canvas, annotations

    def show(self, image: np.ndarray, faces: Sequence[Face]) -> bool:
        """Draw a video frame into the preview and/or the video; False when the user closed the preview."""
        canvas, _ = self.annotate(image, faces)
        if self.config.save_video:
            if self.video is None:
                self.video = self._open_video(canvas.shape[1], canvas.shape[0])
            self.video.write(canvas)
        if self.config.display:
            try:
                cv2.imshow("fer-edge", canvas)
                return (cv2.waitKey(1) & 0xFF) != ord("q")
            except cv2.error:
                raise RuntimeError("--display needs OpenCV with GUI support (apt python3-opencv on a Pi with a desktop)") from None
        return True

    def _open_video(self, width: int, height: int) -> cv2.VideoWriter:
        Path(self.config.save_video).parent.mkdir(parents=True, exist_ok=True)
        name = opencv_name(self.config.save_video, "--save-video")
        video = open_writer(name, float(self.fps), (width, height))
        if not video.isOpened():
            raise ValueError(f"--save-video {self.config.save_video}: cannot write a video there")
        return video

    def save_still(self, name: str, image: np.ndarray, faces: Sequence[Face], record: dict) -> None:
        """--save-images: `<name>_annotated.png` and `<name>.json` (the image's log record), mirroring
        the source folder's sub-folders."""
        folder = Path(self.config.save_images)
        stem = folder / Path(name).with_suffix("")
        stem.parent.mkdir(parents=True, exist_ok=True)
        canvas, _ = self.annotate(image, faces)
        encoded, png = cv2.imencode(".png", canvas)  # encoded here and written by Python: any file name works
        try:
            if not encoded:
                raise OSError("PNG encoding failed")
            Path(f"{stem}_annotated.png").write_bytes(png.tobytes())
        except OSError as error:
            raise ValueError(f"--save-images {folder}: cannot write {stem}_annotated.png ({error})") from None
        Path(f"{stem}.json").write_text(json.dumps(record, indent=2) + "\n")

    def close(self) -> None:
        if self.video is not None:
            self.video.release()
        if self.config.display:
            try:
                cv2.destroyAllWindows()
            except cv2.error:
                pass
