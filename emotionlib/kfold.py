"""k-fold estimates over the training part: a training lever decided on every training text, not on 553.

`build.estimate` trains one run per fold under runs/<run_id>/fold-<i>/, and this module scores and compares them:
each trains on the training part without fold i (early stopping and thresholds on the validation part, as every run does) and scores fold i at threshold 0.5.
Pooled, the folds score every training text exactly once. `compare` sets two estimates side by side: with the same
data, split_seed and number of folds their folds are the same rows, so the difference is read fold by fold and as
a paired bootstrap over the pooled texts. Each fold is resumable: an interrupted estimate continues where it
stopped when run again with the same settings.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from emotionlib.split import heldout_parts
from emotionlib import graph as G
from emotionlib.config import Config
from emotionlib.dataset import Examples
from emotionlib.metrics import language_scores, paired_bootstrap_diff
from emotionlib.metadata import read_finished
from emotionlib.model import load_model
from emotionlib.predict import decide, predict_proba
from emotionlib.runs import RunLayout, read_json, write_json

log = logging.getLogger(__name__)
SUMMARY = G.KFOLD_SUMMARY


def score_fold(cfg: Config) -> dict:
    """Score the held-out rows of fold cfg.cv_fold, a finished fold run (`build.estimate` trains it); the scores
    are kept beside the run and read from there again."""
    out = Path(cfg.runs_dir) / f"{cfg.run_id}.heldout.json"
    run = cfg.run_dir
    if out.is_file():
        return read_json(out)
    read_finished(run)
    model, tokenizer, meta = load_model(RunLayout(run).model)
    held = Examples.from_splits(heldout_parts(cfg, RunLayout(run)), meta["labels"])
    probs = predict_proba(
        model,
        tokenizer,
        held.texts,
        meta["max_length"],
        cfg.eval_batch_size,
        precision=meta.get("mixed_precision", "no"),
        langs=held.langs,
    )
    record = {
        "fold": cfg.cv_fold,
        "run": str(run),
        "labels": list(held.labels),
        "ids": held.ids,
        "langs": held.langs,
        "y": held.y.astype(int).tolist(),
        "mask": held.mask.astype(int).tolist(),
        "proba": np.round(probs, 6).tolist(),
        "macro_f1": macro_f1(held.y, probs, held.mask, held.langs, held.labels),
        "val_macro_f1": read_json(RunLayout(run).train_summary).get("best_val_macro_f1"),
    }
    write_json(out, record)
    return record


def macro_f1(y, probs, mask, langs, labels) -> float:
    """Macro-F1 at 0.5 over each language's own labels, the mean over languages (one language: its macro-F1)."""
    return language_scores(np.asarray(y), decide(np.asarray(probs), 0.5), np.asarray(mask), langs, labels)[
        "mean_macro_f1"
    ]


def pooled(records: list[dict]) -> dict[str, np.ndarray | list]:
    """Every fold's held-out rows together: ids, languages, gold, mask and probabilities."""
    return {
        "ids": [i for r in records for i in r["ids"]],
        "langs": [g for r in records for g in r["langs"]],
        "labels": records[0]["labels"],
        **{k: np.concatenate([np.asarray(r[k]) for r in records]) for k in ("y", "mask", "proba")},
    }


def summarise(records: list[dict]) -> dict:
    """Per-fold macro-F1 (mean and sd) and the pooled out-of-fold macro-F1 over all held-out texts."""
    per_fold = [r["macro_f1"] for r in records]
    p = pooled(records)
    return {
        "fold_macro_f1": per_fold,
        "mean_macro_f1": float(np.mean(per_fold)),
        "sd_macro_f1": float(np.std(per_fold, ddof=1)) if len(per_fold) > 1 else 0.0,
        "pooled_macro_f1": macro_f1(p["y"], p["proba"], p["mask"], p["langs"], p["labels"]),
        "n_heldout": len(p["ids"]),
        "fold_val_macro_f1": [r["val_macro_f1"] for r in records],
    }


def read_estimate(folder: Path) -> tuple[dict, list[dict]]:
    """A finished estimate's summary and fold records; a missing one is named with the command that makes it."""
    folder = Path(folder)
    if not (folder / SUMMARY).is_file():
        raise FileNotFoundError(
            f"{folder}: no {SUMMARY} (an unfinished or absent k-fold estimate); run `python -m "
            f"emotionlib kfold` with its settings to finish it"
        )
    summary = read_json(folder / SUMMARY)
    return summary, [read_json(folder / f"fold-{i}.heldout.json") for i in range(summary["folds"])]


def compare(a: Path, b: Path, n_bootstrap: int = 2000, seed: int = 0) -> dict:
    """b minus a: per fold, on average, pooled, and (one language) a paired bootstrap interval over the texts."""
    if Path(a).resolve() == Path(b).resolve():
        raise ValueError(f"{a} and {b}: the same estimate twice; compare two estimates (two run_ids)")
    (sa, ra), (sb, rb) = read_estimate(a), read_estimate(b)
    if [r["ids"] for r in ra] != [r["ids"] for r in rb]:
        raise ValueError(
            f"{a} and {b} hold out different rows (other data, split_seed or folds); their folds "
            "cannot be compared pairwise"
        )
    diffs = [y["macro_f1"] - x["macro_f1"] for x, y in zip(ra, rb)]
    out = {
        "a": str(a),
        "b": str(b),
        "fold_diff": diffs,
        "mean_diff": float(np.mean(diffs)),
        "sd_diff": float(np.std(diffs, ddof=1)) if len(diffs) > 1 else 0.0,
        "pooled_a": sa["pooled_macro_f1"],
        "pooled_b": sb["pooled_macro_f1"],
        "pooled_diff": sb["pooled_macro_f1"] - sa["pooled_macro_f1"],
        "n_heldout": sa["n_heldout"],
    }
    pa, pb = pooled(ra), pooled(rb)
    if len(set(pa["langs"])) == 1:
        cols = pa["mask"].astype(bool).all(axis=0)
        out["pooled_diff_ci95"] = paired_bootstrap_diff(
            pa["y"][:, cols], decide(pa["proba"], 0.5)[:, cols], decide(pb["proba"], 0.5)[:, cols], n_bootstrap, seed
        )
    return out
