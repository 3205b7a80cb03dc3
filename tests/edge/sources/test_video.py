import cv2
import numpy as np
import pytest

from edge.sources.spec import open_source
from edge.sources.video import VideoSource


def test_video_source_reads_to_the_end(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    assert writer.isOpened()
    for i in range(5):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()

    with open_source(str(path)) as source:
        assert isinstance(source, VideoSource)
        assert source.fps == pytest.approx(10.0)
        frames = []
        while (frame := source.read()) is not None:
            frames.append(frame)
        assert source.read() is None
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    assert [f.timestamp for f in frames] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert frames[0].gray.shape == (48, 64)


def test_video_source_cannot_open(tmp_path):
    path = tmp_path / "broken.avi"
    path.write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match="broken.avi"):
        VideoSource(path).open()
