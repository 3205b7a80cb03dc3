"""Convert the trained Keras model, evaluate every variant as the runtime runs it, gate, report."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from convert.card import CARD_FILE, CONFUSION_PNG, write_model_card
from convert.evaluate import classification_metrics, gate, markdown_summary, plot_confusion, predict_in_batches
from convert.labelsets import (
    JUDGED_BY,
    TITLES,
    TRAIN_REPORT,
    accuracy_by_label_set,
    find_votes,
    judged_truth,
    trained_on,
    with_and_without_flip,
)
from convert.offsets import CROSS_VALIDATION, cross_validate, fit_class_offsets, rule_choice
from convert.quantize import (
    check_full_int8,
    equalize_separable,
    representative_faces,
    to_float_tflite,
    to_int8_tflite,
    update_sidecar,
    write_sidecar,
)
from edge import contract
from edge.config import BUNDLED_MODELS, DEFAULT_MODEL, bundled_model
from edge.settings import check, setting
from edge.vision.model import EmotionModel, file_sha256, load_interpreter_api, sidecar_path
from train.config import LABEL_SETS
from train.data import ferplus_path_for, training_class_prior
from train.shipped import refuse_shipped_output

SPLITS = ("PublicTest", "PrivateTest")
MIN_ACCURACY_FLOOR = 60.0  # %: the gate's default floor; the default bundled model is never installed below it


@dataclass(frozen=True)
class ConvertConfig:
    """Every conversion setting, once: `python -m convert --FLAG` is made from these fields."""

    data: str
    keras_model: str = setting("models/mini_xception.keras", "the trained Keras model")
    out_dir: str = setting("out/convert", "where the .tflite models, sidecars and reports go (never the shipped models/ unless --allow-shipped-output)")
    name: str = setting("mini_xception", "file stem: NAME_int8.tflite, NAME_float32.tflite, ...")
    calibration_count: int = setting(300, "Training faces (class-balanced, with their mirrors) that calibrate int8", low=7, high=28_709)
    equalize: float = setting(
        0.5, "cross-layer equalization before int8: evens out the channel ranges between each separable convolution's "
        "two halves (the same function in float); 0 = off, 1 = fully even", low=0.0, high=1.0
    )
    float32: bool = setting(True, "also export a float32 .tflite for comparison")
    float16: bool = setting(False, "also export a float16-weight .tflite for comparison")
    max_drop: float = setting(0.3, "fail when int8 loses more PrivateTest points than this against float", low=0.0, high=100.0)
    min_accuracy: float | None = setting(
        MIN_ACCURACY_FLOOR, "fail when int8 PrivateTest accuracy (%) is below this, a floor that catches a broken model (0 = none; "
        "--bundle needs one, the default model at least this default)", low=0.0, high=100.0
    )
    limit: int = setting(0, "evaluate on at most this many faces per split (smoke runs)", low=1, zero_means="all")
    skip_bad: bool = setting(False, "skip and count malformed records instead of stopping")
    cache_dir: str | None = setting(None, "decoded-dataset cache (default ~/.cache/fer-edge)")
    seed: int = setting(0, "seed of the calibration sample", low=0, high=2**31 - 1)
    bundle_dir: str | None = setting(None, "when the gate passes, copy the int8 model, sidecar, card and report here")
    labels: str | None = setting(None, "label set the model was trained on (default: train_report.json beside it)", choices=LABEL_SETS)
    ferplus: str | None = setting(None, "FER+ votes (default: fer2013new.csv beside --data, CSV form)")
    images_data: str | None = setting(
        None, "FER2013's image-folder release (.zip or folder): also report int8 accuracy on its JPEG-decoded faces, "
        "what `edge eval --crops` on its extracted test folder measures"
    )
    flip_tta: bool = setting(contract.FLIP_TTA, "the sidecar's flip averaging; the gated figures use it")
    shift_tta: int = setting(
        contract.SHIFT_TTA, "the sidecar's shift averaging, pixels (0 = off); every figure uses it, with and without flip", low=0,
        high=contract.SHIFT_TTA_MAX
    )
    balance: float | None = setting(
        None, "the sidecar's class-prior correction tau (0 = scores as trained, 1 = fully balanced); every figure uses it. "
        "Default: chosen on PublicTest, the tau with the best balanced accuracy whose accuracy is at most "
        "--balance-max-cost points below tau 0's", low=contract.BALANCE_RANGE[0], high=contract.BALANCE_RANGE[1]
    )
    ckplus_data: str | None = setting(
        None, "CK+48 (its .zip or folder): also report int8 on these posed faces from another lab, as `edge eval --crops` "
        "does; evaluation only, it chooses nothing"
    )
    balance_max_cost: float = setting(
        2.5, "when choosing tau on PublicTest: the most accuracy points it may cost against tau 0", low=0.0, high=100.0
    )
    balance_min_accuracy: float | None = setting(
        None, "when choosing tau on PublicTest: the lowest PublicTest accuracy (%) it may leave, a fixed floor used "
        "instead of --balance-max-cost", low=0.0, high=100.0
    )
    class_offsets: bool = setting(
        False, "after choosing tau, also fit per-class log-score offsets on PublicTest (best balanced accuracy whose "
        "accuracy stays at tau's floor; recorded in the sidecar, every figure uses them) and report, from held-out "
        "halves of PublicTest, what they gain over tau alone"
    )
    min_balanced_accuracy: float | None = setting(
        None, "fail when int8 PrivateTest balanced accuracy (%, mean per-class recall) is below this", low=0.0, high=100.0
    )

    allow_shipped_output: bool = setting(False, "let --out-dir or --bundle-dir be inside the shipped models/ or edge/assets/")

    def __post_init__(self):
        check(self, "convert")
        refuse_shipped_output(self.out_dir, "--out-dir (convert.out_dir)", self.allow_shipped_output)
        if self.bundle_dir:
            check_bundle(self)


def check_bundle(config: ConvertConfig) -> None:
    """A bundle is gated on the whole test splits; installing a bundled model (edge/assets/NAME, what
    --bundle does) needs the accuracy floor, and the default model at least the default floor."""
    if config.limit:
        raise ValueError(
            f"--limit (convert.limit) {config.limit} gates on a sample of the test faces; a model gated so is never bundled: "
            "drop --limit, or --bundle / --bundle-dir"
        )
    installs = config.name in BUNDLED_MODELS and Path(config.bundle_dir).resolve() == bundled_model(config.name).parent.resolve()
    if not installs:
        refuse_shipped_output(config.bundle_dir, "--bundle-dir (convert.bundle_dir)", config.allow_shipped_output)
    elif config.name == DEFAULT_MODEL and (config.min_accuracy or 0) < MIN_ACCURACY_FLOOR:
        raise ValueError(
            f"--bundle --name {config.name}: the default model {DEFAULT_MODEL!r} (what `edge run` uses without --model) needs "
            f"--min-accuracy of at least {MIN_ACCURACY_FLOOR:g}, got {config.min_accuracy}"
        )
    elif not config.min_accuracy:
        raise ValueError(
            f"--bundle --name {config.name}: --bundle installs only a gated model: give --min-accuracy (convert.min_accuracy), "
            f"the accuracy floor (default {MIN_ACCURACY_FLOOR:g}), not {config.min_accuracy}"
        )


def convert_and_evaluate(config: ConvertConfig) -> dict:
    from train.data import default_cache_dir, load_fer2013, take_splits
    from train.model import load_keras_model

    started = time.time()
    keras_path = Path(config.keras_model)
    if not keras_path.is_file():
        raise FileNotFoundError(f"{keras_path}: Keras model not found; train one first (make train)")
    model = load_keras_model(keras_path, "--keras-model")  # before the data: a corrupt file fails fast, named
    check_student(model, keras_path)
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    label_set, label_source = trained_on(keras_path, config.labels)
    dataset = load_fer2013(config.data, skip_bad=config.skip_bad, cache_dir=config.cache_dir or default_cache_dir())
    votes, no_votes = find_votes(dataset, config.data, config.ferplus)  # before converting: bad votes fail fast
    if label_set == "ferplus" and votes is None:
        raise ValueError(f"{keras_path} was trained on FER+ votes ({label_source}); judging it needs them: {no_votes}")
    splits = take_splits(dataset, config.limit, config.seed, votes)

    paths = export_variants(model, splits["Training"], keras_path, out_dir, config)
    raw_scores = score_variants(model, paths, splits, config.shift_tta)
    prior = np.round(training_class_prior(splits["Training"], label_set), 6)  # as the sidecar records it
    balance = choose_balance(raw_scores["int8"], splits, label_set, prior, config)
    offsets = fit_offsets(raw_scores["int8"], splits, label_set, prior, balance, config) if config.class_offsets else None
    scores = {
        name: {split: {flip: contract.balance_scores(p, prior, balance["tau"], offsets) for flip, p in by_flip.items()}
               for split, by_flip in by_split.items()}
        for name, by_split in raw_scores.items()
    }
    balance["int8_at_tau_0"] = {  # what `--balance 0` gives (reported, never a choice)
        split: headline(metrics_of(raw_scores["int8"][split][config.flip_tta], splits[split], label_set)) for split in SPLITS
    }
    results, by_label_set, balanced_by_label_set = {}, {}, {}
    for name, by_split in scores.items():
        by_label_set[name] = accuracy_by_label_set(by_split, splits)
        balanced_by_label_set[name] = {
            "balanced_accuracy": by_label_set[name].pop("balanced_accuracy"), "macro_f1": by_label_set[name].pop("macro_f1")
        }
        for split, by_flip in by_split.items():
            results.setdefault(name, {})[split] = metrics_of(by_flip[config.flip_tta], splits[split], label_set)
    if offsets is not None:  # the in-sample figure of the fit: int8 PublicTest, as every figure, with the offsets
        balance["class_offsets_publictest"] = headline(results["int8"]["PublicTest"])
    excluded = by_label_set["keras"].get("ferplus_excluded")
    microsoft = {}  # reported on its own (microsoft_protocol), not as a label set
    for name, accuracies in by_label_set.items():
        accuracies.pop("ferplus_excluded", None)
        microsoft[name] = accuracies.pop("ferplus_microsoft", None)

    private = {name: scores[name]["PrivateTest"][config.flip_tta].argmax(axis=1) for name in ("keras", "int8")}
    report = {
        "keras_model": keras_path.name,
        "keras_sha256": file_sha256(keras_path),  # ties the card to the training report of this very file
        "int8_model": paths["int8"].name,
        "parameters": int(model.count_params()),
        "labels": list(contract.LABELS),
        "trained_on": label_set,
        "trained_on_from": label_source,
        "judged_by": JUDGED_BY[label_set],
        "flip_tta": config.flip_tta,
        "shift_tta": config.shift_tta,
        "evaluated_with": load_interpreter_api()[2],  # the package EmotionModel scored with
        "split_sizes": {split: int(len(splits[split])) for split in ("Training", *SPLITS)},
        "class_counts": dataset.class_counts(),
        "sizes_bytes": {"keras": keras_path.stat().st_size, **{v: p.stat().st_size for v, p in paths.items()}},
        "results": results,
        "accuracy_by_label_set": by_label_set,
        "balanced_by_label_set": balanced_by_label_set,
        "balance": balance,
        "ferplus_microsoft": microsoft_protocol(microsoft, splits, config.flip_tta) if votes else None,
        "ferplus": {"votes": str(config.ferplus or ferplus_path_for(config.data)) if votes else None,
                    "note": no_votes, "excluded": excluded},
        "agreement_privatetest": round(float(np.mean(private["keras"] == private["int8"])), 4),
        "config": asdict(config),
    }

    for name in paths:
        update_sidecar(
            paths[name],
            contract={**contract.describe(), "flip_tta": config.flip_tta, "shift_tta": config.shift_tta,
                      "balance": balance["tau"], "class_prior": [float(v) for v in prior],
                      **({"class_offsets": [float(v) for v in offsets]} if offsets is not None else {})},
            trained_on=label_set,
            accuracy={split: results[name][split]["accuracy"] for split in SPLITS},
            balanced_accuracy={split: results[name][split]["balanced_accuracy"] for split in SPLITS},
            macro_f1={split: results[name][split]["macro_f1"] for split in SPLITS},
            accuracy_judged_by=JUDGED_BY[label_set],
            macro_f1_privatetest=results[name]["PrivateTest"]["macro_f1"],
            balance_in_accuracy=balance["tau"],
            accuracy_ferplus_microsoft=(report["ferplus_microsoft"] or {}).get(name),
            flip_tta_in_accuracy=config.flip_tta,
            shift_tta_in_accuracy=config.shift_tta,
            accuracy_by_label_set=by_label_set[name],
            ferplus_excluded=excluded,
        )
    # measured through the sidecar just written: its flip, shift and class-prior settings, as the runtime runs it
    if config.images_data:
        report["image_folder_release"] = image_folder_accuracy(paths["int8"], config)
    if config.ckplus_data:
        report["ckplus48"] = ckplus_accuracy(paths["int8"], config.ckplus_data)
    failures = gate(report, config.max_drop, config.min_accuracy, config.min_balanced_accuracy)
    report["gate"] = {"max_drop": config.max_drop, "min_accuracy": config.min_accuracy,
                      "min_balanced_accuracy": config.min_balanced_accuracy, "passed": not failures, "failures": failures}
    report["seconds"] = round(time.time() - started, 1)
    write_reports(report, keras_path, out_dir)
    if config.bundle_dir and not failures:
        bundle(out_dir, paths["int8"], Path(config.bundle_dir))
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


def metrics_of(scores: np.ndarray, split, label_set: str) -> dict:
    """classification_metrics of these scores against the label set the model is judged by."""
    truth, counted = judged_truth(split, label_set)
    return classification_metrics(truth[counted], scores.argmax(axis=1)[counted])


def headline(metrics: dict) -> dict:
    """The three figures every report gives side by side."""
    return {key: metrics[key] for key in ("accuracy", "balanced_accuracy", "macro_f1")}


BALANCE_GRID = tuple(round(0.05 * step, 2) for step in range(21))  # the taus measured on PublicTest


def choose_balance(int8_scores: dict, splits: dict, label_set: str, prior: np.ndarray, config: ConvertConfig) -> dict:
    """The class-prior correction tau and how it was chosen. Every tau of BALANCE_GRID is measured on the int8
    model's PublicTest scores (with the sidecar's flip setting) against the label set it is judged by; unless
    --balance names one, the tau kept is the one with the best balanced accuracy whose accuracy is at most
    --balance-max-cost points below tau 0's (or, with --balance-min-accuracy, at least that). PrivateTest plays no part."""
    scores = int8_scores["PublicTest"][config.flip_tta]
    sweep = [{"tau": tau, **headline(metrics_of(contract.balance_scores(scores, prior, tau), splits["PublicTest"], label_set))}
             for tau in BALANCE_GRID]
    floor = accuracy_floor(sweep[0]["accuracy"], config)
    if config.balance is not None:
        tau, how = config.balance, "--balance"
    else:
        if config.balance_min_accuracy is not None:
            how = f"PublicTest: best balanced accuracy with accuracy of at least {config.balance_min_accuracy:g}%"
        else:
            how = f"PublicTest: best balanced accuracy within {config.balance_max_cost:g} accuracy points of tau 0"
        best = rule_choice(sweep, floor)
        tau = best["tau"] if best else 0.0
        if best is None:
            how += f" (none reached it: tau 0, {sweep[0]['accuracy']:.2%})"
    return {"tau": float(tau), "chosen_by": how, "class_prior": dict(zip(contract.LABELS, (round(float(v), 6) for v in prior), strict=True)),
            "accuracy_floor": round(float(floor), 6), "sweep_publictest": sweep}


