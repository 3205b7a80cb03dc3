"""BlazeFace: the numpy decoding on made-up tensors, then the shipped models on real photos whose face boxes
were checked by eye."""

import cv2
import numpy as np
import pytest

from edge.config import RunConfig
from edge.vision import blazeface
from edge.vision.blazeface import BlazeFaceDetector, BlazeFaceModel
from edge.vision.detect import FaceDetector
from edge.vision.faces import make_detector
from edge.vision.geometry import Box

# Faces in the photos, (x, y, w, h), checked by eye: the two frontal ones are OpenCV Haar's boxes (also
# recorded in edge/assets/PROVENANCE.md); the cameraman's profile (Haar finds nothing) was boxed by hand
# from ear to nose tip and brow to below the mouth.
ASTRONAUT_FACE = Box(177, 66, 95, 95)
HOPPER_FACE = Box(155, 105, 222, 222)
CAMERA_FACE = Box(186, 112, 86, 86)


def grey_photos() -> dict[str, np.ndarray]:
    skimage_data = pytest.importorskip("skimage.data")
    cbook = pytest.importorskip("matplotlib.cbook")
    hopper = cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)), cv2.IMREAD_GRAYSCALE)
    return {
        "astronaut": cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2GRAY),
        "hopper": hopper,
        "camera": skimage_data.camera(),
    }


@pytest.fixture(scope="module")
def photos():
    return grey_photos()


@pytest.fixture(scope="module")
def detector():
    return BlazeFaceDetector(tiles=1)


# --- anchors and decoding ------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "count"), [("short", 896), ("back", 896), ("full", 2304)])
def test_anchor_counts_match_the_models(name, count):
    variant = blazeface.VARIANTS[name]
    anchors = blazeface.ssd_anchors(variant.input_size, variant.strides, variant.anchors_per_cell)
    assert anchors.shape == (count, 2)
    assert anchors.min() > 0 and anchors.max() < 1


def test_anchor_order_is_row_major_with_repeats_per_cell():
    anchors = blazeface.ssd_anchors(128, (8, 16, 16, 16), 2)
    # 16 x 16 grid, 2 anchors a cell, then 8 x 8 grid, 6 anchors a cell (three layers share stride 16)
    assert np.allclose(anchors[0], anchors[1]) and np.allclose(anchors[0], [0.5 / 16, 0.5 / 16])
    assert np.allclose(anchors[2], [1.5 / 16, 0.5 / 16])
    assert np.allclose(anchors[32], [0.5 / 16, 1.5 / 16])
    assert np.allclose(anchors[512:518], [0.5 / 8, 0.5 / 8]) and np.allclose(anchors[518], [1.5 / 8, 0.5 / 8])


def test_decode_boxes_offsets_from_anchor_in_input_pixels():
    anchors = np.array([[0.25, 0.5], [0.75, 0.75]], np.float32)
    raw = np.zeros((2, 16), np.float32)
    raw[0, :4] = [12.8, -12.8, 25.6, 51.2]  # 128-pixel input: +0.1, -0.1, w 0.2, h 0.4
    boxes = blazeface.decode_boxes(raw, anchors, 128)
    assert np.allclose(boxes[0], [0.25, 0.2, 0.45, 0.6])
    assert np.allclose(boxes[1], [0.75, 0.75, 0.75, 0.75])  # no offset, no size


def test_sigmoid_scores_clip_extreme_logits():
    scores = blazeface.sigmoid_scores(np.array([[[-1e6], [0.0], [1e6]]], np.float32))
    assert np.all(np.isfinite(scores)) and scores.shape == (3,)
    assert scores[0] < 1e-30 and scores[1] == pytest.approx(0.5) and scores[2] == pytest.approx(1.0)


def test_weighted_nms_merges_overlaps_and_drops_low_scores():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 10]], np.float32)
    scores = np.array([0.9, 0.6, 0.7, 0.3], np.float32)
    kept, kept_scores = blazeface.weighted_nms(boxes, scores, threshold=0.5)
    assert kept_scores.tolist() == pytest.approx([0.9, 0.7])
    assert np.allclose(kept[0], (0.9 * boxes[0] + 0.6 * boxes[1]) / 1.5)  # score-weighted mean
    assert np.allclose(kept[1], boxes[2])
    empty, empty_scores = blazeface.weighted_nms(boxes, scores, threshold=0.95)
    assert empty.shape == (0, 4) and empty_scores.shape == (0,)


def test_letterbox_keeps_aspect_and_pads_with_zero():
    gray = np.full((48, 96), 255, np.uint8)
    tensor, factor = blazeface.letterbox(gray, 128)
    assert tensor.shape == (1, 128, 128, 3) and factor == pytest.approx(96 / 128)
    assert tensor[0, :64, :, 0].min() == pytest.approx(1.0)  # the image, scaled to [-1, 1]
    assert np.abs(tensor[0, 64:]).max() < 0.01  # mid-grey padding below it


def test_tile_grid_covers_the_frame_with_overlap():
    tiles = blazeface.tile_grid(640, 480, 2)
    assert len(tiles) == 4 and blazeface.tile_grid(640, 480, 1) == []
    covered = np.zeros((480, 640), bool)
    for x, y, side in tiles:
        assert x + side <= 640 and y + side <= 480
        covered[y : y + side, x : x + side] = True
    assert covered.all()
    # neighbours overlap by more than the largest face the clips hold (200 px)
    (x0, _, side), (x1, _, _) = tiles[0], tiles[1]
    assert x0 + side - x1 >= 200


