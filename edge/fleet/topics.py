"""One Pi among many: event ids, MQTT topics, a device's current state, Home Assistant discovery.

Plain values and functions only (no MQTT client here), so the forwarder, `watch` and the tests share them.
"""

from __future__ import annotations

import math
import re
import secrets
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass

TRACK_EVENTS = ("new", "update", "end")
ONLINE, OFFLINE = "online", "offline"


def default_device_id() -> str:
    """The host name, reduced to characters that are safe in a topic."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname().split(".")[0])[:64]
    return name or "fer-edge"


def new_run_id() -> str:
    """Start time plus 16 random bits: unique per start of the runtime, and sorts by time."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(2)


class SequencedLog:
    """Wraps an EventLog: each record gets device, run and seq (1, 2, ... per run) before it is written,
    so the log and everything forwarded from it carry the same ids. The record dict is updated in place.
    The log's own records (log_repaired, log_reopened) get their ids the same way, through its `stamp`."""

    def __init__(self, log, device: str, run: str | None = None, on_close=None):
        self.log, self.device, self.run = log, device, run or new_run_id()
        self.on_close = on_close  # called after the log is closed (the forwarder's stop)
        self.seq = 0
        self._lock = threading.Lock()  # source callbacks may write from another thread: keep seq == file order
        log.stamp = self._stamp

    @property
    def path(self):
        return self.log.path

    def _stamp(self, record: dict) -> None:
        self.seq += 1
        record.update(device=self.device, run=self.run, seq=self.seq)

    def write(self, record: dict) -> None:
        with self._lock:  # the log stamps the record (and any record of its own before it) as it writes
            self.log.write(record)

    def close(self) -> None:
        try:
            with self._lock:
                self.log.close()
        finally:
            if self.on_close is not None:
                on_close, self.on_close = self.on_close, None
                on_close()


@dataclass(frozen=True)
class Topics:
    """Everything one device publishes lives under prefix/device/."""

    prefix: str
    device: str

    def base(self) -> str:
        return f"{self.prefix}/{self.device}"

    def for_record(self, record: dict) -> str:
        """track: new/update/end; image: per-image results; stats; run: start, stop, source gaps and the rest."""
        event = record.get("event")
        kind = "track" if event in TRACK_EVENTS else event if event in ("image", "stats") else "run"
        return f"{self.base()}/{kind}"

    @property
    def availability(self) -> str:  # retained "online"; "offline" as the last will
        return f"{self.base()}/availability"

    @property
    def state(self) -> str:  # retained: faces in view, dominant expression, FPS
        return f"{self.base()}/state"

    @property
    def forwarder(self) -> str:  # retained: delivered, dropped and unreadable counts
        return f"{self.base()}/forwarder"


def parse_topic(topic: str, prefix: str) -> tuple[str, str] | None:
    """prefix/device/kind -> (device, kind); None for topics outside the prefix."""
    head = prefix + "/"
    if not topic.startswith(head):
        return None
    parts = topic[len(head):].split("/")
    return (parts[0], parts[1]) if len(parts) == 2 else None


class DeviceState:
    """What a device sees now, rebuilt from its records: open tracks (faces in view), their expressions, FPS."""

    def __init__(self):
        self.tracks: dict[int, tuple[str, float]] = {}
        self.fps: float | None = None

    def apply(self, record: dict) -> bool:
        """Update from one record; True when faces, dominant expression or FPS may have changed.
        A record whose fields are not what the runtime writes is a ValueError, and changes nothing."""
        event = record.get("event")
        if event in ("start", "stop"):  # a new run has no faces yet; a stopped one none left
            self.tracks.clear()
            self.fps = 0.0 if event == "stop" else self.fps
        elif event in ("new", "update") and "track" in record:
            self.tracks[_track_id(record.get("track"))] = (str(record.get("label")), _number(record, "score"))
        elif event == "end":
            self.tracks.pop(_track_id(record.get("track")), None)
        elif event == "image":  # a still: its faces are the ones in view
            faces = record.get("faces") or []
            if not isinstance(faces, list) or not all(isinstance(face, dict) for face in faces):
                raise ValueError(f"faces must be a list of objects, got {_short(faces)}")
            self.tracks = {n: (str(f.get("label")), _number(f, "score")) for n, f in enumerate(faces)}
        elif event == "stats" and "processing_fps" in record:
            self.fps = _number(record, "processing_fps")
        else:
            return False
        return True

    def dominant(self) -> str:
        """The expression most faces in view show (ties: the higher summed score); "none" with no face."""
        if not self.tracks:
            return "none"
        counts = Counter(label for label, _ in self.tracks.values())
        scores = Counter()
        for label, score in self.tracks.values():
            scores[label] += score
        return max(counts, key=lambda label: (counts[label], scores[label]))

    def summary(self) -> dict:
        return {"faces": len(self.tracks), "dominant": self.dominant(), "fps": self.fps}


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _number(record: dict, name: str) -> float:
    """A finite number field (absent or null = 0)."""
    value = record.get(name)
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number, got {_short(value)}")
    return float(value)


def _track_id(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"track must be a whole number, got {_short(value)}")
    return value


def discovery_configs(topics: Topics, discovery_prefix: str, version: str = "") -> dict[str, dict]:
    """Home Assistant MQTT discovery: topic -> retained config. One device per Pi with sensors for the
    dominant expression, faces in view and FPS, a diagnostic count of dropped events, and an event
    entity that fires on each track event (new/update/end)."""
    node = f"fer-edge-{topics.device}"
    device = {
        "identifiers": [node],
        "name": f"fer-edge {topics.device}",
        "manufacturer": "fer-edge",
        "model": "facial-expression recognition (mini-Xception int8)",
        **({"sw_version": version} if version else {}),
    }
    common = {
        "availability_topic": topics.availability,
        "payload_available": ONLINE,
        "payload_not_available": OFFLINE,
        "device": device,
    }
    entities = {
        ("sensor", "dominant_expression"): {
            "name": "Dominant expression", "state_topic": topics.state,
            "value_template": "{{ value_json.dominant }}", "icon": "mdi:emoticon-outline",
        },
        ("sensor", "faces"): {
            "name": "Faces in view", "state_topic": topics.state, "value_template": "{{ value_json.faces }}",
            "state_class": "measurement", "icon": "mdi:account-group",
        },
        ("sensor", "fps"): {
            "name": "FPS", "state_topic": topics.state, "value_template": "{{ value_json.fps }}",
            "unit_of_measurement": "fps", "state_class": "measurement", "suggested_display_precision": 1,
            "icon": "mdi:speedometer",
        },
        ("sensor", "dropped_events"): {
            "name": "Events dropped", "state_topic": topics.forwarder, "value_template": "{{ value_json.dropped }}",
            "state_class": "total_increasing", "entity_category": "diagnostic", "icon": "mdi:alert-circle-outline",
        },
        ("event", "track"): {
            "name": "Face track", "state_topic": f"{topics.base()}/track", "event_types": list(TRACK_EVENTS),
            # HA wants {"event_type": ...}; the rest of the rendered object becomes the event's attributes
            "value_template": (
                '{{ {"event_type": value_json.event, "track": value_json.track, "label": value_json.label,'
                ' "score": value_json.score, "seq": value_json.seq, "run": value_json.run} | to_json }}'
            ),
            "icon": "mdi:face-recognition",
        },
    }
    return {
        f"{discovery_prefix}/{component}/{node}/{object_id}/config": {
            **entity, "unique_id": f"{node}-{object_id}", **common,
        }
        for (component, object_id), entity in entities.items()
    }
