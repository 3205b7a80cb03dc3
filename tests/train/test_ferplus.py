"""The FER+ majority rules (issue 18): ours (most votes, 7 classes) and Microsoft's own (the FERPlus repository's
`majority` mode), on made-up vote rows. No TensorFlow needed."""

import numpy as np
import pytest

from edge.contract import LABELS
from train.ferplus import CONTEMPT, FerPlusVotes
from train.splits import Split, training_class_prior


def votes(*rows: dict) -> FerPlusVotes:
    """Rows of {class: votes}; classes are our 7 labels plus contempt, unknown and NF."""
    emotions = np.zeros((len(rows), 7), np.float32)
    others = np.zeros((len(rows), 3), np.float32)
    for i, row in enumerate(rows):
        for name, count in row.items():
            if name in LABELS:
                emotions[i, LABELS.index(name)] = count
            else:
                others[i, ("contempt", "unknown", "NF").index(name)] = count
    return FerPlusVotes(emotions, others)


def test_microsofts_majority_drops_single_votes_before_asking_for_more_than_half():
    table = votes(
        {"happy": 5, "sad": 4, "angry": 1},  # 5 of 10 is no majority, but the single vote goes: 5 of 9 is
        {"happy": 4, "sad": 2, "fear": 2},  # exactly half: not a majority
        {"unknown": 6, "happy": 4},  # unknown on top: excluded
        {"contempt": 6, "neutral": 4},  # contempt kept, as the 8th class
        {"NF": 7, "surprise": 3},  # not a face: excluded
        {name: 1 for name in (*LABELS, "contempt", "unknown", "NF")},  # only single votes: nothing left
        {"neutral": 10},
    )
    assert table.microsoft_majority().tolist() == [LABELS.index("happy"), -1, -1, CONTEMPT, -1, -1, LABELS.index("neutral")]
    assert CONTEMPT == 7


def test_our_majority_takes_the_most_votes_and_leaves_out_ties_and_non_emotions():
    table = votes({"happy": 5, "sad": 4, "angry": 1}, {"happy": 4, "sad": 4, "fear": 2}, {"contempt": 6, "neutral": 4})
    assert table.majority().tolist() == [LABELS.index("happy"), -1, -1]


def test_the_training_prior_is_the_mean_vote_distribution_of_the_faces_trained_on():
    table = votes({"happy": 10}, {"happy": 5, "sad": 5}, {"unknown": 9, "happy": 1})  # the third is not trained on
    split = Split(np.zeros((3, 48, 48), np.uint8), np.array([3, 3, 4]), table)
    prior = training_class_prior(split, "ferplus")
    assert prior.sum() == pytest.approx(1.0)
    # (10 + 5) / 2 happy votes of the two faces trained on; disgust etc. keep a tiny floor
    assert prior[LABELS.index("happy")] == pytest.approx(0.75, abs=1e-4)
    fer2013 = training_class_prior(split, "fer2013")
    assert fer2013[3] == pytest.approx(2 / 3, abs=1e-4) and fer2013[4] == pytest.approx(1 / 3, abs=1e-4)
