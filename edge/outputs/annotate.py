"""Drawing for the optional outputs (preview, annotated video or image, live view): boxes, captions,
score panels, emoji.

Everything draws on a BGR uint8 image in place with OpenCV primitives and returns it. Where each overlay
goes is decided first for all faces of the frame at once (`edge.outputs.layout.plan`), so nothing is
stamped over another face or another overlay; OpenCV clips whatever falls outside the frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge.outputs.emoji import EMOJI_FEATURES, draw_emoji
from edge.outputs.layout import Placed, Wants, plan

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
PANEL_ALPHA = 0.6
MARGIN = 8
CAPTION_PAD = 3


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


def blend_rect(image: np.ndarray, rect: tuple[int, int, int, int], colour, alpha: float) -> None:
    """Darken/tint a rectangle (clipped to the frame) so text on it stays readable over any scene."""
    x, y, w, h = rect
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + w, image.shape[1]), min(y + h, image.shape[0])
    if x1 <= x0 or y1 <= y0:
        return
    roi = image[y0:y1, x0:x1]
    image[y0:y1, x0:x1] = cv2.addWeighted(roi, 1 - alpha, np.full_like(roi, colour), alpha, 0)


@dataclass(frozen=True)
class PanelStyle:
    """One size of the score panel: font scale and the lengths that follow from it."""

    scale: float
    thick: int
    name_w: int
    text_h: int
    pct_w: int
    row_h: int
    bar_w: int
    pad: int

    @classmethod
    def at(cls, scale: float, labels: tuple[str, ...]) -> PanelStyle:
        thick = max(1, round(scale * 1.2))
        (name_w, text_h), _ = cv2.getTextSize(max(labels, key=len), FONT, scale, thick)
        (pct_w, _), _ = cv2.getTextSize("100%", FONT, scale, thick)
        return cls(scale, thick, name_w, text_h, pct_w, round(text_h * 1.7), round(110 * scale), round(5 * scale) + 2)

    def size(self, rows: int) -> tuple[int, int]:
        """(width, height) of a panel with a header row and `rows` score rows."""
        return self.name_w + self.bar_w + self.pct_w + 4 * self.pad, self.row_h * (rows + 1) + 2 * self.pad


def panel_styles(image: np.ndarray, labels: tuple[str, ...]) -> list[PanelStyle]:
    """The panel's sizes, best first: a little smaller than the captions, then compact."""
    caption_scale = font_scale(image)
    return [PanelStyle.at(max(0.35, caption_scale * f), labels) for f in (0.8, 0.6)]


def draw_panel(image: np.ndarray, origin: tuple[int, int], face: FaceAnnotation, labels: tuple[str, ...], style: PanelStyle) -> None:
    """A face's score bars under a header in its box's colour naming it (#id), so nobody wonders whose they are."""
    x, y = origin
    width, height = style.size(len(labels))
    colour = colour_for(face.label)
    blend_rect(image, (x, y, width, height), (0, 0, 0), PANEL_ALPHA)
    cv2.rectangle(image, (x, y), (x + width - 1, y + style.row_h + style.pad - 1), colour, -1)
    title = f"#{face.track_id} scores" if face.track_id is not None else "scores"
    baseline = y + style.pad + (style.row_h + style.text_h) // 2
    cv2.putText(image, title, (x + style.pad, baseline), FONT, style.scale, text_colour(colour), style.thick, cv2.LINE_AA)
    for i, (name, score) in enumerate(zip(labels, face.scores, strict=True)):
        top = y + style.pad + (i + 1) * style.row_h
        baseline = top + (style.row_h + style.text_h) // 2
        bar_x = x + 2 * style.pad + style.name_w
        cv2.putText(image, name, (x + style.pad, baseline), FONT, style.scale, (255, 255, 255), style.thick, cv2.LINE_AA)
        bar_top, bar_bottom = top + style.row_h // 5, top + style.row_h - style.row_h // 5
        filled = round(style.bar_w * min(max(float(score), 0.0), 1.0))
        cv2.rectangle(image, (bar_x, bar_top), (bar_x + style.bar_w, bar_bottom), (90, 90, 90), -1)
        if filled > 0:
            cv2.rectangle(image, (bar_x, bar_top), (bar_x + filled, bar_bottom), colour_for(name), -1)
        pct_at = (bar_x + style.bar_w + style.pad, baseline)
        cv2.putText(image, f"{float(score):.0%}", pct_at, FONT, style.scale, (255, 255, 255), style.thick, cv2.LINE_AA)


