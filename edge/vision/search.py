"""When to search the whole frame and where to look between searches: the full-detection schedule and the windows around tracked faces."""

from __future__ import annotations

import numpy as np

from edge.vision.geometry import Box
from edge.vision.motion import MotionGate, union


class SearchSchedule:
    """Where to look for new faces this frame, beyond the windows around tracked ones.

    Without a motion gate: the whole frame every `every` frames, and every frame while no face is
    tracked. With one (as network video recorders gate their detectors): only where something moved
    outside the tracked people or where a tracked face went unseen since the last search, at most every
    `every` frames while faces are tracked; the whole frame when that area is large, and at least every
    `still_every` frames regardless (a face the tracker lost while sitting still)."""

    def __init__(self, every: int, still_every: int, motion: MotionGate | None):
        self.every, self.still_every, self.motion = every, max(every, still_every), motion
        self._since_search = self._since_whole = self.still_every  # the first frame is searched whole
        self._moved: Box | None = None

    def search_area(self, gray: np.ndarray, tracked: list[Box]) -> Box | None:
        """The whole frame, the area where something moved, or None (windows only). The caller searches
        what this returns, so it counts as searched from here."""
        height, width = gray.shape
        whole = Box(0, 0, width, height)
        self._since_search += 1
        self._since_whole += 1
        if self.motion is None:
            due = self._since_search >= self.every or not tracked
            return self._searched(whole, whole) if due else None
        self._moved = union(self._moved, self.motion.changed_area(gray, tracked))  # judged frame to frame
        if self._since_whole >= self.still_every:
            return self._searched(whole, whole)
        if self._moved is None or not (self._since_search >= self.every or not tracked):
            return None
        area = search_area_around(self._moved, width, height)
        return self._searched(whole if area.area * 2 >= width * height else area, whole)

    def restart(self) -> None:
        """After a gap in the frames: nothing is known, the next frame is searched whole."""
        self._since_search = self._since_whole = self.still_every
        self._moved = None
        if self.motion is not None:
            self.motion.forget()

    def lost(self, faces: list[Box]) -> None:
        """Tracked faces their windows did not find: search around them, twice their size."""
        for face in faces:
            self._moved = union(self._moved, face.expand(2.0))

    def _searched(self, area: Box, whole: Box) -> Box:
        self._since_search, self._moved = 0, None
        if area == whole:
            self._since_whole = 0
        return area


def search_area_around(moved: Box, width: int, height: int) -> Box:
    """Where to search for a face that caused `moved`: half as big again, and at least a third of the
    frame's height each way, since a face coming in shows only part of itself in what changed."""
    side = max(height // 3, 1)
    grown = moved.expand(1.5)
    w, h = max(grown.w, side), max(grown.h, side)
    return Box(grown.x - (w - grown.w) // 2, grown.y - (h - grown.h) // 2, w, h).clip(width, height)
