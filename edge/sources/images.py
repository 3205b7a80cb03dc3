"""Still images: which files a folder holds, and each image's faces found on its own.

A photo is not a video frame: detection runs on the whole image at its own resolution, and nothing
(tracks, smoothing, search windows) is carried from one image to the next.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.config import RunConfig
from edge.paths import printable

# Every still format OpenCV decodes; matched in any letter case.
STILL_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm")


def is_still(path: str | Path) -> bool:
    """An image file or a folder (of images): run as stills, not as a video."""
    path = Path(path)
    return path.is_dir() or (path.is_file() and path.suffix.lower() in STILL_SUFFIXES)


def list_stills(path: str | Path) -> tuple[Path, list[Path]]:
    """(root, images): one image, or every image below a folder, recursively, in a stable order
    (sorted by the path relative to the folder). Names are relative to `root` in records."""
    path = Path(path)
    if path.is_file():
        return path.parent, [path]
    if not path.is_dir():
        raise FileNotFoundError(f"--source {path}: no such image or folder")
    images = sorted(
        (p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in STILL_SUFFIXES),
        key=lambda p: p.relative_to(path).as_posix(),
    )
    if not images:
        raise ValueError(f"--source {path}: the folder holds no images ({', '.join(s[1:] for s in STILL_SUFFIXES)})")
    return path, images


DEFAULT_MAX_IMAGE_PIXELS = RunConfig.__dataclass_fields__["max_image_pixels"].default  # defined (and explained) there
JPEG_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REDUCED_DECODES = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4), (2, cv2.IMREAD_REDUCED_COLOR_2))


@dataclass(frozen=True)
class Still:
    """One decoded image: grey (what detection and classification see) and colour from one decode."""

    gray: np.ndarray
    color: np.ndarray  # BGR
    original_size: tuple[int, int]  # (width, height) in the file, before any scaling down

    @property
    def size(self) -> tuple[int, int]:
        return self.gray.shape[1], self.gray.shape[0]

    @property
    def scaled(self) -> bool:
        return self.size != self.original_size


def still_name(path: Path, root: Path) -> str:
    """The image's name in records: relative to `root`; bytes that are not UTF-8 (a name from another
    system) are written as \\xNN, so the record stays valid UTF-8 JSON and still says which file."""
    return printable(path.relative_to(root).as_posix())


def _jpeg_layout(data: bytes) -> tuple[tuple[int, int] | None, int | None]:
    """((width, height), where the scan data starts) from a JPEG's marker segments; None where not found.
    The segments are walked by their lengths, so an EXIF thumbnail's markers are skipped."""
    size, at = None, 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return size, None  # not a marker where one must be: damaged
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            at += 2
            continue
        length = int.from_bytes(data[at + 2:at + 4], "big")
        if marker in JPEG_SOF_MARKERS and at + 9 <= len(data):
            size = (int.from_bytes(data[at + 7:at + 9], "big"), int.from_bytes(data[at + 5:at + 7], "big"))
        if marker == 0xDA:  # start of scan: the compressed data follows the header
            return size, at + 2 + length
        at += 2 + length
    return size, None


def _header_size(data: bytes, path: Path) -> tuple[int, int] | None:
    """(width, height) read from a JPEG's or PNG's header without decoding it; None for other formats.
    ValueError for a JPEG cut short (no end-of-image marker after its scan data)."""
    if data[:2] == b"\xff\xd8":
        size, scan = _jpeg_layout(data)
        if scan is None or data.find(b"\xff\xd9", scan) < 0:
            raise ValueError(f"{printable(path)}: truncated or damaged JPEG (it ends before its end-of-image marker)")
        return size
    if data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return None


def _decode(data: bytes, path: Path, header: tuple[int, int] | None, max_pixels: int) -> np.ndarray:
    """Colour decode; a JPEG far over max_pixels is decoded at 1/2, 1/4 or 1/8 scale by the JPEG
    library itself (the full-size picture is never in memory)."""
    flags = cv2.IMREAD_COLOR
    if header is not None and data[:2] == b"\xff\xd8":
        width, height = header
        for factor, reduced in REDUCED_DECODES:  # the smallest decode still at least max_pixels
            if (width // factor) * (height // factor) >= max_pixels:
                flags = reduced
                break
        if (width // 8) * (height // 8) > 4 * max_pixels:
            raise ValueError(f"{printable(path)}: {width}x{height} pixels is too large to read even at 1/8 scale (--max-image-pixels {max_pixels})")
    elif header is not None and header[0] * header[1] > 16 * max_pixels:
        raise ValueError(f"{printable(path)}: {header[0]}x{header[1]} pixels is too large to read (--max-image-pixels {max_pixels})")
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error as error:
        raise ValueError(f"{printable(path)}: cannot decode ({error.msg.strip() if hasattr(error, 'msg') else error})") from None
    if image is None:
        raise ValueError(f"{printable(path)}: not an image OpenCV can decode (corrupt, truncated or unreadable)")
    return image


def read_still(path: Path, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> Still:
    """The image decoded once, in colour, and its grey from that (the same whether or not colour is
    wanted later, and as video frames are made); scaled down to at most `max_pixels` pixels (0 = never),
    keeping its proportions. The file is read as bytes, so any name the OS gives works (OpenCV's own
    file functions take UTF-8 only, and crash on other names). ValueError names a file that cannot be read."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise ValueError(f"{printable(path)}: cannot read it ({error.strerror or error})") from None
    header = _header_size(data, path)
    image = _decode(data, path, header if max_pixels else None, max_pixels)
    del data
    height, width = image.shape[:2]
    original = header or (width, height)
    if header is not None and (header[0] > header[1]) != (width > height) and header[0] != header[1]:
        original = (header[1], header[0])  # turned upright by its EXIF orientation
    pixels = original[0] * original[1]
    if max_pixels and pixels > max_pixels:
        scale = (max_pixels / pixels) ** 0.5
        target = (max(1, int(original[0] * scale)), max(1, int(original[1] * scale)))
        if target != (width, height):
            image = cv2.resize(image, target, interpolation=cv2.INTER_AREA)
    return Still(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), image, original)
