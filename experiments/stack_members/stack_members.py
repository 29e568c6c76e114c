"""Which members a stack needs: the cross-fitted validation macro-F1 of stacks over chosen trained runs (each a
network member), with or without the frozen-features and TF-IDF members, for one language on the first run's split
(every run must share it). Each member set is combined and cross-fitted exactly as `langstack` does (weights over
the simplex and per-label thresholds fitted on k-1 folds, scored on the held-out fold).

  python experiments/stack_members/stack_members.py --runs runs/best-s42 runs/best-s43 runs/best-s42-m1 \\
      --sets "0" "0 1" "0 features_lr tfidf_lr" "0 1 2 features_lr tfidf_lr"

A set names runs by their index in --runs, and the members features_lr and tfidf_lr. The folds are drawn with
each of --fold-seeds (default: the first run's seed), so one set is scored on several fold draws; a set that starts
with "N:" is scored with fold seed N only (a seed's own stack on its own folds, as `make report` fits it), and one
that starts with "NAME N:" is summarised with the other sets of that name:

  python experiments/stack_members/stack_members.py --runs <s42> <s42-m1> <s43> <s43-m1> --fold-seeds 42 43 \\
      --sets "pair 42: 0 1 features_lr" "pair 43: 2 3 features_lr" "0 1 2 3 features_lr"

Prints one line a (set, fold seed), then the mean and sd of each name (or member set) over its fold seeds, and
writes --out (a CSV) when given.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd


def member_probs(runs: list[Path], lang: str, feature_model: str = "", feature_layers: list[int] | None = None):
    """Validation probabilities of every run (named by its index) and of the features (each C) and TF-IDF
    members, as `stack_fit.language_probs` makes them; the gold labels, the label names and the first run's config.
    The features member reads `feature_model` at `feature_layers` (with its prompt), by default the first run's
    encoder at its feature_layers."""
    from emotionlib import data as D
    from emotionlib.split import training_parts
    from emotionlib.combine import stack_fit as L
    from emotionlib.run_config import read_config
    from emotionlib.features import LayerFeatures
    from emotionlib.model import load_model
    from emotionlib.encoders import prompt_for, resolve_encoder
    from emotionlib.runs import RunLayout, read_json

    cfg = read_config(runs[0])
    train_parts, val_parts = training_parts(cfg, RunLayout(runs[0]))
    tr = next(p for p in train_parts if p.lang == lang)
    va = next(p for p in val_parts if p.lang == lang)
    split = read_json(RunLayout(runs[0]).split)
    for run in runs:
        if read_json(RunLayout(run).split) != split:
            raise SystemExit(f"{run}: its split differs from {runs[0]}'s; the members must share one")
    nets = {str(i): load_model(RunLayout(run).model) for i, run in enumerate(runs)}
    feature_model = feature_model or cfg.model
    feats = LayerFeatures(
        resolve_encoder(feature_model),
        feature_layers or cfg.feature_layers,
        cfg.max_length,
        prompt=prompt_for(feature_model),
    )
    texts = tr.texts + va.texts
    cached = dict(zip(texts, feats(texts, D.cache_dir() / "features", cfg.eval_batch_size)))
    members = cfg.replace(stack=["features_lr", L.BASELINE], stack_runs=[])  # every run comes in as a further one
    probs, _ = L.language_probs(members, tr, va, L.Members(nets["0"][2], others=nets, cached=cached))
    return probs, va.y, list(va.labels), cfg


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", nargs="+", type=Path, required=True)
    p.add_argument("--sets", nargs="+", required=True)
    p.add_argument("--lang", default="eng")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--fold-seeds", nargs="+", type=int, help="the seeds the folds are drawn with")
    p.add_argument("--out", type=Path)
    p.add_argument("--feature-model", default="", help="the features member's encoder (default: the first run's)")
    p.add_argument("--feature-layers", nargs="+", type=int, help="its layers (default: the first run's)")
    args = p.parse_args()
    from emotionlib.combine import stack_fit as L
    from emotionlib.metrics import scores

    probs, y, labels, cfg = member_probs(args.runs, args.lang, args.feature_model, args.feature_layers)
    rows = []
    for spec in args.sets:
        name, seeds, wanted = parse_set(spec, args.fold_seeds or [cfg.seed])
        sub = {k: v for k, v in probs.items() if k.split(" ")[0] in wanted}
        if not sub or len({k.split(" ")[0] for k in sub}) != len(wanted):
            raise SystemExit(f"--sets {spec!r}: members are run indexes below {len(args.runs)}, features_lr, tfidf_lr")
        fit = L.combine(sub, y)
        weights = " ".join(f"{n.split(' ')[0]}={w:.1f}" for n, w in zip(fit["names"], fit["weights"]))
        for seed in seeds:
            s = scores(y, L.cross_fit(sub, y, args.folds, seed), labels)
            rows.append(
                {
                    "set": name,
                    "members": " ".join(wanted),
                    "fold_seed": seed,
                    "val_cross_fitted": round(s["macro_f1"], 4),
                    **{lab: round(v["f1"], 4) for lab, v in s["per_label"].items()},
                    "weights_all_rows": weights,
                }
            )
            print(f"{spec:40s} folds {seed}: {rows[-1]['val_cross_fitted']:.4f}  {weights}", flush=True)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    print(table.groupby("set", sort=False)["val_cross_fitted"].agg(["count", "mean", "std"]).round(4).to_string())
    if args.out:
        table.to_csv(args.out, index=False)


def parse_set(spec: str, fold_seeds: list[int]) -> tuple[str, list[int], list[str]]:
    """ "pair 42: 0 1 tfidf_lr" -> ("pair", [42], ["0", "1", "tfidf_lr"]); without "N:", every fold seed and the
    members for a name."""
    head, sep, rest = spec.partition(":")
    if not sep:
        return " ".join(spec.split()), list(fold_seeds), spec.split()
    *name, seed = head.split() or [""]
    if not seed.isdigit():
        raise SystemExit(f"--sets {spec!r}: a fold seed before ':' must be a whole number")
    return " ".join(name) or " ".join(rest.split()), [int(seed)], rest.split()


if __name__ == "__main__":
    main()
