"""FER2013's three splits as a run uses them: each split's faces, labels and FER+ votes; seeded subsets for
smoke runs; the class mix a model trained on a split learnt."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.contract import LABELS
from train.data import SPLITS, Fer2013
from train.ferplus import FerPlusVotes


@dataclass(frozen=True)
class Split:
    """One split's faces, FER2013 labels and, where FER+ is loaded, their votes."""

    images: np.ndarray
    labels: np.ndarray
    votes: FerPlusVotes | None = None

    def __len__(self) -> int:
        return len(self.images)


def training_class_prior(split: Split, labels: str) -> np.ndarray:
    """The class mix a model trained on `split` learnt: the mean FER+ vote distribution of the faces it
    trains on (`labels` ferplus), or the FER2013 label frequencies."""
    if labels == "ferplus":
        targets = split.votes.soft_targets()[split.votes.trainable()]
        prior = targets.mean(axis=0).astype(np.float64)
    else:
        prior = np.bincount(split.labels, minlength=len(LABELS)).astype(np.float64)
    prior = np.maximum(prior, 1e-6)  # a class absent from a small subset keeps a finite correction
    return prior / prior.sum()


def take_splits(dataset: Fer2013, limit: int, seed: int, votes: FerPlusVotes | None = None) -> dict[str, Split]:
    """Training, PublicTest and PrivateTest; `limit` > 0 keeps a seeded random subset of each (smoke runs)."""
    rng = np.random.default_rng(seed)
    splits = {}
    for index, name in enumerate(SPLITS):
        members = np.flatnonzero(dataset.splits == index)
        if limit and len(members) > limit:
            members = np.sort(rng.choice(members, limit, replace=False))
        if len(members) == 0:
            raise ValueError(f"{dataset.source}: the {name} split is empty")
        splits[name] = Split(dataset.images[members], dataset.labels[members], votes.take(members) if votes else None)
    return splits
