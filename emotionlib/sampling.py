"""How rows are drawn into an epoch: a shuffle that depends only on (seed, epoch), so that an interrupted epoch
replays identically on resume; batches grouped by length; languages drawn by temperature."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Sampler


class EpochSampler(Sampler):
    """A shuffle that depends only on (seed, epoch), so an interrupted epoch replays identically on resume.

    With `langs` and a `temperature` above 1 an epoch is as many rows as the data, drawn per language in
    proportion to n ** (1 / temperature) (Conneau et al., 2020): small languages are seen more than once, large
    ones in part, each language's rows without repetition until all were seen."""

    def __init__(
        self,
        lengths: list[int],
        batch_size: int,
        seed: int,
        group_by_length: bool = False,
        langs: list[str] | None = None,
        temperature: float = 1.0,
    ):
        self.lengths, self.batch_size, self.seed, self.group = lengths, batch_size, seed, group_by_length
        self.langs, self.temperature = langs, temperature
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1000 + self.epoch)
        if self.langs is not None and self.temperature != 1:
            rows = language_draw(self.langs, self.temperature, g)
            if not self.group:
                return iter(rows.tolist())
            from transformers.trainer_pt_utils import get_length_grouped_indices

            order = get_length_grouped_indices([self.lengths[i] for i in rows.tolist()], self.batch_size, generator=g)
            return iter(rows[order].tolist())
        if self.group:
            from transformers.trainer_pt_utils import get_length_grouped_indices

            return iter(get_length_grouped_indices(self.lengths, self.batch_size, generator=g))
        return iter(torch.randperm(len(self.lengths), generator=g).tolist())


def language_shares(langs: list[str], temperature: float) -> dict[str, int]:
    """Rows per language in one epoch of temperature sampling: in proportion to n ** (1 / temperature), rounded
    by largest remainder so that they add up to the number of rows."""
    names, counts = np.unique(np.asarray(langs), return_counts=True)
    q = counts ** (1.0 / temperature)
    want = q / q.sum() * len(langs)
    k = np.floor(want).astype(int)
    k[np.argsort(k - want)[: len(langs) - k.sum()]] += 1  # the largest remainders
    return {str(n): int(c) for n, c in zip(names, k)}


def language_draw(langs: list[str], temperature: float, g: torch.Generator) -> torch.Tensor:
    """One epoch's row indices under temperature sampling (see `EpochSampler`), shuffled."""
    where = {}
    for i, lang in enumerate(langs):
        where.setdefault(lang, []).append(i)
    drawn = []
    for lang, k in language_shares(langs, temperature).items():
        if not k:
            continue
        rows = torch.tensor(where[lang])
        cycles = [rows[torch.randperm(len(rows), generator=g)] for _ in range(-(-k // len(rows)))]
        drawn.append(torch.cat(cycles)[:k])
    picked = torch.cat(drawn)
    return picked[torch.randperm(len(picked), generator=g)]
