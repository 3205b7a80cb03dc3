"""`python -m edge watch`: every device's events as they arrive, duplicates marked, a table per device."""

import io
import json
import subprocess
import sys
import threading

import pytest
from conftest import ROOT
from mqtt_broker import needs_mosquitto, wait_until

from edge.events.log import EventLog
from edge.fleet.broker import broker_settings
from edge.fleet.forwarder import Forwarder
from edge.fleet.topics import SequencedLog, Topics
from edge.fleet.watch import FleetTable, watch


def message(device, seq, event="new", run="r1", **fields):
    return json.dumps({"event": event, "time": "2026-01-01T12:00:00.000Z", "device": device, "run": run, "seq": seq, **fields}).encode()


BAD_MESSAGES = [  # any client on the prefix can publish these
    ("fer-edge/pi1/track", message("pi1", 2, track=1, label="happy", score="high")),
    ("fer-edge/pi1/stats", message("pi1", 3, "stats", processing_fps="fast")),
    ("fer-edge/pi1/track", message("pi1", 4, track=[1], label="happy", score=0.5)),
    ("fer-edge/pi1/track", message("pi1", 5, "end", track={"a": 1})),
    ("fer-edge/pi1/image", message("pi1", 6, "image", image="x.jpg", faces=["not a face"])),
    ("fer-edge/pi1/track", message("pi1", [7], track=1, label="happy", score=0.5)),  # a seq that is a list
    ("fer-edge/pi1/stats", message("pi1", 8, "stats", processing_fps=float("nan"))),
    ("fer-edge/pi1/forwarder", b'{"dropped": "many"}'),
    ("fer-edge/pi1/track", b"\xff\xfe not json"),
    ("fer-edge/pi1/track", b"[1, 2]"),
    ("fer-edge/pi1/track", b"[" * 100_000),
]


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
    assert table[0].split() == ["device", "status", "run", "events", "duplicates", "missing", "faces", "dominant", "fps", "dropped", "bad"]
    assert table[1].split() == ["pi1", "online", "r1", "2", "1", "2", "1", "happy", "12.2", "0", "0"]
    assert table[2].split() == ["pi2", "?", "r1", "1", "0", "0", "1", "sad", "3", "0"]  # no fps heard yet: a blank cell


def test_bad_messages_are_counted_and_shown_and_change_nothing():
    fleet = FleetTable("fer-edge")
    fleet.message("fer-edge/pi1/track", message("pi1", 1, track=1, label="happy", score=0.9))
    fleet.message("fer-edge/pi1/stats", message("pi1", 1, "stats", run="r0", processing_fps=9.5))
    lines = [fleet.message(topic, payload) for topic, payload in BAD_MESSAGES]
    assert all(line.startswith("pi1: bad message on fer-edge/pi1/") for line in lines), lines
    assert "score must be a number, got 'high'" in lines[0] and "processing_fps must be a number" in lines[1]
    assert "track must be a whole number, got [1]" in lines[2]
    row = fleet.rows["pi1"]
    assert row.bad == len(BAD_MESSAGES)
    assert (row.events, row.missing, row.dropped) == (2, 0, 0) and row.last_seq == {"r1": 1, "r0": 1}
    assert row.state.summary() == {"faces": 1, "dominant": "happy", "fps": 9.5}
    assert fleet.table().splitlines()[1].split()[-1] == str(len(BAD_MESSAGES))


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


@needs_mosquitto
def test_watch_command_survives_bad_messages(broker):
    broker.start()
    watcher = subprocess.Popen(
        [sys.executable, "-m", "edge", "watch", "--mqtt", broker.url, "--duration", "8", "--table-every", "100"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    from mqtt_broker import paho

    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bad-publisher")
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        import time

        time.sleep(4.0)  # the watcher connects and subscribes (python start-up included)
        for topic, payload in BAD_MESSAGES + [("fer-edge/pi1/track", message("pi1", 9, track=2, label="sad", score=0.7))]:
            client.publish(topic, payload, qos=1).wait_for_publish(5)
        out, err = watcher.communicate(timeout=60)
    finally:
        client.loop_stop()
        client.disconnect()
        if watcher.poll() is None:
            watcher.kill()
    assert watcher.returncode == 0, err
    assert "Traceback" not in err
    assert out.count("bad message on") == len(BAD_MESSAGES) and "track 2 sad 0.7" in out
    assert out.splitlines()[-1].split()[-1] == str(len(BAD_MESSAGES))  # the table's bad column


def test_an_event_of_any_size_prints_as_one_bounded_line():
    fleet = FleetTable("fer-edge")
    line = fleet.message("fer-edge/pi1/track", message("pi1", 1, track=1, label="x" * 100_000, score=0.5))
    assert len(line) <= 300 and "\n" not in line and fleet.rows["pi1"].events == 1
