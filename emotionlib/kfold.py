"""k-fold estimates over the training part: a training lever decided on every training text, not on 553.

`estimate` trains one run per fold under runs/<run_id>/fold-<i>/: each trains on the training part without fold
i (early stopping and thresholds on the validation part, as every run does) and scores fold i at threshold 0.5.
Pooled, the folds score every training text exactly once. `compare` sets two estimates side by side: with the same
data, split_seed and number of folds their folds are the same rows, so the difference is read fold by fold and as
a paired bootstrap over the pooled texts. Each fold is resumable: an interrupted estimate continues where it
stopped when run again with the same settings.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from emotionlib import data as D
from emotionlib.config import Config, ConfigError
from emotionlib.dataset import Examples
from emotionlib.metrics import language_scores, paired_bootstrap_diff
from emotionlib.predict import decide
from emotionlib.runs import RunLayout, make_dir, provenance, read_json, remove_recorded, write_json

log = logging.getLogger(__name__)
SUMMARY = "kfold.json"


def estimate(cfg: Config, folds: int) -> Path:
    """Train and score `folds` fold runs of `cfg` under cfg.run_dir; write and return its kfold.json summary."""
    for name in ("stack", "stack_runs", "holdout_languages"):
        if getattr(cfg, name):
            raise ConfigError(f"config field {name!r}: a k-fold estimate trains one network a fold; unset it "
                              f"(got {list(getattr(cfg, name))!r})")
    if cfg.multilingual == "per_language" and len(D.train_languages(cfg)) > 1:
        raise ConfigError("config field 'multilingual': a k-fold estimate trains one joint network a fold; estimate "
                          "each language with its own run_id")
    check_estimate(cfg, folds)  # every check before the folder is made
    made = not Path(cfg.run_dir).exists()
    root = make_dir(cfg.run_dir, "kfold")  # refuses a folder emotionlib did not make as a k-fold estimate
    try:
        return _estimate(cfg, folds, root)
    except BaseException:
        if made and not any((root / f"fold-{i}").exists() for i in range(folds)):
            remove_recorded(root)  # nothing trained yet: the folder this call made goes with the failure
        raise


def check_estimate(cfg: Config, folds: int) -> None:
    """The fold runs' config, checked as training checks it (data, encoder, settings), and `folds` against the
    range and the training part's rows: before any folder exists."""
    from emotionlib.preflight import check

    if isinstance(folds, bool) or not isinstance(folds, int) or not 2 <= folds <= 20:
        raise ConfigError(f"--folds: from 2 to 20 folds (got {folds!r})")
    fold_cfg = cfg.replace(runs_dir=str(cfg.run_dir), run_id="fold-0", cv_folds=folds, cv_fold=0)
    check(fold_cfg)
    source = D.source_for(cfg)
    rows = sum(len(source.load("train", lang).ids) for lang in D.train_languages(cfg))
    part = int(rows * (1 - cfg.val_fraction))
    if folds * 2 > part:
        raise ConfigError(f"--folds {folds}: the training part holds about {part} texts, too few for {folds} folds "
                          "of at least two texts each")


def _estimate(cfg: Config, folds: int, root: Path) -> Path:
    fold_records = []
    for i in range(folds):
        log.info(f"{root}: fold {i + 1} of {folds}")
        fold_records.append(score_fold(cfg.replace(runs_dir=str(root), run_id=f"fold-{i}", cv_folds=folds,
                                                   cv_fold=i)))
    summary = summarise(fold_records) | {"folds": folds, "config": cfg.to_dict(),
                                         "provenance": provenance({"data": read_json(
                                             RunLayout(root / "fold-0").split)["checksums"]})}
    write_json(root / SUMMARY, summary)
    return root


def score_fold(cfg: Config) -> dict:
    """Train fold cfg.cv_fold (or continue it) and score its held-out rows; the scores are kept beside the run."""
    from emotionlib.model import load_model
    from emotionlib.predict import predict_proba
    from emotionlib.train import train

    out = Path(cfg.runs_dir) / f"{cfg.run_id}.heldout.json"
    run = train(cfg, resume=True)  # a finished fold is skipped, an interrupted one continues from its checkpoint
    if out.is_file():
        return read_json(out)
    model, tokenizer, meta = load_model(RunLayout(run).model)
    held = Examples.from_splits(D.heldout_parts(cfg, RunLayout(run)), meta["labels"])
    probs = predict_proba(model, tokenizer, held.texts, meta["max_length"], cfg.eval_batch_size,
                          precision=meta.get("mixed_precision", "no"), langs=held.langs)
    record = {"fold": cfg.cv_fold, "run": str(run), "labels": list(held.labels), "ids": held.ids,
              "langs": held.langs, "y": held.y.astype(int).tolist(), "mask": held.mask.astype(int).tolist(),
              "proba": np.round(probs, 6).tolist(),
              "macro_f1": macro_f1(held.y, probs, held.mask, held.langs, held.labels),
              "val_macro_f1": read_json(RunLayout(run).train_summary).get("best_val_macro_f1")}
    write_json(out, record)
    return record


