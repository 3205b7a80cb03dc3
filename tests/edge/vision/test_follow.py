"""Following a tracked face between detector windows (template matching): where the face went, when the detector
must look instead, and that the pipeline calls the detector around a tracked face only every N frames."""

import cv2
import numpy as np
import pytest

from edge.config import SAMPLE_CLIP, SAMPLE_TRUTH, RunConfig
from edge.measure.bench import load_truth
from edge.sources.frame import Frame
from edge.timing import StageTimer
from edge.vision.faces import FacePipeline
from edge.vision.follow import FaceFollower
from edge.vision.geometry import Box
from edge.vision.reclassify import ClassifySchedule
from edge.vision.search import SearchSchedule
from edge.vision.track import Tracker


def sample_frames(count):
    """The first `count` grey frames of the bundled clip (two portraits moving a few pixels a frame)."""
    capture = cv2.VideoCapture(str(SAMPLE_CLIP))
    frames = []
    while len(frames) < count:
        ok, image = capture.read()
        assert ok, f"{SAMPLE_CLIP} has fewer than {count} frames"
        frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
    capture.release()
    return frames


TRUTH = load_truth(SAMPLE_TRUTH)


def test_a_moving_face_is_followed_to_where_it_went_until_the_detector_is_due():
    frames = sample_frames(5)
    follower = FaceFollower(every=4)
    for face, start in enumerate(TRUTH[0]):
        follower.found(frames[0], face, start)
        predicted = start
        for index in (1, 2, 3):
            followed = follower.follow(frames[index], face, predicted)
            assert followed is not None, f"face {face} lost on frame {index}"
            assert followed.iou(TRUTH[index][face]) > 0.85, (index, followed, TRUTH[index][face])
            predicted = followed
        assert follower.follow(frames[4], face, predicted) is None  # 4 frames since the detector: it looks again


def test_a_face_that_is_gone_is_handed_back_to_the_detector():
    frames = sample_frames(2)
    face = TRUTH[0][0]
    follower = FaceFollower(every=10)
    follower.found(frames[0], 0, face)
    gone = frames[1].copy()
    gone[face.y - 20 : face.y + face.h + 20, face.x - 20 : face.x + face.w + 20] = np.random.default_rng(0).integers(0, 255, (face.h + 40, face.w + 40))
    assert follower.follow(gone, 0, face) is None
    flat = np.full_like(frames[1], 90)  # a covered camera: no correlation at all (NaN scores are refused too)
    assert follower.follow(flat, 0, face) is None


def test_following_off_and_faces_the_edge_cuts_leave_the_detector_in_charge():
    frame = sample_frames(1)[0]
    face = TRUTH[0][0]
    off = FaceFollower(every=1)
    off.found(frame, 0, face)
    assert off.follow(frame, 0, face) is None
    follower = FaceFollower(every=5)
    follower.found(frame, 0, Box(-10, face.y, face.w, face.h))  # partly outside the frame: no template
    assert follower.follow(frame, 0, face) is None
    assert follower.follow(frame, 7, face) is None  # a track never found


def test_ended_tracks_are_forgotten():
    frame = sample_frames(1)[0]
    follower = FaceFollower(every=5)
    for face, box in enumerate(TRUTH[0]):
        follower.found(frame, face, box)
    follower.forget({1})
    assert follower.follow(frame, 0, TRUTH[0][0]) is None
    assert follower.follow(frame, 1, TRUTH[0][1]) is not None
    follower.forget()
    assert follower.follow(frame, 1, TRUTH[0][1]) is None


class CountingDetector:
    """Haar's interface, finding the clip's true boxes; counts the windows it is asked to search."""

    window_growth = 1.3

    def __init__(self):
        self.frame, self.windows = 0, []

    def detect(self, gray):
        return list(TRUTH[self.frame])

    def detect_in(self, gray, region, face_size=None):
        self.windows.append(self.frame)
        return [box for box in TRUTH[self.frame] if region.iou(box) > 0.3]


class FixedModel:
    labels = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

    def classify(self, crops):
        return np.tile(np.eye(7, dtype=np.float32)[6], (len(crops), 1))


