"""Benchmarks in the manner of TFLite's benchmark_model: warm up, time with perf_counter, then statistics
computed apart from printing. Model latency per invoke; pipeline FPS, stage times and detection quality."""

from __future__ import annotations

import csv
import json
import platform
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import numpy as np

from edge import paths
from edge.config import SAMPLE_CLIP, SAMPLE_TRUTH, RunConfig
from edge.host import board_name, peak_rss_mb, read_throttled
from edge.pipeline import run
from edge.vision.faces import FrameResult
from edge.vision.geometry import Box, match_boxes
from edge.vision.model import EmotionModel

HARD_CLIP, HARD_TRUTH = paths.ASSETS / "hard.mp4", paths.ASSETS / "hard_truth.json"

# Detection settings compared by `bench pipeline --grid haar-levers`: each Haar lever alone, then the default combination.
NO_GATE = dict(motion_threshold=0)
HAAR_LEVERS: dict[str, dict] = {
    "full-res Haar 1.1/5/30, every frame": dict(detect_width=0, scale_factor=1.1, detect_every=1, **NO_GATE),
    "half-res Haar 1.2, every frame": dict(detect_width=320, scale_factor=1.2, detect_every=1, **NO_GATE),
    "half-res Haar 1.1, every frame": dict(detect_width=320, scale_factor=1.1, detect_every=1, **NO_GATE),
    "full-res Haar 1.1, whole frame every 5 + windows": dict(detect_width=0, scale_factor=1.1, detect_every=5, **NO_GATE),
    "half-res Haar 1.1, whole frame every 5 + windows": dict(detect_width=320, scale_factor=1.1, detect_every=5, **NO_GATE),
    "half-res Haar 1.1, windows + motion gate, whole every 30": dict(detect_width=320, still_detect_every=30),
    "half-res Haar 1.1, windows + motion gate, whole every 60 (default)": dict(detect_width=320),
}
# The default grid: the detectors side by side (issue 12), each on every clip.
DETECTOR_GRID: dict[str, dict] = {
    "Haar full-res 1.1/5/30, every frame": dict(detector="haar", detect_width=0, scale_factor=1.1, detect_every=1, **NO_GATE),
    "Haar half-res, whole every 5 + windows, no motion gate": dict(detector="haar", **NO_GATE),
    "Haar half-res, windows + motion gate (default)": dict(detector="haar"),
    "BlazeFace whole frame, windows + motion gate": dict(detector="blazeface", blazeface_tiles=1),
    "BlazeFace + 2x2 tiles, every 10 + windows, no motion gate": dict(detector="blazeface", blazeface_tiles=2, detect_every=10, **NO_GATE),
    "BlazeFace + 2x2 tiles, every 10 + windows + motion gate": dict(detector="blazeface", blazeface_tiles=2, detect_every=10),
    "YuNet half-res, windows + motion gate": dict(detector="yunet"),
    "YuNet full-res, windows + motion gate": dict(detector="yunet", detect_width=0),
    "YuNet full-res score 0.6, windows + motion gate": dict(detector="yunet", detect_width=0, yunet_score=0.6),
    "YuNet full-res score 0.7, whole every 30, windows + motion gate (hard scenes)": dict(detector="yunet", detect_width=0, yunet_score=0.7,
                                                                                     still_detect_every=30),
    "Haar default, classify every face every frame": dict(detector="haar", classify_every=1),
    "Haar default, detector around every face every frame": dict(detector="haar", confirm_every=1),
}
GRIDS = {"detectors": DETECTOR_GRID, "haar-levers": HAAR_LEVERS}
CLIPS = {"sample": (SAMPLE_CLIP, SAMPLE_TRUTH), "hard": (HARD_CLIP, HARD_TRUTH)}


def pin_one_core() -> int:
    """Keep this process (and every thread it starts) on one CPU, so 'one thread' holds for OpenCV too; returns it."""
    import os

    if not hasattr(os, "sched_setaffinity"):
        return -1
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


RECALL_IOU = 0.5  # a found box counts when it overlaps a true one this much


def latency_stats(microseconds: np.ndarray) -> dict:
    return {
        "count": int(len(microseconds)),
        "min_us": round(float(microseconds.min()), 1),
        "max_us": round(float(microseconds.max()), 1),
        "avg_us": round(float(microseconds.mean()), 1),
        "std_us": round(float(microseconds.std()), 1),
        "p50_us": round(float(np.percentile(microseconds, 50)), 1),
        "p90_us": round(float(np.percentile(microseconds, 90)), 1),
        "p99_us": round(float(np.percentile(microseconds, 99)), 1),
    }


