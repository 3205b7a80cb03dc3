"""mini-Xception (Arriaga, Ploeger, Valdenegro 2017), as in oarriaga/face_classification."""

from __future__ import annotations

import zipfile
from pathlib import Path

import keras
import numpy as np
from keras import layers

from edge.contract import FLIP_TTA, INPUT_SHAPE, NUM_CLASSES, average_mirrors, scale_pixels, with_mirrors


def make_mini_xception(
    input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = NUM_CLASSES, l2: float = 0.01, synchronized: bool = False
) -> keras.Model:
    """Two 3x3 conv (8) base, four residual separable-conv modules (16, 32, 64, 128), a 3x3 conv to
    the classes, global average pooling and softmax: 58,423 parameters for 48x48x1 and 7 classes.
    `synchronized`: batch statistics over the global batch under a multi-replica strategy (training only)."""
    # The reference passes its L2 regularizer to SeparableConv2D as `kernel_regularizer`, which Keras
    # ignored there, so in effect only the two base convolutions are regularized; so are they here.
    regularizer = keras.regularizers.l2(l2) if l2 else None
    inputs = keras.Input(input_shape, name="face")
    x = inputs
    for _ in range(2):
        x = layers.Conv2D(8, 3, use_bias=False, kernel_regularizer=regularizer)(x)
        x = layers.BatchNormalization(synchronized=synchronized)(x)
        x = layers.Activation("relu")(x)
    for filters in (16, 32, 64, 128):
        residual = layers.Conv2D(filters, 1, strides=2, padding="same", use_bias=False)(x)
        residual = layers.BatchNormalization(synchronized=synchronized)(residual)
        x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(synchronized=synchronized)(x)
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(synchronized=synchronized)(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        x = layers.add([x, residual])
    x = layers.Conv2D(num_classes, 3, padding="same")(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Activation("softmax", dtype="float32", name="predictions")(x)  # float32 under mixed precision too
    return keras.Model(inputs, outputs, name="mini_xception")


@keras.saving.register_keras_serializable(package="fer_edge")
class LogitAdjustedCrossentropy(keras.losses.Loss):
    """Logit-adjusted cross-entropy (Menon et al., "Long-tail learning via logit adjustment", ICLR 2021):
    the cross-entropy of softmax(logits + tau * log prior). The model ends in a softmax, so this is
    p * prior^tau renormalised; at inference the model's own scores are used, which lowers common classes'
    scores against rare ones by tau * log prior (post-hoc correction, learnt)."""

    def __init__(self, prior, tau: float = 1.0, label_smoothing: float = 0.0, name: str = "logit_adjusted_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.prior, self.tau, self.label_smoothing = [float(v) for v in prior], float(tau), float(label_smoothing)
        self._weights = np.power(np.asarray(self.prior, np.float32), self.tau)

    def call(self, y_true, y_pred):
        adjusted = y_pred * self._weights
        adjusted = adjusted / keras.ops.sum(adjusted, axis=-1, keepdims=True)
        return keras.losses.categorical_crossentropy(y_true, adjusted, label_smoothing=self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "prior": self.prior, "tau": self.tau, "label_smoothing": self.label_smoothing}


def predict_probabilities(model: keras.Model, faces: np.ndarray, batch_size: int = 256, flip_tta: bool = FLIP_TTA) -> np.ndarray:
    """Class probabilities for uint8 faces (N, 48, 48[, 1]) through the shared contract.

    Every batch has the same shape (the last is padded): TensorFlow 2.21 with oneDNN can crash when
    the batch shape changes between steps.
    """
    inputs = scale_pixels(faces)
    if flip_tta:
        inputs = with_mirrors(inputs)
    probabilities = predict_padded(model, inputs, batch_size)
    return average_mirrors(probabilities) if flip_tta else probabilities


def predict_padded(model: keras.Model, inputs: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """`model`'s outputs for already-scaled inputs, in batches of one shape (the last padded with zeros, whose
    outputs are dropped)."""
    count = len(inputs)
    padded = np.concatenate([inputs, np.zeros((-count % batch_size, *inputs.shape[1:]), inputs.dtype)])
    outputs = np.concatenate([model(padded[i : i + batch_size], training=False).numpy() for i in range(0, len(padded), batch_size)])
    return outputs[:count]


def load_keras_model(path: str | Path, flag: str, compile: bool = True) -> keras.Model:
    """A .keras file, or an error naming the flag and the file: Keras itself says "File not found" for any
    file it cannot open, a corrupt or cut-short one too."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{flag} {path}: no such file")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{flag} {path}: not a valid Keras model (a .keras file is a zip archive; this one is not, or is cut short)")
    try:
        return keras.models.load_model(path, compile=compile)
    except Exception as error:  # a damaged archive raises ValueError, KeyError, OSError, TypeError ... depending on the part
        raise ValueError(f"{flag} {path}: not a valid Keras model ({type(error).__name__}: {error})") from None
