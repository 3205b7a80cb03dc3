"""`python -m convert`: full-int8 TFLite conversion with an accuracy gate."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from edge.config import BUNDLED_MODELS
from edge.contract import FLIP_TTA

app = typer.Typer(add_completion=False)


@app.command()
def main(
    data: Path = typer.Option(..., "--data", help="FER2013: fer2013.csv, the image-folder .zip, or its folder"),
    keras_model: Path = typer.Option(Path("models/mini_xception.keras"), help="trained Keras model"),
    out_dir: Path = typer.Option(Path("models"), help="where the .tflite models, sidecars and reports go"),
    calibration_count: int = typer.Option(300, min=7, help="Training faces (class-balanced) that calibrate int8"),
    float32: bool = typer.Option(True, help="also export a float32 .tflite for comparison"),
    float16: bool = typer.Option(False, help="also export a float16-weight .tflite for comparison"),
    max_drop: float = typer.Option(1.0, min=0.0, help="fail when int8 loses more PrivateTest points than this"),
    min_accuracy: float | None = typer.Option(None, min=0.0, max=100.0, help="fail when int8 PrivateTest accuracy (%) is below"),
    limit: int = typer.Option(0, min=0, help="evaluate on at most this many faces per split (smoke runs)"),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="skip and count malformed records"),
    cache_dir: Path | None = typer.Option(None, help="decoded-dataset cache (default ~/.cache/fer-edge)"),
    name: str = typer.Option("mini_xception", help="file stem: NAME_int8.tflite, NAME_float32.tflite, ..."),
    labels: str | None = typer.Option(
        None, "--labels", help="label set the model was trained on, fer2013 | ferplus (default: train_report.json beside it)"
    ),
    ferplus: Path | None = typer.Option(None, "--ferplus", help="FER+ votes (default: fer2013new.csv beside --data, CSV form)"),
    flip_tta: bool = typer.Option(FLIP_TTA, "--flip-tta/--no-flip-tta", help="the sidecar's flip averaging; the gated figures use it"),
    bundle: bool = typer.Option(
        False, "--bundle", help=f"when the gate passes, install as the bundled model NAME ({' or '.join(BUNDLED_MODELS)}) in edge/assets"
    ),
    bundle_dir: Path | None = typer.Option(None, help="when the gate passes, copy the int8 model, sidecar, card and report here"),
) -> None:
    """Keras model -> full-int8 TFLite (+ sidecar JSON), accuracy report on PublicTest/PrivateTest, gate."""
    from convert.quantize import QuantizationError
    from convert.run import ConvertConfig, convert_and_evaluate
    from edge.config import bundled_model
    from edge.model import ModelError
    from train.data import DatasetError

    if bundle and bundle_dir:
        raise typer.BadParameter("give --bundle or --bundle-dir, not both", param_hint="--bundle")
    if bundle:
        if name not in BUNDLED_MODELS:
            raise typer.BadParameter(f"--bundle installs a bundled model: --name {' or '.join(BUNDLED_MODELS)}, got {name!r}", param_hint="--name")
        bundle_dir = Path(os.path.relpath(bundled_model(name).parent))  # relative: the report records it
    config = ConvertConfig(
        data=str(data), keras_model=str(keras_model), out_dir=str(out_dir), calibration_count=calibration_count,
        float32=float32, float16=float16, max_drop=max_drop, min_accuracy=min_accuracy, limit=limit,
        skip_bad=skip_bad, cache_dir=str(cache_dir) if cache_dir else None,
        bundle_dir=str(bundle_dir) if bundle_dir else None, name=name, labels=labels,
        ferplus=str(ferplus) if ferplus else None, flip_tta=flip_tta,
    )
    try:
        report = convert_and_evaluate(config)
    except (DatasetError, QuantizationError, ModelError, FileNotFoundError, ValueError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo((out_dir / "report.md").read_text())
    if not report["gate"]["passed"]:
        typer.echo("accuracy gate FAILED: " + "; ".join(report["gate"]["failures"]), err=True)
        raise typer.Exit(1)