def bench_model(path: Path | list[Path], threads: int, xnnpack: bool, flip_tta: bool, count: int, warmup: int, faces: int) -> dict:
    """One model's invoke latency, or, given several paths, the ensemble's (`--model a,b`): each timed run invokes
    every model on its own views of the faces, one after the other, as ModelEnsemble.classify does."""
    paths = [Path(p) for p in path] if isinstance(path, list | tuple) else [Path(path)]
    started = time.perf_counter()
    models = [EmotionModel(p, num_threads=threads, use_xnnpack=xnnpack, flip_tta=flip_tta) for p in paths]
    init_ms = (time.perf_counter() - started) * 1000
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 256, size=(faces, 48, 48), dtype=np.uint8)
    tensors = [model.prepare(batch) for model in models]

    def invoke_all() -> None:
        for model, tensor in zip(models, tensors, strict=True):
            model.invoke(tensor)

    started = time.perf_counter()
    invoke_all()
    first_us = (time.perf_counter() - started) * 1e6
    for _ in range(warmup):
        invoke_all()
    timings = np.empty(count)
    for i in range(count):
        started = time.perf_counter()
        invoke_all()
        timings[i] = (time.perf_counter() - started) * 1e6
    tensor_batch = sum(len(tensor) for tensor in tensors)
    return {
        "model": "+".join(p.name for p in paths), "quantization": "+".join(sorted({m.sidecar.get("quantization", m.input_dtype.name) for m in models})),
        "size_bytes": sum(p.stat().st_size for p in paths), "threads": threads, "xnnpack": xnnpack, "flip_tta": flip_tta,
        "faces": faces, "tensor_batch": tensor_batch, "inferences_per_face": tensor_batch // faces, "init_ms": round(init_ms, 2),
        "first_us": round(first_us, 1), "warmup": warmup, **latency_stats(timings), "peak_rss_mb": peak_rss_mb(),
        "interpreter": models[0].interpreter_name,
    }


def bench_models(paths: list[Path | list[Path]], thread_counts: list[int], count: int, warmup: int, faces: int,
                 progress: Callable[[str, int, int], None] = lambda what, done, total: None) -> list[dict]:
    """Every model (a list of paths: an ensemble, timed as one) at every setting; `progress(what, done, total)`
    hears of each before it runs."""
    settings = [(t, x, f, p) for t in thread_counts for x in (True, False) for f in (False, True) for p in paths]
    rows = []
    for done, (threads, xnnpack, flip_tta, path) in enumerate(settings):  # models side by side within each setting
        name = "+".join(Path(p).name for p in path) if isinstance(path, list | tuple) else Path(path).name
        progress(f"{name}, {threads} thread(s){', XNNPACK' if xnnpack else ''}{', flip TTA' if flip_tta else ''}", done, len(settings))
        rows.append(bench_model(path, threads, xnnpack, flip_tta, count, warmup, faces))
    return rows


def false_detections(predicted: list[Box], truth: list[Box], ignored: list[Box] = ()) -> int:
    """Predictions matching no truth box, except those centred in an ignored region (a face partly out of
    the frame or mostly covered: finding it is neither right nor wrong)."""
    hits = {i for i, _ in match_boxes(predicted, truth, RECALL_IOU)}

    def in_ignored(box: Box) -> bool:
        cx, cy = box.x + box.w / 2, box.y + box.h / 2
        return any(r.x <= cx <= r.x + r.w and r.y <= cy <= r.y + r.h for r in ignored)

    return sum(1 for i, box in enumerate(predicted) if i not in hits and not in_ignored(box))


def load_truth(path: Path) -> dict[int, list[Box]]:
    document = json.loads(Path(path).read_text())
    return {entry["frame"]: [Box(*map(int, b)) for b in entry["boxes"]] for entry in document["frames"]}


def load_ignored(path: Path) -> dict[int, list[Box]]:
    """The truth file's `partial` regions per frame (none in files without them)."""
    document = json.loads(Path(path).read_text())
    return {entry["frame"]: [Box(*map(int, b)) for b in entry.get("partial", [])] for entry in document["frames"]}


