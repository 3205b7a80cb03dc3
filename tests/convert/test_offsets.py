"""Tau chosen on PublicTest, and per-class offsets fitted there (convert --class-offsets): the fit, its floor, its
held-out check. Made-up score arrays whose answers follow from the definitions; no TensorFlow."""

from dataclasses import replace

import numpy as np
import pytest

from convert.config import ConvertConfig
from convert.offsets import (
    OFFSET_STEPS,
    accuracy_pair,
    best_tau,
    corrected_log_scores,
    cross_validate,
    fit_class_offsets,
)
from edge import contract

UNIFORM = np.full(7, 1 / 7)
GRID = tuple(round(0.05 * step, 2) for step in range(21))


def confused_fear_faces():
    """40 surprise faces (class 5) called surprise, 10 fear faces (class 2) that the model also calls surprise,
    with fear second: fear's recall is 0 until fear's offset beats the gap; 8 of the surprise faces have fear
    a close second, so a large fear offset costs surprise faces."""
    scores = np.full((50, 7), 0.01)
    scores[:40, 5], scores[:40, 2] = 0.8, 0.05
    scores[32:40, 2] = 0.6  # surprise faces where fear comes close: a big fear offset takes them
    scores[40:, 5], scores[40:, 2] = 0.7, 0.4  # fear faces: gap log(0.7/0.4) = 0.56
    truth = np.r_[np.full(40, 5), np.full(10, 2)]
    return scores / scores.sum(axis=1, keepdims=True), truth


def test_an_offset_lifts_a_confused_class_as_far_as_the_accuracy_floor_allows():
    scores, truth = confused_fear_faces()
    log_scores = corrected_log_scores(scores, UNIFORM, 0.5)
    assert accuracy_pair(log_scores, truth) == (0.8, 0.5)  # the 10 fear faces are all called surprise
    offsets = fit_class_offsets(scores, truth, UNIFORM, tau=0.5, floor=0.8)
    # fear over surprise by more than log(0.7/0.4): 10 fear faces gained, the 8 close surprise faces lost
    assert accuracy_pair(log_scores + offsets, truth) == (0.84, 0.9)
    assert offsets[2] - offsets[5] > np.log(0.7 / 0.4)
    assert offsets.sum() == pytest.approx(0.0, abs=1e-3) and np.all(np.abs(offsets) <= contract.CLASS_OFFSET_MAX)
    assert np.array_equal(fit_class_offsets(scores, truth, UNIFORM, 0.5, floor=0.0), offsets)  # the best there is


def test_the_floor_keeps_what_the_offsets_may_cost():
    scores, truth = confused_fear_faces()
    held = fit_class_offsets(scores, truth, UNIFORM, 0.5, floor=0.85)  # the gain costs 8 faces: 42 of 50 is below
    assert np.array_equal(held, np.zeros(7))
    fewer_close = scores.copy()
    fewer_close[36:40, 2] = 0.05  # 4 close surprise faces: the gain costs 4, 46 of 50 reaches the floor
    fewer_close /= fewer_close.sum(axis=1, keepdims=True)
    offsets = fit_class_offsets(fewer_close, truth, UNIFORM, 0.5, floor=0.85)
    assert accuracy_pair(corrected_log_scores(fewer_close, UNIFORM, 0.5) + offsets, truth) == (0.92, 0.95)


def test_on_the_faces_it_is_fitted_on_the_fit_never_does_worse_than_tau_alone():
    rng = np.random.default_rng(7)
    for _ in range(5):
        scores = rng.dirichlet(np.full(7, 0.5), 300)
        truth = np.where(rng.random(300) < 0.6, scores.argmax(axis=1), rng.integers(0, 7, 300))
        prior = rng.dirichlet(np.full(7, 2.0))
        base = accuracy_pair(corrected_log_scores(scores, prior, 0.4), truth)
        offsets = fit_class_offsets(scores, truth, prior, 0.4, floor=base[0] - 0.02)
        accuracy, balanced = accuracy_pair(corrected_log_scores(scores, prior, 0.4) + offsets, truth)
        assert balanced >= base[1] and accuracy >= base[0] - 0.02 - 1e-9


