"""Failures at start-up and on the first frame: checked before any track starts, logged, tracks ended."""

import json

import pytest

from edge import pipeline
from edge.config import RunConfig
from edge.outputs.preview import Outputs
from edge.sources.frame import SourceError


def kinds(path):
    return [json.loads(line)["event"] for line in path.read_text().splitlines()] if path.exists() else []


def test_an_unwritable_save_video_fails_before_any_track(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    log = tmp_path / "e.jsonl"
    with pytest.raises(ValueError, match=f"--save-video {blocker}/out.mp4"):
        pipeline.run(RunConfig(source="sample", log=str(log), save_video=str(blocker / "out.mp4")))
    assert "new" not in kinds(log)


def test_an_unwritable_save_images_fails_before_any_track(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    log = tmp_path / "e.jsonl"
    with pytest.raises(ValueError, match="--save-images"):
        pipeline.run(RunConfig(source="sample", log=str(log), save_images=str(blocker / "shots")))
    assert "new" not in kinds(log)


def test_display_without_a_desktop_fails_before_any_track(tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    log = tmp_path / "e.jsonl"
    with pytest.raises(RuntimeError, match="--display needs"):
        pipeline.run(RunConfig(source="sample", log=str(log), display=True))
    assert "new" not in kinds(log)


def test_an_output_failing_on_the_first_frame_still_ends_its_tracks(tmp_path, monkeypatch):
    def broken(self, image, faces):
        raise RuntimeError("the video disk went away")

    monkeypatch.setattr(Outputs, "show", broken)
    log = tmp_path / "e.jsonl"
    with pytest.raises(RuntimeError, match="went away"):
        pipeline.run(RunConfig(source="sample", log=str(log), save_video=str(tmp_path / "out.mp4")))
    records = [json.loads(line) for line in log.read_text().splitlines()]
    news = [r["track"] for r in records if r["event"] == "new"]
    assert len(news) == 2 and sorted(news) == sorted(r["track"] for r in records if r["event"] == "end")
    assert records[-1]["event"] == "stop" and records[-1]["new"] == records[-1]["end"] == 2


class MissingCamera:
    live, fps, description, scale_to_main = True, 30.0, "USB camera 7", 1.0

    def __init__(self):
        self.closed = False

    def open(self):
        raise SourceError("cannot open USB camera 7 (is it plugged in?)")

    def close(self):
        self.closed = True


def test_a_camera_that_fails_at_start_is_logged_to_the_event_log(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "open_source", lambda *a, **k: MissingCamera())
    log = tmp_path / "e.jsonl"
    with pytest.raises(SourceError, match="camera 7"):
        pipeline.run(RunConfig(source="usb:7", log=str(log)))
    (record,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert record["event"] == "start_failed" and record["source"] == "USB camera 7"
    assert "cannot open USB camera 7" in record["error"] and record["time"].endswith("Z")
