"""The motion gate and the search schedule: where and when new faces are looked for."""

import numpy as np
import pytest

from edge.vision.geometry import Box
from edge.vision.motion import THUMBNAIL_SHRINK, MotionGate, person_region, union
from edge.vision.search import SearchSchedule, search_area_around

WIDTH, HEIGHT = 640, 480
WHOLE = Box(0, 0, WIDTH, HEIGHT)


def scene(seed=0, square: Box | None = None, noise=0):
    """A textured grey frame (the same texture for a seed), optionally with a bright square and noise."""
    rng = np.random.default_rng(seed)
    frame = rng.integers(60, 120, (HEIGHT, WIDTH)).astype(np.int16)
    if square is not None:
        frame[square.y : square.y + square.h, square.x : square.x + square.w] = 250
    if noise:
        frame += np.random.default_rng(seed + 1000).integers(-noise, noise + 1, frame.shape).astype(np.int16)
    return np.clip(frame, 0, 255).astype(np.uint8)


def test_first_frame_counts_as_changed_everywhere_and_a_still_one_not():
    gate = MotionGate(threshold=12)
    assert gate.changed_area(scene(), []) == WHOLE
    assert gate.changed_area(scene(), []) is None


def test_sensor_noise_is_not_motion():
    gate = MotionGate(threshold=12)
    gate.changed_area(scene(), [])
    assert gate.changed_area(scene(noise=20), []) is None  # +-20 grey levels a pixel average out on the thumbnail


def test_something_appearing_is_found_where_it_appeared():
    gate = MotionGate(threshold=12)
    square = Box(500, 100, 40, 40)
    gate.changed_area(scene(), [])
    area = gate.changed_area(scene(square=square), [])
    assert area is not None and area.intersection(square) == square.area
    assert area.w <= square.w + 2 * THUMBNAIL_SHRINK and area.h <= square.h + 2 * THUMBNAIL_SHRINK


def test_movement_of_a_tracked_person_is_not_motion_but_the_rest_of_the_frame_is():
    gate = MotionGate(threshold=12)
    face = Box(300, 100, 60, 60)
    shoulder = Box(250, 250, 40, 40)  # below and beside the face: inside its person's region
    assert person_region(face).intersection(shoulder) == shoulder.area
    gate.changed_area(scene(), [face])
    assert gate.changed_area(scene(square=shoulder), [face]) is None
    elsewhere = Box(20, 400, 40, 40)
    assert gate.changed_area(scene(square=elsewhere), [face]).intersection(elsewhere) == elsewhere.area


def test_a_new_frame_size_starts_over():
    gate = MotionGate(threshold=12)
    gate.changed_area(scene(), [])
    assert gate.changed_area(np.zeros((240, 320), np.uint8), []) == Box(0, 0, 320, 240)


def test_union_holds_both_boxes():
    assert union(None, None) is None
    assert union(Box(1, 2, 3, 4), None) == Box(1, 2, 3, 4)
    assert union(Box(0, 0, 10, 10), Box(20, 5, 10, 10)) == Box(0, 0, 30, 15)


def test_search_area_holds_what_moved_and_is_at_least_a_third_of_the_height():
    moved = Box(600, 200, 16, 40)  # the edge of a face coming in from the right
    area = search_area_around(moved, WIDTH, HEIGHT)
    assert area.intersection(moved) == moved.area
    assert area == Box(528, 140, 112, 160)  # a third of the height square around it, cut at the frame's edge
    assert search_area_around(Box(100, 100, 200, 100), WIDTH, HEIGHT) == Box(50, 70, 300, 160)  # half as big again


class Scripted:
    """A stand-in motion gate answering from a script, one changed area per frame."""

    def __init__(self, areas):
        self.areas = list(areas)

    def changed_area(self, gray, tracked):
        return self.areas.pop(0)


def plan(schedule, frames, tracked):
    """What the schedule asks for on each frame."""
    gray = np.zeros((HEIGHT, WIDTH), np.uint8)
    return [schedule.search_area(gray, tracked) for _ in range(frames)]


def test_without_a_motion_gate_the_whole_frame_every_n_frames_and_always_without_faces():
    asked = plan(SearchSchedule(every=5, still_every=60, motion=None), 11, tracked=[Box(10, 10, 50, 50)])
    assert [i for i, area in enumerate(asked) if area == WHOLE] == [0, 5, 10] and asked.count(None) == 8
    assert plan(SearchSchedule(every=5, still_every=60, motion=None), 4, tracked=[]) == [WHOLE] * 4


