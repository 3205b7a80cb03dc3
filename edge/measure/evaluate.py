"""`python -m edge eval DIR`: how well the model does on a labelled folder of your own faces.

DIR holds one sub-folder per emotion (canonical names or the usual synonyms); each image is run as a
still (edge.sources.images) and its largest face's label is the prediction. With `crops=True` every image is
an already-cropped face (FER2013's own test folders) and no detection runs.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge import contract
from edge.metrics import NO_FACE, classification_metrics, draw_confusion
from edge.paths import printable
from edge.sources.images import DEFAULT_MAX_IMAGE_PIXELS, STILL_SUFFIXES, read_still, still_name
from edge.vision.ensemble import inferences_per_face
from edge.vision.stills import StillAnalyzer, largest

# Folder names people use for the seven classes (FER2013, FER+, CK+, JAFFE/KDEF codes, RAF-DB words).
SYNONYMS = {
    "angry": ("angry", "anger", "mad", "an"),
    "disgust": ("disgust", "disgusted", "disgusting", "di"),
    "fear": ("fear", "fearful", "afraid", "scared", "fe", "af"),
    "happy": ("happy", "happiness", "joy", "joyful", "ha"),
    "sad": ("sad", "sadness", "sa"),
    "surprise": ("surprise", "surprised", "suprise", "su"),
    "neutral": ("neutral", "neutrality", "ne"),
}
FOLDER_LABELS = {name: contract.LABELS.index(label) for label, names in SYNONYMS.items() for name in names}


@dataclass(frozen=True)
class LabelledFolder:
    root: Path
    images: list[tuple[Path, int]]  # (image, label index)
    skipped_folders: list[str]  # sub-folders that name no class (contempt, unknown, ...)


def labelled_images(root: str | Path, pattern: str = "*") -> LabelledFolder:
    """Images below each emotion sub-folder (recursively) whose file name matches `pattern`."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder (edge eval needs one sub-folder per emotion)")
    images, skipped = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        label = FOLDER_LABELS.get(folder.name.strip().lower())
        if label is None:
            skipped.append(folder.name)
            continue
        files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in STILL_SUFFIXES and fnmatch.fnmatch(p.name, pattern))
        images += [(path, label) for path in files]
    if not images:
        known = ", ".join(sorted(SYNONYMS))
        raise ValueError(f"{root}: no images matching {pattern!r} in sub-folders named after an emotion ({known} or a synonym)")
    return LabelledFolder(root, images, skipped)


