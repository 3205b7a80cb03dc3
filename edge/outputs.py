"""Optional outputs a user asks for: a preview window, an annotated video, annotated images."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np

from edge.config import RunConfig


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
    probe = path.with_name(f".{path.stem}.probe{path.suffix}")
    writer = cv2.VideoWriter(str(probe), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (64, 48))
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
    """Optional, user-requested outputs: preview window, annotated video, annotated images."""

    def __init__(self, config: RunConfig, labels: tuple[str, ...], fps: float | None):
        self.config, self.labels, self.fps = config, labels, fps or config.fps
        self.video: cv2.VideoWriter | None = None
        self.wanted = bool(config.display or config.save_video or config.save_images)

    def show(self, result, faces_by_track: dict) -> bool:
        """Draw and emit the frame; False when the user closed the preview."""
        from edge.annotate import FaceAnnotation, draw_faces, to_bgr

        image = to_bgr(result.frame.color if result.frame.color is not None else result.frame.gray).copy()
        scale = image.shape[1] / result.frame.gray.shape[1]  # picamera2: boxes live on the lores stream
        annotations = []
        for box, scores in zip(result.boxes, result.scores, strict=True):
            track_id, smoothed = faces_by_track.get(box, (None, scores))
            best = int(np.argmax(smoothed))
            annotations.append(
                FaceAnnotation(tuple(box.scale(scale).as_list()), track_id, self.labels[best], float(smoothed[best]), tuple(map(float, smoothed)))
            )
        draw_faces(image, annotations, self.labels, emoji=self.config.emoji)
        if self.config.save_video:
            if self.video is None:
                Path(self.config.save_video).parent.mkdir(parents=True, exist_ok=True)
                fourcc = cv2.VideoWriter_fourcc(*"mp4v")
                self.video = cv2.VideoWriter(self.config.save_video, fourcc, float(self.fps), (image.shape[1], image.shape[0]))
                if not self.video.isOpened():
                    raise ValueError(f"--save-video {self.config.save_video}: cannot write a video there")
            self.video.write(image)
        if self.config.save_images:
            folder = Path(self.config.save_images)
            folder.mkdir(parents=True, exist_ok=True)
            stem = Path(result.frame.name).stem if result.frame.name else f"frame_{result.frame.index:06d}"
            cv2.imwrite(str(folder / f"{stem}_annotated.png"), image)
            faces = [{"box": a.box, "label": a.label, "score": round(a.score, 4), "scores": dict(zip(self.labels, (round(s, 4) for s in a.scores), strict=True))} for a in annotations]
            (folder / f"{stem}.json").write_text(json.dumps({"image": result.frame.name, "faces": faces}, indent=2) + "\n")
        if self.config.display:
            try:
                cv2.imshow("fer-edge", image)
                return (cv2.waitKey(1) & 0xFF) != ord("q")
            except cv2.error:
                raise RuntimeError("--display needs OpenCV with GUI support (apt python3-opencv on a Pi with a desktop)") from None
        return True

    def close(self) -> None:
        if self.video is not None:
            self.video.release()
        if self.config.display:
            try:
                cv2.destroyAllWindows()
            except cv2.error:
                pass
