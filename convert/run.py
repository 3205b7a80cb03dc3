"""Convert the trained Keras model, evaluate every variant as the runtime runs it, gate, report.

The steps, each in its own module: the settings (config.py), the int8 and comparison exports (quantize.py), the
class-prior correction and per-class offsets (offsets.py), the label sets (labelsets.py), the figures and the
markdown report (evaluate.py), the model card (card.py). This module runs them in order and writes the results.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from convert.card import CARD_FILE, CONFUSION_PNG, write_model_card
from convert.config import ConvertConfig
from convert.evaluate import ckplus_accuracy, gate, image_folder_accuracy, markdown_summary, plot_confusion
from convert.labelsets import (
    JUDGED_BY,
    SPLITS,
    TITLES,
    TRAIN_REPORT,
    accuracy_by_label_set,
    find_votes,
    headline,
    metrics_of,
    trained_on,
)
from convert.offsets import choose_balance, fit_offsets
from convert.quantize import export_variants, score_variants, update_sidecar
from edge import contract
from edge.vision.model import file_sha256, load_interpreter_api, sidecar_path
from train.ferplus import ferplus_path_for
from train.splits import training_class_prior


@dataclass(frozen=True)
class Judged:
    """What a model is judged on and by: the label set it was trained on (and where that was read), the splits
    with their FER+ votes where there are some (else why not), and the data's class counts."""

    label_set: str
    label_source: str
    splits: dict
    class_counts: dict
    has_votes: bool
    no_votes: str | None


def convert_and_evaluate(config: ConvertConfig) -> dict:
    """Convert, score every variant, choose the class-prior correction on PublicTest, record it in the sidecars, gate,
    write the reports and, when the gate passes and a bundle is asked for, bundle; returns the report."""
    started = time.time()
    keras_path = Path(config.keras_model)
    model = load_student(keras_path)
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    judged = load_judged(keras_path, config)
    splits, label_set = judged.splits, judged.label_set

    paths = export_variants(model, splits["Training"], keras_path, out_dir, config)
    raw_scores = score_variants(model, paths, splits, config.shift_tta)
    prior = np.round(training_class_prior(splits["Training"], label_set), 6)  # as the sidecar records it
    balance = choose_balance(raw_scores["int8"], splits, label_set, prior, config)
    offsets = fit_offsets(raw_scores["int8"], splits, label_set, prior, balance, config) if config.class_offsets else None
    report = build_report(model, keras_path, paths, judged, raw_scores, prior, balance, offsets, config)
    update_sidecars(paths, report, prior, offsets, config)
    return gate_and_write(report, keras_path, paths["int8"], config, started)


def load_student(keras_path: Path):
    """The Keras model to convert, read before the data: a missing or corrupt file, or a teacher, fails fast, named."""
    from train.model import load_keras_model

    if not keras_path.is_file():
        raise FileNotFoundError(f"{keras_path}: Keras model not found; train one first (make train)")
    model = load_keras_model(keras_path, "--keras-model")
    check_student(model, keras_path)
    return model


def load_judged(keras_path: Path, config: ConvertConfig) -> Judged:
    """The label set the model is judged by and FER2013 with its FER+ votes, checked before anything is converted:
    bad votes, or a FER+ model without them, fail fast."""
    from train.cache import default_cache_dir
    from train.data import load_fer2013
    from train.splits import take_splits

    label_set, label_source = trained_on(keras_path, config.labels)
    dataset = load_fer2013(config.data, skip_bad=config.skip_bad, cache_dir=config.cache_dir or default_cache_dir())
    votes, no_votes = find_votes(dataset, config.data, config.ferplus)
    if label_set == "ferplus" and votes is None:
        raise ValueError(f"{keras_path} was trained on FER+ votes ({label_source}); judging it needs them: {no_votes}")
    splits = take_splits(dataset, config.limit, config.seed, votes)
    return Judged(label_set, label_source, splits, dataset.class_counts(), votes is not None, no_votes)