def test_a_still_scene_is_searched_whole_only_every_still_interval():
    schedule = SearchSchedule(every=5, still_every=20, motion=Scripted([WHOLE] + [None] * 40))
    asked = plan(schedule, 41, tracked=[Box(10, 10, 50, 50)])
    assert [i for i, area in enumerate(asked) if area is not None] == [0, 20, 40]
    assert all(area in (None, WHOLE) for area in asked)


def test_motion_is_searched_where_it_happened_at_most_every_n_frames():
    moved = Box(560, 200, 40, 40)
    schedule = SearchSchedule(every=5, still_every=60, motion=Scripted([WHOLE, None, moved] + [moved] * 10))
    asked = plan(schedule, 13, tracked=[Box(10, 10, 50, 50)])
    searched = {i: area for i, area in enumerate(asked) if area is not None}
    assert list(searched) == [0, 5, 10]  # motion from frame 2 on, searched on the every-5 beat
    assert searched[5] == search_area_around(moved, WIDTH, HEIGHT) != WHOLE


def test_without_tracked_faces_motion_is_searched_at_once_and_large_motion_whole():
    schedule = SearchSchedule(every=5, still_every=60, motion=Scripted([WHOLE, None, Box(100, 100, 30, 30), Box(0, 0, 500, 400)]))
    asked = plan(schedule, 4, tracked=[])
    assert asked[0] == WHOLE and asked[1] is None
    assert asked[2] == search_area_around(Box(100, 100, 30, 30), WIDTH, HEIGHT)
    assert asked[3] == WHOLE  # more than half the frame: the whole of it


def test_a_lost_face_is_searched_around_where_it_was():
    schedule = SearchSchedule(every=5, still_every=60, motion=Scripted([WHOLE] + [None] * 10))
    tracked = [Box(300, 200, 60, 60)]
    plan(schedule, 3, tracked)
    schedule.lost(tracked)
    asked = plan(schedule, 3, tracked)
    assert asked[:2] == [None, None]  # the every-5 beat
    assert asked[2] == search_area_around(tracked[0].expand(2.0), WIDTH, HEIGHT)


@pytest.mark.parametrize("threshold", [0, 12])
def test_schedule_settings_come_from_the_config(threshold):
    from edge.config import RunConfig
    from edge.pipeline import StageTimer
    from edge.vision.faces import build_pipeline

    pipeline = build_pipeline(RunConfig(motion_threshold=threshold, still_detect_every=90, detect_every=7), StageTimer())
    assert (pipeline.schedule.motion is None) == (threshold == 0)
    assert (pipeline.schedule.every, pipeline.schedule.still_every) == (7, 90)


def test_after_a_gap_the_next_frame_is_searched_whole():
    gate = MotionGate(threshold=12)
    schedule = SearchSchedule(every=5, still_every=60, motion=gate)
    tracked = [Box(300, 200, 60, 60)]
    plan(schedule, 3, tracked)  # the real gate: the first frame whole, then a still scene
    assert plan(schedule, 1, tracked) == [None]
    schedule.restart()
    assert plan(schedule, 1, tracked) == [WHOLE]


@pytest.mark.parametrize("height, width", [(480, 640), (487, 645), (8, 8)])
def test_the_thumbnail_is_the_frames_8_by_8_block_means(height, width):
    from edge.vision.motion import thumbnail

    frame = np.random.default_rng(3).integers(0, 256, (height, width)).astype(np.uint8)
    rows, columns = height // THUMBNAIL_SHRINK, width // THUMBNAIL_SHRINK
    blocks = frame[: rows * THUMBNAIL_SHRINK, : columns * THUMBNAIL_SHRINK].reshape(rows, THUMBNAIL_SHRINK, columns, THUMBNAIL_SHRINK)
    means = blocks.mean(axis=(1, 3))
    small = thumbnail(frame)
    assert small.shape == (rows, columns)
    assert np.abs(small - means).max() <= 1.5  # each of three halvings rounds by half a grey level at most


def test_a_frame_smaller_than_a_thumbnail_block_is_searched_whole_every_time():
    gate = MotionGate(threshold=12)
    tiny = np.zeros((6, 40), np.uint8)
    assert gate.changed_area(tiny, []) == Box(0, 0, 40, 6)
    assert gate.changed_area(tiny, []) == Box(0, 0, 40, 6)
