"""A run's split: each training language's file divided 80/20 into a training and a validation part by seeded
multi-label iterative stratification, written once under runs/<run_id>/data/ and read from there by every later
step (with k-fold runs, the training part without its held-out fold). The files themselves are `data`'s."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from emotionlib.data import SPLITS, DataError, LangSplit, eval_languages, source_for, train_languages
from emotionlib.run_config import claim_config
from emotionlib.runs import RunLayout, atomic_path, read_json, sha256_of, write_json


# --- the 80/20 split -------------------------------------------------------------------------------


def split_train_val(data: LangSplit, val_fraction: float = 0.2, seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """Seeded multi-label iterative stratification (Sechidis et al., 2011) into train and validation indices."""
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    check_splittable(data, val_fraction)
    splitter = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=val_fraction, random_state=seed)
    train_idx, val_idx = next(splitter.split(np.zeros(len(data)), data.y))
    return np.sort(train_idx), np.sort(val_idx)


def check_splittable(data: LangSplit, val_fraction: float) -> None:
    """Refuse, naming the file, a training file too small for both a training and a validation part."""
    if data.y is None:
        raise DataError(f"{data.path}: unlabeled, cannot be split for training")
    n = len(data)
    n_val = math.ceil(n * val_fraction)  # as scikit-learn rounds the test part
    if n_val < 1 or n - n_val < 1:
        need = next(k for k in range(2, 10_000) if 1 <= math.ceil(k * val_fraction) < k)
        raise DataError(
            f"{data.path}: {n} labelled row{'s' if n != 1 else ''} cannot be split into a training and "
            f"a validation part (val_fraction {val_fraction}); at least {need} are needed"
        )


def label_proportions(parts: dict[str, LangSplit]) -> pd.DataFrame:
    """Share of rows carrying each label, one column per part (e.g. whole/train/val)."""
    return pd.DataFrame({name: pd.Series(p.y.mean(axis=0), index=p.labels) for name, p in parts.items()})


# --- a run's split (written once under runs/<run_id>/data/) --------------------------------------------------


def prepare_data(cfg, layout: RunLayout | None = None) -> dict:
    """Split each training language 80/20 (iterative stratification) and record it under the run directory.

    The config and the split are written once: a run that has them keeps them, and other settings are refused.
    """
    layout = layout or RunLayout(cfg.run_dir)
    source = source_for(cfg)
    languages = train_languages(cfg)  # checks the codes before anything is written
    if layout.split.is_file():
        claim_config(cfg, layout.root)  # refuses other settings
        return read_json(layout.split)
    record = {"source": source.describe(), "val_fraction": cfg.val_fraction, "seed": cfg.split_seed, "languages": {}}
    proportions = []
    for lang in languages:  # read and split everything first: a bad file is refused before the first write
        full = source.load("train", lang)
        train_idx, val_idx = split_train_val(full, cfg.val_fraction, cfg.split_seed)
        record["languages"][lang] = {
            "n_train": len(train_idx),
            "n_val": len(val_idx),
            "val_ids": [full.ids[i] for i in val_idx],
        }
        table = label_proportions({"whole": full, "train": full.subset(train_idx), "val": full.subset(val_idx)})
        proportions.append(table.assign(lang=lang).rename_axis("label").reset_index())
    pairs = [(s, lang) for lang in dict.fromkeys(languages + eval_languages(cfg)) for s in SPLITS]
    record["checksums"] = source.checksums(pairs)
    claim_config(cfg, layout.root)
    with atomic_path(layout.label_proportions) as tmp:
        pd.concat(proportions).to_csv(tmp, index=False)
    write_json(layout.split, record)  # last: its presence means the data step is complete
    return record


def cv_split(part: LangSplit, folds: int, fold: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Fold `fold` of `folds` over a training part (seeded multi-label stratified k-fold): the indices of `part`
    kept for training, and those held out."""
    from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

    if len(part) < folds:
        raise DataError(f"{part.path}: a training part of {len(part)} rows cannot be split into {folds} folds")
    keep, held = list(
        MultilabelStratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(part)), part.y)
    )[fold]
    return np.sort(keep), np.sort(held)


def training_parts(cfg, layout: RunLayout | None = None) -> tuple[list[LangSplit], list[LangSplit]]:
    """The train and validation parts recorded in the run's split.json (read from `layout`, never rewritten);
    with cv_folds, the training part without its held-out fold."""
    train_parts, val_parts, _ = _parts(cfg, layout)
    return train_parts, val_parts


def heldout_parts(cfg, layout: RunLayout | None = None) -> list[LangSplit]:
    """A k-fold run's held-out fold of each language's training part: the rows it trains without."""
    if not cfg.cv_folds:
        raise ValueError(f"{cfg.run_dir}: not a k-fold run (cv_folds is 0), so no training rows are held out")
    return _parts(cfg, layout)[2]


def _parts(cfg, layout: RunLayout | None) -> tuple[list[LangSplit], list[LangSplit], list[LangSplit]]:
    layout = layout or RunLayout(cfg.run_dir)
    if not layout.split.is_file():
        raise FileNotFoundError(f"{layout.split}: this run has no split yet (run the data step first)")
    record = read_json(layout.split)
    source = source_for(cfg)
    train_parts, val_parts, held_parts = [], [], []
    for lang, info in record["languages"].items():
        full = source.load("train", lang)
        if cfg.own_data and record["checksums"].get(str(full.path)) != sha256_of(full.path):
            raise DataError(
                f"{full.path}: changed since this run's split was made (sha256 recorded in "
                f"{layout.split}); train a new run on the new file"
            )
        val_ids = set(info["val_ids"])
        train_idx = [i for i, rid in enumerate(full.ids) if rid not in val_ids]
        if cfg.max_train_rows:
            train_idx = train_idx[: cfg.max_train_rows]
        if cfg.cv_folds:  # the folds are drawn within the training part: the validation part stays every run's
            keep, held = cv_split(full.subset(train_idx), cfg.cv_folds, cfg.cv_fold, cfg.split_seed)
            held_parts.append(full.subset([train_idx[i] for i in held]))
            train_idx = [train_idx[i] for i in keep]
        train_parts.append(full.subset(train_idx))
        val = full.subset([i for i, rid in enumerate(full.ids) if rid in val_ids])
        val.split = "val"
        val_parts.append(val)
    return train_parts, val_parts, held_parts
