"""`python -m edge`: run the detector, benchmark it, describe a model."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console

from edge.config import BUNDLED_MODELS, DEFAULT_MODEL, RunConfig, build_config
from edge.settings import cli_options

MODEL_HELP = f"{' | '.join(BUNDLED_MODELS)} (a bundled model) or a .tflite path with its sidecar JSON (default: {DEFAULT_MODEL})"

app = typer.Typer(help="Facial-expression recognition on the edge.", no_args_is_help=True, add_completion=False)
bench_app = typer.Typer(help="Benchmarks like TFLite's benchmark_model.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@app.command()
@cli_options(RunConfig)
def run(
    config: Path | None = typer.Option(None, "--config", help="TOML config file (settings under its run table); flags override it"),
    # Deprecated: one way to name a camera (--source usb:N); kept, hidden, so old scripts still run.
    camera_id: int | None = typer.Option(None, hidden=True, help="deprecated: use --source usb:N"),
    summary: bool = typer.Option(False, "--summary", metavar=" ", help="print a readable summary to stderr at the end"),
    settings: dict | None = None,
) -> None:
    """Detect faces and classify their expressions, headless, logging JSON Lines events."""
    from edge.pipeline import run as run_pipeline

    if camera_id is not None:
        if "source" in settings:
            fail("give either --source or --camera-id, not both")
        typer.echo(f"note: --camera-id is deprecated; use --source usb:{camera_id}", err=True)
        settings["source"] = f"usb:{camera_id}"
    try:
        run_config = build_config(config, settings)
        result = run_pipeline(run_config)
    except (ValueError, RuntimeError, OSError, ImportError) as error:
        fail(str(error))
    if summary:
        typer.echo(format_summary(result) + format_outputs(run_config), err=True)


def format_detector(result: dict) -> str:
    return f"\ndetector {result['detector']}" if result.get("detector") else ""


def format_summary(result: dict) -> str:
    if "images" in result:
        return (
            f"{result['images']} images in {result['seconds']:.2f} s, {result['faces']} faces, {result['errors']} unreadable; "
            f"stopped: {result['reason']}\n{format_memory(result)}{format_detector(result)}"
        )
    stages = ", ".join(f"{name} {ms:.2f} ms" for name, ms in result["stage_ms"].items())
    return (
        f"{result['frames']} frames in {result['seconds']:.2f} s ({result['fps']:.1f} FPS), stopped: {result['reason']}\n"
        f"faces {result['faces']} ({result.get('classified', result['faces'])} classified), tracks new {result['new']} / updates {result['update']} / ended {result['end']}, "
        f"dropped frames {result['dropped']}\nper frame: {stages}\n{format_memory(result)}{format_detector(result)}"
    )


def format_memory(result: dict) -> str:
    """Peak resident memory, and at the end how much of it the run allocated (anonymous) and how much is mapped files."""
    parts = ""
    if "rss_anon_mb" in result:
        parts = f" (at the end: {result['rss_anon_mb']} MB allocated, {result.get('rss_file_mb', '?')} MB of mapped files)"
    return f"peak memory {result['peak_rss_mb']} MB{parts}"


def format_outputs(config: RunConfig) -> str:
    """Where the run's files went, one line each (nothing for what it did not write)."""
    from edge.outputs.preview import playback_note

    written = {"events": "" if config.log == "-" else config.log, "video": config.save_video,
               "images": config.save_images, "csv": config.csv}
    lines = "".join(f"\n{what:<7}{path}" for what, path in written.items() if path)
    note = playback_note(config.save_video) if config.save_video else ""
    return lines + (f"\n{'':7}{note}" if note else "")


# The settings that choose and run the model and the face detector: shared by run, eval and bench.
MODEL_AND_DETECTOR = (
    "model", "num_threads", "flip_tta", "shift_tta", "balance", "scale_factor", "min_neighbors", "min_face", "cascade",
    "detector", "blazeface_score", "blazeface_tiles", "yunet_score", "landmarks",
)


