"""Settings that are numbers but not sensible ones (inf, nan, out of range): one error naming flag and range."""

import os
import subprocess
import sys

import pytest
from conftest import ROOT


def edge_run(*args):
    return subprocess.run([sys.executable, "-m", "edge", "run", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, message",
    [
        (["--duration", "inf"], "--duration (run.duration) must be a finite number, got inf"),
        (["--duration", "1e9"], "--duration (run.duration) must be 0 (no limit) or > 0 and <= 31536000, got 1000000000.0"),
        (["--stats-interval", "nan"], "--stats-interval (run.stats_interval) must be a finite number"),
        (["--num-threads", "0"], "--num-threads (run.num_threads) must be between 1 and 64, got 0"),
    ],
)
def test_bad_numbers_on_the_command_line(args, message):
    result = edge_run("--source", "sample", "--log", "-", *args)
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""  # refused before anything runs


def test_inf_duration_in_the_config_file(tmp_path):
    config = tmp_path / "edge.toml"
    config.write_text('[run]\nsource = "sample"\nduration = inf\n')
    result = edge_run("--config", str(config), "--log", "-")
    assert result.returncode == 2 and f"{config}: --duration (run.duration) must be a finite number" in result.stderr
    assert "Traceback" not in result.stderr and "Exception in thread" not in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("flag, named", [("--log", "--log"), ("--csv", "--csv"), ("--web-token-file", "web_token_file")])
def test_a_fifo_where_a_file_belongs_is_refused_naming_the_flag(tmp_path, flag, named):
    """Issue 28: opening a FIFO blocks until someone opens its other end, and SIGTERM did not end that wait."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    args = ["--source", "sample", "--max-frames", "2", flag, str(fifo)]
    if flag != "--log":
        args += ["--log", str(tmp_path / "e.jsonl")]
    if flag == "--web-token-file":
        args += ["--web", "127.0.0.1:0"]
    result = subprocess.run([sys.executable, "-m", "edge", "run", *args], cwd=ROOT, capture_output=True, text=True,
                            timeout=60, env={k: v for k, v in os.environ.items() if k != "FER_WEB_TOKEN"})
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"{named} {fifo}: a FIFO (named pipe), not a file" in result.stderr and "Traceback" not in result.stderr
