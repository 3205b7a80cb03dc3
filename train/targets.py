"""What a run learns from: FER2013 labels or FER+ vote distributions, mixed with shares of the FER+ votes and of
teachers' softened predictions (those kept in a cache keyed by content); the training class prior; the faces and
labels that choose the checkpoint."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from edge.contract import LABELS, NUM_CLASSES, average_shifts, shift_offsets, with_shifts
from edge.vision.model import file_sha256
from train.cache import default_cache_dir
from train.config import TrainConfig
from train.model import load_keras_model, predict_probabilities
from train.splits import Split

TEACHER_CACHE_VERSION = "1"  # bump when the teacher predictions change, so stale caches are not reused


def run_targets(config: TrainConfig, training: Split) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images, targets, class prior) a run trains on, said as it goes: the teachers' predictions asked first
    (from the cache when they are there)."""
    teacher = teacher_predictions(config, training.images, cache_dir=Path(config.cache_dir or default_cache_dir()))
    images, targets = training_targets(training, config, teacher)
    print(f"training on {len(images)} of {len(training)} Training faces ({config.labels} labels)")
    prior = class_prior(targets)
    print("training class prior: " + ", ".join(f"{name} {share:.3f}" for name, share in zip(LABELS, prior, strict=True)))
    return images, targets, prior


def class_prior(targets: np.ndarray) -> np.ndarray:
    """The training class prior: the mean target distribution (one-hot labels or FER+ vote shares)."""
    prior = np.asarray(targets, np.float64).mean(axis=0)
    return prior / prior.sum()


def soften(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """p^(1/T), renormalised: the softmax of the log-probabilities divided by T."""
    scaled = np.power(np.clip(probabilities, 1e-12, 1.0), 1.0 / temperature)
    return (scaled / scaled.sum(axis=1, keepdims=True)).astype(np.float32)


def training_targets(split: Split, config: TrainConfig, teacher: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(images, target distributions) to train on: one-hot FER2013 labels, or FER+ vote distributions
    of the faces an emotion won (unknown / not-a-face / contempt majorities dropped); then mixed with
    shares of the FER+ votes (`ferplus_weight`, faces without an emotion majority keep their label)
    and of the teacher's softened predictions (`teacher_weight`)."""
    if config.labels == "ferplus":
        keep = split.votes.trainable()
        own = split.votes.soft_targets()[keep]
    else:
        keep = np.ones(len(split.labels), bool)
        own = np.eye(NUM_CLASSES, dtype=np.float32)[split.labels]
    targets = (1.0 - config.ferplus_weight - config.teacher_weight) * own
    if config.ferplus_weight:
        votes = np.where(split.votes.trainable()[:, None], split.votes.soft_targets(), own)
        targets = targets + config.ferplus_weight * votes
    if config.teacher_weight:
        targets = targets + config.teacher_weight * soften(teacher[keep], config.teacher_temperature)
    return split.images[keep], targets.astype(np.float32)


def teacher_predictions(config: TrainConfig, images: np.ndarray, chunk: int = 4096, cache_dir: Path | None = None) -> np.ndarray | None:
    """The teachers' flip-averaged class probabilities on `images` (with `teacher_shift`, also averaged over
    the shifted copies, as the runtime's shift averaging does), averaged over the teachers.

    With `cache_dir`, kept there keyed by the teachers' bytes, the shift and the faces: ten views of every
    Training face take minutes on a CPU, and every seed or --resume of a run asks for the same ones."""
    if not config.teacher_weight:
        return None
    paths = [Path(path.strip()) for path in config.teacher.split(",") if path.strip()]
    if not paths:
        raise ValueError(f"--teacher (train.teacher) names no model file: {config.teacher!r}")
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"--teacher (train.teacher): {path} is not a file")
    views = 2 * len(shift_offsets(config.teacher_shift))
    cache_file = None
    if cache_dir is not None:
        key = hashlib.sha256(f"{TEACHER_CACHE_VERSION} shift {config.teacher_shift}".encode())
        for path in paths:
            key.update(file_sha256(path).encode())
        key.update(np.ascontiguousarray(images).tobytes())
        cache_file = Path(cache_dir) / f"teacher-{key.hexdigest()[:32]}.npy"
        cached = read_teacher_cache(cache_file, len(images))
        if cached is not None:
            print(f"teacher predictions ({views} views) of {len(images)} Training faces from the cache {cache_file}")
            return cached
    print(f"teacher predictions from {', '.join(map(str, paths))} on {len(images)} Training faces, {views} views each")
    teachers = [load_keras_model(path, "--teacher (train.teacher)", compile=False) for path in paths]

    def predict(teacher, faces):  # in chunks: ten views of every Training face at once would be 2.6 GB
        return average_shifts(predict_probabilities(teacher, with_shifts(faces, config.teacher_shift)), config.teacher_shift)

    predictions = np.mean([np.concatenate([predict(teacher, images[i : i + chunk]) for i in range(0, len(images), chunk)])
                           for teacher in teachers], axis=0).astype(np.float32)
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        partial = cache_file.with_suffix(f".{os.getpid()}.partial.npy")  # renamed into place: never half-written
        np.save(partial, predictions)
        partial.replace(cache_file)
    return predictions


def read_teacher_cache(cache_file: Path, faces: int) -> np.ndarray | None:
    """The cached predictions, or None (computed again, with a note) when absent, unreadable or of another shape."""
    if not cache_file.exists():
        return None
    try:
        cached = np.load(cache_file, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        print(f"note: teacher cache {cache_file} is unreadable ({error}); computing the predictions again")
        return None
    if cached.shape != (faces, NUM_CLASSES) or not np.isfinite(cached).all():
        print(f"note: teacher cache {cache_file} holds {cached.shape}, not ({faces}, {NUM_CLASSES}) finite scores; computing again")
        return None
    return cached


def selection_labels(split: Split, labels: str) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) that choose the checkpoint: FER2013 labels, or the clear FER+ majorities."""
    if labels == "ferplus":
        majority = split.votes.majority()
        return split.images[majority >= 0], majority[majority >= 0]
    return split.images, split.labels
