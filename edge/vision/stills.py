"""Faces in one photo: detection at the photo size, the contract crop and the expression, no tracking."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from edge import contract
from edge.timing import StageTimer
from edge.vision.detect import FaceDetector
from edge.vision.geometry import Box
from edge.vision.model import EmotionModel


@dataclass(frozen=True)
class StillFace:
    box: Box
    scores: tuple[float, ...]  # this face's own probabilities, canonical label order
    landmarks: tuple[tuple[int, int], ...] | None = None  # YuNet's five points with --landmarks


class StillAnalyzer:
    """Faces of one image: full-resolution detection, one classification batch, nothing remembered."""

    def __init__(self, detector: FaceDetector, model: EmotionModel, timer: StageTimer | None = None):
        self.detector, self.model, self.timer = detector, model, timer or StageTimer()

    def faces(self, gray: np.ndarray) -> list[StillFace]:
        with self.timer.stage("detect"):
            boxes = self.detector.detect(gray)
        take = getattr(self.detector, "take_landmarks", None)  # YuNet's, kept with --landmarks
        landmarks = take() if take is not None else {}
        return [replace(face, landmarks=landmarks.get(face.box)) for face in self.classify(gray, boxes)]

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
