"""Batch inference: probabilities for texts, and SemEval submission files from a trained run."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from emotionlib.data import Collator, read_split


@torch.inference_mode()
def predict_proba(model, tokenizer, texts: Sequence[str], max_length: int = 128, batch_size: int = 64,
                  sort_by_length: bool = True, progress: bool = False) -> np.ndarray:
    """Sigmoid probabilities (n, C). Texts are batched by length so that little padding is computed."""
    from tqdm.auto import tqdm

    texts = list(texts)
    if not texts:
        return np.zeros((0, model.head.out_features), dtype=np.float32)
    enc = tokenizer(texts, truncation=True, max_length=max_length)
    order = np.argsort([len(x) for x in enc["input_ids"]], kind="stable") if sort_by_length else np.arange(len(texts))
    collate = Collator(tokenizer.pad_token_id)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = np.zeros((len(texts), model.head.out_features), dtype=np.float32)
    starts = range(0, len(texts), batch_size)
    for start in tqdm(starts, desc="predict", disable=not progress, leave=False):
        rows = order[start:start + batch_size]
        batch = collate([{"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
                          "label_mask": np.zeros(0)} for i in rows])
        logits = model(batch["input_ids"].to(device), batch["attention_mask"].to(device))
        out[rows] = torch.sigmoid(logits.float()).cpu().numpy()
    model.train(was_training)
    return out


def decide(probs: np.ndarray, thresholds: Sequence[float] | float = 0.5) -> np.ndarray:
    return (probs >= np.asarray(thresholds)).astype(int)


def predict_file(run_dir: Path, input_csv: Path, output_csv: Path, batch_size: int = 64) -> Path:
    """Write SemEval Track A submission format: id plus one 0/1 column per label of the model."""
    import csv

    from emotionlib.model import load_model
    from emotionlib.runs import atomic_path

    model, tokenizer, meta = load_model(Path(run_dir) / "model")
    data = read_split(input_csv, lang=_lang_of(input_csv, meta))
    probs = predict_proba(model, tokenizer, data.texts, meta["max_length"], batch_size, progress=True)
    pred = decide(probs, meta.get("thresholds", 0.5))
    with atomic_path(Path(output_csv)) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["id", *meta["labels"]])
        for rid, row in zip(data.ids, pred):
            w.writerow([rid, *row.tolist()])
    return Path(output_csv)


def _lang_of(path: Path, meta: dict) -> str:
    from emotionlib.data import LANGUAGES

    stem = Path(path).stem
    return stem if stem in LANGUAGES else meta["languages"][0]
