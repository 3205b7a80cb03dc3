"""Optional outputs a user asks for: a preview window, an annotated video, annotated images.

Nothing here runs unless asked (privacy default): the loop only calls it when `wanted`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from edge.config import RunConfig
from edge.outputs.annotate import FaceAnnotation, draw_faces, to_bgr
from edge.paths import opencv_name
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


def check_video_path(path: Path) -> None:
    """Open a writer on a scratch file beside the target: proves the folder is writable and the codec known."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"--save-video {path}: cannot create its folder ({error.strerror or error})") from None
    opencv_name(path, "--save-video")
    probe = path.with_name(f".{path.stem}.probe{path.suffix}")
    writer = cv2.VideoWriter(opencv_name(probe, "--save-video"), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (64, 48))
    opened = writer.isOpened()
    writer.release()
    probe.unlink(missing_ok=True)
    if not opened:
        raise ValueError(f"--save-video {path}: cannot write a video there (folder not writable, or not .mp4/.avi)")


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
        video = cv2.VideoWriter(name, cv2.VideoWriter_fourcc(*"mp4v"), float(self.fps), (width, height))
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
