"""`python -m convert`: full-int8 TFLite conversion with an accuracy gate."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from convert.config import ConvertConfig
from edge.config import BUNDLED_MODELS
from edge.settings import cli_options

app = typer.Typer(add_completion=False)


@app.command()
# One way to install a model: `make ship` (which runs --bundle); the bundle folder is no flag of its own.
@cli_options(ConvertConfig, exclude=("data", "bundle_dir"))
def main(
    data: Path = typer.Option(..., "--data", help="FER2013: fer2013.csv (or the fer2013.tar.gz holding it), the image-folder .zip, or its folder",
                              rich_help_panel="Input"),
    bundle: bool = typer.Option(
        False, "--bundle", metavar=" ", rich_help_panel="Output",
        help=f"when the gate passes, install as the bundled model NAME ({' or '.join(BUNDLED_MODELS)}) in edge/assets (what `make ship` runs)",
    ),
    settings: dict | None = None,
) -> None:
    """Keras model -> full-int8 TFLite (+ sidecar JSON), accuracy report on PublicTest/PrivateTest, gate."""
    from convert.quantize import QuantizationError
    from convert.run import convert_and_evaluate
    from edge.config import bundled_model
    from edge.vision.model import ModelError
    from train.data import DatasetError

    name = settings.get("name", "mini_xception")
    if bundle:
        if name not in BUNDLED_MODELS:
            raise typer.BadParameter(f"--bundle installs a bundled model: --name {' or '.join(BUNDLED_MODELS)}, got {name!r}", param_hint="--name")
        settings["bundle_dir"] = os.path.relpath(bundled_model(name).parent)  # relative: the report records it
    try:
        config = ConvertConfig(data=str(data), **settings)
        report = convert_and_evaluate(config)
    except (DatasetError, QuantizationError, ModelError, FileNotFoundError, ValueError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo((Path(config.out_dir) / "report.md").read_text())
    if not report["gate"]["passed"]:
        nothing = f"; nothing installed in {config.bundle_dir}" if config.bundle_dir else ""
        typer.echo("accuracy gate FAILED: " + "; ".join(report["gate"]["failures"]) + nothing, err=True)
        raise typer.Exit(1)
