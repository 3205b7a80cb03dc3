"""FER+ (Barsoum et al. 2016, microsoft/FERPlus): ten annotators' votes per row of fer2013.csv, read row-aligned
with a FER2013 loaded from that CSV; the majority rules (ours and Microsoft's) and the soft targets."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.contract import LABELS
from train.data import SPLITS, DatasetError, Fer2013

FERPLUS_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF")
FERPLUS_EMOTIONS = {"anger": "angry", "disgust": "disgust", "fear": "fear", "happiness": "happy",
                    "sadness": "sad", "surprise": "surprise", "neutral": "neutral"}  # FER+ column -> our label
FERPLUS_FILE = "fer2013new.csv"
CONTEMPT = len(LABELS)  # the 8th class of Microsoft's FER+ protocol


@dataclass(frozen=True)
class FerPlusVotes:
    """Votes for the canonical 7 classes, and for contempt, unknown and not-a-face, one row per image.

    Contempt has no place among the runtime's 7 labels: its votes are left out of the soft target
    (the other emotions' votes are renormalised), and a face whose most-voted class is contempt,
    unknown or not-a-face has no 7-class majority."""

    emotions: np.ndarray  # (N, 7) float32, canonical order
    others: np.ndarray  # (N, 3) float32: contempt, unknown, NF

    def soft_targets(self) -> np.ndarray:
        """The vote distribution over the 7 classes (rows without an emotion vote are all zero)."""
        totals = self.emotions.sum(axis=1, keepdims=True)
        return np.divide(self.emotions, totals, out=np.zeros_like(self.emotions), where=totals > 0)

    def majority(self) -> np.ndarray:
        """The FER+ majority label, -1 where there is no clear 7-class majority: a tie for the most
        votes, or contempt, unknown or not-a-face holding the most."""
        everything = np.concatenate([self.emotions, self.others], axis=1)
        best = everything.max(axis=1)
        clear = ((everything == best[:, None]).sum(axis=1) == 1) & (best > 0)
        winner = everything.argmax(axis=1)
        return np.where(clear & (winner < len(LABELS)), winner, -1)

    def trainable(self) -> np.ndarray:
        """Rows that can train on soft targets: an emotion holds the most votes (ties between
        emotions allowed); rows whose majority is unknown, not-a-face or contempt are dropped."""
        return (self.emotions.sum(axis=1) > 0) & (self.emotions.max(axis=1) > self.others.max(axis=1))

    def microsoft_majority(self) -> np.ndarray:
        """The label under the FERPlus repository's own `majority` mode (what published FER+ figures use):
        votes of 1 are dropped as outliers, the top class must then hold more than half of the remaining
        votes, and faces whose top is unknown or not-a-face (or with no majority) are excluded (-1).
        Eight classes: 0-6 in canonical order, CONTEMPT (7) for contempt, which a 7-label model never says."""
        votes = np.concatenate([self.emotions, self.others], axis=1)  # 7 emotions, contempt, unknown, NF
        kept = np.where(votes > 1.0, votes, 0.0)
        top = kept.argmax(axis=1)
        has_majority = kept.max(axis=1) > 0.5 * kept.sum(axis=1)
        return np.where(has_majority & (top <= CONTEMPT), top, -1)

    def take(self, keep: np.ndarray) -> FerPlusVotes:
        return FerPlusVotes(self.emotions[keep], self.others[keep])


def ferplus_path_for(data: str | os.PathLike) -> Path:
    """Where FER+ votes are looked for by default: fer2013new.csv beside the FER2013 data."""
    data = Path(data)
    return (data if data.is_dir() else data.parent) / FERPLUS_FILE


def load_ferplus(path: str | os.PathLike, dataset: Fer2013) -> FerPlusVotes:
    """fer2013new.csv joined row by row with a FER2013 loaded from fer2013.csv; returns the votes of
    `dataset`'s images. Row count or Usage disagreeing is an error naming the row."""
    path = Path(path)
    if dataset.rows is None:
        raise DatasetError(
            f"{dataset.source}: FER+ votes are row-aligned with fer2013.csv; train on fer2013.csv "
            "(or the fer2013.tar.gz that holds it), not the image-folder release"
        )
    if not path.is_file():
        raise DatasetError(f"{path}: FER+ votes not found (fer2013new.csv from microsoft/FERPlus; give it with --ferplus)")
    with path.open(encoding="utf-8-sig", newline="") as stream:
        reader = csv.reader(stream)
        header = [c.strip() for c in next(reader, [])]
        missing = [c for c in ("Usage", *FERPLUS_COLUMNS) if c not in header]
        if missing:
            raise DatasetError(f"{path}: header lacks column(s) {', '.join(missing)}; is it FER+'s fer2013new.csv?")
        usage_at = header.index("Usage")
        vote_at = [header.index(c) for c in FERPLUS_COLUMNS]
        usages, votes = [], []
        for line, row in enumerate(reader, start=2):
            if not any(field.strip() for field in row):
                continue
            try:
                votes.append([float(row[i]) for i in vote_at])
            except (ValueError, IndexError):
                raise DatasetError(f"{path} row {line}: vote counts must be numbers in columns {', '.join(FERPLUS_COLUMNS)}") from None
            if min(votes[-1]) < 0:
                raise DatasetError(f"{path} row {line}: negative vote count")
            usages.append(row[usage_at].strip())
    if len(votes) != dataset.total_rows:
        raise DatasetError(f"{path}: {len(votes)} rows, but {dataset.source} has {dataset.total_rows}; the files are not row-aligned")
    for image_split, row in zip(dataset.splits, dataset.rows, strict=True):
        if usages[row] != SPLITS[image_split]:
            raise DatasetError(
                f"{path} row {row + 2}: Usage {usages[row]!r} but {dataset.source} row {row + 2} is {SPLITS[image_split]!r}; "
                "the files are not row-aligned"
            )
    table = np.asarray(votes, np.float32)[dataset.rows]
    order = [FERPLUS_COLUMNS.index(next(c for c, ours in FERPLUS_EMOTIONS.items() if ours == label)) for label in LABELS]
    return FerPlusVotes(emotions=table[:, order], others=table[:, 7:10])


def load_votes(dataset, data: str, ferplus: str | None, required: bool):
    """FER+ votes for reporting both label sets (and for training on them when `required`): from
    `ferplus`, else fer2013new.csv beside the data when the data is the CSV form."""
    path = Path(ferplus) if ferplus else ferplus_path_for(data)
    if not required and (dataset.rows is None or not path.is_file()):
        return None
    return load_ferplus(path, dataset)
