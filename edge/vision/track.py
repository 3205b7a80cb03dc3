"""Match faces across frames by box overlap and smooth each face's scores on its own.

Deciding (the tracker and `should_update`) is kept apart from writing (edge.events.records).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from edge.config import check_setting
from edge.vision.geometry import Box, match_boxes


class EventType(StrEnum):
    NEW = "new"
    UPDATE = "update"
    END = "end"


@dataclass(frozen=True)
class TrackEvent:
    type: EventType
    track_id: int
    frame_index: int
    timestamp: float
    box: Box
    label_index: int  # top label of the smoothed scores
    score: float  # its smoothed score
    scores: tuple[float, ...]  # smoothed scores, canonical label order


def should_update(previous_label: int, current_label: int) -> bool:
    """Emit an update only when a face's smoothed top label changes."""
    return previous_label != current_label


def top_label(scores: np.ndarray, previous: int = -1) -> int:
    """Index of the highest score; on a tie the previous label stays, so equal scores do not flicker."""
    best = int(np.argmax(scores))
    if 0 <= previous < len(scores) and scores[previous] >= scores[best]:
        return previous
    return best


@dataclass
class _Track:
    """Mutable state of one live face (private: callers see TrackEvents)."""

    track_id: int
    box: Box
    history: deque
    label: int = -1
    missed: int = 0
    smoothed: np.ndarray = field(default_factory=lambda: np.zeros(0))
    step: tuple[int, int] = (0, 0)  # how far the box moved between its last two frames

    def add(self, box: Box, scores: np.ndarray | None) -> None:
        """The face's box this frame and its scores; None when it was not classified again this frame
        (the smoothed scores stay those of its latest classifications)."""
        self.step = (box.x - self.box.x, box.y - self.box.y) if self.missed == 0 else (0, 0)
        self.box = box
        if scores is not None:
            self.history.append(scores)
            self.smoothed = np.mean(self.history, axis=0)


class Tracker:
    """Greedy IoU tracker with a per-track moving average of the last `smoothing` score vectors."""

    def __init__(self, iou_threshold: float = 0.3, max_missed: int = 10, smoothing: int = 5):
        for name, value in (("iou_threshold", iou_threshold), ("max_missed", max_missed), ("smoothing", smoothing)):
            check_setting(name, value)
        self.iou_threshold = iou_threshold
        self.max_missed = max_missed
        self.smoothing = smoothing
        self._tracks: dict[int, _Track] = {}
        self._next_id = 1
        self._latest: list[tuple[int, np.ndarray]] = []

    def __len__(self) -> int:
        return len(self._tracks)

    def predicted_boxes(self) -> list[Box]:
        """Where each live track's face should be next frame (where to re-detect): its last box moved
        by its last step, so a window around it can stay small while the face moves."""
        return list(self.predicted().values())

    def predicted(self) -> dict[int, Box]:
        """predicted_boxes by track id, oldest track first."""
        return {t.track_id: Box(t.box.x + t.step[0], t.box.y + t.step[1], t.box.w, t.box.h) for t in self._tracks.values()}

    def latest(self) -> list[tuple[int, np.ndarray]]:
        """(track id, smoothed scores) of each box of the latest `update`, in the boxes' order."""
        return list(self._latest)

    def match_ids(self, boxes: list[Box]) -> list[int | None]:
        """The track each box would continue in `update` (None: it would start a new one); changes nothing."""
        owner = {box_index: track_id for track_id, box_index in self._match(boxes).items()}
        return [owner.get(i) for i in range(len(boxes))]

    def live_ids(self) -> set[int]:
        return set(self._tracks)

    def update(self, frame_index: int, timestamp: float, boxes: list[Box], scores: np.ndarray,
               fresh: np.ndarray | None = None) -> list[TrackEvent]:
        """Take one frame's faces and their (N, C) probabilities; return the events they cause. With `fresh`
        (N booleans), only the rows it marks are new classifications: a continued track's other rows are
        ignored (its smoothed scores stay); a face that starts a track must be fresh."""
        scores = _check_scores(boxes, scores)
        fresh = np.ones(len(boxes), bool) if fresh is None else np.asarray(fresh, bool)
        matches = self._match(boxes)
        events: list[TrackEvent] = []

        for track_id, box_index in matches.items():
            track = self._tracks[track_id]
            track.add(boxes[box_index], scores[box_index] if fresh[box_index] else None)
            track.missed = 0
            label = top_label(track.smoothed, track.label)
            if should_update(track.label, label):
                track.label = label
                events.append(_event(EventType.UPDATE, track, frame_index, timestamp))

        for track_id in [t for t in self._tracks if t not in matches]:
            track = self._tracks[track_id]
            track.missed += 1
            if track.missed > self.max_missed:
                events.append(_event(EventType.END, self._tracks.pop(track_id), frame_index, timestamp))

        owner = {box_index: self._tracks[track_id] for track_id, box_index in matches.items()}
        for box_index, box in enumerate(boxes):
            if box_index in owner:
                continue
            if not fresh[box_index]:
                raise ValueError(f"box {box_index} starts a new track but has no scores (fresh is False)")
            track = owner[box_index] = _Track(self._next_id, box, deque(maxlen=self.smoothing))
            self._next_id += 1
            track.add(box, scores[box_index])
            track.label = top_label(track.smoothed)
            self._tracks[track.track_id] = track
            events.append(_event(EventType.NEW, track, frame_index, timestamp))
        self._latest = [(owner[i].track_id, owner[i].smoothed) for i in range(len(boxes))]
        return events

    def finish(self, frame_index: int, timestamp: float) -> list[TrackEvent]:
        """End every live track (end of stream or shutdown)."""
        events = [_event(EventType.END, t, frame_index, timestamp) for t in self._tracks.values()]
        self._tracks.clear()
        return events

    def _match(self, boxes: list[Box]) -> dict[int, int]:
        """track id -> box index, pairing the highest-IoU pairs first (ties: older track, earlier box)."""
        track_ids = list(self._tracks)
        pairs = match_boxes([self._tracks[t].box for t in track_ids], boxes, self.iou_threshold)
        return {track_ids[i]: j for i, j in pairs}


def _check_scores(boxes: list[Box], scores: np.ndarray) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    if len(boxes) == 0:
        return scores.reshape(0, scores.shape[-1] if scores.ndim == 2 else 0)
    if scores.ndim != 2 or scores.shape[0] != len(boxes):
        raise ValueError(f"scores must be (N, C) with N = {len(boxes)} boxes, got shape {scores.shape}")
    return scores


def _event(kind: EventType, track: _Track, frame_index: int, timestamp: float) -> TrackEvent:
    label = track.label
    return TrackEvent(
        type=kind,
        track_id=track.track_id,
        frame_index=frame_index,
        timestamp=timestamp,
        box=track.box,
        label_index=label,
        score=float(track.smoothed[label]),
        scores=tuple(float(s) for s in track.smoothed),
    )
