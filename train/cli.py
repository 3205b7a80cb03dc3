"""`python -m train`: summarize FER2013 and train mini-Xception."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer

from edge.settings import cli_options
from train.config import TrainConfig
from train.shipped import ALLOW_FLAG, refuse_shipped_output

app = typer.Typer(help="FER2013 data and mini-Xception training.", no_args_is_help=True, add_completion=False)

DataOption = typer.Option(..., "--data", help="fer2013.csv, the image-folder release's .zip, or its folder")
SkipBadOption = typer.Option(False, "--skip-bad", help="skip and count malformed records instead of stopping")
CacheOption = typer.Option(None, "--cache-dir", help="where decoded arrays are cached (default ~/.cache/fer-edge)")


@app.command()
def summary(
    data: Path = DataOption,
    out: Path = typer.Option(Path("out/class_counts.png"), help="bar chart of the class counts"),
    skip_bad: bool = SkipBadOption,
    cache_dir: Path | None = CacheOption,
    allow_shipped_output: bool = typer.Option(
        False, ALLOW_FLAG, help="let --out be inside the shipped models/ or edge/assets/ (replaces the tracked chart)"
    ),
) -> None:
    """Print class counts per split and save them as a bar chart."""
    from train.cache import default_cache_dir
    from train.data import format_summary, load_fer2013, plot_summary

    try:
        refuse_shipped_output(out, "--out", allow_shipped_output)  # before the data: nothing read, nothing written
        dataset = load_fer2013(data, skip_bad=skip_bad, cache_dir=cache_dir or default_cache_dir())
    except ValueError as error:  # a DatasetError, or a shipped --out
        typer.echo(f"error: {error}", err=True)  # plain, unwrapped: the file and row stay on one line
        raise typer.Exit(2) from None
    typer.echo(format_summary(dataset))
    typer.echo(f"chart: {plot_summary(dataset, out)}")


@app.command()
@cli_options(TrainConfig, exclude=("data",))
def fit(data: Path = DataOption, settings: dict | None = None) -> None:
    """Train mini-Xception (or a teacher, --arch) on Training, select on PublicTest, report PrivateTest."""
    from train.data import DatasetError
    from train.quiet import import_tensorflow

    if settings.get("batch_size", 2) % 2 and "TF_ENABLE_ONEDNN_OPTS" not in os.environ:
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"  # read once, when TensorFlow is imported (train.fit.check_batch_parity)
        typer.echo(f"--batch-size {settings['batch_size']} is odd: oneDNN turned off for this run (it crashes on odd batches "
                   "in TensorFlow 2.21); training is slower", err=True)
    import_tensorflow()  # before train.fit imports it, so its start-up notices stay out of the output
    from train.fit import fit as run_fit

    try:
        config = TrainConfig(data=str(data), verbose=1 if sys.stdout.isatty() else 2, **settings)
        report = run_fit(config)
    except (DatasetError, ValueError, FileNotFoundError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    if report.get("chief") is False:
        typer.echo(f"worker {report['task']} trained {report['epochs_run']} epochs; the chief wrote the run folder")
        return
    typer.echo(json.dumps({k: report[k] for k in ("arch", "parameters", "epochs_run", "best_epoch", "float_accuracy")}, indent=2))


@app.command()
def soup(
    models: list[Path] = typer.Argument(..., help="two or more .keras runs fine-tuned from the same starting network"),
    data: Path = DataOption,
    out: Path = typer.Option(..., "--out", help="the averaged .keras model (train_report.json and soup.json go beside it)"),
    faces: int = typer.Option(8000, "--faces", min=100, max=100_000, help="Training faces that measure the BatchNorm statistics"),
    seed: int = typer.Option(0, "--seed", min=0, help="which Training faces measure them"),
    cache_dir: Path | None = CacheOption,
    allow_shipped_output: bool = typer.Option(False, ALLOW_FLAG, help="let --out be inside the shipped models/ or edge/assets/"),
) -> None:
    """Average the weights of several runs into one network of the same size (a uniform model soup)."""
    from train.cache import default_cache_dir
    from train.data import DatasetError, load_fer2013
    from train.quiet import import_tensorflow
    from train.splits import take_splits

    try:
        refuse_shipped_output(out, "--out", allow_shipped_output)
        if out.resolve() in {path.resolve() for path in models}:
            raise ValueError(f"--out {out} is one of the models being averaged: write the soup elsewhere")
        import_tensorflow()
        from train.soup import make_soup, read_ingredients

        ingredients = read_ingredients(models)  # before the data: a missing or mismatched model fails fast, named
        training = take_splits(load_fer2013(data, cache_dir=cache_dir or default_cache_dir()), 0, 0)["Training"]
        record = make_soup(models, training, out, faces=faces, seed=seed, progress=lambda line: typer.echo(line, err=True),
                           ingredients=ingredients)
    except (DatasetError, ValueError, FileNotFoundError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{out}: the mean of {len(record['ingredients'])} models, {record['batch_norm_layers']} BatchNorm layers "
               f"measured on {record['batch_norm_faces']:,} Training faces")
