"""Where a frame goes: source -> detect -> crop + contract -> classify (one batch) -> track -> events.

`run` picks the loop: video and cameras go through `run_video` (faces tracked and smoothed, search
windows around tracked faces between full detections); an image or a folder of images goes through
`run_stills` (each image on its own). Records are built in edge.events.records and written to edge.events.log;
what a user asked to see or keep goes to edge.outputs.preview and edge.outputs.csv_export.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from edge.config import RunConfig
from edge.events.log import EventLog
from edge.events.records import (
    Counters,
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
from edge.fleet.forwarder import open_fleet_log
from edge.host import peak_rss_mb, resident_parts_mb
from edge.outputs.console import VideoProgress, image_line
from edge.outputs.csv_export import CsvExport
from edge.outputs.preview import Outputs, check_outputs
from edge.signals import install_stop_handlers
from edge.sources.cameras import Picamera2Source
from edge.sources.frame import Frame, Source
from edge.sources.images import is_still, list_stills, read_still, still_name
from edge.sources.reopen import ReopeningSource
from edge.sources.spec import open_source
from edge.sources.video import PlaybackSource
from edge.timing import StageTimer
from edge.vision.faces import FrameResult, build_pipeline, describe_detector, load_model, make_detector
from edge.vision.model import EmotionModel
from edge.vision.stills import StillAnalyzer
from edge.vision.track import TrackEvent


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

    def _split_pacing(self) -> None:
        """--realtime's wait for a frame's time in the file is pacing, not capture: shown apart ("pace")."""
        waited = getattr(self.source, "last_wait_ms", 0.0)
        if waited:
            self.timer.total_ms["capture"] -= waited
            self.timer.add("pace", waited)

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
                self._split_pacing()
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
            from edge.web.access import web_token  # the HTTP server's modules load only for --web

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


@dataclass
class Sinks:
    """Where a video frame's results go: the event log (tapped by the live view with --web), the CSV export,
    the live view and the preview window or saved video. Opened together, closed together."""

    log: EventLog
    outputs: Outputs
    csv: CsvExport | None = None
    live: object | None = None  # edge.web.server.LiveView with --web

    def write_row(self, frame: Frame, faces: list) -> None:
        if self.csv is not None:
            self.csv.write("", frame.index, frame.timestamp, faces, keep_empty=False)

    def show(self, frame: Frame, faces: list, scale_to_main: float) -> bool:
        """The live view and the preview; False once the preview window was closed."""
        if self.live is not None:  # grey only where boxes fit it (picamera2's lores image is smaller than its colour one)
            self.live.frame(frame.color if frame.color is not None or scale_to_main != 1 else frame.gray, faces, time.monotonic())
        return not self.outputs.wanted or self.outputs.show(frame.color if frame.color is not None else frame.gray, faces)

    def close(self, summary: dict, source: Source) -> None:
        """The stop record is attempted, and everything closed, even when writing it fails."""
        try:
            self.log.write(summary)
        finally:
            self.log.close()
            close_all(self.live, self.outputs, self.csv, source)


def open_sinks(config: RunConfig, model: EmotionModel, source: Source, web_token: str) -> Sinks:
    """The log first (a camera that fails to open says so in it), then the source, the outputs and the live view."""
    log = open_log(config)
    open_or_log(source, log)
    outputs = Outputs(config, model.labels, source.fps, source.scale_to_main)
    csv = CsvExport(config.csv, model.labels) if config.csv else None
    live, log = start_live_view(config, model, outputs, web_token, log, csv, source)
    return Sinks(log, outputs, csv, live)


def events_to_file(config: RunConfig) -> bool:
    """The events go to a file, so the terminal is free for lines a person reads."""
    return config.log.strip() not in ("", "-")


def video_progress(config: RunConfig, source: Source) -> VideoProgress | None:
    """A progress line on a terminal while the events go to a file; none for a service's journal."""
    if not events_to_file(config) or not sys.stderr.isatty():
        return None
    inner = getattr(source, "inner", source)
    total = 0 if config.loop else getattr(inner, "expected_frames", 0)
    if config.max_frames:
        total = min(total, config.max_frames) if total else 0
    return VideoProgress(sys.stderr, total)


