"""Keras mini-Xception -> full-integer TFLite (int8 in, int8 out, no float ops) and the sidecar JSON; the variants
convert exports (int8 and the float comparisons), scored as the runtime loads them."""

from __future__ import annotations

import contextlib
import io
import json
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tensorflow as tf

from convert.config import ConvertConfig
from convert.evaluate import predict_in_batches
from convert.labelsets import SPLITS, with_and_without_flip
from edge import contract
from edge.vision.model import (
    EmotionModel,
    Quantization,
    file_sha256,
    load_interpreter_api,
    sidecar_digest,
    sidecar_path,
)

# Ops that mean a graph is not integer-only end to end.
BOUNDARY_OPS = {"QUANTIZE", "DEQUANTIZE"}


class QuantizationError(RuntimeError):
    """The converted model is not what the Pi (or an Edge TPU) needs; the message says what slipped in."""


def representative_faces(images: np.ndarray, labels: np.ndarray, count: int = 300, seed: int = 0) -> np.ndarray:
    """Real Training faces, balanced across classes (a class with too few gives all it has)."""
    rng = np.random.default_rng(seed)
    per_class = int(np.ceil(count / contract.NUM_CLASSES))
    chosen = []
    for label in range(contract.NUM_CLASSES):
        members = np.flatnonzero(labels == label)
        chosen.extend(rng.choice(members, min(per_class, len(members)), replace=False))
    chosen = np.asarray(chosen)
    if len(chosen) > count:
        chosen = rng.choice(chosen, count, replace=False)
    if len(chosen) == 0:
        raise ValueError("no Training faces to calibrate quantization with")
    return images[np.sort(chosen)]


def calibration_inputs(faces: np.ndarray) -> np.ndarray:
    """The calibration faces as the model sees them, with their mirrors (the runtime feeds both)."""
    inputs = contract.scale_pixels(faces)
    return contract.with_mirrors(inputs) if contract.FLIP_TTA else inputs


def equalize_separable(model: tf.keras.Model, calibration_faces: np.ndarray, strength: float) -> tf.keras.Model:
    """A copy of `model` that computes the same function with int8-friendlier ranges (cross-layer equalization,
    Nagel et al. 2019, data-driven). TFLite splits each SeparableConv2D into a depthwise and a 1x1 convolution with
    an int8 tensor between them, quantized with one scale for all its channels, so a channel whose values are small
    keeps few levels. Nothing nonlinear lies between the two: channel c of the depthwise kernel is multiplied by
    s_c = (R / r_c)^strength and row c of the 1x1 kernel divided by it, where r_c is the channel's largest
    magnitude on the calibration faces (and their mirrors) and R the largest over the channels. 0 = a plain copy."""
    copy = tf.keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    if not strength:
        return copy
    inputs = calibration_inputs(calibration_faces)
    for layer in copy.layers:
        if not isinstance(layer, tf.keras.layers.SeparableConv2D) or layer.use_bias:
            continue
        depthwise, pointwise = layer.get_weights()
        layer_input = tf.keras.Model(copy.input, layer.input)(inputs, training=False)
        between = tf.nn.depthwise_conv2d(layer_input, depthwise, strides=[1, *layer.strides, 1], padding=layer.padding.upper(),
                                         dilations=layer.dilation_rate).numpy()
        ranges = np.abs(between).reshape(-1, between.shape[-1]).max(axis=0)
        scales = (ranges.max() / np.maximum(ranges, ranges.max() * 1e-6)) ** strength
        layer.set_weights([depthwise * scales[None, None, :, None], pointwise / scales[None, None, :, None]])
    return copy


def to_int8_tflite(model: tf.keras.Model, calibration_faces: np.ndarray) -> bytes:
    """Post-training full-integer quantization, calibrated on real faces through the shared contract.
    Both the original and the mirrored faces calibrate, since the runtime feeds both."""
    inputs = calibration_inputs(calibration_faces)

    def representative_dataset() -> Iterator[list[np.ndarray]]:
        for face in inputs:
            yield [face[np.newaxis]]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    with warnings.catch_warnings():
        # The converter asks for quantization-aware training's input statistics, which post-training
        # quantization does not use: it calibrates the input scale itself (check_full_int8 checks it).
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected", category=UserWarning)
        return quietly_converted(converter)


def quietly_converted(converter) -> bytes:
    """converter.convert() without Keras's export listing on stdout ("Saved artifact at ...", then a
    TensorSpec line for every captured variable, 160-odd lines a model); shown after all when it fails."""
    listing = io.StringIO()
    try:
        with contextlib.redirect_stdout(listing):
            return converter.convert()
    except BaseException:
        sys.stderr.write(listing.getvalue())
        raise


