"""Image and video files as users have them: names that are not UTF-8, files cut short, photos far
larger than a camera frame. None may crash a run; each gets a record naming it."""

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import ROOT, grace_hopper_path

from edge import pipeline
from edge.config import SAMPLE_CLIP, RunConfig
from edge.sources.images import read_still
from edge.sources.video import VideoSource

LATIN1_NAME = b"caf\xe9 photo.jpg"  # a name written by a Latin-1 system: not UTF-8


def records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def edge(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "edge", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_an_image_whose_name_is_not_utf8_is_read(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    photo = grace_hopper_path().read_bytes()
    with open(os.path.join(os.fsencode(folder), LATIN1_NAME), "wb") as handle:
        handle.write(photo)
    (folder / "plain.jpg").write_bytes(photo)
    log = tmp_path / "ev.jsonl"
    result = edge("run", "--source", str(folder), "--log", str(log))
    assert result.returncode == 0, result.stderr[-2000:]  # was -11 (SIGSEGV in cv2.imread)
    got = records(log)
    images = {r["image"]: r for r in got if r["event"] == "image"}
    assert set(images) == {"caf\\xe9 photo.jpg", "plain.jpg"}  # the byte that is not UTF-8, as \xNN
    assert images["caf\\xe9 photo.jpg"]["faces"] == images["plain.jpg"]["faces"] != []
    assert got[-1]["event"] == "stop" and got[-1]["images"] == 2 and got[-1]["errors"] == 0


def test_eval_takes_an_image_whose_name_is_not_utf8(tmp_path):
    happy = tmp_path / "labelled" / "happy"
    happy.mkdir(parents=True)
    with open(os.path.join(os.fsencode(happy), LATIN1_NAME), "wb") as handle:
        handle.write(grace_hopper_path().read_bytes())
    result = edge("eval", str(tmp_path / "labelled"), "--out-dir", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "out" / "eval_report.json").read_text())
    assert report["images"] == 1 and report["unreadable"] == []


def test_a_video_whose_name_is_not_utf8_plays(tmp_path):
    name = os.path.join(os.fsencode(tmp_path), b"v\xe9deo.mp4")
    with open(name, "wb") as handle:
        handle.write(SAMPLE_CLIP.read_bytes())
    with VideoSource(os.fsdecode(name)) as source:
        frames = 0
        while source.read() is not None:
            frames += 1
    assert frames == 150 and source.description == f"video {tmp_path}/v\\xe9deo.mp4"


def test_a_save_video_name_that_is_not_utf8_is_an_error_not_a_crash(tmp_path):
    target = os.fsdecode(os.path.join(os.fsencode(tmp_path), b"out\xe9.mp4"))
    with pytest.raises(ValueError, match=r"--save-video .*out\\xe9.mp4: OpenCV cannot take a file name that is not UTF-8"):
        pipeline.run(RunConfig(source="sample", log=str(tmp_path / "ev.jsonl"), save_video=target, max_frames=2))


def test_a_truncated_jpeg_gets_an_error_record_naming_it(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    photo = grace_hopper_path().read_bytes()
    (folder / "cut.jpg").write_bytes(photo[: len(photo) * 2 // 3])
    (folder / "whole.jpg").write_bytes(photo)
    with pytest.raises(ValueError, match=r"cut.jpg: truncated or damaged JPEG"):
        read_still(folder / "cut.jpg")
    log = tmp_path / "ev.jsonl"
    summary = pipeline.run(RunConfig(source=str(folder), log=str(log)))
    got = records(log)
    errors = [r for r in got if r["event"] == "error"]
    assert len(errors) == 1 and errors[0]["image"] == "cut.jpg" and str(folder / "cut.jpg") in errors[0]["error"]
    assert [r["image"] for r in got if r["event"] == "image"] == ["whole.jpg"]
    assert summary["errors"] == 1 and summary["images"] == 1


def test_a_truncated_video_says_it_ended_early(tmp_path):
    whole, cut = tmp_path / "whole.avi", tmp_path / "cut.avi"
    capture = cv2.VideoCapture(str(SAMPLE_CLIP))
    writer = cv2.VideoWriter(str(whole), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (320, 240))
    while (frame := capture.read())[0]:
        writer.write(cv2.resize(frame[1], (320, 240)))
    writer.release()
    capture.release()
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    whole_run = pipeline.run(RunConfig(source=str(whole), log=str(tmp_path / "whole.jsonl")))
    assert whole_run["reason"] == "end of source"
    summary = pipeline.run(RunConfig(source=str(cut), log=str(tmp_path / "cut.jsonl")))
    assert 0 < summary["frames"] < 150
    assert summary["reason"] == (
        f"end of source: {cut} ended early, at frame {summary['frames']} of the 150 its header promises: "
        "the file is truncated or damaged"
    )
    # an mp4 whose index (at its end) was cut off cannot be opened at all: that says so too
    clipped = tmp_path / "clipped.mp4"
    clipped.write_bytes(SAMPLE_CLIP.read_bytes()[:150_000])
    with pytest.raises(ValueError, match=r"cannot open video .*clipped.mp4 \(.*damaged file"):
        pipeline.run(RunConfig(source=str(clipped), log=str(tmp_path / "clipped.jsonl")))


def test_a_photo_gives_the_same_result_with_or_without_save_images(tmp_path):
    photo = tmp_path / "grace.jpg"
    photo.write_bytes(grace_hopper_path().read_bytes())
    plain, saved = tmp_path / "plain.jsonl", tmp_path / "saved.jsonl"
    pipeline.run(RunConfig(source=str(photo), log=str(plain)))
    pipeline.run(RunConfig(source=str(photo), log=str(saved), save_images=str(tmp_path / "annotated")))
    faces = [[r["faces"] for r in records(log) if r["event"] == "image"] for log in (plain, saved)]
    assert faces[0] == faces[1] and faces[0][0]  # before: 0.832 at [416,139,125,125] against 0.785 at [415,138,126,126]
    assert (tmp_path / "annotated" / "grace_annotated.png").is_file()


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_an_image_over_the_pixel_limit_is_scaled_down_on_reading(tmp_path, suffix):
    photo = cv2.imread(str(grace_hopper_path()))
    big = cv2.resize(photo, (photo.shape[1] * 4, photo.shape[0] * 4), interpolation=cv2.INTER_CUBIC)
    path = tmp_path / f"big{suffix}"
    assert cv2.imwrite(str(path), big)
    height, width = big.shape[:2]
    limit = width * height // 10
    still = read_still(path, max_pixels=limit)
    assert still.original_size == (width, height) and still.scaled
    assert still.size[0] * still.size[1] <= limit and abs(still.size[0] / still.size[1] - width / height) < 0.01
    assert np.array_equal(still.gray, cv2.cvtColor(still.color, cv2.COLOR_BGR2GRAY))
    whole = read_still(path, max_pixels=0)  # 0: never scaled
    assert whole.size == (width, height) and not whole.scaled
    log = tmp_path / "ev.jsonl"
    pipeline.run(RunConfig(source=str(path), log=str(log), max_image_pixels=limit))
    record = next(r for r in records(log) if r["event"] == "image")
    assert record["original_size"] == [width, height] and record["size"] == list(still.size) and record["faces"]


def test_a_jpeg_over_the_limit_is_decoded_reduced_not_whole(tmp_path, monkeypatch):
    photo = cv2.imread(str(grace_hopper_path()))
    big = cv2.resize(photo, (photo.shape[1] * 4, photo.shape[0] * 4))
    path = tmp_path / "big.jpg"
    assert cv2.imwrite(str(path), big)
    decoded = []
    real = cv2.imdecode

    def spy(data, flags):
        image = real(data, flags)
        decoded.append(image.shape[:2])
        return image

    monkeypatch.setattr(cv2, "imdecode", spy)
    read_still(path, max_pixels=big.shape[0] * big.shape[1] // 20)
    assert decoded == [(big.shape[0] // 4, big.shape[1] // 4)]  # the JPEG library decoded it at 1/4 scale


def test_duration_is_honoured_for_an_image_folder(tmp_path):
    """Issue 28: --duration was ignored for image folders (every image was analysed)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for n in range(5):
        cv2.imwrite(str(folder / f"{n}.png"), np.full((64, 64, 3), 40 * n, np.uint8))
    log = tmp_path / "e.jsonl"
    summary = pipeline.run(RunConfig(source=str(folder), log=str(log), duration=0.001))
    assert summary["reason"] == "duration" and summary["images"] <= 1  # checked between images
    assert json.loads(log.read_text().splitlines()[-1])["reason"] == "duration"
