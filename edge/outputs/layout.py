"""Where a frame's overlays go: one placement pass over all faces, so captions, emoji and score panels
never cover each other, another face's box or the frame's edge.

Plain rectangles (x, y, w, h) in, rectangles out; no drawing, so the rules are testable without pixels.
Captions come first (every face gets one), then emoji, then score panels, largest face first in each
round. A caption with no free spot still goes where it covers least; an emoji or a panel with no free
spot at any of its sizes is left out rather than stamped over a face.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Rect = tuple[int, int, int, int]


@dataclass(frozen=True)
class Placed:
    """One overlay's place: what it is (caption, emoji, panel), whose face it belongs to, where it goes."""

    kind: str
    face: int
    rect: Rect


def shared_area(a: Rect, b: Rect) -> int:
    """Area the two rectangles share (half-open, so rectangles that only touch share nothing)."""
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy


def inside(rect: Rect, frame_size: tuple[int, int]) -> bool:
    x, y, w, h = rect
    return x >= 0 and y >= 0 and x + w <= frame_size[0] and y + h <= frame_size[1]


def clamp(rect: Rect, frame_size: tuple[int, int]) -> Rect:
    """Shifted (not shrunk) to lie in the frame; a rectangle bigger than the frame keeps its top-left at 0."""
    x, y, w, h = rect
    return min(max(x, 0), max(frame_size[0] - w, 0)), min(max(y, 0), max(frame_size[1] - h, 0)), w, h


def beside(box: Rect, size: tuple[int, int], gap: int, order: str, slide: bool = True) -> list[Rect]:
    """Spots for a w x h rectangle beside the box. `order` is a string of side letters (r, l, b, a for
    right, left, below, above), each side tried aligned to the box's start, middle, then end; with `slide`,
    then the same sides farther out and slid along the box in quarter steps, so an overlay finds room
    past a neighbour's caption or emoji."""
    bx, by, bw, bh = box
    w, h = size
    outward = [gap] + ([gap + min(w, h) // 4] if slide else [])  # farther would leave its face
    spots: list[Rect] = []
    for out in outward:
        for side in order:
            if side in "rl":
                along = [by, by + (bh - h) // 2, by + bh - h] + (list(range(by - h, by + bh, max(h // 4, 1))) if slide else [])
                x = bx + bw + out if side == "r" else bx - out - w
                spots += [(x, y, w, h) for y in along]
            else:
                along = [bx, bx + (bw - w) // 2, bx + bw - w] + (list(range(bx - w, bx + bw, max(w // 4, 1))) if slide else [])
                y = by + bh + out if side == "b" else by - out - h
                spots += [(x, y, w, h) for x in along]
    return list(dict.fromkeys(spots))


class Layout:
    """The rectangles taken so far in one frame, and the face boxes overlays must keep clear of."""

    def __init__(self, frame_size: tuple[int, int], boxes: Sequence[Rect]):
        self.frame_size = frame_size
        self.boxes = [tuple(int(v) for v in box) for box in boxes]
        self.placed: list[Placed] = []

    def free(self, rect: Rect) -> bool:
        """Inside the frame, clear of every face box (its own too) and of every overlay placed."""
        return (
            inside(rect, self.frame_size)
            and not any(shared_area(rect, box) for box in self.boxes)
            and not any(shared_area(rect, item.rect) for item in self.placed)
        )

    def cost(self, rect: Rect, face: int) -> tuple[int, int]:
        """What a forced spot covers: other overlays and other faces first, its own face second."""
        others = sum(shared_area(rect, item.rect) for item in self.placed)
        others += sum(shared_area(rect, box) for i, box in enumerate(self.boxes) if i != face)
        return others, shared_area(rect, self.boxes[face])

    def put(self, kind: str, face: int, spots: Sequence[Rect]) -> Placed | None:
        """The first free spot (each shifted into the frame first), or None."""
        for spot in spots:
            spot = clamp(spot, self.frame_size)
            if self.free(spot):
                return self._take(kind, face, spot)
        return None

    def force(self, kind: str, face: int, spots: Sequence[Rect]) -> Placed:
        """The first free spot, else the one covering least (ties: the earlier spot)."""
        found = self.put(kind, face, spots)
        if found is not None:
            return found
        shifted = [clamp(spot, self.frame_size) for spot in spots]
        return self._take(kind, face, min(shifted, key=lambda spot: self.cost(spot, face)))

    def _take(self, kind: str, face: int, rect: Rect) -> Placed:
        item = Placed(kind, face, rect)
        self.placed.append(item)
        return item


@dataclass(frozen=True)
class Wants:
    """What one face asks for: its caption's size, emoji sizes (diameters, best first; empty for none),
    panel sizes (w, h, best first; empty for none)."""

    caption: tuple[int, int]
    emoji: tuple[int, ...] = ()
    panel: tuple[tuple[int, int], ...] = ()


def plan(frame_size: tuple[int, int], boxes: Sequence[Rect], wants: Sequence[Wants], gap: int = 4) -> list[Placed]:
    """Every overlay's place for one frame; see the module docstring for the rules."""
    if len(boxes) != len(wants):
        raise ValueError(f"{len(boxes)} boxes but {len(wants)} wants")
    layout = Layout(frame_size, boxes)
    order = sorted(range(len(boxes)), key=lambda i: -max(boxes[i][2], 0) * max(boxes[i][3], 0))
    for i in order:
        x, y, w, h = layout.boxes[i]
        cw, ch = wants[i].caption
        # Above, then below; a caption that fits nowhere outside goes just inside the box's top.
        spots = beside(layout.boxes[i], (cw, ch), 0, "ab", slide=False) + [(x, y, cw, ch), (x, y + h - ch, cw, ch)]
        layout.force("caption", i, spots)
    for i in order:
        for diameter in wants[i].emoji:
            if layout.put("emoji", i, beside(layout.boxes[i], (diameter, diameter), gap, "rlab")):
                break
    for i in order:
        for size in wants[i].panel:
            if layout.put("panel", i, beside(layout.boxes[i], size, gap, "rlba")):
                break
    return layout.placed