@pytest.mark.parametrize("every", [1, 3])
def test_the_pipeline_asks_the_detector_about_a_tracked_face_every_n_frames_and_keeps_its_box(every):
    frames = sample_frames(12)
    detector = CountingDetector()
    faces = FacePipeline(FixedModel(), detector, Tracker(), SearchSchedule(100, 100, None), StageTimer(), ClassifySchedule(),
                         FaceFollower(every))
    for index, gray in enumerate(frames):
        detector.frame = index
        result = faces.process(Frame(index, index / 30, gray, None))
        assert len(result.boxes) == len(TRUTH[index])
        for box, truth in zip(sorted(result.boxes, key=lambda b: b.x), sorted(TRUTH[index], key=lambda b: b.x), strict=True):
            assert box.iou(truth) > 0.8, (index, box, truth)
    windows_per_frame = {index: detector.windows.count(index) for index in range(1, 12)}
    faces_tracked = len(TRUTH[0])
    if every == 1:
        assert set(windows_per_frame.values()) == {faces_tracked}
    else:  # found whole on frame 0, then the detector on frames 3, 6, 9 only
        assert [index for index, count in windows_per_frame.items() if count] == [3, 6, 9]
        assert all(count == faces_tracked for count in windows_per_frame.values() if count)


def test_the_setting_is_bounded_and_named():
    assert RunConfig().confirm_every >= 1
    with pytest.raises(ValueError, match="--confirm-every"):
        RunConfig(confirm_every=0)


@pytest.mark.parametrize("face_width, divisor", [(20, 1), (36, 1), (47, 1), (48, 2), (120, 5), (130, 5), (180, 7)])
def test_faces_are_matched_24_to_47_px_wide_shrunk_by_a_whole_factor(face_width, divisor):
    from edge.vision.follow import divisor_for, shrink

    assert divisor_for(face_width) == divisor
    frame = np.random.default_rng(1).integers(0, 256, (480, 640)).astype(np.uint8)
    region = Box(10, 20, face_width + 3, face_width)  # not a multiple of the factor: the rest is trimmed
    small = shrink(frame, region, divisor)
    assert small.shape == (face_width // divisor, (face_width + 3) // divisor)
    block = frame[20 : 20 + divisor, 10 : 10 + divisor]
    assert abs(int(small[0, 0]) - block.mean()) <= 0.5  # block averages


def test_a_region_smaller_than_two_blocks_gives_nothing_to_match():
    from edge.vision.follow import shrink

    frame = np.zeros((480, 640), np.uint8)
    assert shrink(frame, Box(632, 10, 40, 40), 5) is None  # 8 px inside the frame: fewer than 2 blocks of 5
    assert shrink(frame, Box(630, 10, 40, 40), 5).shape == (8, 2)
    assert shrink(frame, Box(-100, -100, 50, 50), 1) is None


class SkippingDetector(CountingDetector):
    """Haar's interface with `skips_tracked`: records what each whole-frame search was told to leave out."""

    skips_tracked = True

    def __init__(self):
        super().__init__()
        self.skips = {}

    def detect(self, gray, skip=()):
        self.skips[self.frame] = list(skip)
        return [box for box in TRUTH[self.frame] if not any(2 * box.intersection(region) > box.area for region in skip)]


def test_a_whole_frame_search_with_faces_tracked_looks_only_for_new_ones():
    frames = sample_frames(9)
    detector = SkippingDetector()
    faces = FacePipeline(FixedModel(), detector, Tracker(), SearchSchedule(4, 4, None), StageTimer(), ClassifySchedule(),
                         FaceFollower(3))
    for index, gray in enumerate(frames):
        detector.frame = index
        result = faces.process(Frame(index, index / 30, gray, None))
        assert result.full_detection == (index in (0, 4, 8))
        for box, truth in zip(sorted(result.boxes, key=lambda b: b.x), sorted(TRUTH[index], key=lambda b: b.x), strict=True):
            assert box.iou(truth) > 0.8, (index, box, truth)
    assert sorted(detector.skips) == [0, 4, 8] and detector.skips[0] == []  # nothing tracked yet: the whole frame
    for index in (4, 8):  # each tracked face, as just found around its track, grown as a window is
        assert len(detector.skips[index]) == len(TRUTH[index])
        for truth in TRUTH[index]:
            assert any(region.intersection(truth) == truth.area and region.w > truth.w for region in detector.skips[index])
