"""The preprocessing contract, on its own: no model, no TensorFlow."""

import numpy as np
import pytest

from edge import contract


def test_labels_are_fer2013s_canonical_order():
    assert contract.LABELS == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    assert [contract.label_index(name) for name in (" Happy", "NEUTRAL", "angry")] == [3, 6, 0]
    with pytest.raises(ValueError, match="'contempt'"):
        contract.label_index("contempt")


def test_pixels_scale_to_minus_one_one():
    faces = np.array([0, 127, 255] * 768, np.uint8).reshape(1, 48, 48)
    scaled = contract.scale_pixels(faces)
    assert scaled.shape == (1, 48, 48, 1) and scaled.dtype == np.float32
    assert scaled.min() == -1.0 and scaled.max() == 1.0 and scaled.flat[1] == pytest.approx(127 / 127.5 - 1, abs=1e-6)
    with pytest.raises(ValueError, match="uint8"):
        contract.scale_pixels(faces.astype(np.float32))
    with pytest.raises(ValueError, match="48"):
        contract.scale_pixels(np.zeros((1, 40, 40), np.uint8))


def test_crop_resizes_the_box_and_clips_it_to_the_frame():
    gray = np.arange(200 * 300, dtype=np.uint32).reshape(200, 300).astype(np.uint8)
    assert contract.crop_face(gray, (10, 20, 96, 96)).shape == (48, 48)
    exact = contract.crop_face(gray, (5, 6, 48, 48))
    assert (exact == gray[6:54, 5:53]).all()  # a 48x48 box is taken as it is
    assert contract.crop_face(gray, (-20, -20, 60, 60)).shape == (48, 48)  # partly outside: clipped
    with pytest.raises(ValueError, match="outside"):
        contract.crop_face(gray, (400, 10, 50, 50))


def test_mirrors_are_appended_and_averaged_back():
    faces = np.arange(2 * 48 * 48, dtype=np.float32).reshape(2, 48, 48, 1)
    both = contract.with_mirrors(faces)
    assert both.shape == (4, 48, 48, 1) and (both[2] == faces[0][:, ::-1]).all()
    scores = np.array([[0.2, 0.8], [0.6, 0.4], [0.4, 0.6], [0.2, 0.8]])
    assert contract.average_mirrors(scores) == pytest.approx(np.array([[0.3, 0.7], [0.4, 0.6]]))


def test_shifted_copies_move_the_face_and_mirror_the_border():
    faces = np.arange(2 * 48 * 48, dtype=np.float32).reshape(2, 48, 48)
    views = contract.with_shifts(faces, 3)
    assert views.shape == (10, 48, 48) and (views[:2] == faces).all()
    right, left, down, up = (views[2 * k + 2 : 2 * k + 4] for k in range(4))
    assert (right[:, :, 3:] == faces[:, :, :-3]).all() and (right[:, :, :3] == faces[:, :, 2::-1]).all()
    assert (left[:, :, :-3] == faces[:, :, 3:]).all() and (left[:, :, -3:] == faces[:, :, :-4:-1]).all()
    assert (down[:, 3:] == faces[:, :-3]).all() and (up[:, :-3] == faces[:, 3:]).all()
    assert contract.shift_offsets(3) == [(0, 0), (3, 0), (-3, 0), (0, 3), (0, -3)]
    assert contract.with_shifts(faces, 0) is faces and contract.shift_offsets(0) == [(0, 0)]


def test_shift_scores_are_averaged_back_per_face():
    scores = np.array([[1.0, 0.0], [0.0, 1.0]] * 5)  # two faces, five views each, views outermost
    scores[2] = [0.5, 0.5]  # face 0's first shifted copy
    assert contract.average_shifts(scores, 3) == pytest.approx(np.array([[0.9, 0.1], [0.0, 1.0]]))
    assert contract.average_shifts(scores[:2], 0) is not None and (contract.average_shifts(scores[:2], 0) == scores[:2]).all()


def test_the_contract_as_data_is_what_sidecars_carry():
    described = contract.describe()
    assert described["labels"] == list(contract.LABELS) and described["input_shape"] == [48, 48, 1]
    assert described["pixel_scale"] == contract.PIXEL_SCALE and described["pixel_offset"] == contract.PIXEL_OFFSET
