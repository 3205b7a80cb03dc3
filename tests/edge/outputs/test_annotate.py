import itertools

import numpy as np
import pytest

from edge.contract import LABELS
from edge.outputs.annotate import (
    EMOJI_FEATURES,
    FaceAnnotation,
    caption,
    draw_emoji,
    draw_faces,
    emoji_place,
    panel_origin,
    to_bgr,
)

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
    tiny = (300, 220, 20, 20)  # centre of the frame: the panel goes top-left
    with_bars = changed(grey_frame(), draw_faces(grey_frame(), [face(tiny)], LABELS))
    without = changed(grey_frame(), draw_faces(grey_frame(), [face(tiny, scores=())], LABELS))
    assert with_bars[10:100, 10:100].mean() > 0.5
    assert not without[:150, :250].any()


def test_bars_follow_the_largest_face_only():
    def render(big_scores, small_scores):
        small = FaceAnnotation((400, 250, 30, 30), 2, "sad", 0.9, small_scores)
        big = FaceAnnotation((100, 150, 150, 150), 1, "happy", 0.9, big_scores)
        return draw_faces(grey_frame(), [small, big], LABELS)

    happy, sad = one_hot("happy"), one_hot("sad")
    assert np.array_equal(render(happy, sad), render(happy, happy))  # the small face's scores: no effect
    big_changed = changed(render(happy, sad), render(sad, sad))
    assert big_changed.any()
    # The large face's scores show in the panel, which stays off the large face.
    assert not big_changed[150:300, 100:250].any()


def test_panel_origin_picks_a_corner_clear_of_the_face():
    frame, panel = (640, 480), (200, 150)
    assert panel_origin(frame, panel, (300, 200, 40, 40)) == (8, 8)  # top-left first when all are clear
    assert panel_origin(frame, panel, (0, 0, 100, 100)) == (432, 8)
    assert panel_origin(frame, panel, (0, 0, 640, 100)) == (432, 322)  # then bottom-right
    # Among clear corners, the one that also clears the other faces.
    assert panel_origin(frame, panel, (0, 0, 100, 100), [(500, 50, 50, 50)]) == (432, 322)


def test_panel_stays_off_a_face_in_each_corner():
    for box in [(0, 0, 200, 200), (440, 0, 200, 200), (0, 280, 200, 200), (440, 280, 200, 200)]:
        with_bars = draw_faces(grey_frame(), [face(box)], LABELS)
        without = draw_faces(grey_frame(), [face(box, scores=())], LABELS)
        bars = changed(with_bars, without)
        x, y, w, h = box
        assert bars.any() and not bars[y : y + h, x : x + w].any()


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


def test_emoji_goes_right_of_the_box_or_left_when_no_room():
    (cx, cy), r = emoji_place((W, H), (100, 100, 90, 90))
    assert cx - r > 190 and r == 30 and cy == 145
    (cx, _), r = emoji_place((W, H), (560, 100, 80, 80))
    assert cx + r < 560
    (cx, cy), r = emoji_place((W, H), (0, 0, W, H))  # no room anywhere: kept on screen
    assert r <= cx <= W - r and r <= cy <= H - r


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


