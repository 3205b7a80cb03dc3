"""Both label sets: FER2013's own labels and the FER+ majority, with and without flip averaging.

FER+ votes (fer2013new.csv) are row-aligned with fer2013.csv, so they exist only when the data is the CSV
form (fer2013.csv, or fer2013.tar.gz / a .zip holding it); with the image-folder release the report says so.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edge.metrics import classification_metrics

LABEL_SETS = ("fer2013", "ferplus")  # what a model can be trained on (train fit's --labels)
# The accuracy a model trained on each label set is judged (and gated) by.
JUDGED_BY = {"fer2013": "fer2013", "ferplus": "ferplus_majority"}
TITLES = {"fer2013": "FER2013 labels", "ferplus_majority": "FER+ majority"}
TRAINED_ON_TITLES = {"fer2013": "FER2013 labels", "ferplus": "FER+ votes"}
TRAIN_REPORT = "train_report.json"
SPLITS = ("PublicTest", "PrivateTest")  # the test splits every figure is given on


def trained_on(keras_model: str | Path, labels: str | None) -> tuple[str, str]:
    """(label set, where that came from): train_report.json beside the Keras model, else --labels.
    A --labels that contradicts train_report.json is an error naming the file."""
    if labels is not None and labels not in LABEL_SETS:
        raise ValueError(f"--labels {labels!r}: expected one of {', '.join(LABEL_SETS)}")
    path = Path(keras_model).parent / TRAIN_REPORT
    recorded = None
    if path.is_file():
        try:
            recorded = json.loads(path.read_text()).get("trained_on", "fer2013")  # older runs had only FER2013
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as error:
            raise ValueError(f"{path}: not a valid training report ({error})") from None
    if labels is not None and recorded is not None and labels != recorded:
        raise ValueError(f"--labels {labels} but {path} says the model was trained on {recorded}")
    if labels is not None:
        return labels, "--labels"
    if recorded is not None:
        return recorded, str(path)
    return "fer2013", f"default: no {TRAIN_REPORT} beside {Path(keras_model).name} and no --labels"


def find_votes(dataset, data: str, ferplus: str | None):
    """(FerPlusVotes or None, why there are none). An explicit `ferplus` file must load; the default one,
    fer2013new.csv beside the data, is used when present and the data is the CSV form."""
    from train.ferplus import ferplus_path_for, load_ferplus

    if ferplus:
        return load_ferplus(ferplus, dataset), None
    path = ferplus_path_for(data)
    if dataset.rows is None:
        return None, (
            f"no FER+ figures: {dataset.source} is the image-folder release, which is not row-aligned with FER+'s "
            "fer2013new.csv; give the CSV form (fer2013.csv or fer2013.tar.gz) with --data"
        )
    if not path.is_file():
        return None, f"no FER+ figures: {path} not found; give FER+'s fer2013new.csv with --ferplus"
    return load_ferplus(path, dataset), None


def with_and_without_flip(classify: Callable[[np.ndarray], np.ndarray], faces: np.ndarray) -> dict[bool, np.ndarray]:
    """{False: scores of the faces, True: those averaged with the mirrored faces' scores}, from one pass over
    each: what the runtime's flip averaging computes (its mirrors run in the same batch, scores averaged)."""
    plain = classify(faces)
    mirrored = classify(np.ascontiguousarray(faces[:, :, ::-1]))
    return {False: plain, True: (plain + mirrored) / 2.0}


def judged_truth(split, label_set: str) -> tuple[np.ndarray, np.ndarray]:
    """(labels, mask of faces that count) for the label set a model is judged by: every face's FER2013 label,
    or the FER+ majority of the faces that have a clear one."""
    if JUDGED_BY[label_set] == "ferplus_majority":
        majority = split.votes.majority()
        return majority, majority >= 0
    return split.labels, np.ones(len(split.labels), bool)


def accuracy_by_label_set(scores: dict[str, dict[bool, np.ndarray]], splits: dict) -> dict:
    """For one model: {"fer2013": {"PublicTest": acc, "PublicTest_flip_tta": acc, ...}, "ferplus_majority": {...},
    "ferplus_excluded": {split: faces without a clear majority}} (FER+ keys only with votes)."""
    from train.report import accuracy_both_label_sets

    probabilities = {
        f"{split}{'_flip_tta' if flip else ''}": by_flip[flip] for split, by_flip in scores.items() for flip in (False, True)
    }
    return accuracy_both_label_sets(probabilities, splits)


def label_set_table(report: dict) -> list[str]:
    """Markdown rows: every model x label set x split, without and with flip averaging (report.md, model card)."""
    lines = [
        "| model | label set | PublicTest | PublicTest, flip | PrivateTest | PrivateTest, flip |",
        "|---|---|---|---|---|---|",
    ]
    for model_name, label_sets in report["accuracy_by_label_set"].items():
        for key, values in label_sets.items():
            cells = [f"{values[k] * 100:.2f}%" for k in ("PublicTest", "PublicTest_flip_tta", "PrivateTest", "PrivateTest_flip_tta")]
            lines.append(f"| {model_name} | {TITLES[key]} | " + " | ".join(cells) + " |")
    return lines


def side_by_side_table(report: dict) -> list[str]:
    """Markdown rows: the int8 model as the runtime runs it (the sidecar's flip setting), accuracy and balanced
    accuracy against each label set side by side, and the mean of the two balanced accuracies, per test split
    (report.md, model card, and the figures `edge info` prints); [] when the report lacks FER+ or balanced figures."""
    accuracy = report.get("accuracy_by_label_set", {}).get("int8", {})
    balanced = ((report.get("balanced_by_label_set") or {}).get("int8") or {}).get("balanced_accuracy") or {}
    if not all(key in accuracy and key in balanced for key in TITLES):
        return []
    suffix = "_flip_tta" if report.get("flip_tta") else ""
    lines = [
        "| int8, as the runtime runs it | FER2013 labels: accuracy | balanced accuracy | FER+ majority: accuracy | balanced accuracy "
        "| mean of the two balanced |",
        "|---|---|---|---|---|---|",
    ]
    for split in SPLITS:
        key = split + suffix
        cells = [accuracy["fer2013"][key], balanced["fer2013"][key], accuracy["ferplus_majority"][key], balanced["ferplus_majority"][key]]
        lines.append(f"| {split} | " + " | ".join(f"{value * 100:.2f}%" for value in cells) + f" | {(cells[1] + cells[3]) / 2 * 100:.2f}% |")
    return lines


def ferplus_note(report: dict) -> str:
    """One sentence on what the FER+ figures count, or why there are none."""
    ferplus = report["ferplus"]
    if ferplus.get("note"):
        return ferplus["note"][0].upper() + ferplus["note"][1:] + "."
    excluded = ferplus["excluded"]
    sizes = report["split_sizes"]
    counts = ", ".join(f"{excluded[s]:,} of {sizes[s]:,} {s}" for s in ("PublicTest", "PrivateTest"))
    return (
        f"FER+ majority: the class with the most of the 10 annotators' votes (FER+, `{Path(ferplus['votes']).name}`); "
        f"faces without a clear 7-class majority (a tie, or contempt, unknown or not-a-face on top) are left out: {counts}."
    )


def metrics_of(scores: np.ndarray, split, label_set: str) -> dict:
    """classification_metrics of these scores against the label set the model is judged by."""
    truth, counted = judged_truth(split, label_set)
    return classification_metrics(truth[counted], scores.argmax(axis=1)[counted])


def headline(metrics: dict) -> dict:
    """The three figures every report gives side by side."""
    return {key: metrics[key] for key in ("accuracy", "balanced_accuracy", "macro_f1")}
