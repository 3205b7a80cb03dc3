"""A test run ends with what it skipped and how to get it, grouped by reason, under xdist too."""

import os
import subprocess
import sys

import pytest
from conftest import ROOT

SKIPPING_TESTS = '''
import pytest
MOSQUITTO = "mosquitto is not installed (Debian: apt-get install -y mosquitto)"

@pytest.mark.skipif(True, reason=MOSQUITTO)
def test_one_broker(): pass

@pytest.mark.skipif(True, reason=MOSQUITTO)
def test_another_broker(): pass

def test_a_browser(): pytest.skip("chromium is not installed (apt-get install -y chromium)")

def test_that_runs(): pass
'''


@pytest.mark.slow
@pytest.mark.parametrize("parallel", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_the_last_lines_name_each_skip_reason_with_its_count(tmp_path, parallel):
    (tmp_path / "test_skips.py").write_text(SKIPPING_TESTS)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    slow\n    tf\n    service\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "conftest", "-p", "no:cacheprovider", *parallel, str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-3:] == [
        "skipped 2: mosquitto is not installed (Debian: apt-get install -y mosquitto)",
        "skipped 1: chromium is not installed (apt-get install -y chromium)",
        "to run them all: install what the reasons name, or run .ci/run as root (it installs them)",
    ]