def accuracy_floor(accuracy_at_tau_0: float, config: ConvertConfig) -> float:
    """The lowest PublicTest accuracy a correction may leave: --balance-min-accuracy, else tau 0's less --balance-max-cost."""
    if config.balance_min_accuracy is not None:
        return config.balance_min_accuracy / 100
    return accuracy_at_tau_0 - config.balance_max_cost / 100


def fit_offsets(int8_scores: dict, splits: dict, label_set: str, prior: np.ndarray, balance: dict, config: ConvertConfig):
    """--class-offsets: per-class offsets fitted on the int8 PublicTest scores at the chosen tau and floor, recorded
    in `balance` with a cross-validation inside PublicTest of what they add; None (and a note) at tau 0. Their
    in-sample PublicTest figure is the report's int8 PublicTest result, added to `balance` once it is measured."""
    if not balance["tau"]:
        balance["class_offsets_note"] = "not fitted: tau is 0 (scores as trained), and offsets are fitted at a tau"
        return None
    truth, counted = judged_truth(splits["PublicTest"], label_set)
    scores, truth = int8_scores["PublicTest"][config.flip_tta][counted], truth[counted]
    offsets = fit_class_offsets(scores, truth, prior, balance["tau"], balance["accuracy_floor"])
    balance["class_offsets"] = dict(zip(contract.LABELS, (float(v) for v in offsets), strict=True))
    balance["class_offsets_cross_validated"] = cross_validate(scores, truth, prior, balance["accuracy_floor"], BALANCE_GRID,
                                                              **CROSS_VALIDATION)
    return offsets


