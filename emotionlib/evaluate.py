"""Scoring a trained run on the validation part, the official dev file and labeled test files."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from emotionlib import data as D
from emotionlib import plots
from emotionlib.run_config import read_config
from emotionlib.compare import PUBLISHED_COLUMNS, mark_dev, published_comparison, with_baseline
from emotionlib.metrics import bootstrap_ci, scores
from emotionlib.predict import decide, predict_proba
from emotionlib.runs import RunLayout, atomic_path, read_json, run_lock, write_json
from emotionlib.provenance import provenance
from emotionlib.run_records import record_step, step_inputs, step_is_current
from emotionlib.classifier import load_run
from emotionlib.metadata import read_finished
from emotionlib.split import training_parts

log = logging.getLogger(__name__)


def eval_sets(
    cfg, layout: RunLayout, splits: Sequence[str] | None, languages: Sequence[str] | None
) -> list[D.LangSplit]:
    """The sets to score: val (training languages), dev, and test where its labels are present."""
    source = D.source_for(cfg)
    if languages and not cfg.own_data:
        langs = D.expand_languages(languages)
    else:
        langs = list(languages or D.eval_languages(cfg))
    out = []
    for split in splits or ("val", "dev", "test"):
        if split == "val":
            out += [p for p in training_parts(cfg, layout)[1] if p.lang in langs]
            continue
        for lang in langs:
            if not source.has(split, lang):
                if splits:
                    log.info(f"no {split} file for {lang}, nothing to score")
                continue
            d = source.load(split, lang)
            if d.labeled:
                out.append(d)
            elif splits:  # asked for explicitly: say why it is skipped
                log.info(f"{d.path}: unlabeled, nothing to score")
    return out


def headline_set(cfg) -> list[str]:
    """The sets that may carry a run's headline, in order: its first language's dev, test, then validation part.

    Fixed by the config, so no `evaluate --split/--lang` call can move it."""
    lang = D.train_languages(cfg)[0]
    return [f"dev/{lang}", f"test/{lang}", f"val/{lang}"]


def evaluate(run_dir: Path, splits: Sequence[str] | None = None, languages: Sequence[str] | None = None) -> dict:
    """Score sets at 0.5 and at the tuned thresholds, with bootstrap intervals; one result file per set
    (eval/sets/<split>_<lang>.json), then the tables, figures and metrics.json are rebuilt from all of them."""
    layout = RunLayout(run_dir)
    read_finished(layout.root)  # config.yaml, the split and the model as training wrote them, before any is read
    cfg = read_config(layout.root)
    inputs = step_inputs(layout, [layout.config, layout.split, layout.weights, layout.metadata, layout.stack_meta])
    source = D.source_for(cfg)  # the scored files: BRIGHTER's are checked against the manifest, your own hashed
    checksums = source.checksums((s, lang) for lang in D.eval_languages(cfg) for s in ("dev", "test"))
    recorded = read_json(layout.split).get("checksums", {})
    for name, sha in checksums.items():  # the files the run's provenance names, not others under their names
        if name in recorded and recorded[name] != sha:
            raise ValueError(
                f"{name}: changed since the run {layout.root} was made (sha256 {sha[:12]}, recorded "
                f"{recorded[name][:12]} in {layout.relative(layout.split)}); put the original back, or "
                "train a new run on the new file"
            )
    inputs |= {f"data {k}": v for k, v in checksums.items()}
    outputs = [layout.metrics, layout.eval_summary, layout.per_label, layout.comparison]
    if splits is None and languages is None and step_is_current(layout, "evaluate", inputs, outputs):
        log.info(f"{layout.root}: evaluation is up to date with the model and split; skipped")
        metrics = read_json(layout.metrics)
        return {
            "metrics": metrics,
            "summary": pd.read_csv(layout.eval_summary)[["set", "thresholds", "n", "macro_f1", "ci_low", "ci_high"]]
            .round(4)
            .to_dict("records"),
        }
    model, tokenizer, meta = load_run(layout.root)
    if getattr(model, "by_language", False):  # the stack's features of the scored texts are cached, as in fitting
        model.cache_root = D.cache_dir() / "features"
    sets = eval_sets(cfg, layout, splits, languages)
    if not sets:
        raise ValueError(f"{layout.root}: no labeled evaluation set among splits={splits} languages={languages}")
    with run_lock(layout):
        for d in sets:
            write_json(layout.set_metrics(d.split, d.lang), score_set(d, model, tokenizer, meta, cfg, layout))
        metrics, summary = collect(cfg, layout, meta)
        if splits is None and languages is None:
            record_step(layout, "evaluate", inputs, outputs)
    scored = summary[summary["set"].isin([f"{d.split}/{d.lang}" for d in sets])]  # this call's sets only
    return {
        "metrics": metrics,
        "summary": scored[["set", "thresholds", "n", "macro_f1", "ci_low", "ci_high"]].round(4).to_dict("records"),
    }


def _scored_at_thresholds(entry: dict, gold, probs, labels, tuned, key: str, d: D.LangSplit, zero_shot: bool, cfg):
    """Scores at 0.5 and at the tuned thresholds, with intervals, into `entry`; the metrics table's rows."""
    rows, label_rows = [], []
    for name, thr in (("threshold_0.5", 0.5), ("tuned_thresholds", tuned)):
        pred = decide(probs, thr)
        s = scores(gold, pred, labels)
        s["macro_f1_ci95"] = bootstrap_ci(gold, pred, cfg.n_bootstrap, cfg.seed)
        entry[name] = s
        rows.append(
            {
                "set": key,
                "split": d.split,
                "lang": d.lang,
                "zero_shot": zero_shot,
                "thresholds": name,
                "n": len(d),
                "macro_f1": s["macro_f1"],
                "ci_low": s["macro_f1_ci95"][0],
                "ci_high": s["macro_f1_ci95"][1],
                "macro_precision": s["macro_precision"],
                "macro_recall": s["macro_recall"],
                "micro_f1": s["micro_f1"],
            }
        )
        label_rows += [{"set": key, "thresholds": name, "label": lab, **v} for lab, v in s["per_label"].items()]
    return rows, label_rows


