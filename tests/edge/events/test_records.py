import json
import os
import signal
import threading

import numpy as np
import pytest
from conftest import timeless

from edge.contract import LABELS
from edge.events.log import EventLog
from edge.events.records import Counters, StatsWindow, track_event_record
from edge.signals import install_stop_handlers
from edge.timing import StageTimer
from edge.vision.geometry import Box
from edge.vision.track import EventType, TrackEvent


def test_rotation_keeps_backups_of_whole_lines(tmp_path):
    path = tmp_path / "logs" / "events.jsonl"  # the parent folder is created
    log = EventLog(path, max_bytes=300, backups=3)
    for i in range(100):
        log.write({"event": "update", "i": i, "pad": "x" * 20})
    log.close()
    files = [path] + [path.with_name(f"events.jsonl.{n}") for n in (1, 2, 3)]
    assert all(f.exists() for f in files)
    assert not path.with_name("events.jsonl.4").exists()
    seen = []
    for f in files:
        assert f.stat().st_size <= 300
        lines = f.read_text().splitlines()
        assert lines and f.read_text().endswith("\n")
        seen.append([json.loads(line)["i"] for line in lines])
    assert seen[0][-1] == 99  # newest in the live file, older and older in .1, .2, .3
    assert seen[1][-1] == seen[0][0] - 1 and seen[2][-1] == seen[1][0] - 1 and seen[3][-1] == seen[2][0] - 1


def test_event_log_appends_across_runs(tmp_path):
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        log.write({"a": 1})
    with EventLog(path) as log:
        log.write({"a": 2})
    assert [json.loads(line)["a"] for line in path.read_text().splitlines()] == [1, 2]


def test_event_log_to_stdout_converts_numpy(capsys):
    for target in (None, "-"):
        log = EventLog(target)
        log.write({"n": np.int64(3), "x": np.float32(0.5), "v": np.arange(2), "e": EventType.NEW, "ok": np.bool_(1)})
        log.close()
    lines = capsys.readouterr().out.splitlines()
    assert lines == ['{"n":3,"x":0.5,"v":[0,1],"e":"new","ok":true}'] * 2


def test_event_log_unwritable_path_names_it(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(ValueError, match="a_file"):
        EventLog(blocker / "events.jsonl")


def test_track_event_record_shape():
    event = TrackEvent(
        type=EventType.UPDATE,
        track_id=4,
        frame_index=120,
        timestamp=4.0000001,
        box=Box(10, 20, 30, 40),
        label_index=3,
        score=0.812345,
        scores=(0.01, 0.0, 0.02, 0.812345, 0.05, 0.05, 0.057655),
    )
    record = timeless(track_event_record(event, LABELS))
    assert record == {
        "event": "update",
        "t": 4.0,
        "frame": 120,
        "track": 4,
        "box": [10, 20, 30, 40],
        "label": "happy",
        "score": 0.8123,
        "scores": {
            "angry": 0.01,
            "disgust": 0.0,
            "fear": 0.02,
            "happy": 0.8123,
            "sad": 0.05,
            "surprise": 0.05,
            "neutral": 0.0577,
        },
    }
    assert json.loads(json.dumps(record)) == record


def test_stage_timer_averages():
    ticks = iter([0.0, 0.010, 1.0, 1.030, 2.0, 2.002])
    timer = StageTimer(clock=lambda: next(ticks))
    with timer.stage("detect"):
        pass
    with timer.stage("detect"):
        pass
    with timer.stage("classify"):
        pass
    assert timer.averages() == pytest.approx({"detect": 20.0, "classify": 2.0})
    assert timer.counts == {"detect": 2, "classify": 1}


def test_stats_window_reports_the_change_of_the_runs_counters():
    counters, timer = Counters(frames_read=7, frames=3, faces=9), StageTimer()
    timer.add("detect", 1000.0)  # before this interval: not in its average
    stats = StatsWindow(5.0, counters, timer, start=100.0, system_info=lambda: {"cpu_temp_c": 51.2, "throttled": None})
    for faces in (1, 2, 0, 1):
        counters.frames_read += 1
        counters.frames += 1
        counters.faces += faces
    counters.frames_read += 6
    counters.dropped += 6
    timer.add("detect", 10.0)
    timer.add("detect", 20.0)
    assert not stats.due(104.9)
    assert stats.due(105.0)
    record = timeless(stats.record(105.0))
    assert record == {
        "event": "stats",
        "interval_s": 5.0,
        "frames_read": 10,
        "frames": 4,
        "faces": 4,
        "dropped": 6,
        "camera_fps": 2.0,
        "processing_fps": 0.8,
        "stage_ms": {"detect": 15.0},
        "cpu_temp_c": 51.2,
        "throttled": None,
    }
    assert not stats.due(109.0) and stats.due(110.0)
    empty = stats.record(110.0)
    assert empty["frames"] == 0 and empty["camera_fps"] == 0.0 and empty["stage_ms"] == {}
    assert counters.frames == 7 and timer.counts["detect"] == 3  # the run's totals are untouched: stop reads them


def test_stop_handlers_set_the_event_and_restore():
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    stop = threading.Event()
    restore = install_stop_handlers(stop)
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(2.0)
    finally:
        restore()
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_second_sigint_interrupts():
    stop = threading.Event()
    restore = install_stop_handlers(stop)
    try:
        signal.raise_signal(signal.SIGINT)
        assert stop.is_set()
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    finally:
        restore()


def test_a_new_event_log_is_readable_by_its_owner_only(tmp_path):
    old = os.umask(0o022)  # the usual umask, which left the log world-readable
    try:
        with EventLog(tmp_path / "events.jsonl") as log:
            log.write({"event": "start"})
    finally:
        os.umask(old)
    assert (tmp_path / "events.jsonl").stat().st_mode & 0o777 == 0o600
