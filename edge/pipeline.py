"""The frame loop: source -> detect (Haar) -> crop + contract -> classify (one batch) -> track -> events."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from edge import contract
from edge.config import RunConfig
from edge.detect import Box, FaceDetector
from edge.eventlog import EventLog
from edge.events import StageTimer, StatsWindow, track_event_record, utc_now
from edge.host import peak_rss_mb
from edge.model import EmotionModel
from edge.outputs import Outputs, check_outputs
from edge.signals import install_stop_handlers
from edge.sources import Frame, ReopeningSource, open_source
from edge.track import Tracker, TrackEvent

REGION_GROWTH = 1.6  # re-detection window around a tracked face, as a multiple of its box
DUPLICATE_IOU = 0.5


@dataclass(frozen=True)
class FrameResult:
    frame: Frame
    boxes: list[Box]
    scores: np.ndarray  # (faces, classes) probabilities, unsmoothed
    events: list[TrackEvent]
    full_detection: bool


def merge_duplicates(boxes: list[Box]) -> list[Box]:
    """Windows around two nearby tracks can find the same face twice: keep the first of each overlap."""
    kept: list[Box] = []
    for box in boxes:
        if all(box.iou(other) < DUPLICATE_IOU for other in kept):
            kept.append(box)
    return kept


class FacePipeline:
    """One frame at a time. Full-frame detection every `detect_every` frames (and whenever no face is
    tracked); in between, detection only in a window around each tracked face, which costs far less."""

    def __init__(self, model: EmotionModel, detector: FaceDetector, tracker: Tracker, detect_every: int, timer: StageTimer):
        self.model, self.detector, self.tracker = model, detector, tracker
        self.detect_every, self.timer = detect_every, timer
        self._frames_since_full = detect_every  # the first frame gets a full detection

    def detect(self, gray: np.ndarray) -> tuple[list[Box], bool]:
        tracked = self.tracker.predicted_boxes()
        if self._frames_since_full >= self.detect_every or not tracked:
            self._frames_since_full = 1
            return self.detector.detect(gray), True
        self._frames_since_full += 1
        found = [
            box for region in tracked for box in self.detector.detect_in(gray, region.expand(REGION_GROWTH), face_size=region.w)
        ]
        return merge_duplicates(found), False

    def process(self, frame: Frame) -> FrameResult:
        with self.timer.stage("detect"):
            boxes, full = self.detect(frame.gray)
        with self.timer.stage("preprocess"):
            faces = np.stack([contract.crop_face(frame.gray, tuple(b.as_list())) for b in boxes]) if boxes else None
        with self.timer.stage("infer"):
            scores = self.model.classify(faces) if faces is not None else np.zeros((0, len(self.model.labels)), np.float32)
        with self.timer.stage("track"):
            events = self.tracker.update(frame.index, frame.timestamp, boxes, scores)
        return FrameResult(frame, boxes, scores, events, full)


def build_pipeline(config: RunConfig, timer: StageTimer) -> FacePipeline:
    model = EmotionModel(config.model_path(), num_threads=config.num_threads, flip_tta=config.flip_tta)
    detector = FaceDetector(
        scale_factor=config.scale_factor,
        min_neighbors=config.min_neighbors,
        min_size=config.min_face,
        detect_width=config.detect_width or None,
        cascade_path=config.cascade or None,
    )
    tracker = Tracker(iou_threshold=config.iou_threshold, max_missed=config.max_missed, smoothing=config.smoothing)
    return FacePipeline(model, detector, tracker, config.detect_every, timer)


def run(config: RunConfig, stop_event: threading.Event | None = None, observer: Callable[[FrameResult], None] | None = None) -> dict:
    """Run until the source ends, a bound is reached or stop_event is set (SIGINT/SIGTERM); returns the summary."""
    stop_event = stop_event or threading.Event()
    # Handlers first: a SIGTERM while the model loads or the camera opens stops the run cleanly.
    restore_signals = install_stop_handlers(stop_event) if threading.current_thread() is threading.main_thread() else (lambda: None)
    try:
        return _run(config, stop_event, observer)
    finally:
        restore_signals()


def _run(config: RunConfig, stop_event: threading.Event, observer: Callable[[FrameResult], None] | None) -> dict:
    check_outputs(config)  # an unwritable --save-video or a --display without a GUI fails before any track starts
    timer = StageTimer()
    pipeline = build_pipeline(config, timer)
    model = pipeline.model
    want_color = bool(config.display or config.save_video or config.save_images)
    source = open_source(
        config.source_spec(), frame_width=config.frame_width, frame_height=config.frame_height, fps=config.fps,
        lores_width=config.lores_width, lores_height=config.lores_height, want_color=want_color,
    )
    log: EventLog | None = None
    gaps: list[float] = []  # set by log_gap, handled by the loop

    def log_lost(error: str) -> None:
        log.write({"event": "source_lost", "time": utc_now(), "error": error})

    def log_gap(seconds: float, attempts: int, last_error: str) -> None:
        log.write({"event": "source_gap", "time": utc_now(), "seconds": round(seconds, 3), "reopen_attempts": attempts, "error": last_error})
        gaps.append(seconds)

    if source.live:
        source = ReopeningSource(source, on_gap=log_gap, on_lost=log_lost, stop_event=stop_event)
    log = EventLog(config.log, max_bytes=config.log_max_bytes, backups=config.log_backups)
    try:
        source.open()
    except BaseException as error:  # a camera that fails at start: say so in the event log, not only the journal
        try:
            log.write({"event": "start_failed", "time": utc_now(), "source": source.description, "error": str(error)})
        finally:
            log.close()
        raise
    stats = StatsWindow(config.stats_interval)
    outputs = Outputs(config, model.labels, None)
    counts = {"frames": 0, "faces": 0, "new": 0, "update": 0, "end": 0, "dropped": 0, "full_detections": 0}
    started = time.monotonic()
    # --duration must also end a run that is waiting for a lost camera to come back
    deadline = threading.Timer(config.duration, stop_event.set) if config.duration else None
    if deadline is not None:
        deadline.daemon = True
        deadline.start()
    last_frame: Frame | None = None
    stop_reason = "end of source"

    def end_tracks(at: Frame | None) -> None:
        if at is not None:
            for event in pipeline.tracker.finish(at.index, at.timestamp):
                log.write(track_event_record(event, model.labels))
                counts["end"] += 1

    try:
        outputs.fps = source.fps or config.fps
        log.write({
            "event": "start", "time": utc_now(), "source": source.description, "model": str(config.model_path()),
            "sha256": model.sidecar["sha256"], "interpreter": model.interpreter_name, "labels": list(model.labels),
            "flip_tta": model.flip_tta, "config": asdict(config),
        })
        while True:
            if stop_event.is_set():
                stop_reason = "duration" if config.duration and time.monotonic() - started >= config.duration else "signal"
                break
            if config.max_frames and counts["frames"] >= config.max_frames:
                stop_reason = "max frames"
                break
            if config.duration and time.monotonic() - started >= config.duration:
                stop_reason = "duration"
                break
            before = dict(timer.total_ms)
            with timer.stage("capture"):
                frame = source.read()
            if frame is None:
                stop_reason = "signal" if stop_event.is_set() else "end of source"
                if deadline is not None and stop_event.is_set() and time.monotonic() - started >= config.duration:
                    stop_reason = "duration"
                break
            if gaps:  # the faces seen before an outage are gone: end their tracks, count no drops
                gaps.clear()
                end_tracks(last_frame)
                last_frame = None
            stats.frame_read()
            if source.live and last_frame is not None and source.fps:
                missed = max(0, round((frame.timestamp - last_frame.timestamp) * source.fps) - 1)
                counts["dropped"] += missed
                stats.frame_dropped(missed)
            result = pipeline.process(frame)
            last_frame = frame  # its tracks are started: a failure from here on still ends them
            with timer.stage("log"):
                for event in result.events:
                    log.write(track_event_record(event, model.labels))
                    counts[event.type.value] += 1
            counts["frames"] += 1
            counts["faces"] += len(result.boxes)
            counts["full_detections"] += result.full_detection
            stats.frame_processed(len(result.boxes))
            for stage, total in timer.total_ms.items():  # this frame's share, for the interval's stats
                stats.timer.add(stage, total - before.get(stage, 0.0))
            if observer is not None:
                observer(result)
            if outputs.wanted:
                if not outputs.show(result, pipeline.tracker.states()):
                    stop_reason = "preview closed"
                    break
            now = time.monotonic()
            if stats.due(now):
                log.write(stats.record(now))
    except BaseException as error:
        stop_reason = f"error: {type(error).__name__}: {error}"
        raise
    finally:
        if deadline is not None:
            deadline.cancel()
        try:
            end_tracks(last_frame)
        finally:  # the stop record is attempted, and everything closed, even when ending tracks failed
            elapsed = time.monotonic() - started
            summary = {
                "event": "stop", "time": utc_now(), "reason": stop_reason, "seconds": round(elapsed, 3), **counts,
                "fps": round(counts["frames"] / elapsed, 2) if elapsed > 0 else 0.0,
                "stage_ms": {name: round(ms, 3) for name, ms in timer.averages().items()},
                "peak_rss_mb": peak_rss_mb(),
            }
            try:
                log.write(summary)
            finally:
                log.close()
                outputs.close()
                source.close()
    return summary
