"""Load a .tflite emotion model with its sidecar JSON, check both, classify a batch of faces."""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge import contract
from edge.quiet import notices_filtered

PROBABILITY_TOLERANCE = 0.05  # an int8 softmax's outputs sum to 1 within a few steps of 1/256


class ModelError(ValueError):
    """A model or sidecar that cannot be used; the message names the file."""


def load_interpreter_api() -> tuple[type, object, str]:
    """(Interpreter class, OpResolverType enum, "package version"), lightest package first.

    TensorFlow is the last resort: on a Pi it is too heavy, and ai-edge-litert or tflite-runtime
    run the same models."""
    try:
        from ai_edge_litert import interpreter as api

        return api.Interpreter, api.OpResolverType, f"ai-edge-litert {_version('ai-edge-litert')}"
    except ImportError:
        pass
    try:
        from tflite_runtime import interpreter as api

        return api.Interpreter, api.OpResolverType, f"tflite-runtime {_version('tflite-runtime')}"
    except ImportError:
        pass
    try:
        import tensorflow as tf
    except ImportError:
        raise ImportError(
            "no TFLite interpreter found: pip install ai-edge-litert (or tflite-runtime on older Pis)"
        ) from None
    return tf.lite.Interpreter, tf.lite.experimental.OpResolverType, f"tensorflow {tf.__version__}"


