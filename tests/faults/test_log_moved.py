"""The event log deleted, moved away or replaced while a run writes it (logging's WatchedFileHandler
policy): reopened at its path, a record says so, nothing after it is lost; a path that cannot be
written any more ends the run with an error naming it. One writer per log."""

import json
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT, folder_deleter

from edge import pipeline
from edge.config import RunConfig
from edge.events.log import TORN_KEPT, EventLog, EventLogError
from edge.fleet.topics import SequencedLog


def records(path):
    text = path.read_text()
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def sequenced(path):
    return SequencedLog(EventLog(path), "pi1", "run1")


@pytest.mark.parametrize("remove", ["file", "folder"])
def test_a_deleted_log_is_reopened_and_says_so(tmp_path, remove):
    path = tmp_path / "logs" / "ev.jsonl"
    log = sequenced(path)
    for n in range(3):
        log.write({"event": "new", "n": n})
    if remove == "file":
        path.unlink()
    else:
        shutil.rmtree(path.parent)
    for n in range(3, 6):
        log.write({"event": "new", "n": n})
    log.close()
    got = records(path)
    assert got[0]["event"] == "log_reopened"
    assert got[0]["reason"] == ("the file was deleted or moved away" if remove == "file" else "its folder was deleted")
    assert [r["n"] for r in got[1:]] == [3, 4, 5]
    assert [r["seq"] for r in got] == [4, 5, 6, 7]  # the note has an id like every record
    assert all(r["device"] == "pi1" and r["run"] == "run1" for r in got)


def test_a_log_moved_away_keeps_its_lines_and_a_new_file_takes_the_rest(tmp_path):
    path = tmp_path / "ev.jsonl"
    log = sequenced(path)
    log.write({"event": "start"})
    path.rename(tmp_path / "ev.jsonl.old")  # logrotate without copytruncate
    log.write({"event": "stop"})
    log.close()
    assert [r["event"] for r in records(tmp_path / "ev.jsonl.old")] == ["start"]
    assert [r["event"] for r in records(path)] == ["log_reopened", "stop"]


def test_a_log_replaced_by_another_file_goes_on_in_that_file(tmp_path):
    path = tmp_path / "ev.jsonl"
    log = sequenced(path)
    log.write({"event": "start"})
    path.unlink()
    path.write_text('{"event":"someone else"}\n')
    log.write({"event": "stop"})
    log.close()
    got = records(path)
    assert [r["event"] for r in got] == ["someone else", "log_reopened", "stop"]
    assert got[1]["reason"] == "the path now names another file"


def test_a_log_path_that_became_a_folder_is_an_error_naming_it(tmp_path):
    path = tmp_path / "ev.jsonl"
    log = sequenced(path)
    log.write({"event": "start"})
    path.unlink()
    path.mkdir()
    with pytest.raises(EventLogError, match=r"ev.jsonl: cannot write the event log: the path now names a folder"):
        log.write({"event": "stop"})


def test_a_run_whose_log_folder_is_deleted_keeps_every_record_after_it(tmp_path):
    path = tmp_path / "logs" / "ev.jsonl"
    summary = pipeline.run(RunConfig(source="sample", log=str(path), stats_interval=0.2), observer=folder_deleter(path.parent, 20))
    got = records(path)
    assert got[0]["event"] == "log_reopened" and got[-1]["event"] == "stop"
    assert got[-1]["frames"] == summary["frames"] == 150
    seqs = [r["seq"] for r in got]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # nothing after the reopening is missing


def test_a_run_whose_log_became_a_folder_ends_with_an_error(tmp_path):
    path = tmp_path / "ev.jsonl"
    script = (
        "import sys, os\n"
        "from pathlib import Path\n"
        "from edge.cli import app\n"
        "import edge.vision.faces as p\n"
        "real = p.FacePipeline.process\n"
        "def process(self, frame):\n"
        "    if frame.index == 10:\n"
        "        Path(sys.argv[1]).unlink(); Path(sys.argv[1]).mkdir()\n"
        "    return real(self, frame)\n"
        "p.FacePipeline.process = process\n"
        "app(['run', '--source', 'sample', '--log', sys.argv[1], '--stats-interval', '0.1'])\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(path)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert f"error: {path}: cannot write the event log: the path now names a folder" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_second_writer_on_one_log_is_refused(tmp_path):
    path = tmp_path / "ev.jsonl"
    first = sequenced(path)
    first.write({"event": "start"})
    with pytest.raises(ValueError, match="another runtime is writing this event log"):
        EventLog(path)
    result = subprocess.run(
        [sys.executable, "-m", "edge", "run", "--source", "sample", "--log", str(path), "--max-frames", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2 and f"error: {path}: another runtime is writing this event log" in result.stderr
    first.write({"event": "stop"})
    first.close()
    assert [r["seq"] for r in records(path)] == [1, 2]  # the refused one wrote nothing
    EventLog(path).close()  # once the first is closed, the log is free


def test_a_repaired_torn_tail_carries_an_id_and_at_most_a_kilobyte_of_the_fragment(tmp_path):
    path = tmp_path / "ev.jsonl"
    torn = b'{"event":"stats","pad":"' + b"x" * 200_000
    path.write_bytes(b'{"event":"start"}\n' + torn)
    log = sequenced(path)
    log.write({"event": "start"})
    log.close()
    got = records(path)
    assert [r["event"] for r in got] == ["start", "log_repaired", "start"]
    repaired = got[1]
    assert (repaired["device"], repaired["run"], repaired["seq"]) == ("pi1", "run1", 1) and got[2]["seq"] == 2
    assert repaired["torn_bytes"] == len(torn) and repaired["torn_line_truncated"] is True
    assert len(repaired["torn_line"].encode()) == TORN_KEPT and torn.startswith(repaired["torn_line"].encode())
    assert path.stat().st_size < 2 * TORN_KEPT + 200
