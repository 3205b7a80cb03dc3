"""Settings that are numbers but not sensible ones (inf, nan, out of range): one error naming flag and range."""

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
