"""Per-track classification: a tracked face is classified again when its track needs it (every N frames, or
when its face changed), not on every frame; the tracker keeps its smoothed scores in between."""

import numpy as np
import pytest

from edge.config import RunConfig
from edge.sources.frame import Frame
from edge.timing import StageTimer
from edge.vision.faces import FacePipeline
from edge.vision.geometry import Box
from edge.vision.reclassify import ClassifySchedule, crop_change
from edge.vision.search import SearchSchedule
from edge.vision.track import Tracker

FACE = Box(100, 80, 96, 96)
LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


class OneFace:
    """A detector that finds the same face on every frame."""

    window_growth = 1.3

    def detect(self, gray):
        return [FACE]

    def detect_in(self, gray, region, face_size=None):
        return [FACE] if region.iou(FACE) > 0 else []


class CountingModel:
    """Says 'happy' for bright faces and 'sad' for dark ones; remembers which frames it saw faces on."""

    labels = LABELS

    def __init__(self):
        self.calls = []

    def classify(self, crops):
        self.calls.append(len(crops))
        scores = np.full((len(crops), 7), 0.01, np.float32)
        scores[:, [3 if crop.mean() > 100 else 4 for crop in crops]] = 0.94
        return scores


def frame(index, brightness):
    gray = np.full((240, 320), 40, np.uint8)
    face = np.tile(np.linspace(brightness - 30, brightness + 30, FACE.w).astype(np.uint8), (FACE.h, 1))
    gray[FACE.y : FACE.y + FACE.h, FACE.x : FACE.x + FACE.w] = face
    return Frame(index, index / 30, gray, None)


def pipeline(every, change):
    model = CountingModel()
    return FacePipeline(model, OneFace(), Tracker(smoothing=3), SearchSchedule(5, 60, None), StageTimer(),
                        ClassifySchedule(every, change)), model


def run_frames(faces, brightness_at, frames=20):
    """Each frame's result, and the frames on which the classifier saw the face."""
    results, seen = [], []
    for index in range(frames):
        before = len(faces.model.calls)
        results.append(faces.process(frame(index, brightness_at(index))))
        if len(faces.model.calls) > before:
            seen.append(index)
    return results, seen


def test_a_still_face_is_classified_every_n_frames_only():
    faces, _ = pipeline(every=5, change=32)
    results, seen = run_frames(faces, lambda index: 150)
    assert seen == [0, 5, 10, 15]
    assert all(r.faces[0].track == 1 and np.argmax(r.faces[0].scores) == 3 for r in results)
    assert faces.classified == 4


def test_a_face_that_changes_is_classified_again_at_once_and_its_events_follow():
    faces, _ = pipeline(every=10, change=32)
    results, seen = run_frames(faces, lambda index: 150 if index < 7 else 50)
    # the start, the change (not on the every-10 beat), the next frame (it disagreed with the smoothed label), the beat
    assert seen == [0, 7, 8, 18]
    updates = [(r.frame.index, e.label_index) for r in results for e in r.events if e.type == "update"]
    assert updates == [(8, 4)]  # smoothed over 3 classifications: sad wins at the second one after the change
    assert np.argmax(results[7].raw_scores[0]) == 4 and np.argmax(results[9].raw_scores[0]) == 4  # latest own scores


def test_without_the_change_test_a_change_waits_for_the_beat():
    faces, _ = pipeline(every=10, change=0)
    _, seen = run_frames(faces, lambda index: 150 if index < 7 else 50)
    assert seen == [0, 10, 11]


def test_every_one_classifies_every_face_on_every_frame():
    faces, _ = pipeline(every=1, change=0)
    _, seen = run_frames(faces, lambda index: 150, frames=6)
    assert seen == [0, 1, 2, 3, 4, 5]


def test_a_new_track_is_classified_at_once_and_a_restart_forgets_the_old_ones():
    schedule = ClassifySchedule(every=5, change=0)
    crops = np.zeros((2, 48, 48), np.uint8)
    assert schedule.due(0, [None, None], crops).tolist() == [True, True]
    smoothed = np.ones(7)
    schedule.classified(0, [(1, smoothed), (2, smoothed)], crops, np.array([True, True]), np.ones((2, 7)), live={1, 2})
    assert schedule.due(1, [1, None], crops).tolist() == [False, True]
    schedule.classified(1, [(1, smoothed), (3, smoothed)], crops, np.array([False, True]), np.ones((2, 7)), live={1, 3})  # 2 ended
    assert schedule.due(2, [2], crops[:1]).tolist() == [True]  # an ended track's state is gone
    schedule.restart()
    assert schedule.due(2, [1], crops[:1]).tolist() == [True]


def test_crop_change_is_the_mean_grey_level_difference():
    first = np.full((48, 48), 100, np.uint8)
    second = first.copy()
    second[:24] = 140  # half the face 40 levels brighter
    assert crop_change(first, second) == pytest.approx(20.0)
    assert crop_change(second, first) == pytest.approx(20.0)  # no uint8 wrap-around


def test_settings_bound_per_track_classification():
    assert (RunConfig().classify_every, RunConfig().classify_change) == (5, 32.0)
    with pytest.raises(ValueError, match="--classify-every"):
        RunConfig(classify_every=0)
    with pytest.raises(ValueError, match="--classify-change"):
        RunConfig(classify_change=-1)
