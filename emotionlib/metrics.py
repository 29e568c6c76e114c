"""SemEval-2025 Task 11 Track A scoring: macro-F1 is the mean of per-label F1 over the labels a language has."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.metrics import f1_score, precision_recall_fscore_support

THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.025), 3)


def scores(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> dict:
    """Official macro-F1 plus macro-precision, macro-recall, micro-F1 and per-label figures.

    `harmonic_mean_of_macro_pr` is the seed's prose definition of "F1-macro"; it is not the official score.
    """
    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    if y_true.shape != y_pred.shape or y_true.shape[1] != len(labels):
        raise ValueError(f"shapes {y_true.shape} and {y_pred.shape} do not match {len(labels)} labels")
    p, r, f, support = precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0)
    mp, mr = float(np.mean(p)), float(np.mean(r))
    return {
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "macro_precision": mp,
        "macro_recall": mr,
        "micro_f1": float(f1_score(y_true, y_pred, average="micro", zero_division=0)),
        "harmonic_mean_of_macro_pr": 0.0 if mp + mr == 0 else 2 * mp * mr / (mp + mr),
        "n": int(len(y_true)),
        "per_label": {
            lab: {
                "precision": float(p[j]),
                "recall": float(r[j]),
                "f1": float(f[j]),
                "support": int(support[j]),
                "predicted": int(y_pred[:, j].sum()),
            }
            for j, lab in enumerate(labels)
        },
    }


def present(mask: np.ndarray) -> np.ndarray:
    """Columns whose label exists for these rows (a language's label set)."""
    return np.asarray(mask).astype(bool).all(axis=0)


def language_scores(y_true, y_pred, mask, langs: Sequence[str], labels: Sequence[str]) -> dict:
    """Scores per language over that language's labels, and their mean macro-F1."""
    langs = np.asarray(langs)
    out = {}
    for lang in dict.fromkeys(langs):
        rows = langs == lang
        cols = present(mask[rows])
        out[lang] = scores(y_true[rows][:, cols], y_pred[rows][:, cols], [lab for lab, c in zip(labels, cols) if c])
    return {"mean_macro_f1": float(np.mean([s["macro_f1"] for s in out.values()])), "languages": out}


def label_f1(y_true, y_pred, mask) -> np.ndarray:
    """F1 of each label over the rows that have it (all languages together); NaN for a label no row has."""
    y_true, y_pred, mask = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int), np.asarray(mask, dtype=bool)
    return np.array(
        [
            f1_score(y_true[mask[:, j], j], y_pred[mask[:, j], j], zero_division=0) if mask[:, j].any() else np.nan
            for j in range(y_true.shape[1])
        ]
    )


def tune_thresholds(y_true: np.ndarray, probs: np.ndarray, grid: Sequence[float] = THRESHOLD_GRID) -> np.ndarray:
    """Per label, the grid threshold with the best F1 (ties go to the one nearest 0.5), vectorised over the grid:
    the one threshold tuner of training, ensembles and stacks."""
    grid = np.asarray(grid)
    pred = np.asarray(probs)[:, :, None] >= grid[None, None, :]  # (n, C, T)
    t = (np.asarray(y_true) > 0)[:, :, None]
    f1 = 2 * (pred & t).sum(0) / np.maximum(pred.sum(0) + t.sum(0), 1)  # (C, T)
    best = np.isclose(f1, f1.max(1, keepdims=True))
    dist = np.where(best, np.abs(grid - 0.5)[None, :], np.inf)
    return grid[dist.argmin(1)].astype(float)


def bootstrap_ci(y_true, y_pred, n: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of macro-F1, resampling rows with replacement."""
    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    if n == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(y_true), size=(n, len(y_true)))
    stats = np.concatenate([_macro_f1_rows(y_true, y_pred, chunk) for chunk in np.array_split(idx, max(1, n // 100))])
    lo, hi = np.quantile(stats, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def paired_bootstrap_diff(
    y_true, pred_a, pred_b, n: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of macro-F1(b) - macro-F1(a) on the same rows, resampled together."""
    y_true, pred_a, pred_b = (np.asarray(v, dtype=int) for v in (y_true, pred_a, pred_b))
    idx = np.random.default_rng(seed).integers(0, len(y_true), size=(n, len(y_true)))
    stats = np.concatenate(
        [
            _macro_f1_rows(y_true, pred_b, chunk) - _macro_f1_rows(y_true, pred_a, chunk)
            for chunk in np.array_split(idx, max(1, n // 100))
        ]
    )
    lo, hi = np.quantile(stats, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def _macro_f1_rows(y_true: np.ndarray, y_pred: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """sklearn's macro-F1 (zero_division=0) of each resample idx[k], from counts: one pass instead of n calls."""
    tp = (y_true & y_pred)[idx].sum(axis=1)
    fp = ((1 - y_true) & y_pred)[idx].sum(axis=1)
    fn = (y_true & (1 - y_pred))[idx].sum(axis=1)
    denom = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denom, out=np.zeros(tp.shape, dtype=float), where=denom > 0)
    return f1.mean(axis=1)
