"""Accuracy of the float Keras model and each TFLite model on FER2013's test splits, the gate, report.md; and the
int8 model's checks on other data (FER2013's image-folder release, CK+48).

TFLite models run through edge.vision.model.EmotionModel, exactly as the runtime feeds them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from convert.config import ConvertConfig
from convert.labelsets import SPLITS, TITLES, TRAINED_ON_TITLES, ferplus_note, label_set_table, side_by_side_table
from edge import contract
from edge.metrics import classification_metrics  # noqa: F401  (convert reports with the runtime's metrics)
from edge.vision.model import EmotionModel


def predict_in_batches(classify: Callable[[np.ndarray], np.ndarray], faces: np.ndarray, batch_size: int = 128) -> np.ndarray:
    return np.concatenate([classify(faces[i : i + batch_size]) for i in range(0, len(faces), batch_size)])


def plot_confusion(confusion: list[list[int]], title: str, out_png: str | Path, names=contract.LABELS) -> Path:
    """Row-normalised heat map with counts, rows = true class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.asarray(confusion)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    figure, axes = plt.subplots(figsize=(7, 6))
    image = axes.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(len(names)), names, rotation=45, ha="right")
    axes.set_yticks(range(len(names)), names)
    axes.set(xlabel="predicted", ylabel="true", title=title)
    for (row, column), count in np.ndenumerate(counts):
        colour = "white" if rates[row, column] > 0.5 else "black"
        axes.text(column, row, f"{rates[row, column]:.2f}\n{count}", ha="center", va="center", fontsize=7, color=colour)
    figure.colorbar(image, ax=axes, label="recall share")
    figure.tight_layout()
    out_png = Path(out_png)
    figure.savefig(out_png, dpi=100)
    plt.close(figure)
    return out_png


def gate(report: dict, max_drop: float, min_accuracy: float | None, min_balanced_accuracy: float | None = None) -> list[str]:
    """Reasons the int8 model fails, empty when it passes. Points are percentage points on PrivateTest, against
    the label set the model was trained on (report["judged_by"]: FER2013 labels, or the FER+ majority)."""
    int8 = report["results"]["int8"]["PrivateTest"]["accuracy"] * 100
    float_ = report["results"]["keras"]["PrivateTest"]["accuracy"] * 100
    against = f" (against the {TITLES[report.get('judged_by', 'fer2013')]})"
    failures = []
    if float_ - int8 > max_drop:
        failures.append(f"int8 PrivateTest accuracy {int8:.2f}% is {float_ - int8:.2f} points below float {float_:.2f}%{against} (--max-drop {max_drop})")
    if min_accuracy is not None and int8 < min_accuracy:
        failures.append(f"int8 PrivateTest accuracy {int8:.2f}%{against} is below --min-accuracy {min_accuracy}")
    balanced = report["results"]["int8"]["PrivateTest"].get("balanced_accuracy", 0.0) * 100
    if min_balanced_accuracy is not None and balanced < min_balanced_accuracy:
        failures.append(f"int8 PrivateTest balanced accuracy {balanced:.2f}%{against} is below --min-balanced-accuracy {min_balanced_accuracy}")
    return failures


def balance_section(report: dict) -> list[str]:
    """The class-prior correction: the tau every figure uses, how it was chosen, the PublicTest sweep."""
    balance = report.get("balance")
    if not balance:
        return []
    prior = ", ".join(f"{name} {share * 100:.1f}%" for name, share in balance["class_prior"].items())
    lines = [
        "## Class-prior correction",
        "",
        f"Every figure above uses tau {balance['tau']:g} ({balance['chosen_by']}): scores are divided by the training class "
        f"prior to the power tau and renormalised (0 = as trained). Training prior: {prior}.",
        "",
        "| tau | PublicTest accuracy | balanced accuracy | macro-F1 |",
        "|---|---|---|---|",
    ]
    for row in balance["sweep_publictest"]:
        if row["tau"] in (0.0, 0.25, 0.5, 0.75, 1.0) or row["tau"] == balance["tau"]:
            mark = " (recorded)" if row["tau"] == balance["tau"] else ""
            lines.append(f"| {row['tau']:g}{mark} | {row['accuracy'] * 100:.2f}% | {row['balanced_accuracy'] * 100:.2f}% | {row['macro_f1']:.3f} |")
    at_zero = balance.get("int8_at_tau_0")
    if at_zero and balance["tau"]:
        text = "; ".join(f"{split} accuracy {m['accuracy'] * 100:.2f}%, balanced accuracy {m['balanced_accuracy'] * 100:.2f}%, "
                         f"macro-F1 {m['macro_f1']:.3f}" for split, m in at_zero.items())
        lines += ["", f"With `--balance 0` (the scores as trained; int8): {text}."]
    return [*lines, *offsets_lines(balance), ""]


