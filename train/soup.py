"""A uniform model soup (Wortsman et al. 2022): the mean of the weights of several runs fine-tuned from the same
starting network, one network of the same size and cost. Averaging replaces choosing one run by its PublicTest
figure, so it is one choice fewer made on a small, noisy split. The BatchNorm statistics of the averaged weights are
not the mean of the runs' statistics; they are measured again on Training faces, layer by layer."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from train.model import load_keras_model, predict_padded
from train.splits import Split

SOUP_FILE = "soup.json"


@dataclass(frozen=True)
class Ingredient:
    path: Path
    sha256: str
    train_report: dict | None  # the run's train_report.json, where it has one


def read_ingredients(paths: list[Path]) -> list[Ingredient]:
    """Each model file with its digest and training report; at least two, all distinct."""
    from edge.vision.model import file_sha256

    if len(paths) < 2:
        raise ValueError(f"a soup needs at least two models, got {len(paths)}")
    ingredients, seen = [], {}
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such model file")
        digest = file_sha256(path)
        if digest in seen:
            raise ValueError(f"{path} is the same model as {seen[digest]} (sha256 {digest[:12]}): each run counts once")
        seen[digest] = path
        report_path = path.parent / "train_report.json"
        try:
            report = json.loads(report_path.read_text()) if report_path.is_file() else None
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{report_path}: not a valid training report ({error})") from None
        if report is not None and not isinstance(report, dict):
            raise ValueError(f"{report_path}: not a valid training report (a JSON object was expected)")
        ingredients.append(Ingredient(path, digest, report))
    labels = {(i.train_report or {}).get("trained_on") for i in ingredients} - {None}
    if len(labels) > 1:
        raise ValueError(f"the models were trained on different labels ({', '.join(sorted(labels))}): soup runs of one label set")
    return ingredients


def average_weights(models: list) -> None:
    """Set the first model's variables to the mean over all models; every model must have the same layout."""
    first = models[0]
    for model in models[1:]:
        shapes = [tuple(w.shape) for w in model.weights]
        if shapes != [tuple(w.shape) for w in first.weights]:
            raise ValueError(f"{model.name} ({model.count_params():,} parameters) does not have the layout of {first.name}: "
                             "a soup averages runs of one architecture")
    for index, variable in enumerate(first.weights):
        variable.assign(np.mean([model.weights[index].numpy() for model in models], axis=0))


def measure_batch_norm(model, faces: np.ndarray, batch_size: int = 500, progress=None) -> int:
    """Set every BatchNorm's moving mean and variance to those of its input on `faces`, first layer first (each
    layer's input depends on the statistics before it); returns how many layers were set."""
    import keras

    from edge.contract import scale_pixels

    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    inputs = scale_pixels(faces)
    for done, layer in enumerate(norms, 1):
        if progress:
            progress(f"BatchNorm {done}/{len(norms)}: {layer.name}")
        activations = predict_padded(keras.Model(model.input, layer.input), inputs, batch_size)
        activations = activations.reshape(-1, activations.shape[-1])
        gamma, beta, _, _ = layer.get_weights()
        layer.set_weights([gamma, beta, activations.mean(axis=0), activations.var(axis=0)])
    return len(norms)


def make_soup(paths: list[Path], training: Split, out: Path, faces: int = 8000, seed: int = 0, progress=None,
              ingredients: list[Ingredient] | None = None) -> dict:
    """Average the models at `paths`, measure BatchNorm on `faces` Training faces, save to `out` with a
    train_report.json (the first run's, marked as a soup) and soup.json beside it. Returns the soup record."""
    from edge.vision.model import file_sha256

    ingredients = ingredients or read_ingredients(paths)  # read_ingredients(paths) already, where the caller checked first
    models = [load_keras_model(i.path, "soup", compile=False) for i in ingredients]
    average_weights(models)
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(training), min(faces, len(training)), replace=False))
    layers = measure_batch_norm(models[0], training.images[chosen], progress=progress)
    out.parent.mkdir(parents=True, exist_ok=True)
    models[0].save(out)
    record = {
        "method": "uniform weight soup (Wortsman et al. 2022), BatchNorm statistics measured on Training faces",
        "ingredients": [{"model": str(i.path), "sha256": i.sha256,
                         "seed": (i.train_report or {}).get("config", {}).get("seed")} for i in ingredients],
        "batch_norm_faces": int(len(chosen)),
        "batch_norm_layers": layers,
        "model_sha256": file_sha256(out),
    }
    (out.parent / SOUP_FILE).write_text(json.dumps(record, indent=2) + "\n")
    first = ingredients[0].train_report
    if first is not None:
        report = {key: value for key, value in first.items() if not key.startswith(("float_", "best_val_"))}
        report.update(
            model=out.name, model_sha256=record["model_sha256"], soup=record,
            stages=f"a uniform weight soup of {len(ingredients)} runs of these settings (seeds "
            f"{', '.join(str(i['seed']) for i in record['ingredients'])}), BatchNorm statistics measured again on "
            f"{len(chosen):,} Training faces; the per-run figures are in each run's train_report.json",
        )
        (out.parent / "train_report.json").write_text(json.dumps(report, indent=2) + "\n")
    return record
