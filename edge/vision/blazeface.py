"""BlazeFace (MediaPipe's face detector) on the TFLite interpreter: anchors, decoding, score threshold and
non-maximum suppression in plain numpy, behind the same detect / detect_in interface as the Haar detector."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge import paths
from edge.config import check_setting
from edge.quiet import notices_filtered
from edge.vision.detect import box_position, check_gray, region_crop
from edge.vision.geometry import Box
from edge.vision.model import load_interpreter_api


@dataclass(frozen=True)
class Variant:
    """One BlazeFace model: its file, square input side and SSD anchor layout (MediaPipe's graph options)."""

    filename: str
    input_size: int
    strides: tuple[int, ...]
    anchors_per_cell: int  # per stride layer: 2 (aspect 1 + interpolated scale) or 1


# From MediaPipe's face_detection_{short,full}_range_common.pbtxt and face_detection_back_desktop_live.pbtxt.
VARIANTS = {
    "short": Variant("face_detection_short_range.tflite", 128, (8, 16, 16, 16), 2),
    "back": Variant("face_detection_back.tflite", 256, (16, 32, 32, 32), 2),
    "full": Variant("face_detection_full_range.tflite", 192, (4,), 1),  # measured, not shipped (model_dir=...)
}
FULL_FRAME_VARIANT = "back"  # chosen by measurement: docs/benchmarks.md
WINDOW_VARIANT = "short"
RAW_SCORE_LIMIT = 80.0  # MediaPipe clips logits to +-100; 80 keeps exp() finite in float32
NMS_IOU = 0.3  # MediaPipe's min_suppression_threshold
# BlazeFace's box runs from the brows to the chin; the classifier's crop contract (FER2013, Haar-framed)
# wants Haar's framing, which is larger and sits higher. Measured on the photos in tests/edge/vision/test_blazeface.py.
HAAR_SCALE = 1.05
HAAR_SHIFT_Y = -0.11  # of the box height, negative = up
PAD_GREY = 127  # letterbox padding: mid-grey, which is 0.0 after scaling to [-1, 1]


def ssd_anchors(input_size: int, strides: tuple[int, ...], anchors_per_cell: int) -> np.ndarray:
    """Anchor centres (N, 2) in [0, 1], in the order the model's outputs use (MediaPipe's SsdAnchorsCalculator
    with fixed anchor size: consecutive layers with the same stride share one grid)."""
    centres = []
    layer = 0
    while layer < len(strides):
        same = layer
        while same < len(strides) and strides[same] == strides[layer]:
            same += 1
        cells = input_size // strides[layer]
        grid = (np.arange(cells, dtype=np.float32) + 0.5) / cells
        ys, xs = np.meshgrid(grid, grid, indexing="ij")
        per_cell = anchors_per_cell * (same - layer)
        centres.append(np.repeat(np.stack([xs.ravel(), ys.ravel()], axis=1), per_cell, axis=0))
        layer = same
    return np.concatenate(centres).astype(np.float32)


def decode_boxes(raw: np.ndarray, anchors: np.ndarray, input_size: int) -> np.ndarray:
    """Regressor rows (N, 4+) in input pixels -> (N, 4) boxes x0, y0, x1, y1 in [0, 1] of the input."""
    raw = np.asarray(raw, np.float32).reshape(len(anchors), -1)
    centre = raw[:, 0:2] / input_size + anchors
    half = raw[:, 2:4] / input_size / 2
    return np.concatenate([centre - half, centre + half], axis=1)


def sigmoid_scores(logits: np.ndarray) -> np.ndarray:
    """Classifier logits (any shape) -> probabilities (N,), clipped first as MediaPipe does."""
    clipped = np.clip(np.asarray(logits, np.float32).ravel(), -RAW_SCORE_LIMIT, RAW_SCORE_LIMIT)
    return 1.0 / (1.0 + np.exp(-clipped))


def iou_matrix(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one x0, y0, x1, y1 box with each row of boxes (M, 4)."""
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    area = lambda b: np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)  # noqa: E731
    union = area(box) + area(boxes) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, iou: float = NMS_IOU) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe's weighted non-maximum suppression: keep candidates scoring >= threshold; the best one and
    all it overlaps by more than `iou` become one box, their score-weighted mean, with the best score."""
    keep = scores >= threshold
    boxes, scores = boxes[keep], scores[keep]
    order = np.argsort(-scores, kind="stable")
    boxes, scores = boxes[order], scores[order]
    merged, merged_scores = [], []
    while len(boxes):
        overlap = iou_matrix(boxes[0], boxes) > iou
        overlap[0] = True
        weights = scores[overlap]
        merged.append((boxes[overlap] * weights[:, None]).sum(axis=0) / weights.sum())
        merged_scores.append(scores[0])
        boxes, scores = boxes[~overlap], scores[~overlap]
    return np.array(merged, np.float32).reshape(-1, 4), np.array(merged_scores, np.float32)


def letterbox(gray: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """A grey image scaled to fit a size x size square (top-left aligned, mid-grey padding), as the
    model's RGB float input in [-1, 1]; and the factor from square pixels back to image pixels."""
    height, width = gray.shape
    factor = max(height, width) / size
    new_w, new_h = max(1, round(width / factor)), max(1, round(height / factor))
    interpolation = cv2.INTER_AREA if factor > 1 else cv2.INTER_LINEAR
    square = np.full((size, size), PAD_GREY, np.uint8)
    square[:new_h, :new_w] = cv2.resize(gray, (new_w, new_h), interpolation=interpolation)
    tensor = square.astype(np.float32) * (1 / 127.5) - 1.0
    return np.repeat(tensor[None, :, :, None], 3, axis=3), factor


def tile_grid(width: int, height: int, tiles: int) -> list[tuple[int, int, int]]:
    """(x, y, side) of tiles x tiles overlapping squares covering a width x height image; none for tiles < 2.
    Each side is 2 / (tiles + 1) of the longer dimension, so neighbours overlap by half a tile."""
    if tiles < 2:
        return []
    side = min(round(2 * max(width, height) / (tiles + 1)), width, height)
    xs = np.linspace(0, width - side, tiles).round().astype(int)
    ys = np.linspace(0, height - side, tiles).round().astype(int)
    return [(int(x), int(y), side) for y in ys for x in xs]


def inner_edge_mask(boxes: np.ndarray, x: int, y: int, side: int, width: int, height: int, margin: int = 2) -> np.ndarray:
    """Which boxes (tile pixels) touch a tile edge that lies inside the image: likely a face cut in half."""
    cut = np.zeros(len(boxes), bool)
    if x > 0:
        cut |= boxes[:, 0] <= margin
    if y > 0:
        cut |= boxes[:, 1] <= margin
    if x + side < width:
        cut |= boxes[:, 2] >= side - margin
    if y + side < height:
        cut |= boxes[:, 3] >= side - margin
    return cut


def to_haar_framing(x0: float, y0: float, x1: float, y1: float) -> Box:
    """A BlazeFace box (pixels) as the Haar-style box the emotion crop expects."""
    w, h = (x1 - x0) * HAAR_SCALE, (y1 - y0) * HAAR_SCALE
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + HAAR_SHIFT_Y * (y1 - y0)
    return Box(round(cx - w / 2), round(cy - h / 2), round(w), round(h))


class BlazeFaceModel:
    """One BlazeFace TFLite model, loaded once; `candidates` runs it on a grey image."""

    def __init__(self, variant: str, score_threshold: float, num_threads: int = 1, model_dir: str | Path = paths.ASSETS):
        if variant not in VARIANTS:
            raise ValueError(f"unknown BlazeFace variant {variant!r}; choose one of {', '.join(VARIANTS)}")
        self.variant, self.score_threshold = VARIANTS[variant], float(score_threshold)
        self.path = Path(model_dir) / self.variant.filename
        if not self.path.is_file():
            raise FileNotFoundError(f"BlazeFace model {self.path} not found (it ships in edge/assets)")
        interpreter_class, _, self.interpreter_name = load_interpreter_api()
        try:
            with notices_filtered():
                self.interpreter = interpreter_class(model_path=str(self.path), num_threads=num_threads)
                self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise ValueError(f"{self.path}: not a loadable TFLite model ({error})") from None
        self._input = self.interpreter.get_input_details()[0]
        size = self.variant.input_size
        if list(self._input["shape"]) != [1, size, size, 3]:
            raise ValueError(f"{self.path}: input shape {list(self._input['shape'])}, expected [1, {size}, {size}, 3]")
        outputs = {int(d["shape"][-1]): d["index"] for d in self.interpreter.get_output_details()}
        if set(outputs) != {16, 1}:
            raise ValueError(f"{self.path}: outputs {sorted(outputs)} are not BlazeFace's regressors (16) and scores (1)")
        self._boxes_index, self._scores_index = outputs[16], outputs[1]
        self.anchors = ssd_anchors(size, self.variant.strides, self.variant.anchors_per_cell)

    def candidates(self, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One model run: (boxes (N, 4) x0, y0, x1, y1 in the image's pixels, scores (N,)) above the threshold,
        before non-maximum suppression."""
        tensor, factor = letterbox(gray, self.variant.input_size)
        self.interpreter.set_tensor(self._input["index"], tensor)
        self.interpreter.invoke()
        boxes = decode_boxes(self.interpreter.get_tensor(self._boxes_index)[0], self.anchors, self.variant.input_size)
        scores = sigmoid_scores(self.interpreter.get_tensor(self._scores_index))
        keep = scores >= self.score_threshold
        return boxes[keep] * (self.variant.input_size * factor), scores[keep]

    def detections(self, gray: np.ndarray, tiles: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """(boxes (N, 4) x0, y0, x1, y1 in image pixels, scores (N,)) after threshold and NMS. With tiles > 1
        the image is also searched in a tiles x tiles grid of overlapping squares, which finds faces too
        small for the model at the whole image's scale."""
        boxes, scores = self.candidates(gray)
        all_boxes, all_scores = [boxes], [scores]
        for x, y, side in tile_grid(gray.shape[1], gray.shape[0], tiles):
            boxes, scores = self.candidates(gray[y : y + side, x : x + side])
            cut = inner_edge_mask(boxes, x, y, side, gray.shape[1], gray.shape[0])
            all_boxes.append(boxes[~cut] + np.array([x, y, x, y], np.float32))
            all_scores.append(scores[~cut])
        return weighted_nms(np.concatenate(all_boxes), np.concatenate(all_scores), self.score_threshold)


class BlazeFaceDetector:
    """BlazeFace behind the Haar detector's interface: `detect` searches a whole grey frame with the
    "back" model (256 x 256, plus tiles for small faces), `detect_in` a window around a tracked face with
    the short-range model (128 x 128), where the face fills most of the input and one run is cheap."""

    window_growth = 1.6  # window around a tracked face for `detect_in`; smaller ones let false faces in on the hard clip

    def __init__(
        self,
        score_threshold: float = 0.6,
        min_size: int = 30,
        tiles: int = 2,
        num_threads: int = 1,
        model_dir: str | Path = paths.ASSETS,
        full_variant: str = FULL_FRAME_VARIANT,
        window_variant: str = WINDOW_VARIANT,
    ):
        for name, value in {"blazeface_score": score_threshold, "min_face": min_size, "blazeface_tiles": tiles}.items():
            check_setting(name, value)
        self.min_size, self.tiles = int(min_size), int(tiles)
        self.full = BlazeFaceModel(full_variant, score_threshold, num_threads, model_dir)
        self.window = self.full if window_variant == full_variant else BlazeFaceModel(window_variant, score_threshold, num_threads, model_dir)
        self.interpreter_name = self.full.interpreter_name

    def detect(self, gray: np.ndarray) -> list[Box]:
        """Faces in a grey (H, W) uint8 frame, in that frame's coordinates, sorted by position."""
        check_gray(gray)
        height, width = gray.shape
        boxes, _ = self.full.detections(gray, self.tiles)
        found = (to_haar_framing(*b).clip(width, height) for b in boxes)
        return sorted((b for b in found if b.area and max(b.w, b.h) >= self.min_size), key=box_position)

    def detect_in(self, gray: np.ndarray, region: Box, face_size: int | None = None) -> list[Box]:
        """Faces inside `region` only (re-detection around a tracked face), in frame coordinates; with
        `face_size` only faces from half to twice that side count."""
        check_gray(gray)
        height, width = gray.shape
        area, crop = region_crop(gray, region)
        if crop is None:
            return []
        low, high = (max(self.min_size, face_size / 2), face_size * 2) if face_size else (self.min_size, float("inf"))
        boxes, _ = self.window.detections(crop)
        found = (to_haar_framing(b[0] + area.x, b[1] + area.y, b[2] + area.x, b[3] + area.y) for b in boxes)
        return sorted((b.clip(width, height) for b in found if low <= b.w <= high), key=box_position)
