"""Classification metrics and a confusion-matrix picture, with numpy and OpenCV only (they run on the Pi)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from edge import contract

NO_FACE = -1  # `predicted` value of an image in which no face was found: wrong, whatever the label


def balanced_accuracy(labels: np.ndarray, predicted: np.ndarray, classes: int = contract.NUM_CLASSES) -> float:
    """Mean per-class recall over the classes that have faces (a class with none is left out, not 0)."""
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    support = np.bincount(labels, minlength=classes)
    hits = np.bincount(labels[predicted == labels], minlength=classes)
    present = support > 0
    return float((hits[present] / support[present]).mean()) if present.any() else 0.0


def classification_metrics(labels: np.ndarray, predicted: np.ndarray, names: Sequence[str] = contract.LABELS) -> dict:
    """Accuracy, balanced accuracy, per-class precision/recall/F1, macro-F1 and the confusion matrix (rows = truth).

    Balanced accuracy (mean recall) and macro-F1 average over the classes with faces in `labels`, named in
    "classes_averaged": a class the data lacks (CK+48 has no neutral) says nothing about the model, so it
    neither counts as 0 nor as 1. A prediction of NO_FACE counts against its class's recall and the
    accuracy, and in no column."""
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    classes = len(names)
    confusion = np.zeros((classes, classes), np.int64)
    found = predicted != NO_FACE
    np.add.at(confusion, (labels[found], predicted[found]), 1)
    support = np.bincount(labels, minlength=classes)
    present = support > 0
    true_positive = np.diag(confusion).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.nan_to_num(true_positive / confusion.sum(axis=0))
        recall = np.nan_to_num(true_positive / support)
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
    return {
        "accuracy": round(float(true_positive.sum() / max(len(labels), 1)), 4),
        "balanced_accuracy": round(balanced_accuracy(labels, predicted, classes), 4),
        "macro_f1": round(float(f1[present].mean()) if present.any() else 0.0, 4),
        "classes_averaged": [name for name, has_faces in zip(names, present, strict=True) if has_faces],
        "per_class": {
            name: {
                "precision": round(float(precision[i]), 4),
                "recall": round(float(recall[i]), 4),
                "f1": round(float(f1[i]), 4),
                "support": int(support[i]),
            }
            for i, name in enumerate(names)
        },
        "confusion_matrix": confusion.tolist(),
    }


def draw_confusion(confusion: list[list[int]], names: Sequence[str], title: str, out_png: str | Path, cell: int = 64) -> Path:
    """Row-normalised confusion matrix (rows = truth) as a PNG: blue shading, rate and count per cell."""
    counts = np.asarray(confusion)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    left, top = 110, 60
    size = len(names)
    image = np.full((top + size * cell + 90, left + size * cell + 20, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(image, title, (10, 28), font, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    for row in range(size):
        for column in range(size):
            shade = int(255 - 200 * rates[row, column])
            x, y = left + column * cell, top + row * cell
            cv2.rectangle(image, (x, y), (x + cell - 1, y + cell - 1), (255, shade, shade), -1)  # BGR: white to blue
            ink = (255, 255, 255) if rates[row, column] > 0.5 else (0, 0, 0)
            cv2.putText(image, f"{rates[row, column]:.2f}", (x + 8, y + 28), font, 0.45, ink, 1, cv2.LINE_AA)
            cv2.putText(image, str(counts[row, column]), (x + 8, y + 48), font, 0.4, ink, 1, cv2.LINE_AA)
        cv2.putText(image, names[row], (8, top + row * cell + cell // 2 + 5), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    for column, name in enumerate(names):
        cv2.putText(image, name[:8], (left + column * cell + 4, top + size * cell + 20), font, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(image, "rows: true class, columns: predicted", (left, top + size * cell + 60), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out_png), image):
        raise ValueError(f"cannot write {out_png}")
    return out_png
