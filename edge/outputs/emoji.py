"""Emoji for the 7 emotions, drawn from circles, arcs and lines (OpenCV cannot draw colour emoji fonts)."""

from __future__ import annotations

import cv2
import numpy as np

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
