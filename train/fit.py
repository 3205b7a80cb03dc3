"""Train mini-Xception on FER2013 and keep the best PublicTest epoch: the run, start to finish.

Reads top to bottom: the model, the checks before training, the run (data, targets, model, callbacks, fit), then
shipping the chosen checkpoint and reporting it. Its parts: train/input.py (tf.data and augmentation),
train/targets.py (labels, votes, teachers), train/callbacks.py, train/resume.py (--resume), train/report.py
(evaluation, train_report.json, curves).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from train import distribute
from train.arch import make_model, model_file
from train.cache import default_cache_dir
from train.callbacks import BatchProgress, PublicTestBalancedAccuracy, both_label_sets, learning_rate_at, monitored
from train.config import TrainConfig
from train.data import load_fer2013
from train.ferplus import load_votes
from train.input import make_eval_dataset, make_train_dataset
from train.model import LogitAdjustedCrossentropy, load_keras_model
from train.report import evaluate_and_report, plot_history
from train.resume import STATE_DIR, SaveResumeState, mark_finished, resume_state, run_identity
from train.splits import Split, take_splits
from train.targets import run_targets, selection_labels


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
    resume_dir = config.run_dir() / STATE_DIR  # every worker resumes from the chief's state
    settings, given = run_identity(config)
    settings["replicas"] = run.replicas  # the global batch and the learning rate depend on it
    state = resume_state(resume_dir, settings, given) if config.resume else None  # before any work: refused fast
    splits = load_splits(config)
    train_images, train_targets, prior = run_targets(config, splits["Training"])
    # The shuffle's seed combines with TensorFlow's global seed: set it first, so the data order does not
    # depend on whether an earlier fit in this process set it.
    keras.utils.set_random_seed(config.seed)
    train_ds = make_train_dataset(train_images, train_targets, run.pipeline_config())
    selection = selection_labels(splits["PublicTest"], config.labels)
    both = both_label_sets(splits["PublicTest"]) if config.select_on == "mean_balanced_accuracy" else None
    val_ds = make_eval_dataset(*selection, run.global_batch_size)
    model, initial_epoch, best_so_far = start_model(config, run, state, resume_dir / "last.keras", prior)

    best_checkpoint = out_dir / STATE_DIR / model_file(config.arch)  # copied to out_dir when training ends
    run.prepare(model)
    best_checkpoint.parent.mkdir(parents=True, exist_ok=True)
    steps = len(train_images) // run.global_batch_size
    model.fit(
        train_ds,
        validation_data=val_ds,
        steps_per_epoch=steps if config.balanced_sampling else None,
        epochs=config.epochs,
        initial_epoch=initial_epoch,
        callbacks=run_callbacks(config, run, selection, both, best_checkpoint, best_so_far, (settings, given), steps),
        verbose=config.verbose,
        shuffle=False,  # the tf.data pipeline reshuffles each epoch itself; Keras would warn and ignore True
    )

    if not run.chief:
        return {"chief": False, "task": run.task, "epochs_run": len(run.timer.seconds)}
    best = ship(best_checkpoint, config, run)
    report = evaluate_and_report(best, splits, config, out_dir, time.time() - started, len(train_images), settings["data"][0], prior,
                                 run.describe())
    plot_history(out_dir / "history.csv", out_dir / "curves.png")
    mark_finished(best_checkpoint.parent, config)
    return report


def load_splits(config: TrainConfig) -> dict[str, Split]:
    """Training, PublicTest and PrivateTest, with the FER+ votes where the run trains on them or they lie beside the data."""
    dataset = load_fer2013(config.data, skip_bad=config.skip_bad, cache_dir=config.cache_dir or default_cache_dir())
    votes = load_votes(dataset, config.data, config.ferplus, required=config.votes_needed())
    return take_splits(dataset, config.limit, config.seed, votes)


def start_model(config: TrainConfig, run: distribute.Run, state: dict | None, last: Path, prior: np.ndarray) -> tuple:
    """(model, first epoch, best monitored figure so far): the interrupted run's `last` checkpoint with its optimizer
    state, or a new model (from --init-from's weights where given), built under the run's strategy."""
    if state is not None:
        initial_epoch, best_so_far = state["next_epoch"], state["best_val_accuracy"]
        with run.building():
            model = load_keras_model(last, "--resume")
        print(f"resuming at epoch {initial_epoch + 1} (best PublicTest {config.select_on.replace('_', ' ')} so far {best_so_far:.4f})")
        return model, initial_epoch, best_so_far
    with run.building():
        model = build_model(config, prior, synchronized=run.synchronized_batch_norm)
        if config.init_from:
            model.set_weights(load_keras_model(config.init_from, "--init-from (train.init_from)", compile=False).get_weights())
    if config.init_from:
        print(f"starting from the weights of {config.init_from}")
    return model, 0, -1.0


def run_callbacks(config: TrainConfig, run: distribute.Run, selection: tuple, both: tuple | None, best_checkpoint: Path, best_so_far: float,
                  identity: tuple[dict, dict], steps: int) -> list[keras.callbacks.Callback]:
    """The monitored figure, the schedule, the history, early stopping, the best checkpoint, the resume state and the
    epoch timer, in the order they must run each epoch; progress lines where there is no progress bar."""
    monitor = monitored(config)
    callbacks = [
        PublicTestBalancedAccuracy(*selection, both, "ferplus" if config.labels == "ferplus" else "fer2013"),
        keras.callbacks.LearningRateScheduler(lambda epoch: run.learning_rate_scale() * learning_rate_at(epoch, config)),
        keras.callbacks.CSVLogger(str(run.out_dir / "history.csv"), append=config.resume),
        # after a resume, early stopping's patience counts from the resumed epoch
        keras.callbacks.EarlyStopping(monitor=monitor, mode="max", patience=config.patience),
        keras.callbacks.ModelCheckpoint(
            str(best_checkpoint),
            monitor=monitor,
            mode="max",
            save_best_only=True,
            initial_value_threshold=best_so_far if best_so_far >= 0 else None,
        ),
        SaveResumeState(best_checkpoint.parent, best_so_far, *identity, monitor),
        run.timer,
    ]
    if config.verbose != 1:  # no progress bar: say how an epoch is going
        callbacks.append(BatchProgress(steps, config.epochs))
    return callbacks


def ship(best_checkpoint: Path, config: TrainConfig, run: distribute.Run) -> keras.Model:
    """The chosen epoch's checkpoint as the run's model file (a plain float32 copy where the run trained in mixed
    precision or under a strategy), renamed into place; returned loaded."""
    artifact = run.out_dir / best_checkpoint.name
    if run.plain_copy_needed():
        distribute.save_plain(best_checkpoint, artifact, config)
    else:
        partial = run.out_dir / f".{best_checkpoint.name}.partial"
        shutil.copy2(best_checkpoint, partial)
        partial.replace(artifact)
    return keras.models.load_model(artifact)
