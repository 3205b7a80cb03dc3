import numpy as np
import pytest

from edge.vision.geometry import Box
from edge.vision.track import EventType, Tracker, should_update, top_label


def one_hot(label, num_classes=7, peak=0.9):
    scores = np.full(num_classes, (1.0 - peak) / (num_classes - 1))
    scores[label] = peak
    return scores


def scores_for(*labels):
    return np.stack([one_hot(label) for label in labels]) if labels else np.zeros((0, 7))


def test_should_update_only_on_label_change():
    assert should_update(3, 4)
    assert not should_update(3, 3)


def test_two_moving_faces_keep_their_ids():
    tracker = Tracker()
    events = tracker.update(0, 0.0, [Box(10, 10, 50, 50), Box(200, 10, 50, 50)], scores_for(3, 6))
    assert [(e.type, e.track_id, e.label_index) for e in events] == [(EventType.NEW, 1, 3), (EventType.NEW, 2, 6)]
    for step in range(1, 6):
        # Both faces drift right; pass them in the opposite order to show matching is by overlap.
        boxes = [Box(200 + 5 * step, 10, 50, 50), Box(10 + 5 * step, 10 + 2 * step, 50, 50)]
        events = tracker.update(step, step / 30, boxes, scores_for(6, 3))
        assert events == []  # same faces, same labels: nothing to say
    # where each face should be next: its last box moved by its last step
    assert tracker.predicted_boxes() == [Box(40, 22, 50, 50), Box(230, 10, 50, 50)]
    ends = tracker.finish(6, 0.2)
    assert {e.track_id: e.box for e in ends} == {1: Box(35, 20, 50, 50), 2: Box(225, 10, 50, 50)}
    # each box of the latest frame knows its track and its smoothed scores, in the boxes' order
    assert [track for track, _ in tracker.latest()] == [2, 1]
    assert np.argmax(tracker.latest()[0][1]) == 6 and np.argmax(tracker.latest()[1][1]) == 3


def test_a_face_unseen_for_a_frame_is_predicted_where_it_was_last():
    tracker = Tracker()
    tracker.update(0, 0.0, [Box(10, 10, 50, 50)], scores_for(3))
    tracker.update(1, 0.1, [Box(20, 10, 50, 50)], scores_for(3))
    assert tracker.predicted_boxes() == [Box(30, 10, 50, 50)]
    tracker.update(2, 0.2, [], scores_for())
    assert tracker.predicted_boxes() == [Box(30, 10, 50, 50)]  # still moving on: its step stays
    tracker.update(3, 0.3, [Box(28, 12, 50, 50)], scores_for(3))
    assert tracker.predicted_boxes() == [Box(28, 12, 50, 50)]  # back after a gap: no step to trust


def test_greedy_matching_takes_the_best_overlap_first():
    tracker = Tracker(iou_threshold=0.1)
    tracker.update(0, 0.0, [Box(0, 0, 100, 100)], scores_for(0))
    events = tracker.update(1, 0.1, [Box(60, 0, 100, 100), Box(5, 0, 100, 100)], scores_for(0, 0))
    # The box at x=5 overlaps track 1 best; the other starts track 2.
    assert [(e.type, e.track_id, e.box.x) for e in events] == [(EventType.NEW, 2, 60)]
    assert tracker.predicted_boxes()[0] == Box(10, 0, 100, 100)  # x=5, moved on by its step of 5


def test_a_vanished_face_ends_after_max_missed_frames():
    tracker = Tracker(max_missed=3)
    tracker.update(0, 0.0, [Box(10, 10, 50, 50)], scores_for(2))
    for frame in range(1, 4):
        assert tracker.update(frame, frame * 0.1, [], scores_for()) == []
        assert len(tracker) == 1
    events = tracker.update(4, 0.4, [], scores_for())
    assert [(e.type, e.track_id, e.frame_index) for e in events] == [(EventType.END, 1, 4)]
    assert events[0].box == Box(10, 10, 50, 50) and events[0].label_index == 2
    assert len(tracker) == 0 and tracker.predicted_boxes() == []


def test_a_face_back_within_max_missed_keeps_its_id():
    tracker = Tracker(max_missed=3)
    tracker.update(0, 0.0, [Box(10, 10, 50, 50)], scores_for(2))
    tracker.update(1, 0.1, [], scores_for())
    tracker.update(2, 0.2, [], scores_for())
    assert tracker.update(3, 0.3, [Box(12, 10, 50, 50)], scores_for(2)) == []
    assert tracker.finish(4, 0.4)[0].track_id == 1


