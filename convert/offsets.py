"""The class-prior correction's tau, chosen on PublicTest, and per-class log-score offsets on top of it, fitted
there too (convert --class-offsets).

One tau moves every class by its training share; rare classes the model confuses (fear with surprise,
disgust with angry) gain more from their own offset. Plain functions on score arrays, no TensorFlow.
"""

from __future__ import annotations

import numpy as np

from convert.config import ConvertConfig
from convert.labelsets import headline, judged_truth, metrics_of
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


BALANCE_GRID = tuple(round(0.05 * step, 2) for step in range(21))  # the taus measured on PublicTest


def choose_balance(int8_scores: dict, splits: dict, label_set: str, prior: np.ndarray, config: ConvertConfig) -> dict:
    """The class-prior correction tau and how it was chosen. Every tau of BALANCE_GRID is measured on the int8
    model's PublicTest scores (with the sidecar's flip setting) against the label set it is judged by; unless
    --balance names one, the tau kept is the one with the best balanced accuracy whose accuracy is at most
    --balance-max-cost points below tau 0's (or, with --balance-min-accuracy, at least that). PrivateTest plays no part."""
    scores = int8_scores["PublicTest"][config.flip_tta]
    sweep = [{"tau": tau, **headline(metrics_of(contract.balance_scores(scores, prior, tau), splits["PublicTest"], label_set))}
             for tau in BALANCE_GRID]
    floor = accuracy_floor(sweep[0]["accuracy"], config)
    if config.balance is not None:
        tau, how = config.balance, "--balance"
    else:
        if config.balance_min_accuracy is not None:
            how = f"PublicTest: best balanced accuracy with accuracy of at least {config.balance_min_accuracy:g}%"
        else:
            how = f"PublicTest: best balanced accuracy within {config.balance_max_cost:g} accuracy points of tau 0"
        best = rule_choice(sweep, floor)
        tau = best["tau"] if best else 0.0
        if best is None:
            how += f" (none reached it: tau 0, {sweep[0]['accuracy']:.2%})"
    return {"tau": float(tau), "chosen_by": how, "class_prior": dict(zip(contract.LABELS, (round(float(v), 6) for v in prior), strict=True)),
            "accuracy_floor": round(float(floor), 6), "sweep_publictest": sweep}


def accuracy_floor(accuracy_at_tau_0: float, config: ConvertConfig) -> float:
    """The lowest PublicTest accuracy a correction may leave: --balance-min-accuracy, else tau 0's less --balance-max-cost."""
    if config.balance_min_accuracy is not None:
        return config.balance_min_accuracy / 100
    return accuracy_at_tau_0 - config.balance_max_cost / 100


def fit_offsets(int8_scores: dict, splits: dict, label_set: str, prior: np.ndarray, balance: dict, config: ConvertConfig):
    """--class-offsets: per-class offsets fitted on the int8 PublicTest scores at the chosen tau and floor, recorded
    in `balance` with a cross-validation inside PublicTest of what they add; None (and a note) at tau 0. Their
    in-sample PublicTest figure is the report's int8 PublicTest result, added to `balance` once it is measured."""
    if not balance["tau"]:
        balance["class_offsets_note"] = "not fitted: tau is 0 (scores as trained), and offsets are fitted at a tau"
        return None
    truth, counted = judged_truth(splits["PublicTest"], label_set)
    scores, truth = int8_scores["PublicTest"][config.flip_tta][counted], truth[counted]
    offsets = fit_class_offsets(scores, truth, prior, balance["tau"], balance["accuracy_floor"])
    balance["class_offsets"] = dict(zip(contract.LABELS, (float(v) for v in offsets), strict=True))
    balance["class_offsets_cross_validated"] = cross_validate(scores, truth, prior, balance["accuracy_floor"], BALANCE_GRID,
                                                              **CROSS_VALIDATION)
    return offsets
