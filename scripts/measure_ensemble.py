"""Bundled models and their averages on both label sets: FER2013's labels and the FER+ majority, accuracy and
balanced accuracy, PublicTest and PrivateTest, each model run as the runtime runs it (its sidecar's views and
class-prior correction), an ensemble as `--model a,b` runs it (edge.vision.ensemble).

The FER+ majority is convert's (convert.labelsets: the most-voted of the 7 classes; ties, and contempt, unknown
or not-a-face on top, left out), so a single model's figures equal its convert report's.
PrivateTest is reported, never used to choose. CK+48 (posed faces from another lab, evaluation only) is
measured as `edge eval --crops` measures it (edge.measure.evaluate), its contempt folder skipped.

    python scripts/measure_ensemble.py --data ../shared/data/fer2013.tar.gz --ckplus ../shared/data/ckplus48.zip \
        --model ferplus --model fer2013 --model ferplus,fer2013 --out edge/assets/ensembles.json

--out keeps the ensembles' rows (a single model's figures are in its own convert report); `edge info a,b`
prints them when the files' sha256 and each model's settings (flip, shift, tau) are the ones measured.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import typer

from convert.labelsets import SPLITS
from edge.config import RunConfig
from edge.vision.ensemble import inferences_per_face, members_of
from edge.vision.faces import load_model

BATCH = 256


def load_splits(data: str, ferplus: str | None) -> dict:
    """PublicTest and PrivateTest of the CSV form with their FER+ votes, loaded as convert loads them."""
    from convert.labelsets import find_votes
    from train.cache import default_cache_dir
    from train.data import load_fer2013
    from train.splits import take_splits

    dataset = load_fer2013(data, cache_dir=default_cache_dir())
    votes, no_votes = find_votes(dataset, data, ferplus)
    if votes is None:
        raise ValueError(f"{data}: {no_votes}")
    splits = take_splits(dataset, 0, 0, votes)
    return {name: splits[name] for name in SPLITS}


def load(value: str, overrides: dict):
    """What `edge run --model VALUE` loads, with the same --flip-tta/--shift-tta/--balance (each model's)."""
    return load_model(RunConfig(model=value, **{key: v for key, v in overrides.items() if v is not None}))


def scores_of(model, images: np.ndarray) -> np.ndarray:
    return np.concatenate([model.classify(images[start:start + BATCH]) for start in range(0, len(images), BATCH)])


def figures(scores: np.ndarray, split) -> dict:
    """Accuracy and balanced accuracy against FER2013's labels and against the FER+ majority, by convert's rule
    (convert.labelsets.metrics_of: the label set a model trained on each is judged by)."""
    from convert.labelsets import metrics_of

    result = {}
    for trained_on, label_set in (("fer2013", "fer2013"), ("ferplus", "ferplus_majority")):
        metrics = metrics_of(scores, split, trained_on)
        result[label_set] = {"accuracy": metrics["accuracy"], "balanced_accuracy": metrics["balanced_accuracy"],
                             "faces": int(sum(metrics["per_class"][name]["support"] for name in metrics["per_class"]))}
    result["mean_balanced_accuracy"] = round((result["fer2013"]["balanced_accuracy"] + result["ferplus_majority"]["balanced_accuracy"]) / 2, 4)
    return result


def ckplus_figures(model, archive: str) -> dict:
    """`edge eval --crops` on CK+48 (the zip or its extracted folder): accuracy and balanced accuracy."""
    import tempfile
    import zipfile

    from edge.measure.evaluate import evaluate, labelled_images
    from edge.vision.detect import FaceDetector
    from edge.vision.stills import StillAnalyzer

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(archive)
        if folder.is_file():
            with zipfile.ZipFile(folder) as opened:
                opened.extractall(scratch)
            folder = next(path.parent for path in Path(scratch).rglob("happy") if path.is_dir())
        report = evaluate(labelled_images(folder), StillAnalyzer(FaceDetector(), model), crops=True)
    return {"images": report["images"], "accuracy": report["accuracy"], "balanced_accuracy": report["balanced_accuracy"],
            "skipped_folders": report["skipped_folders"], "note": "evaluation only: never trained on or used to choose"}


def measure(value: str, splits: dict, ckplus: str | None, overrides: dict) -> dict:
    model = load(value, overrides)
    members = members_of(model)
    row = {"model": value, "files": [member.path.name for member in members], "sha256": [m.sidecar["sha256"] for m in members],
           "flip_tta": [m.flip_tta for m in members], "shift_tta": [m.shift_tta for m in members],
           "balance": [m.balance for m in members], "inferences_per_face": inferences_per_face(model)}
    for name, split in splits.items():
        row[name] = figures(scores_of(model, split.images), split)
    if ckplus:
        row["ckplus48"] = ckplus_figures(model, ckplus)
    return row


def main(
    data: str = typer.Option(..., help="fer2013.tar.gz or fer2013.csv (the CSV form, row-aligned with FER+)"),
    ferplus: str | None = typer.Option(None, help="FER+'s fer2013new.csv (default: beside --data)"),
    model: list[str] = typer.Option(..., help="a --model value: a bundled name, a path, or several comma-separated"),
    ckplus: str | None = typer.Option(None, help="CK+48 (ckplus48.zip or its folder): also `edge eval --crops` on it"),
    flip_tta: bool | None = typer.Option(None, "--flip-tta/--no-flip-tta", help="as edge run's, for each model (default: each sidecar's)"),
    shift_tta: int | None = typer.Option(None, help="as edge run's, for each model (default: each sidecar's)"),
    balance: float | None = typer.Option(None, help="as edge run's, for each model (default: each sidecar's)"),
    out: Path | None = typer.Option(None, help="write the ensembles' figures here as JSON (edge/assets/ensembles.json)"),
) -> None:
    splits = load_splits(data, ferplus)
    overrides = {"flip_tta": flip_tta, "shift_tta": shift_tta, "balance": balance}
    rows = [measure(value, splits, ckplus, overrides) for value in model]
    for row in rows:
        cells = [f"{row[s][k]['accuracy'] * 100:.2f}/{row[s][k]['balanced_accuracy'] * 100:.2f}" for s in SPLITS for k in ("fer2013", "ferplus_majority")]
        print(f"{row['model']:24} {row['inferences_per_face']:>3} a face  " + "  ".join(cells)
              + "  mean balanced " + " ".join(f"{row[s]['mean_balanced_accuracy'] * 100:.2f}" for s in SPLITS)
              + (f"  CK+48 {row['ckplus48']['accuracy'] * 100:.2f}/{row['ckplus48']['balanced_accuracy'] * 100:.2f}" if ckplus else ""))
    if out:
        measured_by = "scripts/measure_ensemble.py on " + ", ".join(Path(x).name for x in (data, ckplus) if x)
        ensembles = merged(out, [{**row, "measured_by": measured_by} for row in rows if len(row["files"]) > 1])
        out.write_text(json.dumps({"ensembles": ensembles}, indent=2) + "\n")
        print(f"wrote {out}", file=sys.stderr)


SAME_RUN = ("sha256", "flip_tta", "shift_tta", "balance")  # what `edge info` matches an entry by


def merged(out: Path, new_rows: list[dict]) -> list[dict]:
    """The rows already in `out` that these do not measure again (other files or other settings), then these."""
    try:
        kept = json.loads(out.read_text()).get("ensembles", []) if out.is_file() else []
    except (OSError, ValueError) as error:
        raise SystemExit(f"{out}: cannot read the ensembles measured before ({error}); move it away to start afresh") from error
    replaced = {run_key(row) for row in new_rows}
    return [row for row in kept if run_key(row) not in replaced] + new_rows


def run_key(row: dict) -> tuple[str, ...]:
    return tuple(json.dumps(row.get(name)) for name in SAME_RUN)


if __name__ == "__main__":
    typer.run(main)
