"""What the page shows: the run state (faces in view, timeline, health) built from the records the log writes, and the feeds of those records for /events."""

from __future__ import annotations

import collections
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from edge.outputs.annotate import PALETTE
from edge.vision.ensemble import inferences_per_face, members_of

TIMELINE_MINUTES = 30
RECENT_EVENTS = 50
FEED_RECORDS = 1000  # records kept for the event feeds; a viewer further behind skips ahead
COLOURS = {label: "#{2:02x}{1:02x}{0:02x}".format(*bgr) for label, bgr in PALETTE.items()}  # the video's colours


# -- what the page shows -------------------------------------------------------------------------------
def model_summary(model) -> dict:
    """Name, label set and the accuracy convert measured, and whether the sidecar's digest verified it. An
    ensemble (--model a,b) names its models; no sidecar records the average's accuracy (docs/models.md does)."""
    members = members_of(model)
    if len(members) > 1:
        return {
            "name": " + ".join(member.path.stem for member in members), "sha256": [m.sidecar.get("sha256") for m in members],
            "interpreter": model.interpreter_name, "trained_on": " + ".join(str(m.sidecar.get("trained_on")) for m in members),
            "accuracy": {}, "accuracy_judged_by": None, "balanced_accuracy": {}, "balance": model.balance,
            "verified": bool(model.sidecar_verified), "inferences_per_face": inferences_per_face(model),
        }
    sidecar = model.sidecar
    return {
        "name": model.path.stem, "sha256": sidecar.get("sha256"), "interpreter": model.interpreter_name,
        "trained_on": sidecar.get("trained_on"), "accuracy": sidecar.get("accuracy") or {},
        "accuracy_judged_by": sidecar.get("accuracy_judged_by") or sidecar.get("trained_on"),
        "balanced_accuracy": sidecar.get("balanced_accuracy") or {}, "balance": model.balance,
        "verified": bool(model.sidecar_verified), "inferences_per_face": inferences_per_face(model),
    }


def source_kind(source: str) -> str:
    """'camera' (picamera2, usb:N) or 'video' (a file or the bundled clip): the banner says which is playing."""
    return "camera" if source == "picamera2" or source.startswith("usb:") else "video"


def source_title(record: dict) -> str:
    """What the page calls the source: a camera by its description, a video file by its name alone (no
    folders of the machine it runs on)."""
    config = record.get("config") or {}
    if source_kind(str(config.get("source", ""))) == "camera":
        return str(record.get("source", ""))
    name = str(config.get("source") or record.get("source", "")).replace("\\", "/").rsplit("/", 1)[-1]
    return "video file " + ("sample.mp4 (the bundled clip)" if name == "sample" else name) + (", looping" if config.get("loop") else "")