@app.command("eval")
@cli_options(RunConfig, only=(*MODEL_AND_DETECTOR, "max_image_pixels"))
def eval_folder(
    folder: Path = typer.Argument(..., help="one sub-folder per emotion (angry or anger, happy or happiness, ...)"),
    crops: bool = typer.Option(False, "--crops", help="every image is an already-cropped face (e.g. FER2013's test folders): no detection"),
    pattern: str = typer.Option("*", help="only image files whose name matches, e.g. 'PrivateTest_*'"),
    out_dir: Path = typer.Option(Path("out/eval"), help="where eval_report.json and confusion.png go"),
    config: Path | None = typer.Option(None, "--config", help="TOML config file; its model and detector settings are used"),
    settings: dict | None = None,
) -> None:
    """Accuracy on a labelled folder of your own faces: per class, confusion matrix, misclassified images."""
    from rich.progress import track

    from edge.measure.evaluate import evaluate, format_report, labelled_images, write_report
    from edge.vision.faces import load_model, make_detector
    from edge.vision.stills import StillAnalyzer

    try:
        run_config = build_config(config, settings)
        model = load_model(run_config)
        analyzer = StillAnalyzer(make_detector(run_config, stills=True), model)
        folder_images = labelled_images(folder, pattern)
        report = evaluate(
            folder_images, analyzer, crops, progress=lambda items: track(items, description="evaluating", transient=True),
            max_pixels=run_config.max_image_pixels,
        )
        written = write_report(report, out_dir, model.labels)
    except (ValueError, OSError, ImportError) as error:
        fail(str(error))
    typer.echo(format_report(report))
    for path in written:
        typer.echo(f"wrote {path}")


@app.command()
def settings(
    markdown: bool = typer.Option(False, "--markdown", metavar=" ", help="print docs/configuration.md (Markdown) instead"),
    toml: bool = typer.Option(False, "--toml", metavar=" ", help="print the Raspberry Pi's edge.toml instead"),
) -> None:
    """Every runtime setting: flag, config key, default, valid range, meaning, grouped as in `run --help`."""
    from edge.config import pi_toml, settings_markdown

    if markdown and toml:
        fail("give --markdown or --toml, not both")
    if markdown or toml:
        typer.echo(pi_toml() if toml else settings_markdown(), nl=False)
        return
    from edge.settings import terminal_tables

    console = Console()
    for table in terminal_tables(RunConfig, "run"):
        console.print(table)


@app.command()
def info(model: str | None = typer.Argument(None, help=MODEL_HELP + "; several, comma-separated, for their average")) -> None:
    """What a model is: labels, label set trained on, accuracy on both label sets, contract, sha256, interpreter."""
    from edge.config import resolve_models
    from edge.vision.ensemble import ModelEnsemble
    from edge.vision.model import EmotionModel

    try:
        loaded = [EmotionModel(path) for path in resolve_models(model)]
        ensemble = ModelEnsemble(loaded) if len(loaded) > 1 else None
    except (ValueError, ImportError) as error:
        fail(str(error))
    blocks = [model_lines(member) for member in loaded] + ([ensemble_lines(ensemble)] if ensemble else [])
    typer.echo("\n\n".join("\n".join(block) for block in blocks))


def model_lines(loaded) -> list[str]:
    """`edge info`'s lines on one model."""
    from edge.vision.ensemble import views_per_face

    path, sidecar = loaded.path, loaded.sidecar
    lines = [
        f"model        {path}",
        f"sha256       {sidecar['sha256']} (verified)",
        f"size         {path.stat().st_size:,} bytes, {sidecar.get('parameters', '?')} parameters, {sidecar.get('quantization', '?')}",
        f"input        {sidecar['input_dtype']} {sidecar['input_shape']}, quantization {sidecar.get('input_quantization')}",
        f"labels       {', '.join(loaded.labels)}",
        f"trained on   {LABEL_SET_NAMES.get(sidecar.get('trained_on'), 'not recorded')}",
        "contract     " + json.dumps(sidecar["contract"]),
        f"inferences   {views_per_face(loaded)} a face (its views: flip TTA {'on' if loaded.flip_tta else 'off'}, shift TTA {loaded.shift_tta})",
        *accuracy_lines(sidecar),
        *label_set_lines(loaded),
        "sidecar      " + loaded.sidecar_status,
        f"interpreter  {loaded.interpreter_name}",
    ]
    card = path.parent / "MODEL_CARD.md"
    if card.exists():
        lines.append(f"model card   {card}")
    return lines


