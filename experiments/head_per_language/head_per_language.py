"""does `head_per_language` (each language's own bias vector, or its own linear layer, on top of
the shared head, trained jointly) beat the single joint head, and does language-balanced sampling
(`language_temperature`) help, in the frozen mode?

    python experiments/head_per_language/head_per_language.py --seeds 42 43 44 --stack-seeds 42 --out bench
    python experiments/head_per_language/head_per_language.py --variants bias --temperatures 1 3 --seeds 42 43 --stack-seeds

For each variant (none, bias, head), temperature and seed, a run of the `multilingual` profile in the frozen mode
(frozen multilingual-e5-small, cached features, a linear probe's rate and epochs: FROZEN below; the profile's own
settings otherwise) is trained under <out>/runs and compared on the 28 validation parts:

- `val@0.5`: the mean over languages of the validation macro-F1 at threshold 0.5 at the best epoch (training's own
  early-stopping figure, so an upper estimate);
- for the seeds in --stack-seeds, the profile's per-language stack is fitted on the run, and two cross-fitted
  figures are read from it (each fold scored by weights and thresholds fitted on the other folds): `network`, the
  head alone at per-language thresholds, and `stack`, the whole per-language stack.

Nothing else should run meanwhile (the seconds are wall time). Writes <out>/head_per_language.{json,md}.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path


from emotionlib.config import load_config
from emotionlib.combine.stack_fit import fit_stack
from emotionlib.runs import RunLayout, read_json, write_json
from emotionlib.provenance import provenance
from emotionlib.train import train

VARIANTS = ("none", "bias", "head")
# the frozen mode as the multilingual profile had it until it fine-tuned (a linear probe: 2e-3 underfits)
FROZEN = {
    "freeze_layers": -1,
    "learning_rate": 1e-2,
    "epochs": 40,
    "patience": 5,
    "warmup_ratio": 0.0,
    "group_by_length": False,
    "checkpoint_every": 0,
}


def mean_sd(values: list[float]) -> str:
    if not values:
        return "—"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {sd:.4f}" if len(values) > 1 else f"{values[0]:.4f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    ap.add_argument("--stack-seeds", type=int, nargs="*", default=[42])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument("--temperatures", type=float, nargs="+", default=[1.0])
    ap.add_argument("--out", type=Path, default=Path("bench"))
    args = ap.parse_args()
    runs_dir = (args.out / "runs").resolve()
    rows = []
    settings = [(v, t) for v in args.variants for t in args.temperatures]
    for variant, temperature in settings:
        for seed in args.seeds:
            name = f"hpl-{variant}-s{seed}" + (f"-t{temperature:g}" if temperature != 1 else "")
            cfg = load_config(
                "multilingual",
                FROZEN
                | {
                    "run_id": name,
                    "runs_dir": str(runs_dir),
                    "seed": seed,
                    "head_per_language": variant,
                    "language_temperature": temperature,
                },
            )
            layout = RunLayout(cfg.run_dir)
            if not layout.train_summary.is_file():
                train(cfg)
            summary = read_json(layout.train_summary)
            row = {
                "variant": variant,
                "temperature": temperature,
                "seed": seed,
                "val_at_0.5": summary["best_val_macro_f1"],
                "best_epoch": summary["best_epoch"],
                "train_seconds": summary["wall_seconds"],
            }
            if seed in args.stack_seeds:
                fit_stack(cfg)
                langs = read_json(layout.stack_meta)["languages"].values()
                row["network_cross_fitted"] = statistics.mean(f["members_val_oof"]["network"] for f in langs)
                row["stack_cross_fitted"] = statistics.mean(f["val_oof"] for f in langs)
                row["mean_network_weight"] = statistics.mean(f["weights"]["network"] for f in langs)
            print(row, flush=True)
            rows.append(row)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(
        args.out / "head_per_language.json",
        {"rows": rows, "args": vars(args) | {"out": str(args.out)}, "provenance": provenance()},
    )
    lines = [
        "| head_per_language | language_temperature | seeds | val@0.5 (mean ± sd) | network, cross-fitted | stack, cross-fitted | "
        "mean network weight | train s (mean) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for variant, temperature in settings:
        mine = [r for r in rows if (r["variant"], r["temperature"]) == (variant, temperature)]
        stacked = [r for r in mine if "stack_cross_fitted" in r]
        lines.append(
            f"| {variant} | {temperature:g} | {' '.join(str(r['seed']) for r in mine)} | "
            f"{mean_sd([r['val_at_0.5'] for r in mine])} | "
            f"{mean_sd([r['network_cross_fitted'] for r in stacked])} | "
            f"{mean_sd([r['stack_cross_fitted'] for r in stacked])} | "
            f"{mean_sd([r['mean_network_weight'] for r in stacked])} | "
            f"{statistics.mean(r['train_seconds'] for r in mine):.0f} |"
        )
    (args.out / "head_per_language.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
