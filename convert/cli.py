"""`python -m convert`: full-int8 TFLite conversion with an accuracy gate."""

from __future__ import annotations

from pathlib import Path

import typer

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
    bundle_dir: Path | None = typer.Option(None, help="when the gate passes, copy the int8 model, sidecar and card here"),
) -> None:
    """Keras model -> full-int8 TFLite (+ sidecar JSON), accuracy report on PublicTest/PrivateTest, gate."""
    from convert.quantize import QuantizationError
    from convert.run import ConvertConfig, convert_and_evaluate
    from edge.model import ModelError
    from train.data import DatasetError

    config = ConvertConfig(
        data=str(data), keras_model=str(keras_model), out_dir=str(out_dir), calibration_count=calibration_count,
        float32=float32, float16=float16, max_drop=max_drop, min_accuracy=min_accuracy, limit=limit,
        skip_bad=skip_bad, cache_dir=str(cache_dir) if cache_dir else None,
        bundle_dir=str(bundle_dir) if bundle_dir else None,
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
