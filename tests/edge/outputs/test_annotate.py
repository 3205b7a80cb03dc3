import itertools

import numpy as np
import pytest

from edge.contract import LABELS
from edge.outputs.annotate import FaceAnnotation, caption, draw_faces, layout_faces, to_bgr
from edge.outputs.emoji import EMOJI_FEATURES, draw_emoji
from edge.outputs.layout import shared_area

H, W = 480, 640


def grey_frame(height=H, width=W):
    return np.full((height, width, 3), 110, np.uint8)


def one_hot(label, peak=0.9):
    scores = [(1 - peak) / (len(LABELS) - 1)] * len(LABELS)
    scores[LABELS.index(label)] = peak
    return tuple(scores)


def face(box, label="happy", track_id=1, scores=None):
    scores = one_hot(label) if scores is None else scores
    return FaceAnnotation(box, track_id, label, max(scores, default=0.9), scores)


def changed(before, after):
    """Mask of pixels that differ in any channel."""
    return np.any(before != after, axis=-1)


def test_caption_has_id_label_and_percent():
    assert caption(face((0, 0, 10, 10), "happy", 3, one_hot("happy", 0.82))) == "#3 happy 82%"
    assert caption(face((0, 0, 10, 10), "sad", None, one_hot("sad", 0.5))) == "sad 50%"


def test_to_bgr_converts_grey_and_passes_bgr_through():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    bgr = to_bgr(grey)
    assert bgr.shape == (3, 4, 3) and all(np.array_equal(bgr[..., c], grey) for c in range(3))
    assert to_bgr(grey[..., None]).shape == (3, 4, 3)
    frame = grey_frame(4, 4)
    assert to_bgr(frame) is frame
    with pytest.raises(ValueError, match="uint8"):
        to_bgr(grey.astype(np.float32))
    with pytest.raises(ValueError, match="shape|\\(H, W"):
        to_bgr(np.zeros((3, 4, 4), np.uint8))


def test_box_and_caption_drawn_in_place_far_pixels_untouched():
    frame = grey_frame()
    out = draw_faces(frame, [face((270, 190, 100, 100), scores=())], LABELS)
    assert out is frame
    mask = changed(grey_frame(), out)
    assert mask[190, 270:370].all() and mask[190:290, 270].all()  # box edges
    assert mask[165:188, 275:330].any()  # caption above the box
    assert not mask[210:270, 290:350].any()  # inside the box stays visible
    assert not mask[:100].any() and not mask[380:].any() and not mask[:, :200].any()


def test_bars_drawn_only_when_the_face_has_scores():
    box = (300, 220, 40, 40)
    with_bars = changed(grey_frame(), draw_faces(grey_frame(), [face(box)], LABELS))
    without = changed(grey_frame(), draw_faces(grey_frame(), [face(box, scores=())], LABELS))
    assert with_bars[220:320, 345:450].mean() > 0.5  # the panel, right of the face
    assert not without[220:320, 345:450].any()


def test_every_face_gets_its_own_panel_beside_it_and_off_every_face():
    faces = [face((100, 150, 150, 150), "happy", 1), face((400, 250, 30, 30), "sad", 2)]
    placed, _ = layout_faces(grey_frame(), faces, LABELS)
    panels = {item.face: item.rect for item in placed if item.kind == "panel"}
    assert set(panels) == {0, 1}
    for i, rect in panels.items():
        assert not any(shared_area(rect, f.box) for f in faces)
        x, y, w, h = faces[i].box
        gap_x = max(rect[0] - (x + w), x - (rect[0] + rect[2]), 0)
        gap_y = max(rect[1] - (y + h), y - (rect[1] + rect[3]), 0)
        assert gap_x <= 8 and gap_y <= 8, f"panel {rect} is not next to face {faces[i].box}"


