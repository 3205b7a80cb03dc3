import io

from edge.outputs.console import VideoProgress, faces_text, image_line


def test_faces_text_reads_like_a_sentence():
    assert faces_text([]) == "no faces"
    assert faces_text([{"label": "sad", "score": 0.8}]) == "1 face sad 0.80"
    assert faces_text([{"label": "happy", "score": 0.994}, {"label": "neutral", "score": 0.57}]) == "2 faces happy 0.99, neutral 0.57"


def test_an_image_line_and_an_unreadable_one():
    record = {"event": "image", "image": "a/b.jpg", "faces": [{"label": "happy", "score": 0.99}]}
    assert image_line(1, 4, record, 171.2) == "image 1/4 a/b.jpg: 1 face happy 0.99, 171 ms"
    error = {"event": "error", "image": "c.jpg", "error": "cannot decode"}
    assert image_line(2, 4, error, 0) == "image 2/4 c.jpg: not read (cannot decode)"


def test_video_progress_redraws_one_line_at_most_every_interval_and_ends_it():
    now = [0.0]
    stream = io.StringIO()
    progress = VideoProgress(stream, total=300, interval=0.5, clock=lambda: now[0])
    progress.update(1, 2)
    now[0] = 0.2
    progress.update(2, 2)  # too soon: not drawn
    now[0] = 1.0
    progress.update(30, 1)
    progress.close()
    drawn = stream.getvalue()
    assert drawn.count("\r") == 3 and drawn.endswith("\n") and drawn.count("\n") == 1
    assert "frame 30/300 (10%), 1 face, 30.0 FPS" in drawn
    assert VideoProgress(io.StringIO()).text(7, 0, 0) == "frame 7, 0 faces"


def test_nothing_drawn_means_nothing_to_end():
    stream = io.StringIO()
    VideoProgress(stream).close()
    assert stream.getvalue() == ""
