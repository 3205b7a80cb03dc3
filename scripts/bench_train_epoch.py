"""Seconds per training epoch of each `--arch` on this machine, measured on a short run and extrapolated.

A full FER2013 epoch is 448 training steps of 64 faces (28,709 Training faces, the remainder dropped) plus
one pass over PublicTest (3,589 faces). This times `--batches` steps of the real training step (the same
augmentation pipeline, model, loss and optimizer as `python -m train fit`) after a warm-up epoch that
traces the step, and a few PublicTest batches, then scales both to a full epoch. Random faces: the cost of
a step does not depend on the pixels.

    python scripts/bench_train_epoch.py --arch mini_xception,vgg13,resnet18 --batches 20
"""

from __future__ import annotations

import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
import typer

from train.config import TrainConfig
from train.fit import build_model
from train.input import make_eval_dataset, make_train_dataset

TRAINING_FACES, PUBLIC_TEST_FACES = 28_709, 3_589


def time_arch(arch: str, batches: int, batch_size: int, mixed_precision: bool) -> dict:
    config = TrainConfig(data="", arch=arch, batch_size=batch_size, mixed_precision=mixed_precision)
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (batches * batch_size, 48, 48), dtype=np.uint8)
    targets = np.eye(7, dtype=np.float32)[rng.integers(0, 7, len(faces))]
    previous = keras.mixed_precision.global_policy()
    if mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build_model(config)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    train = make_train_dataset(faces, targets, config)
    model.fit(train, epochs=1, verbose=0)  # traces and compiles the step
    started = time.perf_counter()
    model.fit(train, epochs=1, verbose=0)
    step_seconds = (time.perf_counter() - started) / batches
    evaluation = make_eval_dataset(faces[: 4 * batch_size], np.zeros(4 * batch_size, np.int64), batch_size)
    model.evaluate(evaluation, verbose=0)
    started = time.perf_counter()
    model.evaluate(evaluation, verbose=0)
    eval_seconds = (time.perf_counter() - started) / 4
    steps, eval_steps = TRAINING_FACES // batch_size, -(-PUBLIC_TEST_FACES // batch_size)
    return {
        "arch": arch,
        "parameters": int(model.count_params()),
        "precision": "mixed_float16" if mixed_precision else "float32",
        "batch_size": batch_size,
        "measured_steps": batches,
        "seconds_per_step": round(step_seconds, 4),
        "seconds_per_eval_batch": round(eval_seconds, 4),
        "seconds_per_epoch_extrapolated": round(steps * step_seconds + eval_steps * eval_seconds, 1),
    }


def main(
    arch: str = typer.Option("mini_xception,vgg13,resnet18", help="comma-separated --arch values"),
    batches: int = typer.Option(20, help="training steps timed per architecture (after a warm-up epoch)"),
    batch_size: int = typer.Option(64),
    mixed_precision: bool = typer.Option(False),
    out_dir: Path = typer.Option(Path("docs/bench")),
) -> None:
    results = [time_arch(name.strip(), batches, batch_size, mixed_precision) for name in arch.split(",") if name.strip()]
    record = {
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),  # the machine was shared: figures are upper bounds for it
        "devices": [device.name for device in tf.config.list_logical_devices()],
        "tensorflow": tf.__version__,
        "measured_at": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
        "results": results,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{platform.machine()}_train_epoch_{record['measured_at']}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    for row in results:
        typer.echo(f"{row['arch']:>14} {row['parameters']:>11,} params  {row['seconds_per_step']:.3f} s/step  "
                   f"~{row['seconds_per_epoch_extrapolated']:.0f} s/epoch ({row['precision']})")
    typer.echo(f"written {path}")


if __name__ == "__main__":
    typer.run(main)
