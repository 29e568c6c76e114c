"""Scoring a trained run on the validation part, the official dev file and labeled test files."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from emotionlib import data as D
from emotionlib import plots
from emotionlib.config import read_config
from emotionlib.metrics import bootstrap_ci, scores
from emotionlib.predict import decide, predict_proba
from emotionlib.runs import provenance, write_json

REFERENCE_ENV = "EMOTIONLIB_REFERENCE"
PUBLISHED_COLUMNS = ("LaBSE", "RemBERT", "XLM-R", "mBERT", "mDeBERTa")


def eval_sets(cfg, splits: Sequence[str] | None, languages: Sequence[str] | None) -> list[D.LangSplit]:
    """The sets to score: val (training languages), dev, and test where its labels are present."""
    from emotionlib.train import training_parts

    source = D.source_for(cfg)
    if languages and not cfg.own_data:
        langs = D.expand_languages(languages)
    else:
        langs = list(languages or D.eval_languages(cfg))
    out = []
    for split in splits or ("val", "dev", "test"):
        if split == "val":
            out += [p for p in training_parts(cfg)[1] if p.lang in langs]
            continue
        for lang in langs:
            if not source.has(split, lang):
                if splits:
                    print(f"no {split} file for {lang}, nothing to score")
                continue
            d = source.load(split, lang)
            if d.labeled:
                out.append(d)
            elif splits:  # asked for explicitly: say why it is skipped
                print(f"{d.path}: unlabeled, nothing to score")
    return out


def evaluate(run_dir: Path, splits: Sequence[str] | None = None, languages: Sequence[str] | None = None) -> dict:
    """Score every set at 0.5 and at the tuned thresholds, with bootstrap intervals; write metrics, tables, figures."""
    from emotionlib.model import load_model

    run_dir = Path(run_dir)
    cfg = read_config(run_dir)
    model, tokenizer, meta = load_model(run_dir / "model")
    model_labels = meta["labels"]
    tuned = np.asarray(meta["thresholds"])
    out_dir = run_dir / "eval"
    (out_dir / "predictions").mkdir(parents=True, exist_ok=True)
    train_langs = D.train_languages(cfg)
    sets, rows, label_rows = {}, [], []
    for d in eval_sets(cfg, splits, languages):
        key = f"{d.split}/{d.lang}"
        labels = [lab for lab in model_labels if lab in d.labels]  # a zero-shot language may have others
        cols = [model_labels.index(lab) for lab in labels]
        gold = d.y[:, [d.labels.index(lab) for lab in labels]]
        probs = predict_proba(model, tokenizer, d.texts, meta["max_length"], cfg.eval_batch_size)[:, cols]
        pd.DataFrame(probs, columns=labels).assign(id=d.ids).to_csv(
            out_dir / "predictions" / f"{d.split}_{d.lang}.csv", index=False)
        zero_shot = d.lang not in train_langs
        entry = {"split": d.split, "lang": d.lang, "zero_shot": zero_shot, "labels": labels,
                 "labels_not_scored": [lab for lab in d.labels if lab not in labels], "n": len(d)}
        for name, thr in (("threshold_0.5", 0.5), ("tuned_thresholds", tuned[cols])):
            pred = decide(probs, thr)
            s = scores(gold, pred, labels)
            s["macro_f1_ci95"] = bootstrap_ci(gold, pred, cfg.n_bootstrap, cfg.seed)
            entry[name] = s
            rows.append({"set": key, "split": d.split, "lang": d.lang, "zero_shot": zero_shot, "thresholds": name,
                         "n": len(d), "macro_f1": s["macro_f1"], "ci_low": s["macro_f1_ci95"][0],
                         "ci_high": s["macro_f1_ci95"][1], "macro_precision": s["macro_precision"],
                         "macro_recall": s["macro_recall"], "micro_f1": s["micro_f1"]})
            label_rows += [{"set": key, "thresholds": name, "label": lab, **v} for lab, v in s["per_label"].items()]
        pred = decide(probs, tuned[cols])
        plots.confusion_matrices(gold, pred, labels, f"{key} (tuned thresholds)",
                                 out_dir / f"confusion_{d.split}_{d.lang}.png")
        plots.cooccurrence(gold, pred, labels, key, out_dir / f"cooccurrence_{d.split}_{d.lang}.png")
        per_label = pd.DataFrame([{"label": lab, **v} for lab, v in entry["tuned_thresholds"]["per_label"].items()])
        plots.per_label_bars(per_label, f"{key}: per-label scores (tuned thresholds)",
                             out_dir / f"per_label_{d.split}_{d.lang}.png")
        sets[key] = entry
    if not sets:
        raise ValueError(f"{run_dir}: no labeled evaluation set among splits={splits} languages={languages}")
    summary = pd.DataFrame(rows)
    summary.to_csv(out_dir / "summary.csv", index=False)
    pd.DataFrame(label_rows).to_csv(out_dir / "per_label.csv", index=False)
    no_reference = pd.DataFrame(columns=["lang", *PUBLISHED_COLUMNS]) if cfg.own_data else None
    comparison = with_baseline(published_comparison(summary, no_reference), cfg)
    comparison.to_csv(out_dir / "published_comparison.csv", index=False)
    if len(comparison):
        plots.language_bars(comparison.assign(lang=[f"{l}*" if s == "dev" else l for l, s in
                                                zip(comparison["lang"], comparison["scored_on"])]),
                            [c for c in ("emotionlib", "tfidf_lr", "best_published") if comparison[c].notna().any()],
                            "macro-F1 x100: this run, TF-IDF baseline" + ("" if cfg.own_data else
                                                                         ", best published (* scored on dev)"),
                            out_dir / "languages.png")
    headline_key = next((k for prefix in ("dev/", "test/") for k in sets if k.startswith(prefix)), next(iter(sets)))
    h = sets[headline_key]["tuned_thresholds"]
    metrics = {"headline": {"set": headline_key, "thresholds": "tuned on the validation part",
                            "macro_f1": h["macro_f1"], "macro_f1_ci95": h["macro_f1_ci95"],
                            "macro_precision": h["macro_precision"], "macro_recall": h["macro_recall"],
                            "macro_f1_at_0.5": sets[headline_key]["threshold_0.5"]["macro_f1"]},
               "thresholds": dict(zip(model_labels, tuned.tolist())), "sets": sets,
               "provenance": provenance({"run": str(run_dir), "n_bootstrap": cfg.n_bootstrap})}
    write_json(run_dir / "metrics.json", metrics)
    return {"metrics": metrics, "summary": summary[["set", "thresholds", "n", "macro_f1", "ci_low", "ci_high"]]
            .round(4).to_dict("records")}


def with_baseline(comparison: pd.DataFrame, cfg) -> pd.DataFrame:
    """Add the TF-IDF + logistic regression baseline (same split as our column) for each language."""
    from emotionlib.baseline import fit_language

    source = D.source_for(cfg)
    base = {}
    for lang, split in zip(comparison["lang"], comparison["scored_on"]):
        base[lang] = round(100 * fit_language(source, lang, cfg.seed)[f"{split}_macro_f1"], 2)
    out = comparison.copy()
    out.insert(out.columns.get_loc("emotionlib") + 1, "tfidf_lr", out["lang"].map(base))
    return out


def reference_table(path: str | Path | None = None) -> pd.DataFrame:
    """BRIGHTER Table 5 (macro-F1 x100), quoted as published; $EMOTIONLIB_REFERENCE or ../shared/reference."""
    import os

    candidates = [path, os.environ.get(REFERENCE_ENV),
                  Path(__file__).resolve().parents[2] / "shared/reference/brighter_table5_monolingual.csv"]
    for c in candidates:
        if c and Path(c).is_file():
            return pd.read_csv(c, dtype={"lang": str})
    raise FileNotFoundError("BRIGHTER Table 5 not found: set $EMOTIONLIB_REFERENCE to brighter_table5_monolingual.csv")


def published_comparison(summary: pd.DataFrame, reference: pd.DataFrame | None = None,
                         column: str = "emotionlib") -> pd.DataFrame:
    """Per language: our macro-F1 x100 (test where labeled, else dev, marked) beside the published columns."""
    try:
        ref = reference if reference is not None else reference_table()
    except FileNotFoundError:
        ref = pd.DataFrame(columns=["lang", *PUBLISHED_COLUMNS])
    ours = summary[(summary["thresholds"] == "tuned_thresholds") & summary["split"].isin(["test", "dev"])]
    rows = []
    for lang, g in ours.groupby("lang", sort=False):
        pick = g[g["split"] == "test"] if (g["split"] == "test").any() else g[g["split"] == "dev"]
        r = pick.iloc[0]
        rows.append({"lang": lang, "scored_on": r["split"], column: round(100 * r["macro_f1"], 2)})
    table = pd.DataFrame(rows, columns=["lang", "scored_on", column]).merge(ref, on="lang", how="left")
    published = [c for c in PUBLISHED_COLUMNS if c in table]
    table["best_published"] = table[published].max(axis=1)
    table[f"{column}_minus_best"] = (table[column] - table["best_published"]).round(2)
    return table