def test_smoothing_is_per_track():
    tracker = Tracker(smoothing=3)
    left, right = Box(0, 0, 50, 50), Box(300, 0, 50, 50)
    tracker.update(0, 0.0, [left, right], scores_for(3, 5))
    # The right face turns angry for good; the left stays happy throughout.
    for frame in range(1, 5):
        events = tracker.update(frame, frame * 0.1, [left, right], scores_for(3, 0))
        assert all(e.track_id == 2 for e in events)
    ends = {e.track_id: e for e in tracker.finish(5, 0.5)}
    np.testing.assert_allclose(ends[1].scores, one_hot(3))  # untouched by the other face
    np.testing.assert_allclose(ends[2].scores, one_hot(0))  # window of 3: only angry frames left
    assert ends[1].score == pytest.approx(0.9)


def test_update_emitted_only_when_the_smoothed_label_changes():
    tracker = Tracker(smoothing=3)
    box = Box(0, 0, 50, 50)
    tracker.update(0, 0.0, [box], scores_for(3))
    assert tracker.update(1, 0.1, [box], scores_for(0)) == []  # mean still favours happy (one vote each, tie)
    events = tracker.update(2, 0.2, [box], scores_for(0))  # two angry of three: label flips
    assert [(e.type, e.label_index, e.frame_index) for e in events] == [(EventType.UPDATE, 0, 2)]
    assert events[0].scores == pytest.approx(tuple(np.mean([one_hot(3), one_hot(0), one_hot(0)], axis=0)))
    assert tracker.update(3, 0.3, [box], scores_for(0)) == []


def test_finish_ends_every_track():
    tracker = Tracker()
    tracker.update(0, 0.0, [Box(0, 0, 50, 50), Box(100, 0, 50, 50), Box(200, 0, 50, 50)], scores_for(1, 2, 3))
    events = tracker.finish(9, 1.5)
    assert [(e.type, e.track_id, e.frame_index, e.timestamp) for e in events] == [
        (EventType.END, 1, 9, 1.5),
        (EventType.END, 2, 9, 1.5),
        (EventType.END, 3, 9, 1.5),
    ]
    assert tracker.finish(10, 1.6) == []


def test_ids_keep_increasing():
    tracker = Tracker(max_missed=0)
    tracker.update(0, 0.0, [Box(0, 0, 50, 50)], scores_for(1))
    events = tracker.update(1, 0.1, [Box(300, 300, 50, 50)], scores_for(1))
    assert [(e.type, e.track_id) for e in events] == [(EventType.END, 1), (EventType.NEW, 2)]


def test_validation():
    with pytest.raises(ValueError, match="--iou-threshold"):
        Tracker(iou_threshold=0)
    with pytest.raises(ValueError, match="--max-missed"):
        Tracker(max_missed=-1)
    with pytest.raises(ValueError, match="--smoothing"):
        Tracker(smoothing=0)
    with pytest.raises(ValueError, match="2 boxes"):
        Tracker().update(0, 0.0, [Box(0, 0, 5, 5), Box(9, 9, 5, 5)], scores_for(1))


def test_top_label_keeps_the_previous_label_on_a_tie():
    scores = np.array([0.4, 0.4, 0.2])
    assert top_label(scores) == 0
    assert top_label(scores, previous=1) == 1
    assert top_label(np.array([0.3, 0.5, 0.2]), previous=0) == 1


def test_a_face_not_classified_again_keeps_its_smoothed_scores():
    tracker = Tracker(smoothing=3)
    tracker.update(0, 0.0, [Box(10, 10, 50, 50)], scores_for(3))
    assert tracker.match_ids([Box(12, 10, 50, 50), Box(200, 10, 50, 50)]) == [1, None]  # nothing changed by asking
    events = tracker.update(1, 0.1, [Box(12, 10, 50, 50)], scores_for(4), fresh=[False])
    assert events == [] and tracker.latest()[0][0] == 1
    assert np.allclose(tracker.latest()[0][1], one_hot(3))  # the unused row did not enter the average
    assert tracker.predicted_boxes() == [Box(14, 10, 50, 50)]  # the box and its step still follow the face
    with pytest.raises(ValueError, match="new track"):
        tracker.update(2, 0.2, [Box(14, 10, 50, 50), Box(300, 10, 50, 50)], scores_for(3, 3), fresh=[True, False])
