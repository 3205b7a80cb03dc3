"""convert/evaluate.py's gate and the metrics convert reports with, on made-up figures; no TensorFlow."""

import numpy as np

from convert.evaluate import classification_metrics, gate


def test_gate_fails_a_degraded_model():
    def report(float_accuracy, int8_accuracy):
        return {"results": {"keras": {"PrivateTest": {"accuracy": float_accuracy}}, "int8": {"PrivateTest": {"accuracy": int8_accuracy}}}}

    assert gate(report(0.66, 0.657), max_drop=0.5, min_accuracy=65.0) == []
    failures = gate(report(0.66, 0.64), max_drop=1.0, min_accuracy=None)
    assert len(failures) == 1 and "2.00 points below float" in failures[0]
    assert "below --min-accuracy 66" in gate(report(0.66, 0.659), max_drop=1.0, min_accuracy=66.0)[0]
    balanced = report(0.66, 0.66)
    balanced["results"]["int8"]["PrivateTest"]["balanced_accuracy"] = 0.55
    assert gate(balanced, max_drop=1.0, min_accuracy=None, min_balanced_accuracy=55.0) == []
    (failure,) = gate(balanced, max_drop=1.0, min_accuracy=None, min_balanced_accuracy=60.0)
    assert "balanced accuracy 55.00%" in failure and "below --min-balanced-accuracy 60" in failure


def test_metrics_on_a_known_confusion():
    labels = np.array([0, 0, 1, 1, 1, 2])
    predicted = np.array([0, 1, 1, 1, 0, 2])
    metrics = classification_metrics(labels, predicted, names=("a", "b", "c"))
    assert metrics["accuracy"] == round(4 / 6, 4)
    assert metrics["confusion_matrix"] == [[1, 1, 0], [1, 2, 0], [0, 0, 1]]
    assert metrics["per_class"]["b"] == {"precision": round(2 / 3, 4), "recall": round(2 / 3, 4), "f1": round(2 / 3, 4), "support": 3}
    assert metrics["macro_f1"] == round((0.5 + 2 / 3 + 1) / 3, 4)
