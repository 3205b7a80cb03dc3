import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import replace

import cv2
import numpy as np
import pytest
from conftest import ROOT, stats_due_at

from edge import pipeline
from edge.config import SAMPLE_CLIP, SAMPLE_TRUTH, RunConfig
from edge.contract import LABELS
from edge.measure.bench import load_truth
from edge.outputs.preview import Outputs
from edge.sources.frame import Frame, SourceError
from edge.vision.faces import merge_duplicates
from edge.vision.geometry import match_boxes


def read_log(path):
    lines = path.read_text().splitlines()
    return [json.loads(line) for line in lines]  # every line must parse


def test_sample_clip_end_to_end(tmp_path):
    log = tmp_path / "events.jsonl"
    found = {}
    hold = stats_due_at(75, 0.5)

    def observe(result):
        found[result.frame.index] = result.boxes
        hold(result)

    summary = pipeline.run(RunConfig(source="sample", log=str(log), stats_interval=0.5), observer=observe)
    records = read_log(log)
    kinds = [r["event"] for r in records]
    assert kinds[0] == "start" and kinds[-1] == "stop"
    assert records[-1] == json.loads(json.dumps(summary))
    assert summary["frames"] == 150 and summary["reason"] == "end of source"
    news = [r for r in records if r["event"] == "new"]
    ends = [r for r in records if r["event"] == "end"]
    # two faces; Grace Hopper leaves the frame and comes back: a third track
    assert len(news) >= 2 and sorted(r["track"] for r in news) == sorted(r["track"] for r in ends)
    for record in news + ends:
        assert set(record) >= {"time", "t", "frame", "track", "box", "label", "score", "scores"}
        assert len(record["scores"]) == 7 and abs(sum(record["scores"].values()) - 1) < 0.05
    truth = load_truth(SAMPLE_TRUTH)
    matched = sum(len(match_boxes(found[i], truth[i], 0.5)) for i in truth)
    expected = sum(len(boxes) for boxes in truth.values())
    assert matched >= 0.95 * expected and summary["faces"] - matched <= 5  # recall and false detections
    assert "stats" in kinds
    stats = next(r for r in records if r["event"] == "stats")
    assert {"camera_fps", "processing_fps", "stage_ms", "faces", "dropped"} <= set(stats)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl"]  # privacy: no frames or faces written


@pytest.mark.slow
def test_the_motion_gate_searches_the_whole_frame_far_less_and_finds_as_many_faces(tmp_path):
    truth = load_truth(SAMPLE_TRUTH)
    expected = sum(len(boxes) for boxes in truth.values())
    outcomes = {}
    for threshold in (0, 12):
        found = {}
        summary = pipeline.run(
            RunConfig(source="sample", log=str(tmp_path / f"{threshold}.jsonl"), motion_threshold=threshold),
            observer=lambda result, found=found: found.__setitem__(result.frame.index, result.boxes),
        )
        matched = sum(len(match_boxes(found[i], truth[i], 0.5)) for i in truth)
        outcomes[threshold] = (summary["full_detections"], matched, summary["faces"] - matched)
    (whole_ungated, matched_ungated, false_ungated), (whole_gated, matched_gated, false_gated) = outcomes[0], outcomes[12]
    assert whole_ungated == 30  # every 5th of 150 frames
    # the first frame, every 60th and none for the faces' own movement
    assert whole_gated <= 5, outcomes
    assert matched_gated >= 0.95 * expected and matched_gated >= matched_ungated - 3, outcomes
    assert false_gated <= max(false_ungated, 2), outcomes


def test_annotated_video_only_when_asked(tmp_path):
    video = tmp_path / "out" / "demo.mp4"
    pipeline.run(RunConfig(source="sample", log=str(tmp_path / "e.jsonl"), save_video=str(video), emoji=True, max_frames=20))
    capture = cv2.VideoCapture(str(video))
    frames = 0
    while capture.read()[0]:
        frames += 1
    assert frames == 20


def first_frames(count):
    capture = cv2.VideoCapture(str(SAMPLE_CLIP))
    frames = [capture.read()[1] for _ in range(count)]
    capture.release()
    return frames