def build_report(model, keras_path: Path, paths: dict[str, Path], judged: Judged, raw_scores: dict, prior: np.ndarray,
                 balance: dict, offsets: np.ndarray | None, config: ConvertConfig) -> dict:
    """Every figure, with the chosen tau (and offsets) applied to every variant's scores: report.json before the gate."""
    splits, label_set = judged.splits, judged.label_set
    scores = {
        name: {split: {flip: contract.balance_scores(p, prior, balance["tau"], offsets) for flip, p in by_flip.items()}
               for split, by_flip in by_split.items()}
        for name, by_split in raw_scores.items()
    }
    balance["int8_at_tau_0"] = {  # what `--balance 0` gives (reported, never a choice)
        split: headline(metrics_of(raw_scores["int8"][split][config.flip_tta], splits[split], label_set)) for split in SPLITS
    }
    measured = measure(scores, splits, label_set, config.flip_tta)
    if offsets is not None:  # the in-sample figure of the fit: int8 PublicTest, as every figure, with the offsets
        balance["class_offsets_publictest"] = headline(measured["results"]["int8"]["PublicTest"])
    private = {name: scores[name]["PrivateTest"][config.flip_tta].argmax(axis=1) for name in ("keras", "int8")}
    return {
        "keras_model": keras_path.name,
        "keras_sha256": file_sha256(keras_path),  # ties the card to the training report of this very file
        "int8_model": paths["int8"].name,
        "parameters": int(model.count_params()),
        "labels": list(contract.LABELS),
        "trained_on": label_set,
        "trained_on_from": judged.label_source,
        "judged_by": JUDGED_BY[label_set],
        "flip_tta": config.flip_tta,
        "shift_tta": config.shift_tta,
        "evaluated_with": load_interpreter_api()[2],  # the package EmotionModel scored with
        "split_sizes": {split: int(len(splits[split])) for split in ("Training", *SPLITS)},
        "class_counts": judged.class_counts,
        "sizes_bytes": {"keras": keras_path.stat().st_size, **{v: p.stat().st_size for v, p in paths.items()}},
        "results": measured["results"],
        "accuracy_by_label_set": measured["accuracy_by_label_set"],
        "balanced_by_label_set": measured["balanced_by_label_set"],
        "balance": balance,
        "ferplus_microsoft": microsoft_protocol(measured["microsoft"], splits, config.flip_tta) if judged.has_votes else None,
        "ferplus": {"votes": str(config.ferplus or ferplus_path_for(config.data)) if judged.has_votes else None,
                    "note": judged.no_votes, "excluded": measured["excluded"]},
        "agreement_privatetest": round(float(np.mean(private["keras"] == private["int8"])), 4),
        "config": asdict(config),
    }


def measure(scores: dict, splits: dict, label_set: str, flip_tta: bool) -> dict:
    """Each model's figures from its corrected scores: "results" (against the label set it is judged by, with the
    sidecar's flip setting), "accuracy_by_label_set", "balanced_by_label_set", the faces FER+ "excluded" and the
    accuracies under Microsoft's FER+ rule ("microsoft", reported on their own, not as a label set)."""
    results, by_label_set, balanced_by_label_set = {}, {}, {}
    for name, by_split in scores.items():
        by_label_set[name] = accuracy_by_label_set(by_split, splits)
        balanced_by_label_set[name] = {
            "balanced_accuracy": by_label_set[name].pop("balanced_accuracy"), "macro_f1": by_label_set[name].pop("macro_f1")
        }
        for split, by_flip in by_split.items():
            results.setdefault(name, {})[split] = metrics_of(by_flip[flip_tta], splits[split], label_set)
    excluded = by_label_set["keras"].get("ferplus_excluded")
    microsoft = {}
    for name, accuracies in by_label_set.items():
        accuracies.pop("ferplus_excluded", None)
        microsoft[name] = accuracies.pop("ferplus_microsoft", None)
    return {"results": results, "accuracy_by_label_set": by_label_set, "balanced_by_label_set": balanced_by_label_set,
            "excluded": excluded, "microsoft": microsoft}


def update_sidecars(paths: dict[str, Path], report: dict, prior: np.ndarray, offsets: np.ndarray | None,
                    config: ConvertConfig) -> None:
    """Each variant's sidecar gets the contract it was measured with (flip, shifts, tau, prior, offsets) and its figures."""
    balance, results = report["balance"], report["results"]
    for name in paths:
        update_sidecar(
            paths[name],
            contract={**contract.describe(), "flip_tta": config.flip_tta, "shift_tta": config.shift_tta,
                      "balance": balance["tau"], "class_prior": [float(v) for v in prior],
                      **({"class_offsets": [float(v) for v in offsets]} if offsets is not None else {})},
            trained_on=report["trained_on"],
            accuracy={split: results[name][split]["accuracy"] for split in SPLITS},
            balanced_accuracy={split: results[name][split]["balanced_accuracy"] for split in SPLITS},
            macro_f1={split: results[name][split]["macro_f1"] for split in SPLITS},
            accuracy_judged_by=report["judged_by"],
            macro_f1_privatetest=results[name]["PrivateTest"]["macro_f1"],
            balance_in_accuracy=balance["tau"],
            accuracy_ferplus_microsoft=(report["ferplus_microsoft"] or {}).get(name),
            flip_tta_in_accuracy=config.flip_tta,
            shift_tta_in_accuracy=config.shift_tta,
            accuracy_by_label_set=report["accuracy_by_label_set"][name],
            ferplus_excluded=report["ferplus"]["excluded"],
        )


