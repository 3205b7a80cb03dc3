"""Several emotion models as one (`--model ferplus,fer2013`): each classifies a face with its own sidecar's
views (flip and shift averaging) and class-prior correction, and their class probabilities are averaged.

ModelEnsemble offers what the runtime uses of an EmotionModel (labels, classify, the start record's and the
live view's fields), so the loops, `edge eval` and the outputs take either."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edge import contract
from edge.vision.model import EmotionModel, ModelError, sidecar_path

# The sidecar contract fields that say how a face becomes the input tensor: averaging two models' scores only
# means something when both read the same input (EmotionModel checks each against the runtime's as well).
PREPROCESSING = ("input_shape", "color", "pixel_scale", "pixel_offset", "resize")


def check_compatible(first: EmotionModel, other: EmotionModel) -> None:
    """Refuse two models whose scores cannot be averaged: other labels (or order) or other preprocessing."""
    both = f"{first.path} and {other.path}"
    if tuple(first.labels) != tuple(other.labels):
        raise ModelError(f"{both} cannot be averaged: their labels differ ({list(first.labels)} against {list(other.labels)})")
    for key in PREPROCESSING:
        mine, theirs = first.sidecar["contract"].get(key), other.sidecar["contract"].get(key)
        if mine != theirs:
            raise ModelError(f"{both} cannot be averaged: contract.{key} differs ({mine!r} against {theirs!r})")


def views_per_face(model: EmotionModel) -> int:
    """Inferences one face costs a model: its shifted copies (shift_tta) times two with its mirrors (flip_tta)."""
    return len(contract.shift_offsets(model.shift_tta)) * (2 if model.flip_tta else 1)


def members_of(model) -> tuple[EmotionModel, ...]:
    """The models behind a classifier: an ensemble's members, or the one model itself."""
    return model.members if isinstance(model, ModelEnsemble) else (model,)


def inferences_per_face(model) -> int:
    """What one face costs the classifier: the sum over its models of each one's views."""
    return sum(views_per_face(member) for member in members_of(model))


class ModelEnsemble:
    """Two or more EmotionModels whose class probabilities are averaged, each with its own sidecar's settings.

    `--flip-tta`, `--shift-tta` and `--balance`, when given, apply to every member (edge.vision.faces.load_model);
    a member the flags leave alone keeps its sidecar's values, which is how its accuracy was measured."""

    def __init__(self, models: Sequence[EmotionModel]):
        models = tuple(models)
        if len(models) < 2:
            raise ModelError(f"an ensemble averages two or more models, got {len(models)}")
        for other in models[1:]:
            check_compatible(models[0], other)
        self.members = models
        self.labels: tuple[str, ...] = tuple(models[0].labels)
        self.interpreter_name = models[0].interpreter_name

    @property
    def path(self) -> str:
        """The --model value that loads this ensemble again: the members' paths, comma-separated."""
        return ",".join(str(member.path) for member in self.members)

    @property
    def name(self) -> str:
        return " + ".join(member.path.stem for member in self.members)

    @property
    def sha256(self) -> list[str]:
        return [member.sidecar["sha256"] for member in self.members]

    @property
    def flip_tta(self) -> list[bool]:
        return [member.flip_tta for member in self.members]

    @property
    def shift_tta(self) -> list[int]:
        return [member.shift_tta for member in self.members]

    @property
    def balance(self) -> list[float]:
        return [member.balance for member in self.members]

    @property
    def class_offsets(self) -> list[list[float] | None]:
        return [member.class_offsets for member in self.members]

    @property
    def sidecar_verified(self) -> bool:
        return all(member.sidecar_verified for member in self.members)

    @property
    def sidecar_status(self) -> str:
        return "; ".join(f"{sidecar_path(member.path).name}: {member.sidecar_status}" for member in self.members)

    @property
    def output_note(self) -> str:
        """Each member's note on outputs that are not probabilities (EmotionModel.output_note), naming its file."""
        return "; ".join(f"{member.path.name}: {member.output_note}" for member in self.members if getattr(member, "output_note", ""))

    @property
    def inferences_per_face(self) -> int:
        return inferences_per_face(self)

    def classify(self, faces: np.ndarray) -> np.ndarray:
        """Class probabilities (N, classes): the mean of the members' (each row still sums to 1)."""
        if len(faces) == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        return np.mean([member.classify(faces) for member in self.members], axis=0).astype(np.float32)
