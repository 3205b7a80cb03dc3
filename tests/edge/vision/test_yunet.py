"""YuNet: boxes on the bundled clips against their truth files, landmarks inside the box, the settings."""

import json

import cv2
import numpy as np
import pytest

from edge import paths
from edge.config import SAMPLE_CLIP, SAMPLE_TRUTH, RunConfig
from edge.events.records import LANDMARK_NAMES, face_record
from edge.measure.bench import HARD_CLIP, HARD_TRUTH, false_detections, load_ignored, load_truth
from edge.pipeline import run
from edge.vision.faces import describe_detector, make_detector
from edge.vision.geometry import Box, match_boxes
from edge.vision.yunet import MODEL_FILE, YuNetDetector, to_haar_framing

EVERY = 10  # every 10th frame of each clip: enough frames to judge, little CPU


def grey_frames(clip, every=EVERY):
    capture = cv2.VideoCapture(str(clip))
    index = 0
    try:
        while True:
            ok, image = capture.read()
            if not ok:
                return
            if index % every == 0:
                yield index, cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
            index += 1
    finally:
        capture.release()


def scored(detector, clip, truth_path):
    truth, ignored = load_truth(truth_path), load_ignored(truth_path)
    found = expected = false = 0
    for index, gray in grey_frames(clip):
        boxes = detector.detect(gray)
        want = truth.get(index, [])
        expected += len(want)
        found += len(match_boxes(boxes, want, 0.5))
        false += false_detections(boxes, want, ignored.get(index, []))
    return found / expected, false


@pytest.fixture(scope="module")
def full_size():
    return YuNetDetector(detect_width=None)


def test_the_bundled_model_is_the_published_file():
    from edge.vision.model import file_sha256

    path = paths.ASSETS / MODEL_FILE
    assert path.stat().st_size == 232_589
    assert file_sha256(path) == "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"


def test_boxes_on_the_sample_clip_match_its_truth():
    recall, false = scored(YuNetDetector(), SAMPLE_CLIP, SAMPLE_TRUTH)  # half resolution, as video runs
    assert recall >= 0.95 and false <= 1, (recall, false)


def test_boxes_on_the_hard_clip_match_its_truth_far_better_than_haar(full_size):
    recall, false = scored(full_size, HARD_CLIP, HARD_TRUTH)
    assert recall >= 0.9 and false <= 1, (recall, false)  # full-resolution Haar: 65% (docs/benchmarks.md)


def test_landmarks_lie_inside_their_box_eyes_above_mouth(full_size):
    detector = YuNetDetector(detect_width=None, keep_landmarks=True)
    checked = 0
    for _, gray in grey_frames(SAMPLE_CLIP, every=30):
        boxes = detector.detect(gray)
        landmarks = detector.take_landmarks()
        assert set(landmarks) == set(boxes)
        for box, points in landmarks.items():
            assert len(points) == 5
            for x, y in points:
                assert box.x <= x <= box.x + box.w and box.y <= y <= box.y + box.h, (box, points)
            (rx, ry), (lx, ly), _, (mrx, mry), (mlx, mly) = points
            assert max(ry, ly) < min(mry, mly) and rx < lx and mrx < mlx  # eyes above the mouth; image left first
            checked += 1
    assert checked >= 8
    assert detector.take_landmarks() == {}  # taken once
    assert full_size.detect(np.full((240, 320), 90, np.uint8)) == [] and full_size.take_landmarks() == {}  # not kept unless asked


def test_detect_in_follows_a_face_inside_its_window_only():
    gray = next(grey_frames(SAMPLE_CLIP))[1]
    truth = load_truth(SAMPLE_TRUTH)[0]
    detector = YuNetDetector()
    for face in truth:
        found = detector.detect_in(gray, face.expand(detector.window_growth), face_size=face.w)
        assert len(found) == 1 and found[0].iou(face) >= 0.6, (face, found)
    assert detector.detect_in(gray, Box(560, 400, 80, 80), face_size=100) == []  # bare wall
    assert detector.detect_in(gray, Box(700, 600, 50, 50), face_size=40) == []  # outside the frame


def test_haar_framing_is_square_and_a_little_higher():
    box = to_haar_framing(100, 100, 80, 100)
    assert box.w == box.h and 80 < box.w < 100
    assert box.y + box.h / 2 < 150  # YuNet's centre is at y 150


def test_settings_choose_and_bound_yunet():
    chosen = make_detector(RunConfig(detector="yunet", yunet_score=0.8, min_face=40, detect_width=240))
    assert isinstance(chosen, YuNetDetector)
    assert (chosen.score_threshold, chosen.min_size, chosen.detect_width, chosen.keep_landmarks) == (0.8, 40, 240, False)
    assert make_detector(RunConfig(detector="yunet", landmarks=True)).keep_landmarks
    assert make_detector(RunConfig(detector="yunet"), stills=True).detect_width is None
    assert describe_detector(chosen).startswith("yunet (face_detection_yunet_2023mar.onnx")
    with pytest.raises(ValueError, match="--yunet-score"):
        RunConfig(yunet_score=1.5)


def test_missing_or_wrong_model_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=MODEL_FILE):
        YuNetDetector(model_dir=tmp_path)
    (tmp_path / MODEL_FILE).write_bytes(b"not a model")
    with pytest.raises(ValueError, match=MODEL_FILE):
        YuNetDetector(model_dir=tmp_path)


def test_face_record_names_the_landmarks():
    record = face_record(Box(0, 0, 10, 10), [1.0, 0, 0, 0, 0, 0, 0], ["a", "b", "c", "d", "e", "f", "g"], ((1, 2),) * 5)
    assert list(record["landmarks"]) == list(LANDMARK_NAMES) and record["landmarks"]["nose_tip"] == [1, 2]
    assert "landmarks" not in face_record(Box(0, 0, 10, 10), [1.0, 0, 0, 0, 0, 0, 0], ["a", "b", "c", "d", "e", "f", "g"])


def test_run_says_its_detector_and_writes_landmarks_only_when_asked(tmp_path):
    logs = {}
    for landmarks in (False, True):
        log = tmp_path / f"{landmarks}.jsonl"
        summary = run(RunConfig(detector="yunet", landmarks=landmarks, max_frames=5, log=str(log)))
        assert summary["detector"].startswith("yunet")
        logs[landmarks] = [json.loads(line) for line in log.read_text().splitlines()]
        assert logs[landmarks][0]["detector"] == summary["detector"]
    news = {key: [r for r in records if r["event"] == "new"] for key, records in logs.items()}
    assert news[True] and all("landmarks" not in r for r in news[False])
    for record in news[True]:
        x, y, w, h = record["box"]
        assert all(x <= px <= x + w and y <= py <= y + h for px, py in record["landmarks"].values())


def test_still_images_get_landmarks_when_asked(tmp_path):
    gray = next(grey_frames(SAMPLE_CLIP))[1]
    cv2.imwrite(str(tmp_path / "frame.png"), gray)
    log = tmp_path / "images.jsonl"
    summary = run(RunConfig(source=str(tmp_path / "frame.png"), detector="yunet", landmarks=True, log=str(log)))
    records = [json.loads(line) for line in log.read_text().splitlines()]
    faces = next(r for r in records if r["event"] == "image")["faces"]
    assert len(faces) == 2 and all(list(face["landmarks"]) == list(LANDMARK_NAMES) for face in faces)
    assert summary["detector"].startswith("yunet") and "whole frames at full size" in summary["detector"]
