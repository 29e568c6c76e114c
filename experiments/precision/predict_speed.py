"""`predict` of stacked runs side by side: texts/s of each run's Classifier on the same English texts (the official
dev file and the first test texts; no feature cache, as `predict` runs), the runs interleaved rep by rep.

    python experiments/precision/predict_speed.py --runs runs/prec-best-stack-no-s42 runs/prec-best-stack-bf16-s42
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import emotionlib
from emotionlib import data as D
from emotionlib.provenance import provenance


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=Path, nargs="+", required=True)
    ap.add_argument("--texts", type=int, default=400)
    ap.add_argument("--reps", type=int, default=2)
    args = ap.parse_args()
    source = D.DataSource.resolve()
    texts = (source.load("dev", "eng").texts + source.load("test", "eng").texts)[: args.texts]
    clfs = {run: emotionlib.load(run) for run in args.runs}
    seconds: dict[Path, list[float]] = {run: [] for run in args.runs}
    for _ in range(args.reps):
        for run, clf in clfs.items():
            t0 = time.perf_counter()
            clf.predict_proba(texts, lang="eng")
            seconds[run].append(time.perf_counter() - t0)
    print(f"{len(texts)} English texts, {provenance()['hardware']['cpu']}, median of {args.reps}")
    for run, s in seconds.items():
        precision = clfs[run].model.stack.get("feature_precision", "no") if hasattr(clfs[run].model, "stack") else "-"
        print(f"{run}: {len(texts) / statistics.median(s):.1f} texts/s (features {precision})")


if __name__ == "__main__":
    main()