def offsets_lines(balance: dict) -> list[str]:
    """--class-offsets: the offsets, their in-sample PublicTest figures and what held-out halves of PublicTest say."""
    if balance.get("class_offsets_note"):
        return ["", f"Per-class offsets: {balance['class_offsets_note']}."]
    if not balance.get("class_offsets"):
        return []
    offsets = ", ".join(f"{name} {value:+.2f}" for name, value in balance["class_offsets"].items())
    fitted, held = balance["class_offsets_publictest"], balance["class_offsets_cross_validated"]
    return [
        "",
        f"Then per-class log-score offsets (`--class-offsets`), fitted on int8 PublicTest at tau {balance['tau']:g} "
        f"(best balanced accuracy with accuracy of at least {balance['accuracy_floor'] * 100:.2f}%): {offsets}; every figure "
        f"above uses them. On the PublicTest faces they were fitted on: accuracy {fitted['accuracy'] * 100:.2f}%, balanced "
        f"accuracy {fitted['balanced_accuracy'] * 100:.2f}% (flattered by the fit). Fitted on one half of PublicTest and measured "
        f"on the other ({held['folds']} folds x {held['repeats']} shuffles): tau alone {held['tau']['accuracy'] * 100:.2f}% / "
        f"{held['tau']['balanced_accuracy'] * 100:.2f}% balanced, tau and offsets {held['tau_and_offsets']['accuracy'] * 100:.2f}% / "
        f"{held['tau_and_offsets']['balanced_accuracy'] * 100:.2f}% balanced.",
    ]


def microsoft_section(report: dict) -> list[str]:
    """Accuracy under the FERPlus repository's own majority rule, the one published FER+ figures use."""
    figures = report.get("ferplus_microsoft")
    if not figures:
        return []
    excluded = figures["excluded"]
    rows = [f"| {name} | {values['PublicTest'] * 100:.2f}% | {values['PrivateTest'] * 100:.2f}% |"
            for name, values in figures.items() if name != "excluded"]
    return [
        "## FER+ under Microsoft's protocol",
        "",
        "The FERPlus repository's `majority` mode: votes of 1 dropped, the top class must hold more than half of the rest, "
        "unknown and not-a-face excluded, contempt an 8th class (which these 7 labels always get wrong). Excluded: "
        f"{excluded['PublicTest']:,} PublicTest and {excluded['PrivateTest']:,} PrivateTest faces.",
        "",
        "| model | PublicTest | PrivateTest |",
        "|---|---|---|",
        *rows,
        "",
    ]


