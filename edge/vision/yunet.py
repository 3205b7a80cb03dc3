"""YuNet (OpenCV Zoo's face detector, run by OpenCV's own cv2.FaceDetectorYN) behind the same detect /
detect_in interface as the Haar and BlazeFace detectors; its five landmarks kept for the face records."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge import paths
from edge.config import check_setting
from edge.vision.detect import box_position, check_gray, region_crop
from edge.vision.geometry import Box

MODEL_FILE = "face_detection_yunet_2023mar.onnx"
NMS_IOU = 0.3  # OpenCV Zoo's demo default
TOP_K = 200  # candidates kept before non-maximum suppression: a room holds far fewer faces
# YuNet's box runs from the brows to the chin and is taller than wide; the classifier's crop contract wants
# Haar's square framing. Measured on the bundled clips' truth (Haar boxes): Haar's side is about 1.07 of
# YuNet's width and 0.86 of its height, its centre 0.05 of YuNet's height higher.
HAAR_SCALE_W, HAAR_SCALE_H = 1.07, 0.86
HAAR_SHIFT_Y = -0.05
# A tracked face's window is scaled to fit a square this many pixels wide (one fixed input size, so OpenCV
# never re-plans the network between windows): with the window twice the face, the face is about 64 px. On the
# hard clip (full-resolution searches) 64 found 79% of faces, 96 83% (following false faces too), 128 93%.
WINDOW_INPUT = 128

Landmarks = tuple[tuple[int, int], ...]


def to_haar_framing(x: float, y: float, w: float, h: float) -> Box:
    """A YuNet box (pixels) as the square, Haar-style box the emotion crop expects."""
    side = (w * HAAR_SCALE_W + h * HAAR_SCALE_H) / 2
    cx, cy = x + w / 2, y + h / 2 + HAAR_SHIFT_Y * h
    return Box(round(cx - side / 2), round(cy - side / 2), round(side), round(side))


def load_yunet(path: Path, score_threshold: float, size: tuple[int, int]):
    try:
        return cv2.FaceDetectorYN.create(str(path), "", size, score_threshold, NMS_IOU, TOP_K)
    except cv2.error as error:
        raise ValueError(f"{path}: not a loadable YuNet ONNX model ({str(error).strip().splitlines()[-1]})") from None


class YuNetDetector:
    """`detect` searches a whole grey frame, shrunk to `detect_width`; `detect_in` a window around a
    tracked face, scaled to a small fixed square (WINDOW_INPUT), or a searched area at the frame's ratio.
    With `keep_landmarks`, the five landmarks (frame pixels) of every box returned wait in `take_landmarks`."""

    window_growth = 2.0  # window around a tracked face for `detect_in`: on the hard clip 1.5 let 30 false faces in, 2.0 none to 2

    def __init__(self, score_threshold: float = 0.7, min_size: int = 30, detect_width: int | None = 320,
                 model_dir: str | Path = paths.ASSETS, keep_landmarks: bool = False):
        for name, value in {"yunet_score": score_threshold, "min_face": min_size, "detect_width": detect_width or 0}.items():
            check_setting(name, value)
        self.score_threshold, self.min_size, self.detect_width = float(score_threshold), int(min_size), detect_width
        self.path = Path(model_dir) / MODEL_FILE
        if not self.path.is_file():
            raise FileNotFoundError(f"YuNet model {self.path} not found (it ships in edge/assets)")
        self._frame_net = load_yunet(self.path, self.score_threshold, (320, 240))
        self._window_net = load_yunet(self.path, self.score_threshold, (WINDOW_INPUT, WINDOW_INPUT))
        self._frame_size = (320, 240)
        self.keep_landmarks = keep_landmarks
        self._landmarks: dict[Box, Landmarks] = {}

    def ratio(self, frame_width: int) -> float:
        """How much frames this wide are shrunk before a whole-frame search (1.0 = not at all)."""
        if not self.detect_width or frame_width <= self.detect_width:
            return 1.0
        return self.detect_width / frame_width

    def detect(self, gray: np.ndarray) -> list[Box]:
        """Faces in a grey (H, W) uint8 frame, in that frame's coordinates, sorted by position."""
        check_gray(gray)
        return self._search(gray, Box(0, 0, gray.shape[1], gray.shape[0]), self.ratio(gray.shape[1]))

    def detect_in(self, gray: np.ndarray, region: Box, face_size: int | None = None) -> list[Box]:
        """Faces inside `region` only, in frame coordinates. With `face_size` (a tracked face's side) the
        window is scaled into the fixed window input and only faces from half to twice that side count."""
        check_gray(gray)
        if not face_size:
            return self._search(gray, region, self.ratio(gray.shape[1]))
        area, crop = region_crop(gray, region)
        if crop is None:
            return []
        ratio = WINDOW_INPUT / max(crop.shape)  # small faces are enlarged: YuNet misses a face that fills its whole input
        square = np.zeros((WINDOW_INPUT, WINDOW_INPUT), np.uint8)  # black padding right and below: no face there
        small = resized(crop, ratio)
        square[: small.shape[0], : small.shape[1]] = small
        found = self._faces(self._window_net, square, area, ratio, gray.shape)
        low, high = face_size / 2, face_size * 2  # min_size is for new faces: a tracked one may shrink a little below it
        return self._keep([(box, points) for box, points in found if low <= box.w <= high])

    def _search(self, gray: np.ndarray, region: Box, ratio: float) -> list[Box]:
        area, crop = region_crop(gray, region)
        if crop is None:
            return []
        small = resized(crop, ratio)
        size = (small.shape[1], small.shape[0])
        if size != self._frame_size:  # the same frame size every time keeps OpenCV's plan
            self._frame_net.setInputSize(size)
            self._frame_size = size
        found = self._faces(self._frame_net, small, area, ratio, gray.shape)
        return self._keep([(box, points) for box, points in found if box.w >= self.min_size])

    def _faces(self, net, image: np.ndarray, area: Box, ratio: float, shape: tuple[int, int]) -> list[tuple[Box, Landmarks]]:
        """Run the net on a grey image that is `area` of the frame shrunk by `ratio`: boxes in frame pixels."""
        _, faces = net.detect(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR))
        if faces is None:
            return []
        height, width = shape
        offsets = np.array([area.x, area.y, 0, 0, *[area.x, area.y] * 5], np.float32)  # w and h stay
        found = []
        for row in faces:
            values = row[:14] / ratio + offsets
            box = to_haar_framing(*values[:4]).clip(width, height)
            if box.area:
                found.append((box, tuple((round(float(x)), round(float(y))) for x, y in values[4:14].reshape(5, 2))))
        return found

    def _keep(self, found: list[tuple[Box, Landmarks]]) -> list[Box]:
        if self.keep_landmarks:
            self._landmarks.update(found)
        return sorted((box for box, _ in found), key=box_position)

    def take_landmarks(self) -> dict[Box, Landmarks]:
        """The landmarks of the boxes returned since the last call, by box (then forgotten)."""
        landmarks, self._landmarks = self._landmarks, {}
        return landmarks


def resized(image: np.ndarray, ratio: float) -> np.ndarray:
    if ratio == 1.0:
        return image
    size = (max(1, round(image.shape[1] * ratio)), max(1, round(image.shape[0] * ratio)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if ratio < 1 else cv2.INTER_LINEAR)