def bench_pipeline(config: RunConfig, truth: dict[int, list[Box]] | None, repeat: int = 1, ignored: dict[int, list[Box]] | None = None) -> dict:
    """One setting on one clip, `repeat` times; the fastest run counts. With per-track classification
    (classify_every > 1) the same setting also runs classifying every face on every frame, and the row says how
    often the two agree (`label_agreement`: the share of (frame, face) whose smoothed expression is the same,
    and `updates_every_frame`: that run's number of update events, beside this one's `updates`)."""
    rows = [bench_pipeline_once(config, truth, ignored or {}) for _ in range(repeat)]
    row = max(rows, key=lambda row: row["fps"])
    labels = row.pop("labels")
    if config.classify_every > 1:
        reference = bench_pipeline_once(replace(config, classify_every=1), None, {})
        row["label_agreement"] = label_agreement(labels, reference["labels"])
        row["updates_every_frame"] = reference["updates"]
    return row


def label_agreement(labels: dict, reference: dict) -> float | None:
    """Share of the reference's (frame, track) labels that `labels` gives too (same detection: same tracks)."""
    if not reference:
        return None
    return round(sum(labels.get(key) == label for key, label in reference.items()) / len(reference), 4)


def bench_pipeline_once(config: RunConfig, truth: dict[int, list[Box]] | None, ignored: dict[int, list[Box]]) -> dict:
    tally = {"found": 0, "predicted": 0, "truth": 0, "false": 0}
    cpu_marks: list[float] = []  # process CPU time at the first and at the latest frame
    labels: dict[tuple[int, int], int] = {}  # (frame, track) -> the track's smoothed top label then

    def observe(result: FrameResult) -> None:
        cpu_marks[min(len(cpu_marks), 1):] = [time.process_time()]
        labels.update(((result.frame.index, face.track), int(np.argmax(face.scores))) for face in result.faces)
        tally["predicted"] += len(result.boxes)
        if truth is not None:
            expected = truth.get(result.frame.index, [])
            tally["truth"] += len(expected)
            tally["found"] += len(match_boxes(result.boxes, expected, RECALL_IOU))
            tally["false"] += false_detections(result.boxes, expected, ignored.get(result.frame.index, []))

    with tempfile.TemporaryDirectory() as folder:
        summary = run(replace(config, log=str(Path(folder) / "events.jsonl"), stats_interval=3600.0), observer=observe)
    frames = summary["frames"]
    row = {
        "frames": frames, "seconds": summary["seconds"], "fps": summary["fps"], "cpu_fps": cpu_fps(frames, cpu_marks),
        "stage_ms": summary["stage_ms"], "faces": tally["predicted"], "full_detections": summary["full_detections"],
        "tracks": summary["new"], "updates": summary["update"], "classified": summary.get("classified"), "peak_rss_mb": summary["peak_rss_mb"],
        "rss_anon_mb": summary.get("rss_anon_mb"), "labels": labels,
    }
    if truth is not None:
        row.update(
            truth_faces=tally["truth"], found=tally["found"],
            recall=round(tally["found"] / tally["truth"], 4) if tally["truth"] else None,
            false_detections=tally["false"],
            false_per_100_frames=round(100 * tally["false"] / frames, 2) if frames else None,
        )
    return row


def cpu_fps(frames: int, marks: list[float]) -> float | None:
    """Frames per second of CPU time from the first frame to the last: on a shared machine this, unlike the
    wall clock, does not count time other processes took (with the run pinned to one core, one core's worth)."""
    if frames < 2 or len(marks) < 2 or marks[1] <= marks[0]:
        return None
    return round((frames - 1) / (marks[1] - marks[0]), 2)


def custom_grid(choices: dict[str, list]) -> dict[str, dict]:
    """Every combination of the given RunConfig values, each named by its values."""
    grid = [{}]
    for name, values in choices.items():
        grid = [dict(setting, **{name: value}) for setting in grid for value in values]
    return {", ".join(f"{name} {value}" for name, value in setting.items()): setting for setting in grid}