def ensemble_lines(ensemble) -> list[str]:
    """`edge info`'s lines on several models averaged."""
    from edge.vision.ensemble import views_per_face

    views = " + ".join(str(views_per_face(member)) for member in ensemble.members)
    return [
        f"ensemble     {ensemble.name}: class probabilities averaged, each model with its own sidecar's views and correction",
        f"inferences   {ensemble.inferences_per_face} a face ({views})",
        f"labels       {', '.join(ensemble.labels)}",
        *ensemble_label_set_lines(ensemble),
        "sidecar      " + ensemble.sidecar_status,
    ]


LABEL_SET_NAMES = {"fer2013": "FER2013 labels (fer2013)", "ferplus": "FER+ votes (ferplus)"}  # trained on
ACCURACY_TITLES = {"fer2013": "FER2013 labels", "ferplus_majority": "the FER+ majority"}  # measured against
LABEL_SET_COLUMNS = {"fer2013": "FER2013 labels", "ferplus_majority": "FER+ majority"}


def accuracy_lines(sidecar: dict) -> list[str]:
    """Accuracy against each label set the sidecar records, with and without flip averaging."""
    by_label_set = sidecar.get("accuracy_by_label_set")
    if not by_label_set:  # a sidecar from before both label sets were reported
        accuracy = sidecar.get("accuracy") or {}
        text = ", ".join(f"{split} {value * 100:.2f}%" for split, value in accuracy.items()) or "not measured"
        return ["accuracy     " + text + (" (flip TTA)" if sidecar.get("flip_tta_in_accuracy") else "")]
    lines = []
    for label_set, values in by_label_set.items():
        text = ", ".join(
            f"{key.removesuffix('_flip_tta')} {value * 100:.2f}%" + (" (flip TTA)" if key.endswith("_flip_tta") else "")
            for key, value in values.items()
        )
        lines.append(f"{'accuracy' if not lines else '':13}against {ACCURACY_TITLES.get(label_set, label_set)}: {text}")
    if "fer2013" in by_label_set and "ferplus_majority" not in by_label_set:
        lines.append(" " * 13 + "against the FER+ majority: not measured (converted without FER+ votes)")
    if sidecar.get("shift_tta_in_accuracy"):
        lines.append(" " * 13 + f"every figure averages each face over {sidecar['shift_tta_in_accuracy']}-pixel shifts (shift TTA)")
    return lines + balance_lines(sidecar)


def balance_lines(sidecar: dict) -> list[str]:
    """Balanced accuracy and macro-F1 beside accuracy, the class-prior correction they were measured with, and the
    figure under Microsoft's FER+ protocol, where the sidecar records them."""
    lines = []
    judged = ACCURACY_TITLES.get(sidecar.get("accuracy_judged_by"), "its own labels")
    for key, title in (("balanced_accuracy", "balanced acc"), ("macro_f1", "macro-F1")):
        values = sidecar.get(key)
        if isinstance(values, dict):
            text = ", ".join(f"{split} {v * 100:.2f}%" if key == "balanced_accuracy" else f"{split} {v:.3f}" for split, v in values.items())
            lines.append(f"{title:13}{text} (against {judged}; mean over the classes present)")
    microsoft = sidecar.get("accuracy_ferplus_microsoft")
    if isinstance(microsoft, dict):
        text = ", ".join(f"{split} {v * 100:.2f}%" for split, v in microsoft.items())
        lines.append(f"{'FER+ (MS)':13}{text} (the FERPlus repository's majority rule, 8 classes with contempt)")
    tau = sidecar.get("contract", {}).get("balance", 0)
    lines.append(f"{'balance':13}tau {tau:g}" + (
        ": scores divided by the training class prior to this power (--balance 0: as trained)" if tau else ": scores as trained"))
    offsets = sidecar.get("contract", {}).get("class_offsets")
    if tau and isinstance(offsets, list):
        text = ", ".join(f"{name} {value:+.2f}" for name, value in zip(sidecar.get("labels", ()), offsets, strict=False))
        lines.append(" " * 13 + f"then per-class log-score offsets fitted on PublicTest at this tau: {text}")
    return lines


