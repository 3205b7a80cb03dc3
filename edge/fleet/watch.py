"""`python -m edge watch`: the events of every device under a prefix as they arrive, and a table per device."""

from __future__ import annotations

import json
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TextIO

from edge.events.records import record_key
from edge.fleet.broker import BrokerSettings, new_client, reason_text
from edge.fleet.topics import DeviceState, parse_topic

LINE_MAX = 300  # characters of one printed event line
TABLE_COLUMNS = ("device", "status", "run", "events", "duplicates", "missing", "faces", "dominant", "fps", "dropped", "bad")


@dataclass
class DeviceRow:
    status: str = "?"
    run: str = ""
    events: int = 0
    duplicates: int = 0
    missing: int = 0  # sequence numbers never seen (not yet arrived, or dropped at the device)
    dropped: int = 0  # what the device's forwarder reports it lost to rotation
    bad: int = 0  # messages that are not what a device sends (any client may publish under the prefix)
    state: DeviceState = field(default_factory=DeviceState)
    last_seq: dict[str, int] = field(default_factory=dict)  # per run


def describe(record: dict) -> str:
    """One readable line's worth of a record."""
    event = record.get("event")
    if event in ("new", "update", "end"):
        return f"track {record.get('track')} {record.get('label')} {record.get('score')}"
    if event == "stats":
        return f"{record.get('processing_fps')} fps, {record.get('faces')} faces, {record.get('dropped')} frames dropped"
    if event == "image":
        faces = record.get("faces") or []
        return f"{record.get('image')}: {len(faces)} faces " + " ".join(str(face.get("label")) for face in faces)
    if event == "start":
        return f"source {record.get('source')}, interpreter {record.get('interpreter')}"
    if event == "stop":
        return f"{record.get('reason')}: {record.get('frames')} frames, {record.get('fps')} fps"
    keep = {k: v for k, v in record.items() if k not in ("event", "time", "device", "run", "seq")}
    return json.dumps(keep, separators=(",", ":"))[:120]


class FleetTable:
    """Per-device counts and state from what arrives; repeats of an id (device, run, seq) are marked, not counted."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.rows: dict[str, DeviceRow] = {}
        self.changed = False

    def message(self, topic: str, payload: bytes) -> str | None:
        """Take one message; returns the line to print for an event or a bad message, None for status
        topics. Every message is untrusted input: one that is not what a device sends is counted and
        shown, and changes nothing."""
        parsed = parse_topic(topic, self.prefix)
        if parsed is None:
            return None
        device, kind = parsed
        row = self.rows.setdefault(device, DeviceRow())
        self.changed = True
        try:
            return self._take(device, row, kind, payload)
        except (ValueError, TypeError, AttributeError) as error:
            row.bad += 1
            return f"{device}: bad message on {topic} ({error}; {len(payload)} bytes: {payload[:80]!r})"

    def _take(self, device: str, row: DeviceRow, kind: str, payload: bytes) -> str | None:
        if kind == "availability":
            row.status = payload.decode(errors="replace")[:16]
            return None
        try:
            record = json.loads(payload)
        except (ValueError, RecursionError):
            raise ValueError("not JSON") from None
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
        if kind == "forwarder":
            dropped = record.get("dropped") or 0
            if isinstance(dropped, bool) or not isinstance(dropped, int) or dropped < 0:
                raise ValueError(f"dropped must be a whole number, got {dropped!r:.40}")
            row.dropped = dropped
            return None
        if kind == "state":
            return None
        return self._event(device, row, record)

    def _event(self, device: str, row: DeviceRow, record: dict) -> str:
        key = record_key(record)
        if key is None and any(name in record for name in ("device", "run", "seq")):
            raise ValueError("its id (device, run, seq) is not a string, a string and a whole number")
        mark = ""
        if key is not None and key[2] <= row.last_seq.get(key[1], 0):
            row.duplicates += 1
            mark = " (duplicate)"
        else:
            row.state.apply(record)  # first: a record with bad fields changes no count
            if key is not None:
                _, run, seq = key
                row.missing += seq - row.last_seq.get(run, 0) - 1
                row.last_seq[run] = seq
                row.run = run
            row.events += 1
        when = str(record.get("time", ""))[11:23]
        line = f"{when:12} {device:16} #{str(record.get('seq', '?')):<6} {str(record.get('event', '?')):7} {describe(record)}"
        return line[:LINE_MAX] + mark  # a message of any size prints as one bounded line

    def table(self) -> str:
        lines = [TABLE_COLUMNS]
        for device, row in sorted(self.rows.items()):
            summary = row.state.summary()
            fps = "" if summary["fps"] is None else f"{summary['fps']:.1f}"
            lines.append((
                device, row.status, row.run, str(row.events), str(row.duplicates), str(row.missing),
                str(summary["faces"]), summary["dominant"], fps, str(row.dropped), str(row.bad),
            ))
        widths = [max(len(line[i]) for line in lines) for i in range(len(TABLE_COLUMNS))]
        return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in lines)


def watch(
    settings: BrokerSettings, prefix: str, out: TextIO = sys.stdout, *, duration: float = 0.0,
    table_every: float = 10.0, raw: bool = False, stop_event: threading.Event | None = None,
    subscribed: threading.Event | None = None,
) -> FleetTable:
    """Subscribe to prefix/# and print until stop_event, Ctrl-C or `duration` seconds; returns the table."""
    stop_event = stop_event or threading.Event()
    fleet = FleetTable(prefix)
    client = new_client(settings, f"fer-edge-watch-{secrets.token_hex(3)}")

    def on_connect(client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            out.write(f"# broker refused the connection: {reason_text(reason_code)}\n")
            stop_event.set()
            return
        client.subscribe(f"{prefix}/#", qos=1)

    def on_message(client, userdata, message):
        if raw:
            line = f"{message.topic} {message.payload.decode(errors='replace')}"
        else:
            line = fleet.message(message.topic, message.payload)
        if line is not None:
            out.write(line + "\n")
            out.flush()

    client.on_connect, client.on_message = on_connect, on_message
    client.on_subscribe = lambda *args: subscribed.set() if subscribed is not None else None
    try:
        client.connect(settings.host, settings.port, keepalive=30)
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot reach the broker {settings.describe()}: {error}") from None
    try:
        _loop(client, fleet, out, stop_event, duration, table_every if not raw else 0.0)
    finally:
        client.disconnect()
    if not raw:
        out.write(fleet.table() + "\n")
        out.flush()
    return fleet


def _loop(client, fleet: FleetTable, out: TextIO, stop_event: threading.Event, duration: float, table_every: float) -> None:
    """Network loop until stopped; reconnects after a lost connection; a table every table_every s (0: none)."""
    end = time.monotonic() + duration if duration else float("inf")
    next_table = time.monotonic() + table_every
    while not stop_event.is_set() and time.monotonic() < end:
        if client.loop(timeout=0.2) != 0:
            stop_event.wait(1.0)
            try:
                client.reconnect()
            except (OSError, ValueError):
                pass
        if table_every and time.monotonic() >= next_table and fleet.changed:
            out.write(fleet.table() + "\n")
            out.flush()
            fleet.changed = False
            next_table = time.monotonic() + table_every
