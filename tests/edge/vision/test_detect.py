from pathlib import Path

import cv2
import numpy as np
import pytest

from edge import paths
from edge.vision import detect
from edge.vision.detect import FaceDetector, find_cascade
from edge.vision.geometry import Box

# --- Box ---------------------------------------------------------------------------------------


def test_box_area_and_iou():
    a = Box(0, 0, 10, 10)
    assert a.area == 100
    assert a.iou(a) == 1.0
    assert a.iou(Box(5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert a.iou(Box(20, 20, 5, 5)) == 0.0
    assert a.iou(Box(0, 0, 0, 0)) == 0.0


def test_box_scale_clip_expand():
    assert Box(10, 20, 30, 40).scale(2) == Box(20, 40, 60, 80)
    assert Box(10, 20, 30, 40).scale(0.5) == Box(5, 10, 15, 20)
    assert Box(-5, -5, 20, 20).clip(10, 12) == Box(0, 0, 10, 12)
    assert Box(50, 50, 5, 5).clip(10, 10).area == 0
    assert Box(10, 10, 20, 20).expand(2.0) == Box(0, 0, 40, 40)
    assert Box(10, 10, 20, 20).expand(0.5) == Box(15, 15, 10, 10)
    assert Box(1, 2, 3, 4).as_list() == [1, 2, 3, 4]


# --- find_cascade --------------------------------------------------------------------------------


def test_find_cascade_explicit(tmp_path):
    path = tmp_path / "mine.xml"
    path.write_text("<opencv_storage/>")
    assert find_cascade(explicit=str(path)) == path
    with pytest.raises(FileNotFoundError, match="missing.xml"):
        find_cascade(explicit=tmp_path / "missing.xml")


def test_find_cascade_prefers_cv2_data():
    if not hasattr(cv2, "data"):
        pytest.skip("this OpenCV build has no cv2.data")
    assert find_cascade() == Path(cv2.data.haarcascades) / detect.DEFAULT_CASCADE


def test_find_cascade_falls_back_to_system_then_assets(tmp_path, monkeypatch):
    monkeypatch.delattr(cv2, "data", raising=False)
    system = tmp_path / "system"
    system.mkdir()
    monkeypatch.setattr(detect, "SYSTEM_CASCADE_DIRS", (tmp_path / "absent", system))
    assert find_cascade() == paths.ASSETS / detect.DEFAULT_CASCADE  # shipped copy
    (system / detect.DEFAULT_CASCADE).write_text("<opencv_storage/>")
    assert find_cascade() == system / detect.DEFAULT_CASCADE


def test_find_cascade_error_lists_every_place(tmp_path, monkeypatch):
    monkeypatch.delattr(cv2, "data", raising=False)
    monkeypatch.setattr(detect, "SYSTEM_CASCADE_DIRS", (tmp_path / "a", tmp_path / "b"))
    monkeypatch.setattr(paths, "ASSETS", tmp_path / "assets")
    with pytest.raises(FileNotFoundError) as error:
        find_cascade()
    message = str(error.value)
    for folder in ("a", "b", "assets"):
        assert str(tmp_path / folder / detect.DEFAULT_CASCADE) in message
    assert "--cascade" in message


def test_shipped_cascade_loads():
    assert FaceDetector(cascade_path=paths.ASSETS / detect.DEFAULT_CASCADE).cascade_path.is_file()


# --- FaceDetector --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "flag"),
    [
        ({"scale_factor": 1.0}, "--scale-factor"),
        ({"min_neighbors": -1}, "--min-neighbors"),
        ({"min_size": 0}, "--min-face"),
        ({"detect_width": 40}, "--detect-width"),
    ],
)
def test_detector_validation_names_the_option(kwargs, flag):
    with pytest.raises(ValueError, match=flag):
        FaceDetector(**kwargs)


def test_detector_rejects_a_bad_cascade_file(tmp_path):
    path = tmp_path / "bad.xml"
    path.write_text("not a cascade")
    with pytest.raises(ValueError, match="bad.xml"):
        FaceDetector(cascade_path=path)


def test_detector_rejects_colour_frames():
    with pytest.raises(ValueError, match="grey"):
        FaceDetector().detect(np.zeros((10, 10, 3), np.uint8))


def test_blank_frame_has_no_faces():
    assert FaceDetector().detect(np.full((240, 320), 127, np.uint8)) == []


@pytest.fixture(scope="module")
def grace_hopper():
    matplotlib = pytest.importorskip("matplotlib")
    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if not path.is_file():
        pytest.skip(f"{path} not shipped with this matplotlib")
    return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)  # 512 x 600, one face near (155, 104, 224, 224)


EXPECTED_FACE = Box(155, 104, 224, 224)