ENSEMBLE_FIGURES = "ensembles.json"  # in edge/assets: ensembles measured by scripts/measure_ensemble.py
CONVERT_REPORT = "report.json"  # what `python -m convert` writes beside the int8 model, bundled with it


def convert_report(loaded) -> dict | None:
    """convert's report.json beside the model when it describes this conversion: its int8 accuracy on both label
    sets is the (digest-bound) sidecar's. The report carries what the sidecar lacks: balanced accuracy on both."""
    path = loaded.path.parent / CONVERT_REPORT
    try:
        report = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(report, dict) or not loaded.sidecar.get("accuracy_by_label_set"):
        return None
    same = (report.get("accuracy_by_label_set") or {}).get("int8") == loaded.sidecar["accuracy_by_label_set"]
    return report if same else None


def label_set_figures(loaded) -> dict[str, dict[str, tuple[float, float]]]:
    """{split: {label set: (accuracy, balanced accuracy)}} of the int8 model run as its sidecar says, from the
    convert report beside it; {} when there is none for this model or it lacks a figure."""
    report = convert_report(loaded)
    if report is None:
        return {}
    accuracy = report["accuracy_by_label_set"]["int8"]
    balanced = ((report.get("balanced_by_label_set") or {}).get("int8") or {}).get("balanced_accuracy") or {}
    suffix = "_flip_tta" if loaded.sidecar.get("flip_tta_in_accuracy") else ""
    figures = {}
    for split in ("PublicTest", "PrivateTest"):
        key = split + suffix
        pairs = {label_set: (accuracy[label_set].get(key), balanced.get(label_set, {}).get(key)) for label_set in ACCURACY_TITLES}
        if any(None in pair for pair in pairs.values()):
            return {}
        figures[split] = pairs
    return figures


def label_set_lines(loaded) -> list[str]:
    """Both label sets side by side from the convert report, then CK+48 where the report has it."""
    figures = label_set_figures(loaded)
    if not figures:
        return [f"{'label sets':13}balanced accuracy on both: not recorded (no convert report.json of this model beside it)"]
    return label_set_table(figures, convert_report(loaded).get("ckplus48"))


def ensemble_figures(ensemble) -> dict | None:
    """The entry of edge/assets/ensembles.json (scripts/measure_ensemble.py) measured with these very files, in this
    order, each run with the views and tau it runs with here."""
    from edge.paths import ASSETS

    try:
        entries = json.loads((ASSETS / ENSEMBLE_FIGURES).read_text()).get("ensembles", [])
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return None
    measured = {"sha256": ensemble.sha256, "flip_tta": ensemble.flip_tta, "shift_tta": ensemble.shift_tta, "balance": ensemble.balance}
    return next((e for e in entries if isinstance(e, dict) and all(e.get(key) == value for key, value in measured.items())), None)


def ensemble_label_set_lines(ensemble) -> list[str]:
    entry = ensemble_figures(ensemble)
    if entry is None:
        return ["accuracy     not measured for these files (scripts/measure_ensemble.py measures an ensemble on both label sets)"]
    figures = {split: {key: (entry[split][key]["accuracy"], entry[split][key]["balanced_accuracy"]) for key in ACCURACY_TITLES}
               for split in ("PublicTest", "PrivateTest")}
    return label_set_table(figures, entry.get("ckplus48")) + [f"{'':13}measured by {entry.get('measured_by', '?')}"]


