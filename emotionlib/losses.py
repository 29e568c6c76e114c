"""Seed section 2.3: BCE with logits (default) or focal loss, averaged over the labels each row's language has."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return values.mean()
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


def bce_loss(logits, targets, mask=None, pos_weight=None) -> torch.Tensor:
    per = F.binary_cross_entropy_with_logits(logits, targets, pos_weight=pos_weight, reduction="none")
    return masked_mean(per, mask)


def focal_loss(logits, targets, mask=None, alpha: float = 1.0, gamma: float = 2.0, pos_weight=None) -> torch.Tensor:
    """-alpha (1 - p_t)^gamma log(p_t) per label (Lin et al., 2017, as the seed writes it: alpha a scalar weight)."""
    bce = F.binary_cross_entropy_with_logits(logits, targets, pos_weight=pos_weight, reduction="none")
    p = torch.sigmoid(logits)
    p_t = p * targets + (1 - p) * (1 - targets)
    return masked_mean(alpha * (1 - p_t).pow(gamma) * bce, mask)


def positive_weights(y: np.ndarray, mask: np.ndarray, cap: float = 100.0) -> torch.Tensor:
    """negatives / positives per label over the rows where the label exists, capped for rare labels."""
    pos = (y * mask).sum(axis=0)
    neg = ((1 - y) * mask).sum(axis=0)
    ratio = np.where(pos > 0, neg / np.maximum(pos, 1.0), 1.0)  # no positives: nothing to up-weight
    return torch.tensor(np.clip(ratio, 1.0, cap), dtype=torch.float32)


def make_loss(name: str, alpha: float = 1.0, gamma: float = 2.0, pos_weight: torch.Tensor | None = None):
    """The loss the config names, as loss(logits, targets, mask)."""
    if name == "bce":
        return lambda logits, y, mask=None: bce_loss(logits, y, mask, _on(pos_weight, logits))
    if name == "focal":
        return lambda logits, y, mask=None: focal_loss(logits, y, mask, alpha, gamma, _on(pos_weight, logits))
    raise ValueError(f"unknown loss {name!r}; use 'bce' or 'focal'")


def _on(weight, like):
    return None if weight is None else weight.to(device=like.device, dtype=like.dtype)