def bench_pipelines(source: str, truth_path: Path | None, grid: dict[str, dict], model: str, repeat: int, max_frames: int = 0,
                    progress: Callable[[str, int, int], None] = lambda what, done, total: None) -> list[dict]:
    """Every grid setting on one clip: `source` is a video path or a bundled clip's name (sample, hard)."""
    clip = source
    if source in CLIPS:
        clip = str(CLIPS[source][0])
        truth_path = truth_path or CLIPS[source][1]
    base = RunConfig(source=clip, model=model, num_threads=1, max_frames=max_frames)
    truth = load_truth(truth_path) if truth_path else None
    ignored = load_ignored(truth_path) if truth_path else None
    rows = []
    for done, (name, overrides) in enumerate(grid.items()):
        progress(f"{source}: {name}", done, len(grid))
        config = replace(base, **overrides)
        row = bench_pipeline(config, truth, repeat, ignored)
        rows.append({"clip": source, "setting": name, "detector": config.detector, "detect_width": config.detect_width,
                     "scale_factor": config.scale_factor, "min_neighbors": config.min_neighbors, "min_face": config.min_face,
                     "detect_every": config.detect_every, "motion_threshold": config.motion_threshold,
                     "still_detect_every": config.still_detect_every, "blazeface_score": config.blazeface_score,
                     "blazeface_tiles": config.blazeface_tiles, "yunet_score": config.yunet_score,
                     "classify_every": config.classify_every, "classify_change": config.classify_change,
                     "confirm_every": config.confirm_every, **row})
    return rows


def bench_peer(python: Path, clip: str, max_frames: int = 0, repeat: int = 1) -> dict:
    """The `fer` package on a bundled clip, run by scripts/bench_peer.py in its own interpreter (its venv has
    TensorFlow; this one needs none), `repeat` times: the fastest run counts, as for our settings."""
    import subprocess

    if not Path(python).is_file():
        raise ValueError(f"--peer {python}: no such interpreter (make build/peer-venv/.fer creates the fer venv)")
    script = Path(__file__).resolve().parents[2] / "scripts" / "bench_peer.py"
    if not script.is_file():
        raise ValueError(f"{script} not found: the peer benchmark runs from a source checkout, not an installed wheel")
    video, truth = CLIPS[clip] if clip in CLIPS else (Path(clip), None)
    command = [str(python), str(script), "--clip", str(video), "--max-frames", str(max_frames), "--label", clip]
    if truth is not None:
        command += ["--truth", str(truth)]
    runs = []
    for _ in range(repeat):
        result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
        if result.returncode != 0:
            raise RuntimeError(f"peer benchmark ({' '.join(command)}) failed: {result.stderr.strip()[-800:]}")
        runs.append(json.loads(result.stdout.strip().splitlines()[-1]))
    return max(runs, key=lambda row: row.get("cpu_fps") or 0.0)


def add_peer_ratio(rows: list[dict], peers: dict[str, dict]) -> list[dict]:
    """Each of our rows with `x_peer_fps` (wall-clock FPS over the peer's on the same clip) and `x_peer_cpu_fps`
    (the same from CPU time, the steadier of the two on a shared machine)."""
    for row in rows:
        peer = peers.get(row.get("clip")) or {}
        for key in ("fps", "cpu_fps"):
            if peer.get(key) and row.get(key):
                row[f"x_peer_{key}"] = round(row[key] / peer[key], 2)
    return rows


STARTUP_SCRIPT = """
import json, resource, sys, time
started = time.perf_counter()
from edge.pipeline import run
from edge.vision.model import EmotionModel
imported = time.perf_counter()
rss_import = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
model = EmotionModel(sys.argv[1])
loaded = time.perf_counter()
print(json.dumps({
    "import_ms": round((imported - started) * 1000, 1), "model_load_ms": round((loaded - imported) * 1000, 1),
    "rss_after_import_mb": round(rss_import, 1), "interpreter": model.interpreter_name,
    "tensorflow_imported": "tensorflow" in sys.modules,
    "rss_after_load_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
}))
"""


def bench_startup(model: Path, repeat: int = 3) -> dict:
    """Runtime import time and resident memory, each in a fresh interpreter (the fastest of `repeat`)."""
    import subprocess
    import sys

    runs = []
    for _ in range(repeat):
        result = subprocess.run([sys.executable, "-c", STARTUP_SCRIPT, str(model)], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"startup benchmark failed: {result.stderr.strip()[-500:]}")
        runs.append(json.loads(result.stdout.strip().splitlines()[-1]))
    return min(runs, key=lambda r: r["import_ms"])


def environment_warnings() -> list[str]:
    """On a Pi, figures are only meaningful with the performance governor and no throttling."""
    warnings = []
    governor = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    if governor.exists() and governor.read_text().strip() != "performance":
        warnings.append(f"CPU governor is {governor.read_text().strip()!r}, not 'performance': figures will vary")
    throttled = read_throttled()
    if throttled and any(throttled.get(key) for key in throttled if key != "raw"):
        warnings.append(f"the board reports throttling: {throttled}")
    return warnings