def label_set_table(figures: dict, ckplus: dict | None) -> list[str]:
    """Both label sets side by side, accuracy and balanced accuracy, and the mean of the two balanced accuracies;
    then CK+48 (posed faces from another lab, evaluation only)."""
    titles = "".join(f"{LABEL_SET_COLUMNS[key]:20}" for key in ACCURACY_TITLES)
    lines = [f"{'label sets':13}{'':12}{titles}mean of the",
             f"{'':13}{'split':12}" + f"{'acc':>7} {'balanced':>9}    " * len(ACCURACY_TITLES) + "two balanced"]
    for split, pairs in figures.items():
        cells = "".join(f"{acc * 100:6.2f}% {bal * 100:8.2f}%    " for acc, bal in pairs.values())
        mean = sum(bal for _, bal in pairs.values()) / len(pairs)
        lines.append(f"{'':13}{split:12}{cells}{mean * 100:6.2f}%")
    if isinstance(ckplus, dict) and "accuracy" in ckplus:
        lines.append(f"{'CK+48':13}{ckplus['accuracy'] * 100:.2f}% accuracy, {ckplus.get('balanced_accuracy', 0) * 100:.2f}% balanced "
                     f"({ckplus.get('images', '?')} posed faces from another lab, `edge eval --crops`; evaluation only)")
    return lines


@bench_app.command("model")
def bench_model(
    model: str | None = typer.Option(None, help=MODEL_HELP + "; several, comma-separated: their ensemble, timed as one"),
    compare: list[Path] = typer.Option([], help="other .tflite models to run side by side (e.g. the float32 export)"),
    threads: str = typer.Option("1", help="comma-separated thread counts, e.g. 1,2,4"),
    count: int = typer.Option(1000, min=1, help="timed runs per setting"),
    warmup: int = typer.Option(50, min=0),
    batch: int = typer.Option(1, min=1, help="faces per invoke"),
    out_dir: Path = typer.Option(Path("bench"), help="where the JSON and CSV go"),
) -> None:
    """Per-invoke latency: init, first inference, warm-up, then count/min/max/avg/std/p50/p90/p99."""
    from edge.config import resolve_models
    from edge.measure.bench import bench_models, print_table, save_results

    try:
        thread_counts = [int(t) for t in threads.split(",")]
    except ValueError:
        fail(f"--threads must be comma-separated integers, got {threads!r}")
    try:
        with bench_progress() as progress:
            rows = bench_models([resolve_models(model), *compare], thread_counts, count, warmup, batch, progress)
    except (ValueError, ImportError) as error:
        fail(str(error))
    print_table(rows, sys.stdout)
    for path in save_results(rows, out_dir, "model"):
        typer.echo(f"wrote {path}")


