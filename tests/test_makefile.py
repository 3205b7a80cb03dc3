"""The Makefile's targets, as typed: dry runs (make -n) of every chain, and one real `make train convert`."""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed (Debian: apt-get install -y make)")


@pytest.fixture
def venv(tmp_path) -> Path:
    """A stand-in for .venv whose install markers are up to date, so make runs only the target itself."""
    folder = tmp_path / "venv"
    folder.mkdir()
    for marker in (".edge", ".all"):  # in this order: .all is newer than .edge, both newer than pyproject.toml
        (folder / marker).touch()
    return folder


def make(venv: Path, *args: str, dry_run: bool = True, timeout: int = 60) -> subprocess.CompletedProcess:
    command = ["make", "-C", str(ROOT), "--no-print-directory", *(["-n"] if dry_run else []),
               f"VENV={venv}", f"PY={sys.executable}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def commands(result: subprocess.CompletedProcess) -> list[list[str]]:
    assert result.returncode == 0, result.stderr
    joined = result.stdout.replace("\\\n", " ")  # a recipe continued over lines is one command
    return [shlex.split(line) for line in joined.splitlines() if line.strip()]


def flag(command: list[str], name: str) -> str:
    assert name in command, f"{name} missing from {' '.join(command)}"
    return command[command.index(name) + 1]


def test_train_convert_converts_the_run_just_trained_and_bundles_nothing(venv):
    for labels in ("fer2013", "ferplus"):
        train, convert = commands(make(venv, "train", "convert", f"LABELS={labels}"))
        assert train[1:4] == ["-m", "train", "fit"] and flag(train, "--labels") == labels
        assert flag(train, "--out-dir") == f"runs/{labels}"
        assert convert[1:3] == ["-m", "convert"]
        assert flag(convert, "--keras-model") == f"runs/{labels}/mini_xception.keras"
        assert flag(convert, "--out-dir") == f"runs/{labels}" and flag(convert, "--name") == labels
        assert "--bundle" not in convert
        # the gate's limits are the convert CLI's own defaults (python -m convert --help), not restated here
        assert "--max-drop" not in convert and "--min-accuracy" not in convert


def test_convert_takes_another_run_and_smoke_settings(venv):
    (convert,) = commands(make(venv, "convert", "RUN=runs/mine", "LIMIT=50", "CONVERT_FLAGS=--calibration-count 70"))
    assert flag(convert, "--keras-model") == "runs/mine/mini_xception.keras" and flag(convert, "--name") == "mine"
    assert flag(convert, "--limit") == "50" and flag(convert, "--calibration-count") == "70"
    (train,) = commands(make(venv, "train", "EPOCHS=1", "LIMIT=50"))
    assert flag(train, "--epochs") == "1" and flag(train, "--limit") == "50"


def test_ship_is_the_one_step_that_bundles(venv):
    (ship,) = commands(make(venv, "ship", "RUN=runs/ferplus", "NAME=ferplus"))
    assert ship[1:3] == ["-m", "convert"] and "--bundle" in ship and flag(ship, "--name") == "ferplus"
    assert flag(ship, "--keras-model") == "runs/ferplus/mini_xception.keras"


def test_check_runs_lint_and_the_quick_tests_and_test_runs_everything_in_parallel(venv):
    lint, quick = commands(make(venv, "check"))
    assert lint[1:] == ["-m", "ruff", "check", "."]
    assert quick[1:3] == ["-m", "pytest"] and flag(quick[3:], "-m") == "not slow and not tf and not service"
    lint, everything = commands(make(venv, "test"))
    assert lint[1:] == ["-m", "ruff", "check", "."]
    assert flag(everything, "-n") == "auto" and flag(everything, "--dist") == "loadgroup" and "-m" not in everything[3:]


def test_demo_writes_the_video_and_a_fresh_event_log_to_files(venv):
    fresh, demo = commands(make(venv, "demo"))
    assert fresh == ["rm", "-f", "out/demo.jsonl"]  # each demo's events on their own, not appended
    assert demo[1:4] == ["-m", "edge", "run"]
    assert flag(demo, "--save-video") == "out/demo.mp4" and flag(demo, "--log") == "out/demo.jsonl" and "--summary" in demo
    (streamed,) = commands(make(venv, "demo", "DEMO_LOG=-"))
    assert flag(streamed, "--log") == "-"


def test_installs_keep_setuptools_notices_off_the_terminal(tmp_path):
    dry = make(tmp_path / "fresh-venv", "demo")  # no markers: the venv is made first
    installs = [line for line in dry.stdout.splitlines() if "pip install" in line]
    assert installs and all(line.startswith("PYTHONWARNINGS=ignore::UserWarning ") and " -q" in line for line in installs)


def test_every_target_that_help_lists_exists(venv):
    help_text = make(venv, "help", dry_run=False).stdout
    listed = [line.split()[1] for line in help_text.splitlines() if line.startswith("make ")]
    assert {"demo", "check", "test", "train", "convert", "ship"} <= set(listed)
    for target in listed:
        if target in ("deploy", "bench-peer"):  # deploy needs PI=; bench-peer builds a venv first
            continue
        assert make(venv, target).returncode == 0, target


def tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(file.relative_to(folder)).encode() + file.read_bytes())
    return digest.hexdigest()


