"""Ensembles: the weighted average of members' probabilities, and how its weights are chosen (a grid over the
simplex, or greedy selection), scored by macro-F1 at per-label tuned thresholds.

Fitting an ensemble of runs and writing it as a run of its own is `combine.ensemble`; loading one is `classifier`.
"""

from __future__ import annotations

import itertools
import math
from typing import Sequence

import numpy as np

from emotionlib.metrics import THRESHOLD_GRID

BASELINE = "tfidf_lr"  # the name of the baseline member


class EnsembleError(ValueError):
    """Members that cannot be combined (not trained, another split or other labels); the message names the run."""


def check_step(step: float) -> int:
    """The grid step of the member weights must be 1/k for a whole k from 1 to 100; returns k."""
    k = round(1 / step) if math.isfinite(step) and 0 < step <= 1 else 0
    if not 1 <= k <= 100 or not math.isclose(k * step, 1, rel_tol=1e-6):
        raise EnsembleError(f"--step {step!r}: must be 1/k for a whole k from 1 to 100 (e.g. 0.1, 0.05, 0.25)")
    return k


def best_f1_per_label(
    y: np.ndarray, probs: np.ndarray, mask: np.ndarray, grid: Sequence[float] = THRESHOLD_GRID
) -> np.ndarray:
    """For each label, the F1 at its best grid threshold over the rows that have the label (vectorised)."""
    grid = np.asarray(grid)
    out = np.full(y.shape[1], np.nan)
    for j in range(y.shape[1]):
        rows = mask[:, j] > 0
        if not rows.any():
            continue
        t, pred = y[rows, j][:, None] > 0, probs[rows, j][:, None] >= grid[None, :]
        tp = (pred & t).sum(0)
        f1 = 2 * tp / np.maximum(pred.sum(0) + t.sum(0), 1)
        out[j] = f1.max()
    return out


def weight_candidates(m: int, step: float) -> np.ndarray:
    """Every weight vector on the simplex with coordinates in multiples of `step` (a member may get 0)."""
    n = int(round(1 / step))
    rows = [c for c in itertools.product(range(n + 1), repeat=m) if sum(c) == n]
    return np.asarray(rows, dtype=float) / n


def fit_weights(member_probs: list[np.ndarray], y: np.ndarray, mask: np.ndarray, step: float = 0.1) -> np.ndarray:
    """The weights whose averaged probabilities give the best validation macro-F1 at per-label tuned thresholds.
    Ties go to the weights nearest equal weighting (the least fitted choice)."""
    m = len(member_probs)
    if m == 1:
        return np.ones(1)
    stacked = np.stack(member_probs)  # (m, n, C)
    if m > 5:  # the simplex grid grows too large: greedy selection with replacement (Caruana et al., 2004)
        return _greedy_weights(stacked, y, mask, int(round(1 / step)))
    cands = weight_candidates(m, step)
    scores = np.array([np.nanmean(best_f1_per_label(y, np.tensordot(w, stacked, 1), mask)) for w in cands])
    best = np.flatnonzero(np.isclose(scores, scores.max(), atol=1e-12))
    uniform = np.full(m, 1 / m)
    return cands[best[np.argmin(np.abs(cands[best] - uniform).sum(1))]]


def _greedy_weights(stacked: np.ndarray, y: np.ndarray, mask: np.ndarray, picks: int) -> np.ndarray:
    """Add, `picks` times, the member whose addition to the running average scores best; weights = counts."""
    counts = np.zeros(len(stacked))
    for _ in range(picks):
        trial = [
            np.nanmean(best_f1_per_label(y, (np.tensordot(counts, stacked, 1) + stacked[i]) / (counts.sum() + 1), mask))
            for i in range(len(stacked))
        ]
        counts[int(np.argmax(trial))] += 1
    return counts / counts.sum()


class Combined:
    """What a model made of other predictors answers where code expects a torch network: its labels, and modes
    that change nothing (it has no layers of its own to switch)."""

    training = False
    labels: list[str]

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    def eval(self):
        return self

    def train(self, mode: bool = True):
        return self


class Ensemble(Combined):
    """The weighted average of the members' probabilities (the model `classifier.load_run` gives an ensemble)."""

    is_ensemble = True

    def __init__(self, meta: dict, members: Sequence, weights: Sequence[float]):
        """`members`: loaded predictors (each with `predict_proba(texts)`), in the order of `meta["members"]`."""
        self.meta, self.labels = meta, meta["labels"]
        self.members, self.weights = list(members), list(weights)

    def predict_proba(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        for member, w in zip(self.members, self.weights):
            if w > 0:
                p = (
                    member.predict_proba(texts)
                    if not hasattr(member, "model")
                    else member.predict_proba(texts, batch_size, progress)
                )
                out += w * p
        return out

    def top_member(self):
        """The transformer member with the largest weight (the one the interpretability views show)."""
        pairs = [(w, m) for w, m in zip(self.weights, self.members) if hasattr(m, "model")]
        return max(pairs, key=lambda p: p[0])[1]
