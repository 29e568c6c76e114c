"""docs/multilingual.md's table of a `multilingual-large` run: its eval/stack_languages.csv (per language: the
stack, each member at its own thresholds, the TF-IDF baseline, the best published figure, the cross-fitted
validation figure and the weights) as Markdown, and the counts issue 45's goal is stated in, over the languages with
a published figure and a labelled test file: how many the stack is above the best published figure on, their mean,
and the largest shortfall under the TF-IDF baseline.

    python experiments/multilingual_large/table.py runs/mll-s42
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from emotionlib.runs import RunLayout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    args = ap.parse_args()
    t = pd.read_csv(RunLayout(args.run).stack_languages)
    cols = list(t.columns)
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in t.itertuples(index=False):
        print(
            "| " + " | ".join("—" if pd.isna(v) else (f"{v:.2f}" if isinstance(v, float) else str(v)) for v in r) + " |"
        )
    g = t[(t["scored_on"] == "test") & t["best_published"].notna()]
    above = g[g["stack_minus_best"] > 0]["lang"].tolist()
    worst = g.loc[g["stack_minus_tfidf"].idxmin()]
    print(
        f"\n{len(g)} languages with a published figure and a labelled test file: above the best published on "
        f"{len(above)} ({', '.join(above)}); mean {g['stack'].mean():.2f} (best published {g['best_published'].mean():.2f}, "
        f"TF-IDF {g['tfidf_baseline'].mean():.2f}); worst against TF-IDF {worst['stack_minus_tfidf']:+.2f} "
        f"({worst['lang']}); below TF-IDF by more than 1 point: "
        f"{', '.join(g[g['stack_minus_tfidf'] < -1]['lang']) or 'none'}"
    )
    members = [c for c in t.columns if c in ("network", "features_lr", "tfidf_lr")]
    print("members alone, mean over the same languages: " + ", ".join(f"{m} {g[m].mean():.2f}" for m in members))
    print(f"cross-fitted validation, mean over all {len(t)} languages: {t['val_cross_fitted'].mean():.2f}")


if __name__ == "__main__":
    main()
