"""Inference: probabilities for texts from a PyTorch model or an ONNX Runtime session, batched by length."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.profiler import record_function

from emotionlib.dataset import Collator

Forward = Callable[[torch.Tensor, torch.Tensor], np.ndarray]  # (input_ids, attention_mask) -> probabilities


def batched_proba(
    forward: Forward,
    tokenizer,
    texts: Sequence[str],
    num_labels: int,
    max_length: int = 128,
    batch_size: int = 64,
    sort_by_length: bool = True,
    progress: bool = False,
    desc: str = "predict",
) -> np.ndarray:
    """Probabilities (n, C) from any backend (or any per-text vector of width C). Texts are batched by length
    so that little padding is computed."""
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ValueError(f"batch size must be a positive integer (got {batch_size})")
    texts = list(texts)
    out = np.zeros((len(texts), num_labels), dtype=np.float32)
    if not texts:
        return out
    with record_function("predict:tokenise"):  # the labels name the phases in a profile (benchmarks/profile_phases.py)
        enc = tokenizer(texts, truncation=True, max_length=max_length)
    order = np.argsort([len(x) for x in enc["input_ids"]], kind="stable") if sort_by_length else np.arange(len(texts))
    collate = Collator(tokenizer.pad_token_id)
    for start in tqdm(range(0, len(texts), batch_size), desc=desc, disable=not progress, leave=False):
        rows = order[start : start + batch_size]
        with record_function("predict:collate"):
            batch = collate(
                [
                    {
                        "input_ids": enc["input_ids"][i],
                        "attention_mask": enc["attention_mask"][i],
                        "label_mask": np.zeros(0),
                    }
                    for i in rows
                ]
            )
        with record_function("predict:forward"):
            out[rows] = forward(batch["input_ids"], batch["attention_mask"])
    return out


def autocast(precision: str, device: torch.device):
    """bf16 autocast where a run was trained in bf16 (`mixed_precision`), so that it predicts as it trained."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def torch_forward(model, precision: str = "no", lang: str | None = None) -> Forward:
    """A PyTorch classifier as a Forward; a classifier with parts per language uses those of `lang` (none for
    a language it was not trained on, or no language)."""
    device = next(model.parameters()).device
    per_language = bool(getattr(model, "languages", None)) and lang is not None
    lang_id = int(model.language_ids([lang])[0]) if per_language else None

    @torch.inference_mode()
    def forward(input_ids, attention_mask):
        extra = {"lang_ids": torch.full((len(input_ids),), lang_id, device=device)} if per_language else {}
        with autocast(precision, device):
            logits = model(input_ids.to(device), attention_mask.to(device), **extra)
        return torch.sigmoid(logits.float()).cpu().numpy()

    return forward


def predict_proba(
    model,
    tokenizer,
    texts: Sequence[str],
    max_length: int = 128,
    batch_size: int = 64,
    sort_by_length: bool = True,
    progress: bool = False,
    precision: str = "no",
    langs: Sequence[str] | None = None,
) -> np.ndarray:
    """Sigmoid probabilities (n, C) of a PyTorch classifier, in eval mode (its mode is restored after), under
    bf16 autocast with `precision="bf16"`; an ensemble averages its members' (each with its own tokenizer).
    `langs`, each text's language, selects the parts per language of a classifier that has them (texts are then
    batched language by language)."""
    if getattr(model, "is_ensemble", False):
        return model.predict_proba(list(texts), batch_size, progress)
    texts = list(texts)
    if langs is not None and len(langs) != len(texts):
        raise ValueError(f"{len(langs)} languages for {len(texts)} texts")
    groups = {None: np.arange(len(texts))}
    if langs is not None and getattr(model, "languages", None):
        groups = {lang: np.flatnonzero(np.asarray(langs) == lang) for lang in dict.fromkeys(langs)}
    was_training = model.training
    model.eval()
    out = np.zeros((len(texts), model.num_labels), dtype=np.float32)
    try:
        for lang, rows in groups.items():
            out[rows] = batched_proba(
                torch_forward(model, precision, lang),
                tokenizer,
                [texts[i] for i in rows],
                model.num_labels,
                max_length,
                batch_size,
                sort_by_length,
                progress,
            )
        return out
    finally:
        model.train(was_training)


def decide(probs: np.ndarray, thresholds: Sequence[float] | float = 0.5) -> np.ndarray:
    return (probs >= np.asarray(thresholds)).astype(int)


class OnnxForward:
    """(input_ids, attention_mask) -> probabilities through onnxruntime on the CPU, with torch's thread count;
    with `profile_prefix`, onnxruntime's own profile of every kernel (`session.end_profiling()` writes it)."""

    def __init__(self, path: Path, threads: int | None = None, profile_prefix: str | None = None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or torch.get_num_threads()
        opts.log_severity_level = 3
        if profile_prefix:
            opts.enable_profiling, opts.profile_file_prefix = True, profile_prefix
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def __call__(self, input_ids, attention_mask) -> np.ndarray:
        feeds = {
            "input_ids": np.asarray(input_ids, dtype=np.int64),
            "attention_mask": np.asarray(attention_mask, dtype=np.int64),
        }
        return self.session.run(["probabilities"], feeds)[0]
