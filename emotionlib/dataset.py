"""What the training loop iterates: rows of one or more languages over one label space (`Examples`), tokenised once
(`EmotionDataset`), padded per batch (`Collator`). The files they come from are `data`'s."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from emotionlib.data import LangSplit


@dataclass
class Examples:
    """Rows from one or more languages over one label space; `mask` marks the labels each row's language has."""

    ids: list[str]
    texts: list[str]
    langs: list[str]
    y: np.ndarray | None  # float (n, C), zeros where masked
    mask: np.ndarray  # float (n, C)
    labels: tuple[str, ...]

    @classmethod
    def from_splits(cls, parts: Sequence[LangSplit], labels: Sequence[str]) -> "Examples":
        labels = tuple(labels)
        ids, texts, langs, ys, masks = [], [], [], [], []
        labeled = all(p.labeled for p in parts)
        for p in parts:
            ids += p.ids
            texts += p.texts
            langs += [p.lang] * len(p)
            present = np.array([lab in p.labels for lab in labels], dtype=np.float32)
            masks.append(np.tile(present, (len(p), 1)))
            if labeled:
                y = np.zeros((len(p), len(labels)), dtype=np.float32)
                for j, lab in enumerate(labels):
                    if lab in p.labels:
                        y[:, j] = p.y[:, p.labels.index(lab)]
                ys.append(y)
        return cls(ids, texts, langs, np.concatenate(ys) if labeled else None, np.concatenate(masks), labels)


class EmotionDataset:
    """A torch map-style dataset (seed 3.1): tokenised once, truncated to `max_length`, float label vectors."""

    def __init__(
        self,
        examples: Examples,
        tokenizer,
        max_length: int = 128,
        pad_to_max_length: bool = False,
        lang_ids: Sequence[int] | None = None,
    ):
        self.examples, self.lang_ids = examples, lang_ids  # lang_ids: for a classifier with parts per language
        enc = tokenizer(
            examples.texts, truncation=True, max_length=max_length, padding="max_length" if pad_to_max_length else False
        )
        self.input_ids = enc["input_ids"]
        self.attention_mask = enc["attention_mask"]

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> list[int]:
        return [sum(m) for m in self.attention_mask]

    def __getitem__(self, i: int) -> dict:
        item = {
            "input_ids": self.input_ids[i],
            "attention_mask": self.attention_mask[i],
            "label_mask": self.examples.mask[i],
        }
        if self.examples.y is not None:
            item["labels"] = self.examples.y[i]
        if self.lang_ids is not None:
            item["lang_ids"] = int(self.lang_ids[i])
        return item


class Collator:
    """Pads each batch to its longest sequence (dynamic padding) and stacks the label tensors."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, items: list[dict]):
        import torch

        width = max(len(it["input_ids"]) for it in items)
        ids = torch.full((len(items), width), self.pad_token_id, dtype=torch.long)
        att = torch.zeros((len(items), width), dtype=torch.long)
        for r, it in enumerate(items):
            n = len(it["input_ids"])
            ids[r, :n] = torch.tensor(it["input_ids"])
            att[r, :n] = torch.tensor(it["attention_mask"])
        batch = {
            "input_ids": ids,
            "attention_mask": att,
            "label_mask": torch.tensor(np.stack([it["label_mask"] for it in items])),
        }
        if "labels" in items[0]:
            batch["labels"] = torch.tensor(np.stack([it["labels"] for it in items]))
        if "lang_ids" in items[0]:
            batch["lang_ids"] = torch.tensor([it["lang_ids"] for it in items], dtype=torch.long)
        return batch
