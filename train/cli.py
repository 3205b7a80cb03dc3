"""`python -m train`: summarize FER2013 and train mini-Xception."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

app = typer.Typer(help="FER2013 data and mini-Xception training.", no_args_is_help=True, add_completion=False)

DataOption = typer.Option(..., "--data", help="fer2013.csv, the image-folder release's .zip, or its folder")
SkipBadOption = typer.Option(False, "--skip-bad", help="skip and count malformed records instead of stopping")
CacheOption = typer.Option(None, "--cache-dir", help="where decoded arrays are cached (default ~/.cache/fer-edge)")


@app.command()
def summary(
    data: Path = DataOption,
    out: Path = typer.Option(Path("models/class_counts.png"), help="bar chart of the class counts"),
    skip_bad: bool = SkipBadOption,
    cache_dir: Path | None = CacheOption,
) -> None:
    """Print class counts per split and save them as a bar chart."""
    from train.data import DatasetError, default_cache_dir, format_summary, load_fer2013, plot_summary

    try:
        dataset = load_fer2013(data, skip_bad=skip_bad, cache_dir=cache_dir or default_cache_dir())
    except DatasetError as error:
        raise typer.BadParameter(str(error), param_hint="--data") from None
    typer.echo(format_summary(dataset))
    typer.echo(f"chart: {plot_summary(dataset, out)}")


@app.command()
def fit(
    data: Path = DataOption,
    labels: str = typer.Option("fer2013", "--labels", help="fer2013: the CSV's labels; ferplus: FER+ vote distributions"),
    ferplus: Path | None = typer.Option(None, "--ferplus", help="FER+ votes (default: fer2013new.csv beside --data)"),
    out_dir: Path | None = typer.Option(
        None, help="where the model, history, curves and report go (default runs/<labels>; never the shipped models/)"
    ),
    epochs: int = typer.Option(80, min=1),
    warmup_epochs: int = typer.Option(2, min=0),
    batch_size: int = typer.Option(64, min=1),
    learning_rate: float = typer.Option(1e-3, min=0.0),
    label_smoothing: float = typer.Option(0.0, min=0.0, max=0.99),
    rotation: float = typer.Option(10.0, "--rotation", help="max random rotation, degrees"),
    shift: float = typer.Option(0.1, help="max random shift, fraction of the side"),
    zoom: float = typer.Option(0.1, help="max random zoom, fraction"),
    patience: int = typer.Option(40, min=1, help="early stopping on PublicTest accuracy"),
    seed: int = typer.Option(1337),
    limit: int = typer.Option(0, min=0, help="use at most this many images per split (smoke runs)"),
    skip_bad: bool = SkipBadOption,
    cache_dir: Path | None = CacheOption,
    resume: bool = typer.Option(False, "--resume", help="continue the interrupted run in OUT_DIR/.train"),
    init_from: Path | None = typer.Option(None, help="start from this .keras model's weights (fine-tune / warm restart)"),
) -> None:
    """Train mini-Xception on Training, select on PublicTest, report PrivateTest."""
    from train.data import DatasetError
    from train.fit import TrainConfig
    from train.fit import fit as run_fit

    try:
        config = TrainConfig(
            data=str(data), out_dir=str(out_dir or Path("runs") / labels), labels=labels,
            ferplus=str(ferplus) if ferplus else None, epochs=epochs, warmup_epochs=warmup_epochs, batch_size=batch_size,
            learning_rate=learning_rate, label_smoothing=label_smoothing, rotation_degrees=rotation,
            shift_fraction=shift, zoom_fraction=zoom, patience=patience, seed=seed,
            limit=limit, skip_bad=skip_bad, cache_dir=str(cache_dir) if cache_dir else None, resume=resume,
            init_from=str(init_from) if init_from else None,
            verbose=1 if sys.stdout.isatty() else 2,
        )
        report = run_fit(config)
    except (DatasetError, ValueError, FileNotFoundError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps({k: report[k] for k in ("parameters", "epochs_run", "best_epoch", "float_accuracy")}, indent=2))