def test_inner_edge_mask_only_drops_boxes_cut_by_a_tile_edge_inside_the_image():
    boxes = np.array([[0, 50, 40, 90], [100, 100, 150, 150], [380, 10, 427, 60]], np.float32)
    # a tile at the frame's left edge: its left side is the frame's, its right side is inside the frame
    assert blazeface.inner_edge_mask(boxes, 0, 0, 427, 640, 480).tolist() == [False, False, True]
    # a tile inside on the left: the first box is cut
    assert blazeface.inner_edge_mask(boxes, 213, 0, 427, 640, 480).tolist() == [True, False, False]


# --- the shipped models on real photos -------------------------------------------------------------


@pytest.mark.parametrize(("name", "face"), [("astronaut", ASTRONAUT_FACE), ("hopper", HOPPER_FACE)])
def test_finds_the_frontal_faces_where_haar_does(photos, detector, name, face):
    found = detector.detect(photos[name])
    assert len(found) == 1
    assert found[0].iou(face) >= 0.75, found[0]


def test_finds_the_profile_that_haar_misses(photos, detector):
    assert FaceDetector(detect_width=None).detect(photos["camera"]) == []
    found = detector.detect(photos["camera"])
    assert len(found) == 1 and found[0].iou(CAMERA_FACE) >= 0.6, found


def test_detect_in_finds_the_face_inside_a_window_only(photos, detector):
    gray = photos["astronaut"]
    window = ASTRONAUT_FACE.expand(1.6)
    found = detector.detect_in(gray, window, face_size=ASTRONAUT_FACE.w)
    assert len(found) == 1 and found[0].iou(ASTRONAUT_FACE) >= 0.6, found
    assert detector.detect_in(gray, Box(380, 300, 120, 120), face_size=95) == []  # the flag and the suit
    assert detector.detect_in(gray, Box(600, 600, 50, 50)) == []  # outside the image


def test_tiles_find_a_face_too_small_for_the_whole_frame(photos):
    small = cv2.resize(photos["astronaut"], (80, 80), interpolation=cv2.INTER_AREA)
    frame = np.full((480, 640), 128, np.uint8)
    frame[200:280, 300:380] = small  # a face about 15 px wide: 6 px at the model's input
    face = Box(300 + round(ASTRONAUT_FACE.x * 80 / 512), 200 + round(ASTRONAUT_FACE.y * 80 / 512), 15, 15)
    whole = BlazeFaceDetector(tiles=1, min_size=8).detect(frame)
    tiled = BlazeFaceDetector(tiles=3, min_size=8).detect(frame)
    assert not any(b.iou(face) >= 0.3 for b in whole)
    assert [b for b in tiled if b.iou(face) >= 0.3], tiled


def test_uniform_and_noise_frames_have_no_faces(detector):
    assert detector.detect(np.full((480, 640), 90, np.uint8)) == []
    noise = np.random.default_rng(0).integers(0, 256, (480, 640), dtype=np.uint8)
    assert BlazeFaceDetector(tiles=2).detect(noise) == []


# --- settings and errors ----------------------------------------------------------------------------


def test_bad_settings_name_the_flag():
    with pytest.raises(ValueError, match="--blazeface-score"):
        BlazeFaceDetector(score_threshold=1.5)
    with pytest.raises(ValueError, match="--blazeface-tiles"):
        BlazeFaceDetector(tiles=0)
    with pytest.raises(ValueError, match="--detector"):
        RunConfig(detector="yolo")


def test_missing_or_wrong_model_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="face_detection_back.tflite"):
        BlazeFaceModel("back", 0.5, model_dir=tmp_path)
    (tmp_path / "face_detection_back.tflite").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="face_detection_back.tflite"):
        BlazeFaceModel("back", 0.5, model_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown BlazeFace variant"):
        BlazeFaceModel("tiny", 0.5)


def test_gray_input_is_checked(detector):
    with pytest.raises(ValueError, match="grey"):
        detector.detect(np.zeros((48, 48, 3), np.uint8))


def test_make_detector_follows_the_setting():
    assert isinstance(make_detector(RunConfig()), FaceDetector)
    chosen = make_detector(RunConfig(detector="blazeface", blazeface_tiles=3, blazeface_score=0.7, min_face=40))
    assert isinstance(chosen, BlazeFaceDetector)
    assert (chosen.tiles, chosen.full.score_threshold, chosen.min_size) == (3, 0.7, 40)


@pytest.mark.slow
def test_eval_uses_the_chosen_detector(photos, tmp_path):
    import json
    import subprocess
    import sys

    from conftest import ROOT

    for label, name in (("happy", "astronaut"), ("neutral", "camera")):
        (tmp_path / "faces" / label).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "faces" / label / f"{name}.png"), photos[name])
    found = {}
    for detector in ("haar", "blazeface"):
        out = tmp_path / detector
        result = subprocess.run(
            [sys.executable, "-m", "edge", "eval", str(tmp_path / "faces"), "--detector", detector, "--out-dir", str(out)],
            cwd=ROOT, capture_output=True, text=True, timeout=300,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        found[detector] = json.loads((out / "eval_report.json").read_text())["images_with_face"]
    assert found == {"haar": 1, "blazeface": 2}  # Haar misses the profile
