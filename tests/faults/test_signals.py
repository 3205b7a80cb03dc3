"""SIGINT/SIGTERM while the runtime starts up or rotates its log: a clean stop and whole lines."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import ROOT

from edge.events.log import EventLog
from edge.signals import install_stop_handlers

# Runs the pipeline with a stand-in camera that signals its own process at one start-up step.
STARTUP_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from edge import pipeline
    from edge.config import RunConfig
    from edge.sources.spec import open_source
    from edge.vision import faces

    step, signame, log = sys.argv[1], sys.argv[2], sys.argv[3]
    real_model = faces.EmotionModel  # the frame pipeline loads the model
    opened = []

    def send():
        os.kill(os.getpid(), getattr(signal, signame))

    def model(*args, **kwargs):
        if step == "model":
            send()
        return real_model(*args, **kwargs)

    def source(*args, **kwargs):
        inner = open_source(*args, **kwargs)
        real_open = inner.open
        def open_():
            if step == "camera":
                send()
            real_open()
            opened.append(inner)
        inner.open = open_
        return inner

    faces.EmotionModel, pipeline.open_source = model, source
    summary = pipeline.run(RunConfig(source="sample", log=log))
    print(summary["reason"], summary["frames"], opened[0]._capture is None)
""")


@pytest.mark.slow
@pytest.mark.parametrize("step", ["model", "camera"])
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_a_signal_during_start_up_stops_cleanly(tmp_path, step, signame):
    log = tmp_path / "e.jsonl"
    result = subprocess.run(
        [sys.executable, "-c", STARTUP_SCRIPT, step, signame, str(log)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["signal", "0", "True"]  # stopped before any frame, camera released
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["event"] for r in records] == ["start", "stop"] and records[-1]["reason"] == "signal"


def test_a_second_ctrl_c_during_rotation_loses_no_line(tmp_path, monkeypatch):
    path = tmp_path / "events.jsonl"
    log = EventLog(path, max_bytes=200, backups=50)
    restore = install_stop_handlers(__import__("threading").Event())
    real_replace = Path.replace
    interrupted = []

    def replace_with_two_ctrl_c(self, target):
        if not interrupted:
            interrupted.append(True)
            os.kill(os.getpid(), signal.SIGINT)  # asks to stop
            os.kill(os.getpid(), signal.SIGINT)  # the impatient second one raises KeyboardInterrupt
            time.sleep(0.1)
        return real_replace(self, target)

    monkeypatch.setattr(Path, "replace", replace_with_two_ctrl_c)
    written = []
    try:
        for i in range(20):
            try:
                log.write({"event": "update", "i": i, "pad": "x" * 40})
                written.append(i)
            except KeyboardInterrupt:
                pass  # the write it interrupted did not happen; the log must still take the next
        log.write({"event": "stop"})
    finally:
        restore()
        log.close()
    assert interrupted
    lines = []
    for file in sorted(tmp_path.iterdir(), key=lambda p: -int(p.suffix[1:]) if p.suffix[1:].isdigit() else 0):
        text = file.read_text()
        assert text.endswith("\n")
        lines += [json.loads(line) for line in text.splitlines()]
    assert [r["i"] for r in lines if "i" in r] == written and lines[-1]["event"] == "stop"


@pytest.mark.slow
def test_sigterm_while_the_log_rotates_leaves_whole_lines_in_every_file(tmp_path):
    log = tmp_path / "e.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "edge", "run", "--source", "sample", "--loop", "--log", str(log), "--log-max-bytes", "2000",
         "--log-backups", "100", "--stats-interval", "0.01", "--detect-width", "0", "--detect-every", "1"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline and not log.with_name("e.jsonl.3").exists():
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    files = sorted(tmp_path.glob("e.jsonl*"), key=lambda p: -int(p.suffix[1:]) if p.suffix[1:].isdigit() else 0)
    assert len(files) >= 4
    records = []
    for file in files:
        text = file.read_text()
        assert text.endswith("\n"), file.name
        records += [json.loads(line) for line in text.splitlines()]
    assert records[0]["event"] == "start" and records[-1]["event"] == "stop" and records[-1]["reason"] == "signal"
    news = {r["track"] for r in records if r["event"] == "new"}
    assert news == {r["track"] for r in records if r["event"] == "end"}


@pytest.mark.slow
def test_sighup_ends_a_run_like_sigterm(tmp_path):
    """Issue 28: closing the ssh terminal (SIGHUP) ended `edge run` with exit 129, no stop record, tracks
    never ended. Now it is a stop request like SIGTERM."""
    log = tmp_path / "e.jsonl"
    process = subprocess.Popen([sys.executable, "-m", "edge", "run", "--source", "sample", "--realtime", "--loop", "--log", str(log)],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and '"event":"new"' not in (log.read_text() if log.exists() else ""):
        time.sleep(0.05)
    process.send_signal(signal.SIGHUP)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert records[-1]["event"] == "stop" and records[-1]["reason"] == "signal"
    assert {r["track"] for r in records if r["event"] == "new"} == {r["track"] for r in records if r["event"] == "end"}


@pytest.mark.slow
def test_sighup_ends_edge_forward_with_its_summary(tmp_path):
    log = tmp_path / "e.jsonl"
    EventLog(log).write({"event": "start"})
    process = subprocess.Popen([sys.executable, "-m", "edge", "forward", "--log", str(log), "--mqtt", "mqtt://127.0.0.1:1"],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = process.stderr.readline()  # running: the broker is unreachable, it keeps trying
    assert "unreachable" in first
    process.send_signal(signal.SIGHUP)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, first + err
    assert "delivered 0 events" in err