def gate_and_write(report: dict, keras_path: Path, int8: Path, config: ConvertConfig, started: float) -> dict:
    """The checks on other data (through the sidecar just written: its flip, shift and class-prior settings, as the
    runtime runs it), the gate, the reports, and the bundle when the gate passes; returns the finished report."""
    if config.images_data:
        report["image_folder_release"] = image_folder_accuracy(int8, config)
    if config.ckplus_data:
        report["ckplus48"] = ckplus_accuracy(int8, config.ckplus_data)
    failures = gate(report, config.max_drop, config.min_accuracy, config.min_balanced_accuracy)
    report["gate"] = {"max_drop": config.max_drop, "min_accuracy": config.min_accuracy,
                      "min_balanced_accuracy": config.min_balanced_accuracy, "passed": not failures, "failures": failures}
    report["seconds"] = round(time.time() - started, 1)
    out_dir = Path(config.out_dir)
    write_reports(report, keras_path, out_dir)
    if config.bundle_dir and not failures:
        bundle(out_dir, int8, Path(config.bundle_dir))
    return report


def check_student(model, keras_path: Path) -> None:
    """Convert ships and gates the 58,423-parameter student only: a teacher (`train fit --arch vgg13|resnet18`)
    is refused with what to do instead, before any data is read."""
    from train.arch import PARAMETERS, STUDENT

    if model.name != STUDENT or model.count_params() != PARAMETERS[STUDENT]:
        raise ValueError(
            f"{keras_path} is a {model.name} of {model.count_params():,} parameters, not the {PARAMETERS[STUDENT]:,}-parameter "
            f"{STUDENT} that convert ships: distil it into one (python -m train fit --teacher {keras_path} --teacher-weight 0.5) "
            "and convert that"
        )


def microsoft_protocol(accuracies: dict, splits: dict, flip_tta: bool) -> dict:
    """{model: {split: accuracy}, "excluded": {split: faces}} under the FERPlus repository's `majority` mode
    (8 classes with contempt; see FerPlusVotes.microsoft_majority), with the sidecar's flip setting. `accuracies`
    is each model's "ferplus_microsoft" from accuracy_by_label_set, measured there with the other label sets."""
    suffix = "_flip_tta" if flip_tta else ""
    result = {name: {split: by_key[split + suffix] for split in SPLITS} for name, by_key in accuracies.items()}
    excluded = {split: int((splits[split].votes.microsoft_majority() < 0).sum()) for split in SPLITS}
    return {**result, "excluded": excluded}


def write_reports(report: dict, keras_path: Path, out_dir: Path) -> None:
    """report.json, report.md, the confusion matrix and the model card (with the training report beside it)."""
    train_report = keras_path.parent / TRAIN_REPORT
    if train_report.is_file() and train_report.resolve() != (out_dir / TRAIN_REPORT).resolve():
        shutil.copy2(train_report, out_dir / TRAIN_REPORT)  # the card reads it from out_dir
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "report.md").write_text(markdown_summary(report))
    title = f"int8 on PrivateTest ({TITLES[report['judged_by']]})"
    plot_confusion(report["results"]["int8"]["PrivateTest"]["confusion_matrix"], title, out_dir / CONFUSION_PNG)
    write_model_card(out_dir)


def bundle(out_dir: Path, int8: Path, bundle_dir: Path) -> None:
    """Copy the int8 model, its card, reports and confusion matrix into bundle_dir; the sidecar last, so a
    half-finished copy never pairs a new model with an old sidecar (the runtime checks the sha256)."""
    bundle_dir.mkdir(parents=True, exist_ok=True)
    files = [int8, out_dir / CARD_FILE, out_dir / CONFUSION_PNG, out_dir / "report.md", out_dir / "report.json", sidecar_path(int8)]
    for file in files:
        partial = bundle_dir / f".{file.name}.partial"
        shutil.copy2(file, partial)
        partial.replace(bundle_dir / file.name)