def macro_f1(y, probs, mask, langs, labels) -> float:
    """Macro-F1 at 0.5 over each language's own labels, the mean over languages (one language: its macro-F1)."""
    return language_scores(np.asarray(y), decide(np.asarray(probs), 0.5), np.asarray(mask), langs,
                           labels)["mean_macro_f1"]


def pooled(records: list[dict]) -> dict[str, np.ndarray | list]:
    """Every fold's held-out rows together: ids, languages, gold, mask and probabilities."""
    return {"ids": [i for r in records for i in r["ids"]], "langs": [g for r in records for g in r["langs"]],
            "labels": records[0]["labels"], **{k: np.concatenate([np.asarray(r[k]) for r in records])
                                                for k in ("y", "mask", "proba")}}


def summarise(records: list[dict]) -> dict:
    """Per-fold macro-F1 (mean and sd) and the pooled out-of-fold macro-F1 over all held-out texts."""
    per_fold = [r["macro_f1"] for r in records]
    p = pooled(records)
    return {"fold_macro_f1": per_fold, "mean_macro_f1": float(np.mean(per_fold)),
            "sd_macro_f1": float(np.std(per_fold, ddof=1)) if len(per_fold) > 1 else 0.0,
            "pooled_macro_f1": macro_f1(p["y"], p["proba"], p["mask"], p["langs"], p["labels"]),
            "n_heldout": len(p["ids"]), "fold_val_macro_f1": [r["val_macro_f1"] for r in records]}


def read_estimate(folder: Path) -> tuple[dict, list[dict]]:
    """A finished estimate's summary and fold records; a missing one is named with the command that makes it."""
    folder = Path(folder)
    if not (folder / SUMMARY).is_file():
        raise FileNotFoundError(f"{folder}: no {SUMMARY} (an unfinished or absent k-fold estimate); run `python -m "
                                f"emotionlib kfold` with its settings to finish it")
    summary = read_json(folder / SUMMARY)
    return summary, [read_json(folder / f"fold-{i}.heldout.json") for i in range(summary["folds"])]


def compare(a: Path, b: Path, n_bootstrap: int = 2000, seed: int = 0) -> dict:
    """b minus a: per fold, on average, pooled, and (one language) a paired bootstrap interval over the texts."""
    if Path(a).resolve() == Path(b).resolve():
        raise ValueError(f"{a} and {b}: the same estimate twice; compare two estimates (two run_ids)")
    (sa, ra), (sb, rb) = read_estimate(a), read_estimate(b)
    if [r["ids"] for r in ra] != [r["ids"] for r in rb]:
        raise ValueError(f"{a} and {b} hold out different rows (other data, split_seed or folds); their folds "
                         "cannot be compared pairwise")
    diffs = [y["macro_f1"] - x["macro_f1"] for x, y in zip(ra, rb)]
    out = {"a": str(a), "b": str(b), "fold_diff": diffs, "mean_diff": float(np.mean(diffs)),
           "sd_diff": float(np.std(diffs, ddof=1)) if len(diffs) > 1 else 0.0,
           "pooled_a": sa["pooled_macro_f1"], "pooled_b": sb["pooled_macro_f1"],
           "pooled_diff": sb["pooled_macro_f1"] - sa["pooled_macro_f1"], "n_heldout": sa["n_heldout"]}
    pa, pb = pooled(ra), pooled(rb)
    if len(set(pa["langs"])) == 1:
        cols = pa["mask"].astype(bool).all(axis=0)
        out["pooled_diff_ci95"] = paired_bootstrap_diff(pa["y"][:, cols], decide(pa["proba"], 0.5)[:, cols],
                                                        decide(pb["proba"], 0.5)[:, cols], n_bootstrap, seed)
    return out
