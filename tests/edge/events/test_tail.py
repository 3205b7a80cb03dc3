"""The rotated event log read as a queue: every whole line once, in order, across rotation and restarts."""

import json
import os

import pytest

from edge.events.log import EventLog
from edge.events.tail import LogTail, Position, log_files
from edge.fleet.topics import SequencedLog


def sequenced_log(path, **rotation):
    return SequencedLog(EventLog(path, **rotation), "d", "r")


def started_tail(path, position=None):
    tail = LogTail(path)
    tail.start(position)
    return tail


def write(log, count, start=0):
    for n in range(start, start + count):
        log.write({"event": "new", "track": n, "pad": "x" * 40})


def drain(tail):
    out = []
    while (item := tail.read()) is not None:
        out.append(item)
    return out


def seqs(items):
    return [json.loads(line)["seq"] for line, _ in items]


def test_reads_everything_in_order_across_rotations_while_it_is_written(tmp_path):
    path = tmp_path / "e.jsonl"
    log = sequenced_log(path, max_bytes=1000, backups=100)
    tail = started_tail(path)
    got = []
    for _ in range(10):  # the writer rotates several times between reads
        write(log, 37)
        got += drain(tail)
    log.close()
    assert seqs(got) == list(range(1, 371))
    assert len(log_files(path)) > 5
    assert drain(tail) == []


def test_a_position_resumes_after_its_line_even_once_the_file_was_renamed(tmp_path):
    path = tmp_path / "e.jsonl"
    log = sequenced_log(path, max_bytes=1000, backups=100)
    write(log, 20)
    tail = started_tail(path)
    first = [tail.read() for _ in range(12)]
    tail.close()
    _, position = first[-1]
    position = Position(position.inode, position.offset, ("d", "r", 12))
    write(log, 50)  # more rotations: the file the position points into is now path.N
    again = started_tail(path, Position.from_json(json.loads(json.dumps(position.to_json()))))
    assert again.resumed == "cursor"
    assert seqs(drain(again)) == list(range(13, 71))


def test_a_position_whose_line_does_not_match_is_not_trusted(tmp_path):
    path = tmp_path / "e.jsonl"
    log = sequenced_log(path)
    write(log, 5)
    inode = os.stat(path).st_ino
    tail = started_tail(path, Position(inode, 10, ("d", "r", 3)))  # offset 10 is not after line 3: found by its id
    assert tail.resumed == "cursor (found by id)"
    assert seqs(drain(tail)) == [4, 5]
    elsewhere = started_tail(path, Position(inode, 10, ("d", "other-run", 3)))  # nowhere: all there is is newer
    assert elsewhere.resumed == "cursor not found: from the oldest file"
    assert seqs(drain(elsewhere)) == [1, 2, 3, 4, 5]


def test_a_half_written_line_waits_for_its_newline(tmp_path):
    path = tmp_path / "e.jsonl"
    with open(path, "wb") as handle:
        handle.write(b'{"event":"new","seq":1}\n{"event":"ne')
        handle.flush()
        tail = started_tail(path)
        assert [line for line, _ in drain(tail)] == [b'{"event":"new","seq":1}']
        handle.write(b'w","seq":2}\n')
        handle.flush()
        assert [line for line, _ in drain(tail)] == [b'{"event":"new","seq":2}']


