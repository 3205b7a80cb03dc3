"""Per-class log-score offsets on top of the class-prior correction, fitted on PublicTest (convert --class-offsets).

One tau moves every class by its training share; rare classes the model confuses (fear with surprise,
disgust with angry) gain more from their own offset. Plain functions on score arrays, no TensorFlow.
"""

from __future__ import annotations

import numpy as np

from edge import contract
from edge.metrics import balanced_accuracy

OFFSET_STEPS = tuple(round(0.05 * step, 2) for step in range(-20, 21))  # tried for each class in turn
OFFSET_ROUNDS = 4  # passes over the classes (each moves a class by at most 1): |offset| stays under CLASS_OFFSET_MAX
CROSS_VALIDATION = {"folds": 2, "repeats": 5, "seed": 0}  # held-out halves of PublicTest: how much of the gain is real


def corrected_log_scores(scores: np.ndarray, prior, tau: float) -> np.ndarray:
    """log p - tau x log prior: the class-prior correction as log-scores (the argmax is the label)."""
    return np.log(np.clip(np.asarray(scores, np.float64), 1e-12, 1.0)) - float(tau) * np.log(np.asarray(prior, np.float64))


def accuracy_pair(log_scores: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(accuracy, balanced accuracy) of the argmax of `log_scores`."""
    predicted = log_scores.argmax(axis=1)
    return float(np.mean(predicted == truth)), balanced_accuracy(truth, predicted)


def rule_choice(rows: list[dict], floor: float) -> dict | None:
    """Of rows {"tau", "accuracy", "balanced_accuracy", ...}: the one with the best balanced accuracy whose accuracy
    is at least `floor` (the smaller tau on a tie); None when none reaches it. The rule convert chooses tau by."""
    allowed = [row for row in rows if row["accuracy"] >= floor - 1e-9]
    return max(allowed, key=lambda row: (row["balanced_accuracy"], -row["tau"])) if allowed else None


def best_tau(scores: np.ndarray, truth: np.ndarray, prior, floor: float, grid) -> float:
    """rule_choice's tau over `grid` on plain arrays; 0 when none reaches the floor."""
    rows = [dict(zip(("tau", "accuracy", "balanced_accuracy"), (tau, *accuracy_pair(corrected_log_scores(scores, prior, tau), truth)),
                     strict=True)) for tau in grid]
    best = rule_choice(rows, floor)
    return best["tau"] if best else 0.0


def fit_class_offsets(scores: np.ndarray, truth: np.ndarray, prior, tau: float, floor: float,
                      rounds: int = OFFSET_ROUNDS) -> np.ndarray:
    """Offsets (one per class, mean 0) added to the tau-corrected log-scores: coordinate ascent over
    OFFSET_STEPS, class by class, `rounds` times; a move is kept when balanced accuracy rises and accuracy stays
    at least `floor`. It starts at 0 (tau alone), so on the faces it is fitted on it never does worse than tau.
    Rounded to 4 decimals, as the sidecar records them."""
    log_scores = corrected_log_scores(scores, prior, tau)
    offsets = np.zeros(log_scores.shape[1])
    _, best = accuracy_pair(log_scores, truth)
    for _ in range(rounds):
        moved = False
        for label in range(len(offsets)):
            for step in OFFSET_STEPS:
                if not step:
                    continue
                trial = offsets.copy()
                trial[label] += step
                accuracy, balanced = accuracy_pair(log_scores + trial, truth)
                if accuracy >= floor - 1e-9 and balanced > best + 1e-9:
                    offsets, best, moved = trial, balanced, True
        if not moved:
            break
    centred = np.round(offsets - offsets.mean(), 4)  # only the differences between classes matter
    return np.clip(centred, -contract.CLASS_OFFSET_MAX, contract.CLASS_OFFSET_MAX)


def cross_validate(scores: np.ndarray, truth: np.ndarray, prior, floor: float, grid, folds: int = 2, repeats: int = 5,
                   seed: int = 0) -> dict:
    """Fit tau alone, and tau then offsets, on part of the faces and measure both on the rest: {"tau": {...},
    "tau_and_offsets": {...}} with the mean held-out accuracy and balanced accuracy. In-sample figures of a
    7-number fit flatter it; these do not."""
    rng = np.random.default_rng(seed)
    held_out = {"tau": [], "tau_and_offsets": []}
    for _ in range(repeats):
        parts = np.array_split(rng.permutation(len(truth)), folds)
        for index, test in enumerate(parts):
            fit = np.concatenate([part for other, part in enumerate(parts) if other != index])
            tau = best_tau(scores[fit], truth[fit], prior, floor, grid)
            offsets = fit_class_offsets(scores[fit], truth[fit], prior, tau, floor)
            log_scores = corrected_log_scores(scores[test], prior, tau)
            held_out["tau"].append(accuracy_pair(log_scores, truth[test]))
            held_out["tau_and_offsets"].append(accuracy_pair(log_scores + offsets, truth[test]))
    summary = {name: {"accuracy": round(float(np.mean([r[0] for r in rows])), 4),
                      "balanced_accuracy": round(float(np.mean([r[1] for r in rows])), 4)} for name, rows in held_out.items()}
    return {**summary, "folds": folds, "repeats": repeats, "seed": seed}