def _set_figures(entry: dict, gold, pred, labels, key: str, d: D.LangSplit, layout: RunLayout) -> None:
    """A set's confusion matrices, label co-occurrence and per-label bars (tuned thresholds)."""
    plots.confusion_matrices(
        gold, pred, labels, f"{key} (tuned thresholds)", layout.eval_figure("confusion", d.split, d.lang)
    )
    plots.cooccurrence(gold, pred, labels, key, layout.eval_figure("cooccurrence", d.split, d.lang))
    per_label = pd.DataFrame([{"label": lab, **v} for lab, v in entry["tuned_thresholds"]["per_label"].items()])
    plots.per_label_bars(
        per_label, f"{key}: per-label scores (tuned thresholds)", layout.eval_figure("per_label", d.split, d.lang)
    )


def score_set(d: D.LangSplit, model, tokenizer, meta: dict, cfg, layout: RunLayout) -> dict:
    """One set: predictions, scores at both thresholds with intervals, and its figures."""
    model_labels, tuned = meta["labels"], np.asarray(meta["thresholds"])
    key = f"{d.split}/{d.lang}"
    labels = [lab for lab in model_labels if lab in d.labels]  # a zero-shot language may have others
    cols = [model_labels.index(lab) for lab in labels]
    gold = d.y[:, [d.labels.index(lab) for lab in labels]]
    members = {}
    if getattr(model, "by_language", False):  # a per-language stack: its thresholds, and each member beside it
        probs, tuned = stacked_proba(model, d, labels, gold, cfg.eval_batch_size, members)
    else:
        probs = predict_proba(
            model,
            tokenizer,
            d.texts,
            meta["max_length"],
            cfg.eval_batch_size,
            precision=meta.get("mixed_precision", "no"),
            langs=[d.lang] * len(d),
        )[:, cols]
    layout.predictions(d.split, d.lang).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(layout.predictions(d.split, d.lang)) as tmp:
        pd.DataFrame(probs, columns=labels).assign(id=d.ids).to_csv(tmp, index=False)
    zero_shot = d.lang not in D.train_languages(cfg)
    entry = {
        "split": d.split,
        "lang": d.lang,
        "zero_shot": zero_shot,
        "labels": labels,
        "labels_not_scored": [lab for lab in d.labels if lab not in labels],
        "n": len(d),
    }
    if members:
        entry["members_macro_f1"] = members
    rows, label_rows = _scored_at_thresholds(entry, gold, probs, labels, tuned[cols], key, d, zero_shot, cfg)
    _set_figures(entry, gold, decide(probs, tuned[cols]), labels, key, d, layout)
    return {"entry": entry, "rows": rows, "label_rows": label_rows}


def stacked_proba(
    stack, d: D.LangSplit, labels: list[str], gold: np.ndarray, batch_size: int, members: dict
) -> tuple[np.ndarray, np.ndarray]:
    """A stack's probabilities over `labels` and its thresholds for `d`'s language (in the model's label order);
    fills `members` with each member's macro-F1 at its own thresholds fitted on the
    language's validation part (the stack's members are scored on the same rows)."""
    cols = [stack.labels.index(lab) for lab in labels]
    tuned = stack.thresholds_for(d.lang)
    if d.lang not in stack.stack["languages"]:  # zero-shot: the network alone
        return stack.predict_proba(d.texts, batch_size, lang=d.lang)[:, cols], tuned
    f = stack.stack["languages"][d.lang]
    own = [f["labels"].index(lab) for lab in labels]
    probs = stack.member_proba(d.texts, d.lang, batch_size)
    for name, p in probs.items():
        members[name] = scores(gold, decide(p[:, own], np.asarray(f["member_thresholds"][name])[own]), labels)[
            "macro_f1"
        ]
    return stack.mix(probs, d.lang)[:, cols], tuned


