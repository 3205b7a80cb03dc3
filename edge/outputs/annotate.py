"""Drawing for the optional outputs (preview, annotated video or image): boxes, captions, score bars, emoji.

Everything draws on a BGR uint8 image in place with OpenCV primitives and returns it. OpenCV clips
whatever falls outside the frame, so faces at or beyond the border are safe to draw.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge.vision.geometry import Box

FONT = cv2.FONT_HERSHEY_SIMPLEX
# BGR, chosen to be told apart at a glance on a camera image.
PALETTE: dict[str, tuple[int, int, int]] = {
    "angry": (48, 48, 230),
    "disgust": (60, 170, 60),
    "fear": (200, 90, 160),
    "happy": (0, 210, 255),
    "sad": (210, 130, 40),
    "surprise": (0, 140, 255),
    "neutral": (190, 190, 190),
}
OTHER_COLOUR = (255, 255, 255)  # labels of some other model
INK = (25, 35, 70)  # dark brown: emoji eyes and mouths
EMOJI_SKIN: dict[str, tuple[int, int, int]] = {
    "angry": (70, 90, 235),
    "disgust": (120, 205, 150),
    "fear": (60, 205, 255),
    "happy": (40, 205, 255),
    "sad": (40, 205, 255),
    "surprise": (40, 205, 255),
    "neutral": (40, 205, 255),
}
FEAR_BLUE = (225, 160, 95)  # the pale-blue forehead of the "fearful face" emoji
TEAR_BLUE = (245, 190, 90)
PANEL_ALPHA = 0.6
MARGIN = 8


@dataclass(frozen=True)
class FaceAnnotation:
    """What to draw for one face: box (x, y, w, h), tracker id, top label and its score, all class scores."""

    box: tuple[int, int, int, int]
    track_id: int | None
    label: str
    score: float
    scores: tuple[float, ...]


def to_bgr(image: np.ndarray) -> np.ndarray:
    """A (H, W) or (H, W, 1) grey image as a new BGR image; a BGR image is returned as it is."""
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {image.dtype}")
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise ValueError(f"image must be (H, W), (H, W, 1) or (H, W, 3), got {image.shape}")


def colour_for(label: str) -> tuple[int, int, int]:
    return PALETTE.get(label, OTHER_COLOUR)


def text_colour(background: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black on light backgrounds, white on dark ones."""
    b, g, r = background
    return (0, 0, 0) if 0.114 * b + 0.587 * g + 0.299 * r > 140 else (255, 255, 255)


def font_scale(image: np.ndarray) -> float:
    # Grow text with the frame so it stays readable on 1080p and fits on 320x240.
    return max(0.4, min(image.shape[:2]) / 800)


def thickness_for(scale: float) -> int:
    return max(1, round(scale * 1.5))


def caption(face: FaceAnnotation) -> str:
    prefix = f"#{face.track_id} " if face.track_id is not None else ""
    return f"{prefix}{face.label} {face.score:.0%}"


def overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> int:
    """Intersection area of two (x, y, w, h) boxes."""
    return Box(*a).intersection(Box(*b))


def panel_origin(
    frame_size: tuple[int, int],
    panel_size: tuple[int, int],
    avoid: tuple[int, int, int, int],
    others: list[tuple[int, int, int, int]] = (),
) -> tuple[int, int]:
    """Top-left of the corner whose panel covers `avoid` least, then the `others` boxes least.

    frame_size and panel_size are (width, height). Corners are tried top-left, top-right, bottom-right,
    bottom-left: bottom-left comes last because the status line lives there.
    """
    (fw, fh), (pw, ph) = frame_size, panel_size
    left, top = MARGIN, MARGIN
    right, bottom = max(fw - pw - MARGIN, 0), max(fh - ph - MARGIN, 0)
    corners = [(left, top), (right, top), (right, bottom), (left, bottom)]

    def cost(corner):
        panel = (*corner, pw, ph)
        return overlap(panel, avoid), sum(overlap(panel, box) for box in others)

    return min(corners, key=cost)  # min keeps the first of ties


