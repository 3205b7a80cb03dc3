"""Bundled models and their averages on both label sets: FER2013's labels and the FER+ majority, accuracy and
balanced accuracy, PublicTest and PrivateTest, each model run as the runtime runs it (its sidecar's views and
class-prior correction), an ensemble as `--model a,b` runs it (edge.vision.ensemble).

The FER+ majority is convert's (train.data.FerPlusVotes.majority: the most-voted of the 7 classes; ties, and
contempt, unknown or not-a-face on top, left out), so a single model's figures equal its convert report's.
PrivateTest is reported, never used to choose. CK+48 is measured with `edge eval --crops`, not here.

    python scripts/measure_ensemble.py --data ../shared/data/fer2013.tar.gz --model ferplus --model fer2013 \
        --model ferplus,fer2013 --out docs/ensemble_figures.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import typer

from edge.config import resolve_models
from edge.metrics import classification_metrics
from edge.vision.ensemble import ModelEnsemble, inferences_per_face
from edge.vision.model import EmotionModel

SPLITS = ("PublicTest", "PrivateTest")
BATCH = 256


def load_splits(data: str, ferplus: str | None) -> dict:
    """PublicTest and PrivateTest of the CSV form with their FER+ votes (as convert loads them)."""
    from train.data import default_cache_dir, ferplus_path_for, load_fer2013, load_ferplus, take_splits

    dataset = load_fer2013(data, cache_dir=default_cache_dir())
    if dataset.rows is None:
        raise ValueError(f"{data}: the image-folder release has no FER+ votes; give fer2013.tar.gz or fer2013.csv")
    votes = load_ferplus(ferplus or ferplus_path_for(data), dataset)
    splits = take_splits(dataset, 0, 0, votes)
    return {name: splits[name] for name in SPLITS}


def load(value: str):
    models = [EmotionModel(path) for path in resolve_models(value)]
    return models[0] if len(models) == 1 else ModelEnsemble(models)


def scores_of(model, images: np.ndarray) -> np.ndarray:
    return np.concatenate([model.classify(images[start:start + BATCH]) for start in range(0, len(images), BATCH)])


def figures(predicted: np.ndarray, split) -> dict:
    """Accuracy and balanced accuracy against FER2013's labels and against the FER+ majority."""
    majority = split.votes.majority()
    clear = majority >= 0
    result = {}
    for label_set, truth, kept in (("fer2013", split.labels, slice(None)), ("ferplus_majority", majority[clear], clear)):
        metrics = classification_metrics(truth, predicted[kept])
        result[label_set] = {"accuracy": metrics["accuracy"], "balanced_accuracy": metrics["balanced_accuracy"], "faces": int(len(truth))}
    result["mean_balanced_accuracy"] = round((result["fer2013"]["balanced_accuracy"] + result["ferplus_majority"]["balanced_accuracy"]) / 2, 4)
    return result


def measure(value: str, splits: dict) -> dict:
    model = load(value)
    members = model.members if isinstance(model, ModelEnsemble) else (model,)
    row = {"model": value, "files": [member.path.name for member in members], "sha256": [m.sidecar["sha256"] for m in members],
           "inferences_per_face": inferences_per_face(model)}
    for name, split in splits.items():
        row[name] = figures(scores_of(model, split.images).argmax(axis=1), split)
    return row


def main(
    data: str = typer.Option(..., help="fer2013.tar.gz or fer2013.csv (the CSV form, row-aligned with FER+)"),
    ferplus: str | None = typer.Option(None, help="FER+'s fer2013new.csv (default: beside --data)"),
    model: list[str] = typer.Option(..., help="a --model value: a bundled name, a path, or several comma-separated"),
    out: Path | None = typer.Option(None, help="write the figures here as JSON"),
) -> None:
    splits = load_splits(data, ferplus)
    rows = [measure(value, splits) for value in model]
    for row in rows:
        cells = [f"{row[s][k]['accuracy'] * 100:.2f}/{row[s][k]['balanced_accuracy'] * 100:.2f}" for s in SPLITS for k in ("fer2013", "ferplus_majority")]
        print(f"{row['model']:24} {row['inferences_per_face']:>3} a face  " + "  ".join(cells)
              + "  mean balanced " + " ".join(f"{row[s]['mean_balanced_accuracy'] * 100:.2f}" for s in SPLITS))
    if out:
        out.write_text(json.dumps({"data": data, "rows": rows}, indent=2) + "\n")
        print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    typer.run(main)
