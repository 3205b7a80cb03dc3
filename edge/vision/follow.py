"""Following a tracked face between detector windows by template matching, as correlation trackers do.

The detector confirms each tracked face at least every `every` frames; in between, the face as the detector
last saw it is looked for around its predicted box with `cv2.matchTemplate` on a small copy, which costs a
fraction of a detector window. A weak match (the face turned, was covered or left) hands the face back to the
detector at once, so a follower never keeps a box the detector would not have found for long."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge.vision.detect import region_crop
from edge.vision.geometry import Box

TEMPLATE_SIDE = 24  # faces are matched 24 to 47 px wide: a 24 px face keeps eyes, nose and mouth apart
SEARCH_GROWTH = 1.6  # the region searched around the predicted box: a face moving a third of its width a frame is still inside
MIN_MATCH = 0.8  # normalised correlation a followed face must reach; below, the detector looks


@dataclass
class _Template:
    pixels: np.ndarray  # the grey face as the detector found it, shrunk `divisor` times
    box: Box  # the detector's box then: a followed box keeps its size
    divisor: int  # the template and each window searched for it are shrunk by this whole factor
    age: int  # frames since the detector found it


def divisor_for(face_width: int) -> int:
    """The largest whole factor that leaves a face of this width at least TEMPLATE_SIDE wide (1 for small faces):
    rounded to the nearest instead, 17 px templates of 36 px faces matched background on the hard clip."""
    return max(1, face_width // TEMPLATE_SIDE)


def shrink(gray: np.ndarray, region: Box, divisor: int) -> np.ndarray | None:
    """`region` of the frame (clipped, and trimmed to a multiple of `divisor`) shrunk `divisor` times by block
    averages; None when less than a block of it is inside. A whole factor takes OpenCV's fast INTER_AREA path:
    a quarter of the cost of an arbitrary ratio."""
    area, crop = region_crop(gray, region)
    columns, rows = area.w // divisor, area.h // divisor
    if crop is None or columns < 2 or rows < 2:
        return None
    crop = crop[: rows * divisor, : columns * divisor]
    return crop if divisor == 1 else cv2.resize(crop, (columns, rows), interpolation=cv2.INTER_AREA)


class FaceFollower:
    """Per track: the template of its latest detection and how many frames ago that was. `every` = 1 turns
    following off (the detector looks at every tracked face on every frame)."""

    def __init__(self, every: int, min_match: float = MIN_MATCH):
        self.every, self.min_match = int(every), float(min_match)
        self._templates: dict[int, _Template] = {}

    def follow(self, gray: np.ndarray, track: int, predicted: Box) -> Box | None:
        """Where the face of `track` is in this frame, or None when the detector must look: following is
        off, the track has no template, its detection is `every` frames old, or the best match is weak."""
        template = self._templates.get(track)
        if self.every <= 1 or template is None or template.age + 1 >= self.every:
            return None
        search = predicted.expand(SEARCH_GROWTH).clip(*gray.shape[::-1])
        window = shrink(gray, search, template.divisor)
        if window is None or window.shape[0] < template.pixels.shape[0] or window.shape[1] < template.pixels.shape[1]:
            return None
        scores = cv2.matchTemplate(window, template.pixels, cv2.TM_CCOEFF_NORMED)
        _, best, _, (x, y) = cv2.minMaxLoc(scores)
        if not best >= self.min_match:  # also refuses NaN (a flat window)
            return None
        template.age += 1
        return Box(search.x + x * template.divisor, search.y + y * template.divisor, template.box.w, template.box.h)

    def found(self, gray: np.ndarray, track: int, box: Box) -> None:
        """The detector found `track`'s face at `box` this frame: it becomes the template (none for a face the
        frame's edge cuts: the detector keeps looking for it)."""
        if self.every <= 1:
            return
        height, width = gray.shape
        if box.clip(width, height) != box or min(box.w, box.h) < 2:
            self._templates.pop(track, None)
            return
        divisor = divisor_for(box.w)
        pixels = shrink(gray, box, divisor)
        if pixels is None:
            self._templates.pop(track, None)
            return
        self._templates[track] = _Template(pixels, box, divisor, 0)

    def forget(self, live: set[int] | None = None) -> None:
        """Drop the templates of tracks that ended (all of them without `live`)."""
        for track in [t for t in self._templates if live is None or t not in live]:
            del self._templates[track]
