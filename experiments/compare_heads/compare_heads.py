"""Which classification head: the seed's linear layer on the raw first token (`head: linear`) or the encoder's
own sequence-classification head (`head: auto`, the one a Hugging Face export holds), over several seeds.

    python experiments/compare_heads/compare_heads.py --config quick --seeds 42 43 44 --out bench

Each (head, seed) is trained and evaluated one after the other (never two trainings at once), with the 80/20
split fixed (split seed 42) so that only the training seed varies. Decide on the 553-row validation part; the
115-row dev file is a check. Writes <out>/heads.json and <out>/heads.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from emotionlib.config import load_config, parse_overrides
from emotionlib.evaluate import evaluate
from emotionlib.runs import read_json, write_json
from emotionlib.provenance import provenance
from emotionlib.train import train

ROOT = Path(__file__).resolve().parents[2]


def one(cfg) -> dict:
    t0 = time.time()
    run = train(cfg)
    m = evaluate(run, splits=["val", "dev"])["metrics"]["sets"]
    s = read_json(run / "train_summary.json")
    dev = m[next(k for k in m if k.startswith("dev/"))]
    return {
        "head": cfg.head,
        "seed": cfg.seed,
        "run": str(run),
        "best_epoch": s["best_epoch"],
        "val_macro_f1_0.5": s["best_val_macro_f1"],
        "dev_macro_f1_0.5": dev["threshold_0.5"]["macro_f1"],
        "dev_macro_f1_tuned": dev["tuned_thresholds"]["macro_f1"],
        "dev_ci95_tuned": dev["tuned_thresholds"]["macro_f1_ci95"],
        "train_wall_seconds": s["wall_seconds"],
        "total_seconds": round(time.time() - t0, 1),
    }


def summarise(rows: list[dict]) -> str:
    lines = [
        "| head | seeds | validation macro-F1 at 0.5, mean ± sd (553 rows) | dev macro-F1 at 0.5 | "
        "dev macro-F1 at tuned thresholds (115 rows) | best epochs |",
        "|---|---|---|---|---|---|",
    ]
    for head in dict.fromkeys(r["head"] for r in rows):
        rs = [r for r in rows if r["head"] == head]

        def ms(key):
            v = [r[key] for r in rs]
            return f"{statistics.mean(v):.4f} ± {statistics.stdev(v) if len(v) > 1 else 0:.4f}"

        lines.append(
            f"| {head} | {', '.join(str(r['seed']) for r in rs)} | {ms('val_macro_f1_0.5')} | "
            f"{ms('dev_macro_f1_0.5')} | {ms('dev_macro_f1_tuned')} | "
            f"{', '.join(str(r['best_epoch']) for r in rs)} |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="quick")
    p.add_argument("--set", nargs="*", default=[])
    p.add_argument("--heads", nargs="+", default=["linear", "auto"])
    p.add_argument("--seeds", nargs="+", type=int, default=[42, 43, 44])
    p.add_argument("--out", type=Path, default=ROOT / "bench")
    args = p.parse_args()
    base = load_config(args.config, parse_overrides(args.set))
    rows = []
    for seed in args.seeds:
        for head in args.heads:
            cfg = base.replace(
                run_id=f"heads-{head}-s{seed}-{time.strftime('%H%M%S')}",
                head=head,
                seed=seed,
                runs_dir=str(args.out / "runs"),
            )
            # the split is made with cfg.seed: make it once with the base seed and reuse it for every run
            rows.append(one(cfg if seed == base.seed else _fixed_split(cfg, base)))
            print(json.dumps(rows[-1]), flush=True)
    table = summarise(rows)
    print(table)
    write_json(args.out / "heads.json", {"rows": rows, "config": base.to_dict(), "provenance": provenance()})
    (args.out / "heads.md").write_text(table + "\n", encoding="utf-8")


def _fixed_split(cfg, base):
    """Copy the base seed's split into the new run so that only the training seed differs."""
    from emotionlib.runs import RunLayout
    from emotionlib.split import prepare_data

    split_run = base.replace(run_id="split", runs_dir=cfg.runs_dir)
    write_json(RunLayout(cfg.run_dir).split, prepare_data(split_run))  # made with the base seed, once
    return cfg


if __name__ == "__main__":
    main()
