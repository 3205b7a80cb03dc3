"""The preprocessing contract: what the model was trained on, imported by train, convert and edge.

Kept free of TensorFlow so the runtime on the Pi can import it.
"""

from __future__ import annotations

import numpy as np

# Canonical FER2013 label order (the `emotion` column of fer2013.csv).
LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(LABELS)
INPUT_SIZE = 48
INPUT_SHAPE = (INPUT_SIZE, INPUT_SIZE, 1)
# Pixel scaling: uint8 grey level p -> p / 127.5 - 1, so inputs lie in [-1, 1].
PIXEL_SCALE = 1.0 / 127.5
PIXEL_OFFSET = -1.0
# Average each prediction with that of the horizontally mirrored face (test-time augmentation).
# Reports and the runtime both do it by default, so reported accuracy is what the runtime gets.
FLIP_TTA = True
# Also average over the face shifted this many pixels left, right, up and down, borders mirrored (0 = off);
# with the mirrors, the classic ten views. Off unless a model's sidecar says its accuracy was measured so.
SHIFT_TTA = 0
SHIFT_TTA_MAX = 8  # pixels: the bound of every shift_tta (flags, settings, sidecars)
# Class-prior correction strength tau: 0 = the scores as trained (the training set's class mix is built in),
# 1 = fully balanced (each score divided by its class's training share). A model's sidecar records its own.
BALANCE = 0.0
BALANCE_RANGE = (0.0, 1.0)
CLASS_OFFSET_MAX = 8.0  # the largest per-class log-score offset a sidecar may hold (convert fits at most about 7)


def label_index(name: str) -> int:
    """Canonical index of an emotion name (case-insensitive); ValueError names unknown ones."""
    try:
        return LABELS.index(name.strip().lower())
    except ValueError:
        raise ValueError(f"unknown emotion {name!r}; expected one of {', '.join(LABELS)}") from None


def crop_face(gray: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Cut box (x, y, w, h) out of a grayscale frame and resize it to the model's input size."""
    import cv2

    x, y, w, h = (int(v) for v in box)
    height, width = gray.shape[:2]
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + w, width), min(y + h, height)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"face box {box} lies outside the {width}x{height} frame")
    face = gray[y0:y1, x0:x1]
    interpolation = cv2.INTER_AREA if face.shape[0] > INPUT_SIZE else cv2.INTER_LINEAR
    return cv2.resize(face, (INPUT_SIZE, INPUT_SIZE), interpolation=interpolation)


def scale_pixels(faces: np.ndarray) -> np.ndarray:
    """uint8 faces (N, 48, 48) or (N, 48, 48, 1) -> float32 model input (N, 48, 48, 1)."""
    faces = np.asarray(faces)
    if faces.dtype != np.uint8:
        raise ValueError(f"faces must be uint8 grey levels, got {faces.dtype}")
    if faces.ndim == 3:
        faces = faces[..., np.newaxis]
    if faces.shape[1:] != INPUT_SHAPE:
        raise ValueError(f"faces must be (N, {INPUT_SIZE}, {INPUT_SIZE}[, 1]), got {faces.shape}")
    return faces.astype(np.float32) * PIXEL_SCALE + PIXEL_OFFSET


def with_mirrors(faces: np.ndarray) -> np.ndarray:
    """Stack faces (N, H, W[, C]) with their horizontal mirrors: (2N, ...), originals first."""
    return np.concatenate([faces, faces[:, :, ::-1]], axis=0)


def average_mirrors(probabilities: np.ndarray) -> np.ndarray:
    """Undo `with_mirrors`: average each face's scores with its mirror's."""
    half = probabilities.shape[0] // 2
    return (probabilities[:half] + probabilities[half:]) / 2.0


def shift_offsets(pixels: int) -> list[tuple[int, int]]:
    """(dx, dy) of each view `with_shifts` makes: the face itself, then right, left, down and up."""
    if not pixels:
        return [(0, 0)]
    return [(0, 0), (pixels, 0), (-pixels, 0), (0, pixels), (0, -pixels)]


def with_shifts(faces: np.ndarray, pixels: int) -> np.ndarray:
    """Stack faces (N, H, W[, C]) with copies shifted by `pixels` (borders mirrored): (5N, ...), the
    faces themselves first; unchanged when `pixels` is 0."""
    if not pixels:
        return faces
    height, width = faces.shape[1:3]
    padding = [(0, 0), (pixels, pixels), (pixels, pixels)] + [(0, 0)] * (faces.ndim - 3)
    padded = np.pad(faces, padding, mode="symmetric")
    return np.concatenate(
        [padded[:, pixels - dy : pixels - dy + height, pixels - dx : pixels - dx + width] for dx, dy in shift_offsets(pixels)]
    )


def average_shifts(probabilities: np.ndarray, pixels: int) -> np.ndarray:
    """Undo `with_shifts`: average each face's scores over its shifted copies (unchanged when 0)."""
    if not pixels:
        return probabilities
    views = len(shift_offsets(pixels))
    return probabilities.reshape(views, -1, probabilities.shape[-1]).mean(axis=0)


def balance_scores(probabilities: np.ndarray, prior, tau: float, offsets=None) -> np.ndarray:
    """Class-prior correction: softmax(log p - tau * log prior + offsets), i.e. p / prior^tau renormalised, so a
    class that was rare in training is not out-voted by its rarity alone. `offsets` (per-class log-score
    offsets that convert --class-offsets fitted at this tau; None = none) move each class's share further.
    Rows still sum to 1; tau 0 changes nothing."""
    if not tau:
        return probabilities
    log_weights = -float(tau) * np.log(np.asarray(prior, np.float64))
    if offsets is not None:
        log_weights = log_weights + np.asarray(offsets, np.float64)
    scaled = np.asarray(probabilities, np.float64) * np.exp(log_weights - log_weights.max())
    return (scaled / np.maximum(scaled.sum(axis=-1, keepdims=True), 1e-30)).astype(np.float32)


def describe() -> dict:
    """The contract as plain data, written into every model's sidecar JSON."""
    return {
        "labels": list(LABELS),
        "input_shape": list(INPUT_SHAPE),
        "color": "grayscale",
        "pixel_scale": PIXEL_SCALE,
        "pixel_offset": PIXEL_OFFSET,
        "resize": "cv2.INTER_AREA when shrinking, else cv2.INTER_LINEAR",
        "flip_tta": FLIP_TTA,
        "shift_tta": SHIFT_TTA,
        "balance": BALANCE,
    }
