"""The committed sample clip decodes as its truth file says (no regeneration here)."""

import json
from pathlib import Path

import cv2
import pytest

ASSETS = Path(__file__).resolve().parents[2] / "edge" / "assets"
VIDEO, TRUTH = ASSETS / "sample.mp4", ASSETS / "sample_truth.json"


@pytest.fixture(scope="module")
def truth() -> dict:
    return json.loads(TRUTH.read_text())


def test_truth_header(truth):
    assert truth["source"] == VIDEO.name
    assert truth["frame_size"] == [640, 480]
    assert truth["fps"] == 30
    assert set(truth["provenance"]["photos"]) == {"astronaut", "grace_hopper"}


def test_clip_decodes_to_stated_frames_and_size(truth):
    assert VIDEO.stat().st_size < 2_000_000
    cap = cv2.VideoCapture(str(VIDEO))
    assert cap.isOpened()
    width, height = truth["frame_size"]
    count = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        assert frame.shape == (height, width, 3)
        count += 1
    cap.release()
    assert count == len(truth["frames"]) == 150


def test_one_entry_per_frame_with_boxes_inside(truth):
    width, height = truth["frame_size"]
    assert [f["frame"] for f in truth["frames"]] == list(range(len(truth["frames"])))
    for f in truth["frames"]:
        assert len(f["boxes"]) == len(f["ids"]) <= 2
        for x, y, w, h in f["boxes"]:
            assert w > 0 and h > 0
            assert 0 <= x and 0 <= y and x + w <= width and y + h <= height
    # Two faces most of the time, and one of them leaves and comes back.
    counts = [len(f["boxes"]) for f in truth["frames"]]
    assert counts[0] == counts[-1] == 2 and 1 in counts
