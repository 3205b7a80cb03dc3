import cv2
import numpy as np
import pytest

from edge.sources.frame import Frame, SourceError
from edge.sources.reopen import ReopeningSource
from edge.sources.video import VideoSource


class FakeLiveSource:
    """Reads follow a script: an int is a frame (inner index), "fail" raises, "none" returns None."""

    live = True
    fps = 30.0
    description = "fake camera"
    scale_to_main = 1.0

    def __init__(self, script, fail_opens=0):
        self.script = list(script)
        self.fail_opens = fail_opens
        self.opens = self.closes = 0

    def open(self):
        if self.opens and self.fail_opens:  # the first open always works
            self.fail_opens -= 1
            self.opens += 1
            raise SourceError("fake camera not there yet")
        self.opens += 1

    def read(self):
        step = self.script.pop(0) if self.script else "none"
        if step == "fail":
            raise SourceError("fake camera unplugged")
        if step == "none":
            return None
        return Frame(step, 0.0, np.zeros((4, 4), np.uint8), None)

    def close(self):
        self.closes += 1


class FakeClock:
    def __init__(self):
        self.now = 100.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_reopening_source_recovers_with_backoff():
    # Two frames, then the camera fails twice (read fails, then the first reopen's read fails too),
    # then the second reopen works; the inner source numbers frames from 0 again after each reopen.
    inner = FakeLiveSource([0, 1, "fail", "fail", 0, 1])
    clock = FakeClock()
    gaps = []
    source = ReopeningSource(inner, sleep=clock.sleep, clock=clock, on_gap=lambda *a: gaps.append(a))
    with source:
        frames = [source.read() for _ in range(4)]
    assert [f.index for f in frames] == [0, 1, 2, 3]
    assert clock.sleeps == [0.5, 1.0]
    assert gaps == [(1.5, 2, "fake camera unplugged")]
    assert inner.opens == 3


def test_reopening_source_backoff_is_capped_and_counts_failed_opens():
    inner = FakeLiveSource([0, "none", 0], fail_opens=5)
    clock = FakeClock()
    gaps = []
    source = ReopeningSource(inner, max_backoff=4.0, sleep=clock.sleep, clock=clock, on_gap=lambda *a: gaps.append(a))
    with source:
        assert source.read().index == 0
        assert source.read().index == 1
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert gaps[0][1] == 6 and gaps[0][2] == "fake camera not there yet"


def test_reopening_source_stops():
    inner = FakeLiveSource([0, "fail"], fail_opens=1000)
    source = ReopeningSource(inner)
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        if len(sleeps) == 3:
            source.stop()

    source._sleep = sleep
    with source:
        assert source.read().index == 0
        assert source.read() is None  # stopped while retrying: the stream ends
    assert len(sleeps) == 3


def test_reopening_source_passes_files_through(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    source = ReopeningSource(VideoSource(path), sleep=lambda s: pytest.fail("no sleeping"))
    with source:
        assert source.read().index == 0
        assert source.read() is None
    assert not source.live
