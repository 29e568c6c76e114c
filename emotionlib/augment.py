"""Offline augmentation of the training part (the seed's first recommendation): EDA -- random swap, deletion and
insertion of words (Wei & Zou, 2019) -- or replacement of words by their nearest neighbours in the encoder's own
input-embedding matrix (no download; any language the tokenizer covers). New rows copy the labels of the row they
come from and are added to the training part only, for rows that carry one of the target labels; the validation
part, dev and test are never touched."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from emotionlib.data import LangSplit
from emotionlib.model import load_encoder, load_tokenizer

log = logging.getLogger(__name__)

AUGMENTS = ("none", "eda", "neighbours")


def eda(text: str, rng: np.random.Generator, strength: float) -> str:
    """One EDA operation, chosen at random, on about `strength` of the words (at least one): swap two words,
    delete words (never all), or insert copies of words of the text at random places."""
    words = text.split()
    if len(words) < 2:
        return text
    n = max(1, round(strength * len(words)))
    op = rng.integers(3)
    if op == 0:
        for _ in range(n):
            i, j = rng.choice(len(words), 2, replace=False)
            words[i], words[j] = words[j], words[i]
    elif op == 1:
        drop = set(rng.choice(len(words), min(n, len(words) - 1), replace=False).tolist())
        words = [w for i, w in enumerate(words) if i not in drop]
    else:
        for _ in range(n):
            words.insert(int(rng.integers(len(words) + 1)), words[int(rng.integers(len(words)))])
    return " ".join(words)


class Neighbours:
    """Nearest neighbours of a token in the encoder's input-embedding matrix (cosine), among the vocabulary's
    word-initial pieces; computed per token on demand and remembered."""

    def __init__(self, encoder_dir: Path, k: int = 5):
        self.tokenizer = load_tokenizer(Path(encoder_dir))
        weights = load_encoder(Path(encoder_dir)).get_input_embeddings().weight.detach().float()
        self.emb = torch.nn.functional.normalize(weights, dim=1)
        vocab = self.tokenizer.convert_ids_to_tokens(list(range(self.emb.shape[0])))
        special = set(self.tokenizer.all_special_ids)
        sentencepiece = any(t.startswith("\u2581") for t in vocab)
        # word-initial pieces that are words: SentencePiece marks them with ▁, WordPiece marks the others with ##
        self.initial = torch.tensor(
            [
                i not in special and (t.startswith("\u2581") and t[1:].isalpha() if sentencepiece else t.isalpha())
                for i, t in enumerate(vocab)
            ]
        )
        self.k, self.memo = k, {}

    def of(self, token_id: int) -> list[int]:
        if token_id not in self.memo:
            sims = self.emb @ self.emb[token_id]
            sims[~self.initial] = -2.0
            sims[token_id] = -2.0
            self.memo[token_id] = torch.topk(sims, self.k).indices.tolist()
        return self.memo[token_id]

    def __call__(self, text: str, rng: np.random.Generator, strength: float) -> str:
        """Replace about `strength` of the words that are one word-initial piece by one of their k neighbours."""
        words = text.split()
        ids = [self.tokenizer(w, add_special_tokens=False)["input_ids"] for w in words]  # each word alone: word-initial
        single = [i for i, t in enumerate(ids) if len(t) == 1 and bool(self.initial[t[0]])]
        if not single:
            return text
        for i in rng.choice(single, min(len(single), max(1, round(strength * len(words)))), replace=False):
            new = self.of(ids[i][0])[int(rng.integers(self.k))]
            words[i] = self.tokenizer.convert_tokens_to_string([self.tokenizer.convert_ids_to_tokens(new)]).strip()
        return " ".join(words)


def augment_part(
    part: LangSplit,
    how: Callable[[str, np.random.Generator, float], str],
    strength: float,
    labels: Sequence[str],
    copies: int,
    seed: int,
) -> tuple[LangSplit, int]:
    """The training part with `copies` augmented rows for each row that carries one of `labels` (every row when
    `labels` is empty); (part, rows added). Ids of new rows are `<id>-aug<k>`; a copy equal to its source is dropped."""
    rng = np.random.default_rng(seed)
    cols = [part.labels.index(lab) for lab in labels if lab in part.labels]
    rows = [i for i in range(len(part)) if not labels or (cols and part.y[i, cols].any())]
    ids, texts, ys = [], [], []
    for i in rows:
        for k in range(copies):
            new = how(part.texts[i], rng, strength)
            if new != part.texts[i]:
                ids.append(f"{part.ids[i]}-aug{k + 1}")
                texts.append(new)
                ys.append(part.y[i])
    if not ids:
        return part, 0
    out = LangSplit(
        part.lang,
        part.split,
        part.ids + ids,
        part.texts + texts,
        part.labels,
        np.concatenate([part.y, np.asarray(ys)]),
        path=part.path,
    )
    return out, len(ids)


def augment_training(cfg, parts: list[LangSplit], encoder_dir: Path) -> tuple[list[LangSplit], int]:
    """The run's training parts with `cfg.augment` applied (each language with its own seeded generator), and
    the number of rows added."""
    if cfg.augment == "none":
        return parts, 0
    how = eda if cfg.augment == "eda" else Neighbours(encoder_dir)
    out = [
        augment_part(p, how, cfg.augment_strength, cfg.augment_labels, cfg.augment_copies, cfg.seed + k)
        for k, p in enumerate(parts)
    ]
    added = sum(n for _, n in out)
    log.info(f"augment ({cfg.augment}, strength {cfg.augment_strength:g}): {added} rows added to the training part")
    return [p for p, _ in out], added
