"""The optimiser and its schedule: AdamW with decoupled weight decay (none on biases and LayerNorm weights),
optional layer-wise learning-rate decay, warm-up then a linear, cosine or constant schedule."""

from __future__ import annotations

import math
import re

import torch
from torch.utils.data import DataLoader

from emotionlib.config import Config

LAYER = re.compile(r"\.layers?\.(\d+)\.")  # an encoder layer's parameters: ...encoder.layer.<i>. (BERT, XLM-R, MPNet)


def optimizer(model, cfg: Config) -> torch.optim.Optimizer:
    """AdamW over the trainable parameters: biases and LayerNorm weights not decayed, and with `layer_lr_decay`
    < 1 each encoder layer's learning rate that of the layer above times the decay (the embeddings lowest)."""
    groups: dict[tuple[float, float], list] = {}
    depth = encoder_depth(model)
    for name, p in model.named_parameters():
        if not p.requires_grad:  # frozen layers have no optimiser state
            continue
        lr = cfg.learning_rate * cfg.layer_lr_decay ** (depth + 1 - layer_of(name, depth))
        wd = 0.0 if p.ndim < 2 else cfg.weight_decay
        groups.setdefault((lr, wd), []).append(p)
    # the fused kernel does the whole update in one pass per tensor (CPU and CUDA): same maths, less time
    return torch.optim.AdamW(
        [{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in groups.items()],
        lr=cfg.learning_rate,
        fused=True,
    )


def encoder_depth(model) -> int:
    """The number of layers in the model's encoder stack (0 if it has none, e.g. a head alone)."""
    layers = {int(m.group(1)) for name, _ in model.named_parameters() if (m := LAYER.search(name))}
    return max(layers) + 1 if layers else 0


def layer_of(name: str, depth: int) -> int:
    """A parameter's height for layer-wise decay: 0 the embeddings, i + 1 encoder layer i, depth + 1 the head
    (and anything else above the layers)."""
    if (m := LAYER.search(name)) is not None:
        return int(m.group(1)) + 1
    return 0 if "embeddings" in name else depth + 1


def scheduler(optimizer, cfg: Config, total_steps: int):
    from transformers import (
        get_constant_schedule_with_warmup,
        get_cosine_schedule_with_warmup,
        get_linear_schedule_with_warmup,
    )

    warmup = int(cfg.warmup_ratio * total_steps)
    if cfg.lr_schedule == "linear":
        return get_linear_schedule_with_warmup(optimizer, warmup, total_steps)
    if cfg.lr_schedule == "cosine":
        return get_cosine_schedule_with_warmup(optimizer, warmup, total_steps)
    return get_constant_schedule_with_warmup(optimizer, warmup)


def optimisation(cfg: Config, model, train_ds, sampler, collate, processes: int):
    """(loader, AdamW, schedule) of a training run."""
    # its own generator: creating an iterator must not draw from the global RNG that dropout uses,
    # or a resumed epoch would see other dropout masks than the uninterrupted one
    train_dl = DataLoader(
        train_ds,
        batch_size=cfg.batch_size,
        sampler=sampler,
        collate_fn=collate,
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    adamw = optimizer(model, cfg)
    steps_per_epoch = math.ceil(len(train_ds) / cfg.batch_size / processes)
    return train_dl, adamw, scheduler(adamw, cfg, steps_per_epoch * cfg.epochs)
