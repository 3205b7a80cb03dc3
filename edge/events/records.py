"""Event records (what the log says) and the counts behind stats and the stop summary."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from edge.host import pi_health
from edge.timing import StageTimer, utc_now
from edge.vision.ensemble import inferences_per_face, members_of
from edge.vision.track import TrackEvent

LANDMARK_NAMES = ("right_eye", "left_eye", "nose_tip", "right_mouth", "left_mouth")  # YuNet's order: the subject's right first


def landmarks_field(landmarks) -> dict:
    """{"landmarks": {"right_eye": [x, y], ...}} for a face with YuNet's five points, {} for one without."""
    return {"landmarks": {name: [int(x), int(y)] for name, (x, y) in zip(LANDMARK_NAMES, landmarks, strict=True)}} if landmarks else {}


def track_event_record(event: TrackEvent, labels: Sequence[str], time_text: str | None = None, landmarks=None) -> dict:
    """A track event as a JSON-ready dict; `time_text` overrides the wall clock (for tests); `landmarks`: the
    face's five points this frame (--landmarks)."""
    return {
        "event": event.type.value,
        "time": time_text if time_text is not None else utc_now(),
        "t": round(float(event.timestamp), 3),
        "frame": int(event.frame_index),
        "track": int(event.track_id),
        "box": event.box.as_list(),
        "label": labels[event.label_index],
        "score": round(float(event.score), 4),
        "scores": {name: round(float(s), 4) for name, s in zip(labels, event.scores, strict=True)},
        **landmarks_field(landmarks),
    }


def rate(count: int, seconds: float) -> float:
    """Per second, rounded the one way every record rounds it."""
    return round(count / seconds, 2) if seconds > 0 else 0.0


@dataclass
class Counters:
    """What a run has done so far: the stop summary reads it whole, stats read its change per interval."""

    frames_read: int = 0  # from the source
    frames: int = 0  # through the pipeline (images, for still images)
    faces: int = 0
    classified: int = 0  # video: faces the classifier saw (per-track classification leaves the others to the smoothing)
    dropped: int = 0  # a live camera's frames that went by while the pipeline was busy
    full_detections: int = 0
    new: int = 0
    update: int = 0
    end: int = 0
    errors: int = 0  # images that could not be read

    def count_events(self, events: Sequence[TrackEvent]) -> None:
        for event in events:
            setattr(self, event.type.value, getattr(self, event.type.value) + 1)

    def snapshot(self) -> dict[str, int]:
        return asdict(self)


class StatsWindow:
    """Turns the change of the run's counters and stage timer over one interval into a stats record.

    camera_fps counts frames read from the source, processing_fps frames that went through the
    pipeline; the difference is what was dropped to keep up with a live camera.
    """

    def __init__(
        self,
        interval_s: float,
        counters: Counters,
        timer: StageTimer,
        start: float | None = None,
        system_info: Callable[[], dict] | None = None,
    ):
        self.interval_s, self.counters, self.timer = interval_s, counters, timer
        self._system_info = system_info if system_info is not None else pi_health
        self._mark(time.monotonic() if start is None else start)

    def _mark(self, now: float) -> None:
        self.start = now
        self._counts = self.counters.snapshot()
        self._stage_totals, self._stage_counts = dict(self.timer.total_ms), dict(self.timer.counts)

    def due(self, now: float) -> bool:
        return now - self.start >= self.interval_s

    def record(self, now: float) -> dict:
        elapsed = now - self.start
        change = {name: value - self._counts[name] for name, value in self.counters.snapshot().items()}
        stage_ms = {}
        for name, total in self.timer.total_ms.items():
            runs = self.timer.counts[name] - self._stage_counts.get(name, 0)
            if runs:
                stage_ms[name] = round((total - self._stage_totals.get(name, 0.0)) / runs, 2)
        record = {
            "event": "stats",
            "time": utc_now(),
            "interval_s": round(elapsed, 3),
            "frames_read": change["frames_read"],
            "frames": change["frames"],
            "faces": change["faces"],
            "dropped": change["dropped"],
            "camera_fps": rate(change["frames_read"], elapsed),
            "processing_fps": rate(change["frames"], elapsed),
            "stage_ms": stage_ms,
            **self._system_info(),
        }
        self._mark(now)
        return record


