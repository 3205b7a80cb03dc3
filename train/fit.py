"""Train mini-Xception on FER2013: tf.data with on-the-fly augmentation, select on PublicTest.

Reads top to bottom: configuration, data, augmentation, model, training, evaluation, artifacts.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import shutil
import time
from dataclasses import asdict, fields
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from edge.contract import (
    FLIP_TTA,
    LABELS,
    NUM_CLASSES,
    PIXEL_OFFSET,
    PIXEL_SCALE,
    average_shifts,
    scale_pixels,
    shift_offsets,
    with_shifts,
)
from edge.metrics import balanced_accuracy, classification_metrics
from edge.vision.model import file_sha256
from train import distribute
from train.arch import make_model, model_file
from train.config import TrainConfig
from train.data import Split, default_cache_dir, ferplus_path_for, load_fer2013, load_ferplus, take_splits
from train.model import LogitAdjustedCrossentropy, load_keras_model, predict_probabilities

STATE_DIR = ".train"  # checkpoints and resume state while training, not artifacts
TEACHER_CACHE_VERSION = "1"  # bump when the teacher predictions change, so stale caches are not reused
# What does not change what is learned: where things are read from or go, the cache, verbosity, resume itself.
# Every other setting a resumed run must share with the run it continues (a new setting is compared unless
# named here); the data, votes, teachers and starting weights by their content (FILE_SETTINGS).
NOT_LEARNED = ("data", "out_dir", "cache_dir", "resume", "verbose", "allow_shipped_output")
FILE_SETTINGS = ("data", "ferplus", "teacher", "init_from")


def augment_batch(images: tf.Tensor, config: TrainConfig, seed: tf.Tensor) -> tf.Tensor:
    """Random flip, rotation, zoom and shift in one projective transform per image, then brightness
    and contrast; uint8 (B, 48, 48, 1) in, float32 model input out. All ops work on the whole batch."""
    batch = tf.shape(images)[0]
    size = tf.cast(tf.shape(images)[1], tf.float32)
    seeds = tf.random.experimental.stateless_split(seed, 7)

    def uniform(index, low, high):
        return tf.random.stateless_uniform([batch], seeds[index], low, high)

    flip = tf.where(uniform(0, 0.0, 1.0) < 0.5, -1.0, 1.0) if config.flip else tf.ones([batch])
    angle = uniform(1, -1.0, 1.0) * config.rotation_degrees * math.pi / 180
    zoom = uniform(2, 1 - config.zoom_fraction, 1 + config.zoom_fraction)
    shift_x = uniform(3, -1.0, 1.0) * config.shift_fraction * size
    shift_y = uniform(4, -1.0, 1.0) * config.shift_fraction * size
    center = (size - 1) / 2
    # Output pixel p maps to input pixel zoom * R(angle) * Flip * (p - c) + c + shift.
    a0, a1 = zoom * tf.cos(angle) * flip, -zoom * tf.sin(angle)
    b0, b1 = zoom * tf.sin(angle) * flip, zoom * tf.cos(angle)
    a2 = center + shift_x - (a0 + a1) * center
    b2 = center + shift_y - (b0 + b1) * center
    zeros = tf.zeros([batch])
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    pixels = tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.cast(images, tf.float32),
        transforms=transforms,
        output_shape=tf.shape(images)[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="REFLECT",
    )
    mean = tf.reduce_mean(pixels, axis=[1, 2, 3], keepdims=True)
    contrast = tf.reshape(uniform(5, 1 - config.contrast, 1 + config.contrast), [-1, 1, 1, 1])
    brightness = tf.reshape(uniform(6, -config.brightness, config.brightness) * 255.0, [-1, 1, 1, 1])
    pixels = tf.clip_by_value((pixels - mean) * contrast + mean + brightness, 0.0, 255.0)
    return pixels * PIXEL_SCALE + PIXEL_OFFSET


def make_train_dataset(images: np.ndarray, targets: np.ndarray, config: TrainConfig) -> tf.data.Dataset:
    """Shuffled each epoch, augmented, and every batch full-sized (drop_remainder): oneDNN in
    TensorFlow 2.21 segfaults in a training step when the batch shape changes. Reshuffling means the
    dropped remainder differs each epoch, so no image is left out for good. With class-balanced
    sampling the stream is endless (each class repeats on its own): fit() counts steps per epoch."""
    if len(images) < config.batch_size:
        raise ValueError(f"Training split has {len(images)} images, fewer than batch size {config.batch_size}")
    images, targets = images[..., np.newaxis], targets.astype(np.float32)
    if config.balanced_sampling:
        weights = class_sampling_weights(targets, config.balanced_sampling)
        classes = targets.argmax(axis=1)
        per_class = [
            tf.data.Dataset.from_tensor_slices((images[classes == c], targets[classes == c]))
            .shuffle(int((classes == c).sum()), seed=config.seed + c, reshuffle_each_iteration=True)
            .repeat()
            for c in range(NUM_CLASSES)
            if weights[c] > 0
        ]
        dataset = tf.data.Dataset.sample_from_datasets(per_class, [float(w) for w in weights if w > 0], seed=config.seed)
    else:
        dataset = tf.data.Dataset.from_tensor_slices((images, targets))
        dataset = dataset.shuffle(len(images), seed=config.seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(config.batch_size, drop_remainder=True)
    seeds = tf.data.Dataset.random(seed=config.seed).batch(2)
    dataset = tf.data.Dataset.zip((dataset, seeds)).map(
        lambda batch, seed: (augment_batch(batch[0], config, seed), batch[1]), num_parallel_calls=tf.data.AUTOTUNE
    )
    return dataset.prefetch(tf.data.AUTOTUNE)


def class_prior(targets: np.ndarray) -> np.ndarray:
    """The training class prior: the mean target distribution (one-hot labels or FER+ vote shares)."""
    prior = np.asarray(targets, np.float64).mean(axis=0)
    return prior / prior.sum()


def class_sampling_weights(targets: np.ndarray, power: float) -> np.ndarray:
    """How often each class (a face's class: its target's top) is drawn: count^(1 - power), normalised;
    power 0 keeps the data's mix, 1 draws every class present equally often."""
    counts = np.bincount(np.asarray(targets).argmax(axis=1), minlength=NUM_CLASSES).astype(np.float64)
    weights = np.where(counts > 0, np.power(np.maximum(counts, 1), 1.0 - power), 0.0)
    return weights / weights.sum()


