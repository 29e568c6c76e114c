import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score

from emotionlib.metrics import bootstrap_ci, language_scores, scores, tune_thresholds

LABELS5 = ["anger", "fear", "joy", "sadness", "surprise"]


def test_hand_computed_case_with_empty_label_and_never_predicted_label():
    y = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0]])  # label 3 has no positives
    p = np.array([[1, 0, 0], [0, 0, 0], [0, 0, 0], [1, 0, 1]])  # label 2 never predicted; label 3 a false positive
    s = scores(y, p, ["a", "b", "c"])
    # a: TP1 FP1 FN1 -> P=R=F1=0.5; b: TP0 FN2 -> 0; c: FP1, no positives -> 0
    assert s["per_label"]["a"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2, "predicted": 2}
    assert s["per_label"]["b"]["f1"] == 0 and s["per_label"]["b"]["predicted"] == 0
    assert s["per_label"]["c"]["f1"] == 0 and s["per_label"]["c"]["support"] == 0
    assert s["macro_f1"] == pytest.approx(0.5 / 3)
    assert s["macro_precision"] == pytest.approx(0.5 / 3) and s["macro_recall"] == pytest.approx(0.5 / 3)
    assert s["micro_f1"] == pytest.approx(2 * 1 / (2 * 1 + 2 + 3))


def test_official_macro_f1_is_the_mean_of_per_label_f1_not_the_harmonic_mean():
    y = np.array([[1, 0], [1, 0], [0, 1], [0, 1]])
    p = np.array([[1, 1], [1, 1], [1, 1], [0, 1]])
    s = scores(y, p, ["x", "y"])
    f_x, f_y = 2 * 2 / (2 * 2 + 1), 2 * 2 / (2 * 2 + 2)
    assert s["macro_f1"] == pytest.approx((f_x + f_y) / 2)
    assert s["harmonic_mean_of_macro_pr"] != pytest.approx(s["macro_f1"])


def test_agrees_with_sklearn_on_random_five_label_data():
    rng = np.random.default_rng(3)
    y, p = rng.integers(0, 2, (200, 5)), rng.integers(0, 2, (200, 5))
    s = scores(y, p, LABELS5)
    assert s["macro_f1"] == pytest.approx(f1_score(y, p, average="macro", zero_division=0))
    assert s["macro_precision"] == pytest.approx(precision_score(y, p, average="macro", zero_division=0))
    assert s["macro_recall"] == pytest.approx(recall_score(y, p, average="macro", zero_division=0))
    assert list(s["per_label"]) == LABELS5


def test_language_scores_use_only_the_labels_a_language_has():
    labels = ["anger", "disgust", "fear", "joy", "sadness", "surprise"]
    y = np.zeros((4, 6), dtype=int)
    y[:, 3] = [1, 0, 1, 0]
    pred = y.copy()
    pred[:, 1] = 1  # predictions for disgust, which English does not have
    mask = np.ones((4, 6))
    mask[:, 1] = 0
    out = language_scores(y, pred, mask, ["eng"] * 4, labels)
    assert list(out["languages"]["eng"]["per_label"]) == ["anger", "fear", "joy", "sadness", "surprise"]
    assert out["languages"]["eng"]["macro_f1"] == pytest.approx(1 / 5)  # joy perfect, the rest have no positives


def test_threshold_tuning_finds_the_separating_threshold():
    probs = np.array([[0.1], [0.2], [0.3], [0.35], [0.9]])
    y = np.array([[0], [0], [1], [1], [1]])
    t = tune_thresholds(y, probs)
    assert 0.2 < t[0] <= 0.3
    assert f1_score(y[:, 0], probs[:, 0] >= t[0]) == 1.0


def test_bootstrap_interval_contains_the_estimate_and_is_seeded():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, (116, 5))
    p = np.where(rng.random((116, 5)) < 0.7, y, 1 - y)
    lo, hi = bootstrap_ci(y, p, n=300, seed=1)
    est = f1_score(y, p, average="macro")
    assert lo < est < hi and hi - lo < 0.3
    assert bootstrap_ci(y, p, n=300, seed=1) == (lo, hi)


def test_bootstrap_counts_give_sklearns_macro_f1_per_resample():
    from sklearn.metrics import f1_score

    from emotionlib.metrics import _macro_f1_rows

    rng = np.random.default_rng(3)
    y, p = (rng.random((300, 6)) < 0.2).astype(int), (rng.random((300, 6)) < 0.3).astype(int)
    y[:, 4], p[:, 5] = 0, 0  # a label never present, a label never predicted: zero_division=0 either way
    idx = rng.integers(0, 300, size=(40, 300))
    expected = [f1_score(y[i], p[i], average="macro", zero_division=0) for i in idx]
    assert np.allclose(_macro_f1_rows(y, p, idx), expected, atol=1e-12)