def save_results(rows: list[dict], out_dir: Path, kind: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    board = board_name()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    stem = f"{re.sub(r'[^A-Za-z0-9]+', '-', board).strip('-')}_{kind}_{stamp}"
    document = {"board": board, "python": platform.python_version(), "time": stamp, "warnings": environment_warnings(), "rows": rows}
    json_path = out_dir / f"{stem}.json"
    json_path.write_text(json.dumps(document, indent=2) + "\n")
    csv_path = out_dir / f"{stem}.csv"
    flat = [{k: json.dumps(v) if isinstance(v, dict) else v for k, v in row.items()} for row in rows]
    with csv_path.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(dict.fromkeys(k for row in flat for k in row)))
        writer.writeheader()
        writer.writerows(flat)
    return [json_path, csv_path]


def print_table(rows: list[dict], out: TextIO) -> None:
    for warning in environment_warnings():
        print(f"WARNING: {warning}", file=out)
    print(f"board: {board_name()}", file=out)
    header = f"{'model':32} {'thr':>3} {'xnn':>3} {'tta':>3} {'inf':>3} {'init ms':>8} {'first us':>9} {'count':>6} {'min':>7} {'avg':>7} {'std':>6} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>8}"
    print(header + "   (microseconds per invoke of every model; inf: inferences a face)", file=out)
    for r in rows:
        print(
            f"{r['model']:32} {r['threads']:>3} {'on' if r['xnnpack'] else 'off':>3} {'on' if r['flip_tta'] else 'off':>3} {r['inferences_per_face']:>3} "
            f"{r['init_ms']:>8.1f} {r['first_us']:>9.1f} {r['count']:>6} {r['min_us']:>7.1f} {r['avg_us']:>7.1f} "
            f"{r['std_us']:>6.1f} {r['p50_us']:>7.1f} {r['p90_us']:>7.1f} {r['p99_us']:>7.1f} {r['max_us']:>8.1f}",
            file=out,
        )
    print(f"peak resident memory: {max(r['peak_rss_mb'] for r in rows)} MB", file=out)


def print_pipeline_table(rows: list[dict], out: TextIO) -> None:
    for warning in environment_warnings():
        print(f"WARNING: {warning}", file=out)
    print(f"board: {board_name()}", file=out)
    stages = list(dict.fromkeys(s for r in rows for s in r["stage_ms"]))
    print(f"{'clip':7} {'setting':52} {'FPS':>6} {'CPU FPS':>7} {'x fer':>6} {'recall':>7} {'FP/100':>7} {'agree':>7} "
          + " ".join(f"{s:>10}" for s in stages) + "  (ms per frame)", file=out)
    for r in rows:
        recall = f"{r['recall'] * 100:.1f}%" if r.get("recall") is not None else "n/a"
        false = r.get("false_per_100_frames")
        ratio = f"{r['x_peer_cpu_fps']:.1f}" if r.get("x_peer_cpu_fps") else "-"
        cpu = f"{r['cpu_fps']:.1f}" if r.get("cpu_fps") else "-"
        agree = f"{r['label_agreement'] * 100:.1f}%" if r.get("label_agreement") is not None else "-"
        print(f"{r.get('clip', ''):7} {r['setting'][:52]:52} {r['fps']:>6.1f} {cpu:>7} {ratio:>6} {recall:>7} {false if false is not None else 'n/a'!s:>7} {agree:>7} "
              + " ".join(f"{r['stage_ms'].get(s, 0):>10.2f}" for s in stages), file=out)
    print("x fer: CPU-time FPS over the fer package's on the same clip", file=out)
    print("agree: faces (per frame) whose smoothed expression is the one classifying every face on every frame gives", file=out)
    for r in rows:
        if r.get("updates_every_frame") is not None:
            print(f"  {r.get('clip', '')} {r['setting'][:52]}: {r['updates']} update events, {r['updates_every_frame']} when classifying every frame", file=out)
    anonymous = [r["rss_anon_mb"] for r in rows if r.get("rss_anon_mb")]
    print(f"peak resident memory: {max(r['peak_rss_mb'] for r in rows if r.get('peak_rss_mb'))} MB; "
          f"allocated (anonymous) at the end of a run: {max(anonymous) if anonymous else 'n/a'} MB at most", file=out)