def make_eval_dataset(images: np.ndarray, labels: np.ndarray, batch_size: int) -> tf.data.Dataset:
    """Padded to whole batches; the padding has sample weight 0 so metrics ignore it."""
    pad = -len(images) % batch_size
    inputs = scale_pixels(np.concatenate([images, np.zeros((pad, *images.shape[1:]), np.uint8)]))
    targets = np.eye(NUM_CLASSES, dtype=np.float32)[np.concatenate([labels, np.zeros(pad, labels.dtype)])]
    weights = np.concatenate([np.ones(len(images), np.float32), np.zeros(pad, np.float32)])
    return tf.data.Dataset.from_tensor_slices((inputs, targets, weights)).batch(batch_size, drop_remainder=True)


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


class BatchProgress(keras.callbacks.Callback):
    """A line every tenth of an epoch with loss, accuracy and time left: long epochs on a Pi-class
    CPU otherwise show nothing for minutes when the output is not a terminal."""

    def __init__(self, steps: int, epochs: int):
        super().__init__()
        self.steps, self.epochs, self.every = steps, epochs, max(steps // 10, 1)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.started = epoch, time.time()

    def on_train_batch_end(self, batch, logs=None):
        done = batch + 1
        if done % self.every == 0 and done < self.steps:
            elapsed = time.time() - self.started
            left = elapsed / done * (self.steps - done)
            logs = logs or {}
            print(
                f"epoch {self.epoch + 1}/{self.epochs} {done}/{self.steps} batches, loss {logs.get('loss', 0):.4f}, "
                f"accuracy {logs.get('accuracy', 0):.4f}, {elapsed:.0f} s, about {left:.0f} s left",
                flush=True,
            )


def learning_rate_at(epoch: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to min_learning_rate at the last epoch."""
    if epoch < config.warmup_epochs:
        return config.learning_rate * (epoch + 1) / config.warmup_epochs
    span = max(config.epochs - config.warmup_epochs - 1, 1)
    progress = min((epoch - config.warmup_epochs) / span, 1.0)
    return config.min_learning_rate + 0.5 * (config.learning_rate - config.min_learning_rate) * (1 + math.cos(math.pi * progress))


class PublicTestBalancedAccuracy(keras.callbacks.Callback):
    """Adds `val_balanced_accuracy` (mean per-class recall on the selection faces) to each epoch's logs,
    before the checkpoint, early stopping and the history read them."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        super().__init__()
        self.images, self.labels = images, labels

    def on_epoch_end(self, epoch, logs=None):
        predicted = predict_probabilities(self.model, self.images, flip_tta=False).argmax(axis=1)
        value = balanced_accuracy(self.labels, predicted)
        if logs is not None:
            logs["val_balanced_accuracy"] = value
        print(f"epoch {epoch + 1}: PublicTest balanced accuracy {value:.4f}", flush=True)


def monitored(config: TrainConfig) -> str:
    """The history column that chooses the checkpoint."""
    return f"val_{config.select_on}"


def run_identity(config: TrainConfig) -> tuple[dict, dict]:
    """(what a resumed run must share with the run it continues, the files as given): every learned setting,
    and the data, the FER+ votes trained on, the teachers and the starting weights by their sha256."""
    from train.data import content_sha256

    settings = {f.name: getattr(config, f.name) for f in fields(config) if f.name not in NOT_LEARNED}
    votes_used = config.labels == "ferplus" or config.ferplus_weight > 0
    given = {
        "data": [config.data],
        "ferplus": [config.ferplus or str(ferplus_path_for(config.data))] if votes_used else [],
        "teacher": [path.strip() for path in config.teacher.split(",") if path.strip()],
        "init_from": [config.init_from] if config.init_from else [],
    }
    for name, paths in given.items():
        settings[name] = [content_sha256(path) if Path(path).exists() else f"missing: {path}" for path in paths]
    return settings, given


def resume_state(state_dir: Path, settings: dict, given: dict) -> dict:
    """The interrupted run's state when this run may continue it; else ValueError saying why: it finished,
    or a setting, the data or another input file differs from what it started with."""
    state_file = state_dir / "state.json"
    if not state_file.exists():
        raise FileNotFoundError(f"{state_file}: nothing to resume from; run without --resume first")
    state = json.loads(state_file.read_text())
    out_dir = state_dir.parent
    model = model_file(state.get("settings", {}).get("arch", "mini_xception"))
    finished = state.get("finished") or (state["next_epoch"] >= state.get("settings", {}).get("epochs", math.inf) and "all its epochs")
    if finished:
        raise ValueError(
            f"{out_dir} finished ({finished}, best PublicTest {state.get('settings', {}).get('select_on', 'accuracy').replace('_', ' ')} {state['best_val_accuracy']:.4f}): nothing to resume. "
            f"Its model is {out_dir / model}; to train on from it, start a new run with --init-from {out_dir / model} "
            "and another --out-dir"
        )
    before, before_given = state.get("settings", {}), state.get("given", {})
    changed = []
    for name, value in settings.items():
        if name not in before or before[name] == value:
            continue
        if name in FILE_SETTINGS and before[name] and value:
            changed.append(f"{name}: other content ({', '.join(before_given.get(name, ['?']))} -> {', '.join(given[name])})")
        elif name in FILE_SETTINGS:
            changed.append(f"{name}: {', '.join(before_given.get(name, []))!r} -> {', '.join(given[name])!r}")
        else:
            changed.append(f"{name} {before[name]!r} -> {value!r}")
    if changed:
        raise ValueError(
            f"--resume continues the same run; changed since it started: {'; '.join(changed)}. "
            f"Resume with the run's own settings, or start a new run in another --out-dir"
        )
    unchecked = [name for name in settings if name not in before]
    if unchecked:  # a state written before these were recorded
        print(f"warning: {state_file} predates recording {', '.join(unchecked)}; those are not compared")
    return state


class SaveResumeState(keras.callbacks.Callback):
    """Each epoch (after the best checkpoint is saved), the model with its optimizer state, the best
    PublicTest accuracy so far and the run's settings, so an interrupted run can resume."""

    def __init__(self, state_dir: Path, best_so_far: float, settings: dict, given: dict, monitor: str = "val_accuracy"):
        super().__init__()
        self.state_dir, self.best, self.settings, self.given, self.monitor = state_dir, best_so_far, settings, given, monitor

    def on_epoch_end(self, epoch, logs=None):
        self.best = max(self.best, float((logs or {}).get(self.monitor, -1.0)))
        self.state_dir.mkdir(parents=True, exist_ok=True)
        partial = self.state_dir / "last.partial.keras"
        self.model.save(partial)
        partial.replace(self.state_dir / "last.keras")
        write_state(self.state_dir, {"next_epoch": epoch + 1, "best_val_accuracy": self.best, "settings": self.settings,
                                     "given": self.given})


def write_state(state_dir: Path, state: dict) -> None:
    partial_state = state_dir / "state.partial.json"
    partial_state.write_text(json.dumps(state))
    partial_state.replace(state_dir / "state.json")


def mark_finished(state_dir: Path, config: TrainConfig) -> None:
    """Once the model and report are written: a later --resume says the run is done instead of training on."""
    state = json.loads((state_dir / "state.json").read_text())
    state["finished"] = f"all {config.epochs} epochs" if state["next_epoch"] >= config.epochs else f"early stopping, patience {config.patience}"
    write_state(state_dir, state)


def build_model(config: TrainConfig, prior: np.ndarray | None = None, synchronized: bool = False) -> keras.Model:
    keras.utils.set_random_seed(config.seed)
    model = make_model(config.arch, l2=config.l2, synchronized=synchronized)
    if config.logit_adjust:
        loss = LogitAdjustedCrossentropy(prior.tolist(), config.logit_adjust, label_smoothing=config.label_smoothing)
    else:
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
    # No weight averaging (Keras use_ema): BatchNorm's moving statistics belong to the raw weights,
    # and with averaged weights PublicTest accuracy fell from 49% to 22% at epoch 4 here.
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate),
        loss=loss,
        weighted_metrics=["accuracy"],
    )
    return model