# What a quiet start must not print (issue 19): TensorFlow's start-up notices and our own Keras warnings.
NOISE = ("oneDNN", "cpu_feature_guard", "absl::InitializeLog", "shuffle=True", "XNNPACK delegate", "Warning")


@pytest.mark.slow
@pytest.mark.tf
def test_make_train_convert_end_to_end_on_a_tiny_run(venv, small_csv, tmp_path):
    assets = tree_digest(ROOT / "edge" / "assets")
    runs, cache = tmp_path / "runs", tmp_path / "cache"
    common = [f"DATA={small_csv}", f"RUNS={runs}", "LIMIT=70"]
    result = make(venv, "train", "convert", *common, "EPOCHS=1",
                  f"TRAIN_FLAGS=--cache-dir {cache} --batch-size 16",
                  f"CONVERT_FLAGS=--cache-dir {cache} --calibration-count 40 --max-drop 100 --min-accuracy 0",
                  dry_run=False, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    run = runs / "fer2013"
    for name in ("mini_xception.keras", "train_report.json", "fer2013_int8.tflite", "fer2013_int8.json",
                 "report.json", "report.md", "MODEL_CARD.md", "confusion_int8.png"):
        assert (run / name).is_file(), name
    report = json.loads((run / "report.json").read_text())
    assert report["gate"]["passed"] and report["config"]["bundle_dir"] is None
    assert tree_digest(ROOT / "edge" / "assets") == assets, "make train convert must not touch the shipped models"
    noise = [line for line in result.stderr.splitlines() if any(word in line for word in NOISE)]
    assert noise == [], "\n".join(noise)

    # the gate decides the exit status, and a failed gate still leaves its report in the run folder
    failed = make(venv, "convert", *common, f"CONVERT_FLAGS=--cache-dir {cache} --calibration-count 40 --min-accuracy 100",
                  dry_run=False, timeout=600)
    assert failed.returncode != 0 and "accuracy gate FAILED" in failed.stderr, failed.stderr[-2000:]
    assert json.loads((run / "report.json").read_text())["gate"]["passed"] is False
    assert tree_digest(ROOT / "edge" / "assets") == assets


@pytest.mark.parametrize("target", [["deploy", "PI=pi@raspberrypi.local", "DRY_RUN=1"], ["pi-sim"]])
def test_deploy_targets_make_the_venv_they_need_from_a_fresh_clone(tmp_path, target):
    fresh = tmp_path / "fresh-venv"  # no markers: nothing installed yet
    lines = make(fresh, *target).stdout.splitlines()
    assert any(line.endswith(f"-m venv {fresh}") for line in lines), lines
    assert any("pip install" in line and '-e ".[litert]"' in line for line in lines)
