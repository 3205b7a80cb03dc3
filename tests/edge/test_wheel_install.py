"""The built wheel installs into a fresh virtual environment without TensorFlow and runs the bundled clip."""

import json
import os
import subprocess
import sys
import venv

from conftest import ROOT


def test_wheel_installs_without_tensorflow_and_runs_the_sample(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # only what the wheel installed
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), str(ROOT)],
        check=True, capture_output=True, text=True, timeout=600,
    )
    wheel = next((tmp_path / "dist").glob("fer_edge-*.whl"))
    venv.create(tmp_path / "venv", with_pip=True)
    python = tmp_path / "venv" / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"{wheel}[litert]"],
        check=True, capture_output=True, text=True, timeout=900, cwd=tmp_path, env=env,
    )
    probe = subprocess.run(
        [str(python), "-c", "import importlib.util as u; print(u.find_spec('tensorflow') is None, u.find_spec('keras') is None)"],
        capture_output=True, text=True, check=True, cwd=tmp_path, env=env,
    )
    assert probe.stdout.split() == ["True", "True"]
    run = subprocess.run(
        [str(python), "-m", "edge", "run", "--source", "sample", "--max-frames", "30", "--log", "-"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    records = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert records[0]["event"] == "start" and records[-1]["event"] == "stop"
    assert records[-1]["frames"] == 30 and records[-1]["faces"] >= 50
    assert "site-packages/edge/assets" in records[0]["model"]
