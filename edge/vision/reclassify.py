"""Which tracked faces the classifier sees this frame: a face is classified again when its track needs it,
not on every frame (the tracker keeps each face's smoothed scores in between)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class _Seen:
    frame: int  # the frame of the track's latest classification
    crop: np.ndarray  # its 48 x 48 face then, to tell whether the face changed since
    scores: np.ndarray  # what the classifier said then
    unsure: bool  # it disagreed with the track's smoothed label: look again next frame


def crop_change(first: np.ndarray, second: np.ndarray) -> float:
    """Mean absolute grey-level difference of two face crops of the same shape."""
    return cv2.norm(first, second, cv2.NORM_L1) / first.size


class ClassifySchedule:
    """A face is classified when it starts a track, when `every` frames passed since its track's latest
    classification, or when its crop differs from that one by more than `change` grey levels on average
    (the face turned, the expression changed, the light changed, the box slid); 0 turns the change test off.
    A face whose latest classification disagrees with its track's smoothed label is classified again on the
    next frame too, so a changed expression reaches the events as soon as the smoothing confirms it.
    `every` = 1 classifies every face on every frame."""

    def __init__(self, every: int = 1, change: float = 0.0):
        self.every, self.change = int(every), float(change)
        self._seen: dict[int, _Seen] = {}

    def due(self, frame_index: int, track_ids: list[int | None], crops: np.ndarray | None) -> np.ndarray:
        """For each face (its track id from Tracker.match_ids, None for a new one), whether to classify it."""
        wanted = np.ones(len(track_ids), bool)
        if self.every <= 1:
            return wanted
        for i, track in enumerate(track_ids):
            seen = self._seen.get(track) if track is not None else None
            if seen is None or seen.unsure or frame_index - seen.frame >= self.every:
                continue
            wanted[i] = bool(self.change) and crop_change(crops[i], seen.crop) > self.change
        return wanted

    def classified(self, frame_index: int, tracks: list[tuple[int, np.ndarray]], crops: np.ndarray | None, due: np.ndarray,
                   scores: np.ndarray, live: set[int]) -> np.ndarray:
        """Remember this frame's classifications (`tracks`: each face's track id and smoothed scores from
        Tracker.latest, new tracks included) and forget ended tracks; returns each face's own latest scores
        (this frame's, or its track's latest classification)."""
        latest = np.array(scores, np.float32, copy=True)
        if self.every <= 1:
            return latest
        for i, (track, smoothed) in enumerate(tracks):
            if due[i]:
                unsure = int(np.argmax(latest[i])) != int(np.argmax(smoothed))
                self._seen[track] = _Seen(frame_index, crops[i], latest[i].copy(), unsure)
            elif track in self._seen:
                latest[i] = self._seen[track].scores
        for track in [t for t in self._seen if t not in live]:
            del self._seen[track]
        return latest

    def restart(self) -> None:
        self._seen.clear()
