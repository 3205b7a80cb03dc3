import itertools

import numpy as np
import pytest

from edge.contract import LABELS
from edge.outputs.annotate import FaceAnnotation, layout_faces
from edge.outputs.layout import Wants, clamp, inside, plan, shared_area

W, H = 640, 480


def faces_at(*boxes):
    scores = (0.05, 0.05, 0.05, 0.6, 0.1, 0.05, 0.1)
    return [FaceAnnotation(box, i + 1, "happy", 0.6, scores) for i, box in enumerate(boxes)]


SCENES = {
    "two apart": [(143, 135, 133, 133), (438, 168, 145, 145)],
    "two close": [(200, 180, 110, 110), (318, 170, 120, 120)],
    "two overlapping": [(200, 200, 120, 120), (280, 240, 120, 120)],
    "at the edges": [(0, 0, 90, 90), (W - 90, 0, 90, 90), (0, H - 90, 90, 90), (W - 90, H - 90, 90, 90)],
    "partly outside": [(-30, 150, 100, 100), (W - 60, -20, 100, 100)],
    "five faces": [(20, 160, 90, 90), (150, 140, 90, 90), (280, 170, 90, 90), (410, 150, 90, 90), (540, 180, 90, 90)],
}


@pytest.mark.parametrize("scene", SCENES)
@pytest.mark.parametrize("emoji", [False, True])
def test_overlays_never_cover_each_other_a_face_or_the_edge(scene, emoji):
    faces = faces_at(*SCENES[scene])
    frame = np.zeros((H, W, 3), np.uint8)
    placed, _ = layout_faces(frame, faces, LABELS, emoji=emoji)
    assert sorted(item.face for item in placed if item.kind == "caption") == list(range(len(faces)))
    for item in placed:
        assert inside(item.rect, (W, H)), f"{item} leaves the frame"
        for i, other in enumerate(faces):
            assert not shared_area(item.rect, other.box), f"{item} covers face {i}"
    for a, b in itertools.combinations(placed, 2):
        assert not shared_area(a.rect, b.rect), f"{a} overlaps {b}"


def test_room_enough_gives_every_face_its_emoji_and_panel():
    placed, _ = layout_faces(np.zeros((H, W, 3), np.uint8), faces_at(*SCENES["two apart"]), LABELS, emoji=True)
    kinds = sorted((item.face, item.kind) for item in placed)
    assert kinds == [(0, "caption"), (0, "emoji"), (0, "panel"), (1, "caption"), (1, "emoji"), (1, "panel")]


def test_a_caption_goes_below_when_the_face_touches_the_top():
    (caption,) = plan((W, H), [(100, 0, 100, 100)], [Wants(caption=(80, 20))])
    assert caption.rect == (100, 100, 80, 20)


def test_a_caption_with_no_free_spot_still_shows_covering_least():
    # The face fills the frame: the caption goes inside its top, in the frame.
    (caption,) = plan((W, H), [(0, 0, W, H)], [Wants(caption=(80, 20))])
    assert caption.kind == "caption" and inside(caption.rect, (W, H))


def test_emoji_and_panel_with_no_room_are_left_out():
    placed = plan((200, 150), [(0, 0, 200, 150)], [Wants(caption=(60, 16), emoji=(40,), panel=((150, 120),))])
    assert [item.kind for item in placed] == ["caption"]


def test_clamp_shifts_into_the_frame_without_shrinking():
    assert clamp((-10, 470, 50, 20), (W, H)) == (0, 460, 50, 20)
    assert clamp((630, -5, 50, 20), (W, H)) == (590, 0, 50, 20)


def test_plan_rejects_mismatched_wants():
    with pytest.raises(ValueError, match="2 boxes but 1 wants"):
        plan((W, H), [(0, 0, 1, 1), (2, 2, 1, 1)], [Wants(caption=(1, 1))])
