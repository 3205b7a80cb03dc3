"""A full disk: every event-log line is whole or absent, the error names the file, the stop record is
attempted, and a torn tail left by a crash is repaired before the next run appends."""

import errno
import json
import os
import subprocess
import sys

import pytest
import small_fs
from conftest import ROOT, stats_due_at

from edge import pipeline
from edge.config import RunConfig
from edge.events.log import EventLog, EventLogError

tiny_fs = small_fs.tiny_fs  # the fixture


def parsed_lines(path):
    text = path.read_text()
    assert text == "" or text.endswith("\n"), f"torn last line: {text[-60:]!r}"
    return [json.loads(line) for line in text.splitlines()]


def test_writes_on_a_full_disk_leave_whole_lines_and_name_the_file(tiny_fs):
    path = tiny_fs / "events.jsonl"
    log = EventLog(path)
    small_fs.fill(tiny_fs, leave=4096)  # one page: four records fit, the fifth only in part
    written = 0
    with pytest.raises(EventLogError) as error:
        for i in range(10_000):  # records of 1000 bytes: one straddles the last free page
            log.write({"event": "stats", "i": i, "pad": "x" * 1000})
            written += 1
    assert str(path) in str(error.value) and "No space left on device" in str(error.value)
    records = parsed_lines(path)
    assert written >= 1 and [r["i"] for r in records] == list(range(written))
    (tiny_fs / "filler").unlink()  # space again: logging goes on where it stopped
    log.write({"event": "stop"})
    log.close()
    assert [r["event"] for r in parsed_lines(path)][-1] == "stop"


def test_a_short_write_is_cut_back_to_the_line_start(tmp_path, monkeypatch):
    """Writes that fit only in part (as on a nearly full disk): nothing of the line may stay."""
    path = tmp_path / "events.jsonl"
    log = EventLog(path)
    log.write({"event": "start"})
    real_write = os.write
    calls = []

    def short_then_full(fd, data):
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, data[:10])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", short_then_full)
    with pytest.raises(EventLogError, match="events.jsonl: cannot write the event log: No space left"):
        log.write({"event": "stats", "time": "2026-01-01T00:00:00Z"})
    monkeypatch.undo()
    log.write({"event": "stop"})
    assert [r["event"] for r in parsed_lines(path)] == ["start", "stop"]


@pytest.mark.parametrize("tail", [b'{"event":"stats","time":"2', b'{"event":"caf\xc3'])
def test_a_torn_tail_is_cut_and_kept_before_appending(tmp_path, tail):
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"event":"start"}\n' + tail)
    with EventLog(path) as log:
        log.write({"event": "start", "run": 2})
    records = parsed_lines(path)
    assert [r["event"] for r in records] == ["start", "log_repaired", "start"]
    assert records[1]["torn_bytes"] == len(tail) and records[1]["torn_line"].startswith('{"event":')
    assert records[2]["run"] == 2


def test_a_log_that_is_all_torn_tail_is_repaired(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"eve')
    with EventLog(path) as log:
        log.write({"event": "start"})
    assert [r["event"] for r in parsed_lines(path)] == ["log_repaired", "start"]


def test_the_pipeline_on_a_full_disk_names_the_file_and_keeps_every_line_whole(tiny_fs):
    log = tiny_fs / "events.jsonl"
    small_fs.fill(tiny_fs, leave=6000)  # room for the start record and a few more, not for the whole clip
    result = subprocess.run(
        [sys.executable, "-m", "edge", "run", "--source", "sample", "--log", str(log), "--stats-interval", "0.05"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2 and f"error: {log}: cannot write the event log: No space left on device" in result.stderr
    assert "Traceback" not in result.stderr
    kinds = [r["event"] for r in parsed_lines(log)]
    assert kinds[0] == "start" and len(kinds) > 1
    # the next run, with space again, starts on a line of its own
    (tiny_fs / "filler").unlink()
    again = subprocess.run(
        [sys.executable, "-m", "edge", "run", "--source", "sample", "--log", str(log), "--max-frames", "3"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert again.returncode == 0, again.stderr
    records = parsed_lines(log)
    assert [r["event"] for r in records[: len(kinds)]] == kinds and records[len(kinds)]["event"] == "start"
    assert records[-1]["event"] == "stop" and records[-1]["frames"] == 3


def test_the_stop_record_and_track_ends_are_attempted_after_a_failed_write(tmp_path, monkeypatch):
    """The disk fills mid-run, then space comes back (another process freed some): the run still fails,
    naming the file, and its tracks' ends and the stop record land."""
    real_append = EventLog._append
    def full_once(self, data):
        if b'"event":"stats"' in data:
            raise EventLogError(f"{self.path}: cannot write the event log: No space left on device (record not written)")
        real_append(self, data)

    monkeypatch.setattr(EventLog, "_append", full_once)
    path = tmp_path / "events.jsonl"
    with pytest.raises(EventLogError, match="events.jsonl"):
        pipeline.run(RunConfig(source="sample", log=str(path), stats_interval=0.2), observer=stats_due_at(50, 0.2))
    records = parsed_lines(path)
    assert records[-1]["event"] == "stop" and records[-1]["reason"].startswith("error: EventLogError")
    news = {r["track"] for r in records if r["event"] == "new"}
    assert news and news == {r["track"] for r in records if r["event"] == "end"}
