"""Models whose outputs are not usable scores (issue 28): NaN is refused at load by a probe inference, a last
layer without softmax loads with a note said once. Small float models built with the TFLite converter."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge.config import bundled_model
from edge.events.log import EventLog
from edge.vision.model import EmotionModel, ModelError, file_sha256, sidecar_path

pytestmark = pytest.mark.tf


def tiny_model(tmp_path, name: str, last: str):
    """A float model (48x48x1 -> 7) whose last layer is softmax, linear (huge values) or NaN, with the shipped
    sidecar edited to match and its digest removed (so it loads as unverified, as in the report)."""
    tf = pytest.importorskip("tensorflow")
    inputs = tf.keras.Input((48, 48, 1))
    x = tf.keras.layers.Flatten()(inputs)
    x = tf.keras.layers.Dense(7, kernel_initializer=tf.keras.initializers.Constant(1e28), bias_initializer="ones")(x)
    if last == "softmax":
        x = tf.keras.layers.Softmax()(x * 0.0)
    elif last == "nan":
        x = tf.keras.layers.Lambda(lambda v: tf.math.sqrt(-tf.math.abs(v) - 1.0))(x)
    model = tf.keras.Model(inputs, x)
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    sidecar = json.loads(sidecar_path(bundled_model("fer2013")).read_text())
    sidecar.pop("digest", None)
    sidecar.update(sha256=file_sha256(path), input_dtype="float32")
    sidecar_path(path).write_text(json.dumps(sidecar))
    return path


def test_a_model_that_outputs_nan_is_refused_at_load(tmp_path):
    with pytest.raises(ModelError, match="not numbers"):
        EmotionModel(tiny_model(tmp_path, "nan", "nan"))


def test_a_linear_last_layer_loads_with_a_note_said_once(tmp_path, capsys):
    model = EmotionModel(tiny_model(tmp_path, "linear", "linear"))
    assert "not probabilities" in model.output_note
    assert capsys.readouterr().err.count("not probabilities") == 1
    ok = EmotionModel(tiny_model(tmp_path, "softmax", "softmax"))
    assert ok.output_note == "" and np.allclose(ok.classify(np.zeros((2, 48, 48), np.uint8)).sum(axis=1), 1, atol=0.01)


def test_the_start_record_carries_the_note(tmp_path):
    from edge.events.records import start_record

    model = EmotionModel(tiny_model(tmp_path, "linear", "linear"))
    path = tmp_path / "e.jsonl"
    with EventLog(path) as log:
        log.write(start_record("sample", model, {}))
    assert "not probabilities" in json.loads(path.read_text())["model_note"]