def test_image_and_folder_sources_write_annotated_images_and_json(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i, frame in enumerate(first_frames(3)):
        cv2.imwrite(str(folder / f"shot{i}.png"), frame)
    out = tmp_path / "annotated"
    summary = pipeline.run(RunConfig(source=str(folder), log=str(tmp_path / "e.jsonl"), save_images=str(out)))
    assert summary["images"] == 3 and summary["errors"] == 0
    for i in range(3):
        faces = json.loads((out / f"shot{i}.json").read_text())["faces"]
        assert len(faces) == 2 and {"box", "label", "score", "scores"} <= set(faces[0])
        assert cv2.imread(str(out / f"shot{i}_annotated.png")) is not None
    single = pipeline.run(RunConfig(source=str(folder / "shot0.png"), log=str(tmp_path / "s.jsonl")))
    assert single["images"] == 1 and single["faces"] == 2


def test_photos_print_one_readable_line_each_when_events_go_to_a_file(tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    for i, frame in enumerate(first_frames(2)):
        cv2.imwrite(str(folder / f"shot{i}.png"), frame)
    (folder / "zz_broken.png").write_bytes(b"not a picture")
    pipeline.run(RunConfig(source=str(folder), log=str(tmp_path / "e.jsonl")))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and not any(line.startswith("{") for line in lines)
    assert re.fullmatch(r"image 1/3 shot0\.png: 2 faces [a-z]+ \d\.\d\d, [a-z]+ \d\.\d\d, \d+ ms", lines[0])
    assert lines[2].startswith("image 3/3 zz_broken.png: not read (")
    pipeline.run(RunConfig(source=str(folder), log="-"))  # --log -: the records are the output, nothing else
    assert all(json.loads(line) for line in capsys.readouterr().out.splitlines())


class FlakyCamera:
    """A live source that delivers frames, fails for two reads, then delivers again."""

    live, fps, description, scale_to_main = True, 30.0, "flaky test camera", 1.0

    def __init__(self):
        self.frames = first_frames(1) * 6
        self.reads = 0

    def open(self):
        pass

    def close(self):
        pass

    def read(self):
        self.reads += 1
        if self.reads in (3, 4):
            raise SourceError("camera unplugged")
        if not self.frames:
            return None
        gray = cv2.cvtColor(self.frames.pop(), cv2.COLOR_BGR2GRAY)
        # Synthetic time, one frame interval per read: a slow first frame on a busy machine must not
        # count as dropped frames (the wall clock made this test fail 1 run in 6).
        return Frame(self.reads, self.reads / self.fps, gray, None)


def test_a_camera_that_stops_is_reopened_and_the_gap_logged(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "open_source", lambda *a, **k: FlakyCamera())
    log = tmp_path / "e.jsonl"
    summary = pipeline.run(RunConfig(source="usb:0", log=str(log), max_frames=5))
    records = read_log(log)
    kinds = [r["event"] for r in records]
    gaps = [r for r in records if r["event"] == "source_gap"]
    assert len(gaps) == 1 and gaps[0]["reopen_attempts"] >= 1 and "camera unplugged" in gaps[0]["error"]
    assert kinds.index("source_lost") < kinds.index("source_gap")  # the outage is logged when it starts
    # once frames are back, the faces seen before the outage end and new tracks start
    gap = kinds.index("source_gap")
    assert kinds[gap + 1 : gap + 5] == ["end", "end", "new", "new"]
    assert summary["frames"] == 5 and records[-1]["event"] == "stop" and summary["dropped"] == 0


class DeadCamera(FlakyCamera):
    def read(self):
        self.reads += 1
        if self.reads > 1:
            raise SourceError("camera gone for good")
        return super().read()

    def open(self):
        if self.reads > 1:
            raise SourceError("no camera")


def test_duration_ends_a_run_waiting_for_a_lost_camera(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "open_source", lambda *a, **k: DeadCamera())
    log = tmp_path / "e.jsonl"
    started = time.monotonic()
    summary = pipeline.run(RunConfig(source="usb:0", log=str(log), duration=1.5))
    assert time.monotonic() - started < 10 and summary["reason"] == "duration"
    kinds = [r["event"] for r in read_log(log)]
    assert kinds == ["start", "new", "new", "source_lost", "end", "end", "stop"]  # two faces in the frame


def test_sigterm_leaves_a_complete_log(tmp_path):
    log = tmp_path / "e.jsonl"
    # looping, the clip ends only by the signal, however fast the CPU
    process = subprocess.Popen(
        [sys.executable, "-m", "edge", "run", "--source", "sample", "--loop", "--log", str(log), "--detect-width", "0", "--detect-every", "1"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline and (not log.exists() or '"event":"new"' not in log.read_text()):
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    records = read_log(log)
    assert records[0]["event"] == "start" and records[-1]["event"] == "stop"
    assert records[-1]["reason"] == "signal"
    news = {r["track"] for r in records if r["event"] == "new"}
    assert news == {r["track"] for r in records if r["event"] == "end"}  # every track closed


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "edge", *args], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)


def test_bad_model_and_missing_camera_are_clear_errors(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"nope")
    result = run_cli("run", "--model", str(bad), "--log", str(tmp_path / "e.jsonl"))
    assert result.returncode == 2 and f"{tmp_path / 'bad.json'}: sidecar JSON missing" in result.stderr
    assert "Traceback" not in result.stderr
    result = run_cli("run", "--source", "usb:99", "--log", str(tmp_path / "e.jsonl"))
    assert result.returncode == 2 and "cannot open USB camera 99" in result.stderr
    result = run_cli("run", "--source", "nowhere/at/all", "--log", "-")
    assert result.returncode == 2 and "--source" in result.stderr


def test_runtime_runs_without_tensorflow(tmp_path):
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('tensorflow', 'keras', 'train', 'convert'):\n"
        "            raise ImportError(f'{name} is blocked in this test')\n"
        "sys.meta_path.insert(0, Block())\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{blocker}{os.pathsep}{ROOT}"}
    code = (
        "import time, sys; t = time.perf_counter()\n"
        "import edge.cli, edge.pipeline\n"
        "from edge.config import RunConfig\n"
        "s = edge.pipeline.run(RunConfig(source='sample', log='-', max_frames=10))\n"
        "assert 'tensorflow' not in sys.modules\n"
        "print('faces', s['faces'])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "faces 20" in result.stdout


def test_max_frames_and_duration_bound_a_run(tmp_path):
    base = RunConfig(source="sample", log=str(tmp_path / "e.jsonl"))
    assert pipeline.run(replace(base, max_frames=7))["frames"] == 7
    short = pipeline.run(replace(base, duration=0.2, detect_width=0, detect_every=1))
    assert short["reason"] == "duration" and short["frames"] < 150


def test_overlapping_window_detections_are_merged():
    from edge.vision.geometry import Box

    same_face = [Box(10, 10, 100, 100), Box(12, 11, 98, 100)]
    assert merge_duplicates(same_face) == [Box(10, 10, 100, 100)]
    two_faces = [Box(10, 10, 100, 100), Box(300, 10, 100, 100)]
    assert merge_duplicates(two_faces) == two_faces


def test_boxes_found_on_the_lores_stream_are_drawn_on_the_main_stream(tmp_path):
    """picamera2: detection runs on the 320x240 lores Y plane, annotation on the 640x480 main image."""
    from edge.vision.geometry import Box

    color = np.zeros((480, 640, 3), np.uint8)
    outputs = Outputs(RunConfig(), tuple("abcdefg"), 30, scale_to_main=2.0)
    drawn, annotations = outputs.annotate(color, [(Box(50, 60, 40, 40), (1 / 7,) * 7, 3)])
    assert annotations[0].box == (100, 120, 80, 80) and annotations[0].track_id == 3
    assert drawn.shape == (480, 640, 3) and drawn[120:200, 100].any()  # the box's left edge, in main pixels
    assert not color.any()  # drawn on a copy


def photo_with_face_at(grace, x, y, size=(640, 480)):
    """A grey canvas with Grace Hopper's face pasted at (x, y): photos whose faces lie in different places."""
    canvas = np.full((size[1], size[0], 3), 60, np.uint8)
    face = cv2.resize(grace, (200, 240))
    canvas[y : y + 240, x : x + 200] = face
    return canvas


def test_a_folder_of_photos_is_stills_each_on_its_own(tmp_path):
    from conftest import grace_hopper_path

    grace = cv2.imread(str(grace_hopper_path()))
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    cv2.imwrite(str(folder / "a_left.png"), photo_with_face_at(grace, 20, 20))
    cv2.imwrite(str(folder / "sub" / "b_right.tif"), photo_with_face_at(grace, 420, 220))
    (folder / "c_broken.jpg").write_bytes(b"\xff\xd8 truncated jpeg")
    log, table = tmp_path / "events.jsonl", tmp_path / "faces.csv"
    summary = pipeline.run(RunConfig(source=str(folder), log=str(log), csv=str(table)))
    records = read_log(log)
    assert [r["event"] for r in records] == ["start", "image", "error", "image", "stop"]  # sorted by relative path
    assert summary == {**records[-1], "time": summary["time"]} and summary["images"] == 2 and summary["errors"] == 1
    assert "c_broken.jpg" in records[2]["error"] and records[2]["image"] == "c_broken.jpg"
    left, right = records[1], records[3]
    assert left["image"] == "a_left.png" and right["image"] == "sub/b_right.tif" and left["size"] == [640, 480]
    for record, (x, y) in ((left, (20, 20)), (right, (420, 220))):
        assert len(record["faces"]) == 1  # the second photo's face is found although the first's was elsewhere
        bx, by, bw, bh = record["faces"][0]["box"]
        assert x <= bx + bw / 2 <= x + 200 and y <= by + bh / 2 <= y + 240
    # each photo's result is what running it alone gives: nothing carried from one photo to the next
    for record in (left, right):
        alone = tmp_path / f"alone_{len(record['image'])}.jsonl"
        pipeline.run(RunConfig(source=str(folder / record["image"]), log=str(alone)))
        assert read_log(alone)[1]["faces"] == record["faces"]
    rows = list(csv.DictReader(table.open()))
    assert [r["image"] for r in rows] == ["a_left.png", "sub/b_right.tif"]
    assert list(rows[0]) == ["image", "frame", "t", "face", "track", "x", "y", "w", "h", "label", "score", *LABELS]
    assert rows[0]["label"] == left["faces"][0]["label"] and float(rows[0][rows[0]["label"]]) == left["faces"][0]["score"]


def test_an_image_without_a_face_still_gets_a_csv_row_and_annotated_output(tmp_path):
    blank = tmp_path / "in" / "blank.png"
    blank.parent.mkdir()
    cv2.imwrite(str(blank), np.full((120, 160, 3), 90, np.uint8))
    out, table = tmp_path / "out", tmp_path / "faces.csv"
    summary = pipeline.run(RunConfig(source=str(blank.parent), log=str(tmp_path / "e.jsonl"), csv=str(table), save_images=str(out)))
    assert summary["images"] == 1 and summary["faces"] == 0
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 1 and rows[0]["image"] == "blank.png" and rows[0]["face"] == "" and rows[0]["label"] == ""
    saved = json.loads((out / "blank.json").read_text())
    assert saved["event"] == "image" and saved["faces"] == [] and (out / "blank_annotated.png").is_file()


def test_video_csv_has_a_row_per_face_per_frame_with_its_track(tmp_path):
    table = tmp_path / "faces.csv"
    summary = pipeline.run(RunConfig(source="sample", log=str(tmp_path / "e.jsonl"), csv=str(table), max_frames=10))
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == summary["faces"] and {r["track"] for r in rows} == {"1", "2"}
    assert rows[0]["image"] == "" and rows[0]["frame"] == "0" and float(rows[-1]["t"]) > 0


def test_loop_keeps_a_face_s_track_across_the_seam(tmp_path):
    log = tmp_path / "e.jsonl"
    pipeline.run(RunConfig(source="sample", loop=True, max_frames=170, log=str(log)))
    tracks = [json.loads(line) for line in log.read_text().splitlines() if '"track"' in line]
    first = next(r["track"] for r in tracks if r["event"] == "new")
    ended = [r["frame"] for r in tracks if r["event"] == "end" and r["track"] == first]
    assert ended == [169]  # ended only by the run's end, not at frame 150 where the clip starts again
    assert not [r for r in tracks if r["event"] == "new" and r["frame"] == 150]


def test_the_pacing_wait_is_its_own_stage_not_capture():
    import threading

    from edge.timing import StageTimer

    now = [0.0]

    class Paced:
        live, fps, last_wait_ms = False, 30.0, 0.0

        def __init__(self):
            self.left = 3

        def read(self):
            self.last_wait_ms = 0.0
            if not self.left:
                return None
            self.left -= 1
            now[0] += 0.025  # a read of 25 ms on the timer's (fake) clock, 20 of them held back as --realtime does
            self.last_wait_ms = 20.0
            return Frame(3 - self.left, 0.0, np.zeros((4, 4), np.uint8), None)

    timer = StageTimer(clock=lambda: now[0])
    frames = list(pipeline.FrameFeed(Paced(), 0, 0, threading.Event(), timer))
    assert len(frames) == 3
    assert timer.total_ms["pace"] == pytest.approx(60.0) and timer.total_ms["capture"] == pytest.approx(15.0)


def test_a_video_s_progress_line_only_on_a_terminal_and_only_when_events_go_to_a_file(tmp_path, monkeypatch):
    class Clip:
        expected_frames = 150

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    to_file = RunConfig(log=str(tmp_path / "e.jsonl"))
    assert pipeline.video_progress(to_file, Clip()).total == 150
    assert pipeline.video_progress(replace(to_file, max_frames=40), Clip()).total == 40
    assert pipeline.video_progress(replace(to_file, loop=True), Clip()).total == 0  # a loop has no end to count to
    assert pipeline.video_progress(RunConfig(log="-"), Clip()) is None  # the JSON is the output
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert pipeline.video_progress(to_file, Clip()) is None  # a service's journal gets no progress line
