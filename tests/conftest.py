"""Shared fixtures: small generated FER2013 datasets in each form, and the real one when present."""

from __future__ import annotations

import os
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REAL_DATA = ROOT.parent / "shared" / "data" / "fer2013.zip"
REAL_CSV = ROOT.parent / "shared" / "data" / "fer2013.tar.gz"  # the CSV form, row-aligned with FER+ votes
REAL_FERPLUS = ROOT.parent / "shared" / "data" / "fer2013new.csv"
REAL_CKPLUS = ROOT.parent / "shared" / "data" / "ckplus48.zip"  # CK+48: posed faces from another lab, evaluation only
FOLDER_NAMES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # canonical order
SPLITS = ("Training", "PublicTest", "PrivateTest")


def folder_deleter(folder: Path, after_frames: int, seen: list | None = None):
    """A pipeline observer that deletes `folder` (`rm -rf`, as a user does to a running log) once, after
    `after_frames` frames; the frame indices it saw go to `seen`."""
    seen = [] if seen is None else seen

    def observe(result) -> None:
        seen.append(result.frame.index)
        if len(seen) == after_frames:
            delete_folder(folder)

    return observe


def stats_due_at(frame_index: int, interval_s: float):
    """A pipeline observer that holds frame `frame_index` for `interval_s`, so a stats record falls due there
    however fast the CPU runs the clip (a fast one finished the sample in under half a second)."""
    import time

    def observe(result) -> None:
        if result.frame.index == frame_index:
            time.sleep(interval_s)

    return observe


def timeless(record: dict) -> dict:
    """A record without its wall-clock `time`, after checking that `time` is an ISO 8601 UTC stamp: what is
    left can be compared whole."""
    from datetime import datetime

    assert record["time"].endswith("Z"), record["time"]
    datetime.fromisoformat(record["time"].replace("Z", "+00:00"))
    return {key: value for key, value in record.items() if key != "time"}


def delete_folder(folder: Path) -> None:
    """`rm -rf folder`, as a user does to a running log: repeated when another thread (the forwarder saving its
    cursor) writes a file into it mid-delete, which makes one rmtree fail with "Directory not empty"."""
    import shutil
    import time

    for _ in range(200):
        try:
            shutil.rmtree(folder)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.005)
    raise AssertionError(f"could not delete {folder}")


