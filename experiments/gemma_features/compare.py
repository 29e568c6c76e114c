"""The per-language table of docs/multilingual.md: stack_probe.py's rows (EmbeddingGemma features + TF-IDF, no
network) beside today's stack (run ml-ft: me5-small network, me5-small features and TF-IDF; ml_ft_stack.csv holds
its figures as docs/multilingual.md gives them) and the best published figure (BRIGHTER Table 5). Prints a markdown
table and the counts the goal is stated in (languages above the best published figure, their mean, the largest
shortfall under the TF-IDF baseline), over the languages with a published figure and a labelled test file.

  python experiments/gemma_features/compare.py experiments/gemma_features/probe.csv
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("probe", type=Path)
    ap.add_argument(
        "--reference",
        type=Path,
        default=Path(
            os.environ.get(
                "EMOTIONLIB_REFERENCE", HERE.parents[2] / "shared" / "reference" / "brighter_table5_monolingual.csv"
            )
        ),
    )
    args = ap.parse_args()
    probe = pd.read_csv(args.probe)
    today = pd.read_csv(HERE / "ml_ft_stack.csv")
    ref = pd.read_csv(args.reference).set_index("lang")
    best = ref.max(axis=1).rename("best_published")
    t = probe.merge(today, on="lang", suffixes=("", "_today")).merge(best, left_on="lang", right_index=True, how="left")
    t["new_minus_today"] = t["stack"] - t["stack_today"]
    t["new_minus_best"] = t["stack"] - t["best_published"]
    t["new_minus_tfidf"] = t["stack"] - t["tfidf_baseline"]
    cols = [
        "lang",
        "scored_on",
        "stack",
        "features_lr",
        "tfidf_lr",
        "stack_today",
        "network",
        "best_published",
        "new_minus_today",
        "new_minus_best",
        "new_minus_tfidf",
        "val_oof",
        "w_features",
        "c",
    ]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for _, r in t[cols].iterrows():
        print(
            "| "
            + " | ".join(
                "—" if pd.isna(v) else f"{v:g}" if k == "c" else f"{v:.2f}" if isinstance(v, float) else str(v)
                for k, v in r.items()
            )
            + " |"
        )
    scored = t[t["best_published"].notna() & (t["scored_on"] == "test")]
    for name in ("stack", "stack_today"):
        above = scored[scored[name] > scored["best_published"]]["lang"].tolist()
        print(
            f"{name}: above the best published on {len(above)} of {len(scored)} ({', '.join(above)}); mean "
            f"{scored[name].mean():.2f} (best published {scored['best_published'].mean():.2f}); worst against the "
            f"TF-IDF baseline {(scored[name] - scored['tfidf_baseline']).min():+.2f}"
        )
    both = scored[["stack", "stack_today"]].max(axis=1)
    print(
        f"the better of the two per language (an upper bound chosen on test, not a result): mean {both.mean():.2f}, "
        f"above the best published on {int((both > scored['best_published']).sum())}"
    )


if __name__ == "__main__":
    main()
