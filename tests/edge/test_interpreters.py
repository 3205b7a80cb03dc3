"""The shipped model gives the same int8 outputs under ai-edge-litert and tflite-runtime 2.14 (the last
tflite-runtime release, still on many Pis; it needs numpy < 2, so it gets a virtual environment of its own)."""

import json
import os
import subprocess
import sys
import venv

import numpy as np
import pytest
from conftest import ROOT

from edge import contract
from edge.config import BUNDLED_MODEL
from edge.model import EmotionModel, dequantize

TFLITE_RUNTIME_VENV = ROOT / ".cache" / "venv-tflite-runtime"


@pytest.fixture(scope="module")
def tflite_runtime_python():
    python = TFLITE_RUNTIME_VENV / "bin" / "python"
    if not (TFLITE_RUNTIME_VENV / ".installed").exists():
        venv.create(TFLITE_RUNTIME_VENV, with_pip=True, clear=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "tflite-runtime==2.14.0", "numpy<2"],
            check=True, capture_output=True, text=True, timeout=600,
        )
        (TFLITE_RUNTIME_VENV / ".installed").touch()
    return python


SCRIPT = """
import json, sys, numpy as np
from edge import contract
from edge.model import EmotionModel, dequantize
model = EmotionModel(sys.argv[1])
faces = np.load(sys.argv[2])
raw = np.concatenate([model.invoke(model.prepare(faces[i:i + 256])) for i in range(0, len(faces), 256)])
np.save(sys.argv[3], raw)
print(json.dumps({"interpreter": model.interpreter_name, "numpy": np.__version__}))
"""


def raw_outputs(python, faces_file, out_file):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [str(python), "-c", SCRIPT, str(BUNDLED_MODEL), str(faces_file), str(out_file)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1]), np.load(out_file)


def test_shipped_model_agrees_under_tflite_runtime_and_ai_edge_litert(tflite_runtime_python, real_data, tmp_path):
    """Bit-identical outputs are not to be had: the two interpreters' int8 kernels round differently in
    a few places. What must hold: every int8 output within one quantization step, the same top-1 class
    for (nearly) every face, and the same accuracy."""
    from train.data import load_fer2013

    faces, labels = load_fer2013(real_data, cache_dir=tmp_path / "cache").split("PrivateTest")
    np.save(tmp_path / "faces.npy", faces)
    litert_info, litert = raw_outputs(sys.executable, tmp_path / "faces.npy", tmp_path / "litert.npy")
    runtime_info, runtime = raw_outputs(tflite_runtime_python, tmp_path / "faces.npy", tmp_path / "tflite_runtime.npy")
    assert litert_info["interpreter"].startswith("ai-edge-litert")
    assert runtime_info["interpreter"].startswith("tflite-runtime 2.14") and runtime_info["numpy"].startswith("1.")
    assert litert.dtype == runtime.dtype == np.int8 and litert.shape == runtime.shape
    assert np.abs(litert.astype(np.int16) - runtime).max() <= 1
    model = EmotionModel(BUNDLED_MODEL)

    def predictions(raw):
        scores = dequantize(raw, model.output_quantization)
        return contract.average_mirrors(scores).argmax(axis=1) if model.flip_tta else scores.argmax(axis=1)

    a, b = predictions(litert), predictions(runtime)
    assert np.mean(a == b) >= 0.99
    assert abs(np.mean(a == labels) - np.mean(b == labels)) <= 0.002
