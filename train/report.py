"""After training: the chosen model scored on PublicTest and PrivateTest against both label sets,
train_report.json, and the learning curves."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np

from edge.contract import FLIP_TTA, LABELS
from edge.metrics import classification_metrics
from edge.vision.model import file_sha256
from train.arch import model_file
from train.callbacks import monitored
from train.config import TrainConfig
from train.model import predict_probabilities
from train.splits import Split


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
