"""Face boxes: the frozen `Box` value and matching boxes between two frames by overlap."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in pixels: top-left corner (x, y), width w, height h."""

    x: int
    y: int
    w: int
    h: int

    def __iter__(self):
        """x, y, w, h: a Box unpacks like the (x, y, w, h) tuples OpenCV uses."""
        return iter((self.x, self.y, self.w, self.h))

    @property
    def area(self) -> int:
        return max(self.w, 0) * max(self.h, 0)

    def intersection(self, other: Box) -> int:
        """Area the two boxes share."""
        ix = max(0, min(self.x + self.w, other.x + other.w) - max(self.x, other.x))
        iy = max(0, min(self.y + self.h, other.y + other.h) - max(self.y, other.y))
        return ix * iy

    def iou(self, other: Box) -> float:
        """Intersection over union, 0.0 for disjoint or empty boxes."""
        inter = self.intersection(other)
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def scale(self, f: float) -> Box:
        """Every coordinate times f (e.g. from a downscaled or lores image back to the full one)."""
        return Box(round(self.x * f), round(self.y * f), round(self.w * f), round(self.h * f))

    def clip(self, width: int, height: int) -> Box:
        """The part of the box inside a width x height image (may be empty: w or h == 0)."""
        x0, y0 = min(max(self.x, 0), width), min(max(self.y, 0), height)
        x1, y1 = min(max(self.x + self.w, 0), width), min(max(self.y + self.h, 0), height)
        return Box(x0, y0, x1 - x0, y1 - y0)

    def expand(self, f: float) -> Box:
        """Grow (f > 1) or shrink (f < 1) about the centre; not clipped."""
        w, h = round(self.w * f), round(self.h * f)
        cx, cy = self.x + self.w / 2, self.y + self.h / 2
        return Box(round(cx - w / 2), round(cy - h / 2), w, h)

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]


def match_boxes(first: list[Box], second: list[Box], threshold: float) -> list[tuple[int, int]]:
    """Greedy one-to-one pairs (i, j) with IoU >= threshold, highest IoU first; ties go to the
    earlier i, then the earlier j. The tracker, the benchmark's recall and the annotator use it."""
    pairs = [(box.iou(other), i, j) for i, box in enumerate(first) for j, other in enumerate(second)]
    pairs = sorted((p for p in pairs if p[0] >= threshold), key=lambda p: (-p[0], p[1], p[2]))
    used_first, used_second, matched = set(), set(), []
    for _, i, j in pairs:
        if i not in used_first and j not in used_second:
            used_first.add(i)
            used_second.add(j)
            matched.append((i, j))
    return matched
