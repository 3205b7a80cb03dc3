"""`python -m train` and `python -m convert` start without TensorFlow's notices, and their errors still show."""

import os
import subprocess
import sys

import pytest
from conftest import ROOT

pytestmark = pytest.mark.tf  # both import TensorFlow before they fail


@pytest.mark.parametrize("command", [
    ["train", "fit", "--epochs", "1"],
    ["convert", "--keras-model", "no/such/model.keras"],
])
def test_a_failing_command_prints_its_error_and_nothing_else(tmp_path, command):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user's shell has it
    missing = tmp_path / "fer2013.csv"
    result = subprocess.run([sys.executable, "-m", *command, "--data", str(missing), "--cache-dir", str(tmp_path / "c")],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and ("fer2013.csv" in lines[0] or "model.keras" in lines[0]), result.stderr