def microsoft_protocol(accuracies: dict, splits: dict, flip_tta: bool) -> dict:
    """{model: {split: accuracy}, "excluded": {split: faces}} under the FERPlus repository's `majority` mode
    (8 classes with contempt; see FerPlusVotes.microsoft_majority), with the sidecar's flip setting. `accuracies`
    is each model's "ferplus_microsoft" from accuracy_by_label_set, measured there with the other label sets."""
    suffix = "_flip_tta" if flip_tta else ""
    result = {name: {split: by_key[split + suffix] for split in SPLITS} for name, by_key in accuracies.items()}
    excluded = {split: int((splits[split].votes.microsoft_majority() < 0).sum()) for split in SPLITS}
    return {**result, "excluded": excluded}


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
    from train.data import default_cache_dir, load_fer2013, take_splits

    images = take_splits(load_fer2013(config.images_data, cache_dir=config.cache_dir or default_cache_dir()), config.limit, config.seed)
    runtime_model = EmotionModel(int8, flip_tta=config.flip_tta, shift_tta=config.shift_tta)  # the sidecar's balance
    accuracy = {
        split: round(float((predict_in_batches(runtime_model.classify, images[split].images).argmax(axis=1) == images[split].labels).mean()), 4)
        for split in SPLITS
    }
    return {"data": str(config.images_data), "judged_by": "fer2013", "flip_tta": config.flip_tta, "shift_tta": config.shift_tta,
            "accuracy": accuracy}


