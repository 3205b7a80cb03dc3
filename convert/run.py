"""Convert the trained Keras model, evaluate every variant as the runtime runs it, gate, report."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from convert.card import write_model_card
from convert.evaluate import classification_metrics, gate, markdown_summary, plot_confusion, predict_in_batches
from convert.quantize import (
    check_full_int8,
    representative_faces,
    to_float_tflite,
    to_int8_tflite,
    update_sidecar,
    write_sidecar,
)
from edge import contract
from edge.model import EmotionModel, sidecar_path

SPLITS = ("PublicTest", "PrivateTest")


@dataclass(frozen=True)
class ConvertConfig:
    data: str
    keras_model: str = "models/mini_xception.keras"
    out_dir: str = "models"
    name: str = "mini_xception"
    calibration_count: int = 300
    float32: bool = True
    float16: bool = False
    max_drop: float = 1.0
    min_accuracy: float | None = None
    limit: int = 0  # >0: evaluate on at most this many faces per split (smoke runs)
    skip_bad: bool = False
    cache_dir: str | None = None
    seed: int = 0
    bundle_dir: str | None = None  # copy the int8 model, its sidecar and the model card here (edge/assets)


def convert_and_evaluate(config: ConvertConfig) -> dict:
    import keras

    from train.data import default_cache_dir, load_fer2013, take_splits
    from train.model import predict_probabilities

    started = time.time()
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    keras_path = Path(config.keras_model)
    if not keras_path.is_file():
        raise FileNotFoundError(f"{keras_path}: Keras model not found; train one first (make train)")
    model = keras.models.load_model(keras_path)
    dataset = load_fer2013(config.data, skip_bad=config.skip_bad, cache_dir=config.cache_dir or default_cache_dir())
    splits = take_splits(dataset, config.limit, config.seed)

    calibration = representative_faces(splits["Training"].images, splits["Training"].labels, count=config.calibration_count, seed=config.seed)
    variants = {"int8": to_int8_tflite(model, calibration)}
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
        write_sidecar(paths[variant], int(model.count_params()), keras_path.name, {"quantization": variant})

    runtime_models = {variant: EmotionModel(path) for variant, path in paths.items()}  # as the Pi loads them
    predictions, results = {}, {}
    for split in SPLITS:
        faces, labels = splits[split].images, splits[split].labels
        predictions[("keras", split)] = predict_probabilities(model, faces).argmax(axis=1)
        for variant, runtime_model in runtime_models.items():
            predictions[(variant, split)] = predict_in_batches(runtime_model.classify, faces).argmax(axis=1)
        for name in ("keras", *paths):
            results.setdefault(name, {})[split] = classification_metrics(labels, predictions[(name, split)])

    report = {
        "keras_model": keras_path.name,
        "int8_model": paths["int8"].name,
        "parameters": int(model.count_params()),
        "labels": list(contract.LABELS),
        "flip_tta": contract.FLIP_TTA,
        "evaluated_with": runtime_models["int8"].interpreter_name,
        "split_sizes": {split: int(len(splits[split])) for split in ("Training", *SPLITS)},
        "class_counts": dataset.class_counts(),
        "sizes_bytes": {"keras": keras_path.stat().st_size, **{v: p.stat().st_size for v, p in paths.items()}},
        "results": results,
        "agreement_privatetest": round(float(np.mean(predictions[("keras", "PrivateTest")] == predictions[("int8", "PrivateTest")])), 4),
        "config": asdict(config),
    }
    failures = gate(report, config.max_drop, config.min_accuracy)
    report["gate"] = {"max_drop": config.max_drop, "min_accuracy": config.min_accuracy, "passed": not failures, "failures": failures}
    report["seconds"] = round(time.time() - started, 1)

    for name in paths:
        update_sidecar(
            paths[name],
            accuracy={split: results[name][split]["accuracy"] for split in SPLITS},
            macro_f1_privatetest=results[name]["PrivateTest"]["macro_f1"],
            flip_tta_in_accuracy=contract.FLIP_TTA,
        )
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "report.md").write_text(markdown_summary(report))
    plot_confusion(results["int8"]["PrivateTest"]["confusion_matrix"], "int8 on PrivateTest", out_dir / "confusion_int8.png")
    card = write_model_card(out_dir)
    if config.bundle_dir and not failures:
        bundle = Path(config.bundle_dir)
        bundle.mkdir(parents=True, exist_ok=True)
        for file in (paths["int8"], card, out_dir / "confusion_int8.png", sidecar_path(paths["int8"])):  # sidecar last
            partial = bundle / f".{file.name}.partial"
            shutil.copy2(file, partial)
            partial.replace(bundle / file.name)
    return report