ONEDNN_ODD_BATCH = (
    "TensorFlow 2.21's oneDNN CPU kernels crash (segfault or heap corruption) in a mini-Xception training step on "
    "an odd batch"
)


def check_batch_parity(config: TrainConfig) -> None:
    """Refuse, before any training step, an odd per-replica batch on a CPU with oneDNN on: measured, every odd
    batch from 1 to 65 crashed and every even one trained. `python -m train fit` turns oneDNN off itself for an
    odd batch (before TensorFlow is imported); called as a library, the caller must."""
    if config.batch_size % 2 == 0 or os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "0" or tf.config.list_logical_devices("GPU"):
        return
    raise ValueError(
        f"--batch-size (train.batch_size) {config.batch_size} is odd: {ONEDNN_ODD_BATCH}. Use an even batch size, "
        "or set TF_ENABLE_ONEDNN_OPTS=0 before TensorFlow is imported (python -m train fit does so itself)"
    )


def fit(config: TrainConfig) -> dict:
    """Train, keep the best PublicTest checkpoint, evaluate it, write the artifacts; returns the report
    (on a multi-worker run's other workers, which write nothing, a line saying so)."""
    run = distribute.start(config)  # before any other TensorFlow work
    try:
        check_batch_parity(config)
        return train_and_report(config, run)
    finally:
        run.finish()