def to_float_tflite(model: tf.keras.Model, float16: bool = False) -> bytes:
    """Float32 export, or float16 weights with float32 compute (for comparison only)."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if float16:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    return quietly_converted(converter)


def graph_summary(model_path: str | Path) -> dict:
    """Op names and tensor dtypes of a .tflite file, read with the runtime's interpreter."""
    interpreter_class, _, _ = load_interpreter_api()
    interpreter = interpreter_class(model_path=str(model_path))
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()  # the only public-ish way to list ops in the Python API
    return {
        "ops": [op["op_name"] for op in ops],
        "op_tensors": [
            (op["op_name"], [np.dtype(tensors[i]["dtype"]).name for i in [*op["inputs"], *op["outputs"]] if i in tensors])
            for op in ops
        ],
        "input": interpreter.get_input_details()[0],
        "output": interpreter.get_output_details()[0],
    }


def check_full_int8(model_path: str | Path) -> None:
    """Raise QuantizationError unless input and output are int8 and every op runs on integers."""
    summary = graph_summary(model_path)
    problems = []
    for end in ("input", "output"):
        dtype = np.dtype(summary[end]["dtype"])
        if dtype != np.int8:
            problems.append(f"{end} tensor is {dtype.name}, not int8")
    boundary = sorted({op for op in summary["ops"] if op in BOUNDARY_OPS})
    if boundary:
        problems.append(f"graph has {', '.join(boundary)} op(s) at its ends")
    float_ops = sorted({name for name, dtypes in summary["op_tensors"] if any(d.startswith("float") for d in dtypes)})
    if float_ops:
        problems.append(f"float tensors in op(s) {', '.join(float_ops)}")
    if problems:
        raise QuantizationError(f"{model_path}: not a full-int8 model: " + "; ".join(problems))


def write_sidecar(model_path: str | Path, parameters: int, source_model: str, extra: dict | None = None) -> Path:
    """labels, shapes, dtype, contract, quantization, sha256 (and accuracy, added by the evaluation)."""
    summary = graph_summary(model_path)
    quant = {end: Quantization.of(summary[end]) for end in ("input", "output")}
    sidecar = {
        "model": Path(model_path).name,
        "labels": list(contract.LABELS),
        "input_shape": list(contract.INPUT_SHAPE),
        "input_dtype": np.dtype(summary["input"]["dtype"]).name,
        "output_dtype": np.dtype(summary["output"]["dtype"]).name,
        "contract": contract.describe(),
        "input_quantization": vars(quant["input"]) if quant["input"] else None,
        "output_quantization": vars(quant["output"]) if quant["output"] else None,
        "sha256": file_sha256(model_path),
        "size_bytes": Path(model_path).stat().st_size,
        "parameters": parameters,
        "source_model": source_model,
        **(extra or {}),
    }
    path = sidecar_path(model_path)
    write_atomically(path, json.dumps({**sidecar, "digest": sidecar_digest(sidecar)}, indent=2) + "\n")
    return path


def write_atomically(path: Path, text: str) -> None:
    """Write a file whole or not at all (renamed into place): a torn sidecar makes the runtime refuse its model."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    partial.replace(path)


def update_sidecar(model_path: str | Path, **fields) -> None:
    path = sidecar_path(model_path)
    sidecar = json.loads(path.read_text())
    sidecar.update(fields)
    sidecar["digest"] = sidecar_digest(sidecar)  # re-bound: the accuracy added here is covered too
    write_atomically(path, json.dumps(sidecar, indent=2) + "\n")


def export_variants(model, training, keras_path: Path, out_dir: Path, config: ConvertConfig) -> dict[str, Path]:
    """int8 (checked full-int8) and the comparison exports, each with its sidecar; {variant: path}."""
    calibration = representative_faces(training.images, training.labels, count=config.calibration_count, seed=config.seed)
    variants = {"int8": to_int8_tflite(equalize_separable(model, calibration, config.equalize), calibration)}
    if config.float32:
        variants["float32"] = to_float_tflite(model)
    if config.float16:
        variants["float16"] = to_float_tflite(model, float16=True)
    paths = {}
    for variant, content in variants.items():
        paths[variant] = out_dir / f"{config.name}_{variant}.tflite"
        paths[variant].write_bytes(content)
        if variant == "int8":
            check_full_int8(paths[variant])
        extra = {"quantization": variant, **({"equalize": config.equalize} if variant == "int8" else {})}
        write_sidecar(paths[variant], int(model.count_params()), keras_path.name, extra)
    return paths


def score_variants(model, paths: dict[str, Path], splits: dict, shift_tta: int = 0) -> dict:
    """{model name: {split: {flip: class scores}}}: Keras, and each TFLite file as the Pi loads it; with
    `shift_tta`, every score is averaged over the shifted copies as the runtime does."""
    from train.model import predict_probabilities

    classifiers = {"keras": lambda faces: predict_probabilities(model, faces, flip_tta=False)}
    for variant, path in paths.items():
        # mirrors, shifts and the class-prior correction applied here, as the runtime does
        runtime_model = EmotionModel(path, flip_tta=False, shift_tta=0, balance=0.0)
        classifiers[variant] = lambda faces, m=runtime_model: predict_in_batches(m.classify, faces)

    def shifted(classify):
        return lambda faces: contract.average_shifts(classify(contract.with_shifts(faces, shift_tta)), shift_tta)

    return {
        name: {split: with_and_without_flip(shifted(classify), splits[split].images) for split in SPLITS}
        for name, classify in classifiers.items()
    }
