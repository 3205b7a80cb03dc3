"""Events on stdout to a reader that goes away (`edge run | head -1`): one clear error, no traceback."""

import json
import subprocess
import sys

from conftest import ROOT


def test_a_closed_stdout_pipe_ends_the_run_with_one_clear_error():
    process = subprocess.Popen(
        [sys.executable, "-m", "edge", "run", "--source", "sample", "--loop", "--log", "-", "--stats-interval", "0.05"],  # ends only by the closed pipe
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    first = process.stdout.readline()
    process.stdout.close()  # the reader goes away
    stderr = process.stderr.read().decode()
    process.wait(timeout=120)
    assert json.loads(first)["event"] == "start"
    assert process.returncode == 2
    assert "error: event log on stdout: the reader closed the pipe" in stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
