"""Where a frame goes: source -> detect -> crop + contract -> classify (one batch) -> track -> events.

`run` picks the loop: video and cameras go through `run_video` (faces tracked and smoothed, search
windows around tracked faces between full detections); an image or a folder of images goes through
`run_stills` (each image on its own). Records are built in edge.events and written to edge.eventlog;
what a user asked to see or keep goes to edge.outputs and edge.export.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edge import contract
from edge.blazeface import BlazeFaceDetector
from edge.config import RunConfig
from edge.detect import Box, FaceDetector
from edge.eventlog import EventLog
from edge.events import (
    Counters,
    StageTimer,
    StatsWindow,
    face_record,
    image_error_record,
    image_record,
    source_gap_record,
    source_lost_record,
    start_failed_record,
    start_record,
    stop_record,
    track_event_record,
)
from edge.export import CsvExport
from edge.host import peak_rss_mb
from edge.model import EmotionModel
from edge.motion import MotionGate, union
from edge.mqtt import open_fleet_log
from edge.outputs import Outputs, check_outputs
from edge.signals import install_stop_handlers
from edge.sources import Frame, Picamera2Source, PlaybackSource, ReopeningSource, Source, open_source
from edge.stills import StillAnalyzer, is_still, list_stills, read_still, still_name
from edge.track import Tracker, TrackEvent

DUPLICATE_IOU = 0.5


class SearchSchedule:
    """Where to look for new faces this frame, beyond the windows around tracked ones.

    Without a motion gate: the whole frame every `every` frames, and every frame while no face is
    tracked. With one (as network video recorders gate their detectors): only where something moved
    outside the tracked people or where a tracked face went unseen since the last search, at most every
    `every` frames while faces are tracked; the whole frame when that area is large, and at least every
    `still_every` frames regardless (a face the tracker lost while sitting still)."""

    def __init__(self, every: int, still_every: int, motion: MotionGate | None):
        self.every, self.still_every, self.motion = every, max(every, still_every), motion
        self._since_search = self._since_whole = self.still_every  # the first frame is searched whole
        self._moved: Box | None = None

    def search_area(self, gray: np.ndarray, tracked: list[Box]) -> Box | None:
        """The whole frame, the area where something moved, or None (windows only). The caller searches
        what this returns, so it counts as searched from here."""
        height, width = gray.shape
        whole = Box(0, 0, width, height)
        self._since_search += 1
        self._since_whole += 1
        if self.motion is None:
            due = self._since_search >= self.every or not tracked
            return self._searched(whole, whole) if due else None
        self._moved = union(self._moved, self.motion.changed_area(gray, tracked))  # judged frame to frame
        if self._since_whole >= self.still_every:
            return self._searched(whole, whole)
        if self._moved is None or not (self._since_search >= self.every or not tracked):
            return None
        area = search_area_around(self._moved, width, height)
        return self._searched(whole if area.area * 2 >= width * height else area, whole)

    def restart(self) -> None:
        """After a gap in the frames: nothing is known, the next frame is searched whole."""
        self._since_search = self._since_whole = self.still_every
        self._moved = None
        if self.motion is not None:
            self.motion.forget()

    def lost(self, faces: list[Box]) -> None:
        """Tracked faces their windows did not find: search around them, twice their size."""
        for face in faces:
            self._moved = union(self._moved, face.expand(2.0))

    def _searched(self, area: Box, whole: Box) -> Box:
        self._since_search, self._moved = 0, None
        if area == whole:
            self._since_whole = 0
        return area


def search_area_around(moved: Box, width: int, height: int) -> Box:
    """Where to search for a face that caused `moved`: half as big again, and at least a third of the
    frame's height each way, since a face coming in shows only part of itself in what changed."""
    side = max(height // 3, 1)
    grown = moved.expand(1.5)
    w, h = max(grown.w, side), max(grown.h, side)
    return Box(grown.x - (w - grown.w) // 2, grown.y - (h - grown.h) // 2, w, h).clip(width, height)


@dataclass(frozen=True)
class TrackedFace:
    box: Box
    track: int
    scores: tuple[float, ...]  # the track's smoothed scores: what its events report


@dataclass(frozen=True)
class FrameResult:
    frame: Frame
    faces: tuple[TrackedFace, ...]
    raw_scores: np.ndarray  # (faces, classes) this frame's own probabilities
    events: tuple[TrackEvent, ...]
    full_detection: bool

    @property
    def boxes(self) -> list[Box]:
        return [face.box for face in self.faces]


def merge_duplicates(boxes: list[Box]) -> list[Box]:
    """Windows around two nearby tracks can find the same face twice: keep the first of each overlap."""
    kept: list[Box] = []
    for box in boxes:
        if all(box.iou(other) < DUPLICATE_IOU for other in kept):
            kept.append(box)
    return kept


class FacePipeline:
    """One video frame at a time: detection in a window around each tracked face, which costs far
    less than a full detection, plus a search for new faces where and when `SearchSchedule` says."""

    def __init__(self, model: EmotionModel, detector: FaceDetector, tracker: Tracker, schedule: SearchSchedule, timer: StageTimer):
        self.model, self.detector, self.tracker = model, detector, tracker
        self.schedule, self.timer = schedule, timer

    def restart(self, frame_index: int, timestamp: float) -> list[TrackEvent]:
        """End every track and search the next frame whole (after an outage the scene may differ)."""
        self.schedule.restart()
        return self.tracker.finish(frame_index, timestamp)

    def detect(self, gray: np.ndarray) -> tuple[list[Box], bool]:
        """This frame's faces, and whether the whole frame was searched."""
        tracked = self.tracker.predicted_boxes()
        area = self.schedule.search_area(gray, tracked)
        if area is not None and area.area == gray.size:  # the whole frame
            return self.detector.detect(gray), True
        windows = [self.detector.detect_in(gray, region.expand(self.detector.window_growth), face_size=region.w) for region in tracked]
        self.schedule.lost([region for region, boxes in zip(tracked, windows, strict=True) if not boxes])
        found = [box for boxes in windows for box in boxes]
        if area is not None:
            found += self.detector.detect_in(gray, area)
        return merge_duplicates(found), False

    def process(self, frame: Frame) -> FrameResult:
        with self.timer.stage("detect"):
            boxes, full = self.detect(frame.gray)
        with self.timer.stage("preprocess"):
            crops = np.stack([contract.crop_face(frame.gray, box) for box in boxes]) if boxes else None
        with self.timer.stage("infer"):
            scores = self.model.classify(crops) if crops is not None else np.zeros((0, len(self.model.labels)), np.float32)
        with self.timer.stage("track"):
            events = self.tracker.update(frame.index, frame.timestamp, boxes, scores)
        faces = tuple(
            TrackedFace(box, track, tuple(float(s) for s in smoothed))
            for box, (track, smoothed) in zip(boxes, self.tracker.latest(), strict=True)
        )
        return FrameResult(frame, faces, scores, tuple(events), full)


def load_model(config: RunConfig) -> EmotionModel:
    return EmotionModel(config.model_path(), num_threads=config.num_threads, flip_tta=config.flip_tta, shift_tta=config.shift_tta,
                        balance=config.balance)


def make_detector(config: RunConfig, stills: bool = False) -> FaceDetector | BlazeFaceDetector:
    """The face detector the settings ask for (both offer detect and detect_in); still images are
    searched at their own resolution."""
    if config.detector == "blazeface":
        return BlazeFaceDetector(
            score_threshold=config.blazeface_score, min_size=config.min_face, tiles=config.blazeface_tiles,
            num_threads=config.num_threads,
        )
    return FaceDetector(
        scale_factor=config.scale_factor,
        min_neighbors=config.min_neighbors,
        min_size=config.min_face,
        detect_width=None if stills else config.detect_width or None,
        cascade_path=config.cascade or None,
    )


def build_pipeline(config: RunConfig, timer: StageTimer) -> FacePipeline:
    tracker = Tracker(iou_threshold=config.iou_threshold, max_missed=config.max_missed, smoothing=config.smoothing)
    motion = MotionGate(config.motion_threshold) if config.motion_threshold else None
    schedule = SearchSchedule(config.detect_every, config.still_detect_every, motion)
    return FacePipeline(load_model(config), make_detector(config), tracker, schedule, timer)


class FrameFeed:
    """Frames from a source until it ends, --max-frames or --duration is reached, or a stop is asked
    (SIGINT/SIGTERM, a closed preview). Decides the stop reason, once, in `reason`."""

    def __init__(self, source: Source, max_frames: int, duration: float, stop_event: threading.Event, timer: StageTimer):
        self.source, self.max_frames, self.duration = source, max_frames, duration
        self.stop_event, self.timer = stop_event, timer
        self.reason = "end of source"
        self._asked: str | None = None
        self._duration_over = False

    def stop(self, reason: str) -> None:
        self._asked = reason
        self.stop_event.set()

    def _time_up(self) -> None:
        self._duration_over = True
        self.stop_event.set()  # also ends a wait for a lost camera to come back

    def _why_stop(self, count: int) -> str | None:
        if self._duration_over:
            return "duration"
        if self._asked:
            return self._asked
        if self.stop_event.is_set():
            return "signal"
        if self.max_frames and count >= self.max_frames:
            return "max frames"
        return None

    def _end_of_source(self) -> str:
        early = getattr(self.source, "ended_early", "")  # a video file shorter than its header says
        return f"end of source: {early}" if early else "end of source"

    def __iter__(self) -> Iterator[Frame]:
        deadline = threading.Timer(self.duration, self._time_up) if self.duration else None
        if deadline is not None:
            deadline.daemon = True
            deadline.start()
        try:
            count = 0
            while (reason := self._why_stop(count)) is None:
                with self.timer.stage("capture"):
                    frame = self.source.read()
                if frame is None:
                    reason = self._why_stop(count) or self._end_of_source()
                    break
                count += 1
                yield frame
            self.reason = reason
        finally:
            if deadline is not None:
                deadline.cancel()


@contextmanager
def stop_handlers(stop_event: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM set stop_event while the loop runs (only the main thread can take signals)."""
    restore = install_stop_handlers(stop_event) if threading.current_thread() is threading.main_thread() else (lambda: None)
    try:
        yield
    finally:
        restore()


def dropped_between(previous: Frame | None, frame: Frame, source: Source) -> int:
    """Frames a live camera delivered while the pipeline was busy with the previous one."""
    if not source.live or previous is None or not source.fps:
        return 0
    return max(0, round((frame.timestamp - previous.timestamp) * source.fps) - 1)


def open_log(config: RunConfig) -> EventLog:
    # Each record gets its id (device, run, seq); with --mqtt a thread sends the log to the broker while it is open.
    return open_fleet_log(EventLog(config.log, max_bytes=config.log_max_bytes, backups=config.log_backups), config)


def run(config: RunConfig, stop_event: threading.Event | None = None, observer: Callable[[FrameResult], None] | None = None) -> dict:
    """Run until the source ends, a bound is reached or stop_event is set (SIGINT/SIGTERM); returns the
    stop summary. Images and folders run as stills, everything else as video."""
    stop_event = stop_event or threading.Event()
    # Handlers first: a SIGTERM while the model loads or the camera opens stops the run cleanly.
    with stop_handlers(stop_event):
        check_outputs(config)  # an unwritable --save-video or a --display without a GUI fails before any track starts
        if is_still(config.source_spec()):
            if config.web:
                raise ValueError("--web shows a camera or a video; images and folders run as stills (use --save-images)")
            return run_stills(config, stop_event)
        token = ""
        if config.web:
            from edge.web import web_token  # the HTTP server's modules load only for --web

            token = web_token(config)  # refused (no token for a network address) before the model loads or the camera opens
        return run_video(config, stop_event, observer, web_token=token)


def video_source(config: RunConfig, stop_event: threading.Event, write: Callable[[dict], None]) -> Source:
    """The camera or video (not opened yet); a camera that fails once running is reopened with
    backoff, its outage written as records."""
    source = open_source(
        config.source_spec(), frame_width=config.frame_width, frame_height=config.frame_height, fps=config.fps,
        lores_width=config.lores_width, lores_height=config.lores_height, want_color=bool(config.display or config.save_video),
    )
    if not source.live and (config.realtime or config.loop):
        source = PlaybackSource(source, realtime=config.realtime, loop=config.loop, stop_event=stop_event)
    if source.live:
        source = ReopeningSource(
            source, stop_event=stop_event,
            on_lost=lambda error: write(source_lost_record(error)),
            on_gap=lambda *gap: write(source_gap_record(*gap)),
        )
    return source


def open_or_log(source: Source, log: EventLog) -> None:
    """Open the source; a camera that fails at start says so in the event log too, not only the journal."""
    try:
        source.open()
    except BaseException as error:
        try:
            log.write(start_failed_record(source.description, str(error)))
        finally:
            log.close()
        raise


def close_all(*closables) -> None:
    for closable in closables:
        if closable is not None:
            closable.close()


def run_video(config: RunConfig, stop_event: threading.Event, observer: Callable[[FrameResult], None] | None = None,
              web_token: str = "") -> dict:
    timer, counters = StageTimer(), Counters()
    pipeline = build_pipeline(config, timer)
    model = pipeline.model
    source = video_source(config, stop_event, write=lambda record: log.write(record))
    log = open_log(config)
    open_or_log(source, log)
    outputs = Outputs(config, model.labels, source.fps, source.scale_to_main)
    csv = CsvExport(config.csv, model.labels) if config.csv else None
    live, log = start_live_view(config, model, outputs, web_token, log, csv, source)
    feed = FrameFeed(source, config.max_frames, config.duration, stop_event, timer)
    stats = StatsWindow(config.stats_interval, counters, timer)
    previous: Frame | None = None
    started = time.monotonic()

    def write_events(events: list[TrackEvent] | tuple[TrackEvent, ...]) -> None:
        for event in events:
            log.write(track_event_record(event, model.labels))
        counters.count_events(events)

    try:
        log.write(start_record(source.description, model, asdict(config)))
        for frame in feed:
            if frame.after_gap and previous is not None:  # faces seen before an outage are gone
                write_events(pipeline.restart(previous.index, previous.timestamp))
                previous = None
            counters.frames_read += 1
            counters.dropped += dropped_between(previous, frame, source)
            result = pipeline.process(frame)
            previous = frame  # its tracks are started: a failure from here on still ends them
            faces = [(face.box, face.scores, face.track) for face in result.faces]
            with timer.stage("log"):
                write_events(result.events)
                if csv is not None:
                    csv.write("", frame.index, frame.timestamp, faces, keep_empty=False)
            counters.frames += 1
            counters.faces += len(faces)
            counters.full_detections += result.full_detection
            if observer is not None:
                observer(result)
            if live is not None:  # grey only where boxes fit it (picamera2's lores image is smaller than its colour one)
                live.frame(frame.color if frame.color is not None or source.scale_to_main != 1 else frame.gray, faces, time.monotonic())
            if outputs.wanted and not outputs.show(frame.color if frame.color is not None else frame.gray, faces):
                feed.stop("preview closed")
            if stats.due(now := time.monotonic()):
                log.write(stats.record(now))
    except BaseException as error:
        feed.reason = f"error: {type(error).__name__}: {error}"
        raise
    finally:
        try:
            if previous is not None:
                write_events(pipeline.restart(previous.index, previous.timestamp))
        finally:  # the stop record is attempted, and everything closed, even when ending tracks failed
            summary = stop_record(feed.reason, time.monotonic() - started, counters, timer, peak_rss_mb())
            try:
                log.write(summary)
            finally:
                log.close()
                close_all(live, outputs, csv, source)
    return summary


def open_live_view(config: RunConfig, model: EmotionModel, annotate, token: str):
    from edge.web import open_live_view as open_it  # the HTTP server's modules load only for --web

    return open_it(config, model, annotate, token)


def start_live_view(config: RunConfig, model: EmotionModel, outputs: Outputs, token: str, log: EventLog, csv, source: Source):
    """--web: the live view, listening, and the log tapped for it; the log as it was without --web. A failure to
    listen closes what was opened (log, CSV, source)."""
    if not config.web:
        return None, log
    try:
        live = open_live_view(config, model, outputs.annotate, token)
    except BaseException:
        close_all(log, csv, source)
        raise
    camera = getattr(source, "inner", source)
    if isinstance(camera, Picamera2Source) and not camera.want_color:
        camera.color_wanted = lambda: live.hub.viewers > 0  # the main stream only while someone watches
    return live, live.tap(log)


def run_stills(config: RunConfig, stop_event: threading.Event) -> dict:
    """Each image on its own: full-resolution detection, its own classification, one `image` record
    (or an `error` record naming a file that cannot be read, and on to the next)."""
    timer, counters = StageTimer(), Counters()
    model = load_model(config)
    analyzer = StillAnalyzer(make_detector(config, stills=True), model, timer)
    root, images = list_stills(config.source_spec())
    log = open_log(config)
    csv = CsvExport(config.csv, model.labels) if config.csv else None
    outputs = Outputs(config, model.labels)
    reason, started = "end of images", time.monotonic()
    try:
        kind = "folder" if Path(config.source_spec()).is_dir() else "image"
        log.write(start_record(f"{kind} {config.source_spec()}", model, asdict(config)))
        for index, path in enumerate(images):
            if stop_event.is_set() or (config.max_frames and index >= config.max_frames):
                reason = "signal" if stop_event.is_set() else "max frames"
                break
            name = still_name(path, root)
            with timer.stage("capture"):
                try:
                    still = read_still(path, config.max_image_pixels)
                except ValueError as error:
                    log.write(image_error_record(name, str(error)))
                    counters.errors += 1
                    continue
            faces = analyzer.faces(still.gray)
            record = image_record(name, still.size, [face_record(f.box, f.scores, model.labels) for f in faces], still.original_size)
            with timer.stage("log"):
                log.write(record)
                if csv is not None:
                    csv.write(name, index, None, [(f.box, f.scores, None) for f in faces], keep_empty=True)
            counters.frames += 1
            counters.faces += len(faces)
            if config.save_images:
                outputs.save_still(name, still.color, [(f.box, f.scores, None) for f in faces], record)
    except BaseException as error:
        reason = f"error: {type(error).__name__}: {error}"
        raise
    finally:
        summary = stop_record(reason, time.monotonic() - started, counters, timer, peak_rss_mb(), stills=True)
        try:
            log.write(summary)
        finally:
            log.close()
            close_all(csv)
    return summary
