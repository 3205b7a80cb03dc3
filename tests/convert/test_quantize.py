"""convert/quantize.py on its own: cross-layer equalization, the calibration faces, the float16 export."""

import numpy as np
import pytest
import tensorflow as tf

from convert.quantize import representative_faces, to_float_tflite, write_sidecar
from edge import contract
from edge.vision.model import EmotionModel
from train.model import make_mini_xception, predict_probabilities

# needs TensorFlow: make check leaves these to make test
pytestmark = pytest.mark.tf


def test_equalization_keeps_the_function_and_evens_the_ranges_between_the_separable_halves():
    from convert.quantize import equalize_separable

    tf.keras.utils.set_random_seed(3)
    keras_model = make_mini_xception()
    rng = np.random.default_rng(3)
    for layer in keras_model.layers:  # uneven channels, as training leaves them
        if isinstance(layer, tf.keras.layers.SeparableConv2D):
            depthwise, pointwise = layer.get_weights()
            layer.set_weights([depthwise * np.geomspace(0.01, 3.0, depthwise.shape[2])[None, None, :, None], pointwise])
    faces = rng.integers(0, 256, (40, 48, 48), np.uint8)
    inputs = contract.with_mirrors(contract.scale_pixels(faces))

    def channel_ranges(model, layer_name):
        layer = model.get_layer(layer_name)
        depthwise = layer.get_weights()[0]
        between = tf.nn.depthwise_conv2d(tf.keras.Model(model.input, layer.input)(inputs), depthwise, [1, 1, 1, 1], "SAME").numpy()
        return np.abs(between).reshape(-1, between.shape[-1]).max(axis=0)

    name = next(layer.name for layer in keras_model.layers if isinstance(layer, tf.keras.layers.SeparableConv2D))
    before = channel_ranges(keras_model, name)
    assert before.max() / before.min() > 10
    original = [w.copy() for w in keras_model.get_weights()]
    for strength, spread in ((1.0, 1.0), (0.5, np.sqrt(before.max() / before.min()))):
        equalized = equalize_separable(keras_model, faces, strength)
        np.testing.assert_allclose(predict_probabilities(equalized, faces), predict_probabilities(keras_model, faces), atol=1e-5)
        after = channel_ranges(equalized, name)
        assert after.max() / after.min() == pytest.approx(spread, rel=1e-3)
    assert all(np.array_equal(a, b) for a, b in zip(keras_model.get_weights(), original, strict=True))  # a copy is changed
    assert all(np.array_equal(a, b) for a, b in zip(equalize_separable(keras_model, faces, 0.0).get_weights(), original, strict=True))
    assert keras_model.get_layer(name).get_weights()[0].shape == equalized.get_layer(name).get_weights()[0].shape


def test_representative_faces_are_real_and_balanced(small_dataset):
    images, labels, _ = small_dataset
    chosen = representative_faces(images, labels, count=35)
    assert len(chosen) == 35
    rows = {image.tobytes() for image in images}
    assert all(face.tobytes() in rows for face in chosen)


def test_float16_export_loads_in_the_runtime(tmp_path):
    model = make_mini_xception()
    path = tmp_path / "f16.tflite"
    path.write_bytes(to_float_tflite(model, float16=True))
    write_sidecar(path, model.count_params(), "x.keras", {"quantization": "float16"})
    faces = np.zeros((3, 48, 48), np.uint8)
    np.testing.assert_allclose(EmotionModel(path).classify(faces), predict_probabilities(model, faces), atol=1e-2)


def test_conversion_prints_no_export_listing(capfd):
    to_float_tflite(make_mini_xception())
    out = capfd.readouterr().out
    assert "TensorSpec" not in out and "Saved artifact" not in out