def run_video(config: RunConfig, stop_event: threading.Event, observer: Callable[[FrameResult], None] | None = None,
              web_token: str = "") -> dict:
    timer, counters = StageTimer(), Counters()
    pipeline = build_pipeline(config, timer)
    model = pipeline.model
    # A camera's outage records go to the log as the sinks hold it (tapped for the live view with --web).
    source = video_source(config, stop_event, write=lambda record: sinks.log.write(record))
    sinks = open_sinks(config, model, source, web_token)
    feed = FrameFeed(source, config.max_frames, config.duration, stop_event, timer)
    stats = StatsWindow(config.stats_interval, counters, timer)
    progress = video_progress(config, source)
    previous: Frame | None = None
    started = time.monotonic()

    def write_events(events: list[TrackEvent] | tuple[TrackEvent, ...], landmarks: dict | None = None) -> None:
        for event in events:
            sinks.log.write(track_event_record(event, model.labels, landmarks=(landmarks or {}).get(event.box)))
        counters.count_events(events)

    try:
        detector = describe_detector(pipeline.detector)
        sinks.log.write(start_record(source.description, model, asdict(config), detector))
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
                write_events(result.events, {face.box: face.landmarks for face in result.faces if face.landmarks})
                sinks.write_row(frame, faces)
            counters.frames += 1
            counters.faces += len(faces)
            counters.classified = pipeline.classified
            counters.full_detections += result.full_detection
            if observer is not None:
                observer(result)
            if progress is not None:
                progress.update(counters.frames, len(faces))
            if not sinks.show(frame, faces, source.scale_to_main):
                feed.stop("preview closed")
            if stats.due(now := time.monotonic()):
                sinks.log.write(stats.record(now))
    except BaseException as error:
        feed.reason = f"error: {type(error).__name__}: {error}"
        raise
    finally:
        try:
            if previous is not None:
                write_events(pipeline.restart(previous.index, previous.timestamp))
        finally:  # the stop record is attempted, and everything closed, even when ending tracks failed
            if progress is not None:
                progress.close()
            summary = stop_record(feed.reason, time.monotonic() - started, counters, timer, peak_rss_mb(), memory=resident_parts_mb(),
                                   detector=describe_detector(pipeline.detector))
            sinks.close(summary, source)
    return summary


def open_live_view(config: RunConfig, model: EmotionModel, annotate, token: str):
    from edge.web.server import open_live_view as open_it  # the HTTP server's modules load only for --web

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


def stills_stop_reason(config: RunConfig, stop_event: threading.Event, index: int, elapsed: float) -> str:
    """Why to stop before the next image ("" to go on): a signal, --max-frames, --duration (checked between
    images: the one being analysed is finished)."""
    if stop_event.is_set():
        return "signal"
    if config.max_frames and index >= config.max_frames:
        return "max frames"
    if config.duration and elapsed >= config.duration:
        return "duration"
    return ""


def run_stills(config: RunConfig, stop_event: threading.Event) -> dict:
    """Each image on its own: full-resolution detection, its own classification, one `image` record
    (or an `error` record naming a file that cannot be read, and on to the next)."""
    timer, counters = StageTimer(), Counters()
    model = load_model(config)
    detector = make_detector(config, stills=True)
    analyzer = StillAnalyzer(detector, model, timer)
    root, images = list_stills(config.source_spec())
    log = open_log(config)
    csv = CsvExport(config.csv, model.labels) if config.csv else None
    outputs = Outputs(config, model.labels)
    reason, started = "end of images", time.monotonic()
    total = min(len(images), config.max_frames) if config.max_frames else len(images)
    say = print if events_to_file(config) else (lambda line: None)  # one line a photo; JSON only with --log -
    try:
        kind = "folder" if Path(config.source_spec()).is_dir() else "image"
        log.write(start_record(f"{kind} {config.source_spec()}", model, asdict(config), describe_detector(detector)))
        for index, path in enumerate(images):
            if (why := stills_stop_reason(config, stop_event, index, time.monotonic() - started)):
                reason = why
                break
            name, began = still_name(path, root), time.perf_counter()
            with timer.stage("capture"):
                try:
                    still = read_still(path, config.max_image_pixels)
                except ValueError as error:
                    log.write(record := image_error_record(name, str(error)))
                    say(image_line(index + 1, total, record, 0))
                    counters.errors += 1
                    continue
            faces = analyzer.faces(still.gray)
            record = image_record(name, still.size, [face_record(f.box, f.scores, model.labels, f.landmarks) for f in faces], still.original_size)
            say(image_line(index + 1, total, record, (time.perf_counter() - began) * 1000))
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
        summary = stop_record(reason, time.monotonic() - started, counters, timer, peak_rss_mb(), stills=True, memory=resident_parts_mb(),
                               detector=describe_detector(detector))
        try:
            log.write(summary)
        finally:
            log.close()
            close_all(csv)
    return summary
