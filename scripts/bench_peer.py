"""The peer, measured like our pipeline: the `fer` PyPI package (justinshenk/fer, `FER().detect_emotions`,
its defaults: OpenCV Haar 1.1 / 5 / 50 px at full resolution + its quantized TFLite emotion model) on a
clip, on one CPU core and one thread; prints one JSON row (FPS, ms per frame, recall, false detections).

It runs in its own virtual environment, which has TensorFlow (fer imports it); the project's runtime never
does. `make build/peer-venv/.fer` makes that venv:

    python3 -m venv build/peer-venv
    build/peer-venv/bin/pip install --no-deps fer==25.10.3
    build/peer-venv/bin/pip install "tensorflow-cpu==2.21.*" "opencv-python-headless>=4.6,<5" pillow requests "setuptools<81"
    build/peer-venv/bin/python scripts/bench_peer.py --clip edge/assets/hard.mp4 --truth edge/assets/hard_truth.json

`python -m edge bench pipeline --peer build/peer-venv/bin/python` runs it on each clip and reports our
settings as multiples of its FPS. Boxes are scored exactly as ours (edge.measure.bench, imported from this checkout).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_thread() -> None:
    """One core for the process and one thread for OpenCV, TensorFlow and the TFLite interpreter fer builds."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    import cv2
    import tensorflow as tf

    cv2.setNumThreads(1)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.lite.Interpreter = functools.partial(tf.lite.Interpreter, num_threads=1)  # fer builds it without num_threads


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", type=Path, required=True)
    parser.add_argument("--truth", type=Path, help="ground-truth JSON (boxes, optional partial regions)")
    parser.add_argument("--max-frames", type=int, default=0, help="0 = the whole clip")
    parser.add_argument("--label", default="", help="clip name for the row")
    args = parser.parse_args()
    one_thread()
    import cv2
    from fer import __version__ as fer_version
    from fer.fer import FER

    sys.path.insert(0, str(ROOT))
    from edge.measure.bench import RECALL_IOU, false_detections, load_ignored, load_truth
    from edge.vision.geometry import Box, match_boxes

    truth = load_truth(args.truth) if args.truth else None
    ignored = load_ignored(args.truth) if args.truth else {}
    detector = FER()
    capture = cv2.VideoCapture(str(args.clip))
    if not capture.isOpened():
        print(f"error: cannot open {args.clip}", file=sys.stderr)
        return 2
    ok, first = capture.read()
    if ok:
        detector.detect_emotions(first)  # warm-up: the first invoke builds the interpreter's plan
    capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
    frames = found = faces = expected = false = 0
    capture_s = detect_s = 0.0
    cpu_first = cpu_last = 0.0
    started = time.perf_counter()
    while not args.max_frames or frames < args.max_frames:
        t0 = time.perf_counter()
        ok, image = capture.read()
        t1 = time.perf_counter()
        if not ok:
            break
        boxes = [Box(*(int(v) for v in face["box"])) for face in detector.detect_emotions(image)]
        t2 = time.perf_counter()
        capture_s, detect_s = capture_s + t1 - t0, detect_s + t2 - t1
        cpu_last = time.process_time()  # CPU time, first frame to last: as edge.measure.bench.cpu_fps counts ours
        cpu_first = cpu_first or cpu_last
        faces += len(boxes)
        if truth is not None:
            want = truth.get(frames, [])
            expected += len(want)
            found += len(match_boxes(boxes, want, RECALL_IOU))
            false += false_detections(boxes, want, ignored.get(frames, []))
        frames += 1
    seconds = time.perf_counter() - started
    capture.release()
    row = {
        "clip": args.label or args.clip.stem, "setting": f"peer: fer {fer_version} FER().detect_emotions (defaults), 1 core",
        "frames": frames, "seconds": round(seconds, 3), "fps": round(frames / seconds, 2) if seconds else 0.0,
        "cpu_fps": round((frames - 1) / (cpu_last - cpu_first), 2) if frames > 1 and cpu_last > cpu_first else None,
        "stage_ms": {"capture": round(1000 * capture_s / max(frames, 1), 3), "detect+classify": round(1000 * detect_s / max(frames, 1), 3)},
        "faces": faces,
    }
    if truth is not None:
        row.update(truth_faces=expected, found=found, recall=round(found / expected, 4) if expected else None,
                   false_detections=false, false_per_100_frames=round(100 * false / frames, 2) if frames else None)
    print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