def export_variants(model, training, keras_path: Path, out_dir: Path, config: ConvertConfig) -> dict[str, Path]:
    """int8 (checked full-int8) and the comparison exports, each with its sidecar; {variant: path}."""
    calibration = representative_faces(training.images, training.labels, count=config.calibration_count, seed=config.seed)
    variants = {"int8": to_int8_tflite(equalize_separable(model, calibration, config.equalize), calibration)}
    if config.float32:
        variants["float32"] = to_float_tflite(model)
    if config.float16:
        variants["float16"] = to_float_tflite(model, float16=True)
    paths = {}
    for variant, content in variants.items():
        paths[variant] = out_dir / f"{config.name}_{variant}.tflite"
        paths[variant].write_bytes(content)
        if variant == "int8":
            check_full_int8(paths[variant])
        extra = {"quantization": variant, **({"equalize": config.equalize} if variant == "int8" else {})}
        write_sidecar(paths[variant], int(model.count_params()), keras_path.name, extra)
    return paths


def score_variants(model, paths: dict[str, Path], splits: dict, shift_tta: int = 0) -> dict:
    """{model name: {split: {flip: class scores}}}: Keras, and each TFLite file as the Pi loads it; with
    `shift_tta`, every score is averaged over the shifted copies as the runtime does."""
    from train.model import predict_probabilities

    classifiers = {"keras": lambda faces: predict_probabilities(model, faces, flip_tta=False)}
    for variant, path in paths.items():
        # mirrors, shifts and the class-prior correction applied here, as the runtime does
        runtime_model = EmotionModel(path, flip_tta=False, shift_tta=0, balance=0.0)
        classifiers[variant] = lambda faces, m=runtime_model: predict_in_batches(m.classify, faces)

    def shifted(classify):
        return lambda faces: contract.average_shifts(classify(contract.with_shifts(faces, shift_tta)), shift_tta)

    return {
        name: {split: with_and_without_flip(shifted(classify), splits[split].images) for split in SPLITS}
        for name, classify in classifiers.items()
    }


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
