"""The kit's default pipeline side by side with the plain way: full-resolution Haar at its defaults on
every frame plus Keras `model.predict` on the float model. Same clip, same ground truth, one run.

Needs TensorFlow (the training extra); the edge runtime itself never does.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2
import keras
import numpy as np
import typer

from edge import contract
from edge.config import SAMPLE_CLIP, SAMPLE_TRUTH, RunConfig
from edge.measure.bench import RECALL_IOU, bench_pipeline, load_truth, save_results
from edge.vision.detect import FaceDetector
from edge.vision.geometry import match_boxes


def keras_baseline(model_path: Path, clip: Path, truth: dict) -> dict:
    model = keras.models.load_model(model_path)
    detector = FaceDetector()  # OpenCV's usual defaults: 1.1, 5, 30 px, full resolution
    capture = cv2.VideoCapture(str(clip))
    frames = found = predicted = expected = 0
    stage = {"capture": 0.0, "detect": 0.0, "preprocess": 0.0, "infer": 0.0}
    started = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        ok, image = capture.read()
        if not ok:
            break
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        t1 = time.perf_counter()
        boxes = detector.detect(gray)
        t2 = time.perf_counter()
        if boxes:
            faces = np.stack([contract.crop_face(gray, tuple(b.as_list())) for b in boxes])
            inputs = contract.scale_pixels(faces)
            t3 = time.perf_counter()
            model.predict(inputs, verbose=0)
        else:
            t3 = time.perf_counter()
        t4 = time.perf_counter()
        for name, (a, b) in zip(stage, ((t0, t1), (t1, t2), (t2, t3), (t3, t4)), strict=True):
            stage[name] += (b - a) * 1000
        predicted += len(boxes)
        expected_boxes = truth.get(frames, [])
        expected += len(expected_boxes)
        found += len(match_boxes(boxes, expected_boxes, RECALL_IOU))
        frames += 1
    seconds = time.perf_counter() - started
    return {
        "setting": "baseline: full-res Haar 1.1/5/30 every frame + Keras model.predict (float)",
        "frames": frames, "seconds": round(seconds, 3), "fps": round(frames / seconds, 2),
        "stage_ms": {name: round(ms / frames, 3) for name, ms in stage.items()},
        "faces": predicted, "truth_faces": expected, "found": found, "recall": round(found / expected, 4),
        "false_detections": predicted - found,
    }


def main(
    keras_model: Path = typer.Option(Path("models/mini_xception.keras")),
    clip: Path = typer.Option(SAMPLE_CLIP),
    truth: Path = typer.Option(SAMPLE_TRUTH),
    out_dir: Path = typer.Option(Path("bench")),
) -> None:
    if not keras_model.is_file():
        typer.echo(f"error: {keras_model}: Keras model not found (make train)", err=True)
        raise typer.Exit(2)
    boxes = load_truth(truth)
    ours = bench_pipeline(RunConfig(source=str(clip)), boxes) | {"setting": "fer-edge default: int8 TFLite, 1 thread"}
    baseline = keras_baseline(keras_model, clip, boxes)
    for row in (ours, baseline):
        typer.echo(f"{row['setting']:78} {row['fps']:7.1f} FPS  recall {row['recall'] * 100:5.1f}%  false {row['false_detections']}")
    typer.echo(f"speed-up: {ours['fps'] / baseline['fps']:.1f}x")
    for path in save_results([ours, baseline], out_dir, "baseline"):
        typer.echo(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(typer.run(main))
