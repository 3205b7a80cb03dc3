"""Every training setting, once: `python -m train fit --FLAG` is made from these fields."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edge.contract import SHIFT_TTA_MAX
from edge.settings import check, setting
from train.shipped import refuse_shipped_output

LABEL_SETS = ("fer2013", "ferplus")
SELECTION_METRICS = ("accuracy", "balanced_accuracy", "mean_balanced_accuracy")
ARCHITECTURES = ("mini_xception", "vgg13", "resnet18")  # built by train/arch.py
STRATEGIES = ("none", "mirrored", "multi-worker")  # train/distribute.py


@dataclass(frozen=True)
class TrainConfig:
    data: str
    out_dir: str = setting("", 'where the model, history, curves and report go; "" = runs/<labels> (never the shipped models/)', panel="Output")
    arch: str = setting(
        "mini_xception", "network: mini_xception (the 58,423-parameter student convert ships), or a teacher to distil from "
        "with --teacher: vgg13 (6.9M parameters, FER+'s baseline) or resnet18 (11.2M)", choices=ARCHITECTURES,
        panel="Network",
    )
    labels: str = setting("fer2013", "fer2013: the CSV's labels, one-hot; ferplus: FER+ vote distributions", choices=LABEL_SETS, panel="Data and labels")
    ferplus: str = setting("", 'FER+ votes (fer2013new.csv); "" = beside --data', panel="Data and labels")
    ferplus_weight: float = setting(
        0.0, "with --labels fer2013: share of the FER+ vote distribution in each target (faces an emotion won)", low=0.0, high=1.0,
        panel="Data and labels",
    )
    teacher: str = setting("", 'distil from these .keras models (comma-separated; flip-averaged predictions, averaged); "" = none', panel="Teachers (distillation)")
    teacher_weight: float = setting(0.0, "share of the teacher's predictions in each target (needs --teacher)", low=0.0, high=1.0, panel="Teachers (distillation)")
    teacher_temperature: float = setting(1.0, "softens the teacher's predictions: p^(1/T), renormalised", above=0.0, high=100.0, panel="Teachers (distillation)")
    teacher_shift: int = setting(
        0, "also average the teacher's predictions over copies of each face shifted this many pixels left, right, "
        "up and down (with the mirrors, ten views): the student learns the shift-averaged scores at one view's cost",
        low=1, high=SHIFT_TTA_MAX, zero_means="flip only",
        panel="Teachers (distillation)",
    )
    logit_adjust: float = setting(
        0.0, "logit-adjusted loss (Menon et al. 2021): the loss sees log-scores + TAU x log(training class prior), "
        "the model predicts without it, so rare classes win more often; 0 = plain cross-entropy", low=0.0, high=3.0,
        panel="Balance",
    )
    balanced_sampling: float = setting(
        0.0, "class-balanced sampling: each class drawn in proportion to count^(1 - POWER); 0 = the data's mix, "
        "1 = every class equally often", low=0.0, high=1.0,
        panel="Balance",
    )
    select_on: str = setting(
        "accuracy", "the PublicTest figure that chooses the checkpoint (and early stopping): accuracy, "
        "balanced_accuracy (mean per-class recall) on the run's own label set, or mean_balanced_accuracy (the mean "
        "of the balanced accuracies on FER2013 labels and the FER+ majority; needs the FER+ votes)", choices=SELECTION_METRICS,
        panel="Balance",
    )
    epochs: int = setting(80, "epochs to train (early stopping may end sooner)", low=1, high=10_000, panel="Schedule")
    batch_size: int = setting(64, "faces per training step on each replica (a step sees this x replicas)", low=1, high=4096, panel="Schedule")
    learning_rate: float = setting(1e-3, "Adam's peak learning rate for one replica; the schedule is multiplied by the replicas", above=0.0, high=1.0, panel="Schedule")
    warmup_epochs: int = setting(2, "epochs of linear warm-up before the cosine decay", low=0, high=1000, panel="Schedule")
    min_learning_rate: float = setting(1e-5, "learning rate at the end of the cosine decay, for one replica like --learning-rate", low=0.0, high=1.0, panel="Schedule")
    label_smoothing: float = setting(0.0, "label smoothing of the cross-entropy", low=0.0, below=1.0, panel="Schedule")
    rotation_degrees: float = setting(10.0, "largest random rotation, degrees", low=0.0, high=180.0, panel="Augmentation")
    shift_fraction: float = setting(0.1, "largest random shift, fraction of the side", low=0.0, below=0.5, panel="Augmentation")
    zoom_fraction: float = setting(0.1, "largest random zoom, fraction", low=0.0, below=0.5, panel="Augmentation")
    brightness: float = setting(0.15, "largest random brightness change, fraction of the grey range", low=0.0, high=1.0, panel="Augmentation")
    contrast: float = setting(0.2, "largest random contrast change, fraction around the image mean", low=0.0, high=1.0, panel="Augmentation")
    flip: bool = setting(True, "random horizontal flips", panel="Augmentation")
    # Faces from other cameras and labs (issue 31): off by default, so earlier recipes train as they did.
    gamma: float = setting(0.0, "largest random gamma change: each face's grey levels raised to a power between 1/(1+G) and 1+G", low=0.0, high=3.0, panel="Augmentation")
    blur: float = setting(0.0, "largest random blur: this share at most of a 5x5 Gaussian-blurred copy blended into each face", low=0.0, high=1.0, panel="Augmentation")
    noise: float = setting(0.0, "largest random Gaussian noise, standard deviation as a fraction of the grey range", low=0.0, high=0.5, panel="Augmentation")
    jpeg_quality: int = setting(0, "lowest random JPEG quality each face is re-encoded at (between it and 100)", low=5, high=100, zero_means="no JPEG re-encoding", panel="Augmentation")
    l2: float = setting(0.01, "L2 weight decay of the base convolutions", low=0.0, high=1.0, panel="Network")
    patience: int = setting(40, "early stopping: epochs without a better PublicTest accuracy", low=1, high=10_000, panel="Schedule")
    seed: int = setting(1337, "random seed (initialisation, shuffling, augmentation)", low=0, high=2**31 - 1, panel="Network")
    limit: int = setting(0, "use at most this many images per split (smoke runs)", low=1, zero_means="all", panel="Data and labels")
    skip_bad: bool = setting(False, "skip and count malformed records instead of stopping", panel="Data and labels")
    cache_dir: str = setting("", 'where decoded arrays are cached; "" = ~/.cache/fer-edge', panel="Data and labels")
    distribute: str = setting(
        "none", "none: one device; mirrored: every GPU of this machine (MirroredStrategy); multi-worker: the machines "
        "in TF_CONFIG (MultiWorkerMirroredStrategy)", choices=STRATEGIES,
        panel="Hardware",
    )
    mixed_precision: bool = setting(False, "float16 compute, float32 weights and softmax (mixed_float16): for GPUs; slow on a CPU", panel="Hardware")
    resume: bool = setting(False, "continue the interrupted run in OUT_DIR/.train (same settings)", panel="Output")
    init_from: str = setting("", 'start from this .keras model\'s weights (fine-tuning, a warm restart); "" = from scratch', panel="Output")
    allow_shipped_output: bool = setting(False, "let --out-dir be inside the shipped models/ or edge/assets/ (replaces tracked files)", panel="Output")
    verbose: int = field(default=1)  # Keras verbosity; 2 (one line an epoch) when the output is not a terminal

    def __post_init__(self):
        check(self, "train")
        if self.teacher_weight + self.ferplus_weight > 1.0:
            raise ValueError(
                f"--teacher-weight ({self.teacher_weight}) and --ferplus-weight ({self.ferplus_weight}) "
                "(train.teacher_weight, train.ferplus_weight) must add up to at most 1"
            )
        if self.teacher_shift and not self.teacher_weight:
            raise ValueError(f"--teacher-shift (train.teacher_shift) is {self.teacher_shift} but --teacher-weight is 0: no teacher is asked")
        if self.teacher_weight > 0 and not self.teacher:
            raise ValueError(f"--teacher-weight (train.teacher_weight) is {self.teacher_weight} but no --teacher is given")
        if self.ferplus_weight > 0 and self.labels != "fer2013":
            raise ValueError("--ferplus-weight (train.ferplus_weight) mixes FER+ votes into FER2013 labels: use it with --labels fer2013")
        refuse_shipped_output(self.run_dir(), "--out-dir (train.out_dir)", self.allow_shipped_output)

    def votes_needed(self) -> bool:
        """Whether the run needs the FER+ votes: to train on them, mix them in, or choose its checkpoint by them."""
        return self.labels == "ferplus" or self.ferplus_weight > 0 or self.select_on == "mean_balanced_accuracy"

    def run_dir(self) -> Path:
        return Path(self.out_dir or Path("runs") / self.labels)


# The groups of `python -m train fit --help`, in order; set after the class so it is no dataclass field.
TrainConfig.PANELS = ("Data and labels", "Output", "Network", "Teachers (distillation)", "Balance", "Schedule", "Augmentation", "Hardware")