def train_and_report(config: TrainConfig, run: distribute.Run) -> dict:
    started = time.time()
    out_dir = run.out_dir  # the run folder; a temporary one on a multi-worker run's other workers
    state_dir = out_dir / STATE_DIR
    resume_dir = config.run_dir() / STATE_DIR  # every worker resumes from the chief's state
    settings, given = run_identity(config)
    settings["replicas"] = run.replicas  # the global batch and the learning rate depend on it
    state = resume_state(resume_dir, settings, given) if config.resume else None  # before any work: refused fast
    cache_dir = config.cache_dir or default_cache_dir()
    dataset = load_fer2013(config.data, skip_bad=config.skip_bad, cache_dir=cache_dir)
    votes = load_votes(dataset, config.data, config.ferplus, required=config.labels == "ferplus" or config.ferplus_weight > 0)
    splits = take_splits(dataset, config.limit, config.seed, votes)
    teacher = teacher_predictions(config, splits["Training"].images, cache_dir=Path(cache_dir))
    train_images, train_targets = training_targets(splits["Training"], config, teacher)
    print(f"training on {len(train_images)} of {len(splits['Training'])} Training faces ({config.labels} labels)")
    prior = class_prior(train_targets)
    print("training class prior: " + ", ".join(f"{name} {share:.3f}" for name, share in zip(LABELS, prior, strict=True)))
    # The shuffle's seed combines with TensorFlow's global seed: set it first, so the data order does not
    # depend on whether an earlier fit in this process set it.
    keras.utils.set_random_seed(config.seed)
    train_ds = make_train_dataset(train_images, train_targets, run.pipeline_config())
    selection_images, selection_truth = selection_labels(splits["PublicTest"], config.labels)
    val_ds = make_eval_dataset(selection_images, selection_truth, run.global_batch_size)

    initial_epoch, best_so_far = 0, -1.0
    if state is not None:
        initial_epoch, best_so_far = state["next_epoch"], state["best_val_accuracy"]
        with run.building():
            model = load_keras_model(resume_dir / "last.keras", "--resume")
        print(f"resuming at epoch {initial_epoch + 1} (best PublicTest accuracy so far {best_so_far:.4f})")
    else:
        with run.building():
            model = build_model(config, prior, synchronized=run.synchronized_batch_norm)
            if config.init_from:
                model.set_weights(load_keras_model(config.init_from, "--init-from (train.init_from)", compile=False).get_weights())
        if config.init_from:
            print(f"starting from the weights of {config.init_from}")

    artifact = model_file(config.arch)
    best_checkpoint = state_dir / artifact  # copied to out_dir when training ends
    run.prepare(model)
    state_dir.mkdir(parents=True, exist_ok=True)
    monitor = monitored(config)
    callbacks = [
        PublicTestBalancedAccuracy(selection_images, selection_truth),
        keras.callbacks.LearningRateScheduler(lambda epoch: run.learning_rate_scale() * learning_rate_at(epoch, config)),
        keras.callbacks.CSVLogger(str(out_dir / "history.csv"), append=config.resume),
        # after a resume, early stopping's patience counts from the resumed epoch
        keras.callbacks.EarlyStopping(monitor=monitor, mode="max", patience=config.patience),
        keras.callbacks.ModelCheckpoint(
            str(best_checkpoint),
            monitor=monitor,
            mode="max",
            save_best_only=True,
            initial_value_threshold=best_so_far if best_so_far >= 0 else None,
        ),
        SaveResumeState(state_dir, best_so_far, settings, given, monitor),
        run.timer,
    ]
    if config.verbose != 1:  # no progress bar: say how an epoch is going
        callbacks.append(BatchProgress(len(train_images) // run.global_batch_size, config.epochs))
    model.fit(
        train_ds,
        validation_data=val_ds,
        steps_per_epoch=len(train_images) // run.global_batch_size if config.balanced_sampling else None,
        epochs=config.epochs,
        initial_epoch=initial_epoch,
        callbacks=callbacks,
        verbose=config.verbose,
        shuffle=False,  # the tf.data pipeline reshuffles each epoch itself; Keras would warn and ignore True
    )

    if not run.chief:
        return {"chief": False, "task": run.task, "epochs_run": len(run.timer.seconds)}
    if run.plain_copy_needed():
        distribute.save_plain(best_checkpoint, out_dir / artifact, config)
    else:
        partial = out_dir / f".{artifact}.partial"
        shutil.copy2(best_checkpoint, partial)
        partial.replace(out_dir / artifact)
    best = keras.models.load_model(out_dir / artifact)
    report = evaluate_and_report(best, splits, config, out_dir, time.time() - started, len(train_images), settings["data"][0], prior,
                                 run.describe())
    plot_history(out_dir / "history.csv", out_dir / "curves.png")
    mark_finished(state_dir, config)
    return report


def load_votes(dataset, data: str, ferplus: str | None, required: bool):
    """FER+ votes for reporting both label sets (and for training on them when `required`): from
    `ferplus`, else fer2013new.csv beside the data when the data is the CSV form."""
    path = Path(ferplus) if ferplus else ferplus_path_for(data)
    if not required and (dataset.rows is None or not path.is_file()):
        return None
    return load_ferplus(path, dataset)


def accuracy_both_label_sets(probabilities: dict[str, np.ndarray], splits: dict[str, Split]) -> dict:
    """{"fer2013": {split[_flip_tta]: accuracy}, "ferplus_majority": {...}, "ferplus_excluded": {split: n},
    and "balanced_accuracy" / "macro_f1": {label set: {split[_flip_tta]: value}}}.
    `probabilities` maps "PublicTest", "PublicTest_flip_tta", ... to class probabilities."""
    result = {"fer2013": {}, "balanced_accuracy": {}, "macro_f1": {}}

    def record(label_set: str, key: str, truth: np.ndarray, predicted: np.ndarray) -> None:
        metrics = classification_metrics(truth, predicted)
        result.setdefault(label_set, {})[key] = metrics["accuracy"]
        result["balanced_accuracy"].setdefault(label_set, {})[key] = metrics["balanced_accuracy"]
        result["macro_f1"].setdefault(label_set, {})[key] = metrics["macro_f1"]

    for key, scores in probabilities.items():
        split = splits[key.removesuffix("_flip_tta")]
        predicted = scores.argmax(axis=1)
        record("fer2013", key, split.labels, predicted)
        if split.votes is not None:
            majority = split.votes.majority()
            clear = majority >= 0
            record("ferplus_majority", key, majority[clear], predicted[clear])
            result.setdefault("ferplus_excluded", {})[key.removesuffix("_flip_tta")] = int((~clear).sum())
            microsoft = split.votes.microsoft_majority()  # 8 classes: a 7-label model gets contempt wrong
            kept = microsoft >= 0
            result.setdefault("ferplus_microsoft", {})[key] = round(float((predicted[kept] == microsoft[kept]).mean()), 4)
    return result


def evaluate_and_report(
    model: keras.Model, splits: dict, config: TrainConfig, out_dir: Path, seconds: float, train_images: int, data_sha256: str = "",
    prior: np.ndarray | None = None, compute: dict | None = None,
) -> dict:
    history = read_history(out_dir / "history.csv")
    monitor = monitored(config)
    chosen_by = [row.get(monitor, row["val_accuracy"]) for row in history]
    best_epoch = int(history[int(np.argmax(chosen_by))]["epoch"]) + 1
    probabilities = {
        f"{name}{'_flip_tta' if tta else ''}": predict_probabilities(model, splits[name].images, flip_tta=tta)
        for name in ("PublicTest", "PrivateTest")
        for tta in (False, True)
    }
    both = accuracy_both_label_sets(probabilities, splits)
    own_set = "fer2013" if config.labels == "fer2013" else "ferplus_majority"
    own = both[own_set]
    report = {
        "model": model_file(config.arch),
        "model_sha256": file_sha256(out_dir / model_file(config.arch)),  # the model card trusts this report only for this file
        "arch": config.arch,
        "parameters": int(model.count_params()),
        "labels": list(LABELS),
        "trained_on": config.labels,
        "epochs_run": len(history),
        "best_epoch": best_epoch,
        "selected_on": f"PublicTest {config.select_on.replace('_', ' ')} (validation); PrivateTest only reported",
        "best_val_accuracy_during_training": round(max(row["val_accuracy"] for row in history), 4),
        f"best_{monitor}_during_training": round(max(chosen_by), 4),
        "float_accuracy": own,
        "float_accuracy_privatetest": own["PrivateTest_flip_tta" if FLIP_TTA else "PrivateTest"],
        "float_balanced_accuracy": both["balanced_accuracy"][own_set],
        "float_macro_f1": both["macro_f1"][own_set],
        "float_accuracy_by_label_set": both,
        "flip_tta_default": FLIP_TTA,
        "train_images": train_images,
        "class_prior": None if prior is None else dict(zip(LABELS, (round(float(v), 6) for v in prior), strict=True)),
        "data_sha256": data_sha256,  # what it trained on, wherever the file lies (--resume compares it)
        "training_seconds_this_run": round(seconds, 1),
        "compute": compute or {},  # strategy, replicas, devices, precision, seconds per epoch
        "config": asdict(config),
    }
    (out_dir / "train_report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def read_history(history_csv: Path) -> list[dict]:
    with history_csv.open() as stream:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(stream)]


def plot_history(history_csv: Path, out_png: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history = read_history(history_csv)
    epochs = [int(row["epoch"]) + 1 for row in history]
    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("loss", "Training (augmented)"), ("val_loss", "PublicTest")):
        loss_axes.plot(epochs, [row[key] for row in history], label=label)
    for key, label in (("accuracy", "Training (augmented)"), ("val_accuracy", "PublicTest")):
        accuracy_axes.plot(epochs, [row[key] for row in history], label=label)
    loss_axes.set(title="loss", xlabel="epoch")
    accuracy_axes.set(title="accuracy", xlabel="epoch")
    loss_axes.legend()
    accuracy_axes.legend()
    figure.tight_layout()
    figure.savefig(out_png, dpi=100)
    plt.close(figure)
    return out_png
