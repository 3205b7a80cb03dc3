"""Haar-cascade face detection: find the cascade file, detect faces in a grey frame or a region of it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from edge import paths
from edge.config import check_setting
from edge.paths import opencv_name
from edge.vision.geometry import Box

DEFAULT_CASCADE = "haarcascade_frontalface_default.xml"
# Distribution packages (apt's opencv-data) put the cascades here when cv2.data is absent.
SYSTEM_CASCADE_DIRS = (Path("/usr/share/opencv4/haarcascades"), Path("/usr/share/opencv/haarcascades"))


def find_cascade(name: str = DEFAULT_CASCADE, explicit: str | Path | None = None) -> Path:
    """The cascade file: `explicit` if given, else OpenCV's own copy, the system's, or the one shipped here."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise FileNotFoundError(f"cascade file {path} not found (--cascade)")
        return path
    dirs: list[Path] = []
    data = getattr(cv2, "data", None)  # pip wheels have cv2.data; distro builds usually don't
    if data is not None and getattr(data, "haarcascades", None):
        dirs.append(Path(data.haarcascades))
    dirs.extend(SYSTEM_CASCADE_DIRS)
    dirs.append(paths.ASSETS)
    for folder in dirs:
        if (folder / name).is_file():
            return folder / name
    looked = ", ".join(str(folder / name) for folder in dirs)
    raise FileNotFoundError(f"cannot find Haar cascade {name}; looked in: {looked}; pass --cascade PATH")


# Tracked faces are re-detected at about this side, from 0.8x to 1.25x of it (Haar's window is 24 px):
# on the sample clip 40 or 44 px lost faces and cost more in searches to find them again; 48 px did not.
WINDOW_FACE_SIDE = 48
WINDOW_SCALES = (0.8, 1.25)


class FaceDetector:
    """A Haar cascade loaded once; `detect` finds faces in a grey frame, `detect_in` inside one region."""

    # Window around a tracked face (its predicted box times this) for `detect_in`. Measured on both
    # clips with the motion gate: 1.3 found as many faces as 1.6, for about two thirds of the cost.
    window_growth = 1.3

    def __init__(
        self,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_size: int = 30,
        detect_width: int | None = None,
        cascade_path: str | Path | None = None,
    ):
        settings = {"scale_factor": scale_factor, "min_neighbors": min_neighbors, "min_face": min_size, "detect_width": detect_width or 0}
        for name, value in settings.items():
            check_setting(name, value)
        self.scale_factor = float(scale_factor)
        self.min_neighbors = int(min_neighbors)
        self.min_size = int(min_size)
        self.detect_width = detect_width
        self.cascade_path = find_cascade(explicit=cascade_path)
        try:
            self._cascade = cv2.CascadeClassifier(opencv_name(self.cascade_path, "--cascade"))
            empty = self._cascade.empty()
        except (cv2.error, SystemError):  # a non-XML file makes the constructor raise, not return empty
            empty = True
        if empty:
            raise ValueError(f"cannot load Haar cascade {self.cascade_path} (not a cascade XML file?)")

    def ratio(self, frame_width: int) -> float:
        """How much frames this wide are shrunk before detection (1.0 = not at all)."""
        if self.detect_width is None or frame_width <= self.detect_width:
            return 1.0
        return self.detect_width / frame_width

    # A whole-frame search can leave out the faces already tracked (their windows look for them): the cascade
    # spends most of its time on face-like pixels, so a frame with them painted over costs about 40% less.
    skips_tracked = True

    def detect(self, gray: np.ndarray, skip: Sequence[Box] = ()) -> list[Box]:
        """Faces in a grey (H, W) uint8 frame, in that frame's coordinates, sorted by position. `skip`: regions
        not to search (painted flat before the search; nothing found mostly inside one is returned)."""
        check_gray(gray)
        height, width = gray.shape
        image = painted_over(gray, skip) if skip else gray
        boxes = [b.clip(width, height) for b in self._detect_scaled(image, self.ratio(width))]
        boxes = [b for b in boxes if not any(2 * b.intersection(region) > b.area for region in skip)]
        return sorted(boxes, key=box_position)

    def detect_in(self, gray: np.ndarray, region: Box, face_size: int | None = None) -> list[Box]:
        """Faces inside `region` only (cheap re-detection around a tracked face), in frame coordinates.

        Without `face_size` the crop is shrunk by the same ratio as a full-frame `detect`. With it (the
        tracked face's side), the crop is scaled so that face is about WINDOW_FACE_SIDE pixels (never
        enlarged) and only faces of WINDOW_SCALES times its side are searched: the cost no longer grows
        with the face, and a face too small for the shrunk full frame is still followed at full size.
        """
        check_gray(gray)
        height, width = gray.shape
        area, crop = region_crop(gray, region)
        if crop is None:
            return []
        if face_size:
            ratio, sizes = min(1.0, WINDOW_FACE_SIDE / face_size), (face_size * WINDOW_SCALES[0], face_size * WINDOW_SCALES[1])
        else:
            ratio, sizes = self.ratio(width), None
        boxes = self._detect_scaled(crop, ratio, sizes)
        return sorted((Box(b.x + area.x, b.y + area.y, b.w, b.h).clip(width, height) for b in boxes), key=box_position)

    def _detect_scaled(self, image: np.ndarray, ratio: float, sizes: tuple[float, float] | None = None) -> list[Box]:
        if ratio < 1.0:
            size = (max(1, round(image.shape[1] * ratio)), max(1, round(image.shape[0] * ratio)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        min_side = max(1, round(max(self.min_size, sizes[0] if sizes else 0) * ratio))
        max_side = round(sizes[1] * ratio) if sizes else 0  # 0: no upper bound
        if image.shape[0] < min_side or image.shape[1] < min_side:
            return []
        found = self._cascade.detectMultiScale(
            image,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(min_side, min_side),
            maxSize=(max_side, max_side),
        )
        boxes = [Box(int(x), int(y), int(w), int(h)) for x, y, w, h in found]
        return [b.scale(1.0 / ratio) for b in boxes] if ratio < 1.0 else boxes


def painted_over(gray: np.ndarray, regions: Sequence[Box]) -> np.ndarray:
    """A copy of the frame with each region (clipped) filled with its own mean grey: no face is found there."""
    image = gray.copy()
    height, width = gray.shape
    for region in regions:
        x, y, w, h = region.clip(width, height)
        if w and h:
            patch = image[y : y + h, x : x + w]
            patch[:] = int(patch.mean())
    return image


def region_crop(gray: np.ndarray, region: Box) -> tuple[Box, np.ndarray | None]:
    """The part of `region` inside the frame and its pixels (None when nothing of it is inside)."""
    area = region.clip(gray.shape[1], gray.shape[0])
    if area.w == 0 or area.h == 0:
        return area, None
    return area, gray[area.y : area.y + area.h, area.x : area.x + area.w]


def check_gray(gray: np.ndarray) -> None:
    if not isinstance(gray, np.ndarray) or gray.ndim != 2 or gray.dtype != np.uint8:
        shape = getattr(gray, "shape", None)
        dtype = getattr(gray, "dtype", type(gray).__name__)
        raise ValueError(f"face detection needs a grey (H, W) uint8 image, got shape {shape} dtype {dtype}")


def box_position(box: Box) -> tuple[int, int]:
    return box.x, box.y