def test_a_panel_names_its_face_in_its_colour():
    box = (60, 100, 120, 120)
    frame = draw_faces(grey_frame(), [face(box, "sad", 4)], LABELS)
    placed, _ = layout_faces(grey_frame(), [face(box, "sad", 4)], LABELS)
    (x, y, w, _), = [item.rect for item in placed if item.kind == "panel"]
    header = frame[y + 1 : y + 4, x + w - 6 : x + w - 2].reshape(-1, 3)
    assert (header == (210, 130, 40)).all()  # the sad colour, as the box


def test_no_panel_on_a_frame_too_small_for_it():
    tiny = grey_frame(120, 160)
    with_bars = draw_faces(tiny.copy(), [face((60, 40, 30, 30))], LABELS)
    without = draw_faces(tiny.copy(), [face((60, 40, 30, 30), scores=())], LABELS)
    assert np.array_equal(with_bars, without)


def test_scores_must_match_labels():
    with pytest.raises(ValueError, match="6 scores but there are 7 labels"):
        draw_faces(grey_frame(), [face((10, 10, 50, 50), scores=(0.5,) * 6)], LABELS)


def test_each_emoji_draws_something_and_they_all_differ():
    drawings = {}
    for label in LABELS:
        canvas = grey_frame(120, 120)
        draw_emoji(canvas, label, (60, 60), 50)
        assert changed(grey_frame(120, 120), canvas).mean() > 0.5  # most of the disc
        drawings[label] = canvas
    for a, b in itertools.combinations(LABELS, 2):
        differing = np.any(np.abs(drawings[a].astype(int) - drawings[b].astype(int)) > 30, axis=-1).sum()
        assert differing > 150, f"{a} and {b} emoji look alike ({differing} pixels differ)"


def test_every_label_has_an_emoji_and_unknown_ones_raise():
    assert set(EMOJI_FEATURES) == set(LABELS)
    with pytest.raises(ValueError, match="no emoji for 'bored'"):
        draw_emoji(grey_frame(), "bored", (50, 50), 20)


EDGE_BOXES = [
    (0, 0, 80, 80),
    (W - 80, 0, 80, 80),
    (0, H - 80, 80, 80),
    (W - 80, H - 80, 80, 80),
    (280, 0, 80, 80),
    (280, H - 80, 80, 80),
    (0, 200, 80, 80),
    (W - 80, 200, 80, 80),
    (-40, -40, 80, 80),  # partly outside
    (W - 40, H - 40, 80, 80),
    (-40, 200, 80, 80),
    (300, H - 20, 80, 80),
    (-100, -100, 50, 50),  # wholly outside
    (W + 10, H + 10, 50, 50),
    (0, 0, W, H),  # the whole frame
    (-20, -20, W + 40, H + 40),
    (100, 100, 0, 0),  # degenerate
]


@pytest.mark.parametrize("box", EDGE_BOXES)
@pytest.mark.parametrize("size", [(H, W), (60, 80)])
def test_faces_at_edges_and_outside_do_not_raise(box, size):
    frame = grey_frame(*size)
    out = draw_faces(frame, [face(box, "surprise", 7), face((10, 10, 20, 20), "fear", None)], LABELS, emoji=True)
    assert out.shape == (*size, 3) and out.dtype == np.uint8


@pytest.mark.parametrize("label", LABELS)
@pytest.mark.parametrize("center", [(0, 0), (-30, 50), (639, 479), (700, 500)])
def test_emoji_at_and_past_the_edges_do_not_raise(label, center):
    draw_emoji(grey_frame(), label, center, 40)


def test_grayscale_input_gets_a_colour_copy():
    grey = np.full((H, W), 110, np.uint8)
    out = draw_faces(grey, [face((270, 190, 100, 100), "angry")], LABELS, emoji=True)
    assert out.shape == (H, W, 3)
    assert np.any(out[..., 0] != out[..., 2])  # coloured drawing
    assert (grey == 110).all()  # the grey input is left as it was
    assert draw_faces(grey, [], LABELS).shape == (H, W, 3)