def blend_rect(image: np.ndarray, rect: tuple[int, int, int, int], colour, alpha: float) -> None:
    """Darken/tint a rectangle (clipped to the frame) so text on it stays readable over any scene."""
    x, y, w, h = rect
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + w, image.shape[1]), min(y + h, image.shape[0])
    if x1 <= x0 or y1 <= y0:
        return
    roi = image[y0:y1, x0:x1]
    image[y0:y1, x0:x1] = cv2.addWeighted(roi, 1 - alpha, np.full_like(roi, colour), alpha, 0)


def draw_bars(
    image: np.ndarray, face: FaceAnnotation, labels: tuple[str, ...], others: list[tuple[int, int, int, int]] = ()
) -> np.ndarray:
    """Per-class probability bars for one face, in a semi-transparent corner panel avoiding it (then `others`).

    Skipped on frames too small to hold the panel.
    """
    if len(face.scores) != len(labels):
        raise ValueError(f"face has {len(face.scores)} scores but there are {len(labels)} labels")
    scale = font_scale(image)
    thick = thickness_for(scale)
    (name_w, text_h), _ = cv2.getTextSize(max(labels, key=len), FONT, scale, thick)
    (pct_w, _), _ = cv2.getTextSize("100%", FONT, scale, thick)
    row_h, bar_w, pad = round(text_h * 1.8), round(150 * scale), round(6 * scale) + 2
    panel = (name_w + bar_w + pct_w + 4 * pad, row_h * len(labels) + 2 * pad)
    if panel[0] + 2 * MARGIN > image.shape[1] or panel[1] + 2 * MARGIN > image.shape[0]:
        return image  # a frame too small for the panel: it would hide everything and be unreadable
    bx, by, bw, bh = face.box
    avoid = (bx, by - row_h, bw, bh + row_h)  # the box and its caption above
    x, y = panel_origin((image.shape[1], image.shape[0]), panel, avoid, others)
    blend_rect(image, (x, y, *panel), (0, 0, 0), PANEL_ALPHA)
    for i, (name, score) in enumerate(zip(labels, face.scores, strict=True)):
        top = y + pad + i * row_h
        baseline = top + (row_h + text_h) // 2
        bar_x = x + 2 * pad + name_w
        cv2.putText(image, name, (x + pad, baseline), FONT, scale, (255, 255, 255), thick, cv2.LINE_AA)
        bar_top, bar_bottom = top + row_h // 5, top + row_h - row_h // 5
        filled = round(bar_w * min(max(float(score), 0.0), 1.0))
        cv2.rectangle(image, (bar_x, bar_top), (bar_x + bar_w, bar_bottom), (90, 90, 90), -1)
        if filled > 0:
            cv2.rectangle(image, (bar_x, bar_top), (bar_x + filled, bar_bottom), colour_for(name), -1)
        pct = f"{float(score):.0%}"
        cv2.putText(image, pct, (bar_x + bar_w + pad, baseline), FONT, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return image


def draw_box(image: np.ndarray, face: FaceAnnotation) -> np.ndarray:
    """The face box and a filled caption above it (inside its top when there is no room above)."""
    x, y, w, h = (int(v) for v in face.box)
    colour = colour_for(face.label)
    scale = font_scale(image)
    thick = thickness_for(scale)
    cv2.rectangle(image, (x, y), (x + w, y + h), colour, thick + 1, cv2.LINE_AA)
    text = caption(face)
    (tw, th), base = cv2.getTextSize(text, FONT, scale, thick)
    pad = 3
    cap_h = th + base + 2 * pad
    # Keep the caption on screen: above the box if it fits, else just inside its top; never off the sides.
    cap_y = y - cap_h if y - cap_h >= 0 else max(y, 0)
    cap_x = min(max(x, 0), max(image.shape[1] - tw - 2 * pad, 0))
    cv2.rectangle(image, (cap_x, cap_y), (cap_x + tw + 2 * pad, cap_y + cap_h), colour, -1)
    cv2.putText(image, text, (cap_x + pad, cap_y + pad + th), FONT, scale, text_colour(colour), thick, cv2.LINE_AA)
    return image


def _at(center: tuple[int, int], r: int, fx: float, fy: float) -> tuple[int, int]:
    """A point at (fx, fy) emoji radii from the centre."""
    return round(center[0] + fx * r), round(center[1] + fy * r)


def _size(r: int, fx: float, fy: float) -> tuple[int, int]:
    return max(1, round(fx * r)), max(1, round(fy * r))


def _eyes(image, c, r, fy=-0.2, rx=0.08, ry=0.13):
    for side in (-1, 1):
        cv2.ellipse(image, _at(c, r, 0.33 * side, fy), _size(r, rx, ry), 0, 0, 360, INK, -1, cv2.LINE_AA)


def _brows(image, c, r, t, outer_y, inner_y):
    """Straight brows; inner end lower than outer reads as anger, higher as worry."""
    for side in (-1, 1):
        cv2.line(image, _at(c, r, 0.58 * side, outer_y), _at(c, r, 0.14 * side, inner_y), INK, t, cv2.LINE_AA)


def _arc(image, c, r, t, fy, ax, ay, start, end):
    """Part of an ellipse; angles run clockwise from 3 o'clock, so 0-180 is a smile and 180-360 a frown."""
    cv2.ellipse(image, _at(c, r, 0, fy), _size(r, ax, ay), 0, start, end, INK, t, cv2.LINE_AA)


def _happy(image, c, r, t):
    _eyes(image, c, r)
    _arc(image, c, r, t, 0.05, 0.55, 0.5, 20, 160)


def _sad(image, c, r, t):
    _eyes(image, c, r)
    _brows(image, c, r, t, -0.38, -0.52)
    _arc(image, c, r, t, 0.72, 0.4, 0.28, 205, 335)
    # A tear under the right eye: a drop is a circle with a triangle on top.
    tip, left, right = _at(c, r, 0.36, 0.02), _at(c, r, 0.27, 0.25), _at(c, r, 0.45, 0.25)
    cv2.fillConvexPoly(image, np.array([tip, left, right], np.int32), TEAR_BLUE, cv2.LINE_AA)
    cv2.circle(image, _at(c, r, 0.36, 0.28), max(1, round(0.09 * r)), TEAR_BLUE, -1, cv2.LINE_AA)


def _angry(image, c, r, t):
    _eyes(image, c, r, fy=-0.12, ry=0.1)
    _brows(image, c, r, t + 1, -0.52, -0.28)
    _arc(image, c, r, t, 0.75, 0.35, 0.22, 200, 340)


def _surprise(image, c, r, t):
    _eyes(image, c, r, fy=-0.12, rx=0.1, ry=0.16)
    for side in (-1, 1):  # brows raised high, as arcs
        cv2.ellipse(image, _at(c, r, 0.33 * side, -0.42), _size(r, 0.18, 0.1), 0, 200, 340, INK, t, cv2.LINE_AA)
    cv2.ellipse(image, _at(c, r, 0, 0.47), _size(r, 0.16, 0.21), 0, 0, 360, INK, -1, cv2.LINE_AA)


def _fear(image, c, r, t):
    for side in (-1, 1):  # wide white eyes with small pupils
        eye = _at(c, r, 0.33 * side, -0.08)
        cv2.circle(image, eye, max(1, round(0.15 * r)), (255, 255, 255), -1, cv2.LINE_AA)
        cv2.circle(image, eye, max(1, round(0.15 * r)), INK, max(1, t // 2), cv2.LINE_AA)
        cv2.circle(image, eye, max(1, round(0.06 * r)), INK, -1, cv2.LINE_AA)
    _brows(image, c, r, t, -0.32, -0.5)
    mouth = _at(c, r, 0, 0.5)
    cv2.ellipse(image, mouth, _size(r, 0.3, 0.15), 0, 0, 360, INK, -1, cv2.LINE_AA)
    cv2.ellipse(image, mouth, _size(r, 0.2, 0.05), 0, 180, 360, (255, 255, 255), -1, cv2.LINE_AA)  # teeth


def _disgust(image, c, r, t):
    for side in (-1, 1):  # squinting eyes: short lines
        cv2.line(image, _at(c, r, 0.33 * side - 0.12, -0.15), _at(c, r, 0.33 * side + 0.12, -0.15), INK, t, cv2.LINE_AA)
    _brows(image, c, r, t, -0.45, -0.32)
    # A wavy, tilted mouth: one and a half periods of a sine wave.
    xs = np.linspace(-0.4, 0.4, 25)
    ys = 0.5 + 0.08 * np.sin(xs / 0.4 * 3 * np.pi) - 0.15 * xs
    points = np.array([_at(c, r, fx, fy) for fx, fy in zip(xs, ys, strict=True)], np.int32)
    cv2.polylines(image, [points], False, INK, t, cv2.LINE_AA)


def _neutral(image, c, r, t):
    _eyes(image, c, r)
    cv2.line(image, _at(c, r, -0.32, 0.45), _at(c, r, 0.32, 0.45), INK, t, cv2.LINE_AA)


EMOJI_FEATURES = {
    "angry": _angry,
    "disgust": _disgust,
    "fear": _fear,
    "happy": _happy,
    "sad": _sad,
    "surprise": _surprise,
    "neutral": _neutral,
}


def draw_emoji(image: np.ndarray, label: str, center: tuple[int, int], radius: int) -> np.ndarray:
    """An emoji for one of the 7 emotions, from circles, arcs and lines (OpenCV cannot draw colour emoji fonts)."""
    if label not in EMOJI_FEATURES:
        raise ValueError(f"no emoji for {label!r}; expected one of {', '.join(EMOJI_FEATURES)}")
    c, r = (int(center[0]), int(center[1])), max(int(radius), 4)
    t = max(1, round(r / 9))
    cv2.circle(image, c, r, EMOJI_SKIN[label], -1, cv2.LINE_AA)
    if label == "fear":
        cv2.ellipse(image, c, (r, r), 0, 180, 360, FEAR_BLUE, -1, cv2.LINE_AA)  # upper half
    cv2.circle(image, c, r, INK, max(1, t // 2), cv2.LINE_AA)
    EMOJI_FEATURES[label](image, c, r, t)
    return image


def emoji_place(frame_size: tuple[int, int], box: tuple[int, int, int, int]) -> tuple[tuple[int, int], int]:
    """Centre and radius of the emoji beside a box: right of it, or left when the right has no room."""
    fw, fh = frame_size
    x, y, w, h = (int(v) for v in box)
    r = max(10, min(w, h) // 3)
    gap = max(4, r // 4)
    right, left = x + w + gap + r, x - gap - r
    if right + r <= fw:
        cx = right
    elif left - r >= 0:
        cx = left
    else:  # no room either side: the side with more space, overlapping the box
        cx = right if fw - (x + w) >= x else left
    # Keep it on screen when it fits at all; otherwise OpenCV clips it.
    cx = min(max(cx, r), max(fw - r, r))
    cy = min(max(y + h // 2, r), max(fh - r, r))  # centred on the box, clear of a caption inside its top
    return (cx, cy), r


def draw_faces(
    image: np.ndarray, faces: list[FaceAnnotation], labels: tuple[str, ...], emoji: bool = False
) -> np.ndarray:
    """Boxes and captions for every face, score bars for the largest, optional emoji; grey input gets a BGR copy."""
    image = to_bgr(image)
    if not faces:
        return image
    largest = max(faces, key=lambda face: max(face.box[2], 0) * max(face.box[3], 0))
    if largest.scores:
        # Bars first, so the boxes of faces it could not avoid stay on top of it.
        draw_bars(image, largest, labels, [f.box for f in faces])
    for face in faces:
        draw_box(image, face)
        if emoji and face.label in EMOJI_FEATURES:
            center, radius = emoji_place((image.shape[1], image.shape[0]), face.box)
            draw_emoji(image, face.label, center, radius)
    return image