def test_a_torn_last_line_of_a_rotated_file_is_handed_out_not_lost(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_bytes(b'{"seq":1}\n{"se')  # a crash cut the last line short
    tail = started_tail(path)
    assert [line for line, _ in drain(tail)] == [b'{"seq":1}']
    path.rename(tmp_path / "e.jsonl.1")
    path.write_bytes(b'{"seq":2}\n')
    assert [line for line, _ in drain(tail)] == [b'{"se', b'{"seq":2}']


def test_a_file_rotated_out_while_being_read_is_finished_then_the_oldest_left_follows(tmp_path):
    path = tmp_path / "e.jsonl"
    log = sequenced_log(path, max_bytes=500, backups=2)
    write(log, 3)
    tail = started_tail(path)
    assert seqs([tail.read()]) == [1]
    write(log, 40)  # rotates far past the three files kept: the rest of the first file is gone from disk
    got = seqs(drain(tail))
    assert got[:2] == [2, 3]  # still readable through the open file
    assert got == sorted(set(got)) and got[-1] == 43  # then the oldest file left, in order, to the end
    assert len(got) < 42  # the files rotated out in between are skipped (the forwarder counts them)


def test_backlog_counts_unread_bytes_in_every_newer_file(tmp_path):
    path = tmp_path / "e.jsonl"
    log = sequenced_log(path, max_bytes=1000, backups=100)
    write(log, 50)
    tail = started_tail(path)
    total = sum(p.stat().st_size for p in log_files(path))
    assert tail.backlog_bytes() == total
    drain(tail)
    assert tail.backlog_bytes() == 0


def test_a_line_the_writer_cut_back_is_read_again_from_its_start(tmp_path):
    path = tmp_path / "e.jsonl"
    with open(path, "wb") as handle:
        handle.write(b'{"seq":1}\n{"seq":2,"half')  # disk full mid-line: EventLog truncates back to the line start
        handle.flush()
        tail = started_tail(path)
        assert [line for line, _ in drain(tail)] == [b'{"seq":1}']
        handle.truncate(10)
        assert drain(tail) == []
        handle.seek(10)
        handle.write(b'{"seq":2}\n')
        handle.flush()
        assert [line for line, _ in drain(tail)] == [b'{"seq":2}']


@pytest.mark.slow
def test_reading_while_another_thread_rotates_fast_loses_and_repeats_nothing(tmp_path):
    import threading

    path = tmp_path / "e.jsonl"
    log = sequenced_log(path, max_bytes=600, backups=400)  # a rotation every few lines
    writer = threading.Thread(target=write, args=(log, 1000))
    tail = started_tail(path)
    got = []
    writer.start()
    while writer.is_alive():
        got += drain(tail)
    writer.join()
    got += drain(tail)
    log.close()
    assert seqs(got) == list(range(1, 1001))


def test_the_tail_follows_a_log_whose_folder_was_deleted_and_recreated(tmp_path):
    path = tmp_path / "logs" / "e.jsonl"
    log = sequenced_log(path)
    write(log, 5)
    tail = started_tail(path)
    assert seqs(drain(tail)) == [1, 2, 3, 4, 5]
    import shutil

    shutil.rmtree(path.parent)
    assert drain(tail) == []  # nothing there yet: wait, do not fail
    write(log, 4, start=5)  # the log reopens at its path (a log_reopened record first)
    got = drain(tail)
    assert [json.loads(line)["event"] for line, _ in got] == ["log_reopened"] + ["new"] * 4
    assert seqs(got) == [6, 7, 8, 9, 10]
    log.close()


def test_the_tail_waits_while_the_log_path_is_a_folder(tmp_path):
    path = tmp_path / "e.jsonl"
    log = sequenced_log(path)
    write(log, 2)
    tail = started_tail(path)
    assert seqs(drain(tail)) == [1, 2]
    log.close()
    path.unlink()
    path.mkdir()
    assert drain(tail) == []
    path.rmdir()
    log = sequenced_log(path)
    write(log, 1)
    assert seqs(drain(tail)) == [1]  # a new run's first line
    log.close()


def copytruncate(path, copy_name=".1"):
    """What logrotate's copytruncate does: copy the live file to path.1 (older copies shifted), then cut the
    live file to 0 bytes; the writer goes on appending to the same inode."""
    copy = path.with_name(path.name + copy_name)
    copy.write_bytes(path.read_bytes())
    os.truncate(path, 0)
    return copy


@pytest.mark.parametrize("read_before", [20, 12], ids=["caught_up", "lagging"])
@pytest.mark.parametrize("written_after", [3, 40], ids=["shorter", "grown_past_the_old_place"])
def test_copytruncate_is_read_from_the_copy_then_the_start_never_mid_line(tmp_path, read_before, written_after):
    """Issue 28: after a copytruncate the tail waited for the file to pass its old offset and went on from
    mid-line, so the forwarder reported the lines in between as DROPPED and one as unreadable."""
    path = tmp_path / "e.jsonl"
    log = sequenced_log(path, max_bytes=0)
    write(log, 20)
    tail = started_tail(path)
    got = [tail.read() for _ in range(read_before)]
    copytruncate(path)
    write(log, written_after, start=20)
    got += drain(tail)
    log.close()
    assert seqs(got) == list(range(1, 21 + written_after))  # each line once, all of them, whole
    assert tail.truncations == 1


def test_copytruncate_without_a_copy_to_find_goes_on_from_the_start(tmp_path):
    path = tmp_path / "e.jsonl"
    log = sequenced_log(path, max_bytes=0)
    write(log, 10)
    tail = started_tail(path)
    got = drain(tail)
    copytruncate(path, copy_name="-20261207")  # dateext: not a name the tail follows
    write(log, 30, start=10)
    got += drain(tail)
    log.close()
    assert seqs(got) == list(range(1, 41))


def test_the_writer_cutting_its_own_torn_line_is_not_a_truncation(tmp_path):
    path = tmp_path / "e.jsonl"
    log = sequenced_log(path, max_bytes=0)
    write(log, 5)
    tail = started_tail(path)
    got = drain(tail)
    size = path.stat().st_size
    with open(path, "ab") as handle:
        handle.write(b'{"event":"half a li')  # a line the writer could not finish (disk full) ...
    assert tail.read() is None
    os.truncate(path, size)  # ... and cut back to where it began
    write(log, 3, start=5)
    got += drain(tail)
    log.close()
    assert seqs(got) == list(range(1, 9)) and tail.truncations == 0
