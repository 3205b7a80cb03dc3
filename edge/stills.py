"""Still images: which files a folder holds, and each image's faces found on its own.

A photo is not a video frame: detection runs on the whole image at its own resolution, and nothing
(tracks, smoothing, search windows) is carried from one image to the next.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge import contract
from edge.detect import Box, FaceDetector
from edge.events import StageTimer
from edge.model import EmotionModel

# Every still format OpenCV decodes; matched in any letter case.
STILL_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm")


def is_still(path: str | Path) -> bool:
    """An image file or a folder (of images): run as stills, not as a video."""
    path = Path(path)
    return path.is_dir() or (path.is_file() and path.suffix.lower() in STILL_SUFFIXES)


def list_stills(path: str | Path) -> tuple[Path, list[Path]]:
    """(root, images): one image, or every image below a folder, recursively, in a stable order
    (sorted by the path relative to the folder). Names are relative to `root` in records."""
    path = Path(path)
    if path.is_file():
        return path.parent, [path]
    if not path.is_dir():
        raise FileNotFoundError(f"--source {path}: no such image or folder")
    images = sorted(
        (p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in STILL_SUFFIXES),
        key=lambda p: p.relative_to(path).as_posix(),
    )
    if not images:
        raise ValueError(f"--source {path}: the folder holds no images ({', '.join(s[1:] for s in STILL_SUFFIXES)})")
    return path, images


def read_still(path: Path, grey_only: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """(grey, BGR colour or None); ValueError names a file OpenCV cannot decode."""
    try:
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE if grey_only else cv2.IMREAD_COLOR)
    except cv2.error as error:
        raise ValueError(f"{path}: cannot decode ({error.msg.strip() if hasattr(error, 'msg') else error})") from None
    if image is None:
        raise ValueError(f"{path}: not an image OpenCV can decode (corrupt, truncated or unreadable)")
    if grey_only:
        return image, None
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), image


@dataclass(frozen=True)
class StillFace:
    box: Box
    scores: tuple[float, ...]  # this face's own probabilities, canonical label order


class StillAnalyzer:
    """Faces of one image: full-resolution detection, one classification batch, nothing remembered."""

    def __init__(self, detector: FaceDetector, model: EmotionModel, timer: StageTimer | None = None):
        self.detector, self.model, self.timer = detector, model, timer or StageTimer()

    def faces(self, gray: np.ndarray) -> list[StillFace]:
        with self.timer.stage("detect"):
            boxes = self.detector.detect(gray)
        return self.classify(gray, boxes)

    def classify(self, gray: np.ndarray, boxes: list[Box]) -> list[StillFace]:
        with self.timer.stage("preprocess"):
            crops = np.stack([contract.crop_face(gray, box) for box in boxes]) if boxes else None
        with self.timer.stage("infer"):
            scores = self.model.classify(crops) if crops is not None else np.zeros((0, len(self.model.labels)))
        return [StillFace(box, tuple(float(s) for s in row)) for box, row in zip(boxes, scores, strict=True)]

    def crop(self, gray: np.ndarray) -> StillFace:
        """The whole image is one already-cropped face (FER2013's own images): no detection."""
        height, width = gray.shape
        return self.classify(gray, [Box(0, 0, width, height)])[0]


def largest(faces: list[StillFace]) -> StillFace | None:
    """The face a photo is about: the largest one."""
    return max(faces, key=lambda face: face.box.area, default=None)