def evaluate(folder: LabelledFolder, analyzer: StillAnalyzer, crops: bool, progress=None, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> dict:
    """The report: accuracy on all images (no face = wrong), on images with a face, detection rate,
    per-class precision/recall/F1, macro-F1, confusion matrix, unreadable and misclassified images."""
    labels = analyzer.model.labels
    truth, predicted, unreadable, wrong = [], [], [], []
    for path, label in progress(folder.images) if progress else folder.images:
        name = still_name(path, folder.root)
        try:
            gray = read_still(path, max_pixels).gray
        except ValueError as error:
            unreadable.append({"image": name, "error": str(error)})
            continue
        face = analyzer.crop(gray) if crops else largest(analyzer.faces(gray))
        guess = NO_FACE if face is None else int(np.argmax(face.scores))
        truth.append(label)
        predicted.append(guess)
        if guess != label:
            wrong.append({"image": name, "true": labels[label], "predicted": "no face" if face is None else labels[guess],
                          "score": None if face is None else round(max(face.scores), 4)})
    truth_array, predicted_array = np.asarray(truth, np.int64), np.asarray(predicted, np.int64)
    with_face = predicted_array != NO_FACE
    metrics = classification_metrics(truth_array, predicted_array, labels)
    return {
        "folder": printable(folder.root),
        "mode": "crops (every image is one face)" if crops else "stills (largest face of each image)",
        "model": str(analyzer.model.path),
        "flip_tta": analyzer.model.flip_tta,
        "shift_tta": analyzer.model.shift_tta,
        "balance": analyzer.model.balance,
        "class_offsets": analyzer.model.class_offsets,  # the sidecar's, at its tau; None otherwise
        # an ensemble (--model a,b) gives the four above as lists, one entry per model; this is their sum of views
        "inferences_per_face": inferences_per_face(analyzer.model),
        "images": len(truth),
        "images_with_face": int(with_face.sum()),
        "detection_rate": round(float(with_face.mean()), 4) if truth else 0.0,
        "accuracy": metrics["accuracy"],
        "accuracy_with_face": round(float((truth_array[with_face] == predicted_array[with_face]).mean()), 4) if with_face.any() else 0.0,
        "balanced_accuracy": metrics["balanced_accuracy"],
        "macro_f1": metrics["macro_f1"],
        "classes_averaged": metrics["classes_averaged"],
        "per_class": metrics["per_class"],
        "confusion_matrix": metrics["confusion_matrix"],
        "skipped_folders": folder.skipped_folders,
        "unreadable": unreadable,
        "misclassified": wrong,
    }


def write_report(report: dict, out_dir: str | Path, labels: tuple[str, ...]) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report_path = out_dir / "eval_report.json"
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    title = f"{Path(report['folder']).name}: accuracy {report['accuracy'] * 100:.1f}% ({report['images']} images)"
    return [report_path, draw_confusion(report["confusion_matrix"], labels, title, out_dir / "confusion.png")]


def averaged_over(report: dict) -> str:
    """Which classes balanced accuracy and macro-F1 average: the ones with images."""
    absent = [name for name in report["per_class"] if name not in report["classes_averaged"]]
    listed = f"{len(report['classes_averaged'])} classes with images"
    return listed + (f" ({', '.join(absent)}: no images, left out)" if absent else "")


def correction_line(report: dict) -> str:
    """The class-prior correction the scores had: one model's tau, or each model's in an ensemble."""
    if isinstance(report["balance"], list):
        parts = [f"tau {tau:g}" + (" with offsets" if offsets else "") for tau, offsets in zip(report["balance"], report["class_offsets"], strict=True)]
        return f"class-prior correction per model ({', '.join(parts)}), then the models' probabilities averaged"
    return (f"class-prior correction tau {report['balance']:g}" + (" (scores as trained)" if not report["balance"] else "")
            + (" and the sidecar's per-class offsets" if report.get("class_offsets") else ""))


def format_report(report: dict) -> str:
    lines = [
        f"{report['images']} images in {report['folder']} ({report['mode']}), model {report['model']}",
        f"accuracy           {report['accuracy'] * 100:.2f}% (an image without a face counts as wrong)",
        f"with a face        {report['accuracy_with_face'] * 100:.2f}% of {report['images_with_face']} images",
        f"detection rate     {report['detection_rate'] * 100:.2f}%",
        f"balanced accuracy  {report['balanced_accuracy'] * 100:.2f}% (mean per-class recall)",
        f"macro-F1           {report['macro_f1']:.3f}",
        f"averaged over      {averaged_over(report)}",
        correction_line(report),
        f"inferences a face  {report.get('inferences_per_face', '?')}",
        "",
        f"{'class':10} {'precision':>9} {'recall':>7} {'F1':>6} {'images':>7}",
    ]
    for name, row in report["per_class"].items():
        lines.append(f"{name:10} {row['precision']:9.3f} {row['recall']:7.3f} {row['f1']:6.3f} {row['support']:7d}")
    if report["skipped_folders"]:
        lines.append(f"skipped sub-folders (no such class): {', '.join(report['skipped_folders'])}")
    if report["unreadable"]:
        lines.append(f"unreadable images: {len(report['unreadable'])} (listed in the report)")
    lines.append(f"misclassified: {len(report['misclassified'])} (listed in the report)")
    return "\n".join(lines)
