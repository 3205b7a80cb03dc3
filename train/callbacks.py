"""A run's Keras callbacks of its own: progress lines, the learning-rate schedule, PublicTest balanced accuracy;
and the history column that chooses the checkpoint."""

from __future__ import annotations

import math
import time

import keras
import numpy as np

from edge.metrics import balanced_accuracy
from train.config import TrainConfig
from train.model import predict_probabilities


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
    before the checkpoint, early stopping and the history read them. With `both` (every PublicTest face, its
    FER2013 label and its FER+ majority, -1 where unclear) it also adds the balanced accuracy on each label set
    and `val_mean_balanced_accuracy`, their mean (--select-on mean_balanced_accuracy), from one pass."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, both: tuple | None = None, own: str = "fer2013"):
        super().__init__()
        self.images, self.labels, self.both, self.own = images, labels, both, own

    def on_epoch_end(self, epoch, logs=None):
        if self.both is None:
            predicted = predict_probabilities(self.model, self.images, flip_tta=False).argmax(axis=1)
            values = {"val_balanced_accuracy": balanced_accuracy(self.labels, predicted)}
        else:
            images, fer2013, majority = self.both
            predicted = predict_probabilities(self.model, images, flip_tta=False).argmax(axis=1)
            clear = majority >= 0
            by_set = {"fer2013": balanced_accuracy(fer2013, predicted), "ferplus": balanced_accuracy(majority[clear], predicted[clear])}
            values = {"val_balanced_accuracy": by_set[self.own], "val_balanced_accuracy_fer2013": by_set["fer2013"],
                      "val_balanced_accuracy_ferplus": by_set["ferplus"],
                      "val_mean_balanced_accuracy": (by_set["fer2013"] + by_set["ferplus"]) / 2}
        if logs is not None:
            logs.update(values)
        print(f"epoch {epoch + 1}: PublicTest " + ", ".join(f"{k.removeprefix('val_').replace('_', ' ')} {v:.4f}" for k, v in values.items()),
              flush=True)


def both_label_sets(split) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(every face, its FER2013 label, its FER+ majority or -1) for --select-on mean_balanced_accuracy."""
    if split.votes is None:
        raise ValueError(
            "--select-on mean_balanced_accuracy (train.select_on) needs the FER+ votes: the CSV form of FER2013 with "
            "fer2013new.csv beside it, or --ferplus FILE"
        )
    return split.images, split.labels, split.votes.majority()


def monitored(config: TrainConfig) -> str:
    """The history column that chooses the checkpoint."""
    return f"val_{config.select_on}"