@contextmanager
def bench_progress():
    """A progress bar on stderr, gone when done: (what, done, total) -> the bar names what runs now."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("starting", total=None)

        def show(what: str, done: int, total: int) -> None:
            bar.update(task, description=what, completed=done, total=total)

        yield show


@bench_app.command("startup")
def bench_startup(
    model: str | None = typer.Option(None, help=MODEL_HELP),
    out_dir: Path = typer.Option(Path("bench"), help="where the JSON and CSV go"),
) -> None:
    """Import time of the runtime and resident memory after import and after loading the model."""
    from edge.config import resolve_model
    from edge.measure.bench import bench_startup as measure
    from edge.measure.bench import save_results

    try:
        row = measure(resolve_model(model))
    except (RuntimeError, ValueError) as error:
        fail(str(error))
    typer.echo(json.dumps(row, indent=2))
    for path in save_results([row], out_dir, "startup"):
        typer.echo(f"wrote {path}")


@bench_app.command("pipeline")
def bench_pipeline(
    source: str = typer.Option("sample,hard", help="comma-separated clips: sample, hard (the bundled ones) or video paths", rich_help_panel="Clips and runs"),
    truth: Path | None = typer.Option(None, help="ground-truth boxes JSON for a video path (bundled clips bring theirs)", rich_help_panel="Clips and runs"),
    grid: str = typer.Option("detectors", help="built-in grid: detectors (Haar full-res, Haar default, BlazeFace, YuNet) or haar-levers", rich_help_panel="Compare settings"),
    detector: str | None = typer.Option(None, help="comma-separated detectors (haar, blazeface, yunet) to compare", rich_help_panel="Compare settings"),
    detect_width: str | None = typer.Option(None, help="comma-separated detection widths (0 = full) to compare", rich_help_panel="Compare settings"),
    scale_factor: str | None = typer.Option(None, help="comma-separated Haar scale factors to compare", rich_help_panel="Compare settings"),
    detect_every: str | None = typer.Option(None, help="comma-separated full-detection intervals to compare", rich_help_panel="Compare settings"),
    motion_threshold: str | None = typer.Option(None, help="comma-separated motion thresholds (0 = no motion gate) to compare", rich_help_panel="Compare settings"),
    still_detect_every: str | None = typer.Option(None, help="comma-separated full-detection intervals without motion to compare", rich_help_panel="Compare settings"),
    min_neighbors: str | None = typer.Option(None, help="comma-separated Haar min neighbours to compare", rich_help_panel="Compare settings"),
    min_face: str | None = typer.Option(None, help="comma-separated smallest face sides to compare", rich_help_panel="Compare settings"),
    blazeface_tiles: str | None = typer.Option(None, help="comma-separated BlazeFace tile grids to compare", rich_help_panel="Compare settings"),
    blazeface_score: str | None = typer.Option(None, help="comma-separated BlazeFace score thresholds to compare", rich_help_panel="Compare settings"),
    yunet_score: str | None = typer.Option(None, help="comma-separated YuNet score thresholds to compare", rich_help_panel="Compare settings"),
    classify_every: str | None = typer.Option(None, help="comma-separated per-track classification intervals to compare (1 = every frame)", rich_help_panel="Compare settings"),
    confirm_every: str | None = typer.Option(None, help="comma-separated detector intervals for tracked faces to compare (1 = the detector every frame)", rich_help_panel="Compare settings"),
    peer: Path | None = typer.Option(None, help="python of the fer peer's venv (build/peer-venv/bin/python): run it on each clip too, report ratios", rich_help_panel="Against the fer package"),
    max_frames: int = typer.Option(0, min=0, help="frames per run (0 = whole clip)", rich_help_panel="Clips and runs"),
    model: str | None = typer.Option(None, help=MODEL_HELP, rich_help_panel="Clips and runs"),
    repeat: int = typer.Option(1, min=1, help="runs per setting, and of the peer (the fastest counts)", rich_help_panel="Clips and runs"),
    one_core: bool = typer.Option(True, "--one-core/--all-cores", metavar=" ", help="pin the benchmark to one CPU (as the peer is)", rich_help_panel="Clips and runs"),
    out_dir: Path = typer.Option(Path("bench"), help="where the JSON and CSV go", rich_help_panel="Clips and runs"),
) -> None:
    """End-to-end FPS, per-stage ms and detection recall/false detections, settings side by side on each clip.
    Without a list option, compares a built-in grid (--grid)."""
    from edge.measure.bench import (
        GRIDS,
        add_peer_ratio,
        bench_peer,
        bench_pipelines,
        pin_one_core,
        print_pipeline_table,
        save_results,
    )

    given = dict(detector=detector, detect_width=detect_width, scale_factor=scale_factor, detect_every=detect_every,
                 motion_threshold=motion_threshold, still_detect_every=still_detect_every, min_neighbors=min_neighbors,
                 min_face=min_face, blazeface_tiles=blazeface_tiles, blazeface_score=blazeface_score, yunet_score=yunet_score,
                 classify_every=classify_every, confirm_every=confirm_every)
    chosen = parse_lists({name: (text, type(RunConfig.__dataclass_fields__[name].default)) for name, text in given.items()})  # typed as each setting
    if not chosen and grid not in GRIDS:
        fail(f"--grid must be one of {', '.join(GRIDS)}, got {grid!r}")
    if one_core:
        pin_one_core()
    rows, peers = [], {}
    try:
        for clip in source.split(","):
            with bench_progress() as progress:
                rows += bench_pipelines(clip, truth, custom_grid_of(chosen) if chosen else GRIDS[grid], model or "", repeat, max_frames, progress)
            if peer is not None:
                peers[clip] = bench_peer(peer, clip, max_frames, repeat)
    except (ValueError, RuntimeError, ImportError) as error:
        fail(str(error))
    rows = add_peer_ratio(rows, peers) + list(peers.values())
    print_pipeline_table(rows, sys.stdout)
    for path in save_results(rows, out_dir, "pipeline"):
        typer.echo(f"wrote {path}")


def parse_lists(lists: dict[str, tuple[str | None, type]]) -> dict[str, list]:
    """Comma-separated option values, typed; fail() names the option that does not parse."""
    chosen = {}
    for name, (text, kind) in lists.items():
        if text:
            try:
                chosen[name] = [kind(value) for value in text.split(",")]
            except ValueError:
                fail(f"--{name.replace('_', '-')} must be a comma-separated list, got {text!r}")
    return chosen


def custom_grid_of(chosen: dict[str, list]) -> dict[str, dict]:
    from edge.measure.bench import custom_grid

    return custom_grid(chosen)


# What `forward` needs of the runtime's settings: the log it sends and where to.
FORWARD = ("log", "device_id", "mqtt", "mqtt_prefix", "mqtt_ca_file", "mqtt_credentials_file", "mqtt_discovery", "mqtt_discovery_prefix")


@app.command()
@cli_options(RunConfig, only=FORWARD)
def forward(
    config: Path | None = typer.Option(None, "--config", help="TOML config file: its log and mqtt settings; flags override it"),
    settings: dict | None = None,
) -> None:
    """Send an event log to an MQTT broker and keep following it (what `run --mqtt` does in a thread);
    for a runtime started without --mqtt, or to drain a backlog. Stops on Ctrl-C, SIGTERM or SIGHUP."""
    from edge.fleet.forwarder import forwarder_from_config, package_version
    from edge.signals import install_stop_handlers

    try:
        chosen = build_config(config, settings)
        if not chosen.mqtt:
            fail("give --mqtt URL (or mqtt in the config file)")
        forwarder = forwarder_from_config(chosen, package_version())
        forwarder.open()
    except (ValueError, OSError, ImportError) as error:
        fail(str(error))
    restore = install_stop_handlers(forwarder.stop_event)
    try:
        forwarder.run()
    finally:
        restore()


@app.command()
def watch(
    mqtt: str = typer.Option(..., help="broker: mqtt://host[:port] or mqtts://host[:port]"),
    mqtt_prefix: str = typer.Option("fer-edge", help="topic prefix the devices publish under"),
    mqtt_ca_file: str = typer.Option("", help="CA certificate for mqtts://"),
    mqtt_credentials_file: str = typer.Option("", help="file of FER_MQTT_USERNAME=/FER_MQTT_PASSWORD= lines (else those env vars)"),
    table_every: float = typer.Option(10.0, min=0.1, help="seconds between device tables"),
    duration: float = typer.Option(0.0, min=0.0, help="stop after N seconds; 0 = until Ctrl-C"),
    raw: bool = typer.Option(False, "--raw", help="print each message as topic and payload, no table"),
) -> None:
    """Print the events of every device as they arrive, and a one-line-per-device table."""
    from edge.addresses import check_topic_prefix
    from edge.fleet.broker import broker_settings
    from edge.fleet.watch import watch as run_watch

    try:
        check_topic_prefix(mqtt_prefix, "--mqtt-prefix")
        settings = broker_settings(mqtt, mqtt_ca_file, mqtt_credentials_file)
        run_watch(settings, mqtt_prefix, sys.stdout, duration=duration, table_every=table_every, raw=raw)
    except (ValueError, ImportError) as error:
        fail(str(error))
    except KeyboardInterrupt:
        pass