def caption_size(image: np.ndarray, face: FaceAnnotation) -> tuple[int, int]:
    scale = font_scale(image)
    (tw, th), base = cv2.getTextSize(caption(face), FONT, scale, thickness_for(scale))
    return tw + 2 * CAPTION_PAD, th + base + 2 * CAPTION_PAD


def draw_caption(image: np.ndarray, face: FaceAnnotation, origin: tuple[int, int]) -> None:
    """The filled caption (#id label score) at its planned place."""
    scale = font_scale(image)
    thick = thickness_for(scale)
    colour = colour_for(face.label)
    (tw, th), base = cv2.getTextSize(caption(face), FONT, scale, thick)
    x, y = origin
    cv2.rectangle(image, (x, y), (x + tw + 2 * CAPTION_PAD - 1, y + th + base + 2 * CAPTION_PAD - 1), colour, -1)
    cv2.putText(image, caption(face), (x + CAPTION_PAD, y + CAPTION_PAD + th), FONT, scale, text_colour(colour), thick, cv2.LINE_AA)


def draw_box(image: np.ndarray, face: FaceAnnotation) -> np.ndarray:
    """The face box, in its label's colour."""
    x, y, w, h = (int(v) for v in face.box)
    thick = thickness_for(font_scale(image))
    cv2.rectangle(image, (x, y), (x + w, y + h), colour_for(face.label), thick + 1, cv2.LINE_AA)
    return image


def emoji_diameters(box: tuple[int, int, int, int]) -> tuple[int, ...]:
    """Emoji sizes to try, best first: a third of the face's shorter side as radius, then smaller."""
    r = max(10, min(int(box[2]), int(box[3])) // 3)
    return tuple(2 * max(8, round(r * f)) for f in (1.0, 0.75, 0.5))


def layout_faces(
    image: np.ndarray, faces: list[FaceAnnotation], labels: tuple[str, ...], emoji: bool = False
) -> tuple[list[Placed], dict[int, PanelStyle]]:
    """Where every caption, emoji and score panel of this frame goes, and each panel's size."""
    styles = panel_styles(image, labels)
    sizes = {style.size(len(labels)): style for style in styles}
    wants = [
        Wants(
            caption=caption_size(image, face),
            emoji=emoji_diameters(face.box) if emoji and face.label in EMOJI_FEATURES else (),
            panel=tuple(sizes) if face.scores else (),
        )
        for face in faces
    ]
    placed = plan((image.shape[1], image.shape[0]), [face.box for face in faces], wants, gap=max(4, MARGIN // 2))
    return placed, {item.face: sizes[item.rect[2:]] for item in placed if item.kind == "panel"}


def draw_faces(
    image: np.ndarray, faces: list[FaceAnnotation], labels: tuple[str, ...], emoji: bool = False
) -> np.ndarray:
    """Boxes, captions and score panels for every face, optional emoji, each placed clear of the others;
    grey input gets a BGR copy."""
    image = to_bgr(image)
    for face in faces:
        if face.scores and len(face.scores) != len(labels):
            raise ValueError(f"face has {len(face.scores)} scores but there are {len(labels)} labels")
    if not faces:
        return image
    placed, styles = layout_faces(image, faces, labels, emoji)
    for face in faces:
        draw_box(image, face)
    for item in placed:
        face, (x, y, w, h) = faces[item.face], item.rect
        if item.kind == "panel":
            draw_panel(image, (x, y), face, labels, styles[item.face])
        elif item.kind == "emoji":
            draw_emoji(image, face.label, (x + w // 2, y + h // 2), w // 2)
    for item in placed:  # captions last: a forced one stays readable over what it could not avoid
        if item.kind == "caption":
            draw_caption(image, faces[item.face], item.rect[:2])
    return image
