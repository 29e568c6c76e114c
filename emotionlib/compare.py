"""Our figures beside others': BRIGHTER Table 5 as published, and the TF-IDF baseline fitted on the same files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from emotionlib import data as D
from emotionlib.baseline import cached_fit_language, fit_language
from emotionlib.runs import atomic_dir, check_replaceable
from emotionlib import plots

REFERENCE_ENV = "EMOTIONLIB_REFERENCE"
PUBLISHED_COLUMNS = ("LaBSE", "RemBERT", "XLM-R", "mBERT", "mDeBERTa")


def add_best_published(table: pd.DataFrame, column: str) -> pd.DataFrame:
    """The best of the published columns per language, and `column` minus it."""
    published = [c for c in PUBLISHED_COLUMNS if c in table]
    table["best_published"] = table[published].max(axis=1)
    table[f"{column}_minus_best"] = (table[column] - table["best_published"]).round(2)
    return table


def mark_dev(table: pd.DataFrame) -> pd.DataFrame:
    """Languages scored on dev (their test labels are not public) get a * for the charts."""
    return table.assign(lang=[f"{lang}*" if s == "dev" else lang for lang, s in zip(table["lang"], table["scored_on"])])


def with_baseline(comparison: pd.DataFrame, cfg) -> pd.DataFrame:
    """Add the TF-IDF + logistic regression baseline (same split as our column) for each language."""
    source = D.source_for(cfg)
    base = {}
    for lang, split in zip(comparison["lang"], comparison["scored_on"]):
        base[lang] = round(100 * cached_fit_language(source, lang, cfg.seed)[f"{split}_macro_f1"], 2)
    out = comparison.copy()
    out.insert(out.columns.get_loc("emotionlib") + 1, "tfidf_lr", out["lang"].map(base))
    return out


def reference_table(path: str | Path | None = None) -> pd.DataFrame:
    """BRIGHTER Table 5 (macro-F1 x100), quoted as published; $EMOTIONLIB_REFERENCE or ../shared/reference."""
    candidates = [
        path,
        os.environ.get(REFERENCE_ENV),
        Path(__file__).resolve().parents[2] / "shared/reference/brighter_table5_monolingual.csv",
    ]
    for c in candidates:
        if c and Path(c).is_file():
            return pd.read_csv(c, dtype={"lang": str})
    raise FileNotFoundError("BRIGHTER Table 5 not found: set $EMOTIONLIB_REFERENCE to brighter_table5_monolingual.csv")


def published_comparison(
    summary: pd.DataFrame, reference: pd.DataFrame | None = None, column: str = "emotionlib"
) -> pd.DataFrame:
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
    return add_best_published(table, column)


# --- `make baseline`: the TF-IDF baseline for every language beside Table 5 ------------------------------------


def run_baseline(
    out_dir: Path | None, data_dir: str | None = None, languages: Sequence[str] = ("all",), seed: int = 42
) -> pd.DataFrame:
    """The per-language table (x100), beside BRIGHTER Table 5; languages with unlabeled test are scored on dev."""
    from tqdm.auto import tqdm

    if out_dir is not None:
        check_replaceable(out_dir, "baseline")  # before the fitting, not after it
    source = D.DataSource.resolve(data_dir)
    langs = D.expand_languages(languages)
    rows = [fit_language(source, lang, seed) for lang in tqdm(langs, desc="baseline", unit="lang")]
    table = pd.DataFrame(rows)
    table["scored_on"] = np.where(table["test_macro_f1"].isna(), "dev", "test")
    table["baseline"] = (100 * table["test_macro_f1"].fillna(table["dev_macro_f1"])).round(2)
    table = add_best_published(table.merge(reference_table(), on="lang", how="left"), "baseline")
    if out_dir is not None:
        with atomic_dir(out_dir, "baseline") as tmp:
            table.to_csv(tmp / "baseline.csv", index=False)
            plots.language_bars(
                mark_dev(table),
                ["baseline", "best_published"],
                "TF-IDF + logistic regression vs best published (BRIGHTER Table 5); * scored on dev",
                tmp / "baseline.png",
            )
    return table


def headline(table: pd.DataFrame) -> dict:
    """On languages with a labeled test file and a published figure: wins over the best column and the means."""
    t = table[(table["scored_on"] == "test") & table["best_published"].notna()]
    return {
        "languages": int(len(t)),
        "baseline_beats_best_published": int((t["baseline"] > t["best_published"]).sum()),
        "mean_baseline": round(float(t["baseline"].mean()), 2),
        "mean_best_published": round(float(t["best_published"].mean()), 2),
    }
