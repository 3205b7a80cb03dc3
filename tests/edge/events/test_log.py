"""The event log's own guarantees added in issue 28: only JSON is written, and a rotation that cannot make
its new file (no descriptor, no inode left) leaves the log writing on in the live file."""

from __future__ import annotations

import errno
import json
import math
import os
from types import SimpleNamespace

import numpy as np
import pytest

from edge.events import log as log_module
from edge.events.log import EventLog, json_text


def test_a_non_finite_score_is_written_as_null_never_as_nan(tmp_path):
    path = tmp_path / "e.jsonl"
    with EventLog(path) as log:
        log.write({"event": "new", "score": float("nan"), "scores": np.array([np.inf, 0.5], dtype=np.float32), "x": -math.inf})
    line = path.read_text()
    assert "NaN" not in line and "Infinity" not in line
    record = json.loads(line, parse_constant=lambda name: pytest.fail(f"{name} in the log"))
    assert record["score"] is None and record["scores"] == [None, 0.5] and record["x"] is None


def test_json_text_keeps_finite_values_as_they_are():
    assert json_text({"a": 1.5, "b": [np.float32(0.25)], "c": "x"}) == '{"a":1.5,"b":[0.25],"c":"x"}'


def failing_create(path_part: str, error: int):
    real_open = os.open

    def open_(path, flags, *args, **kwargs):
        if path_part in str(path):
            raise OSError(error, os.strerror(error))
        return real_open(path, flags, *args, **kwargs)

    return open_


@pytest.mark.parametrize("error, words", [(errno.EMFILE, "no file descriptor left"), (errno.ENOSPC, "no free inodes")])
def test_a_rotation_that_cannot_make_its_file_writes_on_in_the_live_file(tmp_path, monkeypatch, capsys, error, words):
    path = tmp_path / "e.jsonl"
    log = EventLog(path, max_bytes=300, backups=3)
    monkeypatch.setattr(log_module.os, "open", failing_create(".rotating", error))
    monkeypatch.setattr(log_module.os, "statvfs", lambda folder: SimpleNamespace(f_files=1000, f_favail=0))
    for i in range(20):
        log.write({"event": "update", "i": i, "pad": "x" * 40})
    log.write({"event": "stop"})
    log.close()
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r.get("i") for r in records[:-1]] == list(range(20)) and records[-1]["event"] == "stop"
    assert not list(tmp_path.glob("e.jsonl.*")) and not list(tmp_path.glob(".e.jsonl*"))
    warnings = [line for line in capsys.readouterr().err.splitlines() if "cannot rotate" in line]
    assert len(warnings) == 1 and words in warnings[0] and str(path) in warnings[0]  # said once


def test_rotation_works_again_once_it_can(tmp_path, monkeypatch):
    path = tmp_path / "e.jsonl"
    log = EventLog(path, max_bytes=300, backups=3)
    monkeypatch.setattr(log_module.os, "open", failing_create(".rotating", errno.EMFILE))
    for i in range(10):
        log.write({"event": "update", "i": i, "pad": "x" * 40})
    monkeypatch.undo()
    for i in range(10, 20):
        log.write({"event": "update", "i": i, "pad": "x" * 40})
    log.close()
    lines = []
    for file in [path.with_name(f"e.jsonl.{n}") for n in (3, 2, 1)] + [path]:
        if file.exists():
            lines += [json.loads(line)["i"] for line in file.read_text().splitlines()]
    assert lines == list(range(20)) and path.with_name("e.jsonl.1").exists()
    assert not list(tmp_path.glob(".e.jsonl*"))


def test_out_of_inodes_at_start_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(log_module.os, "open", failing_create("e.jsonl", errno.ENOSPC))
    monkeypatch.setattr(log_module.os, "statvfs", lambda folder: SimpleNamespace(f_files=1000, f_favail=0))
    with pytest.raises(ValueError, match="no free inodes left"):
        EventLog(tmp_path / "e.jsonl")