def synthetic_faces(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images whose brightness pattern depends on the label, so a model can learn a little."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 7
    rng.shuffle(labels)
    base = rng.integers(0, 60, size=(count, 48, 48))
    stripes = (np.arange(48)[None, :, None] // 7 == labels[:, None, None]) * 150
    images = np.clip(base + stripes, 0, 255).astype(np.uint8)
    splits = np.array([SPLITS[0]] * count, dtype=object)
    splits[: count // 5] = SPLITS[1]
    splits[count // 5 : 2 * count // 5] = SPLITS[2]
    return images, labels, splits


def write_csv(path: Path, images, labels, splits, extra_rows: list[str] = ()) -> Path:
    lines = ["emotion,pixels,Usage"]
    for image, label, split in zip(images, labels, splits, strict=True):
        lines.append(f"{label},{' '.join(map(str, image.ravel()))},{split}")
    lines.extend(extra_rows)
    path.write_text("\n".join(lines) + "\n")
    return path


# FER+ vote columns (fer2013new.csv) and, for each canonical label, its column.
FERPLUS_HEADER = ("Usage", "Image name", "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
                  "contempt", "unknown", "NF")
FERPLUS_COLUMN = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")


def synthetic_votes(labels, seed: int = 0) -> tuple[list[dict], np.ndarray]:
    """Ten annotators' votes per face, built so the FER+ majority is known: (vote rows, majority), the
    majority -1 where there is none (a tie, or contempt, unknown or not-a-face on top). The majority
    agrees with the FER2013 label on about 60% of faces, as FER+ does on about 64%."""
    rng = np.random.default_rng(seed)
    rows, majority = [], []
    for label in labels:
        winner = int(label) if rng.random() < 0.6 else int(rng.integers(7))
        other = (winner + 1 + int(rng.integers(6))) % 7
        votes = dict.fromkeys(FERPLUS_HEADER[2:], 0)
        kind = rng.choice(["clear", "clear", "clear", "tie", "unknown", "contempt", "not a face", "split"])
        if kind == "clear":
            votes[FERPLUS_COLUMN[winner]], votes[FERPLUS_COLUMN[other]], votes["unknown"] = 6, 3, 1
        elif kind == "tie":
            votes[FERPLUS_COLUMN[winner]] = votes[FERPLUS_COLUMN[other]] = 5
        elif kind == "unknown":
            votes["unknown"], votes[FERPLUS_COLUMN[winner]] = 7, 3
        elif kind == "contempt":
            votes["contempt"], votes[FERPLUS_COLUMN[winner]] = 6, 4
        elif kind == "not a face":
            votes["NF"] = 10
        else:  # the winner holds fewer than half the votes but more than any other class
            votes[FERPLUS_COLUMN[winner]], votes["contempt"], votes["NF"] = 4, 3, 3
        rows.append(votes)
        majority.append(winner if kind in ("clear", "split") else -1)
    return rows, np.asarray(majority)


def write_ferplus(path: Path, vote_rows: list[dict], splits) -> Path:
    lines = [",".join(FERPLUS_HEADER)]
    for index, (votes, split) in enumerate(zip(vote_rows, splits, strict=True)):
        lines.append(f"{split},fer{index:07d}.png," + ",".join(str(votes[c]) for c in FERPLUS_HEADER[2:]))
    path.write_text("\n".join(lines) + "\n")
    return path


def write_folder(root: Path, images, labels, splits) -> Path:
    for i, (image, label, split) in enumerate(zip(images, labels, splits, strict=True)):
        folder = root / ("train" if split == "Training" else "test") / FOLDER_NAMES[label]
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{split}_{1000 + i}.png"), image)  # png: lossless, so forms compare exactly
    return root


def zip_folder(folder: Path, zip_path: Path) -> Path:
    with zipfile.ZipFile(zip_path, "w") as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(folder).as_posix())
    return zip_path


@pytest.fixture
def small_dataset():
    return synthetic_faces(140)


@pytest.fixture
def small_csv(tmp_path, small_dataset) -> Path:
    return write_csv(tmp_path / "fer2013.csv", *small_dataset)


@pytest.fixture
def real_data() -> Path:
    if not REAL_DATA.exists():
        pytest.fail(f"{REAL_DATA} is missing: the FER2013 tests need it (CI provides it there)")
    return REAL_DATA


@pytest.fixture
def real_csv() -> Path:
    if not REAL_CSV.exists():
        pytest.fail(f"{REAL_CSV} is missing: the FER2013 CSV-form tests need it (CI provides it there)")
    return REAL_CSV


@pytest.fixture(scope="session")
def bundled_model():
    from edge.config import BUNDLED_MODEL
    from edge.vision.model import EmotionModel

    return EmotionModel(BUNDLED_MODEL)


def grace_hopper_path() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


@pytest.fixture(scope="session")
def grace_hopper_gray() -> np.ndarray:
    import cv2

    return cv2.imread(str(grace_hopper_path()), cv2.IMREAD_GRAYSCALE)


@pytest.fixture
def broker(tmp_path):
    """A mosquitto of its own on loopback for one MQTT test (tests/mqtt_broker.py), stopped after it."""
    from mqtt_broker import Broker

    folder = tmp_path / "broker"
    folder.mkdir()
    server = Broker(folder)
    yield server
    server.stop()


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(config, items):
    """A test that starts a broker needs mosquitto, an outside service: make check leaves it to make test."""
    for item in items:
        needs_mosquitto = any("mosquitto" in str(mark.kwargs.get("reason", "")) for mark in item.iter_markers("skipif"))
        if needs_mosquitto or "broker" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.service)


def pytest_unconfigure(config):
    """Last lines of a run: what was skipped and how to get it (the reasons say what to install), and what
    `-m` left out. After pytest's own summary, so `make test` ends with them."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or hasattr(config, "workerinput"):  # xdist workers: the controller reports
        return
    reasons: dict[str, int] = {}
    for report in reporter.stats.get("skipped", []):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    deselected = len(reporter.stats.get("deselected", []))
    if not reasons and not deselected:
        return
    reporter.write_line("")
    for reason, count in sorted(reasons.items(), key=lambda item: -item[1]):
        reporter.write_line(f"skipped {count}: {reason}")
    if reasons:
        reporter.write_line("to run them all: install what the reasons name, or run .ci/run as root (it installs them)")
    if deselected:
        reporter.write_line(f"not selected: {deselected} tests (-m {config.getoption('markexpr')!r}); make test runs everything")
