"""Rebuild a trainable Keras mini-Xception from a shipped full-int8 TFLite model, for warm starts.

Only the int8 files are shipped for `ferplus`; to fine-tune that network, its weights are dequantized
(per-channel scales) and the BatchNorm layers TFLite folded into each convolution are unfolded again:
each BatchNorm gets the mean and variance its input has on Training faces and a gamma/beta that turn
them back into the folded bias, so the Keras model computes what the int8 model does (up to int8
rounding) and trains like a network with live BatchNorm statistics.

    python scripts/keras_from_int8.py edge/assets/ferplus/ferplus_int8.tflite runs/ferplus_float/mini_xception.keras \
        --data ../shared/data/fer2013.tar.gz
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def read_layers(tflite_path: Path) -> list[dict]:
    """The weighted ops in graph order: {"op", "weights", "bias"}, dequantized to float32."""
    from edge.vision.model import load_interpreter_api

    Interpreter = load_interpreter_api()[0]
    interpreter = Interpreter(model_path=str(tflite_path), experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    details = {tensor["index"]: tensor for tensor in interpreter.get_tensor_details()}

    def dequantized(index: int) -> np.ndarray:
        tensor = details[index]
        values = interpreter.get_tensor(index).astype(np.float32)
        scales = tensor["quantization_parameters"]["scales"]
        zeros = tensor["quantization_parameters"]["zero_points"]
        if len(scales) == 0:
            return values
        axis = tensor["quantization_parameters"]["quantized_dimension"]
        shape = [1] * values.ndim
        shape[axis] = -1
        return (values - np.reshape(zeros, shape)) * np.reshape(scales, shape)

    layers = []
    for op in interpreter._get_ops_details():
        if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            layers.append({"op": op["op_name"], "weights": dequantized(op["inputs"][1]), "bias": dequantized(op["inputs"][2])})
    return layers


def in_graph_order(model) -> list:
    """mini-Xception's convolutions in the order TFLite runs them: in each residual module the shortcut's
    1x1 stride-2 convolution first, where Keras lists it after the module's two separable convolutions."""
    import keras

    ordered = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D) and layer.strides == (2, 2):
            ordered.insert(len(ordered) - 2, layer)
        elif isinstance(layer, keras.layers.Conv2D | keras.layers.SeparableConv2D):
            ordered.append(layer)
    return ordered


def batch_norm_after(model) -> dict:
    """{convolution's name: the BatchNorm layer that normalises its output}."""
    import keras

    return {
        layer.input._keras_history.operation.name: layer
        for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    }


def assign_folded(model, layers: list[dict]) -> list:
    """Set every convolution to its folded TFLite weights and every BatchNorm to the identity plus the
    folded bias; returns the BatchNorm layers (their statistics are set afterwards)."""
    import keras

    ops = iter(layers)
    following = batch_norm_after(model)
    batch_norms = []
    for layer in in_graph_order(model):
        if isinstance(layer, keras.layers.SeparableConv2D):
            depthwise, pointwise = next(ops), next(ops)
            if (depthwise["op"], pointwise["op"]) != ("DEPTHWISE_CONV_2D", "CONV_2D"):
                raise ValueError(f"{layer.name}: expected a depthwise and a 1x1 convolution in the TFLite model")
            depthwise_kernel = np.transpose(depthwise["weights"], (1, 2, 3, 0))  # (1, kh, kw, c) -> (kh, kw, c, 1)
            pointwise_kernel = np.transpose(pointwise["weights"], (1, 2, 3, 0))  # (out, 1, 1, in) -> (1, 1, in, out)
            # a depthwise bias passes through the pointwise convolution into its bias
            bias = pointwise["bias"] + depthwise["bias"] @ pointwise_kernel[0, 0]
            layer.set_weights([depthwise_kernel, pointwise_kernel])
        else:
            conv = next(ops)
            kernel = np.transpose(conv["weights"], (1, 2, 3, 0))
            if kernel.shape != layer.get_weights()[0].shape:
                raise ValueError(f"{layer.name}: kernel {kernel.shape} in the TFLite model, {layer.get_weights()[0].shape} in Keras")
            if layer.use_bias:
                layer.set_weights([kernel, conv["bias"]])
                continue
            layer.set_weights([kernel])
            bias = conv["bias"]
        norm = following[layer.name]
        channels = len(bias)
        gamma = np.full(channels, np.sqrt(1.0 + norm.epsilon), np.float32)
        norm.set_weights([gamma, bias.astype(np.float32), np.zeros(channels, np.float32), np.ones(channels, np.float32)])
        batch_norms.append(norm)
    if next(ops, None) is not None:
        raise ValueError("the TFLite model has more convolutions than mini-Xception")
    return batch_norms


def unfold_statistics(model, batch_norms: list, faces: np.ndarray) -> None:
    """Give each BatchNorm its input's mean and variance on `faces`, keeping its output unchanged."""
    import keras

    from edge.contract import scale_pixels

    probe = keras.Model(model.input, [layer.input for layer in batch_norms])
    inputs = scale_pixels(faces)
    outputs = [np.concatenate(parts) for parts in zip(*(probe(inputs[i : i + 256], training=False) for i in range(0, len(inputs), 256)), strict=True)]
    for layer, activations in zip(batch_norms, outputs, strict=True):
        gamma, beta, _, _ = layer.get_weights()
        bias = beta  # the identity set above: output = input + bias
        mean = activations.reshape(-1, activations.shape[-1]).mean(axis=0)
        variance = activations.reshape(-1, activations.shape[-1]).var(axis=0)
        scale = np.sqrt(variance + layer.epsilon)
        layer.set_weights([scale.astype(np.float32), (mean + bias).astype(np.float32), mean.astype(np.float32), variance.astype(np.float32)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tflite", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--data", required=True, help="FER2013 (Training faces give the BatchNorm statistics)")
    parser.add_argument("--faces", type=int, default=4000, help="Training faces for the statistics")
    args = parser.parse_args()

    from train.cache import default_cache_dir
    from train.data import load_fer2013
    from train.model import make_mini_xception
    from train.splits import take_splits

    model = make_mini_xception()
    batch_norms = assign_folded(model, read_layers(args.tflite))
    training = take_splits(load_fer2013(args.data, cache_dir=default_cache_dir()), args.faces, 0)["Training"]
    unfold_statistics(model, batch_norms, training.images)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.save(args.out)
    print(f"{args.out}: {model.count_params():,} parameters from {args.tflite}")


if __name__ == "__main__":
    main()
