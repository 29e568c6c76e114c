"""Inference: probabilities for texts, the `Classifier` behind `emotionlib.load` and `predict`, submission files."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from emotionlib.data import Collator

BACKENDS = ("torch", "onnx")
Forward = Callable[[torch.Tensor, torch.Tensor], np.ndarray]  # (input_ids, attention_mask) -> probabilities


def batched_proba(forward: Forward, tokenizer, texts: Sequence[str], num_labels: int, max_length: int = 128,
                  batch_size: int = 64, sort_by_length: bool = True, progress: bool = False) -> np.ndarray:
    """Probabilities (n, C) from any backend. Texts are batched by length so that little padding is computed."""
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ValueError(f"batch size must be a positive integer (got {batch_size})")
    texts = list(texts)
    out = np.zeros((len(texts), num_labels), dtype=np.float32)
    if not texts:
        return out
    enc = tokenizer(texts, truncation=True, max_length=max_length)
    order = np.argsort([len(x) for x in enc["input_ids"]], kind="stable") if sort_by_length else np.arange(len(texts))
    collate = Collator(tokenizer.pad_token_id)
    for start in tqdm(range(0, len(texts), batch_size), desc="predict", disable=not progress, leave=False):
        rows = order[start:start + batch_size]
        batch = collate([{"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
                          "label_mask": np.zeros(0)} for i in rows])
        out[rows] = forward(batch["input_ids"], batch["attention_mask"])
    return out


def torch_forward(model) -> Forward:
    device = next(model.parameters()).device

    @torch.inference_mode()
    def forward(input_ids, attention_mask):
        return torch.sigmoid(model(input_ids.to(device), attention_mask.to(device)).float()).cpu().numpy()

    return forward


def predict_proba(model, tokenizer, texts: Sequence[str], max_length: int = 128, batch_size: int = 64,
                  sort_by_length: bool = True, progress: bool = False) -> np.ndarray:
    """Sigmoid probabilities (n, C) of a PyTorch classifier, in eval mode (its mode is restored after)."""
    was_training = model.training
    model.eval()
    try:
        return batched_proba(torch_forward(model), tokenizer, texts, model.num_labels, max_length, batch_size,
                             sort_by_length, progress)
    finally:
        model.train(was_training)


def decide(probs: np.ndarray, thresholds: Sequence[float] | float = 0.5) -> np.ndarray:
    return (probs >= np.asarray(thresholds)).astype(int)


class Classifier:
    """A trained run ready for use: `clf = emotionlib.load("runs/<id>")`, then `clf.predict(["..."])`.

    `backend="onnx"` runs the ONNX export of the run through onnxruntime (made under runs/<id>/onnx/ on first
    use); the labels, tuned thresholds and maximum length are the run's either way.
    """

    def __init__(self, run_dir: str | Path, backend: str = "torch"):
        from emotionlib.model import load_model, load_tokenizer, read_metadata

        if backend not in BACKENDS:
            raise ValueError(f"backend {backend!r}: must be one of {BACKENDS}")
        self.run_dir, self.backend = Path(run_dir), backend
        from emotionlib.runs import RunLayout

        model_dir = RunLayout(self.run_dir).model
        if backend == "torch":
            self.model, self.tokenizer, self.meta = load_model(model_dir)
            self._forward = torch_forward(self.model)
        else:
            from emotionlib.export import OnnxForward, ensure_onnx

            self.meta, self.tokenizer = read_metadata(model_dir), load_tokenizer(model_dir)
            self._forward = OnnxForward(ensure_onnx(self.run_dir))
        self.labels: list[str] = list(self.meta["labels"])
        self.thresholds = np.asarray(self.meta.get("thresholds", [0.5] * len(self.labels)), dtype=float)
        self.max_length: int = self.meta["max_length"]

    def __repr__(self) -> str:
        return f"Classifier({str(self.run_dir)!r}, backend={self.backend!r}, labels={self.labels})"

    def predict_proba(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """Probabilities (n, labels), columns in the order of `self.labels`."""
        if isinstance(texts, str):
            texts = [texts]
        return batched_proba(self._forward, self.tokenizer, texts, len(self.labels), self.max_length, batch_size,
                             progress=progress)

    def predict(self, texts: Sequence[str], batch_size: int = 64) -> list[dict]:
        """Per text: the labels over their tuned thresholds and every label's probability."""
        probs = self.predict_proba(texts, batch_size)
        return [{"labels": [lab for lab, on in zip(self.labels, row) if on],
                 "probabilities": {lab: round(float(p), 6) for lab, p in zip(self.labels, prob)}}
                for prob, row in zip(probs, decide(probs, self.thresholds))]

    def predict_file(self, input_csv: str | Path, output_csv: str | Path, batch_size: int = 64) -> Path:
        """SemEval Track A submission format: id plus one 0/1 column per label; written atomically."""
        import csv

        from emotionlib.data import read_texts
        from emotionlib.runs import atomic_path

        input_csv, output_csv = Path(input_csv), Path(output_csv)
        if batch_size < 1:
            raise ValueError(f"--batch-size must be a positive integer (got {batch_size})")
        if output_csv.is_dir():
            raise ValueError(f"{output_csv}: --output is a directory; give a file path")
        if output_csv.resolve() == input_csv.resolve():
            raise ValueError(f"{output_csv}: --output equals --input; the input would be overwritten")
        ids, texts = read_texts(input_csv)
        pred = decide(self.predict_proba(texts, batch_size, progress=True), self.thresholds)
        with atomic_path(output_csv) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["id", *self.labels])
            for rid, row in zip(ids, pred):
                w.writerow([rid, *row.tolist()])
        return output_csv


def predict_file(run_dir: Path, input_csv: Path, output_csv: Path, batch_size: int = 64,
                 backend: str = "torch") -> Path:
    """`python -m emotionlib predict`: the run's Classifier on a CSV with `id` and `text` columns."""
    return Classifier(run_dir, backend).predict_file(input_csv, output_csv, batch_size)