def test_best_tau_is_convert_s_rule_on_plain_arrays():
    scores, truth = confused_fear_faces()
    prior = np.array([0.1, 0.05, 0.02, 0.3, 0.1, 0.33, 0.1])  # fear rare, surprise common: tau lifts fear
    measured = {tau: accuracy_pair(corrected_log_scores(scores, prior, tau), truth) for tau in GRID}
    floor = 0.8
    allowed = [tau for tau in GRID if measured[tau][0] >= floor]
    assert best_tau(scores, truth, prior, floor, GRID) == max(allowed, key=lambda tau: (measured[tau][1], -tau)) == 0.2
    assert best_tau(scores, truth, prior, 1.01, GRID) == 0.0  # none reaches the floor


def test_cross_validation_measures_both_on_faces_they_were_not_fitted_on():
    rng = np.random.default_rng(3)
    scores = rng.dirichlet(np.full(7, 0.5), 400)
    truth = np.where(rng.random(400) < 0.7, scores.argmax(axis=1), rng.integers(0, 7, 400))
    result = cross_validate(scores, truth, UNIFORM, 0.5, GRID, folds=2, repeats=3, seed=1)
    assert result == cross_validate(scores, truth, UNIFORM, 0.5, GRID, folds=2, repeats=3, seed=1)  # seeded
    assert set(result) == {"tau", "tau_and_offsets", "folds", "repeats", "seed"}
    # with a uniform prior, tau changes nothing: tau alone is the plain argmax on every held-out half
    assert result["tau"]["accuracy"] == pytest.approx(np.mean(scores.argmax(axis=1) == truth), abs=1e-4)
    # in-sample the offsets can only gain; held out they need not: here labels are noise beyond the argmax
    offsets = fit_class_offsets(scores, truth, UNIFORM, 0.0, 0.5)
    in_sample = accuracy_pair(np.log(scores) + offsets, truth)[1]
    assert result["tau_and_offsets"]["balanced_accuracy"] < in_sample


def test_the_steps_are_symmetric_and_bounded():
    assert OFFSET_STEPS[0] == -1.0 and OFFSET_STEPS[-1] == 1.0 and 0.0 in OFFSET_STEPS and len(OFFSET_STEPS) == 41


def test_tau_is_chosen_on_publictest_within_a_cost_or_above_a_fixed_floor():
    """Sixteen faces of class 0 (common in training) and four of class 1 (rare): a larger tau says class 1 more
    often, which gains rare faces and loses common ones; the expected tau is worked out from the same definitions."""
    from convert.offsets import choose_balance
    from train.splits import Split

    prior = np.array([0.6, 0.1, 0.05, 0.05, 0.05, 0.05, 0.1])
    rare_share = np.r_[np.linspace(0.15, 0.35, 4), np.linspace(0.05, 0.4, 16)]  # class 1's score; class 0 has the rest
    scores = np.zeros((20, 7), np.float32)
    scores[:, 1], scores[:, 0] = rare_share, 1 - rare_share
    labels = np.r_[np.ones(4, int), np.zeros(16, int)]
    splits = {"PublicTest": Split(np.zeros((20, 48, 48), np.uint8), labels)}
    int8 = {"PublicTest": {True: scores}}

    def accuracy_at(tau):
        predicted = contract.balance_scores(scores, prior, tau).argmax(axis=1)
        return np.mean(predicted == labels), np.mean([np.mean(predicted[labels == c] == c) for c in (0, 1)])

    config = ConvertConfig(data="x.csv")
    taus = np.round(np.arange(21) * 0.05, 2)
    by_cost = choose_balance(int8, splits, "fer2013", prior, replace(config, balance_max_cost=15.0))
    allowed = [tau for tau in taus if accuracy_at(tau)[0] >= accuracy_at(0.0)[0] - 0.15 - 1e-9]
    assert by_cost["tau"] == max(allowed, key=lambda tau: (accuracy_at(tau)[1], -tau)) == 0.35
    assert "within 15 accuracy points of tau 0" in by_cost["chosen_by"]
    by_floor = choose_balance(int8, splits, "fer2013", prior, replace(config, balance_min_accuracy=55.0))
    allowed = [tau for tau in taus if accuracy_at(tau)[0] >= 0.55 - 1e-9]
    assert by_floor["tau"] == max(allowed, key=lambda tau: (accuracy_at(tau)[1], -tau)) == 0.55
    assert by_floor["chosen_by"] == "PublicTest: best balanced accuracy with accuracy of at least 55%"
    out_of_reach = choose_balance(int8, splits, "fer2013", prior, replace(config, balance_min_accuracy=99.0))
    assert out_of_reach["tau"] == 0.0 and "none reached it" in out_of_reach["chosen_by"]
    assert [row["tau"] for row in by_cost["sweep_publictest"]] == [round(0.05 * step, 2) for step in range(21)]
