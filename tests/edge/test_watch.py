"""`python -m edge watch`: every device's events as they arrive, duplicates marked, a table per device."""

import io
import json
import subprocess
import sys
import threading

import pytest
from conftest import ROOT
from mqtt_broker import needs_mosquitto, wait_until

from edge.eventlog import EventLog
from edge.fleet import SequencedLog, Topics
from edge.mqtt import Forwarder, broker_settings
from edge.watch import FleetTable, watch


def message(device, seq, event="new", run="r1", **fields):
    return json.dumps({"event": event, "time": "2026-01-01T12:00:00.000Z", "device": device, "run": run, "seq": seq, **fields}).encode()


def test_fleet_table_marks_repeats_counts_missing_and_keeps_state_per_device():
    fleet = FleetTable("fer-edge")
    lines = [
        fleet.message("fer-edge/pi1/availability", b"online"),
        fleet.message("fer-edge/pi1/track", message("pi1", 1, track=1, label="happy", score=0.9)),
        fleet.message("fer-edge/pi1/track", message("pi1", 1, track=1, label="happy", score=0.9)),  # a resend
        fleet.message("fer-edge/pi1/stats", message("pi1", 4, "stats", processing_fps=12.25, faces=1, dropped=0)),
        fleet.message("fer-edge/pi2/track", message("pi2", 1, track=7, label="sad", score=0.6)),
        fleet.message("fer-edge/pi2/forwarder", b'{"dropped": 3}'),
        fleet.message("elsewhere/pi3/track", message("pi3", 1)),
    ]
    assert lines[0] is None and lines[-1] is None and lines[5] is None
    assert "pi1" in lines[1] and "#1" in lines[1] and "track 1 happy 0.9" in lines[1] and "duplicate" not in lines[1]
    assert lines[2].endswith("(duplicate)")
    assert "12.25 fps" in lines[3]
    pi1, pi2 = fleet.rows["pi1"], fleet.rows["pi2"]
    assert (pi1.events, pi1.duplicates, pi1.missing, pi1.status) == (2, 1, 2, "online")  # seq 2 and 3 never came
    assert pi1.state.summary() == {"faces": 1, "dominant": "happy", "fps": 12.25}
    assert (pi2.events, pi2.dropped, pi2.state.dominant()) == (1, 3, "sad")
    assert "pi3" not in fleet.rows
    table = fleet.table().splitlines()
    assert table[0].split() == ["device", "status", "run", "events", "duplicates", "missing", "faces", "dominant", "fps", "dropped"]
    assert table[1].split() == ["pi1", "online", "r1", "2", "1", "2", "1", "happy", "12.2", "0"]
    assert table[2].split() == ["pi2", "?", "r1", "1", "0", "0", "1", "sad", "3"]  # no fps heard yet: a blank cell


def test_a_new_run_starts_its_own_sequence():
    fleet = FleetTable("p")
    fleet.message("p/pi1/run", message("pi1", 1, "start", run="a"))
    fleet.message("p/pi1/run", message("pi1", 1, "start", run="b"))
    row = fleet.rows["pi1"]
    assert (row.events, row.duplicates, row.missing, row.run) == (2, 0, 0, "b")


@needs_mosquitto
def test_watch_prints_the_events_of_every_device_and_a_table(tmp_path, broker):
    broker.start()
    out = io.StringIO()
    stop, subscribed = threading.Event(), threading.Event()
    watcher = threading.Thread(
        target=watch, args=(broker_settings(broker.url), "fer-edge", out),
        kwargs={"stop_event": stop, "table_every": 0.2, "subscribed": subscribed},
    )
    watcher.start()
    senders = []
    try:
        assert subscribed.wait(10), "watch did not subscribe"
        for device in ("kitchen", "hall"):
            path = tmp_path / device / "events.jsonl"
            log = SequencedLog(EventLog(path), device)
            log.write({"event": "start", "source": "sample", "interpreter": "x"})
            log.write({"event": "new", "track": 1, "label": "happy", "score": 0.75})
            log.write({"event": "stats", "processing_fps": 10.0, "faces": 1, "dropped": 0})
            log.close()
            senders.append(Forwarder(path, broker_settings(broker.url), Topics("fer-edge", device), report=lambda m: None).start())
        wait_until(lambda: out.getvalue().count("track 1 happy 0.75") == 2, 15, "both devices' track events")
        wait_until(lambda: "kitchen  online" in out.getvalue() and "hall     online" in out.getvalue(), 15, "a table with both")
    finally:
        for sender in senders:
            sender.stop()
        stop.set()
        watcher.join(10)
    text = out.getvalue()
    table = text.splitlines()[-3:]  # the table printed at the end
    assert table[0].startswith("device")
    assert [row.split()[:2] for row in table[1:]] == [["hall", "offline"], ["kitchen", "offline"]]  # sorted, stopped
    assert all(row.split()[3:9] == ["3", "0", "0", "1", "happy", "10.0"] for row in table[1:])


@pytest.mark.slow
@needs_mosquitto
def test_watch_command_runs_for_a_duration_and_fails_clearly_without_a_broker(broker):
    broker.start()
    result = subprocess.run(
        [sys.executable, "-m", "edge", "watch", "--mqtt", broker.url, "--duration", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("device")
    broker.stop()
    result = subprocess.run(
        [sys.executable, "-m", "edge", "watch", "--mqtt", broker.url, "--duration", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2 and f"cannot reach the broker mqtt://127.0.0.1:{broker.port}" in result.stderr