# The other records, built here and written by the loop (edge.pipeline).


def start_record(source: str, model, config: dict, detector: str = "") -> dict:
    """The run's first record. An ensemble (--model a,b) gives `model` as the --model value that loads it again,
    and `sha256` and `flip_tta` as lists, one entry per model in that order."""
    members = members_of(model)
    record = {
        "event": "start", "time": utc_now(), "source": source, **({"detector": detector} if detector else {}),
        "model": str(model.path),
        "sha256": members[0].sidecar["sha256"] if len(members) == 1 else [member.sidecar["sha256"] for member in members],
        "interpreter": model.interpreter_name, "labels": list(model.labels), "flip_tta": model.flip_tta,
        "inferences_per_face": inferences_per_face(model),
        "sidecar_verified": model.sidecar_verified, "sidecar": model.sidecar_status, "config": config,
    }
    if getattr(model, "output_note", ""):  # outputs that are not probabilities (the model still loads)
        record["model_note"] = model.output_note
    return record


def stop_record(reason: str, seconds: float, counters: Counters, timer: StageTimer, peak_rss_mb: float, stills: bool = False,
                memory: dict | None = None, detector: str = "") -> dict:
    """The run's summary; `memory` adds the resident memory's parts (edge.host.resident_parts_mb)."""
    counts = counters.snapshot()
    if stills:  # images have no tracks, drops or detection windows
        counts = {"images": counts["frames"], "faces": counts["faces"], "errors": counts["errors"]}
    else:
        del counts["frames_read"], counts["errors"]
    return {
        "event": "stop", "time": utc_now(), "reason": reason, **({"detector": detector} if detector else {}),
        "seconds": round(seconds, 3), **counts,
        "fps": rate(counters.frames, seconds),
        "stage_ms": {name: round(ms, 3) for name, ms in timer.averages().items()},
        "peak_rss_mb": peak_rss_mb, **(memory or {}),
    }


def start_failed_record(source: str, error: str) -> dict:
    return {"event": "start_failed", "time": utc_now(), "source": source, "error": error}


def source_lost_record(error: str) -> dict:
    return {"event": "source_lost", "time": utc_now(), "error": error}


def source_gap_record(seconds: float, attempts: int, error: str) -> dict:
    return {"event": "source_gap", "time": utc_now(), "seconds": round(seconds, 3), "reopen_attempts": attempts, "error": error}


def face_record(box, scores: Sequence[float], labels: Sequence[str], landmarks=None) -> dict:
    best = int(max(range(len(scores)), key=lambda i: scores[i]))
    return {
        "box": list(box),
        "label": labels[best],
        "score": round(float(scores[best]), 4),
        "scores": {name: round(float(s), 4) for name, s in zip(labels, scores, strict=True)},
        **landmarks_field(landmarks),
    }


def image_record(image: str, size: tuple[int, int], faces: list[dict], original_size: tuple[int, int] | None = None) -> dict:
    """One still image's result: every face found in it, nothing carried over from other images. Boxes
    are in `size`, the image as analysed; an image scaled down on reading (--max-image-pixels) also
    says its `original_size`."""
    record = {"event": "image", "time": utc_now(), "image": image, "size": list(size), "faces": faces}
    if original_size is not None and tuple(original_size) != tuple(size):
        record["original_size"] = list(original_size)
    return record


def image_error_record(image: str, error: str) -> dict:
    return {"event": "error", "time": utc_now(), "image": image, "error": error}


def record_key(record: dict) -> tuple[str, str, int] | None:
    """The unique id a receiver drops duplicates by: (device, run, sequence number)."""
    device, run, seq = record.get("device"), record.get("run"), record.get("seq")
    if isinstance(device, str) and isinstance(run, str) and isinstance(seq, int) and not isinstance(seq, bool):
        return device, run, seq
    return None
