"""A quiet start: native start-up notices are filtered out of stderr, and nothing else is."""

import os
import subprocess
import sys

from conftest import ROOT

FILTER_SCRIPT = """
import os, sys
from edge.quiet import notices_filtered
with notices_filtered(("INFO: a start-up notice",)):
    os.write(2, b"INFO: a start-up notice\\n")
    os.write(2, b"E a real native error\\n")
    print("a Python warning", file=sys.stderr)
print("after", file=sys.stderr)
"""


def test_only_the_named_notices_are_dropped_and_everything_else_keeps_its_order():
    result = subprocess.run([sys.executable, "-c", FILTER_SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == ["E a real native error", "a Python warning", "after"]


def test_what_was_written_before_an_error_inside_the_block_still_reaches_stderr():
    script = ("import os\nfrom edge.quiet import notices_filtered\nwith notices_filtered():\n"
              "    os.write(2, b'E native: cannot map the model\\n')\n    raise SystemExit('error: the model is broken')\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.splitlines() == ["E native: cannot map the model", "error: the model is broken"]


def test_without_a_stderr_the_block_just_runs():
    script = "import os\nfrom edge.quiet import notices_filtered\nos.close(2)\nwith notices_filtered():\n    print('ran')\n"
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout == "ran\n"


def test_edge_run_starts_without_interpreter_notices_and_still_reports_a_bad_model(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user's shell has it
    run = [sys.executable, "-m", "edge", "run", "--source", "sample", "--max-frames", "3", "--log", str(tmp_path / "e.jsonl")]
    for detector in ("haar", "blazeface"):
        result = subprocess.run([*run, "--detector", detector], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0 and result.stderr == "", result.stderr
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"not a model")
    result = subprocess.run([*run, "--model", str(broken)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "broken" in result.stderr, result.stderr


def test_demo_summary_says_where_the_events_and_the_video_went(tmp_path):
    events, video = tmp_path / "demo.jsonl", tmp_path / "demo.mp4"
    result = subprocess.run(
        [sys.executable, "-m", "edge", "run", "--source", "sample", "--max-frames", "10", "--log", str(events),
         "--save-video", str(video), "--summary"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # the events went to the file, not the terminal
    lines = result.stderr.splitlines()
    assert lines[0].startswith("10 frames in ")
    from edge.outputs.preview import playback_note

    note = [f"       {playback_note(video)}"] if playback_note(video) else []  # where an .mp4 plays, in one line
    assert lines[len(lines) - 2 - len(note):] == [f"events {events}", f"video  {video}", *note]
    assert events.read_text().count("\n") >= 2 and video.stat().st_size > 0