@pytest.mark.parametrize("detect_width", [None, 320])
def test_detects_one_real_face(grace_hopper, detect_width):
    detector = FaceDetector(detect_width=detect_width)
    boxes = detector.detect(grace_hopper)
    assert len(boxes) == 1
    assert boxes[0].iou(EXPECTED_FACE) > 0.8

    region = boxes[0].expand(1.6)
    again = detector.detect_in(grace_hopper, region)
    assert len(again) == 1
    assert again[0].iou(boxes[0]) > 0.7


def hopper_face_scaled(grace_hopper, side: int, at=(300, 200)) -> tuple[np.ndarray, Box]:
    """A 640x480 grey canvas with Grace Hopper's photo shrunk so her face is `side` pixels, and that face's box."""
    ratio = side / EXPECTED_FACE.w
    small = cv2.resize(grace_hopper, None, fx=ratio, fy=ratio, interpolation=cv2.INTER_AREA)
    canvas = np.full((480, 640), 90, np.uint8)
    height, width = min(small.shape[0], 480 - at[1]), min(small.shape[1], 640 - at[0])
    canvas[at[1] : at[1] + height, at[0] : at[0] + width] = small[:height, :width]
    return canvas, Box(at[0] + round(EXPECTED_FACE.x * ratio), at[1] + round(EXPECTED_FACE.y * ratio), side, side)


def test_a_tracked_face_too_small_for_the_shrunk_frame_is_followed_at_full_size(grace_hopper):
    canvas, face = hopper_face_scaled(grace_hopper, 44)
    detector = FaceDetector(detect_width=320)  # 44 px becomes 22 px: under Haar's 24 px window
    assert detector.detect(canvas) == []
    found = detector.detect_in(canvas, face.expand(detector.window_growth), face_size=face.w)
    assert len(found) == 1 and found[0].iou(face) > 0.6


def test_a_large_tracked_face_is_searched_at_window_size(grace_hopper, monkeypatch):
    canvas, face = hopper_face_scaled(grace_hopper, 200, at=(150, 60))
    detector = FaceDetector(detect_width=320)
    searched = []
    original = detector._cascade

    class Recording:  # records what the cascade is asked, answers as the real one
        def detectMultiScale(self, image, **kwargs):
            searched.append((image.shape, kwargs["minSize"], kwargs["maxSize"]))
            return original.detectMultiScale(image, **kwargs)

    monkeypatch.setattr(detector, "_cascade", Recording())
    found = detector.detect_in(canvas, face.expand(detector.window_growth), face_size=face.w)
    assert len(found) == 1 and found[0].iou(face) > 0.6
    (shape, min_size, max_size), = searched
    side = detect.WINDOW_FACE_SIDE
    assert max(shape) <= round(side * detector.window_growth) + 1  # 260 px of window shrunk to about 62
    assert min_size[0] == round(side * detect.WINDOW_SCALES[0]) and max_size[0] == round(side * detect.WINDOW_SCALES[1])


def test_detect_in_empty_or_faceless_region(grace_hopper):
    detector = FaceDetector(detect_width=320)
    assert detector.detect_in(grace_hopper, Box(1000, 1000, 50, 50)) == []
    assert detector.detect_in(grace_hopper, Box(0, 400, 150, 150)) == []


def test_downscaled_detection_uses_the_ratio(grace_hopper):
    assert FaceDetector(detect_width=320).ratio(grace_hopper.shape[1]) == pytest.approx(320 / 512)
    assert FaceDetector(detect_width=640).ratio(grace_hopper.shape[1]) == 1.0
    assert FaceDetector().ratio(4000) == 1.0


def test_a_whole_frame_search_leaves_out_the_regions_it_is_told_to_skip():

    from edge.config import SAMPLE_CLIP
    from edge.vision.detect import painted_over

    capture = cv2.VideoCapture(str(SAMPLE_CLIP))
    ok, image = capture.read()
    capture.release()
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    detector = FaceDetector(detect_width=320)
    faces = detector.detect(gray)
    assert len(faces) == 2  # the clip's two portraits
    skipped = faces[0].expand(detector.window_growth)
    others = detector.detect(gray, skip=[skipped])
    assert len(others) == 1 and others[0].iou(faces[1]) > 0.8  # the other face is still found, where it was
    painted = painted_over(gray, [skipped, Box(600, 440, 100, 100)])  # a region past the frame's corner is clipped
    x, y, w, h = skipped.clip(640, 480)
    assert len(np.unique(painted[y : y + h, x : x + w])) == 1 and len(np.unique(painted[440:, 600:])) == 1
    untouched = np.ones(gray.shape, bool)
    untouched[y : y + h, x : x + w] = untouched[440:, 600:] = False
    assert np.array_equal(painted[untouched], gray[untouched]) and painted is not gray
