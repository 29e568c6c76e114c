"""Seed section 2.3: BCE with logits (default) or focal loss, averaged over the labels each row's language has."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def masked_mean(values: torch.Tensor, mask: torch.Tensor | None, label_weights: torch.Tensor | None = None):
    """Mean over the (row, label) cells that exist; `label_weights` (mean 1) scales each label's cells."""
    if label_weights is not None:
        values = values * label_weights
    if mask is None:
        return values.mean()
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


def bce_loss(logits, targets, mask=None, pos_weight=None, label_weights=None) -> torch.Tensor:
    per = F.binary_cross_entropy_with_logits(logits, targets, pos_weight=pos_weight, reduction="none")
    return masked_mean(per, mask, label_weights)


def focal_loss(
    logits, targets, mask=None, alpha: float = 1.0, gamma: float = 2.0, pos_weight=None, label_weights=None
) -> torch.Tensor:
    """-alpha (1 - p_t)^gamma log(p_t) per label (Lin et al., 2017, as the seed writes it: alpha a scalar weight)."""
    bce = F.binary_cross_entropy_with_logits(logits, targets, pos_weight=pos_weight, reduction="none")
    p = torch.sigmoid(logits)
    p_t = p * targets + (1 - p) * (1 - targets)
    return masked_mean(alpha * (1 - p_t).pow(gamma) * bce, mask, label_weights)


def _mean_one(w: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Scale the weights of the labels present to mean 1; absent labels keep weight 1 (their cells are masked)."""
    out = np.ones(len(w))
    if present.any():
        out[present] = w[present] / w[present].mean()
    return out


def class_balanced_weights(y: np.ndarray, mask: np.ndarray, beta: float = 0.999) -> np.ndarray:
    """Per-label weights (1 - beta) / (1 - beta^n) from each label's number of positives n (Cui et al., 2019:
    the "effective number" of samples), scaled to mean 1: rare labels weigh more, saturating as beta -> 0."""
    n = (np.asarray(y) * np.asarray(mask)).sum(axis=0)
    present = np.asarray(mask).astype(bool).any(axis=0) & (n > 0)
    w = np.where(present, (1 - beta) / (1 - np.power(beta, np.maximum(n, 1))), 1.0)
    return _mean_one(w, present)


def difficulty_weights(f1: np.ndarray, present: np.ndarray, tau: float = 1.0, eps: float = 0.05) -> np.ndarray:
    """Per-label weights (1 - F1 + eps)^tau from validation F1 (Sinha et al., 2020, class-wise difficulty), mean 1:
    the labels the model gets wrong most weigh most in the next epoch; eps keeps a solved label in the loss."""
    w = np.power(np.clip(1.0 - np.asarray(f1, dtype=float), 0.0, 1.0) + eps, tau)
    return _mean_one(w, np.asarray(present, dtype=bool))


def positive_weights(y: np.ndarray, mask: np.ndarray, cap: float = 100.0) -> torch.Tensor:
    """negatives / positives per label over the rows where the label exists, capped for rare labels."""
    pos = (y * mask).sum(axis=0)
    neg = ((1 - y) * mask).sum(axis=0)
    ratio = np.where(pos > 0, neg / np.maximum(pos, 1.0), 1.0)  # no positives: nothing to up-weight
    return torch.tensor(np.clip(ratio, 1.0, cap), dtype=torch.float32)


def make_loss(
    name: str,
    alpha: float = 1.0,
    gamma: float = 2.0,
    pos_weight: torch.Tensor | None = None,
    label_weights: torch.Tensor | None = None,
):
    """The loss the config names, as loss(logits, targets, mask). `label_weights` is read at every call, so a
    dynamic scheme updates it in place between epochs."""
    if name == "bce":
        return lambda logits, y, mask=None: bce_loss(
            logits, y, mask, _on(pos_weight, logits), _on(label_weights, logits)
        )
    if name == "focal":
        return lambda logits, y, mask=None: focal_loss(
            logits, y, mask, alpha, gamma, _on(pos_weight, logits), _on(label_weights, logits)
        )
    raise ValueError(f"unknown loss {name!r}; use 'bce' or 'focal'")


def _on(weight, like):
    return None if weight is None else weight.to(device=like.device, dtype=like.dtype)