def stack_languages(layout: RunLayout, comparison: pd.DataFrame, sets: dict) -> pd.DataFrame:
    """Per language (x100): the stack, each of its members (at their own thresholds) on the same file, the TF-IDF
    baseline and the best published figure, the stack's cross-fitted validation figure and its member weights;
    written with the chart of "stack minus best published"."""
    stack = read_json(layout.stack_meta)
    rows = []
    for c in comparison.to_dict("records"):
        f = stack["languages"].get(c["lang"])
        if f is None:
            continue
        members = sets.get(f"{c['scored_on']}/{c['lang']}", {}).get("members_macro_f1", {})
        row = {"lang": c["lang"], "scored_on": c["scored_on"], "stack": c["emotionlib"]}
        row |= {m: round(100 * v, 2) for m, v in members.items()}
        row |= {
            "tfidf_baseline": c.get("tfidf_lr"),
            "best_published": c.get("best_published"),
            "stack_minus_best": c.get("emotionlib_minus_best"),
            "stack_minus_tfidf": round(c["emotionlib"] - c["tfidf_lr"], 2) if "tfidf_lr" in c else None,
            "val_cross_fitted": round(100 * f["val_oof"], 2),
        }
        row |= {f"w_{m}": w for m, w in f["weights"].items()}
        rows.append(row)
    table = pd.DataFrame(rows)
    with atomic_path(layout.stack_languages) as tmp:
        table.to_csv(tmp, index=False)
    shown = table[table["best_published"].notna()] if "best_published" in table else table.iloc[:0]
    if len(shown):
        plots.difference_bars(
            mark_dev(shown),
            "stack_minus_best",
            "per-language stack minus the best published figure (macro-F1 points; * scored on dev)",
            layout.stack_minus_best_png,
        )
    return table


def collect(cfg, layout: RunLayout, meta: dict) -> tuple[dict, pd.DataFrame]:
    """Tables, comparison, figure and metrics.json from every per-set result file of the run."""
    order = {"val": 0, "dev": 1, "test": 2}
    langs = {lang: i for i, lang in enumerate(dict.fromkeys(D.train_languages(cfg) + D.eval_languages(cfg)))}
    results = sorted(
        (read_json(p) for p in layout.eval_sets.glob("*.json")),
        key=lambda r: (order[r["entry"]["split"]], langs.get(r["entry"]["lang"], len(langs)), r["entry"]["lang"]),
    )
    sets = {f"{r['entry']['split']}/{r['entry']['lang']}": r["entry"] for r in results}
    summary = pd.DataFrame([row for r in results for row in r["rows"]])
    with atomic_path(layout.eval_summary) as tmp:
        summary.to_csv(tmp, index=False)
    with atomic_path(layout.per_label) as tmp:
        pd.DataFrame([row for r in results for row in r["label_rows"]]).to_csv(tmp, index=False)
    no_reference = pd.DataFrame(columns=["lang", *PUBLISHED_COLUMNS]) if cfg.own_data else None
    comparison = with_baseline(published_comparison(summary, no_reference), cfg)
    with atomic_path(layout.comparison) as tmp:
        comparison.to_csv(tmp, index=False)
    if len(comparison):
        plots.language_bars(
            mark_dev(comparison),
            [c for c in ("emotionlib", "tfidf_lr", "best_published") if comparison[c].notna().any()],
            "macro-F1 x100: this run, TF-IDF baseline" + ("" if cfg.own_data else ", best published (* scored on dev)"),
            layout.languages_png,
        )
    if layout.stack_meta.is_file() and len(comparison):
        stack_languages(layout, comparison, sets)
    key = next((k for k in headline_set(cfg) if k in sets), None)
    headline = None
    if key:
        h = sets[key]["tuned_thresholds"]
        headline = {
            "set": key,
            "thresholds": "tuned on the validation part",
            "macro_f1": h["macro_f1"],
            "macro_f1_ci95": h["macro_f1_ci95"],
            "macro_precision": h["macro_precision"],
            "macro_recall": h["macro_recall"],
            "macro_f1_at_0.5": sets[key]["threshold_0.5"]["macro_f1"],
        }
    metrics = {
        "headline": headline,
        "thresholds": dict(zip(meta["labels"], meta["thresholds"])),
        "sets": sets,
        "provenance": provenance({"run": layout.root.name, "n_bootstrap": cfg.n_bootstrap}),
    }
    write_json(layout.metrics, metrics)
    return metrics, summary