def _version(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class Quantization:
    scale: float
    zero_point: int

    @classmethod
    def of(cls, tensor_details: dict) -> Quantization | None:
        scale, zero_point = tensor_details["quantization"]
        return cls(float(scale), int(zero_point)) if scale else None


def quantize(values: np.ndarray, quantization: Quantization, dtype=np.int8) -> np.ndarray:
    """float -> integer tensor values: round(x / scale) + zero_point, saturated to the dtype."""
    limits = np.iinfo(dtype)
    # float64: in float32 the shipped input scale puts grey levels on rounding boundaries and merges some
    scaled = np.round(values.astype(np.float64) / quantization.scale) + quantization.zero_point
    return np.clip(scaled, limits.min, limits.max).astype(dtype)


def dequantize(values: np.ndarray, quantization: Quantization) -> np.ndarray:
    """integer tensor values -> float; widened before subtracting the zero point so int8 cannot wrap."""
    return (values.astype(np.int32) - quantization.zero_point).astype(np.float32) * np.float32(quantization.scale)


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def sidecar_digest(sidecar: dict) -> str:
    """sha256 of every sidecar field but `digest` itself, canonical JSON. The sidecar's `sha256` ties it
    to the .tflite bytes, so the digest binds labels, contract and accuracy to the model they describe."""
    fields = {key: value for key, value in sidecar.items() if key != "digest"}
    return hashlib.sha256(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def check_labels(sidecar: dict, where: str) -> None:
    """The output order is fixed by training (contract.LABELS): refuse a sidecar that names it otherwise."""
    expected = list(contract.LABELS)
    for key, labels in (("labels", sidecar["labels"]), ("contract.labels", sidecar["contract"].get("labels", expected))):
        if labels != expected:
            raise ModelError(
                f"{where}: {key} {labels} differ from the labels the model was trained and evaluated with {expected}; "
                "a sidecar's labels cannot be edited, convert the model again instead"
            )


def check_digest(sidecar: dict, where: str) -> bool:
    """True when the sidecar carries a digest and it matches; False when it has none (older sidecars)."""
    if "digest" not in sidecar:
        return False
    if sidecar["digest"] != sidecar_digest(sidecar):
        raise ModelError(f"{where}: edited after conversion (digest differs), so its labels and accuracy cannot be trusted")
    return True


def sidecar_path(model_path: str | Path) -> Path:
    return Path(model_path).with_suffix(".json")


def read_sidecar(path: str | Path) -> dict:
    """The sidecar JSON, with the fields the runtime relies on checked."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: sidecar JSON missing; every model needs the one `python -m convert` writes beside it")
    try:
        sidecar = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelError(f"{path}: not valid JSON ({error})") from None
    required = ("labels", "input_shape", "input_dtype", "sha256", "contract")
    missing = [key for key in required if key not in sidecar] if isinstance(sidecar, dict) else list(required)
    if missing:
        raise ModelError(f"{path}: sidecar lacks {', '.join(missing)}")
    if not isinstance(sidecar["contract"], dict) or not isinstance(sidecar["input_shape"], list):
        raise ModelError(f"{path}: sidecar contract must be an object and input_shape a list")
    return sidecar


def check_contract(sidecar: dict, where: str) -> None:
    """Refuse a model trained with preprocessing other than what this runtime does."""
    expected = contract.describe()
    for key in ("input_shape", "pixel_scale", "pixel_offset", "color"):
        theirs = sidecar["contract"].get(key)
        if isinstance(theirs, float | int | list) and not isinstance(theirs, bool):
            same = np.shape(theirs) == np.shape(expected[key]) and np.allclose(theirs, expected[key])
        else:
            same = theirs == expected[key]
        if not same:
            raise ModelError(f"{where}: contract.{key} is {theirs!r}, this runtime preprocesses with {expected[key]!r}")
    if list(sidecar["input_shape"])[-3:] != list(contract.INPUT_SHAPE):
        raise ModelError(f"{where}: input_shape {sidecar['input_shape']} does not match {list(contract.INPUT_SHAPE)}")
    check_averaging(sidecar["contract"].get("flip_tta", contract.FLIP_TTA), sidecar["contract"].get("shift_tta", contract.SHIFT_TTA),
                    f"{where}: contract.")


def check_averaging(flip_tta, shift_tta, where: str) -> None:
    """flip_tta a bool, shift_tta an int within the flag's bounds (contract.SHIFT_TTA_MAX): a sidecar holding
    99 would make the runtime classify 4 x 99 shifted copies of every face."""
    if not isinstance(flip_tta, bool):
        raise ModelError(f"{where}flip_tta must be true or false, got {flip_tta!r}")
    if isinstance(shift_tta, bool) or not isinstance(shift_tta, int) or not 0 <= shift_tta <= contract.SHIFT_TTA_MAX:
        raise ModelError(f"{where}shift_tta must be an integer between 0 and {contract.SHIFT_TTA_MAX}, got {shift_tta!r}")


def check_balance(sidecar: dict, where: str) -> tuple[float, list[float] | None, list[float] | None]:
    """(tau, training class prior, per-class offsets) from the sidecar's contract; refuses values no conversion writes."""
    tau = sidecar["contract"].get("balance", contract.BALANCE)
    prior = sidecar["contract"].get("class_prior")
    offsets = sidecar["contract"].get("class_offsets")
    low, high = contract.BALANCE_RANGE
    if isinstance(tau, bool) or not isinstance(tau, int | float) or not low <= tau <= high:
        raise ModelError(f"{where}: contract.balance must be a number from {low} to {high}, got {tau!r}")
    if prior is not None:
        valid = (
            isinstance(prior, list) and len(prior) == contract.NUM_CLASSES
            and all(isinstance(v, int | float) and not isinstance(v, bool) and 0 < v <= 1 for v in prior)
            and abs(sum(prior) - 1.0) < 1e-3
        )
        if not valid:
            raise ModelError(f"{where}: contract.class_prior must be {contract.NUM_CLASSES} positive shares adding up to 1, got {prior!r}")
    if tau and prior is None:
        raise ModelError(f"{where}: contract.balance is {tau} but the sidecar records no contract.class_prior to correct by")
    if offsets is not None:
        bound = contract.CLASS_OFFSET_MAX
        valid = (
            isinstance(offsets, list) and len(offsets) == contract.NUM_CLASSES
            and all(isinstance(v, int | float) and not isinstance(v, bool) and -bound <= v <= bound for v in offsets)
        )
        if not valid:
            raise ModelError(f"{where}: contract.class_offsets must be {contract.NUM_CLASSES} numbers from -{bound:g} to {bound:g}, got {offsets!r}")
        if not tau:
            raise ModelError(f"{where}: contract.class_offsets are fitted at a tau, but contract.balance is 0")
    return float(tau), prior, offsets


class EmotionModel:
    """A TFLite emotion classifier, built once; `classify` takes all faces of a frame in one batch."""

    def __init__(
        self,
        model_path: str | Path,
        num_threads: int = 1,
        use_xnnpack: bool = True,
        flip_tta: bool | None = None,
        shift_tta: int | None = None,
        balance: float | None = None,
    ):
        self.path = Path(model_path)
        if not self.path.is_file():
            raise ModelError(f"{self.path}: model file not found")
        if num_threads < 1:
            raise ModelError(f"--num-threads must be at least 1, got {num_threads}")
        self.sidecar = read_sidecar(sidecar_path(self.path))
        where = str(sidecar_path(self.path))
        if file_sha256(self.path) != self.sidecar["sha256"]:
            raise ModelError(f"{self.path}: sha256 differs from {where}; the model was changed or the sidecar belongs to another")
        check_contract(self.sidecar, where)
        check_labels(self.sidecar, where)
        self.sidecar_verified = check_digest(self.sidecar, where)  # labels and accuracy as convert wrote them
        self.labels: tuple[str, ...] = tuple(self.sidecar["labels"])
        self.flip_tta = self.sidecar["contract"].get("flip_tta", contract.FLIP_TTA) if flip_tta is None else flip_tta
        self.shift_tta = self.sidecar["contract"].get("shift_tta", contract.SHIFT_TTA) if shift_tta is None else shift_tta
        check_averaging(self.flip_tta, self.shift_tta, "--")  # an override given here, not by a checked config
        recorded_balance, self.class_prior, recorded_offsets = check_balance(self.sidecar, where)
        self.balance = recorded_balance if balance is None else float(balance)
        # the offsets were fitted at the recorded tau: another --balance gets the plain prior correction
        self.class_offsets = recorded_offsets if self.balance == recorded_balance else None
        if self.balance and self.class_prior is None:
            raise ModelError(f"--balance {self.balance}: {where} records no training class prior (contract.class_prior); convert the model again")

        interpreter_class, resolver, self.interpreter_name = load_interpreter_api()
        options = {} if use_xnnpack else {"experimental_op_resolver_type": resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES}
        try:
            with notices_filtered():
                self.interpreter = interpreter_class(model_path=str(self.path), num_threads=num_threads, **options)
                self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise ModelError(f"{self.path}: not a loadable TFLite model ({error})") from None
        input_details = self.interpreter.get_input_details()[0]
        output_details = self.interpreter.get_output_details()[0]
        self._input_index, self._output_index = input_details["index"], output_details["index"]
        self.input_dtype = np.dtype(input_details["dtype"])
        self.input_quantization = Quantization.of(input_details)
        self.output_quantization = Quantization.of(output_details)
        if list(input_details["shape"][1:]) != list(contract.INPUT_SHAPE):
            raise ModelError(f"{self.path}: input shape {list(input_details['shape'])} is not [N, {', '.join(map(str, contract.INPUT_SHAPE))}]")
        if self.input_dtype.name != self.sidecar["input_dtype"]:
            raise ModelError(f"{self.path}: input dtype {self.input_dtype} differs from the sidecar's {self.sidecar['input_dtype']}")
        if output_details["shape"][-1] != len(self.labels):
            raise ModelError(f"{self.path}: {output_details['shape'][-1]} outputs but {len(self.labels)} labels in {where}")
        self._batch = int(input_details["shape"][0])
        self.output_note = self._probe()

    def _probe(self) -> str:
        """One inference on probe faces before any frame: outputs that are not numbers (NaN, infinity) refuse
        the model, since every face would get a score that is not JSON; outputs that are not probabilities (a
        last layer without softmax) load, said once, as `output_note` (the start record carries it).
        The raw outputs, before averaging and balance."""
        grey = np.full((1, *contract.INPUT_SHAPE[:2]), 128, np.uint8)
        ramp = np.tile(np.linspace(0, 255, contract.INPUT_SHAPE[1], dtype=np.uint8), (contract.INPUT_SHAPE[0], 1))[None]
        faces = np.concatenate([grey, ramp])
        tensor = contract.scale_pixels(faces)
        if self.input_quantization is not None and self.input_dtype.kind == "i":
            tensor = quantize(tensor, self.input_quantization, self.input_dtype)
        raw = self.invoke(tensor.astype(self.input_dtype))
        scores = dequantize(raw, self.output_quantization) if self.output_quantization else raw.astype(np.float64)
        if not np.all(np.isfinite(scores)):
            raise ModelError(f"{self.path}: its outputs on a probe face are not numbers ({scores[0][:3].tolist()} ...): "
                             "a broken model; convert it again")
        sums = scores.sum(axis=-1)
        if scores.min() < -PROBABILITY_TOLERANCE or np.abs(sums - 1).max() > PROBABILITY_TOLERANCE:
            note = (f"{self.path}: its outputs are not probabilities (on a probe face they sum to {float(sums[0]):.4g}, "
                    f"range {float(scores.min()):.3g} .. {float(scores.max()):.3g}): a last layer without softmax? "
                    "Scores will not be between 0 and 1, and thresholds on them mean nothing")
            sys.stderr.write(f"warning: {note}\n")
            return note
        return ""

    @property
    def sidecar_status(self) -> str:
        """One line on how far the sidecar can be trusted: the start record and `edge info` both say it."""
        if self.sidecar_verified:
            return "digest verified: labels, contract and accuracy are as convert wrote them"
        return ("no digest (an older sidecar, or its digest removed): accuracy unverified; "
                "labels and contract checked against the runtime's")

    def prepare(self, faces: np.ndarray) -> np.ndarray:
        """uint8 faces (N, 48, 48[, 1]) -> the input tensor: shifted copies appended when shift_tta is
        on, then mirrors of them all when flip_tta is."""
        inputs = contract.with_shifts(contract.scale_pixels(faces), self.shift_tta)
        if self.flip_tta:
            inputs = contract.with_mirrors(inputs)
        if self.input_quantization is not None and self.input_dtype.kind == "i":
            return quantize(inputs, self.input_quantization, self.input_dtype)
        return inputs.astype(self.input_dtype)

    def invoke(self, tensor: np.ndarray) -> np.ndarray:
        """Run the interpreter on a prepared input tensor; returns the raw output tensor."""
        if len(tensor) != self._batch:
            self.interpreter.resize_tensor_input(self._input_index, [len(tensor), *contract.INPUT_SHAPE])
            self.interpreter.allocate_tensors()
            self._batch = len(tensor)
        self.interpreter.set_tensor(self._input_index, tensor)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._output_index).copy()

    def classify(self, faces: np.ndarray) -> np.ndarray:
        """Class probabilities (N, classes) for uint8 faces (N, 48, 48[, 1])."""
        if len(faces) == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        raw = self.invoke(self.prepare(faces))
        scores = dequantize(raw, self.output_quantization) if self.output_quantization else raw.astype(np.float32)
        scores = contract.average_mirrors(scores) if self.flip_tta else scores
        scores = contract.average_shifts(scores, self.shift_tta)
        return contract.balance_scores(scores, self.class_prior, self.balance, self.class_offsets)
