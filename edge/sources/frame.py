"""The frame a source delivers, the protocol every source follows, and what the sources share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np


class SourceError(RuntimeError):
    """A live source failed (camera missing, unplugged, or returned no frame)."""


@dataclass(frozen=True)
class Frame:
    index: int
    timestamp: float  # seconds: media time for files, time.monotonic() for live sources
    gray: np.ndarray  # (H, W) uint8: what detection and classification see
    color: np.ndarray | None  # BGR (H, W, 3) for annotation, or None
    name: str | None = None
    after_gap: bool = False  # the first frame after a camera outage (tracks from before it are over)


class Source(Protocol):
    live: bool
    fps: float | None
    description: str
    scale_to_main: float

    def open(self) -> None: ...
    def read(self) -> Frame | None: ...
    def close(self) -> None: ...


class SourceBase:
    """Context-manager plumbing and defaults shared by every source."""

    live = False
    fps: float | None = None
    description = "source"
    # Boxes found in `gray` times this = boxes in `color` (only picamera2 differs from 1).
    scale_to_main = 1.0

    def open(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def check_positive(value: float, flag: str) -> None:
    if value <= 0:
        raise ValueError(f"{flag} must be positive, got {value}")


def split_colour(bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A decoded BGR (or already grey) image -> (gray, color)."""
    if bgr.ndim == 2:
        return bgr, cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), bgr


def quietly(action: Callable[[], object]) -> None:
    """Run a cleanup step whose failure must not hide the error being reported or stop shutdown."""
    try:
        action()
    except Exception:  # cleanup of a device that may already be gone
        pass
