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
FOLDER_NAMES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # canonical order
SPLITS = ("Training", "PublicTest", "PrivateTest")


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


@pytest.fixture(scope="session")
def bundled_model():
    from edge.config import BUNDLED_MODEL
    from edge.model import EmotionModel

    return EmotionModel(BUNDLED_MODEL)


def grace_hopper_path() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


@pytest.fixture(scope="session")
def grace_hopper_gray() -> np.ndarray:
    import cv2

    return cv2.imread(str(grace_hopper_path()), cv2.IMREAD_GRAYSCALE)