def markdown_summary(report: dict) -> str:
    results = report["results"]
    judged_by = TITLES[report.get("judged_by", "fer2013")]
    lines = [
        "# Accuracy report",
        "",
        f"Model `{report['int8_model']}`: {report['parameters']:,} parameters, "
        f"int8 file {report['sizes_bytes']['int8'] / 1024:.1f} KiB, trained on "
        f"{TRAINED_ON_TITLES[report.get('trained_on', 'fer2013')]}. "
        f"Flip test-time averaging: {'on' if report['flip_tta'] else 'off'} (its sidecar's setting, the runtime's default)."
        + (f" Every figure also averages each face over copies shifted {report['shift_tta']} pixels left, right, up and "
           "down (shift averaging, the sidecar's setting: 5x the classifier's cost)." if report.get("shift_tta") else ""),
        "Selected on PublicTest; PrivateTest is the reported test split.",
    ]
    if "accuracy_by_label_set" in report:
        lines += ["", "## Both label sets", "", *label_set_table(report), "", ferplus_note(report)]
        side_by_side = side_by_side_table(report)
        if side_by_side:
            lines += ["", "Accuracy and balanced accuracy on both label sets side by side, int8 as the runtime runs it:", "", *side_by_side]
    lines += [
        "",
        f"## Against the {judged_by} (what the model was trained on and is gated by)",
        "",
        "| model | split | accuracy | balanced accuracy | macro-F1 |",
        "|---|---|---|---|---|",
    ]
    for model_name, splits in results.items():
        for split, metrics in splits.items():
            lines.append(f"| {model_name} | {split} | {metrics['accuracy'] * 100:.2f}% | {metrics['balanced_accuracy'] * 100:.2f}% | "
                         f"{metrics['macro_f1']:.3f} |")
    lines += ["", *balance_section(report), *microsoft_section(report)]
    lines += ["", f"float vs int8 top-1 agreement on PrivateTest: {report['agreement_privatetest'] * 100:.2f}%", ""]
    lines += ["Per-class on PrivateTest (int8):", "", "| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for name, row in results["int8"]["PrivateTest"]["per_class"].items():
        lines.append(f"| {name} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} | {row['support']} |")
    gate_result = report["gate"]
    lines += ["", f"Gate (max drop {gate_result['max_drop']} points, min accuracy {gate_result['min_accuracy']}): "
              f"{'PASS' if gate_result['passed'] else 'FAIL: ' + '; '.join(gate_result['failures'])}", ""]
    return "\n".join(lines)


def ckplus_accuracy(int8: Path, data: str) -> dict:
    """`edge eval --crops` on CK+48 (a folder per class; contempt, which the 7 labels lack, skipped): accuracy,
    balanced accuracy, macro-F1 over the classes present (it has no neutral) and per-class recall."""
    import tempfile
    import zipfile

    from edge.measure.evaluate import evaluate, labelled_images
    from edge.vision.stills import StillAnalyzer

    model = EmotionModel(int8)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(data)
        if root.is_file():
            with zipfile.ZipFile(root) as archive:
                archive.extractall(scratch)
            folders = [p for p in Path(scratch).rglob("*") if p.is_dir() and any(c.is_dir() and c.name == "happy" for c in p.iterdir())]
            if not folders:
                raise ValueError(f"--ckplus-data {data}: no folder of class folders (anger, happy, ...) inside")
            root = folders[0]
        report = evaluate(labelled_images(root), StillAnalyzer(None, model), crops=True)
    keys = ("images", "accuracy", "balanced_accuracy", "macro_f1", "classes_averaged", "skipped_folders", "balance", "flip_tta")
    return {"data": str(data), **{key: report[key] for key in keys},
            "recall": {name: row["recall"] for name, row in report["per_class"].items() if row["support"]},
            "note": "evaluation only: never trained on, never used to choose a checkpoint, recipe or setting"}


def image_folder_accuracy(int8: Path, config: ConvertConfig) -> dict:
    """int8 accuracy against FER2013 labels on the image-folder release: its JPEG-decoded pixels differ by
    a few grey levels from the CSV's, so this is the figure `edge eval --crops` reproduces on its folders."""
    from train.cache import default_cache_dir
    from train.data import load_fer2013
    from train.splits import take_splits

    images = take_splits(load_fer2013(config.images_data, cache_dir=config.cache_dir or default_cache_dir()), config.limit, config.seed)
    runtime_model = EmotionModel(int8, flip_tta=config.flip_tta, shift_tta=config.shift_tta)  # the sidecar's balance
    accuracy = {
        split: round(float((predict_in_batches(runtime_model.classify, images[split].images).argmax(axis=1) == images[split].labels).mean()), 4)
        for split in SPLITS
    }
    return {"data": str(config.images_data), "judged_by": "fer2013", "flip_tta": config.flip_tta, "shift_tta": config.shift_tta,
            "accuracy": accuracy}