class LiveState:
    """What the page shows, rebuilt from the records as they are written: faces in view, tracks started per
    label, faces per label per minute over the last 30 minutes, recent events and the latest stats."""

    def __init__(self, labels: Sequence[str], model: dict, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic):
        self.labels, self.model, self._clock, self._monotonic = tuple(labels), model, clock, monotonic
        self._lock = threading.Lock()
        self.started = monotonic()  # uptime from a clock that a wall-clock jump (NTP, a date change) cannot move
        self.tracks: dict[int, dict] = {}
        self.started_by_label: Counter = Counter()
        self.minutes: collections.OrderedDict[int, dict[str, set[int]]] = collections.OrderedDict()
        self.recent: collections.deque = collections.deque(maxlen=RECENT_EVENTS)
        self.stats: dict = {}
        self.dropped_total = 0
        self.source = ""
        self.source_kind = "camera"  # until the start record says otherwise: never understate a camera
        self.stats_interval: float | None = None
        self.seq = 0
        self.lost: str | None = None

    def apply(self, record: dict) -> None:
        with self._lock:
            self.seq = record.get("seq", self.seq + 1)
            event = record.get("event")
            if event in ("new", "update", "end"):
                self._track(event, record)
            elif event == "stats":
                self.stats = record
                self.dropped_total += int(record.get("dropped") or 0)
            elif event == "start":
                self.source, self.lost = source_title(record), None
                config = record.get("config") or {}
                self.source_kind = source_kind(str(config.get("source", "picamera2")))
                self.stats_interval = config.get("stats_interval")
            elif event == "source_lost":
                self.lost = str(record.get("error", "source lost"))
                self.tracks.clear()
            elif event == "source_gap":
                self.lost = None
            self._count_open_tracks()
            if event != "stats":  # stats are health, not an event to list
                self.recent.append(record)

    def _track(self, event: str, record: dict) -> None:
        track = record.get("track")
        if event == "end":
            self.tracks.pop(track, None)
            return
        self.tracks[track] = {key: record.get(key) for key in ("track", "label", "score", "scores", "box")}
        if event == "new":
            self.started_by_label[str(record.get("label"))] += 1

    def _count_open_tracks(self) -> None:
        """Every face in view counts in this minute under its label; records (stats every stats_interval
        at least) call this, so a face that stays in view without events still counts each minute."""
        minute = int(self._clock() // 60)
        bucket = self.minutes.setdefault(minute, {})
        for face in self.tracks.values():
            bucket.setdefault(str(face["label"]), set()).add(face["track"])
        while self.minutes and next(iter(self.minutes)) <= minute - TIMELINE_MINUTES:
            self.minutes.popitem(last=False)

    def timeline(self) -> list[dict]:
        """One entry per minute of the last 30, oldest first: {minute (ISO UTC), counts {label: faces}}."""
        now = int(self._clock() // 60)
        entries = []
        for minute in range(now - TIMELINE_MINUTES + 1, now + 1):
            counts = {label: len(tracks) for label, tracks in self.minutes.get(minute, {}).items()}
            entries.append({"minute": datetime.fromtimestamp(minute * 60, UTC).strftime("%Y-%m-%dT%H:%MZ"), "counts": counts})
        return entries

    def snapshot(self) -> dict:
        with self._lock:
            self._count_open_tracks()
            faces = sorted(self.tracks.values(), key=lambda face: face["track"])
            return {
                "seq": self.seq, "source": self.source, "source_kind": self.source_kind, "stats_interval": self.stats_interval,
                "labels": list(self.labels), "model": self.model,
                "uptime_s": round(self._monotonic() - self.started, 1),
                "faces": faces,
                "faces_by_label": dict(Counter(str(face["label"]) for face in faces)),
                "tracks_by_label": dict(self.started_by_label),
                "timeline": self.timeline(),
                "events": list(self.recent)[::-1],  # the deque holds the RECENT_EVENTS latest
                "stats": self.stats, "dropped_total": self.dropped_total, "source_lost": self.lost,
            }


class RecordFeed:
    """The records for /events: one bounded buffer shared by every listener, each keeping its own place."""

    def __init__(self, size: int = FEED_RECORDS):
        self._records: collections.deque[tuple[int, dict]] = collections.deque(maxlen=size)
        self._count = 0
        self._changed = threading.Condition()
        self.closed = False

    def append(self, record: dict) -> None:
        with self._changed:
            self._count += 1
            self._records.append((self._count, record))
            self._changed.notify_all()

    @property
    def position(self) -> int:
        return self._count

    def after(self, position: int, timeout: float) -> tuple[int, list[dict]]:
        """Records written after `position` (waits up to timeout for one), and the new position."""
        with self._changed:
            self._changed.wait_for(lambda: self._count > position or self.closed, timeout)
            fresh = [record for number, record in self._records if number > position]
            return self._count, fresh

    def close(self) -> None:
        with self._changed:
            self.closed = True
            self._changed.notify_all()


class TappedLog:
    """The run's log, plus a listener told of each record once the log has written it (same dict, same ids)."""

    def __init__(self, log, listener: Callable[[dict], None]):
        self.log, self.listener = log, listener

    @property
    def path(self):
        return self.log.path

    def write(self, record: dict) -> None:
        self.log.write(record)
        self.listener(record)

    def close(self) -> None:
        self.log.close()
