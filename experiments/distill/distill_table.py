"""Distillation on English: a MiniLM student of a stacked teacher, against MiniLM trained alone and the teacher.

The teacher is one run of the quick profile (MiniLM) with an English stack of its network, a logistic regression
on a frozen encoder's layers (--feature-model, default EmbeddingGemma-300M layers 16 and 24) and TF-IDF. For each
seed, MiniLM alone (the quick profile) and the student (the quick profile with `teacher=<the teacher run>`) are
trained on the same split. Every model is scored on the validation part the same way: macro-F1 at 0.5, and with
per-label thresholds cross-fitted over 5 folds of the validation part (fitted on four, scored on the fifth), which
is the stack's own validation figure. With --speed, `predict` texts/s of each kind on the validation texts
(run it on a quiet machine: nothing else may run beside it).

  python experiments/distill/distill_table.py --seeds 42 43 44 --out experiments/distill/distill.csv

--student-set changes the student's settings (its runs are then named distill-student-<--tag>-s<seed>), e.g. more
texts to learn the teacher from, augmented copies that learn the teacher's probabilities alone:

  python experiments/distill/distill_table.py --student-set augment=eda augment_copies=2 augment_strength=0.2 \
      --tag eda2 --out experiments/distill/distill-eda2.csv
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from emotionlib.split import training_parts
from emotionlib.combine import stack_fit as L
from emotionlib.classifier import Classifier
from emotionlib.config import load_config
from emotionlib.metrics import scores
from emotionlib.predict import decide
from emotionlib.runs import RunLayout
from emotionlib.train import train


def figures(run: Path, cfg, fold_seed: int) -> dict:
    """Validation macro-F1 of a run at 0.5 and with cross-fitted per-label thresholds."""
    _, val_parts = training_parts(cfg, RunLayout(run))
    va = val_parts[0]
    clf = Classifier(run)
    probs = clf.predict_proba(va.texts, lang=va.lang)[:, [clf.labels.index(lab) for lab in va.labels]]
    return {
        "val@0.5": scores(va.y, decide(probs, 0.5), va.labels)["macro_f1"],
        "val cross-fitted": scores(va.y, L.cross_fit({"m": probs}, va.y, 5, fold_seed), va.labels)["macro_f1"],
    }


def speed(run: Path, texts: list[str], repeats: int = 2) -> float:
    clf = Classifier(run)
    clf.predict_proba(texts[:64], lang="eng")  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        clf.predict_proba(texts, lang="eng")
        best = min(best, time.perf_counter() - t0)
    return len(texts) / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", nargs="+", type=int, default=[42, 43, 44])
    ap.add_argument("--feature-model", default="embeddinggemma")
    ap.add_argument("--feature-layers", default="16,-1")
    ap.add_argument("--distill-weight", type=float, default=0.5)
    ap.add_argument("--runs-dir", default="runs")
    ap.add_argument("--speed", action="store_true", help="also predict texts/s of each kind (quiet machine)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--student-set", nargs="*", default=[], help="key=value settings of the student")
    ap.add_argument("--tag", default="", help="names the student runs made with --student-set")
    args = ap.parse_args()

    teacher = load_config(
        "quick",
        {
            "run_id": "distill-teacher",
            "runs_dir": args.runs_dir,
            "stack": "network,features_lr,tfidf_lr",
            "feature_model": args.feature_model,
            "feature_layers": args.feature_layers,
        },
    )
    train(teacher, resume=True)
    table = L.fit_stack(teacher)
    student_name = "-".join(["student", *([args.tag] if args.tag else [])])
    rows = [
        {
            "model": "teacher (stack)",
            "seed": teacher.seed,
            "val@0.5": None,
            "val cross-fitted": float(table["stack_val_oof"].iloc[0]),
        }
    ]
    print(rows[-1], flush=True)
    for seed in args.seeds:
        student = {
            "teacher": str(teacher.run_dir),
            "distill_weight": args.distill_weight,
            **dict(kv.split("=", 1) for kv in args.student_set),
        }
        for kind, extra in (("MiniLM alone", {}), ("student", student)):
            name = "alone" if not extra else student_name
            cfg = load_config(
                "quick", {"run_id": f"distill-{name}-s{seed}", "runs_dir": args.runs_dir, "seed": seed, **extra}
            )
            t0 = time.time()
            run = train(cfg, resume=True)
            rows.append(
                {
                    "model": kind,
                    "seed": seed,
                    **figures(run, cfg, teacher.seed),
                    "train_seconds": round(time.time() - t0, 1),
                }
            )
            print(rows[-1], flush=True)
    out = pd.DataFrame(rows)
    if args.speed:
        _, val_parts = training_parts(teacher, RunLayout(teacher.run_dir))
        texts = list(val_parts[0].texts)
        first = args.seeds[0]
        for kind, run in (
            ("teacher (stack)", teacher.run_dir),
            ("MiniLM alone", Path(args.runs_dir) / f"distill-alone-s{first}"),
            ("student", Path(args.runs_dir) / f"distill-{student_name}-s{first}"),
        ):
            out.loc[out["model"] == kind, "predict texts/s"] = round(speed(run, texts), 1)
    summary = out.groupby("model", sort=False)[["val@0.5", "val cross-fitted"]].agg(["mean", "std"]).round(4)
    print(out.round(4).to_string(index=False))
    print(summary.to_string())
    alone = out[out["model"] == "MiniLM alone"]["val cross-fitted"].mean()
    student = out[out["model"] == "student"]["val cross-fitted"].mean()
    gain = rows[0]["val cross-fitted"] - alone
    if gain > 0:
        print(
            f"the student keeps {100 * (student - alone) / gain:.0f} % of the teacher's gain over MiniLM alone "
            "(cross-fitted validation)"
        )
    if args.out:
        out.round(4).to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
