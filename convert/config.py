"""Every conversion setting, once (as train/config.py is training's): `python -m convert --FLAG` is made from
ConvertConfig's fields; a bundle's gate is checked when the settings are made."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edge import contract
from edge.config import BUNDLED_MODELS, DEFAULT_MODEL, bundled_model
from edge.settings import check, setting
from train.config import LABEL_SETS
from train.shipped import refuse_shipped_output

MIN_ACCURACY_FLOOR = 60.0  # %: the gate's default floor; the default bundled model is never installed below it


@dataclass(frozen=True)
class ConvertConfig:
    """Every conversion setting, once: `python -m convert --FLAG` is made from these fields."""

    data: str
    keras_model: str = setting("models/mini_xception.keras", "the trained Keras model", panel="Input")
    out_dir: str = setting("out/convert", "where the .tflite models, sidecars and reports go (never the shipped models/ unless --allow-shipped-output)", panel="Output")
    name: str = setting("mini_xception", "file stem: NAME_int8.tflite, NAME_float32.tflite, ...", panel="Output")
    calibration_count: int = setting(300, "Training faces (class-balanced, with their mirrors) that calibrate int8", low=7, high=28_709, panel="Quantization")
    equalize: float = setting(
        0.5, "cross-layer equalization before int8: evens out the channel ranges between each separable convolution's "
        "two halves (the same function in float); 0 = off, 1 = fully even", low=0.0, high=1.0,
        panel="Quantization",
    )
    float32: bool = setting(True, "also export a float32 .tflite for comparison", panel="Output")
    float16: bool = setting(False, "also export a float16-weight .tflite for comparison", panel="Output")
    max_drop: float = setting(0.3, "fail when int8 loses more PrivateTest points than this against float", low=0.0, high=100.0, panel="Accuracy gate")
    min_accuracy: float | None = setting(
        MIN_ACCURACY_FLOOR, "fail when int8 PrivateTest accuracy (%) is below this, a floor that catches a broken model (0 = none; "
        "--bundle needs one, the default model at least this default)", low=0.0, high=100.0,
        panel="Accuracy gate",
    )
    limit: int = setting(0, "evaluate on at most this many faces per split (smoke runs)", low=1, zero_means="all", panel="Input")
    skip_bad: bool = setting(False, "skip and count malformed records instead of stopping", panel="Input")
    cache_dir: str | None = setting(None, "decoded-dataset cache (default ~/.cache/fer-edge)", panel="Input")
    seed: int = setting(0, "seed of the calibration sample", low=0, high=2**31 - 1, panel="Quantization")
    bundle_dir: str | None = setting(None, "when the gate passes, copy the int8 model, sidecar, card and report here", panel="Output")
    labels: str | None = setting(None, "label set the model was trained on (default: train_report.json beside it)", choices=LABEL_SETS, panel="Input")
    ferplus: str | None = setting(None, "FER+ votes (default: fer2013new.csv beside --data, CSV form)", panel="Input")
    images_data: str | None = setting(
        None, "FER2013's image-folder release (.zip or folder): also report int8 accuracy on its JPEG-decoded faces, "
        "what `edge eval --crops` on its extracted test folder measures",
        panel="Input",
    )
    flip_tta: bool = setting(contract.FLIP_TTA, "the sidecar's flip averaging; the gated figures use it", panel="Averaging and balance")
    shift_tta: int = setting(
        contract.SHIFT_TTA, "the sidecar's shift averaging, pixels (0 = off); every figure uses it, with and without flip", low=0,
        high=contract.SHIFT_TTA_MAX,
        panel="Averaging and balance",
    )
    balance: float | None = setting(
        None, "the sidecar's class-prior correction tau (0 = scores as trained, 1 = fully balanced); every figure uses it. "
        "Default: chosen on PublicTest, the tau with the best balanced accuracy whose accuracy is at most "
        "--balance-max-cost points below tau 0's", low=contract.BALANCE_RANGE[0], high=contract.BALANCE_RANGE[1],
        panel="Averaging and balance",
    )
    ckplus_data: str | None = setting(
        None, "CK+48 (its .zip or folder): also report int8 on these posed faces from another lab, as `edge eval --crops` "
        "does; evaluation only, it chooses nothing",
        panel="Input",
    )
    balance_max_cost: float = setting(
        2.5, "when choosing tau on PublicTest: the most accuracy points it may cost against tau 0", low=0.0, high=100.0,
        panel="Averaging and balance",
    )
    balance_min_accuracy: float | None = setting(
        None, "when choosing tau on PublicTest: the lowest PublicTest accuracy (%) it may leave, a fixed floor used "
        "instead of --balance-max-cost", low=0.0, high=100.0,
        panel="Averaging and balance",
    )
    class_offsets: bool = setting(
        False, "after choosing tau, also fit per-class log-score offsets on PublicTest (best balanced accuracy whose "
        "accuracy stays at tau's floor; recorded in the sidecar, every figure uses them) and report, from held-out "
        "halves of PublicTest, what they gain over tau alone",
        panel="Averaging and balance",
    )
    min_balanced_accuracy: float | None = setting(
        None, "fail when int8 PrivateTest balanced accuracy (%, mean per-class recall) is below this", low=0.0, high=100.0,
        panel="Accuracy gate",
    )

    allow_shipped_output: bool = setting(False, "let --out-dir be inside the shipped models/ or edge/assets/", panel="Output")

    def __post_init__(self):
        check(self, "convert")
        refuse_shipped_output(self.out_dir, "--out-dir (convert.out_dir)", self.allow_shipped_output)
        if self.bundle_dir:
            check_bundle(self)


# The groups of `python -m convert --help`, in order; set after the class so it is no dataclass field.
ConvertConfig.PANELS = ("Input", "Output", "Quantization", "Averaging and balance", "Accuracy gate")


def check_bundle(config: ConvertConfig) -> None:
    """A bundle is gated on the whole test splits; installing a bundled model (edge/assets/NAME, what
    --bundle does) needs the accuracy floor, and the default model at least the default floor."""
    if config.limit:
        raise ValueError(
            f"--limit (convert.limit) {config.limit} gates on a sample of the test faces; a model gated so is never bundled: "
            "drop --limit, or --bundle"
        )
    installs = config.name in BUNDLED_MODELS and Path(config.bundle_dir).resolve() == bundled_model(config.name).parent.resolve()
    if not installs:
        refuse_shipped_output(config.bundle_dir, "--bundle-dir (convert.bundle_dir)", config.allow_shipped_output)
    elif config.name == DEFAULT_MODEL and (config.min_accuracy or 0) < MIN_ACCURACY_FLOOR:
        raise ValueError(
            f"--bundle --name {config.name}: the default model {DEFAULT_MODEL!r} (what `edge run` uses without --model) needs "
            f"--min-accuracy of at least {MIN_ACCURACY_FLOOR:g}, got {config.min_accuracy}"
        )
    elif not config.min_accuracy:
        raise ValueError(
            f"--bundle --name {config.name}: --bundle installs only a gated model: give --min-accuracy (convert.min_accuracy), "
            f"the accuracy floor (default {MIN_ACCURACY_FLOOR:g}), not {config.min_accuracy}"
        )
