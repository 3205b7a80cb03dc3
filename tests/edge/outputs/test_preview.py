import cv2
import numpy as np

from edge.outputs.preview import fourcc_for, h264_available, open_writer, playback_note


def test_webm_is_vp8_and_plays_back(tmp_path):
    path = tmp_path / "clip.webm"
    assert fourcc_for(path) == "VP80"
    writer = open_writer(path, 10.0, (64, 48))
    assert writer.isOpened()
    for shade in range(0, 250, 50):
        writer.write(np.full((48, 64, 3), shade, np.uint8))
    writer.release()
    capture = cv2.VideoCapture(str(path))
    assert capture.read()[0] and int(capture.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little") == b"VP80"
    assert playback_note(path) == ""


def test_an_mp4_says_in_one_line_where_it_plays_when_this_opencv_has_no_h264(tmp_path):
    note = playback_note(tmp_path / "demo.mp4")
    if h264_available():
        assert fourcc_for(tmp_path / "demo.mp4") == "avc1" and note == ""
    else:
        assert fourcc_for(tmp_path / "demo.mp4") == "mp4v"
        assert "\n" not in note and "VLC" in note and "--save-video demo.webm" in note and len(note) < 140
