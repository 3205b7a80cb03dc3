"""Motion outside the tracked faces: where, and whether, a search for new faces is worth its cost.

As in network video recorders (Frigate), cheap motion detection decides where the expensive detector
runs: a face can only appear where something changed, so while nothing outside the tracked people
moves, the windows around the tracked faces are enough.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge.vision.geometry import Box

THUMBNAIL_SHRINK = 8  # frames are compared at 1/8 size: block averages damp sensor noise, a 30 px face is still 4 px


class MotionGate:
    """Compares each grey frame with the previous one on a small thumbnail, ignoring tracked people."""

    def __init__(self, threshold: int):
        self.threshold = threshold
        self._previous: np.ndarray | None = None

    def forget(self) -> None:
        """The next frame has nothing to be compared with (it counts as changed everywhere)."""
        self._previous = None

    def changed_area(self, gray: np.ndarray, tracked: list[Box]) -> Box | None:
        """The bounding box, in frame pixels, of what changed by more than `threshold` grey levels since
        the previous frame outside the tracked faces' people; None when nothing did. The first frame
        (or a new frame size) counts as changed everywhere."""
        height, width = gray.shape
        size = (max(1, width // THUMBNAIL_SHRINK), max(1, height // THUMBNAIL_SHRINK))
        thumbnail = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        previous, self._previous = self._previous, thumbnail
        if previous is None or previous.shape != thumbnail.shape:
            return Box(0, 0, width, height)
        changed = cv2.absdiff(thumbnail, previous) > self.threshold
        for face in tracked:
            x, y, w, h = person_region(face).scale(1.0 / THUMBNAIL_SHRINK).clip(*size)
            changed[y : y + h + 1, x : x + w + 1] = False
        points = cv2.findNonZero(changed.astype(np.uint8))
        if points is None:
            return None
        return Box(*cv2.boundingRect(points)).scale(THUMBNAIL_SHRINK).clip(width, height)


def union(first: Box | None, second: Box | None) -> Box | None:
    """The smallest box holding both (None counts as nothing)."""
    if first is None or second is None:
        return first or second
    x0, y0 = min(first.x, second.x), min(first.y, second.y)
    x1, y1 = max(first.x + first.w, second.x + second.w), max(first.y + first.h, second.y + second.h)
    return Box(x0, y0, x1 - x0, y1 - y0)


def person_region(face: Box) -> Box:
    """Where a tracked face's own person moves: half a face above it, a face to either side and the
    shoulders and torso (three faces) below. A head that moves moves its body too (on the sample clip
    the portraits' shoulders changed more than anything else), and that is no new face."""
    return Box(face.x - face.w, face.y - face.h // 2, 3 * face.w, face.h // 2 + 4 * face.h)
