"""Checkpoints of a training run: one safetensors file (weights, optimiser tensors, RNG states) with the progress,
the optimiser's other fields and the scheduler as JSON in its metadata -- no pickles -- and resuming from it."""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from emotionlib.log import main_info
from emotionlib.runs import RunLayout, atomic_path, make_dir

log = logging.getLogger(__name__)


@dataclass
class Progress:
    epoch: int = 0  # the epoch in progress
    step_in_epoch: int = 0  # optimiser steps done in it
    global_step: int = 0
    loss_sum: float = 0.0
    best_f1: float = -1.0
    best_epoch: int = -1
    stale_epochs: int = 0
    done: bool = False
    label_weights: list | None = None  # loss_weighting: dynamic, the weights the next epoch trains with


CHECKPOINT = "checkpoint.safetensors"


def save_checkpoint(
    path: Path, model, optimizer, scheduler, progress: Progress, rng_states: torch.Tensor, ema: "Ema | None" = None
) -> None:
    """One safetensors file: weights, optimiser tensors, the weights' moving average (`ema_decay`) and
    per-process RNG states, with the progress, the optimiser's other fields and the scheduler as JSON in its
    metadata, so one rename replaces it whole."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if ema is not None:
        tensors |= {f"ema.{k}": v.detach().cpu().contiguous() for k, v in ema.shadow.items()}
    opt = optimizer.state_dict()
    opt_meta = {"param_groups": opt["param_groups"], "scalars": {}}
    for pid, state in opt["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"optim.{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                opt_meta["scalars"][f"{pid}.{key}"] = value
    tensors["rng"] = rng_states.contiguous()
    state = {
        "progress": progress.__dict__,
        "optimizer": opt_meta,
        "scheduler": scheduler.state_dict(),
        "ema_updates": ema.updates if ema is not None else None,
    }
    make_dir(path, "checkpoint")
    with atomic_path(path / CHECKPOINT) as tmp:
        save_file(tensors, tmp, metadata={"state": json.dumps(state)})


def checkpoint_state(path: Path) -> dict | None:
    """The JSON state of the checkpoint in `path`, or None if there is none."""
    if not (path / CHECKPOINT).is_file():
        return None
    with safe_open(path / CHECKPOINT, framework="pt") as f:
        return json.loads(f.metadata()["state"])


def load_checkpoint(path: Path, model, optimizer, scheduler, rank: int, ema: "Ema | None" = None) -> Progress:
    state = checkpoint_state(path)
    tensors = load_file(path / CHECKPOINT)
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    if ema is not None:
        for k in ema.shadow:
            ema.shadow[k].copy_(tensors[f"ema.{k}"])
        ema.updates = state["ema_updates"]
    opt_state: dict = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, pid, name = key.split(".", 2)
            opt_state.setdefault(int(pid), {})[name] = value
    for key, value in state["optimizer"]["scalars"].items():
        pid, name = key.split(".", 1)
        opt_state.setdefault(int(pid), {})[name] = value
    optimizer.load_state_dict({"state": opt_state, "param_groups": state["optimizer"]["param_groups"]})
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(tensors["rng"][rank].clone())
    return Progress(**state["progress"])


class Ema:
    """An exponential moving average of the trainable weights (`ema_decay`), updated after every optimiser step
    with the warm-up of min(decay, (1 + t) / (10 + t)) so that early steps do not pin it to the initial weights;
    `applied()` swaps it into the model for validation and saving."""

    def __init__(self, model, decay: float):
        self.decay, self.updates = decay, 0
        self.params = {k: p for k, p in model.named_parameters() if p.requires_grad}
        self.shadow = {k: p.detach().clone() for k, p in self.params.items()}

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(list(self.shadow.values()), [p.detach() for p in self.params.values()], 1 - decay)

    @torch.no_grad()
    def _swap(self) -> None:
        for k, p in self.params.items():
            live = p.detach().clone()
            p.copy_(self.shadow[k])
            self.shadow[k] = live

    @contextmanager
    def applied(self):
        self._swap()
        try:
            yield
        finally:
            self._swap()


# --- the loop ----------------------------------------------------------------------------------------------


def restore(layout: RunLayout, model, optimizer, scheduler, accelerator, ema: "Ema | None" = None) -> Progress:
    """Progress, weights, optimiser and RNG states from the run's checkpoint; a fresh start when there is none."""
    if checkpoint_state(layout.checkpoint) is None:
        main_info(log, accelerator, f"{layout.root}: no checkpoint to resume from; starting from the beginning")
        return Progress()
    progress = load_checkpoint(layout.checkpoint, model, optimizer, scheduler, accelerator.process_index, ema)
    main_info(log, accelerator, f"resuming {layout.root} at epoch {progress.epoch + 1}, step {progress.step_in_epoch}")
    if accelerator.is_main_process and layout.train_log.is_file():  # epochs after the checkpoint run again
        kept = [ln for ln in layout.train_log.read_text().splitlines() if json.loads(ln)["epoch"] <= progress.epoch]
        layout.train_log.write_text("".join(ln + "\n" for ln in kept))
    return progress
